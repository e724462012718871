// The engine: the only place that wires embedder, partitions, models, learners, clustering
// and the store together. See include/dynspec/engine.h for the contract.
//
// Locking (always acquired in this order, never the reverse):
//   catalog_mu_ (shared for predict/feedback, exclusive for ingest/remove/cluster changes)
//     -> ItemState::mu (one item's model; at most one held at a time)
//       -> ClusterState::model_mu (the cluster's shared model)
//         -> the partition's internal lock, events_mu_, reward_mu_ (leaf locks)
// A ranking decision's PendingDecision::mu sits between catalog_mu_ and ItemState::mu;
// decisions_mu_ (the map of pending decisions), log_mu_ and rng_mu_ are leaf locks.
// Item embeddings, providers and cluster membership change only under the exclusive catalog
// lock, so readers holding it shared see them stable.
#include "dynspec/engine.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <shared_mutex>
#include <span>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "cluster/kmeans.h"
#include "cluster/recluster.h"
#include "common/hash.h"
#include "common/prefetch.h"
#include "common/vector_math.h"
#include "engine/decisions.h"
#include "index/partition.h"
#include "learn/ppo_blend.h"
#include "learn/reward.h"
#include "learn/supervised.h"
#include "model/blend.h"
#include "model/features.h"
#include "model/model.h"

namespace dynspec {
namespace {

// The parameter blend of the neighbours (and cluster model) an item's latest prediction
// used, kept while the item is not served: its first feedback fine-tunes the model that made
// that prediction, as the seed's loop does, without searching again or reading the
// neighbours' scattered models a second time. The prediction blends the parameters while
// it holds each neighbour's model in cache for its outputs (about 1 us); a join reusing it
// saves a search, or at least 16 cold model reads, which is most of the cost a join adds to
// its HNSW insert (docs/performance.md). Reused only while its neighbours are still what a
// search would find (EngineImpl::RememberedFirstModel): in the same cluster, with no
// removal, re-embedding or provider move there since (ClusterState::neighbour_generation),
// and the partition grown by at most 1% or k items (a list misses about k * growth / size of
// the true neighbours among the newcomers). One model's weights (1,040 bytes at the default
// width), freed when the item joins.
//
// The same search's link candidates (Partition::Search) are kept with it, so that the
// item's HNSW insert links among them instead of searching the graph again (the search is
// about three quarters of an insert). There are hnsw_ef_construction of them (640 bytes at
// 40) where the partition is a graph and hnsw_ef_search >= hnsw_ef_construction; none
// otherwise (at the default 200 > 64 the insert searches for itself).
struct PredictedFirstModel {
  ClusterId cluster = 0;
  uint64_t cluster_generation = 0;
  size_t partition_size = 0;   // when the neighbours were found
  std::vector<float> weights;  // ParameterBlend's result; its other state starts fresh anyway
  std::vector<LinkCandidate> link_candidates;
};

struct ItemState {
  ItemId id;
  uint64_t label = 0;
  // Guarded by the exclusive catalog lock.
  ProviderId provider;
  // Guarded by mu. The item's own copy of its vector while it is not served. Once it is in
  // its cluster's partition, the partition holds the only copy and this is empty: a second
  // copy of every served vector would be a fifth of the engine's memory at D = 256 (see
  // docs/performance.md). Read it through EngineImpl::Embedding.
  std::vector<float> embedding;
  // Guarded by mu.
  mutable std::mutex mu;
  bool served = false;
  uint64_t version = 0;
  ModelState model;
  // Guarded by mu; written by predictions (hence mutable), cleared when the item joins.
  mutable std::optional<PredictedFirstModel> predicted;
};

struct ProviderState {
  ProviderId id;
  ClusterId cluster = 0;
  std::vector<double> centroid_sum;  // sum of its items' embeddings
  std::set<uint64_t> items;          // labels
};

struct ClusterState {
  ClusterId id = 0;
  std::unique_ptr<Partition> partition;
  std::vector<double> centroid_sum;  // guarded by the exclusive catalog lock
  uint64_t item_count = 0;
  std::set<ProviderId> providers;
  mutable std::mutex model_mu;
  ModelState model;  // guarded by model_mu
  // Changes (under the exclusive catalog lock) whenever a neighbour list found in this
  // partition may have become wrong: a served item removed, re-embedded or moved out, or
  // items moved in. Stamps come from one engine-wide counter, so a cluster created with a
  // reused id never matches a list found in its predecessor.
  uint64_t neighbour_generation = 0;
  // The partition differs from its snapshot file (or has none): set after every change of
  // the partition, cleared just before a snapshot is written (so a change made while it is
  // written sets it again). The destructor writes only these.
  std::atomic<bool> snapshot_stale{true};
};

// A ranking decision waiting for feedback. `record` changes only under mu, and only after
// the store has committed the change.
struct PendingDecision {
  explicit PendingDecision(DecisionRecord r)
      : expires_unix_ms(r.expires_unix_ms), record(std::move(r)) {}
  // A copy of record.expires_unix_ms, which never changes: the expiry sweep reads it without
  // taking mu (record itself is reassigned under mu).
  const int64_t expires_unix_ms;
  std::mutex mu;
  DecisionRecord record;
  bool resolved = false;  // every position answered or expired; gone from the store
};

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A neighbour's contribution as read under its lock.
struct NeighbourView {
  const ItemState* item;
  double similarity;
  double evidence;
  std::vector<double> outputs;
};

Status CheckId(const std::string& id, const char* field, size_t max_bytes) {
  if (id.empty()) return Status::InvalidArgument(std::string(field) + " is empty");
  if (id.size() > max_bytes) {
    return Status::InvalidArgument(std::string(field) + " is " + std::to_string(id.size()) +
                                   " bytes, limit is " + std::to_string(max_bytes));
  }
  for (unsigned char c : id) {
    if (c < 0x20 || c == 0x7F) {
      return Status::InvalidArgument(std::string(field) + " contains a control character");
    }
  }
  return Status::Ok();
}

std::vector<float> NormalizedCentroid(const std::vector<double>& sum) {
  std::vector<float> v(sum.begin(), sum.end());
  if (!NormalizeInPlace(v, "centroid").ok()) v.clear();
  return v;
}

void AddTo(std::vector<double>& sum, const std::vector<float>& v, double sign) {
  if (v.empty()) return;
  if (sum.size() != v.size()) sum.assign(v.size(), 0.0);
  for (size_t i = 0; i < v.size(); ++i) sum[i] += sign * v[i];
}

class EngineImpl final : public Engine {
 public:
  EngineImpl(const EngineOptions& options, std::unique_ptr<Store> store,
             std::unique_ptr<Embedder> embedder, RewardFunction reward)
      : options_(options),
        store_(std::move(store)),
        embedder_(std::move(embedder)),
        encoder_(options.model, options.limits),
        reward_(std::make_shared<const RewardFunction>(std::move(reward))) {
    layout_.heads = options.model.heads;
    layout_.width = encoder_.width();
    for (size_t h = 0; h < layout_.heads.size(); ++h) head_index_[layout_.heads[h].name] = h;
  }

  ~EngineImpl() override {
    {
      std::lock_guard lock(scheduler_mu_);
      shutting_down_ = true;
    }
    scheduler_cv_.notify_all();
    if (scheduler_.joinable()) scheduler_.join();
    if (expiry_thread_.joinable()) expiry_thread_.join();
    if (snapshot_thread_.joinable()) snapshot_thread_.join();
    if (loaded_ && !options_.partition_snapshot_dir.empty()) {
      // Only partitions that changed since they were loaded or last written: a one-shot
      // command that reads a large directory does not rewrite its snapshots.
      Status st = SnapshotPartitionsIfStale();
      if (!st.ok()) {
        std::fprintf(stderr, "dynspec: writing partition snapshots at shutdown failed: %s\n",
                     st.ToString().c_str());
      }
    }
  }

  // Runs Recluster every recluster.period_seconds until the engine is destroyed.
  void StartScheduler() {
    if (options_.recluster.period_seconds <= 0) return;
    scheduler_ = Every(std::chrono::seconds(options_.recluster.period_seconds), [this] {
      auto r = Recluster();
      if (!r.ok()) {
        std::fprintf(stderr, "dynspec: scheduled re-clustering failed: %s\n",
                     r.status().ToString().c_str());
      }
    });
  }

  // A thread that runs `work` every `period` until the engine is destroyed.
  template <typename Period, typename Work>
  std::thread Every(Period period, Work work) {
    return std::thread([this, period, work] {
      std::unique_lock lock(scheduler_mu_);
      while (!scheduler_cv_.wait_for(lock, period, [this] { return shutting_down_; })) {
        lock.unlock();
        work();
        lock.lock();
      }
    });
  }

  // Writes the snapshots of the partitions that changed every
  // partition_snapshot_interval_seconds until the engine is destroyed (which writes them a
  // last time), so the change log and the replay after a crash stay small.
  void StartSnapshotter() {
    if (options_.partition_snapshot_dir.empty() ||
        options_.partition_snapshot_interval_seconds <= 0) {
      return;
    }
    const auto period = std::chrono::seconds(options_.partition_snapshot_interval_seconds);
    snapshot_thread_ = Every(period, [this] {
      Status st = SnapshotPartitionsIfStale();
      if (!st.ok()) {
        std::fprintf(stderr, "dynspec: periodic partition snapshot failed: %s\n",
                     st.ToString().c_str());
      }
    });
  }

  Status SnapshotPartitionsIfStale() {
    std::error_code ec;
    std::filesystem::create_directories(options_.partition_snapshot_dir, ec);
    if (ec) {
      return Status::IoError("creating " + options_.partition_snapshot_dir + ": " + ec.message());
    }
    return WriteSnapshots(/*only_stale=*/true);
  }

  // Resolves expired decisions and forgets expired event ids every rank.expiry_check_ms
  // until the engine is destroyed.
  void StartExpirySweep() {
    if (options_.rank.expiry_check_ms <= 0) return;
    expiry_thread_ = Every(std::chrono::milliseconds(options_.rank.expiry_check_ms), [this] {
      auto r = ExpireDecisions(NowUnixMs());
      if (!r.ok()) {
        std::fprintf(stderr, "dynspec: resolving expired decisions failed: %s\n",
                     r.status().ToString().c_str());
      }
      auto forgotten = ExpireEventIds(NowUnixMs());
      if (!forgotten.ok()) {
        std::fprintf(stderr, "dynspec: %s\n", forgotten.status().ToString().c_str());
      }
    });
  }

  Status Load() {
    StoreBatch all;
    DYNSPEC_RETURN_IF_ERROR(store_->LoadAll(&all).WithContext("loading the store"));
    DYNSPEC_RETURN_IF_ERROR(CheckOrWriteMeta(all.put_meta));
    std::lock_guard run(recluster_mu_);  // before the catalog lock, as in Recluster
    std::unique_lock lock(catalog_mu_);
    // Served items of each cluster, in store order: they make up its partition.
    std::map<ClusterId, std::vector<ItemState*>> served;
    for (const auto& c : all.put_clusters) {
      if (!c.model.weights.empty() && !IsInitialized(layout_, c.model)) {
        return Status::FailedPrecondition("stored model of cluster " + std::to_string(c.id) +
                                          " does not match the configured heads and context");
      }
      ClusterState& cs = CreateCluster(c.id);
      cs.model = c.model;
    }
    for (const auto& p : all.put_providers) {
      if (!clusters_.count(p.cluster)) {
        return Status::Corruption("provider '" + p.id + "' is in unknown cluster " +
                                  std::to_string(p.cluster));
      }
      providers_[p.id].id = p.id;
      providers_[p.id].cluster = p.cluster;
      clusters_.at(p.cluster)->providers.insert(p.id);
    }
    for (const auto& r : all.put_items) {
      if (static_cast<int>(r.embedding.size()) != embedder_->dim()) {
        return Status::FailedPrecondition("stored item '" + r.id + "' has embedding dimension " +
                                          std::to_string(r.embedding.size()) +
                                          " but the embedder has " +
                                          std::to_string(embedder_->dim()));
      }
      if (!r.model.weights.empty() && !IsInitialized(layout_, r.model)) {
        return Status::FailedPrecondition("stored model of item '" + r.id +
                                          "' does not match the configured heads and context");
      }
      auto pit = providers_.find(r.provider);
      if (pit == providers_.end()) {
        return Status::Corruption("item '" + r.id + "' names unknown provider '" + r.provider +
                                  "'");
      }
      auto item = std::make_shared<ItemState>();
      item->id = r.id;
      item->label = r.label;
      item->provider = r.provider;
      item->embedding = r.embedding;
      item->served = r.served;
      item->version = r.version;
      item->model = r.model;
      if (!by_label_.emplace(r.label, item).second) {
        return Status::Corruption("two stored items share label " + std::to_string(r.label));
      }
      items_[r.id] = item;
      next_label_ = std::max(next_label_, r.label + 1);
      ClusterState& cs = *clusters_.at(pit->second.cluster);
      AttachToProvider(*item, pit->second, cs);
      if (item->served) served[pit->second.cluster].push_back(item.get());
      feedback_events_ += static_cast<uint64_t>(item->model.evidence);
    }
    // The logged partition changes of each cluster, in sequence order (as LoadAll returns
    // them). Changes of clusters that no longer exist are dropped with the cluster.
    std::map<ClusterId, std::vector<const PartitionOpRecord*>> changes;
    uint64_t last_sequence = 0;
    for (const auto& op : all.put_partition_ops) {
      changes[op.cluster].push_back(&op);
      last_sequence = std::max(last_sequence, op.sequence);
    }
    // Partitions are independent: fill them in parallel (each is built in store order, so
    // the result does not depend on the number of threads).
    std::vector<std::pair<ClusterState*, const std::vector<ItemState*>*>> work;
    for (auto& [id, cs] : clusters_) work.emplace_back(cs.get(), &served[id]);
    std::vector<Status> results(work.size());
    std::atomic<size_t> next{0};
    const std::vector<const PartitionOpRecord*> none;
    auto fill = [&] {
      for (size_t i; (i = next.fetch_add(1)) < work.size();) {
        auto c = changes.find(work[i].first->id);
        results[i] =
            FillPartition(*work[i].first, *work[i].second, c == changes.end() ? none : c->second);
      }
    };
    const size_t threads =
        std::min<size_t>(work.size(), std::max(1u, std::thread::hardware_concurrency()));
    std::vector<std::thread> pool;
    for (size_t t = 1; t < threads; ++t) pool.emplace_back(fill);
    fill();
    for (auto& t : pool) t.join();
    for (const Status& st : results) DYNSPEC_RETURN_IF_ERROR(st);
    for (const auto& [id, cs] : clusters_) {
      last_sequence = std::max(last_sequence, cs->partition->AppliedSequence());
    }
    next_partition_sequence_ = last_sequence + 1;
    loaded_ = true;
    DYNSPEC_RETURN_IF_ERROR(LoadEventIds(all));
    for (auto& d : all.put_decisions) {
      const EventId id = d.id;
      decisions_[id] = std::make_shared<PendingDecision>(std::move(d));
    }
    // Shadow-evaluation statistics and re-clustering streaks, so that a re-clustering after
    // a restart (or by `dynspec recluster --data-dir`) sees what the running engine saw.
    {
      std::lock_guard perf_lock(perf_mu_);
      for (const auto& l : all.put_provider_losses) {
        auto& row = perf_[l.provider];
        for (const auto& c : l.cells) row[c.cluster] = {c.loss_sum, c.count};
      }
    }
    for (const auto& h : all.put_streaks) {
      recluster_state_.streaks[h.provider] = {h.target, h.runs};
    }
    return Status::Ok();
  }

  // Gives the cluster the partition of `items` (its served items, in store order): with
  // snapshots on, its snapshot with the logged `changes` it does not hold replayed in order
  // (the partition it had before a restart or a crash), then reconciled with `items` (which
  // changes nothing unless the log and the store disagree); else, or when the snapshot does
  // not load, one built by adding `items`. Requires the exclusive catalog lock; touches only
  // this cluster's partition, so Load runs it for several clusters at once.
  Status FillPartition(ClusterState& cs, const std::vector<ItemState*>& items,
                       const std::vector<const PartitionOpRecord*>& changes) {
    const uint64_t logged_through = changes.empty() ? 0 : changes.back()->sequence;
    if (!options_.partition_snapshot_dir.empty()) {
      const std::string path = SnapshotPath(cs.id);
      auto loaded = LoadPartition(path, embedder_->dim(), options_.index);
      if (loaded.status().code() == StatusCode::kNotFound && !changes.empty()) {
        // No snapshot yet (a cluster created since the last ones were written): its whole
        // history is in the log, so replaying it from empty gives the partition it had.
        loaded = NewPartition(embedder_->dim(), options_.index);
      }
      Status st = loaded.status();
      bool changed = false;
      if (st.ok()) st = Replay(**loaded, changes, &changed);
      if (st.ok()) {
        bool reconciled = false;
        st = Reconcile(**loaded, items, &reconciled);
        if (reconciled) {
          std::fprintf(stderr,
                       "dynspec: partition of cluster %llu differed from the store after "
                       "replaying its change log; reconciled\n",
                       static_cast<unsigned long long>(cs.id));
        }
        changed = changed || reconciled;
      }
      if (st.ok()) {
        (*loaded)->MarkApplied(logged_through);
        cs.partition = std::move(loaded).value();
        cs.snapshot_stale = changed;
        ReleaseServedEmbeddings(items);
        return Status::Ok();
      }
      if (st.code() != StatusCode::kNotFound || loaded.ok()) {
        std::fprintf(stderr,
                     "dynspec: partition snapshot %s not used (%s); rebuilding cluster %llu "
                     "from the store\n",
                     path.c_str(), st.ToString().c_str(), static_cast<unsigned long long>(cs.id));
      }
    }
    cs.partition = NewPartition(embedder_->dim(), options_.index);
    for (const ItemState* item : items) {
      DYNSPEC_RETURN_IF_ERROR(cs.partition->Add(item->label, item->embedding));
    }
    cs.partition->MarkApplied(logged_through);  // the store reflects every logged change
    ReleaseServedEmbeddings(items);
    return Status::Ok();
  }

  // Applies the logged changes `p` does not hold yet (sequence above its AppliedSequence),
  // in order. A change that does not apply (an add of a label already there, ...) means the
  // log and the snapshot disagree: an error, and the caller rebuilds from the store.
  static Status Replay(Partition& p, const std::vector<const PartitionOpRecord*>& changes,
                       bool* changed) {
    using Kind = PartitionOpRecord::Kind;
    const uint64_t held = p.AppliedSequence();
    for (const PartitionOpRecord* op : changes) {
      if (op->sequence <= held) continue;
      Status st = op->kind == Kind::kAdd
                      ? p.Add(op->label, op->vector, op->sequence, LoggedLinkCandidates(*op))
                  : op->kind == Kind::kUpdate ? p.Update(op->label, op->vector, op->sequence)
                                              : p.Remove(op->label, op->sequence);
      if (!st.ok()) {
        return st.WithContext("replaying partition change " + std::to_string(op->sequence));
      }
      *changed = true;
    }
    return Status::Ok();
  }

  // Served items' vectors now live in their partition (see ItemState::embedding). Each
  // cluster's items are touched by one FillPartition only, so clusters can run in parallel.
  static void ReleaseServedEmbeddings(const std::vector<ItemState*>& items) {
    for (ItemState* item : items) {
      std::lock_guard item_lock(item->mu);
      std::vector<float>().swap(item->embedding);
    }
  }

  // Brings a partition loaded from a (possibly stale) snapshot to exactly `items`: labels the
  // store no longer serves in this cluster are removed, re-embedded ones updated, missing ones
  // added (in store order).
  // Makes `p` hold exactly `items`; *changed tells whether anything had to change.
  static Status Reconcile(Partition& p, const std::vector<ItemState*>& items, bool* changed) {
    const size_t before = p.size();
    std::unordered_map<uint64_t, const ItemState*> want;
    want.reserve(items.size());
    for (const ItemState* item : items) want.emplace(item->label, item);
    for (uint64_t label : p.Labels()) {
      if (!want.contains(label)) {
        DYNSPEC_RETURN_IF_ERROR(p.Remove(label));
        *changed = true;
      }
    }
    for (const ItemState* item : items) {
      if (!p.Contains(item->label)) {
        DYNSPEC_RETURN_IF_ERROR(p.Add(item->label, item->embedding));
        *changed = true;
        continue;
      }
      if (!p.HasVector(item->label, item->embedding)) {
        DYNSPEC_RETURN_IF_ERROR(p.Update(item->label, item->embedding));
        *changed = true;
      }
    }
    *changed = *changed || p.size() != before;
    if (p.size() != items.size()) {
      return Status::Internal("partition holds " + std::to_string(p.size()) +
                              " labels after reconciling with " + std::to_string(items.size()) +
                              " served items");
    }
    return Status::Ok();
  }

  std::string SnapshotPath(ClusterId id) const {
    return (std::filesystem::path(options_.partition_snapshot_dir) /
            ("cluster-" + std::to_string(id) + ".part"))
        .string();
  }

  Status SnapshotPartitions() override {
    if (options_.partition_snapshot_dir.empty()) {
      return Status::FailedPrecondition("no partition_snapshot_dir is configured");
    }
    std::error_code ec;
    std::filesystem::create_directories(options_.partition_snapshot_dir, ec);
    if (ec) {
      return Status::Internal("creating " + options_.partition_snapshot_dir + ": " + ec.message());
    }
    return WriteSnapshots(/*only_stale=*/false);
  }

  Status WriteSnapshots(bool only_stale) {
    // One writer at a time (the periodic thread, SnapshotPartitions, the destructor): two
    // could rename their files in one order and drop logged changes in the other, leaving a
    // file older than the log's truncation point. Taken before the catalog lock.
    std::lock_guard writer(snapshot_writer_mu_);
    std::shared_lock lock(catalog_mu_);
    for (const auto& [id, cs] : clusters_) {
      if (only_stale && !cs->snapshot_stale.load()) continue;
      cs->snapshot_stale = false;
      uint64_t saved = 0;
      Status st = cs->partition->Save(SnapshotPath(id), &saved);
      if (!st.ok()) {
        cs->snapshot_stale = true;
        return st.WithContext("snapshot of cluster " + std::to_string(id));
      }
      // The snapshot holds the logged changes up to `saved`: drop them. Should this fail,
      // they stay and are skipped on replay (their sequence is not above the snapshot's).
      if (saved > 0) {
        DYNSPEC_RETURN_IF_ERROR(store_->Commit({.truncate_partition_ops = {{id, saved}}})
                                    .WithContext("dropping the changes snapshot of cluster " +
                                                 std::to_string(id) + " holds"));
      }
    }
    return Status::Ok();
  }

  // ---- ingest -------------------------------------------------------------------------

  Status Ingest(const ItemInput& item) override { return IngestBatch({item}); }

  Status IngestBatch(const std::vector<ItemInput>& items) override {
    if (items.empty()) return Status::InvalidArgument("batch has no items");
    if (items.size() > options_.limits.max_batch_items) {
      return Status::InvalidArgument("batch has " + std::to_string(items.size()) +
                                     " items, limit is " +
                                     std::to_string(options_.limits.max_batch_items));
    }
    std::vector<std::vector<float>> vectors(items.size());
    std::unordered_set<std::string> batch_ids;
    for (size_t i = 0; i < items.size(); ++i) {
      const std::string where = items.size() > 1 ? "items[" + std::to_string(i) + "]." : "";
      DYNSPEC_RETURN_IF_ERROR(
          CheckId(items[i].id, (where + "id").c_str(), options_.limits.max_id_bytes));
      DYNSPEC_RETURN_IF_ERROR(
          CheckId(items[i].provider, (where + "provider").c_str(), options_.limits.max_id_bytes));
      if (!batch_ids.insert(items[i].id).second) {
        return Status::InvalidArgument("batch names item '" + items[i].id + "' twice");
      }
      DYNSPEC_ASSIGN_OR_RETURN(vectors[i], EmbedContent(items[i].content, where + "content"));
    }

    std::unique_lock lock(catalog_mu_);
    for (const auto& it : items) {
      if (items_.count(it.id)) {
        return Status::AlreadyExists("item '" + it.id + "' already exists");
      }
    }
    // Plan: new providers and their clusters, decided before anything is written.
    StoreBatch batch;
    std::map<ProviderId, ClusterId> new_providers;
    std::map<ClusterId, std::vector<double>> planned_sums;  // centroid sums incl. this batch
    bool new_default_cluster = false;
    for (size_t i = 0; i < items.size(); ++i) {
      const ProviderId& p = items[i].provider;
      if (providers_.count(p) || new_providers.count(p)) continue;
      ClusterId c = 0;
      if (clusters_.empty()) {
        new_default_cluster = true;
      } else {
        c = NearestCluster(vectors[i]);
      }
      new_providers[p] = c;
      batch.put_providers.push_back({p, c});
    }
    if (new_default_cluster) batch.put_clusters.push_back({0, ModelState()});
    uint64_t label = next_label_;
    for (size_t i = 0; i < items.size(); ++i) {
      ItemRecord r;
      r.id = items[i].id;
      r.provider = items[i].provider;
      r.label = label++;
      r.embedding = vectors[i];
      batch.put_items.push_back(std::move(r));
    }
    DYNSPEC_RETURN_IF_ERROR(store_->Commit(batch).WithContext("storing ingested items"));

    // Committed: apply to memory (cannot fail from here on).
    if (new_default_cluster) CreateCluster(0);
    for (const auto& [p, c] : new_providers) {
      ProviderState& ps = providers_[p];
      ps.id = p;
      ps.cluster = c;
      clusters_.at(c)->providers.insert(p);
    }
    for (auto& r : batch.put_items) {
      auto item = std::make_shared<ItemState>();
      item->id = r.id;
      item->label = r.label;
      item->provider = r.provider;
      item->embedding = std::move(r.embedding);
      ProviderState& ps = providers_.at(item->provider);
      AttachToProvider(*item, ps, *clusters_.at(ps.cluster));
      by_label_[item->label] = item;
      items_[item->id] = std::move(item);
    }
    next_label_ = label;
    return Status::Ok();
  }

  Status UpdateContent(const ItemId& id, const ItemContent& content) override {
    DYNSPEC_RETURN_IF_ERROR(CheckId(id, "id", options_.limits.max_id_bytes));
    DYNSPEC_ASSIGN_OR_RETURN(std::vector<float> v, EmbedContent(content, "content"));
    std::unique_lock lock(catalog_mu_);
    auto it = items_.find(id);
    if (it == items_.end()) return Status::NotFound("item '" + id + "' does not exist");
    ItemState& item = *it->second;
    ProviderState& ps = providers_.at(item.provider);
    ClusterState& cs = *clusters_.at(ps.cluster);
    std::lock_guard item_lock(item.mu);
    const std::vector<float> old = EmbeddingLocked(item);
    StoreBatch batch{.put_items = {RecordOf(item)}};
    batch.put_items[0].embedding = v;
    const bool in_partition = item.served && cs.partition->Contains(item.label);
    const uint64_t sequence =
        in_partition
            ? LogPartitionChange(&batch, cs.id, PartitionOpRecord::Kind::kUpdate, item.label, v)
            : 0;
    DYNSPEC_RETURN_IF_ERROR(store_->Commit(batch).WithContext("storing item"));
    item.predicted.reset();                             // found for the old vector
    if (in_partition) ForgetRememberedFirstModels(cs);  // found it with its old similarity
    AddTo(ps.centroid_sum, old, -1);
    AddTo(cs.centroid_sum, old, -1);
    AddTo(ps.centroid_sum, v, +1);
    AddTo(cs.centroid_sum, v, +1);
    if (in_partition) {
      Status st = cs.partition->Update(item.label, v, sequence);
      cs.snapshot_stale = true;
      if (!st.ok()) {
        item.embedding = std::move(v);  // keep the committed vector with the item
        return st.WithContext("updating the partition after a committed write");
      }
    } else {
      item.embedding = std::move(v);
    }
    return Status::Ok();
  }

  Status Remove(const ItemId& id) override {
    DYNSPEC_RETURN_IF_ERROR(CheckId(id, "id", options_.limits.max_id_bytes));
    std::unique_lock lock(catalog_mu_);
    auto it = items_.find(id);
    if (it == items_.end()) return Status::NotFound("item '" + id + "' does not exist");
    std::shared_ptr<ItemState> item = it->second;
    ProviderState& ps = providers_.at(item->provider);
    ClusterState& cs = *clusters_.at(ps.cluster);
    StoreBatch batch{.delete_items = {id}};
    const uint64_t sequence =
        item->served
            ? LogPartitionChange(&batch, cs.id, PartitionOpRecord::Kind::kRemove, item->label, {})
            : 0;
    DYNSPEC_RETURN_IF_ERROR(store_->Commit(batch).WithContext("removing item"));
    if (item->served) ForgetRememberedFirstModels(cs);  // may have blended it
    const std::vector<float> vector = Embedding(*item);
    if (item->served) {
      Status st = cs.partition->Remove(item->label, sequence);
      cs.snapshot_stale = true;
      if (!st.ok()) return st.WithContext("updating the partition after a committed delete");
    }
    DetachFromProvider(*item, vector, ps, cs);
    by_label_.erase(item->label);
    items_.erase(it);
    return Status::Ok();
  }

  // ---- predict ------------------------------------------------------------------------

  Result<Prediction> Predict(const PredictRequest& request) const override {
    DYNSPEC_ASSIGN_OR_RETURN(const FeatureVector x, encoder_.Encode(request.context));
    return PredictEncoded(request, x, /*remember_first_model=*/true);
  }

  // Predict with the request's context already encoded as `x` (request.context is not
  // read): ranking and PPO tuning predict many candidates in one context. With
  // `remember_first_model`, an unserved item keeps the parameter blend of this prediction for
  // its first feedback (PredictedFirstModel); PPO tuning's re-predictions of old decisions do
  // not.
  Result<Prediction> PredictEncoded(const PredictRequest& request, const FeatureVector& x,
                                    bool remember_first_model) const {
    std::vector<float> query_vector;
    if (request.inline_content) {
      if (!request.item_id.empty()) {
        return Status::InvalidArgument("give either item_id or inline content, not both");
      }
      DYNSPEC_RETURN_IF_ERROR(
          CheckId(request.inline_provider, "provider", options_.limits.max_id_bytes));
      DYNSPEC_ASSIGN_OR_RETURN(query_vector, EmbedContent(*request.inline_content, "content"));
    } else {
      DYNSPEC_RETURN_IF_ERROR(CheckId(request.item_id, "item_id", options_.limits.max_id_bytes));
    }

    std::shared_lock lock(catalog_mu_);
    const ItemState* self = nullptr;
    const ClusterState* cluster = nullptr;
    std::span<const float> query;
    if (request.inline_content) {
      auto pit = providers_.find(request.inline_provider);
      if (pit != providers_.end()) {
        cluster = clusters_.at(pit->second.cluster).get();
      } else if (!clusters_.empty()) {
        cluster = clusters_.at(NearestCluster(query_vector)).get();
      }
      query = query_vector;
    } else {
      auto it = items_.find(request.item_id);
      if (it == items_.end()) {
        return Status::NotFound("item '" + request.item_id + "' does not exist");
      }
      self = it->second.get();
      cluster = clusters_.at(providers_.at(self->provider).cluster).get();
      query_vector = Embedding(*self);  // a copy: a served item's lives in its partition
      query = query_vector;
    }

    Prediction out;
    out.item_id = request.item_id;
    out.head_names.reserve(layout_.heads.size());
    for (const auto& h : layout_.heads) out.head_names.push_back(h.name);
    out.heads.assign(layout_.heads.size(), 0.0);
    if (cluster == nullptr) {  // empty engine: an untrained model
      PredictHeads(layout_, ModelState(), x, out.heads);
      out.expected_reward = CurrentReward()->Expected(out.heads);
      predictions_.fetch_add(1, std::memory_order_relaxed);
      return out;
    }
    out.cluster = cluster->id;

    const size_t partition_size = cluster->partition->size();  // before the search
    const uint64_t cluster_generation = cluster->neighbour_generation;
    // An unserved item's first model, blended while each model is read for its outputs.
    // Whether the item is served is checked again before the blend is kept.
    std::optional<ParameterBlend> first_model;
    if (self != nullptr && remember_first_model) {
      std::lock_guard item_lock(self->mu);
      if (!self->served) first_model.emplace(layout_, options_.learn.adagrad_epsilon);
    }
    ParameterBlend* const blend = first_model ? &*first_model : nullptr;
    std::vector<LinkCandidate> link_candidates;
    DYNSPEC_ASSIGN_OR_RETURN(
        std::vector<NeighbourView> neighbours,
        ReadNeighbours(*cluster, query, self, x, blend, blend ? &link_candidates : nullptr));
    // Cluster prior and self, each read under its own lock.
    std::vector<double> cluster_out(layout_.heads.size(), 0.0);
    double cluster_evidence = 0;
    {
      std::lock_guard model_lock(cluster->model_mu);
      cluster_evidence = cluster->model.evidence;
      PredictHeads(layout_, cluster->model, x, cluster_out);
      if (blend) AddClusterPrior(cluster->model, blend);
    }
    std::vector<double> self_out(layout_.heads.size(), 0.0);
    double self_evidence = 0;
    bool has_self = false;
    if (self != nullptr) {
      std::lock_guard item_lock(self->mu);
      out.item_version = self->version;
      if (blend && !self->served) {
        PredictedFirstModel& p = self->predicted.emplace();
        p.cluster = cluster->id;
        p.cluster_generation = cluster_generation;
        p.partition_size = partition_size;
        p.weights = std::move(*first_model).Finish().weights;
        p.link_candidates = std::move(link_candidates);
      }
      if (IsInitialized(layout_, self->model) && self->model.evidence > 0) {
        has_self = true;
        self_evidence = self->model.evidence;
        PredictHeads(layout_, self->model, x, self_out);
      }
    }

    std::vector<BlendCandidate> candidates;
    candidates.reserve(neighbours.size());
    for (const auto& n : neighbours) candidates.push_back({n.similarity, n.evidence});
    const BlendWeights w =
        ComputeBlendWeights(options_.blend, has_self, self_evidence, candidates, cluster_evidence);

    if (w.empty()) {
      PredictHeads(layout_, ModelState(), x, out.heads);
    } else {
      auto accumulate = [&](const std::vector<double>& part, double weight) {
        for (size_t h = 0; h < out.heads.size(); ++h) out.heads[h] += weight * part[h];
      };
      if (w.self > 0) {
        accumulate(self_out, w.self);
        out.contributions.push_back(
            {Contribution::Source::kSelf, self->id, 1.0, self_evidence, w.self});
      }
      for (size_t i = 0; i < neighbours.size(); ++i) {
        if (w.neighbours[i] <= 0) continue;
        accumulate(neighbours[i].outputs, w.neighbours[i]);
        out.contributions.push_back({Contribution::Source::kNeighbour, neighbours[i].item->id,
                                     neighbours[i].similarity, neighbours[i].evidence,
                                     w.neighbours[i]});
      }
      if (w.cluster_prior > 0) {
        accumulate(cluster_out, w.cluster_prior);
        out.contributions.push_back(
            {Contribution::Source::kClusterPrior, "", 0.0, cluster_evidence, w.cluster_prior});
      }
    }
    out.expected_reward = CurrentReward()->Expected(out.heads);
    predictions_.fetch_add(1, std::memory_order_relaxed);
    return out;
  }

  // ---- feedback -----------------------------------------------------------------------

  Result<FeedbackResult> Feedback(const FeedbackEvent& event) override {
    if (!event.event_id.empty()) {
      DYNSPEC_RETURN_IF_ERROR(CheckId(event.event_id, "event_id", options_.limits.max_id_bytes));
      if (std::shared_ptr<PendingDecision> d = FindDecision(event.event_id)) {
        return FeedbackOnDecision(*d, event);
      }
    }
    DYNSPEC_RETURN_IF_ERROR(CheckId(event.item_id, "item_id", options_.limits.max_id_bytes));
    DYNSPEC_ASSIGN_OR_RETURN(auto targets, ParseResponses(event.responses));
    DYNSPEC_ASSIGN_OR_RETURN(FeatureVector x, encoder_.Encode(event.context));

    std::shared_lock lock(catalog_mu_);
    auto it = items_.find(event.item_id);
    if (it == items_.end()) return Status::NotFound("item '" + event.item_id + "' does not exist");
    EventReservation reservation(this, event.event_id);
    DYNSPEC_RETURN_IF_ERROR(reservation.status());
    StoreBatch extra;
    const int64_t seen = NowUnixMs();
    if (!event.event_id.empty()) {
      extra.seen_events.push_back(event.event_id);
      extra.seen_unix_ms.push_back(seen);
    }
    DYNSPEC_ASSIGN_OR_RETURN(FeedbackResult result,
                             Learn(*it->second, x, targets, event.responses, std::move(extra)));
    reservation.Commit(seen);
    return result;
  }

  // ---- ranking ------------------------------------------------------------------------

  Result<RankResult> Rank(const RankRequest& request) override {
    const size_t n = request.candidates.size();
    if (n == 0) return Status::InvalidArgument("candidates is empty");
    if (n > options_.rank.max_candidates) {
      return Status::InvalidArgument("candidates has " + std::to_string(n) + " items, limit is " +
                                     std::to_string(options_.rank.max_candidates));
    }
    const size_t slate_size = request.slate_size == 0 ? n : request.slate_size;
    if (slate_size > n) {
      return Status::InvalidArgument("slate_size " + std::to_string(slate_size) + " exceeds the " +
                                     std::to_string(n) + " candidates");
    }
    std::unordered_set<std::string_view> unique;
    for (size_t i = 0; i < n; ++i) {
      const std::string field = "candidates[" + std::to_string(i) + "]";
      DYNSPEC_RETURN_IF_ERROR(
          CheckId(request.candidates[i], field.c_str(), options_.limits.max_id_bytes));
      if (!unique.insert(request.candidates[i]).second) {
        return Status::InvalidArgument(field + " repeats item '" + request.candidates[i] + "'");
      }
    }
    DYNSPEC_ASSIGN_OR_RETURN(const FeatureVector x, encoder_.Encode(request.context));
    EventId id = request.event_id;
    if (id.empty()) {
      id = NewEventId();
    } else {
      DYNSPEC_RETURN_IF_ERROR(CheckId(id, "event_id", options_.limits.max_id_bytes));
    }
    EventReservation reservation(this, id);
    DYNSPEC_RETURN_IF_ERROR(reservation.status());
    if (FindDecision(id)) return Status::AlreadyExists("event '" + id + "' is already pending");

    DecisionRecord record;
    record.id = id;
    record.created_unix_ms = NowUnixMs();
    record.expires_unix_ms = record.created_unix_ms + options_.rank.pending_ttl_ms;
    record.context = request.context;
    record.candidates = request.candidates;
    std::vector<std::vector<Contribution>> contributions(n);
    for (size_t i = 0; i < n; ++i) {
      PredictRequest pr;
      pr.item_id = request.candidates[i];
      auto p = PredictEncoded(pr, x, /*remember_first_model=*/true);
      if (!p.ok()) return p.status().WithContext("candidates[" + std::to_string(i) + "]");
      record.scores.push_back(p->expected_reward);
      record.versions.push_back(p->item_version);
      contributions[i] = std::move(p->contributions);
    }
    SlatePlan plan;
    {
      std::lock_guard rng_lock(rng_mu_);
      DYNSPEC_ASSIGN_OR_RETURN(plan, ChooseSlate(record.scores, slate_size, options_.rank, rng_));
    }
    record.probabilities = std::move(plan.probabilities);
    record.chosen = std::move(plan.chosen);
    record.propensities = std::move(plan.propensities);
    record.answered.assign(record.chosen.size(), kPositionPending);
    record.rewards.assign(record.chosen.size(), 0.0);
    for (uint32_t c : record.chosen) {
      auto& blend = record.blends.emplace_back();
      for (const auto& k : contributions[c]) blend.emplace_back(k.item_id, k.weight);
    }
    StoreBatch batch;
    batch.put_decisions.push_back(record);
    DYNSPEC_RETURN_IF_ERROR(store_->Commit(batch).WithContext("storing the ranking decision"));

    RankResult result;
    result.event_id = id;
    result.expires_unix_ms = record.expires_unix_ms;
    for (size_t p = 0; p < record.chosen.size(); ++p) {
      const uint32_t c = record.chosen[p];
      result.slate.push_back({record.candidates[c], record.scores[c], record.probabilities[c],
                              record.propensities[p], record.versions[c]});
    }
    auto pending = std::make_shared<PendingDecision>(std::move(record));
    {
      std::lock_guard map_lock(decisions_mu_);
      decisions_[id] = std::move(pending);
    }
    rank_decisions_.fetch_add(1, std::memory_order_relaxed);
    return result;
  }

  Result<size_t> ExpireDecisions(int64_t now_unix_ms) override {
    std::vector<std::shared_ptr<PendingDecision>> expired;
    {
      std::lock_guard map_lock(decisions_mu_);
      for (const auto& [id, d] : decisions_) {
        if (d->expires_unix_ms <= now_unix_ms) expired.push_back(d);
      }
    }
    size_t resolved = 0;
    for (const auto& d : expired) {
      std::shared_lock lock(catalog_mu_);
      std::lock_guard decision_lock(d->mu);
      for (size_t p = 0; p < d->record.chosen.size() && !d->resolved; ++p) {
        if (d->record.answered[p] != kPositionPending) continue;
        DYNSPEC_RETURN_IF_ERROR(ResolvePosition(*d, p, kPositionExpired, nullptr).status());
        expired_positions_.fetch_add(1, std::memory_order_relaxed);
      }
      if (d->resolved) ++resolved;
    }
    MaybeTunePpo();
    return resolved;
  }

  Result<size_t> ExpireEventIds(int64_t now_unix_ms) override {
    const int64_t retention = options_.event_id_retention_seconds;
    if (retention <= 0 || now_unix_ms < INT64_MIN + retention * 1000) return size_t{0};
    const int64_t cutoff = now_unix_ms - retention * 1000;
    // Bounded batches, so that forgetting a backlog (a directory closed for weeks) never
    // builds one huge WriteBatch.
    constexpr size_t kBatch = 10000;
    size_t forgotten = 0;
    for (;;) {
      StoreBatch batch;
      {
        std::lock_guard lock(events_mu_);
        while (!event_times_.empty() && event_times_.front().first <= cutoff &&
               batch.forget_events.size() < kBatch) {
          EventId id = *event_times_.front().second;
          event_times_.pop_front();
          events_.erase(id);
          // Held as pending until the store has dropped it: were the id accepted again
          // meanwhile, its new e/ record could be committed before this batch deletes it,
          // and a restart would then accept it a third time.
          pending_events_.insert(id);
          batch.forget_events.push_back(std::move(id));
        }
      }
      if (batch.forget_events.empty()) return forgotten;
      Status st = store_->Commit(batch);
      {
        std::lock_guard lock(events_mu_);
        for (const auto& id : batch.forget_events) pending_events_.erase(id);
      }
      // On failure the ids stay in the store (forgotten in memory only, as they are past the
      // window anyway) and are dropped on the next open.
      if (!st.ok()) return st.WithContext("forgetting expired event ids");
      forgotten += batch.forget_events.size();
    }
  }
  // ---- reward, clusters, inspection ---------------------------------------------------

  Status SetRewardTerms(const std::vector<RewardTerm>& terms) override {
    DYNSPEC_ASSIGN_OR_RETURN(RewardFunction f, RewardFunction::Make(terms, layout_.heads));
    std::lock_guard lock(reward_mu_);
    reward_ = std::make_shared<const RewardFunction>(std::move(f));
    return Status::Ok();
  }

  std::vector<RewardTerm> RewardTerms() const override { return CurrentReward()->terms(); }

  Status BootstrapClusters(int target_clusters) override {
    const int k = target_clusters > 0 ? target_clusters : options_.cluster.initial_clusters;
    std::unique_lock lock(catalog_mu_);
    if (feedback_events_.load() > 0) {
      return Status::FailedPrecondition(
          "initial clustering is only possible before any feedback; use re-clustering");
    }
    if (providers_.empty()) return Status::FailedPrecondition("there are no providers yet");
    std::vector<const ProviderState*> order;
    std::vector<std::vector<float>> points;
    for (const auto& [id, p] : providers_) {
      std::vector<float> c = NormalizedCentroid(p.centroid_sum);
      if (c.empty()) continue;  // a provider whose items were all removed
      order.push_back(&p);
      points.push_back(std::move(c));
    }
    if (points.empty()) return Status::FailedPrecondition("no provider has items");
    DYNSPEC_ASSIGN_OR_RETURN(
        KMeansResult km,
        SphericalKMeans(points, k, options_.cluster.kmeans_iterations, options_.cluster.seed));
    StoreBatch batch;
    std::map<ProviderId, ClusterId> assignment;
    for (size_t i = 0; i < order.size(); ++i) {
      assignment[order[i]->id] = static_cast<ClusterId>(km.assignment[i]);
    }
    for (const auto& [id, p] : providers_) {
      // Providers without items go to cluster 0; they move when they bring content.
      const ClusterId c = assignment.count(id) ? assignment[id] : 0;
      batch.put_providers.push_back({id, c});
    }
    for (size_t c = 0; c < km.centroids.size(); ++c) {
      batch.put_clusters.push_back({static_cast<ClusterId>(c), ModelState()});
    }
    for (const auto& [id, cs] : clusters_) {
      if (id >= km.centroids.size()) batch.delete_clusters.push_back(id);
      // Every partition starts empty: no logged change of the old ones may be replayed.
      batch.truncate_partition_ops.push_back({id, UINT64_MAX});
    }
    DYNSPEC_RETURN_IF_ERROR(store_->Commit(batch).WithContext("storing the initial clusters"));

    clusters_.clear();  // new clusters get new neighbour generations
    for (size_t c = 0; c < km.centroids.size(); ++c) CreateCluster(static_cast<ClusterId>(c));
    for (const auto& pr : batch.put_providers) {
      ProviderState& ps = providers_.at(pr.id);
      ps.cluster = pr.cluster;
      ClusterState& cs = *clusters_.at(pr.cluster);
      cs.providers.insert(pr.id);
      for (uint64_t label : ps.items) {
        const ItemState& item = *by_label_.at(label);
        AddTo(cs.centroid_sum, item.embedding, +1);
        cs.item_count++;
      }
    }
    return Status::Ok();
  }

  Status MoveProvider(const ProviderId& provider, ClusterId target) override {
    DYNSPEC_RETURN_IF_ERROR(CheckId(provider, "provider", options_.limits.max_id_bytes));
    std::unique_lock lock(catalog_mu_);
    auto pit = providers_.find(provider);
    if (pit == providers_.end()) {
      return Status::NotFound("provider '" + provider + "' does not exist");
    }
    ProviderState& ps = pit->second;
    if (ps.cluster == target) return Status::Ok();
    StoreBatch batch{.put_providers = {{provider, target}}};
    const bool new_cluster = !clusters_.count(target);
    if (new_cluster) batch.put_clusters.push_back({target, ModelState()});
    // Each served item leaves the old partition and joins the new one: logged in the batch
    // of the move, in the order they are applied below.
    struct Migration {
      std::vector<float> vector;
      uint64_t removed = 0, added = 0;  // change sequences
    };
    std::map<uint64_t, Migration> migrations;  // served items, by label
    for (uint64_t label : ps.items) {
      ItemState& item = *by_label_.at(label);
      std::lock_guard item_lock(item.mu);
      if (!item.served) continue;
      const ClusterState& from = *clusters_.at(ps.cluster);
      const uint64_t removed =
          LogPartitionChange(&batch, from.id, PartitionOpRecord::Kind::kRemove, label, {});
      Migration& m = migrations[label];
      m.vector = EmbeddingLocked(item, from);
      m.removed = removed;
      m.added = LogPartitionChange(&batch, target, PartitionOpRecord::Kind::kAdd, label, m.vector);
    }
    // One provider record carries the move: items take their cluster from their provider,
    // so a crash can never leave an item in two partitions.
    DYNSPEC_RETURN_IF_ERROR(store_->Commit(batch).WithContext("storing the provider move"));
    if (new_cluster) CreateCluster(target);
    ClusterState& from = *clusters_.at(ps.cluster);
    ClusterState& to = *clusters_.at(target);
    ForgetRememberedFirstModels(from);  // blends there may hold the items moving out
    ForgetRememberedFirstModels(to);    // and blends there miss the items moving in
    for (uint64_t label : ps.items) {
      ItemState& item = *by_label_.at(label);
      std::lock_guard item_lock(item.mu);
      const std::vector<float> vector =
          item.served ? std::move(migrations[label].vector) : EmbeddingLocked(item, from);
      if (item.served) {
        const Migration& m = migrations[label];
        Status st = from.partition->Remove(label, m.removed);
        if (st.ok()) st = to.partition->Add(label, vector, m.added);
        from.snapshot_stale = true;
        to.snapshot_stale = true;
        if (!st.ok()) {
          item.embedding = vector;  // in neither partition now: keep its own copy
          return st.WithContext("migrating item '" + item.id + "'");
        }
      }
      AddTo(from.centroid_sum, vector, -1);
      AddTo(to.centroid_sum, vector, +1);
      from.item_count--;
      to.item_count++;
    }
    from.providers.erase(provider);
    to.providers.insert(provider);
    ps.cluster = target;
    return Status::Ok();
  }

  Status Backup(const std::string& dir) override {
    DYNSPEC_RETURN_IF_ERROR(store_->Backup(dir));
    if (options_.partition_snapshot_dir.empty()) return Status::Ok();
    // The indexes too, so that opening the copy need not rebuild them. Written after the
    // checkpoint, they may hold items committed after it; Open reconciles a snapshot with the
    // store it is opened with, as after a crash.
    const std::filesystem::path parts = std::filesystem::path(dir) / "partitions";
    std::error_code ec;
    std::filesystem::create_directories(parts, ec);
    if (ec) return Status::IoError("creating " + parts.string() + ": " + ec.message());
    std::shared_lock lock(catalog_mu_);
    for (const auto& [id, cs] : clusters_) {
      const std::string path = (parts / ("cluster-" + std::to_string(id) + ".part")).string();
      DYNSPEC_RETURN_IF_ERROR(cs->partition->Save(path).WithContext(
          "backing up the index of cluster " + std::to_string(id)));
    }
    return Status::Ok();
  }

  Result<ReclusterReport> Recluster() override {
    std::lock_guard run(recluster_mu_);
    ReclusterReport report;
    const auto started = std::chrono::system_clock::now();
    report.started_unix_seconds =
        std::chrono::duration_cast<std::chrono::seconds>(started.time_since_epoch()).count();
    std::vector<ProviderProfile> profiles;
    std::vector<ClusterId> cluster_ids;
    {
      std::shared_lock lock(catalog_mu_);
      for (const auto& [id, cs] : clusters_) cluster_ids.push_back(id);
      std::lock_guard perf_lock(perf_mu_);
      for (const auto& [id, ps] : providers_) {
        // Content for step 5 of the plan: 4 * D bytes per provider for the run's duration,
        // skipped when content placement is off.
        ProviderProfile p{id, ps.cluster, {}, {}};
        if (options_.recluster.content_move_margin < 2) {
          p.content = NormalizedCentroid(ps.centroid_sum);
        }
        auto it = perf_.find(id);
        if (it != perf_.end()) p.cells = it->second;
        profiles.push_back(std::move(p));
      }
    }
    const ReclusterState before = recluster_state_;
    DYNSPEC_ASSIGN_OR_RETURN(
        ReclusterPlan plan,
        PlanRecluster(profiles, cluster_ids, options_.recluster, &recluster_state_));
    // The streaks are committed before any move, so that a failed commit changes nothing.
    // A crash between it and the moves costs the unmoved providers their streak (they need
    // consecutive_runs runs again), never a move without its evidence.
    if (Status st = CommitStreaks(before, recluster_state_); !st.ok()) {
      recluster_state_ = before;
      return st;
    }
    auto to_move = [](const MoveDecision& m) {
      return ProviderMove{m.provider,
                          m.from,
                          m.to,
                          m.home_loss,
                          m.target_loss,
                          m.home_evidence,
                          m.target_evidence,
                          m.streak,
                          m.by_content,
                          m.home_similarity,
                          m.target_similarity};
    };
    std::map<ProviderId, ClusterId> after;
    for (const auto& p : profiles) after[p.provider] = p.current;
    for (const auto& m : plan.moves) {
      DYNSPEC_RETURN_IF_ERROR(
          MoveProvider(m.provider, m.to).WithContext("moving provider '" + m.provider + "'"));
      report.moves.push_back(to_move(m));
      after[m.provider] = m.to;
    }
    std::vector<int> before_labels, after_labels;
    for (const auto& p : profiles) {
      before_labels.push_back(static_cast<int>(p.current));
      after_labels.push_back(static_cast<int>(after[p.provider]));
    }
    report.stability_ari = AdjustedRandIndex(before_labels, after_labels);
    for (const auto& m : plan.deferred) report.deferred.push_back(to_move(m));
    report.providers_profiled = plan.providers_profiled;
    report.providers_skipped = plan.providers_skipped;
    report.providers_by_content = plan.providers_by_content;
    report.adjusted_rand_index = plan.adjusted_rand_index;
    report.dendrogram_leaves = plan.leaves;
    for (const auto& m : plan.dendrogram.merges) {
      report.dendrogram.push_back({m.a, m.b, m.distance, m.size});
    }
    report.clusters_after = ListClusters();
    report.seconds =
        std::chrono::duration<double>(std::chrono::system_clock::now() - started).count();
    return report;
  }

  // Writes the streaks that changed between two hysteresis states. Requires recluster_mu_.
  Status CommitStreaks(const ReclusterState& before, const ReclusterState& after) {
    StoreBatch batch;
    for (const auto& [provider, streak] : before.streaks) {
      if (!after.streaks.count(provider)) batch.delete_streaks.push_back(provider);
    }
    for (const auto& [provider, streak] : after.streaks) {
      auto it = before.streaks.find(provider);
      if (it == before.streaks.end() || it->second != streak) {
        batch.put_streaks.push_back({provider, streak.first, streak.second});
      }
    }
    if (batch.put_streaks.empty() && batch.delete_streaks.empty()) return Status::Ok();
    return store_->Commit(batch).WithContext("storing the re-clustering streaks");
  }

  std::vector<ProviderPerformance> Performance() const override {
    std::shared_lock lock(catalog_mu_);
    std::lock_guard perf_lock(perf_mu_);
    std::vector<ProviderPerformance> out;
    for (const auto& [id, cells] : perf_) {
      auto p = providers_.find(id);
      ProviderPerformance pp{id, p == providers_.end() ? 0 : p->second.cluster, {}};
      for (const auto& [c, cell] : cells) pp.losses.push_back({c, cell.mean(), cell.count});
      out.push_back(std::move(pp));
    }
    return out;
  }

  Result<ItemInfo> GetItem(const ItemId& id) const override {
    std::shared_lock lock(catalog_mu_);
    auto it = items_.find(id);
    if (it == items_.end()) return Status::NotFound("item '" + id + "' does not exist");
    const ItemState& item = *it->second;
    ItemInfo info;
    info.id = item.id;
    info.provider = item.provider;
    info.cluster = providers_.at(item.provider).cluster;
    std::lock_guard item_lock(item.mu);
    info.embedding = EmbeddingLocked(item);
    info.served = item.served;
    info.version = item.version;
    info.model = item.model;
    return info;
  }

  Result<ProviderInfo> GetProvider(const ProviderId& id) const override {
    std::shared_lock lock(catalog_mu_);
    auto it = providers_.find(id);
    if (it == providers_.end()) return Status::NotFound("provider '" + id + "' does not exist");
    return ProviderInfo{id, it->second.cluster, it->second.items.size()};
  }

  std::vector<ClusterInfo> ListClusters() const override {
    std::shared_lock lock(catalog_mu_);
    std::vector<ClusterInfo> out;
    for (const auto& [id, cs] : clusters_) {
      ClusterInfo info{id, cs->providers.size(), cs->item_count, cs->partition->size(), 0};
      std::lock_guard model_lock(cs->model_mu);
      info.evidence = cs->model.evidence;
      out.push_back(info);
    }
    return out;
  }

  EngineStats Stats() const override {
    std::shared_lock lock(catalog_mu_);
    EngineStats s;
    s.items = items_.size();
    for (const auto& [id, cs] : clusters_) s.served_items += cs->partition->size();
    s.providers = providers_.size();
    s.clusters = clusters_.size();
    s.feedback_events = feedback_events_.load();
    s.joins = joins_.load();
    s.joins_reusing_prediction = joins_reusing_prediction_.load();
    s.joins_linked_among_candidates = joins_linked_among_candidates_.load();
    s.predictions = predictions_.load();
    s.rank_decisions = rank_decisions_.load();
    s.recent_loss.assign(layout_.heads.size(), 0.0);
    {
      std::lock_guard loss_lock(loss_mu_);
      for (const auto& [head, cell] : recent_loss_) s.recent_loss[head] = cell.first;
      s.ppo_last_clip_fraction = ppo_last_.clip_fraction;
      s.ppo_last_loss_before = ppo_last_.loss_before;
      s.ppo_last_loss_after = ppo_last_.loss_after;
    }
    s.ppo_updates = ppo_updates_.load();
    s.expired_positions = expired_positions_.load();
    {
      std::lock_guard events_lock(events_mu_);
      s.seen_event_ids = events_.size();
    }
    {
      std::lock_guard map_lock(decisions_mu_);
      s.pending_decisions = decisions_.size();
    }
    return s;
  }

  const EngineOptions& options() const override { return options_; }
  int embedding_dim() const override { return embedder_->dim(); }

 private:
  // Claims an event id for the duration of one feedback call so that two concurrent calls
  // with the same id cannot both apply; released unless Commit() is called.
  class EventReservation {
   public:
    EventReservation(EngineImpl* engine, const EventId& id) : engine_(engine), id_(id) {
      if (id_.empty()) return;
      std::lock_guard lock(engine_->events_mu_);
      if (engine_->events_.count(id_)) {
        status_ = Status::AlreadyExists("event '" + id_ + "' was already applied");
      } else if (!engine_->pending_events_.insert(id_).second) {
        status_ = Status::AlreadyExists("event '" + id_ + "' is being applied concurrently");
      } else {
        held_ = true;
      }
    }
    ~EventReservation() {
      if (!held_) return;
      std::lock_guard lock(engine_->events_mu_);
      engine_->pending_events_.erase(id_);
      if (committed_) engine_->RememberEventLocked(id_, seen_unix_ms_);
    }
    const Status& status() const { return status_; }
    // The id was committed as seen at `seen_unix_ms`: remember it from now on.
    void Commit(int64_t seen_unix_ms) {
      committed_ = true;
      seen_unix_ms_ = seen_unix_ms;
    }

   private:
    EngineImpl* engine_;
    EventId id_;
    Status status_;
    bool held_ = false;
    bool committed_ = false;
    int64_t seen_unix_ms_ = 0;
  };

  // Requires events_mu_.
  void RememberEventLocked(const EventId& id, int64_t seen_unix_ms) {
    auto [it, added] = events_.insert(id);
    if (added) event_times_.emplace_back(seen_unix_ms, &*it);
  }

  // Remembers the stored event ids, oldest first (Open then forgets those past the window).
  Status LoadEventIds(const StoreBatch& all) {
    if (all.seen_unix_ms.size() != all.seen_events.size()) {  // a Store breaking its contract
      return Status::FailedPrecondition(
          "the store returned " + std::to_string(all.seen_unix_ms.size()) + " seen times for " +
          std::to_string(all.seen_events.size()) + " seen event ids");
    }
    std::vector<size_t> order(all.seen_events.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return all.seen_unix_ms[a] < all.seen_unix_ms[b]; });
    std::lock_guard lock(events_mu_);
    for (size_t i : order) RememberEventLocked(all.seen_events[i], all.seen_unix_ms[i]);
    return Status::Ok();
  }

  // Head index and learning target of every response; InvalidArgument naming the first
  // unknown head or bad value.
  Result<std::vector<std::pair<size_t, double>>> ParseResponses(const Responses& responses) const {
    if (responses.empty()) return Status::InvalidArgument("responses is empty");
    std::vector<std::pair<size_t, double>> targets;
    for (const auto& [name, value] : responses) {
      auto hit = head_index_.find(name);
      if (hit == head_index_.end()) {
        return Status::InvalidArgument("responses names unknown head '" + name + "'");
      }
      DYNSPEC_ASSIGN_OR_RETURN(double target, HeadTarget(layout_.heads[hit->second], value));
      targets.emplace_back(hit->second, target);
    }
    return targets;
  }

  // One supervised update of `item` (and its cluster model) from one event, committed
  // together with `extra` in one store batch, then written back. Requires the shared
  // catalog lock; takes the item's and the cluster model's locks.
  Result<FeedbackResult> Learn(ItemState& item, const FeatureVector& x,
                               const std::vector<std::pair<size_t, double>>& targets,
                               const Responses& responses, StoreBatch extra) {
    ClusterState& cluster = *clusters_.at(providers_.at(item.provider).cluster);
    std::vector<std::pair<ClusterId, double>> shadow_losses;
    if (ShouldShadowEvaluate()) {
      DYNSPEC_ASSIGN_OR_RETURN(shadow_losses, ShadowEvaluate(item, cluster, x, targets));
    }

    // A brand-new item's own model starts as the parameter blend of its neighbours and the
    // cluster model, so it is never cold. Computed before taking the item lock (it reads
    // other items' models under their own locks).
    bool needs_init;
    {
      std::lock_guard item_lock(item.mu);
      needs_init = !IsInitialized(layout_, item.model);
    }
    ModelState init;
    bool init_reused_prediction = false;
    std::vector<LinkCandidate> link_candidates;  // for the item's insert, if it joins now
    if (needs_init) {
      DYNSPEC_RETURN_IF_ERROR(
          BlendInitialModel(cluster, item, &init, &init_reused_prediction, &link_candidates));
    }

    FeedbackResult result;
    result.reward = CurrentReward()->Observed(responses);
    std::lock_guard item_lock(item.mu);
    std::lock_guard model_lock(cluster.model_mu);
    ModelState model = IsInitialized(layout_, item.model) ? item.model : std::move(init);
    if (!IsInitialized(layout_, model)) InitModel(layout_, options_.learn.adagrad_epsilon, &model);
    ModelState cluster_model = cluster.model;
    if (!IsInitialized(layout_, cluster_model)) {
      InitModel(layout_, options_.learn.adagrad_epsilon, &cluster_model);
    }
    std::vector<std::pair<size_t, double>> losses;
    for (const auto& [head, target] : targets) {
      if (!options_.learn.supervised) break;
      losses.emplace_back(head, SupervisedStep(options_.learn, layout_, head, target, x, &model));
      SupervisedStep(options_.learn, layout_, head, target, x, &cluster_model);
    }
    model.evidence += 1;
    cluster_model.evidence += 1;

    // The new models move into the batch and back out after the commit: no copies of the
    // parameters on the feedback path beyond the one each update works on.
    StoreBatch batch = std::move(extra);
    const size_t item_at = batch.put_items.size();
    const size_t cluster_at = batch.put_clusters.size();
    batch.put_items.push_back(RecordOf(item, std::move(model)));
    ItemRecord& record = batch.put_items.back();
    record.served = true;
    record.version = item.version + 1;
    batch.put_clusters.push_back({cluster.id, std::move(cluster_model)});
    // On its first feedback the item joins its partition; the join is logged with the
    // feedback. Joins into one cluster are ordered by its model lock (held from here until
    // the partition has the item), so their sequences are in the order they are applied.
    const uint64_t join_sequence =
        item.served ? 0
                    : LogPartitionChange(&batch, cluster.id, PartitionOpRecord::Kind::kAdd,
                                         item.label, item.embedding, link_candidates);
    // The provider's new loss row rides in the same batch, only on shadow-evaluated events.
    // Every writer of a provider's row holds its cluster's model lock (held here across the
    // commit) under the shared catalog lock (which keeps the provider in this cluster), so
    // rows are committed in the order they are computed and the stored row is never older
    // than one committed before it.
    std::map<ClusterId, LossCell> loss_row;
    if (!shadow_losses.empty()) {
      loss_row = UpdatedLossRow(item.provider, shadow_losses);
      batch.put_provider_losses.push_back(LossRecordOf(item.provider, loss_row));
    }
    DYNSPEC_RETURN_IF_ERROR(store_->Commit(batch).WithContext("storing feedback"));
    if (!shadow_losses.empty()) {
      std::lock_guard perf_lock(perf_mu_);
      perf_[item.provider] = std::move(loss_row);
    }

    // Write back: the item's model, and on first feedback the item joins its partition so
    // it serves as a neighbour for later items.
    item.model = std::move(batch.put_items[item_at].model);
    item.version = batch.put_items[item_at].version;
    cluster.model = std::move(batch.put_clusters[cluster_at].model);
    if (!item.served) {
      // Joins into this cluster hold its model lock, and nothing else adds with candidates:
      // the count moves only by this Add.
      const uint64_t linked_before = cluster.partition->AddsLinkedAmongCandidates();
      Status st =
          cluster.partition->Add(item.label, item.embedding, join_sequence, link_candidates);
      cluster.snapshot_stale = true;
      if (!st.ok() && st.code() != StatusCode::kAlreadyExists) {
        return st.WithContext("adding the item to its partition after a committed write");
      }
      item.served = true;
      std::vector<float>().swap(item.embedding);  // the partition holds it now
      item.predicted.reset();
      joins_.fetch_add(1, std::memory_order_relaxed);
      if (init_reused_prediction) joins_reusing_prediction_.fetch_add(1, std::memory_order_relaxed);
      if (cluster.partition->AddsLinkedAmongCandidates() != linked_before) {
        joins_linked_among_candidates_.fetch_add(1, std::memory_order_relaxed);
      }
      result.item_joined_partition = true;
    }
    result.item_version = item.version;
    feedback_events_.fetch_add(1, std::memory_order_relaxed);
    {
      std::lock_guard loss_lock(loss_mu_);
      for (const auto& [head, loss] : losses) {
        auto& [mean, n] = recent_loss_[head];
        n += 1;
        // The first observations average plainly, then the window stays at 1000.
        mean += (loss - mean) / std::min(n, 1000.0);
      }
    }
    return result;
  }

  std::shared_ptr<PendingDecision> FindDecision(const EventId& id) const {
    std::lock_guard map_lock(decisions_mu_);
    auto it = decisions_.find(id);
    return it == decisions_.end() ? nullptr : it->second;
  }

  Result<FeedbackResult> FeedbackOnDecision(PendingDecision& d, const FeedbackEvent& event) {
    if (!event.context.dense.empty() || !event.context.sparse.empty()) {
      return Status::InvalidArgument(
          "context must be empty with the event id of a ranking "
          "decision: the context it was ranked in is used");
    }
    if (!event.item_id.empty()) {
      DYNSPEC_RETURN_IF_ERROR(CheckId(event.item_id, "item_id", options_.limits.max_id_bytes));
    }
    DYNSPEC_RETURN_IF_ERROR(ParseResponses(event.responses).status());
    auto result = FeedbackOnDecisionLocked(d, event);
    MaybeTunePpo();
    return result;
  }

  Result<FeedbackResult> FeedbackOnDecisionLocked(PendingDecision& d, const FeedbackEvent& event) {
    std::shared_lock lock(catalog_mu_);
    std::lock_guard decision_lock(d.mu);
    const DecisionRecord& r = d.record;
    if (d.resolved) return Status::AlreadyExists("event '" + r.id + "' was already resolved");
    size_t position = 0;
    if (!event.item_id.empty()) {
      position = r.chosen.size();
      for (size_t p = 0; p < r.chosen.size(); ++p) {
        if (r.candidates[r.chosen[p]] == event.item_id) position = p;
      }
      if (position == r.chosen.size()) {
        return Status::InvalidArgument("item '" + event.item_id + "' was not served in event '" +
                                       r.id + "'");
      }
    }
    if (r.answered[position] != kPositionPending) {
      return Status::AlreadyExists(
          "event '" + r.id + "' already has feedback for item '" +
          r.candidates[r.chosen[position]] + "'" +
          (r.answered[position] == kPositionExpired ? " (it expired)" : ""));
    }
    return ResolvePosition(d, position, kPositionAnswered, &event.responses);
  }

  // Closes one slate position of a pending decision: learns from `responses` (feedback) or,
  // for an expired position with rank.learn_from_expired, from "no response" on every
  // binary head, and commits the item's update together with the decision's new state (the
  // decision is deleted and its id marked seen when this was its last open position). An
  // item removed since the ranking learns nothing. Requires the shared catalog lock and d.mu.
  Result<FeedbackResult> ResolvePosition(PendingDecision& d, size_t position, uint8_t how,
                                         const Responses* responses) {
    DecisionRecord next = d.record;
    const ItemId& item_id = next.candidates[next.chosen[position]];
    Responses implied;
    if (responses == nullptr && options_.rank.learn_from_expired) {
      for (const auto& h : layout_.heads) {
        if (h.kind == HeadKind::kBinary) implied[h.name] = 0;
      }
      if (!implied.empty()) responses = &implied;
    }
    next.answered[position] = how;
    next.rewards[position] = how == kPositionExpired ? options_.rank.expired_reward
                                                     : CurrentReward()->Observed(*responses);
    const bool last = std::none_of(next.answered.begin(), next.answered.end(),
                                   [](uint8_t a) { return a == kPositionPending; });
    StoreBatch extra;
    const int64_t seen = NowUnixMs();
    if (last) {
      extra.delete_decisions.push_back(next.id);
      extra.seen_events.push_back(next.id);
      extra.seen_unix_ms.push_back(seen);
    } else {
      extra.put_decisions.push_back(next);
    }
    FeedbackResult result;
    auto it = items_.find(item_id);
    if (responses != nullptr && it != items_.end()) {
      DYNSPEC_ASSIGN_OR_RETURN(auto targets, ParseResponses(*responses));
      DYNSPEC_ASSIGN_OR_RETURN(FeatureVector x, encoder_.Encode(next.context));
      DYNSPEC_ASSIGN_OR_RETURN(result,
                               Learn(*it->second, x, targets, *responses, std::move(extra)));
    } else {
      DYNSPEC_RETURN_IF_ERROR(store_->Commit(extra).WithContext("resolving the decision"));
    }
    result.reward = next.rewards[position];
    d.record = std::move(next);
    if (last) {
      d.resolved = true;
      // Seen before it leaves the pending map: a concurrent Feedback that no longer finds
      // the decision must find the id spent, not treat it as a new plain event.
      {
        std::lock_guard events_lock(events_mu_);
        RememberEventLocked(d.record.id, seen);
      }
      {
        std::lock_guard map_lock(decisions_mu_);
        decisions_.erase(d.record.id);
      }
      AppendDecisionLog(d.record);
      if (options_.ppo.enabled) {
        std::lock_guard ppo_lock(ppo_mu_);
        ppo_buffer_.push_back(d.record);
      }
    }
    return result;
  }

  // Runs a PPO-clip update when the buffer of resolved decisions is full. Called without
  // any engine lock held; one update at a time (a caller that finds one running goes on).
  void MaybeTunePpo() {
    if (!options_.ppo.enabled) return;
    std::unique_lock run(ppo_run_mu_, std::try_to_lock);
    if (!run.owns_lock()) return;
    std::vector<DecisionRecord> batch;
    {
      std::lock_guard ppo_lock(ppo_mu_);
      if (ppo_buffer_.size() < options_.ppo.buffer_events) return;
      batch.swap(ppo_buffer_);
    }
    Status st = TunePpo(batch);
    if (!st.ok()) {
      std::fprintf(stderr, "dynspec: PPO update failed: %s\n", st.ToString().c_str());
    }
  }

  // One PPO-clip update over resolved decisions (their first slate position): re-blends every
  // candidate under the current models, optimizes the blended models' weights
  // (BlendedPpoUpdate), and adds the resulting change to each model as it is now, so that
  // supervised updates made meanwhile are kept. Each changed item is committed on its own.
  Status TunePpo(const std::vector<DecisionRecord>& decisions) {
    const auto reward = CurrentReward();
    std::unordered_map<ItemId, size_t> model_index;
    std::vector<ItemId> model_ids;
    BlendedParams params;
    std::vector<BlendedEvent> events;
    for (const DecisionRecord& d : decisions) {
      BlendedEvent e;
      auto x = encoder_.Encode(d.context);
      if (!x.ok() || d.chosen.empty()) continue;
      e.x = std::move(x).value();
      e.chosen = d.chosen[0];
      e.logged_propensity = d.propensities[0];
      e.reward = d.rewards[0];
      e.baseline = d.scores[d.chosen[0]];
      bool usable = true;
      for (const ItemId& id : d.candidates) {
        PredictRequest pr;
        pr.item_id = id;
        auto p = PredictEncoded(pr, e.x, /*remember_first_model=*/false);
        if (!p.ok()) {  // removed since the decision
          usable = false;
          break;
        }
        BlendedCandidate c;
        c.fixed_outputs = p->heads;
        for (const Contribution& k : p->contributions) {
          if (k.source == Contribution::Source::kClusterPrior) continue;
          auto [it, added] = model_index.emplace(k.item_id, params.size());
          if (added) {
            auto info = GetItem(k.item_id);
            if (!info.ok() || info->model.weights.size() != layout_.size()) {
              model_index.erase(it);
              continue;
            }
            params.push_back(info->model.weights);
            model_ids.push_back(k.item_id);
          }
          c.models.push_back(it->second);
          c.weights.push_back(k.weight);
        }
        // What the tuned models contribute now; the rest of the blend stays fixed.
        const std::vector<double> tuned = TunedOutputs(c, e.x, params, layout_);
        for (size_t h = 0; h < tuned.size(); ++h) c.fixed_outputs[h] -= tuned[h];
        e.candidates.push_back(std::move(c));
      }
      if (usable) events.push_back(std::move(e));
    }
    if (events.empty()) return Status::Ok();
    const BlendedParams before = params;
    PpoOptions po;
    po.clip = options_.ppo.clip;
    po.epochs = options_.ppo.epochs;
    po.batch_size = options_.ppo.batch_size;
    po.learning_rate = options_.ppo.learning_rate;
    po.entropy_coef = options_.ppo.entropy_coef;
    po.temperature = options_.rank.temperature;
    po.epsilon = options_.rank.epsilon;
    DYNSPEC_ASSIGN_OR_RETURN(PpoStats stats,
                             BlendedPpoUpdate(events, &params, layout_, *reward, po,
                                              options_.rank.seed + ppo_updates_.load()));
    std::shared_lock lock(catalog_mu_);
    const float limit = static_cast<float>(options_.learn.max_abs_weight);
    for (size_t m = 0; m < model_ids.size(); ++m) {
      auto it = items_.find(model_ids[m]);
      if (it == items_.end()) continue;
      ItemState& item = *it->second;
      std::lock_guard item_lock(item.mu);
      if (item.model.weights.size() != params[m].size()) continue;
      ItemRecord record = RecordOf(item);
      bool changed = false;
      for (size_t i = 0; i < params[m].size(); ++i) {
        const float delta = params[m][i] - before[m][i];
        if (delta == 0) continue;
        record.model.weights[i] = std::clamp(record.model.weights[i] + delta, -limit, limit);
        changed = true;
      }
      if (!changed) continue;
      record.version = item.version + 1;
      StoreBatch batch;
      batch.put_items.push_back(record);
      DYNSPEC_RETURN_IF_ERROR(store_->Commit(batch).WithContext("storing a PPO update"));
      item.model = std::move(record.model);
      item.version = record.version;
    }
    {
      std::lock_guard loss_lock(loss_mu_);
      ppo_last_ = stats;
    }
    ppo_updates_.fetch_add(1, std::memory_order_relaxed);
    return Status::Ok();
  }

  // Best effort: the log is for analysis, the store is the record. A failure is reported
  // on stderr once per engine and does not fail the feedback that resolved the decision.
  void AppendDecisionLog(const DecisionRecord& record) {
    if (options_.rank.decision_log.empty()) return;
    const std::string line = DecisionToJsonLine(record) + "\n";
    std::lock_guard log_lock(log_mu_);
    std::ofstream out(options_.rank.decision_log, std::ios::app | std::ios::binary);
    out << line;
    out.flush();
    if (!out && !log_failed_) {
      log_failed_ = true;
      std::fprintf(stderr, "dynspec: cannot append to the decision log '%s'\n",
                   options_.rank.decision_log.c_str());
    }
  }

  // Unique across processes in practice: the time in ms, a per-process random value and a
  // counter.
  EventId NewEventId() {
    const uint64_t n = event_counter_.fetch_add(1, std::memory_order_relaxed);
    char buf[64];
    std::snprintf(buf, sizeof buf, "r-%llx-%llx-%llx", static_cast<unsigned long long>(NowUnixMs()),
                  static_cast<unsigned long long>(process_tag_ & 0xFFFFFFFF),
                  static_cast<unsigned long long>(n));
    return buf;
  }

  Result<std::vector<float>> EmbedContent(const ItemContent& content,
                                          const std::string& field) const {
    if (!content.vector.empty()) {
      if (static_cast<int>(content.vector.size()) != embedder_->dim()) {
        return Status::InvalidArgument(field + ".vector has " +
                                       std::to_string(content.vector.size()) +
                                       " values, expected " + std::to_string(embedder_->dim()));
      }
      DYNSPEC_RETURN_IF_ERROR(CheckFinite(content.vector, field + ".vector"));
      std::vector<float> v = content.vector;
      DYNSPEC_RETURN_IF_ERROR(NormalizeInPlace(v, field + ".vector"));
      return v;
    }
    if (content.text.empty()) {
      return Status::InvalidArgument(field + " has neither text nor vector");
    }
    if (content.text.size() > options_.limits.max_text_bytes) {
      return Status::InvalidArgument(field + ".text is " + std::to_string(content.text.size()) +
                                     " bytes, limit is " +
                                     std::to_string(options_.limits.max_text_bytes));
    }
    auto v = embedder_->EmbedText(content.text);
    if (!v.ok()) return v.status().WithContext(field + ".text");
    if (static_cast<int>(v->size()) != embedder_->dim()) {
      return Status::Internal("embedder returned a vector of the wrong dimension");
    }
    return v;
  }

  // The settings a store's contents depend on. A store written under other values cannot
  // be read correctly (vectors of another dimension, weights laid out for other heads), so
  // opening it is refused instead of silently misreading it.
  std::map<std::string, std::string> LayoutMeta() const {
    std::string heads;
    for (const auto& h : layout_.heads) {
      heads += h.name + (h.kind == HeadKind::kBinary ? ":binary" : ":regression") +
               (h.log1p_target ? "_log1p," : ",");
    }
    return {{"engine.embedder", embedder_->name()},
            {"engine.embedding_dim", std::to_string(embedder_->dim())},
            {"engine.heads", heads},
            {"engine.dense_dim", std::to_string(options_.model.dense_dim)},
            {"engine.sparse_dim", std::to_string(options_.model.sparse_dim)}};
  }

  Status CheckOrWriteMeta(const std::map<std::string, std::string>& stored) {
    const auto wanted = LayoutMeta();
    StoreBatch missing;
    for (const auto& [key, value] : wanted) {
      auto it = stored.find(key);
      if (it == stored.end()) {
        missing.put_meta[key] = value;
      } else if (it->second != value) {
        return Status::FailedPrecondition("the store was written with " + key + " = '" +
                                          it->second + "' but this engine has '" + value + "'");
      }
    }
    if (missing.put_meta.empty()) return Status::Ok();
    return store_->Commit(missing).WithContext("recording the engine layout in the store");
  }

  // Requires the exclusive catalog lock.
  ClusterState& CreateCluster(ClusterId id) {
    auto& slot = clusters_[id];
    if (!slot) {
      slot = std::make_unique<ClusterState>();
      slot->id = id;
      slot->partition = NewPartition(embedder_->dim(), options_.index);
      ForgetRememberedFirstModels(*slot);
    }
    return *slot;
  }

  // Invalidates every first model blended from `cs`'s partition (PredictedFirstModel).
  // Requires the exclusive catalog lock.
  void ForgetRememberedFirstModels(ClusterState& cs) {
    cs.neighbour_generation = ++neighbour_generation_stamp_;
  }

  // What `item`'s latest prediction found and blended in `cluster`, if a search now would
  // still find about the same neighbours (see PredictedFirstModel); null otherwise. Requires
  // the shared catalog lock and item.mu; valid while item.mu is held.
  const PredictedFirstModel* RememberedFirstModel(const ItemState& item,
                                                  const ClusterState& cluster) const {
    if (!item.predicted) return nullptr;
    const PredictedFirstModel& p = *item.predicted;
    if (p.cluster != cluster.id || p.cluster_generation != cluster.neighbour_generation) {
      return nullptr;
    }
    const size_t allowed_growth =
        std::max(p.partition_size / 100, static_cast<size_t>(options_.blend.k));
    if (cluster.partition->size() > p.partition_size + allowed_growth) return nullptr;
    return &p;
  }

  // Adds a neighbour's model to a new item's first model with its unnormalized blend weight
  // (NeighbourBlendWeight), and the cluster's model with its own. Require the model's lock.
  void AddNeighbour(const ModelState& model, double similarity, ParameterBlend* blend) const {
    blend->Add(model, NeighbourBlendWeight(options_.blend, {similarity, model.evidence}));
  }
  void AddClusterPrior(const ModelState& model, ParameterBlend* blend) const {
    blend->Add(model, ClusterPriorBlendWeight(options_.blend, model.evidence));
  }

  // Requires the exclusive catalog lock.
  void AttachToProvider(const ItemState& item, ProviderState& ps, ClusterState& cs) {
    ps.items.insert(item.label);
    AddTo(ps.centroid_sum, item.embedding, +1);
    AddTo(cs.centroid_sum, item.embedding, +1);
    cs.item_count++;
  }
  // `vector` is the item's (read before it left its partition).
  void DetachFromProvider(const ItemState& item, const std::vector<float>& vector,
                          ProviderState& ps, ClusterState& cs) {
    ps.items.erase(item.label);
    AddTo(ps.centroid_sum, vector, -1);
    AddTo(cs.centroid_sum, vector, -1);
    cs.item_count--;
  }

  // The cluster whose content centroid is nearest to v (the first cluster when none has
  // content yet). Requires the catalog lock (shared or exclusive) and a non-empty map.
  ClusterId NearestCluster(std::span<const float> v) const {
    ClusterId best = clusters_.begin()->first;
    double best_sim = -2;
    for (const auto& [id, cs] : clusters_) {
      std::vector<float> c = NormalizedCentroid(cs->centroid_sum);
      if (c.empty()) continue;
      const double s = Dot(v, c);
      if (s > best_sim) {
        best_sim = s;
        best = id;
      }
    }
    return best;
  }

  // Searches the cluster's partition and reads each neighbour's evidence and predictions
  // under its own lock. `self` (may be null) is excluded. With `first_model`, each neighbour's
  // parameters are also added to it (AddNeighbour) while they are in cache; with
  // `link_candidates`, the search's link candidates are returned there (Partition::Search).
  // Requires the shared catalog lock.
  Result<std::vector<NeighbourView>> ReadNeighbours(
      const ClusterState& cluster, std::span<const float> query, const ItemState* self,
      const FeatureVector& x, ParameterBlend* first_model = nullptr,
      std::vector<LinkCandidate>* link_candidates = nullptr) const {
    const size_t k = static_cast<size_t>(options_.blend.k);
    DYNSPEC_ASSIGN_OR_RETURN(std::vector<Neighbour> found,
                             cluster.partition->Search(query, k + (self ? 1 : 0), link_candidates));
    std::vector<NeighbourView> out;
    out.reserve(k);
    for (const auto& [item, similarity] : ResolveNeighbours(found, self, k)) {
      out.push_back({item, similarity, 0, std::vector<double>(layout_.heads.size())});
    }
    // The neighbours' weights are scattered and usually cold: start loading all of them
    // before the first prediction, so that their misses overlap (each lock below waits for
    // the loads issued before it). Before this, perf put 87% of PredictHeads' samples on that
    // load during shadow evaluation (docs/performance.md). The hints need the weights'
    // address, which may only be read under the item's lock: hence a pass of its own.
    for (const NeighbourView& view : out) {
      std::lock_guard item_lock(view.item->mu);
      PrefetchHeadWeights(layout_, view.item->model, x);
    }
    for (NeighbourView& view : out) {
      std::lock_guard item_lock(view.item->mu);
      view.evidence = view.item->model.evidence;
      PredictHeads(layout_, view.item->model, x, view.outputs);
      if (first_model) AddNeighbour(view.item->model, view.similarity, first_model);
    }
    return out;
  }

  // The items of `found` in order, without `self` (may be null), at most k, with their
  // similarities; each one's lock and model header start loading (a hint, see
  // common/prefetch.h) for the reads that follow. Requires the shared catalog lock.
  std::vector<std::pair<const ItemState*, float>> ResolveNeighbours(
      const std::vector<Neighbour>& found, const ItemState* self, size_t k) const {
    std::vector<std::pair<const ItemState*, float>> out;
    out.reserve(k);
    for (const auto& n : found) {
      if (out.size() == k) break;
      auto it = by_label_.find(n.label);
      if (it == by_label_.end()) continue;  // cannot happen under the catalog lock
      const ItemState* item = it->second.get();
      if (item == self) continue;
      // The lock and the model's header (its vectors and evidence span two lines).
      PrefetchLineForWrite(&item->mu);
      PrefetchLine(&item->model.weights);
      PrefetchLine(&item->model.evidence);
      out.emplace_back(item, n.similarity);
    }
    return out;
  }

  // A new item's first model: the parameter blend of its neighbours and its cluster model,
  // with the weights a prediction gives them. That of its latest prediction where still valid
  // (`reused_prediction`, see PredictedFirstModel); otherwise searched and blended now, the
  // same way and in the same order as a prediction does, so both give the same bits when
  // nothing changed in between. Either way `link_candidates` receives that search's link
  // candidates, for the item's insert (Partition::Add). Requires the shared catalog lock;
  // takes item locks one at a time.
  Status BlendInitialModel(const ClusterState& cluster, const ItemState& item, ModelState* out,
                           bool* reused_prediction,
                           std::vector<LinkCandidate>* link_candidates) const {
    {
      std::lock_guard item_lock(item.mu);
      const PredictedFirstModel* remembered = RememberedFirstModel(item, cluster);
      *reused_prediction = remembered != nullptr;
      if (remembered) {
        InitModel(layout_, options_.learn.adagrad_epsilon, out);
        const std::vector<float>& weights = remembered->weights;
        if (weights.size() != out->weights.size()) {  // cannot happen: one layout
          return Status::Internal("a remembered first model has " + std::to_string(weights.size()) +
                                  " weights, the layout " + std::to_string(out->weights.size()));
        }
        std::copy(weights.begin(), weights.end(), out->weights.begin());
        *link_candidates = remembered->link_candidates;
        return Status::Ok();
      }
    }
    const size_t k = static_cast<size_t>(options_.blend.k);
    DYNSPEC_ASSIGN_OR_RETURN(const std::vector<Neighbour> found,
                             cluster.partition->Search(Embedding(item), k + 1, link_candidates));
    const auto neighbours = ResolveNeighbours(found, &item, k);
    // As in ReadNeighbours: the neighbours' models are cold, so all of them start loading
    // before the first is blended (22 to 16 us per blend in joins at 100k items).
    for (const auto& [other, similarity] : neighbours) {
      std::lock_guard other_lock(other->mu);
      PrefetchWeights(other->model);
    }
    ParameterBlend blend(layout_, options_.learn.adagrad_epsilon);
    for (const auto& [other, similarity] : neighbours) {
      std::lock_guard other_lock(other->mu);
      AddNeighbour(other->model, similarity, &blend);
    }
    {
      std::lock_guard model_lock(cluster.model_mu);
      AddClusterPrior(cluster.model, &blend);
    }
    *out = std::move(blend).Finish();
    return Status::Ok();
  }

  // Deterministic sampling of feedback events for shadow evaluation.
  bool ShouldShadowEvaluate() {
    const double rate = options_.recluster.shadow_sample_rate;
    if (rate <= 0) return false;
    const uint64_t n = shadow_counter_.fetch_add(1, std::memory_order_relaxed);
    return double(Mix64(n) >> 11) * 0x1.0p-53 < rate;
  }

  // Predicts the event with the blend of every candidate cluster (home included, the
  // item's own model excluded, so all clusters are judged on the same footing and before
  // learning from the event) and returns the loss of each, for the provider's row of the
  // provider x cluster matrix (UpdatedLossRow). Requires the shared catalog lock; takes item
  // locks one at a time.
  Result<std::vector<std::pair<ClusterId, double>>> ShadowEvaluate(
      const ItemState& item, const ClusterState& home, const FeatureVector& x,
      const std::vector<std::pair<size_t, double>>& targets) {
    std::vector<const ClusterState*> candidates = {&home};
    const std::vector<float> vector = Embedding(item);
    std::vector<std::pair<double, const ClusterState*>> others;
    for (const auto& [id, cs] : clusters_) {
      if (cs.get() == &home || cs->partition->size() == 0) continue;
      std::vector<float> c = NormalizedCentroid(cs->centroid_sum);
      others.push_back({c.empty() ? -2.0 : double(Dot(vector, c)), cs.get()});
    }
    // An engine with a single cluster has nothing to compare it with (profiles are centred
    // on each provider's mean loss, so a one-cluster row carries no information and no move
    // can come of it). Skipping saves a neighbour search on 1 event in 20: durable feedback
    // on one 100k-item partition went from 17,400/s to 29,500-36,300/s (bench_scale,
    // interleaved runs). With several clusters whose other partitions are still empty, the
    // home loss is kept: it is the provider's baseline once the others fill.
    if (clusters_.size() == 1) return std::vector<std::pair<ClusterId, double>>{};
    const size_t limit = static_cast<size_t>(options_.recluster.shadow_max_clusters);
    if (others.size() > limit) {
      std::partial_sort(others.begin(), others.begin() + limit, others.end(),
                        [](const auto& a, const auto& b) { return a.first > b.first; });
      others.resize(limit);
    }
    for (const auto& o : others) candidates.push_back(o.second);

    std::vector<std::pair<ClusterId, double>> losses;
    std::vector<double> outputs(layout_.heads.size());
    for (const ClusterState* cs : candidates) {
      DYNSPEC_ASSIGN_OR_RETURN(std::vector<NeighbourView> neighbours,
                               ReadNeighbours(*cs, vector, &item, x));
      std::vector<double> prior(layout_.heads.size());
      double prior_evidence;
      {
        std::lock_guard model_lock(cs->model_mu);
        prior_evidence = cs->model.evidence;
        PredictHeads(layout_, cs->model, x, prior);
      }
      std::vector<BlendCandidate> bc;
      for (const auto& n : neighbours) bc.push_back({n.similarity, n.evidence});
      const BlendWeights w = ComputeBlendWeights(options_.blend, false, 0, bc, prior_evidence);
      if (w.empty()) {
        PredictHeads(layout_, ModelState(), x, outputs);
      } else {
        for (size_t h = 0; h < outputs.size(); ++h) {
          outputs[h] = w.cluster_prior * prior[h];
          for (size_t i = 0; i < neighbours.size(); ++i) {
            outputs[h] += w.neighbours[i] * neighbours[i].outputs[h];
          }
        }
      }
      double loss = 0;
      for (const auto& [head, target] : targets) {
        loss += HeadLoss(layout_.heads[head].kind, outputs[head], target);
      }
      losses.emplace_back(cs->id, loss);
    }
    return losses;
  }

  // The provider's loss row after one more shadow evaluation: every cell decays by one step,
  // then each evaluated cluster adds its loss. Takes perf_mu_ (a leaf) to read the row.
  std::map<ClusterId, LossCell> UpdatedLossRow(
      const ProviderId& provider, const std::vector<std::pair<ClusterId, double>>& losses) const {
    const double decay = std::exp2(-1.0 / options_.recluster.decay_half_life);
    std::map<ClusterId, LossCell> row;
    {
      std::lock_guard perf_lock(perf_mu_);
      auto it = perf_.find(provider);
      if (it != perf_.end()) row = it->second;
    }
    for (auto& [c, cell] : row) {
      cell.loss_sum *= decay;
      cell.count *= decay;
    }
    for (const auto& [c, loss] : losses) {
      row[c].loss_sum += loss;
      row[c].count += 1;
    }
    return row;
  }

  static ProviderLossRecord LossRecordOf(const ProviderId& provider,
                                         const std::map<ClusterId, LossCell>& row) {
    ProviderLossRecord r{provider, {}};
    for (const auto& [c, cell] : row) r.cells.push_back({c, cell.loss_sum, cell.count});
    return r;
  }

  // The item's vector: its own copy until it is served, then its partition's (see
  // ItemState::embedding); `cluster` is the item's cluster. A served item missing from its
  // partition (a failed partition write after a committed one) kept its own copy. Requires
  // the catalog lock, and item.mu unless the catalog lock is exclusive.
  std::vector<float> EmbeddingLocked(const ItemState& item, const ClusterState& cluster) const {
    if (item.served && item.embedding.empty()) {
      auto v = cluster.partition->GetVector(item.label);
      if (v.ok()) return std::move(v).value();
    }
    return item.embedding;
  }
  std::vector<float> EmbeddingLocked(const ItemState& item) const {
    return EmbeddingLocked(item, *clusters_.at(providers_.at(item.provider).cluster));
  }
  // The same, taking item.mu. Requires the catalog lock.
  std::vector<float> Embedding(const ItemState& item) const {
    std::lock_guard item_lock(item.mu);
    return EmbeddingLocked(item);
  }

  // Requires item.mu and the shared catalog lock.
  ItemRecord RecordOf(const ItemState& item) const { return RecordOf(item, item.model); }

  // The record of `item` with `model` in place of its current one, without the vector: the
  // store keeps the stored one (see ItemRecord::embedding). Requires item.mu.
  static ItemRecord RecordOf(const ItemState& item, ModelState model) {
    ItemRecord r;
    r.id = item.id;
    r.provider = item.provider;
    r.label = item.label;
    r.served = item.served;
    r.version = item.version;
    r.model = std::move(model);
    return r;
  }

  // Appends a change of `cluster`'s partition to `batch` and returns its sequence, to be
  // passed to the partition when the change is applied after the commit. 0 (nothing logged)
  // when the engine keeps no snapshots: its partitions are rebuilt from the store on open.
  // `link_candidates` (adds only) are logged with the change, for the replay to link the
  // same way.
  uint64_t LogPartitionChange(StoreBatch* batch, ClusterId cluster, PartitionOpRecord::Kind kind,
                              uint64_t label, std::span<const float> vector,
                              std::span<const LinkCandidate> link_candidates = {}) {
    if (options_.partition_snapshot_dir.empty()) return 0;
    const uint64_t sequence = next_partition_sequence_.fetch_add(1, std::memory_order_relaxed);
    PartitionOpRecord& op = batch->put_partition_ops.emplace_back(PartitionOpRecord{
        cluster, sequence, kind, label, std::vector<float>(vector.begin(), vector.end())});
    op.link_candidates.reserve(link_candidates.size());
    for (const LinkCandidate& c : link_candidates) {
      op.link_candidates.push_back({c.label, c.element});
    }
    return sequence;
  }

  static std::vector<LinkCandidate> LoggedLinkCandidates(const PartitionOpRecord& op) {
    std::vector<LinkCandidate> out;
    out.reserve(op.link_candidates.size());
    for (const auto& c : op.link_candidates) out.push_back({c.label, c.element});
    return out;
  }

  std::shared_ptr<const RewardFunction> CurrentReward() const {
    std::lock_guard lock(reward_mu_);
    return reward_;
  }

  const EngineOptions options_;
  const std::unique_ptr<Store> store_;
  // The next partition change sequence (see LogPartitionChange); above every logged one and
  // every one a loaded snapshot holds.
  std::atomic<uint64_t> next_partition_sequence_{1};
  const std::unique_ptr<Embedder> embedder_;
  const FeatureEncoder encoder_;
  ModelLayout layout_;
  std::unordered_map<std::string, size_t> head_index_;

  mutable std::shared_mutex catalog_mu_;
  std::unordered_map<ItemId, std::shared_ptr<ItemState>> items_;
  std::unordered_map<uint64_t, std::shared_ptr<ItemState>> by_label_;
  std::map<ProviderId, ProviderState> providers_;
  std::map<ClusterId, std::unique_ptr<ClusterState>> clusters_;
  uint64_t next_label_ = 0;
  uint64_t neighbour_generation_stamp_ = 0;  // see ForgetRememberedFirstModels

  // Event ids seen within event_id_retention_seconds (see ExpireEventIds).
  mutable std::mutex events_mu_;
  std::unordered_set<EventId> events_;  // applied
  // events_ in the order they were remembered, with their seen time; the expiry pops from
  // the front. The pointers are to events_'s own keys (nodes do not move on rehash), so each
  // id is stored once. Remembered out of time order (a clock stepping back), an id is
  // forgotten only after those before it: late, never early.
  std::deque<std::pair<int64_t, const EventId*>> event_times_;
  std::unordered_set<EventId> pending_events_;  // being applied (or forgotten) right now

  mutable std::mutex reward_mu_;
  std::shared_ptr<const RewardFunction> reward_;

  // Ranking decisions awaiting feedback (see PendingDecision).
  mutable std::mutex decisions_mu_;
  std::unordered_map<EventId, std::shared_ptr<PendingDecision>> decisions_;
  std::mutex rng_mu_;
  std::mt19937_64 rng_{options_.rank.seed};  // guarded by rng_mu_
  std::mutex log_mu_;
  bool log_failed_ = false;  // guarded by log_mu_
  std::atomic<uint64_t> event_counter_{0};
  const uint64_t process_tag_ = std::random_device{}() ^ Mix64(uint64_t(NowUnixMs()));
  std::atomic<uint64_t> rank_decisions_{0};
  // PPO fine-tuning: resolved decisions waiting for the next update (ppo_mu_ is a leaf);
  // ppo_run_mu_ lets one update run at a time and is taken with no other lock held.
  std::mutex ppo_mu_;
  std::vector<DecisionRecord> ppo_buffer_;
  std::mutex ppo_run_mu_;
  std::atomic<uint64_t> ppo_updates_{0};
  PpoStats ppo_last_;                                        // guarded by loss_mu_
  mutable std::mutex loss_mu_;                               // leaf
  std::map<size_t, std::pair<double, double>> recent_loss_;  // head -> (mean, count)
  std::atomic<uint64_t> expired_positions_{0};

  // Shadow evaluation and re-clustering. perf_mu_ is a leaf lock; recluster_mu_ serializes
  // runs and is taken before the catalog lock.
  mutable std::mutex perf_mu_;
  std::map<ProviderId, std::map<ClusterId, LossCell>> perf_;
  std::atomic<uint64_t> shadow_counter_{0};
  std::mutex recluster_mu_;
  ReclusterState recluster_state_;  // guarded by recluster_mu_

  std::mutex scheduler_mu_;
  std::condition_variable scheduler_cv_;
  bool shutting_down_ = false;  // guarded by scheduler_mu_
  std::thread scheduler_;
  std::thread expiry_thread_;
  std::thread snapshot_thread_;
  std::mutex snapshot_writer_mu_;  // see WriteSnapshots

  std::atomic<uint64_t> feedback_events_{0};
  std::atomic<uint64_t> joins_{0};
  std::atomic<uint64_t> joins_reusing_prediction_{0};
  std::atomic<uint64_t> joins_linked_among_candidates_{0};
  mutable std::atomic<uint64_t> predictions_{0};
  bool loaded_ = false;  // Load succeeded: the partitions are complete and may be snapshotted
};

}  // namespace

Result<std::unique_ptr<Engine>> Engine::Open(const EngineOptions& options,
                                             std::unique_ptr<Store> store,
                                             std::unique_ptr<Embedder> embedder) {
  DYNSPEC_RETURN_IF_ERROR(ValidateOptions(options));
  if (!store) store = NewMemoryStore();
  if (!embedder) embedder = NewHashingTextEmbedder(options.embed);
  DYNSPEC_ASSIGN_OR_RETURN(RewardFunction reward,
                           RewardFunction::Make(options.reward, options.model.heads));
  auto engine = std::make_unique<EngineImpl>(options, std::move(store), std::move(embedder),
                                             std::move(reward));
  DYNSPEC_RETURN_IF_ERROR(engine->Load());
  // A directory closed for longer than the retention window opens without the ids past it.
  DYNSPEC_RETURN_IF_ERROR(engine->ExpireEventIds(NowUnixMs()).status());
  engine->StartScheduler();
  engine->StartExpirySweep();
  engine->StartSnapshotter();
  return std::unique_ptr<Engine>(std::move(engine));
}

}  // namespace dynspec
