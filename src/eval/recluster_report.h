// Writes a re-clustering run's report: recluster.json (moves with their evidence, deferred
// candidates, cluster sizes, adjusted Rand index, the dendrogram as SciPy-style merges) and
// dendrogram.svg (the same dendrogram as a picture).
#pragma once

#include <string>

#include "dynspec/status.h"
#include "dynspec/types.h"

namespace dynspec::eval {

std::string ReclusterReportJson(const ReclusterReport& report);
// An SVG dendrogram: leaves along the x axis (in dendrogram order), merge heights on y.
std::string RenderDendrogramSvg(const ReclusterReport& report, int width = 1000, int height = 520);
// Writes recluster.json and dendrogram.svg into `dir` (created if missing).
Status WriteReclusterReport(const ReclusterReport& report, const std::string& dir);

}  // namespace dynspec::eval
