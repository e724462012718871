// Micro-benchmarks of the per-request building blocks (Google Benchmark).
#include <benchmark/benchmark.h>

#include <random>

#include "dynspec/embedder.h"
#include "dynspec/engine.h"

namespace {

void BM_HashingEmbedText(benchmark::State& state) {
  auto e = dynspec::NewHashingTextEmbedder(dynspec::EmbedOptions());
  const std::string text =
      "Written by and for musicians. Covers a variety of musical styles, gear reviews, "
      "lessons and interviews with players; Arts, Music & Photography ; Music";
  for (auto _ : state) benchmark::DoNotOptimize(e->EmbedText(text));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HashingEmbedText);

// Predict on a small served partition (exact search path).
void BM_PredictSmallPartition(benchmark::State& state) {
  dynspec::EngineOptions o;
  o.embed.dim = 64;
  auto engine = std::move(dynspec::Engine::Open(o)).value();
  std::mt19937 rng(1);
  for (int i = 0; i < 1000; ++i) {
    const std::string id = "i" + std::to_string(i);
    (void)engine->Ingest({id, "p", {"topic " + std::to_string(i % 50) + " words"}});
    (void)engine->Feedback({"", id, {}, {{"click", double(rng() % 2)}}});
  }
  dynspec::PredictRequest req;
  req.item_id = "i7";
  for (auto _ : state) benchmark::DoNotOptimize(engine->Predict(req));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PredictSmallPartition);

}  // namespace

BENCHMARK_MAIN();
