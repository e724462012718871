// The JSON form of the engine's report types, shared by the HTTP API (server/api.cc) and the
// offline reports (eval/), so a re-clustering report file and a /recluster response describe
// a move with the same fields.
#pragma once

#include <nlohmann/json.hpp>

#include "dynspec/types.h"

namespace dynspec {

// {"provider", "from", "to", "home_loss", "target_loss", "home_evidence", "target_evidence",
//  "streak", "by_content", "home_similarity", "target_similarity"}
nlohmann::json ProviderMoveJson(const ProviderMove& move);

}  // namespace dynspec
