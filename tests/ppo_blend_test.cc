// PPO-clip through blended scores (learn/ppo_blend.h): the chain-rule gradient against
// finite differences of the loss, and an update that raises the probability of a rewarded
// action.
#include "learn/ppo_blend.h"

#include <gtest/gtest.h>

#include <random>

namespace dynspec {
namespace {

ModelLayout Layout() {
  ModelLayout l;
  l.heads = {{"click", HeadKind::kBinary, false},
             {"like", HeadKind::kBinary, false},
             {"dwell_seconds", HeadKind::kRegression, true}};
  l.width = 5;
  return l;
}

RewardFunction Reward(const ModelLayout& l) {
  return std::move(RewardFunction::Make(
                       {{"click", 1, 0}, {"like", 2, 0}, {"dwell_seconds", 0.02, 300}}, l.heads))
      .value();
}

// Three candidates over four models; candidate 1 shares model 2 with candidate 2.
BlendedEvent Event(double reward, double propensity) {
  BlendedEvent e;
  e.x.index = {0, 2, 4};
  e.x.value = {1.0f, 0.5f, -1.5f};
  e.candidates = {{{0, 1}, {0.7, 0.25}, {0.01, 0.02, 0.1}},
                  {{2}, {0.9}, {0.0, 0.01, 0.05}},
                  {{2, 3}, {0.3, 0.6}, {0.02, 0.0, 0.0}}};
  e.chosen = 1;
  e.logged_propensity = propensity;
  e.reward = reward;
  e.baseline = 0.8;
  return e;
}

BlendedParams Params(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0, 0.5f);
  BlendedParams p(4, std::vector<float>(Layout().size()));
  for (auto& w : p) {
    for (float& x : w) x = g(rng);
  }
  return p;
}

TEST(PpoBlend, GradientMatchesFiniteDifferences) {
  const ModelLayout layout = Layout();
  const RewardFunction reward = Reward(layout);
  PpoOptions o;
  o.temperature = 0.5;
  o.epsilon = 0.1;
  o.entropy_coef = 0.05;
  for (double r : {0.0, 2.5}) {  // negative and positive advantage
    BlendedParams p = Params(7);
    // Log the action with about the probability the policy gives it now, so the ratio is
    // near 1 and the surrogate is not clipped.
    const double pi = BlendedPpoLoss(Event(r, 1.0), p, layout, reward, o, 0, nullptr).pi_chosen;
    const BlendedEvent e = Event(r, std::min(1.0, pi * 1.05));
    std::vector<std::vector<double>> grad(p.size(), std::vector<double>(layout.size(), 0.0));
    const PpoTerms terms = BlendedPpoLoss(e, p, layout, reward, o, 1.0, &grad);
    ASSERT_FALSE(terms.clipped) << "choose a point inside the clip range";
    size_t checked = 0;
    for (size_t m = 0; m < p.size(); ++m) {
      for (size_t i = 0; i < p[m].size(); ++i) {
        const float keep = p[m][i];
        const float step = 1e-2f;
        p[m][i] = keep + step;
        const double up = BlendedPpoLoss(e, p, layout, reward, o, 0, nullptr).loss;
        p[m][i] = keep - step;
        const double down = BlendedPpoLoss(e, p, layout, reward, o, 0, nullptr).loss;
        p[m][i] = keep;
        const double numeric = (up - down) / (2 * double(step));
        EXPECT_NEAR(grad[m][i], numeric, 2e-3 + 2e-3 * std::abs(numeric))
            << "model " << m << " coord " << i;
        if (grad[m][i] != 0) ++checked;
      }
    }
    EXPECT_GT(checked, 20u);
  }
}

TEST(PpoBlend, ClippedRatioGivesNoSurrogateGradient) {
  const ModelLayout layout = Layout();
  const RewardFunction reward = Reward(layout);
  PpoOptions o;
  o.temperature = 0.5;
  o.epsilon = 0.1;
  // A tiny logged propensity makes the ratio far above 1 + clip; with a positive advantage
  // the clipped branch is active and (without entropy) the gradient is zero.
  const BlendedEvent e = Event(5.0, 0.01);
  const BlendedParams p = Params(3);
  std::vector<std::vector<double>> grad(p.size(), std::vector<double>(layout.size(), 0.0));
  const PpoTerms terms = BlendedPpoLoss(e, p, layout, reward, o, 1.0, &grad);
  EXPECT_TRUE(terms.clipped);
  for (const auto& g : grad) {
    for (double v : g) EXPECT_EQ(v, 0.0);
  }
}

TEST(PpoBlend, UpdateRaisesTheProbabilityOfARewardedAction) {
  const ModelLayout layout = Layout();
  const RewardFunction reward = Reward(layout);
  PpoOptions o;
  o.temperature = 0.5;
  o.epsilon = 0.1;
  o.learning_rate = 1e-2;
  const BlendedParams start = Params(11);
  const double before =
      BlendedPpoLoss(Event(3.0, 1.0), start, layout, reward, o, 0, nullptr).pi_chosen;
  std::vector<BlendedEvent> buffer(32, Event(3.0, before));
  BlendedParams p = start;
  auto stats = BlendedPpoUpdate(buffer, &p, layout, reward, o, 1);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  const double after = BlendedPpoLoss(buffer[0], p, layout, reward, o, 0, nullptr).pi_chosen;
  EXPECT_GT(after, before);
  EXPECT_LT(stats->loss_after, stats->loss_before);
  EXPECT_EQ(stats->updates, 10);  // 10 epochs x 1 mini-batch of 32 (< 64)
  EXPECT_GT(stats->clip_fraction, 0) << "the ratio reached the clip within 10 epochs";
  // The clip is a trust region: without it (clip 100) the same steps push further.
  PpoOptions unclipped = o;
  unclipped.clip = 100;
  BlendedParams q = start;
  ASSERT_TRUE(BlendedPpoUpdate(buffer, &q, layout, reward, unclipped, 1).ok());
  const double far = BlendedPpoLoss(buffer[0], q, layout, reward, o, 0, nullptr).pi_chosen;
  EXPECT_GT(far, after);
}

TEST(PpoBlend, InvalidEventsAreRefusedAndParamsUntouched) {
  const ModelLayout layout = Layout();
  const RewardFunction reward = Reward(layout);
  BlendedParams p = Params(5);
  const BlendedParams copy = p;
  BlendedEvent bad = Event(1, 0.5);
  bad.candidates[2].models = {9};
  auto r = BlendedPpoUpdate({Event(1, 0.5), bad}, &p, layout, reward, PpoOptions(), 1);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("buffer[1]"), std::string::npos);
  EXPECT_EQ(p, copy);
  BlendedEvent zero = Event(1, 0.0);
  EXPECT_FALSE(BlendedPpoUpdate({zero}, &p, layout, reward, PpoOptions(), 1).ok());
}

}  // namespace
}  // namespace dynspec
