// Shared by the libFuzzer targets: an invariant check that aborts (so libFuzzer
// records the input as a crash), and a little reader of the fuzzer's bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <string_view>

#include "toolgate.h"

#define FUZZ_CHECK(condition, ...)                                                  \
  do {                                                                              \
    if (!(condition)) {                                                             \
      std::fprintf(stderr, "invariant failed at %s:%d: %s\n", __FILE__, __LINE__, \
                   #condition);                                                     \
      std::fprintf(stderr, "  " __VA_ARGS__);                                       \
      std::fprintf(stderr, "\n");                                                   \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

namespace toolgate::fuzz {

// Takes bytes off the front of the input; returns zeros once it runs out.
class Bytes {
 public:
  Bytes(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

  std::uint8_t byte() { return at_ < size_ ? data_[at_++] : 0; }
  bool flag() { return byte() & 1; }
  std::uint64_t u64() {
    std::uint64_t value = 0;
    for (int i = 0; i < 8; ++i) value = (value << 8) | byte();
    return value;
  }
  // Everything up to the next '\n' (not included), or the rest.
  std::string_view line() {
    std::string_view rest = remaining();
    std::size_t end = rest.find('\n');
    std::string_view out = rest.substr(0, end);
    at_ += end == std::string_view::npos ? rest.size() : end + 1;
    return out;
  }
  std::string_view remaining() const {
    return {reinterpret_cast<const char*>(data_) + at_, size_ - at_};
  }
  bool empty() const { return at_ >= size_; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t at_ = 0;
};

// A count a store could hold: what stores return (whole numbers, fractions
// from cost_from, values at and around a max, huge values up to the 1e300 the
// WebAssembly boundary lets through).
inline double count_from(Bytes& bytes, double max) {
  switch (bytes.byte() % 8) {
    case 0: return 0;
    case 1: return bytes.byte();
    case 2: return bytes.byte() / 7.0;
    case 3: return max > bytes.byte() ? max - bytes.byte() : 0;
    case 4: return max + bytes.byte() % 3;
    case 5: return 1e300;
    case 6: {
      std::uint64_t bits = bytes.u64();
      double value;
      std::memcpy(&value, &bits, sizeof value);
      if (!(value == value) || value < 0) value = -value;
      return value >= 0 && value <= 1e300 ? value : 0;
    }
    default: return bytes.byte() * 1e-3;
  }
}

// Well-formed UTF-8 (RFC 3629), checked independently of the core's helpers:
// decisions and diagnostics end up in JSON, which must be valid UTF-8.
inline bool is_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > text.size()) return false;
    std::uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
    for (std::size_t k = 1; k < n; ++k) {
      unsigned char d = static_cast<unsigned char>(text[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    const std::uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

inline const std::set<std::string, std::less<>>& decision_codes() {
  static const std::set<std::string, std::less<>> codes = {
      "allowed", "invalid_call", "hidden", "default_deny", "tool_denied", "invalid_arguments",
      "requirement_failed", "condition_denied", "approval_required", "rate_limited", "store_error"};
  return codes;
}

// What holds for every decision the core produces.
inline void check_decision(const Decision& decision) {
  FUZZ_CHECK(decision_codes().count(decision.code) == 1, "unknown code %s", decision.code.c_str());
  FUZZ_CHECK((decision.verdict == Verdict::allow) == (decision.code == "allowed"), "verdict/code %s",
             decision.code.c_str());
  FUZZ_CHECK((decision.verdict == Verdict::approval_required) == (decision.code == "approval_required"),
             "verdict/code %s", decision.code.c_str());
  FUZZ_CHECK(decision.approval_id.has_value() == (decision.code == "approval_required"), "approval_id %s",
             decision.code.c_str());
  FUZZ_CHECK(decision.retry_after_ms.has_value() == (decision.code == "rate_limited"), "retry_after_ms %s",
             decision.code.c_str());
  if (decision.retry_after_ms) FUZZ_CHECK(*decision.retry_after_ms >= 1, "retry_after_ms %lld", (long long)*decision.retry_after_ms);
  FUZZ_CHECK(!decision.message.empty(), "empty message for %s", decision.code.c_str());
  FUZZ_CHECK(is_utf8(decision.message) && is_utf8(decision.rule), "decision %s is not valid UTF-8",
             decision.code.c_str());
  // The hot-path encoding equals the JSON one.
  std::string text = decision_text(decision);
  nlohmann::json parsed = nlohmann::json::parse(text, nullptr, false);
  FUZZ_CHECK(!parsed.is_discarded(), "decision_text is not JSON: %s", text.c_str());
  FUZZ_CHECK(parsed == to_json(decision), "decision_text differs from to_json: %s", text.c_str());
}

}  // namespace toolgate::fuzz
