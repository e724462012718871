// bench_store: what durability costs. Feedback throughput through the Engine over the
// durable store (sync every commit; group commit every 10 ms) and over the memory store,
// each next to raw RocksDB WriteBatch writes of the same keys and value sizes per write
// (sync and not), measured in the same run (these machines are noisy, so the ratio is the
// figure to compare). The ratios are to RocksDB's default options; the raw no-sync run is
// repeated with the vector memtable the durable store uses, to show what that choice gives. Then
// restart time: Engine::Open of a store holding N items with trained models, and the store's own
// share of it (open + LoadAll).
//
//   bench_store [--dir DIR] [--items 1000] [--sync-ops 2000] [--ops 20000]
//               [--restart 100000,300000] [--engine-max 100000] [--exact-max N] [--dim 256]
//               [--repeat 3] [--ef-construction N] [--shadow-rate R]
//
// --engine-max: time Engine::Open only for stores up to this many items (it rebuilds every
// cluster's HNSW graph, which dominates); --exact-max: index.exact_search_max_items;
// --ef-construction: index.hnsw_ef_construction (lower builds the graphs faster);
// --shadow-rate: recluster.shadow_sample_rate (default: the engine's). The engine runs on 8
// clusters, so a shadow-evaluated event searches 8 partitions; the memory-store run is
// repeated without shadow evaluation to show its share.
// For those stores it then times SnapshotPartitions (partition snapshots, see
// EngineOptions::partition_snapshot_dir) and Engine::Open again, from the snapshots.
//
// DIR (default: a new directory under the system temp dir) is removed at the end; it must
// be on the disk to measure (not tmpfs).
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "bench_flags.h"
#include "dynspec/engine.h"
#include "dynspec/store.h"
#include "store/rocks_store.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using dynspec::Status;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

void Check(const Status& st, const char* what) {
  if (!st.ok()) {
    std::fprintf(stderr, "bench_store: %s: %s\n", what, st.ToString().c_str());
    std::exit(1);
  }
}

std::vector<float> UnitVector(std::mt19937_64& rng, int dim) {
  std::normal_distribution<float> g(0, 1);
  std::vector<float> v(dim);
  double n2 = 0;
  for (float& x : v) {
    x = g(rng);
    n2 += x * x;
  }
  for (float& x : v) x = static_cast<float>(x / std::sqrt(n2));
  return v;
}

size_t g_exact_max = 0;               // --exact-max: index.exact_search_max_items when set
int g_ef_construction = 0;            // --ef-construction: index.hnsw_ef_construction when set
double g_shadow_rate = -1;            // --shadow-rate: recluster.shadow_sample_rate when >= 0
constexpr int kFeedbackClusters = 8;  // the feedback runs' engines bootstrap this many clusters

dynspec::EngineOptions Options(int dim, const std::string& snapshot_dir = "") {
  dynspec::EngineOptions o;
  o.embed.dim = dim;
  if (g_exact_max) o.index.exact_search_max_items = g_exact_max;
  if (g_ef_construction) o.index.hnsw_ef_construction = g_ef_construction;
  o.partition_snapshot_dir = snapshot_dir;
  if (g_shadow_rate >= 0) o.recluster.shadow_sample_rate = g_shadow_rate;
  return o;
}

struct Sizes {  // key and value bytes of the writes of one feedback
  std::vector<std::pair<size_t, size_t>> kv;
  size_t total() const {
    size_t t = 0;
    for (auto [k, v] : kv) t += k + v;
    return t;
  }
};

// Feedback throughput of an engine over `store`, on `items` ingested items.
double FeedbackRate(std::unique_ptr<dynspec::Store> store, int dim, size_t items, size_t ops,
                    Sizes* sizes, bool shadow = true) {
  dynspec::EngineOptions options = Options(dim);
  if (!shadow) options.recluster.shadow_sample_rate = 0;
  auto opened = dynspec::Engine::Open(options, std::move(store));
  Check(opened.status(), "opening the engine");
  auto engine = std::move(opened).value();
  std::mt19937_64 rng(7);
  std::vector<dynspec::ItemInput> batch;
  for (size_t i = 0; i < items; ++i) {
    batch.push_back({"item-" + std::to_string(i),
                     "prov-" + std::to_string(i % 50),
                     {"", UnitVector(rng, dim)}});
    if (batch.size() == 1000 || i + 1 == items) {
      Check(engine->IngestBatch(batch), "ingest");
      batch.clear();
    }
  }
  Check(engine->BootstrapClusters(kFeedbackClusters), "bootstrap");
  // Warm up: every item gets its first feedback (initial blend, partition insert).
  uint64_t event = 0;
  auto feedback = [&](const std::string& item) {
    dynspec::FeedbackEvent e;
    e.event_id = "event-" + std::to_string(event++);
    e.item_id = item;
    e.context.sparse = {{"slot=" + std::to_string(rng() % 8), 1.0f}};
    e.responses = {{"click", static_cast<double>(rng() % 2)},
                   {"dwell_seconds", static_cast<double>(rng() % 120)}};
    auto r = engine->Feedback(e);
    Check(r.status(), "feedback");
  };
  for (size_t i = 0; i < items; ++i) feedback("item-" + std::to_string(i));
  const auto t0 = Clock::now();
  for (size_t i = 0; i < ops; ++i) feedback("item-" + std::to_string(rng() % items));
  const double rate = ops / Seconds(t0, Clock::now());
  if (sizes) {
    // One feedback commits the item record, its cluster's record and the event id.
    auto info = engine->GetItem("item-0");
    Check(info.status(), "get item");
    dynspec::ItemRecord r;
    r.id = info->id;
    r.provider = info->provider;
    r.label = 123456;
    r.served = true;
    r.version = 1000;
    r.embedding = info->embedding;
    r.model = info->model;
    namespace sf = dynspec::store_format;
    sizes->kv = {{sf::ItemKey(r.id).size(), sf::EncodeItem(r).size()},
                 {sf::ClusterKey(0).size(), sf::EncodeCluster({0, info->model}).size()},
                 {sf::EventKey("event-100000").size(), sf::EncodeEvent().size()}};
  }
  return rate;
}

// Raw RocksDB: WriteBatches with the same key and value sizes as one feedback's commit.
// Default options, or with `vector_memtable` the memtable the durable store uses.
double RawRate(const std::string& dir, const Sizes& sizes, size_t ops, bool sync,
               bool vector_memtable = false) {
  rocksdb::Options o;
  o.create_if_missing = true;
  if (vector_memtable) dynspec::store_format::UseWriteOnlyMemtable(&o);
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(o, dir, &raw);
  if (!s.ok()) {
    std::fprintf(stderr, "bench_store: raw rocksdb: %s\n", s.ToString().c_str());
    std::exit(1);
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  std::mt19937_64 rng(9);
  std::vector<std::string> values;
  for (auto [k, v] : sizes.kv) {
    std::string val(v, '\0');
    for (char& c : val) c = static_cast<char>(rng());
    values.push_back(val);
  }
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  // The number first, so that keys of the same length differ within it.
  auto key = [&](size_t i, size_t len) {
    std::string k = std::to_string(i);
    k.resize(len, 'k');
    return k;
  };
  auto t0 = Clock::now();
  for (size_t i = 0; i < ops; ++i) {
    rocksdb::WriteBatch wb;
    for (size_t j = 0; j < sizes.kv.size(); ++j) {
      // Item keys repeat over 1000 items and the cluster key over one (upserts); event keys
      // are new, as in the engine.
      std::string k = j == 0   ? key(i % 1000, sizes.kv[j].first)
                      : j == 1 ? std::string(sizes.kv[j].first, 'c')
                               : key(i + 1000000, sizes.kv[j].first);
      wb.Put(k, values[j]);
    }
    s = db->Write(wo, &wb);
    if (!s.ok()) {
      std::fprintf(stderr, "bench_store: raw write: %s\n", s.ToString().c_str());
      std::exit(1);
    }
  }
  double rate = ops / Seconds(t0, Clock::now());
  db->Close();
  return rate;
}

std::unique_ptr<dynspec::Store> Durable(const std::string& dir, int sync_every_ms) {
  dynspec::DurableStoreOptions o;
  o.sync_every_ms = sync_every_ms;
  auto s = dynspec::OpenDurableStore(dir, o);
  Check(s.status(), "opening the durable store");
  return std::move(s).value();
}

// Writes a store of n served items with trained-shape models, then times a restart.
void Restart(const std::string& dir, size_t n, int dim, size_t engine_max) {
  // A model of the engine's shape: train one item in a memory engine.
  dynspec::ModelState model;
  {
    auto e = dynspec::Engine::Open(Options(dim));
    Check(e.status(), "engine");
    std::mt19937_64 rng(1);
    Check((*e)->Ingest({"x", "p", {"", UnitVector(rng, dim)}}), "ingest");
    Check((*e)->Feedback({"", "x", {}, {{"click", 1}}}).status(), "feedback");
    model = (*e)->GetItem("x")->model;
  }
  constexpr int kClusters = 16, kProviders = 400;
  const auto w0 = Clock::now();
  // The engine records its layout (metadata) in the store when it first opens it.
  { Check(dynspec::Engine::Open(Options(dim), Durable(dir, 0)).status(), "engine meta"); }
  {
    auto store = Durable(dir, 1000);
    dynspec::StoreBatch b;
    for (int c = 0; c < kClusters; ++c) b.put_clusters.push_back({static_cast<uint32_t>(c), model});
    for (int p = 0; p < kProviders; ++p) {
      b.put_providers.push_back(
          {"prov-" + std::to_string(p), static_cast<uint32_t>(p % kClusters)});
    }
    Check(store->Commit(b), "commit clusters");
    std::mt19937_64 rng(2);
    std::uniform_real_distribution<float> u(-0.5f, 0.5f);
    b = dynspec::StoreBatch();
    for (size_t i = 0; i < n; ++i) {
      dynspec::ItemRecord r;
      r.id = "item-" + std::to_string(i);
      r.provider = "prov-" + std::to_string(i % kProviders);
      r.label = i;
      r.served = true;
      r.version = 3;
      r.embedding = UnitVector(rng, dim);
      r.model = model;
      for (float& w : r.model.weights) w += u(rng);
      r.model.evidence = 3;
      b.put_items.push_back(std::move(r));
      b.seen_events.push_back("event-" + std::to_string(i));
      if (b.put_items.size() == 1000 || i + 1 == n) {
        Check(store->Commit(b), "commit items");
        b = dynspec::StoreBatch();
      }
    }
  }
  const double write_s = Seconds(w0, Clock::now());
  uintmax_t bytes = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file()) bytes += e.file_size();
  }

  // The store's own share: open + LoadAll. The first open after writing replays the WAL
  // of whatever was not flushed yet (and flushes it), as after a crash; later opens do not.
  auto load = [&](size_t* loaded) {
    const auto t0 = Clock::now();
    auto store = Durable(dir, 0);
    dynspec::StoreBatch all;
    Check(store->LoadAll(&all), "load");
    *loaded = all.put_items.size();
    return Seconds(t0, Clock::now());
  };
  size_t loaded = 0;
  const double first_s = load(&loaded);
  const double store_s = load(&loaded);
  // The whole restart: Engine::Open (store load + models + partition rebuild). Snapshots are
  // configured but none exist yet, so every partition is rebuilt item by item.
  const std::string snapshots = dir + "-partitions";
  fs::remove_all(snapshots);
  double engine_s = NAN, snapshot_write_s = NAN, snapshot_open_s = NAN;
  uintmax_t snapshot_bytes = 0;
  size_t items = n;
  if (n <= engine_max) {
    const auto e0 = Clock::now();
    auto e = dynspec::Engine::Open(Options(dim, snapshots), Durable(dir, 0));
    Check(e.status(), "engine open");
    engine_s = Seconds(e0, Clock::now());
    items = (*e)->Stats().items;
    // Writing the partition snapshots (the destructor writes them again, untimed).
    const auto s0 = Clock::now();
    Check((*e)->SnapshotPartitions(), "snapshot");
    snapshot_write_s = Seconds(s0, Clock::now());
    for (const auto& f : fs::directory_iterator(snapshots)) snapshot_bytes += f.file_size();
  }
  if (n <= engine_max) {
    // Restart from the snapshots: store load + models + snapshot load and reconcile.
    const auto e0 = Clock::now();
    auto e = dynspec::Engine::Open(Options(dim, snapshots), Durable(dir, 0));
    Check(e.status(), "engine open from snapshots");
    snapshot_open_s = Seconds(e0, Clock::now());
    if ((*e)->Stats().served_items != n) {
      std::fprintf(stderr, "bench_store: %zu served items after the snapshot restart\n",
                   static_cast<size_t>((*e)->Stats().served_items));
      std::exit(1);
    }
  }
  fs::remove_all(snapshots);
  if (loaded != n || items != n) {
    std::fprintf(stderr, "bench_store: wrote %zu items, loaded %zu, engine has %zu\n", n, loaded,
                 items);
    std::exit(1);
  }
  std::printf(
      "restart  %8zu items  D %d  on disk %7.1f MB  write %6.1f s  first open+LoadAll (WAL "
      "replay) %6.2f s  open+LoadAll %6.2f s  Engine::Open %7.2f s\n",
      n, dim, bytes / 1e6, write_s, first_s, store_s, engine_s);
  std::printf(
      "snapshot %8zu items  D %d  snapshots %7.1f MB  SnapshotPartitions %6.2f s  "
      "Engine::Open from snapshots %6.2f s  (rebuild %7.2f s)\n",
      n, dim, snapshot_bytes / 1e6, snapshot_write_s, snapshot_open_s, engine_s);
  std::fflush(stdout);
}

}  // namespace

constexpr char kUsage[] =
    "bench_store [--dir DIR] [--items 1000] [--sync-ops 2000] [--ops 20000]\n"
    "            [--restart 100000,300000] [--engine-max 100000] [--exact-max N] [--dim 256]\n"
    "            [--repeat 3] [--ef-construction N] [--shadow-rate R]\n";

int main(int argc, char** argv) {
  std::string dir;
  size_t items = 1000, sync_ops = 2000, ops = 20000;
  int dim = 256;
  size_t engine_max = 100000;  // Engine::Open is timed only up to this many items
  int repeat = 3;
  std::vector<size_t> restart = {100000};
  using namespace dynspec::bench;
  ParseFlags(argc, argv, kUsage, [&](const std::string& a, const std::string& v) {
    if (a == "--dir") {
      dir = v;
    } else if (a == "--items") {
      items = FlagCount(v);
    } else if (a == "--sync-ops") {
      sync_ops = FlagCount(v);
    } else if (a == "--ops") {
      ops = FlagCount(v);
    } else if (a == "--repeat") {
      repeat = FlagInt(v);
    } else if (a == "--exact-max") {
      g_exact_max = FlagCount(v);
    } else if (a == "--ef-construction") {
      g_ef_construction = FlagInt(v);
    } else if (a == "--shadow-rate") {
      g_shadow_rate = FlagDouble(v);
      if (!(g_shadow_rate >= 0 && g_shadow_rate <= 1)) throw std::out_of_range(v);
    } else if (a == "--engine-max") {
      engine_max = FlagCount(v);
    } else if (a == "--dim") {
      dim = FlagInt(v);
    } else if (a == "--restart") {
      restart.clear();
      for (size_t n : FlagCountList(v)) {
        if (n != 0) restart.push_back(n);
      }
    } else {
      return false;
    }
    return true;
  });
  if (items < 1 || ops < 1 || sync_ops < 1 || dim < 1 || repeat < 1 || g_ef_construction < 0) {
    FlagError(
        "out of range: --items, --ops, --sync-ops, --dim and --repeat must be >= 1, "
        "--ef-construction >= 0",
        kUsage);
  }
  if (dir.empty())
    dir = (fs::temp_directory_path() / ("bench-store-" + std::to_string(getpid()))).string();
  fs::remove_all(dir);
  fs::create_directories(dir);
  const double shadow_rate =
      g_shadow_rate >= 0 ? g_shadow_rate : dynspec::EngineOptions().recluster.shadow_sample_rate;
  std::printf("bench_store: dir %s, %zu items, D %d, feedback ops: %zu synced, %zu otherwise\n",
              dir.c_str(), items, dim, sync_ops, ops);

  // Interleaved repetitions, medians reported: the machines are shared and noisy.
  Sizes sizes;
  std::vector<double> mem, mem_unshadowed, group, synced, raw_sync, raw_nosync, raw_vector;
  for (int r = 0; r < repeat; ++r) {
    const std::string rd = dir + "/rep" + std::to_string(r);
    mem.push_back(FeedbackRate(dynspec::NewMemoryStore(), dim, items, ops, &sizes));
    mem_unshadowed.push_back(
        FeedbackRate(dynspec::NewMemoryStore(), dim, items, ops, nullptr, /*shadow=*/false));
    raw_nosync.push_back(RawRate(rd + "-raw-nosync", sizes, ops, false));
    raw_vector.push_back(RawRate(rd + "-raw-vector", sizes, ops, false, /*vector_memtable=*/true));
    group.push_back(FeedbackRate(Durable(rd + "-group10", 10), dim, items, ops, nullptr));
    raw_sync.push_back(RawRate(rd + "-raw-sync", sizes, sync_ops, true));
    synced.push_back(FeedbackRate(Durable(rd + "-sync", 0), dim, items, sync_ops, nullptr));
    for (const char* d : {"-raw-nosync", "-raw-vector", "-group10", "-raw-sync", "-sync"})
      fs::remove_all(rd + d);
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::printf(
      "bytes per feedback commit (keys + values): %zu in %zu puts; %d clusters, shadow "
      "evaluation of %.3g of the events; median of %d runs\n",
      sizes.total(), sizes.kv.size(), kFeedbackClusters, shadow_rate, repeat);
  std::printf("%-36s %10s %12s %15s   %s\n", "", "ops/s", "/ raw sync", "/ raw no-sync",
              "runs (ops/s)");
  auto row = [&](const char* name, const std::vector<double>& runs) {
    const double r = median(runs);
    std::printf("%-36s %10.0f %12.3f %15.3f  ", name, r, r / median(raw_sync),
                r / median(raw_nosync));
    for (double x : runs) std::printf(" %.0f", x);
    std::printf("\n");
  };
  row("raw rocksdb WriteBatch, sync", raw_sync);
  row("raw rocksdb WriteBatch, no sync", raw_nosync);
  row("  the same, the store's memtable", raw_vector);
  row("engine feedback, sync every commit", synced);
  row("engine feedback, group commit 10 ms", group);
  row("engine feedback, memory store", mem);
  row("  the same without shadow evaluation", mem_unshadowed);
  std::fflush(stdout);

  for (size_t n : restart) {
    const std::string rdir = dir + "/restart-" + std::to_string(n);
    Restart(rdir, n, dim, engine_max);
    fs::remove_all(rdir);
  }
  fs::remove_all(dir);
  return 0;
}
