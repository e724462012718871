// Internals of the word-vector embedder (dynspec/word_vectors.h), exposed for tests.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "embed/word_vector_file.h"

namespace dynspec {

struct WordToken {
  std::string text;
  std::optional<size_t> rank;  // in the vocabulary, or nullopt (out of vocabulary)
};

// Splits `text` the way the vocabulary was tokenized (GloVe's: lower-case, punctuation
// apart, hyphenated compounds whole when the vocabulary has them):
// - ASCII is lower-cased; letters and digits make words; other ASCII is a separator except
//   '-' and '\'' inside a word. Typographic apostrophes and hyphens count as '\'' and '-';
//   other Unicode punctuation, symbols and spaces separate; letters of other scripts stay
//   in the word (they are out of vocabulary and get a hashed vector). Accented Latin-1
//   letters are folded to ASCII ("Cond\u00e9" -> "conde"), as the vocabulary is ASCII.
//   Bytes that are not valid UTF-8 are read as Windows-1252.
// - "well-known" stays whole if the vocabulary has it, else it becomes its parts.
// - English clitics, which this vocabulary lacks: "n't" becomes "not" ("don't" -> do not,
//   "can't" -> can not, "won't" -> will not); "'s", "'re", "'ve", "'ll", "'d", "'m" are
//   dropped. Other apostrophes split the word.
// Punctuation-only tokens are never produced (they carry no topic).
std::vector<WordToken> TokenizeForVocabulary(std::string_view text, const WordVectors& vocab);

}  // namespace dynspec
