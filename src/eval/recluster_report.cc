#include "eval/recluster_report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/report_json.h"
#include "eval/io.h"
#include "eval/svg_plot.h"

namespace dynspec::eval {

std::string ReclusterReportJson(const ReclusterReport& r) {
  nlohmann::json j;
  j["started_unix_seconds"] = r.started_unix_seconds;
  j["seconds"] = r.seconds;
  j["providers_profiled"] = r.providers_profiled;
  j["providers_skipped"] = r.providers_skipped;
  j["providers_by_content"] = r.providers_by_content;
  j["adjusted_rand_index"] = r.adjusted_rand_index;
  j["stability_ari"] = r.stability_ari;
  j["moves"] = nlohmann::json::array();
  for (const auto& m : r.moves) j["moves"].push_back(ProviderMoveJson(m));
  j["deferred"] = nlohmann::json::array();
  for (const auto& m : r.deferred) j["deferred"].push_back(ProviderMoveJson(m));
  for (const auto& c : r.clusters_after) {
    j["clusters"].push_back({{"id", c.id},
                             {"providers", c.provider_count},
                             {"items", c.item_count},
                             {"served_items", c.served_item_count}});
  }
  j["dendrogram"]["leaves"] = r.dendrogram_leaves;
  for (const auto& m : r.dendrogram) {
    j["dendrogram"]["merges"].push_back({m.a, m.b, m.distance, m.size});
  }
  return j.dump(2) + "\n";
}

std::string RenderDendrogramSvg(const ReclusterReport& r, int width, int height) {
  const size_t n = r.dendrogram_leaves.size();
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" font-family=\"sans-serif\" font-size=\"11\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << width / 2 << "\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">"
      << "Providers clustered by cross-cluster performance (" << n << " leaves)</text>\n";
  if (n < 2 || r.dendrogram.size() + 1 != n) {
    svg << "<text x=\"20\" y=\"60\">not enough profiled providers for a dendrogram</text>\n";
    svg << "</svg>\n";
    return svg.str();
  }
  // Leaf order: depth-first from the root, so that merged groups sit side by side.
  std::vector<size_t> order;
  std::function<void(size_t)> visit = [&](size_t id) {
    if (id < n) {
      order.push_back(id);
      return;
    }
    visit(r.dendrogram[id - n].a);
    visit(r.dendrogram[id - n].b);
  };
  visit(n + r.dendrogram.size() - 1);
  const double left = 60, right = width - 20, top = 40, bottom = height - 120;
  double max_height = 0;
  for (const auto& m : r.dendrogram) max_height = std::max(max_height, m.distance);
  if (max_height <= 0) max_height = 1;
  std::vector<double> x(n + r.dendrogram.size()), y(n + r.dendrogram.size(), bottom);
  for (size_t i = 0; i < order.size(); ++i) {
    x[order[i]] = left + (right - left) * (i + 0.5) / n;
  }
  auto ypos = [&](double d) { return bottom - (bottom - top) * d / max_height; };
  for (size_t i = 0; i < r.dendrogram.size(); ++i) {
    const auto& m = r.dendrogram[i];
    const size_t id = n + i;
    x[id] = (x[m.a] + x[m.b]) / 2;
    y[id] = ypos(m.distance);
    svg << "<path d=\"M" << x[m.a] << "," << y[m.a] << " V" << y[id] << " H" << x[m.b] << " V"
        << y[m.b] << "\" fill=\"none\" stroke=\"#33658a\" stroke-width=\"1.2\"/>\n";
  }
  svg << "<line x1=\"" << left - 5 << "\" y1=\"" << top << "\" x2=\"" << left - 5 << "\" y2=\""
      << bottom << "\" stroke=\"black\"/>\n";
  for (int t = 0; t <= 4; ++t) {
    const double d = max_height * t / 4;
    svg << "<text x=\"" << left - 8 << "\" y=\"" << ypos(d) + 4 << "\" text-anchor=\"end\">"
        << std::round(d * 1000) / 1000 << "</text>\n";
  }
  if (n <= 80) {  // leaf labels only while they stay readable
    for (size_t leaf : order) {
      svg << "<text transform=\"translate(" << x[leaf] << "," << bottom + 8
          << ") rotate(60)\" font-size=\"9\">" << XmlEscape(r.dendrogram_leaves[leaf])
          << "</text>\n";
    }
  }
  svg << "</svg>\n";
  return svg.str();
}

Status WriteReclusterReport(const ReclusterReport& report, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create " + dir + ": " + ec.message());
  DYNSPEC_RETURN_IF_ERROR(WriteTextFile(dir + "/recluster.json", ReclusterReportJson(report)));
  return WriteTextFile(dir + "/dendrogram.svg", RenderDendrogramSvg(report));
}

}  // namespace dynspec::eval
