// Seeded 64-bit string hashing for the hashing trick (embedder and sparse context).
// FNV-1a over the bytes, then the splitmix64 finalizer so that low bits are well mixed.
// Written here because it is a dozen lines and must never change between versions:
// stored embeddings and model weights depend on these exact values.
#pragma once

#include <cstdint>
#include <string_view>

namespace dynspec {

inline uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ULL;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBULL;
  x ^= x >> 31;
  return x;
}

inline uint64_t HashBytes(std::string_view bytes, uint64_t seed) {
  uint64_t h = 0xCBF29CE484222325ULL ^ seed;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001B3ULL;
  }
  return Mix64(h);
}

// Slot in [0, width) and a sign in {-1, +1} from one hash.
struct HashedSlot {
  uint32_t index;
  float sign;
};
inline HashedSlot SlotOf(uint64_t hash, uint32_t width) {
  return {static_cast<uint32_t>((hash >> 1) % width), (hash & 1) ? 1.0f : -1.0f};
}

}  // namespace dynspec
