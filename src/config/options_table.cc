#include "config/options_table.h"

#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

namespace dynspec {
namespace {

Status ParseError(const std::string& name, const std::string& text, const char* want) {
  return Status::InvalidArgument("option " + name + ": '" + text + "' is not " + want);
}

template <typename T>
Status ParseNumber(const std::string& name, const std::string& text, T* out) {
  if constexpr (std::is_floating_point_v<T>) {
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size() || errno != 0 || !std::isfinite(v)) {
      return ParseError(name, text, "a finite number");
    }
    *out = static_cast<T>(v);
  } else {
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
    if (text.empty() || ec != std::errc() || p != text.data() + text.size()) {
      return ParseError(name, text, "an integer in range");
    }
  }
  return Status::Ok();
}

std::string Num(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  out.push_back(cur);
  return out;
}

#define DYNSPEC_NUMBER_OPTION(path, help_text)                                                       \
  OptionEntry {                                                                                      \
#path, help_text,                                                                                \
        [](const EngineOptions&                                                                      \
               o) { return Num(double(o.path)); },                                                   \
                                                [](EngineOptions & o,                                \
                                                   const std::string&                                \
                                                       t) { return ParseNumber(#path, t, &o.path); } \
  }

std::vector<OptionEntry> BuildTable() {
  std::vector<OptionEntry> t = {
      DYNSPEC_NUMBER_OPTION(embed.dim, "embedding dimension D of the hashing text embedder"),
      DYNSPEC_NUMBER_OPTION(embed.min_char_ngram, "shortest character n-gram"),
      DYNSPEC_NUMBER_OPTION(embed.max_char_ngram, "longest character n-gram"),
      DYNSPEC_NUMBER_OPTION(embed.char_ngram_weight, "weight of a word's character n-grams"),
      DYNSPEC_NUMBER_OPTION(embed.word_bigram_weight, "weight of word bigrams"),
      DYNSPEC_NUMBER_OPTION(index.hnsw_m, "HNSW graph degree M"),
      DYNSPEC_NUMBER_OPTION(index.hnsw_ef_construction, "HNSW ef at construction"),
      DYNSPEC_NUMBER_OPTION(index.hnsw_ef_search, "HNSW ef at search"),
      DYNSPEC_NUMBER_OPTION(index.exact_search_max_items,
                            "partitions up to this size are searched exactly"),
      DYNSPEC_NUMBER_OPTION(model.dense_dim, "dense context features U_d"),
      DYNSPEC_NUMBER_OPTION(model.sparse_dim, "hashed sparse context slots U_s"),
      DYNSPEC_NUMBER_OPTION(blend.k, "neighbours blended per item"),
      DYNSPEC_NUMBER_OPTION(blend.similarity_temperature,
                            "neighbour weight exp((s-1)/temperature)"),
      DYNSPEC_NUMBER_OPTION(blend.evidence_half, "evidence at which a neighbour has half weight"),
      DYNSPEC_NUMBER_OPTION(blend.cluster_prior_weight, "weight of the cluster model in blends"),
      DYNSPEC_NUMBER_OPTION(blend.self_shrinkage,
                            "own evidence at which the item's own model has half weight"),
      DYNSPEC_NUMBER_OPTION(blend.min_similarity, "neighbours below this cosine are ignored"),
      DYNSPEC_NUMBER_OPTION(learn.learning_rate, "AdaGrad base learning rate"),
      DYNSPEC_NUMBER_OPTION(learn.adagrad_epsilon, "initial AdaGrad accumulator"),
      DYNSPEC_NUMBER_OPTION(learn.l2, "L2 regularization per step"),
      DYNSPEC_NUMBER_OPTION(learn.max_abs_weight, "weights are clipped to +-this"),
      DYNSPEC_NUMBER_OPTION(cluster.initial_clusters, "clusters of the content-only bootstrap"),
      DYNSPEC_NUMBER_OPTION(cluster.kmeans_iterations, "k-means iterations at most"),
      DYNSPEC_NUMBER_OPTION(cluster.seed, "k-means seed"),
      DYNSPEC_NUMBER_OPTION(recluster.shadow_sample_rate,
                            "fraction of feedback events shadow-evaluated in other clusters"),
      DYNSPEC_NUMBER_OPTION(recluster.shadow_max_clusters,
                            "other clusters evaluated per sampled event"),
      DYNSPEC_NUMBER_OPTION(recluster.decay_half_life,
                            "shadow evaluations after which loss statistics weigh half"),
      DYNSPEC_NUMBER_OPTION(recluster.min_evidence,
                            "shadow evaluations needed before a provider x cluster entry counts"),
      DYNSPEC_NUMBER_OPTION(recluster.target_clusters, "performance clusters (0 = current count)"),
      DYNSPEC_NUMBER_OPTION(recluster.distance_threshold,
                            "cut the dendrogram at this distance instead (0 = use the target)"),
      DYNSPEC_NUMBER_OPTION(recluster.move_margin, "relative loss gain a move needs"),
      DYNSPEC_NUMBER_OPTION(recluster.consecutive_runs, "runs in a row a move must win"),
      DYNSPEC_NUMBER_OPTION(recluster.max_moves_per_run, "most providers moved per run"),
      DYNSPEC_NUMBER_OPTION(recluster.content_move_margin,
                            "cosine gain a little-data provider needs to move by content "
                            "(2 = never)"),
      DYNSPEC_NUMBER_OPTION(recluster.period_seconds,
                            "automatic re-clustering period in seconds (0 = on demand only)"),
      DYNSPEC_NUMBER_OPTION(rank.temperature, "softmax temperature of the ranking policy"),
      DYNSPEC_NUMBER_OPTION(rank.epsilon, "uniform exploration floor of the ranking policy"),
      DYNSPEC_NUMBER_OPTION(rank.max_candidates, "most candidates per rank request"),
      DYNSPEC_NUMBER_OPTION(rank.pending_ttl_ms, "how long a ranking decision waits for feedback"),
      DYNSPEC_NUMBER_OPTION(rank.expired_reward, "reward logged for unanswered slate positions"),
      DYNSPEC_NUMBER_OPTION(rank.expiry_check_ms,
                            "period of the expiry sweep in ms (0 = only on demand)"),
      DYNSPEC_NUMBER_OPTION(rank.seed, "seed of the slate sampler"),
      DYNSPEC_NUMBER_OPTION(ppo.clip, "PPO clip range of the probability ratio"),
      DYNSPEC_NUMBER_OPTION(ppo.epochs, "PPO passes over the buffer per update"),
      DYNSPEC_NUMBER_OPTION(ppo.batch_size, "PPO mini-batch size"),
      DYNSPEC_NUMBER_OPTION(ppo.learning_rate, "PPO Adam step size"),
      DYNSPEC_NUMBER_OPTION(ppo.entropy_coef, "PPO entropy bonus weight"),
      DYNSPEC_NUMBER_OPTION(ppo.buffer_events, "resolved ranking decisions per PPO update"),
      DYNSPEC_NUMBER_OPTION(limits.max_id_bytes, "longest accepted id"),
      DYNSPEC_NUMBER_OPTION(limits.max_text_bytes, "longest accepted content text"),
      DYNSPEC_NUMBER_OPTION(limits.max_sparse_features, "most sparse context features"),
      DYNSPEC_NUMBER_OPTION(limits.max_batch_items, "most items per ingest batch"),
      DYNSPEC_NUMBER_OPTION(partition_snapshot_interval_seconds,
                            "changed partitions are snapshotted this often (0 = only at "
                            "shutdown)"),
      DYNSPEC_NUMBER_OPTION(event_id_retention_seconds,
                            "seen event ids are forgotten (accepted again) after this many "
                            "seconds (0 = never)"),
  };
  t.push_back({"model.heads",
               "response heads as name:binary|regression|regression_log1p, comma separated",
               [](const EngineOptions& o) { return FormatHeads(o.model.heads); },
               [](EngineOptions& o, const std::string& text) {
                 DYNSPEC_ASSIGN_OR_RETURN(o.model.heads, ParseHeads(text));
                 return Status::Ok();
               }});
  t.push_back({"index.vector_storage", "float32 or float16 (half the index memory)",
               [](const EngineOptions& o) {
                 return std::string(o.index.vector_storage == VectorStorage::kFloat16 ? "float16"
                                                                                      : "float32");
               },
               [](EngineOptions& o, const std::string& text) {
                 if (text == "float32")
                   o.index.vector_storage = VectorStorage::kFloat32;
                 else if (text == "float16")
                   o.index.vector_storage = VectorStorage::kFloat16;
                 else
                   return ParseError("index.vector_storage", text, "float32 or float16");
                 return Status::Ok();
               }});
  t.push_back({"recluster.linkage", "single, complete or average",
               [](const EngineOptions& o) {
                 switch (o.recluster.linkage) {
                   case Linkage::kSingle:
                     return std::string("single");
                   case Linkage::kComplete:
                     return std::string("complete");
                   case Linkage::kAverage:
                     return std::string("average");
                 }
                 return std::string("average");
               },
               [](EngineOptions& o, const std::string& text) {
                 if (text == "single")
                   o.recluster.linkage = Linkage::kSingle;
                 else if (text == "complete")
                   o.recluster.linkage = Linkage::kComplete;
                 else if (text == "average")
                   o.recluster.linkage = Linkage::kAverage;
                 else
                   return ParseError("recluster.linkage", text, "single, complete or average");
                 return Status::Ok();
               }});
  t.push_back({"rank.policy", "softmax, epsilon_greedy or greedy",
               [](const EngineOptions& o) {
                 switch (o.rank.policy) {
                   case RankPolicy::kSoftmax:
                     return std::string("softmax");
                   case RankPolicy::kEpsilonGreedy:
                     return std::string("epsilon_greedy");
                   case RankPolicy::kGreedy:
                     return std::string("greedy");
                 }
                 return std::string("softmax");
               },
               [](EngineOptions& o, const std::string& text) {
                 if (text == "softmax")
                   o.rank.policy = RankPolicy::kSoftmax;
                 else if (text == "epsilon_greedy")
                   o.rank.policy = RankPolicy::kEpsilonGreedy;
                 else if (text == "greedy")
                   o.rank.policy = RankPolicy::kGreedy;
                 else
                   return ParseError("rank.policy", text, "softmax, epsilon_greedy or greedy");
                 return Status::Ok();
               }});
  t.push_back({"rank.learn_from_expired",
               "true: unanswered slate positions teach 'no response' to the binary heads",
               [](const EngineOptions& o) {
                 return std::string(o.rank.learn_from_expired ? "true" : "false");
               },
               [](EngineOptions& o, const std::string& text) {
                 if (text == "true" || text == "1")
                   o.rank.learn_from_expired = true;
                 else if (text == "false" || text == "0")
                   o.rank.learn_from_expired = false;
                 else
                   return ParseError("rank.learn_from_expired", text, "true or false");
                 return Status::Ok();
               }});
  t.push_back(
      {"learn.supervised",
       "false: feedback takes no supervised step (PPO-clip alone learns); default true",
       [](const EngineOptions& o) { return std::string(o.learn.supervised ? "true" : "false"); },
       [](EngineOptions& o, const std::string& text) {
         if (text == "true" || text == "1")
           o.learn.supervised = true;
         else if (text == "false" || text == "0")
           o.learn.supervised = false;
         else
           return ParseError("learn.supervised", text, "true or false");
         return Status::Ok();
       }});
  t.push_back({"ppo.enabled", "true: fine-tune item models with PPO-clip from ranking rewards",
               [](const EngineOptions& o) { return std::string(o.ppo.enabled ? "true" : "false"); },
               [](EngineOptions& o, const std::string& text) {
                 if (text == "true" || text == "1")
                   o.ppo.enabled = true;
                 else if (text == "false" || text == "0")
                   o.ppo.enabled = false;
                 else
                   return ParseError("ppo.enabled", text, "true or false");
                 return Status::Ok();
               }});
  t.push_back({"rank.decision_log",
               "file that resolved ranking decisions are appended to as JSON lines (empty = none)",
               [](const EngineOptions& o) { return o.rank.decision_log; },
               [](EngineOptions& o, const std::string& text) {
                 o.rank.decision_log = text;
                 return Status::Ok();
               }});
  t.push_back({"partition_snapshot_dir",
               "directory of partition index snapshots, loaded on open and written on close "
               "(empty = rebuild the indexes from the store on every open)",
               [](const EngineOptions& o) { return o.partition_snapshot_dir; },
               [](EngineOptions& o, const std::string& text) {
                 o.partition_snapshot_dir = text;
                 return Status::Ok();
               }});
  t.push_back({"reward", "reward terms as head=weight[@cap], comma separated",
               [](const EngineOptions& o) { return FormatRewardTerms(o.reward); },
               [](EngineOptions& o, const std::string& text) {
                 DYNSPEC_ASSIGN_OR_RETURN(o.reward, ParseRewardTerms(text));
                 return Status::Ok();
               }});
  return t;
}

}  // namespace

const std::vector<OptionEntry>& EngineOptionTable() {
  static const std::vector<OptionEntry> table = BuildTable();  // immutable after first use
  return table;
}

Status SetEngineOption(EngineOptions& options, const std::string& name, const std::string& text) {
  for (const auto& e : EngineOptionTable()) {
    if (e.name == name) return e.set(options, text);
  }
  return Status::NotFound("unknown option '" + name + "'");
}

std::string EngineOptionsToJson(const EngineOptions& options) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& e : EngineOptionTable()) j[e.name] = e.get(options);
  return j.dump(2);
}

Result<std::vector<HeadSpec>> ParseHeads(const std::string& text) {
  std::vector<HeadSpec> heads;
  for (const auto& part : Split(text, ',')) {
    auto kv = Split(part, ':');
    if (kv.size() != 2 || kv[0].empty()) {
      return Status::InvalidArgument("option model.heads: '" + part +
                                     "' is not name:binary|regression|regression_log1p");
    }
    HeadSpec h{kv[0], HeadKind::kBinary, false};
    if (kv[1] == "regression") {
      h.kind = HeadKind::kRegression;
    } else if (kv[1] == "regression_log1p") {
      h.kind = HeadKind::kRegression;
      h.log1p_target = true;
    } else if (kv[1] != "binary") {
      return Status::InvalidArgument("option model.heads: unknown kind '" + kv[1] + "'");
    }
    heads.push_back(h);
  }
  return heads;
}

std::string FormatHeads(const std::vector<HeadSpec>& heads) {
  std::string out;
  for (const auto& h : heads) {
    if (!out.empty()) out += ",";
    out += h.name + ":" +
           (h.kind == HeadKind::kBinary ? "binary"
                                        : (h.log1p_target ? "regression_log1p" : "regression"));
  }
  return out;
}

Result<std::vector<RewardTerm>> ParseRewardTerms(const std::string& text) {
  std::vector<RewardTerm> terms;
  if (text.empty()) return terms;
  for (const auto& part : Split(text, ',')) {
    auto kv = Split(part, '=');
    if (kv.size() != 2 || kv[0].empty()) {
      return Status::InvalidArgument("option reward: '" + part + "' is not head=weight[@cap]");
    }
    RewardTerm t{kv[0], 1, 0};
    auto wc = Split(kv[1], '@');
    DYNSPEC_RETURN_IF_ERROR(ParseNumber("reward." + kv[0], wc[0], &t.weight));
    if (wc.size() == 2) DYNSPEC_RETURN_IF_ERROR(ParseNumber("reward." + kv[0], wc[1], &t.cap));
    if (wc.size() > 2) return Status::InvalidArgument("option reward: '" + part + "' has two caps");
    terms.push_back(t);
  }
  return terms;
}

std::string FormatRewardTerms(const std::vector<RewardTerm>& terms) {
  std::string out;
  for (const auto& t : terms) {
    if (!out.empty()) out += ",";
    out += t.head + "=" + Num(t.weight);
    if (t.cap > 0) out += "@" + Num(t.cap);
  }
  return out;
}

}  // namespace dynspec
