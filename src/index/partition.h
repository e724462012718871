// Partition: the vector index of the items served in one cluster.
//
// Vectors are unit length and similarity is the inner product (= cosine). They are stored as
// float32, or as binary16 with IndexOptions::vector_storage = kFloat16 (queries too), which
// halves their memory at about 1e-3 error in each similarity. Labels are the
// engine's dense item ids. Small partitions are searched exactly by a flat scan; once a
// partition grows past IndexOptions::exact_search_max_items it builds an HNSW graph
// (hnswlib) and searches it approximately.
//
// Thread safety: all methods may be called concurrently; searches share a lock, writes
// take it exclusively.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "dynspec/options.h"
#include "dynspec/status.h"

namespace dynspec {

struct Neighbour {
  uint64_t label = 0;
  float similarity = 0;  // inner product with the query
};

// A label a graph search found, with the graph element that held it (see Partition::Search
// and Add). The element is an opaque handle: Add checks that it still holds the label, so
// that it need not look the label up (a cold hash probe per candidate).
struct LinkCandidate {
  uint64_t label = 0;
  uint32_t element = 0;
  bool operator==(const LinkCandidate&) const = default;
};

class Partition {
 public:
  virtual ~Partition() = default;
  // The writers take an optional change sequence (> 0): the change's place in the engine's
  // log of partition changes. The partition remembers the largest one applied
  // (AppliedSequence) and its snapshot stores it, so a restart replays exactly the logged
  // changes the snapshot does not hold. Replaying the same changes in the same order on the
  // same snapshot builds the same graph (hnswlib's random generators are in the snapshot).
  //
  // Adds a new label; AlreadyExists if present. Wrong dimension or non-finite values are
  // InvalidArgument. The vector is stored as given (the caller normalizes).
  //
  // `link_candidates`: what a Search of this same vector returned as its link candidates
  // (see Search). In graph mode an element that enters only the graph's bottom layer (15 in
  // 16 with hnsw_m = 16) takes its links from among them instead of searching the graph for
  // hnsw_ef_construction candidates, the search that is about three quarters of an insert's
  // time (docs/performance.md). A candidate whose element no longer holds its label live is
  // skipped. With none left, for an element that also enters upper layers, or for a label
  // that takes over a removed label's element, Add searches as it does without them. Which
  // path runs depends only on the partition's state and the arguments (the level is drawn
  // the same way either way), so replaying the same Adds builds the same graph.
  virtual Status Add(uint64_t label, std::span<const float> vector, uint64_t sequence = 0,
                     std::span<const LinkCandidate> link_candidates = {}) = 0;
  // Replaces the vector of an existing label; NotFound if absent.
  virtual Status Update(uint64_t label, std::span<const float> vector, uint64_t sequence = 0) = 0;
  virtual Status Remove(uint64_t label, uint64_t sequence = 0) = 0;
  // The largest change sequence applied by a successful Add, Update or Remove (or restored
  // from the snapshot); 0 if none.
  virtual uint64_t AppliedSequence() const = 0;
  // Records that the partition holds every change up to `sequence` (it was rebuilt from the
  // store, which reflects all of them); AppliedSequence never decreases.
  virtual void MarkApplied(uint64_t sequence) = 0;
  virtual bool Contains(uint64_t label) const = 0;
  // Up to k labels by decreasing similarity. Wrong dimension is InvalidArgument.
  //
  // With `link_candidates`, a graph partition whose hnsw_ef_search is at least its
  // hnsw_ef_construction also fills it with the hnsw_ef_construction nearest labels its
  // search found (with their elements), nearest first: at least as good a set as the one an insert
  // of the query would search for itself, so an Add of the query's vector can link among them (see
  // Add). The k results are the same as without (but for the order among exactly equal similarities
  // at the k-th place). It is left empty by an exact-mode partition and when ef_search is below
  // ef_construction (a wider search would cost the query more than the insert saves).
  virtual Result<std::vector<Neighbour>> Search(
      std::span<const float> query, size_t k,
      std::vector<LinkCandidate>* link_candidates = nullptr) const = 0;
  virtual size_t size() const = 0;
  // How many Adds took their links from given candidates (for stats and tests).
  virtual uint64_t AddsLinkedAmongCandidates() const = 0;
  virtual int dim() const = 0;
  // Every label held, in no particular order.
  virtual std::vector<uint64_t> Labels() const = 0;
  // The stored vector of `label`; NotFound if absent.
  virtual Result<std::vector<float>> GetVector(uint64_t label) const = 0;

  // Whether `label` is held with a vector equal to `vector` in the stored precision (so a
  // float16 partition matches the float32 vector it was given). False when absent.
  virtual bool HasVector(uint64_t label, std::span<const float> vector) const = 0;
  // Bytes this partition holds: its vectors and graph exactly, its hash maps estimated (48
  // bytes an entry plus the bucket array). For memory reports; takes the shared lock.
  virtual size_t MemoryBytes() const = 0;

  // Writes a snapshot of the whole partition (flat vectors, labels and the HNSW graph when one
  // is built) to `path`, atomically: a temporary file next to it is written, fsynced and
  // renamed over `path`, then the directory is fsynced. A reader sees the old file or the new
  // one, never a torn one. Takes the shared lock while it serializes (searches go on; writers
  // wait), and none for the fsync. Format: see partition.cc (SnapshotFormat).
  // `saved_sequence`, when given, receives the AppliedSequence the snapshot holds.
  virtual Status Save(const std::string& path, uint64_t* saved_sequence = nullptr) const = 0;
};

std::unique_ptr<Partition> NewPartition(int dim, const IndexOptions& options);

// Reads a snapshot written by Partition::Save. Nothing in the file is trusted: NotFound when
// `path` does not exist; Corruption for a short or damaged file (wrong magic, checksum
// mismatch, sizes or graph links out of range, graph and flat vectors disagreeing);
// FailedPrecondition for a newer format version, another dimension, or other index
// construction settings (hnsw_m, hnsw_ef_construction, exact_search_max_items) than
// `options`. hnsw_ef_search is taken from `options`. On success the partition searches
// exactly as the saved one did (the graph is restored element for element).
Result<std::unique_ptr<Partition>> LoadPartition(const std::string& path, int dim,
                                                 const IndexOptions& options);

}  // namespace dynspec
