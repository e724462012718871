// Model math, learner and blending: gradients against finite differences, AdaGrad descent,
// reward, context encoding errors, and the blend-weight properties the engine relies on.
#include "model/model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>

#include "learn/reward.h"
#include "learn/supervised.h"
#include "model/blend.h"
#include "model/features.h"

namespace dynspec {
namespace {

ModelLayout Layout(int width) {
  ModelLayout l;
  l.heads = DefaultHeads();
  l.width = width;
  return l;
}

FeatureVector RandomFeatures(int width, std::mt19937& rng) {
  FeatureVector x;
  std::normal_distribution<float> n(0, 1);
  for (int i = 0; i < width; i += 2) {
    x.index.push_back(i);
    x.value.push_back(n(rng));
  }
  return x;
}

TEST(ModelMath, ScoreGradientMatchesFiniteDifferences) {
  std::mt19937 rng(1);
  const ModelLayout layout = Layout(9);
  ModelState m;
  InitModel(layout, 1e-3, &m);
  std::normal_distribution<float> n(0, 0.5);
  for (float& w : m.weights) w = n(rng);
  const FeatureVector x = RandomFeatures(9, rng);
  for (size_t h = 0; h < layout.heads.size(); ++h) {
    const HeadKind kind = layout.heads[h].kind;
    for (double target : {0.0, 1.0, 0.3}) {
      const size_t base = h * layout.width;
      for (size_t i = 0; i < x.size(); ++i) {
        const size_t j = base + x.index[i];
        auto loss_at = [&](double delta) {
          ModelState copy = m;
          copy.weights[j] += static_cast<float>(delta);
          return HeadLoss(kind, HeadOutput(kind, HeadScore(layout, copy, h, x)), target);
        };
        const double eps = 1e-3;
        const double numeric = (loss_at(eps) - loss_at(-eps)) / (2 * eps);
        const double analytic =
            HeadScoreGradient(kind, HeadScore(layout, m, h, x), target) * x.value[i];
        EXPECT_NEAR(analytic, numeric, 1e-3 * std::max(1.0, std::abs(numeric)))
            << "head " << h << " coord " << j;
      }
    }
  }
}

TEST(Learner, AdagradConvergesToTheObservedRate) {
  const ModelLayout layout = Layout(1);
  LearnOptions o;
  ModelState m;
  InitModel(layout, o.adagrad_epsilon, &m);
  FeatureVector bias{{0}, {1.0f}};
  std::mt19937 rng(3);
  std::bernoulli_distribution click(0.2);
  for (int i = 0; i < 5000; ++i) {
    SupervisedStep(o, layout, 0, click(rng) ? 1 : 0, bias, &m);
  }
  std::vector<double> out(layout.heads.size());
  PredictHeads(layout, m, bias, out);
  EXPECT_NEAR(out[0], 0.2, 0.03);
  EXPECT_EQ(m.head_counts[0], 5000);
  EXPECT_EQ(m.head_counts[1], 0);
}

TEST(Learner, RegressionHeadLearnsLog1pTarget) {
  const ModelLayout layout = Layout(1);
  LearnOptions o;
  o.learning_rate = 0.5;
  ModelState m;
  InitModel(layout, o.adagrad_epsilon, &m);
  FeatureVector bias{{0}, {1.0f}};
  auto target = HeadTarget(layout.heads[3], 30.0);
  ASSERT_TRUE(target.ok());
  for (int i = 0; i < 2000; ++i) SupervisedStep(o, layout, 3, *target, bias, &m);
  std::vector<double> out(layout.heads.size());
  PredictHeads(layout, m, bias, out);
  EXPECT_NEAR(out[3], std::log1p(30.0), 0.05);
}

TEST(Learner, TargetsAreValidated) {
  const auto heads = DefaultHeads();
  EXPECT_FALSE(HeadTarget(heads[0], 2.0).ok());
  EXPECT_FALSE(HeadTarget(heads[0], NAN).ok());
  EXPECT_FALSE(HeadTarget(heads[3], -1.0).ok());
  EXPECT_FALSE(HeadTarget(heads[3], INFINITY).ok());
  EXPECT_TRUE(HeadTarget(heads[0], 1.0).ok());
}

TEST(Reward, ObservedAndExpectedFollowTheTerms) {
  auto f = RewardFunction::Make(DefaultRewardTerms(), DefaultHeads());
  ASSERT_TRUE(f.ok());
  // 1*click + 2*like + 4*share + 0.02*min(dwell, 300)
  EXPECT_DOUBLE_EQ(f->Observed({{"click", 1}, {"share", 1}, {"dwell_seconds", 1000}}),
                   1 + 4 + 0.02 * 300);
  std::vector<double> outputs = {0.5, 0.25, 0.1, std::log1p(100.0)};
  EXPECT_NEAR(f->Expected(outputs), 0.5 + 0.5 + 0.4 + 0.02 * 100, 1e-9);
  EXPECT_FALSE(RewardFunction::Make({{"nope", 1, 0}}, DefaultHeads()).ok());
}

TEST(Features, EncodesBiasDenseAndSignedSparse) {
  ModelOptions mo;
  mo.dense_dim = 2;
  mo.sparse_dim = 16;
  FeatureEncoder enc(mo, LimitOptions());
  EXPECT_EQ(enc.width(), 19);
  Context c;
  c.dense = {0.5f, -1.0f};
  c.sparse = {{"country=us", 1.0f}};
  auto x = enc.Encode(c);
  ASSERT_TRUE(x.ok());
  ASSERT_EQ(x->size(), 4u);
  EXPECT_EQ(x->index[0], 0u);
  EXPECT_EQ(x->value[0], 1.0f);
  EXPECT_EQ(x->index[2], 2u);
  EXPECT_GE(x->index[3], 3u);
  EXPECT_LT(x->index[3], 19u);
  EXPECT_EQ(std::abs(x->value[3]), 1.0f);
  // Deterministic.
  EXPECT_EQ(enc.Encode(c)->index, x->index);
}

TEST(Features, RejectsBadContext) {
  ModelOptions mo;
  mo.dense_dim = 2;
  FeatureEncoder enc(mo, LimitOptions());
  Context wrong_dim;
  wrong_dim.dense = {1, 2, 3};
  auto r = enc.Encode(wrong_dim);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("context.dense has 3 values, expected 2"), std::string::npos);
  Context nan;
  nan.dense = {1, NAN};
  EXPECT_NE(enc.Encode(nan).status().message().find("context.dense[1]"), std::string::npos);
  Context inf;
  inf.sparse = {{"a", INFINITY}};
  EXPECT_FALSE(enc.Encode(inf).ok());
  Context empty_name;
  empty_name.sparse = {{"", 1}};
  EXPECT_FALSE(enc.Encode(empty_name).ok());
}

double Sum(const BlendWeights& w) {
  return w.self + w.cluster_prior + std::accumulate(w.neighbours.begin(), w.neighbours.end(), 0.0);
}

TEST(Blend, WeightsAreNormalizedAndFavourSimilarWellEvidencedNeighbours) {
  BlendOptions o;
  std::vector<BlendCandidate> c = {{0.95, 50}, {0.6, 50}, {0.95, 1}};
  auto w = ComputeBlendWeights(o, false, 0, c, 100);
  EXPECT_NEAR(Sum(w), 1.0, 1e-12);
  EXPECT_EQ(w.self, 0);
  EXPECT_GT(w.neighbours[0], w.neighbours[1]);  // more similar wins
  EXPECT_GT(w.neighbours[0], w.neighbours[2]);  // more evidence wins
  EXPECT_GT(w.cluster_prior, 0);
}

TEST(Blend, OwnModelDominatesAsItsEvidenceGrows) {
  BlendOptions o;
  std::vector<BlendCandidate> c = {{0.9, 100}, {0.8, 100}};
  double previous = 0;
  for (double n : {1.0, 10.0, 100.0, 1000.0}) {
    auto w = ComputeBlendWeights(o, true, n, c, 500);
    EXPECT_NEAR(Sum(w), 1.0, 1e-12);
    EXPECT_GT(w.self, previous);
    previous = w.self;
  }
  EXPECT_GT(previous, 0.95);
}

TEST(Blend, EmptyWhenNothingHasEvidence) {
  auto w = ComputeBlendWeights(BlendOptions(), false, 0, {}, 0);
  EXPECT_TRUE(w.empty());
  std::vector<BlendCandidate> below = {{-0.5, 10}};
  BlendOptions o;
  o.min_similarity = 0;
  o.cluster_prior_weight = 0;
  EXPECT_TRUE(ComputeBlendWeights(o, false, 0, below, 10).empty());
}

TEST(Blend, ParameterBlendIsTheWeightedAverage) {
  const ModelLayout layout = Layout(3);
  ModelState a, b;
  InitModel(layout, 1e-3, &a);
  InitModel(layout, 1e-3, &b);
  std::fill(a.weights.begin(), a.weights.end(), 1.0f);
  std::fill(b.weights.begin(), b.weights.end(), -2.0f);
  a.evidence = 7;
  ModelState cold;  // not initialized: skipped, and its weight is not counted
  ParameterBlend blend(layout, 1e-3);
  blend.Add(a, 1.5);
  blend.Add(cold, 5.0);
  blend.Add(b, 0.5);
  blend.Add(a, 0.0);  // zero weight: skipped
  const ModelState out = std::move(blend).Finish();
  ASSERT_EQ(out.weights.size(), a.weights.size());
  for (float w : out.weights) EXPECT_NEAR(w, 0.75 * 1 + 0.25 * -2, 1e-6);
  EXPECT_EQ(out.evidence, 0);  // a new model starts with no evidence of its own
  for (float g : out.sq_grad) EXPECT_FLOAT_EQ(g, 1e-3f);

  // Nothing usable: a fresh zero model.
  ParameterBlend none(layout, 1e-3);
  none.Add(cold, 1.0);
  const ModelState zero = std::move(none).Finish();
  ASSERT_TRUE(IsInitialized(layout, zero));
  for (float w : zero.weights) EXPECT_EQ(w, 0.0f);
}

}  // namespace
}  // namespace dynspec
