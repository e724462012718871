// Euclidean k-means: clusters points by squared Euclidean distance (not restricted to unit
// vectors, unlike SphericalKMeans). The first stage of TwoStageClusters: many points are
// summarised by `k` centres and their group sizes. Deterministic for a given seed.
#pragma once

#include <cstdint>
#include <vector>

#include "cluster/kmeans.h"
#include "dynspec/status.h"

namespace dynspec {

// k-means++ seeding (Arthur & Vassilvitskii 2007: each next centre drawn with probability
// proportional to its squared distance from the nearest centre so far), then Lloyd
// iterations (accelerated with Hamerly's distance bounds, which skip the points that cannot
// change group) until no point moves or `max_iterations` assignment passes. A group left empty by
// an iteration takes the point farthest from its own centre. Points must be non-empty, of one
// dimension and finite (InvalidArgument naming the point otherwise); k >= 1 and is capped at the
// number of points. Non-empty groups' `centroids` are the means of their points (not
// normalized); a group is empty only when there are fewer distinct points than k or the
// iteration limit stopped right after a reseed. Time O(n k d) for seeding and the first
// pass, then typically far less per iteration (O(n k d) worst case); memory O(n d + k d).
Result<KMeansResult> EuclideanKMeans(const std::vector<std::vector<float>>& points, int k,
                                     int max_iterations, uint64_t seed);

}  // namespace dynspec
