// SipHash (Aumasson & Bernstein, "SipHash: a fast short-input PRF", 2012):
// a hash keyed with 128 secret bits, for hash tables whose keys a client
// chooses. An unkeyed hash (std::hash: MurmurHash2 on a 32-bit target) lets
// anyone who knows the table's key format compute, offline, many keys that
// land in one bucket, and each look-up then walks them all. Without the key,
// nobody can.
//
// SipHashC-D: C compression rounds per 8-byte block, D finalization rounds.
// Tables use SipHash-1-3 (Rust's std::collections default); the reference
// vectors are SipHash-2-4's (tests/core/keyed_hash_test.cpp runs both
// through this one template).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace toolgate {

namespace sip_detail {

constexpr std::uint64_t rotl(std::uint64_t x, int bits) { return (x << bits) | (x >> (64 - bits)); }

struct State {
  std::uint64_t v0, v1, v2, v3;

  void round() {
    v0 += v1;
    v1 = rotl(v1, 13);
    v1 ^= v0;
    v0 = rotl(v0, 32);
    v2 += v3;
    v3 = rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = rotl(v1, 17);
    v1 ^= v2;
    v2 = rotl(v2, 32);
  }
};

// Bytes as a little-endian word, whatever the machine's order.
inline std::uint64_t load_le(const unsigned char* bytes, std::size_t count) {
  std::uint64_t word = 0;
  for (std::size_t i = count; i > 0; --i) word = (word << 8) | bytes[i - 1];
  return word;
}

}  // namespace sip_detail

// The key is k0 (key bytes 0-7, little-endian) and k1 (bytes 8-15).
template <int Compression, int Finalization>
std::uint64_t siphash(std::uint64_t k0, std::uint64_t k1, std::string_view text) {
  sip_detail::State s{0x736f6d6570736575ULL ^ k0, 0x646f72616e646f6dULL ^ k1, 0x6c7967656e657261ULL ^ k0,
                      0x7465646279746573ULL ^ k1};
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t size = text.size();
  const std::size_t whole = size - size % 8;
  for (std::size_t at = 0; at < whole; at += 8) {
    const std::uint64_t m = sip_detail::load_le(bytes + at, 8);
    s.v3 ^= m;
    for (int i = 0; i < Compression; ++i) s.round();
    s.v0 ^= m;
  }
  // The last block: the remaining bytes, and the length's low byte on top.
  const std::uint64_t last = sip_detail::load_le(bytes + whole, size - whole) | (static_cast<std::uint64_t>(size) << 56);
  s.v3 ^= last;
  for (int i = 0; i < Compression; ++i) s.round();
  s.v0 ^= last;
  s.v2 ^= 0xff;
  for (int i = 0; i < Finalization; ++i) s.round();
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

// SipHash-1-3, out of line: every hash table operation would otherwise
// inline its own copy (the .wasm + glue size budget).
std::uint64_t siphash13(std::uint64_t k0, std::uint64_t k1, std::string_view text);

}  // namespace toolgate
