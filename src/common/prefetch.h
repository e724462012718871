// Software prefetch: asks the CPU to start loading memory that is about to be read, so that
// the cache misses of several independent objects (neighbour models, index rows) overlap
// instead of being paid one after another. A hint only: it never faults, changes no value
// and may be dropped by the CPU, so calling it with any address is safe.
//
// Why by hand: the neighbours of a query are scattered over memory the hardware prefetcher
// cannot predict, and every item lock on the way (a locked instruction) waits for the loads
// issued before it, so without a hint the misses of 16 neighbours are paid in series.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dynspec {

inline constexpr size_t kCacheLineBytes = 64;

// Starts loading the cache line holding `p`.
inline void PrefetchLine(const void* p) {
#if defined(__GNUC__)
  __builtin_prefetch(p, /*rw=*/0, /*locality=*/3);
#else
  (void)p;
#endif
}

// Starts loading the first `lines` cache lines of [p, p + bytes): the hardware prefetcher
// follows a sequential read once it has started, so the head of an object is what pays.
inline void PrefetchHead(const void* p, size_t bytes, size_t lines = 2) {
  const auto* c = static_cast<const char*>(p);
  for (size_t i = 0; i < lines && i * kCacheLineBytes < bytes; ++i) {
    PrefetchLine(c + i * kCacheLineBytes);
  }
}

}  // namespace dynspec
