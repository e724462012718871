// Hashing text embedder: determinism, unit norm, similarity ordering, errors.
#include <gtest/gtest.h>

#include <cmath>

#include "dynspec/embedder.h"

namespace dynspec {
namespace {

double Cos(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

std::vector<float> Embed(const Embedder& e, const std::string& text) {
  auto v = e.EmbedText(text);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return v.ok() ? *v : std::vector<float>();
}

TEST(HashingEmbedder, DeterministicUnitVectorsOfConfiguredDimension) {
  EmbedOptions o;
  o.dim = 128;
  auto e = NewHashingTextEmbedder(o);
  auto e2 = NewHashingTextEmbedder(o);
  auto a = Embed(*e, "Guitar magazine for musicians: gear reviews and lessons");
  auto b = Embed(*e2, "Guitar magazine for musicians: gear reviews and lessons");
  ASSERT_EQ(a.size(), 128u);
  EXPECT_EQ(a, b);
  double n2 = 0;
  for (float x : a) n2 += x * x;
  EXPECT_NEAR(n2, 1.0, 1e-5);
}

TEST(HashingEmbedder, SharedVocabularyIsCloserThanUnrelatedText) {
  auto e = NewHashingTextEmbedder(EmbedOptions());
  auto guitar = Embed(*e, "Guitar Player magazine: guitar gear reviews, lessons for guitarists");
  auto guitar2 = Embed(*e, "Acoustic guitar lessons and gear reviews for every guitarist");
  auto cooking = Embed(*e, "Healthy recipes, cooking tips and kitchen ideas for families");
  auto cooking2 = Embed(*e, "Quick family recipes and cooking ideas for busy kitchens");
  EXPECT_GT(Cos(guitar, guitar2), Cos(guitar, cooking) + 0.2);
  EXPECT_GT(Cos(cooking, cooking2), Cos(cooking, guitar2) + 0.2);
  // Morphology: character n-grams make "guitarist" close to "guitarists".
  // (Whole words dominate by design: n-grams carry 0.35 of a word's weight.)
  EXPECT_GT(Cos(Embed(*e, "guitarist"), Embed(*e, "guitarists")),
            std::abs(Cos(Embed(*e, "guitarist"), Embed(*e, "recipes"))) + 0.05);
}

TEST(HashingEmbedder, CaseAndPunctuationDoNotMatter) {
  auto e = NewHashingTextEmbedder(EmbedOptions());
  EXPECT_NEAR(Cos(Embed(*e, "Science News!"), Embed(*e, "science news")), 1.0, 1e-5);
}

TEST(HashingEmbedder, EmptyOrWordlessTextIsAnError) {
  auto e = NewHashingTextEmbedder(EmbedOptions());
  auto empty = e->EmbedText("");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(empty.status().message().find("empty"), std::string::npos);
  auto punct = e->EmbedText(" ,.;!? ");
  ASSERT_FALSE(punct.ok());
  EXPECT_NE(punct.status().message().find("no words"), std::string::npos);
}

TEST(HashingEmbedder, SeedChangesTheSpace) {
  EmbedOptions a, b;
  b.seed = 7;
  auto va = Embed(*NewHashingTextEmbedder(a), "history of science");
  auto vb = Embed(*NewHashingTextEmbedder(b), "history of science");
  EXPECT_LT(Cos(va, vb), 0.5);
}

}  // namespace
}  // namespace dynspec
