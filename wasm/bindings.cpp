// The bindings of the core, in two layers:
//
//  - embind, strings in and strings out: compiling policies, diagnostics,
//    locating pointers, and the JSON-text path for calls. JSON text keeps every
//    C++ type out of JS.
//  - the per-call hot path (start, finish, release): plain exported functions
//    over two memory areas. JS writes the call in the binary form of
//    core/call_buffer.h into the input area and reads the decision (or the
//    counters its stores need) from the output area, laid out below. No
//    embind invoker, no JSON text, no UTF-8 round trip of the whole call: a
//    decision costs about what the core's evaluation costs.
//
// The build has C++ exceptions off and the core never throws, so no exception
// can cross into JS; malformed input always comes back as a value.
#include <emscripten/bind.h>
#include <emscripten/emscripten.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "call_buffer.h"
#include "json_reader.h"
#include "toolgate.h"

namespace {

using json = nlohmann::json;

// Code no decision runs (a policy's limits, explain()'s traced starts, the
// JSON-text finish, locating pointers, refusals of a full table): compiled
// for size, so the decision path's code fits the .wasm + glue gzip budget
// without slowing a decision. (Loading a policy is the cold start's: left as
// it is.)
#define TOOLGATE_COLD __attribute__((minsize, cold, noinline))

std::string dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

// The denial for a store answer the core cannot use (fail closed).
TOOLGATE_COLD toolgate::Decision store_error_decision(const std::string& why) {
  toolgate::Decision decision;
  decision.code = "store_error";
  decision.message = "Denied (fail closed): " + why + ".";
  return decision;
}
TOOLGATE_COLD std::string store_error(const std::string& why) { return toolgate::decision_text(store_error_decision(why)); }

// The output area of the hot path, and the counts finish reads from the
// input area. JS never hard-codes where a field is: boundary_layout() below
// exports every field's offset and type, the enum codes and the table's
// capacity from these definitions, and wasm/boundary-layout.js checks them
// at load (a mismatch fails the load, never a decision) and decodes by the
// offsets it was given.
using u32 = std::uint32_t;
using f64 = double;

// What the output area holds after toolgate_start/toolgate_finish.
enum class OutputKind : u32 { decision = 0, parked = 1, pending_text = 2 };
constexpr std::string_view kOutputKindNames[] = {"decision", "parked", "pending_text"};
constexpr std::string_view kScopeNames[] = {"grant", "global"};        // toolgate::Scope, by value
constexpr std::string_view kAlgorithmNames[] = {"fixed", "sliding"};  // toolgate::Algorithm, by value
static_assert(static_cast<u32>(toolgate::Scope::grant) == 0 && static_cast<u32>(toolgate::Scope::global) == 1);
static_assert(static_cast<u32>(toolgate::Algorithm::fixed) == 0 && static_cast<u32>(toolgate::Algorithm::sliding) == 1);
static_assert(static_cast<u32>(toolgate::Verdict::allow) == 0 && static_cast<u32>(toolgate::Verdict::deny) == 1 &&
              static_cast<u32>(toolgate::Verdict::approval_required) == 2);

struct FastCounter {  // one counter a parked evaluation needs; an array of them
  u32 key = 0;            // pointer, UTF-8
  u32 key_length = 0;
  u32 grant = 0;          // pointer
  u32 grant_length = 0;
  u32 scope = 0;          // toolgate::Scope (kScopeNames)
  u32 algorithm = 0;      // toolgate::Algorithm (kAlgorithmNames)
  f64 cost = 0;
  f64 max = 0;
  f64 window_ms = 0;
  f64 bucket_start_ms = 0;
  u32 key_version = 0;    // see FastOutput::code_version
  u32 grant_version = 0;
};

struct FastOutput {
  u32 kind = 0;             // OutputKind
  u32 verdict = 0;          // decision: toolgate::Verdict
  u32 code = 0;             // pointer
  u32 code_length = 0;
  u32 rule = 0;             // pointer
  u32 rule_length = 0;
  u32 message = 0;          // pointer (pending_text: the JSON text)
  u32 message_length = 0;
  u32 approval = 0;         // pointer; decision: approval_id, parked: the approval to look up
  u32 approval_length = 0;  // 0 = none
  u32 has_retry = 0;
  u32 ticket = 0;           // parked
  f64 retry_after_ms = 0;
  f64 now_ms = 0;           // parked: the evaluation's time
  f64 approval_timeout_ms = 0;
  u32 counters = 0;         // pointer to counter_count FastCounters
  u32 counter_count = 0;
  // Which strings are the same text as before: a string's version changes
  // whenever the text published in its place differs from the last one
  // published there (never 0, the decoder's "not known"), so the decoder
  // reuses the string it built for a version it has seen (at the same
  // address and length) and reads no byte of it. Most decisions repeat
  // their code, rule and message, and a parked call its counter's key and
  // grant: comparing here (version_of, eight bytes at a time) is cheaper
  // than the decoder's byte-for-byte check in JS and its look-up of the
  // address. Every publish compares against a kept copy, so a version can
  // only repeat for the same text (or after 2^32 changes).
  u32 code_version = 0;
  u32 rule_version = 0;
  u32 message_version = 0;
  u32 approval_version = 0;
};

// The store's answer for one counter, in the input area (an array of them).
struct FastCount {
  f64 current = 0;
  f64 previous = 0;
};

// One counter of a call into a memory store's table (toolgate_table), in
// the table's own area: JS writes the request, the core writes back what the
// key held (current, previous) and the bucket charged (start). The key's
// bytes follow the record, padded to 8 (the next record starts there).
// Rollback reads the charge's bucket from bucket_start_ms.
struct TableRecord {
  f64 cost = 0;
  f64 max = 0;
  f64 window_ms = 0;
  f64 bucket_start_ms = 0;
  f64 current = 0;     // out
  f64 previous = 0;    // out
  f64 start = 0;       // out: reserve, when admitted
  u32 algorithm = 0;   // toolgate::Algorithm (kAlgorithmNames)
  u32 key_length = 0;  // UTF-8 (WTF-8 for a JS key with a lone surrogate), after the record
};

// One field as boundary_layout() reports it.
struct FieldLayout {
  std::string_view name;
  std::string_view type;  // "u32" or "f64"
  std::size_t offset;
  std::size_t size;
};

template <typename T>
constexpr std::string_view type_name() {
  static_assert(std::is_same_v<T, u32> || std::is_same_v<T, f64>, "the boundary carries only u32 and f64 fields");
  return std::is_same_v<T, u32> ? "u32" : "f64";
}

#define TOOLGATE_FIELD(Struct, name) \
  FieldLayout { #name, type_name<decltype(Struct::name)>(), offsetof(Struct, name), sizeof(Struct::name) }

constexpr FieldLayout kCounterFields[] = {
    TOOLGATE_FIELD(FastCounter, key),       TOOLGATE_FIELD(FastCounter, key_length),
    TOOLGATE_FIELD(FastCounter, grant),     TOOLGATE_FIELD(FastCounter, grant_length),
    TOOLGATE_FIELD(FastCounter, scope),     TOOLGATE_FIELD(FastCounter, algorithm),
    TOOLGATE_FIELD(FastCounter, cost),      TOOLGATE_FIELD(FastCounter, max),
    TOOLGATE_FIELD(FastCounter, window_ms), TOOLGATE_FIELD(FastCounter, bucket_start_ms),
    TOOLGATE_FIELD(FastCounter, key_version), TOOLGATE_FIELD(FastCounter, grant_version),
};
constexpr FieldLayout kOutputFields[] = {
    TOOLGATE_FIELD(FastOutput, kind),           TOOLGATE_FIELD(FastOutput, verdict),
    TOOLGATE_FIELD(FastOutput, code),           TOOLGATE_FIELD(FastOutput, code_length),
    TOOLGATE_FIELD(FastOutput, rule),           TOOLGATE_FIELD(FastOutput, rule_length),
    TOOLGATE_FIELD(FastOutput, message),        TOOLGATE_FIELD(FastOutput, message_length),
    TOOLGATE_FIELD(FastOutput, approval),       TOOLGATE_FIELD(FastOutput, approval_length),
    TOOLGATE_FIELD(FastOutput, has_retry),      TOOLGATE_FIELD(FastOutput, ticket),
    TOOLGATE_FIELD(FastOutput, retry_after_ms), TOOLGATE_FIELD(FastOutput, now_ms),
    TOOLGATE_FIELD(FastOutput, approval_timeout_ms),
    TOOLGATE_FIELD(FastOutput, counters),       TOOLGATE_FIELD(FastOutput, counter_count),
    TOOLGATE_FIELD(FastOutput, code_version),   TOOLGATE_FIELD(FastOutput, rule_version),
    TOOLGATE_FIELD(FastOutput, message_version), TOOLGATE_FIELD(FastOutput, approval_version),
};
constexpr FieldLayout kCountFields[] = {TOOLGATE_FIELD(FastCount, current), TOOLGATE_FIELD(FastCount, previous)};
constexpr FieldLayout kTableRecordFields[] = {
    TOOLGATE_FIELD(TableRecord, cost),      TOOLGATE_FIELD(TableRecord, max),
    TOOLGATE_FIELD(TableRecord, window_ms), TOOLGATE_FIELD(TableRecord, bucket_start_ms),
    TOOLGATE_FIELD(TableRecord, current),   TOOLGATE_FIELD(TableRecord, previous),
    TOOLGATE_FIELD(TableRecord, start),     TOOLGATE_FIELD(TableRecord, algorithm),
    TOOLGATE_FIELD(TableRecord, key_length),
};
#undef TOOLGATE_FIELD

// What the JS decoder assumes, checked here at compile time (and the
// exported layout again at load): pointers fit a u32 (wasm32); every field is
// a u32 or f64 at an offset aligned to its size; the lists name every byte
// of their struct, with no padding (so a field added to a struct and not to
// its list fails the build); f64 fields and arrays of counters/counts are
// 8-aligned, so JS can index them as Float64Array elements.
static_assert(sizeof(void*) == 4, "pointers cross as u32: wasm32 only");
template <typename Struct, std::size_t N>
constexpr bool covers_exactly(const FieldLayout (&fields)[N]) {
  std::size_t total = 0;
  for (std::size_t i = 0; i < N; ++i) {
    const FieldLayout& field = fields[i];
    if (field.offset % field.size != 0 || field.offset + field.size > sizeof(Struct)) return false;
    for (std::size_t j = 0; j < i; ++j) {  // no field listed twice or overlapping another
      if (field.offset < fields[j].offset + fields[j].size && fields[j].offset < field.offset + field.size) return false;
    }
    total += field.size;
  }
  return total == sizeof(Struct) && std::is_standard_layout_v<Struct> && std::is_trivially_copyable_v<Struct> &&
         alignof(Struct) == 8 && sizeof(Struct) % 8 == 0;
}
static_assert(covers_exactly<FastCounter>(kCounterFields));
static_assert(covers_exactly<FastOutput>(kOutputFields));
static_assert(covers_exactly<FastCount>(kCountFields));
static_assert(covers_exactly<TableRecord>(kTableRecordFields));

// The call index kept between calls holds at most this many entries (32
// bytes each) once a call is done; a typical call needs a few dozen.
constexpr std::size_t kTapeEntriesKept = 4096;

// At most this many evaluations of one policy wait for their stores at once.
constexpr std::size_t kMaxParked = 65536;

// The layout's JSON text, built at compile time: the engine reads it at
// every start, before the first policy compiles, so it must cost nothing
// there (no JSON library, no number formatting at run time). Every name is a
// C++ identifier or a fixed word, so nothing needs escaping.
struct LayoutText {
  char text[3072] = {};
  std::size_t length = 0;  // writing past `text` fails the build (constant evaluation)

  constexpr void add(std::string_view part) {
    for (char c : part) text[length++] = c;
  }
  constexpr void add(std::size_t number) {
    char digits[20] = {};
    std::size_t count = 0;
    do {
      digits[count++] = static_cast<char>('0' + number % 10);
      number /= 10;
    } while (number != 0);
    while (count != 0) text[length++] = digits[--count];
  }
  constexpr void quoted(std::string_view part) {
    add("\"");
    add(part);
    add("\"");
  }

  template <typename Struct, std::size_t N>
  constexpr void add_struct(std::string_view name, const FieldLayout (&fields)[N]) {
    quoted(name);
    add(":{\"size\":");
    add(sizeof(Struct));
    add(",\"align\":");
    add(alignof(Struct));
    add(",\"fields\":{");
    for (std::size_t i = 0; i < N; ++i) {
      if (i != 0) add(",");
      quoted(fields[i].name);
      add(":{\"offset\":");
      add(fields[i].offset);
      add(",\"type\":");
      quoted(fields[i].type);
      add(",\"size\":");
      add(fields[i].size);
      add("}");
    }
    add("}},");
  }

  template <std::size_t N>
  constexpr void add_names(std::string_view name, const std::string_view (&list)[N]) {
    quoted(name);
    add(":[");
    for (std::size_t i = 0; i < N; ++i) {
      if (i != 0) add(",");
      quoted(list[i]);
    }
    add("],");
  }
};

// toolgate::Verdict by value; the spec's decision names (static_assert above
// holds the values).
constexpr std::string_view kVerdictNames[] = {"allow", "deny", "approval_required"};

// {"output", "counter", "count", "table_record": {"size", "align", "fields": {name: {"offset", "type", "size"}}},
//  "kinds", "verdicts", "scopes", "algorithms": [names by code], "max_parked": n}
constexpr LayoutText make_layout() {
  LayoutText out;
  out.add("{");
  out.add_struct<FastOutput>("output", kOutputFields);
  out.add_struct<FastCounter>("counter", kCounterFields);
  out.add_struct<FastCount>("count", kCountFields);
  out.add_struct<TableRecord>("table_record", kTableRecordFields);
  out.add_names("kinds", kOutputKindNames);
  out.add_names("verdicts", kVerdictNames);
  out.add_names("scopes", kScopeNames);
  out.add_names("algorithms", kAlgorithmNames);
  out.add("\"max_parked\":");
  out.add(kMaxParked);
  out.add("}");
  return out;
}
constexpr LayoutText kLayout = make_layout();

// The boundary as JSON text, for wasm/boundary-layout.js (the glue copies it
// into a JS string; no C++ runs).
TOOLGATE_COLD std::string boundary_layout() { return std::string(kLayout.text, kLayout.length); }

// The engine's state lives as long as its instance, which never exits
// (no EXIT_RUNTIME): its globals are never destroyed, and no destructor of
// them is compiled (KEPT, clang's no_destroy: about 2 KB of .wasm, the
// budget's room for the memory store's table).
#define KEPT [[clang::no_destroy]]

KEPT FastOutput g_output;
KEPT toolgate::Decision g_decision;        // what g_output's decision strings point into
KEPT std::string g_pending_text;           // OutputKind::pending_text
KEPT std::vector<FastCounter> g_counters;  // OutputKind::parked; strings point into the parked evaluation
KEPT std::vector<std::uint8_t> g_input;    // the encoded call, or the store's counts (FastCount)
// The hot path's working storage, kept from call to call so that a decision
// allocates nothing once it has grown: the encoded call's index (the core
// reads the call in place, no DOM), its pending evaluation, and the store's
// counts. g_decision's strings are reused too (evaluate_into, finish_into).
KEPT toolgate::CallTape g_tape;
KEPT toolgate::PendingCall g_pending;
KEPT std::vector<toolgate::CounterState> g_counts;
KEPT std::string g_read_error;
// explain()'s traced step one (start_buffer_traced, start_text_traced):
// the steps are traced here, then moved to the parked slot when the call
// parks; g_traced_start is step one's steps and pending evaluation as JSON
// text, which JS reads right after the start (traced_start()). Only a traced
// start touches these: the hot path never builds a step.
KEPT toolgate::Trace g_trace;
KEPT std::string g_traced_start;

// A MemoryCounterStore's counts, when the store is bound to this instance
// (wasm/memory-store.js): the table, and the area JS writes a call's
// counters into (TableRecord) for the store's own methods.
struct StoreTable {
  toolgate::CounterTable counts;
  std::vector<std::uint8_t> io;
};
// What the table's own methods read (toolgate_table), and every reserve's
// starts: kept between calls.
KEPT std::vector<toolgate::CounterRequest> g_table_requests;
KEPT std::vector<double> g_table_starts;

std::uint32_t address_of(const void* pointer) { return static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(pointer)); }
std::uint32_t length(const std::string& text) { return static_cast<std::uint32_t>(text.size()); }

// The text last published in one place of the output (a decision's code, a
// parked call's first counter key, ...) and its version (FastOutput::
// code_version). One counter numbers every change in every place, so a
// version names one text for 2^32 changes; the decoder also checks the
// address and length it saw it at.
struct PublishedText {
  std::string text;  // a copy: the published string is overwritten in place by the next call
  u32 version = 0;
};
u32 g_last_version = 0;

// Whether two texts are equal, eight bytes at a time: the libc memcmp of the
// .wasm compares byte by byte, and a decision's message is often 60 bytes.
bool same_text(const std::string& a, const std::string& b) {
  const std::size_t size = a.size();
  if (size != b.size()) return false;
  const char* x = a.data();
  const char* y = b.data();
  std::size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    std::uint64_t p, q;
    std::memcpy(&p, x + i, 8);
    std::memcpy(&q, y + i, 8);
    if (p != q) return false;
  }
  for (; i < size; ++i) {
    if (x[i] != y[i]) return false;
  }
  return true;
}

__attribute__((noinline)) u32 version_of(PublishedText& last, const std::string& now) {
  if (last.version != 0 && same_text(last.text, now)) return last.version;
  last.text = now;  // keeps its capacity: no allocation once warm
  if (++g_last_version == 0) g_last_version = 1;
  return last.version = g_last_version;
}

KEPT PublishedText g_code_text, g_rule_text, g_message_text, g_approval_text;
// The first counters of a parked call, by index; later ones go unversioned
// (0: the decoder reads them), so an odd call with thousands of counters
// leaves no copies behind.
constexpr std::size_t kVersionedCounters = 16;
KEPT PublishedText g_counter_keys[kVersionedCounters], g_counter_grants[kVersionedCounters];

// Counts every write of the output area (each publish_* below), so that a
// policy can tell its last default denial is still what the area holds
// (CompiledPolicy::deny_memo_). Never 0 once anything was published.
u32 g_publications = 0;
void published() {
  if (++g_publications == 0) g_publications = 1;
}

// Points the output area at g_decision.
__attribute__((noinline)) void publish_decision() {
  published();
  g_output.kind = static_cast<u32>(OutputKind::decision);
  g_output.verdict = static_cast<std::uint32_t>(g_decision.verdict);
  g_output.code = address_of(g_decision.code.data());
  g_output.code_length = length(g_decision.code);
  g_output.rule = address_of(g_decision.rule.data());
  g_output.rule_length = length(g_decision.rule);
  g_output.message = address_of(g_decision.message.data());
  g_output.message_length = length(g_decision.message);
  g_output.approval = g_decision.approval_id ? address_of(g_decision.approval_id->data()) : 0;
  g_output.approval_length = g_decision.approval_id ? length(*g_decision.approval_id) : 0;
  g_output.code_version = version_of(g_code_text, g_decision.code);
  g_output.rule_version = version_of(g_rule_text, g_decision.rule);
  g_output.message_version = version_of(g_message_text, g_decision.message);
  g_output.approval_version = g_decision.approval_id ? version_of(g_approval_text, *g_decision.approval_id) : 0;
  g_output.has_retry = g_decision.retry_after_ms.has_value();
  g_output.retry_after_ms = g_decision.retry_after_ms ? static_cast<double>(*g_decision.retry_after_ms) : 0;
}

void write_decision(toolgate::Decision&& decision) {
  g_decision = std::move(decision);
  publish_decision();
}

// A compiled policy held by JS: an immutable plan, plus the evaluations parked
// between start and finish. JS must call delete() (the façade
// does, in dispose() and through a FinalizationRegistry).
class CompiledPolicy {
 public:
  explicit CompiledPolicy(const std::string& text) {
    toolgate::CompileResult result = toolgate::compile_policy(text);
    plan_ = std::move(result.plan);
    // nlohmann's serializer only for a policy with problems: it is code V8
    // compiles on its first run, and a clean policy's "[]" needs none of it.
    diagnostics_ = result.diagnostics.empty() ? "[]" : dump(toolgate::to_json(result.diagnostics));
  }

  bool ok() const { return plan_ != nullptr; }
  std::string diagnostics() const { return diagnostics_; }
  std::string hash() const { return plan_ ? plan_->policy_hash : ""; }

  // Everything the façade reads once per policy, in one call, as JSON text:
  // {"ok", "hash", "diagnostics" (as diagnostics()), "exact" and "globs"
  // (every tool name and glob the policy mentions, Plan::names), "monitor"
  // (the document's "mode" is "monitor"), "monitored" (the tools keys whose
  // entry is in monitor mode)}; empty lists when it did not compile. Written
  // by hand (append_json_string escapes as JSON.stringify does; every name is
  // valid UTF-8, the reader refuses any other text, so nothing needs the
  // serializer's replacement of bad bytes): no DOM and no nlohmann serializer
  // on a cold start's path, and one crossing instead of five.
  std::string summary() const {
    std::string out = plan_ ? R"({"ok":true,"hash":)" : R"({"ok":false,"hash":)";
    toolgate::append_json_string(out, hash());
    out += R"(,"diagnostics":)";
    out += diagnostics_;
    out += R"(,"exact":[)";
    if (plan_) append_list(out, plan_->names.exact);
    out += R"(],"globs":[)";
    if (plan_) append_list(out, plan_->names.globs);
    out += plan_ && plan_->monitor ? R"(],"monitor":true,"monitored":[)" : R"(],"monitor":false,"monitored":[)";
    bool first = true;
    if (plan_) {
      for (const toolgate::ToolEntry& entry : plan_->tools) {
        if (!entry.monitor) continue;
        if (!first) out += ',';
        first = false;
        toolgate::append_json_string(out, entry.key);
      }
    }
    out += "]}";
    return out;
  }

  // The elements of a JSON list of strings, comma-separated.
  static void append_list(std::string& out, const std::vector<std::string>& items) {
    for (const std::string& item : items) {
      if (&item != items.data()) out += ',';
      toolgate::append_json_string(out, item);
    }
  }

  // Step one for a call in the input area (call_buffer.h), the hot path:
  // only the arguments this policy can read are decoded.
  // The call is read in place (read_call_view: checked and indexed into
  // g_tape, no DOM) and evaluated into g_decision / g_pending.
  //
  // `traced` (explain() only, always parked): step one's steps are traced
  // into g_trace and published with the pending evaluation as JSON text
  // (publish_traced_start); a parked call keeps a Trace in its slot, so that
  // finish_buffer() traces step two of this same evaluation.
  //
  // `table` (toolgate_decide, decide() with a memory store bound to this
  // instance): a pending evaluation that needs no approval is reserved in
  // the table, finished and committed here, in this one call into the
  // engine; one that needs an approval parks as usual.
  void start_buffer(std::uint32_t length, double default_now_ms, bool park_pending, bool traced = false,
                    StoreTable* table = nullptr) {
    // Nothing outlives this call that points into the tape (a pending
    // evaluation holds its own strings): a call far larger than usual leaves
    // no large tape behind, its memory goes back to malloc.
    struct TrimTape {
      ~TrimTape() {
        if (g_tape.entries.capacity() > kTapeEntriesKept) {
          std::vector<toolgate::CallTape::Entry>().swap(g_tape.entries);
          g_tape.used = 0;
        }
      }
    } trim;
    toolgate::Trace* trace = traced ? begin_trace() : nullptr;
    std::span<const std::uint8_t> bytes(g_input.data(), length);
    auto options = read_options(default_now_ms);
    if (!options) return write_decision(invalid_now());
    toolgate::CallView call;
    const bool read = plan_ ? toolgate::read_call_view(bytes, *options, *plan_, g_tape, call, g_read_error)
                            : toolgate::read_call_view(bytes, *options, g_tape, call, g_read_error);
    if (!read) return write_decision(toolgate::invalid_call(g_read_error));
    if (!plan_) return write_decision(toolgate::invalid_call("the policy did not compile."));
    // A default denial depends on nothing but the tool's name: the same name
    // denied again, with nothing published since (no other call, finish or
    // policy wrote the output area), finds its decision there already, code,
    // rule, message and versions. Only after the whole call was read and
    // checked, so a malformed call gets its own error.
    const bool default_denied = !trace && call.matched_by == plan_.get() && call.matched_tool.data() == call.tool.data() &&
                                !call.match.hidden && !call.match.entry && !plan_->default_allow;
    if (default_denied && deny_memo_.publication == g_publications && deny_memo_.publication != 0 &&
        deny_memo_.tool == call.tool)
      return;
    // Parked, the evaluation is written straight into a free slot of the
    // table, whose strings and vectors are kept from its last use.
    const std::optional<std::uint32_t> slot = park_pending ? free_slot() : std::nullopt;
    toolgate::PendingCall& target = slot ? slots_[*slot].pending : g_pending;
    if (toolgate::evaluate_into(*plan_, call, g_decision, target, trace)) {
      publish_decision();
      if (trace) publish_traced_start(nullptr);
      if (default_denied && call.tool.size() <= kDenyMemoTool) {
        deny_memo_.tool.assign(call.tool);
        deny_memo_.publication = g_publications;
      }
      return;
    }
    if (table && !target.approval) return finish_with(*table, target);
    if (!park_pending) return publish_pending_text(target);
    if (trace) publish_traced_start(&target);
    if (!slot) return write_decision(parked_full());
    publish_parked(occupy(*slot, traced), target);
  }

  // The same for a call as JSON text (what the binary form cannot carry).
  void start_text(const std::string& call_text, double default_now_ms, bool park_pending) {
    auto options = read_options(default_now_ms);
    if (!options) return write_decision(invalid_now());
    emit(evaluate_read(toolgate::read_call(call_text, *options)), park_pending);
  }

  // explain()'s step one for the encoded call in the input area:
  // toolgate_start, parked, with the steps traced (JS reads them with
  // tracedStart() right after). Through embind, not a plain export: explain()
  // is not the hot path.
  void start_buffer_traced(std::uint32_t length, double default_now_ms) {
    if (length > g_input.size()) {
      begin_trace();
      return write_decision(toolgate::invalid_call("the encoded call is larger than its buffer."));
    }
    start_buffer(length, default_now_ms, true, true);
  }

  // The same for a call as JSON text: start_text, parked and traced.
  TOOLGATE_COLD void start_text_traced(const std::string& call_text, double default_now_ms) {
    toolgate::Trace* trace = begin_trace();
    auto options = read_options(default_now_ms);
    if (!options) {
      write_decision(invalid_now());
      return publish_traced_start(nullptr);
    }
    toolgate::Evaluation evaluation = evaluate_read(toolgate::read_call(call_text, *options), trace);
    publish_traced_start(evaluation.decision ? nullptr : &evaluation.pending);
    emit(std::move(evaluation), true, true);
  }

  // The steps a traced finish took for `ticket` (a parked evaluation from a
  // traced start), as JSON text: step two's steps for the last finish of
  // this ticket, [] before any, or for a ticket that is not parked or was
  // not traced. JS reads them before it releases the ticket.
  TOOLGATE_COLD std::string finish_trace(std::uint32_t ticket) const {
    const Slot* slot = find_slot(ticket);
    return slot && slot->traced ? dump(slot->trace.to_json()) : "[]";
  }

  // Step one as JSON text (the differential tests compare it byte for byte
  // with the native core's): a decision, or the whole pending evaluation.
  std::string evaluate(const std::string& call_text, double default_now_ms) {
    start_text(call_text, default_now_ms, false);
    return g_output.kind == 0 ? toolgate::decision_text(g_decision) : g_pending_text;
  }

  // Writes step one's result to the output area: a decision, or the pending
  // evaluation. `park_pending`: authorize() parks it here under a ticket and
  // gets only what its stores need (OutputKind::parked); JS must release()
  // every ticket. When kMaxParked already wait, the call is refused
  // (store_error, fail closed) and nothing waiting is dropped. Otherwise
  // evaluate() gets it whole, as JSON text (OutputKind::pending_text).
  void emit(toolgate::Evaluation&& evaluation, bool park_pending, bool traced = false) {
    if (evaluation.decision) return write_decision(std::move(*evaluation.decision));
    emit_pending(std::move(evaluation.pending), park_pending, traced);
  }

  void emit_pending(toolgate::PendingCall&& pending_call, bool park_pending, bool traced = false) {
    if (!park_pending) return publish_pending_text(pending_call);
    const std::optional<std::uint32_t> slot = free_slot();
    if (!slot) return write_decision(parked_full());
    slots_[*slot].pending = std::move(pending_call);
    publish_parked(occupy(*slot, traced), slots_[*slot].pending);
  }

  // Starts tracing a step one: g_trace emptied (its storage kept).
  // Until step one publishes more (a call refused before it is read has
  // no steps), JS reads {"trace": []}.
  static toolgate::Trace* begin_trace() {
    g_trace.steps.clear();
    g_traced_start = R"({"trace":[]})";
    return &g_trace;
  }

  // {"trace": [step one's steps], "pending": {...}} into g_traced_start;
  // "pending" only when step one made one (explain() reports it even when
  // the table was full and the call was refused, as it always has).
  TOOLGATE_COLD static void publish_traced_start(const toolgate::PendingCall* pending) {
    json out = {{"trace", g_trace.to_json()}};
    if (pending) out["pending"] = toolgate::to_json(*pending);
    g_traced_start = dump(out);
    g_trace.steps.clear();  // a step may hold a large value it read: kept only as text, until read
  }

  void publish_pending_text(const toolgate::PendingCall& pending) {
    published();
    g_pending_text = dump(toolgate::to_json(pending));
    g_output.kind = static_cast<u32>(OutputKind::pending_text);
    g_output.message = address_of(g_pending_text.data());
    g_output.message_length = ::length(g_pending_text);
  }

  void publish_parked(std::uint32_t ticket, const toolgate::PendingCall& pending) {
    published();
    g_output.kind = static_cast<u32>(OutputKind::parked);
    g_output.ticket = ticket;
    g_output.now_ms = static_cast<double>(pending.now_ms);
    g_output.approval = pending.approval ? address_of(pending.approval->id.data()) : 0;
    g_output.approval_length = pending.approval ? ::length(pending.approval->id) : 0;
    g_output.approval_timeout_ms = pending.approval ? static_cast<double>(pending.approval->timeout_ms) : 0;
    g_counters.resize(pending.counters.size());
    const std::size_t versioned = std::min(pending.counters.size(), kVersionedCounters);
    for (std::size_t i = 0; i < pending.counters.size(); ++i) {
      const toolgate::CounterRequest& request = pending.counters[i];
      FastCounter& out = g_counters[i];
      out.key = address_of(request.key.data());
      out.key_length = ::length(request.key);
      out.grant = address_of(request.grant.data());
      out.grant_length = ::length(request.grant);
      out.scope = static_cast<u32>(request.scope);
      out.algorithm = static_cast<u32>(request.algorithm);
      out.cost = request.cost;
      out.max = request.max;
      out.window_ms = static_cast<double>(request.window_ms);
      out.bucket_start_ms = static_cast<double>(request.bucket_start_ms);
      out.key_version = i < versioned ? version_of(g_counter_keys[i], request.key) : 0;
      out.grant_version = i < versioned ? version_of(g_counter_grants[i], request.grant) : 0;
    }
    g_output.counters = address_of(g_counters.data());
    g_output.counter_count = static_cast<std::uint32_t>(g_counters.size());
  }

  // Step two for a parked evaluation: the store's counts are `count`
  // FastCounts in the input area; the decision goes to the output area.
  // Counts JS could not read as numbers arrive as -1.
  //
  // A slot from a traced start traces this finish into its Trace (replacing
  // the steps of an earlier finish of the same ticket: explain() shows the
  // finish that decided, as authorize() may finish twice when an approval
  // was used up meanwhile). Other slots pass no trace: the hot path builds
  // no step.
  void finish_buffer(std::uint32_t ticket, bool approved, std::uint32_t count) {
    Slot* slot = find_slot(ticket);
    // Tickets are only ever released by JS (never evicted), and JS finishes
    // a ticket before it releases it: this is a host bug, denied.
    if (!slot) return write_decision(store_error_decision("the evaluation was already released"));
    const toolgate::PendingCall* parked = &slot->pending;
    toolgate::Trace* trace = nullptr;
    if (slot->traced) {
      slot->trace.steps.clear();
      trace = &slot->trace;
    }
    if (static_cast<std::size_t>(count) * sizeof(FastCount) > g_input.size())
      return write_decision(store_error_decision("the counter store's answer was malformed"));
    std::vector<toolgate::CounterState>& counts = g_counts;
    counts.resize(count);
    for (std::uint32_t i = 0; i < count; ++i) {
      FastCount answer;
      std::memcpy(&answer, g_input.data() + i * sizeof(FastCount), sizeof(FastCount));
      const double current = answer.current, previous = answer.previous;
      if (!(current >= 0 && previous >= 0 && current <= 1e300 && previous <= 1e300))
        return write_decision(store_error_decision("the counter store returned an impossible count"));
      counts[i] = toolgate::CounterState{current, previous};
    }
    if (approved && counts.size() != parked->counters.size())
      return write_decision(store_error_decision("the counter store answered for the wrong number of counters"));
    toolgate::finish_into(*parked, approved, counts, g_decision, trace);
    publish_decision();
  }

  // decide()'s step two with a memory store bound to this instance: what
  // the façade's #decideNow does with MemoryCounterStore.reserveNow,
  // finishEncoded and commitNow, step for step, with the store's counts in
  // `table`. The charge is final once published (decide() commits at once).
  static void finish_with(StoreTable& table, const toolgate::PendingCall& pending) {
    const std::vector<toolgate::CounterRequest>& requests = pending.counters;
    const bool admitted = table.counts.reserve(requests, static_cast<double>(pending.now_ms), g_counts, g_table_starts);
    toolgate::finish_into(pending, true, g_counts, g_decision);
    if ((g_decision.verdict == toolgate::Verdict::allow) != admitted) return store_disagrees(table, requests, admitted);
    publish_decision();
  }

  // The table and the policy disagree (a bug): deny, and give back what was
  // charged, in the façade's words (wasm/index.js, #decideNow).
  TOOLGATE_COLD static void store_disagrees(StoreTable& table, const std::vector<toolgate::CounterRequest>& requests,
                                            bool admitted) {
    if (admitted) {
      for (std::size_t i = 0; i < requests.size(); ++i) table.counts.rollback(requests[i].key, g_table_starts[i], requests[i].cost);
    }
    toolgate::Decision decision;
    decision.code = "store_error";
    decision.message = "The counter store and the policy disagree; the call is denied (fail closed).";
    write_decision(std::move(decision));
  }

  void release(std::uint32_t ticket) {
    Slot* slot = find_slot(ticket);
    if (!slot) return;
    const std::uint32_t index = ticket & kSlotMask;
    if (slot->traced) {  // its steps are JSON objects: not kept for a later call
      slot->trace.steps.clear();
      slot->traced = false;
    }
    slot->ticket = 0;
    free_.push_back(index);
    --parked_count_;
  }

  // How many evaluations wait (parked, not yet released), for tests.
  std::uint32_t parked() const { return parked_count_; }

  // Every limit of the policy and the counter it charges, as JSON text
  // (wire.h, to_json(std::vector<LimitInfo>)); [] when it did not compile.
  TOOLGATE_COLD std::string limits() const { return plan_ ? dump(toolgate::to_json(plan_->limits())) : "[]"; }

  // Where this object lives, for the exported hot-path functions.
  std::uint32_t address() const { return address_of(this); }

  // Whether `tool` vanishes from tools/list.
  bool hidden(const std::string& tool) const { return plan_ && plan_->find_hidden(tool) != nullptr; }

  // Whether calls to `tool` run in monitor mode ("mode": "monitor" on the
  // document or on the entry that governs it).
  bool monitored(const std::string& tool) const { return plan_ && plan_->monitored(tool); }


 private:
  // The table of parked evaluations: slots reused from call to call, so a
  // parked evaluation allocates nothing once its slot has held one of its
  // size. A ticket is (the slot's use count, 16 bits, never 0) << 16 | slot:
  // it names one evaluation for as long as it waits (its slot is not reused
  // before release), and a released ticket finds nothing until its slot has
  // been used 65 535 times more (JS releases each ticket once, after its
  // finish, and never uses it again).
  struct Slot {
    std::uint32_t ticket = 0;  // 0: free
    std::uint32_t uses = 0;
    toolgate::PendingCall pending;
    bool traced = false;       // parked by explain(): its finish is traced into `trace`
    toolgate::Trace trace;     // the last traced finish's steps
  };
  static constexpr std::uint32_t kSlotMask = 0xFFFF;
  static_assert(kMaxParked <= kSlotMask + 1, "a slot index fits 16 bits of a ticket");

  // The denial when the table is full: stable text (tests match it).
  TOOLGATE_COLD static toolgate::Decision parked_full() {
    return store_error_decision("too many calls of this policy are waiting for their counter and approval stores (" +
                                std::to_string(kMaxParked) + " at once); retry once some finish");
  }

  // A free slot (the table grows up to kMaxParked), or nullopt when
  // kMaxParked already wait: a new call is refused rather than a waiting one
  // dropped, so no finish can ever meet another call's evaluation or a
  // missing one. The slot stays free until occupy().
  std::optional<std::uint32_t> free_slot() {
    if (free_.empty()) {
      if (slots_.size() >= kMaxParked) return std::nullopt;
      slots_.emplace_back();
      free_.push_back(static_cast<std::uint32_t>(slots_.size() - 1));
    }
    return free_.back();
  }

  // Takes the slot free_slot() gave; returns its ticket. `traced`: the
  // evaluation came from a traced start (explain()).
  std::uint32_t occupy(std::uint32_t index, bool traced) {
    free_.pop_back();
    Slot& slot = slots_[index];
    slot.traced = traced;
    slot.uses = (slot.uses + 1) & kSlotMask;
    if (slot.uses == 0) slot.uses = 1;
    slot.ticket = slot.uses << 16 | index;
    ++parked_count_;
    return slot.ticket;
  }

  Slot* find_slot(std::uint32_t ticket) {
    const std::uint32_t index = ticket & kSlotMask;
    if (ticket == 0 || index >= slots_.size() || slots_[index].ticket != ticket) return nullptr;
    return &slots_[index];
  }
  const Slot* find_slot(std::uint32_t ticket) const { return const_cast<CompiledPolicy*>(this)->find_slot(ticket); }

  // Read options for a call, or nullopt when the host's `now` is not a valid
  // time: the cast of NaN or an out-of-range double would be undefined
  // behaviour (the ECMAScript Date range, as read_timestamp uses).
  static std::optional<toolgate::CallReadOptions> read_options(double default_now_ms) {
    if (!(default_now_ms >= -8.64e15 && default_now_ms <= 8.64e15)) return std::nullopt;
    toolgate::CallReadOptions options;
    options.default_now_ms = static_cast<std::int64_t>(default_now_ms);
    return options;
  }

  static toolgate::Decision invalid_now() { return toolgate::invalid_call("the host's current time is not a valid timestamp."); }

  toolgate::Evaluation evaluate_read(const toolgate::CallRead& read, toolgate::Trace* trace = nullptr) const {
    toolgate::Evaluation result;
    if (!read.call) {
      result.decision = toolgate::invalid_call(read.error);
    } else if (!plan_) {
      result.decision = toolgate::invalid_call("the policy did not compile.");
    } else {
      result = toolgate::evaluate(*plan_, *read.call, trace);
    }
    return result;
  }

  // The last default denial this policy published from a binary call, while
  // the output area still holds it (publication == g_publications): its
  // tool's name, kept when at most kDenyMemoTool bytes.
  static constexpr std::size_t kDenyMemoTool = 256;
  struct {
    u32 publication = 0;
    std::string tool;
  } deny_memo_;

  std::shared_ptr<const toolgate::Plan> plan_;
  std::string diagnostics_;
  std::vector<Slot> slots_;
  std::vector<std::uint32_t> free_;  // slots not waiting, the next one to use last
  std::uint32_t parked_count_ = 0;
};

// Step two: {"pending": ..., "approved": bool, "states": [...]} -> decision.
// Anything malformed denies (fail closed).
TOOLGATE_COLD std::string finish(const std::string& input_text) {
  toolgate::JsonReadOptions options;
  options.record_positions = false;
  toolgate::JsonReadResult read = toolgate::read_json(input_text, options);
  auto fail = [] { return store_error("the counter store's answer was malformed"); };
  if (!read.ok() || !read.value.is_object()) return fail();
  const auto& object = read.value.get_ref<const json::object_t&>();
  auto pending = object.find("pending");
  auto approved = object.find("approved");
  auto states = object.find("states");
  if (pending == object.end() || approved == object.end() || !approved->second.is_boolean() || states == object.end())
    return fail();
  auto pending_call = toolgate::read_pending(pending->second);
  auto counter_states = toolgate::read_states(states->second);
  if (!pending_call || !counter_states) return fail();
  return toolgate::decision_text(toolgate::finish(*pending_call, approved->second.get<bool>(), *counter_states));
}

// Epoch milliseconds of a JSON timestamp (number or RFC 3339 string), or NaN.
TOOLGATE_COLD double read_timestamp(const std::string& value_text) {
  toolgate::JsonReadOptions options;
  options.record_positions = false;
  toolgate::JsonReadResult read = toolgate::read_json(value_text, options);
  if (!read.ok()) return __builtin_nan("");
  auto ms = toolgate::read_timestamp(read.value);
  return ms ? static_cast<double>(*ms) : __builtin_nan("");
}

// Where a JSON Pointer stands in a policy's text: "line,column" (1-based,
// column in code points) of the value, or of the nearest enclosing value that
// exists; "0,0" when the text is not JSON. For highlighting a decision's rule.
TOOLGATE_COLD std::string locate(const std::string& text, const std::string& pointer) {
  toolgate::JsonReadResult read = toolgate::read_json(text);
  if (!read.complete) return "0,0";
  auto [line, column] = read.source_map.locate(pointer);
  return std::to_string(line) + "," + std::to_string(column);
}

std::string version() { return toolgate::kVersion; }

// A call longer than the input area (a host bug): refused.
TOOLGATE_COLD void refuse_oversized_call() { write_decision(toolgate::invalid_call("the encoded call is larger than its buffer.")); }

// toolgate_start and toolgate_decide: one copy of the call's first checks.
__attribute__((noinline)) void start_call(CompiledPolicy* policy, std::uint32_t length, double default_now_ms, bool park,
                                          StoreTable* table) {
  if (length > g_input.size()) return refuse_oversized_call();
  policy->start_buffer(length, default_now_ms, park, false, table);
}

// The last traced start's {"trace", "pending"?} as JSON text (explain()),
// handed over: a trace of a call far larger than usual (the values its
// conditions read) is not kept after JS has it.
std::string traced_start() { return std::exchange(g_traced_start, std::string()); }

// A time JS sent for the table: a whole number the core's int64 holds (so
// the cast is defined, and exact: a double that large is whole, and the
// table reads it back as the same double).
bool whole(double value) { return value >= -9223372036854775808.0 && value < 9223372036854775808.0 && value == __builtin_trunc(value); }

// toolgate_table's work: not a decision's path (decide() reaches the table
// through toolgate_decide), so compiled for size.
TOOLGATE_COLD std::uint32_t table_op(std::uint32_t op, StoreTable* table, std::uint32_t count, double now_ms) {
  switch (op) {
    case 0: return address_of(new StoreTable());
    case 1: delete table; return 0;
    case 2:
      if (table->io.size() < count) table->io.resize(std::max<std::size_t>(count, table->io.size() * 2));
      return address_of(table->io.data());
    case 6: return static_cast<std::uint32_t>(table->counts.size());
    default: break;
  }
  // The records: each a TableRecord and its key's bytes, padded to 8.
  if (op != 3 && op != 4) return 2;
  // The records: each a TableRecord and its key's bytes, padded to 8. Read
  // into CounterRequests (the type the core's own reservations use: no
  // second copy of the table's code); times must be whole numbers within
  // the int64 range, as every time the core makes is (JS refuses others first).
  std::vector<toolgate::CounterRequest>& requests = g_table_requests;
  requests.resize(count);
  if (op == 4) g_table_starts.resize(count);
  const std::size_t size = table->io.size();
  std::size_t at = 0;
  for (std::uint32_t i = 0; i < count; ++i) {
    if (size - at < sizeof(TableRecord)) return 2;
    TableRecord record;
    std::memcpy(&record, table->io.data() + at, sizeof record);
    at += sizeof(TableRecord);
    if (size - at < record.key_length) return 2;
    toolgate::CounterRequest& request = requests[i];
    request.key.assign(reinterpret_cast<const char*>(table->io.data() + at), record.key_length);
    at = std::min(size, at + ((record.key_length + std::size_t{7}) & ~std::size_t{7}));
    if (op == 4) {
      request.bucket_start_ms = 0;
      request.window_ms = 0;
      g_table_starts[i] = record.bucket_start_ms;  // the charge's bucket, as charged (any double)
    } else {
      if (!(whole(record.window_ms) && whole(record.bucket_start_ms))) return 2;
      request.window_ms = static_cast<std::int64_t>(record.window_ms);
      request.bucket_start_ms = static_cast<std::int64_t>(record.bucket_start_ms);
    }
    request.cost = record.cost;
    request.max = record.max;
    request.algorithm = record.algorithm == static_cast<u32>(toolgate::Algorithm::sliding) ? toolgate::Algorithm::sliding
                                                                                            : toolgate::Algorithm::fixed;
  }
  // The answers, written back over each record (JS reads them there).
  std::vector<double>& starts = g_table_starts;
  bool admitted = false;
  if (op == 3) admitted = table->counts.reserve(requests, now_ms, g_counts, starts);
  at = 0;
  for (std::uint32_t i = 0; i < count; ++i) {
    auto* record = reinterpret_cast<TableRecord*>(table->io.data() + at);
    if (op == 4) {
      table->counts.rollback(requests[i].key, starts[i], requests[i].cost);
    } else {
      record->current = g_counts[i].current;
      record->previous = g_counts[i].previous;
      record->start = starts[i];
    }
    at = std::min(size, at + sizeof(TableRecord) + ((record->key_length + std::size_t{7}) & ~std::size_t{7}));
  }
  return admitted ? 1 : 0;
}

}  // namespace

// The hot path's exports (see the top of this file). `policy` is a
// CompiledPolicy's address() from the same instance.
extern "C" {

// The input area, grown to hold at least `size` bytes. Growing may grow the
// memory: JS re-reads its heap views after calling this.
EMSCRIPTEN_KEEPALIVE std::uint8_t* toolgate_input(std::uint32_t size) {
  if (g_input.size() < size) g_input.resize(std::max<std::size_t>(size, g_input.size() * 2));
  return g_input.data();
}

EMSCRIPTEN_KEEPALIVE FastOutput* toolgate_output() { return &g_output; }

EMSCRIPTEN_KEEPALIVE void toolgate_start(CompiledPolicy* policy, std::uint32_t length, double default_now_ms, std::uint32_t park) {
  start_call(policy, length, default_now_ms, park != 0, nullptr);
}

// `release` (optional: 0 when JS passes no fifth argument): the ticket is
// released once finished, in the same call into the engine (decide()'s
// common case, which uses the ticket for nothing else: about 25 ns saved).
EMSCRIPTEN_KEEPALIVE void toolgate_finish(CompiledPolicy* policy, std::uint32_t ticket, std::uint32_t approved, std::uint32_t count,
                                          std::uint32_t release) {
  policy->finish_buffer(ticket, approved != 0, count);
  if (release != 0) policy->release(ticket);
}

EMSCRIPTEN_KEEPALIVE void toolgate_release(CompiledPolicy* policy, std::uint32_t ticket) { policy->release(ticket); }

// toolgate_start (parked) with a memory store's table: a call that needs no
// approval is decided and its counters charged and committed in this one
// call (CompiledPolicy::finish_with); one that needs an approval parks.
EMSCRIPTEN_KEEPALIVE void toolgate_decide(CompiledPolicy* policy, StoreTable* table, std::uint32_t length, double default_now_ms) {
  start_call(policy, length, default_now_ms, true, table);
}


// A memory store's table, for the store's own methods (wasm/memory-store.js):
// one export for every operation, `op`:
//   0 new (returns its address)           1 delete
//   2 io: its area, holding at least `count` bytes (may grow memory)
//   3 reserve `count` TableRecords at `now` (1 admitted, 0 not)
//   4 rollback `count` charges (key, bucket_start_ms, cost)
//   6 size (keys held)
// A peek is a reserve that cannot be admitted (JS sends max NaN, cost 0 and
// now -Infinity: the states are read, nothing is charged, no sweep runs).
// reserve and rollback return 2 when the records do not fit the area
// (nothing is read or charged then).
EMSCRIPTEN_KEEPALIVE std::uint32_t toolgate_table(std::uint32_t op, StoreTable* table, std::uint32_t count, double now_ms) {
  return table_op(op, table, count, now_ms);
}

}  // extern "C"

EMSCRIPTEN_BINDINGS(toolgate) {
  emscripten::class_<CompiledPolicy>("CompiledPolicy")
      .constructor<const std::string&>()
      .function("ok", &CompiledPolicy::ok)
      .function("diagnostics", &CompiledPolicy::diagnostics)
      .function("hash", &CompiledPolicy::hash)
      .function("summary", &CompiledPolicy::summary)
      .function("startText", &CompiledPolicy::start_text)
      .function("evaluate", &CompiledPolicy::evaluate)
      .function("startBufferTraced", &CompiledPolicy::start_buffer_traced)
      .function("startTextTraced", &CompiledPolicy::start_text_traced)
      .function("finishTrace", &CompiledPolicy::finish_trace)
      .function("address", &CompiledPolicy::address)
      .function("release", &CompiledPolicy::release)
      .function("parked", &CompiledPolicy::parked)
      .function("limits", &CompiledPolicy::limits)
      .function("hidden", &CompiledPolicy::hidden)
      .function("monitored", &CompiledPolicy::monitored);
  emscripten::function("finish", &finish);
  emscripten::function("readTimestamp", &read_timestamp);
  emscripten::function("locate", &locate);
  emscripten::function("version", &version);
  emscripten::function("tracedStart", &traced_start);
  emscripten::function("boundaryLayout", &boundary_layout);
}
