// The `dynspec` command. Flags are parsed here and nowhere else; engine settings come from
// the shared option table (config/options_table.h), so --help lists every one of them.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>

#include "config/options_table.h"
#include "dynspec/embedder.h"
#include "dynspec/engine.h"
#include "eval/amazon.h"
#include "eval/events.h"
#include "eval/replay.h"
#include "eval/table.h"

namespace {

using dynspec::EngineOptions;
using dynspec::Status;

// Adds one `--<option>` flag per engine setting to `cmd`; values are applied after parsing.
void AddEngineFlags(CLI::App* cmd, std::map<std::string, std::string>* values) {
  const EngineOptions defaults;
  for (const auto& e : dynspec::EngineOptionTable()) {
    cmd->add_option("--" + e.name, (*values)[e.name], e.help + " (default " + e.get(defaults) + ")")
        ->group("Engine settings");
  }
}

Status ApplyEngineFlags(const CLI::App* cmd, const std::map<std::string, std::string>& values,
                        EngineOptions* options) {
  for (const auto& [name, value] : values) {
    if (cmd->count("--" + name) == 0) continue;
    DYNSPEC_RETURN_IF_ERROR(dynspec::SetEngineOption(*options, name, value));
  }
  return dynspec::ValidateOptions(*options);
}

int Fail(const Status& st) {
  std::cerr << "dynspec: " << st.ToString() << "\n";
  return st.code() == dynspec::StatusCode::kInvalidArgument ? 2 : 1;
}

struct ReplayFlags {
  std::string events;
  std::string amazon_dir = "data/amazon_magazine_subscriptions";
  std::string out_dir = "out/replay";
  std::string head = "like";
  std::vector<std::string> strategies;
  size_t limit = 0;
  int clusters = 16;
  int cold = 5;
  bool no_user_context = false;
  bool no_tune = false;
  bool no_progress = false;
  std::map<std::string, std::string> engine;
};

int RunReplayCommand(const CLI::App* cmd, const ReplayFlags& f) {
  EngineOptions engine_options;
  // The Amazon data has one response, like = rating >= 4; replay only that head by default.
  engine_options.model.heads = {{f.head, dynspec::HeadKind::kBinary, false}};
  engine_options.reward = {{f.head, 1, 0}};
  engine_options.model.sparse_dim = 1024;
  if (Status st = ApplyEngineFlags(cmd, f.engine, &engine_options); !st.ok()) return Fail(st);

  std::vector<dynspec::eval::ReplayEvent> events;
  if (!f.events.empty()) {
    auto r = dynspec::eval::ReadEvents(f.events);
    if (!r.ok()) return Fail(r.status());
    events = std::move(r).value();
    std::cerr << "read " << events.size() << " events from " << f.events << "\n";
  } else {
    dynspec::eval::AmazonStats stats;
    auto r = dynspec::eval::ConvertAmazon(f.amazon_dir + "/Magazine_Subscriptions.csv",
                                          f.amazon_dir + "/meta_Magazine_Subscriptions.json.gz", {},
                                          &stats);
    if (!r.ok()) return Fail(r.status());
    events = std::move(r).value();
    std::cerr << "Amazon Magazine Subscriptions: " << stats.ratings_read << " ratings, "
              << stats.ratings_kept << " kept (" << stats.dropped_no_meta << " without metadata, "
              << stats.dropped_no_brand << " without a provider), " << stats.items << " items, "
              << stats.providers << " providers\n";
  }

  dynspec::eval::ReplayOptions options;
  options.engine = engine_options;
  options.head = f.head;
  options.clusters = f.clusters;
  options.cold_responses = f.cold;
  options.user_context = !f.no_user_context;
  options.limit = f.limit;
  options.strategies = f.strategies;
  options.progress = !f.no_progress;

  std::vector<dynspec::eval::TuneTrial> trials;
  if (!f.no_tune) {
    std::cerr << "tuning on the earlier half only (learning rates, then blend settings)...\n";
    auto tuned = dynspec::eval::TuneOnEarlierHalf(events, options);
    if (!tuned.ok()) return Fail(tuned.status());
    trials = tuned->trials;
    options = tuned->chosen;
    options.progress = !f.no_progress;
    const auto& b = options.engine.blend;
    std::cerr << "chosen: similarity_temperature=" << b.similarity_temperature
              << " self_shrinkage=" << b.self_shrinkage
              << " cluster_prior_weight=" << b.cluster_prior_weight << "\n";
  }
  auto report = dynspec::eval::RunReplay(events, options);
  if (!report.ok()) return Fail(report.status());
  std::cout << dynspec::eval::FormatReport(*report);
  if (!f.out_dir.empty()) {
    if (Status st = dynspec::eval::WriteReport(*report, trials, f.out_dir); !st.ok()) {
      return Fail(st);
    }
    std::cout << "wrote " << f.out_dir << "/replay.json, replay.csv, replay_logloss.svg\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dynspec: dynamic model specialization for recommendation"};
  app.require_subcommand(1);

  ReplayFlags replay;
  CLI::App* replay_cmd = app.add_subcommand(
      "replay",
      "Replay a time-ordered log with progressive validation and compare sharing strategies "
      "(default: the bundled Amazon Magazine Subscriptions data)");
  replay_cmd->add_option("--events", replay.events,
                         "event file (.jsonl or .csv, see docs/event-format.md)");
  replay_cmd
      ->add_option("--amazon", replay.amazon_dir,
                   "folder with the Amazon ratings CSV and metadata (used without --events)")
      ->capture_default_str();
  replay_cmd->add_option("--out", replay.out_dir, "folder for replay.json, .csv and .svg")
      ->capture_default_str();
  replay_cmd->add_option("--head", replay.head, "binary head to evaluate")->capture_default_str();
  replay_cmd->add_option("--strategies", replay.strategies,
                         "subset of: global per_provider static_cluster per_item dynamic");
  replay_cmd->add_option("--limit", replay.limit, "replay only the first N events (0 = all)");
  replay_cmd->add_option("--clusters", replay.clusters, "initial provider clusters")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  replay_cmd->add_option("--cold", replay.cold, "an item's first N responses count as cold")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  replay_cmd->add_flag("--no-user-context", replay.no_user_context,
                       "do not add the user id as a sparse context feature");
  replay_cmd->add_flag("--no-tune", replay.no_tune,
                       "skip tuning on the earlier half; use the settings as given");
  replay_cmd->add_flag("--no-progress", replay.no_progress, "no progress bar");
  AddEngineFlags(replay_cmd, &replay.engine);

  std::string ratings, meta, output;
  CLI::App* convert_cmd = app.add_subcommand(
      "convert-amazon", "Convert the Amazon ratings + metadata files into the replay event format");
  convert_cmd->add_option("--ratings", ratings, "ratings CSV")->required();
  convert_cmd->add_option("--meta", meta, "metadata .json.gz")->required();
  convert_cmd->add_option("--output", output, "events .jsonl to write")->required();

  std::vector<std::string> texts;
  std::map<std::string, std::string> embed_engine;
  CLI::App* embed_cmd = app.add_subcommand(
      "embed", "Embed texts with the built-in embedder and print their cosine similarities");
  embed_cmd->add_option("texts", texts, "texts to embed")->required();
  AddEngineFlags(embed_cmd, &embed_engine);

  std::map<std::string, std::string> config_engine;
  CLI::App* config_cmd =
      app.add_subcommand("config", "Print the effective engine settings as JSON");
  AddEngineFlags(config_cmd, &config_engine);

  CLI11_PARSE(app, argc, argv);

  if (replay_cmd->parsed()) return RunReplayCommand(replay_cmd, replay);
  if (convert_cmd->parsed()) {
    dynspec::eval::AmazonStats stats;
    auto events = dynspec::eval::ConvertAmazon(ratings, meta, {}, &stats);
    if (!events.ok()) return Fail(events.status());
    if (Status st = dynspec::eval::WriteEventsJsonl(output, *events); !st.ok()) return Fail(st);
    std::cout << "wrote " << events->size() << " events (" << stats.items << " items, "
              << stats.providers << " providers) to " << output << "\n";
    return 0;
  }
  if (embed_cmd->parsed()) {
    EngineOptions options;
    if (Status st = ApplyEngineFlags(embed_cmd, embed_engine, &options); !st.ok()) return Fail(st);
    auto embedder = dynspec::NewHashingTextEmbedder(options.embed);
    std::vector<std::vector<float>> vectors;
    for (const auto& t : texts) {
      auto v = embedder->EmbedText(t);
      if (!v.ok()) return Fail(v.status().WithContext("'" + t + "'"));
      vectors.push_back(std::move(v).value());
    }
    std::vector<std::string> headers = {"text"};
    for (size_t i = 0; i < texts.size(); ++i) headers.push_back("#" + std::to_string(i));
    dynspec::eval::TextTable table(headers);
    for (size_t i = 0; i < texts.size(); ++i) {
      std::vector<std::string> row = {"#" + std::to_string(i) + " " + texts[i].substr(0, 40)};
      for (size_t j = 0; j < texts.size(); ++j) {
        double s = 0;
        for (int d = 0; d < embedder->dim(); ++d) s += vectors[i][d] * vectors[j][d];
        row.push_back(dynspec::eval::FormatDouble(s, 3));
      }
      table.AddRow(row);
    }
    std::cout << "embedder " << embedder->name() << ", dimension " << embedder->dim() << "\n"
              << table.Render();
    return 0;
  }
  if (config_cmd->parsed()) {
    EngineOptions options;
    if (Status st = ApplyEngineFlags(config_cmd, config_engine, &options); !st.ok()) {
      return Fail(st);
    }
    std::cout << dynspec::EngineOptionsToJson(options) << "\n";
    return 0;
  }
  return 0;
}
