// The word-vector file: a vocabulary of pretrained word vectors in one binary file that the
// reader memory-maps, so opening it costs one checksum pass and no parsing, and every
// engine in a process shares the same pages.
//
// Layout (every integer little-endian, floats IEEE-754 binary32 little-endian):
//
//   offset 0   header, 64 bytes:
//                0  magic "DSWORDV\n" (8 bytes)
//                8  u32 format version (kWordVectorFormatVersion)
//               12  u32 dimension D (1..kMaxWordVectorDim)
//               16  u64 word count N (>= 1, < 2^32)
//               24  u64 string bytes S (the length of the concatenated words)
//               32  u32 flags (kWordVectorsFrequencySorted; other bits must be 0)
//               36  u32 CRC-32 (zlib) of the whole file with these 4 bytes taken as 0
//               40  24 reserved bytes, 0
//   offset 64  vectors:     N x D floats, row r is the vector of the word of rank r
//              offsets:     N + 1 u32, word r is strings[offsets[r], offsets[r + 1])
//              sorted:      N u32, the ranks ordered by their words (bytewise), for lookup
//              strings:     S bytes, the words in rank order, concatenated
//
// The vectors come first so that they are 64-byte aligned in the mapping. Rank is the
// order the vocabulary came in; with kWordVectorsFrequencySorted it is the order of
// decreasing corpus frequency, which the embedder turns into word probabilities.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dynspec/status.h"

namespace dynspec {

inline constexpr char kWordVectorMagic[8] = {'D', 'S', 'W', 'O', 'R', 'D', 'V', '\n'};
inline constexpr uint32_t kWordVectorFormatVersion = 1;
inline constexpr size_t kWordVectorHeaderBytes = 64;
inline constexpr int kMaxWordVectorDim = 4096;
// Flag: ranks are in order of decreasing corpus frequency.
inline constexpr uint32_t kWordVectorsFrequencySorted = 1u << 0;

// An open word-vector file. Immutable and safe to share between threads; the mapping lives
// as long as the object.
class WordVectors {
 public:
  // Maps and validates `path`: magic, version, sizes, checksum, word table and sorted
  // index, finite vectors. `expected_dim` > 0 also requires that dimension.
  // Errors: IoError (cannot open or map), Corruption (truncated, trailing bytes, wrong
  // magic, bad checksum, inconsistent tables), FailedPrecondition (a newer format version),
  // InvalidArgument (dimension differs from `expected_dim`).
  static Result<std::shared_ptr<const WordVectors>> Open(const std::string& path,
                                                         int expected_dim = 0);
  ~WordVectors();
  WordVectors(const WordVectors&) = delete;
  WordVectors& operator=(const WordVectors&) = delete;

  int dim() const { return dim_; }
  size_t size() const { return count_; }
  bool frequency_sorted() const { return (flags_ & kWordVectorsFrequencySorted) != 0; }
  const std::string& path() const { return path_; }
  // The word of rank `rank` (< size()).
  std::string_view word(size_t rank) const;
  // Its vector: dim() floats.
  std::span<const float> vector(size_t rank) const {
    return {vectors_ + rank * static_cast<size_t>(dim_), static_cast<size_t>(dim_)};
  }
  // The rank of `word` (exact bytes), or nullopt. Binary search over the sorted index.
  std::optional<size_t> Find(std::string_view word) const;
  // Mean L2 norm of the vectors (the scale an out-of-vocabulary vector is given).
  float mean_norm() const { return mean_norm_; }

 private:
  WordVectors() = default;
  std::string path_;
  const unsigned char* base_ = nullptr;
  size_t mapped_bytes_ = 0;
  int dim_ = 0;
  size_t count_ = 0;
  uint32_t flags_ = 0;
  const float* vectors_ = nullptr;
  const unsigned char* offsets_ = nullptr;  // u32 little-endian, read with memcpy
  const unsigned char* sorted_ = nullptr;
  const char* strings_ = nullptr;
  float mean_norm_ = 0;
};

// Writes a word-vector file. Vectors go straight to a temporary file next to `path` (at
// their rank's position), so memory holds only the words; Finish() writes the tables and
// the header and renames the file into place. Without a successful Finish() the
// temporary file is removed and `path` is untouched.
class WordVectorWriter {
 public:
  // InvalidArgument on a dimension outside 1..kMaxWordVectorDim or unknown flags; IoError
  // if the temporary file cannot be created.
  static Result<std::unique_ptr<WordVectorWriter>> Create(const std::string& path, int dim,
                                                          uint32_t flags);
  ~WordVectorWriter();
  WordVectorWriter(const WordVectorWriter&) = delete;
  WordVectorWriter& operator=(const WordVectorWriter&) = delete;

  // Sets the word and vector of `rank`. Ranks may come in any order, each once.
  // InvalidArgument: empty word, wrong vector length, non-finite value, rank given twice or
  // >= 2^32 - 1.
  Status Add(uint64_t rank, std::string_view word, std::span<const float> vector);
  // Requires ranks 0..N-1 all present (no gaps) and distinct words (InvalidArgument
  // naming the first gap or duplicate), then syncs and renames into place.
  Status Finish();
  size_t words_added() const { return added_; }
  // The word given for `rank`, empty if none yet.
  std::string_view word(size_t rank) const {
    return rank < words_.size() ? std::string_view(words_[rank]) : std::string_view();
  }

 private:
  WordVectorWriter() = default;
  std::string path_, tmp_path_;
  int fd_ = -1;
  int dim_ = 0;
  uint32_t flags_ = 0;
  std::vector<std::string> words_;  // by rank; empty = not yet given
  size_t added_ = 0;
  bool finished_ = false;
};

// Convenience for small tables (fixtures, tests): `words` in rank order, `vectors`
// row-major with words.size() * dim values.
Status WriteWordVectors(const std::string& path, int dim, const std::vector<std::string>& words,
                        std::span<const float> vectors, uint32_t flags);

}  // namespace dynspec
