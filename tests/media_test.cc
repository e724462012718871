// The media layer: image decoding, CLIP preprocessing, the image and video embedders.
// Every image and video is generated here (videos with the ffmpeg command-line tool; those
// tests are skipped when it is not installed).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <span>
#include <thread>

#include "media/clip_preprocess.h"
#include "media/image.h"
#include "media/image_embedder.h"
#include "media/video_embedder.h"
#include "test_util.h"

namespace dynspec {
namespace {

namespace fs = std::filesystem;
using dynspec::testing_util::ScopedTempDir;

// ------------------------------------------------------------------------------ helpers

double Cos(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    s += double(a[i]) * b[i];
    na += double(a[i]) * a[i];
    nb += double(b[i]) * b[i];
  }
  return s / std::sqrt(na * nb);
}

double Norm(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += double(x) * x;
  return std::sqrt(s);
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

RgbImage Constant(int w, int h, uint8_t r, uint8_t g, uint8_t b) {
  RgbImage img(w, h);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      img.at(x, y)[0] = r;
      img.at(x, y)[1] = g;
      img.at(x, y)[2] = b;
    }
  }
  return img;
}

// A busy pattern with every value from 0 to 255: exercises clamping of the cubic kernel's
// overshoot.
RgbImage Pattern(int w, int h) {
  RgbImage img(w, h);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      for (int c = 0; c < 3; ++c)
        img.at(x, y)[c] = uint8_t((x * 37 + y * 91 + c * 53 + x * y * 7) % 256);
    }
  }
  return img;
}

RgbImage RandomImage(int w, int h, uint32_t seed) {
  std::mt19937 rng(seed);
  RgbImage img(w, h);
  for (auto& p : img.pixels) p = uint8_t(rng() & 0xFF);
  return img;
}

// ------------------------------------------------------------------------------ decoding

TEST(MediaDecode, PngRoundTripIsExact) {
  const RgbImage img = RandomImage(37, 23, 1);
  auto png = EncodePng(img);
  ASSERT_TRUE(png.ok()) << png.status().ToString();
  auto back = DecodeImage(*png);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->width, 37);
  EXPECT_EQ(back->height, 23);
  EXPECT_EQ(back->pixels, img.pixels);
}

TEST(MediaDecode, JpegRoundTripIsClose) {
  // Smooth content, which JPEG keeps well.
  RgbImage img(64, 48);
  for (int y = 0; y < 48; ++y) {
    for (int x = 0; x < 64; ++x) {
      img.at(x, y)[0] = uint8_t(x * 4);
      img.at(x, y)[1] = uint8_t(y * 5);
      img.at(x, y)[2] = 128;
    }
  }
  auto jpg = EncodeJpeg(img, 95);
  ASSERT_TRUE(jpg.ok()) << jpg.status().ToString();
  auto back = DecodeImage(*jpg);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->width, 64);
  ASSERT_EQ(back->height, 48);
  double err = 0;
  for (size_t i = 0; i < img.pixels.size(); ++i) err += std::abs(img.pixels[i] - back->pixels[i]);
  EXPECT_LT(err / img.pixels.size(), 2.0);
}

TEST(MediaDecode, FileErrorsNameThePath) {
  ScopedTempDir dir;
  auto missing = DecodeImageFile(dir.Sub("nope.jpg"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("nope.jpg"), std::string::npos);

  auto directory = DecodeImageFile(dir.Sub(""));
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.status().code(), StatusCode::kInvalidArgument);

  WriteText(dir.Sub("empty.png"), "");
  auto empty = DecodeImageFile(dir.Sub("empty.png"));
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(empty.status().message().find("empty"), std::string::npos);

  ImageDecodeOptions small;
  small.max_file_bytes = 10;
  WriteText(dir.Sub("big.png"), std::string(100, 'x'));
  auto big = DecodeImageFile(dir.Sub("big.png"), small);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), StatusCode::kResourceExhausted);
}

TEST(MediaDecode, UnsupportedFormatsAreNamed) {
  const std::string gif = "GIF89a\x01\x00\x01\x00";
  auto g = DecodeImage(std::span(reinterpret_cast<const uint8_t*>(gif.data()), gif.size()));
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(g.status().message().find("GIF"), std::string::npos) << g.status().message();

  const std::string text = "hello, this is not an image";
  auto t = DecodeImage(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(t.status().message().find("neither JPEG nor PNG"), std::string::npos);
}

TEST(MediaDecode, TruncatedDataIsCorruption) {
  const RgbImage img = RandomImage(40, 30, 2);
  for (bool jpeg : {true, false}) {
    auto bytes = jpeg ? EncodeJpeg(img, 90) : EncodePng(img);
    ASSERT_TRUE(bytes.ok());
    // Cut inside the pixel data, and inside the header.
    for (size_t keep : {bytes->size() * 2 / 3, size_t(20)}) {
      std::vector<uint8_t> cut(bytes->begin(), bytes->begin() + keep);
      auto r = DecodeImage(cut);
      ASSERT_FALSE(r.ok()) << (jpeg ? "jpeg " : "png ") << keep;
      EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << r.status().ToString();
    }
  }
}

TEST(MediaDecode, DamagedPngChunkIsCorruption) {
  auto png = EncodePng(RandomImage(16, 16, 3));
  ASSERT_TRUE(png.ok());
  // Flip a byte inside the IDAT chunk: its CRC no longer matches.
  std::vector<uint8_t> bad = *png;
  const auto idat = std::search(bad.begin(), bad.end(), std::begin("IDAT"), std::end("IDAT") - 1);
  ASSERT_NE(idat, bad.end());
  idat[10] ^= 0x5A;
  auto r = DecodeImage(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << r.status().ToString();
}

// The CRC-32 of PNG chunks (ISO 3309), bit by bit.
uint32_t Crc32(const uint8_t* p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return c ^ 0xFFFFFFFFu;
}

TEST(MediaDecode, OversizedImagesAreRefusedFromTheHeader) {
  const RgbImage img = RandomImage(20, 20, 4);
  ImageDecodeOptions o;
  o.max_pixels = 399;
  for (bool jpeg : {true, false}) {
    auto bytes = jpeg ? EncodeJpeg(img) : EncodePng(img);
    ASSERT_TRUE(bytes.ok());
    auto r = DecodeImage(*bytes, o);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
    EXPECT_NE(r.status().message().find("20x20"), std::string::npos) << r.status().message();
    o.max_pixels = 400;
    EXPECT_TRUE(DecodeImage(*bytes, o).ok());
    o.max_pixels = 399;
  }

  // Headers that claim 60000 x 60000 pixels (3.6 gigapixels, 10.8 GB of RGB) in a file of a
  // few hundred bytes: refused under the default limit without allocating.
  auto jpg = EncodeJpeg(img);
  ASSERT_TRUE(jpg.ok());
  std::vector<uint8_t> j = *jpg;
  size_t sof = 2;
  while (sof + 9 < j.size() && !(j[sof] == 0xFF && j[sof + 1] == 0xC0)) ++sof;
  ASSERT_LT(sof + 9, j.size());
  j[sof + 5] = j[sof + 7] = 60000 >> 8;
  j[sof + 6] = j[sof + 8] = 60000 & 0xFF;
  auto rj = DecodeImage(j);
  ASSERT_FALSE(rj.ok());
  EXPECT_EQ(rj.status().code(), StatusCode::kResourceExhausted) << rj.status().ToString();

  auto png = EncodePng(img);
  ASSERT_TRUE(png.ok());
  std::vector<uint8_t> p = *png;
  // Signature (8), IHDR length (4), "IHDR" (4), width (4), height (4), ..., CRC at 29.
  for (int k = 0; k < 2; ++k) {
    uint8_t* field = &p[16 + 4 * k];
    field[0] = 0, field[1] = 0, field[2] = 60000 >> 8, field[3] = 60000 & 0xFF;
  }
  const uint32_t crc = Crc32(&p[12], 17);
  for (int k = 0; k < 4; ++k) p[29 + k] = uint8_t(crc >> (24 - 8 * k));
  auto rp = DecodeImage(p);
  ASSERT_FALSE(rp.ok());
  EXPECT_EQ(rp.status().code(), StatusCode::kResourceExhausted) << rp.status().ToString();
}

// ----------------------------------------------------------------------- CLIP preprocessing

// Keys' cubic convolution kernel with a = -0.5, written out from its definition.
double Keys(double t) {
  const double a = -0.5, x = std::abs(t);
  if (x < 1) return (a + 2) * x * x * x - (a + 3) * x * x + 1;
  if (x < 2) return a * x * x * x - 5 * a * x * x + 8 * a * x - 4 * a;
  return 0;
}

// One resampling pass evaluated directly, in double precision and without rounding:
// output i takes every input j with weight Keys((j + 0.5 - (i + 0.5) * s) / max(s, 1)),
// s = in / out, the weights normalized to sum 1. Returns the exact values (w x h x 3) and
// the weights used, weights[i][j].
struct ExactPass {
  int width = 0, height = 0;
  std::vector<double> values;
  std::vector<std::vector<double>> weights;
  double at(int x, int y, int c) const { return values[(size_t(y) * width + x) * 3 + c]; }
};

ExactPass DirectPass(const RgbImage& in, int out_size, bool horizontal) {
  const int in_size = horizontal ? in.width : in.height;
  const double s = double(in_size) / out_size, f = std::max(s, 1.0);
  ExactPass p;
  p.width = horizontal ? out_size : in.width;
  p.height = horizontal ? in.height : out_size;
  p.values.assign(size_t(p.width) * p.height * 3, 0.0);
  for (int i = 0; i < out_size; ++i) {
    std::vector<double> w(in_size);
    double sum = 0;
    for (int j = 0; j < in_size; ++j) sum += w[j] = Keys((j + 0.5 - (i + 0.5) * s) / f);
    for (double& x : w) x /= sum;
    const int other = horizontal ? in.height : in.width;
    for (int o = 0; o < other; ++o) {
      for (int c = 0; c < 3; ++c) {
        double v = 0;
        for (int j = 0; j < in_size; ++j)
          v += w[j] * (horizontal ? in.at(j, o)[c] : in.at(o, j)[c]);
        const int x = horizontal ? i : o, y = horizontal ? o : i;
        p.values[(size_t(y) * p.width + x) * 3 + c] = v;
      }
    }
    p.weights.push_back(std::move(w));
  }
  return p;
}

// Rounds to the nearest integer and clamps to [0, 255].
uint8_t Quantize(double v) { return uint8_t(std::clamp(std::floor(v + 0.5), 0.0, 255.0)); }

RgbImage Quantize(const ExactPass& p) {
  RgbImage img(p.width, p.height);
  for (size_t i = 0; i < p.values.size(); ++i) img.pixels[i] = Quantize(p.values[i]);
  return img;
}

// A value this close to a rounding boundary (k + 0.5) may round either way once the
// weights are rounded to 22-bit fixed point (their errors add up to ~1e-4 for 255 * taps).
bool NearTie(double v) { return std::abs(v - std::floor(v) - 0.5) < 1e-4 && v > -0.5 && v < 255.5; }

TEST(MediaClipPreprocess, ResizeMatchesTheKernelFormula) {
  // Downscaling (antialiased: the kernel is stretched), upscaling, one axis at a time.
  const std::array<std::array<int, 4>, 8> cases = {{{13, 9, 5, 4},
                                                    {4, 3, 9, 7},
                                                    {10, 6, 4, 6},
                                                    {6, 10, 6, 3},
                                                    {7, 5, 19, 5},
                                                    {31, 17, 7, 29},
                                                    {50, 40, 23, 17},
                                                    {64, 64, 16, 16}}};
  for (const auto& [w, h, ow, oh] : cases) {
    const std::string name = std::to_string(w) + "x" + std::to_string(h) + "->" +
                             std::to_string(ow) + "x" + std::to_string(oh);
    const RgbImage in = Pattern(w, h);
    auto got = ResizeBicubic(in, ow, oh);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_EQ(got->width, ow);
    ASSERT_EQ(got->height, oh);
    // Horizontal pass, an 8-bit intermediate, vertical pass (a pass is skipped when its side
    // keeps its size).
    const bool horizontal = ow != w, vertical = oh != h;
    const ExactPass hp = horizontal ? DirectPass(in, ow, true) : ExactPass();
    const RgbImage mid = horizontal ? Quantize(hp) : in;
    const ExactPass vp = vertical ? DirectPass(mid, oh, false) : hp;
    int exact = 0;
    for (int y = 0; y < oh; ++y) {
      for (int x = 0; x < ow; ++x) {
        for (int c = 0; c < 3; ++c) {
          const double v = vp.at(x, y, c);
          const int d = int(got->at(x, y)[c]) - int(Quantize(v));
          if (d == 0) {
            ++exact;
            continue;
          }
          // A difference is allowed only where a rounding tie explains it: in this sample,
          // or in an intermediate sample it reads.
          bool tie = NearTie(v);
          for (int j = 0; vertical && horizontal && j < h; ++j) {
            tie |= vp.weights[y][j] != 0 && NearTie(hp.at(x, j, c));
          }
          EXPECT_TRUE(std::abs(d) == 1 && tie)
              << name << " at (" << x << ", " << y << ", " << c << "): got "
              << int(got->at(x, y)[c]) << ", formula " << v;
        }
      }
    }
    EXPECT_GT(exact, ow * oh * 3 * 9 / 10) << name;
  }
}

TEST(MediaClipPreprocess, ResizeEqualsPillow) {
  // Pillow 9.4.0: Image.resize((w, h), Image.BICUBIC) of Pattern() (same formula), tobytes().
  const std::vector<uint8_t> down = {101, 130, 143, 122, 135, 147, 123, 125, 134, 112, 126, 139,
                                     118, 147, 115, 126, 133, 128, 144, 140, 134, 139, 130, 122,
                                     128, 129, 129, 137, 145, 145, 112, 154, 122, 128, 128, 110,
                                     146, 137, 126, 125, 132, 105, 140, 104, 130, 131, 102, 150,
                                     133, 117, 140, 119, 122, 125, 127, 124, 134, 129, 97,  156};
  const std::vector<uint8_t> up = {
      0,   41,  94,  0,   48,  101, 11,  64,  115, 30,  82,  136, 46,  98,  165, 62,  114, 192, 81,
      143, 213, 96,  171, 227, 103, 183, 234, 7,   58,  113, 12,  65,  120, 28,  82,  138, 47,  103,
      155, 66,  122, 160, 83,  137, 164, 103, 145, 180, 119, 148, 198, 126, 150, 206, 43,  93,  164,
      49,  104, 174, 66,  130, 201, 88,  158, 205, 114, 187, 149, 140, 198, 92,  162, 152, 96,  179,
      90,  123, 187, 64,  132, 87,  140, 193, 96,  149, 204, 115, 168, 239, 137, 191, 235, 157, 226,
      135, 177, 236, 35,  199, 152, 31,  218, 45,  66,  227, 0,   77,  132, 196, 126, 144, 182, 137,
      171, 147, 168, 184, 125, 175, 152, 152, 122, 121, 174, 68,  134, 131, 75,  161, 73,  106, 172,
      49,  117, 169, 244, 43,  182, 206, 54,  217, 114, 78,  220, 42,  101, 134, 58,  111, 47,  94,
      121, 50,  109, 144, 86,  118, 168, 98,  123, 178, 186, 255, 11,  199, 217, 21,  238, 101, 43,
      237, 10,  72,  129, 22,  107, 19,  63,  140, 18,  99,  169, 57,  135, 191, 70,  150, 201};
  auto d = ResizeBicubic(Pattern(13, 9), 5, 4);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->pixels, down);
  auto u = ResizeBicubic(Pattern(4, 3), 9, 7);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->pixels, up);
}

TEST(MediaClipPreprocess, ConstantImageMapsToNormalizedConstant) {
  const uint8_t rgb[3] = {10, 200, 77};
  const ClipPreprocessOptions o;
  for (auto [w, h] : {std::pair{300, 200}, {97, 411}, {224, 224}, {5, 3}}) {
    auto t = ClipPreprocess(Constant(w, h, rgb[0], rgb[1], rgb[2]));
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    ASSERT_EQ(t->channels, 3);
    ASSERT_EQ(t->height, 224);
    ASSERT_EQ(t->width, 224);
    ASSERT_EQ(t->data.size(), size_t(3 * 224 * 224));
    for (int c = 0; c < 3; ++c) {
      const double want = (rgb[c] / 255.0 - o.mean[c]) / o.std[c];
      for (int y = 0; y < 224; y += 7) {
        for (int x = 0; x < 224; x += 5) {
          ASSERT_NEAR(t->at(c, y, x), want, 1e-5) << w << "x" << h << " c=" << c;
        }
      }
    }
  }
}

TEST(MediaClipPreprocess, GeometryFollowsTorchvision) {
  const ClipPreprocessOptions o;
  struct Case {
    int w, h, rw, rh, left, top;
  };
  const Case cases[] = {
      {640, 480, 298, 224, 37, 0},   // int(224 * 640 / 480) = int(298.67) = 298
      {480, 640, 224, 298, 0, 37},   // portrait
      {224, 299, 224, 299, 0, 38},   // short side already 224: not resized; 75 / 2 -> 38
      {224, 301, 224, 301, 0, 38},   // 77 / 2 = 38.5 -> 38 (halves round to even)
      {299, 224, 299, 224, 38, 0},   // landscape, same rounding
      {225, 301, 224, 299, 0, 38},   // int(224 * 301 / 225) = int(299.66) = 299
      {1000, 1000, 224, 224, 0, 0},  // square
      {100, 50, 448, 224, 112, 0},   // upscaled
  };
  for (const Case& c : cases) {
    const ClipGeometry g = PlanClipGeometry(c.w, c.h, o);
    EXPECT_EQ(g.resized_width, c.rw) << c.w << "x" << c.h;
    EXPECT_EQ(g.resized_height, c.rh) << c.w << "x" << c.h;
    EXPECT_EQ(g.crop_left, c.left) << c.w << "x" << c.h;
    EXPECT_EQ(g.crop_top, c.top) << c.w << "x" << c.h;
  }
}

TEST(MediaClipPreprocess, CropTakesTheCentreInChwOrder) {
  // 224 x 301: the short side is already 224, so no resampling; the crop starts at row 38.
  const RgbImage img = RandomImage(224, 301, 5);
  const ClipPreprocessOptions o;
  auto t = ClipPreprocess(img);
  ASSERT_TRUE(t.ok());
  for (int c = 0; c < 3; ++c) {
    for (int y = 0; y < 224; y += 3) {
      for (int x = 0; x < 224; x += 3) {
        const float v = float(img.at(x, y + 38)[c]) / 255.0f;
        ASSERT_FLOAT_EQ(t->at(c, y, x), (v - o.mean[c]) / o.std[c]) << c << " " << y << " " << x;
      }
    }
  }
}

TEST(MediaClipPreprocess, CropOfAResizedImageIsTheMiddleOfTheResize) {
  const RgbImage img = Pattern(640, 480);
  auto resized = ResizeBicubic(img, 298, 224);
  ASSERT_TRUE(resized.ok());
  const ClipPreprocessOptions o;
  auto t = ClipPreprocess(img);
  ASSERT_TRUE(t.ok());
  for (int y = 0; y < 224; y += 11) {
    for (int x = 0; x < 224; x += 13) {
      const float v = float(resized->at(x + 37, y)[1]) / 255.0f;
      ASSERT_FLOAT_EQ(t->at(1, y, x), (v - o.mean[1]) / o.std[1]);
    }
  }
}

TEST(MediaClipPreprocess, OtherSizesAndErrors) {
  ClipPreprocessOptions o;
  o.resize_short_side = 336;
  o.crop_size = 336;
  auto t = ClipPreprocess(Pattern(500, 400), o);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->height, 336);
  EXPECT_EQ(t->width, 336);

  EXPECT_EQ(ClipPreprocess(RgbImage()).status().code(), StatusCode::kInvalidArgument);
  RgbImage broken(4, 4);
  broken.pixels.pop_back();
  EXPECT_EQ(ClipPreprocess(broken).status().code(), StatusCode::kInvalidArgument);
  o.crop_size = 400;
  EXPECT_EQ(ClipPreprocess(Pattern(10, 10), o).status().code(), StatusCode::kInvalidArgument);
  o = ClipPreprocessOptions();
  o.std[1] = 0;
  EXPECT_EQ(ClipPreprocess(Pattern(10, 10), o).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ResizeBicubic(Pattern(3, 3), 0, 5).status().code(), StatusCode::kInvalidArgument);
}

// ------------------------------------------------------------------------ image embedder

struct Shape {
  enum Kind { kCircle, kRect, kTriangle, kStripes } kind;
  double cx, cy, size;  // relative to the image: centre and half-size in [0, 1]
  std::array<uint8_t, 3> colour;
};
struct Scene {
  std::array<uint8_t, 3> top, bottom;  // vertical background gradient
  std::vector<Shape> shapes;
};

bool Inside(const Shape& s, double x, double y, double aspect) {
  const double dx = (x - s.cx) * aspect, dy = y - s.cy;  // in units of image height
  switch (s.kind) {
    case Shape::kCircle:
      return dx * dx + dy * dy <= s.size * s.size;
    case Shape::kRect:
      return std::abs(dx) <= s.size && std::abs(dy) <= s.size * 0.6;
    case Shape::kTriangle:
      return dy <= s.size && dy >= -s.size && std::abs(dx) <= (dy + s.size) * 0.5;
    case Shape::kStripes:
      return std::abs(dx) <= s.size && std::abs(dy) <= s.size &&
             int(std::floor((dx + dy) / (s.size * 0.25))) % 2 == 0;
  }
  return false;
}

// Renders the scene at w x h with 3 x 3 supersampling, its shapes moved by (shift_x,
// shift_y) image widths/heights. Coordinates are relative, so rendering at another size is
// a rescaled copy of the same picture.
RgbImage Render(const Scene& s, int w, int h, double shift_x = 0, double shift_y = 0) {
  RgbImage img(w, h);
  const double aspect = double(w) / h;
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      double acc[3] = {0, 0, 0};
      for (int sy = 0; sy < 3; ++sy) {
        for (int sx = 0; sx < 3; ++sx) {
          const double u = (x + (sx + 0.5) / 3) / w - shift_x;
          const double v = (y + (sy + 0.5) / 3) / h - shift_y;
          const double fy = (y + (sy + 0.5) / 3) / h;
          double c[3];
          for (int k = 0; k < 3; ++k) c[k] = s.top[k] * (1 - fy) + s.bottom[k] * fy;
          for (const Shape& sh : s.shapes) {
            if (Inside(sh, u, v, aspect)) {
              for (int k = 0; k < 3; ++k) c[k] = sh.colour[k];
            }
          }
          for (int k = 0; k < 3; ++k) acc[k] += c[k];
        }
      }
      for (int k = 0; k < 3; ++k) img.at(x, y)[k] = uint8_t(std::lround(acc[k] / 9));
    }
  }
  return img;
}

// Halves the resolution by averaging 2 x 2 blocks.
RgbImage HalveBox(const RgbImage& in) {
  RgbImage out(in.width / 2, in.height / 2);
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      for (int c = 0; c < 3; ++c) {
        const int s = in.at(2 * x, 2 * y)[c] + in.at(2 * x + 1, 2 * y)[c] +
                      in.at(2 * x, 2 * y + 1)[c] + in.at(2 * x + 1, 2 * y + 1)[c];
        out.at(x, y)[c] = uint8_t((s + 2) / 4);
      }
    }
  }
  return out;
}

// Rotates every pixel's hue by `degrees` and multiplies its HSV value by `brightness`.
RgbImage Recolour(const RgbImage& in, double degrees, double brightness) {
  RgbImage out = in;
  for (size_t i = 0; i < in.pixels.size(); i += 3) {
    const double r = in.pixels[i] / 255.0, g = in.pixels[i + 1] / 255.0,
                 b = in.pixels[i + 2] / 255.0;
    const double mx = std::max({r, g, b}), mn = std::min({r, g, b}), d = mx - mn;
    double h = 0;
    if (d > 0) {
      if (mx == r)
        h = 60 * std::fmod((g - b) / d + 6, 6.0);
      else if (mx == g)
        h = 60 * ((b - r) / d + 2);
      else
        h = 60 * ((r - g) / d + 4);
    }
    const double s = mx > 0 ? d / mx : 0;
    const double v = std::min(1.0, mx * brightness);
    h = std::fmod(h + degrees + 360, 360.0);
    const double c = v * s, x = c * (1 - std::abs(std::fmod(h / 60, 2.0) - 1)), m = v - c;
    double rgb[3];
    switch (int(h / 60)) {
      case 0:
        rgb[0] = c, rgb[1] = x, rgb[2] = 0;
        break;
      case 1:
        rgb[0] = x, rgb[1] = c, rgb[2] = 0;
        break;
      case 2:
        rgb[0] = 0, rgb[1] = c, rgb[2] = x;
        break;
      case 3:
        rgb[0] = 0, rgb[1] = x, rgb[2] = c;
        break;
      case 4:
        rgb[0] = x, rgb[1] = 0, rgb[2] = c;
        break;
      default:
        rgb[0] = c, rgb[1] = 0, rgb[2] = x;
        break;
    }
    for (int k = 0; k < 3; ++k) out.pixels[i + k] = uint8_t(std::lround((rgb[k] + m) * 255));
  }
  return out;
}

std::vector<Scene> Scenes() {
  using S = Shape;
  return {
      // 0: red ball and yellow box on a sky-blue gradient
      {{90, 150, 230},
       {200, 225, 250},
       {{S::kCircle, 0.35, 0.55, 0.22, {220, 40, 40}},
        {S::kRect, 0.72, 0.35, 0.12, {240, 210, 40}}}},
      // 1: green triangle and striped patch on dark grey
      {{40, 40, 45},
       {70, 70, 75},
       {{S::kTriangle, 0.5, 0.5, 0.35, {40, 170, 70}},
        {S::kStripes, 0.8, 0.75, 0.15, {230, 230, 230}}}},
      // 2: purple and orange circles on beige
      {{235, 220, 190},
       {215, 195, 160},
       {{S::kCircle, 0.3, 0.4, 0.18, {120, 50, 160}}, {S::kCircle, 0.7, 0.6, 0.2, {245, 140, 30}}}},
      // 3: stripes over most of a white page
      {{250, 250, 250}, {240, 240, 240}, {{S::kStripes, 0.5, 0.5, 0.45, {20, 20, 20}}}},
      // 4: dark-red night scene with a small pale moon
      {{20, 10, 30}, {80, 20, 20}, {{S::kCircle, 0.8, 0.2, 0.08, {240, 240, 200}}}},
      // 5: teal rectangles on orange
      {{250, 150, 60},
       {230, 110, 40},
       {{S::kRect, 0.3, 0.3, 0.15, {20, 130, 140}}, {S::kRect, 0.65, 0.7, 0.2, {10, 90, 100}}}},
      // 6: a red ball on green grass (shares the ball with scene 0)
      {{60, 150, 60}, {30, 110, 30}, {{S::kCircle, 0.5, 0.5, 0.25, {220, 40, 40}}}},
  };
}

std::unique_ptr<ImageEmbedder> NewEmbedder(const ImageEmbedOptions& o = ImageEmbedOptions()) {
  auto e = ImageEmbedder::Create(o);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return e.ok() ? std::move(*e) : nullptr;
}

std::vector<float> EmbedOk(const ImageEmbedder& e, const RgbImage& img) {
  auto v = e.EmbedImage(img);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return v.ok() ? *v : std::vector<float>(e.dim(), 0.0f);
}

TEST(MediaImageEmbedder, UnitVectorsOfConfiguredDimension) {
  for (int dim : {256, 64, 512}) {
    ImageEmbedOptions o;
    o.dim = dim;
    auto e = NewEmbedder(o);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->dim(), dim);
    for (const RgbImage& img : {Render(Scenes()[0], 160, 120), Constant(50, 50, 128, 128, 128),
                                Constant(1, 1, 0, 0, 0), RandomImage(300, 7, 9)}) {
      const auto v = EmbedOk(*e, img);
      ASSERT_EQ(v.size(), size_t(dim));
      EXPECT_NEAR(Norm(v), 1.0, 1e-5);
      for (float x : v) ASSERT_TRUE(std::isfinite(x));
    }
  }
}

TEST(MediaImageEmbedder, DeterministicAcrossInstancesAndThreads) {
  auto a = NewEmbedder();
  auto b = NewEmbedder();
  ASSERT_TRUE(a && b);
  const auto scenes = Scenes();
  std::vector<std::vector<float>> serial;
  for (const Scene& s : scenes) serial.push_back(EmbedOk(*a, Render(s, 120, 90)));
  for (size_t i = 0; i < scenes.size(); ++i) {
    EXPECT_EQ(EmbedOk(*b, Render(scenes[i], 120, 90)), serial[i]);
  }
  // The same embedder from four threads at once.
  std::vector<std::vector<std::vector<float>>> got(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round) {
        for (const Scene& s : scenes) got[t].push_back(*a->EmbedImage(Render(s, 120, 90)));
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) {
    ASSERT_EQ(got[t].size(), 3 * scenes.size());
    for (size_t i = 0; i < got[t].size(); ++i) EXPECT_EQ(got[t][i], serial[i % scenes.size()]);
  }
  // Another seed is another projection.
  ImageEmbedOptions o;
  o.seed = 7;
  auto c = NewEmbedder(o);
  EXPECT_NE(EmbedOk(*c, Render(scenes[0], 120, 90)), serial[0]);
}

TEST(MediaImageEmbedder, ProjectionPreservesCosinesWhenDimHoldsTheFeatures) {
  auto e = NewEmbedder();
  ASSERT_TRUE(e);
  ASSERT_LE(e->feature_dim(), e->dim());
  const auto scenes = Scenes();
  for (size_t i = 0; i + 1 < scenes.size(); ++i) {
    const RgbImage a = Render(scenes[i], 100, 80), b = Render(scenes[i + 1], 100, 80);
    auto fa = e->Features(a), fb = e->Features(b);
    ASSERT_TRUE(fa.ok() && fb.ok());
    EXPECT_NEAR(Cos(EmbedOk(*e, a), EmbedOk(*e, b)), Cos(*fa, *fb), 1e-5);
  }
}

TEST(MediaImageEmbedder, VariantsAreNearerThanUnrelatedImages) {
  auto e = NewEmbedder();
  ASSERT_TRUE(e);
  const auto scenes = Scenes();
  std::vector<std::vector<float>> base;
  for (const Scene& s : scenes) base.push_back(EmbedOk(*e, Render(s, 320, 240)));
  for (size_t i = 0; i < 3; ++i) {
    const Scene& s = scenes[i];
    const RgbImage img = Render(s, 320, 240);
    auto jpg = EncodeJpeg(img, 30);
    ASSERT_TRUE(jpg.ok());
    auto recompressed = DecodeImage(*jpg);
    ASSERT_TRUE(recompressed.ok());
    const std::vector<std::pair<std::string, RgbImage>> variants = {
        {"shifted", Render(s, 320, 240, 0.06, -0.04)},
        {"halved", HalveBox(img)},
        {"rendered larger", Render(s, 544, 408)},
        {"other aspect", Render(s, 320, 200)},
        {"hue +10, brighter", Recolour(img, 10, 1.1)},
        {"hue -8, darker", Recolour(img, -8, 0.9)},
        {"jpeg q30", *recompressed},
    };
    double worst_variant = 1, best_unrelated = -1;
    for (const auto& [name, v] : variants) {
      const double c = Cos(base[i], EmbedOk(*e, v));
      worst_variant = std::min(worst_variant, c);
      RecordProperty("scene" + std::to_string(i) + " " + name, std::to_string(c));
    }
    for (size_t j = 0; j < scenes.size(); ++j) {
      if (j != i) best_unrelated = std::max(best_unrelated, Cos(base[i], base[j]));
    }
    RecordProperty("scene" + std::to_string(i) + " most similar unrelated",
                   std::to_string(best_unrelated));
    EXPECT_GT(worst_variant, best_unrelated + 0.2)
        << "scene " << i << ": least similar variant " << worst_variant
        << ", most similar unrelated scene " << best_unrelated;
  }
}

TEST(MediaImageEmbedder, FileEmbeddingEqualsPixelEmbedding) {
  ScopedTempDir dir;
  auto e = NewEmbedder();
  ASSERT_TRUE(e);
  const RgbImage img = Render(Scenes()[2], 200, 150);
  auto png = EncodePng(img);
  ASSERT_TRUE(png.ok());
  ASSERT_TRUE(WriteFileBytes(dir.Sub("scene.png"), *png).ok());
  auto v = e->EmbedImageFile(dir.Sub("scene.png"));
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(*v, EmbedOk(*e, img));

  auto missing = e->EmbedImageFile(dir.Sub("missing.png"));
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  WriteText(dir.Sub("notes.png"), "not a picture");
  auto text = e->EmbedImageFile(dir.Sub("notes.png"));
  EXPECT_EQ(text.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(text.status().message().find("notes.png"), std::string::npos);
}

TEST(MediaImageEmbedder, RejectsBadOptionsAndImages) {
  ImageEmbedOptions o;
  o.dim = 0;
  EXPECT_EQ(ImageEmbedder::Create(o).status().code(), StatusCode::kInvalidArgument);
  o = ImageEmbedOptions();
  o.hog_cells = 0;
  EXPECT_EQ(ImageEmbedder::Create(o).status().code(), StatusCode::kInvalidArgument);
  o = ImageEmbedOptions();
  o.colour_weight = 0;
  EXPECT_EQ(ImageEmbedder::Create(o).status().code(), StatusCode::kInvalidArgument);
  o = ImageEmbedOptions();
  o.layout_weight = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(ImageEmbedder::Create(o).status().code(), StatusCode::kInvalidArgument);
  auto e = NewEmbedder();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->EmbedImage(RgbImage()).status().code(), StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------- video

bool HaveFfmpeg() {
  static const bool have = std::system("ffmpeg -version >/dev/null 2>&1") == 0;
  return have;
}

#define SKIP_WITHOUT_FFMPEG()                                                                \
  if (!HaveFfmpeg()) {                                                                       \
    GTEST_SKIP() << "the ffmpeg command-line tool is not installed (scripts/install-deps.sh" \
                    " installs it); video tests need it to generate their videos";           \
  }

// Runs ffmpeg quietly with the given arguments; true on success.
bool Ffmpeg(const std::string& args) {
  const std::string cmd = "ffmpeg -nostdin -hide_banner -loglevel error -y " + args;
  const bool ok = std::system(cmd.c_str()) == 0;
  EXPECT_TRUE(ok) << cmd;
  return ok;
}

// mpeg4 (part 2) is built into libavcodec, so these work with any FFmpeg build.
constexpr const char* kCodec = "-c:v mpeg4 -q:v 3 -pix_fmt yuv420p";

std::unique_ptr<VideoEmbedder> NewVideoEmbedder(int frames = 8) {
  VideoEmbedOptions o;
  o.sample.frames = frames;
  auto e = VideoEmbedder::Create(o);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return e.ok() ? std::move(*e) : nullptr;
}

TEST(MediaVideo, ReencodedVideoIsNearerThanOtherVideos) {
  SKIP_WITHOUT_FFMPEG();
  ScopedTempDir dir;
  const std::string src = dir.Sub("testsrc.mp4"), big = dir.Sub("testsrc_320.mkv");
  ASSERT_TRUE(Ffmpeg("-f lavfi -i testsrc=duration=2:size=160x120:rate=10 " + std::string(kCodec) +
                     " " + src));
  ASSERT_TRUE(Ffmpeg("-i " + src + " -vf scale=320:240 " + kCodec + " " + big));
  ASSERT_TRUE(Ffmpeg("-f lavfi -i mandelbrot=size=160x120:rate=10 -t 2 " + std::string(kCodec) +
                     " " + dir.Sub("mandelbrot.mp4")));
  ASSERT_TRUE(Ffmpeg("-f lavfi -i smptebars=size=160x120:rate=10 -t 2 " + std::string(kCodec) +
                     " " + dir.Sub("bars.mp4")));
  ASSERT_TRUE(Ffmpeg("-f lavfi -i color=c=0x3366cc:size=160x120:rate=10 -t 2 " +
                     std::string(kCodec) + " " + dir.Sub("blue.mp4")));
  auto e = NewVideoEmbedder();
  ASSERT_TRUE(e);
  std::map<std::string, std::vector<float>> v;
  for (const char* name :
       {"testsrc.mp4", "testsrc_320.mkv", "mandelbrot.mp4", "bars.mp4", "blue.mp4"}) {
    auto r = e->EmbedVideoFile(dir.Sub(name));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->size(), size_t(e->dim()));
    EXPECT_NEAR(Norm(*r), 1.0, 1e-5);
    v[name] = *r;
  }
  const double same = Cos(v["testsrc.mp4"], v["testsrc_320.mkv"]);
  for (const char* other : {"mandelbrot.mp4", "bars.mp4", "blue.mp4"}) {
    EXPECT_GT(same, Cos(v["testsrc.mp4"], v[other]) + 0.05) << other;
  }
  // Deterministic.
  EXPECT_EQ(*e->EmbedVideoFile(src), v["testsrc.mp4"]);
}

TEST(MediaVideo, SamplesUniformlyOverTheDuration) {
  SKIP_WITHOUT_FFMPEG();
  ScopedTempDir dir;
  const std::string src = dir.Sub("t.mp4");
  ASSERT_TRUE(Ffmpeg("-f lavfi -i testsrc=duration=2:size=160x120:rate=10 " + std::string(kCodec) +
                     " " + src));
  VideoSampleOptions o;
  o.frames = 4;
  auto frames = SampleVideoFrames(src, o);
  ASSERT_TRUE(frames.ok()) << frames.status().ToString();
  ASSERT_EQ(frames->size(), 4u);
  // Targets (i + 0.5) * 2 s / 4; frames are at multiples of 0.1 s; the one shown at each
  // target is the last one at or before it.
  const double targets[] = {0.25, 0.75, 1.25, 1.75}, shown[] = {0.2, 0.7, 1.2, 1.7};
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR((*frames)[i].target_seconds, targets[i], 1e-9);
    EXPECT_NEAR((*frames)[i].frame_seconds, shown[i], 1e-6);
    EXPECT_EQ((*frames)[i].image.width, 160);
    EXPECT_EQ((*frames)[i].image.height, 120);
  }
  // testsrc moves: the sampled frames differ.
  EXPECT_NE((*frames)[0].image.pixels, (*frames)[3].image.pixels);

  // More targets than frames: every target still gets the frame shown then.
  o.frames = 30;
  auto many = SampleVideoFrames(src, o);
  ASSERT_TRUE(many.ok()) << many.status().ToString();
  ASSERT_EQ(many->size(), 30u);
  for (const SampledFrame& f : *many) {
    EXPECT_LE(f.frame_seconds, f.target_seconds + 1e-9);
    EXPECT_GT(f.frame_seconds, f.target_seconds - 0.1 - 1e-9);
  }
}

TEST(MediaVideo, SeekingPicksTheSameFramesAsDecodingEverything) {
  SKIP_WITHOUT_FFMPEG();
  ScopedTempDir dir;
  const std::string src = dir.Sub("long.mp4");
  // 20 s with a key frame every second; targets (i + 0.5) * 2.5 s fall between frames.
  ASSERT_TRUE(Ffmpeg("-f lavfi -i testsrc=duration=20:size=96x72:rate=10 -g 10 " +
                     std::string(kCodec) + " " + src));
  VideoSampleOptions seek, linear;
  seek.frames = linear.frames = 8;
  seek.seek_min_gap_seconds = 0.5;
  linear.seek_min_gap_seconds = std::numeric_limits<double>::infinity();
  auto a = SampleVideoFrames(src, seek), b = SampleVideoFrames(src, linear);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_EQ(a->size(), 8u);
  ASSERT_EQ(b->size(), 8u);
  for (int i = 0; i < 8; ++i) {
    const double shown = std::floor((i + 0.5) * 2.5 * 10) / 10;  // 1.2, 3.7, 6.2, ...
    EXPECT_NEAR((*a)[i].frame_seconds, shown, 1e-6) << i;
    EXPECT_NEAR((*b)[i].frame_seconds, shown, 1e-6) << i;
    EXPECT_EQ((*a)[i].image.pixels, (*b)[i].image.pixels) << i;
  }
}

TEST(MediaVideo, AStreamWithoutDurationIsSampledOverItsWholeLength) {
  SKIP_WITHOUT_FFMPEG();
  ScopedTempDir dir;
  // A raw MJPEG stream: no container, no duration, no timestamps; the length comes from
  // counting its 20 frames.
  const std::string src = dir.Sub("raw.mjpeg");
  ASSERT_TRUE(
      Ffmpeg("-f lavfi -i testsrc=duration=2:size=160x120:rate=10 -c:v mjpeg -f mjpeg " + src));
  VideoSampleOptions o;
  o.frames = 4;
  auto frames = SampleVideoFrames(src, o);
  ASSERT_TRUE(frames.ok()) << frames.status().ToString();
  ASSERT_EQ(frames->size(), 4u);
  for (int i = 0; i < 4; ++i) {
    // Each target lies (i + 0.5) quarters into the stream; the frame shown is within one
    // frame period (a twentieth of the length) before it.
    const double length = (*frames)[0].target_seconds * 8;
    EXPECT_NEAR((*frames)[i].target_seconds, (i + 0.5) * length / 4, 1e-9);
    EXPECT_LE((*frames)[i].frame_seconds, (*frames)[i].target_seconds + 1e-9);
    EXPECT_GT((*frames)[i].frame_seconds, (*frames)[i].target_seconds - length / 20 - 1e-9);
    if (i > 0) {
      EXPECT_NE((*frames)[i].image.pixels, (*frames)[i - 1].image.pixels);
    }
  }
  EXPECT_GT((*frames)[0].target_seconds, 0);
}

TEST(MediaVideo, AStillImageEmbedsLikeTheImage) {
  SKIP_WITHOUT_FFMPEG();
  ScopedTempDir dir;
  auto png = EncodePng(Render(Scenes()[5], 160, 120));
  ASSERT_TRUE(png.ok());
  ASSERT_TRUE(WriteFileBytes(dir.Sub("still.png"), *png).ok());
  auto e = NewVideoEmbedder();
  ASSERT_TRUE(e);
  auto video = e->EmbedVideoFile(dir.Sub("still.png"));
  ASSERT_TRUE(video.ok()) << video.status().ToString();
  auto image = e->image_embedder().EmbedImageFile(dir.Sub("still.png"));
  ASSERT_TRUE(image.ok());
  EXPECT_NEAR(Cos(*video, *image), 1.0, 1e-5);
}

TEST(MediaVideo, Errors) {
  SKIP_WITHOUT_FFMPEG();
  ScopedTempDir dir;
  auto e = NewVideoEmbedder();
  ASSERT_TRUE(e);
  auto code = [&](const std::string& name) {
    auto r = e->EmbedVideoFile(dir.Sub(name));
    EXPECT_FALSE(r.ok()) << name;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find(name), std::string::npos) << r.status().message();
    }
    return r.status().code();
  };
  EXPECT_EQ(code("missing.mp4"), StatusCode::kNotFound);
  WriteText(dir.Sub("empty.mp4"), "");
  EXPECT_EQ(code("empty.mp4"), StatusCode::kInvalidArgument);
  // A long text file: FFmpeg's tty demuxer would render it as an ANSI-art video.
  std::string text;
  for (int i = 0; i < 200; ++i) text += "Shopping list: eggs, milk, bread, tea, rice.\n";
  WriteText(dir.Sub("notes.txt"), text);
  EXPECT_EQ(code("notes.txt"), StatusCode::kInvalidArgument);
  WriteText(dir.Sub("notes.dat"), std::string(5000, 'z'));
  EXPECT_EQ(code("notes.dat"), StatusCode::kInvalidArgument);
  ASSERT_TRUE(Ffmpeg("-f lavfi -i sine=duration=1 " + dir.Sub("tone.wav")));
  EXPECT_EQ(code("tone.wav"), StatusCode::kInvalidArgument);
  // Zero-length videos: an MP4 with no frames (the muxer writes no track) and an AVI with a
  // video track but no frames.
  for (const char* name : {"zero.mp4", "zero.avi"}) {
    ASSERT_TRUE(Ffmpeg("-f lavfi -i testsrc=size=64x48:rate=10 -frames:v 0 " + std::string(kCodec) +
                       " " + dir.Sub(name)));
    EXPECT_EQ(code(name), StatusCode::kInvalidArgument);
  }
  fs::create_directories(dir.Sub("folder.mp4"));
  EXPECT_EQ(code("folder.mp4"), StatusCode::kInvalidArgument);

  VideoEmbedOptions o;
  o.sample.frames = 0;
  EXPECT_EQ(VideoEmbedder::Create(o).status().code(), StatusCode::kInvalidArgument);
}

TEST(MediaVideo, OversizedFramesAreRefused) {
  SKIP_WITHOUT_FFMPEG();
  ScopedTempDir dir;
  ASSERT_TRUE(Ffmpeg("-f lavfi -i testsrc=duration=1:size=160x120:rate=5 " + std::string(kCodec) +
                     " " + dir.Sub("t.mp4")));
  VideoSampleOptions o;
  o.max_frame_pixels = 160 * 120 - 1;
  auto r = SampleVideoFrames(dir.Sub("t.mp4"), o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
}

TEST(MediaVideo, ConcurrentCallsAgree) {
  SKIP_WITHOUT_FFMPEG();
  ScopedTempDir dir;
  ASSERT_TRUE(Ffmpeg("-f lavfi -i testsrc=duration=2:size=128x96:rate=10 " + std::string(kCodec) +
                     " " + dir.Sub("a.mp4")));
  ASSERT_TRUE(Ffmpeg("-f lavfi -i mandelbrot=size=128x96:rate=10 -t 2 " + std::string(kCodec) +
                     " " + dir.Sub("b.mp4")));
  auto e = NewVideoEmbedder(4);
  ASSERT_TRUE(e);
  const auto a = *e->EmbedVideoFile(dir.Sub("a.mp4")), b = *e->EmbedVideoFile(dir.Sub("b.mp4"));
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < 3; ++k) {
        const bool use_a = (t + k) % 2 == 0;
        auto v = e->EmbedVideoFile(dir.Sub(use_a ? "a.mp4" : "b.mp4"));
        if (!v.ok() || *v != (use_a ? a : b)) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace dynspec
