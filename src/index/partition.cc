// Partition implementation: a flat array of vectors for small partitions, an hnswlib graph
// for large ones.
//
// Storage. In exact mode every live vector is kept in one contiguous array (slot-major,
// swap-remove on delete) with a label -> slot map. In graph mode the vectors live only in the
// graph's element blocks (hnswlib copies every vector into its level-0 block anyway) and the
// flat array is released: keeping both would double the index's largest cost (1 GB per
// million D=256 float vectors). Vectors are stored as float32, or as IEEE binary16 with
// IndexOptions::vector_storage = kFloat16 (queries are converted the same way, so both sides
// of every inner product have the stored precision).
//
// Modes. While size() <= exact_search_max_items a search is a flat scan; when an Add takes
// the partition past that, an hnswlib::HierarchicalNSW<float> over DotSpace (this project's
// kernels, dot_kernel.h) is built from the flat array and kept in step with every later
// write. If removals shrink the partition to exact_search_max_items / 2 or less, the vectors
// are copied back out of the graph, the graph is dropped and searches are exact again (the
// factor 2 keeps a partition near the threshold from rebuilding on every add/remove pair).
// After a failed graph write (an hnswlib exception) the partition leaves graph mode the same
// way, with the vectors it held before the write.
//
// Why exact below the threshold: at that size a scan is as fast as a graph walk, has recall 1
// and needs no graph build. Measured on this project's dev VM (2 cores, g++ 12 -O2, SSE only,
// one thread), k = 16, default IndexOptions (M 16, ef_construction 200, ef 64), mean over
// 500 queries, L2-normalized BIGANN SIFT vectors (d = 128, data/bigann10k):
//     items   flat scan   HNSW     HNSW recall@10
//     1024      66 us      77 us   1.000
//     2048     104 us     107 us   0.999
//     4096     193 us     214 us   0.997
//     9900     634 us     318 us   0.996
// On random unit vectors (d = 256, no structure: HNSW's worst case) at 2048 items the scan
// took 221 us and HNSW 260 us with recall@16 0.83. Building the graph costs ~0.3-0.46 ms per
// item (0.8-0.9 s for 2048 items), paid when the threshold is crossed.
//
// hnswlib 0.6.2 notes (read from /usr/include/hnswlib/hnswalg.h):
// - Similarity: DotSpace distance is 1 - dot, so similarity = 1 - distance. The exact scan
//   uses the same distance function, so both modes report the same values. (hnswlib's own
//   InnerProductSpace picks SSE at compile time; DotSpace picks AVX2+FMA at run time where the
//   CPU has it: about twice as fast per distance on the dev VM, see docs/performance.md.)
// - Searches run GraphNearest: searchKnn's steps written out on its public members (see
//   there for why), with the same results.
// - Remove is markDelete. A search skips marked elements when it collects results
//   (searchBaseLayerST<has_deletions=true> keeps walking until it holds max(ef, k) live ones),
//   so asking for k returns up to k live labels.
// - Update and re-adding a removed label call updatePoint on the label's element (after
//   unmarkDeletedInternal for a re-add). That is what addPoint does for a label the graph
//   already holds; it is called directly so the element id we track is the one updated.
// - 0.6.2 cannot reuse deleted elements (replace_deleted came in 0.7), so under churn the graph
//   would grow without bound. A new label therefore takes over a deleted element the way 0.7's
//   replace_deleted does: relabel it in label_lookup_ and in the element's label field, unmark
//   it, updatePoint. Graph memory is bounded by the peak live size. See kUpdateNeighbourShare
//   for what an update costs.
// - Capacity grows by 1.25x (GrowGraph, our version of resizeIndex; writers hold the lock
//   exclusively).
// - searchBaseLayerST is const and safe for concurrent readers while no writer runs (it takes
//   only the visited-list pool's mutex); ef is a member, so it is set once when the graph is
//   built, never per query.
// - hnswlib throws std::exception (runtime_error, bad_alloc). Every call into it is wrapped;
//   on an exception the graph may be half-modified, so the partition leaves graph mode with
//   the vectors it held before the call (searches fall back to the exact scan; the next Add
//   past the threshold rebuilds the graph) and the call returns Internal. Contents never
//   change on a failed call.
// - hnswlib.h defines non-inline functions (cpuid, AVXCapable, ...) and global function
//   pointers, so it must be included by this one translation unit only. With -mavx the
//   InnerProductSpace constructor rewrites those globals (a race with concurrent searches);
//   the default x86-64 flags (SSE only) compile that code out, and partitions do not use
//   InnerProductSpace (only the RawHnsw baseline does).
// - Its writers take internal mutexes in an order ThreadSanitizer reports as a potential
//   deadlock (link_list_locks_[new] -> global in addPoint, global -> link_list_locks_[n] in
//   searchBaseLayer). Here only one thread at a time can be inside an hnswlib writer (they run
//   under the exclusive lock and searches take none of those mutexes), so it cannot deadlock;
//   the report is suppressed below for TSan builds.

#include "index/partition.h"

#include "common/prefetch.h"
#include "index/dot_kernel.h"
#include "index/raw_hnsw.h"

// hnswlib 0.6.2's SSE prefetch hints read one link past a full neighbour list (searchBaseLayer,
// `*(datal + j + 1)`): harmless in practice (the value is only a prefetch address and the read
// stays inside malloc's rounding), but AddressSanitizer reports it. ASan builds use the scalar
// code, which has no prefetches.
#if defined(__SANITIZE_ADDRESS__) && !defined(NO_MANUAL_VECTORIZATION)
#define NO_MANUAL_VECTORIZATION
#endif
#include <fcntl.h>
#include <hnswlib/hnswlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace dynspec {
namespace {

static_assert(sizeof(hnswlib::labeltype) == sizeof(uint64_t), "labels are 64-bit");

using Graph = hnswlib::HierarchicalNSW<float>;

constexpr size_t kMinGraphCapacity = 64;

// Graph capacity after a full graph grows: 1.25x (at least 1024 more). hnswlib allocates whole
// elements (vector, links, a lock) for its capacity, so doubling would leave up to half of a
// large partition's memory unused; each growth copies the level-0 block under the exclusive
// lock, and 1.25x keeps that amortized to four copies of a partition's size.
size_t GrownCapacity(size_t capacity) { return std::max(capacity + capacity / 4, capacity + 1024); }

// Graph level-0 blocks (every element's vector and links) of at least this size are backed
// by transparent huge pages. A graph walk reads elements scattered over the whole block, so
// with 4 kB pages nearly every step also misses the TLB (a 1M-item graph at D = 256 spans
// 300,000 pages; a 2 MB page covers 1,700 elements). Smaller blocks are left alone, since a
// block's last huge page is allocated whole once touched (at most 2 MB per graph, under 3%
// of a block this size). Two raw indexes of 250k items built and searched in alternation in
// one process: inserts 6% faster, searches 8% faster at p50 and 7% at p99
// (docs/performance.md). All of it is a hint: without THP, or with it set to "never",
// nothing changes.
constexpr size_t kHugePageMinBytes = size_t{64} << 20;
constexpr size_t kHugePageBytes = size_t{2} << 20;

#if defined(__linux__)
// Whether the kernel's transparent huge page mode (always, madvise or never) is other than
// "never"; false when it cannot be read (no THP support).
bool TransparentHugePagesEnabled() {
  std::FILE* f = std::fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  if (f == nullptr) return false;
  char line[128] = {};
  const bool read = std::fgets(line, sizeof line, f) != nullptr;
  std::fclose(f);
  return read && std::strstr(line, "[never]") == nullptr && std::strchr(line, '[') != nullptr;
}
#endif

// Advises the 2 MB-aligned middle of a block hnswlib allocated itself (its constructor
// mallocs it; the pages are touched as elements are added, so advice given right after
// construction applies to them). Only for the raw baseline, which is built at full
// capacity and never grows; partitions map their blocks themselves (below).
void AdviseHugePages(const hnswlib::HierarchicalNSW<float>& graph) {
#if defined(MADV_HUGEPAGE)
  const size_t bytes = graph.max_elements_ * graph.size_data_per_element_;
  if (bytes < kHugePageMinBytes) return;
  const auto begin = reinterpret_cast<uintptr_t>(graph.data_level0_memory_);
  const uintptr_t first = (begin + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
  const uintptr_t last = (begin + bytes) & ~(kHugePageBytes - 1);
  // An error (EINVAL without THP support) leaves the block as it was.
  if (last > first) (void)madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
#else
  (void)graph;
#endif
}

// A partition's level-0 block is an anonymous mapping of its own, 2 MB-aligned and a whole
// number of 2 MB long, instead of hnswlib's malloc'd one, so that it can grow without a
// copy and keep its huge pages. hnswlib grows its block with realloc; glibc's realloc of a
// large block is an mremap to wherever the kernel finds room, which splits every huge page
// the block had (the new address is not 2 MB-aligned). Worse, advising only a malloc'd
// block's aligned middle splits its mapping, so that mremap fails (EFAULT: the range spans
// several mappings; checked with strace) and realloc copies the block into fresh 4 kB pages:
// a 300k-item partition had 26 to 88 MB of its 200 to 394 MB block in huge pages where a raw
// index built at full capacity had all of it. Measured alternatives, per growth of a
// partition of 180k items (D = 256): realloc and then MADV_COLLAPSE into huge pages, 278 ms;
// a new aligned block advised before the copy, 443 ms (its faults allocate and zero huge
// pages one by one); mremap to a 2 MB-aligned address, which moves the page tables, huge
// pages included, without touching the data: see docs/performance.md, "Huge pages for large
// graphs". Growth holds the partition's exclusive lock, so this is how long predictions on
// it wait.
size_t LevelZeroMappedBytes(const Graph& graph, size_t capacity) {
  const size_t bytes = std::max<size_t>(capacity * graph.size_data_per_element_, 1);
  return (bytes + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
}
size_t LevelZeroMappedBytes(const Graph& graph) {
  return LevelZeroMappedBytes(graph, graph.max_elements_);
}

// Maps `bytes` (a multiple of 2 MB) of zeroed memory at a 2 MB-aligned address.
char* MapAligned(size_t bytes) {
  const size_t span = bytes + kHugePageBytes;
  void* p = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  const auto begin = reinterpret_cast<uintptr_t>(p);
  const uintptr_t aligned = (begin + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
  if (aligned > begin) munmap(p, aligned - begin);
  const uintptr_t tail = aligned + bytes;
  if (begin + span > tail) munmap(reinterpret_cast<void*>(tail), begin + span - tail);
  return reinterpret_cast<char*>(aligned);
}

// Asks for huge pages for a whole level-0 mapping of at least kHugePageMinBytes (a hint;
// EINVAL without THP support leaves it as it was). `touched` bytes were written before the
// advice: those are collapsed into huge pages at once (MADV_COLLAPSE, Linux 6.1), which
// happens once per partition, when its block first reaches the threshold (100 to 115 ms
// at 52 MB on the dev VM); pages touched later fault in as huge pages. The collapse ignores the
// system's THP mode, so it is asked for only when that mode is not "never".
void AdviseMapping(char* block, size_t bytes, size_t touched) {
#if defined(MADV_HUGEPAGE)
  if (bytes < kHugePageMinBytes) return;
  if (madvise(block, bytes, MADV_HUGEPAGE) != 0) return;
#if defined(__linux__)
#if defined(MADV_COLLAPSE)
  constexpr int kMadviseCollapse = MADV_COLLAPSE;
#else
  constexpr int kMadviseCollapse = 25;  // Linux's value; Debian 12's glibc headers predate it
#endif
  const size_t whole = touched & ~(kHugePageBytes - 1);
  if (whole > 0 && TransparentHugePagesEnabled()) (void)madvise(block, whole, kMadviseCollapse);
#else
  (void)touched;
#endif
#else
  (void)block;
  (void)bytes;
  (void)touched;
#endif
}

// Frees a partition's graph: its level-0 mapping here, the rest in hnswlib's destructor.
struct GraphDeleter {
  void operator()(Graph* graph) const noexcept {
    if (graph == nullptr) return;
    munmap(graph->data_level0_memory_, LevelZeroMappedBytes(*graph));
    graph->data_level0_memory_ = nullptr;  // hnswlib's destructor frees it: free(nullptr)
    delete graph;
  }
};
using GraphPtr = std::unique_ptr<Graph, GraphDeleter>;

// An empty graph with the given settings whose level-0 block is a mapping of its own.
GraphPtr NewGraph(hnswlib::SpaceInterface<float>* space, size_t capacity, size_t m,
                  size_t ef_construction) {
  auto graph = std::make_unique<Graph>(space, capacity, m, ef_construction);
  char* block = MapAligned(LevelZeroMappedBytes(*graph));
  // The malloc'd block was never written (hnswlib writes elements as they are added).
  std::free(graph->data_level0_memory_);
  graph->data_level0_memory_ = block;
  AdviseMapping(block, LevelZeroMappedBytes(*graph), 0);
  return GraphPtr(graph.release());
}

struct FreeDeleter {
  void operator()(void* p) const noexcept { std::free(p); }
};

// Grows `graph` to `capacity` elements: the steps of hnswlib's resizeIndex (a new visited
// list pool, per-element locks and levels, the upper-layer pointer array at the new size),
// with the level-0 mapping moved (mremap) to a 2 MB-aligned address of the new size
// instead of realloc'd; see LevelZeroMappedBytes for why. Where the move fails (or there
// is no mremap), the block is copied into a new mapping. Everything that can fail happens
// before the graph changes, so an exception leaves it as it was.
void GrowGraph(Graph& graph, size_t capacity) {
  if (capacity < graph.cur_element_count) {
    throw std::runtime_error("cannot shrink a graph below its element count");
  }
  const size_t used = graph.cur_element_count;
  const size_t old_bytes = LevelZeroMappedBytes(graph);
  const size_t new_bytes = LevelZeroMappedBytes(graph, capacity);
  std::unique_ptr<char*, FreeDeleter> links(
      static_cast<char**>(std::malloc(sizeof(char*) * capacity)));
  if (links == nullptr) throw std::bad_alloc();
  auto pool = std::make_unique<hnswlib::VisitedListPool>(1, static_cast<int>(capacity));
  std::vector<std::mutex> locks(capacity);
  graph.element_levels_.resize(capacity);
  char* block = MapAligned(new_bytes);  // the last step that can throw
#if defined(__linux__)
  // Replaces the mapping just made at `block` (MREMAP_FIXED) with the old one's pages.
  const bool moved = mremap(graph.data_level0_memory_, old_bytes, new_bytes,
                            MREMAP_MAYMOVE | MREMAP_FIXED, block) != MAP_FAILED;
#else
  constexpr bool moved = false;
#endif
  if (!moved) {
    std::memcpy(block, graph.data_level0_memory_, used * graph.size_data_per_element_);
    munmap(graph.data_level0_memory_, old_bytes);
  }
  graph.data_level0_memory_ = block;
  AdviseMapping(block, new_bytes,
                old_bytes < kHugePageMinBytes ? used * graph.size_data_per_element_ : 0);
  // Entries of level-0-only elements were never set (hnswlib reads them only for elements
  // with upper layers); they are copied as realloc would.
  std::memcpy(links.get(), graph.linkLists_, sizeof(char*) * used);
  std::free(graph.linkLists_);
  graph.linkLists_ = links.release();
  delete graph.visited_list_pool_;
  graph.visited_list_pool_ = pool.release();
  graph.link_list_locks_.swap(locks);
  graph.max_elements_ = capacity;
}

// updatePoint's updateNeighborProbability: the share of the element's old neighbours whose
// own links are recomputed. 1 is what hnswlib's addPoint and 0.7's replace_deleted use. Measured
// on BIGANN (d = 128, 4000 live, 20000 remove+add pairs, then 2000 updates; 1000 queries):
//   share 1:    remove+add 1.6 ms, update 1.7 ms, recall@10 0.9977 (fresh build 0.9993)
//   share 0.25: remove+add 0.5 ms, update 0.6 ms, recall@10 0.9917
//   share 0:    remove+add 0.4 ms, update 0.5 ms, recall@10 0.9921
// (random d = 256 vectors: ~9 ms per update at share 1). Searches outnumber writes in this
// engine, so recall wins; lower this if write latency under the exclusive lock matters more.
constexpr float kUpdateNeighbourShare = 1.0f;

Status CheckVector(std::span<const float> v, int dim, const std::string& what) {
  if (v.size() != static_cast<size_t>(dim)) {
    return Status::InvalidArgument(what + " has " + std::to_string(v.size()) +
                                   " values, expected " + std::to_string(dim));
  }
  for (size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      return Status::InvalidArgument(what + " has a non-finite value at index " +
                                     std::to_string(i));
    }
  }
  return Status::Ok();
}

std::string LabelWhat(uint64_t label) { return "vector for label " + std::to_string(label); }

// Higher similarity first; equal similarities by label so results are deterministic.
bool Better(const Neighbour& a, const Neighbour& b) {
  if (a.similarity != b.similarity) return a.similarity > b.similarity;
  return a.label < b.label;
}

Status InternalFrom(const char* op, const std::exception& e) {
  return Status::Internal(std::string("index ") + op + ": " + e.what());
}

// ---- snapshots ------------------------------------------------------------------------------
//
// SnapshotFormat (version 3; version 2 lacks the sequence and the generator states, version 1
// also the vector_storage byte; both are still read). Host byte order (x86-64: little endian); a
// file is meant to be read back on the machine that wrote it, like the hnswlib graph it embeds.
//   char[8]  magic "DYNSPART"
//   u32      format version (kSnapshotVersion)
//   u32      dim
//   u64      count (live labels)
//   i32      hnsw_m, i32 hnsw_ef_construction, i32 hnsw_ef_search, u64 exact_search_max_items
//            (the IndexOptions the partition was built with)
//   u8       has_graph
//   u8       vector_storage (version >= 2; VectorStorage: 0 float32, 1 float16; version 1
//            files are float32)
//   u64      applied sequence (version 3): the largest change sequence the partition holds
//   u64[count]        labels, in slot order
//   f32[count * dim]  vectors, slot-major (f16[count * dim] with float16 storage)
//   if has_graph (the hnswlib 0.6.2 HierarchicalNSW<float> state, as its saveIndex writes it
//   but in this file, so one checksum covers everything):
//     u64 max_elements, cur_element_count, maxM, maxM0, M, ef_construction
//     u32 enterpoint_node, i32 maxlevel
//     u8[cur_element_count * size_data_per_element]  level-0 links, vectors and labels
//     per element: i32 level, then u8[level * size_links_per_element] (upper-level links)
//     u64 removed count, then per removed label: u64 label, u32 element
//     (version 3) u32 n + n bytes twice: the level and update generator states, as
//     std::default_random_engine writes itself to a stream
//   u32      crc32 (zlib) of every byte before it
// LoadPartition checks the magic, then the version, then the size and the checksum, then
// every count, size and link against the graph it rebuilds, before anything is handed to
// hnswlib (whose loadIndex trusts its input).
constexpr char kSnapshotMagic[8] = {'D', 'Y', 'N', 'S', 'P', 'A', 'R', 'T'};
constexpr uint32_t kSnapshotVersion = 3;

// hnswlib draws each element's level, and which neighbours an update relinks, from two
// std::default_random_engine members. Their state goes into the snapshot so that changes
// replayed after a restart draw what they drew the first time (the graph comes out equal).
std::string EngineState(const std::default_random_engine& e) {
  std::ostringstream out;
  out << e;
  return out.str();
}

bool SetEngineState(const std::string& state, std::default_random_engine* e) {
  std::istringstream in(state);
  std::default_random_engine restored;
  in >> restored;
  if (in.fail()) return false;
  *e = restored;
  return true;
}
constexpr size_t kSnapshotHeaderBytes = 8 + 4 + 4 + 8 + 4 + 4 + 4 + 8 + 1;

// Streams bytes to a FILE and keeps their crc32.
class SnapshotWriter {
 public:
  explicit SnapshotWriter(std::FILE* f) : f_(f) {}
  void Bytes(const void* p, size_t n) {
    if (!ok_ || n == 0) return;
    const auto* b = static_cast<const unsigned char*>(p);
    size_t done = 0;
    while (done < n) {  // crc32 takes a uInt length
      const size_t chunk = std::min<size_t>(n - done, size_t{1} << 30);
      crc_ = crc32(crc_, b + done, static_cast<uInt>(chunk));
      done += chunk;
    }
    if (std::fwrite(p, 1, n, f_) != n) ok_ = false;
  }
  template <typename T>
  void Pod(const T& v) {
    Bytes(&v, sizeof(T));
  }
  void String(const std::string& v) {
    Pod(static_cast<uint32_t>(v.size()));
    Bytes(v.data(), v.size());
  }
  void Crc() {
    const uint32_t c = static_cast<uint32_t>(crc_);
    if (ok_ && std::fwrite(&c, 1, sizeof(c), f_) != sizeof(c)) ok_ = false;
  }
  bool ok() const { return ok_; }

 private:
  std::FILE* f_;
  uLong crc_ = crc32(0L, Z_NULL, 0);
  bool ok_ = true;
};

// Bounds-checked reads from a snapshot held in memory.
class SnapshotReader {
 public:
  SnapshotReader(const std::string& path, const char* data, size_t size)
      : path_(path), data_(data), size_(size) {}
  template <typename T>
  Status Pod(T* out, const char* what) {
    DYNSPEC_RETURN_IF_ERROR(Need(sizeof(T), what));
    std::memcpy(out, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::Ok();
  }
  // A pointer to the next n bytes (count * unit, checked for overflow).
  Status Span(size_t count, size_t unit, const char** out, const char* what) {
    if (unit != 0 && count > std::numeric_limits<size_t>::max() / unit) {
      return Corrupt(std::string(what) + " size overflows");
    }
    DYNSPEC_RETURN_IF_ERROR(Need(count * unit, what));
    *out = data_ + pos_;
    pos_ += count * unit;
    return Status::Ok();
  }
  size_t remaining() const { return size_ - pos_; }
  // A u32 length and that many bytes, at most `max`.
  Status String(std::string* out, size_t max, const char* what) {
    uint32_t n = 0;
    DYNSPEC_RETURN_IF_ERROR(Pod(&n, what));
    if (n > max) return Corrupt(std::string(what) + " is " + std::to_string(n) + " bytes");
    const char* p = nullptr;
    DYNSPEC_RETURN_IF_ERROR(Span(n, 1, &p, what));
    out->assign(p, n);
    return Status::Ok();
  }
  Status Corrupt(const std::string& why) const {
    return Status::Corruption("partition snapshot " + path_ + ": " + why);
  }

 private:
  Status Need(size_t n, const char* what) const {
    if (n > size_ - pos_) {
      return Corrupt(std::string("truncated (") + what + " needs " + std::to_string(n) +
                     " bytes, " + std::to_string(size_ - pos_) + " left)");
    }
    return Status::Ok();
  }
  const std::string& path_;
  const char* data_;
  size_t size_;
  size_t pos_ = 0;
};

Status ErrnoStatus(const std::string& what, const std::string& path) {
  return Status::Internal(what + " " + path + ": " + std::strerror(errno));
}

Status FsyncPath(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) return ErrnoStatus("opening", path);
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  errno = saved;
  if (rc != 0) return ErrnoStatus("fsync of", path);
  return Status::Ok();
}

std::atomic<uint64_t> g_snapshot_tmp_counter{0};

// The inner-product space of this project's kernels (dot_kernel.h) for hnswlib: element data is
// dim floats, or dim binary16 values with VectorStorage::kFloat16, and distance is 1 - dot.
class DotSpace final : public hnswlib::SpaceInterface<float> {
 public:
  DotSpace(size_t dim, bool half) : dim_(dim), half_(half) {}
  size_t get_data_size() override { return dim_ * (half_ ? sizeof(uint16_t) : sizeof(float)); }
  hnswlib::DISTFUNC<float> get_dist_func() override { return half_ ? &DistanceF16 : &DistanceF32; }
  void* get_dist_func_param() override { return &dim_; }

 private:
  static float DistanceF32(const void* a, const void* b, const void* dim) {
    return 1.0f - DotF32(static_cast<const float*>(a), static_cast<const float*>(b),
                         *static_cast<const size_t*>(dim));
  }
  static float DistanceF16(const void* a, const void* b, const void* dim) {
    return 1.0f - DotF16(static_cast<const uint16_t*>(a), static_cast<const uint16_t*>(b),
                         *static_cast<const size_t*>(dim));
  }
  size_t dim_;
  bool half_;
};

// The largest magnitude binary16 holds; larger values would become infinite.
constexpr float kHalfMax = 65504.0f;

class FlatHnswPartition final : public Partition {
 public:
  FlatHnswPartition(int dim, const IndexOptions& options)
      : dim_(dim),
        options_(options),
        half_(options.vector_storage == VectorStorage::kFloat16),
        space_(static_cast<size_t>(dim), half_),
        elem_bytes_(space_.get_data_size()),
        dist_(space_.get_dist_func()),
        dist_param_(space_.get_dist_func_param()) {}

  Status Add(uint64_t label, std::span<const float> vector, uint64_t sequence,
             std::span<const LinkCandidate> link_candidates) override {
    DYNSPEC_ASSIGN_OR_RETURN(const std::vector<char> stored, Encode(vector, LabelWhat(label)));
    auto lock = WriteLock();
    if (slot_of_.contains(label)) {
      return Status::AlreadyExists("label " + std::to_string(label) + " is already indexed");
    }
    const size_t old_size = slot_labels_.size();
    try {
      if (graph_) {
        GraphAdd(label, stored.data(), link_candidates);
        AppendSlot(label, nullptr);
      } else {
        AppendSlot(label, stored.data());
        if (slot_labels_.size() > options_.exact_search_max_items) BuildGraph();
      }
      NoteApplied(sequence);
      return Status::Ok();
    } catch (const std::exception& e) {
      Rollback(old_size, label);
      return InternalFrom("add", e);
    } catch (...) {
      Rollback(old_size, label);
      return Status::Internal("index add: unknown exception");
    }
  }

  Status Update(uint64_t label, std::span<const float> vector, uint64_t sequence) override {
    DYNSPEC_ASSIGN_OR_RETURN(const std::vector<char> stored, Encode(vector, LabelWhat(label)));
    auto lock = WriteLock();
    auto it = slot_of_.find(label);
    if (it == slot_of_.end()) {
      return Status::NotFound("label " + std::to_string(label) + " is not indexed");
    }
    if (!graph_) {
      std::memcpy(FlatData(it->second), stored.data(), elem_bytes_);
      NoteApplied(sequence);
      return Status::Ok();
    }
    const char* current = StoredData(it->second);
    const std::vector<char> old(current, current + elem_bytes_);
    try {
      GraphUpdate(graph_->label_lookup_.at(label), stored.data());
      NoteApplied(sequence);
      return Status::Ok();
    } catch (const std::exception& e) {
      LeaveGraphMode(it->second, old.data());
      return InternalFrom("update", e);
    } catch (...) {
      LeaveGraphMode(it->second, old.data());
      return Status::Internal("index update: unknown exception");
    }
  }

  Status Remove(uint64_t label, uint64_t sequence) override {
    auto lock = WriteLock();
    auto it = slot_of_.find(label);
    if (it == slot_of_.end()) {
      return Status::NotFound("label " + std::to_string(label) + " is not indexed");
    }
    try {
      if (graph_) GraphRemove(label);
    } catch (const std::exception& e) {
      LeaveGraphMode(kNoSlot, nullptr);
      return InternalFrom("remove", e);
    } catch (...) {
      LeaveGraphMode(kNoSlot, nullptr);
      return Status::Internal("index remove: unknown exception");
    }
    RemoveSlot(it);
    // A partition that has shrunk well below the threshold is cheaper and exact as a flat scan.
    if (graph_ && slot_labels_.size() <= options_.exact_search_max_items / 2) {
      LeaveGraphMode(kNoSlot, nullptr);
    }
    NoteApplied(sequence);
    return Status::Ok();
  }

  uint64_t AppliedSequence() const override {
    auto lock = ReadLock();
    return applied_sequence_;
  }

  void MarkApplied(uint64_t sequence) override {
    auto lock = WriteLock();
    NoteApplied(sequence);
  }

  bool Contains(uint64_t label) const override {
    auto lock = ReadLock();
    return slot_of_.contains(label);
  }

  Result<std::vector<Neighbour>> Search(
      std::span<const float> query, size_t k,
      std::vector<LinkCandidate>* link_candidates) const override {
    if (link_candidates) link_candidates->clear();
    // A float32 query is searched as given; only float16 partitions need it converted.
    std::vector<char> converted;
    const char* stored = reinterpret_cast<const char*>(query.data());
    if (half_) {
      DYNSPEC_ASSIGN_OR_RETURN(converted, Encode(query, "query"));
      stored = converted.data();
    } else {
      DYNSPEC_RETURN_IF_ERROR(CheckVector(query, dim_, "query"));
    }
    auto lock = ReadLock();
    try {
      const size_t n = slot_labels_.size();
      k = std::min(k, n);
      if (k == 0) return std::vector<Neighbour>{};
      return graph_ ? GraphSearch(stored, k, link_candidates) : ExactSearch(stored, k);
    } catch (const std::exception& e) {
      return InternalFrom("search", e);
    } catch (...) {
      return Status::Internal("index search: unknown exception");
    }
  }

  size_t size() const override {
    auto lock = ReadLock();
    return slot_labels_.size();
  }

  uint64_t AddsLinkedAmongCandidates() const override {
    return adds_linked_among_candidates_.load(std::memory_order_relaxed);
  }

  int dim() const override { return dim_; }

  std::vector<uint64_t> Labels() const override {
    auto lock = ReadLock();
    return slot_labels_;
  }

  Result<std::vector<float>> GetVector(uint64_t label) const override {
    auto lock = ReadLock();
    auto it = slot_of_.find(label);
    if (it == slot_of_.end()) {
      return Status::NotFound("label " + std::to_string(label) + " is not indexed");
    }
    try {
      return Decode(StoredData(it->second));
    } catch (const std::exception& e) {
      return InternalFrom("get vector", e);
    }
  }

  bool HasVector(uint64_t label, std::span<const float> vector) const override {
    auto stored = Encode(vector, "vector");
    if (!stored.ok()) return false;
    auto lock = ReadLock();
    auto it = slot_of_.find(label);
    if (it == slot_of_.end()) return false;
    try {
      return std::memcmp(StoredData(it->second), stored->data(), elem_bytes_) == 0;
    } catch (const std::exception&) {
      return false;
    }
  }

  size_t MemoryBytes() const override {
    auto lock = ReadLock();
    // Containers' own bookkeeping: unordered_map nodes (key, value, next pointer, cached hash)
    // and bucket arrays, estimated; the vectors and the graph's blocks are exact.
    constexpr size_t kMapEntryBytes = 48;
    size_t bytes = flat_.capacity() + slot_labels_.capacity() * sizeof(uint64_t) +
                   slot_of_.size() * kMapEntryBytes + slot_of_.bucket_count() * sizeof(void*);
    if (graph_) {
      const Graph& g = *graph_;
      bytes += g.max_elements_ *
               (g.size_data_per_element_ + sizeof(int) + sizeof(void*) + sizeof(std::mutex));
      for (size_t i = 0; i < g.cur_element_count; ++i) {
        if (g.element_levels_[i] > 0) {
          bytes += g.size_links_per_element_ * static_cast<size_t>(g.element_levels_[i]);
        }
      }
      bytes += g.label_lookup_.size() * kMapEntryBytes +
               g.label_lookup_.bucket_count() * sizeof(void*) +
               graph_removed_.size() * kMapEntryBytes;
    }
    return bytes;
  }

  Status Save(const std::string& path, uint64_t* saved_sequence) const override {
    const std::string tmp = path + ".tmp-" + std::to_string(::getpid()) + "-" +
                            std::to_string(g_snapshot_tmp_counter.fetch_add(1));
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (f == nullptr) return ErrnoStatus("creating", tmp);
    bool ok;
    {
      auto lock = ReadLock();
      if (saved_sequence) *saved_sequence = applied_sequence_;
      SnapshotWriter w(f);
      try {
        WriteSnapshot(w);
        ok = w.ok();
      } catch (const std::exception&) {
        ok = false;
        errno = EIO;
      }
    }
    ok = ok && std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
    const int saved = errno;
    ok = (std::fclose(f) == 0) && ok;
    if (!ok) {
      errno = saved;
      Status st = ErrnoStatus("writing", tmp);
      std::remove(tmp.c_str());
      return st;
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
      Status st = ErrnoStatus("renaming " + tmp + " to", path);
      std::remove(tmp.c_str());
      return st;
    }
    std::string dir = std::filesystem::path(path).parent_path().string();
    if (dir.empty()) dir = ".";
    return FsyncPath(dir, true);
  }

  // Restores the state a snapshot describes (the reader stands after the header fields, which
  // the caller read and checked). Used on a fresh partition only.
  Status ReadSnapshot(SnapshotReader& r, uint32_t version, uint64_t count, bool has_graph,
                      uint64_t applied_sequence) {
    applied_sequence_ = applied_sequence;
    const char* labels_p = nullptr;
    const char* vectors_p = nullptr;
    DYNSPEC_RETURN_IF_ERROR(r.Span(count, sizeof(uint64_t), &labels_p, "labels"));
    DYNSPEC_RETURN_IF_ERROR(r.Span(count, elem_bytes_, &vectors_p, "vectors"));
    slot_labels_.resize(count);
    std::memcpy(slot_labels_.data(), labels_p, count * sizeof(uint64_t));
    flat_.assign(vectors_p, vectors_p + count * elem_bytes_);
    slot_of_.reserve(count);
    for (size_t i = 0; i < count; ++i) {
      if (!slot_of_.emplace(slot_labels_[i], i).second) {
        return r.Corrupt("label " + std::to_string(slot_labels_[i]) + " appears twice");
      }
      for (float x : Decode(FlatData(i))) {
        if (!std::isfinite(x)) {
          return r.Corrupt("vector of label " + std::to_string(slot_labels_[i]) +
                           " has a non-finite value");
        }
      }
    }
    if (has_graph) {
      DYNSPEC_RETURN_IF_ERROR(ReadGraph(r, version));
      std::vector<char>().swap(flat_);  // the graph holds the vectors from here on
    }
    return Status::Ok();
  }

 private:
  static constexpr size_t kNoSlot = std::numeric_limits<size_t>::max();

  // std::shared_mutex is a pthread rwlock, which on glibc prefers readers: under a steady
  // search load a writer could wait forever (measured: without the gate, the concurrency test
  // in tests/index_test.cc, 3 readers and 1 writer on 2 cores, took 123 s instead of 0.7 s). A
  // writer therefore holds gate_ while it waits for mu_, which holds back new readers until it is
  // in; readers only pass through gate_.
  std::shared_lock<std::shared_mutex> ReadLock() const {
    std::lock_guard gate(gate_);
    return std::shared_lock(mu_);
  }
  std::unique_lock<std::shared_mutex> WriteLock() {
    std::lock_guard gate(gate_);
    return std::unique_lock(mu_);
  }

  // --- stored form ----------------------------------------------------------------------

  // Checks a vector and converts it to the stored form (floats, or binary16).
  Result<std::vector<char>> Encode(std::span<const float> v, const std::string& what) const {
    DYNSPEC_RETURN_IF_ERROR(CheckVector(v, dim_, what));
    std::vector<char> out(elem_bytes_);
    if (!half_) {
      std::memcpy(out.data(), v.data(), elem_bytes_);
      return out;
    }
    for (size_t i = 0; i < v.size(); ++i) {
      if (std::fabs(v[i]) > kHalfMax) {
        return Status::InvalidArgument(what + " has a value at index " + std::to_string(i) +
                                       " beyond the float16 range (index.vector_storage)");
      }
    }
    FloatsToHalves(v, reinterpret_cast<uint16_t*>(out.data()));
    return out;
  }

  std::vector<float> Decode(const char* stored) const {
    std::vector<float> v(static_cast<size_t>(dim_));
    if (half_) {
      HalvesToFloats(reinterpret_cast<const uint16_t*>(stored), v);
    } else {
      std::memcpy(v.data(), stored, elem_bytes_);
    }
    return v;
  }

  float Similarity(const char* a, const char* b) const { return 1.0f - dist_(a, b, dist_param_); }

  // --- where vectors live -----------------------------------------------------------------
  //
  // Exact mode keeps every vector in flat_ (slot-major). Graph mode keeps them only in the
  // hnswlib graph's element blocks (which hold a copy anyway) and flat_ is empty: at a million
  // items a second copy would cost as much memory as the vectors themselves. Leaving graph
  // mode copies them back out (LeaveGraphMode).

  char* FlatData(size_t slot) { return flat_.data() + slot * elem_bytes_; }
  const char* FlatData(size_t slot) const { return flat_.data() + slot * elem_bytes_; }

  // The stored vector of a slot in either mode. Graph mode may throw (label lookup).
  const char* StoredData(size_t slot) const {
    if (!graph_) return FlatData(slot);
    return graph_->getDataByInternalId(graph_->label_lookup_.at(slot_labels_[slot]));
  }

  // `stored` is copied into flat_ in exact mode; in graph mode it is null (the graph has it).
  void AppendSlot(uint64_t label, const char* stored) {
    const size_t slot = slot_labels_.size();
    slot_labels_.push_back(label);
    try {
      slot_of_.emplace(label, slot);
      if (stored != nullptr) flat_.insert(flat_.end(), stored, stored + elem_bytes_);
    } catch (...) {
      slot_of_.erase(label);
      slot_labels_.pop_back();
      throw;
    }
  }

  // Undoes a partly done Add: the partition goes back to its `old_size` slots. In graph mode
  // the graph may hold the label or be half-modified, so the partition leaves graph mode with
  // the vectors of the old slots (their graph elements are untouched by a failed insert).
  // No-throw.
  void Rollback(size_t old_size, uint64_t label) noexcept {
    if (auto it = slot_of_.find(label); it != slot_of_.end() && it->second >= old_size) {
      slot_of_.erase(it);
    }
    if (slot_labels_.size() > old_size) slot_labels_.resize(old_size);
    if (graph_) {
      LeaveGraphMode(kNoSlot, nullptr);
    } else if (flat_.size() > old_size * elem_bytes_) {
      flat_.resize(old_size * elem_bytes_);
    }
  }

  // Copies every slot's vector out of the graph into flat_ (`replacement`, when given, stands
  // for slot `replaced`'s) and drops the graph: searches are exact from then on. No-throw: if
  // there is not even memory for the copy, the graph stays (it still holds every slot's
  // vector; GraphSearch filters labels the partition no longer holds).
  void LeaveGraphMode(size_t replaced, const char* replacement) noexcept {
    if (!graph_) return;
    try {
      std::vector<char> flat(slot_labels_.size() * elem_bytes_);
      for (size_t slot = 0; slot < slot_labels_.size(); ++slot) {
        const char* src = slot == replaced ? replacement : StoredData(slot);
        std::memcpy(flat.data() + slot * elem_bytes_, src, elem_bytes_);
      }
      flat_.swap(flat);
    } catch (...) {
      return;
    }
    DropGraph();
  }

  // Swap-remove: the last slot moves into the freed one. No-throw.
  void RemoveSlot(std::unordered_map<uint64_t, size_t>::iterator it) noexcept {
    const size_t slot = it->second;
    const size_t last = slot_labels_.size() - 1;
    if (slot != last) {
      const uint64_t moved = slot_labels_[last];
      if (!graph_) std::memcpy(FlatData(slot), FlatData(last), elem_bytes_);
      slot_labels_[slot] = moved;
      slot_of_.find(moved)->second = slot;
    }
    slot_of_.erase(it);
    slot_labels_.pop_back();
    if (!graph_) flat_.resize(last * elem_bytes_);
  }

  // The k best by Better, best first. For the small k of neighbour searches, a sorted list
  // of the best so far: a vector enters only when it beats the list's last, at the cost of a
  // binary search and a short move. This replaced std::partial_sort over an n-element copy
  // of all similarities, whose heap work (sifts with data-dependent branches, then sorting
  // the heap) took as many of Search's samples as the similarities themselves in shadow
  // evaluation over 8 partitions of ~125 items (perf). Above kSortedListMaxK the list's moves
  // (up to k per entry) would grow faster than the heap's log k, so large k keep the heap.
  std::vector<Neighbour> ExactSearch(const char* query, size_t k) const {
    constexpr size_t kSortedListMaxK = 64;
    const size_t n = slot_labels_.size();
    std::vector<Neighbour> best;
    if (k == 0) return best;
    if (k > kSortedListMaxK) {
      best.resize(n);
      for (size_t i = 0; i < n; ++i) best[i] = {slot_labels_[i], Similarity(query, FlatData(i))};
      k = std::min(k, n);
      std::partial_sort(best.begin(), best.begin() + static_cast<ptrdiff_t>(k), best.end(),
                        [](const Neighbour& a, const Neighbour& b) { return Better(a, b); });
      best.resize(k);
      return best;
    }
    best.reserve(k + 1);
    for (size_t i = 0; i < n; ++i) {
      const Neighbour candidate{slot_labels_[i], Similarity(query, FlatData(i))};
      if (best.size() == k && !Better(candidate, best.back())) continue;
      best.insert(std::upper_bound(best.begin(), best.end(), candidate, Better), candidate);
      if (best.size() > k) best.pop_back();
    }
    return best;
  }

  // --- graph ----------------------------------------------------------------------------

  // Builds a graph over every live vector and installs it, then releases flat_; on an
  // exception nothing changes.
  void BuildGraph() {
    const size_t n = slot_labels_.size();
    const size_t m = static_cast<size_t>(std::clamp(options_.hnsw_m, 2, 10000));
    const size_t ef_construction = static_cast<size_t>(std::max(options_.hnsw_ef_construction, 1));
    GraphPtr graph =
        NewGraph(&space_, std::max(kMinGraphCapacity, GrownCapacity(n)), m, ef_construction);
    graph->setEf(static_cast<size_t>(std::max(options_.hnsw_ef_search, 1)));
    for (size_t i = 0; i < n; ++i) graph->addPoint(FlatData(i), slot_labels_[i]);
    graph_ = std::move(graph);
    graph_removed_.clear();
    std::vector<char>().swap(flat_);
  }

  void DropGraph() noexcept {
    graph_.reset();
    graph_removed_.clear();
  }

  // Adds a label the partition does not hold to the graph (see Partition::Add for
  // `link_candidates`).
  void GraphAdd(uint64_t label, const char* stored,
                std::span<const LinkCandidate> link_candidates) {
    if (auto it = graph_removed_.find(label); it != graph_removed_.end()) {
      // Re-adding a removed label: unmark its element and give it the new vector.
      const hnswlib::tableint id = it->second;
      graph_->unmarkDeletedInternal(id);
      graph_removed_.erase(it);
      GraphUpdate(id, stored);
      return;
    }
    if (!graph_removed_.empty()) {
      // Take over a deleted element (what hnswlib 0.7 does for replace_deleted).
      auto it = graph_removed_.begin();
      const uint64_t old_label = it->first;
      const hnswlib::tableint id = it->second;
      graph_->label_lookup_[label] = id;  // the only step here that can throw
      graph_->label_lookup_.erase(old_label);
      graph_->setExternalLabel(id, label);
      graph_removed_.erase(it);
      graph_->unmarkDeletedInternal(id);
      GraphUpdate(id, stored);
      return;
    }
    if (graph_->cur_element_count >= graph_->max_elements_) {
      GrowGraph(*graph_, GrownCapacity(graph_->max_elements_));
    }
    if (!link_candidates.empty() && AddLinkedAmongCandidates(label, stored, link_candidates)) {
      adds_linked_among_candidates_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    graph_->addPoint(stored, label);
  }

  // hnswlib's addPoint for a new label whose element enters only the bottom layer, with the
  // candidate neighbours given instead of searched for: the element is set up as addPoint
  // sets it up, its candidates are those of `link_candidates` whose element still holds their
  // label live (at most ef_construction, as the search would return; no label lookups, whose
  // cold hash probes took a third of these inserts' time in perf at 50k items), and
  // hnswlib's own mutuallyConnectNewElement
  // picks the links with its heuristic and links back. Written here because hnswlib 0.6.2 has
  // no insert that takes candidates; it uses only members 0.6.2 declares public. Returns
  // false, having changed nothing, when the element would enter upper layers (its level is
  // drawn as addPoint draws it, and the generator is put back so that addPoint draws the same
  // level) or no candidate is live. Requires the write lock and room for one more element.
  bool AddLinkedAmongCandidates(uint64_t label, const char* stored,
                                std::span<const LinkCandidate> link_candidates) {
    Graph& g = *graph_;
    if (g.enterpoint_node_ == static_cast<hnswlib::tableint>(-1) || g.maxlevel_ < 0) return false;
    // Scattered elements: start loading all of them so that their misses overlap.
    for (const LinkCandidate& c : link_candidates) {
      if (c.element < g.cur_element_count) PrefetchLine(g.getDataByInternalId(c.element));
    }
    using Candidates = std::priority_queue<std::pair<float, hnswlib::tableint>,
                                           std::vector<std::pair<float, hnswlib::tableint>>,
                                           Graph::CompareByFirst>;
    Candidates candidates;  // max-heap on distance, as searchBaseLayer returns them
    for (const LinkCandidate& c : link_candidates) {
      if (c.element >= g.cur_element_count || g.getExternalLabel(c.element) != c.label ||
          g.isMarkedDeleted(c.element)) {
        continue;
      }
      candidates.emplace(
          g.fstdistfunc_(stored, g.getDataByInternalId(c.element), g.dist_func_param_), c.element);
      if (candidates.size() > g.ef_construction_) candidates.pop();
    }
    if (candidates.empty()) return false;
    const auto generator = g.level_generator_;
    if (g.getRandomLevel(g.mult_) != 0) {
      g.level_generator_ = generator;
      return false;
    }
    const hnswlib::tableint id = static_cast<hnswlib::tableint>(g.cur_element_count);
    g.label_lookup_[label] = id;  // the only step that can throw before the graph changes
    g.cur_element_count++;
    g.element_levels_[id] = 0;
    std::memset(g.data_level0_memory_ + id * g.size_data_per_element_ + g.offsetLevel0_, 0,
                g.size_data_per_element_);
    std::memcpy(g.getExternalLabeLp(id), &label, sizeof label);
    std::memcpy(g.getDataByInternalId(id), stored, g.data_size_);
    g.mutuallyConnectNewElement(stored, id, candidates, 0, false);
    return true;
  }

  // Gives graph element `id` a new vector and relinks it (Update, re-add, reused element).
  void GraphUpdate(hnswlib::tableint id, const char* stored) {
    graph_->updatePoint(stored, id, kUpdateNeighbourShare);
  }

  void GraphRemove(uint64_t label) {
    auto lit = graph_->label_lookup_.find(label);
    if (lit == graph_->label_lookup_.end()) {
      throw std::runtime_error("label " + std::to_string(label) + " missing from the graph");
    }
    graph_removed_.emplace(label, lit->second);
    try {
      graph_->markDelete(label);
    } catch (...) {
      graph_removed_.erase(label);
      throw;
    }
  }

  // hnswlib's searchKnn(query, count), written out on its public members: the same greedy
  // descent through the upper layers and the same searchBaseLayerST with a beam of
  // max(ef, count) on the bottom one, so the same results. Written out for two things
  // searchKnn does not give: the elements behind the labels (link candidates), and a search
  // without its metric counters (atomics shared by every search, whose cache line concurrent
  // searches pass back and forth). Up to `count` elements with their distances, nearest last
  // (a max-heap's order).
  std::vector<std::pair<float, hnswlib::tableint>> GraphNearest(const char* query,
                                                                size_t count) const {
    const Graph& g = *graph_;
    std::vector<std::pair<float, hnswlib::tableint>> out;
    if (g.cur_element_count == 0) return out;
    auto distance = [&](hnswlib::tableint element) {
      return g.fstdistfunc_(query, g.getDataByInternalId(element), g.dist_func_param_);
    };
    hnswlib::tableint current = g.enterpoint_node_;
    float current_distance = distance(current);
    for (int level = g.maxlevel_; level > 0; --level) {
      for (bool moved = true; moved;) {
        moved = false;
        unsigned int* list = g.get_linklist(current, level);
        const int size = g.getListCount(list);
        const auto* links = reinterpret_cast<const hnswlib::tableint*>(list + 1);
        for (int i = 0; i < size; ++i) {
          if (links[i] >= g.max_elements_) throw std::runtime_error("graph link out of range");
          const float d = distance(links[i]);
          if (d < current_distance) {
            current_distance = d;
            current = links[i];
            moved = true;
          }
        }
      }
    }
    const size_t beam = std::max(g.ef_, count);
    auto top = g.num_deleted_ ? g.searchBaseLayerST<true>(current, query, beam)
                              : g.searchBaseLayerST<false>(current, query, beam);
    while (top.size() > count) top.pop();
    out.reserve(top.size());
    for (; !top.empty(); top.pop()) out.push_back(top.top());
    return out;
  }

  // With `link_candidates` (see Partition::Search) and ef >= ef_construction, asks for
  // ef_construction results instead of k: the search's beam is max(ef, k) either way, so that
  // is the same search, and its first k results are the k it would have returned.
  std::vector<Neighbour> GraphSearch(const char* query, size_t k,
                                     std::vector<LinkCandidate>* link_candidates = nullptr) const {
    const Graph& g = *graph_;
    const size_t ef_construction = g.ef_construction_;
    const bool with_candidates = link_candidates && g.ef_ >= ef_construction;
    struct Found {
      Neighbour neighbour;
      hnswlib::tableint element;
    };
    std::vector<Found> found;
    for (const auto& [distance, element] :
         GraphNearest(query, with_candidates ? std::max(k, ef_construction) : k)) {
      found.push_back({{g.getExternalLabel(element), 1.0f - distance}, element});
    }
    std::sort(found.begin(), found.end(),
              [](const Found& a, const Found& b) { return Better(a.neighbour, b.neighbour); });
    if (with_candidates) {
      // Not checked against slot_of_ (a cold hash probe each, 10% of a new item's prediction
      // at 50k items in perf): Add checks each element still holds its label live, and the
      // one state in which the graph holds a label the partition does not (below) costs at
      // most a link to it.
      link_candidates->reserve(std::min(found.size(), ef_construction));
      for (size_t i = 0; i < found.size() && i < ef_construction; ++i) {
        link_candidates->push_back({found[i].neighbour.label, found[i].element});
      }
    }
    std::vector<Neighbour> out;
    out.reserve(std::min(k, found.size()));
    for (const Found& f : found) {
      if (out.size() == k) break;
      // Only after a failed write that found no memory to leave graph mode can the graph hold
      // a label the partition does not (see LeaveGraphMode).
      if (slot_of_.contains(f.neighbour.label)) out.push_back(f.neighbour);
    }
    return out;
  }

  // Requires the write lock.
  void NoteApplied(uint64_t sequence) { applied_sequence_ = std::max(applied_sequence_, sequence); }

  // --- snapshots ---------------------------------------------------------------------------

  // Requires the lock (shared is enough).
  void WriteSnapshot(SnapshotWriter& w) const {
    w.Bytes(kSnapshotMagic, sizeof(kSnapshotMagic));
    w.Pod(kSnapshotVersion);
    w.Pod(static_cast<uint32_t>(dim_));
    w.Pod(static_cast<uint64_t>(slot_labels_.size()));
    w.Pod(static_cast<int32_t>(options_.hnsw_m));
    w.Pod(static_cast<int32_t>(options_.hnsw_ef_construction));
    w.Pod(static_cast<int32_t>(options_.hnsw_ef_search));
    w.Pod(static_cast<uint64_t>(options_.exact_search_max_items));
    w.Pod(static_cast<uint8_t>(graph_ ? 1 : 0));
    w.Pod(static_cast<uint8_t>(half_ ? VectorStorage::kFloat16 : VectorStorage::kFloat32));
    w.Pod(applied_sequence_);
    w.Bytes(slot_labels_.data(), slot_labels_.size() * sizeof(uint64_t));
    for (size_t slot = 0; slot < slot_labels_.size(); ++slot)
      w.Bytes(StoredData(slot), elem_bytes_);
    if (graph_) {
      const Graph& g = *graph_;
      w.Pod(static_cast<uint64_t>(g.max_elements_));
      w.Pod(static_cast<uint64_t>(g.cur_element_count));
      w.Pod(static_cast<uint64_t>(g.maxM_));
      w.Pod(static_cast<uint64_t>(g.maxM0_));
      w.Pod(static_cast<uint64_t>(g.M_));
      w.Pod(static_cast<uint64_t>(g.ef_construction_));
      w.Pod(static_cast<uint32_t>(g.enterpoint_node_));
      w.Pod(static_cast<int32_t>(g.maxlevel_));
      w.Bytes(g.data_level0_memory_, g.cur_element_count * g.size_data_per_element_);
      for (size_t i = 0; i < g.cur_element_count; ++i) {
        const int32_t level = g.element_levels_[i];
        w.Pod(level);
        if (level > 0) w.Bytes(g.linkLists_[i], g.size_links_per_element_ * level);
      }
      w.Pod(static_cast<uint64_t>(graph_removed_.size()));
      for (const auto& [label, id] : graph_removed_) {
        w.Pod(label);
        w.Pod(static_cast<uint32_t>(id));
      }
      w.String(EngineState(g.level_generator_));
      w.String(EngineState(g.update_probability_generator_));
    }
    w.Crc();
  }

  // Reads, checks and installs the graph section. Every link, level, label and vector is
  // checked against the flat arrays already read before the graph is installed.
  Status ReadGraph(SnapshotReader& r, uint32_t version) {
    uint64_t max_elements, cur, max_m, max_m0, m, efc;
    uint32_t enterpoint;
    int32_t maxlevel;
    DYNSPEC_RETURN_IF_ERROR(r.Pod(&max_elements, "graph header"));
    DYNSPEC_RETURN_IF_ERROR(r.Pod(&cur, "graph header"));
    DYNSPEC_RETURN_IF_ERROR(r.Pod(&max_m, "graph header"));
    DYNSPEC_RETURN_IF_ERROR(r.Pod(&max_m0, "graph header"));
    DYNSPEC_RETURN_IF_ERROR(r.Pod(&m, "graph header"));
    DYNSPEC_RETURN_IF_ERROR(r.Pod(&efc, "graph header"));
    DYNSPEC_RETURN_IF_ERROR(r.Pod(&enterpoint, "graph header"));
    DYNSPEC_RETURN_IF_ERROR(r.Pod(&maxlevel, "graph header"));
    const size_t want_m = static_cast<size_t>(std::clamp(options_.hnsw_m, 2, 10000));
    const size_t want_efc =
        std::max(static_cast<size_t>(std::max(options_.hnsw_ef_construction, 1)), want_m);
    if (m != want_m || max_m != want_m || max_m0 != 2 * want_m || efc != want_efc) {
      return r.Corrupt("graph settings (M " + std::to_string(m) + ", maxM " +
                       std::to_string(max_m) + ", maxM0 " + std::to_string(max_m0) +
                       ", ef_construction " + std::to_string(efc) + ") disagree with the header");
    }
    const size_t live = slot_labels_.size();
    if (cur < live || cur > std::numeric_limits<uint32_t>::max() / 2) {
      return r.Corrupt("graph holds " + std::to_string(cur) + " elements for " +
                       std::to_string(live) + " labels");
    }
    if (max_elements < cur ||
        max_elements > std::max<uint64_t>(kMinGraphCapacity, GrownCapacity(4 * cur))) {
      return r.Corrupt("graph capacity " + std::to_string(max_elements) + " does not fit " +
                       std::to_string(cur) + " elements");
    }
    if (cur == 0 ? (maxlevel != -1) : (maxlevel < 0 || maxlevel > 64 || enterpoint >= cur)) {
      return r.Corrupt("graph entry point " + std::to_string(enterpoint) + " at level " +
                       std::to_string(maxlevel) + " is out of range");
    }
    // hnswlib's element layout for these settings (as its constructor computes it).
    const size_t link0_bytes =
        2 * want_m * sizeof(hnswlib::tableint) + sizeof(hnswlib::linklistsizeint);
    const size_t expect_sdpe = link0_bytes + elem_bytes_ + sizeof(hnswlib::labeltype);
    const char* level0 = nullptr;
    DYNSPEC_RETURN_IF_ERROR(r.Span(cur, expect_sdpe, &level0, "graph level 0"));
    // The graph with the same settings: its sizes are what the file must contain.
    GraphPtr graph = NewGraph(&space_, static_cast<size_t>(max_elements), want_m,
                              static_cast<size_t>(std::max(options_.hnsw_ef_construction, 1)));
    Graph& g = *graph;
    const size_t sdpe = g.size_data_per_element_;
    const size_t spe = g.size_links_per_element_;
    if (sdpe != expect_sdpe || g.offsetData_ != link0_bytes) {
      return Status::Internal("hnswlib element layout is not the one snapshots assume");
    }
    std::memcpy(g.data_level0_memory_, level0, cur * sdpe);
    for (size_t i = 0; i < cur; ++i) g.linkLists_[i] = nullptr;
    g.cur_element_count = cur;  // from here on the destructor frees what was allocated
    auto check_links = [&](const char* list, size_t max_count, size_t i, int level) -> Status {
      uint16_t n;
      std::memcpy(&n, list, sizeof(n));
      if (n > max_count) {
        return r.Corrupt("element " + std::to_string(i) + " has " + std::to_string(n) +
                         " links at level " + std::to_string(level) + ", at most " +
                         std::to_string(max_count));
      }
      for (size_t j = 0; j < n; ++j) {
        hnswlib::tableint link;
        std::memcpy(&link, list + sizeof(hnswlib::linklistsizeint) + j * sizeof(link),
                    sizeof(link));
        if (link >= cur) {
          return r.Corrupt("element " + std::to_string(i) + " links to element " +
                           std::to_string(link) + " of " + std::to_string(cur));
        }
      }
      return Status::Ok();
    };
    size_t deleted = 0;
    size_t live_seen = 0;
    g.label_lookup_.reserve(cur);
    for (size_t i = 0; i < cur; ++i) {
      int32_t level;
      DYNSPEC_RETURN_IF_ERROR(r.Pod(&level, "graph element level"));
      if (level < 0 || level > maxlevel) {
        return r.Corrupt("element " + std::to_string(i) + " has level " + std::to_string(level) +
                         ", graph top level is " + std::to_string(maxlevel));
      }
      g.element_levels_[i] = level;
      if (level > 0) {
        const char* upper = nullptr;
        DYNSPEC_RETURN_IF_ERROR(r.Span(static_cast<size_t>(level), spe, &upper, "graph links"));
        g.linkLists_[i] = static_cast<char*>(std::malloc(spe * static_cast<size_t>(level)));
        if (g.linkLists_[i] == nullptr) {
          g.element_levels_[i] = 0;
          return Status::Internal("out of memory loading partition snapshot");
        }
        std::memcpy(g.linkLists_[i], upper, spe * static_cast<size_t>(level));
        for (int l = 1; l <= level; ++l) {
          DYNSPEC_RETURN_IF_ERROR(check_links(g.linkLists_[i] + (l - 1) * spe, g.maxM_, i, l));
        }
      }
      const char* element = g.data_level0_memory_ + i * sdpe;
      DYNSPEC_RETURN_IF_ERROR(check_links(element, g.maxM0_, i, 0));
      const uint64_t label = g.getExternalLabel(static_cast<hnswlib::tableint>(i));
      if (!g.label_lookup_.emplace(label, static_cast<hnswlib::tableint>(i)).second) {
        return r.Corrupt("graph label " + std::to_string(label) + " appears twice");
      }
      if (g.isMarkedDeleted(static_cast<hnswlib::tableint>(i))) {
        ++deleted;
        if (slot_of_.contains(label)) {
          return r.Corrupt("graph element of live label " + std::to_string(label) +
                           " is marked deleted");
        }
        continue;
      }
      auto sit = slot_of_.find(label);
      if (sit == slot_of_.end()) {
        return r.Corrupt("graph holds label " + std::to_string(label) +
                         " that the partition does not");
      }
      if (std::memcmp(element + g.offsetData_, FlatData(sit->second), elem_bytes_) != 0) {
        return r.Corrupt("graph and flat vectors of label " + std::to_string(label) + " differ");
      }
      ++live_seen;
    }
    if (live_seen != live) {
      return r.Corrupt("graph holds " + std::to_string(live_seen) + " of " + std::to_string(live) +
                       " live labels");
    }
    if (cur > 0 && g.element_levels_[enterpoint] != maxlevel) {
      return r.Corrupt("graph entry point is not on the top level");
    }
    // A search at level l reads the level-l list of every neighbour it reaches there: each
    // upper-level link must lead to an element that has that level.
    for (size_t i = 0; i < cur; ++i) {
      for (int l = 1; l <= g.element_levels_[i]; ++l) {
        const char* list = g.linkLists_[i] + (l - 1) * spe;
        uint16_t n;
        std::memcpy(&n, list, sizeof(n));
        for (size_t j = 0; j < n; ++j) {
          hnswlib::tableint link;
          std::memcpy(&link, list + sizeof(hnswlib::linklistsizeint) + j * sizeof(link),
                      sizeof(link));
          if (g.element_levels_[link] < l) {
            return r.Corrupt("element " + std::to_string(i) + " links at level " +
                             std::to_string(l) + " to element " + std::to_string(link) +
                             ", which has level " + std::to_string(g.element_levels_[link]));
          }
        }
      }
    }
    uint64_t removed_count;
    DYNSPEC_RETURN_IF_ERROR(r.Pod(&removed_count, "removed labels"));
    if (removed_count != deleted) {
      return r.Corrupt(std::to_string(removed_count) + " removed labels for " +
                       std::to_string(deleted) + " deleted graph elements");
    }
    std::map<uint64_t, hnswlib::tableint> removed;
    for (uint64_t k = 0; k < removed_count; ++k) {
      uint64_t label;
      uint32_t id;
      DYNSPEC_RETURN_IF_ERROR(r.Pod(&label, "removed label"));
      DYNSPEC_RETURN_IF_ERROR(r.Pod(&id, "removed label"));
      auto lit = g.label_lookup_.find(label);
      if (lit == g.label_lookup_.end() || lit->second != id ||
          !g.isMarkedDeleted(static_cast<hnswlib::tableint>(id)) ||
          !removed.emplace(label, id).second) {
        return r.Corrupt("removed label " + std::to_string(label) +
                         " does not match a deleted graph element");
      }
    }
    if (version >= 3) {
      std::string level_state, update_state;
      DYNSPEC_RETURN_IF_ERROR(r.String(&level_state, 64, "level generator state"));
      DYNSPEC_RETURN_IF_ERROR(r.String(&update_state, 64, "update generator state"));
      if (!SetEngineState(level_state, &g.level_generator_) ||
          !SetEngineState(update_state, &g.update_probability_generator_)) {
        return r.Corrupt("unreadable random generator state");
      }
    }
    g.enterpoint_node_ = enterpoint;
    g.maxlevel_ = maxlevel;
    g.num_deleted_ = deleted;
    g.setEf(static_cast<size_t>(std::max(options_.hnsw_ef_search, 1)));
    graph_ = std::move(graph);
    graph_removed_ = std::move(removed);
    return Status::Ok();
  }

  const int dim_;
  const IndexOptions options_;
  const bool half_;          // vectors stored as binary16
  DotSpace space_;           // outlives graph_, which points into it
  const size_t elem_bytes_;  // one stored vector
  hnswlib::DISTFUNC<float> dist_;
  void* dist_param_;

  mutable std::mutex gate_;  // see ReadLock/WriteLock
  mutable std::shared_mutex mu_;
  std::vector<char> flat_;             // exact mode: slot-major stored vectors; graph mode: empty
  std::vector<uint64_t> slot_labels_;  // slot -> label
  std::unordered_map<uint64_t, size_t> slot_of_;  // label -> slot
  GraphPtr graph_;                                // null in exact mode
  // Labels marked deleted in graph_ (and not in the partition) -> their graph element.
  // An ordered map: the element a new label takes over is the one of the smallest removed
  // label, whatever order the removals came in or the map was rebuilt from a snapshot, so
  // replaying the same changes builds the same graph.
  std::map<uint64_t, hnswlib::tableint> graph_removed_;
  uint64_t applied_sequence_ = 0;  // the largest change sequence applied (see Partition)
  std::atomic<uint64_t> adds_linked_among_candidates_{0};
};

}  // namespace

std::unique_ptr<Partition> NewPartition(int dim, const IndexOptions& options) {
  assert(dim > 0 && "a partition needs a positive dimension");
  return std::make_unique<FlatHnswPartition>(std::max(dim, 1), options);
}

Result<std::unique_ptr<Partition>> LoadPartition(const std::string& path, int dim,
                                                 const IndexOptions& options) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    if (errno == ENOENT) return Status::NotFound("partition snapshot " + path + " does not exist");
    return ErrnoStatus("opening partition snapshot", path);
  }
  std::string bytes;
  {
    struct stat st;
    if (::fstat(fileno(f), &st) != 0) {
      std::fclose(f);
      return ErrnoStatus("reading partition snapshot", path);
    }
    try {
      bytes.resize(static_cast<size_t>(st.st_size));
    } catch (const std::exception& e) {
      std::fclose(f);
      return Status::Internal("partition snapshot " + path + ": " + e.what());
    }
    const size_t got = std::fread(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
    if (got != bytes.size()) return ErrnoStatus("reading partition snapshot", path);
  }
  SnapshotReader r(path, bytes.data(), bytes.size());
  if (bytes.size() < sizeof(kSnapshotMagic) ||
      std::memcmp(bytes.data(), kSnapshotMagic, sizeof(kSnapshotMagic)) != 0) {
    return r.Corrupt("not a partition snapshot (wrong magic bytes)");
  }
  if (bytes.size() < kSnapshotHeaderBytes + sizeof(uint32_t)) {
    return r.Corrupt("truncated (" + std::to_string(bytes.size()) + " bytes)");
  }
  uint32_t version;
  std::memcpy(&version, bytes.data() + sizeof(kSnapshotMagic), sizeof(version));
  if (version > kSnapshotVersion || version == 0) {
    return Status::FailedPrecondition("partition snapshot " + path + " has format version " +
                                      std::to_string(version) + "; this build reads version " +
                                      std::to_string(kSnapshotVersion));
  }
  const size_t body = bytes.size() - sizeof(uint32_t);
  uint32_t stored_crc;
  std::memcpy(&stored_crc, bytes.data() + body, sizeof(stored_crc));
  uLong crc = crc32(0L, Z_NULL, 0);
  for (size_t done = 0; done < body;) {
    const size_t chunk = std::min<size_t>(body - done, size_t{1} << 30);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data() + done), static_cast<uInt>(chunk));
    done += chunk;
  }
  if (static_cast<uint32_t>(crc) != stored_crc) {
    return r.Corrupt("checksum mismatch (damaged or truncated file)");
  }
  SnapshotReader body_reader(path, bytes.data(), body);
  char magic[8];
  uint32_t file_dim;
  uint64_t count, exact_max;
  int32_t m, efc, ef;
  uint8_t has_graph;
  DYNSPEC_RETURN_IF_ERROR(body_reader.Pod(&magic, "magic"));
  DYNSPEC_RETURN_IF_ERROR(body_reader.Pod(&version, "version"));
  DYNSPEC_RETURN_IF_ERROR(body_reader.Pod(&file_dim, "dimension"));
  DYNSPEC_RETURN_IF_ERROR(body_reader.Pod(&count, "count"));
  DYNSPEC_RETURN_IF_ERROR(body_reader.Pod(&m, "settings"));
  DYNSPEC_RETURN_IF_ERROR(body_reader.Pod(&efc, "settings"));
  DYNSPEC_RETURN_IF_ERROR(body_reader.Pod(&ef, "settings"));
  DYNSPEC_RETURN_IF_ERROR(body_reader.Pod(&exact_max, "settings"));
  DYNSPEC_RETURN_IF_ERROR(body_reader.Pod(&has_graph, "graph flag"));
  if (static_cast<int64_t>(file_dim) != dim) {
    return Status::FailedPrecondition("partition snapshot " + path + " has dimension " +
                                      std::to_string(file_dim) + ", expected " +
                                      std::to_string(dim));
  }
  if (m != options.hnsw_m || efc != options.hnsw_ef_construction ||
      exact_max != options.exact_search_max_items) {
    return Status::FailedPrecondition(
        "partition snapshot " + path + " was built with hnsw_m " + std::to_string(m) +
        ", hnsw_ef_construction " + std::to_string(efc) + ", exact_search_max_items " +
        std::to_string(exact_max) + "; the engine has " + std::to_string(options.hnsw_m) + ", " +
        std::to_string(options.hnsw_ef_construction) + ", " +
        std::to_string(options.exact_search_max_items));
  }
  if (has_graph > 1) return body_reader.Corrupt("bad graph flag");
  uint8_t storage = static_cast<uint8_t>(VectorStorage::kFloat32);
  if (version >= 2) {
    DYNSPEC_RETURN_IF_ERROR(body_reader.Pod(&storage, "vector storage"));
    if (storage > static_cast<uint8_t>(VectorStorage::kFloat16)) {
      return body_reader.Corrupt("unknown vector storage " + std::to_string(storage));
    }
  }
  uint64_t applied_sequence = 0;
  if (version >= 3) DYNSPEC_RETURN_IF_ERROR(body_reader.Pod(&applied_sequence, "sequence"));
  if (storage != static_cast<uint8_t>(options.vector_storage)) {
    return Status::FailedPrecondition(
        "partition snapshot " + path + " stores " +
        (storage == static_cast<uint8_t>(VectorStorage::kFloat16) ? "float16" : "float32") +
        " vectors; the engine's index.vector_storage differs");
  }
  if (dim <= 0) return Status::InvalidArgument("a partition needs a positive dimension");
  auto partition = std::make_unique<FlatHnswPartition>(dim, options);
  try {
    DYNSPEC_RETURN_IF_ERROR(
        partition->ReadSnapshot(body_reader, version, count, has_graph == 1, applied_sequence));
  } catch (const std::exception& e) {
    return Status::Internal("loading partition snapshot " + path + ": " + e.what());
  }
  if (body_reader.remaining() != 0) {
    return body_reader.Corrupt(std::to_string(body_reader.remaining()) + " trailing bytes");
  }
  return std::unique_ptr<Partition>(std::move(partition));
}

struct RawHnsw::Impl {
  Impl(int dim, size_t capacity, int m, int ef_construction, RawHnsw::Kernel kernel)
      : packaged(static_cast<size_t>(dim)),
        own(static_cast<size_t>(dim), false),
        index(kernel == RawHnsw::Kernel::kHnswlib
                  ? static_cast<hnswlib::SpaceInterface<float>*>(&packaged)
                  : static_cast<hnswlib::SpaceInterface<float>*>(&own),
              capacity, static_cast<size_t>(m), static_cast<size_t>(ef_construction)) {
    // The same memory advice as partitions, so that a comparison still isolates what the
    // engine adds around the same graph code.
    if (kernel == RawHnsw::Kernel::kDynspec) AdviseHugePages(index);
  }
  hnswlib::InnerProductSpace packaged;
  DotSpace own;
  hnswlib::HierarchicalNSW<float> index;
};

RawHnsw::RawHnsw(int dim, size_t capacity, int m, int ef_construction, Kernel kernel)
    : impl_(std::make_unique<Impl>(dim, capacity, m, ef_construction, kernel)) {}
RawHnsw::~RawHnsw() = default;
void RawHnsw::Add(const float* vector, uint64_t label) { impl_->index.addPoint(vector, label); }
void RawHnsw::SetEf(int ef) { impl_->index.setEf(ef); }
std::vector<uint64_t> RawHnsw::Search(const float* query, size_t k) const {
  auto heap = impl_->index.searchKnn(query, k);
  std::vector<uint64_t> out(heap.size());
  for (size_t i = heap.size(); i-- > 0;) {
    out[i] = heap.top().second;
    heap.pop();
  }
  return out;
}

}  // namespace dynspec

#if defined(__SANITIZE_THREAD__)
#define DYNSPEC_INDEX_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define DYNSPEC_INDEX_TSAN 1
#endif
#endif
#ifdef DYNSPEC_INDEX_TSAN
// ThreadSanitizer reads this at startup (any binary that links the index layer). It hides only
// lock-order reports whose stacks run through hnswlib's HierarchicalNSW; see the notes at the
// top of this file. Data-race reports are not suppressed.
extern "C" const char* __tsan_default_suppressions() {
  return "deadlock:hnswlib::HierarchicalNSW\n";
}
#endif
