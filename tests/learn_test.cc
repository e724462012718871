// Learning math for ranking with exploration: exploration probabilities and slate sampling,
// the PPO-clip surrogate (gradient against finite differences, clipping, updates), and the
// off-policy estimators (exact values, input errors, unbiasedness and interval coverage on
// synthetic logs with a known true value).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <vector>

#include "learn/exploration.h"
#include "learn/ope.h"
#include "learn/ppo.h"

namespace dynspec {
namespace {

double Uniform(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

double Sum(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }

// ---------------------------------------------------------------- ActionProbabilities

TEST(Exploration, SoftmaxSumsToOneAndKeepsTheEpsilonFloor) {
  const std::vector<double> scores = {0.1, 0.5, 0.2, 0.9, -0.3};
  const double n = static_cast<double>(scores.size());
  for (double t : {0.01, 0.1, 1.0, 10.0}) {
    for (double eps : {0.0, 0.05, 0.5, 1.0}) {
      auto p = ActionProbabilities(scores, {ExplorationKind::kSoftmax, t, eps});
      ASSERT_TRUE(p.ok()) << p.status().ToString();
      EXPECT_NEAR(Sum(*p), 1.0, 1e-12);
      for (double v : *p) EXPECT_GE(v, eps / n - 1e-15);
      if (eps < 1) {
        EXPECT_EQ(std::max_element(p->begin(), p->end()) - p->begin(), 3);
      }
    }
  }
  // The formula itself, at T = 0.5, eps = 0.2.
  auto p = ActionProbabilities(scores, {ExplorationKind::kSoftmax, 0.5, 0.2});
  ASSERT_TRUE(p.ok());
  double z = 0;
  for (double s : scores) z += std::exp(s / 0.5);
  for (size_t i = 0; i < scores.size(); ++i) {
    EXPECT_NEAR((*p)[i], 0.8 * std::exp(scores[i] / 0.5) / z + 0.2 / n, 1e-15);
  }
}

TEST(Exploration, TemperatureSharpensOrFlattens) {
  const std::vector<double> scores = {0.1, 0.5, 0.2, 0.9, -0.3};
  double previous_max = 1.1;
  for (double t : {0.01, 0.1, 1.0, 10.0}) {
    auto p = ActionProbabilities(scores, {ExplorationKind::kSoftmax, t, 0.05});
    ASSERT_TRUE(p.ok());
    EXPECT_LT((*p)[3], previous_max) << "T = " << t;
    previous_max = (*p)[3];
  }
  auto flat = ActionProbabilities(scores, {ExplorationKind::kSoftmax, 1e7, 0.05});
  for (double v : *flat) EXPECT_NEAR(v, 0.2, 1e-6);
  auto sharp = ActionProbabilities(scores, {ExplorationKind::kSoftmax, 1e-6, 0.05});
  EXPECT_NEAR((*sharp)[3], 0.95 + 0.01, 1e-12);
  EXPECT_NEAR((*sharp)[0], 0.01, 1e-12);
}

TEST(Exploration, StableForExtremeScores) {
  const std::vector<double> scores = {1e300, -1e300, 1e300, 5};
  auto p = ActionProbabilities(scores, {ExplorationKind::kSoftmax, 1e-3, 0.0});
  ASSERT_TRUE(p.ok());
  EXPECT_DOUBLE_EQ((*p)[0], 0.5);
  EXPECT_DOUBLE_EQ((*p)[1], 0.0);
  EXPECT_DOUBLE_EQ((*p)[2], 0.5);
  EXPECT_DOUBLE_EQ((*p)[3], 0.0);
}

TEST(Exploration, EpsilonGreedyAndGreedySplitTies) {
  const std::vector<double> scores = {1, 3, 3, 0};
  auto eg = ActionProbabilities(scores, {ExplorationKind::kEpsilonGreedy, 0.1, 0.2});
  ASSERT_TRUE(eg.ok());
  const std::vector<double> want_eg = {0.05, 0.45, 0.45, 0.05};
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR((*eg)[i], want_eg[i], 1e-15);
  auto g = ActionProbabilities(scores, {ExplorationKind::kGreedy, 0.1, 0.2});
  ASSERT_TRUE(g.ok());
  const std::vector<double> want_g = {0, 0.5, 0.5, 0};
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ((*g)[i], want_g[i]);
  auto single = ActionProbabilities(std::vector<double>{7}, {ExplorationKind::kEpsilonGreedy});
  EXPECT_EQ((*single)[0], 1.0);
}

TEST(Exploration, RejectsBadInput) {
  EXPECT_EQ(ActionProbabilities({}, {}).status().message(), "scores is empty");
  const std::vector<double> nan = {0, 1, std::nan(""), 2};
  EXPECT_EQ(ActionProbabilities(nan, {}).status().message(), "scores[2] is not finite");
  const std::vector<double> inf = {INFINITY};
  EXPECT_FALSE(ActionProbabilities(inf, {}).ok());
  const std::vector<double> ok = {0, 1};
  for (double t : {0.0, -1.0, double(INFINITY), std::nan("")}) {
    auto r = ActionProbabilities(ok, {ExplorationKind::kSoftmax, t, 0.05});
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("options.temperature"), std::string::npos);
  }
  for (double e : {-0.1, 1.5, std::nan("")}) {
    auto r = ActionProbabilities(ok, {ExplorationKind::kSoftmax, 0.1, e});
    EXPECT_NE(r.status().message().find("options.epsilon"), std::string::npos);
  }
}

// ---------------------------------------------------------------- SampleSlate

std::vector<double> SixArms() {
  return ActionProbabilities(std::vector<double>{0.30, 0.10, 0.25, 0.05, 0.20, 0.12},
                             {ExplorationKind::kSoftmax, 0.1, 0.05})
      .value();
}

TEST(SampleSlate, PositionFrequenciesMatchTheProbabilities) {
  const std::vector<double> p = SixArms();
  const size_t n = p.size();
  const int draws = 200000;
  std::mt19937_64 rng(20240611);
  std::vector<double> first(n, 0), second(n, 0);
  for (int d = 0; d < draws; ++d) {
    auto s = SampleSlate(p, 3, rng);
    ASSERT_TRUE(s.ok());
    first[s->chosen[0]] += 1;
    second[s->chosen[1]] += 1;
  }
  // The marginal of position 2 under sequential sampling: sum over the first choice i.
  std::vector<double> p2(n, 0);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < n; ++j) {
      if (j != i) p2[j] += p[i] * p[j] / (1 - p[i]);
    }
  }
  double chi2 = 0;
  for (size_t i = 0; i < n; ++i) {
    const double expect = draws * p[i];
    const double sd = std::sqrt(draws * p[i] * (1 - p[i]));
    EXPECT_LE(std::abs(first[i] - expect), 4.5 * sd) << "arm " << i << " at position 1";
    chi2 += (first[i] - expect) * (first[i] - expect) / expect;
    const double sd2 = std::sqrt(draws * p2[i] * (1 - p2[i]));
    EXPECT_LE(std::abs(second[i] - draws * p2[i]), 4.5 * sd2) << "arm " << i << " position 2";
  }
  EXPECT_LT(chi2, 20.52);  // chi-square, 5 degrees of freedom, p = 0.001
}

TEST(SampleSlate, PropensitiesAreTheConditionalChoiceProbabilities) {
  const std::vector<double> p = SixArms();
  std::mt19937_64 rng(7);
  const int draws = 100000;
  std::map<std::vector<size_t>, std::pair<int, double>> slates;  // count, probability
  for (int d = 0; d < draws; ++d) {
    auto s = SampleSlate(p, 3, rng);
    ASSERT_TRUE(s.ok());
    ASSERT_EQ(s->chosen.size(), 3u);
    ASSERT_EQ(s->propensities.size(), 3u);
    double used = 0, product = 1;
    for (size_t k = 0; k < 3; ++k) {
      for (size_t j = 0; j < k; ++j) ASSERT_NE(s->chosen[j], s->chosen[k]);
      ASSERT_NEAR(s->propensities[k], p[s->chosen[k]] / (1 - used), 1e-12);
      used += p[s->chosen[k]];
      product *= s->propensities[k];
    }
    auto& entry = slates[s->chosen];
    entry.first += 1;
    entry.second = product;
  }
  // The product of the propensities is the probability of the ordered slate: check it on the
  // ten most frequent slates.
  std::vector<std::pair<int, double>> top;
  for (const auto& [slate, entry] : slates) top.push_back(entry);
  std::sort(top.begin(), top.end(), [](auto& a, auto& b) { return a.first > b.first; });
  for (size_t k = 0; k < 10; ++k) {
    const double q = top[k].second;
    EXPECT_LE(std::abs(top[k].first - draws * q), 4.5 * std::sqrt(draws * q * (1 - q)));
  }
}

TEST(SampleSlate, DeterministicForASeedAndChecksItsInput) {
  const std::vector<double> p = SixArms();
  std::mt19937_64 a(99), b(99);
  for (int d = 0; d < 100; ++d) {
    auto x = SampleSlate(p, 4, a);
    auto y = SampleSlate(p, 4, b);
    ASSERT_EQ(x->chosen, y->chosen);
    ASSERT_EQ(x->propensities, y->propensities);
  }
  std::mt19937_64 rng(1);
  auto full = SampleSlate(p, 6, rng);
  ASSERT_TRUE(full.ok());
  EXPECT_NEAR(full->propensities.back(), 1.0, 1e-12);  // the last candidate is forced
  EXPECT_TRUE(SampleSlate(p, 0, rng)->chosen.empty());
  EXPECT_EQ(SampleSlate(p, 7, rng).status().message(),
            "slate_size 7 exceeds the 6 candidates with positive probability");
  EXPECT_EQ(SampleSlate(std::vector<double>{0, 1, 0}, 2, rng).status().message(),
            "slate_size 2 exceeds the 1 candidates with positive probability");
  EXPECT_NE(SampleSlate(std::vector<double>{0.5, 0.4}, 1, rng).status().message().find("sum to"),
            std::string::npos);
  EXPECT_NE(SampleSlate(std::vector<double>{1.5, -0.5}, 1, rng)
                .status()
                .message()
                .find("probabilities[1]"),
            std::string::npos);
  EXPECT_EQ(SampleSlate({}, 1, rng).status().message(), "probabilities is empty");
}

// ---------------------------------------------------------------- PPO

struct PpoCase {
  PpoEvent event;
  PpoParams params;
};

// n candidates over `blocks` parameter blocks of `width` (so blocks are shared), random
// sparse features and parameters.
PpoCase RandomCase(std::mt19937_64& rng, size_t n, size_t blocks, size_t width,
                   double param_scale) {
  std::normal_distribution<double> normal(0, 1);
  PpoCase c;
  c.params.assign(blocks, std::vector<double>(width));
  for (auto& b : c.params) {
    for (double& w : b) w = param_scale * normal(rng);
  }
  for (size_t j = 0; j < n; ++j) {
    FeatureVector x;
    for (uint32_t i = 0; i < width; ++i) {
      if (Uniform(rng) < 0.6) {
        x.index.push_back(i);
        x.value.push_back(static_cast<float>(normal(rng)));
      }
    }
    c.event.candidate_features.push_back(x);
    c.event.candidate_model.push_back(j % blocks);
  }
  return c;
}

// Sets the logged propensity so that the current ratio pi(chosen) / mu is `rho` (choosing the
// least likely candidate when rho < 1 so that mu stays <= 1).
void SetRatio(PpoCase* c, double rho, double advantage, const PpoOptions& o) {
  const std::vector<double> s = PpoScores(c->event, c->params);
  auto pi = ActionProbabilities(s, {ExplorationKind::kSoftmax, o.temperature, o.epsilon});
  c->event.chosen = rho < 1 ? std::min_element(pi->begin(), pi->end()) - pi->begin() : 0;
  c->event.logged_propensity = (*pi)[c->event.chosen] / rho;
  c->event.reward = 0.3 + advantage;
  c->event.baseline = 0.3;
}

TEST(Ppo, PolicyIsTheExplorationSoftmax) {
  std::mt19937_64 rng(3);
  PpoOptions o;
  o.temperature = 0.3;
  o.epsilon = 0.1;
  PpoCase c = RandomCase(rng, 5, 3, 6, 0.3);
  const std::vector<double> s = PpoScores(c.event, c.params);
  auto pi = ActionProbabilities(s, {ExplorationKind::kSoftmax, o.temperature, o.epsilon});
  for (size_t j = 0; j < 5; ++j) {
    const PpoTerms t = PpoScoreLoss(s, j, 0.5, 1.0, o, {});
    EXPECT_NEAR(t.pi_chosen, (*pi)[j], 1e-15);
    EXPECT_NEAR(t.ratio, (*pi)[j] / 0.5, 1e-15);
  }
}

TEST(Ppo, LossByHand) {
  PpoOptions o;
  o.temperature = 1;
  o.epsilon = 0;
  const std::vector<double> s = {0, 0};  // pi = (0.5, 0.5)
  // mu = 0.25: rho = 2 is above 1 + c.
  EXPECT_NEAR(PpoScoreLoss(s, 0, 0.25, 1.0, o, {}).loss, -1.2, 1e-15);  // -min(2, 1.2)
  EXPECT_NEAR(PpoScoreLoss(s, 0, 0.25, -1.0, o, {}).loss, 2.0, 1e-15);  // -min(-2, -1.2)
  // mu = 1: rho = 0.5 is below 1 - c.
  EXPECT_NEAR(PpoScoreLoss(s, 0, 1.0, 1.0, o, {}).loss, -0.5, 1e-15);  // -min(0.5, 0.8)
  EXPECT_NEAR(PpoScoreLoss(s, 0, 1.0, -1.0, o, {}).loss, 0.8, 1e-15);  // -min(-0.5, -0.8)
  o.entropy_coef = 0.1;
  EXPECT_NEAR(PpoScoreLoss(s, 0, 0.5, 1.0, o, {}).loss, -1.0 - 0.1 * std::log(2.0), 1e-15);
}

TEST(Ppo, GradientMatchesCentralFiniteDifferences) {
  std::mt19937_64 rng(11);
  int checked = 0, clipped_cases = 0;
  for (double temperature : {0.1, 0.7}) {
    for (double entropy : {0.0, 0.05}) {
      for (double rho : {0.5, 0.9, 1.1, 1.5}) {
        for (double adv : {0.8, -0.6}) {
          for (int rep = 0; rep < 3; ++rep) {
            PpoOptions o;
            o.temperature = temperature;
            o.entropy_coef = entropy;
            o.epsilon = rep == 2 ? 0.0 : 0.05;
            PpoCase c = RandomCase(rng, 5, 3, 6, 0.1 * temperature / 0.1);
            SetRatio(&c, rho, adv, o);
            ASSERT_TRUE(ValidatePpoEvent(c.event, c.params).ok());
            const bool clipped = (adv > 0 && rho > 1.2) || (adv < 0 && rho < 0.8);
            const std::vector<double> s = PpoScores(c.event, c.params);
            const PpoTerms terms =
                PpoScoreLoss(s, c.event.chosen, c.event.logged_propensity, adv, o, {});
            ASSERT_NEAR(terms.ratio, rho, 1e-12);
            ASSERT_EQ(terms.clipped, clipped);
            clipped_cases += clipped ? 1 : 0;
            PpoParams grad;
            PpoGradient(c.event, c.params, o, &grad);
            ASSERT_EQ(grad.size(), c.params.size());
            for (size_t b = 0; b < c.params.size(); ++b) {
              ASSERT_EQ(grad[b].size(), c.params[b].size());
              for (size_t i = 0; i < c.params[b].size(); ++i) {
                const double h = 1e-6;
                PpoParams plus = c.params, minus = c.params;
                plus[b][i] += h;
                minus[b][i] -= h;
                const double numeric =
                    (PpoLoss(c.event, plus, o) - PpoLoss(c.event, minus, o)) / (2 * h);
                EXPECT_NEAR(grad[b][i], numeric, 1e-6 + 1e-5 * std::abs(numeric))
                    << "T " << temperature << " entropy " << entropy << " rho " << rho << " A "
                    << adv << " block " << b << " coord " << i;
                ++checked;
              }
            }
          }
        }
      }
    }
  }
  EXPECT_EQ(checked, 2 * 2 * 4 * 2 * 3 * 18);
  EXPECT_EQ(clipped_cases, 2 * 2 * 2 * 3);
}

double MaxAbs(const PpoParams& g) {
  double m = 0;
  for (const auto& b : g) {
    for (double v : b) m = std::max(m, std::abs(v));
  }
  return m;
}

TEST(Ppo, ClipZeroesTheSurrogateGradientOutsideTheTrustRegion) {
  std::mt19937_64 rng(5);
  PpoOptions o;
  PpoCase base = RandomCase(rng, 4, 4, 5, 0.1);
  struct Want {
    double rho, adv;
    bool zero;
  };
  const Want cases[] = {
      {1.5, +1.0, true},   // above 1 + c with A > 0: no incentive to raise pi further
      {0.5, -1.0, true},   // below 1 - c with A < 0: no incentive to lower it further
      {1.5, -1.0, false},  // above 1 + c with A < 0: the unclipped branch pulls back
      {0.5, +1.0, false},  // below 1 - c with A > 0: likewise
      {1.0, +1.0, false},  // inside
      {1.0, -1.0, false}, {1.19, +1.0, false}, {0.81, -1.0, false},
  };
  for (const Want& w : cases) {
    PpoCase c = base;
    SetRatio(&c, w.rho, w.adv, o);
    PpoParams grad;
    PpoGradient(c.event, c.params, o, &grad);
    if (w.zero) {
      EXPECT_EQ(MaxAbs(grad), 0.0) << "rho " << w.rho << " A " << w.adv;
    } else {
      EXPECT_GT(MaxAbs(grad), 1e-3) << "rho " << w.rho << " A " << w.adv;
    }
    // With an entropy bonus, a clipped sample keeps exactly the entropy gradient.
    PpoOptions oe = o;
    oe.entropy_coef = 0.1;
    PpoParams with_entropy, entropy_only;
    PpoGradient(c.event, c.params, oe, &with_entropy);
    PpoCase no_adv = c;
    no_adv.event.baseline = no_adv.event.reward;
    PpoGradient(no_adv.event, no_adv.params, oe, &entropy_only);
    if (w.zero) {
      for (size_t b = 0; b < grad.size(); ++b) {
        for (size_t i = 0; i < grad[b].size(); ++i) {
          EXPECT_DOUBLE_EQ(with_entropy[b][i], entropy_only[b][i]);
        }
      }
    }
  }
}

// K candidates, each the model of one arm with a bias feature: a context-free toy problem.
PpoEvent ArmEvent(size_t k, size_t chosen, double mu, double reward, double baseline) {
  PpoEvent e;
  for (size_t j = 0; j < k; ++j) {
    e.candidate_features.push_back(FeatureVector{{0}, {1.0f}});
    e.candidate_model.push_back(j);
  }
  e.chosen = chosen;
  e.logged_propensity = mu;
  e.reward = reward;
  e.baseline = baseline;
  return e;
}

std::vector<double> ArmPolicy(const PpoParams& params, const PpoOptions& o) {
  std::vector<double> s;
  for (const auto& b : params) s.push_back(b[0]);
  return ActionProbabilities(s, {ExplorationKind::kSoftmax, o.temperature, o.epsilon}).value();
}

TEST(Ppo, UpdateRaisesTheProbabilityOfTheRewardedArm) {
  const size_t k = 4;
  const PpoOptions o;  // the defaults
  PpoParams params(k, std::vector<double>(1, 0.0));
  const std::vector<double> before = ArmPolicy(params, o);
  std::mt19937_64 rng(17);
  std::vector<PpoEvent> buffer;
  for (int i = 0; i < 512; ++i) {
    auto slate = SampleSlate(before, 1, rng);
    const size_t a = slate->chosen[0];
    const double click = Uniform(rng) < (a == 2 ? 0.8 : 0.2) ? 1.0 : 0.0;
    buffer.push_back(ArmEvent(k, a, slate->propensities[0], click, 0.35));
  }
  auto stats = PpoUpdate(buffer, &params, o, 1);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  const std::vector<double> after = ArmPolicy(params, o);
  EXPECT_GT(after[2], before[2] + 0.02);
  for (size_t j : {0, 1, 3}) EXPECT_LT(after[j], before[j]);
  EXPECT_LT(stats->loss_after, stats->loss_before);
  EXPECT_EQ(stats->updates, 10 * 8);
  EXPECT_GE(stats->clip_fraction, 0.0);
  EXPECT_LE(stats->clip_fraction, 1.0);
  // The same seed gives the same parameters.
  PpoParams again(k, std::vector<double>(1, 0.0));
  ASSERT_TRUE(PpoUpdate(buffer, &again, o, 1).ok());
  EXPECT_EQ(again, params);
}

// Each event is its own little policy (candidate 0 uses its own block; candidate 1 has no
// features, score 0), so no event's ratio is moved by another event's gradient. Then PPO's
// claim can be checked exactly: a sample's surrogate stops pulling once its ratio leaves
// [1 - c, 1 + c] in the direction its advantage favours, so after many epochs every A > 0
// ratio sits just above 1 + c and every A < 0 ratio just below 1 - c; the overshoot is what
// Adam's momentum carries past the bound (about 10 steps of learning_rate). The unclipped
// objective (clip = 1e9), same steps, goes far beyond. (With shared parameters no such bound
// holds per sample: other samples' gradients move a clipped sample's ratio.)
TEST(Ppo, UpdateKeepsEachRatioNearTheClipRange) {
  const size_t n = 128;
  PpoOptions o;
  o.learning_rate = 5e-4;
  o.epochs = 300;
  std::vector<PpoEvent> buffer;
  for (size_t i = 0; i < n; ++i) {
    PpoEvent e;
    e.candidate_features = {FeatureVector{{0}, {1.0f}}, FeatureVector{}};
    e.candidate_model = {i, n};
    e.chosen = 0;
    e.logged_propensity = 0.5;  // the policy at zero parameters
    e.reward = (i % 2 == 0 ? 1.0 : -1.0) * (0.5 + static_cast<double>(i % 7) / 7);
    e.baseline = 0;
    buffer.push_back(e);
  }
  auto ratios = [&](const PpoParams& p) {
    std::vector<double> r;
    for (const PpoEvent& e : buffer) {
      r.push_back(PpoScoreLoss(PpoScores(e, p), 0, 0.5, 1, o, {}).ratio);
    }
    return r;
  };
  PpoParams ppo(n + 1, std::vector<double>(1, 0.0));
  auto stats = PpoUpdate(buffer, &ppo, o, 2);
  ASSERT_TRUE(stats.ok());
  PpoOptions vanilla = o;
  vanilla.clip = 1e9;
  PpoParams pg(n + 1, std::vector<double>(1, 0.0));
  ASSERT_TRUE(PpoUpdate(buffer, &pg, vanilla, 2).ok());

  const std::vector<double> r_ppo = ratios(ppo), r_pg = ratios(pg);
  double up_min = 9, up_max = 0, down_min = 9, down_max = 0, pg_up_min = 9, pg_down_max = 0;
  for (size_t i = 0; i < n; ++i) {
    if (buffer[i].reward > 0) {
      up_min = std::min(up_min, r_ppo[i]);
      up_max = std::max(up_max, r_ppo[i]);
      pg_up_min = std::min(pg_up_min, r_pg[i]);
    } else {
      down_min = std::min(down_min, r_ppo[i]);
      down_max = std::max(down_max, r_ppo[i]);
      pg_down_max = std::max(pg_down_max, r_pg[i]);
    }
  }
  std::printf(
      "PPO ratios: A>0 [%.4f, %.4f], A<0 [%.4f, %.4f], clip fraction %.3f; unclipped: "
      "A>0 min %.4f, A<0 max %.4f\n",
      up_min, up_max, down_min, down_max, stats->clip_fraction, pg_up_min, pg_down_max);
  EXPECT_GE(up_min, 1.2);
  EXPECT_LE(up_max, 1.2 + 0.05);
  EXPECT_LE(down_max, 0.8);
  EXPECT_GE(down_min, 0.8 - 0.05);
  EXPECT_GT(pg_up_min, 1.4);
  EXPECT_LT(pg_down_max, 0.6);
  EXPECT_GT(stats->clip_fraction, 0.5);  // most of the late evaluations are clipped
  EXPECT_LT(stats->loss_after, stats->loss_before);
}

TEST(Ppo, UpdateRejectsBadInputAndLeavesParamsAlone) {
  PpoParams params(3, std::vector<double>(1, 0.25));
  const PpoParams original = params;
  std::vector<PpoEvent> buffer = {ArmEvent(3, 0, 0.3, 1, 0), ArmEvent(3, 1, 0.3, 1, 0)};
  buffer[1].chosen = 4;
  auto r = PpoUpdate(buffer, &params, {}, 1);
  EXPECT_EQ(r.status().message(), "buffer[1]: chosen is 4, expected < 3 candidates");
  buffer[1].chosen = 1;
  buffer[1].logged_propensity = 0;
  EXPECT_EQ(PpoUpdate(buffer, &params, {}, 1).status().message(),
            "buffer[1]: logged_propensity is 0, expected in (0, 1]");
  buffer[1].logged_propensity = 0.3;
  buffer[0].candidate_model[2] = 3;
  EXPECT_EQ(PpoUpdate(buffer, &params, {}, 1).status().message(),
            "buffer[0]: candidate_model[2] is 3, expected < 3 blocks");
  buffer[0].candidate_model[2] = 2;
  buffer[0].candidate_features[1].index[0] = 1;
  EXPECT_EQ(PpoUpdate(buffer, &params, {}, 1).status().message(),
            "buffer[0]: candidate_features[1].index[0] is 1, expected < 1 (the size of block 1)");
  buffer[0].candidate_features[1].index[0] = 0;
  PpoOptions bad;
  bad.clip = 0;
  EXPECT_EQ(PpoUpdate(buffer, &params, bad, 1).status().message(),
            "options.clip must be finite and > 0, got 0");
  EXPECT_EQ(PpoUpdate({}, &params, {}, 1).status().message(), "buffer is empty");
  EXPECT_EQ(params, original);
  EXPECT_TRUE(PpoUpdate(buffer, &params, {}, 1).ok());
}

// ---------------------------------------------------------------- off-policy estimators

TEST(Ope, ValuesAndStandardErrorsByHand) {
  // w = 0.25 / 0.5 = 0.5 on every row; rewards 1, 0, 1, 0.
  std::vector<LoggedDecision> d;
  for (double r : {1.0, 0.0, 1.0, 0.0}) d.push_back({r, 0.5, 0.25, 0.5, 0.4});
  const double z = 1.959963984540054;
  auto ips = Ips(d);
  ASSERT_TRUE(ips.ok());
  EXPECT_NEAR(ips->value, 0.25, 1e-15);
  EXPECT_NEAR(ips->std_error, std::sqrt(0.25 / 3) / 2, 1e-15);
  EXPECT_NEAR(ips->ci_low, 0.25 - z * ips->std_error, 1e-15);
  EXPECT_NEAR(ips->ci_high, 0.25 + z * ips->std_error, 1e-15);
  EXPECT_EQ(ips->n, 4u);
  // Equal weights: SNIPS is the plain mean with the plain standard error.
  auto snips = Snips(d);
  EXPECT_NEAR(snips->value, 0.5, 1e-15);
  EXPECT_NEAR(snips->std_error, std::sqrt(1.0 / 3) / 2, 1e-15);
  // DR terms: 0.4 + 0.5 (r - 0.5) = 0.65, 0.15, 0.65, 0.15.
  auto dr = DoublyRobust(d);
  EXPECT_NEAR(dr->value, 0.4, 1e-15);
  EXPECT_NEAR(dr->std_error, std::sqrt(4 * 0.0625 / 3) / 2, 1e-15);
  // One row: no standard error.
  auto one = Ips(std::span<const LoggedDecision>(d).first(1));
  EXPECT_TRUE(std::isinf(one->std_error));
}

TEST(Ope, RejectsBadRowsNamingTheIndex) {
  std::vector<LoggedDecision> d(5, LoggedDecision{1, 0.5, 0.5, 0, 0});
  d[3].logged_propensity = 0;
  EXPECT_EQ(Ips(d).status().message(), "decisions[3].logged_propensity is 0, expected in (0, 1]");
  EXPECT_EQ(Snips(d).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DoublyRobust(d).status().code(), StatusCode::kInvalidArgument);
  d[3].logged_propensity = std::nan("");
  EXPECT_EQ(Snips(d).status().message(),
            "decisions[3].logged_propensity is nan, expected in (0, 1]");
  d[3].logged_propensity = -0.2;
  EXPECT_FALSE(DoublyRobust(d).ok());
  d[3].logged_propensity = 1.5;
  EXPECT_FALSE(Ips(d).ok());
  d[3].logged_propensity = 0.5;
  d[1].target_probability = 1.2;
  EXPECT_EQ(Ips(d).status().message(),
            "decisions[1].target_probability is 1.2, expected in [0, 1]");
  d[1].target_probability = 0.5;
  d[4].reward = INFINITY;
  EXPECT_EQ(Ips(d).status().message(), "decisions[4].reward is not finite");
  d[4].reward = 1;
  d[2].reward_model_target = std::nan("");
  EXPECT_TRUE(Ips(d).ok());  // IPS does not read the reward model
  EXPECT_EQ(DoublyRobust(d).status().message(), "decisions[2].reward_model_target is not finite");
  EXPECT_EQ(Ips({}).status().message(), "decisions is empty");
  std::vector<LoggedDecision> never(3, LoggedDecision{1, 0.5, 0.0, 0, 0});
  EXPECT_EQ(Snips(never).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Ips(never).ok());
}

// A contextual bandit with 4 context types and 5 actions, Bernoulli rewards with known means,
// a softmax logging policy and a different target policy; the reward model for DR is
// deliberately wrong (0.7 m + 0.1). Over 200 independent logs of 3,000 rows, each estimator's
// 95% interval should contain the true value in about 95% of the logs and the estimates
// should average to it.
TEST(Ope, UnbiasedWithNominalCoverageOnSyntheticLogs) {
  const size_t kContexts = 4, kActions = 5, kRows = 3000, kSeeds = 200;
  std::mt19937_64 setup(123);
  std::vector<std::vector<double>> mean(kContexts), logging(kContexts), target(kContexts);
  for (size_t x = 0; x < kContexts; ++x) {
    std::vector<double> log_scores, target_scores;
    for (size_t a = 0; a < kActions; ++a) {
      mean[x].push_back(0.05 + 0.55 * Uniform(setup));
      log_scores.push_back(Uniform(setup));
      target_scores.push_back(mean[x][a]);
    }
    logging[x] = ActionProbabilities(log_scores, {ExplorationKind::kSoftmax, 0.5, 0.2}).value();
    target[x] = ActionProbabilities(target_scores, {ExplorationKind::kSoftmax, 0.2, 0.05}).value();
  }
  double truth = 0;
  for (size_t x = 0; x < kContexts; ++x) {
    for (size_t a = 0; a < kActions; ++a) truth += target[x][a] * mean[x][a] / kContexts;
  }
  auto model = [&](size_t x, size_t a) { return 0.7 * mean[x][a] + 0.1; };

  struct Tally {
    int covered = 0;
    double sum = 0, sum_sq = 0, se_sum = 0;
  };
  Tally ips, snips, dr;
  auto tally = [&](Tally* t, const Result<Estimate>& e) {
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    t->covered += e->ci_low <= truth && truth <= e->ci_high ? 1 : 0;
    t->sum += e->value;
    t->sum_sq += e->value * e->value;
    t->se_sum += e->std_error;
  };
  for (size_t seed = 0; seed < kSeeds; ++seed) {
    std::mt19937_64 rng(1000 + seed);
    std::vector<LoggedDecision> log;
    for (size_t row = 0; row < kRows; ++row) {
      const size_t x = static_cast<size_t>(Uniform(rng) * kContexts);
      auto choice = SampleSlate(logging[x], 1, rng);
      const size_t a = choice->chosen[0];
      LoggedDecision d;
      d.reward = Uniform(rng) < mean[x][a] ? 1 : 0;
      d.logged_propensity = choice->propensities[0];
      d.target_probability = target[x][a];
      d.reward_model_logged = model(x, a);
      for (size_t b = 0; b < kActions; ++b) d.reward_model_target += target[x][b] * model(x, b);
      log.push_back(d);
    }
    tally(&ips, Ips(log));
    tally(&snips, Snips(log));
    tally(&dr, DoublyRobust(log));
  }
  for (const auto& [name, t] : {std::pair{"IPS", ips}, {"SNIPS", snips}, {"DR", dr}}) {
    const double m = t.sum / kSeeds;
    const double sd = std::sqrt(std::max(0.0, t.sum_sq / kSeeds - m * m));
    const double coverage = static_cast<double>(t.covered) / kSeeds;
    std::printf("%-5s truth %.4f  mean %.4f  sd %.4f  mean se %.4f  coverage %.3f\n", name, truth,
                m, sd, t.se_sum / kSeeds, coverage);
    EXPECT_GE(coverage, 0.88) << name;
    EXPECT_LE(std::abs(m - truth), 4 * sd / std::sqrt(double(kSeeds))) << name;
    EXPECT_LE(std::abs(m - truth), 0.005) << name;
    // The average standard error matches the spread of the estimates across logs.
    EXPECT_NEAR(t.se_sum / kSeeds, sd, 0.2 * sd) << name;
  }
  EXPECT_LT(dr.se_sum, ips.se_sum);  // the reward model removes variance
}

}  // namespace
}  // namespace dynspec
