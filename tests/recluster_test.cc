// Re-clustering with a known ground truth: providers drawn from three latent content types
// that differ in how users respond, deliberately mis-assigned at the start. Shadow
// evaluation must find that the mis-assigned providers are predicted better by another
// cluster, re-clustering must move them there (recovering the true grouping), and the
// prediction loss on the stream must drop after the moves.
#include "cluster/recluster.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <set>

#include "cluster/hierarchical.h"
#include "dynspec/engine.h"

namespace dynspec {
namespace {

constexpr int kTypes = 3;
constexpr int kProvidersPerType = 8;
constexpr int kItemsPerProvider = 8;
const double kLikeRate[kTypes] = {0.9, 0.1, 0.5};
// Content does not reveal the type: every item draws its words from one shared pool, so
// only performance can tell the types apart (the case re-clustering exists for).
const char* kWords[] = {"guitar",  "songs",  "recipes", "kitchen", "travel", "hotels",
                        "science", "space",  "history", "garden",  "sports", "fashion",
                        "design",  "health", "family",  "money",   "cars",   "photo"};

std::string ProviderId(int type, int p) {
  return "type" + std::to_string(type) + "-prov" + std::to_string(p);
}

class ReclusterSimulation : public ::testing::Test {
 protected:
  void SetUp() override {
    EngineOptions o;
    o.embed.dim = 64;
    o.model.heads = {{"like", HeadKind::kBinary, false}};
    o.reward = {{"like", 1, 0}};
    o.blend.k = 6;
    o.recluster.shadow_sample_rate = 1.0;
    o.recluster.min_evidence = 10;
    o.recluster.consecutive_runs = 2;
    o.recluster.move_margin = 0.01;
    o.recluster.decay_half_life = 300;
    o.recluster.period_seconds = 0;
    auto e = Engine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(e).value();
    std::mt19937 rng(5);
    for (int t = 0; t < kTypes; ++t) {
      for (int p = 0; p < kProvidersPerType; ++p) {
        for (int i = 0; i < kItemsPerProvider; ++i) {
          const std::string id = ProviderId(t, p) + "-item" + std::to_string(i);
          std::string text;
          for (int w = 0; w < 5; ++w) text += std::string(kWords[rng() % 18]) + " ";
          ASSERT_TRUE(engine_->Ingest({id, ProviderId(t, p), {text}}).ok());
          items_.push_back({id, t});
        }
      }
    }
    ASSERT_TRUE(engine_->BootstrapClusters(kTypes).ok());
    ASSERT_EQ(engine_->ListClusters().size(), size_t(kTypes));
    // Type t lives in cluster t, except providers 6 and 7 of each type, which start in the
    // next type's cluster: every cluster is 6 of its type and 2 mis-assigned.
    for (int t = 0; t < kTypes; ++t) {
      cluster_of_type_[t] = static_cast<ClusterId>(t);
      for (int p = 0; p < kProvidersPerType; ++p) {
        const ClusterId c = static_cast<ClusterId>(p < 6 ? t : (t + 1) % kTypes);
        ASSERT_TRUE(engine_->MoveProvider(ProviderId(t, p), c).ok());
      }
    }
  }

  // Streams `n` feedback events and returns their progressive log-loss.
  double Stream(int n, std::mt19937& rng) {
    double loss = 0;
    for (int i = 0; i < n; ++i) {
      const auto& [id, type] = items_[rng() % items_.size()];
      const double y = std::bernoulli_distribution(kLikeRate[type])(rng) ? 1 : 0;
      auto p = engine_->Predict({id});
      EXPECT_TRUE(p.ok());
      const double q = std::clamp(p->heads[0], 1e-7, 1 - 1e-7);
      loss -= y * std::log(q) + (1 - y) * std::log(1 - q);
      EXPECT_TRUE(engine_->Feedback({"", id, {}, {{"like", y}}}).ok());
    }
    return loss / n;
  }

  double TrueGroupingAri() {
    std::vector<int> truth, assigned;
    for (int t = 0; t < kTypes; ++t) {
      for (int p = 0; p < kProvidersPerType; ++p) {
        truth.push_back(t);
        assigned.push_back(static_cast<int>(engine_->GetProvider(ProviderId(t, p))->cluster));
      }
    }
    return AdjustedRandIndex(truth, assigned);
  }

  std::unique_ptr<Engine> engine_;
  std::vector<std::pair<std::string, int>> items_;
  std::map<int, ClusterId> cluster_of_type_;
};

TEST_F(ReclusterSimulation, RecoversTheTrueGroupingAndLowersTheLoss) {
  std::mt19937 rng(11);
  const double ari_start = TrueGroupingAri();
  EXPECT_LT(ari_start, 0.6);
  const double loss_before = Stream(3000, rng);
  std::vector<double> ari_per_run;
  size_t moved = 0;
  for (int run = 0; run < 6; ++run) {
    auto report = engine_->Recluster();
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    moved += report->moves.size();
    if (report->moves.empty()) EXPECT_DOUBLE_EQ(report->stability_ari, 1.0);
    if (!report->moves.empty()) EXPECT_LT(report->stability_ari, 1.0);
    for (const auto& m : report->moves) {
      EXPECT_LT(m.target_loss, m.home_loss);  // every move is backed by evidence
      EXPECT_GE(m.streak, 2);                 // and survived the hysteresis
    }
    ari_per_run.push_back(TrueGroupingAri());
    std::cout << "run " << run << ": " << report->moves.size() << " moves, "
              << report->deferred.size() << " deferred, ARI vs truth " << ari_per_run.back()
              << "\n";
    Stream(1500, rng);
  }

  EXPECT_EQ(moved, 6u);  // exactly the mis-assigned providers
  EXPECT_DOUBLE_EQ(ari_per_run.back(), 1.0);
  const double loss_after = Stream(3000, rng);
  std::cout << "log-loss before " << loss_before << ", after " << loss_after << "\n";
  EXPECT_LT(loss_after, loss_before - 0.02);
  // The correctly placed providers never moved.
  for (int t = 0; t < kTypes; ++t) {
    for (int p = 0; p < 6; ++p) {
      EXPECT_EQ(engine_->GetProvider(ProviderId(t, p))->cluster, cluster_of_type_[t]);
    }
  }
}

TEST_F(ReclusterSimulation, NoEvidenceMeansNoMoves) {
  auto report = engine_->Recluster();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->moves.empty());
  EXPECT_EQ(report->providers_profiled, 0u);
  EXPECT_EQ(report->providers_skipped, size_t(kTypes * kProvidersPerType));
}

// The cut by distance: the number of performance clusters follows the data. Three groups of
// providers with loss profiles far apart (about 1 between groups, 0.01 within), one of each
// group mis-assigned: a threshold between the two scales finds the three groups although
// target_clusters asks for one; without the threshold the same target joins everything.
TEST(ReclusterPlan, DistanceThresholdDecidesTheNumberOfGroups) {
  const std::vector<ClusterId> clusters = {0, 1, 2};
  std::vector<ProviderProfile> profiles;
  for (int g = 0; g < 3; ++g) {
    for (int p = 0; p < 4; ++p) {
      ProviderProfile prof;
      prof.provider = "g" + std::to_string(g) + "p" + std::to_string(p);
      prof.current = static_cast<ClusterId>(p < 3 ? g : (g + 1) % 3);
      for (ClusterId c : clusters) {
        const double loss = (int(c) == g ? 0.2 : 1.2) + 0.01 * p;
        prof.cells[c] = {loss * 100, 100};
      }
      profiles.push_back(prof);
    }
  }
  auto proposed_groups = [&](double threshold) {
    ReclusterOptions o;
    o.min_evidence = 10;
    o.target_clusters = 1;
    o.distance_threshold = threshold;
    ReclusterState state;
    auto plan = PlanRecluster(profiles, clusters, o, &state);
    EXPECT_TRUE(plan.ok()) << plan.status().ToString();
    return plan.ok() ? plan->proposed : std::map<std::string, ClusterId>();
  };
  const auto by_distance = proposed_groups(0.3);
  ASSERT_EQ(by_distance.size(), 12u);
  for (const auto& [provider, c] : by_distance) {
    EXPECT_EQ(c, static_cast<ClusterId>(provider[1] - '0')) << provider;  // its true group
  }
  std::set<ClusterId> one;
  for (const auto& [provider, c] : proposed_groups(0)) one.insert(c);
  EXPECT_EQ(one.size(), 1u) << "without a threshold, target_clusters = 1 joins everything";
}

}  // namespace
}  // namespace dynspec
