// Embedder: turns item content into a unit vector. An extension point: the engine uses the
// built-in hashing text embedder unless the caller passes another one.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dynspec/options.h"
#include "dynspec/status.h"

namespace dynspec {

// Contract: Embed* are const and safe to call from many threads at once; the same input
// always gives the same vector; the result has dim() values and unit L2 norm. Empty or
// unusable input (no tokens) is InvalidArgument.
class Embedder {
 public:
  virtual ~Embedder() = default;
  virtual int dim() const = 0;
  virtual std::string name() const = 0;
  virtual Result<std::vector<float>> EmbedText(std::string_view text) const = 0;
};

// The default: words, word bigrams and character n-grams, signed feature hashing into
// options.dim slots, sub-linear (1 + log tf) weighting, L2 normalized. Needs no model file.
std::unique_ptr<Embedder> NewHashingTextEmbedder(const EmbedOptions& options);

}  // namespace dynspec
