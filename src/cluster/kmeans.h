// Spherical k-means: clusters unit vectors by cosine similarity. Used for the initial,
// content-only assignment of providers to clusters (their content centroids), before any
// performance data exists. Deterministic for a given seed.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "dynspec/status.h"

namespace dynspec {

struct KMeansResult {
  std::vector<int> assignment;                // cluster index of each point
  std::vector<std::vector<float>> centroids;  // unit vectors; k of them (fewer if n < k)
  int iterations = 0;
};

// k-means++ seeding on cosine distance, then Lloyd iterations until no point moves or
// `max_iterations`. Points must be non-empty unit vectors of one dimension
// (InvalidArgument otherwise). k is capped at the number of points.
Result<KMeansResult> SphericalKMeans(const std::vector<std::vector<float>>& points, int k,
                                     int max_iterations, uint64_t seed);

// Index of the centroid with the largest inner product with v (-1 when there are none).
int NearestCentroid(std::span<const float> v, const std::vector<std::vector<float>>& centroids);

}  // namespace dynspec
