#include "eval/ope_report.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "engine/decisions.h"
#include "eval/obd.h"
#include "eval/table.h"
#include "learn/exploration.h"

namespace dynspec::eval {
namespace {

Result<OpeReport> Estimate3(const std::vector<LoggedDecision>& rows, double logged_sum) {
  if (rows.empty()) return Status::InvalidArgument("the log has no usable decision");
  OpeReport r;
  r.rows = rows.size();
  r.logged_mean_reward = logged_sum / double(rows.size());
  DYNSPEC_ASSIGN_OR_RETURN(r.ips, Ips(rows));
  DYNSPEC_ASSIGN_OR_RETURN(r.snips, Snips(rows));
  DYNSPEC_ASSIGN_OR_RETURN(r.dr, DoublyRobust(rows));
  return r;
}

Result<std::vector<double>> TargetProbabilities(const DecisionRecord& d, const OpeTarget& t) {
  if (t.policy == "logged") return d.probabilities;
  const size_t n = d.scores.size();
  if (t.policy == "uniform") return std::vector<double>(n, 1.0 / double(n));
  ExplorationOptions o;
  o.temperature = t.temperature;
  o.epsilon = t.epsilon;
  if (t.policy == "greedy") {
    o.kind = ExplorationKind::kGreedy;
  } else if (t.policy == "softmax") {
    o.kind = ExplorationKind::kSoftmax;
  } else if (t.policy == "epsilon_greedy") {
    o.kind = ExplorationKind::kEpsilonGreedy;
  } else {
    return Status::InvalidArgument("target policy '" + t.policy +
                                   "' is not logged, uniform, greedy, softmax or epsilon_greedy");
  }
  return ActionProbabilities(d.scores, o);
}

}  // namespace

Result<OpeReport> EvaluateDecisionLog(const std::string& path, const OpeTarget& target) {
  std::ifstream in(path);
  if (!in) return Status::IoError("cannot read decision log '" + path + "'");
  std::vector<LoggedDecision> rows;
  double logged_sum = 0;
  std::string line;
  for (size_t number = 1; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    auto d = DecisionFromJsonLine(line);
    if (!d.ok()) return d.status().WithContext(path + ":" + std::to_string(number));
    if (d->chosen.empty()) continue;
    DYNSPEC_ASSIGN_OR_RETURN(std::vector<double> pi, TargetProbabilities(*d, target));
    LoggedDecision row;
    const uint32_t a = d->chosen[0];
    row.reward = d->rewards[0];
    row.logged_propensity = d->propensities[0];
    row.target_probability = pi[a];
    row.reward_model_logged = d->scores[a];
    for (size_t j = 0; j < pi.size(); ++j) row.reward_model_target += pi[j] * d->scores[j];
    logged_sum += row.reward;
    rows.push_back(row);
  }
  return Estimate3(rows, logged_sum);
}

Result<OpeReport> EvaluateObdLog(const std::string& csv_path, const OpeTarget& target) {
  DYNSPEC_ASSIGN_OR_RETURN(std::vector<ObdRow> obd, ReadObd(csv_path));
  if (target.policy != "logged" && target.policy != "uniform" &&
      target.policy != "greedy_affinity") {
    return Status::InvalidArgument("target policy '" + target.policy +
                                   "' is not logged, uniform or greedy_affinity for an OBD log");
  }
  double clicks = 0;
  for (const auto& r : obd) clicks += r.click;
  const double mean = obd.empty() ? 0 : clicks / double(obd.size());
  std::vector<LoggedDecision> rows;
  for (const auto& r : obd) {
    LoggedDecision row;
    row.reward = r.click;
    row.logged_propensity = r.propensity;
    if (target.policy == "logged") {
      row.target_probability = r.propensity;
    } else if (target.policy == "uniform") {
      row.target_probability = r.affinity.empty() ? 0 : 1.0 / double(r.affinity.size());
    } else {
      const auto best = std::max_element(r.affinity.begin(), r.affinity.end()) - r.affinity.begin();
      row.target_probability = best == r.item_id ? 1.0 : 0.0;
    }
    row.reward_model_logged = mean;
    row.reward_model_target = mean;
    rows.push_back(row);
  }
  return Estimate3(rows, clicks);
}

std::string FormatOpeReport(const OpeReport& r, const std::string& target_name) {
  std::ostringstream out;
  out << r.rows << " logged decisions; the logging policy earned "
      << FormatDouble(r.logged_mean_reward, 5) << " per decision\n"
      << "estimated value of target policy '" << target_name << "' (95% interval):\n";
  TextTable t({"estimator", "value", "std error", "interval"});
  auto row = [&](const char* name, const Estimate& e) {
    t.AddRow({name, FormatDouble(e.value, 5), FormatDouble(e.std_error, 5),
              "[" + FormatDouble(e.ci_low, 5) + ", " + FormatDouble(e.ci_high, 5) + "]"});
  };
  row("IPS", r.ips);
  row("SNIPS", r.snips);
  row("DR", r.dr);
  out << t.Render();
  return out.str();
}

}  // namespace dynspec::eval
