// CLIP's image preprocessing, reimplemented so that an image embedded by a CLIP model in
// this process gets the same input tensor as OpenAI's reference pipeline:
//   Resize(224, BICUBIC) -> CenterCrop(224) -> convert("RGB") -> ToTensor -> Normalize
// (torchvision transforms on a Pillow image, as in clip.load's `preprocess`).
#pragma once

#include <array>
#include <vector>

#include "dynspec/status.h"
#include "media/image.h"

namespace dynspec {

// Resizes with bicubic interpolation exactly as Pillow's Image.resize(size, BICUBIC) does
// for an RGB image (Pillow's libImaging/Resample.c, the same algorithm since Pillow 4):
//   - Separable: a horizontal pass, then a vertical pass; a pass is skipped when that side
//     keeps its size. The intermediate image is 8-bit, like Pillow's.
//   - Kernel: Keys' cubic convolution with a = -0.5,
//       K(t) = (a+2)|t|^3 - (a+3)|t|^2 + 1        for |t| < 1,
//       K(t) = a|t|^3 - 5a|t|^2 + 8a|t| - 4a       for 1 <= |t| < 2,   0 otherwise.
//   - Geometry: output pixel i of a side of length in -> out has its centre at
//     c = (i + 0.5) * s in input coordinates, s = in / out (pixel centres at j + 0.5).
//   - Antialiasing: with f = max(s, 1), input pixel j gets weight K((j + 0.5 - c) / f); so
//     when downscaling the kernel is stretched by the scale factor (support 2f pixels) and
//     averages over the pixels the output pixel covers; when upscaling it is plain bicubic
//     interpolation (support 2).
//   - Borders: pixels outside the image are not invented; the weights of the pixels inside
//     are divided by their sum (so they add up to 1 at the border too).
//   - Rounding: the normalized weights are fixed-point numbers with 22 fractional bits
//     (rounded half away from zero); each output sample is
//     clamp(floor((2^21 + sum_j w_j * p_j) / 2^22), 0, 255).
// Same-size resizing returns a copy. InvalidArgument for an invalid image or sizes < 1.
Result<RgbImage> ResizeBicubic(const RgbImage& image, int out_width, int out_height);

struct ClipPreprocessOptions {
  int resize_short_side = 224;  // ViT-B/32, ViT-B/16, ViT-L/14; 336 for ViT-L/14@336px
  int crop_size = 224;          // must be <= resize_short_side
  std::array<float, 3> mean = {0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> std = {0.26862954f, 0.26130258f, 0.27577711f};
};

// Where a width x height image goes: the size it is resized to and the crop's top-left
// corner in the resized image. As torchvision: the short side becomes resize_short_side,
// the long side int(resize_short_side * long / short) (truncated); an image whose short
// side already has that length is not resized. The crop offset is
// round((resized - crop) / 2) with Python's round, which rounds halves to even
// (an excess of 75 pixels gives 38, an excess of 77 also 38).
struct ClipGeometry {
  int resized_width = 0;
  int resized_height = 0;
  int crop_left = 0;
  int crop_top = 0;
};
ClipGeometry PlanClipGeometry(int width, int height, const ClipPreprocessOptions& options);

// A dense float tensor in CHW order: value (c, y, x) is data[(c * height + y) * width + x].
struct ImageTensor {
  int channels = 0;
  int height = 0;
  int width = 0;
  std::vector<float> data;
  float at(int c, int y, int x) const { return data[(size_t(c) * height + y) * width + x]; }
};

// The full pipeline: resize (ResizeBicubic) -> centre crop -> value / 255 -> (v - mean) / std,
// computed in float as torchvision does. Returns 3 x crop_size x crop_size.
// InvalidArgument for an invalid image or invalid options (sizes < 1, crop larger than the
// resized short side, std <= 0 or non-finite mean/std).
Result<ImageTensor> ClipPreprocess(const RgbImage& image,
                                   const ClipPreprocessOptions& options = ClipPreprocessOptions());

}  // namespace dynspec
