#include "learn/reward.h"

#include <algorithm>
#include <cmath>

namespace dynspec {

namespace {
double Capped(double v, double cap) { return cap > 0 ? std::min(v, cap) : v; }
}  // namespace

Result<RewardFunction> RewardFunction::Make(const std::vector<RewardTerm>& terms,
                                            const std::vector<HeadSpec>& heads) {
  RewardFunction f;
  f.terms_ = terms;
  f.heads_ = heads;
  for (const auto& t : terms) {
    auto it = std::find_if(heads.begin(), heads.end(),
                           [&](const HeadSpec& h) { return h.name == t.head; });
    if (it == heads.end()) {
      return Status::InvalidArgument("reward term names unknown head '" + t.head + "'");
    }
    if (!std::isfinite(t.weight) || !std::isfinite(t.cap)) {
      return Status::InvalidArgument("reward term '" + t.head + "' has a non-finite weight or cap");
    }
    f.bound_.push_back({static_cast<size_t>(it - heads.begin()), t});
  }
  return f;
}

double RewardFunction::Observed(const Responses& responses) const {
  double r = 0;
  for (const auto& b : bound_) {
    auto it = responses.find(b.term.head);
    if (it != responses.end()) r += b.term.weight * Capped(it->second, b.term.cap);
  }
  return r;
}

double RewardFunction::Expected(std::span<const double> outputs) const {
  double r = 0;
  for (const auto& b : bound_) {
    double v = outputs[b.head];
    if (heads_[b.head].log1p_target) v = std::expm1(std::max(v, 0.0));
    r += b.term.weight * Capped(v, b.term.cap);
  }
  return r;
}

}  // namespace dynspec
