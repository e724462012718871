// Reward: a configurable function of an event's responses (RewardTerm, options.h).
// The engine swaps the whole function atomically when terms change; models are untouched.
#pragma once

#include <span>
#include <vector>

#include "dynspec/options.h"
#include "dynspec/status.h"
#include "dynspec/types.h"

namespace dynspec {

class RewardFunction {
 public:
  // InvalidArgument if a term names a head that is not configured or is not finite.
  static Result<RewardFunction> Make(const std::vector<RewardTerm>& terms,
                                     const std::vector<HeadSpec>& heads);
  // Reward of observed responses; heads that were not observed contribute nothing.
  double Observed(const Responses& responses) const;
  // Expected reward from per-head predictions (probabilities; regression heads in their
  // learned space, mapped back with expm1 for log1p heads before the cap).
  double Expected(std::span<const double> head_outputs) const;
  const std::vector<RewardTerm>& terms() const { return terms_; }

 private:
  struct Bound {
    size_t head;
    RewardTerm term;
  };
  std::vector<RewardTerm> terms_;
  std::vector<Bound> bound_;
  std::vector<HeadSpec> heads_;
};

}  // namespace dynspec
