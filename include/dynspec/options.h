// Engine configuration: plain structs with documented defaults. Flags and JSON are parsed
// only at the edges (cli, server); the engine validates a whole EngineOptions in one place
// (ValidateOptions) before it opens.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dynspec/status.h"

namespace dynspec {

enum class HeadKind {
  kBinary,      // p = sigmoid(w . c), log-loss
  kRegression,  // y = w . c, squared loss (on log1p(value) when log1p_target)
};

struct HeadSpec {
  std::string name;
  HeadKind kind = HeadKind::kBinary;
  bool log1p_target = false;  // regression only: learn and predict log1p(value)
};

// The default heads: click, like, share (binary) and dwell_seconds (regression on log1p).
std::vector<HeadSpec> DefaultHeads();

// reward = sum over terms of weight * min(value, cap) (cap <= 0 means no cap).
// For binary heads `value` is the response (observed) or probability (expected); for
// regression heads it is the response in its natural unit (e.g. seconds).
struct RewardTerm {
  std::string head;
  double weight = 1;
  double cap = 0;
};
// 1*click + 2*like + 4*share + 0.02*min(dwell_seconds, 300).
std::vector<RewardTerm> DefaultRewardTerms();

struct EmbedOptions {
  int dim = 256;           // D, the embedding dimension of the default text embedder
  int min_char_ngram = 3;  // character n-grams of each word, with boundary markers
  int max_char_ngram = 5;
  float char_ngram_weight = 0.35f;  // relative to a whole-word feature
  float word_bigram_weight = 0.5f;
  uint64_t seed = 0x9E3779B97F4A7C15ULL;  // changes every hash: vectors are not comparable
};

// How partitions hold item vectors.
enum class VectorStorage {
  kFloat32,
  // IEEE binary16: half the bytes per vector; each similarity is off by about 1e-3 (unit
  // vectors). docs/performance.md measures the effect on recall and log-loss.
  kFloat16,
};

struct IndexOptions {
  VectorStorage vector_storage = VectorStorage::kFloat32;
  int hnsw_m = 16;
  int hnsw_ef_construction = 200;
  int hnsw_ef_search = 64;
  // Partitions with at most this many items are searched exactly (a flat scan is faster
  // than a graph walk at this size and has recall 1). Above it, an HNSW graph is built.
  size_t exact_search_max_items = 2048;
};

struct ModelOptions {
  std::vector<HeadSpec> heads = DefaultHeads();
  int dense_dim = 0;    // U_d: dense context features (0 = none)
  int sparse_dim = 64;  // U_s: hashed sparse context features (0 = none)
};

// How a specialized model is blended for item x (see docs/architecture.md):
//   neighbour weight  r_i = exp((s_i - 1) / similarity_temperature) * n_i / (n_i + evidence_half)
//   cluster prior     r_c = cluster_prior_weight
//   self share        lambda = n_x / (n_x + self_shrinkage)
// The prediction is lambda * p_self + (1 - lambda) * sum_i r_i p_i / sum r.
struct BlendOptions {
  int k = 16;  // neighbours searched in the item's cluster partition
  double similarity_temperature = 0.1;
  double evidence_half = 5;  // evidence at which a neighbour gets half its weight
  double cluster_prior_weight = 0.05;
  double self_shrinkage = 10;   // own evidence at which self takes half the weight
  double min_similarity = 0.0;  // neighbours below this cosine are ignored
};

struct LearnOptions {
  double learning_rate = 0.1;     // AdaGrad base rate
  double adagrad_epsilon = 1e-3;  // initial accumulator (avoids huge first steps)
  double l2 = 1e-5;               // per-step L2 shrinkage applied to touched coordinates
  double max_abs_weight = 20;     // clip weights to keep logits finite
  // false: feedback only counts evidence (the item still joins its partition with a model
  // blended from its neighbours) and takes no supervised step, so PPO-clip (ppo.enabled) is
  // the only learner. For comparing the two; the default learns from every event.
  bool supervised = true;
};

struct ClusterOptions {
  int initial_clusters = 16;  // target of BootstrapClusters when not given
  int kmeans_iterations = 30;
  uint64_t seed = 42;
};

enum class Linkage { kSingle, kComplete, kAverage };

// Re-clustering providers from cross-cluster performance (see src/cluster/recluster.h).
struct ReclusterOptions {
  // Fraction of feedback events that are also predicted, before learning, by the blends of
  // other clusters (shadow evaluation) to fill the provider x cluster loss matrix.
  double shadow_sample_rate = 0.05;
  // Other clusters evaluated per sampled event: all when there are at most this many,
  // otherwise the nearest ones by content centroid.
  int shadow_max_clusters = 8;
  // Loss statistics decay by half every this many shadow evaluations of a provider.
  double decay_half_life = 5000;
  // Shadow evaluations a provider needs in a cluster before that entry counts.
  double min_evidence = 20;
  Linkage linkage = Linkage::kAverage;
  // Target number of performance clusters (0: the current number of clusters).
  int target_clusters = 0;
  // > 0: cut the dendrogram at this linkage distance instead (like SciPy's fcluster with
  // criterion 'distance'; the unit is the profile's loss difference), so the number of
  // performance clusters follows the data; target_clusters is then ignored.
  double distance_threshold = 0;
  // A move needs target loss <= home loss * (1 - move_margin) ...
  double move_margin = 0.02;
  // ... in this many consecutive runs (hysteresis) ...
  int consecutive_runs = 2;
  // ... and at most this many providers move per run (largest gain first).
  int max_moves_per_run = 50;
  // Providers with fewer than min_evidence shadow evaluations at home are placed by content
  // instead: one becomes a move candidate (same hysteresis and cap, after the evidence-backed
  // candidates) for the cluster whose performance cluster's content centroid is most similar
  // to its own, when that cosine similarity exceeds the one of its current cluster's by more
  // than this (absolute, in [0, 2]; 2 turns content placement off). See docs/clustering.md.
  double content_move_margin = 0.05;
  // The engine runs re-clustering by itself every period (0: only on demand).
  int64_t period_seconds = 86400;
};

enum class RankPolicy { kSoftmax, kEpsilonGreedy, kGreedy };

// Engine::Rank: how a slate is chosen and how long its decision waits for feedback.
struct RankOptions {
  // softmax: p ~ exp(score / temperature), mixed with epsilon / n; epsilon_greedy: the best
  // candidate gets 1 - epsilon (shared among ties), everyone epsilon / n; greedy: the best.
  RankPolicy policy = RankPolicy::kSoftmax;
  double temperature = 0.1;  // in units of expected reward
  double epsilon = 0.05;     // uniform exploration floor
  size_t max_candidates = 1000;
  // A decision waits this long for feedback; then its unanswered positions resolve with
  // `expired_reward` (users who never respond) and leave the pending set.
  int64_t pending_ttl_ms = 3600 * 1000;
  double expired_reward = 0;
  // Expired positions also teach the supervised learner "no response": every binary head
  // observed 0. Off: they only close the decision (and its logged reward).
  bool learn_from_expired = true;
  // How often the engine looks for expired decisions by itself (0: only ExpireDecisions).
  int64_t expiry_check_ms = 1000;
  // Resolved decisions are appended here as JSON lines (docs/learning.md) for off-policy
  // evaluation; empty: not logged.
  std::string decision_log;
  uint64_t seed = 7;  // the slate sampler's random stream
};

// PPO-clip fine-tuning of the item models from ranking rewards (src/learn/ppo_blend.h,
// docs/learning.md). Each resolved ranking decision (its first slate position) joins a
// buffer; a full buffer runs `epochs` passes of mini-batches over it, and the gradients flow
// into the blended models of every candidate. The policy is the ranking softmax of
// RankOptions (temperature, epsilon). Coexists with the supervised learner, which always
// learns from the feedback itself. Defaults after Stable Baselines3.
struct PpoTuneOptions {
  bool enabled = false;
  double clip = 0.2;
  int epochs = 10;
  size_t batch_size = 64;
  double learning_rate = 3e-4;
  double entropy_coef = 0.0;
  size_t buffer_events = 256;  // resolved decisions per update
};

struct LimitOptions {
  size_t max_id_bytes = 256;
  size_t max_text_bytes = 1 << 20;
  size_t max_sparse_features = 4096;
  size_t max_batch_items = 10000;
};

struct EngineOptions {
  EmbedOptions embed;
  IndexOptions index;
  ModelOptions model;
  BlendOptions blend;
  LearnOptions learn;
  std::vector<RewardTerm> reward = DefaultRewardTerms();
  ClusterOptions cluster;
  ReclusterOptions recluster;
  RankOptions rank;
  PpoTuneOptions ppo;
  LimitOptions limits;
  // Directory of partition snapshots (cluster-<id>.part, see src/index/partition.h); empty:
  // none. When set, every change of a partition (an item joining at its first feedback, a
  // move, a re-embedding, a removal) is logged in the store with the write that makes it,
  // and Engine::Open loads each cluster's snapshot and replays the changes logged since, in
  // their order, so the index is the one the engine had before (also after kill -9: search
  // results are identical); it rebuilds a cluster from the store, in store order, when its
  // snapshot is missing, damaged, of another format or built with other index settings (one
  // line on stderr names the file and the reason). The engine writes the snapshots that
  // changed every partition_snapshot_interval_seconds, on SnapshotPartitions() and when it
  // is destroyed, and then drops the logged changes they hold. The directory is created
  // when needed.
  std::string partition_snapshot_dir;
  // How often changed partitions are snapshotted while the engine runs (0 = only on
  // SnapshotPartitions() and at shutdown). Bounds the change log, and the replay an open
  // after a crash does, to the changes of one interval. Default 5 minutes.
  int64_t partition_snapshot_interval_seconds = 300;
  // How long a seen feedback event id (and a resolved ranking decision's id) is remembered,
  // so that a repeated id is refused as AlreadyExists; after it the id is forgotten, in memory
  // and in the store, and the same id is accepted again as a new event. Ids are stored with
  // the time they were seen, so the window survives a restart; they are forgotten on open and
  // by the engine's expiry sweep (every rank.expiry_check_ms). 0 = remember forever (memory
  // and disk then grow with every event id). Too short a window lets a client's retry or a
  // replayed log that arrives later than this be learned twice. Default 7 days.
  int64_t event_id_retention_seconds = 7 * 86400;
};

// Checks every field; the message names the first bad one, e.g. "blend.k must be >= 1".
Status ValidateOptions(const EngineOptions& options);

}  // namespace dynspec
