// The durable (RocksDB) store: round trips of every record kind with bit-identical floats,
// reopen, damaged records and files, foreign directories, double open, backup while
// commits go on, group commit, and an Engine restarted over it.
#include "dynspec/store.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "dynspec/engine.h"
#include "store/rocks_store.h"
#include "test_util.h"

namespace dynspec {
namespace {

namespace fs = std::filesystem;
using dynspec::testing_util::ScopedTempDir;
namespace sf = store_format;

// A unique directory under the system temp dir, removed with everything in it.

std::unique_ptr<Store> MustOpen(const std::string& dir, int sync_every_ms = 0) {
  DurableStoreOptions o;
  o.sync_every_ms = sync_every_ms;
  auto s = OpenDurableStore(dir, o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : nullptr;
}

Status OpenStatus(const std::string& dir, bool create_if_missing = true) {
  DurableStoreOptions o;
  o.create_if_missing = create_if_missing;
  auto s = OpenDurableStore(dir, o);
  return s.status();
}

uint32_t Bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}
uint64_t Bits(double d) {
  uint64_t b;
  std::memcpy(&b, &d, sizeof b);
  return b;
}

// Floats exercising the encoding: random bit patterns (no NaN), denormals, signed zeros,
// extremes.
std::vector<float> OddFloats(std::mt19937& rng, size_t n) {
  std::vector<float> v = {0.0f,
                          -0.0f,
                          std::numeric_limits<float>::denorm_min(),
                          -std::numeric_limits<float>::denorm_min(),
                          1e-40f,
                          std::numeric_limits<float>::min(),
                          std::numeric_limits<float>::max(),
                          -std::numeric_limits<float>::max(),
                          std::numeric_limits<float>::epsilon(),
                          1.0f / 3.0f};
  while (v.size() < n) {
    uint32_t bits = rng();
    float f;
    std::memcpy(&f, &bits, sizeof f);
    if (!std::isnan(f)) v.push_back(f);
  }
  v.resize(n);
  return v;
}

ModelState OddModel(std::mt19937& rng, size_t n) {
  ModelState m;
  m.weights = OddFloats(rng, n);
  m.sq_grad = OddFloats(rng, n);
  m.head_counts = {0.0, -0.0, 4.9e-324, 1e300, 12345.0};
  m.evidence = std::uniform_real_distribution<double>(0, 1e6)(rng);
  return m;
}

void ExpectSameFloats(const std::vector<float>& a, const std::vector<float>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(Bits(a[i]), Bits(b[i])) << "at " << i;
}

void ExpectSameModel(const ModelState& a, const ModelState& b) {
  ExpectSameFloats(a.weights, b.weights);
  ExpectSameFloats(a.sq_grad, b.sq_grad);
  ASSERT_EQ(a.head_counts.size(), b.head_counts.size());
  for (size_t i = 0; i < a.head_counts.size(); ++i) {
    EXPECT_EQ(Bits(a.head_counts[i]), Bits(b.head_counts[i]));
  }
  EXPECT_EQ(Bits(a.evidence), Bits(b.evidence));
}

void ExpectSameItem(const ItemRecord& a, const ItemRecord& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.provider, b.provider);
  EXPECT_EQ(a.label, b.label);
  EXPECT_EQ(a.served, b.served);
  EXPECT_EQ(a.version, b.version);
  ExpectSameFloats(a.embedding, b.embedding);
  ExpectSameModel(a.model, b.model);
}

// The expected content of a store, kept the way the memory store keeps it.
struct Expected {
  std::map<ItemId, ItemRecord> items;
  std::map<ProviderId, ProviderRecord> providers;
  std::map<ClusterId, ClusterRecord> clusters;
  std::set<EventId> events;
  std::map<std::string, std::string> meta;
  std::map<ProviderId, ProviderLossRecord> losses;
  std::map<ProviderId, ReclusterStreakRecord> streaks;

  void Apply(const StoreBatch& b) {
    for (const auto& l : b.put_provider_losses) losses[l.provider] = l;
    for (const auto& id : b.delete_streaks) streaks.erase(id);
    for (const auto& h : b.put_streaks) streaks[h.provider] = h;
    for (const auto& id : b.delete_items) items.erase(id);
    for (const auto& r : b.put_items) {
      std::vector<float> kept = items[r.id].embedding;
      items[r.id] = r;
      if (r.embedding.empty()) items[r.id].embedding = kept;  // a model-only put
    }
    for (const auto& p : b.put_providers) providers[p.id] = p;
    for (ClusterId id : b.delete_clusters) clusters.erase(id);
    for (const auto& c : b.put_clusters) clusters[c.id] = c;
    events.insert(b.seen_events.begin(), b.seen_events.end());
    for (const auto& [k, v] : b.put_meta) meta[k] = v;
  }

  void Check(const Store& store) const {
    StoreBatch all;
    Status st = store.LoadAll(&all);
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_EQ(all.put_items.size(), items.size());
    for (const auto& r : all.put_items) {
      ASSERT_TRUE(items.count(r.id)) << r.id;
      ExpectSameItem(items.at(r.id), r);
    }
    ASSERT_EQ(all.put_providers.size(), providers.size());
    for (const auto& p : all.put_providers) {
      ASSERT_TRUE(providers.count(p.id)) << p.id;
      EXPECT_EQ(providers.at(p.id).cluster, p.cluster);
    }
    ASSERT_EQ(all.put_clusters.size(), clusters.size());
    for (const auto& c : all.put_clusters) {
      ASSERT_TRUE(clusters.count(c.id)) << c.id;
      ExpectSameModel(clusters.at(c.id).model, c.model);
    }
    EXPECT_EQ(std::set<EventId>(all.seen_events.begin(), all.seen_events.end()), events);
    EXPECT_EQ(all.seen_events.size(), events.size());
    EXPECT_EQ(all.put_meta, meta);
    ASSERT_EQ(all.put_provider_losses.size(), losses.size());
    for (const auto& l : all.put_provider_losses) {
      ASSERT_TRUE(losses.count(l.provider)) << l.provider;
      const auto& want = losses.at(l.provider).cells;
      ASSERT_EQ(l.cells.size(), want.size()) << l.provider;
      for (size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ(l.cells[i].cluster, want[i].cluster);
        EXPECT_EQ(Bits(l.cells[i].loss_sum), Bits(want[i].loss_sum));
        EXPECT_EQ(Bits(l.cells[i].count), Bits(want[i].count));
      }
    }
    ASSERT_EQ(all.put_streaks.size(), streaks.size());
    for (const auto& h : all.put_streaks) {
      ASSERT_TRUE(streaks.count(h.provider)) << h.provider;
      EXPECT_EQ(h.target, streaks.at(h.provider).target);
      EXPECT_EQ(h.runs, streaks.at(h.provider).runs);
    }
  }
};

ItemRecord OddItem(std::mt19937& rng, const std::string& id, const std::string& provider) {
  ItemRecord r;
  r.id = id;
  r.provider = provider;
  r.label = rng();
  r.served = rng() % 2;
  r.version = rng();
  r.embedding = OddFloats(rng, 33);
  r.model = OddModel(rng, 20);
  return r;
}

StoreBatch EveryKind(std::mt19937& rng) {
  StoreBatch b;
  b.put_items.push_back(OddItem(rng, "item-a", "prov-1"));
  b.put_items.push_back(OddItem(rng, std::string("item\0with nul", 13), "prov-2"));
  b.put_items.push_back(OddItem(rng, "item-\xc3\xa9t\xc3\xa9", "prov-1"));
  ItemRecord extremes = OddItem(rng, "item-extremes", "prov-2");
  extremes.label = std::numeric_limits<uint64_t>::max();
  extremes.version = (1ULL << 63) + 1;
  extremes.served = true;
  b.put_items.push_back(extremes);
  ItemRecord bare;  // a one-value vector, untrained model
  bare.id = "item-bare";
  bare.provider = "prov-1";
  bare.embedding = {0.25f};
  b.put_items.push_back(bare);
  b.put_providers = {{"prov-1", 0}, {"prov-2", std::numeric_limits<ClusterId>::max()}};
  b.put_clusters = {{0, OddModel(rng, 20)},
                    {7, ModelState()},
                    {std::numeric_limits<ClusterId>::max(), OddModel(rng, 8)}};
  b.seen_events = {"ev-1", "ev-2", std::string("ev\0", 3), ""};
  b.put_provider_losses = {
      {"prov-1", {{0, 12.5, 30.25}, {7, 4.9e-324, 0.0}, {0xFFFFFFFFu, -0.0, 1e300}}},
      {std::string("prov\0x", 6), {}}};
  b.put_streaks = {{"prov-1", 7, 1}, {"prov-2", 0xFFFFFFFFu, 0x7FFFFFFF}};
  b.put_meta = {{"embedding_dim", "33"},
                {"heads", "click,like"},
                {"empty", ""},
                {"format_version", "engine-owned, not the store marker"}};
  return b;
}

// ---- round trips ------------------------------------------------------------------------

TEST(RocksStore, RoundTripsEveryRecordKindBitIdentical) {
  ScopedTempDir dir;
  std::mt19937 rng(1);
  Expected want;
  {
    auto store = MustOpen(dir.path());
    ASSERT_TRUE(store);
    StoreBatch b = EveryKind(rng);
    ASSERT_TRUE(store->Commit(b).ok());
    want.Apply(b);
    want.Check(*store);

    // Deletes, overwrites, and a delete and a put of the same item in one batch (the put
    // wins, as in the memory store).
    StoreBatch c;
    c.delete_items = {"item-a", "no-such-item", "item-extremes"};
    c.put_items = {OddItem(rng, "item-extremes", "prov-1"), OddItem(rng, "item-new", "prov-3")};
    c.put_providers = {{"prov-3", 7}, {"prov-1", 7}};
    c.delete_clusters = {0, 12345};
    c.put_clusters = {{7, OddModel(rng, 20)}};
    c.seen_events = {"ev-1", "ev-3"};
    c.put_meta = {{"heads", "click,like,share"}};
    c.put_provider_losses = {{"prov-1", {{7, 1.0, 2.0}}}};
    c.delete_streaks = {"prov-2", "no-such-provider"};
    c.put_streaks = {{"prov-1", 0, 2}, {"prov-3", 7, 1}};
    ASSERT_TRUE(store->Commit(c).ok());
    want.Apply(c);
    want.Check(*store);
    EXPECT_TRUE(store->Commit(StoreBatch()).ok());
    want.Check(*store);
  }
  // Reopen after close returns the same.
  auto store = MustOpen(dir.path());
  ASSERT_TRUE(store);
  want.Check(*store);
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Both stores: every seen id comes back with its time (given, or the commit's), forgotten
// ids are gone, and a batch whose times do not match its ids is refused whole.
// Feedback writes an item's model, not its vector: a put without a vector keeps the stored
// one. Partition changes come back per cluster in sequence order and are dropped by
// truncation up to a sequence.
TEST(Stores, ModelOnlyPutsKeepTheVectorAndPartitionChangesTruncate) {
  ScopedTempDir dir;
  using Kind = PartitionOpRecord::Kind;
  for (bool durable : {false, true}) {
    SCOPED_TRACE(durable ? "rocksdb" : "memory");
    std::unique_ptr<Store> store = durable ? MustOpen(dir.path()) : NewMemoryStore();
    ASSERT_TRUE(store);
    std::mt19937 rng(5);
    ItemRecord item = OddItem(rng, "item", "p");
    ASSERT_TRUE(store->Commit({.put_items = {item}}).ok());
    ItemRecord update = item;
    update.embedding.clear();
    update.model = OddModel(rng, 20);
    update.version += 1;
    StoreBatch b{.put_items = {update}};
    b.put_partition_ops = {{3, 9, Kind::kRemove, 42, {}},
                           {3, 7, Kind::kAdd, 42, {0.5f, -0.5f}},
                           {1, 8, Kind::kUpdate, 7, {1.0f}},
                           {3,
                            300,
                            Kind::kAdd,
                            43,
                            {0.25f},
                            {{7, 3}, {300'000, 70'000}, {uint64_t{1} << 40, UINT32_MAX}}}};
    ASSERT_TRUE(store->Commit(b).ok());
    EXPECT_EQ(store->Commit({.put_partition_ops = {{3, 0, Kind::kAdd, 1, {1.0f}}}}).code(),
              StatusCode::kInvalidArgument);
    ASSERT_TRUE(store->Commit({.truncate_partition_ops = {{3, 8}, {2, 1000}}}).ok());
    if (durable) {
      store.reset();
      store = MustOpen(dir.path());
      ASSERT_TRUE(store);
    }
    StoreBatch all;
    ASSERT_TRUE(store->LoadAll(&all).ok());
    ASSERT_EQ(all.put_items.size(), 1u);
    ItemRecord want = update;
    want.embedding = item.embedding;
    ExpectSameItem(all.put_items[0], want);
    ASSERT_EQ(all.put_partition_ops.size(), 3u);
    EXPECT_EQ(all.put_partition_ops[0].cluster, 1u);
    EXPECT_EQ(all.put_partition_ops[0].kind, Kind::kUpdate);
    EXPECT_EQ(all.put_partition_ops[0].vector, std::vector<float>{1.0f});
    EXPECT_EQ(all.put_partition_ops[1].sequence, 9u);
    EXPECT_EQ(all.put_partition_ops[1].kind, Kind::kRemove);
    EXPECT_EQ(all.put_partition_ops[1].label, 42u);
    EXPECT_EQ(all.put_partition_ops[2].sequence, 300u);
    EXPECT_EQ(all.put_partition_ops[2].vector, std::vector<float>{0.25f});
    EXPECT_EQ(all.put_partition_ops[2].link_candidates,
              (std::vector<PartitionOpRecord::LinkCandidate>{
                  {7, 3}, {300'000, 70'000}, {uint64_t{1} << 40, UINT32_MAX}}));
    EXPECT_TRUE(all.put_partition_ops[1].link_candidates.empty());
    // Deleting the item drops its vector record too.
    ASSERT_TRUE(store->Commit({.delete_items = {"item"}}).ok());
    ASSERT_TRUE(store->LoadAll(&all).ok());
    EXPECT_TRUE(all.put_items.empty());
  }
}

TEST(Stores, EventIdsKeepTheirSeenTimeAndCanBeForgotten) {
  ScopedTempDir dir;
  for (bool durable : {false, true}) {
    SCOPED_TRACE(durable ? "rocksdb" : "memory");
    std::unique_ptr<Store> store = durable ? MustOpen(dir.path()) : NewMemoryStore();
    ASSERT_TRUE(store);
    ASSERT_TRUE(
        store->Commit({.seen_events = {"a", "b", "d"}, .seen_unix_ms = {1000, 2000, 0}}).ok());
    const int64_t before = NowMs();
    ASSERT_TRUE(store->Commit({.seen_events = {"c"}}).ok());
    const int64_t after = NowMs();
    ASSERT_TRUE(
        store
            ->Commit(
                {.seen_events = {"b"}, .seen_unix_ms = {2500}, .forget_events = {"a", "b", "zz"}})
            .ok());  // forgets come first: b stays, with its new time
    Status bad = store->Commit(
        {.put_providers = {{"p", 0}}, .seen_events = {"e", "f"}, .seen_unix_ms = {1}});
    EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument) << bad.ToString();
    if (durable) {  // and after a reopen
      store.reset();
      store = MustOpen(dir.path());
      ASSERT_TRUE(store);
    }
    StoreBatch all;
    ASSERT_TRUE(store->LoadAll(&all).ok());
    ASSERT_EQ(all.seen_unix_ms.size(), all.seen_events.size());
    std::map<EventId, int64_t> seen;
    for (size_t i = 0; i < all.seen_events.size(); ++i)
      seen[all.seen_events[i]] = all.seen_unix_ms[i];
    ASSERT_EQ(seen.size(), 3u);
    EXPECT_EQ(seen["b"], 2500);
    EXPECT_EQ(seen["d"], 0);
    EXPECT_GE(seen["c"], before);
    EXPECT_LE(seen["c"], after);
    EXPECT_TRUE(all.put_providers.empty());  // the refused batch wrote nothing
  }
}

// The memory store keeps the same contract: the same batches read back the same.
TEST(MemoryStore, RoundTripsEveryRecordKind) {
  std::mt19937 rng(1);
  Expected want;
  auto store = NewMemoryStore();
  StoreBatch b = EveryKind(rng);
  ASSERT_TRUE(store->Commit(b).ok());
  want.Apply(b);
  want.Check(*store);
  StoreBatch c;
  c.put_provider_losses = {{"prov-1", {{7, 1.0, 2.0}}}};
  c.delete_streaks = {"prov-2"};
  c.put_streaks = {{"prov-3", 7, 1}};
  ASSERT_TRUE(store->Commit(c).ok());
  want.Apply(c);
  want.Check(*store);
}

TEST(RocksStore, GroupCommitRoundTripsAndReopens) {
  ScopedTempDir dir;
  std::mt19937 rng(2);
  Expected want;
  {
    auto store = MustOpen(dir.path(), 5);
    ASSERT_TRUE(store);
    for (int i = 0; i < 20; ++i) {
      StoreBatch b;
      b.put_items = {OddItem(rng, "item-" + std::to_string(i % 7), "p")};
      b.seen_events = {"ev-" + std::to_string(i)};
      ASSERT_TRUE(store->Commit(b).ok());
      want.Apply(b);
      if (i % 5 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(7));
    }
    want.Check(*store);
  }
  auto store = MustOpen(dir.path(), 5);
  ASSERT_TRUE(store);
  want.Check(*store);
}

TEST(RocksStore, GroupCommitThreadStopsPromptly) {
  ScopedTempDir dir;
  auto start = std::chrono::steady_clock::now();
  {
    auto store = MustOpen(dir.path(), 60000);
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->Commit({.seen_events = {"e"}}).ok());
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  auto store = MustOpen(dir.path());
  StoreBatch all;
  ASSERT_TRUE(store->LoadAll(&all).ok());
  EXPECT_EQ(all.seen_events, std::vector<EventId>{"e"});
}

TEST(RocksStore, ConcurrentCommitsAllLand) {
  ScopedTempDir dir;
  for (int sync_ms : {0, 3}) {
    std::string path = dir.Sub("s" + std::to_string(sync_ms));
    auto store = MustOpen(path, sync_ms);
    ASSERT_TRUE(store);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 25; ++i) {
          std::string id = std::to_string(t) + "-" + std::to_string(i);
          ItemRecord r;
          r.id = "item-" + id;
          r.provider = "p";
          r.embedding = {1.0f};
          EXPECT_TRUE(store->Commit({.put_items = {r}, .seen_events = {"ev-" + id}}).ok());
        }
      });
    }
    for (auto& t : threads) t.join();
    StoreBatch all;
    ASSERT_TRUE(store->LoadAll(&all).ok());
    EXPECT_EQ(all.put_items.size(), 100u);
    EXPECT_EQ(all.seen_events.size(), 100u);
  }
}

TEST(RocksStore, RejectsBadOptions) {
  ScopedTempDir dir;
  DurableStoreOptions o;
  o.sync_every_ms = -1;
  auto s = OpenDurableStore(dir.path(), o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenStatus("").code(), StatusCode::kInvalidArgument);
}

TEST(RocksStore, MissingDirectoryWithoutCreate) {
  ScopedTempDir dir;
  Status st = OpenStatus(dir.Sub("nope"), /*create_if_missing=*/false);
  EXPECT_EQ(st.code(), StatusCode::kNotFound) << st.ToString();
  EXPECT_NE(st.message().find("nope"), std::string::npos) << st.ToString();
  EXPECT_FALSE(fs::exists(dir.Sub("nope")));
}

// ---- damaged records --------------------------------------------------------------------

// Writes raw key/values into a closed store's RocksDB database.
void RawPut(const std::string& dir, const std::vector<std::pair<std::string, std::string>>& kvs) {
  rocksdb::Options o;
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(o, dir, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  for (const auto& [k, v] : kvs) ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), k, v).ok());
  ASSERT_TRUE(db->Close().ok());
}

void RawDelete(const std::string& dir, const std::string& key) {
  rocksdb::Options o;
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(o, dir, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), key).ok());
  ASSERT_TRUE(db->Close().ok());
}

// Opens `dir` (which must open) and returns what LoadAll says.
Status LoadStatus(const std::string& dir) {
  auto store = MustOpen(dir);
  if (!store) return Status::Internal("did not open");
  StoreBatch all;
  return store->LoadAll(&all);
}

class DamagedRecord : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937 rng(3);
    auto store = MustOpen(dir_.path());
    ASSERT_TRUE(store);
    item_ = OddItem(rng, "good-item", "p");
    ASSERT_TRUE(store->Commit({.put_items = {item_}, .put_providers = {{"p", 0}}}).ok());
  }
  void ExpectLoadFails(StatusCode code, const std::string& key_text) {
    Status st = LoadStatus(dir_.path());
    EXPECT_EQ(st.code(), code) << st.ToString();
    EXPECT_NE(st.message().find(key_text), std::string::npos) << st.ToString();
    EXPECT_NE(st.message().find(dir_.path()), std::string::npos) << st.ToString();
  }
  ScopedTempDir dir_;
  ItemRecord item_;
};

TEST_F(DamagedRecord, FlippedByteIsCorruptionNamingTheKey) {
  std::string v = sf::EncodeItem(item_);
  v[v.size() / 2] ^= 0x10;
  RawPut(dir_.path(), {{sf::ItemKey("bad-item"), v}});
  ExpectLoadFails(StatusCode::kCorruption, "'i/bad-item' fails its XXH3 check");
}

// Records of version 1 (written before version 2) carry a zlib CRC32 instead of XXH3; both
// read, and damage to either is caught.
TEST_F(DamagedRecord, VersionOneRecordsKeepTheirCrc32) {
  std::string good = sf::EncodeItem(item_);
  const std::string payload = good.substr(1, good.size() - 5);
  std::string v1 = sf::Seal(payload, 1);
  RawPut(dir_.path(), {{sf::ItemKey("good-item"), v1}});
  StoreBatch all;
  {
    auto store = MustOpen(dir_.path());
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->LoadAll(&all).ok());
  }
  ASSERT_EQ(all.put_items.size(), 1u);
  ExpectSameItem(all.put_items[0], item_);
  v1[v1.size() / 2] ^= 0x10;
  RawPut(dir_.path(), {{sf::ItemKey("good-item"), v1}});
  ExpectLoadFails(StatusCode::kCorruption, "'i/good-item' fails its CRC32 check");
}

TEST_F(DamagedRecord, FlippedCrcIsCorruption) {
  std::string v = sf::EncodeProvider({"bad-prov", 0});
  v.back() ^= 0x01;
  RawPut(dir_.path(), {{sf::ProviderKey("bad-prov"), v}});
  ExpectLoadFails(StatusCode::kCorruption, "'p/bad-prov' fails its XXH3 check");
}

TEST_F(DamagedRecord, TooShortIsCorruption) {
  RawPut(dir_.path(), {{sf::EventKey("ev\x01"), "abc"}});
  ExpectLoadFails(StatusCode::kCorruption, "'e/ev\\x01' is 3 bytes");
}

TEST_F(DamagedRecord, NewerRecordVersionIsFailedPrecondition) {
  std::string good = sf::EncodeItem(item_);
  std::string payload = good.substr(1, good.size() - 5);
  RawPut(dir_.path(), {{sf::ItemKey("good-item"), sf::Seal(payload, 4)}});
  ExpectLoadFails(StatusCode::kFailedPrecondition,
                  "'i/good-item' has record format version 4, this build reads 1 to 3");
}

TEST_F(DamagedRecord, VersionZeroIsCorruption) {
  RawPut(dir_.path(), {{sf::EventKey("e0"), sf::Seal("", 0)}});
  ExpectLoadFails(StatusCode::kCorruption, "'e/e0' has record format version 0");
}

TEST_F(DamagedRecord, TruncatedPayloadWithValidCrcIsCorruption) {
  std::string good = sf::EncodeItem(item_);
  std::string payload = good.substr(1, good.size() - 5);
  payload.resize(payload.size() - 3);
  RawPut(dir_.path(), {{sf::ItemKey("good-item"), sf::Seal(payload)}});
  ExpectLoadFails(StatusCode::kCorruption, "'i/good-item' is malformed: truncated");
}

TEST_F(DamagedRecord, TrailingBytesAreCorruption) {
  std::string good = sf::EncodeCluster({3, ModelState()});
  std::string payload = good.substr(1, good.size() - 5) + "xx";
  RawPut(dir_.path(), {{sf::ClusterKey(3), sf::Seal(payload)}});
  ExpectLoadFails(StatusCode::kCorruption, "'c/\\x00\\x00\\x00\\x03' is malformed: 2 unexpected");
}

TEST_F(DamagedRecord, HugeLengthIsCorruptionNotAnAllocation) {
  std::string payload;
  payload.push_back(1);  // a varint 1
  payload.push_back('x');
  for (int i = 0; i < 9; ++i) payload.push_back(static_cast<char>(0xFF));
  payload.push_back(0x01);  // a 64-bit varint near 2^64 as the provider length
  RawPut(dir_.path(), {{sf::ItemKey("x"), sf::Seal(payload)}});
  ExpectLoadFails(StatusCode::kCorruption, "'i/x' is malformed");
}

TEST_F(DamagedRecord, RecordUnderTheWrongKeyIsCorruption) {
  RawPut(dir_.path(), {{sf::ItemKey("other-item"), sf::EncodeItem(item_)}});
  ExpectLoadFails(StatusCode::kCorruption, "'i/other-item' holds id 'good-item'");
}

TEST_F(DamagedRecord, UnknownKeyIsCorruption) {
  RawPut(dir_.path(), {{"z/whatever", "x"}});
  ExpectLoadFails(StatusCode::kCorruption, "unknown key 'z/whatever'");
}

TEST_F(DamagedRecord, EventWithoutItsSeenTimeIsCorruption) {
  RawPut(dir_.path(), {{sf::EventKey("legacy"), sf::Seal("")}});
  ExpectLoadFails(StatusCode::kCorruption, "'e/legacy' is malformed: truncated varint");
}

TEST_F(DamagedRecord, LossRowWithARepeatedClusterIsCorruption) {
  std::string good = sf::EncodeProviderLoss({"p", {{1, 1.0, 2.0}, {1, 3.0, 4.0}}});
  RawPut(dir_.path(), {{sf::ProviderLossKey("p"), good}});
  ExpectLoadFails(StatusCode::kCorruption, "'l/p' is malformed: cluster 1 appears twice");
}

TEST_F(DamagedRecord, LossRowWithANegativeCountIsCorruption) {
  RawPut(dir_.path(),
         {{sf::ProviderLossKey("p"), sf::EncodeProviderLoss({"p", {{1, 1.0, -2.0}}})}});
  ExpectLoadFails(StatusCode::kCorruption, "'l/p' is malformed: cell of cluster 1");
}

TEST_F(DamagedRecord, LossRowWithAHugeCountIsCorruptionNotAnAllocation) {
  std::string payload;
  payload.push_back(1);  // provider "p"
  payload.push_back('p');
  for (int i = 0; i < 9; ++i) payload.push_back(static_cast<char>(0xFF));
  payload.push_back(0x01);
  RawPut(dir_.path(), {{sf::ProviderLossKey("p"), sf::Seal(payload)}});
  ExpectLoadFails(StatusCode::kCorruption, "'l/p' is malformed: count");
}

TEST_F(DamagedRecord, StreakUnderTheWrongKeyIsCorruption) {
  RawPut(dir_.path(), {{sf::StreakKey("q"), sf::EncodeStreak({"p", 1, 1})}});
  ExpectLoadFails(StatusCode::kCorruption, "'h/q' holds id 'p'");
}

// A directory of format 1, 2 or 3 (event records without their seen time; no decisions,
// loss rows or streaks before 2 and 3) opens, is upgraded to format 4 in one batch (the
// marker moves, so an older build refuses it from then on), keeps everything it held, and
// its event ids get the time of the upgrade, so they are kept one full retention window.
// The item record of formats 1 to 4, which held the vector inline.
std::string InlineItemRecord(const ItemRecord& r) {
  std::string p;
  auto varint = [&](uint64_t v) {
    for (; v >= 0x80; v >>= 7) p.push_back(static_cast<char>((v & 0x7F) | 0x80));
    p.push_back(static_cast<char>(v));
  };
  auto bytes = [&](const void* data, size_t n) { p.append(static_cast<const char*>(data), n); };
  varint(r.id.size());
  p += r.id;
  varint(r.provider.size());
  p += r.provider;
  varint(r.label);
  p.push_back(r.served ? 1 : 0);
  varint(r.version);
  for (const auto* v : {&r.embedding, &r.model.weights, &r.model.sq_grad}) {
    varint(v->size());
    bytes(v->data(), 4 * v->size());
  }
  varint(r.model.head_counts.size());
  bytes(r.model.head_counts.data(), 8 * r.model.head_counts.size());
  bytes(&r.model.evidence, 8);
  return sf::Seal(p);
}

TEST_F(DamagedRecord, OlderFormatsAreUpgradedOnOpen) {
  for (const char* version : {"1", "2", "3", "4"}) {
    SCOPED_TRACE(std::string("format ") + version);
    ScopedTempDir dir;
    {
      auto store = MustOpen(dir.path());
      ASSERT_TRUE(store);
      ASSERT_TRUE(store->Commit({.put_items = {item_}, .put_providers = {{"p", 0}}}).ok());
    }
    // Item records of the old layout (vector inline, no vector record).
    RawDelete(dir.path(), sf::VectorKey(item_.id));
    ItemRecord second = item_;
    second.id = "second-item";
    RawPut(dir.path(), {{std::string(sf::kMarkerKey), version},
                        {sf::ItemKey(item_.id), InlineItemRecord(item_)},
                        {sf::ItemKey(second.id), InlineItemRecord(second)}});
    if (std::string(version) != "4") {
      RawPut(dir.path(), {{sf::EventKey("old-1"), sf::Seal("")},
                          {sf::EventKey(std::string("old\0two", 7)), sf::Seal("")}});
    }
    const int64_t before = NowMs();
    {
      auto store = MustOpen(dir.path());
      ASSERT_TRUE(store);
      const int64_t after = NowMs();
      StoreBatch all;
      ASSERT_TRUE(store->LoadAll(&all).ok());
      ASSERT_EQ(all.put_items.size(), 2u);
      ExpectSameItem(all.put_items[0], item_);
      ExpectSameItem(all.put_items[1], second);
      const size_t events = std::string(version) == "4" ? 0 : 2;
      ASSERT_EQ(all.seen_events.size(), events);
      ASSERT_EQ(all.seen_unix_ms.size(), events);
      for (int64_t t : all.seen_unix_ms) {
        EXPECT_GE(t, before);
        EXPECT_LE(t, after);
      }
      ASSERT_TRUE(store->Commit({.put_provider_losses = {{"p", {{0, 1.0, 2.0}}}}}).ok());
    }
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::OpenForReadOnly(rocksdb::Options(), dir.path(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    std::string marker;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), std::string(sf::kMarkerKey), &marker).ok());
    EXPECT_EQ(marker, "5");
    // The vectors moved into their own records; the item records no longer hold them.
    for (const ItemRecord* r : {&item_, &second}) {
      std::string value;
      ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), sf::VectorKey(r->id), &value).ok());
      std::vector<float> vector;
      ASSERT_TRUE(sf::DecodeVector(sf::VectorKey(r->id), value, &vector).ok());
      ExpectSameFloats(vector, r->embedding);
      ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), sf::ItemKey(r->id), &value).ok());
      ItemRecord stored;
      ASSERT_TRUE(sf::DecodeItem(sf::ItemKey(r->id), value, &stored).ok());
      EXPECT_TRUE(stored.embedding.empty());
    }
  }
}

TEST_F(DamagedRecord, ItemWithoutItsVectorAndOrphanVectorsAreCorruption) {
  RawDelete(dir_.path(), sf::VectorKey(item_.id));
  ExpectLoadFails(StatusCode::kCorruption, "item 'good-item' has no vector record");
  RawPut(dir_.path(), {{sf::VectorKey(item_.id), sf::EncodeVector(item_.embedding)},
                       {sf::VectorKey("zz-no-item"), sf::EncodeVector({1.0f})}});
  ExpectLoadFails(StatusCode::kCorruption, "'v/zz-no-item' has no item record");
}

TEST_F(DamagedRecord, DamagedPartitionChangesAreCorruption) {
  PartitionOpRecord op{2, 5, PartitionOpRecord::Kind::kRemove, 9, {1.0f}};
  RawPut(dir_.path(), {{sf::PartitionOpKey(2, 5), sf::EncodePartitionOp(op)}});
  ExpectLoadFails(StatusCode::kCorruption, "a remove carries a vector");
  op.kind = PartitionOpRecord::Kind::kAdd;
  RawPut(dir_.path(), {{sf::PartitionOpKey(2, 5), sf::EncodePartitionOp(op)},
                       {std::string(sf::kPartitionOpPrefix) + "short", sf::EncodePartitionOp(op)}});
  ExpectLoadFails(StatusCode::kCorruption, "is not 14 bytes");
  RawDelete(dir_.path(), std::string(sf::kPartitionOpPrefix) + "short");
  op.kind = PartitionOpRecord::Kind::kUpdate;
  op.link_candidates = {{4, 1}, {5, 2}};
  RawPut(dir_.path(), {{sf::PartitionOpKey(2, 5), sf::EncodePartitionOp(op)}});
  ExpectLoadFails(StatusCode::kCorruption, "an update or remove carries link candidates");
  // A count of candidates larger than the record: [version][kind][label][1 float][count][crc].
  op.kind = PartitionOpRecord::Kind::kAdd;
  op.link_candidates.clear();
  std::string v = sf::EncodePartitionOp(op);
  std::string payload = v.substr(1, v.size() - 1 - 4 - 1) + "\x7f";
  RawPut(dir_.path(), {{sf::PartitionOpKey(2, 5), sf::Seal(payload, 3)}});
  ExpectLoadFails(StatusCode::kCorruption, "127 link candidates overrun the record");
}

// Record format 2 wrote partition changes without the link candidates: they still read,
// with none.
TEST_F(DamagedRecord, Format2PartitionChangesReadWithoutLinkCandidates) {
  PartitionOpRecord op{2, 5, PartitionOpRecord::Kind::kAdd, 9, {1.0f, 0.0f}};
  const std::string v3 = sf::EncodePartitionOp(op);
  // Without the trailing zero count: the version 2 layout.
  const std::string v2 = sf::Seal(v3.substr(1, v3.size() - 1 - 4 - 1), 2);
  PartitionOpRecord read;
  ASSERT_TRUE(sf::DecodePartitionOp(sf::PartitionOpKey(2, 5), v2, &read).ok());
  EXPECT_EQ(read.label, 9u);
  EXPECT_EQ(read.vector, op.vector);
  EXPECT_TRUE(read.link_candidates.empty());
  // The same bytes under version 3 lack the count.
  Status st = sf::DecodePartitionOp(sf::PartitionOpKey(2, 5),
                                    sf::Seal(v3.substr(1, v3.size() - 1 - 4 - 1), 3), &read);
  EXPECT_EQ(st.code(), StatusCode::kCorruption) << st.ToString();
}

TEST_F(DamagedRecord, FutureStoreFormatIsRefusedOnOpen) {
  RawPut(dir_.path(), {{std::string(sf::kMarkerKey), "6"}});
  Status st = OpenStatus(dir_.path());
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("data directory '" + dir_.path() +
                              "' has format version 6, this build reads up to 5"),
            std::string::npos)
      << st.ToString();
}

TEST_F(DamagedRecord, GarbageStoreFormatIsCorruption) {
  RawPut(dir_.path(), {{std::string(sf::kMarkerKey), "one"}});
  Status st = OpenStatus(dir_.path());
  EXPECT_EQ(st.code(), StatusCode::kCorruption) << st.ToString();
  EXPECT_NE(st.message().find("unreadable format marker 'one'"), std::string::npos);
}

TEST_F(DamagedRecord, MissingMarkerOnNonEmptyDatabaseIsRefused) {
  RawDelete(dir_.path(), std::string(sf::kMarkerKey));
  Status st = OpenStatus(dir_.path());
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("not a dynspec data directory"), std::string::npos);
}

TEST_F(DamagedRecord, TheEngineRefusesToOpenOverIt) {
  std::string v = sf::EncodeItem(item_);
  v[10] ^= 0x01;
  RawPut(dir_.path(), {{sf::ItemKey("good-item"), v}});
  auto store = MustOpen(dir_.path());
  ASSERT_TRUE(store);
  EngineOptions o;
  o.embed.dim = 33;
  auto engine = Engine::Open(o, std::move(store));
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), StatusCode::kCorruption) << engine.status().ToString();
  EXPECT_NE(engine.status().message().find("i/good-item"), std::string::npos);
}

// ---- damaged and foreign files ----------------------------------------------------------

std::vector<fs::path> FilesMatching(const std::string& dir, const std::string& needle) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().find(needle) != std::string::npos) out.push_back(e.path());
  }
  return out;
}

void WriteFile(const fs::path& p, const std::string& content) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << content;
}

// A store with data in an SST file (flushed through RocksDB directly) and a WAL.
void MakeStoreWithSst(const std::string& dir) {
  std::mt19937 rng(4);
  {
    auto store = MustOpen(dir);
    ASSERT_TRUE(store);
    StoreBatch b;
    for (int i = 0; i < 200; ++i)
      b.put_items.push_back(OddItem(rng, "item-" + std::to_string(i), "p"));
    b.put_providers = {{"p", 0}};
    ASSERT_TRUE(store->Commit(b).ok());
  }
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  ASSERT_TRUE(db->Flush(rocksdb::FlushOptions()).ok());
  ASSERT_TRUE(db->Close().ok());
  ASSERT_FALSE(FilesMatching(dir, ".sst").empty());
}

// A damaged file must give a clear non-OK status when opening or loading, never a crash.
Status OpenAndLoad(const std::string& dir) {
  DurableStoreOptions o;
  auto s = OpenDurableStore(dir, o);
  if (!s.ok()) return s.status();
  StoreBatch all;
  return (*s)->LoadAll(&all);
}

void ExpectDamaged(const Status& st, const std::string& dir) {
  std::cout << "  damaged directory: " << st.ToString() << "\n";
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(st.code() == StatusCode::kCorruption || st.code() == StatusCode::kIoError)
      << st.ToString();
  EXPECT_NE(st.message().find(dir), std::string::npos) << st.ToString();
}

TEST(RocksStoreFiles, TruncatedSstFails) {
  ScopedTempDir dir;
  MakeStoreWithSst(dir.path());
  for (const auto& sst : FilesMatching(dir.path(), ".sst"))
    fs::resize_file(sst, fs::file_size(sst) / 2);
  ExpectDamaged(OpenAndLoad(dir.path()), dir.path());
}

TEST(RocksStoreFiles, GarbageSstFails) {
  ScopedTempDir dir;
  MakeStoreWithSst(dir.path());
  for (const auto& sst : FilesMatching(dir.path(), ".sst")) {
    std::string garbage(fs::file_size(sst), '\x5a');
    WriteFile(sst, garbage);
  }
  ExpectDamaged(OpenAndLoad(dir.path()), dir.path());
}

TEST(RocksStoreFiles, FlippedByteInsideSstDataFails) {
  ScopedTempDir dir;
  MakeStoreWithSst(dir.path());
  for (const auto& sst : FilesMatching(dir.path(), ".sst")) {
    std::fstream f(sst, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(100);
    char c = 0;
    f.seekg(100);
    f.read(&c, 1);
    c ^= 0x40;
    f.seekp(100);
    f.write(&c, 1);
  }
  ExpectDamaged(OpenAndLoad(dir.path()), dir.path());
}

TEST(RocksStoreFiles, TruncatedCurrentFails) {
  ScopedTempDir dir;
  MakeStoreWithSst(dir.path());
  WriteFile(fs::path(dir.path()) / "CURRENT", "MANIF");
  ExpectDamaged(OpenAndLoad(dir.path()), dir.path());
}

TEST(RocksStoreFiles, CurrentNamingAMissingManifestFails) {
  ScopedTempDir dir;
  MakeStoreWithSst(dir.path());
  WriteFile(fs::path(dir.path()) / "CURRENT", "MANIFEST-999999\n");
  Status st = OpenAndLoad(dir.path());
  std::cout << "  damaged directory: " << st.ToString() << "\n";
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find(dir.path()), std::string::npos) << st.ToString();
}

TEST(RocksStoreFiles, GarbageManifestFails) {
  ScopedTempDir dir;
  MakeStoreWithSst(dir.path());
  auto manifests = FilesMatching(dir.path(), "MANIFEST-");
  ASSERT_FALSE(manifests.empty());
  for (const auto& m : manifests) WriteFile(m, std::string(fs::file_size(m), '\x01'));
  ExpectDamaged(OpenAndLoad(dir.path()), dir.path());
}

TEST(RocksStoreFiles, EmptyManifestFails) {
  ScopedTempDir dir;
  MakeStoreWithSst(dir.path());
  for (const auto& m : FilesMatching(dir.path(), "MANIFEST-")) fs::resize_file(m, 0);
  ExpectDamaged(OpenAndLoad(dir.path()), dir.path());
}

TEST(RocksStoreFiles, UnrelatedDirectoryIsRefusedAndLeftAlone) {
  ScopedTempDir dir;
  fs::create_directories(dir.path());
  WriteFile(fs::path(dir.path()) / "notes.txt", "my thesis");
  Status st = OpenStatus(dir.path());
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("is not empty and is not a dynspec data directory"),
            std::string::npos)
      << st.ToString();
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(RocksStoreFiles, ForeignRocksDbIsRefused) {
  ScopedTempDir dir;
  fs::create_directories(dir.path());
  {
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(o, dir.path(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "user", "data").ok());
    ASSERT_TRUE(db->Close().ok());
  }
  Status st = OpenStatus(dir.path());
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("not a dynspec data directory"), std::string::npos);
}

TEST(RocksStoreFiles, EmptyDirectoryBecomesAStore) {
  ScopedTempDir dir;
  fs::create_directories(dir.path());
  auto store = MustOpen(dir.path());
  ASSERT_TRUE(store);
  EXPECT_TRUE(store->Commit({.seen_events = {"e"}}).ok());
}

TEST(RocksStoreFiles, RegularFileIsRefused) {
  ScopedTempDir dir;
  fs::create_directories(dir.path());
  WriteFile(dir.Sub("file"), "x");
  Status st = OpenStatus(dir.Sub("file"));
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("is not a directory"), std::string::npos);
}

// ---- double open ------------------------------------------------------------------------

TEST(RocksStore, SecondOpenOfTheSameDirectoryIsRefused) {
  ScopedTempDir dir;
  auto first = MustOpen(dir.path());
  ASSERT_TRUE(first);
  for (int sync_ms : {0, 10}) {
    DurableStoreOptions o;
    o.sync_every_ms = sync_ms;
    auto second = OpenDurableStore(dir.path(), o);
    ASSERT_FALSE(second.ok());
    std::cout << "  second open: " << second.status().ToString() << "\n";
    EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition)
        << second.status().ToString();
    EXPECT_NE(second.status().message().find("data directory '" + dir.path() +
                                             "' is in use by another process"),
              std::string::npos)
        << second.status().ToString();
  }
  // The first one still works, and once it is closed the directory opens again.
  EXPECT_TRUE(first->Commit({.seen_events = {"e"}}).ok());
  first.reset();
  auto again = MustOpen(dir.path());
  ASSERT_TRUE(again);
}

// ---- backup -----------------------------------------------------------------------------

TEST(RocksStore, BackupWhileCommittingIsAConsistentPrefix) {
  ScopedTempDir dir;
  for (int sync_ms : {0, 5}) {
    SCOPED_TRACE("sync_every_ms " + std::to_string(sync_ms));
    const std::string path = dir.Sub("db" + std::to_string(sync_ms));
    auto store = MustOpen(path, sync_ms);
    ASSERT_TRUE(store);
    // Batch k adds item k and event k, sets meta "count" = k and cluster 0's evidence = k.
    std::atomic<bool> stop{false};
    std::atomic<int> committed{0};
    std::thread writer([&] {
      std::mt19937 rng(5);
      for (int k = 1; !stop.load() && k < 100000; ++k) {
        StoreBatch b;
        b.put_items = {OddItem(rng, "item-" + std::to_string(k), "p")};
        ModelState m;
        m.evidence = k;
        b.put_clusters = {{0, m}};
        b.seen_events = {"ev-" + std::to_string(k)};
        b.put_meta = {{"count", std::to_string(k)}};
        if (!store->Commit(b).ok()) {
          ADD_FAILURE() << "commit " << k;
          return;
        }
        committed = k;
      }
    });
    std::vector<std::string> backups;
    for (int i = 0; i < 4; ++i) {
      while (committed.load() < 20 * (i + 1))
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      backups.push_back(dir.Sub("backup" + std::to_string(sync_ms) + "-" + std::to_string(i)));
      Status st = store->Backup(backups.back());
      ASSERT_TRUE(st.ok()) << st.ToString();
    }
    stop = true;
    writer.join();
    Status again = store->Backup(backups.front());
    EXPECT_EQ(again.code(), StatusCode::kFailedPrecondition) << again.ToString();
    EXPECT_NE(again.message().find("already exists"), std::string::npos);

    int previous = 0;
    for (const auto& b : backups) {
      auto copy = MustOpen(b);
      ASSERT_TRUE(copy);
      StoreBatch all;
      ASSERT_TRUE(copy->LoadAll(&all).ok());
      ASSERT_TRUE(all.put_meta.count("count"));
      const int n = std::stoi(all.put_meta.at("count"));
      EXPECT_GE(n, previous);
      previous = n;
      EXPECT_GT(n, 0);
      EXPECT_EQ(all.put_items.size(), static_cast<size_t>(n));
      EXPECT_EQ(all.seen_events.size(), static_cast<size_t>(n));
      ASSERT_EQ(all.put_clusters.size(), 1u);
      EXPECT_EQ(all.put_clusters[0].model.evidence, n);
      std::set<std::string> ids;
      for (const auto& r : all.put_items) ids.insert(r.id);
      for (int k = 1; k <= n; ++k) EXPECT_TRUE(ids.count("item-" + std::to_string(k))) << k;
      // A backup is a store of its own: it takes commits without touching the original.
      EXPECT_TRUE(copy->Commit({.seen_events = {"only-in-copy"}}).ok());
    }
    StoreBatch original;
    ASSERT_TRUE(store->LoadAll(&original).ok());
    for (const auto& e : original.seen_events) EXPECT_NE(e, "only-in-copy");
  }
}

TEST(RocksStore, BackupIntoANewNestedDirectory) {
  ScopedTempDir dir;
  auto store = MustOpen(dir.Sub("db"));
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Commit({.seen_events = {"e1"}}).ok());
  ASSERT_TRUE(store->Backup(dir.Sub("a/b/c/")).ok());
  auto copy = MustOpen(dir.Sub("a/b/c"));
  ASSERT_TRUE(copy);
  StoreBatch all;
  ASSERT_TRUE(copy->LoadAll(&all).ok());
  EXPECT_EQ(all.seen_events, std::vector<EventId>{"e1"});
  EXPECT_EQ(store->Backup("").code(), StatusCode::kInvalidArgument);
}

TEST(MemoryStore, BackupIsFailedPrecondition) {
  EXPECT_EQ(NewMemoryStore()->Backup("/tmp/x").code(), StatusCode::kFailedPrecondition);
}

// ---- the engine over the durable store ----------------------------------------------------

EngineOptions SmallOptions() {
  EngineOptions o;
  o.embed.dim = 64;
  o.blend.k = 4;
  return o;
}

class EngineOverRocks : public ::testing::TestWithParam<int> {};

TEST_P(EngineOverRocks, RestartIsBitIdentical) {
  ScopedTempDir dir;
  const std::vector<std::pair<std::string, std::string>> items = {
      {"m1", "guitar magazine with guitar lessons, gear reviews and songs"},
      {"m2", "guitar player lessons and gear reviews for every guitarist"},
      {"m3", "bass guitar and guitar gear reviews, lessons and songs"},
      {"f1", "healthy recipes, cooking tips and kitchen ideas for families"},
      {"f2", "quick family recipes and cooking ideas for busy kitchens"},
      {"f3", "baking recipes, desserts and cooking techniques for home kitchens"}};
  DurableStoreOptions so;
  so.sync_every_ms = GetParam();
  std::map<std::string, ItemInfo> before;
  std::map<std::string, Prediction> predictions;
  EngineStats stats_before;
  const Context ctx{{}, {{"hour=20", 1.0f}, {"device=phone", 1.0f}}};
  {
    auto store = OpenDurableStore(dir.path(), so);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto e = Engine::Open(SmallOptions(), std::move(store).value());
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    auto& engine = *e;
    for (const auto& [id, text] : items) {
      ASSERT_TRUE(engine->Ingest({id, id[0] == 'm' ? "MusicCo" : "FoodCo", {text}}).ok());
    }
    ASSERT_TRUE(engine->BootstrapClusters(2).ok());
    std::mt19937 rng(6);
    for (int i = 0; i < 60; ++i) {
      const std::string& id = items[rng() % items.size()].first;
      Responses r = {{"click", static_cast<double>(rng() % 2)},
                     {"dwell_seconds", static_cast<double>(rng() % 300)}};
      auto fb = engine->Feedback({"ev-" + std::to_string(i), id, ctx, r});
      ASSERT_TRUE(fb.ok()) << fb.status().ToString();
    }
    ASSERT_TRUE(engine->Ingest({"m4", "MusicCo", {"guitar songs and lessons"}}).ok());
    for (const auto& [id, text] : items) before[id] = *engine->GetItem(id);
    before["m4"] = *engine->GetItem("m4");
    for (const auto& [id, info] : before) predictions[id] = *engine->Predict({id, {}, "", ctx});
    stats_before = engine->Stats();
  }
  auto store = OpenDurableStore(dir.path(), so);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto e = Engine::Open(SmallOptions(), std::move(store).value());
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  auto& engine = *e;
  for (const auto& [id, b] : before) {
    auto a = engine->GetItem(id);
    ASSERT_TRUE(a.ok()) << id;
    EXPECT_EQ(a->provider, b.provider);
    EXPECT_EQ(a->cluster, b.cluster);
    EXPECT_EQ(a->served, b.served);
    EXPECT_EQ(a->version, b.version);
    ExpectSameFloats(a->embedding, b.embedding);
    ExpectSameModel(a->model, b.model);
    auto p = engine->Predict({id, {}, "", ctx});
    ASSERT_TRUE(p.ok());
    const Prediction& q = predictions[id];
    ASSERT_EQ(p->heads.size(), q.heads.size());
    for (size_t h = 0; h < q.heads.size(); ++h) EXPECT_EQ(Bits(p->heads[h]), Bits(q.heads[h]));
    EXPECT_EQ(Bits(p->expected_reward), Bits(q.expected_reward));
    ASSERT_EQ(p->contributions.size(), q.contributions.size());
    for (size_t c = 0; c < q.contributions.size(); ++c) {
      EXPECT_EQ(p->contributions[c].item_id, q.contributions[c].item_id);
      EXPECT_EQ(Bits(p->contributions[c].weight), Bits(q.contributions[c].weight));
    }
  }
  EngineStats stats = engine->Stats();
  EXPECT_EQ(stats.items, stats_before.items);
  EXPECT_EQ(stats.served_items, stats_before.served_items);
  EXPECT_EQ(stats.providers, stats_before.providers);
  EXPECT_EQ(stats.clusters, stats_before.clusters);
  EXPECT_EQ(stats.feedback_events, stats_before.feedback_events);
  // Event ids survive the restart.
  auto repeat = engine->Feedback({"ev-7", "m1", ctx, {{"click", 1}}});
  ASSERT_FALSE(repeat.ok());
  EXPECT_EQ(repeat.status().code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(engine->Feedback({"ev-new", "m1", ctx, {{"click", 1}}}).ok());
}

INSTANTIATE_TEST_SUITE_P(SyncModes, EngineOverRocks, ::testing::Values(0, 10),
                         [](const auto& info) {
                           return info.param == 0
                                      ? std::string("SyncEveryCommit")
                                      : "GroupCommit" + std::to_string(info.param) + "ms";
                         });

}  // namespace
}  // namespace dynspec
