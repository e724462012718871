// Internal to the store layer: the on-disk layout of the durable (RocksDB) store and its
// record encoding. The Store itself is reached through OpenDurableStore
// (include/dynspec/store.h); this header exposes the encoding so tests can build damaged
// records and benchmarks can size writes. docs/storage.md describes the same layout.
//
// Key layout: one RocksDB database (default column family), one key prefix per record kind.
//
//   i/<item id>                  ItemRecord without its vector (format 5; formats 1 to 4
//                                held the vector inline)
//   v/<item id>                  the item's vector (format 5): written when the item is
//                                ingested or re-embedded, not by feedback
//   p/<provider id>              ProviderRecord
//   c/<cluster id, 4 bytes BE>   ClusterRecord (big-endian so clusters iterate in id order)
//   e/<event id>                 a seen feedback event id and when it was seen (format 4)
//   d/<event id>                 DecisionRecord: a ranking decision awaiting feedback
//   l/<provider id>              ProviderLossRecord: the provider's row of the shadow-
//                                evaluation loss matrix (format 3)
//   h/<provider id>              ReclusterStreakRecord: its re-clustering hysteresis (format 3)
//   o/<cluster id, 4 bytes BE><sequence, 8 bytes BE>
//                                PartitionOpRecord: a change of the cluster's partition not
//                                yet in its snapshot (format 5), in replay order
//   m/<name>                     engine metadata (StoreBatch::put_meta), value = raw bytes
//   s/format_version             the store's own format marker: ASCII decimal, "5" today;
//                                reserved for the store, never written by a StoreBatch
//
// Ids are stored as given (any bytes); the prefixes keep kinds apart since every key starts
// with exactly one of them.
//
// Value envelope (every key but the marker):
//
//   [1 byte record format version][payload][4 bytes checksum, little-endian]
//
// The checksum covers the version byte and the payload: CRC32 (zlib) in version 1 records,
// the low 32 bits of XXH3-64 (xxHash) from version 2 on. Version 2 changed nothing else, so
// both are read and a directory may hold both. The envelope is fixed from version 2 on; only
// the payload layout may change. A value whose checksum does not match is Corruption; a
// version above kRecordFormatVersion is FailedPrecondition (written by a newer build). Both
// name the key.
//
// Payload primitives, all little-endian, written by hand (no serialization library: the
// records are few and fixed, and the format stays entirely under our control):
//   varint    unsigned LEB128 (lengths, counts, labels, versions, cluster ids)
//   string    varint length + bytes
//   f32       4 bytes: the raw IEEE-754 bits, so models reload bit-identical
//   f64       8 bytes: the raw IEEE-754 bits
//   f32s      varint count + count * f32;  f64s likewise
//   model     f32s weights, f32s sq_grad, f64s head_counts, f64 evidence
//
//   ItemRecord      string id, string provider, varint label, u8 served, varint version,
//                   f32s embedding (empty since format 5: the vector is in v/), model
//   vector          f32s
//   PartitionOp     u8 kind (1 add, 2 update, 3 remove), varint label, f32s vector; from
//                   record format 3 on, varint n + n * (varint label, varint element): the
//                   link candidates
//   ProviderRecord  string id, varint cluster
//   ClusterRecord   varint id, model
//   DecisionRecord  string id, f64 created, f64 expires (unix ms), f32s dense context,
//                   varint n + n * (string name, f32 value) sparse context, varint n +
//                   n * string candidates, f64s scores, f64s probabilities, varint n +
//                   n * varint versions, varint n + n * varint chosen, f64s propensities,
//                   string answered (one byte per position), f64s rewards, varint n + n *
//                   (varint m + m * (string item id, f64 weight)) blends
//   event           varint seen (unix ms, clamped at 0); formats 1 to 3 stored nothing
//   ProviderLoss    string provider, varint n + n * (varint cluster, f64 loss_sum, f64 count)
//   ReclusterStreak string provider, varint target cluster, varint runs
//
// A payload must be consumed exactly; ids inside a record must equal the id in its key.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dynspec/status.h"
#include "dynspec/store.h"

namespace rocksdb {
struct Options;
}

namespace dynspec::store_format {

// Sets the memtable of the durable store on `options`: a vector memtable, since the store
// is written and never searched once it has opened (docs/storage.md, The memtable).
// bench_store's raw row "the store's memtable" applies it too, so it measures this choice.
void UseWriteOnlyMemtable(rocksdb::Options* options);

// The layout of the whole directory (key set, prefixes, marker). Stored under kMarkerKey.
// Version 2 added the decision records (d/), version 3 the loss rows (l/) and re-clustering
// streaks (h/), version 4 the seen time in every event record (for retention). An older
// directory is upgraded on open in one atomic WriteBatch: every event record is rewritten
// with the time of the upgrade as its seen time (the real one was never stored), and the
// marker moves to 4, so a crash leaves either the old directory or the upgraded one.
// Version 5 moved item vectors out of the item records (v/) and added the partition change
// log (o/). An older directory is upgraded on open in batches of items (each item's two
// records in one batch; records of either layout read correctly, so a crash part way is
// resumed by the next open), then the marker moves to 5.
inline constexpr int kStoreFormatVersion = 5;
// The layout of one value's payload. Stored in the first byte of every value. Version 3
// added the link candidates to the partition changes (PartitionOp); the other payloads are
// as in version 2, and version 2 partition changes read as having none.
inline constexpr uint8_t kRecordFormatVersion = 3;

inline constexpr std::string_view kItemPrefix = "i/";
inline constexpr std::string_view kProviderPrefix = "p/";
inline constexpr std::string_view kClusterPrefix = "c/";
inline constexpr std::string_view kEventPrefix = "e/";
inline constexpr std::string_view kMetaPrefix = "m/";
inline constexpr std::string_view kDecisionPrefix = "d/";
inline constexpr std::string_view kProviderLossPrefix = "l/";
inline constexpr std::string_view kStreakPrefix = "h/";
inline constexpr std::string_view kVectorPrefix = "v/";
inline constexpr std::string_view kPartitionOpPrefix = "o/";
inline constexpr std::string_view kMarkerKey = "s/format_version";

std::string ItemKey(std::string_view id);
std::string ProviderKey(std::string_view id);
std::string ClusterKey(ClusterId id);
std::string EventKey(std::string_view id);
std::string MetaKey(std::string_view name);
std::string DecisionKey(std::string_view id);
std::string ProviderLossKey(std::string_view provider);
std::string StreakKey(std::string_view provider);
std::string VectorKey(std::string_view item_id);
std::string PartitionOpKey(ClusterId cluster, uint64_t sequence);

// A key as it appears in error messages: printable ASCII kept, other bytes as \xNN.
std::string PrintableKey(std::string_view key);

// Wraps a payload in the envelope with the given record format version (tests use a
// version above kRecordFormatVersion to simulate a newer writer).
std::string Seal(std::string_view payload, uint8_t version = kRecordFormatVersion);
// Checks the envelope of `value` stored under `key` and points `payload` into it.
Status Unseal(std::string_view key, std::string_view value, std::string_view* payload);

// An upper bound of the bytes a model takes in a record (for reserving buffers).
size_t ModelBytes(const ModelState& m);

// The item record without its vector (r.embedding is not written; see EncodeVector).
std::string EncodeItem(const ItemRecord& r);
std::string EncodeVector(const std::vector<float>& v);
std::string EncodePartitionOp(const PartitionOpRecord& r);
std::string EncodeProvider(const ProviderRecord& r);
std::string EncodeCluster(const ClusterRecord& r);
std::string EncodeEvent(int64_t seen_unix_ms);
// An event record seen now (the size of a typical one, for benchmarks).
std::string EncodeEvent();
std::string EncodeMeta(std::string_view value);
std::string EncodeDecision(const DecisionRecord& r);
std::string EncodeProviderLoss(const ProviderLossRecord& r);
std::string EncodeStreak(const ReclusterStreakRecord& r);

// Each checks the envelope and the payload of a value stored under `key` (the full key,
// prefix included) and fills `out`; Corruption or FailedPrecondition naming the key
// otherwise.
// Fills out->embedding only from a record of format 4 or older (which held it inline).
Status DecodeItem(std::string_view key, std::string_view value, ItemRecord* out);
Status DecodeVector(std::string_view key, std::string_view value, std::vector<float>* out);
// Also checks the kind, and that adds and updates carry a vector and removes none.
Status DecodePartitionOp(std::string_view key, std::string_view value, PartitionOpRecord* out);
Status DecodeProvider(std::string_view key, std::string_view value, ProviderRecord* out);
Status DecodeCluster(std::string_view key, std::string_view value, ClusterRecord* out);
Status DecodeEvent(std::string_view key, std::string_view value, int64_t* seen_unix_ms);
Status DecodeMeta(std::string_view key, std::string_view value, std::string* out);
// Also checks that the per-candidate and per-position arrays agree in length and that every
// chosen index names a candidate.
Status DecodeDecision(std::string_view key, std::string_view value, DecisionRecord* out);
// Also checks that no cluster appears twice and that every count is finite and >= 0.
Status DecodeProviderLoss(std::string_view key, std::string_view value, ProviderLossRecord* out);
Status DecodeStreak(std::string_view key, std::string_view value, ReclusterStreakRecord* out);

}  // namespace dynspec::store_format
