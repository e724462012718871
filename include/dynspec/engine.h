// dynspec::Engine: the dynamic model specialization loop behind one thread-safe facade.
//
// For an item x of provider p in cluster c the engine
//   1. embeds x (or takes its precomputed vector),
//   2. finds the k nearest items already served in c's partition (cosine similarity),
//   3. blends their models with the cluster's shared model, weighted by similarity and
//      evidence, into a model specialized for x (x's own model, once it has feedback, is its
//      own nearest neighbour and takes a growing share as its evidence grows),
//   4. predicts every configured head and the expected reward,
//   5. learns online from feedback (AdaGrad on each head) and writes x's model back into
//      c's partition, so that x serves as a neighbour for later items.
//
// Thread safety: every public method may be called concurrently from many threads.
// Predictions run under shared locks and never block each other; feedback on different
// items proceeds in parallel (one lock per item); ingest, removal and cluster changes take
// a short exclusive lock on the catalog.
//
// Failure: methods return a Status naming the problem (wrong dimension, NaN/Inf, unknown
// id, ...). A failed call changes nothing. Every acknowledged change has been committed to
// the Store before the call returns.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dynspec/embedder.h"
#include "dynspec/options.h"
#include "dynspec/status.h"
#include "dynspec/store.h"
#include "dynspec/types.h"

namespace dynspec {

struct PredictRequest {
  // Either a known item id, or inline content of an item that is not stored (then
  // `inline_provider` chooses the cluster; an unknown provider gets the nearest cluster).
  ItemId item_id;
  std::optional<ItemContent> inline_content;
  ProviderId inline_provider;
  Context context;
};

class Engine {
 public:
  // Opens an engine over `store` (a memory store when null) with `embedder` (the hashing
  // text embedder from options.embed when null) and loads whatever the store holds.
  static Result<std::unique_ptr<Engine>> Open(const EngineOptions& options,
                                              std::unique_ptr<Store> store = nullptr,
                                              std::unique_ptr<Embedder> embedder = nullptr);
  virtual ~Engine() = default;

  // Adds a new item. AlreadyExists if the id is taken. A new provider joins the cluster
  // whose content centroid is nearest to this item. The item joins its partition (becomes a
  // neighbour for others) at its first feedback.
  virtual Status Ingest(const ItemInput& item) = 0;
  // All or nothing: every item is validated and embedded before any is added.
  virtual Status IngestBatch(const std::vector<ItemInput>& items) = 0;
  // Re-embeds an existing item from new content; its model and evidence are kept.
  virtual Status UpdateContent(const ItemId& id, const ItemContent& content) = 0;
  virtual Status Remove(const ItemId& id) = 0;

  virtual Result<Prediction> Predict(const PredictRequest& request) const = 0;
  // Learns from one feedback event on a known item. On an item's first feedback its model
  // starts as the parameter blend of its neighbours and its cluster model, and the item
  // joins its partition. That blend is the one the item's latest prediction made, when one
  // was made in this process since the last removal, re-embedding or provider move in its
  // cluster and the partition has grown by at most 1% or k items since (so the item
  // fine-tunes the model its prediction came from); else it is searched and blended anew.
  // The item's index insert links among the candidates of that same search where the
  // partition is a graph and index.hnsw_ef_search >= index.hnsw_ef_construction, instead of
  // searching the graph again (EngineStats::joins_linked_among_candidates).
  virtual Result<FeedbackResult> Feedback(const FeedbackEvent& event) = 0;

  // Scores every candidate by its expected reward, chooses a slate with the exploration
  // policy of options.rank, and durably records the decision (context, candidates, scores,
  // propensities, model versions, blend weights) until feedback answers it or it expires.
  // NotFound for an unknown candidate, InvalidArgument for duplicates, too many candidates,
  // a slate larger than the candidates, or a bad context; AlreadyExists for a used event id.
  virtual Result<RankResult> Rank(const RankRequest& request) = 0;
  // Resolves every decision that expired at or before `now_unix_ms`: unanswered positions
  // get options.rank.expired_reward (and, with learn_from_expired, a "no response" update).
  // Runs by itself every options.rank.expiry_check_ms. Returns the decisions resolved.
  virtual Result<size_t> ExpireDecisions(int64_t now_unix_ms) = 0;
  // Forgets the seen event ids older than options.event_id_retention_seconds at
  // `now_unix_ms` (nothing when it is 0), in memory and in the store, so that the same id is
  // accepted again. Runs by itself on open and every options.rank.expiry_check_ms. Returns
  // the ids forgotten. An id being forgotten right now is refused (AlreadyExists) until the
  // store has dropped it, so a restart can never resurrect an id accepted again meanwhile.
  virtual Result<size_t> ExpireEventIds(int64_t now_unix_ms) = 0;

  // Replaces the reward function; models are untouched.
  virtual Status SetRewardTerms(const std::vector<RewardTerm>& terms) = 0;
  virtual std::vector<RewardTerm> RewardTerms() const = 0;

  // Initial cluster assignment from content alone: spherical k-means on the providers'
  // content centroids into `target_clusters` clusters (options.cluster.initial_clusters
  // when 0). FailedPrecondition once any feedback has been learned (use re-clustering).
  virtual Status BootstrapClusters(int target_clusters = 0) = 0;
  // Moves a provider and its items (with their models) to another cluster, creating the
  // cluster if it does not exist. The seam for performance-based re-clustering.
  virtual Status MoveProvider(const ProviderId& provider, ClusterId cluster) = 0;

  // Re-clusters providers from cross-cluster performance (see ReclusterOptions and
  // src/cluster/recluster.h) and moves those that do consistently better elsewhere. Runs
  // also every recluster.period_seconds by itself. One run at a time.
  virtual Result<ReclusterReport> Recluster() = 0;
  // The shadow-evaluation statistics behind re-clustering.
  virtual std::vector<ProviderPerformance> Performance() const = 0;

  // Writes a consistent copy of the engine's durable state into `dir` (which must not
  // exist) while the engine keeps serving; Engine::Open over that copy restores it. With
  // partition snapshots configured, also writes every partition's snapshot into
  // `dir`/partitions (where the dynspec command keeps them), so the copy opens without
  // rebuilding its indexes. FailedPrecondition for a memory store.
  virtual Status Backup(const std::string& dir) = 0;

  // Writes every partition's snapshot (cluster-<id>.part) into
  // options().partition_snapshot_dir, each atomically (temporary file, fsync, rename), so
  // that the next Engine::Open need not rebuild the indexes. Safe while serving: each
  // partition is serialized under its shared lock (searches go on; writes to that partition
  // wait) and structural changes (ingest, removal, provider moves) wait until it is done.
  // A snapshot may be older than the store (writes after it, a crash before the next one):
  // Open replays the partition changes logged since (see
  // EngineOptions::partition_snapshot_dir), and once a snapshot is written the logged
  // changes it holds are dropped. The destructor, and a background thread every
  // options().partition_snapshot_interval_seconds, write the partitions that changed since
  // they were loaded or last written (a read-only session rewrites nothing).
  // FailedPrecondition when no directory is configured.
  virtual Status SnapshotPartitions() = 0;

  virtual Result<ItemInfo> GetItem(const ItemId& id) const = 0;
  virtual Result<ProviderInfo> GetProvider(const ProviderId& id) const = 0;
  virtual std::vector<ClusterInfo> ListClusters() const = 0;
  virtual EngineStats Stats() const = 0;
  virtual const EngineOptions& options() const = 0;
  virtual int embedding_dim() const = 0;
};

}  // namespace dynspec
