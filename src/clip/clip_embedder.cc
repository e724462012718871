#include "clip/clip_embedder.h"

#include <torch/script.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <utility>

#include "embed/clip_tokenizer.h"

namespace dynspec {
namespace {

constexpr char kTextMethod[] = "encode_text";
constexpr char kImageMethod[] = "encode_image";

// c10::Error's what() carries a C++ backtrace of libtorch's frames, useless to a user; the
// message alone says what the model or the archive got wrong.
std::string TorchMessage(const std::exception& e) {
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) return c10->what_without_backtrace();
  return e.what();
}

std::string ShapeString(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

// Normalizes `v` in place; false when it has a non-finite value or zero norm.
bool NormalizeFinite(std::vector<float>* v) {
  double sq = 0;
  for (float x : *v) {
    if (!std::isfinite(x)) return false;
    sq += double(x) * x;
  }
  if (!(sq > 0) || !std::isfinite(sq)) return false;
  const double inv = 1.0 / std::sqrt(sq);
  for (float& x : *v) x = float(x * inv);
  return true;
}

}  // namespace

struct ClipEmbedder::Model {
  std::string path;
  ClipEmbedderOptions options;
  std::unique_ptr<ClipTokenizer> tokenizer;
  int dim = 0;  // 0 until the text probe has run
  // Guards `module`: every call of its methods runs under it (see the header's contract).
  mutable std::mutex mu;
  torch::jit::Module module;

  // Runs `method` on `input` ([B, ...]) and returns B unit vectors of `dim` values (of any
  // D >= 1 while dim is 0). `fail` makes the status for a model that misbehaves (wrong
  // output, non-finite values, an exception): InvalidArgument while probing at load, where
  // the model file is at fault, Internal afterwards.
  Result<std::vector<std::vector<float>>> Run(const char* method, const torch::Tensor& input,
                                              Status (*fail)(std::string)) const;
};

Result<std::vector<std::vector<float>>> ClipEmbedder::Model::Run(
    const char* method, const torch::Tensor& input, Status (*fail)(std::string)) const {
  const int64_t batch = input.size(0);
  const std::string what = "model '" + path + "': " + method + " on " + ShapeString(input);
  torch::Tensor out;
  try {
    std::lock_guard<std::mutex> lock(mu);
    // Inference only: no autograd graph is recorded (the guard is per thread).
    torch::NoGradGuard no_grad;
    auto m = module.find_method(method);  // c10::optional in libtorch 1.13
    if (!m) return fail(what + ": the model has no such method");
    c10::IValue result = (*m)({input});
    if (!result.isTensor()) {
      return fail(what + " returned a " + result.tagKind() + ", expected a [B, D] tensor");
    }
    out = result.toTensor();
  } catch (const std::exception& e) {
    return fail(what + " failed: " + TorchMessage(e));
  }
  try {
    if (out.dim() != 2 || out.size(0) != batch || out.size(1) < 1) {
      return fail(what + " returned " + ShapeString(out) + ", expected [" + std::to_string(batch) +
                  ", D]");
    }
    if (dim > 0 && out.size(1) != dim) {
      return fail(what + " returned " + ShapeString(out) + ", but the model's dimension is " +
                  std::to_string(dim) + " (from encode_text)");
    }
    if (!out.is_floating_point()) {
      return fail(what + " returned a tensor of " + std::string(c10::toString(out.scalar_type())) +
                  ", expected floating point");
    }
    out = out.to(torch::kCPU, torch::kFloat).contiguous();
    const int64_t d = out.size(1);
    const float* data = out.data_ptr<float>();
    std::vector<std::vector<float>> vectors(batch);
    for (int64_t i = 0; i < batch; ++i) {
      vectors[i].assign(data + i * d, data + (i + 1) * d);
      if (!NormalizeFinite(&vectors[i])) {
        return fail(what + ": output row " + std::to_string(i) +
                    " is not finite or is zero, so it cannot be normalized");
      }
    }
    return vectors;
  } catch (const std::exception& e) {
    return fail(what + ": reading the output failed: " + TorchMessage(e));
  }
}

Status ValidateClipEmbedderOptions(const ClipEmbedderOptions& options) {
  if (options.context_length < 2) {
    return Status::InvalidArgument("clip.context_length must be at least 2");
  }
  if (options.max_batch < 1) return Status::InvalidArgument("clip.max_batch must be at least 1");
  // ClipPreprocess checks the rest of the preprocessing options on every call; the sizes are
  // checked here so that Load, which probes with them, names the field.
  if (options.preprocess.crop_size < 1 ||
      options.preprocess.resize_short_side < options.preprocess.crop_size) {
    return Status::InvalidArgument(
        "clip.preprocess: crop_size must be >= 1 and <= resize_short_side");
  }
  return Status::Ok();
}

Result<std::unique_ptr<ClipEmbedder>> ClipEmbedder::Load(const std::string& model_path,
                                                         const std::string& vocab_path,
                                                         const ClipEmbedderOptions& options) {
  DYNSPEC_RETURN_IF_ERROR(ValidateClipEmbedderOptions(options));
  const std::string where = "CLIP model '" + model_path + "'";
  std::error_code ec;
  const auto status = std::filesystem::status(model_path, ec);
  if (!std::filesystem::exists(status)) return Status::NotFound(where + " does not exist");
  if (std::filesystem::is_directory(status)) {
    return Status::InvalidArgument(where + " is a directory, expected a TorchScript archive");
  }

  auto model = std::make_shared<Model>();
  model->path = model_path;
  model->options = options;
  try {
    // Mapped to the CPU so that a model saved from a GPU loads here too.
    model->module = torch::jit::load(model_path, torch::kCPU);
    model->module.eval();
  } catch (const std::exception& e) {
    return Status::Corruption(where + " is not a TorchScript archive this libtorch can load (" +
                              std::string(TORCH_VERSION) + "): " + TorchMessage(e));
  }
  for (const char* method : {kTextMethod, kImageMethod}) {
    bool has = false;
    try {
      has = model->module.find_method(method).has_value();
    } catch (const std::exception& e) {
      return Status::Corruption(where + ": " + TorchMessage(e));
    }
    if (!has) {
      return Status::InvalidArgument(where + " has no method " + method +
                                     " (docs/embedding.md, \"CLIP via TorchScript\")");
    }
  }
  DYNSPEC_ASSIGN_OR_RETURN(model->tokenizer, ClipTokenizer::Load(vocab_path));

  // Probes, so that a model that does not fit the contract fails here rather than on the
  // first item, and so that dim() is known before the engine asks for it.
  std::unique_ptr<ClipEmbedder> embedder(new ClipEmbedder(model));
  try {
    auto tokens = torch::zeros({1, options.context_length}, torch::kLong);
    tokens[0][0] = ClipTokenizer::kStartToken;
    tokens[0][1] = ClipTokenizer::kEndToken;
    DYNSPEC_ASSIGN_OR_RETURN(auto text, model->Run(kTextMethod, tokens, Status::InvalidArgument));
    model->dim = int(text[0].size());
    // A mid-grey picture through the real preprocessing, not zeros: a zero tensor is no
    // image CLIP ever sees, and a model without biases would map it to a zero vector.
    RgbImage grey(options.preprocess.crop_size, options.preprocess.crop_size);
    std::fill(grey.pixels.begin(), grey.pixels.end(), uint8_t(128));
    DYNSPEC_ASSIGN_OR_RETURN(ImageTensor pixels, ClipPreprocess(grey, options.preprocess));
    auto image =
        torch::from_blob(pixels.data.data(), {1, 3, pixels.height, pixels.width}, torch::kFloat);
    DYNSPEC_ASSIGN_OR_RETURN(auto probe, model->Run(kImageMethod, image, Status::InvalidArgument));
    (void)probe;
  } catch (const std::exception& e) {
    return Status::Internal(where + ": building the probe input failed: " + TorchMessage(e));
  }
  return embedder;
}

ClipEmbedder::~ClipEmbedder() = default;

int ClipEmbedder::dim() const { return model_->dim; }

std::unique_ptr<ClipEmbedder> ClipEmbedder::Share() const {
  return std::unique_ptr<ClipEmbedder>(new ClipEmbedder(model_));
}

Result<std::vector<float>> ClipEmbedder::EmbedText(std::string_view text) const {
  DYNSPEC_ASSIGN_OR_RETURN(auto vectors, EmbedTexts({std::string(text)}));
  return std::move(vectors[0]);
}

Result<std::vector<std::vector<float>>> ClipEmbedder::EmbedTexts(
    const std::vector<std::string>& texts) const {
  if (texts.empty()) return Status::InvalidArgument("no texts to embed");
  const ClipEmbedderOptions& o = model_->options;
  const int length = o.context_length;
  // Tokenize everything first: a bad text fails the call before the model runs.
  std::vector<int64_t> ids(texts.size() * size_t(length));
  for (size_t i = 0; i < texts.size(); ++i) {
    auto tokens = model_->tokenizer->Tokenize(texts[i], length, o.truncate);
    if (!tokens.ok()) return tokens.status().WithContext("texts[" + std::to_string(i) + "]");
    if ((*tokens)[1] == ClipTokenizer::kEndToken) {
      return Status::InvalidArgument("texts[" + std::to_string(i) + "] has no tokens");
    }
    std::copy(tokens->begin(), tokens->end(), ids.begin() + i * size_t(length));
  }
  std::vector<std::vector<float>> out;
  out.reserve(texts.size());
  for (size_t begin = 0; begin < texts.size(); begin += size_t(o.max_batch)) {
    const size_t n = std::min(texts.size() - begin, size_t(o.max_batch));
    torch::Tensor batch;
    try {
      batch =
          torch::from_blob(ids.data() + begin * size_t(length), {int64_t(n), length}, torch::kLong);
    } catch (const std::exception& e) {
      return Status::Internal("building the token tensor failed: " + TorchMessage(e));
    }
    DYNSPEC_ASSIGN_OR_RETURN(auto vectors, model_->Run(kTextMethod, batch, Status::Internal));
    for (auto& v : vectors) out.push_back(std::move(v));
  }
  return out;
}

Result<std::vector<std::vector<float>>> ClipEmbedder::EmbedImages(
    const std::vector<RgbImage>& images) const {
  if (images.empty()) return Status::InvalidArgument("no images to embed");
  const ClipEmbedderOptions& o = model_->options;
  const int s = o.preprocess.crop_size;
  const size_t per_image = size_t(3) * s * s;
  std::vector<std::vector<float>> out;
  out.reserve(images.size());
  std::vector<float> pixels;
  for (size_t begin = 0; begin < images.size(); begin += size_t(o.max_batch)) {
    const size_t n = std::min(images.size() - begin, size_t(o.max_batch));
    pixels.resize(n * per_image);
    for (size_t i = 0; i < n; ++i) {
      const std::string what = "images[" + std::to_string(begin + i) + "]";
      DYNSPEC_RETURN_IF_ERROR(CheckImage(images[begin + i], what));
      auto tensor = ClipPreprocess(images[begin + i], o.preprocess);
      if (!tensor.ok()) return tensor.status().WithContext(what);
      if (tensor->data.size() != per_image) {
        return Status::Internal(what + ": preprocessing gave " +
                                std::to_string(tensor->data.size()) + " values, expected " +
                                std::to_string(per_image));
      }
      std::memcpy(pixels.data() + i * per_image, tensor->data.data(), per_image * sizeof(float));
    }
    torch::Tensor batch;
    try {
      batch = torch::from_blob(pixels.data(), {int64_t(n), 3, s, s}, torch::kFloat);
    } catch (const std::exception& e) {
      return Status::Internal("building the image tensor failed: " + TorchMessage(e));
    }
    DYNSPEC_ASSIGN_OR_RETURN(auto vectors, model_->Run(kImageMethod, batch, Status::Internal));
    for (auto& v : vectors) out.push_back(std::move(v));
  }
  return out;
}

Result<std::vector<float>> ClipEmbedder::EmbedImage(const RgbImage& image) const {
  // EmbedImages takes a vector; one copy of the pixels is small next to the model's work.
  DYNSPEC_ASSIGN_OR_RETURN(auto vectors, EmbedImages({image}));
  return std::move(vectors[0]);
}

Result<std::vector<float>> ClipEmbedder::EmbedImageFile(const std::string& path) const {
  DYNSPEC_ASSIGN_OR_RETURN(RgbImage image, DecodeImageFile(path, model_->options.decode));
  auto v = EmbedImage(image);
  if (!v.ok()) return v.status().WithContext("image file '" + path + "'");
  return v;
}

}  // namespace dynspec
