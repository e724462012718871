// Tests for how the index stores and compares vectors: the run-time selected inner-product
// kernels and binary16 conversion (src/index/dot_kernel.h), float16 partitions, and graph
// mode holding each vector once (src/index/partition.h).

#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <vector>

#include "index/dot_kernel.h"
#include "index/partition.h"
#include "test_util.h"

namespace dynspec {
namespace {

using Vec = std::vector<float>;

using testing_util::RandomUnit;

double ReferenceDot(const float* a, const float* b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

TEST(DotKernel, MatchesDoublePrecisionAtEveryLength) {
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<float> u(-1, 1);
  // Lengths around every unrolled width (4, 8, 16, 32) and the dimensions the engine uses.
  for (size_t n : {0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 100, 128, 255, 256, 257, 512}) {
    Vec a(n), b(n);
    for (size_t i = 0; i < n; ++i) a[i] = u(rng), b[i] = u(rng);
    EXPECT_NEAR(DotF32(a.data(), b.data(), n), ReferenceDot(a.data(), b.data(), n), 1e-4)
        << "n = " << n << ", kernel " << DotKernelName();
  }
}

TEST(DotKernel, HalfConversionKnownValues) {
  EXPECT_EQ(FloatToHalf(0.0f), 0x0000);
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(FloatToHalf(1.0f), 0x3C00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xC000);
  EXPECT_EQ(FloatToHalf(0.1f), 0x2E66);  // 0.0999755859375, the nearest binary16
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7BFF);
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7C00);                          // rounds up to infinity
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -24)), 0x0001);             // smallest subnormal
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -26)), 0x0000);             // below half of it
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3C00);      // tie: to even
  EXPECT_EQ(FloatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);  // tie: to even (up)
  EXPECT_EQ(HalfToFloat(0x3C00), 1.0f);
  EXPECT_EQ(HalfToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_TRUE(std::isinf(HalfToFloat(0x7C00)));
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7E00)));
}

TEST(DotKernel, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    const float f = HalfToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(FloatToHalf(f), h) << "half 0x" << std::hex << h;
  }
}

TEST(DotKernel, HalfConversionRoundsToNearest) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<float> u(-3, 3);
  for (int i = 0; i < 100000; ++i) {
    const float f = u(rng) * std::ldexp(1.0f, static_cast<int>(rng() % 30) - 20);
    const uint16_t h = FloatToHalf(f);
    const float back = HalfToFloat(h);
    // The neighbours of h on either side are no closer to f.
    for (int step : {-1, 1}) {
      const uint16_t other = static_cast<uint16_t>(h + step);
      if ((other & 0x7C00) == 0x7C00 || ((other ^ h) & 0x8000)) continue;
      EXPECT_LE(std::fabs(back - f), std::fabs(HalfToFloat(other) - f)) << f;
    }
  }
}

TEST(DotKernel, HalfDotMatchesDecodedFloats) {
  std::mt19937_64 rng(9);
  for (size_t n : {1, 8, 15, 16, 17, 40, 256, 300}) {
    Vec a = RandomUnit(static_cast<int>(n), rng), b = RandomUnit(static_cast<int>(n), rng);
    std::vector<uint16_t> ha(n), hb(n);
    FloatsToHalves(a, ha.data());
    FloatsToHalves(b, hb.data());
    Vec da(n), db(n);
    HalvesToFloats(ha.data(), da);
    HalvesToFloats(hb.data(), db);
    EXPECT_NEAR(DotF16(ha.data(), hb.data(), n), ReferenceDot(da.data(), db.data(), n), 1e-5);
    // And the half dot is close to the float dot (unit vectors).
    EXPECT_NEAR(DotF16(ha.data(), hb.data(), n), ReferenceDot(a.data(), b.data(), n), 2e-3);
  }
}

class Float16Partition : public ::testing::TestWithParam<bool> {
 protected:
  // Param: graph mode (true) or exact mode.
  IndexOptions Options(VectorStorage storage) const {
    IndexOptions o;
    o.vector_storage = storage;
    o.exact_search_max_items = GetParam() ? 64 : 100000;
    return o;
  }
};

TEST_P(Float16Partition, SearchesLikeFloat32WithinHalfPrecision) {
  constexpr int kDim = 64;
  std::mt19937_64 rng(11);
  auto f32 = NewPartition(kDim, Options(VectorStorage::kFloat32));
  auto f16 = NewPartition(kDim, Options(VectorStorage::kFloat16));
  std::vector<Vec> vectors;
  for (uint64_t label = 0; label < 600; ++label) {
    vectors.push_back(RandomUnit(kDim, rng));
    ASSERT_TRUE(f32->Add(label, vectors.back()).ok());
    ASSERT_TRUE(f16->Add(label, vectors.back()).ok());
  }
  size_t overlap = 0, total = 0;
  for (int q = 0; q < 50; ++q) {
    const Vec query = RandomUnit(kDim, rng);
    auto a = f32->Search(query, 10);
    auto b = f16->Search(query, 10);
    ASSERT_TRUE(a.ok() && b.ok());
    std::set<uint64_t> want;
    for (const auto& n : *a) want.insert(n.label);
    for (const auto& n : *b) {
      overlap += want.count(n.label);
      const double exact = ReferenceDot(query.data(), vectors[n.label].data(), kDim);
      EXPECT_NEAR(n.similarity, exact, 2e-3);
    }
    total += a->size();
  }
  EXPECT_GE(static_cast<double>(overlap) / static_cast<double>(total), 0.9);
  // The stored vector is the half-precision one; HasVector compares in that precision.
  auto got = f16->GetVector(5);
  ASSERT_TRUE(got.ok());
  for (int d = 0; d < kDim; ++d) EXPECT_NEAR((*got)[d], vectors[5][d], 1e-3);
  EXPECT_NE(*got, vectors[5]);
  EXPECT_TRUE(f16->HasVector(5, vectors[5]));
  EXPECT_TRUE(f16->HasVector(5, *got));
  EXPECT_FALSE(f16->HasVector(5, vectors[6]));
  EXPECT_FALSE(f16->HasVector(9999, vectors[5]));
  EXPECT_TRUE(f32->HasVector(5, vectors[5]));
  EXPECT_FALSE(f32->HasVector(5, *got));
  // Half the bytes per vector (the graph's links and maps are the same in both).
  EXPECT_LT(f16->MemoryBytes(), f32->MemoryBytes());
}

TEST_P(Float16Partition, RejectsValuesBeyondTheHalfRange) {
  auto p = NewPartition(4, Options(VectorStorage::kFloat16));
  const Status st = p->Add(1, Vec{1e6f, 0, 0, 0});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("float16"), std::string::npos) << st.message();
  EXPECT_EQ(p->size(), 0u);
}

TEST_P(Float16Partition, SnapshotRoundTripAndStorageMismatch) {
  constexpr int kDim = 32;
  std::mt19937_64 rng(13);
  auto p = NewPartition(kDim, Options(VectorStorage::kFloat16));
  for (uint64_t label = 0; label < 200; ++label)
    ASSERT_TRUE(p->Add(label, RandomUnit(kDim, rng)).ok());
  ASSERT_TRUE(p->Remove(17).ok());
  testing_util::ScopedTempDir dir;
  const std::string path = dir.Sub("p.part");
  ASSERT_TRUE(p->Save(path).ok());
  auto loaded = LoadPartition(path, kDim, Options(VectorStorage::kFloat16));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->size(), p->size());
  for (int q = 0; q < 20; ++q) {
    const Vec query = RandomUnit(kDim, rng);
    auto a = p->Search(query, 8);
    auto b = (*loaded)->Search(query, 8);
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(a->size(), b->size());
    for (size_t i = 0; i < a->size(); ++i) {
      EXPECT_EQ((*a)[i].label, (*b)[i].label);
      EXPECT_EQ((*a)[i].similarity, (*b)[i].similarity);
    }
  }
  auto other = LoadPartition(path, kDim, Options(VectorStorage::kFloat32));
  EXPECT_EQ(other.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(other.status().message().find("float16"), std::string::npos);
}

TEST_P(Float16Partition, SnapshotsAreVersionThreeAndVersionOneStillLoads) {
  auto p = NewPartition(8, Options(VectorStorage::kFloat32));
  std::mt19937_64 rng(17);
  for (uint64_t label = 0; label < 100; ++label)
    ASSERT_TRUE(p->Add(label, RandomUnit(8, rng), /*sequence=*/label + 1).ok());
  testing_util::ScopedTempDir dir;
  const std::string path = dir.Sub("p.part");
  uint64_t saved = 0;
  ASSERT_TRUE(p->Save(path, &saved).ok());
  EXPECT_EQ(saved, 100u);
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  uint32_t version;
  std::memcpy(&version, bytes.data() + 8, sizeof(version));
  EXPECT_EQ(version, 3u);
  auto f16 = LoadPartition(path, 8, Options(VectorStorage::kFloat16));
  EXPECT_EQ(f16.status().code(), StatusCode::kFailedPrecondition);
  auto back = LoadPartition(path, 8, Options(VectorStorage::kFloat32));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ((*back)->AppliedSequence(), 100u);
  if (GetParam()) return;
  // Exact mode: a version 1 file (what builds before float16 wrote) is the same header
  // without the vector storage byte and the applied sequence. It loads, with sequence 0.
  constexpr size_t kCommonHeader = 8 + 4 + 4 + 8 + 4 + 4 + 4 + 8 + 1;
  std::string v1 = bytes.substr(0, kCommonHeader) +
                   bytes.substr(kCommonHeader + 1 + 8, bytes.size() - 4 - (kCommonHeader + 9));
  const uint32_t one = 1;
  std::memcpy(v1.data() + 8, &one, sizeof(one));
  const uint32_t crc = static_cast<uint32_t>(
      crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(v1.data()), v1.size()));
  v1.append(reinterpret_cast<const char*>(&crc), sizeof(crc));
  const std::string v1_path = dir.Sub("v1.part");
  std::ofstream(v1_path, std::ios::binary) << v1;
  auto old = LoadPartition(v1_path, 8, Options(VectorStorage::kFloat32));
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_EQ((*old)->AppliedSequence(), 0u);
  EXPECT_EQ((*old)->size(), 100u);
  const auto query = RandomUnit(8, rng);
  auto a = (*old)->Search(query, 10);
  auto b = p->Search(query, 10);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->size(), b->size());
  for (size_t i = 0; i < a->size(); ++i) EXPECT_EQ((*a)[i].label, (*b)[i].label);
}

INSTANTIATE_TEST_SUITE_P(Modes, Float16Partition, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Hnsw" : "Exact"; });

TEST(PartitionMemory, GraphModeHoldsEachVectorOnce) {
  // D = 256: a vector is 1 KiB, so a second copy per item would show plainly next to the
  // graph's ~200 bytes of links, locks and maps per item.
  constexpr int kDim = 256;
  constexpr size_t kItems = 2000;
  IndexOptions o;
  o.exact_search_max_items = 200;
  o.hnsw_ef_construction = 40;
  auto p = NewPartition(kDim, o);
  std::mt19937_64 rng(19);
  std::vector<Vec> vectors;
  for (uint64_t label = 0; label < kItems; ++label) {
    vectors.push_back(RandomUnit(kDim, rng));
    ASSERT_TRUE(p->Add(label, vectors.back()).ok());
  }
  const size_t vector_bytes = kItems * kDim * sizeof(float);
  // Graph mode: the vectors (in graph elements; capacity grows by 1.25x, here to 2249 slots)
  // plus ~200 bytes of links, locks and maps per element. A second
  // copy of every vector would push this past twice the vector bytes.
  EXPECT_LT(p->MemoryBytes(), vector_bytes * 2);
  EXPECT_GT(p->MemoryBytes(), vector_bytes);
  // The vectors still come back exactly, and leaving graph mode (shrinking below half the
  // threshold) copies them back out of the graph.
  for (uint64_t label : {0u, 700u, 1999u}) EXPECT_EQ(*p->GetVector(label), vectors[label]);
  for (uint64_t label = 50; label < kItems; ++label) ASSERT_TRUE(p->Remove(label).ok());
  EXPECT_EQ(p->size(), 50u);
  for (uint64_t label = 0; label < 50; ++label) EXPECT_EQ(*p->GetVector(label), vectors[label]);
  auto res = p->Search(vectors[7], 1);
  ASSERT_TRUE(res.ok());
  ASSERT_EQ(res->size(), 1u);
  EXPECT_EQ((*res)[0].label, 7u);
  // Exact mode again: no graph (which alone would take ~2.7 MB), just the flat copy and the
  // label containers, whose capacity stays from the peak.
  EXPECT_LT(p->MemoryBytes(), 50 * kDim * sizeof(float) + kItems * 100);
}

}  // namespace
}  // namespace dynspec
