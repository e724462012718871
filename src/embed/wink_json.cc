#include "embed/wink_json.h"

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "embed/word_vector_file.h"

namespace dynspec {
namespace {

using json = nlohmann::json;

// SAX handler for the wink JSON. Every callback returns false to stop the parse on the
// first problem, which is kept in `error`.
class WinkSax final : public nlohmann::json_sax<json> {
 public:
  WinkSax(std::string output_path, uint32_t flags)
      : output_path_(std::move(output_path)), flags_(flags) {}

  Status error;
  // Created at the start of "vectors", once the dimension is known.
  std::unique_ptr<WordVectorWriter> writer;
  std::optional<int64_t> size, dimensions, word_index, norm_index;
  std::vector<std::string> words;
  uint64_t vectors_seen = 0;

  bool null() override { return Scalar("null", std::nullopt, std::nullopt); }
  bool boolean(bool) override { return Scalar("a boolean", std::nullopt, std::nullopt); }
  bool number_integer(number_integer_t v) override { return Scalar("a number", v, double(v)); }
  bool number_unsigned(number_unsigned_t v) override {
    const std::optional<int64_t> i =
        v <= uint64_t(INT64_MAX) ? std::optional<int64_t>(int64_t(v)) : std::nullopt;
    return Scalar("a number", i, double(v));
  }
  bool number_float(number_float_t v, const string_t&) override {
    return Scalar("a number", std::nullopt, v);
  }
  bool string(string_t& s) override {
    if (depth_ == 2 && top_key_ == "words") {
      words.push_back(std::move(s));
      return true;
    }
    return Scalar("a string", std::nullopt, std::nullopt);
  }
  bool binary(binary_t&) override { return Fail("unexpected binary value"); }

  bool start_object(std::size_t) override {
    if (depth_ == 0) {
      ++depth_;
      return true;
    }
    if (depth_ == 1 && top_key_ == "vectors") {
      // The vectors go straight to the file at their rank, so the dimension and the
      // number of words must be known first (the package lists them first).
      if (!dimensions || !word_index || !size) {
        return Fail("\"vectors\" comes before \"dimensions\", \"wordIndex\" and \"size\"");
      }
      if (*dimensions < 1 || *dimensions > kMaxWordVectorDim) {
        return Fail("\"dimensions\" is " + std::to_string(*dimensions));
      }
      if (*word_index < *dimensions || (norm_index && *norm_index < *dimensions)) {
        return Fail("\"wordIndex\" or \"l2NormIndex\" points inside the vector components");
      }
      if (writer) return Fail("\"vectors\" appears twice");
      auto w = WordVectorWriter::Create(output_path_, static_cast<int>(*dimensions), flags_);
      if (!w.ok()) {
        error = w.status();
        return false;
      }
      writer = std::move(w).value();
      in_vectors_ = true;
    } else if (InVectorsObject()) {
      return Fail("the vector of '" + word_ + "' is an object, expected an array");
    }
    ++depth_;
    return true;
  }
  bool end_object() override {
    --depth_;
    if (depth_ == 1) in_vectors_ = false;
    return true;
  }
  bool key(string_t& k) override {
    if (depth_ == 1) {
      top_key_ = std::move(k);
    } else if (InVectorsObject()) {
      word_ = std::move(k);
    }
    return true;
  }
  bool start_array(std::size_t) override {
    if (InVectorsObject()) {
      values_.clear();
      in_vector_ = true;
    } else if (in_vector_) {
      return Fail("the vector of '" + word_ + "' holds a nested array");
    }
    ++depth_;
    return true;
  }
  bool end_array() override {
    --depth_;
    if (in_vector_ && InVectorsObject()) {
      in_vector_ = false;
      return FinishVector();
    }
    return true;
  }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& e) override {
    error = Status::Corruption("JSON syntax error at byte " + std::to_string(position) + ": " +
                               e.what());
    return false;
  }

 private:
  bool InVectorsObject() const { return in_vectors_ && depth_ == 2; }

  bool Fail(const std::string& what) {
    error = Status::Corruption(what);
    return false;
  }

  // A scalar: a top-level setting, a vector component, or something to ignore.
  bool Scalar(const char* kind, std::optional<int64_t> integer, std::optional<double> number) {
    if (in_vector_ && depth_ == 3) {
      if (!number) return Fail("the vector of '" + word_ + "' holds " + kind);
      values_.push_back(*number);
      return true;
    }
    if (depth_ == 1) {
      std::optional<int64_t>* slot = nullptr;
      if (top_key_ == "size") slot = &size;
      if (top_key_ == "dimensions") slot = &dimensions;
      if (top_key_ == "wordIndex") slot = &word_index;
      if (top_key_ == "l2NormIndex") slot = &norm_index;
      if (slot != nullptr) {
        if (!integer || *integer < 0) {
          return Fail("\"" + top_key_ + "\" is not a non-negative integer");
        }
        *slot = integer;
      }
      return true;
    }
    if (InVectorsObject()) return Fail("the vector of '" + word_ + "' is " + kind);
    if (depth_ == 2 && top_key_ == "words") return Fail("\"words\" holds " + std::string(kind));
    return true;  // other keys are not needed
  }

  bool FinishVector() {
    const auto dim = static_cast<size_t>(*dimensions);
    const auto wi = static_cast<size_t>(*word_index);
    size_t expected = std::max(dim, wi + 1);
    if (norm_index) expected = std::max(expected, static_cast<size_t>(*norm_index) + 1);
    if (values_.size() != expected) {
      return Fail("the vector of '" + word_ + "' has " + std::to_string(values_.size()) +
                  " values, expected " + std::to_string(expected));
    }
    const double r = values_[wi];
    if (!(r >= 0) || r != std::floor(r) || r >= double(*size)) {
      return Fail("the vector of '" + word_ + "' has word index " + std::to_string(r));
    }
    const auto rank = static_cast<uint64_t>(r);
    floats_.assign(values_.begin(), values_.begin() + dim);
    if (norm_index) {
      double n2 = 0;
      for (float x : floats_) n2 += double(x) * x;
      const double stored = values_[static_cast<size_t>(*norm_index)];
      if (std::abs(std::sqrt(n2) - stored) > 1e-4 * std::max(1.0, stored)) {
        return Fail("the vector of '" + word_ + "' has norm " + std::to_string(std::sqrt(n2)) +
                    " but its stored norm is " + std::to_string(stored));
      }
    }
    Status st = writer->Add(rank, word_, floats_);
    if (!st.ok()) {
      error = st.code() == StatusCode::kIoError ? st : Status::Corruption(st.message());
      return false;
    }
    ++vectors_seen;
    return true;
  }

  std::string output_path_;
  uint32_t flags_;
  int depth_ = 0;
  std::string top_key_;
  bool in_vectors_ = false;  // inside the "vectors" object (or deeper)
  bool in_vector_ = false;   // inside one word's array
  std::string word_;
  std::vector<double> values_;
  std::vector<float> floats_;
};

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

}  // namespace

Status ConvertWinkJson(const std::string& json_path, const std::string& output_path,
                       bool frequency_sorted, WinkConvertStats* stats) {
  std::unique_ptr<std::FILE, FileCloser> in(std::fopen(json_path.c_str(), "rb"));
  if (!in) {
    return Status::IoError("cannot open " + json_path + ": " + std::strerror(errno));
  }
  WinkSax sax(output_path, frequency_sorted ? kWordVectorsFrequencySorted : 0);
  // Returns false when a handler callback refused or the syntax is wrong; both leave the
  // reason in sax.error. nlohmann's file adapter reads the FILE* in buffered chunks.
  const bool parsed = json::sax_parse(in.get(), &sax);
  if (!parsed) {
    if (sax.error.ok()) return Status::Corruption("cannot parse " + json_path);
    return sax.error.WithContext(json_path);
  }
  auto fail = [&](const std::string& what) { return Status::Corruption(json_path + ": " + what); };
  if (!sax.writer) return fail("no \"vectors\" object");
  if (!sax.size) return fail("no \"size\"");
  if (sax.vectors_seen != static_cast<uint64_t>(*sax.size) ||
      sax.words.size() != static_cast<size_t>(*sax.size)) {
    return fail("\"size\" is " + std::to_string(*sax.size) + " but there are " +
                std::to_string(sax.words.size()) + " words and " +
                std::to_string(sax.vectors_seen) + " vectors");
  }
  // Ranks are below "size" and distinct (the writer refuses a repeated rank), so with
  // "size" vectors every rank 0..size-1 has its word; it must be the one "words" lists.
  for (size_t r = 0; r < sax.words.size(); ++r) {
    if (sax.writer->word(r) != sax.words[r]) {
      return fail("\"words\"[" + std::to_string(r) + "] is '" + sax.words[r] +
                  "' but the vector with word index " + std::to_string(r) + " belongs to '" +
                  std::string(sax.writer->word(r)) + "'");
    }
  }
  DYNSPEC_RETURN_IF_ERROR(sax.writer->Finish().WithContext(output_path));
  if (stats != nullptr) {
    stats->words = sax.vectors_seen;
    stats->dim = static_cast<int>(*sax.dimensions);
    std::error_code ec;
    stats->input_bytes = std::filesystem::file_size(json_path, ec);
    stats->output_bytes = std::filesystem::file_size(output_path, ec);
  }
  return Status::Ok();
}

}  // namespace dynspec
