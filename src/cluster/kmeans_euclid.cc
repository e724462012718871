#include "cluster/kmeans_euclid.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>

#include "common/target_clones.h"
#include "common/vector_math.h"

namespace dynspec {

namespace {

// out[i] += (row[i] - c)^2 for i < n. Written in blocks of 8 so that GCC vectorizes it at
// -O2 (whose cost model does not vectorize loops that need a scalar epilogue).
inline void AddSquaredDiff(const float* __restrict row, float c, float* __restrict out, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (size_t u = 0; u < 8; ++u) {
      const float diff = row[i + u] - c;
      out[i + u] += diff * diff;
    }
  }
  for (; i < n; ++i) {
    const float diff = row[i] - c;
    out[i] += diff * diff;
  }
}

// Seeding step of k-means++: nearest[i] = min(nearest[i], |x_i - centre|^2) for every point,
// over the transposed points (`xt`, d rows of n), a chunk of points at a time so the partial
// distances stay in L1; chunk_sum[b] receives the sum of `nearest` over chunk b. Returns the
// total.
constexpr size_t kSeedChunk = 256;
DYNSPEC_AVX2_CLONE double UpdateNearest(const std::vector<float>& xt, size_t n, size_t dim,
                                        const float* centre, std::vector<float>& nearest,
                                        std::vector<double>& chunk_sum) {
  float acc[kSeedChunk];
  double total = 0;
  for (size_t b = 0, i0 = 0; i0 < n; ++b, i0 += kSeedChunk) {
    const size_t m = std::min(kSeedChunk, n - i0);
    std::fill(acc, acc + m, 0.0f);
    for (size_t j = 0; j < dim; ++j) AddSquaredDiff(xt.data() + j * n + i0, centre[j], acc, m);
    float part[8] = {};
    float* near = nearest.data() + i0;
    size_t i = 0;
    for (; i + 8 <= m; i += 8) {
      for (size_t u = 0; u < 8; ++u) {
        const float v = acc[i + u] < near[i + u] ? acc[i + u] : near[i + u];
        near[i + u] = v;
        part[u] += v;
      }
    }
    for (; i < m; ++i) {
      near[i] = std::min(near[i], acc[i]);
      part[0] += near[i];
    }
    double cs = 0;
    for (float v : part) cs += v;
    chunk_sum[b] = cs;
    total += cs;
  }
  return total;
}

// The smallest of v[0..n) (+inf when n == 0), in blocks of 8 so that GCC vectorizes it.
inline float MinOf(const float* v, size_t n) {
  float part[8];
  std::fill(part, part + 8, std::numeric_limits<float>::infinity());
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (size_t u = 0; u < 8; ++u) part[u] = v[i + u] < part[u] ? v[i + u] : part[u];
  }
  for (; i < n; ++i) part[0] = std::min(part[0], v[i]);
  return *std::min_element(part, part + 8);
}

// Squared distances from 4 points to all centres, the centres transposed in `ct` (d rows of
// kpad, kpad a multiple of 8): out row p (of kpad) for point xs[p]. Register-blocked, 4
// points by 8 centres, so each centre coordinate loaded serves 4 points.
DYNSPEC_AVX2_CLONE void Distances4(const float* const xs[4], const float* __restrict ct,
                                   size_t kpad, size_t dim, float* __restrict out) {
  for (size_t c0 = 0; c0 < kpad; c0 += 8) {
    float a0[8] = {}, a1[8] = {}, a2[8] = {}, a3[8] = {};
    for (size_t j = 0; j < dim; ++j) {
      const float* cj = ct + j * kpad + c0;
      const float v0 = xs[0][j], v1 = xs[1][j], v2 = xs[2][j], v3 = xs[3][j];
      for (size_t u = 0; u < 8; ++u) {
        const float c = cj[u];
        const float d0 = v0 - c, d1 = v1 - c, d2 = v2 - c, d3 = v3 - c;
        a0[u] += d0 * d0;
        a1[u] += d1 * d1;
        a2[u] += d2 * d2;
        a3[u] += d3 * d3;
      }
    }
    for (size_t u = 0; u < 8; ++u) {
      out[c0 + u] = a0[u];
      out[kpad + c0 + u] = a1[u];
      out[2 * kpad + c0 + u] = a2[u];
      out[3 * kpad + c0 + u] = a3[u];
    }
  }
}

}  // namespace

Result<KMeansResult> EuclideanKMeans(const std::vector<std::vector<float>>& points, int k,
                                     int max_iterations, uint64_t seed) {
  if (points.empty()) return Status::InvalidArgument("k-means needs at least one point");
  if (k < 1) return Status::InvalidArgument("k-means needs k >= 1");
  const size_t dim = points[0].size();
  for (size_t i = 0; i < points.size(); ++i) {
    if (points[i].empty()) {
      return Status::InvalidArgument("k-means point " + std::to_string(i) + " has dimension 0");
    }
    if (points[i].size() != dim) {
      return Status::InvalidArgument("k-means point " + std::to_string(i) + " has dimension " +
                                     std::to_string(points[i].size()) + ", expected " +
                                     std::to_string(dim));
    }
    DYNSPEC_RETURN_IF_ERROR(CheckFinite(points[i], "k-means point " + std::to_string(i)));
  }
  const size_t n = points.size();
  const size_t kk = std::min<size_t>(static_cast<size_t>(k), n);

  // Points flat (row-major) and transposed.
  std::vector<float> x(n * dim), xt(n * dim);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < dim; ++j) {
      x[i * dim + j] = points[i][j];
      xt[j * n + i] = points[i][j];
    }
  }

  std::mt19937_64 rng(seed);
  std::vector<float> centres;  // kk rows of dim
  centres.reserve(kk * dim);
  auto add_centre = [&](size_t i) {
    centres.insert(centres.end(), x.begin() + i * dim, x.begin() + (i + 1) * dim);
  };

  // k-means++ seeding. The draw first picks a chunk by its sum, then a point in it.
  std::vector<float> nearest(n, std::numeric_limits<float>::infinity());
  std::vector<double> chunk_sum((n + kSeedChunk - 1) / kSeedChunk);
  add_centre(std::uniform_int_distribution<size_t>(0, n - 1)(rng));
  while (centres.size() / dim < kk) {
    const double total =
        UpdateNearest(xt, n, dim, centres.data() + centres.size() - dim, nearest, chunk_sum);
    size_t pick = 0;
    if (!(total > 0)) {  // fewer distinct points than k: any point will do
      pick = std::uniform_int_distribution<size_t>(0, n - 1)(rng);
    } else {
      double u = std::uniform_real_distribution<double>(0, total)(rng);
      size_t b = 0;
      while (b + 1 < chunk_sum.size() && (chunk_sum[b] <= 0 || u >= chunk_sum[b])) {
        if (chunk_sum[b] > 0) u -= chunk_sum[b];
        ++b;
      }
      while (chunk_sum[b] <= 0 && b > 0) --b;  // rounding ran past the last candidate
      const size_t i0 = b * kSeedChunk, i1 = std::min(n, i0 + kSeedChunk);
      for (pick = i0; pick + 1 < i1; ++pick) {
        if (nearest[pick] > 0 && (u -= nearest[pick]) < 0) break;
      }
      while (nearest[pick] <= 0 && pick > i0) --pick;
    }
    add_centre(pick);
  }

  // Lloyd iterations, accelerated with Hamerly's bounds (Hamerly 2010, "Making k-means even
  // faster"): each point keeps an upper bound u on the distance to its own centre and a
  // lower bound l on the distance to every other centre. A point whose u is at most
  // max(l, half the distance from its centre to the nearest other centre) cannot change
  // group and is skipped; otherwise u is made exact and, if that does not settle it, all
  // centres are scanned. When centres move by p, u grows by its centre's p and l shrinks by
  // the largest p. The assignments are those of plain Lloyd iterations (up to exact ties
  // and float rounding at the bounds).
  KMeansResult r;
  r.assignment.assign(n, -1);
  const size_t kpad = (kk + 7) / 8 * 8;  // centre columns; the padding ones are never chosen
  std::vector<float> ct(dim * kpad, 0.0f), dist(4 * kpad), upper(n), lower(n), half_gap(kk),
      moved_by(kk);
  std::vector<double> sums(kk * dim);
  std::vector<size_t> counts(kk);
  auto transpose_centres = [&] {
    for (size_t c = 0; c < kk; ++c) {
      for (size_t j = 0; j < dim; ++j) ct[j * kpad + c] = centres[c * dim + j];
    }
  };
  // Full scans of the listed points, 4 at a time: nearest centre (lowest index on ties) and
  // both bounds exact. Returns whether any point changed group.
  auto assign_full = [&](const std::vector<size_t>& which) {
    bool changed = false;
    for (size_t b = 0; b < which.size(); b += 4) {
      const size_t m = std::min<size_t>(4, which.size() - b);
      const float* xs[4];
      for (size_t p = 0; p < 4; ++p) xs[p] = x.data() + which[b + std::min(p, m - 1)] * dim;
      Distances4(xs, ct.data(), kpad, dim, dist.data());
      for (size_t p = 0; p < m; ++p) {
        float* dp = dist.data() + p * kpad;
        // Branch-free: the smallest value, its first index, then the smallest of the rest.
        const float d1 = MinOf(dp, kk);
        const size_t best = static_cast<size_t>(std::find(dp, dp + kk, d1) - dp);
        dp[best] = std::numeric_limits<float>::infinity();
        const float d2 = MinOf(dp, kk);
        const size_t i = which[b + p];
        upper[i] = std::sqrt(d1);
        lower[i] = std::sqrt(d2);
        changed |= static_cast<int>(best) != r.assignment[i];
        r.assignment[i] = static_cast<int>(best);
      }
    }
    return changed;
  };
  auto distance_to = [&](size_t i, size_t c) {
    float s2 = 0;
    for (size_t j = 0; j < dim; ++j) {
      const float diff = x[i * dim + j] - centres[c * dim + j];
      s2 += diff * diff;
    }
    return std::sqrt(s2);
  };

  transpose_centres();
  std::vector<size_t> todo(n);
  std::iota(todo.begin(), todo.end(), 0);
  bool moved = assign_full(todo);
  r.iterations = 1;
  for (int it = 1; it < max_iterations && moved; ++it) {
    // Update: centres become the means of their groups; an empty group takes the point with
    // the largest distance bound to its own centre.
    std::fill(sums.begin(), sums.end(), 0.0);
    std::fill(counts.begin(), counts.end(), 0);
    for (size_t i = 0; i < n; ++i) {
      const size_t c = static_cast<size_t>(r.assignment[i]);
      for (size_t j = 0; j < dim; ++j) sums[c * dim + j] += x[i * dim + j];
      counts[c]++;
    }
    std::vector<float> old = centres;
    std::vector<bool> taken(n, false);
    for (size_t c = 0; c < kk; ++c) {
      if (counts[c] == 0) {
        size_t worst = 0;
        float worst_u = -1;
        for (size_t i = 0; i < n; ++i) {
          if (!taken[i] && upper[i] > worst_u) {
            worst_u = upper[i];
            worst = i;
          }
        }
        taken[worst] = true;
        std::copy(x.begin() + worst * dim, x.begin() + (worst + 1) * dim,
                  centres.begin() + c * dim);
      } else {
        for (size_t j = 0; j < dim; ++j) {
          centres[c * dim + j] = static_cast<float>(sums[c * dim + j] / double(counts[c]));
        }
      }
    }
    // Bounds follow the centres' moves.
    size_t far = 0;
    float p1 = 0, p2 = 0;  // largest and second largest move
    for (size_t c = 0; c < kk; ++c) {
      moved_by[c] = 0;
      for (size_t j = 0; j < dim; ++j) {
        const float diff = centres[c * dim + j] - old[c * dim + j];
        moved_by[c] += diff * diff;
      }
      moved_by[c] = std::sqrt(moved_by[c]);
      if (moved_by[c] > p1) {
        p2 = p1;
        p1 = moved_by[c];
        far = c;
      } else if (moved_by[c] > p2) {
        p2 = moved_by[c];
      }
    }
    for (size_t i = 0; i < n; ++i) {
      const size_t a = static_cast<size_t>(r.assignment[i]);
      upper[i] += moved_by[a];
      lower[i] -= a == far ? p2 : p1;
    }
    // Half the distance from each centre to its nearest other centre.
    transpose_centres();
    std::fill(half_gap.begin(), half_gap.end(), std::numeric_limits<float>::infinity());
    for (size_t c = 0; c < kk; c += 4) {
      const float* xs[4];
      for (size_t p = 0; p < 4; ++p) xs[p] = centres.data() + std::min(c + p, kk - 1) * dim;
      Distances4(xs, ct.data(), kpad, dim, dist.data());
      for (size_t p = 0; p < 4 && c + p < kk; ++p) {
        for (size_t o = 0; o < kk; ++o) {
          if (o != c + p) half_gap[c + p] = std::min(half_gap[c + p], dist[p * kpad + o]);
        }
      }
    }
    for (float& g : half_gap) g = 0.5f * std::sqrt(g);
    // Assignment with the bounds; the points they do not settle get a full scan.
    todo.clear();
    for (size_t i = 0; i < n; ++i) {
      const size_t a = static_cast<size_t>(r.assignment[i]);
      const float bound = std::max(half_gap[a], lower[i]);
      if (upper[i] <= bound) continue;
      upper[i] = distance_to(i, a);
      if (upper[i] <= bound) continue;
      todo.push_back(i);
    }
    moved = assign_full(todo);
    r.iterations = it + 1;
  }
  if (moved) {  // stopped by the iteration limit: centres become the means of their groups
    std::fill(sums.begin(), sums.end(), 0.0);
    std::fill(counts.begin(), counts.end(), 0);
    for (size_t i = 0; i < n; ++i) {
      const size_t c = static_cast<size_t>(r.assignment[i]);
      for (size_t j = 0; j < dim; ++j) sums[c * dim + j] += x[i * dim + j];
      counts[c]++;
    }
    for (size_t c = 0; c < kk; ++c) {
      for (size_t j = 0; j < dim && counts[c] > 0; ++j) {
        centres[c * dim + j] = static_cast<float>(sums[c * dim + j] / double(counts[c]));
      }
    }
  }
  r.centroids.resize(kk);
  for (size_t c = 0; c < kk; ++c) {
    r.centroids[c].assign(centres.begin() + c * dim, centres.begin() + (c + 1) * dim);
  }
  return r;
}

}  // namespace dynspec
