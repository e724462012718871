// dynspec simulate and dynspec ope on a synthetic log with a known structure: popular items
// are the liked item far more often, so a learning policy must beat uniform choice; the
// decision logs the policies write must give back their own reward on-policy.
#include "eval/simulate.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "eval/ope_report.h"
#include "test_util.h"

namespace dynspec::eval {
namespace {

using testing_util::ScopedTempDir;

// 40 items from 4 providers; the liked item of each event follows a Zipf law over items.
std::vector<ReplayEvent> SkewedLog(size_t n) {
  static const char* kWords[] = {"guitar", "recipes", "travel", "science"};
  std::mt19937_64 rng(5);
  std::vector<double> weights;
  for (int k = 0; k < 40; ++k) weights.push_back(1.0 / (k + 1));
  std::discrete_distribution<int> pick(weights.begin(), weights.end());
  std::vector<ReplayEvent> out;
  for (int k = 0; k < 40; ++k) {  // each item appears once first, unliked
    ReplayEvent e;
    e.timestamp = k;
    e.item = "item" + std::to_string(k);
    e.provider = "prov" + std::to_string(k % 4);
    e.text = std::string(kWords[k % 4]) + " magazine issue " + std::to_string(k);
    e.responses["like"] = 0;
    out.push_back(e);
  }
  for (size_t i = 0; i < n; ++i) {
    ReplayEvent e;
    e.timestamp = 100 + int64_t(i);
    e.item = "item" + std::to_string(pick(rng));
    e.responses["like"] = 1;
    out.push_back(e);
  }
  return out;
}

SimulateOptions Options() {
  SimulateOptions o;
  o.engine.model.heads = {{"like", HeadKind::kBinary, false}};
  o.engine.reward = {{"like", 1, 0}};
  o.engine.embed.dim = 64;
  o.engine.ppo.buffer_events = 64;
  o.clusters = 2;
  o.candidates = 10;
  o.progress = false;
  return o;
}

TEST(Simulate, LearningPoliciesBeatUniformOnASkewedLog) {
  ScopedTempDir dir;
  SimulateOptions o = Options();
  o.decision_log_dir = dir.path();
  auto report = RunSimulation(SkewedLog(3000), o);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->rounds, 3000u);
  ASSERT_EQ(report->policies.size(), SimulationPolicies().size());
  std::map<std::string, PolicyResult> by_name;
  for (const auto& p : report->policies) by_name[p.name] = p;
  for (const auto& name : SimulationPolicies()) ASSERT_TRUE(by_name.count(name)) << name;
  // Uniform earns 1 / candidates in expectation: 3000 rounds put it within about 0.02.
  EXPECT_NEAR(by_name["uniform"].later_half_mean_reward, 0.1, 0.035);
  for (const char* learner : {"greedy", "epsilon_greedy", "softmax_ppo"}) {
    EXPECT_GT(by_name[learner].later_half_mean_reward, 0.2) << learner;
  }
  EXPECT_GT(by_name["softmax_ppo"].ppo_updates, 10u);
  EXPECT_GT(by_name["ppo_only"].ppo_updates, 10u);
  std::printf(
      "later-half mean reward: uniform %.3f, softmax %.3f, softmax_ppo %.3f, ppo_only %.3f\n",
      by_name["uniform"].later_half_mean_reward, by_name["softmax"].later_half_mean_reward,
      by_name["softmax_ppo"].later_half_mean_reward, by_name["ppo_only"].later_half_mean_reward);
  EXPECT_EQ(by_name["greedy"].ppo_updates, 0u);
  // Curves: one point per checkpoint, non-decreasing, ending at the total.
  for (const auto& p : report->policies) {
    ASSERT_EQ(p.cumulative_reward.size(), report->checkpoints.size()) << p.name;
    for (size_t c = 1; c < p.cumulative_reward.size(); ++c) {
      EXPECT_GE(p.cumulative_reward[c], p.cumulative_reward[c - 1]);
    }
    EXPECT_DOUBLE_EQ(p.cumulative_reward.back(), p.total_reward);
  }
  // The softmax policy's own log evaluates its own value exactly on-policy (IPS), and its
  // logged mean is what the simulation counted.
  auto ope = EvaluateDecisionLog(dir.Sub("softmax.decisions.jsonl"), {});
  ASSERT_TRUE(ope.ok()) << ope.status().ToString();
  EXPECT_EQ(ope->rows, 3000u);
  EXPECT_NEAR(ope->logged_mean_reward, by_name["softmax"].total_reward / 3000.0, 1e-12);
  EXPECT_NEAR(ope->ips.value, ope->logged_mean_reward, 1e-9);
  EXPECT_LE(ope->dr.ci_low, ope->logged_mean_reward);
  EXPECT_GE(ope->dr.ci_high, ope->logged_mean_reward);
  // Uniform as a target from the softmax log: its true value is 0.1.
  OpeTarget uniform;
  uniform.policy = "uniform";
  auto u = EvaluateDecisionLog(dir.Sub("softmax.decisions.jsonl"), uniform);
  ASSERT_TRUE(u.ok());
  EXPECT_LE(u->snips.ci_low, 0.1);
  EXPECT_GE(u->snips.ci_high, 0.1);
  ASSERT_TRUE(WriteSimulation(*report, dir.Sub("report")).ok());
}

TEST(Simulate, BadOptionsAndLogsAreRefused) {
  SimulateOptions o = Options();
  o.policies = {"greedy", "nope"};
  EXPECT_NE(RunSimulation(SkewedLog(10), o).status().message().find("unknown policy 'nope'"),
            std::string::npos);
  o.policies = {};
  o.candidates = 1;
  EXPECT_FALSE(RunSimulation(SkewedLog(10), o).ok());
  o.candidates = 100;  // more than the 40 items: no round can be built
  EXPECT_EQ(RunSimulation(SkewedLog(10), o).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(EvaluateDecisionLog("no/such/file.jsonl", {}).status().code(), StatusCode::kIoError);
  OpeTarget bad;
  bad.policy = "mystery";
  EXPECT_FALSE(
      EvaluateObdLog(std::string(DYNSPEC_DATA_DIR) + "/open_bandit_dataset/random/men/men.csv", bad)
          .ok());
}

TEST(Simulate, ObdEnvironmentFromTheLogsFeatures) {
  SimulateOptions o = Options();
  o.engine.model.heads = {{"click", HeadKind::kBinary, false}};
  o.engine.reward = {{"click", 1, 0}};
  o.head = "click";
  o.rounds = 400;
  o.policies = {"uniform", "greedy"};
  const std::string csv = std::string(DYNSPEC_DATA_DIR) + "/open_bandit_dataset/random/men/men.csv";
  auto report = RunObdSimulation(csv, o);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->items, 34u);
  EXPECT_EQ(report->rounds, 400u);
  EXPECT_EQ(report->candidates, 10u);
  // The fitted click model: tiny rates, the best candidate above the average one.
  EXPECT_GT(report->oracle_mean_reward, report->uniform_mean_reward);
  EXPECT_LT(report->oracle_mean_reward, 0.05);
  for (const auto& p : report->policies) {
    EXPECT_GE(p.expected_regret, 0.0);
    EXPECT_LE(p.expected_regret, 400 * report->oracle_mean_reward + 1e-9);
    ASSERT_FALSE(p.cumulative_regret.empty());
    EXPECT_DOUBLE_EQ(p.cumulative_regret.back(), p.expected_regret);
  }
  // Same rounds and draws: the result does not depend on what else runs.
  auto again = RunObdSimulation(csv, o);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->policies[1].total_reward, report->policies[1].total_reward);
  // The items file must be beside the log.
  ScopedTempDir dir;
  std::filesystem::copy_file(csv, dir.Sub("men.csv"));
  auto missing = RunObdSimulation(dir.Sub("men.csv"), o);
  EXPECT_EQ(missing.status().code(), StatusCode::kIoError);
  EXPECT_NE(missing.status().message().find("item_context.csv"), std::string::npos);
}

TEST(Simulate, ObdOnPolicyValueIsTheLoggedClickRate) {
  auto r =
      EvaluateObdLog(std::string(DYNSPEC_DATA_DIR) + "/open_bandit_dataset/random/men/men.csv", {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NEAR(r->ips.value, r->logged_mean_reward, 1e-12);
  EXPECT_NEAR(r->snips.value, r->logged_mean_reward, 1e-12);
}

}  // namespace
}  // namespace dynspec::eval
