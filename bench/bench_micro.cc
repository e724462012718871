// Micro-benchmarks of the per-request building blocks (Google Benchmark).
#include <benchmark/benchmark.h>

#include <memory>
#include <random>
#include <vector>

#include "bench_util.h"
#include "dynspec/embedder.h"
#include "dynspec/engine.h"
#include "index/dot_kernel.h"
#include "index/raw_hnsw.h"

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

// The inner-product kernels the index selected at start-up (dot_kernel.h), D = 256.
void BM_DotF32(benchmark::State& state) {
  const auto v = dynspec::bench::MakeVectors(2, 256, 3);
  for (auto _ : state) benchmark::DoNotOptimize(dynspec::DotF32(v[0].data(), v[1].data(), 256));
  state.SetLabel(dynspec::DotKernelName());
}
BENCHMARK(BM_DotF32);

void BM_DotF16(benchmark::State& state) {
  const auto v = dynspec::bench::MakeVectors(2, 256, 3);
  std::vector<uint16_t> a(256), b(256);
  dynspec::FloatsToHalves(v[0], a.data());
  dynspec::FloatsToHalves(v[1], b.data());
  for (auto _ : state) benchmark::DoNotOptimize(dynspec::DotF16(a.data(), b.data(), 256));
  state.SetLabel(dynspec::DotKernelName());
}
BENCHMARK(BM_DotF16);

// hnswlib searchKnn(17) on a 20k-item graph (D = 256, M 16, ef_construction 40, ef 64) with
// hnswlib's packaged SSE kernel (arg 0) and with dynspec's run-time selected kernel (arg 1):
// the profile of the engine's predictions is dominated by these distance computations.
void BM_RawSearchKernel(benchmark::State& state) {
  constexpr size_t kItems = 20000;
  static const auto vectors = dynspec::bench::MakeVectors(kItems, 256, 5);
  const auto kernel =
      state.range(0) == 0 ? dynspec::RawHnsw::Kernel::kHnswlib : dynspec::RawHnsw::Kernel::kDynspec;
  dynspec::RawHnsw raw(256, kItems, 16, 40, kernel);
  for (size_t i = 0; i < kItems; ++i) raw.Add(vectors[i].data(), i);
  raw.SetEf(64);
  size_t q = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(raw.Search(vectors[q].data(), 17));
    q = (q + 7919) % kItems;
  }
  state.SetLabel(state.range(0) == 0 ? "hnswlib InnerProductSpace" : dynspec::DotKernelName());
}
BENCHMARK(BM_RawSearchKernel)->Arg(0)->Arg(1);

}  // namespace

BENCHMARK_MAIN();
