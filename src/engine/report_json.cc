#include "engine/report_json.h"

namespace dynspec {

nlohmann::json ProviderMoveJson(const ProviderMove& m) {
  return {{"provider", m.provider},
          {"from", m.from},
          {"to", m.to},
          {"home_loss", m.home_loss},
          {"target_loss", m.target_loss},
          {"home_evidence", m.home_evidence},
          {"target_evidence", m.target_evidence},
          {"streak", m.streak},
          {"by_content", m.by_content},
          {"home_similarity", m.home_similarity},
          {"target_similarity", m.target_similarity}};
}

}  // namespace dynspec
