// Request metrics of the HTTP server in the Prometheus text exposition format (version
// 0.0.4): a counter per route and status code and a latency histogram per route. Written
// by hand rather than with prometheus-cpp: Debian 12 does not package that library, and
// two metric families need only a few dozen lines. Thread-safe.
#pragma once

#include <array>
#include <map>
#include <mutex>
#include <string>

#include "dynspec/types.h"

namespace dynspec::server {

class RequestMetrics {
 public:
  // Upper bounds of the latency buckets, in seconds (+Inf is implied).
  static constexpr std::array<double, 12> kBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                      0.01,   0.025,   0.05,   0.1,   0.5,    2.5};

  void Record(const std::string& route, int status, double seconds);

  // The request families followed by engine gauges and counters from `stats` and the
  // partition sizes from `clusters`.
  std::string Render(const EngineStats& stats, const std::vector<ClusterInfo>& clusters,
                     const std::vector<std::string>& head_names) const;

 private:
  struct Histogram {
    std::array<uint64_t, kBuckets.size() + 1> counts{};  // last: +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, Histogram> latency_;
};

}  // namespace dynspec::server
