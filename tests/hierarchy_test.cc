// Hierarchical clustering (src/cluster/hierarchical.h) against SciPy's reference outputs
// (tests/data/hierarchy, made by tests/data/make_hierarchy_reference.py), plus the adjusted
// Rand index, the cuts, the two-stage clustering and the error paths.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cluster/hierarchical.h"
#include "cluster/kmeans_euclid.h"

namespace dynspec {
namespace {

const std::string kRefDir = std::string(DYNSPEC_DATA_DIR) + "/../tests/data/hierarchy/";

std::vector<std::vector<float>> ReadPoints(const std::string& name) {
  std::ifstream in(kRefDir + name + ".points");
  EXPECT_TRUE(in.good()) << "missing " << kRefDir << name << ".points";
  size_t n = 0, d = 0;
  in >> n >> d;
  std::vector<std::vector<float>> points(n, std::vector<float>(d));
  for (auto& p : points) {
    for (float& v : p) in >> v;
  }
  EXPECT_FALSE(in.fail()) << name;
  return points;
}

Dendrogram ReadLinkage(const std::string& name, const std::string& method, size_t n) {
  std::ifstream in(kRefDir + name + "." + method + ".linkage");
  EXPECT_TRUE(in.good()) << name << "." << method;
  Dendrogram d;
  d.points = n;
  Merge m;
  while (in >> m.a >> m.b >> m.distance >> m.size) d.merges.push_back(m);
  EXPECT_EQ(d.merges.size() + 1, n) << name << "." << method;
  return d;
}

struct FlatRef {
  std::string criterion;  // "maxclust" or "distance"
  double param = 0;
  std::vector<int> labels;
};

std::vector<FlatRef> ReadFcluster(const std::string& name, const std::string& method) {
  std::ifstream in(kRefDir + name + "." + method + ".fcluster");
  EXPECT_TRUE(in.good()) << name << "." << method;
  std::vector<FlatRef> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::istringstream ls(line);
    FlatRef f;
    ls >> f.criterion >> f.param;
    int l = 0;
    while (ls >> l) f.labels.push_back(l);
    out.push_back(std::move(f));
  }
  return out;
}

// Checks the SciPy linkage-matrix invariants: n-1 merges, a < b, both ids already made and
// each used once, sizes add up, distances sorted.
void ExpectWellFormed(const Dendrogram& d) {
  const size_t n = d.points;
  ASSERT_EQ(d.merges.size() + 1, std::max<size_t>(n, 1));
  std::vector<size_t> size(n, 1);
  std::vector<bool> used(n + d.merges.size(), false);
  for (size_t i = 0; i < d.merges.size(); ++i) {
    const Merge& m = d.merges[i];
    ASSERT_LT(m.a, m.b) << "merge " << i;
    ASSERT_LT(m.b, n + i) << "merge " << i;
    ASSERT_FALSE(used[m.a]) << "merge " << i;
    ASSERT_FALSE(used[m.b]) << "merge " << i;
    used[m.a] = used[m.b] = true;
    ASSERT_EQ(m.size, size[m.a] + size[m.b]) << "merge " << i;
    size.push_back(m.size);
    if (i > 0) {
      ASSERT_LE(d.merges[i - 1].distance, m.distance) << "merge " << i;
    }
  }
}

// The clusters a dendrogram creates, as sorted member lists, with the height of each.
//
// Why this comparison: SciPy numbers clusters by its own merge order (and orders a and b by
// id), so ids are not comparable across implementations. A dendrogram, however, is exactly
// the set of clusters it forms plus the height at which each forms (this also fixes its
// cophenetic distances). Two dendrograms are the same tree when these sets are equal, and
// have the same heights when the heights of corresponding clusters agree.
std::map<std::vector<size_t>, double> ClusterSets(const Dendrogram& d) {
  std::vector<std::vector<size_t>> members(d.points);
  for (size_t i = 0; i < d.points; ++i) members[i] = {i};
  std::map<std::vector<size_t>, double> out;
  for (const Merge& m : d.merges) {
    std::vector<size_t> u;
    std::merge(members[m.a].begin(), members[m.a].end(), members[m.b].begin(), members[m.b].end(),
               std::back_inserter(u));
    out[u] = m.distance;
    members.push_back(std::move(u));
  }
  return out;
}

// Same tree, same heights (relative tolerance), same sizes.
void ExpectSameDendrogram(const Dendrogram& ours, const Dendrogram& ref, double rel_tol) {
  ASSERT_EQ(ours.points, ref.points);
  ASSERT_EQ(ours.merges.size(), ref.merges.size());
  for (size_t i = 0; i < ours.merges.size(); ++i) {
    const double r = ref.merges[i].distance;
    EXPECT_NEAR(ours.merges[i].distance, r, rel_tol * std::max(std::abs(r), 1e-12))
        << "height of merge " << i;
    EXPECT_EQ(ours.merges[i].size, ref.merges[i].size) << "size of merge " << i;
  }
  const auto a = ClusterSets(ours), b = ClusterSets(ref);
  ASSERT_EQ(a.size(), b.size());
  size_t missing = 0;
  for (const auto& [members, h] : b) {
    auto it = a.find(members);
    if (it == a.end()) {
      ++missing;
      continue;
    }
    EXPECT_NEAR(it->second, h, rel_tol * std::max(std::abs(h), 1e-12));
  }
  EXPECT_EQ(missing, 0u) << "clusters SciPy forms that ours does not";
}

size_t CountLabels(const std::vector<int>& labels) {
  return std::set<int>(labels.begin(), labels.end()).size();
}

// Labels 0..m-1 in order of first appearance.
void ExpectFirstAppearanceOrder(const std::vector<int>& labels) {
  int next = 0;
  for (int l : labels) {
    ASSERT_LE(l, next);
    if (l == next) ++next;
  }
}

struct RefCase {
  std::string data;
  Linkage linkage;
};

void PrintTo(const RefCase& c, std::ostream* os) { *os << c.data << "/" << LinkageName(c.linkage); }

class ScipyReferenceTest : public ::testing::TestWithParam<RefCase> {};

TEST_P(ScipyReferenceTest, MatchesLinkageAndFcluster) {
  const RefCase& c = GetParam();
  const std::string method = LinkageName(c.linkage);
  const auto points = ReadPoints(c.data);
  const size_t n = points.size();
  ASSERT_GT(n, 0u);
  const Dendrogram ref = ReadLinkage(c.data, method, n);

  auto got = Agglomerate(points, c.linkage);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectWellFormed(*got);
  ExpectSameDendrogram(*got, ref, 1e-5);
  // The double matrix and double distances agree with SciPy far beyond the 1e-5 asked for.
  for (size_t i = 0; i < ref.merges.size(); ++i) {
    EXPECT_NEAR(got->merges[i].distance, ref.merges[i].distance,
                1e-12 * std::max(1.0, ref.merges[i].distance));
  }

  for (const FlatRef& f : ReadFcluster(c.data, method)) {
    SCOPED_TRACE(f.criterion + " " + std::to_string(f.param));
    ASSERT_EQ(f.labels.size(), n);
    std::vector<int> ours;
    if (f.criterion == "maxclust") {
      const size_t k = static_cast<size_t>(f.param);
      ours = CutToClusters(*got, k);
      // Without ties exactly min(k, n) clusters.
      EXPECT_EQ(CountLabels(ours), std::min(k, n));
      if (k + 2 > n) {
        // SciPy 1.10's maxclust never returns more than n-2 clusters, so here it does not
        // use the smallest threshold its documentation describes; ours does. Its answer
        // must still be a coarsening of ours (one of our cuts at a larger threshold).
        EXPECT_LE(CountLabels(f.labels), k);
        continue;
      }
    } else {
      ASSERT_EQ(f.criterion, "distance");
      ours = CutAtDistance(*got, f.param);
    }
    ExpectFirstAppearanceOrder(ours);
    EXPECT_EQ(CountLabels(ours), CountLabels(f.labels));
    EXPECT_DOUBLE_EQ(AdjustedRandIndex(ours, f.labels), 1.0);
    // The cuts of SciPy's own dendrogram agree too (tests the cuts independently).
    const std::vector<int> on_ref = f.criterion == "maxclust"
                                        ? CutToClusters(ref, static_cast<size_t>(f.param))
                                        : CutAtDistance(ref, f.param);
    EXPECT_DOUBLE_EQ(AdjustedRandIndex(on_ref, f.labels), 1.0);
  }
}

TEST_P(ScipyReferenceTest, FloatMatrixMatchesToFloatPrecision) {
  const RefCase& c = GetParam();
  const auto points = ReadPoints(c.data);
  const size_t n = points.size();
  const size_t pairs = n * (n - 1) / 2;
  AgglomerateOptions options;
  if (c.linkage == Linkage::kSingle) {  // keeps no matrix: any budget will do
    options.max_matrix_bytes = 0;
    auto got = Agglomerate(points, c.linkage, options);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ExpectSameDendrogram(*got, ReadLinkage(c.data, LinkageName(c.linkage), n), 1e-12);
    return;
  }
  options.max_matrix_bytes = pairs * sizeof(float);  // too small for doubles
  auto got = Agglomerate(points, c.linkage, options);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectWellFormed(*got);
  ExpectSameDendrogram(*got, ReadLinkage(c.data, LinkageName(c.linkage), n), 1e-5);

  options.max_matrix_bytes = pairs * sizeof(float) - 1;
  auto refused = Agglomerate(points, c.linkage, options);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("TwoStageClusters"), std::string::npos);
}

std::vector<RefCase> AllCases() {
  std::vector<RefCase> cases;
  for (const char* data : {"blobs2d", "blobs8d", "uniform16d", "line1d", "tiny3d"}) {
    for (Linkage l : {Linkage::kSingle, Linkage::kComplete, Linkage::kAverage}) {
      cases.push_back({data, l});
    }
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Scipy, ScipyReferenceTest, ::testing::ValuesIn(AllCases()),
                         [](const ::testing::TestParamInfo<RefCase>& info) {
                           return info.param.data + "_" + LinkageName(info.param.linkage);
                         });

TEST(AdjustedRandIndexTest, KnownValues) {
  const std::vector<int> a = {0, 0, 0, 1, 1, 1};
  EXPECT_DOUBLE_EQ(AdjustedRandIndex(a, a), 1.0);
  EXPECT_DOUBLE_EQ(AdjustedRandIndex(a, {7, 7, 7, -2, -2, -2}), 1.0);  // label names ignored
  // Hand computed: contingency {{2,1,0},{0,1,2}}: sum C(n_ij,2) = 2, rows 3+3 -> 6 pairs,
  // columns 1+1+1 -> 3 pairs, C(6,2) = 15; expected 6*3/15 = 1.2, max (6+3)/2 = 4.5;
  // ARI = (2 - 1.2) / (4.5 - 1.2) = 8/33.
  EXPECT_NEAR(AdjustedRandIndex(a, {0, 0, 1, 1, 2, 2}), 8.0 / 33.0, 1e-15);
  // {0,0,1,1} vs {0,0,1,2}: index 1, rows 2, columns 1, C(4,2)=6: (1-1/3)/(1.5-1/3) = 4/7.
  EXPECT_NEAR(AdjustedRandIndex({0, 0, 1, 1}, {0, 0, 1, 2}), 4.0 / 7.0, 1e-15);
  // Crossed partitions are below chance: (0 - 2/3) / (2 - 2/3) = -1/2.
  EXPECT_NEAR(AdjustedRandIndex({0, 0, 1, 1}, {0, 1, 0, 1}), -0.5, 1e-15);
  // Symmetric.
  EXPECT_DOUBLE_EQ(AdjustedRandIndex({0, 0, 1, 2, 2}, {1, 0, 0, 0, 2}),
                   AdjustedRandIndex({1, 0, 0, 0, 2}, {0, 0, 1, 2, 2}));
  // Trivial partitions.
  EXPECT_DOUBLE_EQ(AdjustedRandIndex({0, 0, 0}, {5, 5, 5}), 1.0);
  EXPECT_DOUBLE_EQ(AdjustedRandIndex({0, 1, 2}, {2, 0, 1}), 1.0);
  EXPECT_DOUBLE_EQ(AdjustedRandIndex({}, {}), 1.0);
  EXPECT_DOUBLE_EQ(AdjustedRandIndex({3}, {4}), 1.0);
  EXPECT_TRUE(std::isnan(AdjustedRandIndex({0, 1}, {0})));
  // Independent random labelings score about 0.
  std::mt19937 rng(5);
  std::vector<int> x(20000), y(20000);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = static_cast<int>(rng() % 5);
    y[i] = static_cast<int>(rng() % 7);
  }
  EXPECT_NEAR(AdjustedRandIndex(x, y), 0.0, 0.01);
}

// 0 and 1 at 1.0, 2 joins at 2.0, 3 joins at 5.0 (hand-made, SciPy format).
Dendrogram HandMade() {
  Dendrogram d;
  d.points = 4;
  d.merges = {{0, 1, 1.0, 2}, {2, 4, 2.0, 3}, {3, 5, 5.0, 4}};
  return d;
}

TEST(CutTest, ThresholdsAndCounts) {
  const Dendrogram d = HandMade();
  EXPECT_EQ(CutAtDistance(d, 0.5), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(CutAtDistance(d, 1.0), (std::vector<int>{0, 0, 1, 2}));  // <= t applies
  EXPECT_EQ(CutAtDistance(d, 4.9), (std::vector<int>{0, 0, 0, 1}));
  EXPECT_EQ(CutAtDistance(d, 5.0), (std::vector<int>{0, 0, 0, 0}));
  EXPECT_EQ(CutToClusters(d, 0), (std::vector<int>{0, 0, 0, 0}));  // 0 treated as 1
  EXPECT_EQ(CutToClusters(d, 1), (std::vector<int>{0, 0, 0, 0}));
  EXPECT_EQ(CutToClusters(d, 2), (std::vector<int>{0, 0, 0, 1}));
  EXPECT_EQ(CutToClusters(d, 3), (std::vector<int>{0, 0, 1, 2}));
  EXPECT_EQ(CutToClusters(d, 4), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(CutToClusters(d, 100), (std::vector<int>{0, 1, 2, 3}));
  // Tied heights: "at most k" can give fewer.
  Dendrogram tied = d;
  tied.merges[1].distance = 1.0;
  EXPECT_EQ(CutToClusters(tied, 3), (std::vector<int>{0, 0, 0, 1}));
  // Labels follow first appearance, not cluster ids.
  Dendrogram other;
  other.points = 3;
  other.merges = {{0, 2, 1.0, 2}, {1, 3, 3.0, 3}};
  EXPECT_EQ(CutToClusters(other, 2), (std::vector<int>{0, 1, 0}));
  // Empty and one-point dendrograms.
  EXPECT_TRUE(CutToClusters(Dendrogram{}, 3).empty());
  EXPECT_EQ(CutAtDistance(Dendrogram{1, {}}, 1.0), (std::vector<int>{0}));
}

TEST(AgglomerateTest, SmallCasesAndTies) {
  for (Linkage l : {Linkage::kSingle, Linkage::kComplete, Linkage::kAverage}) {
    SCOPED_TRACE(LinkageName(l));
    auto one = Agglomerate({{1.0f, 2.0f}}, l);
    ASSERT_TRUE(one.ok());
    EXPECT_EQ(one->points, 1u);
    EXPECT_TRUE(one->merges.empty());
    EXPECT_EQ(CutToClusters(*one, 1), (std::vector<int>{0}));

    auto two = Agglomerate({{0.0f, 0.0f}, {3.0f, 4.0f}}, l);
    ASSERT_TRUE(two.ok());
    ASSERT_EQ(two->merges.size(), 1u);
    EXPECT_EQ(two->merges[0].a, 0u);
    EXPECT_EQ(two->merges[0].b, 1u);
    EXPECT_DOUBLE_EQ(two->merges[0].distance, 5.0);
    EXPECT_EQ(two->merges[0].size, 2u);

    // Unit square plus duplicates: exact ties everywhere. Any valid tree, deterministic.
    const std::vector<std::vector<float>> square = {{0, 0}, {1, 0}, {0, 1}, {1, 1}, {0, 0}};
    auto s1 = Agglomerate(square, l);
    auto s2 = Agglomerate(square, l);
    ASSERT_TRUE(s1.ok());
    ExpectWellFormed(*s1);
    EXPECT_DOUBLE_EQ(s1->merges[0].distance, 0.0);
    EXPECT_DOUBLE_EQ(s1->merges[1].distance, 1.0);
    for (size_t i = 0; i < s1->merges.size(); ++i) {
      EXPECT_EQ(s1->merges[i].a, s2->merges[i].a);
      EXPECT_EQ(s1->merges[i].b, s2->merges[i].b);
    }
    const double top = s1->merges.back().distance;
    if (l == Linkage::kSingle) {
      EXPECT_DOUBLE_EQ(top, 1.0);
    } else if (l == Linkage::kComplete) {
      EXPECT_DOUBLE_EQ(top, std::sqrt(2.0));
    }
  }
}

// Average linkage with integer weights equals average linkage of the points repeated that
// many times (the copies merge first, at distance 0).
TEST(AgglomerateTest, WeightedAverageEqualsRepeatedPoints) {
  std::mt19937 rng(11);
  std::normal_distribution<float> g(0, 1);
  std::vector<std::vector<float>> points(25, std::vector<float>(3));
  for (auto& p : points) {
    for (float& v : p) v = g(rng);
  }
  std::vector<double> weights(points.size());
  std::vector<std::vector<float>> repeated;
  for (size_t i = 0; i < points.size(); ++i) {
    weights[i] = double(1 + rng() % 4);
    for (int c = 0; c < weights[i]; ++c) repeated.push_back(points[i]);
  }
  auto w = AgglomerateWeighted(points, weights, Linkage::kAverage);
  auto r = Agglomerate(repeated, Linkage::kAverage);
  ASSERT_TRUE(w.ok() && r.ok());
  ExpectWellFormed(*w);
  std::vector<double> hw, hr;
  for (const Merge& m : w->merges) hw.push_back(m.distance);
  for (const Merge& m : r->merges) {
    if (m.distance > 0) hr.push_back(m.distance);
  }
  ASSERT_EQ(hw.size(), hr.size());
  for (size_t i = 0; i < hw.size(); ++i) EXPECT_NEAR(hw[i], hr[i], 1e-9 * hr[i]);
  // Unweighted result differs (the weights matter for average linkage) ...
  auto u = Agglomerate(points, Linkage::kAverage);
  ASSERT_TRUE(u.ok());
  bool differs = false;
  for (size_t i = 0; i < hw.size(); ++i) differs |= std::abs(u->merges[i].distance - hw[i]) > 1e-9;
  EXPECT_TRUE(differs);
  // ... and not for complete linkage.
  auto wc = AgglomerateWeighted(points, weights, Linkage::kComplete);
  auto uc = Agglomerate(points, Linkage::kComplete);
  ASSERT_TRUE(wc.ok() && uc.ok());
  for (size_t i = 0; i < hw.size(); ++i) {
    EXPECT_DOUBLE_EQ(wc->merges[i].distance, uc->merges[i].distance);
  }
}

TEST(AgglomerateTest, ErrorsNameThePoint) {
  for (Linkage l : {Linkage::kSingle, Linkage::kComplete, Linkage::kAverage}) {
    auto empty = Agglomerate({}, l);
    ASSERT_FALSE(empty.ok());
    EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);

    auto ragged = Agglomerate({{0, 0}, {1, 1}, {2, 2, 2}}, l);
    ASSERT_FALSE(ragged.ok());
    EXPECT_EQ(ragged.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(ragged.status().message().find("point 2"), std::string::npos)
        << ragged.status().message();

    auto zero_dim = Agglomerate({{}, {}}, l);
    ASSERT_FALSE(zero_dim.ok());
    EXPECT_NE(zero_dim.status().message().find("point 0"), std::string::npos);

    auto nan = Agglomerate({{0, 0}, {1, std::nanf("")}, {2, 2}}, l);
    ASSERT_FALSE(nan.ok());
    EXPECT_EQ(nan.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(nan.status().message().find("point 1"), std::string::npos) << nan.status().message();

    auto inf = Agglomerate({{0, 0}, {1, 1}, {2, 2}, {-INFINITY, 0}}, l);
    ASSERT_FALSE(inf.ok());
    EXPECT_NE(inf.status().message().find("point 3"), std::string::npos) << inf.status().message();
  }
  const std::vector<std::vector<float>> pts = {{0, 0}, {1, 1}, {2, 2}};
  EXPECT_FALSE(AgglomerateWeighted(pts, {1, 1}, Linkage::kAverage).ok());
  auto neg = AgglomerateWeighted(pts, {1, -1, 1}, Linkage::kAverage);
  ASSERT_FALSE(neg.ok());
  EXPECT_NE(neg.status().message().find("weights[1]"), std::string::npos);
  EXPECT_FALSE(AgglomerateWeighted(pts, {1, 1, NAN}, Linkage::kAverage).ok());

  EXPECT_EQ(TwoStageClusters(pts, Linkage::kAverage, 0, 2, 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(TwoStageClusters(pts, Linkage::kAverage, 2, 0, 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(TwoStageClusters({}, Linkage::kAverage, 2, 2, 1).status().code(),
            StatusCode::kInvalidArgument);
  auto bad = TwoStageClusters({{0, 0}, {1, 1}, {2, 2}, {1, NAN}}, Linkage::kAverage, 2, 2, 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("point 3"), std::string::npos);
  EXPECT_FALSE(EuclideanKMeans({{0, 0}, {1}}, 2, 10, 1).ok());
  EXPECT_FALSE(EuclideanKMeans(pts, 0, 10, 1).ok());

  // Over the matrix budget: refused before any large allocation.
  AgglomerateOptions tiny;
  tiny.max_matrix_bytes = 8;
  auto big = Agglomerate(pts, Linkage::kComplete, tiny);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(Agglomerate(pts, Linkage::kSingle, tiny).ok());  // single keeps no matrix
}

TEST(EuclideanKMeansTest, FindsSeparatedGroups) {
  std::vector<std::vector<float>> pts;
  for (int c = 0; c < 3; ++c) {
    for (int i = 0; i < 50; ++i) pts.push_back({100.0f * c + 0.01f * i, -50.0f * c});
  }
  auto km = EuclideanKMeans(pts, 3, 50, 7);
  ASSERT_TRUE(km.ok());
  std::vector<int> truth(pts.size());
  for (size_t i = 0; i < pts.size(); ++i) truth[i] = static_cast<int>(i / 50);
  EXPECT_DOUBLE_EQ(AdjustedRandIndex(km->assignment, truth), 1.0);
  for (const auto& c : km->centroids) EXPECT_EQ(c.size(), 2u);
  // k above n is capped; identical points do not break seeding.
  auto capped = EuclideanKMeans({{1, 1}, {1, 1}}, 5, 10, 1);
  ASSERT_TRUE(capped.ok());
  EXPECT_EQ(capped->centroids.size(), 2u);
}

// Points from `blobs` Gaussian blobs (sd 1) with centres uniform in [-10, 10]^dim.
void MakeBlobs(size_t n, size_t dim, int blobs, uint64_t seed,
               std::vector<std::vector<float>>& points, std::vector<int>& truth) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-10, 10);
  std::normal_distribution<float> g(0, 1);
  std::vector<std::vector<float>> centres(blobs, std::vector<float>(dim));
  for (auto& c : centres) {
    for (float& v : c) v = u(rng);
  }
  points.assign(n, std::vector<float>(dim));
  truth.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    truth[i] = static_cast<int>(rng() % blobs);
    for (size_t j = 0; j < dim; ++j) points[i][j] = centres[truth[i]][j] + g(rng);
  }
}

TEST(TwoStageTest, RecoversPlantedBlobs) {
  std::vector<std::vector<float>> points;
  std::vector<int> truth;
  MakeBlobs(20000, 8, 10, 42, points, truth);
  for (Linkage l : {Linkage::kAverage, Linkage::kComplete, Linkage::kSingle}) {
    SCOPED_TRACE(LinkageName(l));
    const auto t0 = std::chrono::steady_clock::now();
    auto labels = TwoStageClusters(points, l, 200, 10, 3);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_TRUE(labels.ok()) << labels.status().ToString();
    ASSERT_EQ(labels->size(), points.size());
    ExpectFirstAppearanceOrder(*labels);
    EXPECT_LE(CountLabels(*labels), 10u);
    const double ari = AdjustedRandIndex(*labels, truth);
    EXPECT_GT(ari, 0.95);
    std::printf("two-stage %s, 20000 points, 200 groups: ARI %.4f in %.2f s\n", LinkageName(l), ari,
                s);
  }
}

TEST(TwoStageTest, AsManyGroupsAsPointsIsExact) {
  const auto points = ReadPoints("blobs8d");
  auto exact = Agglomerate(points, Linkage::kAverage);
  ASSERT_TRUE(exact.ok());
  auto two = TwoStageClusters(points, Linkage::kAverage, points.size(), 5, 1);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(*two, CutToClusters(*exact, 5));
  // With a few points per group it stays close to the exact clustering on blob data.
  auto approx = TwoStageClusters(points, Linkage::kAverage, 40, 5, 1);
  ASSERT_TRUE(approx.ok());
  EXPECT_GT(AdjustedRandIndex(*approx, *two), 0.9);
}

}  // namespace
}  // namespace dynspec
