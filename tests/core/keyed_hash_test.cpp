// The keyed hash of tables whose keys clients choose (core/keyed_hash.h):
// SipHash as its authors specify it (their reference vectors, SipHash-2-4,
// through the same template the tables run as SipHash-1-3), and NameHash
// keyed, so that a key collision is a secret's, not a format's.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "counter_table.h"
#include "keyed_hash.h"
#include "plan.h"

namespace toolgate {
namespace {

// The paper's key: bytes 00 01 ... 0f.
constexpr std::uint64_t kK0 = 0x0706050403020100ULL, kK1 = 0x0f0e0d0c0b0a0908ULL;

// Message bytes 00 01 ... n-1.
std::string message(std::size_t n) {
  std::string text;
  for (std::size_t i = 0; i < n; ++i) text.push_back(static_cast<char>(i));
  return text;
}

TEST(KeyedHash, SipHash24ReferenceVectors) {
  // vectors_sip64 of the reference implementation, by message length; the
  // lengths cover an empty message, each partial last block and whole blocks.
  const std::pair<std::size_t, std::uint64_t> vectors[] = {
      {0, 0x726fdb47dd0e0e31ULL},  {1, 0x74f839c593dc67fdULL},  {2, 0x0d6c8009d9a94f5aULL},
      {3, 0x85676696d7fb7e2dULL},  {4, 0xcf2794e0277187b7ULL},  {5, 0x18765564cd99a68dULL},
      {6, 0xcbc9466e58fee3ceULL},  {7, 0xab0200f58b01d137ULL},  {8, 0x93f5f5799a932462ULL},
      {9, 0x9e0082df0ba9e4b0ULL},  {10, 0x7a5dbbc594ddb9f3ULL}, {11, 0xf4b32f46226bada7ULL},
      {12, 0x751e8fbc860ee5fbULL}, {13, 0x14ea5627c0843d90ULL}, {14, 0xf723ca908e7af2eeULL},
      {15, 0xa129ca6149be45e5ULL}, {16, 0x3f2acc7f57c29bdbULL},
  };
  for (const auto& [length, expected] : vectors) {
    EXPECT_EQ((siphash<2, 4>(kK0, kK1, message(length))), expected) << "length " << length;
  }
}

TEST(KeyedHash, TheKeyDecides) {
  // One text, keys one bit apart: unrelated hashes (about half the bits
  // differ); the same key: the same hash.
  const std::string text = "grant:alice|refunds|60000|fixed|\"acme/repo\"";
  const std::uint64_t base = siphash<1, 3>(kK0, kK1, text);
  EXPECT_EQ((siphash<1, 3>(kK0, kK1, text)), base);
  for (int bit = 0; bit < 128; bit += 7) {
    const std::uint64_t k0 = bit < 64 ? kK0 ^ (1ULL << bit) : kK0;
    const std::uint64_t k1 = bit >= 64 ? kK1 ^ (1ULL << (bit - 64)) : kK1;
    const int differing = __builtin_popcountll(siphash<1, 3>(k0, k1, text) ^ base);
    EXPECT_GT(differing, 12) << "key bit " << bit;
    EXPECT_LT(differing, 52) << "key bit " << bit;
  }
}

TEST(KeyedHash, NameHashIsKeyedOnlyWhenGivenAKey) {
  const std::string text = "create_refund";
  EXPECT_EQ(NameHash{}(text), std::hash<std::string_view>{}(text));
  EXPECT_EQ((NameHash{kK0, kK1}(text)), static_cast<std::size_t>(siphash<1, 3>(kK0, kK1, text)));
  EXPECT_NE((NameHash{kK0, kK1}(text)), (NameHash{kK0 + 1, kK1}(text)));
}

TEST(KeyedHash, TheTableFindsEveryKeyUnderAnyKey) {
  // The index is keyed; the table answers the same whatever the key.
  for (std::uint64_t seed : {1ULL, 0x9e3779b97f4a7c15ULL, ~0ULL}) {
    CounterTable table(seed, seed * 3 + 1);
    std::vector<CounterState> states;
    std::vector<double> starts;
    for (int i = 0; i < 2000; ++i) {
      CounterRequest request;
      request.key = "k" + std::to_string(i);
      request.max = 5;
      request.window_ms = 60000;
      request.bucket_start_ms = 0;
      std::vector<CounterRequest> requests{request, request};
      ASSERT_TRUE(table.reserve(requests, 1, states, starts));
    }
    EXPECT_EQ(table.size(), 2000u);
    for (int i = 0; i < 2000; ++i) {
      CounterRequest request;
      request.key = "k" + std::to_string(i);
      request.window_ms = 60000;
      request.bucket_start_ms = 0;
      EXPECT_EQ(table.peek(request).current, 2) << request.key;
    }
  }
}

}  // namespace
}  // namespace toolgate
