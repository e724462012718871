// Video embedding without a model: sample frames uniformly over the duration, embed each
// with the image embedder, average. Decoding uses FFmpeg's libraries (libavformat,
// libavcodec, libswscale), so every container and codec FFmpeg reads is accepted.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dynspec/status.h"
#include "media/image.h"
#include "media/image_embedder.h"

namespace dynspec {

struct VideoSampleOptions {
  int frames = 8;  // N, frames sampled per video
  // Frames larger than this are refused (ResourceExhausted) from the stream header.
  int64_t max_frame_pixels = 50'000'000;
  // Sampling seeks (to the key frame before a target time) when the next target is more
  // than this many seconds past the last decoded frame; nearer targets are reached by
  // decoding on. Decoding everything costs the whole video's length; seeking costs about a
  // key-frame interval per sample, which is why the gap is larger than a typical interval
  // (2 to 10 s). Infinity: never seek. Streams without a duration in their header are never
  // sought; a seek that fails or lands nowhere usable falls back to decoding from the start
  // (targets already served are kept).
  double seek_min_gap_seconds = 10.0;
  // Threads of one decoder. 1 by default: the engine already embeds many items at once.
  int decoder_threads = 1;
};

// One sampled frame: the picture shown at time `target_seconds`, which is the frame whose
// timestamp `frame_seconds` is the last one <= target_seconds (or the first frame, if the
// target precedes it). Times are relative to the stream's start.
struct SampledFrame {
  double target_seconds = 0;
  double frame_seconds = 0;
  RgbImage image;
};

// Samples options.frames frames of the file's main video stream at the times
// (i + 0.5) * duration / N, i = 0 .. N-1, and calls `visit` once per target, in order
// (the same decoded frame may be visited for several targets when the video has fewer
// frames than targets). The duration comes from the stream, else from the container,
// else from a scan of the packets' timestamps; a single picture has duration 0 and gives N
// copies of itself. Frames are converted to RGB with swscale using the stream's colour
// matrix (BT.601/709/2020) and range. Display rotation metadata is not applied.
// Errors: NotFound (no such file), InvalidArgument (a directory, an empty file, data FFmpeg
// cannot read as media, no video stream (audio only, or only a cover picture), a video
// stream with no decodable frame), ResourceExhausted (frame above max_frame_pixels),
// Internal (FFmpeg failed unexpectedly), or the first error `visit` returns. Damaged
// packets in the middle are skipped, as players do; a truncated file yields the frames
// before the damage.
Status VisitVideoFrames(const std::string& path, const VideoSampleOptions& options,
                        const std::function<Status(const SampledFrame&)>& visit);

// VisitVideoFrames collecting the frames (N full-size RGB images in memory).
Result<std::vector<SampledFrame>> SampleVideoFrames(const std::string& path,
                                                    const VideoSampleOptions& options);

struct VideoEmbedOptions {
  VideoSampleOptions sample;
  // The per-frame embedder's settings. Keep them equal to the image embedder's to put
  // videos and images in one vector space (then a video of a still scene lands near a
  // photo of it).
  ImageEmbedOptions image;
};

// Contract: EmbedVideoFile is const and safe to call from many threads at once (each call
// has its own FFmpeg contexts); same file and options, same vector; dim() values, unit norm.
class VideoEmbedder {
 public:
  static Result<std::unique_ptr<VideoEmbedder>> Create(
      const VideoEmbedOptions& options = VideoEmbedOptions());
  int dim() const { return image_->dim(); }
  std::string name() const { return "video-mean-of-frames"; }
  const ImageEmbedder& image_embedder() const { return *image_; }

  // The mean of the sampled frames' image embeddings, L2 normalized. Errors as
  // VisitVideoFrames, prefixed with the path.
  Result<std::vector<float>> EmbedVideoFile(const std::string& path) const;

 private:
  VideoEmbedder(const VideoEmbedOptions& options, std::unique_ptr<ImageEmbedder> image);
  VideoEmbedOptions options_;
  std::unique_ptr<ImageEmbedder> image_;
};

}  // namespace dynspec
