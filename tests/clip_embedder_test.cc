// The CLIP embedder on tiny TorchScript models this test builds and saves itself (no Python,
// no downloaded weights): "TinyClip" has CLIP's interface (encode_text on [B, 77] int64 ids,
// encode_image on [B, 3, 224, 224] floats, both -> [B, D]) with simple, exactly computable
// encoders, so the embedder's output can be checked against a plain C++ computation over
// the same weights, fed by the real tokenizer and the real preprocessing.
#include "clip/clip_embedder.h"

#include <gtest/gtest.h>
#include <torch/script.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "dynspec/engine.h"
#include "dynspec/store.h"
#include "embed/clip_tokenizer.h"
#include "media/clip_preprocess.h"
#include "media/image.h"
#include "test_util.h"

namespace dynspec {
namespace {

constexpr int kDim = 16;
constexpr int kVocab = ClipTokenizer::kVocabSize;
constexpr int kCells = 3 * 7 * 7;  // encode_image averages 32 x 32 cells of each channel

std::string VocabPath() {
  return std::string(DYNSPEC_DATA_DIR) + "/clip/bpe_simple_vocab_16e6.txt.gz";
}

// Fixed pseudo-random weights in [-1, 1), from a generator whose sequence the C++ standard
// fixes (mt19937), so the models are the same on every machine.
std::vector<float> Weights(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<float> w(n);
  for (float& x : w) x = float(double(gen()) / 2147483648.0 - 1.0);
  return w;
}
const std::vector<float>& TextWeights() {
  static const std::vector<float> w = Weights(size_t(kVocab) * kDim, 7);
  return w;
}
const std::vector<float>& ImageWeights(int dim) {
  static std::map<int, std::vector<float>> cache;
  auto& w = cache[dim];
  if (w.empty()) w = Weights(size_t(kCells) * dim, 11);
  return w;
}

// The reference text encoder: the mean of the embedding rows of the non-zero ids.
constexpr char kText[] = R"(
def encode_text(self, tokens: Tensor) -> Tensor:
    emb = torch.embedding(self.token_embedding, tokens)
    mask = (tokens != 0).unsqueeze(-1).to(emb.dtype)
    return (emb * mask).sum(1) / mask.sum(1)
)";
// The reference image encoder: the mean of each channel over a 7 x 7 grid of 32 x 32 cells,
// projected linearly.
constexpr char kImage[] = R"(
def encode_image(self, image: Tensor) -> Tensor:
    b = image.size(0)
    cells = image.reshape(b, 3, 7, 32, 7, 32).mean([3, 5]).reshape(b, 147)
    return torch.matmul(cells, self.image_proj)
)";

// Builds a module with the two weights and the given methods and saves it under `dir`.
std::string SaveModel(const std::string& dir, const std::string& name,
                      const std::vector<std::string>& methods, int image_dim = kDim) {
  torch::jit::Module m("TinyClip");
  auto text = TextWeights();
  auto image = ImageWeights(image_dim);
  m.register_parameter("token_embedding",
                       torch::from_blob(text.data(), {kVocab, kDim}, torch::kFloat).clone(), false);
  m.register_parameter("image_proj",
                       torch::from_blob(image.data(), {kCells, image_dim}, torch::kFloat).clone(),
                       false);
  for (const auto& src : methods) m.define(src);
  const std::string path = dir + "/" + name + ".pt";
  m.save(path);
  return path;
}

void Normalize(std::vector<float>* v) {
  double sq = 0;
  for (float x : *v) sq += double(x) * x;
  for (float& x : *v) x = float(x / std::sqrt(sq));
}

std::vector<float> ExpectedText(const ClipTokenizer& tok, const std::string& text) {
  auto ids = tok.Tokenize(text).value();
  std::vector<double> sum(kDim, 0.0);
  int n = 0;
  for (int32_t id : ids) {
    if (id == 0) continue;
    ++n;
    for (int d = 0; d < kDim; ++d) sum[d] += TextWeights()[size_t(id) * kDim + d];
  }
  std::vector<float> v(kDim);
  for (int d = 0; d < kDim; ++d) v[d] = float(sum[d] / n);
  Normalize(&v);
  return v;
}

std::vector<float> ExpectedImage(const RgbImage& image) {
  auto t = ClipPreprocess(image).value();
  std::vector<double> cells(kCells, 0.0);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 224; ++y)
      for (int x = 0; x < 224; ++x) cells[(c * 7 + y / 32) * 7 + x / 32] += t.at(c, y, x);
  std::vector<float> v(kDim, 0.0f);
  for (int d = 0; d < kDim; ++d) {
    double s = 0;
    for (int k = 0; k < kCells; ++k) s += cells[k] / 1024.0 * ImageWeights(kDim)[k * kDim + d];
    v[d] = float(s);
  }
  Normalize(&v);
  return v;
}

// A picture with structure (gradients and a block), so different images differ in every cell.
RgbImage TestImage(int w, int h, int seed) {
  RgbImage img(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = img.at(x, y);
      p[0] = uint8_t((x * 255 / w + seed * 40) % 256);
      p[1] = uint8_t((y * 255 / h + seed * 90) % 256);
      p[2] = uint8_t(((x / 20 + y / 20 + seed) % 3) * 100);
    }
  return img;
}

void ExpectNear(const std::vector<float>& a, const std::vector<float>& b, float tol) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], tol) << "value " << i;
}

double Norm(const std::vector<float>& v) {
  double sq = 0;
  for (float x : v) sq += double(x) * x;
  return std::sqrt(sq);
}

class ClipEmbedderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tok = ClipTokenizer::Load(VocabPath());
    ASSERT_TRUE(tok.ok()) << tok.status().ToString();
    tokenizer_ = std::move(tok).value();
    model_ = SaveModel(dir_.path(), "tiny", {kText, kImage});
  }
  std::unique_ptr<ClipEmbedder> LoadOk(const std::string& path,
                                       const ClipEmbedderOptions& options = {}) {
    auto e = ClipEmbedder::Load(path, VocabPath(), options);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return e.ok() ? std::move(e).value() : nullptr;
  }
  Status LoadError(const std::string& path) {
    auto e = ClipEmbedder::Load(path, VocabPath());
    EXPECT_FALSE(e.ok());
    return e.status();
  }

  testing_util::ScopedTempDir dir_;
  std::unique_ptr<ClipTokenizer> tokenizer_;
  std::string model_;
};

TEST_F(ClipEmbedderTest, TextMatchesReferenceComputation) {
  auto clip = LoadOk(model_);
  ASSERT_TRUE(clip);
  EXPECT_EQ(clip->dim(), kDim);
  EXPECT_EQ(clip->name(), "clip");
  for (std::string text :
       {"a photo of a cat", "A diagram", "Guitar lessons, gear reviews & songs"}) {
    auto v = clip->EmbedText(text);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    ASSERT_EQ(int(v->size()), kDim);
    EXPECT_NEAR(Norm(*v), 1.0, 1e-6);
    ExpectNear(*v, ExpectedText(*tokenizer_, text), 1e-5f);
  }
}

TEST_F(ClipEmbedderTest, ImageMatchesReferenceComputation) {
  auto clip = LoadOk(model_);
  ASSERT_TRUE(clip);
  // Landscape, portrait and square, each resized and cropped by ClipPreprocess.
  for (auto img : {TestImage(300, 200, 1), TestImage(150, 260, 2), TestImage(224, 224, 3)}) {
    auto v = clip->EmbedImage(img);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_NEAR(Norm(*v), 1.0, 1e-6);
    ExpectNear(*v, ExpectedImage(img), 1e-5f);
  }
}

TEST_F(ClipEmbedderTest, BatchesEqualSinglesAndRepeatsAreIdentical) {
  ClipEmbedderOptions small;
  small.max_batch = 2;  // 3 texts: a batch of 2 and one of 1
  auto clip = LoadOk(model_);
  auto split = LoadOk(model_, small);
  ASSERT_TRUE(clip && split);
  const std::vector<std::string> texts = {"a photo of a dog", "sunset over the sea",
                                          "knitting patterns for beginners"};
  auto batch = clip->EmbedTexts(texts);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_EQ(batch->size(), 3u);
  auto chunks = split->EmbedTexts(texts);
  ASSERT_TRUE(chunks.ok());
  for (size_t i = 0; i < texts.size(); ++i) {
    auto single = clip->EmbedText(texts[i]);
    ASSERT_TRUE(single.ok());
    ExpectNear((*batch)[i], *single, 1e-5f);
    ExpectNear((*chunks)[i], *single, 1e-5f);
  }
  for (int rep = 0; rep < 4; ++rep) {  // past the JIT's profiling runs
    auto again = clip->EmbedTexts(texts);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, *batch);
  }

  const std::vector<RgbImage> images = {TestImage(320, 240, 4), TestImage(240, 320, 5),
                                        TestImage(500, 500, 6)};
  auto ibatch = clip->EmbedImages(images);
  ASSERT_TRUE(ibatch.ok()) << ibatch.status().ToString();
  auto ichunks = split->EmbedImages(images);
  ASSERT_TRUE(ichunks.ok());
  for (size_t i = 0; i < images.size(); ++i) {
    auto single = clip->EmbedImage(images[i]);
    ASSERT_TRUE(single.ok());
    ExpectNear((*ibatch)[i], *single, 1e-5f);
    ExpectNear((*ichunks)[i], *single, 1e-5f);
  }
  for (int rep = 0; rep < 4; ++rep) {
    auto again = clip->EmbedImages(images);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, *ibatch);
  }
}

TEST_F(ClipEmbedderTest, ImageFileEqualsDecodedImage) {
  auto clip = LoadOk(model_);
  ASSERT_TRUE(clip);
  const RgbImage img = TestImage(260, 180, 7);
  const std::string path = dir_.Sub("picture.png");
  ASSERT_TRUE(WriteFileBytes(path, EncodePng(img).value()).ok());
  auto from_file = clip->EmbedImageFile(path);
  ASSERT_TRUE(from_file.ok()) << from_file.status().ToString();
  EXPECT_EQ(*from_file, clip->EmbedImage(img).value());

  auto missing = clip->EmbedImageFile(dir_.Sub("none.jpg"));
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST_F(ClipEmbedderTest, RejectsBadInput) {
  ClipEmbedderOptions strict;
  strict.truncate = false;
  auto clip = LoadOk(model_, strict);
  ASSERT_TRUE(clip);
  EXPECT_EQ(clip->EmbedText("").status().code(), StatusCode::kInvalidArgument);
  auto blank = clip->EmbedTexts({"fine", "   "});
  EXPECT_EQ(blank.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(blank.status().message().find("texts[1]"), std::string::npos)
      << blank.status().ToString();
  EXPECT_EQ(clip->EmbedTexts({}).status().code(), StatusCode::kInvalidArgument);
  std::string long_text;
  for (int i = 0; i < 100; ++i) long_text += "word ";
  EXPECT_EQ(clip->EmbedText(long_text).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(clip->EmbedImages({}).status().code(), StatusCode::kInvalidArgument);
  RgbImage broken(4, 4);
  broken.pixels.resize(5);
  auto bad = clip->EmbedImages({TestImage(50, 50, 1), broken});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("images[1]"), std::string::npos) << bad.status().ToString();

  // With truncation (the default), a long text keeps its first 76 tokens.
  auto lenient = LoadOk(model_);
  ASSERT_TRUE(lenient);
  auto v = lenient->EmbedText(long_text);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  ExpectNear(*v, ExpectedText(*tokenizer_, long_text), 1e-5f);
}

TEST_F(ClipEmbedderTest, LoadErrors) {
  EXPECT_EQ(LoadError(dir_.Sub("missing.pt")).code(), StatusCode::kNotFound);
  EXPECT_EQ(LoadError(dir_.path()).code(), StatusCode::kInvalidArgument);
  {
    std::ofstream(dir_.Sub("garbage.pt")) << "this is not a TorchScript archive";
    Status s = LoadError(dir_.Sub("garbage.pt"));
    EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.ToString();
    EXPECT_NE(s.message().find("garbage.pt"), std::string::npos);
  }
  {
    auto e = ClipEmbedder::Load(model_, dir_.Sub("no_vocab.txt.gz"));
    EXPECT_EQ(e.status().code(), StatusCode::kNotFound);
  }
  {
    ClipEmbedderOptions o;
    o.max_batch = 0;
    EXPECT_EQ(ClipEmbedder::Load(model_, VocabPath(), o).status().code(),
              StatusCode::kInvalidArgument);
  }
}

TEST_F(ClipEmbedderTest, ModelsThatBreakTheContract) {
  struct Case {
    std::string name;
    std::vector<std::string> methods;
    int image_dim;
    std::string expect;  // in the message
  };
  const std::vector<Case> cases = {
      {"no_image", {kText}, kDim, "no method encode_image"},
      {"no_text", {kImage}, kDim, "no method encode_text"},
      {"text_3d",
       {R"(
def encode_text(self, tokens: Tensor) -> Tensor:
    return torch.embedding(self.token_embedding, tokens).mean(1).unsqueeze(-1)
)",
        kImage},
       kDim,
       "returned [1, 16, 1], expected [1, D]"},
      {"other_image_dim",
       {kText, kImage},
       kDim + 1,
       "returned [1, 17], but the model's dimension is 16"},
      {"int_output",
       {R"(
def encode_text(self, tokens: Tensor) -> Tensor:
    return tokens[:, :4]
)",
        kImage},
       kDim,
       "expected floating point"},
      {"tuple_output",
       {R"(
def encode_text(self, tokens: Tensor):
    x = torch.embedding(self.token_embedding, tokens).mean(1)
    return (x, x)
)",
        kImage},
       kDim,
       "expected a [B, D] tensor"},
      {"wrong_input",
       {kText, R"(
def encode_image(self, image: Tensor) -> Tensor:
    return torch.matmul(image.reshape(image.size(0), 3 * 224 * 224), self.image_proj)
)"},
       kDim,
       "encode_image on [1, 3, 224, 224] failed"},
      {"nan_output",
       {R"(
def encode_text(self, tokens: Tensor) -> Tensor:
    return torch.embedding(self.token_embedding, tokens).mean(1) * float('nan')
)",
        kImage},
       kDim,
       "not finite"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = SaveModel(dir_.path(), c.name, c.methods, c.image_dim);
    Status s = LoadError(path);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
    EXPECT_NE(s.message().find(c.expect), std::string::npos) << s.ToString();
    EXPECT_NE(s.message().find(c.name + ".pt"), std::string::npos) << s.ToString();
  }
}

// A model that loads fine but fails on some inputs later (an exception inside the model for
// "cat", an infinite output for "dog"): the failure is a Status, and the embedder keeps
// working for other inputs.
TEST_F(ClipEmbedderTest, FailuresAfterLoadAreStatuses) {
  // 2368 is "cat</w>".
  const std::string path = SaveModel(dir_.path(), "moody",
                                     {R"(
def encode_text(self, tokens: Tensor) -> Tensor:
    x = torch.embedding(self.token_embedding, tokens).mean(1)
    if bool((tokens == 2368).any()):
        x = x.reshape(-1, 5)
    dog = (tokens == 1929).any(1, True)
    return torch.where(dog, x * float('inf'), x)
)",
                                      kImage});
  auto clip = LoadOk(path);
  ASSERT_TRUE(clip);
  auto cat = clip->EmbedText("a photo of a cat");
  EXPECT_EQ(cat.status().code(), StatusCode::kInternal);
  // libtorch's own message (a shape error inside the model) reaches the caller.
  EXPECT_NE(cat.status().message().find("is invalid for input of size"), std::string::npos)
      << cat.status().ToString();
  const auto dog_ids = tokenizer_->Encode("dog");
  ASSERT_EQ(dog_ids.size(), 1u);
  ASSERT_EQ(dog_ids[0], 1929);
  auto dog = clip->EmbedTexts({"a bird", "a dog"});
  EXPECT_EQ(dog.status().code(), StatusCode::kInternal);
  EXPECT_NE(dog.status().message().find("row 1 is not finite"), std::string::npos)
      << dog.status().ToString();
  EXPECT_TRUE(clip->EmbedText("a bird").ok());
}

TEST_F(ClipEmbedderTest, ManyThreadsGetTheSameVectors) {
  auto clip = LoadOk(model_);
  ASSERT_TRUE(clip);
  const std::vector<std::string> texts = {"red", "green apples", "blue whales", "yellow"};
  std::vector<std::vector<float>> expected;
  for (const auto& t : texts) expected.push_back(clip->EmbedText(t).value());
  const auto image = TestImage(240, 240, 2);
  const auto image_vec = clip->EmbedImage(image).value();
  std::vector<std::thread> threads;
  std::vector<int> mismatches(6, 0);
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        auto v = clip->EmbedText(texts[(t + i) % texts.size()]);
        if (!v.ok() || *v != expected[(t + i) % texts.size()]) ++mismatches[t];
        if (i % 5 == 0) {
          auto w = clip->EmbedImage(image);
          if (!w.ok() || *w != image_vec) ++mismatches[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 6; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

TEST_F(ClipEmbedderTest, ServesAsTheEngineEmbedder) {
  auto clip = LoadOk(model_);
  ASSERT_TRUE(clip);
  auto engine = Engine::Open(EngineOptions(), nullptr, clip->Share());
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  EXPECT_EQ((*engine)->embedding_dim(), kDim);
  ASSERT_TRUE((*engine)->Ingest({"text-item", "p", {"a photo of a dog"}}).ok());
  // An image item, embedded by the embedder kept outside the engine.
  auto v = clip->EmbedImage(TestImage(300, 300, 3));
  ASSERT_TRUE(v.ok());
  Status s = (*engine)->Ingest({"image-item", "p", {.vector = *v}});
  ASSERT_TRUE(s.ok()) << s.ToString();
  PredictRequest request;
  request.item_id = "text-item";
  auto p = (*engine)->Predict(request);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_FALSE(p->heads.empty());
}

// `dynspec ingest --clip-model` embeds an --image with CLIP's image encoder and --text with
// its text encoder (one loaded model serves both): the stored vectors are the embedder's.
TEST_F(ClipEmbedderTest, CliIngestsImagesAndTextWithTheClipModel) {
  auto clip = LoadOk(model_);
  ASSERT_TRUE(clip);
  const std::string picture = dir_.Sub("picture.png");
  ASSERT_TRUE(WriteFileBytes(picture, EncodePng(TestImage(260, 180, 7)).value()).ok());
  const std::string data = dir_.Sub("data");
  auto quoted = [](const std::string& s) { return "'" + s + "'"; };
  const std::string ingest = std::string(DYNSPEC_CLI_PATH) + " ingest --data-dir " + quoted(data) +
                             " --clip-model " + quoted(model_) + " --clip-vocab " +
                             quoted(VocabPath()) + " --provider gallery ";
  const std::string text = "a photo of a cat";
  for (const std::string& args :
       {"--id pic --image " + quoted(picture), "--id caption --text " + quoted(text)}) {
    const std::string command = ingest + args + " > " + quoted(dir_.Sub("out.txt"));
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
  }
  auto store = OpenDurableStore(data, DurableStoreOptions());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  StoreBatch all;
  ASSERT_TRUE((*store)->LoadAll(&all).ok());
  std::map<std::string, std::vector<float>> stored;
  for (const auto& item : all.put_items) stored[item.id] = item.embedding;
  ASSERT_EQ(stored.size(), 2u);
  // The engine normalizes a given vector again, which may move it by an ulp.
  ExpectNear(stored["pic"], clip->EmbedImageFile(picture).value(), 1e-6f);
  ExpectNear(stored["caption"], clip->EmbedText(text).value(), 1e-6f);
}

}  // namespace
}  // namespace dynspec
