// Plain value types shared by the engine, its storage interface and its callers.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace dynspec {

// Ids are caller-chosen strings so they stay stable across processes and nodes.
using ItemId = std::string;
using ProviderId = std::string;
using EventId = std::string;
// Cluster ids are small integers chosen by the engine; stable across restarts.
using ClusterId = uint32_t;

// The request side of a prediction: optional dense features (exactly
// ModelOptions::dense_dim values, or none) and optional sparse `name -> value` features that
// are hashed with a sign into ModelOptions::sparse_dim slots. A bias is always added.
struct Context {
  std::vector<float> dense;
  std::vector<std::pair<std::string, float>> sparse;
};

// What an item is made of. A non-empty `vector` is a precomputed embedding (for example a
// CLIP vector computed elsewhere) and is used as is, after L2 normalization; otherwise
// `text` is embedded by the engine's embedder.
struct ItemContent {
  std::string text;
  std::vector<float> vector;
};

struct ItemInput {
  ItemId id;
  ProviderId provider;
  ItemContent content;
};

// Observed responses by head name, e.g. {"click": 1, "dwell_seconds": 42}. Heads that were
// not observed are simply absent; their models are not updated.
using Responses = std::map<std::string, double>;

// Per-item model state: for H heads and F context features, `weights` and `sq_grad`
// (AdaGrad accumulators) hold H*F values, head-major. `head_counts[h]` counts observations
// of head h; `evidence` counts feedback events. Empty `weights` means "not yet trained".
struct ModelState {
  std::vector<float> weights;
  std::vector<float> sq_grad;
  std::vector<double> head_counts;
  double evidence = 0;
};

// One term of a blended prediction: which model contributed and with what weight.
struct Contribution {
  enum class Source { kSelf, kNeighbour, kClusterPrior };
  Source source = Source::kNeighbour;
  ItemId item_id;         // empty for the cluster prior
  double similarity = 0;  // cosine similarity to the predicted item (1 for self)
  double evidence = 0;    // feedback events behind that model
  double weight = 0;      // normalized blend weight; all weights of a prediction sum to 1
};

struct Prediction {
  ItemId item_id;             // empty for inline content
  uint64_t item_version = 0;  // the item's model version used (0 for inline content)
  ClusterId cluster = 0;
  // One value per configured head, in ModelOptions::heads order: a probability for binary
  // heads, the predicted target (e.g. log1p seconds) for regression heads.
  std::vector<double> heads;
  std::vector<std::string> head_names;
  double expected_reward = 0;
  std::vector<Contribution> contributions;
};

// Feedback on an item. With the event id of a ranking decision (Engine::Rank), the item is
// one of its slate (may be empty: the first position) and the logged context is used
// (`context` must then be empty); each slate position accepts one feedback.
struct FeedbackEvent {
  EventId event_id;  // optional; when set, a repeated id is rejected (idempotency)
  ItemId item_id;
  Context context;
  Responses responses;
};

struct FeedbackResult {
  double reward = 0;
  uint64_t item_version = 0;           // the item's model version after this update
  bool item_joined_partition = false;  // first feedback: the item became a neighbour
};

// Engine::Rank: a context and the candidates to choose from.
struct RankRequest {
  EventId event_id;  // optional; the engine makes one when empty
  Context context;
  std::vector<ItemId> candidates;
  size_t slate_size = 1;  // positions to fill; 0 ranks every candidate
};

struct RankedItem {
  ItemId item_id;
  double score = 0;        // expected reward from the item's specialized model
  double probability = 0;  // the policy's first-position probability of this item
  double propensity = 0;   // probability it was served at its position, given the ones above
  uint64_t model_version = 0;
};

struct RankResult {
  EventId event_id;               // send it back with the feedback
  std::vector<RankedItem> slate;  // in served order
  int64_t expires_unix_ms = 0;    // feedback after this is too late
};

struct ItemInfo {
  ItemId id;
  ProviderId provider;
  ClusterId cluster = 0;
  bool served = false;  // has feedback, so it is in its cluster's partition
  uint64_t version = 0;
  std::vector<float> embedding;
  ModelState model;
};

struct ProviderInfo {
  ProviderId id;
  ClusterId cluster = 0;
  uint64_t item_count = 0;
};

struct ClusterInfo {
  ClusterId id = 0;
  uint64_t provider_count = 0;
  uint64_t item_count = 0;
  uint64_t served_item_count = 0;  // items in its partition
  double evidence = 0;             // feedback events seen by the cluster model
};

// Shadow-evaluation statistics of one provider: its mean loss when its items are predicted
// by each cluster's blend (decayed; see ReclusterOptions).
struct ClusterLoss {
  ClusterId cluster = 0;
  double mean_loss = 0;
  double evidence = 0;
};
struct ProviderPerformance {
  ProviderId provider;
  ClusterId cluster = 0;
  std::vector<ClusterLoss> losses;
};

struct ProviderMove {
  ProviderId provider;
  ClusterId from = 0;
  ClusterId to = 0;
  double home_loss = 0;    // mean shadow loss in its current cluster
  double target_loss = 0;  // mean shadow loss in the target cluster
  double home_evidence = 0;
  double target_evidence = 0;
  int streak = 0;  // consecutive runs the move has been a candidate
  // Placed by content: too little shadow evidence (ReclusterOptions::min_evidence), moved
  // because its content centroid is closer to the target's performance cluster
  // (target_similarity) than to its current one's (home_similarity), by cosine.
  bool by_content = false;
  double home_similarity = 0;
  double target_similarity = 0;
};

// What one re-clustering run did and why.
struct ReclusterReport {
  int64_t started_unix_seconds = 0;
  double seconds = 0;
  size_t providers_profiled = 0;       // with enough shadow evidence
  size_t providers_skipped = 0;        // too little evidence
  size_t providers_by_content = 0;     // of those, the ones compared by content centroid
  std::vector<ProviderMove> moves;     // applied
  std::vector<ProviderMove> deferred;  // waiting for hysteresis or over the per-run cap
  // Adjusted Rand index between the current assignment and the performance clustering.
  double adjusted_rand_index = 1;
  // Stability between runs: adjusted Rand index of all providers' clusters before and after
  // this run (1 = nothing moved).
  double stability_ari = 1;
  // The dendrogram of the profiled providers in SciPy linkage form: merge i joins a and b
  // (ids < leaves.size() are leaves, leaves.size() + j is merge j) at `distance`.
  std::vector<ProviderId> dendrogram_leaves;
  struct Merge {
    size_t a = 0, b = 0;
    double distance = 0;
    size_t size = 0;
  };
  std::vector<Merge> dendrogram;
  std::vector<ClusterInfo> clusters_after;
};

struct EngineStats {
  uint64_t items = 0;
  uint64_t served_items = 0;
  uint64_t providers = 0;
  uint64_t clusters = 0;
  uint64_t feedback_events = 0;
  // Items that joined their partition on their first feedback (this process), and of those
  // the joins that started from the blend of the item's latest prediction instead of
  // searching again (see Engine::Feedback).
  uint64_t joins = 0;
  uint64_t joins_reusing_prediction = 0;
  // Joins whose HNSW insert linked among the candidates of the search that found the item's
  // neighbours (its prediction's, or the join's own) instead of searching again: where the
  // partition is a graph, hnsw_ef_search >= hnsw_ef_construction, and the item enters only
  // the graph's bottom layer.
  uint64_t joins_linked_among_candidates = 0;
  uint64_t predictions = 0;
  uint64_t rank_decisions = 0;     // made by this process
  uint64_t pending_decisions = 0;  // waiting for feedback now
  uint64_t expired_positions = 0;  // slate positions resolved by expiry (this process)
  uint64_t seen_event_ids = 0;     // event ids remembered for deduplication now
  // Per head (ModelOptions::heads order): the item model's loss on each feedback event
  // before learning from it (progressive validation), as an exponential moving average over
  // about the last 1000 observations of that head; 0 before the first.
  std::vector<double> recent_loss;
  uint64_t ppo_updates = 0;           // PPO-clip updates run (this process)
  double ppo_last_clip_fraction = 0;  // of the latest update
  double ppo_last_loss_before = 0, ppo_last_loss_after = 0;
};

}  // namespace dynspec
