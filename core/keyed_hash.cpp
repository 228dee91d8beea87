#include "keyed_hash.h"

namespace toolgate {

__attribute__((noinline)) std::uint64_t siphash13(std::uint64_t k0, std::uint64_t k1, std::string_view text) {
  return siphash<1, 3>(k0, k1, text);
}

}  // namespace toolgate
