// CLIP preprocessing. The resize follows Pillow's arithmetic step for step (see the header)
// rather than a textbook float bicubic: CLIP was trained on Pillow-resized images, and a
// float implementation without Pillow's 8-bit intermediate differs from it by up to one
// grey level per sample, enough to move CLIP vectors measurably away from vectors computed
// by the reference Python pipeline for the same file.
#include "media/clip_preprocess.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

namespace dynspec {
namespace {

constexpr int kPrecisionBits = 22;  // Pillow: 32 bits - 8 bits per sample - 2 guard bits

double CubicKernel(double t) {
  constexpr double a = -0.5;
  t = std::abs(t);
  if (t < 1.0) return ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0;
  if (t < 2.0) return (((t - 5.0) * t + 8.0) * t - 4.0) * a;
  return 0.0;
}

// The weights of one pass: output sample i reads input samples first[i] .. first[i] +
// count[i] - 1 with fixed-point weights w[i * taps + k].
struct PassWeights {
  int taps = 0;
  std::vector<int> first;
  std::vector<int> count;
  std::vector<int32_t> w;
};

PassWeights ComputeWeights(int in_size, int out_size) {
  const double scale = double(in_size) / out_size;
  const double filter_scale = std::max(scale, 1.0);
  const double support = 2.0 * filter_scale;
  PassWeights p;
  p.taps = int(std::ceil(support)) * 2 + 1;
  p.first.resize(out_size);
  p.count.resize(out_size);
  p.w.assign(size_t(out_size) * p.taps, 0);
  std::vector<double> k(p.taps);
  for (int i = 0; i < out_size; ++i) {
    const double center = (i + 0.5) * scale;
    // Window rounded to the nearest pixel (Pillow truncates value + 0.5; the lower end is
    // clamped to 0 anyway, so truncation and floor agree).
    const int lo = std::max(0, int(center - support + 0.5));
    const int hi = std::min(in_size, int(center + support + 0.5));
    double sum = 0;
    for (int j = lo; j < hi; ++j) {
      k[j - lo] = CubicKernel((j - center + 0.5) / filter_scale);
      sum += k[j - lo];
    }
    p.first[i] = lo;
    p.count[i] = hi - lo;
    for (int j = 0; j < hi - lo; ++j) {
      const double v = (sum != 0.0 ? k[j] / sum : k[j]) * (1 << kPrecisionBits);
      p.w[size_t(i) * p.taps + j] = static_cast<int32_t>(v < 0 ? v - 0.5 : v + 0.5);
    }
  }
  return p;
}

// Accumulators are 32-bit, as Pillow's: the weights of one sample add up to 2^22 and their
// absolute values to less than 1.3 * 2^22 (the kernel's negative lobes), so a sum stays
// below 2^21 + 255 * 1.3 * 2^22 < 1.4e9 < 2^31.
uint8_t RoundAndClamp(int32_t acc) {
  const int32_t v = acc >> kPrecisionBits;  // floor; the 2^21 start value made it rounding
  return static_cast<uint8_t>(std::clamp<int32_t>(v, 0, 255));
}

// Resizes the rows [row_begin, row_end) of `in` horizontally to out_width.
RgbImage HorizontalPass(const RgbImage& in, int row_begin, int row_end, int out_width) {
  const PassWeights p = ComputeWeights(in.width, out_width);
  RgbImage out(out_width, row_end - row_begin);
  for (int y = row_begin; y < row_end; ++y) {
    for (int x = 0; x < out_width; ++x) {
      const int32_t* w = &p.w[size_t(x) * p.taps];
      const uint8_t* src = in.at(p.first[x], y);
      int32_t acc[3] = {1 << (kPrecisionBits - 1), 1 << (kPrecisionBits - 1),
                        1 << (kPrecisionBits - 1)};
      for (int k = 0; k < p.count[x]; ++k) {
        for (int c = 0; c < 3; ++c) acc[c] += int32_t(src[k * 3 + c]) * w[k];
      }
      uint8_t* dst = out.at(x, y - row_begin);
      for (int c = 0; c < 3; ++c) dst[c] = RoundAndClamp(acc[c]);
    }
  }
  return out;
}

// Resizes `in` vertically to out_height; `p` was computed for the full input height and
// `row_offset` is the input row that in's row 0 holds.
RgbImage VerticalPass(const RgbImage& in, const PassWeights& p, int row_offset, int out_height) {
  RgbImage out(in.width, out_height);
  const size_t stride = size_t(in.width) * 3;
  std::vector<int32_t> acc(stride);
  for (int y = 0; y < out_height; ++y) {
    const int32_t* w = &p.w[size_t(y) * p.taps];
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    // Row by row, so the inner loop runs over contiguous bytes.
    for (int k = 0; k < p.count[y]; ++k) {
      const uint8_t* src = in.at(0, p.first[y] - row_offset + k);
      for (size_t i = 0; i < stride; ++i) acc[i] += int32_t(src[i]) * w[k];
    }
    uint8_t* dst = out.at(0, y);
    for (size_t i = 0; i < stride; ++i) dst[i] = RoundAndClamp(acc[i]);
  }
  return out;
}

// Python's round() for (excess / 2): halves go to the even neighbour.
int HalfToEven(int excess) {
  const int half = excess / 2;
  if (excess % 2 == 0) return half;
  return half % 2 == 0 ? half : half + 1;
}

Status CheckOptions(const ClipPreprocessOptions& o) {
  if (o.resize_short_side < 1) {
    return Status::InvalidArgument("clip.resize_short_side must be >= 1");
  }
  if (o.crop_size < 1 || o.crop_size > o.resize_short_side) {
    return Status::InvalidArgument("clip.crop_size must be in [1, resize_short_side = " +
                                   std::to_string(o.resize_short_side) + "]");
  }
  for (int c = 0; c < 3; ++c) {
    if (!std::isfinite(o.mean[c]) || !std::isfinite(o.std[c]) || !(o.std[c] > 0)) {
      return Status::InvalidArgument(
          "clip.mean and clip.std must be finite with std > 0 (channel " + std::to_string(c) + ")");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<RgbImage> ResizeBicubic(const RgbImage& image, int out_width, int out_height) {
  DYNSPEC_RETURN_IF_ERROR(CheckImage(image, "image to resize"));
  if (out_width < 1 || out_height < 1) {
    return Status::InvalidArgument("resize target " + std::to_string(out_width) + "x" +
                                   std::to_string(out_height) + " has no pixels");
  }
  const bool horizontal = out_width != image.width;
  const bool vertical = out_height != image.height;
  if (!horizontal && !vertical) return image;
  if (!vertical) return HorizontalPass(image, 0, image.height, out_width);
  const PassWeights pv = ComputeWeights(image.height, out_height);
  if (!horizontal) return VerticalPass(image, pv, 0, out_height);
  // Only the input rows the vertical pass reads go through the horizontal pass.
  const int row_begin = pv.first.front();
  const int row_end = pv.first.back() + pv.count.back();
  const RgbImage tmp = HorizontalPass(image, row_begin, row_end, out_width);
  return VerticalPass(tmp, pv, row_begin, out_height);
}

ClipGeometry PlanClipGeometry(int width, int height, const ClipPreprocessOptions& o) {
  ClipGeometry g;
  const int s = o.resize_short_side;
  const int short_side = std::min(width, height);
  const int long_side = std::max(width, height);
  // Python: int(size * long / short): a correctly rounded double quotient, then truncated.
  const int new_long = short_side == s ? long_side : int(double(s) * long_side / short_side);
  const int new_short = s;
  if (width <= height) {
    g.resized_width = new_short;
    g.resized_height = new_long;
  } else {
    g.resized_width = new_long;
    g.resized_height = new_short;
  }
  g.crop_left = HalfToEven(g.resized_width - o.crop_size);
  g.crop_top = HalfToEven(g.resized_height - o.crop_size);
  return g;
}

Result<ImageTensor> ClipPreprocess(const RgbImage& image, const ClipPreprocessOptions& o) {
  DYNSPEC_RETURN_IF_ERROR(CheckImage(image, "image to preprocess"));
  DYNSPEC_RETURN_IF_ERROR(CheckOptions(o));
  const ClipGeometry g = PlanClipGeometry(image.width, image.height, o);
  DYNSPEC_ASSIGN_OR_RETURN(const RgbImage resized,
                           ResizeBicubic(image, g.resized_width, g.resized_height));
  ImageTensor t;
  t.channels = 3;
  t.height = o.crop_size;
  t.width = o.crop_size;
  t.data.resize(size_t(3) * o.crop_size * o.crop_size);
  for (int c = 0; c < 3; ++c) {
    for (int y = 0; y < o.crop_size; ++y) {
      for (int x = 0; x < o.crop_size; ++x) {
        const float v = float(resized.at(g.crop_left + x, g.crop_top + y)[c]) / 255.0f;
        t.data[(size_t(c) * o.crop_size + y) * o.crop_size + x] = (v - o.mean[c]) / o.std[c];
      }
    }
  }
  return t;
}

}  // namespace dynspec
