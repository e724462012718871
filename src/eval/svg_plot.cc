#include "eval/svg_plot.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>

namespace dynspec::eval {
namespace {

// Tableau 10: distinct and readable on white.
constexpr const char* kColors[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                   "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
constexpr int kNumColors = 10;
constexpr const char* kDashes[] = {"", "6,3", "2,3", "8,3,2,3"};
constexpr const char* kFont = "DejaVu Sans, Arial, Helvetica, sans-serif";

struct Range {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void Add(double v) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool empty() const { return !(lo <= hi); }
};

// 1, 2 or 5 times a power of ten, close to `raw`.
double NiceStep(double raw) {
  const double exp10 = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / exp10;
  double nice = 10;
  if (f <= 1.0) {
    nice = 1;
  } else if (f <= 2.0) {
    nice = 2;
  } else if (f <= 5.0) {
    nice = 5;
  }
  return nice * exp10;
}

struct Axis {
  double lo = 0, hi = 1, step = 0.2;
  std::vector<double> ticks;
};

Axis MakeAxis(Range r, int target_ticks) {
  if (r.empty()) r.lo = 0, r.hi = 1;
  if (r.lo == r.hi) {
    const double pad = r.lo == 0 ? 1.0 : std::fabs(r.lo) * 0.1;
    r.lo -= pad;
    r.hi += pad;
  }
  Axis a;
  a.step = NiceStep((r.hi - r.lo) / std::max(1, target_ticks - 1));
  a.lo = std::floor(r.lo / a.step + 1e-9) * a.step;
  a.hi = std::ceil(r.hi / a.step - 1e-9) * a.step;
  const double count = (a.hi - a.lo) / a.step;
  if (!std::isfinite(count) || count < 1 || count > 100 || !(a.hi > a.lo)) {
    // Extreme ranges (near the limits of double): plain end points.
    a.lo = r.lo;
    a.hi = r.hi;
    a.step = r.hi - r.lo;
    a.ticks = {r.lo, r.hi};
    return a;
  }
  const int n = static_cast<int>(std::llround(count));
  for (int i = 0; i <= n; ++i) {
    double t = a.lo + i * a.step;
    if (std::fabs(t) < a.step * 1e-9) t = 0;  // no "-0"
    a.ticks.push_back(t);
  }
  return a;
}

std::string FormatTick(double v, const Axis& a) {
  const double mag = std::max(std::fabs(a.lo), std::fabs(a.hi));
  double scale = 1;
  const char* suffix = "";
  if (mag >= 1e6) {
    scale = 1e6;
    suffix = "M";
  } else if (mag >= 1e4) {
    scale = 1e3;
    suffix = "k";
  }
  if (v == 0 && *suffix) return "0";  // not "0k"
  const double step = a.step / scale;
  int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  decimals = std::min(decimals, 8);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f%s", decimals, v / scale, suffix);
  return buf;
}

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f", v);
  return buf;
}

// Number of characters (UTF-8 code points), for layout estimates.
size_t TextLength(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string Truncate(const std::string& s, size_t max_chars) {
  if (TextLength(s) <= max_chars) return s;
  std::string out;
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = s[i];
    if ((c & 0xC0) != 0x80 && ++n > max_chars - 1) break;
    out.push_back(s[i]);
  }
  return out + "\xE2\x80\xA6";  // ellipsis
}

}  // namespace

std::string XmlEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        if (c < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') break;  // not allowed in XML
        out.push_back(ch);
    }
  }
  return out;
}

std::string RenderSvg(const LineChart& chart, int width, int height) {
  width = std::max(width, 300);
  height = std::max(height, 200);

  Range xr, yr;
  for (const Series& s : chart.series) {
    for (const auto& [x, y] : s.points) {
      if (std::isfinite(x) && std::isfinite(y)) {
        xr.Add(x);
        yr.Add(y);
      }
    }
  }
  const Axis xa = MakeAxis(xr, 7);
  const Axis ya = MakeAxis(yr, 6);

  // Layout: legend to the right of the plot area.
  constexpr size_t kMaxLegendChars = 32;
  size_t legend_chars = 0;
  for (const Series& s : chart.series) {
    legend_chars = std::max(legend_chars, TextLength(Truncate(s.name, kMaxLegendChars)));
  }
  const double legend_w = chart.series.empty() ? 0 : 44 + 7.2 * legend_chars;
  size_t ytick_chars = 0;
  for (double t : ya.ticks) ytick_chars = std::max(ytick_chars, FormatTick(t, ya).size());
  const double left = 34 + 7.0 * ytick_chars + (chart.y_label.empty() ? 0 : 10);
  const double right = width - 20 - legend_w;
  const double top = chart.title.empty() ? 24 : 52;
  const double bottom = height - (chart.x_label.empty() ? 36 : 58);
  const double pw = std::max(10.0, right - left), ph = std::max(10.0, bottom - top);
  auto px = [&](double x) { return left + (x - xa.lo) / (xa.hi - xa.lo) * pw; };
  auto py = [&](double y) { return bottom - (y - ya.lo) / (ya.hi - ya.lo) * ph; };

  std::string o;
  o += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  o += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) +
       "\" height=\"" + std::to_string(height) + "\" viewBox=\"0 0 " + std::to_string(width) + " " +
       std::to_string(height) + "\" font-family=\"" + kFont + "\">\n";
  o += "<rect x=\"0\" y=\"0\" width=\"" + std::to_string(width) + "\" height=\"" +
       std::to_string(height) + "\" fill=\"white\"/>\n";
  if (!chart.title.empty()) {
    o += "<text x=\"" + Num(left + pw / 2) +
         "\" y=\"30\" text-anchor=\"middle\" font-size=\"17\" font-weight=\"bold\" "
         "fill=\"#222\">" +
         XmlEscape(chart.title) + "</text>\n";
  }

  // Grid and tick labels.
  o += "<g stroke=\"#e3e3e3\" stroke-width=\"1\">\n";
  for (double t : xa.ticks) {
    o += "<line x1=\"" + Num(px(t)) + "\" y1=\"" + Num(top) + "\" x2=\"" + Num(px(t)) + "\" y2=\"" +
         Num(bottom) + "\"/>\n";
  }
  for (double t : ya.ticks) {
    o += "<line x1=\"" + Num(left) + "\" y1=\"" + Num(py(t)) + "\" x2=\"" + Num(right) +
         "\" y2=\"" + Num(py(t)) + "\"/>\n";
  }
  o += "</g>\n";
  o += "<g font-size=\"12\" fill=\"#444\">\n";
  for (double t : xa.ticks) {
    o += "<text x=\"" + Num(px(t)) + "\" y=\"" + Num(bottom + 18) + "\" text-anchor=\"middle\">" +
         XmlEscape(FormatTick(t, xa)) + "</text>\n";
  }
  for (double t : ya.ticks) {
    o += "<text x=\"" + Num(left - 8) + "\" y=\"" + Num(py(t) + 4) + "\" text-anchor=\"end\">" +
         XmlEscape(FormatTick(t, ya)) + "</text>\n";
  }
  o += "</g>\n";
  o += "<rect x=\"" + Num(left) + "\" y=\"" + Num(top) + "\" width=\"" + Num(pw) + "\" height=\"" +
       Num(ph) + "\" fill=\"none\" stroke=\"#666\" stroke-width=\"1\"/>\n";
  if (!chart.x_label.empty()) {
    o += "<text x=\"" + Num(left + pw / 2) + "\" y=\"" + Num(height - 14.0) +
         "\" text-anchor=\"middle\" font-size=\"13\" fill=\"#222\">" + XmlEscape(chart.x_label) +
         "</text>\n";
  }
  if (!chart.y_label.empty()) {
    const double cy = top + ph / 2;
    o += "<text x=\"18\" y=\"" + Num(cy) + "\" transform=\"rotate(-90 18 " + Num(cy) +
         ")\" text-anchor=\"middle\" font-size=\"13\" fill=\"#222\">" + XmlEscape(chart.y_label) +
         "</text>\n";
  }

  // Series.
  for (size_t i = 0; i < chart.series.size(); ++i) {
    const Series& s = chart.series[i];
    const std::string color = kColors[i % kNumColors];
    const char* dash = kDashes[(i / kNumColors) % 4];
    const std::string dash_attr =
        *dash ? std::string(" stroke-dasharray=\"") + dash + "\"" : std::string();
    size_t finite = 0;
    for (const auto& [x, y] : s.points) finite += std::isfinite(x) && std::isfinite(y);
    const bool markers = finite <= 40;
    o += "<g>\n";
    std::vector<std::pair<double, double>> seg;
    auto flush = [&]() {
      if (seg.size() >= 2) {
        o += "<polyline fill=\"none\" stroke=\"" + color +
             "\" stroke-width=\"2\" stroke-linejoin=\"round\"" + dash_attr + " points=\"";
        for (size_t k = 0; k < seg.size(); ++k) {
          if (k) o += ' ';
          o += Num(seg[k].first) + "," + Num(seg[k].second);
        }
        o += "\"/>\n";
      }
      if (seg.size() == 1 || markers) {
        for (const auto& [x, y] : seg) {
          o += "<circle cx=\"" + Num(x) + "\" cy=\"" + Num(y) + "\" r=\"3\" fill=\"" + color +
               "\"/>\n";
        }
      }
      seg.clear();
    };
    for (const auto& [x, y] : s.points) {
      if (std::isfinite(x) && std::isfinite(y)) {
        seg.emplace_back(px(x), py(y));
      } else {
        flush();
      }
    }
    flush();
    o += "</g>\n";
  }

  // Legend.
  if (!chart.series.empty()) {
    const double lx = right + 16;
    const double ly = top + 4;
    const double row =
        std::min(20.0, (height - top - 8) / static_cast<double>(chart.series.size()));
    o += "<rect x=\"" + Num(lx - 6) + "\" y=\"" + Num(ly - 4) + "\" width=\"" + Num(legend_w - 4) +
         "\" height=\"" + Num(row * chart.series.size() + 8) +
         "\" fill=\"white\" stroke=\"#ccc\"/>\n";
    for (size_t i = 0; i < chart.series.size(); ++i) {
      const double y = ly + row * i + row / 2;
      const char* dash = kDashes[(i / kNumColors) % 4];
      o += "<line x1=\"" + Num(lx) + "\" y1=\"" + Num(y) + "\" x2=\"" + Num(lx + 24) + "\" y2=\"" +
           Num(y) + "\" stroke=\"" + kColors[i % kNumColors] + "\" stroke-width=\"3\"" +
           (*dash ? std::string(" stroke-dasharray=\"") + dash + "\"" : std::string()) + "/>\n";
      o += "<text x=\"" + Num(lx + 30) + "\" y=\"" + Num(y + 4) +
           "\" font-size=\"12\" fill=\"#222\">" +
           XmlEscape(Truncate(chart.series[i].name, kMaxLegendChars)) + "</text>\n";
    }
  }
  o += "</svg>\n";
  return o;
}

Status WriteSvg(const std::string& path, const LineChart& chart, int width, int height) {
  const std::string svg = RenderSvg(chart, width, height);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Status::IoError(path + ": cannot open for writing: " + std::strerror(errno));
  out.write(svg.data(), static_cast<std::streamsize>(svg.size()));
  out.flush();
  if (!out) return Status::IoError(path + ": write failed");
  return Status::Ok();
}

}  // namespace dynspec::eval
