// RFC 8785 JSON Canonicalization Scheme and FIPS 180-4 SHA-256. No exceptions
// are thrown (the WebAssembly build disables them): only non-throwing
// nlohmann accessors are used.
#include "canonical_json.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <vector>

namespace toolgate {
namespace {

using json = nlohmann::json;

// ---------------------------------------------------------------------------
// Member ordering: JCS sorts names by their UTF-16 code units. For valid
// UTF-8, byte order equals code point order, and UTF-16 order differs from
// code point order only in that supplementary characters (U+10000 and up,
// encoded as surrogates D800-DBFF) sort before U+E000..U+FFFF. At the first
// differing byte of two valid UTF-8 strings both bytes are either
// continuation bytes of same-length sequences (code point order is right) or
// lead bytes; so it suffices to move the 4-byte lead bytes F0-F4 between ED
// (U+D000..U+DFFF) and EE/EF (U+E000..U+FFFF). The weight is a bijection on
// bytes, so any input (even invalid UTF-8) gets a deterministic total order.
int utf16_order_weight(unsigned char b) {
  if (b >= 0xF0 && b <= 0xF4) return b - 0xF0 + 0xEE;  // -> EE..F2
  if (b == 0xEE || b == 0xEF) return b + 5;            // -> F3..F4
  return b;
}

bool utf16_less(const std::string& a, const std::string& b) {
  const std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    const auto x = static_cast<unsigned char>(a[i]);
    const auto y = static_cast<unsigned char>(b[i]);
    if (x != y) return utf16_order_weight(x) < utf16_order_weight(y);
  }
  return a.size() < b.size();
}

// ---------------------------------------------------------------------------
// Strings, as ECMAScript JSON.stringify (QuoteJSONString) escapes them. Bytes
// other than '"', '\\' and controls below 0x20 are copied as they are.

void append_number(std::string& out, double d) {
  if (std::isfinite(d)) {
    out += ecmascript_number(d);
  } else {
    out += "null";  // JSON.stringify(NaN) and of +-Infinity
  }
}

// Recursive, with a small frame: locals are a pointer vector (heap storage)
// and loop variables. Depth is bounded by the caller.
void append_value(std::string& out, const json& v) {
  switch (v.type()) {
    case json::value_t::object: {
      const auto* obj = v.get_ptr<const json::object_t*>();
      std::vector<const json::object_t::value_type*> members;
      members.reserve(obj->size());
      for (const auto& member : *obj) members.push_back(&member);
      std::sort(members.begin(), members.end(),
                [](const auto* a, const auto* b) { return utf16_less(a->first, b->first); });
      out += '{';
      bool first = true;
      for (const auto* member : members) {
        if (!first) out += ',';
        first = false;
        append_json_string(out, member->first);
        out += ':';
        append_value(out, member->second);
      }
      out += '}';
      break;
    }
    case json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& element : *v.get_ptr<const json::array_t*>()) {
        if (!first) out += ',';
        first = false;
        append_value(out, element);
      }
      out += ']';
      break;
    }
    case json::value_t::string:
      append_json_string(out, *v.get_ptr<const json::string_t*>());
      break;
    case json::value_t::boolean:
      out += *v.get_ptr<const json::boolean_t*>() ? "true" : "false";
      break;
    case json::value_t::number_integer:
      append_number(out, static_cast<double>(*v.get_ptr<const json::number_integer_t*>()));
      break;
    case json::value_t::number_unsigned:
      append_number(out, static_cast<double>(*v.get_ptr<const json::number_unsigned_t*>()));
      break;
    case json::value_t::number_float:
      append_number(out, *v.get_ptr<const json::number_float_t*>());
      break;
    case json::value_t::null:
    case json::value_t::binary:     // not JSON; never produced by the parser
    case json::value_t::discarded:  // likewise
    default:
      out += "null";
      break;
  }
}

// ---------------------------------------------------------------------------
// Shortest round-trip decimal of a finite positive double: the fewest digits
// s (no trailing zeros) and exponent e such that s * 10^e reads back as the
// same double, and among those the closest to it (ECMA-262 Number::toString).
//
// std::to_chars(double) would give this directly, but Emscripten's libc++
// (13, in emsdk 3.1.6) has no floating-point to_chars. So this uses what every
// C library does exactly: snprintf("%.*e") rounds correctly and strtod reads
// correctly. It costs a few snprintf/strtod calls per non-integer number
// (about 2-6 us natively, 10-80 us in WebAssembly); integers below 2^53 take
// a fast path in ecmascript_number. Checked against V8's Number#toString on
// 2.5 million doubles (random bit patterns, powers of two and neighbours,
// short decimals, subnormals), natively and compiled with Emscripten.
struct ShortestDecimal {
  std::uint64_t digits;  // no trailing zeros
  int exponent;          // value == digits * 10^exponent (after rounding)
};

// digits * 10^exponent read as a double. The text has no decimal point, so
// strtod's locale cannot change how it is read.
double read_decimal(std::uint64_t digits, int exponent) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%llue%d", static_cast<unsigned long long>(digits), exponent);
  return std::strtod(buf, nullptr);
}

ShortestDecimal normalized(std::uint64_t digits, int exponent) {
  while (digits % 10 == 0) {
    digits /= 10;
    ++exponent;
  }
  return {digits, exponent};
}

// `value` correctly rounded to p significant digits: p-digit m and q with
// rounded value == m * 10^q. Only the digits and the exponent of the "%e"
// output are read, so the locale's decimal point does not matter.
ShortestDecimal rounded(double value, int p) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*e", p - 1, value);
  std::uint64_t m = 0;
  const char* c = buf;
  for (; *c != '\0' && *c != 'e'; ++c) {
    if (*c >= '0' && *c <= '9') m = m * 10 + static_cast<std::uint64_t>(*c - '0');
  }
  const int exp10 = *c == 'e' ? std::atoi(c + 1) : 0;
  return {m, exp10 - (p - 1)};
}

// The closest p-digit decimal that reads back as `value`, if there is one.
// The decimals that read back form an interval around `value`, symmetric
// except at powers of two, where the part below is half as wide as the part
// above. So the correctly rounded (closest) p-digit decimal is tried first;
// if it fails, only its neighbour on the other side can succeed, and only when
// that neighbour is above `value`.
std::optional<ShortestDecimal> round_trip_digits(double value, int p) {
  const auto [m, q] = rounded(value, p);
  const double back = read_decimal(m, q);
  if (back == value) return ShortestDecimal{m, q};
  if (back < value && read_decimal(m + 1, q) == value) return ShortestDecimal{m + 1, q};
  return std::nullopt;
}

ShortestDecimal shortest_decimal(double value) {
  // Whether some p-digit decimal reads back is monotonic in p (a p-digit
  // decimal is also a (p+1)-digit one) and true for p = 17: binary search.
  // `best` always holds the result for p == hi once some p succeeded.
  int lo = 1, hi = 17;
  std::optional<ShortestDecimal> best;
  while (lo < hi) {
    const int mid = lo + (hi - lo) / 2;
    if (auto found = round_trip_digits(value, mid)) {
      best = found;
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  // 17 significant digits always read back; rounded() is the last resort only
  // for a C library whose snprintf or strtod is not correctly rounded.
  if (!best) best = round_trip_digits(value, 17);
  if (!best) best = rounded(value, 17);
  return normalized(best->digits, best->exponent);
}

// ---------------------------------------------------------------------------
// SHA-256 (FIPS 180-4).
constexpr std::array<std::uint32_t, 64> kSha256K = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

constexpr std::uint32_t rotr(std::uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

void sha256_block(std::array<std::uint32_t, 8>& state, const unsigned char* block) {
  std::array<std::uint32_t, 64> w{};
  for (int t = 0; t < 16; ++t) {
    w[t] = (std::uint32_t{block[4 * t]} << 24) | (std::uint32_t{block[4 * t + 1]} << 16) |
           (std::uint32_t{block[4 * t + 2]} << 8) | std::uint32_t{block[4 * t + 3]};
  }
  for (int t = 16; t < 64; ++t) {
    const std::uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
    const std::uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
    w[t] = w[t - 16] + s0 + w[t - 7] + s1;
  }
  std::uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
  std::uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
  for (int t = 0; t < 64; ++t) {
    const std::uint32_t big_s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
    const std::uint32_t ch = (e & f) ^ (~e & g);
    const std::uint32_t t1 = h + big_s1 + ch + kSha256K[t] + w[t];
    const std::uint32_t big_s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
    const std::uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
    const std::uint32_t t2 = big_s0 + maj;
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  state[0] += a;
  state[1] += b;
  state[2] += c;
  state[3] += d;
  state[4] += e;
  state[5] += f;
  state[6] += g;
  state[7] += h;
}

}  // namespace

// ---------------------------------------------------------------------------
std::string ecmascript_number(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value < 0 ? "-Infinity" : "Infinity";
  if (value == 0) return "0";  // also -0

  std::string out;
  if (value < 0) {
    out += '-';
    value = -value;
  }
  // Fast path: integers below 2^53 print as themselves (every other integer
  // is at least 1 away, and their spacing as doubles is at most 1).
  if (value < 9007199254740992.0 && value == std::floor(value)) {
    out += std::to_string(static_cast<std::uint64_t>(value));
    return out;
  }
  const ShortestDecimal dec = shortest_decimal(value);
  const std::string digits = std::to_string(dec.digits);  // s in ECMA-262: k digits
  const int k = static_cast<int>(digits.size());
  const int n = dec.exponent + k;  // value == 0.s * 10^n

  if (k <= n && n <= 21) {
    out += digits;
    out.append(static_cast<std::size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out.append(digits, 0, static_cast<std::size_t>(n));
    out += '.';
    out.append(digits, static_cast<std::size_t>(n), std::string::npos);
  } else if (-6 < n && n <= 0) {
    out += "0.";
    out.append(static_cast<std::size_t>(-n), '0');
    out += digits;
  } else {
    out += digits[0];
    if (k > 1) {
      out += '.';
      out.append(digits, 1, std::string::npos);
    }
    out += 'e';
    out += n - 1 < 0 ? '-' : '+';
    out += std::to_string(std::abs(n - 1));
  }
  return out;
}

std::string canonical_json(const nlohmann::json& value) {
  std::string out;
  append_value(out, value);
  return out;
}

std::string canonical_json(Value value) {
  if (const nlohmann::json* node = value.node()) return canonical_json(*node);
  std::string out;
  switch (value.type()) {
    case Value::Type::string: append_json_string(out, value.string()); break;
    // The DOM holds a safe integer exactly, and its double is the same.
    case Value::Type::integer:
    case Value::Type::number: append_number(out, value.number()); break;
    case Value::Type::boolean: out = value.boolean() ? "true" : "false"; break;
    case Value::Type::array:
    case Value::Type::object: return canonical_json(value.to_json());
    default: out = "null"; break;
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  std::array<std::uint32_t, 8> h = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t i = 0;
  for (; data.size() - i >= 64; i += 64) sha256_block(h, bytes + i);

  // Padding: 0x80, zeros, then the message length in bits as a 64-bit big-endian.
  std::array<unsigned char, 128> tail{};
  const std::size_t rest = data.size() - i;
  std::copy(bytes + i, bytes + data.size(), tail.begin());
  tail[rest] = 0x80;
  const std::size_t tail_len = rest < 56 ? 64 : 128;
  const std::uint64_t bit_len = static_cast<std::uint64_t>(data.size()) * 8;
  for (int j = 0; j < 8; ++j) {
    tail[tail_len - 1 - j] = static_cast<unsigned char>(bit_len >> (8 * j));
  }
  sha256_block(h, tail.data());
  if (tail_len == 128) sha256_block(h, tail.data() + 64);

  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (const std::uint32_t word : h) {
    for (int shift = 28; shift >= 0; shift -= 4) out += kHex[(word >> shift) & 0xF];
  }
  return out;
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\f': out += "\\f"; break;
      case '\r': out += "\\r"; break;
      default:
        if (u < 0x20) {
          out += "\\u00";
          out += kHex[u >> 4];
          out += kHex[u & 0xF];
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

}  // namespace toolgate
