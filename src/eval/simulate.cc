#include "eval/simulate.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <unordered_map>

#include "dynspec/engine.h"
#include "eval/io.h"
#include "eval/progress.h"
#include "eval/svg_plot.h"
#include "eval/table.h"

namespace dynspec::eval {
namespace {

struct Round {
  size_t event = 0;                // index of the liked event
  std::vector<ItemId> candidates;  // the liked item at a random position
  size_t liked = 0;                // its position
};

// Builds every round up front so that all policies face the same candidate sets.
std::vector<Round> BuildRounds(const std::vector<ReplayEvent>& events, const SimulateOptions& o) {
  std::mt19937_64 rng(o.seed);
  std::vector<ItemId> seen;
  std::unordered_map<ItemId, size_t> seen_index;
  std::vector<Round> rounds;
  for (size_t i = 0; i < events.size(); ++i) {
    const ReplayEvent& e = events[i];
    if (seen_index.emplace(e.item, seen.size()).second) seen.push_back(e.item);
    auto r = e.responses.find(o.head);
    if (r == e.responses.end() || r->second < 1 || seen.size() < o.candidates) continue;
    Round round;
    round.event = i;
    std::vector<ItemId> picked = {e.item};
    while (picked.size() < o.candidates) {
      const ItemId& other = seen[rng() % seen.size()];
      if (std::find(picked.begin(), picked.end(), other) == picked.end()) picked.push_back(other);
    }
    std::shuffle(picked.begin(), picked.end(), rng);
    round.liked =
        static_cast<size_t>(std::find(picked.begin(), picked.end(), e.item) - picked.begin());
    round.candidates = std::move(picked);
    rounds.push_back(std::move(round));
    if (o.rounds > 0 && rounds.size() == o.rounds) break;
  }
  return rounds;
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

}  // namespace

const std::vector<std::string>& SimulationPolicies() {
  static const std::vector<std::string> kPolicies = {
      "uniform",     "greedy",   "epsilon_greedy", "softmax",
      "softmax_ppo", "ppo_only", "static_cluster"};
  return kPolicies;
}

Result<SimulationReport> RunSimulation(const std::vector<ReplayEvent>& events,
                                       const SimulateOptions& o) {
  if (o.candidates < 2) return Status::InvalidArgument("candidates must be >= 2");
  std::vector<std::string> names = o.policies.empty() ? SimulationPolicies() : o.policies;
  for (const auto& n : names) {
    const auto& all = SimulationPolicies();
    if (std::find(all.begin(), all.end(), n) == all.end()) {
      return Status::InvalidArgument("unknown policy '" + n + "'");
    }
  }
  // The catalog: every item with its provider and content from its first event.
  std::vector<ItemInput> catalog;
  std::unordered_map<ItemId, bool> in_catalog;
  for (size_t i = 0; i < events.size(); ++i) {
    const ReplayEvent& e = events[i];
    if (!in_catalog.emplace(e.item, true).second) continue;
    if (e.provider.empty()) {
      return Status::InvalidArgument("event " + std::to_string(i) + ": item '" + e.item +
                                     "' first appears without a provider");
    }
    catalog.push_back({e.item, e.provider, {e.text, e.vector}});
  }
  const std::vector<Round> rounds = BuildRounds(events, o);
  if (rounds.empty()) {
    return Status::InvalidArgument("the log has no round: no event with " + o.head + " = 1 after " +
                                   std::to_string(o.candidates) + " items");
  }
  if (!o.decision_log_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.decision_log_dir, ec);
    if (ec) return Status::IoError("cannot create " + o.decision_log_dir + ": " + ec.message());
  }
  SimulationReport report;
  report.rounds = rounds.size();
  report.candidates = o.candidates;
  report.items = catalog.size();
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
      for (size_t s = 0; s < catalog.size(); s += eo.limits.max_batch_items) {
        const size_t end = std::min(catalog.size(), s + eo.limits.max_batch_items);
        std::vector<ItemInput> chunk(catalog.begin() + s, catalog.begin() + end);
        DYNSPEC_RETURN_IF_ERROR(engine->IngestBatch(chunk).WithContext("ingesting the catalog"));
      }
      DYNSPEC_RETURN_IF_ERROR(engine->BootstrapClusters(o.clusters));
    }
    std::mt19937_64 rng(o.seed + 101);
    std::unique_ptr<ProgressBar> bar;
    if (o.progress) bar = std::make_unique<ProgressBar>(name, rounds.size());
    double total = 0, later = 0;
    size_t next_checkpoint = 0;
    for (size_t r = 0; r < rounds.size(); ++r) {
      const Round& round = rounds[r];
      size_t chosen;
      if (!engine) {
        chosen = static_cast<size_t>(rng() % round.candidates.size());
      } else {
        RankRequest req;
        req.candidates = round.candidates;
        req.slate_size = 1;
        DYNSPEC_ASSIGN_OR_RETURN(RankResult ranked, engine->Rank(req));
        chosen = static_cast<size_t>(
            std::find(round.candidates.begin(), round.candidates.end(), ranked.slate[0].item_id) -
            round.candidates.begin());
        const double reward = chosen == round.liked ? 1.0 : 0.0;
        FeedbackEvent fb;
        fb.event_id = ranked.event_id;
        fb.item_id = ranked.slate[0].item_id;
        fb.responses[o.head] = reward;
        DYNSPEC_RETURN_IF_ERROR(engine->Feedback(fb).status());
      }
      const double reward = chosen == round.liked ? 1.0 : 0.0;
      total += reward;
      if (r >= rounds.size() / 2) later += reward;
      if (next_checkpoint < report.checkpoints.size() &&
          r + 1 == report.checkpoints[next_checkpoint]) {
        result.cumulative_reward.push_back(total);
        ++next_checkpoint;
      }
      if (bar) bar->Update(r + 1);
    }
    if (bar) bar->Finish();
    result.total_reward = total;
    result.later_half_mean_reward = later / double(rounds.size() - rounds.size() / 2);
    if (engine) result.ppo_updates = engine->Stats().ppo_updates;
    result.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    report.policies.push_back(std::move(result));
  }
  return report;
}

std::string FormatSimulation(const SimulationReport& report) {
  std::ostringstream out;
  out << report.rounds << " rounds, " << report.candidates << " candidates each, " << report.items
      << " items (oracle reward per round 1, uniform expectation "
      << FormatDouble(1.0 / double(report.candidates), 3) << ")\n";
  TextTable t({"policy", "mean reward", "later-half mean", "regret", "PPO updates", "seconds"});
  for (const auto& p : report.policies) {
    t.AddRow({p.name, FormatDouble(p.total_reward / double(report.rounds), 4),
              FormatDouble(p.later_half_mean_reward, 4),
              FormatDouble(double(report.rounds) - p.total_reward, 0),
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
  j["rounds"] = report.rounds;
  j["candidates"] = report.candidates;
  j["items"] = report.items;
  j["checkpoints"] = report.checkpoints;
  for (const auto& p : report.policies) {
    j["policies"].push_back({{"name", p.name},
                             {"total_reward", p.total_reward},
                             {"mean_reward", p.total_reward / double(report.rounds)},
                             {"later_half_mean_reward", p.later_half_mean_reward},
                             {"ppo_updates", p.ppo_updates},
                             {"seconds", p.seconds},
                             {"cumulative_reward", p.cumulative_reward}});
  }
  DYNSPEC_RETURN_IF_ERROR(WriteTextFile(dir + "/simulate.json", j.dump(2) + "\n"));
  std::ostringstream csv;
  csv << "round,policy,cumulative_reward,cumulative_regret\n";
  LineChart reward{"Cumulative reward", "round", "cumulative reward", {}};
  LineChart regret{"Cumulative regret (oracle: 1 per round)", "round", "cumulative regret", {}};
  for (const auto& p : report.policies) {
    Series rs{p.name, {}}, gs{p.name, {}};
    for (size_t c = 0; c < p.cumulative_reward.size(); ++c) {
      const double x = double(report.checkpoints[c]);
      const double g = x - p.cumulative_reward[c];
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
