// The built-in image embedder (see image_embedder.h for what it captures).
//
// Pipeline: resize to work_size x work_size (images over twice that size are first box
// averaged down to between 2 and 4 times it) -> sRGB to CIELAB -> three blocks, each
// normalized on its own so that no block dominates because of its length or units:
//   colour  joint L*a*b* histogram, trilinear soft binning, divided by its sum, square root
//           (the Hellinger map: the cosine of two blocks is the Bhattacharyya coefficient
//           of the histograms, and the block has unit norm by construction);
//   HOG     orientation histograms of the L* gradient per cell, magnitude-weighted, soft
//           in orientation and (bilinearly) in space, divided by (total magnitude + a floor),
//           square root; the floor keeps an almost flat image's block near zero instead of
//           blowing up noise to unit length;
//   layout  mean L*, a*, b* per grid cell minus the image's mean (the overall colour is the
//           colour block's job; this one is the arrangement), L2 normalized with a floor.
// The blocks are weighted, concatenated, multiplied by a fixed random matrix with
// orthonormal columns (orthonormal rows when the feature vector is longer than dim) and L2
// normalized. With orthonormal columns the projection preserves every inner product, so
// the cosine of two embeddings is exactly the cosine of their weighted feature vectors; a
// plain Gaussian matrix would add noise of about sqrt(2 / dim) to each cosine.
//
// Perceptual choices: CIELAB because equal distances there are roughly equal perceived
// colour differences, so soft bins of equal width treat a slight hue or brightness change
// the same anywhere in the gamut (in RGB or HSV, bins near grey or black are perceptually
// much wider or narrower). Gradients on L* rather than RGB make edges between colours of
// equal lightness weak, which is how they look.
#include "media/image_embedder.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>

#include "common/vector_math.h"
#include "media/clip_preprocess.h"

namespace dynspec {
namespace {

// CIELAB a* and b* of sRGB colours lie within about +-110; the histogram's bins cover
// [-kAbRange, kAbRange] and values beyond go to the outer bins.
constexpr float kAbRange = 80.0f;
// Floor of the HOG normalization, in L* units of gradient per pixel: below this mean
// gradient magnitude an image counts as flat (JPEG noise is around 1 L* per pixel, and a
// few shapes on a plain background average several).
constexpr float kHogFloor = 0.25f;
// Floor of the layout normalization, in L*a*b* units per cell and channel.
constexpr float kLayoutFloor = 2.0f;

// splitmix64: a tiny PRNG whose output is fixed by its definition, unlike the std::
// distributions, whose algorithms differ between standard libraries.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in (0, 1): 53 random bits, never exactly 0.
  double Uniform() { return (double(Next() >> 11) + 0.5) * 0x1.0p-53; }
  // Standard normal by Box-Muller.
  double Normal() {
    const double u = Uniform(), v = Uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(2.0 * std::numbers::pi * v);
  }

 private:
  uint64_t state_;
};

// Returns a dim x features row-major matrix with orthonormal columns (features <= dim) or
// orthonormal rows (features > dim): Gaussian vectors, then modified Gram-Schmidt applied
// twice (the second pass removes the rounding left by the first).
std::vector<float> MakeProjection(int dim, int features, uint64_t seed) {
  const int n = std::min(dim, features);    // vectors to orthonormalize
  const int len = std::max(dim, features);  // their length
  SplitMix64 rng(seed);
  std::vector<std::vector<double>> q(n, std::vector<double>(len));
  for (auto& v : q) {
    for (double& x : v) x = rng.Normal();
  }
  for (int i = 0; i < n; ++i) {
    for (int pass = 0; pass < 2; ++pass) {
      for (int j = 0; j < i; ++j) {
        double d = 0;
        for (int k = 0; k < len; ++k) d += q[i][k] * q[j][k];
        for (int k = 0; k < len; ++k) q[i][k] -= d * q[j][k];
      }
    }
    double n2 = 0;
    for (double x : q[i]) n2 += x * x;
    const double inv = 1.0 / std::sqrt(n2);
    for (double& x : q[i]) x *= inv;
  }
  std::vector<float> p(size_t(dim) * features);
  for (int r = 0; r < dim; ++r) {
    for (int c = 0; c < features; ++c) {
      // features <= dim: column c is q[c]; otherwise row r is q[r].
      p[size_t(r) * features + c] = float(features <= dim ? q[c][r] : q[r][c]);
    }
  }
  return p;
}

// sRGB (8-bit) to linear light, by table.
const std::array<float, 256>& LinearTable() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int i = 0; i < 256; ++i) {
      const double c = i / 255.0;
      t[i] = float(c <= 0.04045 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4));
    }
    return t;
  }();
  return table;
}

float LabF(float t) {
  constexpr float d = 6.0f / 29.0f;
  return t > d * d * d ? std::cbrt(t) : t / (3 * d * d) + 4.0f / 29.0f;
}

// Averages factor x factor blocks (the last row and column of blocks may be smaller).
// Before the antialiased bicubic resize of a large image: the bicubic kernel stretched over
// a 30x reduction has ~120 taps per sample, while this is one pass over the pixels, and
// down to twice the working size the two filters give practically the same result.
RgbImage BoxReduce(const RgbImage& in, int factor) {
  const int ow = (in.width + factor - 1) / factor, oh = (in.height + factor - 1) / factor;
  RgbImage out(ow, oh);
  std::vector<uint32_t> acc(size_t(ow) * 3);
  for (int by = 0; by < oh; ++by) {
    std::fill(acc.begin(), acc.end(), 0);
    const int y0 = by * factor, y1 = std::min(in.height, y0 + factor);
    for (int y = y0; y < y1; ++y) {
      const uint8_t* row = in.at(0, y);
      for (int x = 0; x < in.width; ++x) {
        uint32_t* a = &acc[size_t(x / factor) * 3];
        a[0] += row[x * 3];
        a[1] += row[x * 3 + 1];
        a[2] += row[x * 3 + 2];
      }
    }
    for (int bx = 0; bx < ow; ++bx) {
      const uint32_t n = uint32_t(std::min(in.width, (bx + 1) * factor) - bx * factor) * (y1 - y0);
      for (int c = 0; c < 3; ++c)
        out.at(bx, by)[c] = uint8_t((acc[size_t(bx) * 3 + c] + n / 2) / n);
    }
  }
  return out;
}

// CIELAB (D65 white) planes of an image.
struct LabPlanes {
  int w = 0, h = 0;
  std::vector<float> l, a, b;
};

LabPlanes ToLab(const RgbImage& img) {
  const auto& lin = LinearTable();
  LabPlanes p;
  p.w = img.width;
  p.h = img.height;
  const size_t n = size_t(img.width) * img.height;
  p.l.resize(n);
  p.a.resize(n);
  p.b.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const float r = lin[img.pixels[i * 3]], g = lin[img.pixels[i * 3 + 1]],
                bl = lin[img.pixels[i * 3 + 2]];
    const float x = (0.4124564f * r + 0.3575761f * g + 0.1804375f * bl) / 0.95047f;
    const float y = 0.2126729f * r + 0.7151522f * g + 0.0721750f * bl;
    const float z = (0.0193339f * r + 0.1191920f * g + 0.9503041f * bl) / 1.08883f;
    const float fx = LabF(x), fy = LabF(y), fz = LabF(z);
    p.l[i] = 116.0f * fy - 16.0f;
    p.a[i] = 500.0f * (fx - fy);
    p.b[i] = 200.0f * (fy - fz);
  }
  return p;
}

// Linear soft assignment of a value to `bins` equal bins over [lo, hi]: the two bins whose
// centres surround it, weighted by closeness; outside the outer centres, the outer bin.
struct Soft {
  int i0, i1;
  float w0, w1;
};
Soft SoftBin(float v, float lo, float hi, int bins) {
  const float pos = (v - lo) / (hi - lo) * bins - 0.5f;
  if (pos <= 0) return {0, 0, 1, 0};
  if (pos >= bins - 1) return {bins - 1, bins - 1, 1, 0};
  const int i0 = int(pos);
  const float f = pos - i0;
  return {i0, i0 + 1, 1 - f, f};
}

void ColourBlock(const LabPlanes& lab, const ImageEmbedOptions& o, float* out) {
  const int nl = o.lab_bins_l, nab = o.lab_bins_ab;
  const size_t bins = size_t(nl) * nab * nab;
  std::vector<double> h(bins, 0.0);
  for (size_t i = 0; i < lab.l.size(); ++i) {
    const Soft sl = SoftBin(lab.l[i], 0, 100, nl);
    const Soft sa = SoftBin(lab.a[i], -kAbRange, kAbRange, nab);
    const Soft sb = SoftBin(lab.b[i], -kAbRange, kAbRange, nab);
    const int li[2] = {sl.i0, sl.i1}, ai[2] = {sa.i0, sa.i1}, bi[2] = {sb.i0, sb.i1};
    const float lw[2] = {sl.w0, sl.w1}, aw[2] = {sa.w0, sa.w1}, bw[2] = {sb.w0, sb.w1};
    for (int p = 0; p < 2; ++p) {
      for (int q = 0; q < 2; ++q) {
        for (int r = 0; r < 2; ++r) {
          h[(size_t(li[p]) * nab + ai[q]) * nab + bi[r]] += double(lw[p]) * aw[q] * bw[r];
        }
      }
    }
  }
  double sum = 0;
  for (double v : h) sum += v;
  for (size_t i = 0; i < bins; ++i) out[i] = float(std::sqrt(h[i] / sum));
}

void HogBlock(const LabPlanes& lab, const ImageEmbedOptions& o, float* out) {
  const int w = lab.w, hgt = lab.h, cells = o.hog_cells, nb = o.hog_orientation_bins;
  std::vector<double> h(size_t(cells) * cells * nb, 0.0);
  const auto L = [&](int x, int y) {
    return lab.l[size_t(std::clamp(y, 0, hgt - 1)) * w + std::clamp(x, 0, w - 1)];
  };
  double total = 0;
  for (int y = 0; y < hgt; ++y) {
    const Soft sy = SoftBin(float(y) + 0.5f, 0, float(hgt), cells);
    for (int x = 0; x < w; ++x) {
      const float gx = L(x + 1, y) - L(x - 1, y);
      const float gy = L(x, y + 1) - L(x, y - 1);
      const float mag = std::sqrt(gx * gx + gy * gy);
      if (mag == 0) continue;
      float angle = std::atan2(gy, gx);  // (-pi, pi]; orientation ignores the sign
      if (angle < 0) angle += std::numbers::pi_v<float>;
      if (angle >= std::numbers::pi_v<float>) angle -= std::numbers::pi_v<float>;
      // Circular soft binning: bin k is centred at (k + 0.5) * pi / nb.
      const float pos = angle / std::numbers::pi_v<float> * nb - 0.5f;
      const int lo = int(std::floor(pos));
      const float f = pos - lo;
      const int o0 = (lo + nb) % nb, o1 = (lo + 1) % nb;
      const Soft sx = SoftBin(float(x) + 0.5f, 0, float(w), cells);
      const int cy[2] = {sy.i0, sy.i1}, cx[2] = {sx.i0, sx.i1};
      const float wy[2] = {sy.w0, sy.w1}, wx[2] = {sx.w0, sx.w1};
      for (int p = 0; p < 2; ++p) {
        for (int q = 0; q < 2; ++q) {
          const double m = double(mag) * wy[p] * wx[q];
          double* cell = &h[(size_t(cy[p]) * cells + cx[q]) * nb];
          cell[o0] += m * (1 - f);
          cell[o1] += m * f;
        }
      }
      total += mag;
    }
  }
  const double denom = total + double(kHogFloor) * w * hgt;
  for (size_t i = 0; i < h.size(); ++i) out[i] = float(std::sqrt(h[i] / denom));
}

void LayoutBlock(const LabPlanes& lab, const ImageEmbedOptions& o, float* out) {
  const int cells = o.layout_cells;
  std::vector<double> sum(size_t(cells) * cells * 3, 0.0);
  std::vector<int> count(size_t(cells) * cells, 0);
  double mean[3] = {0, 0, 0};
  for (int y = 0; y < lab.h; ++y) {
    const int cy = y * cells / lab.h;
    for (int x = 0; x < lab.w; ++x) {
      const int cx = x * cells / lab.w;
      const size_t i = size_t(y) * lab.w + x, c = size_t(cy) * cells + cx;
      const float v[3] = {lab.l[i], lab.a[i], lab.b[i]};
      for (int k = 0; k < 3; ++k) {
        sum[c * 3 + k] += v[k];
        mean[k] += v[k];
      }
      ++count[c];
    }
  }
  const double n = double(lab.w) * lab.h;
  for (double& m : mean) m /= n;
  double n2 = 0;
  for (size_t c = 0; c < count.size(); ++c) {
    for (int k = 0; k < 3; ++k) {
      // A cell can be empty only when work_size < layout_cells; it then equals the mean.
      const double v = count[c] ? sum[c * 3 + k] / count[c] - mean[k] : 0.0;
      out[c * 3 + k] = float(v);
      n2 += v * v;
    }
  }
  const double inv = 1.0 / std::sqrt(n2 + double(kLayoutFloor) * kLayoutFloor * sum.size());
  for (size_t i = 0; i < sum.size(); ++i) out[i] = float(out[i] * inv);
}

int ColourDim(const ImageEmbedOptions& o) { return o.lab_bins_l * o.lab_bins_ab * o.lab_bins_ab; }
int HogDim(const ImageEmbedOptions& o) {
  return o.hog_cells * o.hog_cells * o.hog_orientation_bins;
}
int LayoutDim(const ImageEmbedOptions& o) { return o.layout_cells * o.layout_cells * 3; }

Status CheckOptions(const ImageEmbedOptions& o) {
  const std::pair<const char*, int> ranges[] = {{"dim", o.dim},
                                                {"work_size", o.work_size},
                                                {"lab_bins_l", o.lab_bins_l},
                                                {"lab_bins_ab", o.lab_bins_ab},
                                                {"hog_cells", o.hog_cells},
                                                {"hog_orientation_bins", o.hog_orientation_bins},
                                                {"layout_cells", o.layout_cells}};
  for (const auto& [name, v] : ranges) {
    if (v < 1 || v > 4096) {
      return Status::InvalidArgument(std::string("image_embed.") + name + " must be in [1, 4096]");
    }
  }
  if (o.work_size < 8) return Status::InvalidArgument("image_embed.work_size must be >= 8");
  const std::pair<const char*, float> weights[] = {{"colour_weight", o.colour_weight},
                                                   {"hog_weight", o.hog_weight},
                                                   {"layout_weight", o.layout_weight}};
  for (const auto& [name, v] : weights) {
    if (!std::isfinite(v) || v < 0) {
      return Status::InvalidArgument(std::string("image_embed.") + name +
                                     " must be finite and >= 0");
    }
  }
  if (!(o.colour_weight > 0)) {
    // The colour block is the one block that is never zero; without it a flat image would
    // have no vector at all.
    return Status::InvalidArgument("image_embed.colour_weight must be > 0");
  }
  if (int64_t(ColourDim(o)) + HogDim(o) + LayoutDim(o) > (1 << 16)) {
    return Status::InvalidArgument("image_embed bins give more than 65536 features");
  }
  if (o.decode.max_pixels < 1 || o.decode.max_file_bytes < 1) {
    return Status::InvalidArgument("image_embed.decode limits must be >= 1");
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<ImageEmbedder>> ImageEmbedder::Create(const ImageEmbedOptions& options) {
  DYNSPEC_RETURN_IF_ERROR(CheckOptions(options));
  const int features = ColourDim(options) + HogDim(options) + LayoutDim(options);
  return std::unique_ptr<ImageEmbedder>(
      new ImageEmbedder(options, features, MakeProjection(options.dim, features, options.seed)));
}

ImageEmbedder::ImageEmbedder(const ImageEmbedOptions& options, int feature_dim,
                             std::vector<float> projection)
    : options_(options), feature_dim_(feature_dim), projection_(std::move(projection)) {}

Result<std::vector<float>> ImageEmbedder::Features(const RgbImage& image) const {
  DYNSPEC_RETURN_IF_ERROR(CheckImage(image, "image"));
  const int ws = options_.work_size;
  const int factor = std::min(image.width, image.height) / (2 * ws);
  DYNSPEC_ASSIGN_OR_RETURN(
      const RgbImage work,
      factor >= 2 ? ResizeBicubic(BoxReduce(image, factor), ws, ws) : ResizeBicubic(image, ws, ws));
  const LabPlanes lab = ToLab(work);
  std::vector<float> f(feature_dim_, 0.0f);
  float* colour = f.data();
  float* hog = colour + ColourDim(options_);
  float* layout = hog + HogDim(options_);
  ColourBlock(lab, options_, colour);
  HogBlock(lab, options_, hog);
  LayoutBlock(lab, options_, layout);
  for (float* p = colour; p < hog; ++p) *p *= options_.colour_weight;
  for (float* p = hog; p < layout; ++p) *p *= options_.hog_weight;
  for (float* p = layout; p < f.data() + f.size(); ++p) *p *= options_.layout_weight;
  return f;
}

Result<std::vector<float>> ImageEmbedder::EmbedImage(const RgbImage& image) const {
  DYNSPEC_ASSIGN_OR_RETURN(const std::vector<float> f, Features(image));
  std::vector<float> v(options_.dim);
  for (int r = 0; r < options_.dim; ++r) {
    const float* row = &projection_[size_t(r) * feature_dim_];
    double s = 0;
    for (int c = 0; c < feature_dim_; ++c) s += double(row[c]) * f[c];
    v[r] = float(s);
  }
  Status st = NormalizeInPlace(v, "image embedding");
  if (!st.ok()) {
    // The colour block has unit norm and colour_weight > 0, so only a projection with
    // fewer dimensions than features could cancel it; report rather than crash.
    return Status::Internal(st.message());
  }
  return v;
}

Result<std::vector<float>> ImageEmbedder::EmbedImageFile(const std::string& path) const {
  DYNSPEC_ASSIGN_OR_RETURN(const RgbImage image, DecodeImageFile(path, options_.decode));
  auto v = EmbedImage(image);
  if (!v.ok()) return v.status().WithContext("image file '" + path + "'");
  return v;
}

}  // namespace dynspec
