#include "cluster/kmeans.h"

#include <cmath>
#include <random>
#include <string>

#include "common/vector_math.h"

namespace dynspec {

int NearestCentroid(std::span<const float> v, const std::vector<std::vector<float>>& centroids) {
  int best = -1;
  float best_sim = -2;
  for (size_t c = 0; c < centroids.size(); ++c) {
    const float s = Dot(v, centroids[c]);
    if (s > best_sim) {
      best_sim = s;
      best = static_cast<int>(c);
    }
  }
  return best;
}

Result<KMeansResult> SphericalKMeans(const std::vector<std::vector<float>>& points, int k,
                                     int max_iterations, uint64_t seed) {
  if (points.empty()) return Status::InvalidArgument("k-means needs at least one point");
  if (k < 1) return Status::InvalidArgument("k-means needs k >= 1");
  const size_t dim = points[0].size();
  for (size_t i = 0; i < points.size(); ++i) {
    if (points[i].size() != dim || dim == 0) {
      return Status::InvalidArgument("k-means point " + std::to_string(i) + " has dimension " +
                                     std::to_string(points[i].size()) + ", expected " +
                                     std::to_string(dim));
    }
    DYNSPEC_RETURN_IF_ERROR(CheckFinite(points[i], "k-means point " + std::to_string(i)));
  }
  const size_t n = points.size();
  const size_t kk = std::min<size_t>(static_cast<size_t>(k), n);
  std::mt19937_64 rng(seed);
  KMeansResult r;

  // k-means++: each next centre drawn with probability proportional to its distance
  // (1 - cos) from the nearest centre chosen so far.
  std::vector<double> dist(n, 2.0);
  r.centroids.push_back(points[std::uniform_int_distribution<size_t>(0, n - 1)(rng)]);
  while (r.centroids.size() < kk) {
    double total = 0;
    for (size_t i = 0; i < n; ++i) {
      dist[i] = std::min(dist[i], 1.0 - double(Dot(points[i], r.centroids.back())));
      dist[i] = std::max(dist[i], 0.0);
      total += dist[i];
    }
    size_t pick = 0;
    if (total <= 0) {
      pick = std::uniform_int_distribution<size_t>(0, n - 1)(rng);
    } else {
      double u = std::uniform_real_distribution<double>(0, total)(rng);
      for (pick = 0; pick + 1 < n; ++pick) {
        u -= dist[pick];
        if (u <= 0) break;
      }
    }
    r.centroids.push_back(points[pick]);
  }

  r.assignment.assign(n, -1);
  for (int it = 0; it < max_iterations; ++it) {
    bool moved = false;
    for (size_t i = 0; i < n; ++i) {
      const int c = NearestCentroid(points[i], r.centroids);
      if (c != r.assignment[i]) {
        r.assignment[i] = c;
        moved = true;
      }
    }
    r.iterations = it + 1;
    if (!moved) break;
    std::vector<std::vector<float>> sums(kk, std::vector<float>(dim, 0.0f));
    std::vector<size_t> counts(kk, 0);
    for (size_t i = 0; i < n; ++i) {
      auto& s = sums[r.assignment[i]];
      for (size_t d = 0; d < dim; ++d) s[d] += points[i][d];
      counts[r.assignment[i]]++;
    }
    for (size_t c = 0; c < kk; ++c) {
      if (counts[c] == 0 || !NormalizeInPlace(sums[c], "centroid").ok()) {
        // An empty cluster takes the point that is worst served by its own centre.
        size_t worst = 0;
        float worst_sim = 2;
        for (size_t i = 0; i < n; ++i) {
          const float s = Dot(points[i], r.centroids[r.assignment[i]]);
          if (s < worst_sim) {
            worst_sim = s;
            worst = i;
          }
        }
        sums[c] = points[worst];
      }
      r.centroids[c] = std::move(sums[c]);
    }
  }
  return r;
}

}  // namespace dynspec
