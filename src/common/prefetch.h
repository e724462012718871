// Software prefetch: asks the CPU to start loading memory that is about to be used, so that
// the cache misses of several independent objects (neighbour models, their locks) overlap
// instead of being paid one after another. A hint only: it never faults and changes no value,
// and the CPU may drop it. Callers must still form the address validly (the arithmetic that
// produces it must stay within the object).
//
// Why by hand: the neighbours of a query are scattered over memory the hardware prefetcher
// cannot predict, and every item lock taken on the way (a locked instruction) waits for the
// loads issued before it, so without a hint the misses of 16 neighbours are paid in series.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dynspec {

inline constexpr size_t kCacheLineBytes = 64;

// Starts loading the cache line holding `p`, to be read.
inline void PrefetchLine(const void* p) {
#if defined(__GNUC__)
  __builtin_prefetch(p, /*rw=*/0, /*locality=*/3);
#else
  (void)p;
#endif
}

// Starts loading the cache line holding `p`, to be written (a mutex about to be locked).
inline void PrefetchLineForWrite(const void* p) {
#if defined(__GNUC__)
  __builtin_prefetch(p, /*rw=*/1, /*locality=*/3);
#else
  (void)p;
#endif
}

// Starts loading the cache lines of [p, p + bytes), at most the first `max_lines` of them:
// once a sequential read has started, the hardware prefetcher follows it.
inline void PrefetchRange(const void* p, size_t bytes, size_t max_lines) {
  if (bytes == 0) return;
  const uintptr_t first = reinterpret_cast<uintptr_t>(p) / kCacheLineBytes;
  const uintptr_t last = (reinterpret_cast<uintptr_t>(p) + bytes - 1) / kCacheLineBytes;
  for (uintptr_t line = first; line <= last && line - first < max_lines; ++line) {
    PrefetchLine(reinterpret_cast<const void*>(line * kCacheLineBytes));
  }
}

}  // namespace dynspec
