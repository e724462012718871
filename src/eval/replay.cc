#include "eval/replay.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "dynspec/engine.h"
#include "eval/progress.h"
#include "eval/recluster_report.h"
#include "eval/strategies.h"
#include "eval/svg_plot.h"
#include "eval/table.h"

namespace dynspec::eval {
namespace {

constexpr const char* kGlobal = "global";
constexpr const char* kPerProvider = "per_provider";
constexpr const char* kStaticCluster = "static_cluster";
constexpr const char* kPerItem = "per_item";
constexpr const char* kDynamic = "dynamic";
constexpr const char* kDynamicRecluster = "dynamic_recluster";

double ConstantLogLoss(double rate, double positives, double count) {
  if (count <= 0) return NAN;
  const double p = std::clamp(rate, 1e-7, 1 - 1e-7);
  return -(positives * std::log(p) + (count - positives) * std::log(1 - p)) / count;
}

Context ContextOf(const ReplayEvent& e, bool user_context) {
  Context c = e.context;
  if (user_context && !e.user.empty()) c.sparse.emplace_back("user=" + e.user, 1.0f);
  return c;
}

}  // namespace

std::vector<std::string> AllStrategyNames() {
  return {kGlobal, kPerProvider, kStaticCluster, kPerItem, kDynamic, kDynamicRecluster};
}

Result<ReplayReport> RunReplay(const std::vector<ReplayEvent>& all_events,
                               const ReplayOptions& options) {
  const size_t n =
      options.limit > 0 ? std::min(options.limit, all_events.size()) : all_events.size();
  if (n == 0) return Status::InvalidArgument("the event stream is empty");
  const auto& heads = options.engine.model.heads;
  auto head_it = std::find_if(heads.begin(), heads.end(),
                              [&](const HeadSpec& h) { return h.name == options.head; });
  if (head_it == heads.end() || head_it->kind != HeadKind::kBinary) {
    return Status::InvalidArgument("head '" + options.head + "' is not a configured binary head");
  }
  std::vector<std::string> names =
      options.strategies.empty() ? AllStrategyNames() : options.strategies;
  for (const auto& name : names) {
    const auto known = AllStrategyNames();
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      return Status::InvalidArgument("unknown strategy '" + name + "'");
    }
  }

  // The catalog: every item with the provider and content of its first event. Content is
  // not a label, so knowing it up front leaks nothing; items join their partition (become
  // neighbours) only once they have feedback.
  std::vector<ItemInput> catalog;
  std::unordered_map<std::string, size_t> item_index;
  std::set<std::string> providers;
  for (size_t i = 0; i < n; ++i) {
    const ReplayEvent& e = all_events[i];
    if (item_index.count(e.item)) continue;
    if (e.provider.empty()) {
      return Status::InvalidArgument("event " + std::to_string(i) + ": item '" + e.item +
                                     "' first appears without a provider");
    }
    item_index[e.item] = catalog.size();
    catalog.push_back({e.item, e.provider, {e.text, e.vector}});
    providers.insert(e.provider);
  }

  auto lr_of = [&](const std::string& name) {
    auto it = options.learning_rates.find(name);
    // dynamic_recluster shares the dynamic strategy's tuned settings.
    if (it == options.learning_rates.end() && name == kDynamicRecluster) {
      it = options.learning_rates.find(kDynamic);
    }
    return it != options.learning_rates.end() ? it->second : options.engine.learn.learning_rate;
  };
  // One engine per dynamic strategy, over the same catalog and initial clusters.
  auto open_engine = [&](const std::string& name, bool shadow) -> Result<std::unique_ptr<Engine>> {
    EngineOptions o = options.engine;
    o.learn.learning_rate = lr_of(name);
    o.recluster.period_seconds = 0;  // the replay decides when (in stream time)
    if (!shadow) o.recluster.shadow_sample_rate = 0;
    std::unique_ptr<Embedder> embedder;  // null: the engine's default
    if (options.embedder_factory) {
      DYNSPEC_ASSIGN_OR_RETURN(embedder, options.embedder_factory());
    }
    DYNSPEC_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine,
                             Engine::Open(o, nullptr, std::move(embedder)));
    for (size_t start = 0; start < catalog.size(); start += o.limits.max_batch_items) {
      const size_t end = std::min(catalog.size(), start + o.limits.max_batch_items);
      std::vector<ItemInput> chunk(catalog.begin() + start, catalog.begin() + end);
      DYNSPEC_RETURN_IF_ERROR(engine->IngestBatch(chunk).WithContext("ingesting the catalog"));
    }
    DYNSPEC_RETURN_IF_ERROR(engine->BootstrapClusters(options.clusters));
    return engine;
  };
  DYNSPEC_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, open_engine(kDynamic, false));
  std::unique_ptr<Engine> recluster_engine;
  if (std::find(names.begin(), names.end(), kDynamicRecluster) != names.end()) {
    DYNSPEC_ASSIGN_OR_RETURN(recluster_engine, open_engine(kDynamicRecluster, true));
  }
  std::unordered_map<std::string, ClusterId> cluster_of;
  for (const auto& p : providers) {
    DYNSPEC_ASSIGN_OR_RETURN(ProviderInfo info, engine->GetProvider(p));
    cluster_of[p] = info.cluster;
  }

  std::vector<std::unique_ptr<Strategy>> strategies;
  for (const auto& name : names) {
    EngineOptions o = options.engine;
    o.learn.learning_rate = lr_of(name);
    if (name == kGlobal) {
      strategies.push_back(NewKeyedStrategy(name, SharingKey::kGlobal, o, options.head));
    } else if (name == kPerProvider) {
      strategies.push_back(NewKeyedStrategy(name, SharingKey::kProvider, o, options.head));
    } else if (name == kStaticCluster) {
      strategies.push_back(
          NewKeyedStrategy(name, SharingKey::kCluster, o, options.head, cluster_of));
    } else if (name == kPerItem) {
      strategies.push_back(NewKeyedStrategy(name, SharingKey::kItem, o, options.head));
    } else if (name == kDynamic) {
      strategies.push_back(NewEngineStrategy(name, engine.get(), options.head));
    } else {
      strategies.push_back(NewEngineStrategy(name, recluster_engine.get(), options.head));
    }
  }

  ReplayReport report;
  report.events = n;
  report.later_start = n / 2;
  report.items = catalog.size();
  report.providers = providers.size();
  report.clusters = engine->ListClusters().size();
  report.strategies.resize(strategies.size());
  for (size_t s = 0; s < strategies.size(); ++s) {
    report.strategies[s].name = strategies[s]->name();
    report.strategies[s].learning_rate = lr_of(strategies[s]->name());
  }
  std::vector<double> cum_loss(strategies.size(), 0.0);
  std::unordered_map<std::string, int> responses_seen;
  double positives = 0, later_positives = 0, later_count = 0;
  const size_t curve_every = std::max<size_t>(1, n / std::max(1, options.curve_points));

  std::unique_ptr<ProgressBar> bar;
  if (options.progress) bar = std::make_unique<ProgressBar>("replay", n);
  for (size_t i = 0; i < n; ++i) {
    const ReplayEvent& e = all_events[i];
    const Context context = ContextOf(e, options.user_context);
    auto r = e.responses.find(options.head);
    const bool scored = r != e.responses.end();
    const int y = scored && r->second >= 0.5 ? 1 : 0;
    const bool cold = responses_seen[e.item] < options.cold_responses;
    const bool later = i >= report.later_start;
    for (size_t s = 0; s < strategies.size(); ++s) {
      StrategyReport& sr = report.strategies[s];
      const auto t0 = std::chrono::steady_clock::now();
      if (scored) {
        auto p = strategies[s]->Predict(e, context);
        if (!p.ok()) {
          return p.status().WithContext("event " + std::to_string(i) + ", " + sr.name);
        }
        sr.all.Add(*p, y);
        cum_loss[s] += -(y ? std::log(std::clamp(*p, 1e-7, 1 - 1e-7))
                           : std::log(std::clamp(1 - *p, 1e-7, 1 - 1e-7)));
        if (later) sr.later.Add(*p, y);
        if (cold) sr.cold.Add(*p, y);
        if (cold && later) sr.cold_later.Add(*p, y);
      }
      Status st = strategies[s]->Learn(e, context);
      if (!st.ok()) return st.WithContext("event " + std::to_string(i) + ", " + sr.name);
      sr.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    if (scored) {
      report.scored_events++;
      positives += y;
      if (later) {
        later_count++;
        later_positives += y;
      }
    }
    responses_seen[e.item]++;
    if (recluster_engine && options.recluster_every > 0 && (i + 1) % options.recluster_every == 0) {
      DYNSPEC_ASSIGN_OR_RETURN(ReclusterReport rr, recluster_engine->Recluster());
      report.recluster_runs.push_back({i + 1, rr.moves.size(), rr.deferred.size(),
                                       rr.providers_profiled, rr.adjusted_rand_index});
      report.last_recluster = std::move(rr);
    }
    if ((i + 1) % curve_every == 0 || i + 1 == n) {
      for (size_t s = 0; s < strategies.size(); ++s) {
        const double c = double(report.strategies[s].all.count());
        if (c > 0) report.strategies[s].curve.emplace_back(double(i + 1), cum_loss[s] / c);
      }
    }
    if (bar && (i % 256 == 0 || i + 1 == n)) bar->Update(i + 1);
  }
  if (bar) bar->Finish();
  report.positive_rate = report.scored_events ? positives / report.scored_events : 0;
  report.constant_logloss_all =
      ConstantLogLoss(report.positive_rate, positives, double(report.scored_events));
  report.constant_logloss_later = ConstantLogLoss(later_count ? later_positives / later_count : 0,
                                                  later_positives, later_count);
  return report;
}

Result<TuneResult> TuneOnEarlierHalf(const std::vector<ReplayEvent>& events,
                                     const ReplayOptions& base) {
  const size_t n = base.limit > 0 ? std::min(base.limit, events.size()) : events.size();
  ReplayOptions half = base;
  half.limit = n / 2;
  half.progress = false;
  TuneResult result;
  result.chosen = base;

  // 1. Learning rate, per strategy, all strategies in one replay per rate.
  const double rates[] = {0.03, 0.1, 0.3, 1.0};
  std::map<std::string, std::pair<double, double>> best;  // name -> (loss, rate)
  std::vector<std::string> tuned_names;
  for (const auto& name : base.strategies.empty() ? AllStrategyNames() : base.strategies) {
    if (name != kDynamicRecluster) tuned_names.push_back(name);
  }
  for (double lr : rates) {
    ReplayOptions o = half;
    o.strategies = tuned_names;
    o.learning_rates.clear();
    o.engine.learn.learning_rate = lr;
    DYNSPEC_ASSIGN_OR_RETURN(ReplayReport r, RunReplay(events, o));
    for (const auto& s : r.strategies) {
      const double loss = s.all.LogLoss();
      result.trials.push_back({s.name, "learning_rate=" + std::to_string(lr), loss});
      auto it = best.find(s.name);
      if (it == best.end() || loss < it->second.first) best[s.name] = {loss, lr};
    }
  }
  for (const auto& [name, b] : best) result.chosen.learning_rates[name] = b.second;

  // 2. The dynamic strategy's blend settings, at its chosen learning rate.
  if (best.count(kDynamic)) {
    double best_loss = best[kDynamic].first;
    for (double temperature : {0.1, 0.2, 0.4}) {
      for (double shrink : {10.0, 30.0, 100.0}) {
        for (double prior : {0.1, 0.5, 2.0}) {
          ReplayOptions o = half;
          o.learning_rates = result.chosen.learning_rates;
          o.strategies = {kDynamic};
          o.engine.blend.similarity_temperature = temperature;
          o.engine.blend.self_shrinkage = shrink;
          o.engine.blend.cluster_prior_weight = prior;
          DYNSPEC_ASSIGN_OR_RETURN(ReplayReport r, RunReplay(events, o));
          const double loss = r.strategies[0].all.LogLoss();
          result.trials.push_back({kDynamic,
                                   "similarity_temperature=" + std::to_string(temperature) +
                                       " self_shrinkage=" + std::to_string(shrink) +
                                       " cluster_prior_weight=" + std::to_string(prior),
                                   loss});
          if (loss < best_loss) {
            best_loss = loss;
            result.chosen.engine.blend = o.engine.blend;
          }
        }
      }
    }
  }
  return result;
}

std::string FormatReport(const ReplayReport& r) {
  TextTable table({"strategy", "lr", "logloss", "AUC", "ECE", "later logloss", "later AUC",
                   "cold logloss", "cold AUC", "later cold logloss", "later cold AUC", "seconds"});
  for (const auto& s : r.strategies) {
    table.AddRow({s.name, FormatDouble(s.learning_rate, 3), FormatDouble(s.all.LogLoss(), 4),
                  FormatDouble(s.all.Auc(), 4), FormatDouble(s.all.ExpectedCalibrationError(), 4),
                  FormatDouble(s.later.LogLoss(), 4), FormatDouble(s.later.Auc(), 4),
                  FormatDouble(s.cold.LogLoss(), 4), FormatDouble(s.cold.Auc(), 4),
                  FormatDouble(s.cold_later.LogLoss(), 4), FormatDouble(s.cold_later.Auc(), 4),
                  FormatDouble(s.seconds, 2)});
  }
  table.AddRow({"constant (hindsight rate)", "-", FormatDouble(r.constant_logloss_all, 4), "0.5",
                "0", FormatDouble(r.constant_logloss_later, 4), "0.5", "-", "-", "-", "-", "-"});
  std::string out = "events " + std::to_string(r.events) + " (scored " +
                    std::to_string(r.scored_events) + "), items " + std::to_string(r.items) +
                    ", providers " + std::to_string(r.providers) + ", clusters " +
                    std::to_string(r.clusters) + ", positive rate " +
                    FormatDouble(r.positive_rate, 4) + ", later half from event " +
                    std::to_string(r.later_start) + "\n";
  out += table.Render();
  if (!r.recluster_runs.empty()) {
    size_t moves = 0;
    for (const auto& run : r.recluster_runs) moves += run.moves;
    out += "dynamic_recluster: " + std::to_string(r.recluster_runs.size()) +
           " re-clustering runs, " + std::to_string(moves) + " provider moves (";
    for (size_t i = 0; i < r.recluster_runs.size(); ++i) {
      out += (i ? ", " : "") + std::to_string(r.recluster_runs[i].moves);
    }
    out += " per run)\n";
  }
  return out;
}

Status WriteReport(const ReplayReport& r, const std::vector<TuneTrial>& trials,
                   const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create " + dir + ": " + ec.message());

  auto metrics_json = [](const BinaryMetrics& m) {
    auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); };
    return nlohmann::json{{"count", m.count()},
                          {"logloss", num(m.LogLoss())},
                          {"auc", num(m.Auc())},
                          {"ece", num(m.ExpectedCalibrationError())},
                          {"mean_prediction", num(m.MeanPrediction())},
                          {"positive_rate", num(m.PositiveRate())}};
  };
  nlohmann::json j;
  j["events"] = r.events;
  j["scored_events"] = r.scored_events;
  j["later_start"] = r.later_start;
  j["items"] = r.items;
  j["providers"] = r.providers;
  j["clusters"] = r.clusters;
  j["positive_rate"] = r.positive_rate;
  j["constant_logloss_all"] = r.constant_logloss_all;
  j["constant_logloss_later"] = r.constant_logloss_later;
  for (const auto& s : r.strategies) {
    j["strategies"].push_back({{"name", s.name},
                               {"learning_rate", s.learning_rate},
                               {"all", metrics_json(s.all)},
                               {"later", metrics_json(s.later)},
                               {"cold", metrics_json(s.cold)},
                               {"cold_later", metrics_json(s.cold_later)},
                               {"seconds", s.seconds},
                               {"curve", s.curve}});
  }
  for (const auto& run : r.recluster_runs) {
    j["recluster_runs"].push_back({{"at_event", run.at_event},
                                   {"moves", run.moves},
                                   {"deferred", run.deferred},
                                   {"providers_profiled", run.providers_profiled},
                                   {"adjusted_rand_index", run.adjusted_rand_index}});
  }
  for (const auto& t : trials) {
    j["tuning"].push_back({{"strategy", t.strategy},
                           {"setting", t.setting},
                           {"earlier_half_logloss", t.earlier_half_logloss}});
  }
  {
    std::ofstream f(dir + "/replay.json");
    f << j.dump(2) << "\n";
    if (!f) return Status::IoError("cannot write " + dir + "/replay.json");
  }
  TextTable csv({"strategy", "slice", "count", "logloss", "auc", "ece"});
  for (const auto& s : r.strategies) {
    const std::pair<const char*, const BinaryMetrics*> slices[] = {
        {"all", &s.all}, {"later", &s.later}, {"cold", &s.cold}, {"cold_later", &s.cold_later}};
    for (const auto& [slice, m] : slices) {
      csv.AddRow({s.name, slice, std::to_string(m->count()), FormatDouble(m->LogLoss(), 6),
                  FormatDouble(m->Auc(), 6), FormatDouble(m->ExpectedCalibrationError(), 6)});
    }
  }
  {
    std::ofstream f(dir + "/replay.csv");
    f << csv.RenderCsv();
    if (!f) return Status::IoError("cannot write " + dir + "/replay.csv");
  }
  LineChart chart;
  chart.title = "Progressive log-loss (predict, then reveal, then learn)";
  chart.x_label = "events replayed";
  chart.y_label = "cumulative log-loss";
  for (const auto& s : r.strategies) chart.series.push_back({s.name, s.curve});
  chart.series.push_back(
      {"constant (hindsight rate)",
       {{0.0, r.constant_logloss_all}, {double(r.events), r.constant_logloss_all}}});
  DYNSPEC_RETURN_IF_ERROR(WriteSvg(dir + "/replay_logloss.svg", chart));
  if (!r.recluster_runs.empty()) {
    DYNSPEC_RETURN_IF_ERROR(WriteReclusterReport(r.last_recluster, dir + "/recluster"));
  }
  return Status::Ok();
}

}  // namespace dynspec::eval
