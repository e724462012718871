// JPEG and PNG decoding (and encoding) with libjpeg-turbo and libpng.
//
// Why these libraries rather than stb_image (libstb-dev): item images come from providers,
// so the decoder reads untrusted input. libjpeg-turbo and libpng are the reference
// decoders, fuzzed continuously and patched through Debian security updates, while
// stb_image's own documentation says it is not meant for untrusted files. They also report
// damage precisely (libjpeg names a premature end or a bad Huffman code; libpng names the
// failed chunk check), which the Corruption messages pass on, and libjpeg-turbo is the
// decoder Pillow uses, so a JPEG decodes to the same pixels CLIP's reference preprocessing
// sees.
//
// Both libraries report fatal errors through a callback that must not return; the only
// way out is longjmp. The rule kept below: every function that calls setjmp declares no
// object with a destructor after it (a longjmp would skip the destructor), and all state
// that changes after setjmp lives in a context struct owned by the caller.
// clang-format off
#include <stdio.h>  // before jpeglib.h, which uses FILE and size_t without declaring them
#include <jpeglib.h>
#include <jerror.h>  // after jpeglib.h: its list of codes depends on jconfig.h's settings
// clang-format on
#include <png.h>

#include <cerrno>
#include <csetjmp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "media/image.h"

namespace dynspec {
namespace {

std::string Quote(const std::string& path) { return "'" + path + "'"; }

bool StartsWith(std::span<const uint8_t> b, std::string_view magic, size_t at = 0) {
  if (b.size() < at + magic.size()) return false;
  return std::memcmp(b.data() + at, magic.data(), magic.size()) == 0;
}

// Names a few formats we do not decode, so the error says what the file is.
const char* OtherFormatName(std::span<const uint8_t> b) {
  if (StartsWith(b, "GIF87a") || StartsWith(b, "GIF89a")) return "GIF";
  if (StartsWith(b, "BM")) return "BMP";
  if (StartsWith(b, "RIFF") && StartsWith(b, "WEBP", 8)) return "WebP";
  if (StartsWith(b, std::string_view("II*\0", 4)) || StartsWith(b, std::string_view("MM\0*", 4))) {
    return "TIFF";
  }
  if (StartsWith(b, "ftyp", 4) && (StartsWith(b, "heic", 8) || StartsWith(b, "mif1", 8))) {
    return "HEIF";
  }
  if (StartsWith(b, "ftyp", 4) && StartsWith(b, "avif", 8)) return "AVIF";
  if (StartsWith(b, "%PDF")) return "PDF";
  if (StartsWith(b, "8BPS")) return "Photoshop";
  return nullptr;
}

Status TooLarge(uint64_t w, uint64_t h, const ImageDecodeOptions& o) {
  return Status::ResourceExhausted("image is " + std::to_string(w) + "x" + std::to_string(h) +
                                   " = " + std::to_string(w * h) + " pixels, above max_pixels " +
                                   std::to_string(o.max_pixels));
}

// ---------------------------------------------------------------------------- JPEG

// libjpeg warnings that mean pixels are missing or wrong: libjpeg goes on and fills the gap
// with grey, which would silently embed a damaged image. Other warnings (extraneous bytes
// between markers, an unknown JFIF revision, a bad ICC marker) leave the pixels intact.
bool IsDamagingJpegWarning(int code) {
  switch (code) {
    case JWRN_ARITH_BAD_CODE:
    case JWRN_BOGUS_PROGRESSION:
    case JWRN_HIT_MARKER:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_JPEG_EOF:
    case JWRN_MUST_RESYNC:
    case JWRN_NOT_SEQUENTIAL:
      return true;
    default:
      return false;
  }
}

struct JpegDecodeCtx {
  jpeg_decompress_struct cinfo;
  jpeg_error_mgr err;
  std::jmp_buf jmp;
  char message[JMSG_LENGTH_MAX] = "";
  bool too_large = false;
  std::span<const uint8_t> bytes;
  const ImageDecodeOptions* options = nullptr;
  RgbImage image;
  std::vector<uint8_t> cmyk_row;
};

[[noreturn]] void JpegErrorExit(j_common_ptr cinfo) {
  auto* ctx = static_cast<JpegDecodeCtx*>(cinfo->client_data);
  (*cinfo->err->format_message)(cinfo, ctx->message);
  std::longjmp(ctx->jmp, 1);
}

void JpegEmitMessage(j_common_ptr cinfo, int level) {
  if (level >= 0) return;  // trace messages
  if (IsDamagingJpegWarning(cinfo->err->msg_code)) JpegErrorExit(cinfo);
}

// All work after setjmp; returns false after a libjpeg error or a refusal (see ctx).
bool RunJpegDecode(JpegDecodeCtx& ctx) {
  if (setjmp(ctx.jmp)) return false;
  jpeg_create_decompress(&ctx.cinfo);
  jpeg_mem_src(&ctx.cinfo, ctx.bytes.data(), static_cast<unsigned long>(ctx.bytes.size()));
  jpeg_read_header(&ctx.cinfo, TRUE);
  const uint64_t pixels = uint64_t(ctx.cinfo.image_width) * ctx.cinfo.image_height;
  if (pixels > uint64_t(ctx.options->max_pixels)) {
    ctx.too_large = true;
    return false;
  }
  const bool cmyk =
      ctx.cinfo.jpeg_color_space == JCS_CMYK || ctx.cinfo.jpeg_color_space == JCS_YCCK;
  ctx.cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  jpeg_start_decompress(&ctx.cinfo);
  const int w = static_cast<int>(ctx.cinfo.output_width);
  const int h = static_cast<int>(ctx.cinfo.output_height);
  ctx.image = RgbImage(w, h);
  if (cmyk) ctx.cmyk_row.resize(size_t(w) * 4);
  // Adobe's APP14 marker means the CMYK samples are stored inverted (0 = full ink).
  const bool inverted = ctx.cinfo.saw_Adobe_marker;
  while (ctx.cinfo.output_scanline < ctx.cinfo.output_height) {
    const int y = static_cast<int>(ctx.cinfo.output_scanline);
    JSAMPROW row = cmyk ? ctx.cmyk_row.data() : ctx.image.at(0, y);
    jpeg_read_scanlines(&ctx.cinfo, &row, 1);
    if (!cmyk) continue;
    for (int x = 0; x < w; ++x) {
      const uint8_t* s = &ctx.cmyk_row[size_t(x) * 4];
      const int nk = inverted ? s[3] : 255 - s[3];  // 255 - K
      for (int c = 0; c < 3; ++c) {
        const int nc = inverted ? s[c] : 255 - s[c];  // 255 - C (M, Y)
        const int t = nc * nk + 128;                  // exact rounding of nc * nk / 255
        ctx.image.at(x, y)[c] = static_cast<uint8_t>((t + (t >> 8)) >> 8);
      }
    }
  }
  jpeg_finish_decompress(&ctx.cinfo);
  return true;
}

Result<RgbImage> DecodeJpeg(std::span<const uint8_t> bytes, const ImageDecodeOptions& o) {
  auto ctx = std::make_unique<JpegDecodeCtx>();
  ctx->cinfo.err = jpeg_std_error(&ctx->err);
  ctx->err.error_exit = JpegErrorExit;
  ctx->err.emit_message = JpegEmitMessage;
  ctx->cinfo.client_data = ctx.get();
  ctx->bytes = bytes;
  ctx->options = &o;
  const bool ok = RunJpegDecode(*ctx);
  const uint64_t w = ctx->cinfo.image_width, h = ctx->cinfo.image_height;
  jpeg_destroy_decompress(&ctx->cinfo);
  if (ctx->too_large) return TooLarge(w, h, o);
  if (!ok) return Status::Corruption(std::string("JPEG data is damaged: ") + ctx->message);
  return std::move(ctx->image);
}

// ----------------------------------------------------------------------------- PNG

struct PngDecodeCtx {
  png_structp png = nullptr;
  png_infop info = nullptr;
  char message[256] = "";
  bool too_large = false;
  uint64_t width = 0, height = 0;
  std::span<const uint8_t> bytes;
  size_t pos = 0;
  const ImageDecodeOptions* options = nullptr;
  RgbImage image;
  std::vector<png_bytep> rows;
};

[[noreturn]] void PngError(png_structp png, png_const_charp msg) {
  auto* ctx = static_cast<PngDecodeCtx*>(png_get_error_ptr(png));
  std::snprintf(ctx->message, sizeof(ctx->message), "%s", msg);
  png_longjmp(png, 1);
}

// Warnings concern ancillary chunks, which libpng skips; the pixels are unaffected.
void PngWarning(png_structp, png_const_charp) {}

void PngRead(png_structp png, png_bytep out, size_t length) {
  auto* ctx = static_cast<PngDecodeCtx*>(png_get_io_ptr(png));
  if (length > ctx->bytes.size() - ctx->pos) png_error(png, "data ends early (truncated file)");
  std::memcpy(out, ctx->bytes.data() + ctx->pos, length);
  ctx->pos += length;
}

bool RunPngDecode(PngDecodeCtx& ctx) {
  if (setjmp(png_jmpbuf(ctx.png))) return false;
  png_set_read_fn(ctx.png, &ctx, PngRead);
  // Our own pixel limit applies instead of libpng's default 1,000,000-pixel side limit.
  png_set_user_limits(ctx.png, 0x7fffffff, 0x7fffffff);
  png_read_info(ctx.png, ctx.info);
  ctx.width = png_get_image_width(ctx.png, ctx.info);
  ctx.height = png_get_image_height(ctx.png, ctx.info);
  if (ctx.width * ctx.height > uint64_t(ctx.options->max_pixels)) {
    ctx.too_large = true;
    return false;
  }
  const int color_type = png_get_color_type(ctx.png, ctx.info);
  const int bit_depth = png_get_bit_depth(ctx.png, ctx.info);
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(ctx.png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(ctx.png);
  if (bit_depth == 16) png_set_strip_16(ctx.png);
  // Alpha and tRNS transparency are dropped, as Pillow's convert("RGB") does.
  if ((color_type & PNG_COLOR_MASK_ALPHA) || png_get_valid(ctx.png, ctx.info, PNG_INFO_tRNS)) {
    png_set_strip_alpha(ctx.png);
  }
  if (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA) {
    png_set_gray_to_rgb(ctx.png);
  }
  png_set_interlace_handling(ctx.png);
  png_read_update_info(ctx.png, ctx.info);
  if (png_get_rowbytes(ctx.png, ctx.info) != ctx.width * 3) {
    png_error(ctx.png, "unexpected row layout after conversion to RGB8");
  }
  ctx.image = RgbImage(static_cast<int>(ctx.width), static_cast<int>(ctx.height));
  ctx.rows.resize(ctx.height);
  for (size_t y = 0; y < ctx.height; ++y) ctx.rows[y] = ctx.image.at(0, static_cast<int>(y));
  png_read_image(ctx.png, ctx.rows.data());
  // The trailing chunks (IEND, text) are not read: once every row is decoded, a missing
  // tail does not change the image.
  return true;
}

Result<RgbImage> DecodePng(std::span<const uint8_t> bytes, const ImageDecodeOptions& o) {
  auto ctx = std::make_unique<PngDecodeCtx>();
  ctx->bytes = bytes;
  ctx->options = &o;
  ctx->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, ctx.get(), PngError, PngWarning);
  if (ctx->png) ctx->info = png_create_info_struct(ctx->png);
  if (!ctx->png || !ctx->info) {
    png_destroy_read_struct(&ctx->png, nullptr, nullptr);
    return Status::Internal("libpng could not allocate its decoder");
  }
  const bool ok = RunPngDecode(*ctx);
  png_destroy_read_struct(&ctx->png, &ctx->info, nullptr);
  if (ctx->too_large) return TooLarge(ctx->width, ctx->height, o);
  if (!ok) return Status::Corruption(std::string("PNG data is damaged: ") + ctx->message);
  return std::move(ctx->image);
}

// ------------------------------------------------------------------------- encoders

struct JpegEncodeCtx {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr err;
  std::jmp_buf jmp;
  char message[JMSG_LENGTH_MAX] = "";
  unsigned char* buffer = nullptr;  // malloc'ed by jpeg_mem_dest
  unsigned long size = 0;
};

[[noreturn]] void JpegEncodeErrorExit(j_common_ptr cinfo) {
  auto* ctx = static_cast<JpegEncodeCtx*>(cinfo->client_data);
  (*cinfo->err->format_message)(cinfo, ctx->message);
  std::longjmp(ctx->jmp, 1);
}

bool RunJpegEncode(JpegEncodeCtx& ctx, const RgbImage& image, int quality) {
  if (setjmp(ctx.jmp)) return false;
  jpeg_create_compress(&ctx.cinfo);
  jpeg_mem_dest(&ctx.cinfo, &ctx.buffer, &ctx.size);
  ctx.cinfo.image_width = static_cast<JDIMENSION>(image.width);
  ctx.cinfo.image_height = static_cast<JDIMENSION>(image.height);
  ctx.cinfo.input_components = 3;
  ctx.cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&ctx.cinfo);
  jpeg_set_quality(&ctx.cinfo, quality, TRUE);
  jpeg_start_compress(&ctx.cinfo, TRUE);
  while (ctx.cinfo.next_scanline < ctx.cinfo.image_height) {
    // libjpeg's API is not const-correct; it only reads the row.
    JSAMPROW row = const_cast<uint8_t*>(image.at(0, static_cast<int>(ctx.cinfo.next_scanline)));
    jpeg_write_scanlines(&ctx.cinfo, &row, 1);
  }
  jpeg_finish_compress(&ctx.cinfo);
  return true;
}

struct PngEncodeCtx {
  png_structp png = nullptr;
  png_infop info = nullptr;
  char message[256] = "";
  std::vector<uint8_t> out;
};

[[noreturn]] void PngEncodeError(png_structp png, png_const_charp msg) {
  auto* ctx = static_cast<PngEncodeCtx*>(png_get_error_ptr(png));
  std::snprintf(ctx->message, sizeof(ctx->message), "%s", msg);
  png_longjmp(png, 1);
}

void PngWrite(png_structp png, png_bytep data, size_t length) {
  auto* ctx = static_cast<PngEncodeCtx*>(png_get_io_ptr(png));
  ctx->out.insert(ctx->out.end(), data, data + length);
}

void PngFlush(png_structp) {}

bool RunPngEncode(PngEncodeCtx& ctx, const RgbImage& image) {
  if (setjmp(png_jmpbuf(ctx.png))) return false;
  png_set_write_fn(ctx.png, &ctx, PngWrite, PngFlush);
  png_set_IHDR(ctx.png, ctx.info, static_cast<png_uint_32>(image.width),
               static_cast<png_uint_32>(image.height), 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(ctx.png, ctx.info);
  for (int y = 0; y < image.height; ++y) {
    png_write_row(ctx.png, const_cast<uint8_t*>(image.at(0, y)));
  }
  png_write_end(ctx.png, nullptr);
  return true;
}

}  // namespace

Status CheckImage(const RgbImage& image, const std::string& what) {
  if (image.width <= 0 || image.height <= 0) {
    return Status::InvalidArgument(what + " has no pixels (" + std::to_string(image.width) + "x" +
                                   std::to_string(image.height) + ")");
  }
  if (image.pixels.size() != size_t(image.width) * size_t(image.height) * 3) {
    return Status::InvalidArgument(what + " has " + std::to_string(image.pixels.size()) +
                                   " bytes, expected width * height * 3 = " +
                                   std::to_string(size_t(image.width) * image.height * 3));
  }
  return Status::Ok();
}

Result<RgbImage> DecodeImage(std::span<const uint8_t> bytes, const ImageDecodeOptions& options) {
  if (bytes.empty()) return Status::InvalidArgument("image data is empty");
  if (StartsWith(bytes, "\xFF\xD8\xFF")) return DecodeJpeg(bytes, options);
  if (StartsWith(bytes, "\x89PNG\r\n\x1A\n")) return DecodePng(bytes, options);
  if (const char* name = OtherFormatName(bytes)) {
    return Status::InvalidArgument(std::string("unsupported image format ") + name +
                                   " (only JPEG and PNG are decoded)");
  }
  return Status::InvalidArgument("unsupported image format: the data is neither JPEG nor PNG");
}

Result<RgbImage> DecodeImageFile(const std::string& path, const ImageDecodeOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found) {
    return Status::NotFound("image file " + Quote(path) + " does not exist");
  }
  if (ec) return Status::IoError("cannot stat image file " + Quote(path) + ": " + ec.message());
  if (fs::is_directory(st)) {
    return Status::InvalidArgument("image path " + Quote(path) + " is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::IoError("cannot open image file " + Quote(path) + ": " + std::strerror(errno));
  }
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  in.seekg(0, std::ios::beg);
  if (size < 0) return Status::IoError("cannot read the size of image file " + Quote(path));
  if (size > options.max_file_bytes) {
    return Status::ResourceExhausted("image file " + Quote(path) + " has " + std::to_string(size) +
                                     " bytes, above max_file_bytes " +
                                     std::to_string(options.max_file_bytes));
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size)) {
    return Status::IoError("cannot read image file " + Quote(path) + ": " + std::strerror(errno));
  }
  auto image = DecodeImage(bytes, options);
  if (!image.ok()) return image.status().WithContext("image file " + Quote(path));
  return image;
}

Result<std::vector<uint8_t>> EncodeJpeg(const RgbImage& image, int quality) {
  DYNSPEC_RETURN_IF_ERROR(CheckImage(image, "image to encode"));
  if (quality < 1 || quality > 100) {
    return Status::InvalidArgument("JPEG quality must be in [1, 100], got " +
                                   std::to_string(quality));
  }
  auto ctx = std::make_unique<JpegEncodeCtx>();
  ctx->cinfo.err = jpeg_std_error(&ctx->err);
  ctx->err.error_exit = JpegEncodeErrorExit;
  ctx->cinfo.client_data = ctx.get();
  const bool ok = RunJpegEncode(*ctx, image, quality);
  jpeg_destroy_compress(&ctx->cinfo);
  std::vector<uint8_t> out;
  if (ok) out.assign(ctx->buffer, ctx->buffer + ctx->size);
  std::free(ctx->buffer);
  if (!ok) return Status::Internal(std::string("JPEG encoding failed: ") + ctx->message);
  return out;
}

Result<std::vector<uint8_t>> EncodePng(const RgbImage& image) {
  DYNSPEC_RETURN_IF_ERROR(CheckImage(image, "image to encode"));
  auto ctx = std::make_unique<PngEncodeCtx>();
  ctx->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, ctx.get(), PngEncodeError, PngWarning);
  if (ctx->png) ctx->info = png_create_info_struct(ctx->png);
  if (!ctx->png || !ctx->info) {
    png_destroy_write_struct(&ctx->png, nullptr);
    return Status::Internal("libpng could not allocate its encoder");
  }
  const bool ok = RunPngEncode(*ctx, image);
  png_destroy_write_struct(&ctx->png, &ctx->info);
  if (!ok) return Status::Internal(std::string("PNG encoding failed: ") + ctx->message);
  return std::move(ctx->out);
}

Status WriteFileBytes(const std::string& path, std::span<const uint8_t> bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (out) out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  if (out) out.close();
  if (!out) return Status::IoError("cannot write " + Quote(path) + ": " + std::strerror(errno));
  return Status::Ok();
}

}  // namespace dynspec
