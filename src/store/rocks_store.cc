// The durable Store on RocksDB: one WriteBatch per StoreBatch, the record encoding of
// rocks_store.h, a format marker, optional group commit, and checkpoint backups.
// See docs/storage.md for the layout and the durability contract.
#include "store/rocks_store.h"

#include <rocksdb/db.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/options.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>
#include <xxhash.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <limits>
#include <mutex>
#include <new>
#include <set>
#include <thread>

#include "store/batch.h"

namespace dynspec {
namespace store_format {
namespace {

// ---- writing ---------------------------------------------------------------------------

void PutVarint(std::string* s, uint64_t v) {
  while (v >= 0x80) {
    s->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  s->push_back(static_cast<char>(v));
}

// Records are little-endian. On little-endian hosts (every one this builds for today) whole
// arrays are copied at once: encoding a model byte by byte was 11% of the durable feedback
// path's cycles (perf, bench_store). Other hosts take the portable loops.
constexpr bool kLittleEndianHost = std::endian::native == std::endian::little;

template <typename Word>
void PutWords(std::string* s, const Word* words, size_t n) {
  if constexpr (kLittleEndianHost) {
    s->append(reinterpret_cast<const char*>(words), n * sizeof(Word));
  } else {
    for (size_t k = 0; k < n; ++k) {
      for (size_t i = 0; i < sizeof(Word); ++i) {
        s->push_back(static_cast<char>((words[k] >> (8 * i)) & 0xFF));
      }
    }
  }
}

void PutFixed32(std::string* s, uint32_t v) { PutWords(s, &v, 1); }

void PutFixed64(std::string* s, uint64_t v) { PutWords(s, &v, 1); }

void PutString(std::string* s, std::string_view v) {
  PutVarint(s, v.size());
  s->append(v.data(), v.size());
}

void PutF32s(std::string* s, const std::vector<float>& v) {
  static_assert(sizeof(float) == sizeof(uint32_t) && std::numeric_limits<float>::is_iec559);
  PutVarint(s, v.size());
  PutWords(s, reinterpret_cast<const uint32_t*>(v.data()), v.size());
}

void PutF64(std::string* s, double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  PutFixed64(s, bits);
}

void PutF64s(std::string* s, const std::vector<double>& v) {
  static_assert(sizeof(double) == sizeof(uint64_t) && std::numeric_limits<double>::is_iec559);
  PutVarint(s, v.size());
  PutWords(s, reinterpret_cast<const uint64_t*>(v.data()), v.size());
}

void PutModel(std::string* s, const ModelState& m) {
  PutF32s(s, m.weights);
  PutF32s(s, m.sq_grad);
  PutF64s(s, m.head_counts);
  PutF64(s, m.evidence);
}

// The envelope's checksum of `data` (version byte and payload) for a record of `version`:
// CRC32 (zlib) for version 1, the low 32 bits of XXH3-64 from version 2 on. XXH3 runs at
// ~6 GB/s here against zlib's ~2 GB/s (measured on 5 KB records), and checksumming two
// models per feedback event showed at 2-4% of the durable feedback path in perf.
uint32_t Checksum(uint8_t version, std::string_view data) {
  if (version == 1) {
    uLong crc = crc32_z(0L, Z_NULL, 0);
    crc = crc32_z(crc, reinterpret_cast<const Bytef*>(data.data()), data.size());
    return static_cast<uint32_t>(crc);
  }
  return static_cast<uint32_t>(XXH3_64bits(data.data(), data.size()));
}

// Encoders build a record in one buffer, so it is never copied once encoded: RecordStart()
// is the version byte, the encoder appends the payload, Sealed appends the checksum.
std::string RecordStart(size_t payload_bytes = 0) {
  std::string r;
  r.reserve(1 + payload_bytes + 4);
  r.push_back(static_cast<char>(kRecordFormatVersion));
  return r;
}

std::string Sealed(std::string record) {
  PutFixed32(&record, Checksum(static_cast<uint8_t>(record[0]), record));
  return record;
}

// ---- reading ---------------------------------------------------------------------------

// Reads primitives from a payload; the first failure is remembered and every later read
// fails too, so decoders check once at the end.
class Reader {
 public:
  Reader(std::string_view key, std::string_view data) : key_(key), data_(data) {}

  bool Varint(uint64_t* v) {
    uint64_t result = 0;
    for (int shift = 0; shift <= 63; shift += 7) {
      if (pos_ >= data_.size()) return Fail("truncated varint");
      uint8_t byte = static_cast<uint8_t>(data_[pos_++]);
      if (shift == 63 && (byte & 0x7E)) return Fail("varint overflows 64 bits");
      result |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if (!(byte & 0x80)) {
        *v = result;
        return true;
      }
    }
    return Fail("varint longer than 10 bytes");
  }
  bool Fixed32(uint32_t* v) {
    if (!Need(4)) return false;
    uint32_t r = 0;
    for (int i = 0; i < 4; ++i)
      r |= static_cast<uint32_t>(static_cast<uint8_t>(data_[pos_ + i])) << (8 * i);
    pos_ += 4;
    *v = r;
    return true;
  }
  bool Fixed64(uint64_t* v) {
    if (!Need(8)) return false;
    uint64_t r = 0;
    for (int i = 0; i < 8; ++i)
      r |= static_cast<uint64_t>(static_cast<uint8_t>(data_[pos_ + i])) << (8 * i);
    pos_ += 8;
    *v = r;
    return true;
  }
  bool Byte(uint8_t* v) {
    if (!Need(1)) return false;
    *v = static_cast<uint8_t>(data_[pos_++]);
    return true;
  }
  bool String(std::string* v) {
    uint64_t n;
    if (!Varint(&n) || !Need(n)) return false;
    v->assign(data_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool F32s(std::vector<float>* v) {
    uint64_t n;
    if (!Varint(&n)) return false;
    if (n > (data_.size() - pos_) / 4)
      return Fail("vector of " + std::to_string(n) + " floats overruns the record");
    v->resize(n);
    if (n == 0) return true;  // memcpy's pointers must not be null, even for 0 bytes
    if constexpr (kLittleEndianHost) {
      std::memcpy(v->data(), data_.data() + pos_, n * 4);
      pos_ += n * 4;
    } else {
      for (uint64_t i = 0; i < n; ++i) {
        uint32_t bits = 0;
        Fixed32(&bits);
        std::memcpy(&(*v)[i], &bits, sizeof bits);
      }
    }
    return true;
  }
  bool F64(double* d) {
    uint64_t bits = 0;
    if (!Fixed64(&bits)) return false;
    std::memcpy(d, &bits, sizeof bits);
    return true;
  }
  bool F64s(std::vector<double>* v) {
    uint64_t n;
    if (!Varint(&n)) return false;
    if (n > (data_.size() - pos_) / 8)
      return Fail("vector of " + std::to_string(n) + " doubles overruns the record");
    v->resize(n);
    if (n == 0) return true;  // as in F32s
    if constexpr (kLittleEndianHost) {
      std::memcpy(v->data(), data_.data() + pos_, n * 8);
      pos_ += n * 8;
    } else {
      for (uint64_t i = 0; i < n; ++i) F64(&(*v)[i]);
    }
    return true;
  }
  bool Model(ModelState* m) {
    return F32s(&m->weights) && F32s(&m->sq_grad) && F64s(&m->head_counts) && F64(&m->evidence);
  }
  bool Fail(const std::string& what) {
    if (error_.empty()) error_ = what;
    return false;
  }
  // OK if everything read fine and nothing is left over.
  Status Finish() {
    if (error_.empty() && pos_ != data_.size()) {
      error_ = std::to_string(data_.size() - pos_) + " unexpected trailing bytes";
    }
    if (error_.empty()) return Status::Ok();
    return Status::Corruption("record '" + PrintableKey(key_) + "' is malformed: " + error_);
  }

 private:
  bool Need(uint64_t n) {
    if (!error_.empty()) return false;
    if (n > data_.size() - pos_)
      return Fail("truncated (needs " + std::to_string(n) + " more bytes, " +
                  std::to_string(data_.size() - pos_) + " left)");
    return true;
  }
  std::string_view key_;
  std::string_view data_;
  size_t pos_ = 0;
  std::string error_;
};

Status IdMismatch(std::string_view key, const std::string& id) {
  return Status::Corruption("record '" + PrintableKey(key) + "' holds id '" + PrintableKey(id) +
                            "', which does not match its key");
}

}  // namespace

size_t ModelBytes(const ModelState& m) {
  return 40 + 4 * (m.weights.size() + m.sq_grad.size()) + 8 * m.head_counts.size();
}

std::string ItemKey(std::string_view id) { return std::string(kItemPrefix).append(id); }
std::string ProviderKey(std::string_view id) { return std::string(kProviderPrefix).append(id); }
std::string ClusterKey(ClusterId id) {
  std::string k(kClusterPrefix);
  for (int i = 3; i >= 0; --i) k.push_back(static_cast<char>((id >> (8 * i)) & 0xFF));
  return k;
}
std::string EventKey(std::string_view id) { return std::string(kEventPrefix).append(id); }
std::string MetaKey(std::string_view name) { return std::string(kMetaPrefix).append(name); }
std::string DecisionKey(std::string_view id) { return std::string(kDecisionPrefix).append(id); }
std::string ProviderLossKey(std::string_view provider) {
  return std::string(kProviderLossPrefix).append(provider);
}
std::string StreakKey(std::string_view provider) {
  return std::string(kStreakPrefix).append(provider);
}
std::string VectorKey(std::string_view item_id) {
  return std::string(kVectorPrefix).append(item_id);
}
std::string PartitionOpKey(ClusterId cluster, uint64_t sequence) {
  // Big-endian, so one cluster's changes iterate in sequence order.
  std::string k(kPartitionOpPrefix);
  for (int i = 3; i >= 0; --i) k.push_back(static_cast<char>((cluster >> (8 * i)) & 0xFF));
  for (int i = 7; i >= 0; --i) k.push_back(static_cast<char>((sequence >> (8 * i)) & 0xFF));
  return k;
}

std::string PrintableKey(std::string_view key) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(key.size());
  for (char c : key) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7F && u != '\\') {
      out.push_back(c);
    } else {
      out += "\\x";
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xF]);
    }
  }
  return out;
}

std::string Seal(std::string_view payload, uint8_t version) {
  std::string v;
  v.reserve(payload.size() + 5);
  v.push_back(static_cast<char>(version));
  v.append(payload.data(), payload.size());
  return Sealed(std::move(v));
}

Status Unseal(std::string_view key, std::string_view value, std::string_view* payload) {
  if (value.size() < 5) {
    return Status::Corruption("record '" + PrintableKey(key) + "' is " +
                              std::to_string(value.size()) +
                              " bytes, shorter than its 5-byte envelope");
  }
  std::string_view body = value.substr(0, value.size() - 4);
  uint32_t stored = 0;
  for (int i = 0; i < 4; ++i)
    stored |= static_cast<uint32_t>(static_cast<uint8_t>(value[body.size() + i])) << (8 * i);
  const uint8_t version = static_cast<uint8_t>(body[0]);
  const uint32_t computed = Checksum(version, body);
  if (stored != computed) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "stored 0x%08x, computed 0x%08x", stored, computed);
    return Status::Corruption("record '" + PrintableKey(key) + "' fails its " +
                              (version == 1 ? "CRC32" : "XXH3") + " check (" + buf + ")");
  }
  if (version == 0) {
    return Status::Corruption("record '" + PrintableKey(key) +
                              "' has record format version 0, which no build writes");
  }
  if (version > kRecordFormatVersion) {
    return Status::FailedPrecondition(
        "record '" + PrintableKey(key) + "' has record format version " + std::to_string(version) +
        ", this build reads 1 to " + std::to_string(kRecordFormatVersion));
  }
  *payload = body.substr(1);
  return Status::Ok();
}

std::string EncodeItem(const ItemRecord& r) {
  std::string p = RecordStart(32 + r.id.size() + r.provider.size() + ModelBytes(r.model));
  PutString(&p, r.id);
  PutString(&p, r.provider);
  PutVarint(&p, r.label);
  p.push_back(r.served ? 1 : 0);
  PutVarint(&p, r.version);
  PutF32s(&p, {});  // the vector lives in its own record (VectorKey) since format 5
  PutModel(&p, r.model);
  return Sealed(std::move(p));
}

std::string EncodeVector(const std::vector<float>& v) {
  std::string p = RecordStart(10 + 4 * v.size());
  PutF32s(&p, v);
  return Sealed(std::move(p));
}

std::string EncodePartitionOp(const PartitionOpRecord& r) {
  std::string p = RecordStart(20 + 4 * r.vector.size() + 8 * r.link_candidates.size());
  p.push_back(static_cast<char>(r.kind));
  PutVarint(&p, r.label);
  PutF32s(&p, r.vector);
  PutVarint(&p, r.link_candidates.size());
  for (const auto& c : r.link_candidates) {
    PutVarint(&p, c.label);
    PutVarint(&p, c.element);
  }
  return Sealed(std::move(p));
}

std::string EncodeProvider(const ProviderRecord& r) {
  std::string p = RecordStart();
  PutString(&p, r.id);
  PutVarint(&p, r.cluster);
  return Sealed(std::move(p));
}

std::string EncodeCluster(const ClusterRecord& r) {
  std::string p = RecordStart(16 + ModelBytes(r.model));
  PutVarint(&p, r.id);
  PutModel(&p, r.model);
  return Sealed(std::move(p));
}

std::string EncodeEvent(int64_t seen_unix_ms) {
  std::string p = RecordStart();
  // A time before 1970 is a broken clock; stored as 0 it simply expires first.
  PutVarint(&p, static_cast<uint64_t>(std::max<int64_t>(seen_unix_ms, 0)));
  return Sealed(std::move(p));
}

std::string EncodeEvent() { return EncodeEvent(store_batch::NowUnixMs()); }

std::string EncodeProviderLoss(const ProviderLossRecord& r) {
  std::string p = RecordStart();
  PutString(&p, r.provider);
  PutVarint(&p, r.cells.size());
  for (const auto& c : r.cells) {
    PutVarint(&p, c.cluster);
    PutF64(&p, c.loss_sum);
    PutF64(&p, c.count);
  }
  return Sealed(std::move(p));
}

std::string EncodeStreak(const ReclusterStreakRecord& r) {
  std::string p = RecordStart();
  PutString(&p, r.provider);
  PutVarint(&p, r.target);
  PutVarint(&p, static_cast<uint64_t>(std::max(r.runs, 0)));
  return Sealed(std::move(p));
}

std::string EncodeMeta(std::string_view value) { return Seal(value); }

Status DecodeItem(std::string_view key, std::string_view value, ItemRecord* out) {
  std::string_view payload;
  DYNSPEC_RETURN_IF_ERROR(Unseal(key, value, &payload));
  Reader rd(key, payload);
  ItemRecord r;
  uint8_t served = 0;
  rd.String(&r.id) && rd.String(&r.provider) && rd.Varint(&r.label) && rd.Byte(&served) &&
      rd.Varint(&r.version) && rd.F32s(&r.embedding) && rd.Model(&r.model);
  if (served > 1) rd.Fail("served flag is " + std::to_string(served));
  DYNSPEC_RETURN_IF_ERROR(rd.Finish());
  r.served = served == 1;
  if (key.substr(kItemPrefix.size()) != r.id) return IdMismatch(key, r.id);
  *out = std::move(r);
  return Status::Ok();
}

Status DecodeVector(std::string_view key, std::string_view value, std::vector<float>* out) {
  std::string_view payload;
  DYNSPEC_RETURN_IF_ERROR(Unseal(key, value, &payload));
  Reader rd(key, payload);
  std::vector<float> v;
  rd.F32s(&v);
  if (v.empty()) rd.Fail("vector is empty");
  DYNSPEC_RETURN_IF_ERROR(rd.Finish());
  *out = std::move(v);
  return Status::Ok();
}

Status DecodePartitionOp(std::string_view key, std::string_view value, PartitionOpRecord* out) {
  constexpr size_t kKeyBytes = kPartitionOpPrefix.size() + 4 + 8;
  if (key.size() != kKeyBytes || !key.starts_with(kPartitionOpPrefix)) {
    return Status::Corruption("partition change key '" + PrintableKey(key) + "' is not " +
                              std::to_string(kKeyBytes) + " bytes");
  }
  std::string_view payload;
  DYNSPEC_RETURN_IF_ERROR(Unseal(key, value, &payload));
  Reader rd(key, payload);
  PartitionOpRecord r;
  uint8_t kind = 0;
  rd.Byte(&kind) && rd.Varint(&r.label) && rd.F32s(&r.vector);
  const uint8_t record_version = static_cast<uint8_t>(value[0]);  // checked by Unseal
  if (record_version >= 3) {
    uint64_t n = 0;
    // Each candidate takes at least two bytes, so a count beyond the bytes left is damage.
    if (rd.Varint(&n) && n > payload.size() / 2) {
      rd.Fail(std::to_string(n) + " link candidates overrun the record");
    } else {
      r.link_candidates.resize(n);
      for (auto& c : r.link_candidates) {
        uint64_t element = 0;
        if (rd.Varint(&c.label) && rd.Varint(&element) && element > UINT32_MAX) {
          rd.Fail("link candidate element " + std::to_string(element) + " exceeds 32 bits");
        }
        c.element = static_cast<uint32_t>(element);
      }
    }
  }
  using Kind = PartitionOpRecord::Kind;
  if (kind < static_cast<uint8_t>(Kind::kAdd) || kind > static_cast<uint8_t>(Kind::kRemove)) {
    rd.Fail("unknown change kind " + std::to_string(kind));
  }
  r.kind = static_cast<Kind>(kind);
  if (r.kind == Kind::kRemove && !r.vector.empty()) rd.Fail("a remove carries a vector");
  if (r.kind != Kind::kRemove && r.vector.empty()) rd.Fail("an add or update has no vector");
  if (r.kind != Kind::kAdd && !r.link_candidates.empty()) {
    rd.Fail("an update or remove carries link candidates");
  }
  DYNSPEC_RETURN_IF_ERROR(rd.Finish());
  for (size_t i = 0; i < 4; ++i) {
    r.cluster = (r.cluster << 8) | static_cast<uint8_t>(key[kPartitionOpPrefix.size() + i]);
  }
  for (size_t i = 0; i < 8; ++i) {
    r.sequence = (r.sequence << 8) | static_cast<uint8_t>(key[kPartitionOpPrefix.size() + 4 + i]);
  }
  if (r.sequence == 0)
    return Status::Corruption("partition change '" + PrintableKey(key) + "' has sequence 0");
  *out = std::move(r);
  return Status::Ok();
}

Status DecodeProvider(std::string_view key, std::string_view value, ProviderRecord* out) {
  std::string_view payload;
  DYNSPEC_RETURN_IF_ERROR(Unseal(key, value, &payload));
  Reader rd(key, payload);
  ProviderRecord r;
  uint64_t cluster = 0;
  rd.String(&r.id) && rd.Varint(&cluster);
  if (cluster > UINT32_MAX) rd.Fail("cluster id " + std::to_string(cluster) + " exceeds 32 bits");
  DYNSPEC_RETURN_IF_ERROR(rd.Finish());
  r.cluster = static_cast<ClusterId>(cluster);
  if (key.substr(kProviderPrefix.size()) != r.id) return IdMismatch(key, r.id);
  *out = std::move(r);
  return Status::Ok();
}

Status DecodeCluster(std::string_view key, std::string_view value, ClusterRecord* out) {
  std::string_view payload;
  DYNSPEC_RETURN_IF_ERROR(Unseal(key, value, &payload));
  Reader rd(key, payload);
  ClusterRecord r;
  uint64_t id = 0;
  rd.Varint(&id) && rd.Model(&r.model);
  if (id > UINT32_MAX) rd.Fail("cluster id " + std::to_string(id) + " exceeds 32 bits");
  DYNSPEC_RETURN_IF_ERROR(rd.Finish());
  r.id = static_cast<ClusterId>(id);
  if (key != ClusterKey(r.id)) return IdMismatch(key, std::to_string(r.id));
  *out = std::move(r);
  return Status::Ok();
}

Status DecodeEvent(std::string_view key, std::string_view value, int64_t* seen_unix_ms) {
  std::string_view payload;
  DYNSPEC_RETURN_IF_ERROR(Unseal(key, value, &payload));
  Reader rd(key, payload);
  uint64_t seen = 0;
  rd.Varint(&seen);
  if (seen > uint64_t{INT64_MAX}) rd.Fail("seen time " + std::to_string(seen) + " exceeds 63 bits");
  DYNSPEC_RETURN_IF_ERROR(rd.Finish());
  *seen_unix_ms = static_cast<int64_t>(seen);
  return Status::Ok();
}

Status DecodeProviderLoss(std::string_view key, std::string_view value, ProviderLossRecord* out) {
  std::string_view payload;
  DYNSPEC_RETURN_IF_ERROR(Unseal(key, value, &payload));
  Reader rd(key, payload);
  ProviderLossRecord r;
  uint64_t n = 0;
  // A cell takes at least 17 bytes: a damaged count fails here instead of allocating.
  bool ok =
      rd.String(&r.provider) && rd.Varint(&n) &&
      (n <= payload.size() / 17 || rd.Fail("count " + std::to_string(n) + " overruns the record"));
  std::set<uint64_t> seen;
  for (uint64_t i = 0; ok && i < n; ++i) {
    uint64_t cluster = 0;
    auto& cell = r.cells.emplace_back();
    ok = rd.Varint(&cluster) && rd.F64(&cell.loss_sum) && rd.F64(&cell.count);
    if (!ok) break;
    if (cluster > UINT32_MAX) {
      ok = rd.Fail("cluster id " + std::to_string(cluster) + " exceeds 32 bits");
    } else if (!seen.insert(cluster).second) {
      ok = rd.Fail("cluster " + std::to_string(cluster) + " appears twice");
    } else if (!(cell.count >= 0) || !std::isfinite(cell.count) || !std::isfinite(cell.loss_sum)) {
      ok = rd.Fail("cell of cluster " + std::to_string(cluster) + " is not finite and >= 0");
    }
    cell.cluster = static_cast<ClusterId>(cluster);
  }
  DYNSPEC_RETURN_IF_ERROR(rd.Finish());
  if (key.substr(kProviderLossPrefix.size()) != r.provider) return IdMismatch(key, r.provider);
  *out = std::move(r);
  return Status::Ok();
}

Status DecodeStreak(std::string_view key, std::string_view value, ReclusterStreakRecord* out) {
  std::string_view payload;
  DYNSPEC_RETURN_IF_ERROR(Unseal(key, value, &payload));
  Reader rd(key, payload);
  ReclusterStreakRecord r;
  uint64_t target = 0, runs = 0;
  rd.String(&r.provider) && rd.Varint(&target) && rd.Varint(&runs);
  if (target > UINT32_MAX) rd.Fail("cluster id " + std::to_string(target) + " exceeds 32 bits");
  if (runs > INT32_MAX) rd.Fail("streak of " + std::to_string(runs) + " runs exceeds 31 bits");
  DYNSPEC_RETURN_IF_ERROR(rd.Finish());
  r.target = static_cast<ClusterId>(target);
  r.runs = static_cast<int>(runs);
  if (key.substr(kStreakPrefix.size()) != r.provider) return IdMismatch(key, r.provider);
  *out = std::move(r);
  return Status::Ok();
}

std::string EncodeDecision(const DecisionRecord& r) {
  std::string p = RecordStart();
  PutString(&p, r.id);
  PutF64(&p, static_cast<double>(r.created_unix_ms));
  PutF64(&p, static_cast<double>(r.expires_unix_ms));
  PutF32s(&p, r.context.dense);
  PutVarint(&p, r.context.sparse.size());
  for (const auto& [name, value] : r.context.sparse) {
    PutString(&p, name);
    uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    PutFixed32(&p, bits);
  }
  PutVarint(&p, r.candidates.size());
  for (const auto& c : r.candidates) PutString(&p, c);
  PutF64s(&p, r.scores);
  PutF64s(&p, r.probabilities);
  PutVarint(&p, r.versions.size());
  for (uint64_t v : r.versions) PutVarint(&p, v);
  PutVarint(&p, r.chosen.size());
  for (uint32_t c : r.chosen) PutVarint(&p, c);
  PutF64s(&p, r.propensities);
  PutString(&p,
            std::string_view(reinterpret_cast<const char*>(r.answered.data()), r.answered.size()));
  PutF64s(&p, r.rewards);
  PutVarint(&p, r.blends.size());
  for (const auto& blend : r.blends) {
    PutVarint(&p, blend.size());
    for (const auto& [id, weight] : blend) {
      PutString(&p, id);
      PutF64(&p, weight);
    }
  }
  return Sealed(std::move(p));
}

Status DecodeDecision(std::string_view key, std::string_view value, DecisionRecord* out) {
  std::string_view payload;
  DYNSPEC_RETURN_IF_ERROR(Unseal(key, value, &payload));
  Reader rd(key, payload);
  DecisionRecord r;
  double created = 0, expires = 0;
  std::string answered;
  // Counts are checked against the bytes left before anything is reserved, so a damaged
  // count cannot make the decoder allocate without bound.
  auto count = [&](uint64_t* n) {
    return rd.Varint(n) && (*n <= payload.size() ||
                            rd.Fail("count " + std::to_string(*n) + " overruns the record"));
  };
  uint64_t n = 0;
  bool ok = rd.String(&r.id) && rd.F64(&created) && rd.F64(&expires) && rd.F32s(&r.context.dense) &&
            count(&n);
  for (uint64_t i = 0; ok && i < n; ++i) {
    std::string name;
    uint32_t bits = 0;
    ok = rd.String(&name) && rd.Fixed32(&bits);
    float v;
    std::memcpy(&v, &bits, sizeof v);
    r.context.sparse.emplace_back(std::move(name), v);
  }
  ok = ok && count(&n);
  for (uint64_t i = 0; ok && i < n; ++i) ok = rd.String(&r.candidates.emplace_back());
  ok = ok && rd.F64s(&r.scores) && rd.F64s(&r.probabilities) && count(&n);
  for (uint64_t i = 0; ok && i < n; ++i) ok = rd.Varint(&r.versions.emplace_back());
  ok = ok && count(&n);
  for (uint64_t i = 0; ok && i < n; ++i) {
    uint64_t c = 0;
    ok = rd.Varint(&c);
    if (ok && c >= r.candidates.size())
      ok = rd.Fail("chosen index " + std::to_string(c) + " is not a candidate");
    r.chosen.push_back(static_cast<uint32_t>(c));
  }
  ok = ok && rd.F64s(&r.propensities) && rd.String(&answered) && rd.F64s(&r.rewards) && count(&n);
  for (uint64_t i = 0; ok && i < n; ++i) {
    uint64_t m = 0;
    ok = count(&m);
    auto& blend = r.blends.emplace_back();
    for (uint64_t j = 0; ok && j < m; ++j) {
      std::string id;
      double w = 0;
      ok = rd.String(&id) && rd.F64(&w);
      blend.emplace_back(std::move(id), w);
    }
  }
  if (ok) {
    const size_t nc = r.candidates.size(), ns = r.chosen.size();
    if (r.scores.size() != nc || r.probabilities.size() != nc || r.versions.size() != nc) {
      rd.Fail("per-candidate arrays disagree in length");
    } else if (r.propensities.size() != ns || answered.size() != ns || r.rewards.size() != ns ||
               r.blends.size() != ns) {
      rd.Fail("per-position arrays disagree in length");
    }
  }
  DYNSPEC_RETURN_IF_ERROR(rd.Finish());
  r.created_unix_ms = static_cast<int64_t>(created);
  r.expires_unix_ms = static_cast<int64_t>(expires);
  r.answered.assign(answered.begin(), answered.end());
  if (key.substr(kDecisionPrefix.size()) != r.id) return IdMismatch(key, r.id);
  *out = std::move(r);
  return Status::Ok();
}

Status DecodeMeta(std::string_view key, std::string_view value, std::string* out) {
  std::string_view payload;
  DYNSPEC_RETURN_IF_ERROR(Unseal(key, value, &payload));
  out->assign(payload.data(), payload.size());
  return Status::Ok();
}

// The engine keeps its whole state in memory and reads the store only while it opens (the
// marker, LoadAll, upgrades), so the memtable is written, never searched: a vector memtable
// appends each entry and sorts once when it is flushed, where the default skip list pays an
// ordered insert per key. A commit of one feedback event (three keys, 4.3 kB) took 22-23 us
// of CPU instead of 26-29 (docs/storage.md). Reads stay correct: an iterator sorts a copy.
// Only the skip list takes concurrent memtable writes, so the write group's leader applies
// a group's batches one after another.
void UseWriteOnlyMemtable(rocksdb::Options* options) {
  options->memtable_factory = std::make_shared<rocksdb::VectorRepFactory>();
  options->allow_concurrent_memtable_write = false;
}

}  // namespace store_format

namespace {

namespace fs = std::filesystem;
namespace sf = store_format;

rocksdb::Slice ToSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

// Maps a RocksDB status onto ours, prefixed with `what`.
Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::Ok();
  // The message without RocksDB's own code name (ours replaces it).
  std::string msg = what + ": " + (s.getState() ? std::string(s.getState()) : s.ToString());
  if (s.IsCorruption()) return Status::Corruption(msg);
  if (s.IsIOError()) return Status::IoError(msg);
  if (s.IsNotFound()) return Status::NotFound(msg);
  if (s.IsInvalidArgument() || s.IsNotSupported()) return Status::FailedPrecondition(msg);
  if (s.IsNoSpace()) return Status::ResourceExhausted(msg);
  return Status::Internal(msg);
}

class RocksStore final : public Store {
 public:
  RocksStore(std::string dir, const DurableStoreOptions& options)
      : dir_(std::move(dir)), options_(options) {}

  ~RocksStore() override {
    if (sync_thread_.joinable()) {
      {
        std::lock_guard lock(sync_mu_);
        stop_ = true;
      }
      sync_cv_.notify_all();
      sync_thread_.join();
      // A clean close leaves nothing unsynced.
      if (unsynced_.exchange(false)) SyncOnce();
    }
    if (db_) {
      rocksdb::Status s = db_->Close();
      if (!s.ok())
        std::fprintf(stderr, "dynspec: closing data directory '%s': %s\n", dir_.c_str(),
                     s.ToString().c_str());
      db_.reset();
    }
  }

  Status OpenDb() {
    if (dir_.empty()) return Status::InvalidArgument("data directory path is empty");
    if (options_.sync_every_ms < 0 || options_.sync_every_ms > 60000) {
      return Status::InvalidArgument("sync_every_ms is " + std::to_string(options_.sync_every_ms) +
                                     ", expected 0 (sync every commit) to 60000");
    }
    std::error_code ec;
    const fs::file_status st = fs::status(dir_, ec);
    bool fresh = false;
    if (ec && ec != std::errc::no_such_file_or_directory) {
      return Status::IoError("data directory '" + dir_ + "': " + ec.message());
    }
    if (!fs::exists(st)) {
      if (!options_.create_if_missing) {
        return Status::NotFound("data directory '" + dir_ +
                                "' does not exist (create_if_missing is off)");
      }
      fs::create_directories(dir_, ec);
      if (ec) return Status::IoError("creating data directory '" + dir_ + "': " + ec.message());
      fresh = true;
    } else if (!fs::is_directory(st)) {
      return Status::FailedPrecondition("data directory '" + dir_ +
                                        "' exists and is not a directory");
    } else if (!fs::exists(fs::path(dir_) / "CURRENT", ec)) {
      bool empty = fs::is_empty(dir_, ec);
      if (ec) return Status::IoError("reading data directory '" + dir_ + "': " + ec.message());
      if (!empty) {
        return Status::FailedPrecondition("directory '" + dir_ +
                                          "' is not empty and is not a dynspec data directory (it "
                                          "has no RocksDB CURRENT file); refusing to use it");
      }
      if (!options_.create_if_missing) {
        return Status::NotFound("data directory '" + dir_ +
                                "' is empty (create_if_missing is off)");
      }
      fresh = true;
    }

    rocksdb::Options o;
    o.create_if_missing = fresh;
    o.paranoid_checks = true;
    // After a crash, replay the WAL up to the first damaged record: a consistent prefix of
    // the acknowledged commits (the default, stated here because the contract relies on it).
    o.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
    o.manual_wal_flush = false;  // every Write reaches the OS before it returns
    o.keep_log_file_num = 4;
    o.max_log_file_size = 16 << 20;
    sf::UseWriteOnlyMemtable(&o);
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(o, dir_, &raw);
    if (!s.ok()) {
      // The LOCK file is held by another process, or by another open store in this one.
      if (s.IsIOError() && s.ToString().find("LOCK") != std::string::npos) {
        return Status::FailedPrecondition(
            "data directory '" + dir_ +
            "' is in use by another process (or another open store in this process): " +
            s.ToString());
      }
      return FromRocks(s, "opening data directory '" + dir_ + "'");
    }
    db_.reset(raw);

    // The format marker.
    std::string marker;
    s = db_->Get(rocksdb::ReadOptions(), ToSlice(sf::kMarkerKey), &marker);
    if (s.IsNotFound()) {
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
      it->SeekToFirst();
      if (!it->status().ok())
        return FromRocks(it->status(), "reading data directory '" + dir_ + "'");
      if (it->Valid()) {
        return Status::FailedPrecondition("directory '" + dir_ +
                                          "' holds a RocksDB database that is not a dynspec data "
                                          "directory (no format marker); refusing to use it");
      }
      // Empty: a new store (or one whose creation was interrupted before the marker).
      rocksdb::WriteOptions wo;
      wo.sync = true;
      s = db_->Put(wo, ToSlice(sf::kMarkerKey), std::to_string(sf::kStoreFormatVersion));
      if (!s.ok()) return FromRocks(s, "writing the format marker of '" + dir_ + "'");
    } else if (!s.ok()) {
      return FromRocks(s, "reading the format marker of '" + dir_ + "'");
    } else {
      int version = 0;
      bool valid = !marker.empty() && marker.size() <= 9;
      for (char c : marker) valid = valid && c >= '0' && c <= '9';
      if (valid) version = std::stoi(marker);
      if (!valid || version < 1) {
        return Status::Corruption("data directory '" + dir_ +
                                  "' has an unreadable format marker '" + sf::PrintableKey(marker) +
                                  "'");
      }
      if (version > sf::kStoreFormatVersion) {
        return Status::FailedPrecondition("data directory '" + dir_ + "' has format version " +
                                          marker + ", this build reads up to " +
                                          std::to_string(sf::kStoreFormatVersion));
      }
      if (version < sf::kStoreFormatVersion) DYNSPEC_RETURN_IF_ERROR(Upgrade(version));
    }

    if (options_.sync_every_ms > 0) sync_thread_ = std::thread([this] { SyncLoop(); });
    return Status::Ok();
  }

  Status Commit(const StoreBatch& batch) override {
    try {
      return DoCommit(batch);
    } catch (const std::bad_alloc&) {
      return Status::ResourceExhausted("out of memory encoding a store batch");
    } catch (const std::exception& e) {
      return Status::Internal(std::string("committing a store batch: ") + e.what());
    }
  }

  Status LoadAll(StoreBatch* out) const override {
    try {
      return DoLoadAll(out);
    } catch (const std::bad_alloc&) {
      return Status::ResourceExhausted("out of memory loading data directory '" + dir_ + "'");
    } catch (const std::exception& e) {
      return Status::Internal("loading data directory '" + dir_ + "': " + e.what());
    }
  }

  Status Backup(const std::string& dir) override {
    try {
      return DoBackup(dir);
    } catch (const std::exception& e) {
      return Status::Internal("backing up to '" + dir + "': " + e.what());
    }
  }

 private:
  // Brings a format 1 to 4 directory to the current format. The record kinds added since
  // (decisions, loss rows, streaks, partition changes) need nothing written. Format 4's
  // event upgrade is one synced WriteBatch with the marker, so a crash leaves format 1-3 or
  // 4, never a mix: the event records had an empty payload and get the time of the upgrade
  // as their seen time (the real one was never stored), so they are kept for one full
  // retention window from now; that batch holds every event id once, a one-time cost in
  // memory proportional to the number of seen ids. Then format 5's item split, resumable,
  // and the marker, after which an older build refuses the directory.
  Status Upgrade(int from_version) {
    if (from_version < 4) DYNSPEC_RETURN_IF_ERROR(UpgradeEventsTo4(from_version));
    DYNSPEC_RETURN_IF_ERROR(MoveVectorsOutOfItems());
    rocksdb::WriteOptions wo;
    wo.sync = true;  // also syncs the unsynced batches of MoveVectorsOutOfItems
    return FromRocks(db_->Put(wo, ToSlice(sf::kMarkerKey), std::to_string(sf::kStoreFormatVersion)),
                     "upgrading the format of '" + dir_ + "' from " + std::to_string(from_version) +
                         " to " + std::to_string(sf::kStoreFormatVersion));
  }

  // Format 5: every item record of an older format is split into an item record without the
  // vector and the vector's own record, both in one batch, so each item is in one layout or
  // the other whatever a crash interrupts; LoadAll reads both. Batches of kItemsPerBatch
  // keep memory bounded on large directories (a one-time rewrite of the item records).
  Status MoveVectorsOutOfItems() {
    constexpr size_t kItemsPerBatch = 4096;
    const std::string what = "upgrading the item records of '" + dir_ + "' to format 5";
    rocksdb::ReadOptions ro;
    ro.verify_checksums = true;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    rocksdb::WriteBatch wb;
    size_t in_batch = 0;
    auto flush = [&]() -> Status {
      if (in_batch == 0) return Status::Ok();
      rocksdb::Status s = db_->Write(rocksdb::WriteOptions(), &wb);
      wb.Clear();
      in_batch = 0;
      return FromRocks(s, what);
    };
    for (it->Seek(ToSlice(sf::kItemPrefix));
         it->Valid() && it->key().starts_with(ToSlice(sf::kItemPrefix)); it->Next()) {
      const std::string_view key(it->key().data(), it->key().size());
      ItemRecord r;
      DYNSPEC_RETURN_IF_ERROR(
          sf::DecodeItem(key, std::string_view(it->value().data(), it->value().size()), &r)
              .WithContext(what));
      if (r.embedding.empty()) continue;  // already split
      wb.Put(ToSlice(sf::VectorKey(r.id)), sf::EncodeVector(r.embedding));
      wb.Put(it->key(), sf::EncodeItem(r));
      if (++in_batch == kItemsPerBatch) DYNSPEC_RETURN_IF_ERROR(flush());
    }
    if (!it->status().ok()) return FromRocks(it->status(), what);
    return flush();
  }

  // Format 4: the seen time in every event record. One atomic batch that also moves the
  // marker to 4 (see Upgrade for the rest).
  Status UpgradeEventsTo4(int from_version) {
    rocksdb::WriteBatch wb;
    const std::string event_value = sf::EncodeEvent(store_batch::NowUnixMs());
    rocksdb::ReadOptions ro;
    ro.verify_checksums = true;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    for (it->Seek(ToSlice(sf::kEventPrefix));
         it->Valid() && it->key().starts_with(ToSlice(sf::kEventPrefix)); it->Next()) {
      const std::string_view key(it->key().data(), it->key().size());
      std::string_view payload;
      DYNSPEC_RETURN_IF_ERROR(
          sf::Unseal(key, std::string_view(it->value().data(), it->value().size()), &payload)
              .WithContext("upgrading data directory '" + dir_ + "'"));
      if (!payload.empty()) {
        return Status::Corruption("upgrading data directory '" + dir_ + "' from format " +
                                  std::to_string(from_version) + ": record '" +
                                  sf::PrintableKey(key) + "' has a payload of " +
                                  std::to_string(payload.size()) + " bytes, expected none");
      }
      wb.Put(it->key(), event_value);
    }
    if (!it->status().ok())
      return FromRocks(it->status(), "upgrading data directory '" + dir_ + "'");
    it.reset();
    wb.Put(ToSlice(sf::kMarkerKey), "4");
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return FromRocks(db_->Write(wo, &wb), "upgrading the format of '" + dir_ + "' from " +
                                              std::to_string(from_version) + " to 4");
  }

  Status DoCommit(const StoreBatch& batch) {
    DYNSPEC_RETURN_IF_ERROR(store_batch::CheckSeenTimes(batch));
    if (has_sync_error_.load(std::memory_order_acquire)) {
      std::lock_guard lock(error_mu_);
      return sync_error_;
    }
    DYNSPEC_RETURN_IF_ERROR(store_batch::CheckPartitionOps(batch));
    // Room for the models and vectors up front: a feedback batch would otherwise grow the
    // WriteBatch's buffer (and copy it) several times.
    size_t bytes = 256;
    for (const auto& r : batch.put_items)
      bytes += 128 + 4 * r.embedding.size() + sf::ModelBytes(r.model);
    for (const auto& c : batch.put_clusters) bytes += 64 + sf::ModelBytes(c.model);
    for (const auto& op : batch.put_partition_ops) bytes += 64 + 4 * op.vector.size();
    // Same order as the memory store: within a batch, deletes come before puts.
    rocksdb::WriteBatch wb(bytes);
    for (const auto& id : batch.delete_items) {
      wb.Delete(sf::ItemKey(id));
      wb.Delete(sf::VectorKey(id));
    }
    for (const auto& r : batch.put_items) {
      wb.Put(sf::ItemKey(r.id), sf::EncodeItem(r));
      if (!r.embedding.empty()) wb.Put(sf::VectorKey(r.id), sf::EncodeVector(r.embedding));
    }
    for (const auto& p : batch.put_providers) wb.Put(sf::ProviderKey(p.id), sf::EncodeProvider(p));
    for (ClusterId id : batch.delete_clusters) wb.Delete(sf::ClusterKey(id));
    for (const auto& c : batch.put_clusters) wb.Put(sf::ClusterKey(c.id), sf::EncodeCluster(c));
    for (const auto& e : batch.forget_events) wb.Delete(sf::EventKey(e));
    const int64_t now = store_batch::NowUnixMs();
    for (size_t i = 0; i < batch.seen_events.size(); ++i) {
      wb.Put(sf::EventKey(batch.seen_events[i]),
             sf::EncodeEvent(store_batch::SeenTime(batch, i, now)));
    }
    for (const auto& [k, v] : batch.put_meta) wb.Put(sf::MetaKey(k), sf::EncodeMeta(v));
    for (const auto& id : batch.delete_decisions) wb.Delete(sf::DecisionKey(id));
    for (const auto& d : batch.put_decisions) wb.Put(sf::DecisionKey(d.id), sf::EncodeDecision(d));
    for (const auto& l : batch.put_provider_losses) {
      wb.Put(sf::ProviderLossKey(l.provider), sf::EncodeProviderLoss(l));
    }
    for (const auto& id : batch.delete_streaks) wb.Delete(sf::StreakKey(id));
    for (const auto& h : batch.put_streaks) wb.Put(sf::StreakKey(h.provider), sf::EncodeStreak(h));
    for (const auto& [cluster, through] : batch.truncate_partition_ops) {
      const std::string end = through == UINT64_MAX ? sf::PartitionOpKey(cluster + 1, 0)
                                                    : sf::PartitionOpKey(cluster, through + 1);
      wb.DeleteRange(sf::PartitionOpKey(cluster, 0), end);
    }
    for (const auto& op : batch.put_partition_ops) {
      wb.Put(sf::PartitionOpKey(op.cluster, op.sequence), sf::EncodePartitionOp(op));
    }
    if (wb.Count() == 0) return Status::Ok();
    rocksdb::WriteOptions wo;
    wo.sync = options_.sync_every_ms == 0;
    rocksdb::Status s = db_->Write(wo, &wb);
    if (!s.ok()) return FromRocks(s, "committing to data directory '" + dir_ + "'");
    if (!wo.sync) unsynced_.store(true, std::memory_order_release);
    return Status::Ok();
  }

  Status DoLoadAll(StoreBatch* out) const {
    StoreBatch all;
    std::vector<std::pair<std::string, std::vector<float>>> vectors;  // (item id, vector)
    rocksdb::ReadOptions ro;
    ro.verify_checksums = true;
    ro.fill_cache = false;
    ro.readahead_size = 2 << 20;
    // An iterator reads from an implicit snapshot: concurrent commits are either all in or
    // all out.
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const std::string_view key(it->key().data(), it->key().size());
      const std::string_view value(it->value().data(), it->value().size());
      Status st;
      if (key.starts_with(sf::kItemPrefix)) {
        st = sf::DecodeItem(key, value, &all.put_items.emplace_back());
      } else if (key.starts_with(sf::kProviderPrefix)) {
        st = sf::DecodeProvider(key, value, &all.put_providers.emplace_back());
      } else if (key.starts_with(sf::kClusterPrefix)) {
        st = sf::DecodeCluster(key, value, &all.put_clusters.emplace_back());
      } else if (key.starts_with(sf::kEventPrefix)) {
        int64_t seen = 0;
        st = sf::DecodeEvent(key, value, &seen);
        if (st.ok()) {
          all.seen_events.emplace_back(key.substr(sf::kEventPrefix.size()));
          all.seen_unix_ms.push_back(seen);
        }
      } else if (key.starts_with(sf::kDecisionPrefix)) {
        st = sf::DecodeDecision(key, value, &all.put_decisions.emplace_back());
      } else if (key.starts_with(sf::kProviderLossPrefix)) {
        st = sf::DecodeProviderLoss(key, value, &all.put_provider_losses.emplace_back());
      } else if (key.starts_with(sf::kStreakPrefix)) {
        st = sf::DecodeStreak(key, value, &all.put_streaks.emplace_back());
      } else if (key.starts_with(sf::kVectorPrefix)) {
        auto& [id, vector] = vectors.emplace_back();
        id = key.substr(sf::kVectorPrefix.size());
        st = sf::DecodeVector(key, value, &vector);
      } else if (key.starts_with(sf::kPartitionOpPrefix)) {
        st = sf::DecodePartitionOp(key, value, &all.put_partition_ops.emplace_back());
      } else if (key.starts_with(sf::kMetaPrefix)) {
        std::string v;
        st = sf::DecodeMeta(key, value, &v);
        if (st.ok()) all.put_meta[std::string(key.substr(sf::kMetaPrefix.size()))] = std::move(v);
      } else if (key == sf::kMarkerKey) {
        continue;
      } else {
        st = Status::Corruption("unknown key '" + sf::PrintableKey(key) + "'");
      }
      if (!st.ok()) return st.WithContext("data directory '" + dir_ + "'");
    }
    if (!it->status().ok()) return FromRocks(it->status(), "reading data directory '" + dir_ + "'");
    DYNSPEC_RETURN_IF_ERROR(
        AttachVectors(&all.put_items, &vectors).WithContext("data directory '" + dir_ + "'"));
    *out = std::move(all);
    return Status::Ok();
  }

  // Gives every item its vector record. Both lists are in key order (the ids' byte order),
  // so one merge pass pairs them. An item record of format 4 or older holds its vector
  // inline and has no vector record.
  static Status AttachVectors(std::vector<ItemRecord>* items,
                              std::vector<std::pair<std::string, std::vector<float>>>* vectors) {
    size_t v = 0;
    auto orphan = [&](const std::string& id) {
      return Status::Corruption("vector record '" + sf::PrintableKey(sf::VectorKey(id)) +
                                "' has no item record");
    };
    for (ItemRecord& item : *items) {
      if (v < vectors->size() && (*vectors)[v].first < item.id) return orphan((*vectors)[v].first);
      if (v < vectors->size() && (*vectors)[v].first == item.id) {
        item.embedding = std::move((*vectors)[v].second);
        ++v;
      } else if (item.embedding.empty()) {
        return Status::Corruption("item '" + sf::PrintableKey(item.id) + "' has no vector record");
      }
    }
    if (v < vectors->size()) return orphan((*vectors)[v].first);
    return Status::Ok();
  }

  Status DoBackup(const std::string& dir) {
    if (dir.empty()) return Status::InvalidArgument("backup directory path is empty");
    std::error_code ec;
    fs::path target = fs::absolute(dir, ec);
    if (ec) return Status::IoError("backup directory '" + dir + "': " + ec.message());
    target = target.lexically_normal();
    if (target.has_filename() == false) target = target.parent_path();
    if (fs::exists(target, ec) || (ec && ec != std::errc::no_such_file_or_directory)) {
      return Status::FailedPrecondition("backup directory '" + dir +
                                        "' already exists; a backup goes into a new directory");
    }
    fs::create_directories(target.parent_path(), ec);
    if (ec)
      return Status::IoError("creating the parent of backup directory '" + dir +
                             "': " + ec.message());
    rocksdb::Checkpoint* raw = nullptr;
    rocksdb::Status s = rocksdb::Checkpoint::Create(db_.get(), &raw);
    if (!s.ok()) return FromRocks(s, "backing up '" + dir_ + "'");
    std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
    s = checkpoint->CreateCheckpoint(target.string());
    if (!s.ok()) return FromRocks(s, "backing up '" + dir_ + "' to '" + dir + "'");
    return Status::Ok();
  }

  // ---- group commit ----------------------------------------------------------------------

  void SyncLoop() {
    const auto period = std::chrono::milliseconds(options_.sync_every_ms);
    std::unique_lock lock(sync_mu_);
    while (!stop_) {
      if (sync_cv_.wait_for(lock, period, [this] { return stop_; })) break;
      if (!unsynced_.exchange(false, std::memory_order_acq_rel)) continue;
      lock.unlock();
      SyncOnce();
      lock.lock();
    }
  }

  void SyncOnce() {
    rocksdb::Status s = db_->SyncWAL();
    if (s.ok()) return;
    std::lock_guard lock(error_mu_);
    if (has_sync_error_.load(std::memory_order_relaxed)) return;
    // Sticky: after a failed fsync the kernel may have dropped the dirty pages, so writes
    // acknowledged before it may not be durable; every later Commit reports it.
    sync_error_ = FromRocks(s, "group commit: syncing the WAL of data directory '" + dir_ +
                                   "' failed; acknowledged writes of the last " +
                                   std::to_string(options_.sync_every_ms) +
                                   " ms may not be durable; reopen the store");
    std::fprintf(stderr, "dynspec: %s\n", sync_error_.ToString().c_str());
    has_sync_error_.store(true, std::memory_order_release);
  }

  const std::string dir_;
  const DurableStoreOptions options_;
  std::unique_ptr<rocksdb::DB> db_;

  std::thread sync_thread_;
  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  bool stop_ = false;                  // guarded by sync_mu_
  std::atomic<bool> unsynced_{false};  // a Commit wrote the WAL without syncing it

  std::mutex error_mu_;
  Status sync_error_;  // guarded by error_mu_
  std::atomic<bool> has_sync_error_{false};
};

}  // namespace

Result<std::unique_ptr<Store>> OpenDurableStore(const std::string& dir,
                                                const DurableStoreOptions& options) {
  try {
    auto store = std::make_unique<RocksStore>(dir, options);
    DYNSPEC_RETURN_IF_ERROR(store->OpenDb());
    return std::unique_ptr<Store>(std::move(store));
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("out of memory opening data directory '" + dir + "'");
  } catch (const std::exception& e) {
    return Status::Internal("opening data directory '" + dir + "': " + e.what());
  }
}

}  // namespace dynspec
