// Ranking decisions: the policy step of Engine::Rank and the decision log format.
//
// The engine keeps each decision as a DecisionRecord (include/dynspec/store.h) until every
// served position is answered by feedback or expires; then it appends the record to the
// decision log as one JSON line, the input of off-policy evaluation (learn/ope.h) and of
// the `dynspec ope` command. docs/learning.md documents the line format.
#pragma once

#include <random>
#include <span>
#include <string>
#include <vector>

#include "dynspec/options.h"
#include "dynspec/status.h"
#include "dynspec/store.h"

namespace dynspec {

// DecisionRecord::answered values.
inline constexpr uint8_t kPositionPending = 0;
inline constexpr uint8_t kPositionAnswered = 1;  // feedback arrived
inline constexpr uint8_t kPositionExpired = 2;   // resolved with the expired reward

struct SlatePlan {
  std::vector<double> probabilities;  // first-position policy probability per candidate
  std::vector<uint32_t> chosen;       // candidate indices in served order
  std::vector<double> propensities;   // per position, conditional on the positions above
};

// Turns candidate scores into a slate of `slate_size` positions (<= scores.size()) with the
// policy of `options`. Positions the policy gives no probability to (greedy, or
// epsilon-greedy with epsilon 0, beyond the tied best) are filled by descending score with
// propensity 1: given the positions above, they are deterministic.
Result<SlatePlan> ChooseSlate(std::span<const double> scores, size_t slate_size,
                              const RankOptions& options, std::mt19937_64& rng);

// One line of the decision log (no trailing newline), and back. The parser checks the
// same invariants as the store decoder and names the first bad field.
std::string DecisionToJsonLine(const DecisionRecord& record);
Result<DecisionRecord> DecisionFromJsonLine(const std::string& line);

}  // namespace dynspec
