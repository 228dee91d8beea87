// Tests for RFC 8785 canonical JSON, ECMAScript number formatting and SHA-256.
// Every expected value was checked against Node.js (String(number),
// JSON.stringify, Object.keys().sort(), crypto.createHash("sha256")).
#include "canonical_json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

namespace toolgate {
namespace {

using json = nlohmann::json;

json parse(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << text;
  return j;
}

// memcpy rather than std::bit_cast, which Emscripten's libc++ 13 lacks.
double from_bits(std::uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

// RFC 8785 Appendix B, plus a few more.
TEST(EcmascriptNumber, Rfc8785AppendixB) {
  struct Case {
    std::uint64_t bits;
    const char* expected;
  };
  const Case cases[] = {
      {0x0000000000000000, "0"},
      {0x8000000000000000, "0"},
      {0x0000000000000001, "5e-324"},
      {0x8000000000000001, "-5e-324"},
      {0x7fefffffffffffff, "1.7976931348623157e+308"},
      {0xffefffffffffffff, "-1.7976931348623157e+308"},
      {0x4340000000000000, "9007199254740992"},
      {0xc340000000000000, "-9007199254740992"},
      {0x4430000000000000, "295147905179352830000"},
      {0x44b52d02c7e14af5, "9.999999999999997e+22"},
      {0x44b52d02c7e14af6, "1e+23"},
      {0x44b52d02c7e14af7, "1.0000000000000001e+23"},
      {0x444b1ae4d6e2ef4e, "999999999999999700000"},
      {0x444b1ae4d6e2ef4f, "999999999999999900000"},
      {0x444b1ae4d6e2ef50, "1e+21"},
      {0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
      {0x3eb0c6f7a0b5ed8d, "0.000001"},
      {0x41b3de4355555553, "333333333.3333332"},
      {0x41b3de4355555554, "333333333.33333325"},
      {0x41b3de4355555555, "333333333.3333333"},
      {0x41b3de4355555556, "333333333.3333334"},
      {0x41b3de4355555557, "333333333.33333343"},
      {0xbecbf647612f3696, "-0.0000033333333333333333"},
      {0x43143ff3c1cb0959, "1424953923781206.2"},
      {0x0010000000000000, "2.2250738585072014e-308"},
      {0x3ff0000000000000, "1"},
      {0x3fb999999999999a, "0.1"},
      {0x4024000000000000, "10"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ecmascript_number(from_bits(c.bits)), c.expected) << std::hex << c.bits;
  }
}

TEST(EcmascriptNumber, FormatBoundaries) {
  EXPECT_EQ(ecmascript_number(-0.0), "0");
  EXPECT_EQ(ecmascript_number(-1.5), "-1.5");
  EXPECT_EQ(ecmascript_number(123.456), "123.456");
  EXPECT_EQ(ecmascript_number(1e20), "100000000000000000000");
  EXPECT_EQ(ecmascript_number(1e21), "1e+21");
  EXPECT_EQ(ecmascript_number(1.5e21), "1.5e+21");
  EXPECT_EQ(ecmascript_number(1e-6), "0.000001");
  EXPECT_EQ(ecmascript_number(1.5e-6), "0.0000015");
  EXPECT_EQ(ecmascript_number(1e-7), "1e-7");
  EXPECT_EQ(ecmascript_number(1.5e-7), "1.5e-7");
  EXPECT_EQ(ecmascript_number(0.5), "0.5");
  EXPECT_EQ(ecmascript_number(1e100), "1e+100");
}

// Powers of two have a narrower rounding interval below than above, so the
// shortest decimal can be the one above the value although the one below is
// closer (2^-1017, 2^-1007). Expected values from Node's String(x).
TEST(EcmascriptNumber, PowersOfTwoAndOthers) {
  EXPECT_EQ(ecmascript_number(std::ldexp(1.0, -1017)), "7.120236347223045e-307");
  EXPECT_EQ(ecmascript_number(std::ldexp(1.0, -1007)), "7.291122019556398e-304");
  EXPECT_EQ(ecmascript_number(std::ldexp(3.0, -1074)), "1.5e-323");
  EXPECT_EQ(ecmascript_number(std::ldexp(1.0, 1023)), "8.98846567431158e+307");
  EXPECT_EQ(ecmascript_number(std::ldexp(1.0, 63)), "9223372036854776000");
  EXPECT_EQ(ecmascript_number(std::ldexp(1.0, 64)), "18446744073709552000");
  EXPECT_EQ(ecmascript_number(std::ldexp(1.0, 70)), "1.1805916207174113e+21");
  EXPECT_EQ(ecmascript_number(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(ecmascript_number(2.0 / 3), "0.6666666666666666");
  EXPECT_EQ(ecmascript_number(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(ecmascript_number(5e-7), "5e-7");
  EXPECT_EQ(ecmascript_number(123e-20), "1.23e-18");
  EXPECT_EQ(ecmascript_number(4.35), "4.35");
  EXPECT_EQ(ecmascript_number(1e22), "1e+22");
}

TEST(EcmascriptNumber, NonFinite) {
  EXPECT_EQ(ecmascript_number(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(ecmascript_number(std::numeric_limits<double>::infinity()), "Infinity");
  EXPECT_EQ(ecmascript_number(-std::numeric_limits<double>::infinity()), "-Infinity");
}

// RFC 8785 section 3.2.2 / 3.2.3 example.
TEST(CanonicalJson, Rfc8785Example) {
  const json j = parse(R"({
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
})");
  EXPECT_EQ(canonical_json(j),
            "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],"
            "\"string\":\"\xe2\x82\xac$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}");
}

// RFC 8785 section 3.2.3 sorting example: UTF-16 order puts U+1F600 (surrogates
// D83D DE00) before U+FB33, although its UTF-8 bytes sort after.
TEST(CanonicalJson, Rfc8785SortingExample) {
  const json j = parse(R"({
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
})");
  EXPECT_EQ(canonical_json(j),
            "{\"\\r\":\"Carriage Return\","
            "\"1\":\"One\","
            "\"\xc2\x80\":\"Control\","
            "\"\xc3\xb6\":\"Latin Small Letter O With Diaeresis\","
            "\"\xe2\x82\xac\":\"Euro Sign\","
            "\"\xf0\x9f\x98\x80\":\"Emoji: Grinning Face\","
            "\"\xef\xac\xb3\":\"Hebrew Letter Dalet With Dagesh\"}");
}

TEST(CanonicalJson, SortingAroundSurrogates) {
  // Node: ["", "a", "ab", U+D7FF, U+10000, U+10FFFF, U+E000, U+FFFF].
  const json j = parse(
      R"({"\ud800\udc00":1,"\uffff":2,"\ue000":3,"\ud7ff":4,"\udbff\udfff":5,"a":6,"":7,"ab":8})");
  EXPECT_EQ(canonical_json(j),
            "{\"\":7,\"a\":6,\"ab\":8,\"\xed\x9f\xbf\":4,\"\xf0\x90\x80\x80\":1,"
            "\"\xf4\x8f\xbf\xbf\":5,\"\xee\x80\x80\":3,\"\xef\xbf\xbf\":2}");
}

TEST(CanonicalJson, StringEscaping) {
  std::string s;
  for (char c = 0; c < 0x20; ++c) s += c;
  s += "\"\\/\x7f\xe2\x80\xa8\xe2\x80\xa9\xc3\xa9\xf0\x9f\x98\x80";
  EXPECT_EQ(canonical_json(json(s)),
            "\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r"
            "\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019"
            "\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\\\"\\\\/\x7f\xe2\x80\xa8\xe2\x80\xa9"
            "\xc3\xa9\xf0\x9f\x98\x80\"");
  EXPECT_EQ(canonical_json(json("")), "\"\"");
}

TEST(CanonicalJson, Scalars) {
  EXPECT_EQ(canonical_json(json(nullptr)), "null");
  EXPECT_EQ(canonical_json(json(true)), "true");
  EXPECT_EQ(canonical_json(json(false)), "false");
  EXPECT_EQ(canonical_json(json(42)), "42");
  EXPECT_EQ(canonical_json(json(-7)), "-7");
  EXPECT_EQ(canonical_json(json(1.0)), "1");
  EXPECT_EQ(canonical_json(json(-0.0)), "0");
  EXPECT_EQ(canonical_json(json(std::numeric_limits<double>::quiet_NaN())), "null");
  EXPECT_EQ(canonical_json(json(std::numeric_limits<double>::infinity())), "null");
  EXPECT_EQ(canonical_json(json(-std::numeric_limits<double>::infinity())), "null");
  EXPECT_EQ(canonical_json(json(json::value_t::discarded)), "null");
}

TEST(CanonicalJson, NestedAndBigIntegers) {
  // 9007199254740993 (int64), 2^64-1 (uint64), INT64_MIN (int64) and a float
  // too big for any integer type are all rounded to doubles.
  const json j = parse(
      R"({"b":[1,{"d":2,"c":[]}],"a":{},"big":[9007199254740993,18446744073709551615,)"
      R"(-9223372036854775808,1e21,123456789012345678901234]})");
  EXPECT_EQ(canonical_json(j),
            "{\"a\":{},\"b\":[1,{\"c\":[],\"d\":2}],\"big\":[9007199254740992,"
            "18446744073709552000,-9223372036854776000,1e+21,1.2345678901234569e+23]}");
  EXPECT_EQ(canonical_json(parse(" [ ] ")), "[]");
  EXPECT_EQ(canonical_json(parse(" { } ")), "{}");
  EXPECT_EQ(canonical_json(parse(R"([[[["deep"]]], {"x": {"y": {"z": null}}}])")),
            R"([[[["deep"]]],{"x":{"y":{"z":null}}}])");
}

TEST(CanonicalJson, DeepNesting) {
  std::string text(1000, '[');
  text.append(1000, ']');
  EXPECT_EQ(canonical_json(parse(text)), text);
}

TEST(Sha256, NistVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqr"
                       "lmnopqrsmnopqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, PaddingBoundaries) {
  // Lengths around the 55/56/64-byte padding edges (checked with Node).
  EXPECT_EQ(sha256_hex(std::string(55, 'a')),
            "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  EXPECT_EQ(sha256_hex(std::string(56, 'a')),
            "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  EXPECT_EQ(sha256_hex(std::string(63, 'a')),
            "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34");
  EXPECT_EQ(sha256_hex(std::string(64, 'a')),
            "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

TEST(ApprovalId, MatchesNode) {
  const json call = parse(R"({"arguments":{"b":1,"a":[1.0,"x"]},"grant":"alice","tool":"run"})");
  const std::string canonical = canonical_json(call);
  EXPECT_EQ(canonical, R"({"arguments":{"a":[1,"x"],"b":1},"grant":"alice","tool":"run"})");
  EXPECT_EQ(sha256_hex(canonical), "638174bdf7da42f2a6370313f8c85b6b89c3be486bedfc1802ebe14856f72f0f");
}

}  // namespace
}  // namespace toolgate
