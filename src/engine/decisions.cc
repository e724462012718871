#include "engine/decisions.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>

#include "learn/exploration.h"

namespace dynspec {

Result<SlatePlan> ChooseSlate(std::span<const double> scores, size_t slate_size,
                              const RankOptions& options, std::mt19937_64& rng) {
  if (slate_size > scores.size()) {
    return Status::InvalidArgument("slate_size " + std::to_string(slate_size) + " exceeds the " +
                                   std::to_string(scores.size()) + " candidates");
  }
  ExplorationOptions policy;
  policy.temperature = options.temperature;
  policy.epsilon = options.epsilon;
  switch (options.policy) {
    case RankPolicy::kSoftmax:
      policy.kind = ExplorationKind::kSoftmax;
      break;
    case RankPolicy::kEpsilonGreedy:
      policy.kind = ExplorationKind::kEpsilonGreedy;
      break;
    case RankPolicy::kGreedy:
      policy.kind = ExplorationKind::kGreedy;
      break;
  }
  SlatePlan plan;
  DYNSPEC_ASSIGN_OR_RETURN(plan.probabilities, ActionProbabilities(scores, policy));
  const size_t positive = static_cast<size_t>(std::count_if(
      plan.probabilities.begin(), plan.probabilities.end(), [](double p) { return p > 0; }));
  DYNSPEC_ASSIGN_OR_RETURN(SlateChoice sampled,
                           SampleSlate(plan.probabilities, std::min(slate_size, positive), rng));
  for (size_t c : sampled.chosen) plan.chosen.push_back(static_cast<uint32_t>(c));
  plan.propensities = std::move(sampled.propensities);
  if (plan.chosen.size() < slate_size) {
    std::vector<uint32_t> rest;
    for (uint32_t i = 0; i < scores.size(); ++i) {
      if (std::find(plan.chosen.begin(), plan.chosen.end(), i) == plan.chosen.end()) {
        rest.push_back(i);
      }
    }
    std::stable_sort(rest.begin(), rest.end(),
                     [&](uint32_t a, uint32_t b) { return scores[a] > scores[b]; });
    rest.resize(slate_size - plan.chosen.size());
    for (uint32_t i : rest) {
      plan.chosen.push_back(i);
      plan.propensities.push_back(1.0);
    }
  }
  return plan;
}

std::string DecisionToJsonLine(const DecisionRecord& r) {
  nlohmann::json j;
  j["event_id"] = r.id;
  j["created_unix_ms"] = r.created_unix_ms;
  j["expires_unix_ms"] = r.expires_unix_ms;
  j["context"]["dense"] = r.context.dense;
  nlohmann::json sparse = nlohmann::json::object();
  for (const auto& [name, value] : r.context.sparse) sparse[name] = value;
  j["context"]["sparse"] = sparse;
  j["candidates"] = r.candidates;
  j["scores"] = r.scores;
  j["probabilities"] = r.probabilities;
  j["versions"] = r.versions;
  j["chosen"] = r.chosen;
  j["propensities"] = r.propensities;
  j["answered"] = r.answered;
  j["rewards"] = r.rewards;
  nlohmann::json blends = nlohmann::json::array();
  for (const auto& blend : r.blends) {
    nlohmann::json b = nlohmann::json::array();
    for (const auto& [id, weight] : blend) b.push_back({id, weight});
    blends.push_back(b);
  }
  j["blends"] = blends;
  // Invalid UTF-8 in ids is replaced rather than aborting the log.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<DecisionRecord> DecisionFromJsonLine(const std::string& line) {
  nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::InvalidArgument("decision log line is not a JSON object");
  }
  DecisionRecord r;
  try {
    r.id = j.at("event_id").get<std::string>();
    r.created_unix_ms = j.value("created_unix_ms", int64_t{0});
    r.expires_unix_ms = j.value("expires_unix_ms", int64_t{0});
    if (j.contains("context")) {
      const auto& c = j.at("context");
      if (c.contains("dense")) r.context.dense = c.at("dense").get<std::vector<float>>();
      if (c.contains("sparse")) {
        for (const auto& [name, value] : c.at("sparse").items()) {
          r.context.sparse.emplace_back(name, value.get<float>());
        }
      }
    }
    r.candidates = j.at("candidates").get<std::vector<ItemId>>();
    r.scores = j.at("scores").get<std::vector<double>>();
    r.probabilities = j.at("probabilities").get<std::vector<double>>();
    r.versions = j.value("versions", std::vector<uint64_t>(r.candidates.size(), 0));
    r.chosen = j.at("chosen").get<std::vector<uint32_t>>();
    r.propensities = j.at("propensities").get<std::vector<double>>();
    r.answered = j.at("answered").get<std::vector<uint8_t>>();
    r.rewards = j.at("rewards").get<std::vector<double>>();
    if (j.contains("blends")) {
      for (const auto& b : j.at("blends")) {
        auto& blend = r.blends.emplace_back();
        for (const auto& pair : b) {
          blend.emplace_back(pair.at(0).get<std::string>(), pair.at(1).get<double>());
        }
      }
    } else {
      r.blends.resize(r.chosen.size());
    }
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(std::string("decision log line: ") + e.what());
  }
  const size_t nc = r.candidates.size(), ns = r.chosen.size();
  if (nc == 0) return Status::InvalidArgument("decision '" + r.id + "' has no candidates");
  if (r.scores.size() != nc || r.probabilities.size() != nc || r.versions.size() != nc) {
    return Status::InvalidArgument("decision '" + r.id +
                                   "': scores, probabilities and versions must have one value "
                                   "per candidate");
  }
  if (r.propensities.size() != ns || r.answered.size() != ns || r.rewards.size() != ns ||
      r.blends.size() != ns) {
    return Status::InvalidArgument("decision '" + r.id +
                                   "': propensities, answered, rewards and blends must have one "
                                   "value per chosen position");
  }
  for (size_t p = 0; p < ns; ++p) {
    if (r.chosen[p] >= nc) {
      return Status::InvalidArgument("decision '" + r.id + "': chosen[" + std::to_string(p) +
                                     "] is not a candidate index");
    }
    if (!(r.propensities[p] > 0 && r.propensities[p] <= 1)) {
      return Status::InvalidArgument("decision '" + r.id + "': propensities[" + std::to_string(p) +
                                     "] is not in (0, 1]");
    }
    if (!std::isfinite(r.rewards[p])) {
      return Status::InvalidArgument("decision '" + r.id + "': rewards[" + std::to_string(p) +
                                     "] is not finite");
    }
  }
  for (size_t i = 0; i < nc; ++i) {
    if (!std::isfinite(r.scores[i]) || !(r.probabilities[i] >= 0 && r.probabilities[i] <= 1)) {
      return Status::InvalidArgument("decision '" + r.id + "': candidate " + std::to_string(i) +
                                     " has a non-finite score or a probability outside [0, 1]");
    }
  }
  return r;
}

}  // namespace dynspec
