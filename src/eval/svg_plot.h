// Minimal SVG line charts for evaluation reports (no plotting library needed to view them:
// any browser renders SVG).
//
// RenderSvg draws every series of `chart` as a polyline on shared axes:
//   - axis ranges cover all finite points; ticks are "nice" values (1, 2 or 5 times a power
//     of ten), with light grid lines; large values are labelled 20k / 1.5M;
//   - points with a NaN or infinite coordinate are skipped and break the line there; a point
//     with no finite neighbour is drawn as a dot; series with few points get dot markers;
//   - a legend on the right names each series in its colour (10 distinct colours, then
//     dashed variants);
//   - all text (title, labels, series names) is XML-escaped; control characters are dropped.
// A chart without any finite point still renders axes over [0, 1].
// WriteSvg writes RenderSvg's output to `path` (IoError when it cannot).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "dynspec/status.h"

namespace dynspec::eval {

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y)
};

struct LineChart {
  std::string title, x_label, y_label;
  std::vector<Series> series;
};

std::string RenderSvg(const LineChart& chart, int width = 900, int height = 520);
Status WriteSvg(const std::string& path, const LineChart& chart, int width = 900, int height = 520);

// Escapes &, <, >, " and ' for XML text and attributes; drops characters XML 1.0 forbids.
std::string XmlEscape(const std::string& s);

}  // namespace dynspec::eval
