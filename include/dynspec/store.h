// Store: where the engine keeps its state. An extension point: the engine holds a working
// copy in memory and writes every acknowledged change through a Store before it answers.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dynspec/status.h"
#include "dynspec/types.h"

namespace dynspec {

struct ItemRecord {
  ItemId id;
  ProviderId provider;
  uint64_t label = 0;  // engine-internal dense id; the partition label of the item
  bool served = false;
  uint64_t version = 0;
  // In a StoreBatch, empty leaves the stored vector as it is: feedback rewrites an item's
  // model, not its vector. LoadAll always fills it.
  std::vector<float> embedding;
  ModelState model;
};

struct ProviderRecord {
  ProviderId id;
  ClusterId cluster = 0;
};

struct ClusterRecord {
  ClusterId id = 0;
  ModelState model;  // the cluster's shared model (also the prior of every blend)
};

// A ranking decision waiting for feedback (see Engine::Rank): what was offered, what was
// served with which propensities, and which served positions have been answered so far.
struct DecisionRecord {
  EventId id;
  int64_t created_unix_ms = 0;
  int64_t expires_unix_ms = 0;  // unanswered positions resolve with the default reward then
  Context context;
  std::vector<ItemId> candidates;
  std::vector<double> scores;         // expected reward of each candidate when ranked
  std::vector<double> probabilities;  // the policy's first-position probability of each
  std::vector<uint64_t> versions;     // each candidate's model version when ranked
  std::vector<uint32_t> chosen;       // candidate indices, in served (slate) order
  std::vector<double> propensities;   // per slate position (see learn/exploration.h)
  std::vector<uint8_t> answered;      // per slate position: 1 once its feedback arrived
  std::vector<double> rewards;        // per slate position, valid where answered
  // Per slate position, the models blended into its prediction: (item id or "" for the
  // cluster prior, blend weight).
  std::vector<std::vector<std::pair<ItemId, double>>> blends;
};

// Shadow-evaluation statistics of one provider (the engine's provider x cluster loss matrix,
// see ReclusterOptions): per cluster, the decayed sum of per-event losses and the decayed
// number of evaluations. Written with the feedback that changed them.
struct ProviderLossRecord {
  ProviderId provider;
  struct Cell {
    ClusterId cluster = 0;
    double loss_sum = 0;
    double count = 0;
  };
  std::vector<Cell> cells;  // at most one per cluster
};

// Re-clustering hysteresis of one provider: the cluster it has been a move candidate for, in
// `runs` consecutive re-clustering runs (see ReclusterOptions::consecutive_runs).
struct ReclusterStreakRecord {
  ProviderId provider;
  ClusterId target = 0;
  int runs = 0;
};

// One change of a cluster's partition (its vector index). The engine logs every change it
// makes to a partition and, after writing the partition's snapshot, drops the changes the
// snapshot holds; a restart loads the snapshot and replays the changes logged since, in
// sequence order, so the partition is rebuilt exactly as it was (see docs/storage.md).
struct PartitionOpRecord {
  enum class Kind : uint8_t { kAdd = 1, kUpdate = 2, kRemove = 3 };
  ClusterId cluster = 0;
  uint64_t sequence = 0;  // > 0, increasing across all partitions of an engine
  Kind kind = Kind::kAdd;
  uint64_t label = 0;
  std::vector<float> vector;  // the new vector of kAdd and kUpdate; empty for kRemove
  // kAdd only: the candidates the add linked among (the index's link candidates: a label
  // and the graph element that held it), so that the replay builds the same graph. Empty
  // when the add searched for its own.
  struct LinkCandidate {
    uint64_t label = 0;
    uint32_t element = 0;
    bool operator==(const LinkCandidate&) const = default;
  };
  std::vector<LinkCandidate> link_candidates;
};

// A set of changes applied atomically: after Commit returns OK all of them are stored,
// after it fails none are. Items are upserted by id; providers and clusters likewise.
struct StoreBatch {
  std::vector<ItemRecord> put_items;
  std::vector<ItemId> delete_items;
  std::vector<ProviderRecord> put_providers;
  std::vector<ClusterRecord> put_clusters;
  std::vector<ClusterId> delete_clusters;
  std::vector<EventId> seen_events;  // feedback event ids, for idempotency after restart
  // When each of seen_events was seen (unix ms), so that retention survives a restart.
  // Commit: empty (the store uses the time of the commit) or one per seen_events; LoadAll
  // always fills one per seen_events.
  std::vector<int64_t> seen_unix_ms;
  std::vector<EventId> forget_events;         // seen ids past their retention (before seen_events)
  std::vector<DecisionRecord> put_decisions;  // pending ranking decisions, upserted by id
  std::vector<EventId> delete_decisions;      // resolved ones (deletes come before puts)
  std::vector<ProviderLossRecord> put_provider_losses;  // upserted by provider
  std::vector<ReclusterStreakRecord> put_streaks;       // upserted by provider
  std::vector<ProviderId> delete_streaks;               // (deletes come before puts)
  // Small metadata the engine checks on open (format version, embedding dimension, heads),
  // so a data directory is never reopened silently with an incompatible configuration.
  std::map<std::string, std::string> put_meta;
  // Partition changes, upserted by (cluster, sequence). LoadAll returns them ordered by
  // cluster, then sequence.
  std::vector<PartitionOpRecord> put_partition_ops;
  // (cluster, sequence): drops that cluster's logged changes up to and including `sequence`
  // (applied before put_partition_ops).
  std::vector<std::pair<ClusterId, uint64_t>> truncate_partition_ops;
};

// Contract: Commit is atomic and, for durable stores, durable when it returns OK; it may be
// called from several threads at once. LoadAll returns everything committed so far.
// InvalidArgument when seen_unix_ms is neither empty nor as long as seen_events, or a
// partition change has sequence 0.
class Store {
 public:
  virtual ~Store() = default;
  virtual Status Commit(const StoreBatch& batch) = 0;
  virtual Status LoadAll(StoreBatch* out) const = 0;
  // Writes a consistent copy of everything committed so far into `dir` (which must not
  // exist) while commits go on; opening that copy restores it. Stores that keep nothing
  // durable answer FailedPrecondition.
  virtual Status Backup(const std::string& dir) = 0;
};

// Keeps everything in memory: nothing survives the process.
std::unique_ptr<Store> NewMemoryStore();

// The durable store: RocksDB in `dir`. Layout, encoding and the durability contract are in
// docs/storage.md.
struct DurableStoreOptions {
  // 0: every Commit is synced to disk (fsync of the RocksDB write-ahead log) before it
  //    returns. Nothing acknowledged is lost by a process kill, an OS crash or power loss.
  // >0 (group commit): Commit writes the WAL record with write(2), without fsync, and
  //    returns; a background thread syncs the WAL every sync_every_ms. A kill -9 of the
  //    process loses nothing acknowledged (the write has reached the OS page cache); an OS
  //    crash or power loss can lose the acknowledged commits of up to the last
  //    sync_every_ms (plus the duration of one sync). Recovery is always to a consistent
  //    prefix of the commits: a batch is never half applied. A failed background sync is
  //    logged to stderr and returned by every later Commit (reopen the store).
  // At most 60000.
  int sync_every_ms = 0;
  // Create `dir` (or use it if it is an empty directory) when it holds no store.
  bool create_if_missing = true;
};
// Opens (or creates) the store in `dir`. FailedPrecondition when the directory is used by
// another open store (the RocksDB LOCK), was written by a newer format version, or is a
// non-empty directory that is not a dynspec store; Corruption when its files are damaged.
Result<std::unique_ptr<Store>> OpenDurableStore(const std::string& dir,
                                                const DurableStoreOptions& options);

}  // namespace dynspec
