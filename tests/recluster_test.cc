// Re-clustering with a known ground truth: providers drawn from three latent content types
// that differ in how users respond, deliberately mis-assigned at the start. Shadow
// evaluation must find that the mis-assigned providers are predicted better by another
// cluster, re-clustering must move them there (recovering the true grouping), and the
// prediction loss on the stream must drop after the moves.
#include "cluster/recluster.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "cluster/hierarchical.h"
#include "dynspec/engine.h"
#include "dynspec/store.h"
#include "test_util.h"

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

// For the content placement test: each type draws its words from its own pool, so content
// does reveal the type.
const char* kTypedWords[kTypes][6] = {
    {"guitar", "songs", "concert", "album", "band", "lyrics"},
    {"recipes", "kitchen", "baking", "dinner", "spices", "bread"},
    {"travel", "hotels", "flights", "beaches", "islands", "tours"}};

std::string ProviderId(int type, int p) {
  return "type" + std::to_string(type) + "-prov" + std::to_string(p);
}

// How the simulation starts.
struct Layout {
  bool typed_content = false;                  // words from the type's own pool (kTypedWords)
  int feedback_providers = kProvidersPerType;  // Stream feeds providers p < this only
  // The starting cluster of provider p of type t (type t's own cluster is t): by default
  // providers 6 and 7 of each type start in the next type's cluster, so every cluster is
  // 6 of its type and 2 mis-assigned.
  std::function<ClusterId(int t, int p)> cluster = [](int t, int p) {
    return static_cast<ClusterId>(p < 6 ? t : (t + 1) % kTypes);
  };
};

class ReclusterSimulation : public ::testing::Test {
 protected:
  static EngineOptions Options() {
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
    return o;
  }

  void SetUp() override { Populate(Options(), nullptr); }

  // Opens the engine over `store` (memory when null), ingests the providers' items and
  // assigns the clusters.
  void Populate(const EngineOptions& o, std::unique_ptr<Store> store,
                const Layout& layout = Layout()) {
    engine_.reset();
    items_.clear();
    auto e = Engine::Open(o, std::move(store));
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(e).value();
    std::mt19937 rng(5);
    for (int t = 0; t < kTypes; ++t) {
      for (int p = 0; p < kProvidersPerType; ++p) {
        for (int i = 0; i < kItemsPerProvider; ++i) {
          const std::string id = ProviderId(t, p) + "-item" + std::to_string(i);
          std::string text;
          for (int w = 0; w < 5; ++w) {
            text +=
                std::string(layout.typed_content ? kTypedWords[t][rng() % 6] : kWords[rng() % 18]) +
                " ";
          }
          ASSERT_TRUE(engine_->Ingest({id, ProviderId(t, p), {text}}).ok());
          if (p < layout.feedback_providers) items_.push_back({id, t});
        }
      }
    }
    ASSERT_TRUE(engine_->BootstrapClusters(kTypes).ok());
    ASSERT_EQ(engine_->ListClusters().size(), size_t(kTypes));
    for (int t = 0; t < kTypes; ++t) {
      cluster_of_type_[t] = static_cast<ClusterId>(t);
      for (int p = 0; p < kProvidersPerType; ++p) {
        ASSERT_TRUE(engine_->MoveProvider(ProviderId(t, p), layout.cluster(t, p)).ok());
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

  // Streams 3000 events (seed 11), then runs re-clustering `runs` times.
  std::vector<ReclusterReport> StreamThenRecluster(int runs) {
    std::mt19937 rng(11);
    Stream(3000, rng);
    std::vector<ReclusterReport> reports;
    for (int run = 0; run < runs; ++run) {
      auto report = engine_->Recluster();
      EXPECT_TRUE(report.ok()) << report.status().ToString();
      reports.push_back(report.ok() ? *report : ReclusterReport());
    }
    return reports;
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
    if (report->moves.empty()) {
      EXPECT_DOUBLE_EQ(report->stability_ari, 1.0);
    } else {
      EXPECT_LT(report->stability_ari, 1.0);
    }
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

// ---- providers with little data, placed by content --------------------------------------

// Content reveals the type; providers 5-7 of each type get no feedback.
Layout ContentLayout() {
  Layout layout;
  layout.typed_content = true;
  layout.feedback_providers = 5;
  return layout;
}

// Content reveals the type here. Per type, providers 0-4 get feedback and sit in their type's
// cluster; providers 5-7 never get any: 5 sits in its type's cluster, 6 and 7 start in the
// next type's. Performance clusters only the fed ones; the others follow their content.
TEST_F(ReclusterSimulation, ProvidersWithoutFeedbackFollowTheirContent) {
  Populate(Options(), nullptr, ContentLayout());
  const std::vector<ReclusterReport> runs = StreamThenRecluster(3);
  for (size_t run = 0; run < runs.size(); ++run) {
    const ReclusterReport* report = &runs[run];
    std::cout << "run " << run << ": " << report->moves.size() << " moves, "
              << report->deferred.size() << " deferred, " << report->providers_by_content
              << " compared by content\n";
    for (const auto& m : report->moves) {
      std::cout << "  " << m.provider << " " << m.from << "->" << m.to << " similarity "
                << m.home_similarity << " -> " << m.target_similarity << "\n";
    }
  }
  EXPECT_EQ(runs[0].providers_profiled, size_t(kTypes * 5));
  EXPECT_EQ(runs[0].providers_skipped, size_t(kTypes * 3));
  EXPECT_EQ(runs[0].providers_by_content, size_t(kTypes * 3));
  EXPECT_TRUE(runs[0].moves.empty());  // hysteresis: found in run 0 ...
  EXPECT_EQ(runs[0].deferred.size(), size_t(kTypes * 2));
  ASSERT_EQ(runs[1].moves.size(), size_t(kTypes * 2));  // ... moved in run 1
  for (const auto& m : runs[1].moves) {
    EXPECT_TRUE(m.by_content) << m.provider;
    EXPECT_GT(m.target_similarity - m.home_similarity, Options().recluster.content_move_margin);
    EXPECT_EQ(m.home_evidence, 0);  // no feedback at all
    EXPECT_TRUE(m.provider.ends_with("prov6") || m.provider.ends_with("prov7")) << m.provider;
    EXPECT_EQ(m.to, cluster_of_type_[m.provider[4] - '0']) << m.provider;
  }
  EXPECT_TRUE(runs[2].moves.empty());
  EXPECT_TRUE(runs[2].deferred.empty());
  EXPECT_DOUBLE_EQ(TrueGroupingAri(), 1.0);
}

// The same start with content placement turned off: the providers without feedback stay.
TEST_F(ReclusterSimulation, ContentPlacementCanBeTurnedOff) {
  EngineOptions o = Options();
  o.recluster.content_move_margin = 2;
  Populate(o, nullptr, ContentLayout());
  for (const auto& report : StreamThenRecluster(3)) {
    EXPECT_TRUE(report.moves.empty());
    EXPECT_EQ(report.providers_by_content, 0u);
  }
}

// The plan itself, on fixed inputs: two clusters with contents (1, 0) and (0, 1).
TEST(ReclusterPlan, LittleDataProvidersArePlacedByContentAfterTheEvidence) {
  const std::vector<ClusterId> clusters = {0, 1};
  std::vector<ProviderProfile> profiles;
  auto profiled = [&](const std::string& id, ClusterId current, int group) {
    ProviderProfile p{
        id, current, {}, group == 0 ? std::vector<float>{1, 0} : std::vector<float>{0, 1}};
    for (ClusterId c : clusters) p.cells[c] = {(int(c) == group ? 0.2 : 1.2) * 100, 100};
    profiles.push_back(p);
  };
  for (int i = 0; i < 3; ++i) profiled("a" + std::to_string(i), 0, 0);
  for (int i = 0; i < 3; ++i) profiled("b" + std::to_string(i), 1, 1);
  profiled("m", 0, 1);  // evidence says cluster 1
  auto little = [&](const std::string& id, ClusterId current, float x, float y) {
    ProviderProfile p{id, current, {}, {}};
    if (x != 0 || y != 0) {
      const float n = std::sqrt(x * x + y * y);
      p.content = {x / n, y / n};
    }
    p.cells[current] = {5.0, 2.0};  // below min_evidence
    profiles.push_back(p);
  };
  little("x", 0, 0.1f, 1);   // content of cluster 1: moves
  little("y", 1, 0, 1);      // already there
  little("z", 0, 1, 0.96f);  // closer to cluster 0 (its own)
  little("w", 0, 0.97f, 1);  // closer to cluster 1, but by less than the margin
  little("n", 0, 0, 0);      // no content
  ReclusterOptions o;
  o.min_evidence = 10;
  o.consecutive_runs = 2;
  o.max_moves_per_run = 1;
  ReclusterState state;
  auto first = PlanRecluster(profiles, clusters, o, &state);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->providers_profiled, 7u);
  EXPECT_EQ(first->providers_skipped, 5u);
  EXPECT_EQ(first->providers_by_content, 4u);
  ASSERT_EQ(first->deferred.size(), 2u);
  EXPECT_EQ(first->deferred[0].provider, "m");  // evidence first
  EXPECT_EQ(first->deferred[1].provider, "x");
  EXPECT_TRUE(first->deferred[1].by_content);
  EXPECT_EQ(first->deferred[1].to, 1u);
  EXPECT_EQ(first->deferred[1].home_evidence, 2.0);
  auto second = PlanRecluster(profiles, clusters, o, &state);
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->moves.size(), 1u);  // the cap: the evidence-backed move wins
  EXPECT_EQ(second->moves[0].provider, "m");
  ASSERT_EQ(second->deferred.size(), 1u);
  EXPECT_EQ(second->deferred[0].provider, "x");
  EXPECT_EQ(second->deferred[0].streak, 2);

  o.content_move_margin = 2;  // off
  ReclusterState fresh;
  auto off = PlanRecluster(profiles, clusters, o, &fresh);
  ASSERT_TRUE(off.ok());
  for (const auto& m : off->deferred) EXPECT_FALSE(m.by_content) << m.provider;

  profiles.back().content = {1, 0, 0};
  auto bad = PlanRecluster(profiles, clusters, o, &fresh);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("provider 'n' has a content centroid of 3 values"),
            std::string::npos)
      << bad.status().ToString();
}

// ---- durable statistics: the loss matrix and the hysteresis survive a restart -----------

std::unique_ptr<Store> DurableStoreAt(const std::string& dir) {
  auto store = OpenDurableStore(dir, DurableStoreOptions());
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

// Bit-for-bit: the statistics are stored as their IEEE-754 bits.
void ExpectSamePerformance(const std::vector<ProviderPerformance>& a,
                           const std::vector<ProviderPerformance>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].provider, b[i].provider);
    EXPECT_EQ(a[i].cluster, b[i].cluster);
    ASSERT_EQ(a[i].losses.size(), b[i].losses.size()) << a[i].provider;
    for (size_t c = 0; c < a[i].losses.size(); ++c) {
      EXPECT_EQ(a[i].losses[c].cluster, b[i].losses[c].cluster);
      EXPECT_EQ(a[i].losses[c].mean_loss, b[i].losses[c].mean_loss) << a[i].provider;
      EXPECT_EQ(a[i].losses[c].evidence, b[i].losses[c].evidence) << a[i].provider;
    }
  }
}

// A move as "provider from->to home_loss target_loss streak", exact to the bit.
std::vector<std::string> Describe(const std::vector<ProviderMove>& moves) {
  std::vector<std::string> out;
  for (const auto& m : moves) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s %u->%u %a %a %d", m.provider.c_str(), m.from, m.to,
                  m.home_loss, m.target_loss, m.streak);
    out.push_back(buf);
  }
  return out;
}

TEST_F(ReclusterSimulation, LossMatrixSurvivesARestart) {
  testing_util::ScopedTempDir dir;
  EngineOptions o = Options();
  // Sampled: a loss row is written only with the feedback events that were shadow-evaluated.
  o.recluster.shadow_sample_rate = 0.3;
  Populate(o, DurableStoreAt(dir.Sub("data")));
  std::mt19937 rng(11);
  Stream(2000, rng);
  const std::vector<ProviderPerformance> before = engine_->Performance();
  ASSERT_EQ(before.size(), size_t(kTypes * kProvidersPerType));
  engine_.reset();
  auto reopened = Engine::Open(o, DurableStoreAt(dir.Sub("data")));
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  ExpectSamePerformance(before, (*reopened)->Performance());
}

// The same stream and the same two re-clustering runs, once in one process and once with
// the engine reopened over its data directory before each run: the first run only finds the
// candidates (hysteresis), so the second moves them only if the streaks survived too.
TEST_F(ReclusterSimulation, ReclusterAfterARestartMovesLikeWithoutOne) {
  const std::vector<ReclusterReport> reference = StreamThenRecluster(2);
  ASSERT_TRUE(reference[0].moves.empty());
  ASSERT_EQ(reference[0].deferred.size(), 6u);
  ASSERT_EQ(reference[1].moves.size(), 6u);
  ASSERT_DOUBLE_EQ(TrueGroupingAri(), 1.0);

  testing_util::ScopedTempDir dir;
  Populate(Options(), DurableStoreAt(dir.Sub("data")));
  std::mt19937 rng2(11);
  Stream(3000, rng2);
  for (int run = 0; run < 2; ++run) {
    engine_.reset();
    auto reopened = Engine::Open(Options(), DurableStoreAt(dir.Sub("data")));
    ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
    engine_ = std::move(reopened).value();
    auto report = engine_->Recluster();
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_EQ(Describe(report->moves), Describe(reference[run].moves)) << "run " << run;
    EXPECT_EQ(Describe(report->deferred), Describe(reference[run].deferred)) << "run " << run;
    EXPECT_EQ(report->providers_profiled, reference[run].providers_profiled);
  }
  EXPECT_DOUBLE_EQ(TrueGroupingAri(), 1.0);
  // And the moves themselves are durable.
  engine_.reset();
  auto reopened = Engine::Open(Options(), DurableStoreAt(dir.Sub("data")));
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  engine_ = std::move(reopened).value();
  EXPECT_DOUBLE_EQ(TrueGroupingAri(), 1.0);
}

// `dynspec recluster --data-dir` on the closed directory, twice: the same moves as the
// engine made in process, printed as POST /v1/recluster answers, and the report files.
TEST_F(ReclusterSimulation, CommandReclustersAClosedDataDirectory) {
  const std::vector<ReclusterReport> reference = StreamThenRecluster(2);
  ASSERT_EQ(reference[1].moves.size(), 6u);

  testing_util::ScopedTempDir dir;
  Populate(Options(), DurableStoreAt(dir.Sub("data")));
  std::mt19937 rng2(11);
  Stream(3000, rng2);
  engine_.reset();
  for (int run = 0; run < 2; ++run) {
    const std::string out = dir.Sub("run" + std::to_string(run));
    const std::string command = std::string(DYNSPEC_CLI_PATH) + " recluster --data-dir " +
                                dir.Sub("data") +
                                " --recluster.min_evidence 10 --recluster.move_margin 0.01"
                                " --recluster.consecutive_runs 2 --recluster.period_seconds 0"
                                " --out " +
                                out + " > " + out + ".json";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
    std::ifstream in(out + ".json");
    const auto report = nlohmann::json::parse(in);
    std::set<std::string> moved, expected;
    for (const auto& m : report["moves"]) {
      moved.insert(m["provider"].get<std::string>() + " " + std::to_string(int(m["from"])) + "->" +
                   std::to_string(int(m["to"])));
    }
    for (const auto& m : reference[run].moves) {
      expected.insert(m.provider + " " + std::to_string(m.from) + "->" + std::to_string(m.to));
    }
    EXPECT_EQ(moved, expected) << "run " << run;
    EXPECT_EQ(report["deferred"].size(), reference[run].deferred.size()) << "run " << run;
    EXPECT_TRUE(std::filesystem::exists(out + "/recluster.json"));
    EXPECT_TRUE(std::filesystem::exists(out + "/dendrogram.svg"));
  }
  auto reopened = Engine::Open(Options(), DurableStoreAt(dir.Sub("data")));
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  engine_ = std::move(reopened).value();
  EXPECT_DOUBLE_EQ(TrueGroupingAri(), 1.0);
}

TEST_F(ReclusterSimulation, CommandNeedsADataDirectoryOrAServer) {
  const std::string base = std::string(DYNSPEC_CLI_PATH) + " recluster";
  EXPECT_NE(std::system((base + " 2>/dev/null").c_str()), 0);
  EXPECT_NE(std::system((base + " --data-dir /nonexistent/dynspec-dir 2>/dev/null").c_str()), 0);
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
