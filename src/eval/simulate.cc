#include "eval/simulate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <unordered_map>

#include "dynspec/engine.h"
#include "eval/io.h"
#include "eval/obd.h"
#include "eval/progress.h"
#include "eval/svg_plot.h"
#include "eval/table.h"

namespace dynspec::eval {
namespace {

// One round: a context, the candidates, each candidate's reward probability, and the
// uniform draw that realizes the reward (reward = draw < p), shared by every policy so that
// they differ only in what they choose (common random numbers).
struct Round {
  Context context;
  std::vector<ItemId> candidates;
  std::vector<double> probability;
  double draw = 0.5;
};

struct Environment {
  std::string description;
  std::vector<ItemInput> catalog;
  std::vector<Round> rounds;
};

// Amazon-style logs: rounds at every liked event, the liked item among random others seen so
// far; reward 1 for the liked item (probability 1), 0 otherwise.
Result<Environment> LogEnvironment(const std::vector<ReplayEvent>& events,
                                   const SimulateOptions& o) {
  Environment env;
  std::unordered_map<ItemId, bool> in_catalog;
  for (size_t i = 0; i < events.size(); ++i) {
    const ReplayEvent& e = events[i];
    if (!in_catalog.emplace(e.item, true).second) continue;
    if (e.provider.empty()) {
      return Status::InvalidArgument("event " + std::to_string(i) + ": item '" + e.item +
                                     "' first appears without a provider");
    }
    env.catalog.push_back({e.item, e.provider, {e.text, e.vector}});
  }
  std::mt19937_64 rng(o.seed);
  std::vector<ItemId> seen;
  std::unordered_map<ItemId, size_t> seen_index;
  for (size_t i = 0; i < events.size(); ++i) {
    const ReplayEvent& e = events[i];
    if (seen_index.emplace(e.item, seen.size()).second) seen.push_back(e.item);
    auto r = e.responses.find(o.head);
    if (r == e.responses.end() || r->second < 1 || seen.size() < o.candidates) continue;
    Round round;
    std::vector<ItemId> picked = {e.item};
    while (picked.size() < o.candidates) {
      const ItemId& other = seen[rng() % seen.size()];
      if (std::find(picked.begin(), picked.end(), other) == picked.end()) picked.push_back(other);
    }
    std::shuffle(picked.begin(), picked.end(), rng);
    for (const auto& id : picked) round.probability.push_back(id == e.item ? 1.0 : 0.0);
    round.candidates = std::move(picked);
    env.rounds.push_back(std::move(round));
    if (o.rounds > 0 && env.rounds.size() == o.rounds) break;
  }
  if (env.rounds.empty()) {
    return Status::InvalidArgument("the log has no round: no event with " + o.head + " = 1 after " +
                                   std::to_string(o.candidates) + " items");
  }
  env.description = "supervised-to-bandit on the log: the liked item among " +
                    std::to_string(o.candidates) + " candidates, reward 1 for it";
  return env;
}

double Sigmoid(double z) { return 1 / (1 + std::exp(-z)); }

// item_context.csv of an OBD campaign: index, item_id, item_feature_0 (a number), then
// hashed categorical features.
Result<std::vector<ItemInput>> ReadObdItems(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::IoError("cannot read " + path);
  std::string line;
  std::getline(in, line);  // header
  std::vector<ItemInput> items;
  for (size_t number = 2; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) f.push_back(cell);
    const std::string where = path + ":" + std::to_string(number);
    if (f.size() < 4) return Status::InvalidArgument(where + ": expected at least 4 columns");
    char* end = nullptr;
    const double level = std::strtod(f[2].c_str(), &end);
    if (end == f[2].c_str() || !std::isfinite(level)) {
      return Status::InvalidArgument(where + ": item_feature_0 is not a number");
    }
    if (f[1] != std::to_string(items.size())) {
      return Status::InvalidArgument(where + ": item ids must be 0, 1, 2, ... in order");
    }
    // Text from the categorical features (shared values make items neighbours) and the
    // number in coarse buckets; the provider is the first categorical feature.
    std::string text = "level" + std::to_string(static_cast<int>(std::floor(level * 2)));
    for (size_t k = 3; k < f.size(); ++k) {
      text += " k" + std::to_string(k) + "x" + f[k].substr(0, 8);
    }
    items.push_back({"obd-item-" + f[1], "obd-" + f[3].substr(0, 8), {text, {}}});
  }
  if (items.size() < 2) return Status::InvalidArgument(path + ": fewer than 2 items");
  return items;
}

// L2-regularized logistic regression of the clicks on a_i + b * affinity_{u,i}, with
// a_i = c + d_i and the penalty on d_i (items with few clicks shrink to the shared rate);
// full-batch gradient descent, deterministic.
void FitObdTruth(const std::vector<ObdRow>& rows, size_t items, std::vector<double>* a, double* b) {
  double clicks = 0;
  for (const auto& r : rows) clicks += r.click;
  const double rate = std::clamp(clicks / double(rows.size()), 1e-4, 0.5);
  double c = std::log(rate / (1 - rate)), slope = 0;
  std::vector<double> d(items, 0.0);
  const double n = double(rows.size()), l2 = 20.0 / n, lr = 2.0;
  for (int iter = 0; iter < 3000; ++iter) {
    double gc = 0, gb = 0;
    std::vector<double> gd(items, 0.0);
    for (const auto& r : rows) {
      const double aff = r.affinity[r.item_id];
      const double g = Sigmoid(c + d[r.item_id] + slope * aff) - r.click;
      gc += g;
      gd[r.item_id] += g;
      gb += g * aff;
    }
    c -= lr * gc / n;
    slope -= lr * gb / n;
    for (size_t i = 0; i < items; ++i) d[i] -= lr * (gd[i] / n + l2 * d[i]);
  }
  a->resize(items);
  for (size_t i = 0; i < items; ++i) (*a)[i] = c + d[i];
  *b = slope;
}

Result<Environment> ObdEnvironment(const std::string& csv, const SimulateOptions& o) {
  DYNSPEC_ASSIGN_OR_RETURN(std::vector<ObdRow> rows, ReadObd(csv));
  const std::string items_path =
      (std::filesystem::path(csv).parent_path() / "item_context.csv").string();
  Environment env;
  DYNSPEC_ASSIGN_OR_RETURN(env.catalog, ReadObdItems(items_path));
  const size_t items = env.catalog.size();
  for (const auto& r : rows) {
    if (r.affinity.size() != items || r.item_id < 0 || size_t(r.item_id) >= items) {
      return Status::InvalidArgument(csv + ": rows do not match the " + std::to_string(items) +
                                     " items of " + items_path);
    }
  }
  std::vector<double> a;
  double b = 0;
  FitObdTruth(rows, items, &a, &b);
  const size_t n = o.rounds > 0 ? o.rounds : 50000;
  const size_t k = std::min(o.candidates, items);
  std::mt19937_64 rng(o.seed);
  std::uniform_real_distribution<double> unit(0, 1);
  std::vector<size_t> all(items);
  for (size_t i = 0; i < items; ++i) all[i] = i;
  for (size_t t = 0; t < n; ++t) {
    const ObdRow& user = rows[rng() % rows.size()];
    Round round;
    for (size_t f = 0; f < user.user_features.size(); ++f) {
      round.context.sparse.emplace_back("u" + std::to_string(f) + "=" + user.user_features[f],
                                        1.0f);
    }
    std::shuffle(all.begin(), all.end(), rng);
    for (size_t j = 0; j < k; ++j) {
      round.candidates.push_back(env.catalog[all[j]].id);
      round.probability.push_back(Sigmoid(a[all[j]] + b * user.affinity[all[j]]));
    }
    round.draw = unit(rng);
    env.rounds.push_back(std::move(round));
  }
  std::ostringstream d;
  d << "Open Bandit Dataset " << std::filesystem::path(csv).filename().string()
    << ": users drawn from " << rows.size() << " logged rows, " << k << " of " << items
    << " items per round, click ~ Bernoulli(sigmoid(a_i + " << FormatDouble(b, 3)
    << " * affinity)) fitted to the log's clicks";
  env.description = d.str();
  return env;
}

EngineOptions PolicyOptions(const std::string& name, const SimulateOptions& o) {
  EngineOptions e = o.engine;
  e.recluster.period_seconds = 0;
  e.recluster.shadow_sample_rate = 0;
  e.rank.expiry_check_ms = 0;
  e.rank.seed = o.seed + 17;
  if (name == "greedy") e.rank.policy = RankPolicy::kGreedy;
  if (name == "epsilon_greedy" || name == "static_cluster") {
    e.rank.policy = RankPolicy::kEpsilonGreedy;
    e.rank.epsilon = 0.1;
  }
  if (name == "softmax" || name == "softmax_ppo" || name == "ppo_only") {
    e.rank.policy = RankPolicy::kSoftmax;
  }
  if (name == "softmax_ppo" || name == "ppo_only") e.ppo.enabled = true;
  if (name == "ppo_only") e.learn.supervised = false;
  if (!o.decision_log_dir.empty()) {
    e.rank.decision_log = o.decision_log_dir + "/" + name + ".decisions.jsonl";
    std::filesystem::remove(e.rank.decision_log);
  }
  if (name == "static_cluster") {
    // Every blend is (almost) all cluster model: neighbours and the item's own model get a
    // negligible share.
    e.blend.cluster_prior_weight = 1e12;
    e.blend.self_shrinkage = 1e12;
  }
  return e;
}

Status CheckPolicies(const SimulateOptions& o) {
  if (o.candidates < 2) return Status::InvalidArgument("candidates must be >= 2");
  for (const auto& n : o.policies) {
    const auto& all = SimulationPolicies();
    if (std::find(all.begin(), all.end(), n) == all.end()) {
      return Status::InvalidArgument("unknown policy '" + n + "'");
    }
  }
  return Status::Ok();
}

Result<SimulationReport> RunEnvironment(const Environment& env, const SimulateOptions& o) {
  const std::vector<std::string> names = o.policies.empty() ? SimulationPolicies() : o.policies;
  const std::vector<Round>& rounds = env.rounds;
  if (!o.decision_log_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.decision_log_dir, ec);
    if (ec) return Status::IoError("cannot create " + o.decision_log_dir + ": " + ec.message());
  }
  SimulationReport report;
  report.environment = env.description;
  report.rounds = rounds.size();
  report.candidates = rounds.front().candidates.size();
  report.items = env.catalog.size();
  for (const Round& r : rounds) {
    report.oracle_mean_reward += *std::max_element(r.probability.begin(), r.probability.end());
    for (double p : r.probability) report.uniform_mean_reward += p / double(r.probability.size());
  }
  report.oracle_mean_reward /= double(rounds.size());
  report.uniform_mean_reward /= double(rounds.size());
  const size_t step = std::max<size_t>(1, rounds.size() / 200);
  for (size_t r = step; r <= rounds.size(); r += step) report.checkpoints.push_back(r);
  if (report.checkpoints.empty() || report.checkpoints.back() != rounds.size()) {
    report.checkpoints.push_back(rounds.size());
  }

  for (const std::string& name : names) {
    PolicyResult result;
    result.name = name;
    const auto start = std::chrono::steady_clock::now();
    std::unique_ptr<Engine> engine;
    if (name != "uniform") {
      EngineOptions eo = PolicyOptions(name, o);
      DYNSPEC_ASSIGN_OR_RETURN(engine, Engine::Open(eo));
      for (size_t s = 0; s < env.catalog.size(); s += eo.limits.max_batch_items) {
        const size_t end = std::min(env.catalog.size(), s + eo.limits.max_batch_items);
        std::vector<ItemInput> chunk(env.catalog.begin() + s, env.catalog.begin() + end);
        DYNSPEC_RETURN_IF_ERROR(engine->IngestBatch(chunk).WithContext("ingesting the catalog"));
      }
      DYNSPEC_RETURN_IF_ERROR(engine->BootstrapClusters(
          std::min<int>(o.clusters, static_cast<int>(env.catalog.size()))));
    }
    std::mt19937_64 rng(o.seed + 101);
    std::unique_ptr<ProgressBar> bar;
    if (o.progress) bar = std::make_unique<ProgressBar>(name, rounds.size());
    double total = 0, later = 0, regret = 0;
    size_t next_checkpoint = 0;
    for (size_t r = 0; r < rounds.size(); ++r) {
      const Round& round = rounds[r];
      size_t chosen;
      RankResult ranked;
      if (!engine) {
        chosen = static_cast<size_t>(rng() % round.candidates.size());
      } else {
        RankRequest req;
        req.context = round.context;
        req.candidates = round.candidates;
        req.slate_size = 1;
        DYNSPEC_ASSIGN_OR_RETURN(ranked, engine->Rank(req));
        chosen = static_cast<size_t>(
            std::find(round.candidates.begin(), round.candidates.end(), ranked.slate[0].item_id) -
            round.candidates.begin());
      }
      const double reward = round.draw < round.probability[chosen] ? 1.0 : 0.0;
      if (engine) {
        FeedbackEvent fb;
        fb.event_id = ranked.event_id;
        fb.item_id = ranked.slate[0].item_id;
        fb.responses[o.head] = reward;
        DYNSPEC_RETURN_IF_ERROR(engine->Feedback(fb).status());
      }
      total += reward;
      regret += *std::max_element(round.probability.begin(), round.probability.end()) -
                round.probability[chosen];
      if (r >= rounds.size() / 2) later += reward;
      if (next_checkpoint < report.checkpoints.size() &&
          r + 1 == report.checkpoints[next_checkpoint]) {
        result.cumulative_reward.push_back(total);
        result.cumulative_regret.push_back(regret);
        ++next_checkpoint;
      }
      if (bar) bar->Update(r + 1);
    }
    if (bar) bar->Finish();
    result.total_reward = total;
    result.expected_regret = regret;
    result.later_half_mean_reward = later / double(rounds.size() - rounds.size() / 2);
    if (engine) result.ppo_updates = engine->Stats().ppo_updates;
    result.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    report.policies.push_back(std::move(result));
  }
  return report;
}

}  // namespace

const std::vector<std::string>& SimulationPolicies() {
  static const std::vector<std::string> kPolicies = {
      "uniform",     "greedy",   "epsilon_greedy", "softmax",
      "softmax_ppo", "ppo_only", "static_cluster"};
  return kPolicies;
}

Result<SimulationReport> RunSimulation(const std::vector<ReplayEvent>& events,
                                       const SimulateOptions& o) {
  DYNSPEC_RETURN_IF_ERROR(CheckPolicies(o));
  DYNSPEC_ASSIGN_OR_RETURN(Environment env, LogEnvironment(events, o));
  return RunEnvironment(env, o);
}

Result<SimulationReport> RunObdSimulation(const std::string& obd_csv, const SimulateOptions& o) {
  DYNSPEC_RETURN_IF_ERROR(CheckPolicies(o));
  DYNSPEC_ASSIGN_OR_RETURN(Environment env, ObdEnvironment(obd_csv, o));
  return RunEnvironment(env, o);
}

std::string FormatSimulation(const SimulationReport& report) {
  std::ostringstream out;
  out << report.environment << "\n"
      << report.rounds << " rounds, " << report.candidates << " candidates each, " << report.items
      << " items; expected reward per round: oracle " << FormatDouble(report.oracle_mean_reward, 4)
      << ", uniform choice " << FormatDouble(report.uniform_mean_reward, 4) << "\n";
  TextTable t(
      {"policy", "mean reward", "later-half mean", "expected regret", "PPO updates", "seconds"});
  for (const auto& p : report.policies) {
    t.AddRow({p.name, FormatDouble(p.total_reward / double(report.rounds), 4),
              FormatDouble(p.later_half_mean_reward, 4), FormatDouble(p.expected_regret, 1),
              std::to_string(p.ppo_updates), FormatDouble(p.seconds, 1)});
  }
  out << t.Render();
  return out.str();
}

Status WriteSimulation(const SimulationReport& report, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create " + dir + ": " + ec.message());
  nlohmann::json j;
  j["environment"] = report.environment;
  j["oracle_mean_reward"] = report.oracle_mean_reward;
  j["uniform_mean_reward"] = report.uniform_mean_reward;
  j["rounds"] = report.rounds;
  j["candidates"] = report.candidates;
  j["items"] = report.items;
  j["checkpoints"] = report.checkpoints;
  for (const auto& p : report.policies) {
    j["policies"].push_back({{"name", p.name},
                             {"total_reward", p.total_reward},
                             {"mean_reward", p.total_reward / double(report.rounds)},
                             {"later_half_mean_reward", p.later_half_mean_reward},
                             {"expected_regret", p.expected_regret},
                             {"cumulative_regret", p.cumulative_regret},
                             {"ppo_updates", p.ppo_updates},
                             {"seconds", p.seconds},
                             {"cumulative_reward", p.cumulative_reward}});
  }
  DYNSPEC_RETURN_IF_ERROR(WriteTextFile(dir + "/simulate.json", j.dump(2) + "\n"));
  std::ostringstream csv;
  csv << "round,policy,cumulative_reward,cumulative_regret\n";
  LineChart reward{"Cumulative reward", "round", "cumulative reward", {}};
  LineChart regret{
      "Cumulative expected regret (against the best candidate)", "round", "cumulative regret", {}};
  for (const auto& p : report.policies) {
    Series rs{p.name, {}}, gs{p.name, {}};
    for (size_t c = 0; c < p.cumulative_reward.size(); ++c) {
      const double x = double(report.checkpoints[c]);
      const double g = p.cumulative_regret[c];
      csv << report.checkpoints[c] << "," << p.name << "," << p.cumulative_reward[c] << "," << g
          << "\n";
      rs.points.emplace_back(x, p.cumulative_reward[c]);
      gs.points.emplace_back(x, g);
    }
    reward.series.push_back(std::move(rs));
    regret.series.push_back(std::move(gs));
  }
  DYNSPEC_RETURN_IF_ERROR(WriteTextFile(dir + "/simulate.csv", csv.str()));
  DYNSPEC_RETURN_IF_ERROR(WriteSvg(dir + "/simulate_reward.svg", reward));
  return WriteSvg(dir + "/simulate_regret.svg", regret);
}

}  // namespace dynspec::eval
