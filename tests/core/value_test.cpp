// Decisions without a DOM (value.h, read_call_view in call_buffer.h): a
// binary call read in place through a CallTape must be refused exactly when,
// and for exactly the reason, the DOM reader refuses it, must decide exactly
// as the DOM path decides, and must not allocate once its storage has grown.
#include "value.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "call_buffer.h"
#include "json_util.h"
#include "toolgate.h"

// Counts heap allocations, for the test that the hot path makes none. The
// replacement covers the whole test binary; it only counts.
namespace {
std::atomic<long> g_allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
// The nothrow forms too (std::stable_sort's buffer uses them): every
// unaligned allocation then comes from malloc and goes back to free, which
// AddressSanitizer checks in pairs (a sanitizer's own operator new freed here
// would be an alloc-dealloc mismatch). Aligned forms stay the runtime's, in
// pairs of their own.
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size == 0 ? 1 : size);
}
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept { return operator new(size, tag); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace toolgate {
namespace {

using json = nlohmann::json;
using Bytes = std::vector<std::uint8_t>;

// A policy that reads arguments and grant attributes every way the language
// can: each operator, nested paths and indexes, a schema, keys and costs.
constexpr const char* kPolicy = R"({"version": "1", "default": "allow",
  "hide": ["secret*"],
  "all_tools": {"deny_if": [{"conditions": [{"path": "grant.role", "op": "eq", "value": "banned"}]}]},
  "tools": {
    "run": {"require": [{"path": "args.cmd", "op": "in", "value": ["ls", "cat", 1, 1.5, null, true, [1], {"a": 1}]}],
            "deny_if": [{"conditions": [{"path": "args.path", "op": "starts_with", "value": "/etc"}]},
                        {"conditions": [{"path": "args.path", "op": "ends_with", "value": ".key"}]},
                        {"conditions": [{"path": "args.path", "op": "glob", "value": "*/.ssh/*"}]},
                        {"conditions": [{"path": "args.path", "op": "regex", "value": "^/[a-z]+/x$"}]},
                        {"conditions": [{"path": "args.tags", "op": "contains", "value": "prod"}]},
                        {"conditions": [{"path": "args.tags", "op": "contains", "value": {"k": [1, 2.0]}}]},
                        {"conditions": [{"path": "args.o", "op": "eq", "value": {"a": [1, "x", null], "b": false}}]},
                        {"conditions": [{"path": "args.list.1.name", "op": "neq", "value": "ok"}, {"path": "args.list.1.name", "op": "exists"}]},
                        {"conditions": [{"path": "args.n", "op": "gt", "value": 10}]},
                        {"conditions": [{"path": "args.n", "op": "eq", "value": 3}]},
                        {"conditions": [{"path": "grant.tier", "op": "gte", "value": 3}]},
                        {"conditions": [{"path": "grant.id", "op": "eq", "value": "mallory"}]},
                        {"conditions": [{"path": "args.gone", "op": "exists", "value": false}, {"path": "args.flag", "op": "eq", "value": true}]}],
            "limits": [{"window": "minute", "max": 100, "key": "args.cmd"}, {"counter": "spend", "window": "hour", "max": 1000, "cost_from": "args.cost"}]},
    "typed": {"args": {"type": "object", "required": ["a"], "additionalProperties": {"type": "integer"},
                       "properties": {"a": {"type": "array", "items": {"type": ["string", "integer"], "maxLength": 3, "minimum": 0}, "maxItems": 4},
                                      "s": {"enum": ["x", 1, {"k": null}]}, "c": {"const": [1, {"b": 2}]}}}},
    "approve": {"action": "require_approval"},
    "denied": {"action": "deny"}}})";

const Plan& plan() {
  static const std::shared_ptr<const Plan> compiled = compile_policy(kPolicy).plan;
  return *compiled;
}

CallReadOptions options() {
  CallReadOptions options;
  options.default_now_ms = 1767225600000;
  return options;
}

// The DOM path's answer and the view path's for the same bytes, as text.
struct Both {
  std::string dom;
  std::string view;
};

std::string describe_evaluation(const Evaluation& evaluation) {
  return evaluation.decision ? to_json(*evaluation.decision).dump() : to_json(evaluation.pending).dump();
}

Both decide_both(const Bytes& bytes, CallTape& tape) {
  Both out;
  CallRead read = read_call_buffer(bytes, options(), plan());
  out.dom = read.call ? describe_evaluation(evaluate(plan(), *read.call)) : "invalid: " + read.error;
  CallView call;
  std::string error;
  if (!read_call_view(bytes, options(), plan(), tape, call, error)) {
    out.view = "invalid: " + error;
  } else {
    out.view = describe_evaluation(evaluate(plan(), call));
  }
  return out;
}

Bytes encode(const json& value) {
  auto bytes = encode_call_buffer(value);
  EXPECT_TRUE(bytes) << value.dump();
  return bytes ? *bytes : Bytes{};
}

// Raw buffers, for shapes the encoder never writes (repeated keys).
struct Writer {
  Bytes bytes;
  Writer& tag(BufferTag t) {
    bytes.push_back(static_cast<std::uint8_t>(t));
    return *this;
  }
  Writer& u32(std::uint32_t n) {
    for (int shift = 0; shift < 32; shift += 8) bytes.push_back(static_cast<std::uint8_t>(n >> shift));
    return *this;
  }
  Writer& text(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    bytes.insert(bytes.end(), s.begin(), s.end());
    return *this;
  }
  Writer& string(std::string_view s) { return tag(BufferTag::string).text(s); }
  Writer& object(std::uint32_t count) { return tag(BufferTag::object).u32(count); }
};

TEST(Value, DecidesAsTheDomOnCalls) {
  CallTape tape;  // reused across every call, as the binding reuses it
  const char* calls[] = {
      R"({"tool": "run", "arguments": {"cmd": "ls", "path": "/home/x", "n": 3}, "grant": "alice"})",
      R"({"tool": "run", "arguments": {"cmd": 1.5, "path": "/etc/passwd"}, "grant": {"id": "a", "role": "x"}})",
      R"({"tool": "run", "arguments": {"cmd": 1, "path": "/a/.ssh/id"}, "grant": {"id": "a", "tier": 3}})",
      R"({"tool": "run", "arguments": {"cmd": {"a": 1}, "tags": ["dev", {"k": [1, 2]}]}})",
      R"({"tool": "run", "arguments": {"cmd": [1], "o": {"b": false, "a": [1, "x", null]}}})",
      R"({"tool": "run", "arguments": {"cmd": null, "o": {"b": false, "a": [1, "x", null], "c": 1}}})",
      R"({"tool": "run", "arguments": {"cmd": true, "list": [{}, {"name": "bad"}]}})",
      R"({"tool": "run", "arguments": {"cmd": "cat", "n": "3"}})",
      R"({"tool": "run", "arguments": {"cmd": "cat", "n": 3.0}})",
      R"({"tool": "run", "arguments": {"cmd": "cat", "flag": true}, "grant": "mallory"})",
      R"({"tool": "run", "arguments": {"cmd": "cat", "cost": -1}})",
      R"({"tool": "run", "arguments": {"cmd": "cat", "cost": 2.5, "path": "/x/x"}})",
      R"({"tool": "run", "arguments": {"cmd": "rm"}})",
      R"({"tool": "run", "arguments": {"cmd": "ls", "tags": "prod-eu"}, "grant": {"id": "b", "role": "banned"}})",
      R"({"tool": "typed", "arguments": {"a": ["abc", 7]}})",
      R"({"tool": "typed", "arguments": {"a": ["abcd"]}})",
      R"({"tool": "typed", "arguments": {"a": [-1]}})",
      R"({"tool": "typed", "arguments": {"a": [], "extra": 1.5}})",
      R"({"tool": "typed", "arguments": {"a": [], "extra": 2.0, "s": {"k": null}, "c": [1, {"b": 2}]}})",
      R"({"tool": "typed", "arguments": {"a": [], "s": "y"}})",
      R"({"tool": "typed", "arguments": {"b": 1}})",
      R"({"tool": "approve", "arguments": {"z": [1, 2], "a": {"y": "é"}}, "grant": "carol"})",
      R"({"tool": "denied"})",
      R"({"tool": "secret_tool", "arguments": {"x": 1}})",
      R"({"tool": "unknown \"quoted\" é", "arguments": {}})",
      R"({"tool": "run", "arguments": [], "grant": "a"})",
      R"({"tool": "run", "grant": ""})",
      R"({"tool": "run", "grant": {"role": "x"}})",
      R"({"tool": "", "arguments": {}})",
      R"({"tool": "run\u0000x"})",
      R"({"tool": "run", "now": "2026-02-31T00:00:00Z"})",
      R"({"tool": "run", "arguments": {"cmd": "ls"}, "now": "2026-03-01T10:00:00+02:00"})",
      R"({"tool": "run", "arguments": {"cmd": "ls"}, "what": 1})",
      R"({"arguments": {}})",
      R"([1, 2])",
  };
  for (const char* text : calls) {
    SCOPED_TRACE(text);
    Both both = decide_both(encode(json::parse(text)), tape);
    EXPECT_EQ(both.dom, both.view);
  }
}

TEST(Value, RefusesMalformedBuffersForTheSameReason) {
  CallTape tape;
  std::vector<Bytes> buffers;
  // A repeated key, then an error later in the same object: the DOM reader
  // stops at the repeat first.
  buffers.push_back(Writer().object(3).text("tool").string("run").text("tool").string("x").text("now").tag(BufferTag{9}).bytes);
  // A repeat at the top while a nested object fails: the outer repeat wins.
  buffers.push_back(Writer().object(3).text("tool").string("run").text("tool").string("run").text("grant").object(1).text("id").u32(9).bytes);
  // A nested repeat, read before an outer error.
  buffers.push_back(Writer().object(2).text("grant").object(3).text("id").string("a").text("r").string("1").text("r").string("2").text("tool").u32(77).bytes);
  // A repeat in the arguments the policy reads, and one in arguments it skips.
  buffers.push_back(Writer().object(2).text("tool").string("run").text("arguments").object(2).text("cmd").string("a").text("cmd").string("b").bytes);
  buffers.push_back(Writer().object(2).text("tool").string("run").text("arguments").object(2).text("zz").string("a").text("zz").string("b").bytes);
  // Invalid UTF-8 in a read argument and in a skipped one.
  buffers.push_back(Writer().object(2).text("tool").string("run").text("arguments").object(1).text("cmd").string("\xC3").bytes);
  buffers.push_back(Writer().object(2).text("tool").string("run").text("arguments").object(1).text("zz").string("\xC3").bytes);
  // A repeat whose twin's value is broken.
  buffers.push_back(Writer().object(2).text("tool").string("run").text("tool").tag(BufferTag::string).u32(1000).bytes);
  // Trailing bytes, an empty buffer, a lone tag.
  buffers.push_back(Writer().object(1).text("tool").string("run").tag(BufferTag::null).bytes);
  buffers.push_back(Bytes{});
  buffers.push_back(Bytes{7});
  for (std::size_t i = 0; i < buffers.size(); ++i) {
    Both both = decide_both(buffers[i], tape);
    EXPECT_EQ(both.dom, both.view) << i;
    // Arguments no rule reads are stepped over (bounds and nesting checked,
    // nothing decoded): a repeat or bad UTF-8 there is no one's business.
    const bool skipped = i == 4 || i == 6;
    EXPECT_EQ(both.view.rfind("invalid: ", 0) == 0, !skipped) << i << ": " << both.view;
  }
}

// Objects of 0 to 40 members with keys drawn from a few (so many repeat), in
// random order, where the reader sorts them (insertion sort up to 16 members,
// heap sort beyond) and finds repeats with the sort's own comparisons: the
// view path refuses exactly the buffers the DOM reader refuses (its
// try_emplace), for the same reason, and decides the rest the same.
TEST(Value, RepeatedKeysInRandomObjectsAreFoundAsTheDomFindsThem) {
  std::mt19937 random(29);
  const char* const keys[] = {"a", "b", "ab", "ba", "", "cmd", "n", "\xC3\xA9", "aa", "a\x01", "zz", "0", "00", "k",
                              "n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", "m0", "m1", "m2", "m3"};
  CallTape tape;
  int refused = 0;
  for (int i = 0; i < 3000; ++i) {
    const std::uint32_t count = random() % 41;
    const std::size_t pool = 2 + random() % (std::size(keys) - 1);  // a small pool: repeats; a large one: distinct keys too
    Writer members;
    for (std::uint32_t m = 0; m < count; ++m) {
      members.text(keys[random() % pool]);
      if (random() % 3 == 0) {
        members.tag(BufferTag::integer);
        const double n = static_cast<double>(random() % 7);
        std::uint8_t raw[8];
        std::memcpy(raw, &n, 8);
        members.bytes.insert(members.bytes.end(), raw, raw + 8);
      } else {
        members.string("x");
      }
    }
    // As the arguments of a tool whose schema reads them all, or as the grant.
    const bool as_grant = random() % 2 == 0;
    Writer call;
    call.object(2).text("tool").string(as_grant ? "run" : "typed").text(as_grant ? "grant" : "arguments");
    if (as_grant) {
      call.object(count + 1).text("id").string("g");
    } else {
      call.object(count);
    }
    call.bytes.insert(call.bytes.end(), members.bytes.begin(), members.bytes.end());
    Both both = decide_both(call.bytes, tape);
    ASSERT_EQ(both.dom, both.view) << i;
    refused += both.view.find("repeats a key") != std::string::npos;
  }
  EXPECT_GT(refused, 500);  // the property saw many repeats, not only distinct keys
}

// The reader looks the tool up once and hands the match to evaluate_into;
// a match is only taken for the plan it came from and the same view of the
// name, so a view read against one plan and evaluated against another, or
// whose tool was changed after the read, decides as a fresh look-up does.
TEST(Value, ToolMatchOfTheReadIsUsedOnlyForItsPlanAndName) {
  const auto other = compile_policy(R"({"version": "1", "default": "deny", "hide": ["run"],
    "tools": {"typed": {"action": "deny"}, "other": {}}})").plan;
  ASSERT_TRUE(other);
  CallTape tape;
  for (const char* tool : {"run", "typed", "approve", "denied", "secret_x", "other", "unknown"}) {
    SCOPED_TRACE(tool);
    const Bytes bytes = encode(json{{"tool", tool}, {"arguments", {{"cmd", "ls"}, {"n", 1}}}, {"grant", "g"}});
    CallView call;
    std::string error;
    ASSERT_TRUE(read_call_view(bytes, options(), plan(), tape, call, error)) << error;
    EXPECT_EQ(call.matched_by, &plan());
    CallRead read = read_call_buffer(bytes, options());
    ASSERT_TRUE(read.call);
    // Another plan: its own look-up.
    EXPECT_EQ(describe_evaluation(evaluate(*other, call)), describe_evaluation(evaluate(*other, *read.call)));
    // The same plan: the match, deciding as the DOM path.
    EXPECT_EQ(describe_evaluation(evaluate(plan(), call)), describe_evaluation(evaluate(plan(), *read.call)));
    // Another name in the same view: looked up again.
    for (const char* renamed : {"run", "denied", "unknown", "secret_y"}) {
      CallView changed = call;
      changed.tool = renamed;
      Call dom = *read.call;
      dom.tool = renamed;
      dom.arguments = call.arguments.to_json();  // what the read kept for the first name
      EXPECT_EQ(describe_evaluation(evaluate(plan(), changed)), describe_evaluation(evaluate(plan(), dom))) << renamed;
    }
  }
}

TEST(Value, NestingLimitMatchesTheDomReader) {
  CallTape tape;
  for (int depth : {254, 255, 256, 257, 300}) {
    json nested = json::array();
    for (int i = 0; i < depth; ++i) nested = json::array({nested});
    for (const char* key : {"cmd", "skipped"}) {
      SCOPED_TRACE(std::to_string(depth) + key);
      Both both = decide_both(encode(json{{"tool", "run"}, {"arguments", {{key, nested}}}}), tape);
      EXPECT_EQ(both.dom, both.view);
    }
  }
}

// Random calls (seeded), whole and cut or with a byte changed: the view path
// answers exactly as the DOM path on every one.
json random_value(std::mt19937& random, int depth) {
  const char* const strings[] = {"ls", "cat", "prod", "/etc/x", "a/.ssh/b", "/ab/x", "ok", "bad", "é", "x", "", "k"};
  const char* const keys[] = {"cmd", "path", "tags", "o", "list", "n", "name", "a", "b", "k", "cost", "flag", "s", "c", "extra"};
  switch (random() % (depth > 3 ? 6 : 8)) {
    case 0: return nullptr;
    case 1: return random() % 2 == 0;
    case 2: return static_cast<int>(random() % 21) - 5;
    case 3: return static_cast<double>(random() % 40) / 4.0 - 2;
    case 4:
    case 5: return strings[random() % std::size(strings)];
    case 6: {
      json array = json::array();
      for (unsigned i = random() % 4; i > 0; --i) array.push_back(random_value(random, depth + 1));
      return array;
    }
    default: {
      json object = json::object();
      for (unsigned i = random() % 5; i > 0; --i) object[keys[random() % std::size(keys)]] = random_value(random, depth + 1);
      return object;
    }
  }
}

TEST(Value, RandomCallsDecideAsTheDom) {
  std::mt19937 random(17);
  const char* const tools[] = {"run", "typed", "approve", "denied", "secret_x", "other"};
  CallTape tape;
  for (int i = 0; i < 4000; ++i) {
    json call = {{"tool", tools[random() % std::size(tools)]}, {"arguments", random_value(random, 0)}};
    if (!call["arguments"].is_object() && random() % 4 != 0) call["arguments"] = json::object({{"cmd", "ls"}});
    if (random() % 2 == 0) call["grant"] = {{"id", "g"}, {"role", random_value(random, 2)}, {"tier", random() % 5}};
    Bytes bytes = encode(call);
    SCOPED_TRACE(call.dump());
    Both whole = decide_both(bytes, tape);
    ASSERT_EQ(whole.dom, whole.view);
    Bytes cut(bytes.begin(), bytes.begin() + static_cast<long>(random() % (bytes.size() + 1)));
    Both truncated = decide_both(cut, tape);
    ASSERT_EQ(truncated.dom, truncated.view);
    Bytes changed = bytes;
    changed[random() % changed.size()] = static_cast<std::uint8_t>(random());
    Both mutated = decide_both(changed, tape);
    ASSERT_EQ(mutated.dom, mutated.view);
  }
}

// A tape reused from call to call (CallTape::used: entries written over,
// not zeroed) reads every call as a fresh tape does: the same value, the same
// decision, the same refusal. Big calls first leave entries of every type
// behind for the smaller ones that follow, in slots of other types.
TEST(Value, ReusedTapeReadsAsAFreshOne) {
  std::mt19937 random(41);
  const char* const tools[] = {"run", "typed", "approve", "denied", "secret_x", "other"};
  CallTape reused;
  for (int i = 0; i < 3000; ++i) {
    json call = {{"tool", tools[random() % std::size(tools)]}, {"arguments", json::object()}};
    const unsigned members = i % 50 == 0 ? 40 : random() % 6;
    for (unsigned m = 0; m < members; ++m) call["arguments"]["k" + std::to_string(random() % 60)] = random_value(random, 0);
    if (random() % 2 == 0) call["grant"] = {{"id", "g"}, {"role", random_value(random, 2)}, {"tier", random() % 5}};
    Bytes bytes = encode(call);
    if (random() % 4 == 0) bytes[random() % bytes.size()] = static_cast<std::uint8_t>(random());
    SCOPED_TRACE(call.dump());
    CallTape fresh;
    CallView a, b;
    std::string error_a, error_b;
    const bool read_a = read_call_view(bytes, options(), plan(), reused, a, error_a);
    const bool read_b = read_call_view(bytes, options(), plan(), fresh, b, error_b);
    ASSERT_EQ(read_a, read_b);
    ASSERT_EQ(error_a, error_b);
    if (!read_a) continue;
    ASSERT_EQ(Value(reused, 0).to_json(), Value(fresh, 0).to_json());
    ASSERT_EQ(describe_evaluation(evaluate(plan(), a)), describe_evaluation(evaluate(plan(), b)));
    // Every other way the tape is read (each_member, element, member) agrees too.
    std::function<void(Value, Value)> same = [&](Value x, Value y) {
      ASSERT_EQ(x.type(), y.type());
      ASSERT_EQ(x.size(), y.size());
      ASSERT_EQ(x.string(), y.string());
      ASSERT_EQ(x.number(), y.number());
      ASSERT_EQ(x.boolean(), y.boolean());
      for (std::size_t e = 0; e < x.size() && x.is_array(); ++e) same(x.element(e), y.element(e));
      std::vector<std::string_view> keys;
      x.each_member([&](std::string_view key, Value) {
        keys.push_back(key);
        return true;
      });
      for (std::string_view key : keys) same(x.member(key), y.member(key));
    };
    same(Value(reused, 0), Value(fresh, 0));
  }
}

// compare_bytes is std::string_view::compare (its sign), on random byte
// strings: shared prefixes, high bytes, lengths either side of a word.
TEST(Value, CompareBytesOrdersAsStringViewCompare) {
  std::mt19937 random(43);
  const char alphabet[] = {'a', 'b', '\0', '\x7f', '\x80', '\xff', 'z', 'A'};
  auto sign = [](int n) { return n < 0 ? -1 : n > 0 ? 1 : 0; };
  for (int i = 0; i < 200000; ++i) {
    std::string a, b;
    for (unsigned n = random() % 20; n > 0; --n) a += alphabet[random() % std::size(alphabet)];
    if (random() % 2 == 0) {
      b = a.substr(0, random() % (a.size() + 1));  // a prefix, then perhaps more
      for (unsigned n = random() % 12; n > 0; --n) b += alphabet[random() % std::size(alphabet)];
    } else {
      for (unsigned n = random() % 20; n > 0; --n) b += alphabet[random() % std::size(alphabet)];
    }
    ASSERT_EQ(sign(compare_bytes(a, b)), sign(std::string_view(a).compare(b))) << i;
    ASSERT_EQ(sign(compare_bytes(b, a)), sign(std::string_view(b).compare(a))) << i;
    ASSERT_EQ(compare_bytes(a, a), 0);
  }
}

// ArgumentUse::reads (its own binary search) answers as std::binary_search
// over the sorted keys, for keys in and out of the list.
TEST(Value, ArgumentUseReadsAsBinarySearch) {
  std::mt19937 random(47);
  const char* const parts[] = {"a", "b", "amount", "é", "\x7f", "currency", "z", "", "k0", "k1"};
  for (int i = 0; i < 20000; ++i) {
    ArgumentUse use;
    for (unsigned n = random() % 9; n > 0; --n) use.keys.push_back(std::string(parts[random() % std::size(parts)]) + parts[random() % std::size(parts)]);
    std::sort(use.keys.begin(), use.keys.end());
    use.keys.erase(std::unique(use.keys.begin(), use.keys.end()), use.keys.end());
    for (int probe = 0; probe < 8; ++probe) {
      const std::string key = std::string(parts[random() % std::size(parts)]) + parts[random() % std::size(parts)];
      ASSERT_EQ(use.reads(key), std::binary_search(use.keys.begin(), use.keys.end(), key)) << key;
    }
  }
}

TEST(Value, ViewsMatchTheDom) {
  const json value = json::parse(R"({"a": [1, -2, 2.5, "x", null, true, {"k": "v"}], "b": {"z": 1, "y": {}}, "n": 0})");
  CallTape tape;
  const Bytes bytes = encode(json{{"tool", "t"}, {"arguments", value}});
  CallView call;
  std::string error;
  // A policy that reads every argument: nothing is skipped.
  auto all = compile_policy(R"({"version": "1", "default": "allow", "tools": {"t": {"args": true}}})").plan;
  ASSERT_TRUE(read_call_view(bytes, options(), *all, tape, call, error)) << error;
  EXPECT_EQ(call.arguments.to_json(), value);
  EXPECT_EQ(call.arguments.to_json().dump(), value.dump());  // number types too
  EXPECT_TRUE(call.arguments.equals(value));
  EXPECT_EQ(call.arguments.member("a").element(2).number(), 2.5);
  EXPECT_EQ(call.arguments.member("a").element(3).string(), "x");
  EXPECT_FALSE(call.arguments.member("a").element(7).present());
  EXPECT_FALSE(call.arguments.member("zz").present());
  EXPECT_EQ(call.arguments.member("a").element(6).member("k").string(), "v");
  // Integers compare to doubles as nlohmann compares them.
  EXPECT_TRUE(call.arguments.member("n").equals(json(0.0)));
  EXPECT_TRUE(call.arguments.member("a").element(1).equals(json(-2)));
  EXPECT_FALSE(call.arguments.member("a").element(0).equals(json("1")));
  // Members in key order, as the DOM iterates them.
  std::string order;
  call.arguments.member("b").each_member([&](std::string_view key, Value) {
    order += key;
    return true;
  });
  EXPECT_EQ(order, "yz");
  EXPECT_EQ(type_name(call.arguments.member("b")), "object");
  EXPECT_EQ(describe(call.arguments.member("a")), describe(value["a"]));
}

TEST(Value, StringDescriptionsMatchTheDom) {
  std::mt19937 random(5);
  const std::string pieces[] = {"a", "\"", "\\", "\n", "\t", "\x01", "\x1f", "\x7f", "é", "😀", "\b", "\f", "\r", "/", " "};
  for (int i = 0; i < 3000; ++i) {
    std::string text;
    for (unsigned n = random() % 60; n > 0; --n) text += pieces[random() % std::size(pieces)];
    for (std::size_t max : {std::size_t{8}, std::size_t{40}, std::size_t{80}}) {
      SCOPED_TRACE(text);
      EXPECT_EQ(describe(Value::string_of(text), max), describe(json(text), max));
      std::string appended = "Tool ";
      append_description(appended, text, max);
      EXPECT_EQ(appended, "Tool " + describe(json(text), max));
    }
  }
}

// The hot path allocates nothing once its storage has grown: an allowed call,
// each kind of denial, and finish() of a pending one, into kept storage.
TEST(Value, DecidingAllocatesNothingOnceWarm) {
  auto compiled = compile_policy(R"({"version": "1", "default": "deny",
    "tools": {"create_refund": {"require": [{"path": "args.currency", "op": "in", "value": ["usd", "eur"]}],
                                "deny_if": [{"conditions": [{"path": "args.amount", "op": "gt", "value": 500},
                                                            {"path": "grant.role", "op": "neq", "value": "admin"}]}]},
              "limited": {"rate_limit": "10/minute"}}})");
  ASSERT_TRUE(compiled.ok());
  const Plan& typical = *compiled.plan;
  const std::vector<json> calls = {
      json::parse(R"({"tool": "create_refund", "arguments": {"amount": 120, "currency": "usd", "charge": "ch_123", "reason": "duplicate", "notify": true}, "grant": {"id": "alice", "role": "support"}, "now": 1767225600000})"),
      json::parse(R"({"tool": "create_refund", "arguments": {"amount": 900, "currency": "usd"}, "grant": {"id": "alice", "role": "support"}})"),
      json::parse(R"({"tool": "create_refund", "arguments": {"amount": 9, "currency": "gbp"}, "grant": "alice"})"),
      json::parse(R"({"tool": "create_refund_unknown_to_this_policy", "arguments": {}, "now": 1767225600000})"),
  };
  std::vector<Bytes> encoded;
  for (const json& call : calls) encoded.push_back(encode(call));
  const Bytes limited = encode(json::parse(R"({"tool": "limited", "grant": "alice"})"));
  CallTape tape;
  CallView call;
  std::string error;
  Decision decision;
  PendingCall pending;
  std::vector<CounterState> states(1);
  auto run_all = [&] {
    for (const Bytes& bytes : encoded) {
      ASSERT_TRUE(read_call_view(bytes, options(), typical, tape, call, error)) << error;
      ASSERT_TRUE(evaluate_into(typical, call, decision, pending));
    }
    ASSERT_TRUE(read_call_view(limited, options(), typical, tape, call, error)) << error;
    ASSERT_FALSE(evaluate_into(typical, call, decision, pending));
    finish_into(pending, true, states, decision);
  };
  for (int i = 0; i < 3; ++i) run_all();  // warm: every buffer at its size
  PendingCall limited_pending;
  ASSERT_TRUE(read_call_view(limited, options(), typical, tape, call, error));
  ASSERT_FALSE(evaluate_into(typical, call, decision, limited_pending));
  long before = g_allocations.load();
  for (int i = 0; i < 100; ++i) {
    for (const Bytes& bytes : encoded) {
      ASSERT_TRUE(read_call_view(bytes, options(), typical, tape, call, error));
      ASSERT_TRUE(evaluate_into(typical, call, decision, pending));
    }
    finish_into(limited_pending, true, states, decision);
  }
  EXPECT_EQ(g_allocations.load() - before, 0);
  EXPECT_EQ(decision.code, "allowed");
  // A pending evaluation into kept storage (the binding's parked slots)
  // reuses its counters' strings too.
  before = g_allocations.load();
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(read_call_view(limited, options(), typical, tape, call, error));
    ASSERT_FALSE(evaluate_into(typical, call, decision, limited_pending));
    finish_into(limited_pending, true, states, decision);
  }
  EXPECT_EQ(g_allocations.load() - before, 0);
  EXPECT_EQ(decision.code, "allowed");
  // And they decided as the DOM path does.
  for (const json& text : calls) {
    CallRead read = read_call(text.dump(), options());
    ASSERT_TRUE(read.call);
    Evaluation dom = evaluate(typical, *read.call);
    // The view reads the bytes in place: they must outlive it.
    const Bytes bytes = encode(text);
    ASSERT_TRUE(read_call_view(bytes, options(), typical, tape, call, error));
    ASSERT_TRUE(evaluate_into(typical, call, decision, pending));
    EXPECT_EQ(to_json(decision), to_json(*dom.decision)) << text.dump();
  }
}

}  // namespace
}  // namespace toolgate
