#include "server/api.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "engine/report_json.h"

namespace dynspec::server {
namespace {

using nlohmann::json;

Status FieldError(const std::string& path, const std::string& what) {
  return Status::InvalidArgument(path + ": " + what);
}

std::string Join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

// Reads the fields of one JSON object and remembers which were read, so that unknown
// fields (usually typos such as "respones") are refused instead of silently ignored.
class Fields {
 public:
  Fields(const json& object, std::string path) : object_(object), path_(std::move(path)) {}

  // Present and not null.
  bool Has(const std::string& name) const {
    auto it = object_.find(name);
    return it != object_.end() && !it->is_null();
  }
  const json* Get(const std::string& name) {
    seen_.insert(name);
    auto it = object_.find(name);
    return it == object_.end() || it->is_null() ? nullptr : &*it;
  }
  std::string Path(const std::string& name) const { return Join(path_, name); }

  Result<std::string> String(const std::string& name, bool required, size_t max_bytes) {
    const json* v = Get(name);
    if (v == nullptr) {
      if (required) return FieldError(Path(name), "is required");
      return std::string();
    }
    if (!v->is_string()) return FieldError(Path(name), "must be a string");
    const auto& s = v->get_ref<const std::string&>();
    if (s.size() > max_bytes) {
      return FieldError(Path(name), "is " + std::to_string(s.size()) + " bytes, limit is " +
                                        std::to_string(max_bytes));
    }
    return s;
  }

  Status NoOthers() const {
    for (const auto& [key, value] : object_.items()) {
      if (!seen_.count(key)) return FieldError(Path(key), "is not a known field");
    }
    return Status::Ok();
  }

 private:
  const json& object_;
  std::string path_;
  std::set<std::string> seen_;
};

Result<double> Number(const json& v, const std::string& path) {
  if (!v.is_number()) return FieldError(path, "must be a number");
  const double d = v.get<double>();
  if (!std::isfinite(d)) return FieldError(path, "must be a finite number");
  return d;
}

Result<std::vector<float>> FloatArray(const json& v, const std::string& path, size_t max_values) {
  if (!v.is_array()) return FieldError(path, "must be an array of numbers");
  if (v.size() > max_values) {
    return FieldError(path, "has " + std::to_string(v.size()) + " values, limit is " +
                                std::to_string(max_values));
  }
  std::vector<float> out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string p = path + "[" + std::to_string(i) + "]";
    DYNSPEC_ASSIGN_OR_RETURN(double d, Number(v[i], p));
    if (std::abs(d) > 3.4e38) return FieldError(p, "is out of float range");
    out.push_back(static_cast<float>(d));
  }
  return out;
}

Result<json> ParseObject(std::string_view body, const ApiLimits& limits) {
  DYNSPEC_RETURN_IF_ERROR(CheckBodyShape(body, limits));
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::InvalidArgument("body: is not valid JSON");
  if (!j.is_object()) return Status::InvalidArgument("body: must be a JSON object");
  return j;
}

// {"dense": [num], "sparse": {name: num}}
Result<Context> DecodeContext(const json* v, const std::string& path, const ApiLimits& limits) {
  Context c;
  if (v == nullptr) return c;
  if (!v->is_object()) return FieldError(path, "must be an object");
  Fields f(*v, path);
  if (const json* dense = f.Get("dense")) {
    DYNSPEC_ASSIGN_OR_RETURN(c.dense,
                             FloatArray(*dense, f.Path("dense"), limits.max_vector_values));
  }
  if (const json* sparse = f.Get("sparse")) {
    if (!sparse->is_object()) return FieldError(f.Path("sparse"), "must be an object of numbers");
    for (const auto& [name, value] : sparse->items()) {
      DYNSPEC_ASSIGN_OR_RETURN(double d, Number(value, f.Path("sparse") + "." + name));
      c.sparse.emplace_back(name, static_cast<float>(d));
    }
  }
  DYNSPEC_RETURN_IF_ERROR(f.NoOthers());
  return c;
}

// text or vector, exactly one.
Result<ItemContent> DecodeContent(Fields& f, const ApiLimits& limits) {
  ItemContent content;
  const bool has_text = f.Has("text"), has_vector = f.Has("vector");
  if (has_text == has_vector) {
    return FieldError(f.Path("text"), "give exactly one of text and vector");
  }
  if (has_text) {
    DYNSPEC_ASSIGN_OR_RETURN(content.text, f.String("text", true, limits.max_body_bytes));
  } else {
    DYNSPEC_ASSIGN_OR_RETURN(
        content.vector, FloatArray(*f.Get("vector"), f.Path("vector"), limits.max_vector_values));
  }
  return content;
}

Result<ItemInput> DecodeItemObject(const json& v, const std::string& path, std::string id,
                                   const ApiLimits& limits) {
  if (!v.is_object()) return FieldError(path.empty() ? "body" : path, "must be an object");
  Fields f(v, path);
  ItemInput item;
  if (id.empty()) {
    DYNSPEC_ASSIGN_OR_RETURN(item.id, f.String("id", true, limits.max_body_bytes));
  } else {
    item.id = std::move(id);
  }
  DYNSPEC_ASSIGN_OR_RETURN(item.provider, f.String("provider", true, limits.max_body_bytes));
  DYNSPEC_ASSIGN_OR_RETURN(item.content, DecodeContent(f, limits));
  DYNSPEC_RETURN_IF_ERROR(f.NoOthers());
  return item;
}

std::string Dump(const json& j) {
  // Ids are arbitrary bytes to the engine; invalid UTF-8 is replaced in responses.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

const char* SourceName(Contribution::Source s) {
  switch (s) {
    case Contribution::Source::kSelf:
      return "self";
    case Contribution::Source::kNeighbour:
      return "neighbour";
    case Contribution::Source::kClusterPrior:
      return "cluster_prior";
  }
  return "neighbour";
}

}  // namespace

Status CheckBodyShape(std::string_view body, const ApiLimits& limits) {
  if (body.size() > limits.max_body_bytes) {
    return Status::ResourceExhausted("body: is " + std::to_string(body.size()) +
                                     " bytes, limit is " + std::to_string(limits.max_body_bytes));
  }
  size_t depth = 0;
  bool in_string = false, escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limits.max_json_depth) {
        return Status::InvalidArgument("body: nests deeper than " +
                                       std::to_string(limits.max_json_depth) + " levels");
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return Status::Ok();
}

Result<ItemInput> DecodeItemPut(std::string_view id, std::string_view body,
                                const ApiLimits& limits) {
  if (id.empty()) return FieldError("id", "is empty");
  DYNSPEC_ASSIGN_OR_RETURN(json j, ParseObject(body, limits));
  if (j.contains("id")) {
    if (!j["id"].is_string() || j["id"].get<std::string>() != id) {
      return FieldError("id", "must be absent or equal the id in the path");
    }
    j.erase("id");
  }
  return DecodeItemObject(j, "", std::string(id), limits);
}

Result<std::vector<ItemInput>> DecodeItemBatch(std::string_view body, const ApiLimits& limits) {
  DYNSPEC_ASSIGN_OR_RETURN(json j, ParseObject(body, limits));
  Fields f(j, "");
  const json* items = f.Get("items");
  if (items == nullptr) return FieldError("items", "is required");
  if (!items->is_array()) return FieldError("items", "must be an array");
  if (items->empty()) return FieldError("items", "is empty");
  if (items->size() > limits.max_batch_items) {
    return FieldError("items", "has " + std::to_string(items->size()) + " items, limit is " +
                                   std::to_string(limits.max_batch_items));
  }
  DYNSPEC_RETURN_IF_ERROR(f.NoOthers());
  std::vector<ItemInput> out;
  for (size_t i = 0; i < items->size(); ++i) {
    DYNSPEC_ASSIGN_OR_RETURN(
        ItemInput item,
        DecodeItemObject((*items)[i], "items[" + std::to_string(i) + "]", "", limits));
    out.push_back(std::move(item));
  }
  return out;
}

Result<PredictRequest> DecodePredict(std::string_view body, const ApiLimits& limits) {
  DYNSPEC_ASSIGN_OR_RETURN(json j, ParseObject(body, limits));
  Fields f(j, "");
  PredictRequest r;
  DYNSPEC_ASSIGN_OR_RETURN(r.item_id, f.String("item_id", false, limits.max_body_bytes));
  if (const json* content = f.Get("content")) {
    if (!r.item_id.empty()) return FieldError("content", "give either item_id or content");
    if (!content->is_object()) return FieldError("content", "must be an object");
    Fields c(*content, "content");
    DYNSPEC_ASSIGN_OR_RETURN(ItemContent ic, DecodeContent(c, limits));
    DYNSPEC_RETURN_IF_ERROR(c.NoOthers());
    r.inline_content = std::move(ic);
    DYNSPEC_ASSIGN_OR_RETURN(r.inline_provider, f.String("provider", true, limits.max_body_bytes));
  } else if (r.item_id.empty()) {
    return FieldError("item_id", "is required (or give content and provider)");
  }
  DYNSPEC_ASSIGN_OR_RETURN(r.context, DecodeContext(f.Get("context"), "context", limits));
  DYNSPEC_RETURN_IF_ERROR(f.NoOthers());
  return r;
}

Result<RankRequest> DecodeRank(std::string_view body, const ApiLimits& limits) {
  DYNSPEC_ASSIGN_OR_RETURN(json j, ParseObject(body, limits));
  Fields f(j, "");
  RankRequest r;
  DYNSPEC_ASSIGN_OR_RETURN(r.event_id, f.String("event_id", false, limits.max_body_bytes));
  const json* candidates = f.Get("candidates");
  if (candidates == nullptr) return FieldError("candidates", "is required");
  if (!candidates->is_array()) return FieldError("candidates", "must be an array of item ids");
  if (candidates->size() > limits.max_candidates) {
    return FieldError("candidates", "has " + std::to_string(candidates->size()) +
                                        " items, limit is " +
                                        std::to_string(limits.max_candidates));
  }
  for (size_t i = 0; i < candidates->size(); ++i) {
    if (!(*candidates)[i].is_string()) {
      return FieldError("candidates[" + std::to_string(i) + "]", "must be a string");
    }
    r.candidates.push_back((*candidates)[i].get<std::string>());
  }
  if (const json* size = f.Get("slate_size")) {
    if (!size->is_number_integer() || size->get<int64_t>() < 0) {
      return FieldError("slate_size", "must be an integer >= 0");
    }
    r.slate_size = static_cast<size_t>(size->get<int64_t>());
  }
  DYNSPEC_ASSIGN_OR_RETURN(r.context, DecodeContext(f.Get("context"), "context", limits));
  DYNSPEC_RETURN_IF_ERROR(f.NoOthers());
  return r;
}

Result<FeedbackEvent> DecodeFeedback(std::string_view body, const ApiLimits& limits) {
  DYNSPEC_ASSIGN_OR_RETURN(json j, ParseObject(body, limits));
  Fields f(j, "");
  FeedbackEvent e;
  DYNSPEC_ASSIGN_OR_RETURN(e.event_id, f.String("event_id", false, limits.max_body_bytes));
  DYNSPEC_ASSIGN_OR_RETURN(e.item_id, f.String("item_id", false, limits.max_body_bytes));
  if (e.event_id.empty() && e.item_id.empty()) {
    return FieldError("item_id", "is required unless event_id names a ranking decision");
  }
  const json* responses = f.Get("responses");
  if (responses == nullptr) return FieldError("responses", "is required");
  if (!responses->is_object() || responses->empty()) {
    return FieldError("responses", "must be a non-empty object of head: number");
  }
  for (const auto& [head, value] : responses->items()) {
    DYNSPEC_ASSIGN_OR_RETURN(e.responses[head], Number(value, "responses." + head));
  }
  DYNSPEC_ASSIGN_OR_RETURN(e.context, DecodeContext(f.Get("context"), "context", limits));
  DYNSPEC_RETURN_IF_ERROR(f.NoOthers());
  return e;
}

Result<std::string> DecodeBackup(std::string_view body, const ApiLimits& limits) {
  DYNSPEC_ASSIGN_OR_RETURN(json j, ParseObject(body, limits));
  Fields f(j, "");
  DYNSPEC_ASSIGN_OR_RETURN(std::string dir, f.String("dir", true, 4096));
  if (dir.empty()) return FieldError("dir", "is empty");
  DYNSPEC_RETURN_IF_ERROR(f.NoOthers());
  return dir;
}

std::string EncodeItem(const ItemInfo& item, bool with_embedding) {
  json j = {{"id", item.id},           {"provider", item.provider},
            {"cluster", item.cluster}, {"served", item.served},
            {"version", item.version}, {"evidence", item.model.evidence}};
  if (with_embedding) j["embedding"] = item.embedding;
  return Dump(j);
}

std::string EncodePrediction(const Prediction& p) {
  json heads = json::object();
  for (size_t h = 0; h < p.heads.size(); ++h) heads[p.head_names[h]] = p.heads[h];
  json neighbours = json::array();
  for (const auto& c : p.contributions) {
    neighbours.push_back({{"source", SourceName(c.source)},
                          {"item_id", c.item_id},
                          {"similarity", c.similarity},
                          {"evidence", c.evidence},
                          {"weight", c.weight}});
  }
  return Dump({{"item_id", p.item_id},
               {"item_version", p.item_version},
               {"cluster", p.cluster},
               {"heads", heads},
               {"expected_reward", p.expected_reward},
               {"blend", neighbours}});
}

std::string EncodeRank(const RankResult& r) {
  json slate = json::array();
  for (const auto& s : r.slate) {
    slate.push_back({{"item_id", s.item_id},
                     {"score", s.score},
                     {"probability", s.probability},
                     {"propensity", s.propensity},
                     {"model_version", s.model_version}});
  }
  return Dump({{"event_id", r.event_id}, {"expires_unix_ms", r.expires_unix_ms}, {"slate", slate}});
}

std::string EncodeFeedback(const FeedbackResult& r) {
  return Dump({{"reward", r.reward},
               {"item_version", r.item_version},
               {"item_joined_partition", r.item_joined_partition}});
}

std::string EncodeProvider(const ProviderInfo& p) {
  return Dump({{"id", p.id}, {"cluster", p.cluster}, {"items", p.item_count}});
}

std::string EncodeClusters(const std::vector<ClusterInfo>& clusters) {
  json list = json::array();
  for (const auto& c : clusters) {
    list.push_back({{"id", c.id},
                    {"providers", c.provider_count},
                    {"items", c.item_count},
                    {"served_items", c.served_item_count},
                    {"evidence", c.evidence}});
  }
  return Dump({{"clusters", list}});
}

std::string EncodeRecluster(const ReclusterReport& r) {
  auto moves = [](const std::vector<ProviderMove>& list) {
    json out = json::array();
    for (const auto& m : list) out.push_back(ProviderMoveJson(m));
    return out;
  };
  return Dump({{"started_unix_seconds", r.started_unix_seconds},
               {"seconds", r.seconds},
               {"providers_profiled", r.providers_profiled},
               {"providers_skipped", r.providers_skipped},
               {"providers_by_content", r.providers_by_content},
               {"moves", moves(r.moves)},
               {"deferred", moves(r.deferred)},
               {"adjusted_rand_index", r.adjusted_rand_index},
               {"stability_ari", r.stability_ari},
               {"clusters_after", json::parse(EncodeClusters(r.clusters_after))["clusters"]}});
}

std::string EncodeError(const Status& status) {
  std::string code;
  for (const char* p = StatusCodeName(status.code()); *p; ++p) {
    if (std::isupper(static_cast<unsigned char>(*p)) && !code.empty()) code.push_back('_');
    code.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(*p))));
  }
  return Dump({{"error", {{"code", code}, {"message", status.message()}}}});
}

int HttpStatusFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
      return 409;
    case StatusCode::kResourceExhausted:
      return 413;
    case StatusCode::kCorruption:
    case StatusCode::kIoError:
    case StatusCode::kInternal:
      return 500;
  }
  return 500;
}

}  // namespace dynspec::server
