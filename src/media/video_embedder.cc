// Frame sampling with FFmpeg and the mean-of-frames video embedding.
//
// FFmpeg's own log level is process-global state (av_log_set_level); it is left as the
// application set it. FFmpeg may therefore print warnings about damaged input on stderr.
#include "media/video_embedder.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include "common/vector_math.h"

namespace dynspec {
namespace {

std::string AvError(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(err, buf, sizeof(buf));
  return buf;
}

struct FormatCloser {
  void operator()(AVFormatContext* f) const { avformat_close_input(&f); }
};
struct CodecFreer {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameFreer {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketFreer {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsFreer {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};
using FormatPtr = std::unique_ptr<AVFormatContext, FormatCloser>;
using CodecPtr = std::unique_ptr<AVCodecContext, CodecFreer>;
using FramePtr = std::unique_ptr<AVFrame, FrameFreer>;
using PacketPtr = std::unique_ptr<AVPacket, PacketFreer>;
using SwsPtr = std::unique_ptr<SwsContext, SwsFreer>;

Result<FormatPtr> OpenInput(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found) return Status::NotFound("file does not exist");
  if (ec) return Status::IoError("cannot stat: " + ec.message());
  if (fs::is_directory(st)) return Status::InvalidArgument("is a directory");
  if (fs::is_regular_file(st) && fs::file_size(path, ec) == 0 && !ec) {
    return Status::InvalidArgument("file is empty");
  }
  // "file:" keeps FFmpeg from reading the path as a URL or a protocol expression, and the
  // whitelist keeps playlists (HLS, concat) from opening anything but local files.
  AVDictionary* opts = nullptr;
  av_dict_set(&opts, "protocol_whitelist", "file", 0);
  AVFormatContext* raw = nullptr;
  const int r = avformat_open_input(&raw, ("file:" + path).c_str(), nullptr, &opts);
  av_dict_free(&opts);
  if (r < 0) {
    if (r == AVERROR(ENOENT)) return Status::NotFound("file does not exist");
    if (r == AVERROR(EACCES)) return Status::IoError("permission denied");
    // FFmpeg cannot tell a file of another kind from a damaged media file.
    return Status::InvalidArgument("FFmpeg cannot read it as media (" + AvError(r) +
                                   "): not audio or video, or damaged");
  }
  FormatPtr f(raw);
  // FFmpeg renders text files (by extension) as ANSI art video; that is not a video.
  if (std::strcmp(f->iformat->name, "tty") == 0) {
    return Status::InvalidArgument("is a text file, not a video");
  }
  const int s = avformat_find_stream_info(f.get(), nullptr);
  if (s < 0) {
    return Status::InvalidArgument("FFmpeg cannot read its streams (" + AvError(s) + ")");
  }
  return f;
}

struct VideoStream {
  int index = -1;
  const AVCodec* codec = nullptr;
};

Result<VideoStream> FindVideoStream(AVFormatContext* f, const VideoSampleOptions& o) {
  VideoStream v;
  v.index = av_find_best_stream(f, AVMEDIA_TYPE_VIDEO, -1, -1, &v.codec, 0);
  if (v.index == AVERROR_STREAM_NOT_FOUND) return Status::InvalidArgument("has no video stream");
  if (v.index == AVERROR_DECODER_NOT_FOUND || (v.index >= 0 && !v.codec)) {
    return Status::InvalidArgument("has a video stream but FFmpeg has no decoder for its codec");
  }
  if (v.index < 0) return Status::Internal("av_find_best_stream: " + AvError(v.index));
  const AVStream* st = f->streams[v.index];
  if (st->disposition & AV_DISPOSITION_ATTACHED_PIC) {
    return Status::InvalidArgument("has no video stream, only a cover picture");
  }
  const int64_t pixels = int64_t(st->codecpar->width) * st->codecpar->height;
  if (pixels > o.max_frame_pixels) {
    return Status::ResourceExhausted("frames are " + std::to_string(st->codecpar->width) + "x" +
                                     std::to_string(st->codecpar->height) +
                                     ", above max_frame_pixels " +
                                     std::to_string(o.max_frame_pixels));
  }
  return v;
}

Result<CodecPtr> OpenDecoder(const AVStream* st, const AVCodec* codec, int threads) {
  CodecPtr c(avcodec_alloc_context3(codec));
  if (!c) return Status::Internal("avcodec_alloc_context3 failed");
  int r = avcodec_parameters_to_context(c.get(), st->codecpar);
  if (r < 0) return Status::Internal("avcodec_parameters_to_context: " + AvError(r));
  c->thread_count = threads;
  c->pkt_timebase = st->time_base;
  r = avcodec_open2(c.get(), codec, nullptr);
  if (r < 0) {
    return Status::InvalidArgument(std::string("cannot open the ") + codec->name +
                                   " decoder: " + AvError(r));
  }
  return c;
}

// Seconds between frames at the stream's nominal rate (for streams without timestamps).
double FramePeriod(const AVStream* st) {
  const AVRational rate = st->avg_frame_rate.num > 0 ? st->avg_frame_rate : st->r_frame_rate;
  return rate.num > 0 && rate.den > 0 ? av_q2d(av_inv_q(rate)) : 1.0 / 25;
}

// The stream's duration in seconds from the container's header, or from a scan of its
// packets when the header has none (raw streams): their timestamps, or without those their
// number times the nominal frame period. 0 for a single picture. *from_header says
// whether a header gave it.
double StreamDuration(const std::string& path, AVFormatContext* f, int index, bool* from_header) {
  const AVStream* st = f->streams[index];
  const double tb = av_q2d(st->time_base);
  *from_header = true;
  if (st->duration != AV_NOPTS_VALUE && st->duration > 0) return st->duration * tb;
  if (f->duration != AV_NOPTS_VALUE && f->duration > 0) return double(f->duration) / AV_TIME_BASE;
  *from_header = false;
  // Scan a second opening of the file so this one stays at the start.
  auto scan = OpenInput(path);
  if (!scan.ok()) return 0;
  PacketPtr pkt(av_packet_alloc());
  int64_t lo = std::numeric_limits<int64_t>::max(), hi = std::numeric_limits<int64_t>::min();
  int64_t packets = 0;
  while (pkt && av_read_frame(scan->get(), pkt.get()) >= 0) {
    if (pkt->stream_index == index) {
      ++packets;
      if (pkt->pts != AV_NOPTS_VALUE) {
        lo = std::min(lo, pkt->pts);
        hi = std::max(hi, pkt->pts + std::max<int64_t>(pkt->duration, 0));
      }
    }
    av_packet_unref(pkt.get());
  }
  const AVStream* scanned = (*scan)->streams[index];
  if (hi > lo) return double(hi - lo) * av_q2d(scanned->time_base);
  return packets > 1 ? packets * FramePeriod(scanned) : 0;
}

// Converts a decoded frame to RGB8 at its own size.
Result<RgbImage> FrameToRgb(const AVFrame* fr, SwsPtr& sws, const VideoSampleOptions& o) {
  if (fr->width <= 0 || fr->height <= 0) return Status::Internal("decoded frame has no size");
  if (int64_t(fr->width) * fr->height > o.max_frame_pixels) {
    return Status::ResourceExhausted("a frame is " + std::to_string(fr->width) + "x" +
                                     std::to_string(fr->height) + ", above max_frame_pixels " +
                                     std::to_string(o.max_frame_pixels));
  }
  auto fmt = static_cast<AVPixelFormat>(fr->format);
  bool full_range = fr->color_range == AVCOL_RANGE_JPEG;
  // The deprecated "J" formats are the plain ones with full range (swscale warns on them).
  switch (fmt) {
    case AV_PIX_FMT_YUVJ420P:
      fmt = AV_PIX_FMT_YUV420P, full_range = true;
      break;
    case AV_PIX_FMT_YUVJ422P:
      fmt = AV_PIX_FMT_YUV422P, full_range = true;
      break;
    case AV_PIX_FMT_YUVJ444P:
      fmt = AV_PIX_FMT_YUV444P, full_range = true;
      break;
    case AV_PIX_FMT_YUVJ440P:
      fmt = AV_PIX_FMT_YUV440P, full_range = true;
      break;
    case AV_PIX_FMT_YUVJ411P:
      fmt = AV_PIX_FMT_YUV411P, full_range = true;
      break;
    default:
      break;
  }
  sws.reset(sws_getCachedContext(
      sws.release(), fr->width, fr->height, fmt, fr->width, fr->height, AV_PIX_FMT_RGB24,
      SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr, nullptr, nullptr));
  if (!sws) {
    const char* name = av_get_pix_fmt_name(fmt);
    return Status::Internal(std::string("swscale cannot convert pixel format ") +
                            (name ? name : "unknown") + " to RGB");
  }
  // The colour matrix the stream declares; unspecified ones get what players assume:
  // BT.709 for HD, BT.601 for SD.
  int matrix = fr->height >= 720 ? SWS_CS_ITU709 : SWS_CS_ITU601;
  switch (fr->colorspace) {
    case AVCOL_SPC_BT709:
      matrix = SWS_CS_ITU709;
      break;
    case AVCOL_SPC_BT470BG:
    case AVCOL_SPC_SMPTE170M:
      matrix = SWS_CS_ITU601;
      break;
    case AVCOL_SPC_SMPTE240M:
      matrix = SWS_CS_SMPTE240M;
      break;
    case AVCOL_SPC_FCC:
      matrix = SWS_CS_FCC;
      break;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL:
      matrix = SWS_CS_BT2020;
      break;
    default:
      break;
  }
  // Fails (harmlessly) for RGB sources, which have no matrix.
  sws_setColorspaceDetails(sws.get(), sws_getCoefficients(matrix), full_range ? 1 : 0,
                           sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
  // swscale's SIMD paths want aligned rows, so convert into an aligned buffer and copy.
  uint8_t* dst[4] = {};
  int dst_stride[4] = {};
  if (av_image_alloc(dst, dst_stride, fr->width, fr->height, AV_PIX_FMT_RGB24, 32) < 0) {
    return Status::ResourceExhausted("cannot allocate an RGB frame");
  }
  sws_scale(sws.get(), fr->data, fr->linesize, 0, fr->height, dst, dst_stride);
  RgbImage img(fr->width, fr->height);
  for (int y = 0; y < fr->height; ++y) {
    std::memcpy(img.at(0, y), dst[0] + size_t(y) * dst_stride[0], size_t(fr->width) * 3);
  }
  av_freep(&dst[0]);
  return img;
}

// Walks the decoded frames and hands out, for each target time, the frame shown then.
class FrameSampler {
 public:
  FrameSampler(std::vector<double> targets, const VideoSampleOptions& o,
               const std::function<Status(const SampledFrame&)>& visit)
      : targets_(std::move(targets)), o_(o), visit_(visit), prev_(av_frame_alloc()) {}

  bool done() const { return next_ >= targets_.size(); }
  size_t next() const { return next_; }
  double next_target() const { return targets_[next_]; }
  bool has_frames() const { return decoded_ > 0; }
  bool has_prev() const { return has_prev_; }

  // A decoded frame at `seconds`. Targets before it are served by the previous frame (or
  // by this one when there is none: the first frame, or the first after a seek).
  Status OnFrame(AVFrame* frame, double seconds) {
    ++decoded_;
    while (!done() && targets_[next_] < seconds) {
      if (has_prev_) {
        DYNSPEC_RETURN_IF_ERROR(EmitPrev());
      } else {
        DYNSPEC_RETURN_IF_ERROR(Emit(frame, seconds, nullptr));
      }
    }
    av_frame_unref(prev_.get());
    av_frame_move_ref(prev_.get(), frame);
    has_prev_ = true;
    prev_seconds_ = seconds;
    prev_rgb_valid_ = false;
    return Status::Ok();
  }

  // End of stream: the last frame is shown until the end.
  Status OnEnd() {
    while (!done() && has_prev_) DYNSPEC_RETURN_IF_ERROR(EmitPrev());
    return Status::Ok();
  }

  // After a seek the previous frame is no longer the one before the next decoded frame.
  void OnSeek() {
    av_frame_unref(prev_.get());
    has_prev_ = false;
    prev_rgb_valid_ = false;
  }

 private:
  Status EmitPrev() {
    if (!prev_rgb_valid_) {
      DYNSPEC_ASSIGN_OR_RETURN(prev_rgb_, FrameToRgb(prev_.get(), sws_, o_));
      prev_rgb_valid_ = true;
    }
    return Emit(nullptr, prev_seconds_, &prev_rgb_);
  }

  Status Emit(const AVFrame* frame, double seconds, const RgbImage* rgb) {
    SampledFrame s;
    s.target_seconds = targets_[next_];
    s.frame_seconds = seconds;
    if (rgb) {
      s.image = *rgb;
    } else {
      DYNSPEC_ASSIGN_OR_RETURN(s.image, FrameToRgb(frame, sws_, o_));
    }
    ++next_;
    return visit_(s);
  }

  std::vector<double> targets_;
  const VideoSampleOptions& o_;
  const std::function<Status(const SampledFrame&)>& visit_;
  size_t next_ = 0;
  int64_t decoded_ = 0;
  FramePtr prev_;
  bool has_prev_ = false;
  double prev_seconds_ = 0;
  RgbImage prev_rgb_;
  bool prev_rgb_valid_ = false;
  SwsPtr sws_;
};

Status CheckSampleOptions(const VideoSampleOptions& o) {
  if (o.frames < 1 || o.frames > 10000) {
    return Status::InvalidArgument("video.frames must be in [1, 10000]");
  }
  if (o.max_frame_pixels < 1) return Status::InvalidArgument("video.max_frame_pixels must be >= 1");
  if (std::isnan(o.seek_min_gap_seconds) || o.seek_min_gap_seconds < 0) {
    return Status::InvalidArgument("video.seek_min_gap_seconds must be >= 0");
  }
  if (o.decoder_threads < 0) return Status::InvalidArgument("video.decoder_threads must be >= 0");
  return Status::Ok();
}

// An opened file with the decoder of its main video stream.
struct OpenVideo {
  FormatPtr format;
  int index = -1;
  CodecPtr decoder;
  AVStream* stream() const { return format->streams[index]; }
};

Result<OpenVideo> Open(const std::string& path, const VideoSampleOptions& o) {
  OpenVideo v;
  DYNSPEC_ASSIGN_OR_RETURN(v.format, OpenInput(path));
  DYNSPEC_ASSIGN_OR_RETURN(const VideoStream vs, FindVideoStream(v.format.get(), o));
  v.index = vs.index;
  DYNSPEC_ASSIGN_OR_RETURN(v.decoder, OpenDecoder(v.stream(), vs.codec, o.decoder_threads));
  // Only this stream's packets are needed; the demuxer can skip the others.
  for (unsigned i = 0; i < v.format->nb_streams; ++i) {
    if (int(i) != v.index) v.format->streams[i]->discard = AVDISCARD_ALL;
  }
  return v;
}

// Decodes `v` from its start, feeding the sampler until it has every target or the file
// ends; seeks ahead when allowed (see VideoSampleOptions::seek_min_gap_seconds). Returns
// true when a seek proved unusable (it failed, nothing decodable followed it, or the
// frames after it have no timestamps, so their position is unknown): the caller then
// decodes again without seeking.
Result<bool> DecodePass(OpenVideo& v, const VideoSampleOptions& o, bool allow_seek,
                        FrameSampler& sampler) {
  AVStream* st = v.stream();
  const double tb = av_q2d(st->time_base);
  const int64_t start = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
  // Without timestamps, frames are numbered at the stream's nominal rate.
  const double frame_period = FramePeriod(st);
  PacketPtr pkt(av_packet_alloc());
  FramePtr frame(av_frame_alloc());
  if (!pkt || !frame) return Status::Internal("cannot allocate FFmpeg packet or frame");
  double position = 0;  // time of the last decoded frame
  size_t last_seek_target = SIZE_MAX;
  bool seeked = false, untimed_after_seek = false;
  int64_t untimed = 0;

  auto drain = [&]() -> Status {
    while (!sampler.done()) {
      const int r = avcodec_receive_frame(v.decoder.get(), frame.get());
      if (r < 0) break;  // EAGAIN (needs input), EOF, or a damaged frame: go on reading
      int64_t ts = frame->best_effort_timestamp;
      if (ts == AV_NOPTS_VALUE) ts = frame->pts;
      if (ts == AV_NOPTS_VALUE && seeked) {
        untimed_after_seek = true;
        return Status::Ok();
      }
      const double t = ts != AV_NOPTS_VALUE ? (ts - start) * tb : untimed * frame_period;
      ++untimed;
      position = t;
      DYNSPEC_RETURN_IF_ERROR(sampler.OnFrame(frame.get(), t));
    }
    return Status::Ok();
  };

  bool eof = false;
  while (!sampler.done() && !eof) {
    const size_t next = sampler.next();
    if (allow_seek && next != last_seek_target &&
        sampler.next_target() - position > o.seek_min_gap_seconds) {
      last_seek_target = next;
      const auto ts = start + int64_t(std::llround(sampler.next_target() / tb));
      // A failed seek may still have moved the demuxer (a generic index is built by
      // reading ahead), so the position is unknown either way.
      if (av_seek_frame(v.format.get(), v.index, ts, AVSEEK_FLAG_BACKWARD) < 0) return true;
      avcodec_flush_buffers(v.decoder.get());
      sampler.OnSeek();
      seeked = true;
    }
    const int r = av_read_frame(v.format.get(), pkt.get());
    if (r < 0) {
      // End of file, or a read error (a truncated file): decode what is buffered.
      eof = true;
      avcodec_send_packet(v.decoder.get(), nullptr);
    } else {
      const bool ours = pkt->stream_index == v.index;
      // A damaged packet is skipped; the decoder recovers at the next key frame.
      if (ours) avcodec_send_packet(v.decoder.get(), pkt.get());
      av_packet_unref(pkt.get());
      if (!ours) continue;
    }
    DYNSPEC_RETURN_IF_ERROR(drain());
    if (untimed_after_seek) return true;
  }
  return seeked && !sampler.done() && !sampler.has_prev();
}

Status VisitFramesImpl(const std::string& path, const VideoSampleOptions& o,
                       const std::function<Status(const SampledFrame&)>& visit) {
  DYNSPEC_ASSIGN_OR_RETURN(OpenVideo v, Open(path, o));
  bool duration_in_header = false;
  const double duration = StreamDuration(path, v.format.get(), v.index, &duration_in_header);
  std::vector<double> targets(o.frames);
  for (int i = 0; i < o.frames; ++i) targets[i] = (i + 0.5) * duration / o.frames;
  FrameSampler sampler(std::move(targets), o, visit);
  // Streams whose length had to be counted (raw streams without a container) have no
  // timestamps to seek to.
  const bool allow_seek = duration_in_header && !(v.format->iformat->flags & AVFMT_NOTIMESTAMPS);
  DYNSPEC_ASSIGN_OR_RETURN(const bool again, DecodePass(v, o, allow_seek, sampler));
  if (again) {
    // Targets already served stay served; the rest come from decoding everything.
    DYNSPEC_ASSIGN_OR_RETURN(OpenVideo fresh, Open(path, o));
    sampler.OnSeek();
    DYNSPEC_RETURN_IF_ERROR(DecodePass(fresh, o, false, sampler).status());
  }
  if (!sampler.has_frames()) {
    return Status::InvalidArgument("video stream has no decodable frames");
  }
  return sampler.OnEnd();
}

}  // namespace

Status VisitVideoFrames(const std::string& path, const VideoSampleOptions& options,
                        const std::function<Status(const SampledFrame&)>& visit) {
  DYNSPEC_RETURN_IF_ERROR(CheckSampleOptions(options));
  return VisitFramesImpl(path, options, visit).WithContext("video file '" + path + "'");
}

Result<std::vector<SampledFrame>> SampleVideoFrames(const std::string& path,
                                                    const VideoSampleOptions& options) {
  std::vector<SampledFrame> frames;
  DYNSPEC_RETURN_IF_ERROR(VisitVideoFrames(path, options, [&](const SampledFrame& s) {
    frames.push_back(s);
    return Status::Ok();
  }));
  return frames;
}

Result<std::unique_ptr<VideoEmbedder>> VideoEmbedder::Create(const VideoEmbedOptions& options) {
  DYNSPEC_RETURN_IF_ERROR(CheckSampleOptions(options.sample));
  DYNSPEC_ASSIGN_OR_RETURN(auto image, ImageEmbedder::Create(options.image));
  return std::unique_ptr<VideoEmbedder>(new VideoEmbedder(options, std::move(image)));
}

VideoEmbedder::VideoEmbedder(const VideoEmbedOptions& options, std::unique_ptr<ImageEmbedder> image)
    : options_(options), image_(std::move(image)) {}

Result<std::vector<float>> VideoEmbedder::EmbedVideoFile(const std::string& path) const {
  std::vector<double> sum(image_->dim(), 0.0);
  Status st = VisitVideoFrames(path, options_.sample, [&](const SampledFrame& s) -> Status {
    DYNSPEC_ASSIGN_OR_RETURN(const std::vector<float> v, image_->EmbedImage(s.image));
    for (size_t i = 0; i < v.size(); ++i) sum[i] += v[i];
    return Status::Ok();
  });
  if (!st.ok()) return st;
  std::vector<float> v(sum.begin(), sum.end());
  Status norm = NormalizeInPlace(v, "video embedding");
  if (!norm.ok()) {
    // Frame vectors pointing in opposite directions could cancel exactly; not seen in
    // practice, reported rather than returned as a zero vector.
    return Status::InvalidArgument("video file '" + path + "': " + norm.message());
  }
  return v;
}

}  // namespace dynspec
