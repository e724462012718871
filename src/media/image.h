// RGB8 images and their decoding from JPEG and PNG files (the media layer's input).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "dynspec/status.h"

namespace dynspec {

// An 8-bit sRGB image: row-major, 3 interleaved bytes (R, G, B) per pixel, no padding, so
// pixel (x, y) starts at pixels[(y * width + x) * 3]. A valid image has width > 0,
// height > 0 and pixels.size() == width * height * 3 (see CheckImage).
struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;

  RgbImage() = default;
  RgbImage(int w, int h) : width(w), height(h), pixels(size_t(w) * size_t(h) * 3, 0) {}
  uint8_t* at(int x, int y) { return &pixels[(size_t(y) * width + x) * 3]; }
  const uint8_t* at(int x, int y) const { return &pixels[(size_t(y) * width + x) * 3]; }
};

// InvalidArgument naming `what` unless the dimensions are positive and the buffer matches them.
Status CheckImage(const RgbImage& image, const std::string& what);

struct ImageDecodeOptions {
  // Images with more pixels are refused (ResourceExhausted) from their header alone, before
  // any pixel memory is allocated: a 1 KB file can declare 65500 x 65500 pixels (12 GB of
  // RGB). The default, 50 megapixels (150 MB decoded), admits any camera photo.
  int64_t max_pixels = 50'000'000;
  // Files larger than this are refused (ResourceExhausted) before they are read.
  int64_t max_file_bytes = int64_t(256) << 20;
};

// Decodes a complete JPEG or PNG file held in memory. The format is taken from the leading
// bytes, never from a file name. Conversions (chosen to match what Pillow's
// Image.open(...).convert("RGB") gives, which is what CLIP's reference preprocessing sees):
//   - grayscale is replicated into R, G and B; palette images are expanded;
//   - an alpha channel (or PNG tRNS transparency) is dropped, not composited: the colour
//     stored under a transparent pixel is kept;
//   - 16-bit PNG samples keep their high byte (as Pillow does for 16-bit colour; for
//     16-bit grayscale Pillow clips the value at 255 instead, which is not copied);
//   - CMYK/YCCK JPEGs are converted naively (R = (255 - C)(255 - K) / 255, ...), Adobe's
//     inverted CMYK recognised by its APP14 marker;
//   - no gamma, ICC profile or EXIF orientation is applied.
// Errors: InvalidArgument for empty input or a format other than JPEG/PNG (the message
// names the format when it recognises it, e.g. GIF or WebP); ResourceExhausted when the
// image exceeds options.max_pixels; Corruption for truncated or damaged data (including JPEG
// data that libjpeg can only decode with gaps; it would otherwise fill them with grey).
Result<RgbImage> DecodeImage(std::span<const uint8_t> bytes,
                             const ImageDecodeOptions& options = ImageDecodeOptions());

// Reads and decodes a file. NotFound when the path does not exist, InvalidArgument when it
// is a directory, IoError when it cannot be read; then as DecodeImage. Every message names
// the path.
Result<RgbImage> DecodeImageFile(const std::string& path,
                                 const ImageDecodeOptions& options = ImageDecodeOptions());

// Encoders, for tests and tools that need to write images (thumbnails, sampled frames).
// quality is libjpeg's 1..100 scale; JPEGs use 4:2:0 chroma subsampling (libjpeg's default).
Result<std::vector<uint8_t>> EncodeJpeg(const RgbImage& image, int quality = 90);
Result<std::vector<uint8_t>> EncodePng(const RgbImage& image);

// Writes bytes to a file (replacing it); IoError naming the path on failure.
Status WriteFileBytes(const std::string& path, std::span<const uint8_t> bytes);

}  // namespace dynspec
