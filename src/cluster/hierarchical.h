// Hierarchical (agglomerative) clustering for provider re-clustering: exact single, complete
// and average linkage on Euclidean distances, flat cuts of the resulting dendrogram, a
// two-stage variant for very many points, and the adjusted Rand index to compare partitions.
// A pure module: no engine dependency, deterministic, single-threaded.
//
// Output format. A Dendrogram holds n-1 merges in the format of the rows of a SciPy linkage
// matrix (scipy.cluster.hierarchy.linkage): ids 0..n-1 are the points, id n+i is the cluster
// made by merge i; each merge joins two existing clusters a < b at `distance`, and `size` is
// the number of points in the new cluster. Merges are sorted by distance (non-decreasing).
//
// Algorithms.
//  - Single linkage: minimum spanning tree by Prim's algorithm with distances computed on the
//    fly from the points (O(n^2 d) time, O(n d) memory), then its edges sorted by length and
//    joined with a union-find (single linkage = Kruskal order of the MST).
//  - Complete and average linkage: the nearest-neighbour chain algorithm (Murtagh 1983,
//    Muellner 2011), exact for these reducible linkages, O(n^2) time, on a condensed
//    cluster-to-cluster distance matrix updated with the Lance-Williams formulas. The matrix
//    is kept in double when n(n-1)/2 doubles fit `AgglomerateOptions::max_matrix_bytes`, else
//    in float when n(n-1)/2 floats fit (20,000 points: 800 MB), else the call fails with
//    ResourceExhausted. There is no exact O(n)-memory alternative with O(n^2) time for these
//    linkages: unlike Ward or centroid linkage, a cluster-to-cluster mean/max of distances has
//    no summary smaller than the pairwise distances, so recomputing it from the points costs
//    O(n |cluster|) per merge, O(n^3) for the chained trees average linkage often builds
//    (hours at 20k points). Above the budget, use TwoStageClusters. The float matrix changes
//    heights by ~2e-7 relative (20k points: max 2.1e-7 against SciPy, same flat clusters).
//  Distances are computed in double from the float coordinates. Measured on a 2-core VM,
//  16-d: average linkage 1k points 0.01 s / 4 MiB, 20k points 6-8 s / 770 MiB; single
//  linkage 20k points 2-3 s / 1 MiB (bench/bench_cluster).
//
// Ties. Nearest-neighbour searches break exact distance ties towards the previous element of
// the chain (needed for termination), then towards the lowest cluster slot; Prim breaks ties
// towards the lowest point index; merges of equal distance keep the order in which they were
// found (stable sort). With exact ties the dendrogram is one of the valid ones but may differ
// from SciPy's; without ties it is unique and equals SciPy's.
//
// Monotonicity. Single, complete and average linkage are monotone in exact arithmetic; a
// merge height that rounding makes smaller than the height of one of its parts is raised to
// it (a change of a few ulps), so the sorted merge order is always a valid tree order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "dynspec/options.h"
#include "dynspec/status.h"

namespace dynspec {

// Linkage (single, complete, average) is declared in dynspec/options.h, as part of the
// re-clustering configuration.

// "single", "complete", "average" (SciPy's method names).
const char* LinkageName(Linkage linkage);

// One merge, in the format of a SciPy linkage matrix row: clusters a < b (ids: 0..n-1 are
// points, n+i is the cluster made by merge i), the distance, and the size of the new cluster.
struct Merge {
  size_t a, b;
  double distance;
  size_t size;
};

// n-1 merges sorted by distance (like scipy.cluster.hierarchy.linkage output). A dendrogram
// of one point has no merges.
struct Dendrogram {
  size_t points = 0;
  std::vector<Merge> merges;
};

struct AgglomerateOptions {
  // Largest condensed distance matrix complete/average linkage may hold (see above). The
  // default admits 16,384 points in double and 23,170 in float.
  size_t max_matrix_bytes = size_t{1} << 30;
};

// Exact agglomerative clustering of `points` (rows; Euclidean distance computed in double).
// InvalidArgument for no points, a point of dimension 0 or of another dimension than point
// 0, or a NaN/Inf coordinate (the message names the point index); ResourceExhausted when
// complete/average linkage would need a matrix over the budget.
Result<Dendrogram> Agglomerate(const std::vector<std::vector<float>>& points, Linkage linkage,
                               const AgglomerateOptions& options = {});

// Agglomeration of points that stand for `weights[i]` coincident observations each (for
// example k-means centres standing for their groups). Average linkage then weighs every
// pair of points by weights[i] * weights[j], i.e. it is exactly the average linkage of the
// multiset in which point i occurs weights[i] times (those copies merged first at distance
// 0); single and complete linkage ignore the weights. Merge::size counts points (rows), not
// weight. Weights must be finite and > 0 (InvalidArgument otherwise).
Result<Dendrogram> AgglomerateWeighted(const std::vector<std::vector<float>>& points,
                                       const std::vector<double>& weights, Linkage linkage,
                                       const AgglomerateOptions& options = {});

// Flat clusters, labels 0..m-1 in order of first appearance over the points.
//
// CutToClusters: at most `k` clusters, like scipy fcluster(criterion='maxclust'): the
// smallest threshold r such that joining every subtree whose largest merge height is <= r
// leaves at most k clusters (fewer when merges tie at r). k >= points leaves every point
// alone; k == 0 is treated as 1. (SciPy 1.10 agrees for k <= n-2; for k >= n-1 it returns
// n-2 clusters, and for n = 2 two clusters even when k = 1.)
// CutAtDistance: like fcluster(criterion='distance'): every subtree whose largest merge
// height is <= threshold becomes (part of) one cluster.
// The dendrogram must be well formed (as Agglomerate returns); asserted, not checked.
std::vector<int> CutToClusters(const Dendrogram& d, size_t k);
std::vector<int> CutAtDistance(const Dendrogram& d, double threshold);

// Two stages for very many points: Euclidean k-means (EuclideanKMeans: k-means++ seeding,
// 10 Lloyd iterations; the groups only summarise the points) to `groups` centres, exact
// agglomeration of the non-empty groups' centres weighted by group size (AgglomerateWeighted), cut
// into at most k clusters, and every point takes its group's label. The approximation: every point
// is replaced by its group centre, so within-group spread is ignored. For average linkage the
// distance between two clusters is then the mean over all pairs of points of the distance between
// their centres (each group counted with its size), which equals the exact average linkage when
// groups are tight relative to the distances between clusters; single (complete) linkage uses
// centre-to-centre distances, which over- (under-) estimate the exact min (max) pair distances by
// at most the groups' radii. When groups >= number of points, this is the exact clustering. Labels
// 0..m-1 in order of first appearance. InvalidArgument for invalid points (as Agglomerate), groups
// == 0 or k == 0.
Result<std::vector<int>> TwoStageClusters(const std::vector<std::vector<float>>& points,
                                          Linkage linkage, size_t groups, size_t k, uint64_t seed);

// Adjusted Rand index of two labelings of the same points (Hubert & Arabie 1985): 1 for
// identical partitions (up to label names), about 0 for independent ones, negative below
// chance. Labels may be any ints. Two trivial partitions (both one cluster, or both all
// singletons, or fewer than 2 points) give 1. Different lengths give NaN.
double AdjustedRandIndex(const std::vector<int>& a, const std::vector<int>& b);

}  // namespace dynspec
