// Partition snapshots: Save/LoadPartition round trips (exact and HNSW mode), damaged files
// (truncated, flipped byte, wrong magic, future version, bad graph links behind a valid
// checksum), and an engine restarted over a durable store with snapshots: clean restart,
// stale snapshots (writes after the snapshot, no clean shutdown) and damaged snapshots, each
// compared with an engine that rebuilds its partitions from the store.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "dynspec/engine.h"
#include "dynspec/store.h"
#include "index/partition.h"
#include "test_util.h"

namespace dynspec {
namespace {

namespace fs = std::filesystem;
using dynspec::testing_util::ScopedTempDir;

std::vector<float> UnitVector(std::mt19937_64& rng, int dim) {
  std::normal_distribution<float> g(0, 1);
  std::vector<float> v(dim);
  double n2 = 0;
  for (float& x : v) {
    x = g(rng);
    n2 += double(x) * x;
  }
  for (float& x : v) x = static_cast<float>(x / std::sqrt(n2));
  return v;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}
// Rewrites the trailing crc32 so that a deliberate change passes the checksum.
void FixCrc(std::string& bytes) {
  const size_t body = bytes.size() - 4;
  const uint32_t crc = static_cast<uint32_t>(
      crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(bytes.data()), body));
  std::memcpy(bytes.data() + body, &crc, 4);
}

constexpr int kDim = 32;

// A partition with churn: adds, removals, re-adds and updates.
std::unique_ptr<Partition> Churned(const IndexOptions& o, size_t n, std::mt19937_64& rng) {
  auto p = NewPartition(kDim, o);
  for (uint64_t i = 0; i < n; ++i) EXPECT_TRUE(p->Add(i, UnitVector(rng, kDim)).ok());
  for (uint64_t i = 0; i < n; i += 7) EXPECT_TRUE(p->Remove(i).ok());
  for (uint64_t i = 0; i < n; i += 21) EXPECT_TRUE(p->Add(i, UnitVector(rng, kDim)).ok());
  for (uint64_t i = 1; i < n; i += 11) {
    if (p->Contains(i)) {
      EXPECT_TRUE(p->Update(i, UnitVector(rng, kDim)).ok());
    }
  }
  for (uint64_t i = n; i < n + 30; ++i) EXPECT_TRUE(p->Add(i, UnitVector(rng, kDim)).ok());
  return p;
}

void ExpectSameSearches(const Partition& a, const Partition& b, std::mt19937_64& rng) {
  ASSERT_EQ(a.size(), b.size());
  for (int q = 0; q < 200; ++q) {
    const auto query = UnitVector(rng, kDim);
    auto ra = a.Search(query, 16);
    auto rb = b.Search(query, 16);
    ASSERT_TRUE(ra.ok() && rb.ok());
    ASSERT_EQ(ra->size(), rb->size());
    for (size_t i = 0; i < ra->size(); ++i) {
      EXPECT_EQ((*ra)[i].label, (*rb)[i].label) << "query " << q << " rank " << i;
      EXPECT_EQ((*ra)[i].similarity, (*rb)[i].similarity);
    }
  }
}

void RoundTrip(size_t exact_max, size_t n) {
  ScopedTempDir dir;
  IndexOptions o;
  o.exact_search_max_items = exact_max;
  std::mt19937_64 rng(11);
  auto p = Churned(o, n, rng);
  const std::string path = dir.Sub("p.part");
  ASSERT_TRUE(p->Save(path).ok());
  auto loaded = LoadPartition(path, kDim, o);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  auto labels_a = p->Labels(), labels_b = (*loaded)->Labels();
  EXPECT_EQ(std::set<uint64_t>(labels_a.begin(), labels_a.end()),
            std::set<uint64_t>(labels_b.begin(), labels_b.end()));
  for (uint64_t l : labels_a) EXPECT_EQ(*p->GetVector(l), *(*loaded)->GetVector(l));
  std::mt19937_64 q1(5), q2(5);
  ExpectSameSearches(*p, **loaded, q1);
  // The loaded partition keeps working: the same writes on both give the same contents.
  for (uint64_t i = 0; i < 40; ++i) {
    const auto v = UnitVector(rng, kDim);
    ASSERT_TRUE(p->Add(100000 + i, v).ok());
    ASSERT_TRUE((*loaded)->Add(100000 + i, v).ok());
  }
  ASSERT_TRUE((*loaded)->Remove(3).ok());
  ASSERT_TRUE((*loaded)->Contains(100039));
  auto self = (*loaded)->Search(*(*loaded)->GetVector(100039), 1);
  ASSERT_TRUE(self.ok());
  ASSERT_EQ(self->size(), 1u);
  EXPECT_EQ((*self)[0].label, 100039u);
}

TEST(PartitionSnapshot, RoundTripExact) { RoundTrip(100000, 600); }
TEST(PartitionSnapshot, RoundTripHnsw) { RoundTrip(100, 1500); }

TEST(PartitionSnapshot, EmptyPartition) {
  ScopedTempDir dir;
  IndexOptions o;
  auto p = NewPartition(kDim, o);
  ASSERT_TRUE(p->Save(dir.Sub("e.part")).ok());
  auto loaded = LoadPartition(dir.Sub("e.part"), kDim, o);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->size(), 0u);
}

// The changes made after a snapshot, replayed in order on the loaded snapshot, build the
// graph the partition had: byte for byte the same snapshot. The changes cross the exact-to-
// graph threshold, remove labels (whose elements later adds take over), update vectors and
// re-add removed labels; hnswlib draws levels and relinks from its random generators, whose
// state the snapshot carries.
// Adds link among the candidates of a search for their vector, as joins do (with
// ef_construction <= ef_search); the replay passes the same candidates.
TEST(PartitionSnapshot, ReplayingTheChangesSinceASnapshotRebuildsTheSameGraph) {
  ScopedTempDir dir;
  IndexOptions o;
  o.exact_search_max_items = 64;
  o.hnsw_ef_construction = 32;
  struct Change {
    int kind;  // 0 add, 1 update, 2 remove
    uint64_t label;
    std::vector<float> vector;
    std::vector<LinkCandidate> link_candidates = {};  // adds: found just before, on `live`
  };
  std::mt19937_64 rng(29);
  for (size_t snapshot_at : {size_t{40}, size_t{150}}) {  // exact mode, graph mode
    SCOPED_TRACE(snapshot_at);
    auto live = NewPartition(kDim, o);
    std::vector<Change> changes;
    uint64_t next_label = 0;
    for (int i = 0; i < 400; ++i) {
      const int r = static_cast<int>(rng() % 10);
      Change c;
      if (live->size() < 20 || r < 6) {
        c = {0, next_label++, UnitVector(rng, kDim)};
      } else {
        auto labels = live->Labels();
        std::sort(labels.begin(), labels.end());
        const uint64_t label = labels[rng() % labels.size()];
        c = r < 8 ? Change{1, label, UnitVector(rng, kDim)} : Change{2, label, {}};
      }
      changes.push_back(c);
    }
    const std::string snap = dir.Sub("snap-" + std::to_string(snapshot_at) + ".part");
    std::vector<Change> replay;
    for (size_t i = 0; i < changes.size(); ++i) {
      Change& c = changes[i];
      const uint64_t seq = i + 1;
      if (c.kind == 0) {
        ASSERT_TRUE(live->Search(c.vector, 4, &c.link_candidates).ok());
      }
      Status st = c.kind == 0   ? live->Add(c.label, c.vector, seq, c.link_candidates)
                  : c.kind == 1 ? live->Update(c.label, c.vector, seq)
                                : live->Remove(c.label, seq);
      ASSERT_TRUE(st.ok()) << i << ": " << st.ToString();
      if (i + 1 == snapshot_at) {
        uint64_t saved = 0;
        ASSERT_TRUE(live->Save(snap, &saved).ok());
        EXPECT_EQ(saved, seq);
      }
    }
    auto loaded = LoadPartition(snap, kDim, o);
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    Partition& p = **loaded;
    ASSERT_EQ(p.AppliedSequence(), snapshot_at);
    for (size_t i = snapshot_at; i < changes.size(); ++i) {
      const Change& c = changes[i];
      const uint64_t seq = i + 1;
      Status st = c.kind == 0   ? p.Add(c.label, c.vector, seq, c.link_candidates)
                  : c.kind == 1 ? p.Update(c.label, c.vector, seq)
                                : p.Remove(c.label, seq);
      ASSERT_TRUE(st.ok()) << i << ": " << st.ToString();
    }
    EXPECT_EQ(p.AppliedSequence(), changes.size());
    EXPECT_GT(p.AddsLinkedAmongCandidates(), 50u);  // the replay linked among candidates too
    const std::string a = dir.Sub("live.part"), b = dir.Sub("replayed.part");
    ASSERT_TRUE(live->Save(a).ok());
    ASSERT_TRUE(p.Save(b).ok());
    EXPECT_TRUE(ReadFile(a) == ReadFile(b)) << "the replayed partition's snapshot differs";
    ExpectSameSearches(*live, p, rng);
  }
}

TEST(PartitionSnapshot, DamagedFilesAreRefused) {
  ScopedTempDir dir;
  IndexOptions o;
  o.exact_search_max_items = 100;
  std::mt19937_64 rng(3);
  auto p = Churned(o, 400, rng);
  const std::string good_path = dir.Sub("good.part");
  ASSERT_TRUE(p->Save(good_path).ok());
  const std::string good = ReadFile(good_path);
  const std::string path = dir.Sub("bad.part");
  auto load = [&](const std::string& bytes) {
    WriteFile(path, bytes);
    return LoadPartition(path, kDim, o).status();
  };

  EXPECT_EQ(LoadPartition(dir.Sub("missing.part"), kDim, o).status().code(), StatusCode::kNotFound);
  // Truncated anywhere.
  for (size_t len : {size_t{0}, size_t{5}, size_t{20}, size_t{60}, good.size() / 3, good.size() / 2,
                     good.size() - 5, good.size() - 1}) {
    Status st = load(good.substr(0, len));
    EXPECT_EQ(st.code(), StatusCode::kCorruption) << len << ": " << st.ToString();
  }
  // One flipped byte anywhere past the version.
  for (size_t pos = 12; pos < good.size(); pos += good.size() / 37) {
    std::string b = good;
    b[pos] ^= 0x10;
    Status st = load(b);
    EXPECT_EQ(st.code(), StatusCode::kCorruption) << pos << ": " << st.ToString();
    EXPECT_NE(st.message().find("checksum"), std::string::npos) << st.ToString();
  }
  {
    std::string b = good;
    b[0] = 'X';
    Status st = load(b);
    EXPECT_EQ(st.code(), StatusCode::kCorruption);
    EXPECT_NE(st.message().find("magic"), std::string::npos) << st.ToString();
  }
  {
    std::string b = good;
    const uint32_t future = 99;
    std::memcpy(b.data() + 8, &future, 4);
    FixCrc(b);
    Status st = load(b);
    EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(st.message().find("version 99"), std::string::npos) << st.ToString();
  }
  {
    IndexOptions other = o;
    other.hnsw_m = 8;
    Status st = LoadPartition(good_path, kDim, other).status();
    EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
    EXPECT_EQ(LoadPartition(good_path, kDim + 1, o).status().code(),
              StatusCode::kFailedPrecondition);
  }
  // Damage behind a valid checksum: the graph checks catch it before hnswlib sees it.
  // Version 3 header: ..., graph flag, vector storage, applied sequence.
  const size_t header = 8 + 4 + 4 + 8 + 4 + 4 + 4 + 8 + 1 + 1 + 8;
  const size_t graph = header + p->size() * (8 + kDim * 4) + 6 * 8 + 4 + 4;
  {
    std::string b = good;
    const uint16_t count = 0xFFFF;  // element 0's level-0 link count
    std::memcpy(b.data() + graph, &count, 2);
    FixCrc(b);
    Status st = load(b);
    EXPECT_EQ(st.code(), StatusCode::kCorruption);
    EXPECT_NE(st.message().find("links"), std::string::npos) << st.ToString();
  }
  {
    std::string b = good;
    const uint32_t link = 0x7FFFFFF0;  // element 0's first level-0 link
    std::memcpy(b.data() + graph + 4, &link, 4);
    FixCrc(b);
    Status st = load(b);
    EXPECT_EQ(st.code(), StatusCode::kCorruption);
    EXPECT_NE(st.message().find("links to element"), std::string::npos) << st.ToString();
  }
  {
    std::string b = good;  // the live-label count no longer matches the stored arrays
    const uint64_t count = p->size() + 1000;
    std::memcpy(b.data() + 16, &count, 8);
    FixCrc(b);
    EXPECT_EQ(load(b).code(), StatusCode::kCorruption);
  }
  {
    // An upper-level link to an element without that level (searches would read past it).
    std::string b = good;
    uint64_t cur, max_m0;
    std::memcpy(&cur, b.data() + graph - 56 + 8, 8);
    std::memcpy(&max_m0, b.data() + graph - 56 + 24, 8);
    const size_t sdpe = max_m0 * 4 + 4 + kDim * 4 + 8;
    const size_t spe = (max_m0 / 2) * 4 + 4;
    size_t pos = graph + cur * sdpe, patch = 0;
    uint32_t level_zero = 0;
    bool found_zero = false;
    for (uint32_t i = 0; i < cur; ++i) {
      int32_t level;
      std::memcpy(&level, b.data() + pos, 4);
      pos += 4;
      uint16_t n = 0;
      if (level > 0) std::memcpy(&n, b.data() + pos, 2);
      if (level > 0 && n > 0 && patch == 0) patch = pos + 4;
      if (level == 0 && !found_zero) {
        level_zero = i;
        found_zero = true;
      }
      pos += static_cast<size_t>(std::max(level, 0)) * spe;
    }
    ASSERT_TRUE(patch != 0 && found_zero);
    std::memcpy(b.data() + patch, &level_zero, 4);
    FixCrc(b);
    Status st = load(b);
    EXPECT_EQ(st.code(), StatusCode::kCorruption);
    EXPECT_NE(st.message().find("which has level"), std::string::npos) << st.ToString();
  }
  // Still loads after all that.
  EXPECT_TRUE(LoadPartition(good_path, kDim, o).ok());
}

// ---- engine -----------------------------------------------------------------------------

EngineOptions Options(size_t exact_max, const std::string& snapshots) {
  EngineOptions o;
  o.embed.dim = kDim;
  o.index.exact_search_max_items = exact_max;
  o.recluster.period_seconds = 0;
  o.partition_snapshot_dir = snapshots;
  return o;
}

std::unique_ptr<Engine> OpenAt(const std::string& db, size_t exact_max,
                               const std::string& snapshots) {
  auto store = OpenDurableStore(db, DurableStoreOptions());
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  if (!store.ok()) return nullptr;
  auto e = Engine::Open(Options(exact_max, snapshots), std::move(store).value());
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return e.ok() ? std::move(e).value() : nullptr;
}

struct Fixture {
  std::mt19937_64 rng{17};
  uint64_t event = 0;
  void Ingest(Engine& e, size_t from, size_t to) {
    std::vector<ItemInput> batch;
    for (size_t i = from; i < to; ++i) {
      batch.push_back({"item-" + std::to_string(i),
                       "prov-" + std::to_string(i % 24),
                       {"", UnitVector(rng, kDim)}});
    }
    ASSERT_TRUE(e.IngestBatch(batch).ok());
  }
  void Feed(Engine& e, size_t i) {
    FeedbackEvent f;
    f.event_id = "ev-" + std::to_string(event++);
    f.item_id = "item-" + std::to_string(i);
    f.responses = {{"click", double(rng() % 2)}, {"dwell_seconds", double(rng() % 60)}};
    auto r = e.Feedback(f);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
};

// Every item's prediction (heads and the blend behind it) and the neighbours of some
// inline queries, as one comparable value.
struct Snapshot {
  std::vector<std::vector<double>> heads;
  std::vector<std::vector<std::pair<std::string, float>>> parts;
  std::vector<ClusterInfo> clusters;
};

Snapshot Observe(const Engine& e, size_t items, uint64_t seed) {
  Snapshot s;
  for (size_t i = 0; i < items; ++i) {
    auto p = e.Predict({"item-" + std::to_string(i), std::nullopt, "", {}});
    if (!p.ok()) {  // removed items
      s.heads.push_back({});
      s.parts.push_back({});
      continue;
    }
    s.heads.push_back(p->heads);
    std::vector<std::pair<std::string, float>> parts;
    for (const auto& c : p->contributions) {
      parts.emplace_back(c.item_id, static_cast<float>(c.similarity));
    }
    s.parts.push_back(parts);
  }
  std::mt19937_64 rng(seed);
  for (int q = 0; q < 100; ++q) {
    PredictRequest r;
    r.inline_content = ItemContent{"", UnitVector(rng, kDim)};
    r.inline_provider = "prov-" + std::to_string(q % 24);
    auto p = e.Predict(r);
    EXPECT_TRUE(p.ok());
    if (!p.ok()) continue;
    s.heads.push_back(p->heads);
    std::vector<std::pair<std::string, float>> parts;
    for (const auto& c : p->contributions) {
      parts.emplace_back(c.item_id, static_cast<float>(c.similarity));
    }
    s.parts.push_back(parts);
  }
  s.clusters = e.ListClusters();
  return s;
}

void ExpectSame(const Snapshot& a, const Snapshot& b) {
  ASSERT_EQ(a.heads.size(), b.heads.size());
  size_t differing = 0;
  for (size_t i = 0; i < a.heads.size(); ++i) {
    if (a.heads[i] != b.heads[i] || a.parts[i] != b.parts[i]) ++differing;
  }
  EXPECT_EQ(differing, 0u) << "of " << a.heads.size() << " predictions";
  ASSERT_EQ(a.clusters.size(), b.clusters.size());
  for (size_t c = 0; c < a.clusters.size(); ++c) {
    EXPECT_EQ(a.clusters[c].id, b.clusters[c].id);
    EXPECT_EQ(a.clusters[c].served_item_count, b.clusters[c].served_item_count) << "cluster " << c;
    EXPECT_EQ(a.clusters[c].item_count, b.clusters[c].item_count);
  }
}

constexpr size_t kItems = 900;

// A populated engine: 4 clusters, most items served.
void Populate(Engine& e, Fixture& fx) {
  fx.Ingest(e, 0, kItems);
  ASSERT_TRUE(e.BootstrapClusters(4).ok());
  for (size_t i = 0; i < kItems; ++i) {
    if (i % 5 != 0) fx.Feed(e, i);
  }
  for (size_t i = 0; i < 300; ++i) fx.Feed(e, 1 + (fx.rng() % (kItems - 1)));
}

void RestartIsIdentical(size_t exact_max) {
  ScopedTempDir dir;
  const std::string db = dir.Sub("db"), parts = dir.Sub("partitions");
  Snapshot before;
  {
    auto e = OpenAt(db, exact_max, parts);
    ASSERT_TRUE(e);
    Fixture fx;
    Populate(*e, fx);
    before = Observe(*e, kItems + 10, 1);
  }  // the destructor writes the snapshots
  for (int c = 0; c < 4; ++c) {
    EXPECT_TRUE(fs::exists(parts + "/cluster-" + std::to_string(c) + ".part")) << c;
  }
  testing::internal::CaptureStderr();
  auto e = OpenAt(db, exact_max, parts);
  const std::string log = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(e);
  EXPECT_EQ(log, "");  // every snapshot was used
  ExpectSame(before, Observe(*e, kItems + 10, 1));
}

// A join's insert links among the candidates of the search that found the item's
// neighbours, its prediction's or its own, where ef_construction <= ef_search; at the default
// ef_construction (200 > 64) it searches for itself. Both give the items their neighbours.
TEST(EngineJoins, JoinsLinkAmongTheirSearchsCandidates) {
  for (int ef_construction : {32, 200}) {
    SCOPED_TRACE(ef_construction);
    EngineOptions o = Options(64, "");
    o.index.hnsw_ef_construction = ef_construction;
    auto opened = Engine::Open(o);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    Engine& e = **opened;
    Fixture fx;
    fx.Ingest(e, 0, kItems);
    ASSERT_TRUE(e.BootstrapClusters(2).ok());
    for (size_t i = 0; i < kItems; ++i) {
      if (i % 3 == 0) {
        ASSERT_TRUE(e.Predict({"item-" + std::to_string(i)}).ok());
      }
      fx.Feed(e, i);
    }
    const EngineStats stats = e.Stats();
    EXPECT_EQ(stats.joins, kItems);
    if (ef_construction == 200) {
      EXPECT_EQ(stats.joins_linked_among_candidates, 0u);
    } else {
      // Every join past the first 65 items of each cluster's partition has candidates, and
      // about 15 in 16 of those enter only the bottom layer.
      EXPECT_GT(stats.joins_linked_among_candidates, (kItems - 2 * 65) * 8 / 10);
      EXPECT_LT(stats.joins_linked_among_candidates, kItems - 2 * 65);
    }
    // A search for a served item's vector finds the item.
    for (size_t i = 0; i < kItems; i += 7) {
      const std::string id = "item-" + std::to_string(i);
      auto item = e.GetItem(id);
      ASSERT_TRUE(item.ok());
      PredictRequest r;
      r.inline_content = ItemContent{"", item->embedding};
      r.inline_provider = item->provider;
      auto p = e.Predict(r);
      ASSERT_TRUE(p.ok());
      EXPECT_TRUE(std::any_of(p->contributions.begin(), p->contributions.end(),
                              [&](const Contribution& c) { return c.item_id == id; }))
          << id;
    }
  }
}

TEST(EngineSnapshot, RestartIsIdenticalExact) { RestartIsIdentical(100000); }
TEST(EngineSnapshot, RestartIsIdenticalHnsw) { RestartIsIdentical(64); }

TEST(EngineSnapshot, WithoutDirectory) {
  auto e = Engine::Open(Options(100, ""));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ((*e)->SnapshotPartitions().code(), StatusCode::kFailedPrecondition);
}

// A restart that only reads leaves the snapshot files alone: the destructor writes only the
// partitions that changed since they were loaded.
TEST(EngineSnapshot, ReadOnlySessionsDoNotRewriteSnapshots) {
  ScopedTempDir dir;
  const std::string db = dir.Sub("db"), parts = dir.Sub("partitions");
  Fixture fx;
  {
    auto e = OpenAt(db, 64, parts);
    ASSERT_TRUE(e);
    Populate(*e, fx);
  }  // the destructor writes the changed partitions
  // Every snapshot file is back-dated; a rewrite gives it the current time.
  const auto kOld = std::filesystem::file_time_type::clock::now() - std::chrono::hours(24);
  std::map<std::string, std::string> files;
  for (const auto& f : std::filesystem::directory_iterator(parts)) {
    files[f.path().string()] = ReadFile(f.path().string());
    std::filesystem::last_write_time(f.path(), kOld);
  }
  ASSERT_FALSE(files.empty());
  {
    auto e = OpenAt(db, 64, parts);
    ASSERT_TRUE(e);
    ASSERT_TRUE(e->Predict({"item-3"}).ok());
  }
  for (const auto& [path, bytes] : files) {
    EXPECT_EQ(std::filesystem::last_write_time(path), kOld)
        << path << " was rewritten by a read-only session";
  }
  {
    auto e = OpenAt(db, 64, parts);
    ASSERT_TRUE(e);
    fx.Feed(*e, 500);  // a new served item: its partition must be written again
  }
  size_t rewritten = 0;
  for (const auto& [path, bytes] : files) {
    rewritten += std::filesystem::last_write_time(path) != kOld;
  }
  EXPECT_EQ(rewritten, 1u);
}

// Snapshot, then more writes of every kind, then a crash (no shutdown snapshot): the restart
// loads the stale snapshots and replays the partition changes logged since, so every search
// answers exactly as before the crash, in exact and in graph mode. A rebuild from the store
// (no snapshots) has the same membership; its graphs differ (items are added in store order).
void StaleSnapshot(size_t exact_max) {
  ScopedTempDir dir;
  const std::string db = dir.Sub("db"), parts = dir.Sub("partitions");
  auto e = OpenAt(db, exact_max, parts);
  ASSERT_TRUE(e);
  Fixture fx;
  Populate(*e, fx);
  ASSERT_TRUE(e->SnapshotPartitions().ok());
  // After the snapshot: new items served, unserved items served, content updates of served
  // items, removals, and a provider moved to another cluster (and one to a new cluster).
  fx.Ingest(*e, kItems, kItems + 60);
  for (size_t i = kItems; i < kItems + 60; ++i) fx.Feed(*e, i);
  for (size_t i = 0; i < kItems; i += 10) fx.Feed(*e, i);
  for (size_t i = 3; i < kItems; i += 37) {
    ASSERT_TRUE(e->UpdateContent("item-" + std::to_string(i), {"", UnitVector(fx.rng, kDim)}).ok());
  }
  for (size_t i = 7; i < kItems; i += 53) ASSERT_TRUE(e->Remove("item-" + std::to_string(i)).ok());
  auto p5 = e->GetProvider("prov-5");
  ASSERT_TRUE(p5.ok());
  ASSERT_TRUE(e->MoveProvider("prov-5", (p5->cluster + 1) % 4).ok());
  ASSERT_TRUE(e->MoveProvider("prov-6", 9).ok());
  // The crash: the store as it is now, the snapshots as they were.
  const std::string db_b = dir.Sub("b-db"), parts_b = dir.Sub("b-partitions");
  const std::string db_c = dir.Sub("c-db");
  ASSERT_TRUE(e->Backup(db_b).ok());
  ASSERT_TRUE(e->Backup(db_c).ok());
  fs::copy(parts, parts_b, fs::copy_options::recursive);
  const Snapshot live = Observe(*e, kItems + 60, 2);
  ASSERT_TRUE(e->SnapshotPartitions().ok());  // the live partitions, to compare byte for byte
  e.reset();

  testing::internal::CaptureStderr();
  auto b = OpenAt(db_b, exact_max, parts_b);  // stale snapshots plus the change log
  const std::string log = testing::internal::GetCapturedStderr();
  EXPECT_EQ(log, "");                    // nothing rebuilt, nothing reconciled
  auto c = OpenAt(db_c, exact_max, "");  // rebuilt from the store
  ASSERT_TRUE(b && c);
  const Snapshot sb = Observe(*b, kItems + 60, 2), sc = Observe(*c, kItems + 60, 2);
  ExpectSame(sb, live);
  // Not only the same answers: the same indexes, graphs included (cluster 9 had no snapshot
  // before the crash and is rebuilt from its logged changes).
  ASSERT_TRUE(b->SnapshotPartitions().ok());
  size_t compared = 0;
  for (const auto& f : fs::directory_iterator(parts)) {
    const std::string name = f.path().filename().string();
    EXPECT_TRUE(ReadFile(f.path().string()) == ReadFile(parts_b + "/" + name)) << name;
    ++compared;
  }
  EXPECT_EQ(compared, 5u);  // clusters 0 to 3 and 9
  if (exact_max >= kItems + 60) {
    ExpectSame(sb, sc);
  } else {
    // Approximate search over different graphs: same membership, nearly the same neighbours.
    ASSERT_EQ(sb.clusters.size(), sc.clusters.size());
    for (size_t i = 0; i < sb.clusters.size(); ++i) {
      EXPECT_EQ(sb.clusters[i].served_item_count, sc.clusters[i].served_item_count);
    }
    size_t same = 0, total = 0;
    for (size_t i = 0; i < sb.parts.size(); ++i) {
      std::set<std::string> ib, ic;
      for (const auto& [id, s] : sb.parts[i]) ib.insert(id);
      for (const auto& [id, s] : sc.parts[i]) ic.insert(id);
      for (const auto& id : ib) same += ic.count(id);
      total += ic.size();
    }
    EXPECT_GE(double(same), 0.9 * double(total));
  }
}

TEST(EngineSnapshot, StaleSnapshotExact) { StaleSnapshot(100000); }
TEST(EngineSnapshot, StaleSnapshotHnsw) { StaleSnapshot(64); }

TEST(EngineSnapshot, DamagedSnapshotFallsBackToRebuild) {
  ScopedTempDir dir;
  const std::string db = dir.Sub("db"), parts = dir.Sub("partitions"), db_c = dir.Sub("c-db");
  Snapshot before;
  {
    auto e = OpenAt(db, 100000, parts);
    ASSERT_TRUE(e);
    Fixture fx;
    Populate(*e, fx);
    before = Observe(*e, kItems, 3);
    ASSERT_TRUE(e->Backup(db_c).ok());
  }
  const std::string p0 = parts + "/cluster-0.part", p1 = parts + "/cluster-1.part",
                    p2 = parts + "/cluster-2.part";
  std::string b0 = ReadFile(p0);
  b0[b0.size() / 2] ^= 0x01;
  WriteFile(p0, b0);
  const std::string b1 = ReadFile(p1);
  WriteFile(p1, b1.substr(0, b1.size() / 3));
  WriteFile(p2, "not a snapshot at all");
  testing::internal::CaptureStderr();
  auto b = OpenAt(db, 100000, parts);
  const std::string log = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(b);
  EXPECT_NE(log.find("cluster-0.part"), std::string::npos) << log;
  EXPECT_NE(log.find("checksum"), std::string::npos) << log;
  EXPECT_NE(log.find("cluster-1.part"), std::string::npos) << log;
  EXPECT_NE(log.find("cluster-2.part"), std::string::npos) << log;
  EXPECT_EQ(log.find("cluster-3.part"), std::string::npos) << log;
  auto c = OpenAt(db_c, 100000, "");
  ASSERT_TRUE(c);
  const Snapshot sb = Observe(*b, kItems, 3);
  ExpectSame(sb, Observe(*c, kItems, 3));
  ExpectSame(sb, before);
}

// SnapshotPartitions while other threads predict, learn and ingest; the last snapshot,
// stale or not, restores the same partitions as a rebuild.
TEST(EngineSnapshot, SnapshotWhileServing) {
  ScopedTempDir dir;
  const std::string db = dir.Sub("db"), parts = dir.Sub("partitions"), db_c = dir.Sub("c-db");
  auto e = OpenAt(db, 100000, parts);
  ASSERT_TRUE(e);
  Fixture fx;
  fx.Ingest(*e, 0, 400);
  ASSERT_TRUE(e->BootstrapClusters(3).ok());
  for (size_t i = 0; i < 200; ++i) fx.Feed(*e, i);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    Fixture w;
    w.event = 1000000;
    for (size_t i = 200; i < 400 && !stop; ++i) w.Feed(*e, i);
  });
  std::thread reader([&] {
    for (size_t i = 0; !stop; i = (i + 1) % 400) {
      EXPECT_TRUE(e->Predict({"item-" + std::to_string(i), std::nullopt, "", {}}).ok());
    }
  });
  for (int k = 0; k < 5; ++k) EXPECT_TRUE(e->SnapshotPartitions().ok());
  writer.join();
  stop = true;
  reader.join();
  ASSERT_TRUE(e->Backup(db_c).ok());
  const std::string db_b = dir.Sub("b-db"), parts_b = dir.Sub("b-partitions");
  ASSERT_TRUE(e->Backup(db_b).ok());
  fs::copy(parts, parts_b, fs::copy_options::recursive);
  e.reset();
  auto b = OpenAt(db_b, 100000, parts_b);
  auto c = OpenAt(db_c, 100000, "");
  ASSERT_TRUE(b && c);
  ExpectSame(Observe(*b, 400, 4), Observe(*c, 400, 4));
}

}  // namespace
}  // namespace dynspec
