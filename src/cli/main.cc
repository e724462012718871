// The `dynspec` command. Flags are parsed here and nowhere else; engine settings come from
// the shared option table (config/options_table.h), so --help lists every one of them.
#include <httplib.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "config/options_table.h"
#include "dynspec/embedder.h"
#include "dynspec/engine.h"
#include "dynspec/word_vectors.h"
#include "embed/clip_tokenizer.h"
#include "eval/amazon.h"
#include "eval/events.h"
#include "eval/ope_report.h"
#include "eval/recluster_report.h"
#include "eval/replay.h"
#include "eval/simulate.h"
#include "eval/table.h"
#ifdef DYNSPEC_HAVE_TORCH
#include "clip/clip_embedder.h"
#else
namespace dynspec {
class ClipEmbedder;  // only ever null in a build without libtorch
}  // namespace dynspec
#endif
#include "media/image_embedder.h"
#include "media/video_embedder.h"
#include "server/api.h"
#include "server/http_server.h"

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

// An event file (--events), or the bundled Amazon data converted on the fly.
dynspec::Result<std::vector<dynspec::eval::ReplayEvent>> LoadEvents(const std::string& events_file,
                                                                    const std::string& amazon_dir) {
  if (!events_file.empty()) {
    DYNSPEC_ASSIGN_OR_RETURN(auto events, dynspec::eval::ReadEvents(events_file));
    std::cerr << "read " << events.size() << " events from " << events_file << "\n";
    return events;
  }
  dynspec::eval::AmazonStats stats;
  DYNSPEC_ASSIGN_OR_RETURN(
      auto events, dynspec::eval::ConvertAmazon(amazon_dir + "/Magazine_Subscriptions.csv",
                                                amazon_dir + "/meta_Magazine_Subscriptions.json.gz",
                                                {}, &stats));
  std::cerr << "Amazon Magazine Subscriptions: " << stats.ratings_read << " ratings, "
            << stats.ratings_kept << " kept (" << stats.dropped_no_meta << " without metadata, "
            << stats.dropped_no_brand << " without a provider), " << stats.items << " items, "
            << stats.providers << " providers\n";
  return events;
}

// Engine settings of the evaluation commands on the Amazon data: one binary head.
EngineOptions EvaluationEngineOptions(const std::string& head) {
  EngineOptions o;
  o.model.heads = {{head, dynspec::HeadKind::kBinary, false}};
  o.reward = {{head, 1, 0}};
  o.model.sparse_dim = 1024;
  return o;
}

struct SimulateFlags {
  std::string events;
  std::string obd;
  std::string amazon_dir = "data/amazon_magazine_subscriptions";
  std::string out_dir = "out/simulate";
  std::string head = "like";
  std::vector<std::string> policies;
  size_t rounds = 20000;
  size_t candidates = 10;
  int clusters = 16;
  uint64_t seed = 1;
  bool no_progress = false;
  std::map<std::string, std::string> engine;
};

int RunSimulateCommand(const CLI::App* cmd, const SimulateFlags& f) {
  dynspec::eval::SimulateOptions options;
  // The OBD environment's response is a click.
  const std::string head = f.obd.empty() ? f.head : "click";
  options.engine = EvaluationEngineOptions(head);
  if (Status st = ApplyEngineFlags(cmd, f.engine, &options.engine); !st.ok()) return Fail(st);
  options.head = head;
  options.rounds = f.rounds;
  options.candidates = f.candidates;
  options.clusters = f.clusters;
  options.seed = f.seed;
  options.policies = f.policies;
  options.progress = !f.no_progress;
  options.decision_log_dir = f.out_dir;
  dynspec::Result<dynspec::eval::SimulationReport> report = Status::Internal("not run");
  if (!f.obd.empty()) {
    report = dynspec::eval::RunObdSimulation(f.obd, options);
  } else {
    auto events = LoadEvents(f.events, f.amazon_dir);
    if (!events.ok()) return Fail(events.status());
    report = dynspec::eval::RunSimulation(*events, options);
  }
  if (!report.ok()) return Fail(report.status());
  std::cout << dynspec::eval::FormatSimulation(*report);
  if (!f.out_dir.empty()) {
    if (Status st = dynspec::eval::WriteSimulation(*report, f.out_dir); !st.ok()) return Fail(st);
    std::cout << "wrote " << f.out_dir
              << "/simulate.json, simulate.csv, simulate_reward.svg, simulate_regret.svg\n";
  }
  return 0;
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
  size_t recluster_every = 10000;
  std::string word_vectors;
  std::map<std::string, std::string> engine;
};

int RunReplayCommand(const CLI::App* cmd, const ReplayFlags& f) {
  // The Amazon data has one response, like = rating >= 4; replay only that head by default.
  EngineOptions engine_options = EvaluationEngineOptions(f.head);
  // Shadow evaluation for dynamic_recluster: a quarter of the events fill the loss matrix.
  engine_options.recluster.shadow_sample_rate = 0.25;
  engine_options.recluster.min_evidence = 10;
  if (Status st = ApplyEngineFlags(cmd, f.engine, &engine_options); !st.ok()) return Fail(st);

  auto loaded = LoadEvents(f.events, f.amazon_dir);
  if (!loaded.ok()) return Fail(loaded.status());
  std::vector<dynspec::eval::ReplayEvent> events = std::move(loaded).value();

  dynspec::eval::ReplayOptions options;
  options.engine = engine_options;
  options.head = f.head;
  options.clusters = f.clusters;
  options.cold_responses = f.cold;
  options.user_context = !f.no_user_context;
  options.limit = f.limit;
  options.strategies = f.strategies;
  options.progress = !f.no_progress;
  options.recluster_every = f.recluster_every;

  if (!f.word_vectors.empty()) {
    // One mapping of the file, shared by every engine the replay opens.
    auto vectors = dynspec::OpenWordVectors(f.word_vectors);
    if (!vectors.ok()) return Fail(vectors.status());
    std::shared_ptr<const dynspec::WordVectors> shared = *vectors;
    options.embedder_factory = [shared] {
      return dynspec::NewWordVectorEmbedder(shared, dynspec::WordVectorOptions());
    };
    std::cerr << "embedder: pretrained word vectors from " << f.word_vectors << "\n";
  }

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

// ---- commands on a data directory ----------------------------------------------------

struct DataDirFlags {
  std::string data_dir;
  int sync_every_ms = 0;
  std::string clip_model;  // a TorchScript CLIP: the engine's embedder (text and images)
  std::string clip_vocab = dynspec::kClipVocabDefaultPath;
  std::map<std::string, std::string> engine;
};

void AddDataDirFlags(CLI::App* cmd, DataDirFlags* f) {
  cmd->add_option("--data-dir", f->data_dir, "data directory of the durable store")->required();
  cmd->add_option("--sync-every-ms", f->sync_every_ms,
                  "0: sync every write; >0: group commit window (see docs/storage.md)")
      ->capture_default_str()
      ->check(CLI::Range(0, 60000));
  cmd->add_option("--clip-model", f->clip_model,
                  "TorchScript CLIP model with encode_text/encode_image (docs/embedding.md): "
                  "embeds text and images instead of the built-in embedders");
  cmd->add_option("--clip-vocab", f->clip_vocab, "CLIP BPE vocabulary")->capture_default_str();
  AddEngineFlags(cmd, &f->engine);
}

// The layout a data directory was written with (embedding dimension, heads, context
// widths), so commands on an existing directory need no flags to match it.
Status ApplyStoredLayout(const std::string& dir, EngineOptions* options) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return Status::Ok();  // a new data directory
  dynspec::DurableStoreOptions so;
  so.create_if_missing = false;
  DYNSPEC_ASSIGN_OR_RETURN(std::unique_ptr<dynspec::Store> store,
                           dynspec::OpenDurableStore(dir, so));
  dynspec::StoreBatch all;
  DYNSPEC_RETURN_IF_ERROR(store->LoadAll(&all));
  const auto& meta = all.put_meta;
  auto set = [&](const char* key, const char* option) -> Status {
    auto it = meta.find(key);
    if (it == meta.end()) return Status::Ok();
    std::string value = it->second;
    if (!value.empty() && value.back() == ',') value.pop_back();
    return dynspec::SetEngineOption(*options, option, value);
  };
  DYNSPEC_RETURN_IF_ERROR(set("engine.embedding_dim", "embed.dim"));
  DYNSPEC_RETURN_IF_ERROR(set("engine.dense_dim", "model.dense_dim"));
  DYNSPEC_RETURN_IF_ERROR(set("engine.sparse_dim", "model.sparse_dim"));
  DYNSPEC_RETURN_IF_ERROR(set("engine.heads", "model.heads"));
  // Keep only reward terms whose head still exists.
  std::vector<dynspec::RewardTerm> terms;
  for (const auto& t : options->reward) {
    for (const auto& h : options->model.heads) {
      if (h.name == t.head) terms.push_back(t);
    }
  }
  options->reward = terms;
  return Status::Ok();
}

// The engine's embedder for --clip-model (null: the built-in hashing embedder).
dynspec::Result<std::unique_ptr<dynspec::Embedder>> ClipTextEmbedder(const DataDirFlags& f) {
  if (f.clip_model.empty()) return std::unique_ptr<dynspec::Embedder>();
#ifdef DYNSPEC_HAVE_TORCH
  DYNSPEC_ASSIGN_OR_RETURN(auto clip, dynspec::ClipEmbedder::Load(f.clip_model, f.clip_vocab));
  return std::unique_ptr<dynspec::Embedder>(std::move(clip));
#else
  return Status::FailedPrecondition(
      "--clip-model: this build has no libtorch (install libtorch-dev and rebuild)");
#endif
}

// An image's vector: CLIP's image encoder when `clip` is given (--clip-model: the same space
// as the text), else the built-in image embedder at the engine's dimension.
dynspec::Result<std::vector<float>> EmbedImageFor(const dynspec::ClipEmbedder* clip, int dim,
                                                  const std::string& path) {
#ifdef DYNSPEC_HAVE_TORCH
  if (clip != nullptr) return clip->EmbedImageFile(path);
#endif
  dynspec::ImageEmbedOptions image_options;
  image_options.dim = dim;
  DYNSPEC_ASSIGN_OR_RETURN(auto embedder, dynspec::ImageEmbedder::Create(image_options));
  return embedder->EmbedImageFile(path);
}

// The engine of a command over --data-dir, with `embedder` as its embedder (null: the one
// the flags choose, ClipTextEmbedder).
dynspec::Result<std::unique_ptr<dynspec::Engine>> OpenEngineAt(
    const CLI::App* cmd, const DataDirFlags& f,
    std::unique_ptr<dynspec::Embedder> embedder = nullptr) {
  EngineOptions options;
  DYNSPEC_RETURN_IF_ERROR(ApplyStoredLayout(f.data_dir, &options));
  // Partition snapshots live next to the store unless --partition_snapshot_dir says otherwise
  // (an empty value turns them off).
  options.partition_snapshot_dir = f.data_dir + "/partitions";
  DYNSPEC_RETURN_IF_ERROR(ApplyEngineFlags(cmd, f.engine, &options));
  dynspec::DurableStoreOptions so;
  so.sync_every_ms = f.sync_every_ms;
  DYNSPEC_ASSIGN_OR_RETURN(std::unique_ptr<dynspec::Store> store,
                           dynspec::OpenDurableStore(f.data_dir, so));
  if (!embedder) {
    DYNSPEC_ASSIGN_OR_RETURN(embedder, ClipTextEmbedder(f));
  }
  return dynspec::Engine::Open(options, std::move(store), std::move(embedder));
}

std::string SourceName(dynspec::Contribution::Source s) {
  switch (s) {
    case dynspec::Contribution::Source::kSelf:
      return "self";
    case dynspec::Contribution::Source::kNeighbour:
      return "neighbour";
    case dynspec::Contribution::Source::kClusterPrior:
      return "cluster prior";
  }
  return "?";
}

void PrintPrediction(const dynspec::Prediction& p) {
  dynspec::eval::TextTable heads({"head", "prediction"});
  for (size_t h = 0; h < p.heads.size(); ++h) {
    heads.AddRow({p.head_names[h], dynspec::eval::FormatDouble(p.heads[h], 4)});
  }
  std::cout << "cluster " << p.cluster << ", expected reward "
            << dynspec::eval::FormatDouble(p.expected_reward, 4) << "\n"
            << heads.Render() << "\n";
  dynspec::eval::TextTable parts({"source", "item", "similarity", "evidence", "weight"});
  for (const auto& c : p.contributions) {
    parts.AddRow({SourceName(c.source), c.item_id, dynspec::eval::FormatDouble(c.similarity, 3),
                  dynspec::eval::FormatDouble(c.evidence, 0),
                  dynspec::eval::FormatDouble(c.weight, 4)});
  }
  std::cout << parts.Render();
}

// "like=1" -> {"like", 1}
dynspec::Result<dynspec::Responses> ParseResponses(const std::vector<std::string>& items) {
  dynspec::Responses out;
  for (const auto& item : items) {
    const auto eq = item.find('=');
    char* end = nullptr;
    const double v = eq == std::string::npos ? 0 : std::strtod(item.c_str() + eq + 1, &end);
    if (eq == std::string::npos || eq == 0 || end == item.c_str() + eq + 1 || *end != '\0') {
      return Status::InvalidArgument("--response '" + item + "' is not head=number");
    }
    out[item.substr(0, eq)] = v;
  }
  return out;
}

int InspectDataDir(const CLI::App* cmd, const DataDirFlags& f, const std::string& item) {
  auto engine = OpenEngineAt(cmd, f);
  if (!engine.ok()) return Fail(engine.status());
  const dynspec::EngineStats s = (*engine)->Stats();
  std::cout << "data directory " << f.data_dir << "\n"
            << "embedding dimension " << (*engine)->embedding_dim() << ", heads "
            << dynspec::FormatHeads((*engine)->options().model.heads) << "\n"
            << "items " << s.items << " (served " << s.served_items << "), providers "
            << s.providers << ", clusters " << s.clusters << ", feedback events "
            << s.feedback_events << "\n";
  dynspec::eval::TextTable clusters({"cluster", "providers", "items", "served", "evidence"});
  for (const auto& c : (*engine)->ListClusters()) {
    clusters.AddRow({std::to_string(c.id), std::to_string(c.provider_count),
                     std::to_string(c.item_count), std::to_string(c.served_item_count),
                     dynspec::eval::FormatDouble(c.evidence, 0)});
  }
  std::cout << clusters.Render();
  if (!item.empty()) {
    auto info = (*engine)->GetItem(item);
    if (!info.ok()) return Fail(info.status());
    std::cout << "\nitem " << info->id << ": provider " << info->provider << ", cluster "
              << info->cluster << ", version " << info->version << ", evidence "
              << info->model.evidence << (info->served ? ", served" : ", not served yet") << "\n";
    auto p = (*engine)->Predict({item});
    if (!p.ok()) return Fail(p.status());
    PrintPrediction(*p);
  }
  return 0;
}

// Re-clusters a data directory no process holds, from the shadow-evaluation statistics and
// streaks stored in it, and prints the report as POST /v1/recluster answers it.
int ReclusterDataDir(const CLI::App* cmd, const DataDirFlags& f, const std::string& out_dir) {
  if (f.data_dir.empty()) return Fail(Status::InvalidArgument("give --data-dir or --server"));
  std::error_code ec;
  if (!std::filesystem::exists(f.data_dir, ec)) {
    return Fail(Status::NotFound("data directory '" + f.data_dir + "' does not exist"));
  }
  auto engine = OpenEngineAt(cmd, f);
  if (!engine.ok()) return Fail(engine.status());
  auto report = (*engine)->Recluster();
  if (!report.ok()) return Fail(report.status());
  std::cout << dynspec::server::EncodeRecluster(*report) << "\n";
  if (!out_dir.empty()) {
    if (Status st = dynspec::eval::WriteReclusterReport(*report, out_dir); !st.ok())
      return Fail(st);
    std::cerr << "wrote " << out_dir << "/recluster.json and dendrogram.svg\n";
  }
  return 0;
}

struct ServeFlags {
  DataDirFlags data;
  dynspec::server::ServerOptions server;
  std::string token_file;
};

// Reads the bearer token: the file's first line, surrounding whitespace removed.
dynspec::Result<std::string> ReadToken(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::IoError("--token-file '" + path + "' cannot be read");
  std::string token;
  std::getline(in, token);
  const auto first = token.find_first_not_of(" \t\r");
  const auto last = token.find_last_not_of(" \t\r");
  token = first == std::string::npos ? "" : token.substr(first, last - first + 1);
  if (token.size() < 16) {
    return Status::InvalidArgument("--token-file '" + path +
                                   "' must hold a token of at least 16 characters");
  }
  return token;
}

// Sends an admin request to a running `dynspec serve` (which holds the data directory and
// the in-memory statistics) and returns its JSON answer; a non-200 answer is an error that
// carries the server's message.
dynspec::Result<std::string> PostToServer(const std::string& server, const std::string& token_file,
                                          const std::string& path, const std::string& body) {
  httplib::Client client(server.find("://") == std::string::npos ? "http://" + server : server);
  client.set_read_timeout(3600, 0);
  httplib::Headers headers;
  if (!token_file.empty()) {
    DYNSPEC_ASSIGN_OR_RETURN(std::string token, ReadToken(token_file));
    headers.emplace("Authorization", "Bearer " + token);
  }
  auto res = client.Post(path.c_str(), headers, body, "application/json");
  if (!res) {
    return Status::IoError("cannot reach " + server + ": " + httplib::to_string(res.error()));
  }
  if (res->status != 200) {
    return Status::FailedPrecondition("the server answered " + std::to_string(res->status) + ": " +
                                      res->body);
  }
  return res->body;
}

// Serves until SIGTERM or SIGINT, then stops accepting, finishes the requests in flight and
// closes the engine (which writes partition snapshots; the store holds everything else).
int Serve(const CLI::App* cmd, ServeFlags f) {
  // Block the signals in every thread (they inherit this mask) and wait for them here.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  if (!f.token_file.empty()) {
    auto token = ReadToken(f.token_file);
    if (!token.ok()) return Fail(token.status());
    f.server.token = *token;
  }
  auto engine = OpenEngineAt(cmd, f.data);
  if (!engine.ok()) return Fail(engine.status());
  auto server = dynspec::server::HttpServer::Start(engine->get(), f.server);
  if (!server.ok()) return Fail(server.status());
  const dynspec::EngineStats s = (*engine)->Stats();
  std::cout << "dynspec serving " << f.data.data_dir << " (" << s.items << " items, " << s.clusters
            << " clusters) on http://" << f.server.host << ":" << (*server)->port()
            << (f.server.token.empty() ? "" : " (bearer token required for writes)") << std::endl;
  int sig = 0;
  sigwait(&signals, &sig);
  std::cout << "dynspec: " << (sig == SIGTERM ? "SIGTERM" : "SIGINT")
            << ": finishing requests in flight" << std::endl;
  (*server)->Stop();
  engine->reset();
  std::cout << "dynspec: stopped" << std::endl;
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
  replay_cmd->add_option(
      "--strategies", replay.strategies,
      "subset of: global per_provider static_cluster per_item dynamic dynamic_recluster");
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
  replay_cmd
      ->add_option("--recluster-every", replay.recluster_every,
                   "dynamic_recluster re-clusters every N events (0 = never)")
      ->capture_default_str();
  replay_cmd->add_option("--word-vectors", replay.word_vectors,
                         "embed item text with pretrained word vectors (a .dswv file from "
                         "scripts/fetch-word-vectors.sh) instead of the hashing embedder");
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

  DataDirFlags ingest_flags;
  dynspec::ItemInput ingest_item;
  CLI::App* ingest_cmd = app.add_subcommand("ingest", "Add an item to a data directory");
  AddDataDirFlags(ingest_cmd, &ingest_flags);
  ingest_cmd->add_option("--id", ingest_item.id, "item id")->required();
  ingest_cmd->add_option("--provider", ingest_item.provider, "provider id")->required();
  std::string ingest_image, ingest_video;
  auto* text_opt = ingest_cmd->add_option("--text", ingest_item.content.text, "content text");
  auto* image_opt = ingest_cmd->add_option(
      "--image", ingest_image, "JPEG or PNG file, embedded by the built-in image embedder");
  auto* video_opt = ingest_cmd->add_option(
      "--video", ingest_video, "video file, frames sampled with FFmpeg and embedded as images");
  text_opt->excludes(image_opt)->excludes(video_opt);
  image_opt->excludes(video_opt);

  DataDirFlags predict_flags;
  std::string predict_item;
  CLI::App* predict_cmd =
      app.add_subcommand("predict", "Predict an item's responses and show its blend");
  AddDataDirFlags(predict_cmd, &predict_flags);
  predict_cmd->add_option("--item", predict_item, "item id")->required();

  DataDirFlags feedback_flags;
  std::string feedback_item, feedback_event;
  std::vector<std::string> feedback_responses;
  CLI::App* feedback_cmd = app.add_subcommand("feedback", "Learn from one response to an item");
  AddDataDirFlags(feedback_cmd, &feedback_flags);
  feedback_cmd->add_option("--item", feedback_item, "item id")->required();
  feedback_cmd->add_option("--event-id", feedback_event, "idempotency key (optional)");
  feedback_cmd->add_option("--response", feedback_responses, "head=value, repeatable")->required();

  DataDirFlags inspect_flags;
  std::string inspect_item;
  CLI::App* inspect_cmd =
      app.add_subcommand("inspect", "Counts, layout and clusters of a data directory");
  AddDataDirFlags(inspect_cmd, &inspect_flags);
  inspect_cmd->add_option("--item", inspect_item, "also show this item, its model and blend");

  DataDirFlags backup_flags;
  std::string backup_to;
  CLI::App* backup_cmd =
      app.add_subcommand("backup", "Copy a data directory consistently (open the copy to restore)");
  AddDataDirFlags(backup_cmd, &backup_flags);
  backup_cmd->add_option("--to", backup_to, "new directory for the copy")->required();
  std::string backup_server, backup_token_file;
  backup_cmd->get_option("--data-dir")->required(false);
  backup_cmd
      ->add_option("--server", backup_server,
                   "back up the data directory of a running `dynspec serve` at this address "
                   "(host:port); --to is then a path on the server's machine")
      ->excludes("--data-dir");
  backup_cmd->add_option("--token-file", backup_token_file, "bearer token for --server");

  std::string tokenize_text, tokenize_vocab = dynspec::kClipVocabDefaultPath;
  int tokenize_length = 77;
  bool tokenize_no_truncate = false;
  CLI::App* tokenize_cmd =
      app.add_subcommand("tokenize", "Print the CLIP BPE token ids of a text (docs/embedding.md)");
  tokenize_cmd->add_option("text", tokenize_text, "text to tokenize")->required();
  tokenize_cmd->add_option("--vocab", tokenize_vocab, "CLIP BPE merges (.txt.gz)")
      ->capture_default_str();
  tokenize_cmd->add_option("--context-length", tokenize_length, "tokens per sequence")
      ->capture_default_str()
      ->check(CLI::Range(2, 1 << 20));
  tokenize_cmd->add_flag("--no-truncate", tokenize_no_truncate,
                         "fail instead of truncating a text longer than the context");

  SimulateFlags simulate;
  CLI::App* simulate_cmd = app.add_subcommand(
      "simulate",
      "Compare ranking policies (uniform, greedy, epsilon-greedy, softmax, softmax + PPO, static "
      "cluster) in a bandit environment built from real data (docs/learning.md)");
  auto* sim_events = simulate_cmd->add_option("--events", simulate.events,
                                              "event file instead of the Amazon data");
  simulate_cmd
      ->add_option("--obd", simulate.obd,
                   "Open Bandit Dataset csv (item_context.csv beside it): the semi-synthetic "
                   "environment of docs/learning.md instead of the Amazon data")
      ->excludes(sim_events);
  simulate_cmd->add_option("--amazon", simulate.amazon_dir, "folder with the Amazon data")
      ->capture_default_str();
  simulate_cmd->add_option("--out", simulate.out_dir, "folder for the report and plots")
      ->capture_default_str();
  simulate_cmd->add_option("--head", simulate.head, "binary head that defines the liked item")
      ->capture_default_str();
  simulate_cmd->add_option("--policies", simulate.policies,
                           "subset of: uniform greedy epsilon_greedy softmax softmax_ppo "
                           "ppo_only static_cluster");
  simulate_cmd->add_option("--rounds", simulate.rounds, "rounds to play (0 = all)")
      ->capture_default_str();
  simulate_cmd->add_option("--candidates", simulate.candidates, "items offered per round")
      ->capture_default_str()
      ->check(CLI::Range(size_t{2}, size_t{1000}));
  simulate_cmd->add_option("--clusters", simulate.clusters, "initial provider clusters")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  simulate_cmd->add_option("--seed", simulate.seed, "seed of the candidate sets")
      ->capture_default_str();
  simulate_cmd->add_flag("--no-progress", simulate.no_progress, "no progress bar");
  AddEngineFlags(simulate_cmd, &simulate.engine);

  std::string ope_log, ope_obd;
  dynspec::eval::OpeTarget ope_target;
  CLI::App* ope_cmd = app.add_subcommand(
      "ope",
      "Off-policy estimates (IPS, SNIPS, DR) of a target policy from a decision log or "
      "an Open Bandit Dataset csv");
  auto* log_opt = ope_cmd->add_option("--log", ope_log, "decision log (rank.decision_log)");
  auto* obd_opt = ope_cmd->add_option("--obd", ope_obd, "Open Bandit Dataset csv");
  log_opt->excludes(obd_opt);
  ope_cmd
      ->add_option("--target", ope_target.policy,
                   "logged, uniform, greedy, softmax, epsilon_greedy (decision log); logged, "
                   "uniform, greedy_affinity (OBD)")
      ->capture_default_str();
  ope_cmd->add_option("--temperature", ope_target.temperature, "softmax target temperature")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  ope_cmd->add_option("--epsilon", ope_target.epsilon, "exploration floor of the target")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));

  std::string recluster_server, recluster_token_file, recluster_out;
  DataDirFlags recluster_flags;
  CLI::App* recluster_cmd = app.add_subcommand(
      "recluster",
      "Re-cluster providers now, on a data directory no process holds (--data-dir) or on a "
      "running server (--server, POST /v1/recluster), and print the report");
  AddDataDirFlags(recluster_cmd, &recluster_flags);
  recluster_cmd->get_option("--data-dir")->required(false);
  recluster_cmd
      ->add_option("--server", recluster_server,
                   "address of a running `dynspec serve` (host:port) holding the directory")
      ->excludes("--data-dir");
  recluster_cmd->add_option("--token-file", recluster_token_file, "bearer token for --server");
  recluster_cmd
      ->add_option("--out", recluster_out,
                   "with --data-dir: also write recluster.json and dendrogram.svg here")
      ->excludes("--server");

  ServeFlags serve;
  CLI::App* serve_cmd = app.add_subcommand(
      "serve", "Serve the JSON API (docs/api.md) over a data directory until SIGTERM/SIGINT");
  AddDataDirFlags(serve_cmd, &serve.data);
  serve_cmd->add_option("--host", serve.server.host, "address to bind")->capture_default_str();
  serve_cmd->add_option("--port", serve.server.port, "port (0 = any free port)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  serve_cmd->add_option("--threads", serve.server.threads, "worker threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  serve_cmd->add_option("--token-file", serve.token_file,
                        "file whose first line is the bearer token required by writing routes");
  serve_cmd
      ->add_option("--max-body-bytes", serve.server.limits.max_body_bytes, "largest request body")
      ->capture_default_str()
      ->check(CLI::Range(size_t{64}, size_t{1} << 30));
  serve_cmd
      ->add_option("--max-batch-items", serve.server.limits.max_batch_items,
                   "most items per POST /v1/items:batch")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1000000}));
  serve_cmd
      ->add_option("--max-candidates", serve.server.limits.max_candidates,
                   "most candidates per POST /v1/rank")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{100000}));
  serve_cmd
      ->add_option("--max-vector-values", serve.server.limits.max_vector_values,
                   "most values in a vector or dense context")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1} << 24));

  CLI11_PARSE(app, argc, argv);

  if (serve_cmd->parsed()) return Serve(serve_cmd, serve);
  if (simulate_cmd->parsed()) return RunSimulateCommand(simulate_cmd, simulate);
  if (ope_cmd->parsed()) {
    if (ope_log.empty() == ope_obd.empty()) {
      return Fail(Status::InvalidArgument("give exactly one of --log and --obd"));
    }
    auto report = ope_log.empty() ? dynspec::eval::EvaluateObdLog(ope_obd, ope_target)
                                  : dynspec::eval::EvaluateDecisionLog(ope_log, ope_target);
    if (!report.ok()) return Fail(report.status());
    std::cout << dynspec::eval::FormatOpeReport(*report, ope_target.policy);
    return 0;
  }
  if (tokenize_cmd->parsed()) {
    auto out = dynspec::DescribeClipTokens(tokenize_vocab, tokenize_text, tokenize_length,
                                           !tokenize_no_truncate);
    if (!out.ok()) return Fail(out.status());
    std::cout << *out;
    return 0;
  }

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
  if (ingest_cmd->parsed()) {
    // With --clip-model and --image, one loaded CLIP embeds the image and is the engine's text
    // embedder (a model is hundreds of MB: loading it twice would double the start-up).
    std::unique_ptr<dynspec::Embedder> text_embedder;
    const dynspec::ClipEmbedder* image_clip = nullptr;
#ifdef DYNSPEC_HAVE_TORCH
    std::unique_ptr<dynspec::ClipEmbedder> loaded_clip;
    if (!ingest_image.empty() && !ingest_flags.clip_model.empty()) {
      auto clip = dynspec::ClipEmbedder::Load(ingest_flags.clip_model, ingest_flags.clip_vocab);
      if (!clip.ok()) return Fail(clip.status().WithContext("--clip-model"));
      loaded_clip = std::move(clip).value();
      text_embedder = loaded_clip->Share();
      image_clip = loaded_clip.get();
    }
#endif
    auto engine = OpenEngineAt(ingest_cmd, ingest_flags, std::move(text_embedder));
    if (!engine.ok()) return Fail(engine.status());
    if (ingest_item.content.text.empty() && ingest_image.empty() && ingest_video.empty()) {
      return Fail(Status::InvalidArgument("give one of --text, --image and --video"));
    }
    // Images and videos become precomputed vectors in the engine's dimension. They live in
    // another space than text vectors: keep one kind of content per provider cluster.
    dynspec::ImageEmbedOptions image_options;
    image_options.dim = (*engine)->embedding_dim();
    if (!ingest_image.empty()) {
      auto v = EmbedImageFor(image_clip, (*engine)->embedding_dim(), ingest_image);
      if (!v.ok()) return Fail(v.status().WithContext("--image"));
      ingest_item.content.vector = std::move(v).value();
    } else if (!ingest_video.empty()) {
      dynspec::VideoEmbedOptions video_options;
      video_options.image = image_options;
      auto embedder = dynspec::VideoEmbedder::Create(video_options);
      if (!embedder.ok()) return Fail(embedder.status());
      auto v = (*embedder)->EmbedVideoFile(ingest_video);
      if (!v.ok()) return Fail(v.status().WithContext("--video"));
      ingest_item.content.vector = std::move(v).value();
    }
    if (Status st = (*engine)->Ingest(ingest_item); !st.ok()) return Fail(st);
    auto provider = (*engine)->GetProvider(ingest_item.provider);
    std::cout << "ingested " << ingest_item.id << " (provider " << ingest_item.provider
              << ", cluster " << (provider.ok() ? provider->cluster : 0) << ")\n";
    return 0;
  }
  if (predict_cmd->parsed()) {
    auto engine = OpenEngineAt(predict_cmd, predict_flags);
    if (!engine.ok()) return Fail(engine.status());
    auto p = (*engine)->Predict({predict_item});
    if (!p.ok()) return Fail(p.status());
    PrintPrediction(*p);
    return 0;
  }
  if (feedback_cmd->parsed()) {
    auto responses = ParseResponses(feedback_responses);
    if (!responses.ok()) return Fail(responses.status());
    auto engine = OpenEngineAt(feedback_cmd, feedback_flags);
    if (!engine.ok()) return Fail(engine.status());
    auto r = (*engine)->Feedback({feedback_event, feedback_item, {}, *responses});
    if (!r.ok()) return Fail(r.status());
    std::cout << "learned: reward " << r->reward << ", item version " << r->item_version
              << (r->item_joined_partition ? ", item joined its partition" : "") << "\n";
    return 0;
  }
  if (inspect_cmd->parsed()) return InspectDataDir(inspect_cmd, inspect_flags, inspect_item);
  if (backup_cmd->parsed() && !backup_server.empty()) {
    auto reply = PostToServer(backup_server, backup_token_file, "/v1/admin/backup",
                              nlohmann::json{{"dir", backup_to}}.dump());
    if (!reply.ok()) return Fail(reply.status());
    std::cout << "backed up the data directory of " << backup_server << " to " << backup_to
              << " (on the server's machine)\n";
    return 0;
  }
  if (recluster_cmd->parsed() && !recluster_server.empty()) {
    auto reply = PostToServer(recluster_server, recluster_token_file, "/v1/recluster", "");
    if (!reply.ok()) return Fail(reply.status());
    std::cout << *reply << "\n";
    return 0;
  }
  if (recluster_cmd->parsed())
    return ReclusterDataDir(recluster_cmd, recluster_flags, recluster_out);
  if (backup_cmd->parsed()) {
    if (backup_flags.data_dir.empty()) {
      return Fail(Status::InvalidArgument("give --data-dir or --server"));
    }
    // A directory held by a serving process is backed up by that process (Engine::Backup);
    // this command is for a directory no process holds.
    auto engine = OpenEngineAt(backup_cmd, backup_flags);
    if (!engine.ok()) return Fail(engine.status());
    if (Status st = (*engine)->Backup(backup_to); !st.ok()) return Fail(st);
    std::cout << "backed up " << backup_flags.data_dir << " to " << backup_to << "\n";
    return 0;
  }
  return 0;
}
