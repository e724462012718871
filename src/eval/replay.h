// Replay: streams a time-ordered event log through every strategy with progressive
// validation (predict, then reveal, then learn) and scores each on the same events.
//
// Metrics for the evaluated binary head: log-loss, AUC and calibration, overall and on the
// later half of the stream, and the same on cold events (an item's first
// `cold_responses` responses). Tunable settings are chosen on the earlier half only
// (TuneOnEarlierHalf); the later half is the reported result.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dynspec/embedder.h"
#include "dynspec/options.h"
#include "dynspec/types.h"
#include "eval/events.h"
#include "eval/metrics.h"

namespace dynspec::eval {

struct ReplayOptions {
  EngineOptions engine;       // heads must include `head`
  std::string head = "like";  // the binary head that is evaluated
  int clusters = 16;          // initial clusters (content-only bootstrap)
  int cold_responses = 5;
  bool user_context = true;  // add the sparse feature "user=<id>" to each event's context
  size_t limit = 0;          // replay only the first `limit` events (0 = all)
  int curve_points = 100;    // points of the progressive log-loss curve
  bool progress = false;     // show a progress bar on stderr
  // Strategies to run, by name (empty = all: global, per_provider, static_cluster, per_item,
  // dynamic, dynamic_recluster).
  std::vector<std::string> strategies;
  // Learning rate per strategy name, overriding engine.learn.learning_rate.
  std::map<std::string, double> learning_rates;
  // dynamic_recluster: the dynamic strategy plus Engine::Recluster every this many events
  // (shadow evaluation at engine.recluster.shadow_sample_rate). The plain dynamic strategy
  // keeps its initial clusters and does no shadow evaluation.
  size_t recluster_every = 10000;
  // Makes the embedder of each engine the replay opens (the dynamic strategies' engines;
  // their content clusters also give static_cluster its clusters), called once per engine
  // so that each owns its own. Empty: the engine's default, the hashing text embedder from
  // engine.embed. Tuning passes it on to every trial replay.
  std::function<Result<std::unique_ptr<Embedder>>()> embedder_factory;
};

struct ReclusterRun {
  size_t at_event = 0;
  size_t moves = 0;
  size_t deferred = 0;
  size_t providers_profiled = 0;
  double adjusted_rand_index = 1;
};

struct StrategyReport {
  std::string name;
  double learning_rate = 0;
  BinaryMetrics all, later, cold, cold_later;
  std::vector<std::pair<double, double>> curve;  // (events seen, cumulative log-loss)
  double seconds = 0;
};

struct ReplayReport {
  size_t events = 0;
  size_t scored_events = 0;
  size_t later_start = 0;  // index of the first event of the later half
  size_t items = 0;
  size_t providers = 0;
  size_t clusters = 0;
  double positive_rate = 0;
  // Log-loss of the best constant in hindsight (the stream's positive rate): a floor any
  // learned strategy must beat to have learned anything.
  double constant_logloss_all = 0;
  double constant_logloss_later = 0;
  std::vector<StrategyReport> strategies;
  std::vector<ReclusterRun> recluster_runs;  // of the dynamic_recluster strategy
  ReclusterReport last_recluster;            // the full report of the last run
};

std::vector<std::string> AllStrategyNames();

Result<ReplayReport> RunReplay(const std::vector<ReplayEvent>& events,
                               const ReplayOptions& options);

struct TuneTrial {
  std::string strategy;
  std::string setting;
  double earlier_half_logloss = 0;
};
struct TuneResult {
  ReplayOptions chosen;
  std::vector<TuneTrial> trials;
};
// Grid search on the earlier half of `events` only: the learning rate of every strategy,
// then the dynamic strategy's blend settings. Returns `base` with the chosen values.
Result<TuneResult> TuneOnEarlierHalf(const std::vector<ReplayEvent>& events,
                                     const ReplayOptions& base);

// Human-readable comparison table.
std::string FormatReport(const ReplayReport& report);
// Writes replay.json, replay.csv and replay_logloss.svg into `dir` (created if missing).
Status WriteReport(const ReplayReport& report, const std::vector<TuneTrial>& trials,
                   const std::string& dir);

}  // namespace dynspec::eval
