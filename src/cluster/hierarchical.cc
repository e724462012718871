#include "cluster/hierarchical.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <unordered_map>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "cluster/kmeans_euclid.h"
#include "common/target_clones.h"
#include "common/vector_math.h"

namespace dynspec {

namespace {

constexpr size_t kNone = std::numeric_limits<size_t>::max();

// Lloyd iterations of the two-stage summary. The groups only summarise the points, so
// convergence is not needed: on 50 Gaussian blobs in 16-d (50k points, 1000 groups) the
// k-means objective after 10 iterations is within 0.5% of its converged value (37).
constexpr int kTwoStageIterations = 10;

// Points copied row-major into one block, for cache-friendly distance scans.
struct Flat {
  size_t n = 0, dim = 0;
  std::vector<float> x;
  const float* row(size_t i) const { return x.data() + i * dim; }
};

// InvalidArgument naming the first point that is empty, of another dimension than point 0,
// or not finite.
Status ValidatePoints(const std::vector<std::vector<float>>& points) {
  if (points.empty()) return Status::InvalidArgument("clustering needs at least one point");
  const size_t dim = points[0].size();
  for (size_t i = 0; i < points.size(); ++i) {
    if (points[i].empty()) {
      return Status::InvalidArgument("point " + std::to_string(i) + " has dimension 0");
    }
    if (points[i].size() != dim) {
      return Status::InvalidArgument("point " + std::to_string(i) + " has dimension " +
                                     std::to_string(points[i].size()) + ", expected " +
                                     std::to_string(dim) + " (the dimension of point 0)");
    }
    DYNSPEC_RETURN_IF_ERROR(CheckFinite(points[i], "point " + std::to_string(i)));
  }
  return Status::Ok();
}

Result<Flat> ValidateAndFlatten(const std::vector<std::vector<float>>& points) {
  DYNSPEC_RETURN_IF_ERROR(ValidatePoints(points));
  Flat f;
  f.n = points.size();
  f.dim = points[0].size();
  f.x.reserve(f.n * f.dim);
  for (const auto& p : points) f.x.insert(f.x.end(), p.begin(), p.end());
  return f;
}

// out[i] += (row[i] - c)^2 in double for i < n. Blocks of 8 so that GCC vectorizes it at
// -O2 (whose cost model does not vectorize loops that need a scalar epilogue).
inline void AddSquaredDiff(const float* __restrict row, double c, double* __restrict out,
                           size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (size_t u = 0; u < 8; ++u) {
      const double diff = double(row[i + u]) - c;
      out[i + u] += diff * diff;
    }
  }
  for (; i < n; ++i) {
    const double diff = double(row[i]) - c;
    out[i] += diff * diff;
  }
}

// Euclidean distances, in double, from point `p` (dim coordinates) to the m points stored
// transposed in `xt` (dimension j of point i at xt[j * stride + i]).
DYNSPEC_AVX2_CLONE void DistancesFrom(const float* p, const float* xt, size_t stride, size_t m,
                                      size_t dim, double* out) {
  std::fill(out, out + m, 0.0);
  for (size_t j = 0; j < dim; ++j) AddSquaredDiff(xt + j * stride, double(p[j]), out, m);
  for (size_t i = 0; i < m; ++i) out[i] = std::sqrt(out[i]);
}

std::vector<float> Transposed(const Flat& f) {
  std::vector<float> xt(f.n * f.dim);
  for (size_t i = 0; i < f.n; ++i) {
    for (size_t j = 0; j < f.dim; ++j) xt[j * f.n + i] = f.x[i * f.dim + j];
  }
  return xt;
}

struct UnionFind {
  explicit UnionFind(size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), 0); }
  size_t Find(size_t x) {
    while (parent[x] != x) {
      parent[x] = parent[parent[x]];
      x = parent[x];
    }
    return x;
  }
  std::vector<size_t> parent;
};

// A merge found by an algorithm: two points (each standing for the cluster it is in at that
// moment) and the height.
struct RawMerge {
  size_t x, y;
  double distance;
};

// Sorts raw merges by height (stable: equal heights keep their discovery order) and names
// the clusters the SciPy way: points 0..n-1, merge i makes cluster n+i.
Dendrogram Label(size_t n, std::vector<RawMerge> raw) {
  std::stable_sort(raw.begin(), raw.end(),
                   [](const RawMerge& l, const RawMerge& r) { return l.distance < r.distance; });
  Dendrogram d;
  d.points = n;
  d.merges.reserve(raw.size());
  UnionFind uf(n);
  std::vector<size_t> id(n), size(n, 1);
  std::iota(id.begin(), id.end(), 0);
  for (size_t i = 0; i < raw.size(); ++i) {
    const size_t rx = uf.Find(raw[i].x), ry = uf.Find(raw[i].y);
    assert(rx != ry);
    Merge m;
    m.a = std::min(id[rx], id[ry]);
    m.b = std::max(id[rx], id[ry]);
    m.distance = raw[i].distance;
    m.size = size[rx] + size[ry];
    d.merges.push_back(m);
    uf.parent[ry] = rx;
    id[rx] = n + i;
    size[rx] = m.size;
  }
  return d;
}

// Single linkage: Prim's minimum spanning tree over the complete graph, distances computed
// on the fly (O(n^2 d) time, O(n d) memory). The points not yet in the tree are kept
// transposed and compacted (swap-remove) so each step is one vectorized scan. Ties go to
// the lowest point index.
Dendrogram SingleLinkage(const Flat& f) {
  const size_t n = f.n, dim = f.dim;
  std::vector<RawMerge> raw;
  raw.reserve(n - 1);
  std::vector<float> rest_xt = Transposed(f);  // column r holds point rest[r]
  std::vector<size_t> rest(n);
  std::iota(rest.begin(), rest.end(), 0);
  std::vector<double> best(n, std::numeric_limits<double>::infinity()), d(n);
  std::vector<size_t> from(n, 0);
  auto remove = [&](size_t r) {  // swap-remove column r
    const size_t last = rest.size() - 1;
    for (size_t j = 0; j < dim; ++j) rest_xt[j * n + r] = rest_xt[j * n + last];
    rest[r] = rest[last];
    best[r] = best[last];
    from[r] = from[last];
    rest.pop_back();
  };
  size_t cur = 0;
  remove(0);
  while (!rest.empty()) {
    const size_t m = rest.size();
    DistancesFrom(f.row(cur), rest_xt.data(), n, m, dim, d.data());
    size_t pick = 0;
    for (size_t r = 0; r < m; ++r) {
      if (d[r] < best[r]) {
        best[r] = d[r];
        from[r] = cur;
      }
      if (best[r] < best[pick] || (best[r] == best[pick] && rest[r] < rest[pick])) pick = r;
    }
    cur = rest[pick];
    raw.push_back({from[pick], cur, best[pick]});
    remove(pick);
  }
  return Label(n, std::move(raw));
}

// An uninitialized array for the distance matrix; ok() is false when it could not be
// allocated. Large ones are aligned to 2 MiB and, on Linux, marked for transparent huge
// pages: the chain's column scans touch one element per matrix row, so with 4 KiB pages
// nearly every access is also a TLB miss.
template <typename T>
class MatrixBuffer {
 public:
  explicit MatrixBuffer(size_t count) {
    constexpr size_t kHuge = size_t{2} << 20;
    const size_t bytes = std::max<size_t>(count * sizeof(T), 1);
    if (bytes >= kHuge) {
      const size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
      data_.reset(static_cast<T*>(std::aligned_alloc(kHuge, rounded)));
#if defined(__linux__) && defined(MADV_HUGEPAGE)
      if (data_) madvise(data_.get(), rounded, MADV_HUGEPAGE);  // a hint; failure is harmless
#endif
    } else {
      data_.reset(static_cast<T*>(std::malloc(bytes)));
    }
  }
  bool ok() const { return data_ != nullptr; }
  T& operator[](size_t i) { return data_.get()[i]; }

 private:
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  std::unique_ptr<T, Free> data_;
};

// Complete or average linkage by the nearest-neighbour chain on a condensed matrix of T.
template <typename T>
Result<Dendrogram> ChainLinkage(const Flat& f, const std::vector<double>& weights,
                                Linkage linkage) {
  const size_t n = f.n;
  // Condensed upper triangle: pair (i, j), i < j, at i*n - i*(i+1)/2 + j - i - 1.
  MatrixBuffer<T> dm(n * (n - 1) / 2);
  if (!dm.ok()) {
    return Status::ResourceExhausted(
        "could not allocate " + std::to_string((n * (n - 1) / 2 * sizeof(T)) >> 20) +
        " MiB for the distance matrix of " + std::to_string(n) + " points");
  }
  {
    const std::vector<float> xt = Transposed(f);
    std::vector<double> row(n);
    for (size_t i = 0, k = 0; i + 1 < n; ++i) {
      const size_t m = n - i - 1;
      DistancesFrom(f.row(i), xt.data() + i + 1, n, m, f.dim, row.data());
      for (size_t j = 0; j < m; ++j) dm[k++] = static_cast<T>(row[j]);
    }
  }
  // Row start offsets: pair (i, j), i < j, is at off[i] + j.
  std::vector<size_t> off(n);
  for (size_t i = 0; i < n; ++i) off[i] = i * n - i * (i + 1) / 2 - i - 1;
  auto at = [&](size_t i, size_t j) -> T& { return i < j ? dm[off[i] + j] : dm[off[j] + i]; };

  std::vector<double> w = weights;     // total weight of the cluster in each slot
  std::vector<double> height(n, 0.0);  // merge height of the cluster in each slot
  std::vector<size_t> active(n);       // slots holding a cluster, increasing
  std::iota(active.begin(), active.end(), 0);
  // Visits at(x, i) for every active i != x: the slots below x read a column of the
  // condensed matrix (one element per row), the slots above x a contiguous stretch of row x.
  auto for_row = [&](size_t x, auto&& fn) {
    const auto split = std::lower_bound(active.begin(), active.end(), x);
    for (auto it = active.begin(); it != split; ++it) fn(*it, dm[off[*it] + x]);
    T* row = &dm[0] + off[x];
    for (auto it = split + (split != active.end() && *split == x); it != active.end(); ++it) {
      fn(*it, row[*it]);
    }
  };
  std::vector<size_t> chain;
  std::vector<RawMerge> raw;
  raw.reserve(n - 1);
  while (active.size() > 1) {
    if (chain.empty()) chain.push_back(active.front());
    size_t x = 0, y = 0;
    double dxy = 0;
    for (;;) {
      x = chain.back();
      const size_t prev = chain.size() >= 2 ? chain[chain.size() - 2] : kNone;
      size_t c = prev;
      T best = prev == kNone ? std::numeric_limits<T>::infinity() : at(x, prev);
      for_row(x, [&](size_t i, T d) {
        if (d < best) {
          best = d;
          c = i;
        }
      });
      if (c == kNone) c = (active.front() == x) ? active[1] : active.front();  // all infinite
      if (c == prev) {
        y = prev;
        dxy = double(best);
        break;
      }
      chain.push_back(c);
    }
    chain.pop_back();
    chain.pop_back();
    // Monotone by construction; rounding must not make a merge lower than its parts.
    dxy = std::max({dxy, height[x], height[y]});
    raw.push_back({x, y, dxy});
    // The merged cluster takes the lower slot; its row is rewritten in place.
    const size_t keep = std::min(x, y), drop = std::max(x, y);
    const double wk = w[keep] / (w[x] + w[y]), wd = w[drop] / (w[x] + w[y]);
    active.erase(std::lower_bound(active.begin(), active.end(), drop));
    if (linkage == Linkage::kComplete) {
      for_row(keep, [&](size_t i, T& dk) { dk = std::max(dk, at(drop, i)); });
    } else {
      for_row(keep, [&](size_t i, T& dk) {
        dk = static_cast<T>(wk * double(dk) + wd * double(at(drop, i)));
      });
    }
    w[keep] += w[drop];
    height[keep] = dxy;
    // The chain never holds x or y now; its other slots are unchanged.
  }
  return Label(n, std::move(raw));
}

Result<Dendrogram> AgglomerateFlat(const Flat& f, const std::vector<double>& weights,
                                   Linkage linkage, const AgglomerateOptions& options) {
  if (f.n == 1) return Dendrogram{1, {}};
  if (linkage == Linkage::kSingle) return SingleLinkage(f);
  const size_t pairs = f.n * (f.n - 1) / 2;
  if (pairs <= options.max_matrix_bytes / sizeof(double)) {
    return ChainLinkage<double>(f, weights, linkage);
  }
  if (pairs <= options.max_matrix_bytes / sizeof(float)) {
    return ChainLinkage<float>(f, weights, linkage);
  }
  return Status::ResourceExhausted(
      std::string(LinkageName(linkage)) + " linkage of " + std::to_string(f.n) +
      " points needs a distance matrix of " + std::to_string(pairs * sizeof(float) >> 20) +
      " MiB, over the budget of " + std::to_string(options.max_matrix_bytes >> 20) +
      " MiB (AgglomerateOptions::max_matrix_bytes); use TwoStageClusters");
}

// Largest merge height in each merge's subtree (SciPy's "max dists" monocriterion; equal to
// the merge height for monotone dendrograms).
std::vector<double> MaxHeights(const Dendrogram& d) {
  const size_t n = d.points;
  std::vector<double> mh(d.merges.size());
  for (size_t i = 0; i < d.merges.size(); ++i) {
    const Merge& m = d.merges[i];
    assert(m.a < n + i && m.b < n + i && m.a != m.b);
    double h = m.distance;
    if (m.a >= n) h = std::max(h, mh[m.a - n]);
    if (m.b >= n) h = std::max(h, mh[m.b - n]);
    mh[i] = h;
  }
  return mh;
}

// Applies the merges whose subtree height is <= threshold; labels in order of first
// appearance.
std::vector<int> ApplyMerges(const Dendrogram& d, const std::vector<double>& mh, double threshold) {
  const size_t n = d.points;
  assert(d.merges.size() + 1 == n || (n == 0 && d.merges.empty()));
  std::vector<size_t> rep(n + d.merges.size());  // a point of each cluster id
  std::iota(rep.begin(), rep.begin() + static_cast<std::ptrdiff_t>(n), 0);
  UnionFind uf(n);
  for (size_t i = 0; i < d.merges.size(); ++i) {
    const Merge& m = d.merges[i];
    rep[n + i] = rep[m.a];
    if (mh[i] <= threshold) {
      const size_t ra = uf.Find(rep[m.a]), rb = uf.Find(rep[m.b]);
      if (ra != rb) uf.parent[rb] = ra;
    }
  }
  std::vector<int> labels(n);
  std::unordered_map<size_t, int> names;
  for (size_t p = 0; p < n; ++p) {
    auto it = names.emplace(uf.Find(p), static_cast<int>(names.size())).first;
    labels[p] = it->second;
  }
  return labels;
}

double Pairs(double c) { return c * (c - 1) / 2; }

}  // namespace

const char* LinkageName(Linkage linkage) {
  switch (linkage) {
    case Linkage::kSingle:
      return "single";
    case Linkage::kComplete:
      return "complete";
    case Linkage::kAverage:
      return "average";
  }
  return "unknown";
}

Result<Dendrogram> Agglomerate(const std::vector<std::vector<float>>& points, Linkage linkage,
                               const AgglomerateOptions& options) {
  DYNSPEC_ASSIGN_OR_RETURN(Flat f, ValidateAndFlatten(points));
  return AgglomerateFlat(f, std::vector<double>(f.n, 1.0), linkage, options);
}

Result<Dendrogram> AgglomerateWeighted(const std::vector<std::vector<float>>& points,
                                       const std::vector<double>& weights, Linkage linkage,
                                       const AgglomerateOptions& options) {
  DYNSPEC_ASSIGN_OR_RETURN(Flat f, ValidateAndFlatten(points));
  if (weights.size() != f.n) {
    return Status::InvalidArgument("weights has " + std::to_string(weights.size()) +
                                   " values, expected one per point (" + std::to_string(f.n) + ")");
  }
  for (size_t i = 0; i < f.n; ++i) {
    if (!std::isfinite(weights[i]) || !(weights[i] > 0)) {
      return Status::InvalidArgument("weights[" + std::to_string(i) + "] must be finite and > 0");
    }
  }
  return AgglomerateFlat(f, weights, linkage, options);
}

std::vector<int> CutAtDistance(const Dendrogram& d, double threshold) {
  return ApplyMerges(d, MaxHeights(d), threshold);
}

std::vector<int> CutToClusters(const Dendrogram& d, size_t k) {
  const size_t n = d.points;
  if (k == 0) k = 1;
  const std::vector<double> mh = MaxHeights(d);
  if (k >= n) return ApplyMerges(d, mh, -std::numeric_limits<double>::infinity());
  // At least n-k merges applied: the (n-k)-th smallest subtree height is the threshold.
  std::vector<double> sorted = mh;
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(n - k - 1),
                   sorted.end());
  return ApplyMerges(d, mh, sorted[n - k - 1]);
}

Result<std::vector<int>> TwoStageClusters(const std::vector<std::vector<float>>& points,
                                          Linkage linkage, size_t groups, size_t k, uint64_t seed) {
  if (groups == 0) return Status::InvalidArgument("two-stage clustering needs groups >= 1");
  if (k == 0) return Status::InvalidArgument("two-stage clustering needs k >= 1");
  if (groups >= points.size()) {
    DYNSPEC_ASSIGN_OR_RETURN(Dendrogram d, Agglomerate(points, linkage));
    return CutToClusters(d, k);
  }
  const int g = static_cast<int>(std::min<size_t>(groups, std::numeric_limits<int>::max()));
  DYNSPEC_RETURN_IF_ERROR(ValidatePoints(points));
  DYNSPEC_ASSIGN_OR_RETURN(KMeansResult km, EuclideanKMeans(points, g, kTwoStageIterations, seed));
  const size_t dim = points[0].size();
  // Group means and sizes from the final assignment; empty groups are left out.
  const size_t kk = km.centroids.size();
  std::vector<std::vector<double>> sums(kk, std::vector<double>(dim, 0.0));
  std::vector<size_t> counts(kk, 0);
  for (size_t i = 0; i < points.size(); ++i) {
    const size_t c = static_cast<size_t>(km.assignment[i]);
    for (size_t j = 0; j < dim; ++j) sums[c][j] += points[i][j];
    counts[c]++;
  }
  std::vector<std::vector<float>> centres;
  std::vector<double> weights;
  std::vector<size_t> slot(kk, kNone);
  for (size_t c = 0; c < kk; ++c) {
    if (counts[c] == 0) continue;
    slot[c] = centres.size();
    std::vector<float> mean(dim);
    for (size_t j = 0; j < dim; ++j) mean[j] = static_cast<float>(sums[c][j] / double(counts[c]));
    centres.push_back(std::move(mean));
    weights.push_back(double(counts[c]));
  }
  DYNSPEC_ASSIGN_OR_RETURN(Dendrogram d, AgglomerateWeighted(centres, weights, linkage));
  const std::vector<int> centre_labels = CutToClusters(d, k);
  std::vector<int> labels(points.size());
  std::unordered_map<int, int> names;
  for (size_t i = 0; i < points.size(); ++i) {
    const int l = centre_labels[slot[static_cast<size_t>(km.assignment[i])]];
    labels[i] = names.emplace(l, static_cast<int>(names.size())).first->second;
  }
  return labels;
}

double AdjustedRandIndex(const std::vector<int>& a, const std::vector<int>& b) {
  if (a.size() != b.size()) return std::numeric_limits<double>::quiet_NaN();
  const size_t n = a.size();
  if (n < 2) return 1.0;
  auto dense = [](const std::vector<int>& v, size_t& m) {
    std::unordered_map<int, size_t> names;
    std::vector<size_t> out(v.size());
    for (size_t i = 0; i < v.size(); ++i) out[i] = names.emplace(v[i], names.size()).first->second;
    m = names.size();
    return out;
  };
  size_t ma = 0, mb = 0;
  const std::vector<size_t> da = dense(a, ma), db = dense(b, mb);
  std::vector<double> rows(ma, 0), cols(mb, 0);
  std::unordered_map<uint64_t, double> cells;
  for (size_t i = 0; i < n; ++i) {
    rows[da[i]]++;
    cols[db[i]]++;
    cells[uint64_t(da[i]) * mb + db[i]]++;
  }
  double index = 0, sa = 0, sb = 0;
  for (const auto& [key, c] : cells) index += Pairs(c);
  for (double r : rows) sa += Pairs(r);
  for (double c : cols) sb += Pairs(c);
  const double expected = sa * sb / Pairs(double(n));
  const double max_index = 0.5 * (sa + sb);
  if (max_index == expected) return 1.0;  // both partitions trivial (and so identical)
  return (index - expected) / (max_index - expected);
}

}  // namespace dynspec
