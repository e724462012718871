// Helpers shared by the named-workload benchmarks: timing, percentiles and the synthetic
// topic-clustered vectors they all use, so their figures describe the same data.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace dynspec::bench {

using Clock = std::chrono::steady_clock;

inline double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

inline double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5))];
}

// Topic-clustered unit vectors: 256 topic centres, items scattered around them.
inline std::vector<std::vector<float>> MakeVectors(size_t n, int dim, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0, 1);
  std::vector<std::vector<float>> centres(256, std::vector<float>(dim));
  for (auto& c : centres) {
    for (float& x : c) x = g(rng);
  }
  std::vector<std::vector<float>> out(n, std::vector<float>(dim));
  for (size_t i = 0; i < n; ++i) {
    const auto& c = centres[rng() % centres.size()];
    double n2 = 0;
    for (int d = 0; d < dim; ++d) {
      out[i][d] = c[d] + 0.8f * g(rng);
      n2 += out[i][d] * out[i][d];
    }
    const float inv = static_cast<float>(1 / std::sqrt(n2));
    for (float& x : out[i]) x *= inv;
  }
  return out;
}

}  // namespace dynspec::bench
