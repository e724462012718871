// Partition implementation: a flat array of vectors, plus an hnswlib graph for large partitions.
//
// Storage. Every live vector is kept in one contiguous float array (slot-major, swap-remove
// on delete) with a label -> slot map. The flat array is the source of truth: it serves the
// exact scan, and the HNSW graph is (re)built from it.
//
// Modes. While size() <= exact_search_max_items a search is a flat scan; when an Add takes
// the partition past that, an hnswlib::HierarchicalNSW<float> over hnswlib::InnerProductSpace
// is built from the flat array and kept in step with every later write. If removals shrink
// the partition to exact_search_max_items / 2 or less, the graph is dropped and searches are
// exact again (the factor 2 keeps a partition near the threshold from rebuilding on every
// add/remove pair). The flat array is kept in both modes: it is the source of truth for
// builds and for the fallback after a failed graph write.
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
// - Similarity: InnerProductSpace distance is 1 - dot, so similarity = 1 - distance. The exact
//   scan uses the same SIMD distance function, so both modes report the same values.
// - Remove is markDelete. searchKnn skips marked elements when it collects results
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
// - Capacity grows by doubling with resizeIndex (writers hold the lock exclusively).
// - searchKnn is const and safe for concurrent readers while no writer runs (it takes only the
//   visited-list pool's mutex); ef is a member, so it is set once when the graph is built,
//   never per query.
// - hnswlib throws std::exception (runtime_error, bad_alloc). Every call into it is wrapped;
//   on an exception the graph may be half-modified, so it is dropped (searches fall back to
//   the exact scan; the next Add past the threshold rebuilds it), the flat array is restored
//   to its state before the call, and the call returns Internal. Contents never change on a
//   failed call.
// - hnswlib.h defines non-inline functions (cpuid, AVXCapable, ...) and global function
//   pointers, so it must be included by this one translation unit only. With -mavx the
//   InnerProductSpace constructor rewrites those globals (a race with concurrent searches);
//   the default x86-64 flags (SSE only) compile that code out.
// - Its writers take internal mutexes in an order ThreadSanitizer reports as a potential
//   deadlock (link_list_locks_[new] -> global in addPoint, global -> link_list_locks_[n] in
//   searchBaseLayer). Here only one thread at a time can be inside an hnswlib writer (they run
//   under the exclusive lock and searchKnn takes none of those mutexes), so it cannot deadlock;
//   the report is suppressed below for TSan builds.

#include "index/partition.h"

#include "index/raw_hnsw.h"

// hnswlib 0.6.2's SSE prefetch hints read one link past a full neighbour list (searchBaseLayer,
// `*(datal + j + 1)`): harmless in practice (the value is only a prefetch address and the read
// stays inside malloc's rounding), but AddressSanitizer reports it. ASan builds use the scalar
// code, which has no prefetches.
#if defined(__SANITIZE_ADDRESS__) && !defined(NO_MANUAL_VECTORIZATION)
#define NO_MANUAL_VECTORIZATION
#endif
#include <hnswlib/hnswlib.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>

namespace dynspec {
namespace {

static_assert(sizeof(hnswlib::labeltype) == sizeof(uint64_t), "labels are 64-bit");

using Graph = hnswlib::HierarchicalNSW<float>;

constexpr size_t kMinGraphCapacity = 64;

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

class FlatHnswPartition final : public Partition {
 public:
  FlatHnswPartition(int dim, const IndexOptions& options)
      : dim_(dim),
        options_(options),
        space_(static_cast<size_t>(dim)),
        dist_(space_.get_dist_func()),
        dist_param_(space_.get_dist_func_param()) {}

  Status Add(uint64_t label, std::span<const float> vector) override {
    DYNSPEC_RETURN_IF_ERROR(CheckVector(vector, dim_, LabelWhat(label)));
    auto lock = WriteLock();
    if (slot_of_.contains(label)) {
      return Status::AlreadyExists("label " + std::to_string(label) + " is already indexed");
    }
    const size_t old_size = slot_labels_.size();
    try {
      if (graph_) GraphAdd(label, vector);
      AppendSlot(label, vector);
      if (!graph_ && slot_labels_.size() > options_.exact_search_max_items) BuildGraph();
      return Status::Ok();
    } catch (const std::exception& e) {
      Rollback(old_size, label);
      return InternalFrom("add", e);
    } catch (...) {
      Rollback(old_size, label);
      return Status::Internal("index add: unknown exception");
    }
  }

  Status Update(uint64_t label, std::span<const float> vector) override {
    DYNSPEC_RETURN_IF_ERROR(CheckVector(vector, dim_, LabelWhat(label)));
    auto lock = WriteLock();
    auto it = slot_of_.find(label);
    if (it == slot_of_.end()) {
      return Status::NotFound("label " + std::to_string(label) + " is not indexed");
    }
    try {
      if (graph_) GraphUpdate(graph_->label_lookup_.at(label), vector);
    } catch (const std::exception& e) {
      DropGraph();
      return InternalFrom("update", e);
    } catch (...) {
      DropGraph();
      return Status::Internal("index update: unknown exception");
    }
    std::memcpy(SlotData(it->second), vector.data(), vector.size() * sizeof(float));
    return Status::Ok();
  }

  Status Remove(uint64_t label) override {
    auto lock = WriteLock();
    auto it = slot_of_.find(label);
    if (it == slot_of_.end()) {
      return Status::NotFound("label " + std::to_string(label) + " is not indexed");
    }
    try {
      if (graph_) GraphRemove(label);
    } catch (const std::exception& e) {
      DropGraph();
      return InternalFrom("remove", e);
    } catch (...) {
      DropGraph();
      return Status::Internal("index remove: unknown exception");
    }
    RemoveSlot(it);
    // A partition that has shrunk well below the threshold is cheaper and exact as a flat scan.
    if (graph_ && slot_labels_.size() <= options_.exact_search_max_items / 2) DropGraph();
    return Status::Ok();
  }

  bool Contains(uint64_t label) const override {
    auto lock = ReadLock();
    return slot_of_.contains(label);
  }

  Result<std::vector<Neighbour>> Search(std::span<const float> query, size_t k) const override {
    DYNSPEC_RETURN_IF_ERROR(CheckVector(query, dim_, "query"));
    auto lock = ReadLock();
    try {
      const size_t n = slot_labels_.size();
      k = std::min(k, n);
      if (k == 0) return std::vector<Neighbour>{};
      return graph_ ? GraphSearch(query, k) : ExactSearch(query, k);
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

  int dim() const override { return dim_; }

 private:
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

  float* SlotData(size_t slot) { return vectors_.data() + slot * static_cast<size_t>(dim_); }
  const float* SlotData(size_t slot) const {
    return vectors_.data() + slot * static_cast<size_t>(dim_);
  }

  float Similarity(const float* a, const float* b) const { return 1.0f - dist_(a, b, dist_param_); }

  // --- flat storage -------------------------------------------------------------------

  void AppendSlot(uint64_t label, std::span<const float> vector) {
    const size_t slot = slot_labels_.size();
    slot_of_.emplace(label, slot);
    slot_labels_.push_back(label);
    vectors_.insert(vectors_.end(), vector.begin(), vector.end());
  }

  // Undoes a partly done Add: the flat array goes back to `old_size` slots and the graph,
  // which may hold the label or be half-modified, is dropped. No-throw.
  void Rollback(size_t old_size, uint64_t label) noexcept {
    if (graph_) DropGraph();
    if (slot_labels_.size() > old_size) slot_labels_.resize(old_size);
    if (vectors_.size() > old_size * static_cast<size_t>(dim_)) {
      vectors_.resize(old_size * static_cast<size_t>(dim_));
    }
    auto it = slot_of_.find(label);
    if (it != slot_of_.end() && it->second >= old_size) slot_of_.erase(it);
  }

  // Swap-remove: the last slot moves into the freed one. No-throw.
  void RemoveSlot(std::unordered_map<uint64_t, size_t>::iterator it) noexcept {
    const size_t slot = it->second;
    const size_t last = slot_labels_.size() - 1;
    if (slot != last) {
      const uint64_t moved = slot_labels_[last];
      std::memcpy(SlotData(slot), SlotData(last), static_cast<size_t>(dim_) * sizeof(float));
      slot_labels_[slot] = moved;
      slot_of_.find(moved)->second = slot;
    }
    slot_of_.erase(it);
    slot_labels_.pop_back();
    vectors_.resize(last * static_cast<size_t>(dim_));
  }

  std::vector<Neighbour> ExactSearch(std::span<const float> query, size_t k) const {
    const size_t n = slot_labels_.size();
    std::vector<Neighbour> all(n);
    for (size_t i = 0; i < n; ++i) {
      all[i] = Neighbour{slot_labels_[i], Similarity(query.data(), SlotData(i))};
    }
    std::partial_sort(all.begin(), all.begin() + static_cast<ptrdiff_t>(k), all.end(), Better);
    all.resize(k);
    return all;
  }

  // --- graph ----------------------------------------------------------------------------

  // Builds a graph over every live vector and installs it; on an exception nothing changes.
  void BuildGraph() {
    const size_t n = slot_labels_.size();
    const size_t m = static_cast<size_t>(std::clamp(options_.hnsw_m, 2, 10000));
    const size_t ef_construction = static_cast<size_t>(std::max(options_.hnsw_ef_construction, 1));
    auto graph =
        std::make_unique<Graph>(&space_, std::max(kMinGraphCapacity, 2 * n), m, ef_construction);
    graph->setEf(static_cast<size_t>(std::max(options_.hnsw_ef_search, 1)));
    for (size_t i = 0; i < n; ++i) graph->addPoint(SlotData(i), slot_labels_[i]);
    graph_ = std::move(graph);
    graph_removed_.clear();
  }

  void DropGraph() noexcept {
    graph_.reset();
    graph_removed_.clear();
  }

  // Adds a label the partition does not hold to the graph.
  void GraphAdd(uint64_t label, std::span<const float> vector) {
    if (auto it = graph_removed_.find(label); it != graph_removed_.end()) {
      // Re-adding a removed label: unmark its element and give it the new vector.
      const hnswlib::tableint id = it->second;
      graph_->unmarkDeletedInternal(id);
      graph_removed_.erase(it);
      GraphUpdate(id, vector);
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
      GraphUpdate(id, vector);
      return;
    }
    if (graph_->cur_element_count >= graph_->max_elements_) {
      graph_->resizeIndex(2 * graph_->max_elements_);
    }
    graph_->addPoint(vector.data(), label);
  }

  // Gives graph element `id` a new vector and relinks it (Update, re-add, reused element).
  void GraphUpdate(hnswlib::tableint id, std::span<const float> vector) {
    graph_->updatePoint(vector.data(), id, kUpdateNeighbourShare);
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

  std::vector<Neighbour> GraphSearch(std::span<const float> query, size_t k) const {
    auto heap = graph_->searchKnn(query.data(), k);  // max-heap on distance
    std::vector<Neighbour> out;
    out.reserve(heap.size());
    while (!heap.empty()) {
      out.push_back(Neighbour{heap.top().second, 1.0f - heap.top().first});
      heap.pop();
    }
    std::sort(out.begin(), out.end(), Better);
    return out;
  }

  const int dim_;
  const IndexOptions options_;
  hnswlib::InnerProductSpace space_;  // outlives graph_, which points into it
  hnswlib::DISTFUNC<float> dist_;
  void* dist_param_;

  mutable std::mutex gate_;  // see ReadLock/WriteLock
  mutable std::shared_mutex mu_;
  std::vector<float> vectors_;                    // slot-major, slot_labels_.size() * dim_
  std::vector<uint64_t> slot_labels_;             // slot -> label
  std::unordered_map<uint64_t, size_t> slot_of_;  // label -> slot
  std::unique_ptr<Graph> graph_;                  // null in exact mode
  // Labels marked deleted in graph_ (and not in the partition) -> their graph element.
  std::unordered_map<uint64_t, hnswlib::tableint> graph_removed_;
};

}  // namespace

std::unique_ptr<Partition> NewPartition(int dim, const IndexOptions& options) {
  assert(dim > 0 && "a partition needs a positive dimension");
  return std::make_unique<FlatHnswPartition>(std::max(dim, 1), options);
}

struct RawHnsw::Impl {
  Impl(int dim, size_t capacity, int m, int ef_construction)
      : space(dim), index(&space, capacity, m, ef_construction) {}
  hnswlib::InnerProductSpace space;
  hnswlib::HierarchicalNSW<float> index;
};

RawHnsw::RawHnsw(int dim, size_t capacity, int m, int ef_construction)
    : impl_(std::make_unique<Impl>(dim, capacity, m, ef_construction)) {}
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
