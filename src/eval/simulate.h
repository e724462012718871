// `dynspec simulate`: ranking policies compared in a bandit environment built from real data
// by the supervised-to-bandit conversion (docs/learning.md).
//
// Environment (from a time-ordered log such as the Amazon ratings; RunObdSimulation below for
// the Open Bandit Dataset): every event whose
// evaluated head is 1 (e.g. a rating >= 4: the user liked the item) is one round. The round
// offers `candidates` items: the liked item and others drawn uniformly from the items that
// have appeared in the log so far (implicit negatives). The policy picks one; its reward is 1
// when it picked the liked item and 0 otherwise, and it learns only from that reward (bandit
// feedback). Regret per round is 1 - reward: an oracle that knows the liked item always
// earns 1. Every policy sees the same rounds and the same candidate sets.
//
// Policies (each an Engine of its own over the same catalog and initial clusters, except
// uniform):
//   uniform         picks uniformly at random; learns nothing
//   greedy          rank.policy greedy, supervised learner
//   epsilon_greedy  rank.policy epsilon_greedy (epsilon 0.1), supervised learner
//   softmax         rank.policy softmax, supervised learner
//   softmax_ppo     softmax with PPO-clip fine-tuning on top of the supervised learner
//   ppo_only        softmax with PPO-clip as the only learner (learn.supervised false)
//   static_cluster  epsilon_greedy over one shared model per provider cluster (the blend
//                   puts all weight on the cluster model), supervised learner
#pragma once

#include <string>
#include <vector>

#include "dynspec/options.h"
#include "dynspec/status.h"
#include "eval/events.h"

namespace dynspec::eval {

struct SimulateOptions {
  EngineOptions engine;  // base settings of every engine policy
  std::string head = "like";
  size_t candidates = 10;
  size_t rounds = 0;                  // 0: every round the log has
  int clusters = 16;                  // initial provider clusters (content k-means)
  uint64_t seed = 1;                  // candidate sets and the uniform policy
  std::vector<std::string> policies;  // empty: all of them
  bool progress = true;
  // When set, each engine policy appends its resolved decisions to
  // <dir>/<policy>.decisions.jsonl (replaced at the start), for `dynspec ope`.
  std::string decision_log_dir;
};

struct PolicyResult {
  std::string name;
  double total_reward = 0;            // realized
  double expected_regret = 0;         // sum over rounds of best p - chosen p
  double later_half_mean_reward = 0;  // the second half of the rounds
  uint64_t ppo_updates = 0;
  double seconds = 0;
  std::vector<double> cumulative_reward;  // at each checkpoint
  std::vector<double> cumulative_regret;  // expected regret, at each checkpoint
};

struct SimulationReport {
  std::string environment;         // a one-line description
  double oracle_mean_reward = 0;   // mean over rounds of the best candidate's reward probability
  double uniform_mean_reward = 0;  // mean over rounds of the candidates' mean probability
  size_t rounds = 0;
  size_t candidates = 0;
  size_t items = 0;
  std::vector<size_t> checkpoints;  // round counts at which the curves are sampled
  std::vector<PolicyResult> policies;
};

// The policy names, in report order.
const std::vector<std::string>& SimulationPolicies();

Result<SimulationReport> RunSimulation(const std::vector<ReplayEvent>& events,
                                       const SimulateOptions& options);

// The same policies on the Open Bandit Dataset (semi-synthetic, docs/learning.md): every round
// is a user drawn from the log (its hashed features are the context) offered every item
// of the campaign (or `candidates` of them); the click probability of item i for user u is
// sigmoid(a_i + b * affinity_{u,i}), a ground truth fitted by L2-regularized logistic
// regression to the clicks of the log, and the realized click is drawn from it. The items
// come from item_context.csv next to the log (their hashed features make up their text).
// `rounds` 0 means 50,000.
Result<SimulationReport> RunObdSimulation(const std::string& obd_csv,
                                          const SimulateOptions& options);

std::string FormatSimulation(const SimulationReport& report);
// simulate.json, simulate.csv (checkpoint x policy cumulative reward and regret),
// simulate_reward.svg and simulate_regret.svg into `dir` (created if needed).
Status WriteSimulation(const SimulationReport& report, const std::string& dir);

}  // namespace dynspec::eval
