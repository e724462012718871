#include "server/metrics.h"

#include <sstream>

#include "common/format.h"

namespace dynspec::server {

void RequestMetrics::Record(const std::string& route, int status, double seconds) {
  std::lock_guard lock(mu_);
  requests_[{route, status}]++;
  Histogram& h = latency_[route];
  size_t b = 0;
  while (b < kBuckets.size() && seconds > kBuckets[b]) ++b;
  h.counts[b]++;
  h.sum += seconds;
  h.count++;
}

std::string RequestMetrics::Render(const EngineStats& stats,
                                   const std::vector<ClusterInfo>& clusters,
                                   const std::vector<std::string>& head_names) const {
  std::ostringstream out;
  {
    std::lock_guard lock(mu_);
    out << "# HELP dynspec_http_requests_total HTTP requests by route and status code.\n"
        << "# TYPE dynspec_http_requests_total counter\n";
    for (const auto& [key, n] : requests_) {
      out << "dynspec_http_requests_total{route=\"" << key.first << "\",code=\"" << key.second
          << "\"} " << n << "\n";
    }
    out << "# HELP dynspec_http_request_duration_seconds Time from routing to response.\n"
        << "# TYPE dynspec_http_request_duration_seconds histogram\n";
    for (const auto& [route, h] : latency_) {
      uint64_t cumulative = 0;
      for (size_t b = 0; b <= kBuckets.size(); ++b) {
        cumulative += h.counts[b];
        out << "dynspec_http_request_duration_seconds_bucket{route=\"" << route << "\",le=\""
            << (b < kBuckets.size() ? ExactNumber(kBuckets[b]) : "+Inf") << "\"} " << cumulative
            << "\n";
      }
      out << "dynspec_http_request_duration_seconds_sum{route=\"" << route << "\"} "
          << ExactNumber(h.sum) << "\n"
          << "dynspec_http_request_duration_seconds_count{route=\"" << route << "\"} " << h.count
          << "\n";
    }
  }
  auto gauge = [&](const char* name, const char* type, const char* help, double v) {
    out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n"
        << name << " " << ExactNumber(v) << "\n";
  };
  gauge("dynspec_items", "gauge", "Items in the catalog.", double(stats.items));
  gauge("dynspec_served_items", "gauge", "Items in a partition (with feedback).",
        double(stats.served_items));
  gauge("dynspec_providers", "gauge", "Providers.", double(stats.providers));
  gauge("dynspec_clusters", "gauge", "Provider clusters.", double(stats.clusters));
  gauge("dynspec_feedback_events_total", "counter",
        "Feedback events learned (rate() gives the feedback rate).", double(stats.feedback_events));
  gauge("dynspec_joins_total", "counter",
        "Items that joined their partition on their first feedback (this process).",
        double(stats.joins));
  gauge("dynspec_joins_reusing_prediction_total", "counter",
        "Joins that reused the neighbours of the item's latest prediction instead of searching.",
        double(stats.joins_reusing_prediction));
  gauge("dynspec_joins_linked_among_candidates_total", "counter",
        "Joins whose index insert linked among the candidates of the search that found the "
        "item's neighbours instead of searching the graph again.",
        double(stats.joins_linked_among_candidates));
  gauge("dynspec_predictions_total", "counter", "Predictions made.", double(stats.predictions));
  gauge("dynspec_rank_decisions_total", "counter", "Ranking decisions made by this process.",
        double(stats.rank_decisions));
  gauge("dynspec_pending_decisions", "gauge", "Ranking decisions waiting for feedback.",
        double(stats.pending_decisions));
  gauge("dynspec_expired_positions_total", "counter",
        "Slate positions resolved by expiry in this process.", double(stats.expired_positions));
  out << "# HELP dynspec_learner_loss Recent loss of the item models on feedback before "
         "learning, per head.\n# TYPE dynspec_learner_loss gauge\n";
  for (size_t h = 0; h < stats.recent_loss.size() && h < head_names.size(); ++h) {
    out << "dynspec_learner_loss{head=\"" << head_names[h] << "\"} "
        << ExactNumber(stats.recent_loss[h]) << "\n";
  }
  out << "# HELP dynspec_partition_items Items in each cluster's partition.\n"
      << "# TYPE dynspec_partition_items gauge\n";
  for (const auto& c : clusters) {
    out << "dynspec_partition_items{cluster=\"" << c.id << "\"} " << c.served_item_count << "\n";
  }
  return out.str();
}

}  // namespace dynspec::server
