// ClipEmbedder: text and images into one vector space with a CLIP model exported to
// TorchScript, run on libtorch (CPU). Built only when libtorch is found (CMake target
// dynspec_clip, option DYNSPEC_WITH_TORCH); docs/embedding.md, "CLIP via TorchScript".
//
// The model is a TorchScript archive (torch.jit.save) whose module has two methods:
//   encode_text(tokens: Tensor) -> Tensor   tokens: int64 [B, context_length], the ids of
//                                           ClipTokenizer::Tokenize (start, ids, end, zeros)
//   encode_image(image: Tensor) -> Tensor   image: float32 [B, 3, crop_size, crop_size], the
//                                           CHW tensor of ClipPreprocess
// both returning [B, D] (any floating type; converted to float32). This layer tokenizes and
// preprocesses in C++, so no Python runs at embedding time. Torch stays out of this header.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dynspec/embedder.h"
#include "dynspec/status.h"
#include "media/clip_preprocess.h"
#include "media/image.h"

namespace dynspec {

struct ClipEmbedderOptions {
  // Must match the model's input: 224 for ViT-B/32, ViT-B/16, ViT-L/14; 336 for
  // ViT-L/14@336px. Load probes encode_image with this size.
  ClipPreprocessOptions preprocess;
  int context_length = 77;  // the length CLIP's text encoders take
  // Longer texts keep their first context_length - 1 tokens and end with the end token (as
  // clip.tokenize(truncate=True)); false makes them InvalidArgument.
  bool truncate = true;
  // Inputs are run through the model in batches of at most this many (memory bound: a
  // ViT-B/32 image batch needs roughly 30 MB of activations per image).
  int max_batch = 32;
  ImageDecodeOptions decode;  // for EmbedImageFile
};

// InvalidArgument naming the field unless the options are usable.
Status ValidateClipEmbedderOptions(const ClipEmbedderOptions& options);

// Contract: immutable after Load; every method is const and may be called from many threads
// at once. Tokenizing, preprocessing and normalizing run in the calling thread; the model
// calls themselves are serialized by one mutex per loaded model (libtorch does not document
// concurrent calls of one TorchScript module as safe, so this does not rely on it); each call
// uses libtorch's intra-op thread pool (at::set_num_threads, process-wide).
// Every result has dim() values and unit L2 norm. Texts and images share the vector space.
// The same input gives the same vector for the same batch composition; a batch gives the
// vectors of its items embedded one by one up to float rounding (different batch sizes can
// take different kernels), not bit for bit.
// Never throws: libtorch's exceptions become Status (Internal, or the codes below).
class ClipEmbedder : public Embedder {
 public:
  // Loads the model on the CPU, puts it in eval mode, loads the tokenizer vocabulary
  // (ClipTokenizer::Load) and probes the model: encode_text on one sequence (the empty
  // text: start and end tokens) gives dim(), encode_image on one mid-grey image (through
  // ClipPreprocess) must give the same D. Errors, each naming the file:
  //   NotFound: model or vocabulary file missing; InvalidArgument: a directory, bad
  //   options, a module without encode_text or encode_image, a probe output that is not a
  //   [1, D] floating tensor (D >= 1) or whose D differs between text and image, or that is
  //   not finite or zero, or a probe call that fails (the method does not take that
  //   input); Corruption: not a TorchScript archive (or a damaged one, or one this libtorch
  //   cannot read).
  static Result<std::unique_ptr<ClipEmbedder>> Load(
      const std::string& model_path, const std::string& vocab_path,
      const ClipEmbedderOptions& options = ClipEmbedderOptions());
  ~ClipEmbedder() override;

  int dim() const override;
  std::string name() const override { return "clip"; }

  // The Embedder interface (what the engine calls for item text): EmbedTexts of one text.
  Result<std::vector<float>> EmbedText(std::string_view text) const override;

  // One unit vector per text, in order. InvalidArgument for an empty list, a text without
  // tokens (empty or white space only) or, without truncate, a text too long; the message
  // names its index. Internal when the model fails or returns an output that is not
  // [B, D] or not finite, or a zero vector.
  Result<std::vector<std::vector<float>>> EmbedTexts(const std::vector<std::string>& texts) const;

  // One unit vector per image (each preprocessed by ClipPreprocess with
  // options.preprocess). InvalidArgument for an empty list or an invalid image (message
  // names its index); model failures as EmbedTexts.
  Result<std::vector<std::vector<float>>> EmbedImages(const std::vector<RgbImage>& images) const;
  Result<std::vector<float>> EmbedImage(const RgbImage& image) const;

  // Decodes a JPEG or PNG file (DecodeImageFile, with its errors) and embeds it.
  Result<std::vector<float>> EmbedImageFile(const std::string& path) const;

  // Another ClipEmbedder over the same loaded model (no copy, no reload): for example one to
  // hand to Engine::Open as its text embedder while this one embeds images.
  std::unique_ptr<ClipEmbedder> Share() const;

 private:
  struct Model;  // the loaded module, tokenizer and options (clip_embedder.cc)

  explicit ClipEmbedder(std::shared_ptr<Model> model) : model_(std::move(model)) {}
  std::shared_ptr<Model> model_;
};

}  // namespace dynspec
