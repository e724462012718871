#include "embed/word_vector_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <numeric>

namespace dynspec {

// The file is little-endian and vectors are read in place from the mapping; a big-endian
// port would need byte swapping on read and write.
static_assert(std::endian::native == std::endian::little,
              "word-vector files are read in place and are little-endian");
static_assert(sizeof(float) == 4 && std::numeric_limits<float>::is_iec559);

namespace {

// A vocabulary larger than this is certainly a broken input; the cap keeps a bad rank from
// allocating the writer's word table without bound.
constexpr uint64_t kMaxWords = uint64_t{1} << 26;

constexpr size_t kCrcOffset = 36;

uint32_t LoadU32(const unsigned char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t LoadU64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
void StoreU32(unsigned char* p, uint32_t v) { std::memcpy(p, &v, 4); }
void StoreU64(unsigned char* p, uint64_t v) { std::memcpy(p, &v, 8); }

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// zlib's crc32 takes 32-bit lengths; feed it in bounded chunks.
uint32_t Crc(uint32_t crc, const unsigned char* p, size_t n) {
  while (n > 0) {
    const size_t chunk = std::min<size_t>(n, size_t{1} << 30);
    crc = static_cast<uint32_t>(crc32(crc, p, static_cast<uInt>(chunk)));
    p += chunk;
    n -= chunk;
  }
  return crc;
}

// CRC of the header (checksum field as zeros) followed by everything after it.
uint32_t FileCrc(const unsigned char* header, const unsigned char* payload, size_t payload_bytes) {
  unsigned char h[kWordVectorHeaderBytes];
  std::memcpy(h, header, sizeof(h));
  StoreU32(h + kCrcOffset, 0);
  return Crc(Crc(static_cast<uint32_t>(crc32(0, nullptr, 0)), h, sizeof(h)), payload,
             payload_bytes);
}

struct Layout {
  uint64_t vectors = 0, offsets = 0, sorted = 0, strings = 0, end = 0;  // byte offsets
};
// Offsets of each section; nullopt if the sizes overflow 64 bits.
std::optional<Layout> LayoutOf(uint64_t dim, uint64_t count, uint64_t string_bytes) {
  Layout l;
  l.vectors = kWordVectorHeaderBytes;
  // dim <= 4096 and count < 2^32 keep these products far below 2^64.
  l.offsets = l.vectors + count * dim * 4;
  l.sorted = l.offsets + (count + 1) * 4;
  l.strings = l.sorted + count * 4;
  if (string_bytes > std::numeric_limits<uint64_t>::max() - l.strings) return std::nullopt;
  l.end = l.strings + string_bytes;
  return l;
}

Status WriteAll(int fd, const void* data, size_t n, uint64_t offset, const std::string& path) {
  const auto* p = static_cast<const unsigned char*>(data);
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::IoError(Errno("writing " + path));
    }
    p += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
  return Status::Ok();
}

}  // namespace

// ---- reader ----------------------------------------------------------------------------

WordVectors::~WordVectors() {
  if (base_ != nullptr) ::munmap(const_cast<unsigned char*>(base_), mapped_bytes_);
}

std::string_view WordVectors::word(size_t rank) const {
  const uint32_t begin = LoadU32(offsets_ + rank * 4);
  const uint32_t end = LoadU32(offsets_ + (rank + 1) * 4);
  return {strings_ + begin, end - begin};
}

std::optional<size_t> WordVectors::Find(std::string_view w) const {
  size_t lo = 0, hi = count_;
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    const uint32_t rank = LoadU32(sorted_ + mid * 4);
    const int c = word(rank).compare(w);
    if (c == 0) return rank;
    if (c < 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return std::nullopt;
}

Result<std::shared_ptr<const WordVectors>> WordVectors::Open(const std::string& path,
                                                             int expected_dim) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IoError(Errno("cannot open word-vector file " + path));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    Status s = Status::IoError(Errno("cannot stat " + path));
    ::close(fd);
    return s;
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < kWordVectorHeaderBytes) {
    ::close(fd);
    return Status::Corruption(
        "word-vector file " + path + " is truncated: " + std::to_string(size) +
        " bytes, shorter than the " + std::to_string(kWordVectorHeaderBytes) + "-byte header");
  }
  void* m = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);  // the mapping keeps the file alive
  if (m == MAP_FAILED) return Status::IoError(Errno("cannot map " + path));
  // From here on the destructor unmaps on every return path.
  std::shared_ptr<WordVectors> wv(new WordVectors());
  wv->path_ = path;
  wv->base_ = static_cast<const unsigned char*>(m);
  wv->mapped_bytes_ = size;
  const unsigned char* h = wv->base_;
  auto corrupt = [&](const std::string& what) {
    return Status::Corruption("word-vector file " + path + ": " + what);
  };

  if (std::memcmp(h, kWordVectorMagic, sizeof(kWordVectorMagic)) != 0) {
    return corrupt("wrong magic bytes (not a dynspec word-vector file)");
  }
  const uint32_t version = LoadU32(h + 8);
  if (version == 0) return corrupt("format version 0 does not exist");
  if (version > kWordVectorFormatVersion) {
    return Status::FailedPrecondition(
        "word-vector file " + path + " has format version " + std::to_string(version) +
        ", newer than the version " + std::to_string(kWordVectorFormatVersion) +
        " this build reads; convert it again with this build's converter");
  }
  const uint32_t dim = LoadU32(h + 12);
  const uint64_t count = LoadU64(h + 16);
  const uint64_t string_bytes = LoadU64(h + 24);
  const uint32_t flags = LoadU32(h + 32);
  const uint32_t stored_crc = LoadU32(h + kCrcOffset);
  if (dim == 0 || dim > static_cast<uint32_t>(kMaxWordVectorDim)) {
    return corrupt("dimension " + std::to_string(dim) + " is outside 1.." +
                   std::to_string(kMaxWordVectorDim));
  }
  if (count == 0 || count >= (uint64_t{1} << 32)) {
    return corrupt("word count " + std::to_string(count) + " is outside 1..2^32-1");
  }
  if ((flags & ~kWordVectorsFrequencySorted) != 0) {
    return corrupt("unknown flags " + std::to_string(flags));
  }
  for (size_t i = 40; i < kWordVectorHeaderBytes; ++i) {
    if (h[i] != 0) return corrupt("reserved header byte " + std::to_string(i) + " is not zero");
  }
  const std::optional<Layout> layout = LayoutOf(dim, count, string_bytes);
  if (!layout || layout->end > size) {
    return corrupt("truncated: " + std::to_string(size) + " bytes, the header describes " +
                   (layout ? std::to_string(layout->end) : std::string("more than 2^64")));
  }
  if (layout->end < size) {
    return corrupt(std::to_string(size - layout->end) +
                   " unexpected bytes after the end the header describes");
  }
  const uint32_t crc = FileCrc(h, h + kWordVectorHeaderBytes, size - kWordVectorHeaderBytes);
  if (crc != stored_crc) {
    char buf[96];
    std::snprintf(buf, sizeof(buf), "checksum mismatch (stored %08x, computed %08x)", stored_crc,
                  crc);
    return corrupt(std::string(buf) + ": the file is damaged");
  }

  wv->dim_ = static_cast<int>(dim);
  wv->count_ = static_cast<size_t>(count);
  wv->flags_ = flags;
  wv->vectors_ = reinterpret_cast<const float*>(h + layout->vectors);
  wv->offsets_ = h + layout->offsets;
  wv->sorted_ = h + layout->sorted;
  wv->strings_ = reinterpret_cast<const char*>(h + layout->strings);

  // The checksum proves the file is what a writer wrote; these checks make sure that no
  // writer (a bug, or a hand-made file) can make the reader read out of bounds.
  uint32_t prev = LoadU32(wv->offsets_);
  if (prev != 0) return corrupt("the first word does not start at offset 0");
  for (size_t r = 0; r < count; ++r) {
    const uint32_t next = LoadU32(wv->offsets_ + (r + 1) * 4);
    if (next <= prev || next > string_bytes) {
      return corrupt("word table entry " + std::to_string(r) + " is empty or out of range");
    }
    prev = next;
  }
  if (prev != string_bytes) return corrupt("the word table does not cover the string bytes");
  // Strictly increasing words along the sorted index means every rank appears once and
  // binary search is valid.
  for (size_t i = 0; i < count; ++i) {
    const uint32_t rank = LoadU32(wv->sorted_ + i * 4);
    if (rank >= count) return corrupt("sorted index entry " + std::to_string(i) + " out of range");
    if (i > 0 && !(wv->word(LoadU32(wv->sorted_ + (i - 1) * 4)) < wv->word(rank))) {
      return corrupt("sorted index is not in strictly increasing word order at entry " +
                     std::to_string(i));
    }
  }
  double norm_sum = 0;
  for (size_t r = 0; r < count; ++r) {
    double n2 = 0;
    for (float x : wv->vector(r)) {
      if (!std::isfinite(x)) {
        return corrupt("the vector of '" + std::string(wv->word(r)) + "' is not finite");
      }
      n2 += double(x) * x;
    }
    norm_sum += std::sqrt(n2);
  }
  wv->mean_norm_ = static_cast<float>(norm_sum / double(count));

  if (expected_dim > 0 && static_cast<int>(dim) != expected_dim) {
    return Status::InvalidArgument("word-vector file " + path + " has dimension " +
                                   std::to_string(dim) + ", expected " +
                                   std::to_string(expected_dim));
  }
  return std::shared_ptr<const WordVectors>(std::move(wv));
}

// ---- writer ----------------------------------------------------------------------------

Result<std::unique_ptr<WordVectorWriter>> WordVectorWriter::Create(const std::string& path, int dim,
                                                                   uint32_t flags) {
  if (dim < 1 || dim > kMaxWordVectorDim) {
    return Status::InvalidArgument("word-vector dimension " + std::to_string(dim) +
                                   " is outside 1.." + std::to_string(kMaxWordVectorDim));
  }
  if ((flags & ~kWordVectorsFrequencySorted) != 0) {
    return Status::InvalidArgument("unknown word-vector flags " + std::to_string(flags));
  }
  std::unique_ptr<WordVectorWriter> w(new WordVectorWriter());
  w->path_ = path;
  w->tmp_path_ = path + ".partial";
  w->dim_ = dim;
  w->flags_ = flags;
  w->fd_ = ::open(w->tmp_path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (w->fd_ < 0) return Status::IoError(Errno("cannot create " + w->tmp_path_));
  return w;
}

WordVectorWriter::~WordVectorWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!finished_ && !tmp_path_.empty()) ::unlink(tmp_path_.c_str());
}

Status WordVectorWriter::Add(uint64_t rank, std::string_view word, std::span<const float> vector) {
  if (finished_ || fd_ < 0) return Status::FailedPrecondition("the writer is already finished");
  const std::string where = "word-vector rank " + std::to_string(rank);
  if (rank >= kMaxWords) {
    return Status::InvalidArgument(where + " exceeds the limit of " + std::to_string(kMaxWords) +
                                   " words");
  }
  if (word.empty()) return Status::InvalidArgument(where + " has an empty word");
  if (vector.size() != static_cast<size_t>(dim_)) {
    return Status::InvalidArgument(where + " ('" + std::string(word) + "') has " +
                                   std::to_string(vector.size()) + " values, expected " +
                                   std::to_string(dim_));
  }
  for (size_t d = 0; d < vector.size(); ++d) {
    if (!std::isfinite(vector[d])) {
      return Status::InvalidArgument(where + " ('" + std::string(word) + "') value " +
                                     std::to_string(d) + " is not finite");
    }
  }
  if (rank < words_.size() && !words_[rank].empty()) {
    return Status::InvalidArgument(where + " is given twice ('" + words_[rank] + "' and '" +
                                   std::string(word) + "')");
  }
  DYNSPEC_RETURN_IF_ERROR(WriteAll(fd_, vector.data(), vector.size() * sizeof(float),
                                   kWordVectorHeaderBytes + rank * dim_ * sizeof(float),
                                   tmp_path_));
  if (rank >= words_.size()) words_.resize(rank + 1);
  words_[rank] = std::string(word);
  ++added_;
  return Status::Ok();
}

Status WordVectorWriter::Finish() {
  if (finished_ || fd_ < 0) return Status::FailedPrecondition("the writer is already finished");
  const uint64_t count = words_.size();
  if (count == 0) return Status::InvalidArgument("no word vectors were added");
  if (added_ != count) {
    const auto gap =
        std::find_if(words_.begin(), words_.end(), [](const std::string& w) { return w.empty(); });
    return Status::InvalidArgument("word-vector rank " + std::to_string(gap - words_.begin()) +
                                   " is missing (ranks must be 0.." + std::to_string(count - 1) +
                                   " without gaps)");
  }
  std::vector<uint32_t> sorted(count);
  std::iota(sorted.begin(), sorted.end(), 0u);
  std::sort(sorted.begin(), sorted.end(),
            [&](uint32_t a, uint32_t b) { return words_[a] < words_[b]; });
  for (size_t i = 1; i < count; ++i) {
    if (words_[sorted[i - 1]] == words_[sorted[i]]) {
      return Status::InvalidArgument("word '" + words_[sorted[i]] + "' appears twice (ranks " +
                                     std::to_string(std::min(sorted[i - 1], sorted[i])) + " and " +
                                     std::to_string(std::max(sorted[i - 1], sorted[i])) + ")");
    }
  }
  uint64_t string_bytes = 0;
  for (const auto& w : words_) string_bytes += w.size();
  if (string_bytes >= (uint64_t{1} << 32)) {
    return Status::InvalidArgument("the words take more than 4 GiB");
  }

  const Layout layout = *LayoutOf(dim_, count, string_bytes);
  std::vector<unsigned char> tail(layout.end - layout.offsets);
  unsigned char* p = tail.data();
  uint32_t offset = 0;
  StoreU32(p, 0);
  for (size_t r = 0; r < count; ++r) {
    offset += static_cast<uint32_t>(words_[r].size());
    StoreU32(p + (r + 1) * 4, offset);
  }
  p = tail.data() + (layout.sorted - layout.offsets);
  for (size_t i = 0; i < count; ++i) StoreU32(p + i * 4, sorted[i]);
  p = tail.data() + (layout.strings - layout.offsets);
  for (const auto& w : words_) {
    std::memcpy(p, w.data(), w.size());
    p += w.size();
  }
  DYNSPEC_RETURN_IF_ERROR(WriteAll(fd_, tail.data(), tail.size(), layout.offsets, tmp_path_));

  unsigned char header[kWordVectorHeaderBytes] = {};
  std::memcpy(header, kWordVectorMagic, sizeof(kWordVectorMagic));
  StoreU32(header + 8, kWordVectorFormatVersion);
  StoreU32(header + 12, static_cast<uint32_t>(dim_));
  StoreU64(header + 16, count);
  StoreU64(header + 24, string_bytes);
  StoreU32(header + 32, flags_);
  // The vectors were written piecewise in rank order of arrival; read the file back for the
  // checksum rather than keeping them in memory.
  uint32_t crc = Crc(static_cast<uint32_t>(crc32(0, nullptr, 0)), header, sizeof(header));
  std::vector<unsigned char> buf(size_t{1} << 20);
  for (uint64_t pos = kWordVectorHeaderBytes; pos < layout.end;) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), layout.end - pos));
    const ssize_t got = ::pread(fd_, buf.data(), want, static_cast<off_t>(pos));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return Status::IoError(Errno("reading back " + tmp_path_));
    crc = Crc(crc, buf.data(), static_cast<size_t>(got));
    pos += static_cast<uint64_t>(got);
  }
  StoreU32(header + kCrcOffset, crc);
  DYNSPEC_RETURN_IF_ERROR(WriteAll(fd_, header, sizeof(header), 0, tmp_path_));
  if (::fsync(fd_) != 0) return Status::IoError(Errno("syncing " + tmp_path_));
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) return Status::IoError(Errno("closing " + tmp_path_));
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    return Status::IoError(Errno("renaming " + tmp_path_ + " to " + path_));
  }
  finished_ = true;
  return Status::Ok();
}

Status WriteWordVectors(const std::string& path, int dim, const std::vector<std::string>& words,
                        std::span<const float> vectors, uint32_t flags) {
  if (dim < 1 || vectors.size() != words.size() * static_cast<size_t>(dim)) {
    return Status::InvalidArgument(std::to_string(vectors.size()) + " vector values for " +
                                   std::to_string(words.size()) + " words of dimension " +
                                   std::to_string(dim));
  }
  DYNSPEC_ASSIGN_OR_RETURN(std::unique_ptr<WordVectorWriter> w,
                           WordVectorWriter::Create(path, dim, flags));
  for (size_t r = 0; r < words.size(); ++r) {
    DYNSPEC_RETURN_IF_ERROR(w->Add(r, words[r], vectors.subspan(r * dim, dim)));
  }
  return w->Finish();
}

}  // namespace dynspec
