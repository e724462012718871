#include "dynspec/options.h"

#include <cmath>
#include <set>

namespace dynspec {

std::vector<HeadSpec> DefaultHeads() {
  return {{"click", HeadKind::kBinary, false},
          {"like", HeadKind::kBinary, false},
          {"share", HeadKind::kBinary, false},
          {"dwell_seconds", HeadKind::kRegression, true}};
}

std::vector<RewardTerm> DefaultRewardTerms() {
  return {{"click", 1, 0}, {"like", 2, 0}, {"share", 4, 0}, {"dwell_seconds", 0.02, 300}};
}

namespace {
Status Bad(const std::string& field, const std::string& rule) {
  return Status::InvalidArgument(field + " " + rule);
}
bool Positive(double v) { return std::isfinite(v) && v > 0; }
}  // namespace

Status ValidateOptions(const EngineOptions& o) {
  if (o.embed.dim < 2 || o.embed.dim > 65536) return Bad("embed.dim", "must be in [2, 65536]");
  if (o.embed.min_char_ngram < 1 || o.embed.max_char_ngram < o.embed.min_char_ngram ||
      o.embed.max_char_ngram > 16) {
    return Bad("embed.min_char_ngram/max_char_ngram", "must satisfy 1 <= min <= max <= 16");
  }
  if (!(o.embed.char_ngram_weight >= 0) || !(o.embed.word_bigram_weight >= 0)) {
    return Bad("embed.*_weight", "must be finite and >= 0");
  }
  if (o.index.hnsw_m < 2 || o.index.hnsw_m > 256) return Bad("index.hnsw_m", "must be in [2, 256]");
  if (o.index.hnsw_ef_construction < 1) return Bad("index.hnsw_ef_construction", "must be >= 1");
  if (o.index.hnsw_ef_search < 1) return Bad("index.hnsw_ef_search", "must be >= 1");
  if (o.model.heads.empty()) return Bad("model.heads", "must name at least one head");
  std::set<std::string> names;
  for (const auto& h : o.model.heads) {
    if (h.name.empty()) return Bad("model.heads", "has a head with an empty name");
    if (!names.insert(h.name).second) return Bad("model.heads", "names '" + h.name + "' twice");
    if (h.log1p_target && h.kind != HeadKind::kRegression) {
      return Bad("model.heads." + h.name + ".log1p_target", "is only valid for regression heads");
    }
  }
  if (o.model.dense_dim < 0 || o.model.dense_dim > 65536) {
    return Bad("model.dense_dim", "must be in [0, 65536]");
  }
  if (o.model.sparse_dim < 0 || o.model.sparse_dim > (1 << 22)) {
    return Bad("model.sparse_dim", "must be in [0, 4194304]");
  }
  if (o.blend.k < 1 || o.blend.k > 1024) return Bad("blend.k", "must be in [1, 1024]");
  if (!Positive(o.blend.similarity_temperature)) {
    return Bad("blend.similarity_temperature", "must be > 0");
  }
  if (!Positive(o.blend.evidence_half)) return Bad("blend.evidence_half", "must be > 0");
  if (!(o.blend.cluster_prior_weight >= 0) || !std::isfinite(o.blend.cluster_prior_weight)) {
    return Bad("blend.cluster_prior_weight", "must be finite and >= 0");
  }
  if (!Positive(o.blend.self_shrinkage)) return Bad("blend.self_shrinkage", "must be > 0");
  if (!(o.blend.min_similarity >= -1 && o.blend.min_similarity <= 1)) {
    return Bad("blend.min_similarity", "must be in [-1, 1]");
  }
  if (!Positive(o.learn.learning_rate)) return Bad("learn.learning_rate", "must be > 0");
  if (!Positive(o.learn.adagrad_epsilon)) return Bad("learn.adagrad_epsilon", "must be > 0");
  if (!(o.learn.l2 >= 0) || !std::isfinite(o.learn.l2)) return Bad("learn.l2", "must be >= 0");
  if (!Positive(o.learn.max_abs_weight)) return Bad("learn.max_abs_weight", "must be > 0");
  for (const auto& t : o.reward) {
    if (!names.count(t.head)) return Bad("reward", "names unknown head '" + t.head + "'");
    if (!std::isfinite(t.weight) || !std::isfinite(t.cap)) {
      return Bad("reward." + t.head, "weight and cap must be finite");
    }
  }
  if (o.cluster.initial_clusters < 1) return Bad("cluster.initial_clusters", "must be >= 1");
  if (o.cluster.kmeans_iterations < 1) return Bad("cluster.kmeans_iterations", "must be >= 1");
  const auto& r = o.recluster;
  if (!(r.shadow_sample_rate >= 0 && r.shadow_sample_rate <= 1)) {
    return Bad("recluster.shadow_sample_rate", "must be in [0, 1]");
  }
  if (r.shadow_max_clusters < 0) return Bad("recluster.shadow_max_clusters", "must be >= 0");
  if (!Positive(r.decay_half_life)) return Bad("recluster.decay_half_life", "must be > 0");
  if (!(r.min_evidence >= 0) || !std::isfinite(r.min_evidence)) {
    return Bad("recluster.min_evidence", "must be >= 0");
  }
  if (r.target_clusters < 0) return Bad("recluster.target_clusters", "must be >= 0");
  if (!(r.distance_threshold >= 0 && std::isfinite(r.distance_threshold))) {
    return Bad("recluster.distance_threshold", "must be finite and >= 0");
  }
  if (!(r.move_margin >= 0 && r.move_margin < 1)) {
    return Bad("recluster.move_margin", "must be in [0, 1)");
  }
  if (r.consecutive_runs < 1) return Bad("recluster.consecutive_runs", "must be >= 1");
  if (r.max_moves_per_run < 0) return Bad("recluster.max_moves_per_run", "must be >= 0");
  if (!(r.content_move_margin >= 0 && r.content_move_margin <= 2)) {
    return Bad("recluster.content_move_margin", "must be in [0, 2] (2 turns it off)");
  }
  if (r.period_seconds < 0) return Bad("recluster.period_seconds", "must be >= 0");
  const RankOptions& k = o.rank;
  if (!(k.temperature > 0 && std::isfinite(k.temperature))) {
    return Bad("rank.temperature", "must be finite and > 0");
  }
  if (!(k.epsilon >= 0 && k.epsilon <= 1)) return Bad("rank.epsilon", "must be in [0, 1]");
  if (k.max_candidates < 1 || k.max_candidates > 100000) {
    return Bad("rank.max_candidates", "must be in [1, 100000]");
  }
  if (k.pending_ttl_ms < 1) return Bad("rank.pending_ttl_ms", "must be >= 1");
  if (!std::isfinite(k.expired_reward)) return Bad("rank.expired_reward", "must be finite");
  if (k.expiry_check_ms < 0) return Bad("rank.expiry_check_ms", "must be >= 0");
  const PpoTuneOptions& ppo = o.ppo;
  if (!(ppo.clip > 0 && std::isfinite(ppo.clip))) return Bad("ppo.clip", "must be finite and > 0");
  if (ppo.epochs < 1 || ppo.epochs > 1000) return Bad("ppo.epochs", "must be in [1, 1000]");
  if (ppo.batch_size < 1) return Bad("ppo.batch_size", "must be >= 1");
  if (!(ppo.learning_rate > 0 && std::isfinite(ppo.learning_rate))) {
    return Bad("ppo.learning_rate", "must be finite and > 0");
  }
  if (!(ppo.entropy_coef >= 0 && std::isfinite(ppo.entropy_coef))) {
    return Bad("ppo.entropy_coef", "must be finite and >= 0");
  }
  if (ppo.buffer_events < 1) return Bad("ppo.buffer_events", "must be >= 1");
  // Up to 100 years: the window in milliseconds must fit in 64 bits with room to spare.
  if (o.event_id_retention_seconds < 0 || o.event_id_retention_seconds > 3'155'760'000) {
    return Bad("event_id_retention_seconds", "must be in [0, 3155760000] (0 = forever)");
  }
  if (o.partition_snapshot_interval_seconds < 0 ||
      o.partition_snapshot_interval_seconds > 31'536'000) {
    return Bad("partition_snapshot_interval_seconds", "must be in [0, 31536000] (0 = off)");
  }
  if (o.limits.max_id_bytes < 1 || o.limits.max_text_bytes < 1 || o.limits.max_batch_items < 1) {
    return Bad("limits", "must all be >= 1");
  }
  return Status::Ok();
}

}  // namespace dynspec
