// CLIP tokenizer: the published encodings, the rules of CLIP's specification (padding,
// truncation, the split pattern, cleaning), byte-level coverage, a plain reference BPE,
// concurrency and the errors of Load.
#include "embed/clip_tokenizer.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "test_util.h"

namespace dynspec {
namespace {

namespace fs = std::filesystem;
using dynspec::testing_util::ScopedTempDir;

const std::string kVocab = std::string(DYNSPEC_DATA_DIR) + "/clip/bpe_simple_vocab_16e6.txt.gz";

class ClipTokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto t = ClipTokenizer::Load(kVocab);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    tok_ = std::move(t).value().release();
  }
  static void TearDownTestSuite() {
    delete tok_;
    tok_ = nullptr;
  }
  static std::vector<int32_t> Tok(std::string_view text) {
    auto r = tok_->Tokenize(text);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::vector<int32_t>();
  }
  // The ids of Tokenize up to and including the end token.
  static std::vector<int32_t> Used(std::string_view text) {
    std::vector<int32_t> ids = Tok(text);
    auto end = std::find(ids.begin(), ids.end(), ClipTokenizer::kEndToken);
    return std::vector<int32_t>(ids.begin(), end == ids.end() ? end : end + 1);
  }
  // The vocabulary strings of Encode's ids.
  static std::vector<std::string> Pieces(std::string_view text) {
    std::vector<std::string> out;
    for (int32_t id : tok_->Encode(text)) out.emplace_back(tok_->Token(id));
    return out;
  }
  static const ClipTokenizer* tok_;
};
const ClipTokenizer* ClipTokenizerTest::tok_ = nullptr;

using Ids = std::vector<int32_t>;
using Strings = std::vector<std::string>;

std::string WithoutSpaces(std::string s) {
  s.erase(std::remove(s.begin(), s.end(), ' '), s.end());
  return s;
}

TEST_F(ClipTokenizerTest, KnownEncodingsFromSource) {
  EXPECT_EQ(Used("a photo of a cat"), (Ids{49406, 320, 1125, 539, 320, 2368, 49407}));
  EXPECT_EQ(Used("A diagram"), (Ids{49406, 320, 22697, 49407}));
  EXPECT_EQ(tok_->Encode("a photo of a cat"), (Ids{320, 1125, 539, 320, 2368}));
  EXPECT_EQ(tok_->Token(320), "a</w>");
  EXPECT_EQ(tok_->Token(0), "!");  // the first byte symbol, so padding decodes to "!"
  EXPECT_EQ(tok_->Token(ClipTokenizer::kStartToken), "<|startoftext|>");
  EXPECT_EQ(tok_->Token(ClipTokenizer::kEndToken), "<|endoftext|>");
  EXPECT_EQ(tok_->Token(ClipTokenizer::kVocabSize), "");
  EXPECT_EQ(tok_->Token(-1), "");
}

TEST_F(ClipTokenizerTest, PadsWithZerosToTheContextLength) {
  Ids ids = Tok("a photo of a cat");
  ASSERT_EQ(ids.size(), 77u);
  EXPECT_EQ(Ids(ids.begin(), ids.begin() + 7), (Ids{49406, 320, 1125, 539, 320, 2368, 49407}));
  for (size_t i = 7; i < ids.size(); ++i) EXPECT_EQ(ids[i], 0) << i;

  auto short_context = tok_->Tokenize("a cat", 8);
  ASSERT_TRUE(short_context.ok());
  EXPECT_EQ(*short_context, (Ids{49406, 320, 2368, 49407, 0, 0, 0, 0}));
  auto exact = tok_->Tokenize("a cat", 4);
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(*exact, (Ids{49406, 320, 2368, 49407}));
}

TEST_F(ClipTokenizerTest, TruncationKeepsTheEndToken) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += "cat ";
  Ids ids = Tok(text);
  ASSERT_EQ(ids.size(), 77u);
  EXPECT_EQ(ids.front(), ClipTokenizer::kStartToken);
  EXPECT_EQ(ids.back(), ClipTokenizer::kEndToken);
  for (size_t i = 1; i + 1 < ids.size(); ++i) EXPECT_EQ(ids[i], 2368) << i;

  // CLIP keeps the first context_length tokens and overwrites the last with the end token.
  auto small = tok_->Tokenize("a photo of a cat", 4);
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(*small, (Ids{49406, 320, 1125, 49407}));
  auto minimal = tok_->Tokenize("a photo of a cat", 2);
  ASSERT_TRUE(minimal.ok());
  EXPECT_EQ(*minimal, (Ids{49406, 49407}));
}

TEST_F(ClipTokenizerTest, TooLongWithoutTruncationIsAnErrorNamingTheLength) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += "cat ";
  auto r = tok_->Tokenize(text, 77, /*truncate=*/false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("102 tokens"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("77"), std::string::npos) << r.status().message();

  // Exactly full is not too long.
  auto fits = tok_->Tokenize("a photo of a cat", 7, false);
  ASSERT_TRUE(fits.ok()) << fits.status().ToString();
  EXPECT_EQ(fits->back(), ClipTokenizer::kEndToken);

  for (int bad : {1, 0, -5}) {
    auto b = tok_->Tokenize("cat", bad);
    ASSERT_FALSE(b.ok());
    EXPECT_EQ(b.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST_F(ClipTokenizerTest, ContractionsAreSplitOff) {
  EXPECT_EQ(Pieces("don't"), (Strings{"don</w>", "'t</w>"}));
  EXPECT_EQ(Pieces("they're"), (Strings{"they</w>", "'re</w>"}));
  EXPECT_EQ(Pieces("we'll"), (Strings{"we</w>", "'ll</w>"}));
  EXPECT_EQ(tok_->Encode("DON'T"), tok_->Encode("don't"));
  // The pattern tries 's before letters, so it splits even in the middle of a word ...
  EXPECT_EQ(Pieces("'sam")[0], "'s</w>");
  // ... and an apostrophe before anything else is punctuation.
  EXPECT_EQ(Pieces("'x"), (Strings{"'</w>", "x</w>"}));
}

TEST_F(ClipTokenizerTest, EveryDigitIsAToken) {
  EXPECT_EQ(Pieces("2024"), (Strings{"2</w>", "0</w>", "2</w>", "4</w>"}));
  EXPECT_EQ(Pieces("r2d2"), (Strings{"r</w>", "2</w>", "d</w>", "2</w>"}));
  // \p{N} beyond ASCII: superscripts, fractions and other scripts' digits are numbers too.
  EXPECT_EQ(tok_->Decode(tok_->Encode("x\xC2\xB2")), "x \xC2\xB2 ");                // x²
  EXPECT_EQ(tok_->Decode(tok_->Encode("\xD9\xA1\xD9\xA2")), "\xD9\xA1 \xD9\xA2 ");  // ١٢
  EXPECT_EQ(tok_->Decode(tok_->Encode("\xC2\xBD")), "\xC2\xBD ");                   // ½
}

TEST_F(ClipTokenizerTest, PunctuationRunsStayTogether) {
  EXPECT_EQ(tok_->Decode(tok_->Encode("hello, world!!")), "hello , world !! ");
  EXPECT_EQ(tok_->Decode(tok_->Encode("wait...?!")), "wait ...?! ");
  // A run of punctuation swallows an apostrophe, so no contraction follows it.
  EXPECT_EQ(tok_->Decode(tok_->Encode("!!'t")), "!!' t ");
}

TEST_F(ClipTokenizerTest, WhitespaceIsCollapsedAndStripped) {
  const Ids expected = tok_->Encode("a photo of a cat");
  EXPECT_EQ(tok_->Encode("  a \t\n photo   of\r\na cat  "), expected);
  EXPECT_EQ(tok_->Encode("a\xC2\xA0photo\xE3\x80\x80of\xE2\x80\x83"
                         "a cat"),
            expected);  // NBSP...
  EXPECT_EQ(ClipTokenizer::CleanText("  a \t\n photo   of a cat \n"), "a photo of a cat");
}

TEST_F(ClipTokenizerTest, UpperCaseEqualsLowerCase) {
  EXPECT_EQ(tok_->Encode("A PHOTO OF A CAT"), tok_->Encode("a photo of a cat"));
  EXPECT_EQ(tok_->Encode("Photo Of A Cat"), tok_->Encode("photo of a cat"));
  // Beyond ASCII (str.lower()): Latin-1, Greek with its final sigma, Cyrillic.
  EXPECT_EQ(ClipTokenizer::CleanText("\xC3\x89"
                                     "COLE"),
            "\xC3\xA9"
            "cole");  // ÉCOLE
  EXPECT_EQ(ClipTokenizer::CleanText("\xCE\x9F\xCE\x94\xCE\x9F\xCE\xA3"),
            "\xCE\xBF\xCE\xB4\xCE\xBF\xCF\x82");  // ΟΔΟΣ -> οδος
  EXPECT_EQ(ClipTokenizer::CleanText("\xD0\x9C\xD0\x98\xD0\xA0"),
            "\xD0\xBC\xD0\xB8\xD1\x80");  // МИР -> мир
}

TEST_F(ClipTokenizerTest, UnicodeTextRoundTripsThroughDecode) {
  const std::string text =
      "caf\xC3\xA9 \xE6\x9D\xB1\xE4\xBA\xAC na\xC3\xAFve \xF0\x9F\x98\x80 "
      "\xD0\xBC\xD0\xB8\xD1\x80";  // café 東京 naïve 😀 мир
  const Ids ids = tok_->Encode(text);
  ASSERT_FALSE(ids.empty());
  for (int32_t id : ids) EXPECT_LT(id, ClipTokenizer::kStartToken);
  // Each word is one piece of the split, so the only change is the space of its `</w>`.
  EXPECT_EQ(tok_->Decode(ids), text + " ");
  // Letters of other scripts are letters: 東京 is one piece, not two.
  const Ids tokyo = tok_->Encode("\xE6\x9D\xB1\xE4\xBA\xAC");
  EXPECT_EQ(WithoutSpaces(tok_->Decode(tokyo)), "\xE6\x9D\xB1\xE4\xBA\xAC");
  EXPECT_EQ(std::string(tok_->Token(tokyo.back())).substr(tok_->Token(tokyo.back()).size() - 4),
            "</w>");
  EXPECT_EQ(std::count_if(
                tokyo.begin(), tokyo.end(),
                [&](int32_t id) { return tok_->Token(id).find("</w>") != std::string_view::npos; }),
            1);
}

TEST_F(ClipTokenizerTest, EmptyTextGivesStartAndEndOnly) {
  EXPECT_TRUE(tok_->Encode("").empty());
  EXPECT_TRUE(tok_->Encode(" \t\n ").empty());
  Ids ids = Tok("");
  ASSERT_EQ(ids.size(), 77u);
  EXPECT_EQ(ids[0], ClipTokenizer::kStartToken);
  EXPECT_EQ(ids[1], ClipTokenizer::kEndToken);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 0), 75);
  EXPECT_EQ(Used("   "), (Ids{49406, 49407}));
}

TEST_F(ClipTokenizerTest, SpecialTokenStringsBecomeSpecialTokens) {
  // CLIP's pattern lists them first, so text containing them yields the special ids.
  EXPECT_EQ(tok_->Encode("<|endoftext|>"), (Ids{ClipTokenizer::kEndToken}));
  EXPECT_EQ(tok_->Encode("a <|startoftext|>"), (Ids{320, ClipTokenizer::kStartToken}));
  EXPECT_EQ(tok_->Decode({ClipTokenizer::kStartToken, 320, 2368, ClipTokenizer::kEndToken}),
            "<|startoftext|>a cat <|endoftext|>");
}

TEST_F(ClipTokenizerTest, CaseInsensitivePatternQuirks) {
  // CLIP compiles its pattern with IGNORECASE: the long s matches the 's of a contraction ...
  EXPECT_EQ(tok_->Decode(tok_->Encode("'\xC5\xBFx")), "'\xC5\xBF x ");  // 'ſx
  // ... and U+0345, which case-folds to a Greek letter, matches no class and is skipped.
  EXPECT_EQ(tok_->Encode("ni\xCD\x85w"), tok_->Encode("ni w"));
  EXPECT_EQ(ClipTokenizer::CleanText("ni\xCD\x85w"), "ni\xCD\x85w");
  // A special token's string with a long s is an ordinary piece, not the special id.
  const Ids odd = tok_->Encode("<|\xC5\xBFtartoftext|>");
  EXPECT_EQ(std::count(odd.begin(), odd.end(), ClipTokenizer::kStartToken), 0);
  EXPECT_EQ(tok_->Decode(odd), "<|\xC5\xBFtartoftext|> ");
}

TEST_F(ClipTokenizerTest, EveryByteStringEncodesAndDecodesBack) {
  auto check = [&](const std::string& s) {
    const Ids ids = tok_->Encode(s);
    for (int32_t id : ids) {
      ASSERT_GE(id, 0);
      ASSERT_LT(id, ClipTokenizer::kVocabSize);
    }
    // Decode adds a space per piece; apart from spaces it gives back exactly the cleaned text,
    // invalid UTF-8 included, less the one character CLIP's pattern skips (U+0345).
    std::string expected = WithoutSpaces(ClipTokenizer::CleanText(s));
    for (size_t p; (p = expected.find("\xCD\x85")) != std::string::npos;) expected.erase(p, 2);
    ASSERT_EQ(WithoutSpaces(tok_->Decode(ids)), expected) << "input of " << s.size() << " bytes";
  };
  for (int b = 0; b < 256; ++b) check(std::string(1, static_cast<char>(b)));
  // Single bytes that cleaning leaves alone come back as themselves.
  for (int b = 0x21; b < 256; ++b) {
    if ((b >= 'A' && b <= 'Z') || b == 0x7F) continue;
    const std::string s(1, static_cast<char>(b));
    EXPECT_EQ(tok_->Decode(tok_->Encode(s)), s + " ") << "byte " << b;
  }
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> len(1, 40), byte(0, 255), pick(0, 3);
  const std::string ascii = "abcxyz019 ,.'!&;#<|>";
  for (int n = 0; n < 3000; ++n) {
    std::string s;
    const int l = len(rng);
    for (int i = 0; i < l; ++i) {
      // Mix raw bytes with ASCII so that pieces, entities and contractions all occur.
      s.push_back(pick(rng) == 0 ? static_cast<char>(byte(rng)) : ascii[byte(rng) % ascii.size()]);
    }
    check(s);
  }
  // Valid UTF-8 from many scripts.
  std::uniform_int_distribution<uint32_t> cp(0x80, 0x2FFFF);
  for (int n = 0; n < 500; ++n) {
    std::string s;
    for (int i = 0; i < 10; ++i) {
      uint32_t c = cp(rng);
      if (c >= 0xD800 && c <= 0xDFFF) c = 'a';
      if (c < 0x800) {
        s += static_cast<char>(0xC0 | (c >> 6));
        s += static_cast<char>(0x80 | (c & 0x3F));
      } else if (c < 0x10000) {
        s += static_cast<char>(0xE0 | (c >> 12));
        s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        s += static_cast<char>(0x80 | (c & 0x3F));
      } else {
        s += static_cast<char>(0xF0 | (c >> 18));
        s += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
        s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        s += static_cast<char>(0x80 | (c & 0x3F));
      }
    }
    check(s);
  }
}

TEST_F(ClipTokenizerTest, DecodeOfIdsOutsideTheVocabulary) {
  EXPECT_EQ(tok_->Decode({320, -1, ClipTokenizer::kVocabSize}), "a \xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(tok_->Decode({}), "");
}

TEST_F(ClipTokenizerTest, CleaningFollowsHtmlUnescapeAndFtfy) {
  // html.unescape, twice.
  EXPECT_EQ(ClipTokenizer::CleanText("Tom &amp; Jerry"), "tom & jerry");
  EXPECT_EQ(ClipTokenizer::CleanText("&amp;amp; &lt;b&gt;"), "& <b>");
  EXPECT_EQ(ClipTokenizer::CleanText("&#39;&#x41;&#65&eacute;"), "'aa\xC3\xA9");
  EXPECT_EQ(ClipTokenizer::CleanText("&copy2024 &notit; &bogus; &# &"),
            "\xC2\xA9"
            "2024 \xC2\xAC"
            "it; &bogus; &# &");
  EXPECT_EQ(ClipTokenizer::CleanText("&#150;&#0;&#xD800;&#1;x"),
            "\xE2\x80\x93\xEF\xBF\xBD\xEF\xBF\xBDx");
  // ftfy's character fixes: curly quotes, ligatures, full-width forms, control characters.
  EXPECT_EQ(ClipTokenizer::CleanText("don\xE2\x80\x99t \xE2\x80\x9Chi\xE2\x80\x9D"),
            "don't \"hi\"");
  EXPECT_EQ(ClipTokenizer::CleanText("\xEF\xAC\x81ne"), "fine");                       // ﬁne
  EXPECT_EQ(ClipTokenizer::CleanText("\xEF\xBC\xA1\xEF\xBC\xA2\xEF\xBC\x91"), "ab1");  // ＡＢ１
  EXPECT_EQ(ClipTokenizer::CleanText("\xEF\xBB\xBFhi\x01"), "hi");  // BOM, control character
  EXPECT_EQ(tok_->Encode("don&rsquo;t"), tok_->Encode("don't"));
}

// CLIP's BPE as its specification states it, on strings: repeatedly merge every occurrence
// of the adjacent pair with the lowest rank, left to right. Used to check the heap version.
class ReferenceBpe {
 public:
  explicit ReferenceBpe(const std::string& path) {
    gzFile f = gzopen(path.c_str(), "rb");
    EXPECT_NE(f, nullptr);
    std::string data;
    char buf[1 << 16];
    int n;
    while ((n = gzread(f, buf, sizeof(buf))) > 0) data.append(buf, n);
    gzclose(f);
    std::vector<std::string> byte_symbol(256);
    int next = 256;
    std::vector<std::string> vocab;
    for (int b = 0; b < 256; ++b) {
      const bool printable =
          (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const uint32_t c = printable ? b : next++;
      std::string s;
      if (c < 0x80) {
        s += static_cast<char>(c);
      } else {
        s += static_cast<char>(0xC0 | (c >> 6));
        s += static_cast<char>(0x80 | (c & 0x3F));
      }
      byte_symbol[b] = s;
    }
    // Id order: the printable bytes first, then the others (bytes_to_unicode's order).
    for (int pass = 0; pass < 2; ++pass) {
      for (int b = 0; b < 256; ++b) {
        const bool printable =
            (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        if (printable == (pass == 0)) vocab.push_back(byte_symbol[b]);
      }
    }
    for (int i = 0; i < 256; ++i) vocab.push_back(vocab[i] + "</w>");
    std::istringstream in(data);
    std::string line;
    std::getline(in, line);
    for (int r = 0; r < ClipTokenizer::kMerges && std::getline(in, line); ++r) {
      const size_t sp = line.find(' ');
      const std::string a = line.substr(0, sp), b = line.substr(sp + 1);
      ranks_[{a, b}] = r;
      vocab.push_back(a + b);
    }
    for (size_t i = 0; i < vocab.size(); ++i) ids_[vocab[i]] = static_cast<int32_t>(i);
    byte_symbol_ = byte_symbol;
  }

  Ids EncodeWord(const std::string& bytes) const {
    std::vector<std::string> word;
    for (unsigned char c : bytes) word.push_back(byte_symbol_[c]);
    word.back() += "</w>";
    while (word.size() > 1) {
      int best = INT32_MAX;
      std::pair<std::string, std::string> best_pair;
      for (size_t i = 0; i + 1 < word.size(); ++i) {
        auto it = ranks_.find({word[i], word[i + 1]});
        if (it != ranks_.end() && it->second < best) {
          best = it->second;
          best_pair = it->first;
        }
      }
      if (best == INT32_MAX) break;
      std::vector<std::string> merged;
      for (size_t i = 0; i < word.size();) {
        if (i + 1 < word.size() && word[i] == best_pair.first && word[i + 1] == best_pair.second) {
          merged.push_back(word[i] + word[i + 1]);
          i += 2;
        } else {
          merged.push_back(word[i++]);
        }
      }
      word = std::move(merged);
    }
    Ids out;
    for (const auto& s : word) out.push_back(ids_.at(s));
    return out;
  }

 private:
  std::vector<std::string> byte_symbol_;
  std::map<std::pair<std::string, std::string>, int> ranks_;
  std::map<std::string, int32_t> ids_;
};

TEST_F(ClipTokenizerTest, BpeMatchesTheReferenceAlgorithm) {
  ReferenceBpe ref(kVocab);
  std::vector<std::string> words = {"photograph",
                                    "diagram",
                                    "antidisestablishmentarianism",
                                    "aaaaaaaaaaaaaaaaaaaaaaaaa",
                                    "ssssss",
                                    "mississippi",
                                    "stra\xC3\x9F"
                                    "e",
                                    "\xE6\x9D\xB1\xE4\xBA\xAC\xE9\x83\xBD"};
  std::mt19937 rng(11);
  const std::string common = "etaoinshrdlucmfwypvbgkjqxz";
  std::uniform_int_distribution<int> len(1, 30), letter(0, 25), skew(0, 11);
  for (int n = 0; n < 2000; ++n) {
    std::string w;
    const int l = len(rng);
    // Mostly frequent letters, so that long merges actually apply.
    for (int i = 0; i < l; ++i) w += common[n % 2 ? letter(rng) : skew(rng)];
    words.push_back(w);
  }
  std::string long_word;  // long enough to show the naive loop's cost, short enough to run it
  for (int i = 0; i < 3000; ++i) long_word += common[skew(rng)];
  words.push_back(long_word);
  for (const std::string& w : words) {
    ASSERT_EQ(tok_->Encode(w), ref.EncodeWord(w)) << w;
  }
}

TEST_F(ClipTokenizerTest, VeryLongWordsStayFast) {
  // One piece of 200,000 letters: quadratic BPE would take minutes.
  std::string word;
  for (int i = 0; i < 40000; ++i) word += "photo";
  const auto start = std::chrono::steady_clock::now();
  const Ids ids = tok_->Encode(word);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(WithoutSpaces(tok_->Decode(ids)), word);
  EXPECT_LT(seconds, 10.0);
}

TEST_F(ClipTokenizerTest, ConcurrentCallsAgree) {
  const std::vector<std::string> texts = {"a photo of a cat", "A diagram", "don't stop 2024!!",
                                          "caf\xC3\xA9 \xE6\x9D\xB1\xE4\xBA\xAC", ""};
  std::vector<Ids> expected;
  for (const auto& t : texts) expected.push_back(Tok(t));
  std::vector<int> mismatches(8, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 200; ++round) {
        for (size_t i = 0; i < texts.size(); ++i) {
          auto r = tok_->Tokenize(texts[i]);
          if (!r.ok() || *r != expected[i]) ++mismatches[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

TEST_F(ClipTokenizerTest, DescribeForTheCommandLine) {
  auto out = DescribeClipTokens(kVocab, "a photo of a cat");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out,
            "ids: 49406 320 1125 539 320 2368 49407\n"
            "tokens: <|startoftext|> a</w> photo</w> of</w> a</w> cat</w> <|endoftext|>\n"
            "length: 7 of 77, then 70 zeros of padding\n");
  auto cut = DescribeClipTokens(kVocab, "a photo of a cat", 4);
  ASSERT_TRUE(cut.ok()) << cut.status().ToString();
  EXPECT_EQ(*cut,
            "ids: 49406 320 1125 49407\n"
            "tokens: <|startoftext|> a</w> photo</w> <|endoftext|>\n"
            "length: 4 of 4\n"
            "truncated: the text has 7 tokens with start and end\n");
  auto too_long = DescribeClipTokens(kVocab, "a photo of a cat", 4, false);
  EXPECT_EQ(too_long.status().code(), StatusCode::kInvalidArgument);
  auto missing = DescribeClipTokens("no/such/vocab.txt.gz", "cat");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

// ---- Load errors ----

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}
void WriteGzip(const std::string& path, const std::string& text) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, text.data(), static_cast<unsigned>(text.size())),
            static_cast<int>(text.size()));
  gzclose(f);
}
// The first `lines` lines of the real vocabulary, uncompressed.
std::string VocabLines(int lines) {
  gzFile f = gzopen(kVocab.c_str(), "rb");
  std::string out;
  char buf[4096];
  for (int i = 0; i < lines && gzgets(f, buf, sizeof(buf)) != nullptr; ++i) out += buf;
  gzclose(f);
  return out;
}

void ExpectLoadError(const std::string& path, StatusCode code, const std::string& words) {
  auto r = ClipTokenizer::Load(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), code) << r.status().ToString();
  EXPECT_NE(r.status().message().find(path), std::string::npos) << r.status().ToString();
  EXPECT_NE(r.status().message().find(words), std::string::npos) << r.status().ToString();
}

TEST(ClipTokenizerLoad, MissingFileIsNotFound) {
  ScopedTempDir dir;
  ExpectLoadError(dir.Sub("absent.txt.gz"), StatusCode::kNotFound, "no such file");
}

TEST(ClipTokenizerLoad, DamagedGzipIsCorruption) {
  ScopedTempDir dir;
  const std::string real = ReadBytes(kVocab);
  ASSERT_GT(real.size(), 1000000u);
  // Cut short: the stream ends before its trailer.
  WriteBytes(dir.Sub("short.txt.gz"), real.substr(0, real.size() / 2));
  ExpectLoadError(dir.Sub("short.txt.gz"), StatusCode::kCorruption, "damaged gzip");
  // Bytes overwritten in the middle: invalid deflate data or a CRC mismatch.
  std::string flipped = real;
  for (size_t i = flipped.size() / 3; i < flipped.size() / 3 + 64; ++i) flipped[i] ^= 0x5A;
  WriteBytes(dir.Sub("flipped.txt.gz"), flipped);
  ExpectLoadError(dir.Sub("flipped.txt.gz"), StatusCode::kCorruption, "damaged gzip");
  // Not gzip at all (zlib would pass it through as plain text).
  WriteBytes(dir.Sub("plain.txt.gz"), VocabLines(60000));
  ExpectLoadError(dir.Sub("plain.txt.gz"), StatusCode::kCorruption, "not a gzip file");
  WriteBytes(dir.Sub("empty.txt.gz"), "");
  auto empty = ClipTokenizer::Load(dir.Sub("empty.txt.gz"));
  EXPECT_EQ(empty.status().code(), StatusCode::kCorruption) << empty.status().ToString();
}

TEST(ClipTokenizerLoad, TruncatedVocabularyIsCorruption) {
  ScopedTempDir dir;
  WriteGzip(dir.Sub("short_vocab.txt.gz"), VocabLines(1001));
  ExpectLoadError(dir.Sub("short_vocab.txt.gz"), StatusCode::kCorruption, "has 1000 merge lines");
  // One line short of what CLIP uses.
  WriteGzip(dir.Sub("one_short.txt.gz"), VocabLines(ClipTokenizer::kMerges));
  ExpectLoadError(dir.Sub("one_short.txt.gz"), StatusCode::kCorruption,
                  "has " + std::to_string(ClipTokenizer::kMerges - 1) + " merge lines");
  // Exactly the lines CLIP uses is enough.
  WriteGzip(dir.Sub("exact.txt.gz"), VocabLines(ClipTokenizer::kMerges + 1));
  auto exact = ClipTokenizer::Load(dir.Sub("exact.txt.gz"));
  ASSERT_TRUE(exact.ok()) << exact.status().ToString();
  EXPECT_EQ((*exact)->Encode("a photo of a cat"), (Ids{320, 1125, 539, 320, 2368}));
}

TEST(ClipTokenizerLoad, MalformedMergeLinesAreCorruption) {
  ScopedTempDir dir;
  std::string lines = VocabLines(60000);
  // Line 3 (the second merge) gets a third field.
  const size_t second = lines.find('\n', lines.find('\n') + 1) + 1;
  std::string three = lines;
  three.insert(three.find('\n', second), " x");
  WriteGzip(dir.Sub("three.txt.gz"), three);
  ExpectLoadError(dir.Sub("three.txt.gz"), StatusCode::kCorruption, "line 3");
  // A symbol no earlier line makes.
  std::string unknown = lines;
  unknown.replace(second, unknown.find('\n', second) - second, "in qqqqq");
  WriteGzip(dir.Sub("unknown.txt.gz"), unknown);
  ExpectLoadError(dir.Sub("unknown.txt.gz"), StatusCode::kCorruption, "'qqqqq'");
}

}  // namespace
}  // namespace dynspec
