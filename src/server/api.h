// The JSON API of `dynspec serve`: request decoding and response encoding, free of any
// HTTP machinery so that it can be tested and fuzzed on its own (see docs/api.md).
//
// Decoding is strict: every body must be a JSON object of known fields with the right
// types; numbers must be finite; strings and arrays respect ApiLimits and the engine's
// LimitOptions. Errors are InvalidArgument with a message that starts with the field path,
// e.g. "context.dense[3]: must be a finite number". Nothing is changed by a failed decode.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "dynspec/engine.h"
#include "dynspec/status.h"
#include "dynspec/types.h"

namespace dynspec::server {

struct ApiLimits {
  size_t max_body_bytes = 8 << 20;  // larger bodies are refused before parsing (413)
  size_t max_json_depth = 32;       // nesting of arrays and objects
  size_t max_batch_items = 1000;    // POST /v1/items:batch
  size_t max_vector_values = 65536;
  size_t max_candidates = 1000;  // POST /v1/rank
};

// Checks size and nesting before a body is handed to the JSON parser (whose recursion
// would otherwise be bounded only by the stack).
Status CheckBodyShape(std::string_view body, const ApiLimits& limits);

// PUT /v1/items/{id}: {"provider": str, "text": str} or {"provider": str, "vector": [num]}.
Result<ItemInput> DecodeItemPut(std::string_view id, std::string_view body,
                                const ApiLimits& limits);
// POST /v1/items:batch: {"items": [{"id": str, "provider": str, "text"|"vector": ...}]}.
Result<std::vector<ItemInput>> DecodeItemBatch(std::string_view body, const ApiLimits& limits);
// POST /v1/predict: {"item_id": str} or {"content": {"text"|"vector"}, "provider": str},
// with an optional "context": {"dense": [num], "sparse": {name: num}}.
Result<PredictRequest> DecodePredict(std::string_view body, const ApiLimits& limits);
// POST /v1/rank: {"candidates": [str], "slate_size": int, "context": ..., "event_id": str}.
Result<RankRequest> DecodeRank(std::string_view body, const ApiLimits& limits);
// POST /v1/feedback: {"event_id": str, "item_id": str, "context": ..., "responses":
// {head: num}}; at least one of event_id and item_id.
Result<FeedbackEvent> DecodeFeedback(std::string_view body, const ApiLimits& limits);
// POST /v1/admin/backup: {"dir": str}.
Result<std::string> DecodeBackup(std::string_view body, const ApiLimits& limits);

std::string EncodeItem(const ItemInfo& item, bool with_embedding);
std::string EncodePrediction(const Prediction& p);
std::string EncodeRank(const RankResult& r);
std::string EncodeFeedback(const FeedbackResult& r);
std::string EncodeProvider(const ProviderInfo& p);
std::string EncodeClusters(const std::vector<ClusterInfo>& clusters);
std::string EncodeRecluster(const ReclusterReport& r);
// {"error": {"code": "INVALID_ARGUMENT", "message": ...}}
std::string EncodeError(const Status& status);
// The HTTP status for a Status code (400, 404, 409, 413, 500, 503 ...).
int HttpStatusFor(const Status& status);

}  // namespace dynspec::server
