// bench_scale: the performance targets at scale, each next to its raw-library baseline
// measured in the same process and run (these shared machines drift, so ratios are the
// figures to compare).
//
//   bench_scale [--items N] [--dim D] [--k 16] [--queries 2000] [--feedback 200000]
//               [--ef-construction 200] [--storage float32|float16] [--mixed-seconds 5]
//               [--dir DIR] [--markdown FILE] [--summary FILE]
//
// --markdown writes the targets table; --summary appends one tab-separated line of the
// figures (header: kSummaryHeader) for scripts/bench.sh's scaling tables.
//
// The engine runs on the durable store (RocksDB in DIR, default a new directory under the
// system temp dir, removed at the end) with group commit every 10 ms, as in production: the
// in-memory store would keep a second copy of every item record and distort the memory
// figure.
// Workload (bench/workload.h): N items from N/100 providers with Zipf-skewed catalog sizes,
// around 256 topic centres; users in 32 segments whose click probability depends on topic,
// item and segment. All providers share one cluster, so the partition holds all N items.
// Phases, all in one thread unless stated:
//   1. ingest: IngestBatch of the whole catalog with precomputed vectors (items become
//      predictable; they join the partition on their first feedback);
//   2. join: one feedback per item (learns, blends the item's first model from its
//      neighbours, inserts it into the HNSW partition). In production an item's first
//      feedback answers its first prediction, so 15 items in 16 are predicted first (off the
//      join's clock; the join fine-tunes the prediction's blend) and every 16th joins
//      without one (a search of its own), timed apart. Predictions run 16 items ahead of
//      the feedback: between an item's prediction and its join the engine serves 16 other
//      predictions and joins, as a live server serves other requests in between, so the
//      join does not find the item's neighbourhood in the CPU caches its prediction filled
//      (and the partition grows by 16 = k items, within the engine's reuse rule). Raw
//      baseline: hnswlib addPoint of the same vectors with the same settings into an index
//      of its own (dynspec's kernel, so the ratio isolates the engine's work), built
//      alongside: after every 1,024 joins, the same 1,024 items, so that host drift falls
//      on both clocks. Every 4th chunk runs an untimed search between its adds, as the
//      joins have predictions between them, and is reported apart;
//   3. memory: resident-set growth over phases 1-2 per item (less the raw index's growth,
//      measured around its chunks), against the raw bytes of a vector plus the item's model
//      state;
//   4. feedback: --feedback events on popularity-drawn items with a user segment;
//   5. predict: --queries predictions by item id against raw searchKnn(k + 1) on the same
//      items, the two alternating; recall@k of the engine's neighbours and of the raw index
//      against brute force; log-loss of the engine's click predictions against the true
//      click probabilities;
//   6. mixed: 4 predictions to 1 feedback, 1 thread then 2 threads, --mixed-seconds each.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bench_flags.h"
#include "bench_util.h"
#include "dynspec/engine.h"
#include "dynspec/store.h"
#include "index/dot_kernel.h"
#include "index/raw_hnsw.h"
#include "workload.h"

namespace {

using dynspec::bench::Clock;
using dynspec::bench::Percentile;
using dynspec::bench::Seconds;
using dynspec::bench::Workload;

struct Flags {
  dynspec::bench::WorkloadSpec spec;
  int k = 16;
  size_t queries = 2000;
  size_t feedback = 200000;
  int ef_construction = 200;
  bool float16 = false;
  double mixed_seconds = 5;
  std::string markdown;
  std::string dir;
  std::string summary;
};

constexpr char kSummaryHeader[] =
    "items\tdim\tstorage\tef_construction\tingest_per_s\tjoin_per_s\traw_add_per_s\traw_join_per_"
    "s\t"
    "feedback_per_s\tpredict_p50_ms\tpredict_p99_ms\traw_p50_ms\traw_p99_ms\t"
    "bytes_per_item\traw_bytes_per_item\traw_index_bytes_per_item\trecall_engine\t"
    "recall_raw\tlog_loss\tentropy\tmixed_1_thread\tmixed_2_threads\tcold_join_per_s\t"
    "first_round_per_s\tlinked_join_share";

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "bench_scale: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T Check(dynspec::Result<T> r, const char* what) {
  if (!r.ok()) Die(std::string(what) + ": " + r.status().ToString());
  return std::move(r).value();
}
void Check(const dynspec::Status& st, const char* what) {
  if (!st.ok()) Die(std::string(what) + ": " + st.ToString());
}

constexpr char kUsage[] =
    "bench_scale [--items N] [--dim D] [--k 16] [--queries 2000] [--feedback 200000]\n"
    "            [--ef-construction 200] [--storage float32|float16] [--mixed-seconds 5]\n"
    "            [--dir DIR] [--markdown FILE] [--summary FILE]\n";

Flags Parse(int argc, char** argv) {
  using namespace dynspec::bench;
  Flags f;
  ParseFlags(argc, argv, kUsage, [&](const std::string& a, const std::string& v) {
    if (a == "--items")
      f.spec.items = FlagCount(v);
    else if (a == "--dim")
      f.spec.dim = FlagInt(v);
    else if (a == "--k")
      f.k = FlagInt(v);
    else if (a == "--queries")
      f.queries = FlagCount(v);
    else if (a == "--feedback")
      f.feedback = FlagCount(v);
    else if (a == "--ef-construction")
      f.ef_construction = FlagInt(v);
    else if (a == "--mixed-seconds")
      f.mixed_seconds = FlagDouble(v);
    else if (a == "--markdown")
      f.markdown = v;
    else if (a == "--dir")
      f.dir = v;
    else if (a == "--summary")
      f.summary = v;
    else if (a == "--storage") {
      if (v != "float32" && v != "float16") throw std::invalid_argument(v);
      f.float16 = v == "float16";
    } else {
      return false;
    }
    return true;
  });
  if (f.spec.items < 100 || f.spec.dim < 8 || f.k < 1 || f.queries < 1 || f.ef_construction < 1 ||
      !(f.mixed_seconds > 0))
    FlagError(
        "out of range: --items >= 100, --dim >= 8, --k, --queries and --ef-construction >= 1, "
        "--mixed-seconds > 0",
        kUsage);
  return f;
}

double ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  double pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<double>(sysconf(_SC_PAGESIZE));
}

dynspec::FeedbackEvent ClickEvent(const Workload& w, size_t item, size_t segment,
                                  std::mt19937_64& rng) {
  dynspec::FeedbackEvent e;
  e.item_id = w.item_id(item);
  e.context.sparse = {{Workload::segment_feature(segment), 1.0f}};
  const double p = w.ClickProbability(item, segment);
  e.responses = {{"click", std::uniform_real_distribution<double>(0, 1)(rng) < p ? 1.0 : 0.0}};
  return e;
}

dynspec::PredictRequest PredictFor(const Workload& w, size_t item, size_t segment) {
  dynspec::PredictRequest req;
  req.item_id = w.item_id(item);
  req.context.sparse = {{Workload::segment_feature(segment), 1.0f}};
  return req;
}

// Brute-force top k (by inner product) of `query` over the catalog, excluding `self`.
std::vector<size_t> ExactTopK(const Workload& w, const std::vector<float>& query, size_t self,
                              size_t k) {
  std::vector<std::pair<float, size_t>> best;
  best.reserve(k + 1);
  const size_t n = w.size();
  for (size_t i = 0; i < n; ++i) {
    if (i == self) continue;
    const float s = dynspec::DotF32(query.data(), w.vector(i).data(), query.size());
    if (best.size() < k || s > best.back().first) {
      best.emplace_back(s, i);
      std::sort(best.begin(), best.end(), [](auto& a, auto& b) { return a.first > b.first; });
      if (best.size() > k) best.pop_back();
    }
  }
  std::vector<size_t> out;
  for (auto& [s, i] : best) out.push_back(i);
  return out;
}

struct Row {
  std::string name, value, baseline, ratio, target, verdict;
};

}  // namespace

int main(int argc, char** argv) {
  const Flags flags = Parse(argc, argv);
  const size_t n = flags.spec.items;
  const int dim = flags.spec.dim;
  std::printf("bench_scale: %zu items, D=%d, k=%d, ef_construction %d, %s vectors, kernel %s\n", n,
              dim, flags.k, flags.ef_construction, flags.float16 ? "float16" : "float32",
              dynspec::DotKernelName());
  std::fflush(stdout);
  auto t0 = Clock::now();
  const Workload w(flags.spec);
  std::printf("workload generated in %.1f s (%zu providers)\n", Seconds(t0, Clock::now()),
              w.spec().providers);

  dynspec::EngineOptions o;
  o.embed.dim = dim;
  o.blend.k = flags.k;
  o.index.hnsw_ef_construction = flags.ef_construction;
  o.index.vector_storage =
      flags.float16 ? dynspec::VectorStorage::kFloat16 : dynspec::VectorStorage::kFloat32;
  // The default heads (click, like, share, dwell_seconds): the workload observes clicks only,
  // but every item carries the model state of all four, as it would in production.
  o.recluster.period_seconds = 0;
  std::string dir = flags.dir;
  if (dir.empty()) {
    dir = (std::filesystem::temp_directory_path() /
           ("dynspec_bench_scale_" + std::to_string(::getpid())))
              .string();
  }
  std::filesystem::remove_all(dir);
  dynspec::DurableStoreOptions store_options;
  store_options.sync_every_ms = 10;
  auto store = Check(dynspec::OpenDurableStore(dir, store_options), "open store");
  auto engine_owner = Check(dynspec::Engine::Open(o, std::move(store)), "open");
  dynspec::Engine& engine = *engine_owner;
  const double rss_start = ResidentBytes();

  // 1. ingest
  t0 = Clock::now();
  for (size_t start = 0; start < n; start += 10000) {
    std::vector<dynspec::ItemInput> batch;
    for (size_t i = start; i < std::min(n, start + 10000); ++i) {
      batch.push_back({w.item_id(i), w.provider_id(i), {"", w.vector(i)}});
    }
    Check(engine.IngestBatch(batch), "ingest");
  }
  const double ingest_rate = n / Seconds(t0, Clock::now());
  std::printf("ingest: %.0f items/s\n", ingest_rate);
  std::fflush(stdout);

  // 2. join: first feedback per item, in catalog order; 15 in 16 after a prediction made
  // kLookahead items earlier. Raw hnswlib builds its own index of the same vectors with the
  // same settings alongside, kRawChunk items at a time after the engine's joins of the same
  // items, so that both clocks run under the same host conditions: on these shared
  // machines the speed of a core drifts by 20% from minute to minute, which sequential
  // phases put straight into the ratio.
  const double rss_before_raw = ResidentBytes();
  dynspec::RawHnsw raw(dim, n, o.index.hnsw_m, o.index.hnsw_ef_construction);
  raw.SetEf(o.index.hnsw_ef_search);
  // Resident growth while raw runs (its constructor and its chunks); the engine's is the
  // rest of the growth over phases 1 and 2.
  double raw_index_bytes = ResidentBytes() - rss_before_raw;
  // A join is a neighbour search (for the item's first model) plus an insert. Every 16th
  // item the raw build also times searchKnn(k + 1) on the index as it stands, outside the
  // addPoint clock, so the raw cost of a join (search + insert) is known too.
  // Every 4th chunk is built as the joins run instead: before adding item i, an untimed
  // searchKnn(k + 1) for item i + kLookahead, as the engine predicts that item before the
  // join of item i. Its addPoint rate shows how much of the join's gap to back-to-back
  // inserts is the searches' traffic through the caches rather than the engine's own work.
  constexpr size_t kLookahead = 16;
  constexpr size_t kRawChunk = 1024;
  double raw_search_seconds = 0;
  size_t raw_searches = 0;
  double add_seconds = 0, slowest_add = 0, serving_add_seconds = 0;
  size_t raw_added = 0, plain_adds = 0, serving_adds = 0;
  auto raw_build_to = [&](size_t end) {
    const double rss_before = ResidentBytes();
    const bool serving = ((end - 1) / kRawChunk) % 4 == 3;
    for (; raw_added < end; ++raw_added) {
      const size_t i = raw_added;
      if (serving && i + kLookahead < n) {  // serving chunks start at item 3,072
        if (raw.Search(w.vector(i + kLookahead).data(), flags.k + 1).empty()) {
          Die("raw search found nothing");
        }
      } else if (!serving && i % 16 == 0 && i > 0) {
        const auto a = Clock::now();
        if (raw.Search(w.vector(i).data(), flags.k + 1).empty()) Die("raw search found nothing");
        raw_search_seconds += Seconds(a, Clock::now());
        ++raw_searches;
      }
      const auto a = Clock::now();
      raw.Add(w.vector(i).data(), i);
      const double took = Seconds(a, Clock::now());
      (serving ? serving_add_seconds : add_seconds) += took;
      ++(serving ? serving_adds : plain_adds);
      slowest_add = std::max(slowest_add, took);
    }
    raw_index_bytes += ResidentBytes() - rss_before;
  };

  std::mt19937_64 rng(2);
  std::vector<uint32_t> segments(n);
  for (auto& s : segments) s = static_cast<uint32_t>(rng() % w.spec().segments);
  auto predicted = [](size_t i) { return i % 16 != 15; };
  // These predictions are of items not yet served: each also keeps the item's first model
  // and its search's link candidates. Timed apart from the joins, for the cost of a new
  // item's whole first round (prediction + join) against raw searchKnn + addPoint.
  double new_item_predict_seconds = 0;
  size_t new_item_predicts = 0;
  auto predict = [&](size_t i) {
    if (i >= n || !predicted(i)) return;
    const auto a = Clock::now();
    Check(engine.Predict(PredictFor(w, i, segments[i])), "prediction");
    new_item_predict_seconds += Seconds(a, Clock::now());
    ++new_item_predicts;
  };
  double join_seconds = 0, cold_join_seconds = 0;
  // The slowest joins, slowest first, with the item's place in the catalog (= the partition's
  // size before it joined), so that a stall can be matched with what happened at that size:
  // the graph's build, a growth, the huge-page collapse. A join holds the partition's
  // exclusive lock while it inserts, so predictions on the partition wait as long.
  std::vector<std::pair<double, size_t>> slowest_joins;
  constexpr size_t kSlowestJoinsShown = 5;
  size_t joins = 0, cold_joins = 0;
  for (size_t i = 0; i < kLookahead; ++i) predict(i);
  t0 = Clock::now();
  auto progress = t0;
  for (size_t i = 0; i < n; ++i) {
    predict(i + kLookahead);
    const auto a = Clock::now();
    Check(engine.Feedback(ClickEvent(w, i, segments[i], rng)), "join feedback");
    const double took = Seconds(a, Clock::now());
    (predicted(i) ? join_seconds : cold_join_seconds) += took;
    if (slowest_joins.size() < kSlowestJoinsShown || took > slowest_joins.back().first) {
      slowest_joins.emplace_back(took, i);
      std::sort(slowest_joins.rbegin(), slowest_joins.rend());
      if (slowest_joins.size() > kSlowestJoinsShown) slowest_joins.pop_back();
    }
    ++(predicted(i) ? joins : cold_joins);
    if ((i + 1) % kRawChunk == 0 || i + 1 == n) raw_build_to(i + 1);
    if (Seconds(progress, Clock::now()) > 30) {
      progress = Clock::now();
      std::printf(
          "  join: %zu / %zu items, %.0f/s after a prediction, %.0f/s without; raw addPoint "
          "%.0f/s\n",
          i + 1, n, joins / join_seconds, cold_joins / cold_join_seconds, plain_adds / add_seconds);
      std::fflush(stdout);
    }
  }
  const double join_rate = joins / join_seconds;
  const double cold_join_rate = cold_joins > 0 ? cold_joins / cold_join_seconds : 0;
  const double new_item_predict_ms = 1e3 * new_item_predict_seconds / new_item_predicts;
  // A new item's prediction and its join, per item.
  const double first_round_rate =
      1 / (new_item_predict_seconds / new_item_predicts + 1 / join_rate);
  const double slowest_join = slowest_joins.front().first;
  std::printf("slowest joins:");
  for (const auto& [took, i] : slowest_joins) std::printf(" %.1f ms (item %zu)", took * 1e3, i);
  std::printf("\n");
  const double engine_bytes = ResidentBytes() - rss_start - raw_index_bytes;
  const dynspec::EngineStats join_stats = engine.Stats();
  if (join_stats.joins_reusing_prediction != joins) {
    Die("expected " + std::to_string(joins) + " joins to reuse their prediction's first model, " +
        std::to_string(join_stats.joins_reusing_prediction) + " did");
  }
  const double linked_share =
      double(join_stats.joins_linked_among_candidates) / double(joins + cold_joins);
  std::printf(
      "join (first feedback, HNSW insert): %.0f items/s after the item's prediction, %.0f items/s "
      "without one; %.1f%% of the joins linked among their search's candidates\n",
      join_rate, cold_join_rate, 100 * linked_share);
  const double raw_add_rate = plain_adds / add_seconds;
  const double raw_join_rate = 1 / (add_seconds / plain_adds + raw_search_seconds / raw_searches);
  const double serving_add_rate = serving_adds > 0 ? serving_adds / serving_add_seconds : 0;
  const double raw_search_ms = 1e3 * raw_search_seconds / raw_searches;
  std::printf(
      "raw addPoint: %.0f items/s (%.0f/s with a search between adds); raw searchKnn + addPoint: "
      "%.0f items/s\n",
      raw_add_rate, serving_add_rate, raw_join_rate);
  std::printf(
      "a new item's prediction %.3f ms (raw searchKnn %.3f ms); prediction + join %.0f items/s\n",
      new_item_predict_ms, raw_search_ms, first_round_rate);
  std::fflush(stdout);

  const auto probe = Check(engine.GetItem(w.item_id(0)), "get item");
  const double model_bytes = probe.model.weights.size() * sizeof(float) +
                             probe.model.sq_grad.size() * sizeof(float) +
                             probe.model.head_counts.size() * sizeof(double);
  const double vector_bytes = dim * sizeof(float);
  const double raw_item_bytes = vector_bytes + model_bytes;

  // 4. feedback on popularity-drawn items.
  Workload::ItemSampler sampler(w, 3);
  t0 = Clock::now();
  for (size_t e = 0; e < flags.feedback; ++e) {
    const size_t item = sampler.Next();
    Check(engine.Feedback(ClickEvent(w, item, rng() % w.spec().segments, rng)), "feedback");
  }
  const double feedback_rate = flags.feedback / Seconds(t0, Clock::now());
  std::printf("feedback (durable, group commit 10 ms): %.0f events/s\n", feedback_rate);

  // 5. predict vs raw search, recall, log-loss.
  std::vector<size_t> query_items(flags.queries);
  std::vector<size_t> query_segments(flags.queries);
  for (size_t q = 0; q < flags.queries; ++q) {
    query_items[q] = sampler.Next();
    query_segments[q] = rng() % w.spec().segments;
  }
  // Engine and raw queries alternate (which goes first alternates too), so that a pause of
  // the host or the store's background compaction after phase 4 falls on both sides alike
  // instead of on whichever loop ran at the time.
  std::vector<double> raw_ms, engine_ms;
  std::vector<std::vector<uint64_t>> raw_results(flags.queries);
  std::vector<dynspec::Prediction> predictions(flags.queries);
  for (size_t q = 0; q < flags.queries; ++q) {
    auto raw_query = [&] {
      auto a = Clock::now();
      raw_results[q] = raw.Search(w.vector(query_items[q]).data(), flags.k + 1);
      raw_ms.push_back(Seconds(a, Clock::now()) * 1e3);
    };
    auto engine_query = [&] {
      const dynspec::PredictRequest req = PredictFor(w, query_items[q], query_segments[q]);
      auto a = Clock::now();
      auto p = engine.Predict(req);
      engine_ms.push_back(Seconds(a, Clock::now()) * 1e3);
      predictions[q] = Check(std::move(p), "predict");
    };
    if (q % 2 == 0) {
      raw_query();
      engine_query();
    } else {
      engine_query();
      raw_query();
    }
  }
  const double ep50 = Percentile(engine_ms, 0.5), ep99 = Percentile(engine_ms, 0.99);
  const double rp50 = Percentile(raw_ms, 0.5), rp99 = Percentile(raw_ms, 0.99);
  std::printf("predict p50 %.3f ms p99 %.3f ms; raw searchKnn p50 %.3f ms p99 %.3f ms\n", ep50,
              ep99, rp50, rp99);

  double log_loss = 0, base_loss = 0;
  for (size_t q = 0; q < flags.queries; ++q) {
    const double p = w.ClickProbability(query_items[q], query_segments[q]);
    const double y = std::clamp(predictions[q].heads[0], 1e-6, 1 - 1e-6);
    log_loss += -(p * std::log(y) + (1 - p) * std::log(1 - y));
    base_loss += -(p * std::log(p) + (1 - p) * std::log(1 - p));  // the floor: entropy
  }
  log_loss /= flags.queries;
  base_loss /= flags.queries;

  // Recall@k against brute force on a subset (brute force costs N * D per query).
  const size_t recall_queries = std::min<size_t>(flags.queries, n >= 1000000 ? 100 : 300);
  size_t engine_hits = 0, raw_hits = 0, wanted = 0;
  for (size_t q = 0; q < recall_queries; ++q) {
    const size_t item = query_items[q];
    const auto truth = ExactTopK(w, w.vector(item), item, flags.k);
    const std::set<size_t> want(truth.begin(), truth.end());
    wanted += want.size();
    for (uint64_t label : raw_results[q]) raw_hits += (label != item) && want.count(label);
    for (const auto& c : predictions[q].contributions) {
      if (c.source != dynspec::Contribution::Source::kNeighbour) continue;
      engine_hits += want.count(std::stoul(c.item_id.substr(4)));
    }
  }
  const double engine_recall = double(engine_hits) / wanted;
  const double raw_recall = double(raw_hits) / wanted;
  std::printf("recall@%d: engine %.4f, raw %.4f; click log-loss %.4f (entropy floor %.4f)\n",
              flags.k, engine_recall, raw_recall, log_loss, base_loss);
  std::fflush(stdout);

  // 6. mixed predict/feedback, 1 and 2 threads.
  auto mixed = [&](int threads) {
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> ops{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        Workload::ItemSampler s(w, 100 + t);
        std::mt19937_64 r(200 + t);
        uint64_t done = 0;
        while (!stop.load(std::memory_order_relaxed)) {
          const size_t item = s.Next();
          const size_t seg = r() % w.spec().segments;
          if (done % 5 == 4) {
            Check(engine.Feedback(ClickEvent(w, item, seg, r)), "mixed feedback");
          } else {
            Check(engine.Predict(PredictFor(w, item, seg)), "mixed predict");
          }
          ++done;
        }
        ops += done;
      });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(flags.mixed_seconds));
    stop = true;
    for (auto& th : pool) th.join();
    return ops.load() / flags.mixed_seconds;
  };
  const double mixed1 = mixed(1), mixed2 = mixed(2);
  std::printf("mixed 4:1 predict/feedback: 1 thread %.0f ops/s, 2 threads %.0f ops/s (%.2fx)\n",
              mixed1, mixed2, mixed2 / mixed1);

  char buf[256];
  auto fmt = [&](const char* f, double v) {
    std::snprintf(buf, sizeof(buf), f, v);
    return std::string(buf);
  };
  const double engine_per_item = engine_bytes / n;
  const std::vector<Row> rows = {
      {"predict p99 (1 thread)", fmt("%.3f ms", ep99), fmt("%.3f ms raw searchKnn", rp99),
       fmt("%.2fx", ep99 / rp99), "<= 1 ms and <= 1.3x",
       ep99 <= 1.0 && ep99 / rp99 <= 1.3 ? "met" : "not met"},
      {"predict p50", fmt("%.3f ms", ep50), fmt("%.3f ms", rp50), fmt("%.2fx", ep50 / rp50), "",
       ""},
      {"ingest, catalog (predictable at once)", fmt("%.0f items/s", ingest_rate),
       fmt("%.0f addPoint/s", raw_add_rate), fmt("%.2fx", ingest_rate / raw_add_rate), ">= 0.8x",
       ingest_rate / raw_add_rate >= 0.8 ? "met" : "not met"},
      {"join partition after the item's prediction (first feedback: learn + insert)",
       fmt("%.0f items/s", join_rate), fmt("%.0f addPoint/s", raw_add_rate),
       fmt("%.2fx", join_rate / raw_add_rate), ">= 0.8x",
       join_rate / raw_add_rate >= 0.8 ? "met" : "not met"},
      {"join after a prediction vs raw addPoint with a search between adds (as the joins have)",
       fmt("%.0f items/s", join_rate), fmt("%.0f addPoint/s", serving_add_rate),
       serving_add_rate > 0 ? fmt("%.2fx", join_rate / serving_add_rate) : "", "", ""},
      {"join partition without a prediction (search + learn + insert)",
       fmt("%.0f items/s", cold_join_rate), fmt("%.0f addPoint/s", raw_add_rate),
       fmt("%.2fx", cold_join_rate / raw_add_rate), "", ""},
      {"join without a prediction vs the raw work it contains", fmt("%.0f items/s", cold_join_rate),
       fmt("%.0f (searchKnn + addPoint)/s", raw_join_rate),
       fmt("%.2fx", cold_join_rate / raw_join_rate), "", ""},
      {"joins whose insert linked among their search's candidates",
       fmt("%.1f%%", 100 * linked_share), "", "", "", ""},
      {"prediction of a new item (mean; keeps its first model and link candidates)",
       fmt("%.3f ms", new_item_predict_ms), fmt("%.3f ms raw searchKnn (mean)", raw_search_ms),
       fmt("%.2fx", new_item_predict_ms / raw_search_ms), "", ""},
      {"a new item's prediction + its join vs raw searchKnn + addPoint",
       fmt("%.0f items/s", first_round_rate), fmt("%.0f (searchKnn + addPoint)/s", raw_join_rate),
       fmt("%.2fx", first_round_rate / raw_join_rate), "", ""},
      {"slowest single join (includes the partition's growths)", fmt("%.1f ms", slowest_join * 1e3),
       fmt("%.1f ms slowest addPoint (sized in advance)", slowest_add * 1e3), "", "", ""},
      {"feedback, durable store, group commit 10 ms (1 thread)",
       fmt("%.0f events/s", feedback_rate), "", "", ">= 20,000/s",
       feedback_rate >= 20000 ? "met" : "not met"},
      {"memory per item", fmt("%.0f B", engine_per_item),
       fmt("%.0f B raw (vector + model state)", raw_item_bytes),
       fmt("%.2fx", engine_per_item / raw_item_bytes), "<= 1.5x",
       engine_per_item / raw_item_bytes <= 1.5 ? "met" : "not met"},
      {"raw hnswlib index per item", fmt("%.0f B", raw_index_bytes / n), "", "", "", ""},
      {"recall@k of the engine's neighbours", fmt("%.4f", engine_recall),
       fmt("%.4f raw", raw_recall), "", "", ""},
      {"click log-loss (held-out predictions)", fmt("%.4f", log_loss),
       fmt("%.4f entropy floor", base_loss), "", "", ""},
      {"mixed 4:1 predict/feedback, 2 threads vs 1", fmt("%.0f ops/s", mixed2),
       fmt("%.0f ops/s (1 thread)", mixed1), fmt("%.2fx", mixed2 / mixed1), "", ""},
  };
  std::string md =
      "| figure | dynspec | baseline | ratio | target | verdict |\n|---|---|---|---|---|---|\n";
  for (const Row& r : rows) {
    md += "| " + r.name + " | " + r.value + " | " + r.baseline + " | " + r.ratio + " | " +
          r.target + " | " + r.verdict + " |\n";
  }
  std::printf("\n%s", md.c_str());
  engine_owner.reset();
  std::filesystem::remove_all(dir);
  if (!flags.summary.empty()) {
    const bool fresh = !std::filesystem::exists(flags.summary);
    std::ofstream out(flags.summary, std::ios::app);
    if (fresh) out << kSummaryHeader << "\n";
    out << n << '\t' << dim << '\t' << (flags.float16 ? "float16" : "float32") << '\t'
        << flags.ef_construction << '\t' << ingest_rate << '\t' << join_rate << '\t' << raw_add_rate
        << '\t' << raw_join_rate << '\t' << feedback_rate << '\t' << ep50 << '\t' << ep99 << '\t'
        << rp50 << '\t' << rp99 << '\t' << engine_per_item << '\t' << raw_item_bytes << '\t'
        << raw_index_bytes / n << '\t' << engine_recall << '\t' << raw_recall << '\t' << log_loss
        << '\t' << base_loss << '\t' << mixed1 << '\t' << mixed2 << '\t' << cold_join_rate << '\t'
        << first_round_rate << '\t' << linked_share << '\n';
    if (!out) Die("cannot write " + flags.summary);
  }
  if (!flags.markdown.empty()) {
    std::ofstream out(flags.markdown);
    out << md;
    if (!out) Die("cannot write " + flags.markdown);
  }
  return 0;
}
