// Off-policy evaluation from the command line (`dynspec ope`): IPS, SNIPS and doubly robust
// estimates (learn/ope.h) of a target policy's value from a log the engine wrote (the
// decision log, rank.decision_log) or from an Open Bandit Dataset csv.
//
// Decision log: each resolved decision contributes its first slate position (reward, logged
// propensity). Target policies are defined on the logged candidate scores, so any of them
// can be evaluated on any log: logged (the policy's own first-position probabilities:
// on-policy), uniform, greedy, softmax (temperature), epsilon_greedy (epsilon). The reward
// model of DR is the logged score (the engine's expected reward) of each candidate.
//
// Open Bandit Dataset: each row (one slot of one impression) contributes click and
// propensity. Targets: logged (on-policy), uniform (1 / number of items), greedy_affinity
// (the item with the highest user-item affinity, probability 1). DR uses the log's mean
// click rate as a constant reward model.
#pragma once

#include <string>

#include "dynspec/status.h"
#include "learn/ope.h"

namespace dynspec::eval {

struct OpeTarget {
  std::string policy = "logged";
  double temperature = 0.1;
  double epsilon = 0.05;
};

struct OpeReport {
  size_t rows = 0;
  double logged_mean_reward = 0;  // what the logging policy actually earned
  Estimate ips, snips, dr;
};

Result<OpeReport> EvaluateDecisionLog(const std::string& jsonl_path, const OpeTarget& target);
Result<OpeReport> EvaluateObdLog(const std::string& csv_path, const OpeTarget& target);

std::string FormatOpeReport(const OpeReport& report, const std::string& target_name);

}  // namespace dynspec::eval
