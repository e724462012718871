// The default text embedder: feature hashing of words, word bigrams and character n-grams.
//
// Why this design: it needs no model file (nothing can be downloaded at run time), it is
// deterministic across machines and versions (the hash is fixed in common/hash.h), and texts
// that share vocabulary or word stems land close together, which is what neighbour search
// in a provider's partition needs. Pretrained and CLIP embedders plug in through Embedder.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <string>
#include <unordered_map>

#include "common/hash.h"
#include "common/vector_math.h"
#include "dynspec/embedder.h"

namespace dynspec {
namespace {

// Function words carry no topic; dropping them as unigrams keeps topical words dominant.
// They still take part in bigrams and character n-grams.
bool IsStopWord(std::string_view w) {
  static constexpr std::string_view kStop[] = {
      "a",   "an",   "and", "are",  "as",  "at",    "be", "by",   "for", "from", "has",
      "in",  "is",   "it",  "its",  "of",  "on",    "or", "that", "the", "this", "to",
      "was", "with", "you", "your", "our", "their", "we", "will", "all", "each"};
  for (auto s : kStop) {
    if (s == w) return true;
  }
  return false;
}

// Letters and digits are word characters; bytes >= 0x80 (UTF-8 sequences) are kept inside
// words so non-English text still produces features.
bool IsWordByte(unsigned char c) { return std::isalnum(c) || c >= 0x80; }

class HashingTextEmbedder final : public Embedder {
 public:
  explicit HashingTextEmbedder(const EmbedOptions& o) : o_(o) {}
  int dim() const override { return o_.dim; }
  std::string name() const override { return "hashing"; }

  Result<std::vector<float>> EmbedText(std::string_view text) const override {
    std::vector<std::string> words;
    std::string cur;
    for (unsigned char c : text) {
      if (IsWordByte(c)) {
        cur.push_back(static_cast<char>(std::tolower(c)));
      } else if (!cur.empty()) {
        words.push_back(std::move(cur));
        cur.clear();
      }
    }
    if (!cur.empty()) words.push_back(std::move(cur));
    if (words.empty()) {
      return Status::InvalidArgument(text.empty() ? "text is empty" : "text has no words to embed");
    }

    // feature hash -> (occurrences, weight of one occurrence)
    std::unordered_map<uint64_t, std::pair<int, float>> features;
    auto add = [&](std::string_view kind, std::string_view s, float weight) {
      const uint64_t h = HashBytes(s, o_.seed ^ HashBytes(kind, o_.seed));
      auto& f = features[h];
      f.first += 1;
      f.second = weight;
    };
    for (size_t i = 0; i < words.size(); ++i) {
      const std::string& w = words[i];
      if (!IsStopWord(w)) add("w", w, 1.0f);
      if (i + 1 < words.size() && o_.word_bigram_weight > 0) {
        add("b", w + " " + words[i + 1], o_.word_bigram_weight);
      }
      if (o_.char_ngram_weight > 0 && w.size() >= 3) {
        const std::string marked = "<" + w + ">";
        int grams = 0;
        for (int n = o_.min_char_ngram; n <= o_.max_char_ngram; ++n) {
          if (static_cast<size_t>(n) <= marked.size()) grams += int(marked.size()) - n + 1;
        }
        // Each word contributes char_ngram_weight in total (L2) over its n-grams, so long
        // words do not outweigh short ones.
        const float per_gram = o_.char_ngram_weight / std::sqrt(float(std::max(grams, 1)));
        for (int n = o_.min_char_ngram; n <= o_.max_char_ngram; ++n) {
          for (size_t p = 0; p + n <= marked.size(); ++p) {
            add("c", std::string_view(marked).substr(p, n), per_gram);
          }
        }
      }
    }
    std::vector<float> v(o_.dim, 0.0f);
    for (const auto& [h, f] : features) {
      const HashedSlot slot = SlotOf(h, static_cast<uint32_t>(o_.dim));
      v[slot.index] += slot.sign * f.second * (1.0f + std::log(float(f.first)));
    }
    Status st = NormalizeInPlace(v, "text embedding");
    if (!st.ok()) {
      // Every feature cancelled out in the signed sum: astronomically rare, but not a crash.
      return Status::InvalidArgument("text produced a zero embedding: " + st.message());
    }
    return v;
  }

 private:
  EmbedOptions o_;
};

}  // namespace

std::unique_ptr<Embedder> NewHashingTextEmbedder(const EmbedOptions& options) {
  return std::make_unique<HashingTextEmbedder>(options);
}

}  // namespace dynspec
