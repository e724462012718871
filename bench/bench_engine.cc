// bench_engine: predict latency and feedback throughput of the engine on a synthetic
// clustered partition, with raw hnswlib searchKnn on the same vectors and the same index
// settings as the baseline, measured in the same run (these machines are noisy, so the
// ratio is the figure to compare).
//
//   bench_engine [--items N] [--dim D] [--k K] [--queries Q]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "bench_flags.h"
#include "bench_util.h"
#include "dynspec/engine.h"
#include "index/raw_hnsw.h"

using dynspec::bench::Clock;
using dynspec::bench::MakeVectors;
using dynspec::bench::Percentile;
using dynspec::bench::Seconds;

constexpr char kUsage[] = "bench_engine [--items N] [--dim D] [--k K] [--queries Q]\n";

int main(int argc, char** argv) {
  size_t items = 100000, queries = 2000;
  int dim = 256, k = 16;
  using namespace dynspec::bench;
  ParseFlags(argc, argv, kUsage, [&](const std::string& a, const std::string& v) {
    if (a == "--items")
      items = FlagCount(v);
    else if (a == "--dim")
      dim = FlagInt(v);
    else if (a == "--k")
      k = FlagInt(v);
    else if (a == "--queries")
      queries = FlagCount(v);
    else
      return false;
    return true;
  });
  if (items < 1 || dim < 1 || k < 1 || queries < 1) {
    FlagError("out of range: --items, --dim, --k and --queries must be >= 1", kUsage);
  }
  std::printf("workload: %zu items, D=%d, k=%d, %zu queries, one provider cluster\n", items, dim, k,
              queries);
  const auto vectors = MakeVectors(items, dim, 1);

  dynspec::EngineOptions o;
  o.embed.dim = dim;
  o.blend.k = k;
  auto opened = dynspec::Engine::Open(o);
  if (!opened.ok()) {
    std::fprintf(stderr, "%s\n", opened.status().ToString().c_str());
    return 1;
  }
  dynspec::Engine& engine = **opened;

  // Ingest (precomputed vectors), in batches.
  auto t0 = Clock::now();
  for (size_t start = 0; start < items; start += 10000) {
    std::vector<dynspec::ItemInput> batch;
    for (size_t i = start; i < std::min(items, start + 10000); ++i) {
      batch.push_back({"item" + std::to_string(i), "provider", {"", vectors[i]}});
    }
    if (auto st = engine.IngestBatch(batch); !st.ok()) {
      std::fprintf(stderr, "%s\n", st.ToString().c_str());
      return 1;
    }
  }
  auto t1 = Clock::now();
  std::printf("ingest (catalog only)     %10.0f items/s\n", items / Seconds(t0, t1));

  // First feedback per item: learns and writes the item into the partition (HNSW insert).
  std::mt19937 rng(2);
  t0 = Clock::now();
  for (size_t i = 0; i < items; ++i) {
    dynspec::FeedbackEvent e{"", "item" + std::to_string(i), {}, {{"click", double(rng() % 2)}}};
    e.context.sparse = {{"user=" + std::to_string(rng() % 1000), 1.0f}};
    if (auto r = engine.Feedback(e); !r.ok()) {
      std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
      return 1;
    }
  }
  t1 = Clock::now();
  const double first_feedback = items / Seconds(t0, t1);

  // Steady-state feedback on served items (memory store).
  const size_t repeat = std::min<size_t>(items, 50000);
  t0 = Clock::now();
  for (size_t i = 0; i < repeat; ++i) {
    dynspec::FeedbackEvent e{"",
                             "item" + std::to_string(rng() % items),
                             {},
                             {{"click", double(rng() % 2)}, {"dwell_seconds", double(rng() % 60)}}};
    e.context.sparse = {{"user=" + std::to_string(rng() % 1000), 1.0f}};
    if (auto r = engine.Feedback(e); !r.ok()) return 1;
  }
  t1 = Clock::now();
  const double feedback = repeat / Seconds(t0, t1);

  // Raw hnswlib with the same settings on the same vectors.
  dynspec::RawHnsw raw(dim, items, o.index.hnsw_m, o.index.hnsw_ef_construction);
  t0 = Clock::now();
  for (size_t i = 0; i < items; ++i) raw.Add(vectors[i].data(), i);
  t1 = Clock::now();
  const double raw_add = items / Seconds(t0, t1);
  raw.SetEf(o.index.hnsw_ef_search);

  std::vector<size_t> query_ids(queries);
  for (auto& q : query_ids) q = rng() % items;
  std::vector<double> engine_ms, raw_ms;
  for (size_t q : query_ids) {
    auto a = Clock::now();
    auto r = raw.Search(vectors[q].data(), k + 1);
    auto b = Clock::now();
    if (r.empty()) return 1;
    raw_ms.push_back(Seconds(a, b) * 1e3);
  }
  for (size_t q : query_ids) {
    dynspec::PredictRequest req;
    req.item_id = "item" + std::to_string(q);
    req.context.sparse = {{"user=" + std::to_string(rng() % 1000), 1.0f}};
    auto a = Clock::now();
    auto p = engine.Predict(req);
    auto b = Clock::now();
    if (!p.ok()) return 1;
    engine_ms.push_back(Seconds(a, b) * 1e3);
  }
  const double ep50 = Percentile(engine_ms, 0.5), ep99 = Percentile(engine_ms, 0.99);
  const double rp50 = Percentile(raw_ms, 0.5), rp99 = Percentile(raw_ms, 0.99);
  std::printf("raw hnswlib addPoint      %10.0f items/s\n", raw_add);
  std::printf("first feedback (+insert)  %10.0f events/s   ratio to raw addPoint %.2f\n",
              first_feedback, first_feedback / raw_add);
  std::printf("feedback (memory store)   %10.0f events/s\n", feedback);
  std::printf("predict  p50 %8.3f ms  p99 %8.3f ms\n", ep50, ep99);
  std::printf("raw searchKnn(k+1) p50 %8.3f ms  p99 %8.3f ms\n", rp50, rp99);
  std::printf("predict / raw search: p50 %.2fx  p99 %.2fx\n", ep50 / rp50, ep99 / rp99);
  return 0;
}
