// A call in a compact tagged binary form, for hosts that can write memory
// directly (the JS API writes it straight into WebAssembly memory).
//
// Why: a call crossing from JS as JSON text pays for JSON.stringify, UTF-8
// encoding, and nlohmann's character-at-a-time lexer, which together cost
// several times the decision itself. This form carries the same JSON value
// model (what JSON.stringify would have written, already parsed), so reading
// it is a walk with no lexing. The result is the same CallRead as
// read_call(text) on the equivalent JSON text: validation of the call's shape
// is shared (read_call_value).
//
// Layout (little-endian; one value, the call object, at the top level):
//   0x00 null | 0x01 false | 0x02 true
//   0x03 integer: f64 holding a safe integer (|n| <= 2^53 - 1); read as JSON
//        text would be: non-negative as unsigned, negative as signed
//   0x04 number: f64, finite
//   0x05 string: u32 byte length, UTF-8 bytes (must be well formed)
//   0x06 array:  u32 count, count values
//   0x07 object: u32 count, count × (u32 key length, UTF-8 key, value)
// Objects cannot repeat a key (a JS object cannot hold one twice), and the
// encoder sends anything JSON.stringify would transform (toJSON, undefined,
// non-finite or unsafe-integer numbers, lone surrogates, deep nesting) as JSON
// text instead, so the two paths never disagree.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "value.h"
#include "wire.h"

namespace toolgate {

enum class BufferTag : std::uint8_t { null = 0, false_ = 1, true_ = 2, integer = 3, number = 4, string = 5, array = 6, object = 7 };

// Never throws. A buffer that breaks the layout (truncated, bad UTF-8, a
// repeated key, nesting deeper than options.max_depth, trailing bytes) is an
// invalid_call with a reason, never undefined behaviour.
CallRead read_call_buffer(std::span<const std::uint8_t> bytes, const CallReadOptions& options = {});

// The same, decoding only the arguments evaluating the call against `plan`
// can read (Plan::argument_use for the call's tool); the others are stepped
// over (bounds-checked, not decoded), so a 1 MB argument no rule looks at
// costs nothing. evaluate(plan, call) decides exactly as on the whole call.
CallRead read_call_buffer(std::span<const std::uint8_t> bytes, const CallReadOptions& options, const Plan& plan);

// The same call read without a DOM, for evaluate(plan, CallView): the buffer
// is checked exactly as read_call_buffer(bytes, options, plan) checks it (the
// same calls are refused, with the same reason) and indexed into `tape`;
// `call` then views the buffer through the tape, so both must outlive it.
// Nothing is allocated once the tape has grown to the calls' size. False
// with `error` set when the call is malformed.
bool read_call_view(std::span<const std::uint8_t> bytes, const CallReadOptions& options, const Plan& plan, CallTape& tape,
                    CallView& call, std::string& error);
// The same, indexing every argument (no plan to say which are read).
bool read_call_view(std::span<const std::uint8_t> bytes, const CallReadOptions& options, CallTape& tape, CallView& call,
                    std::string& error);
// A temporary buffer would be gone before the view is read: refused at compile time.
bool read_call_view(std::vector<std::uint8_t>&& bytes, const CallReadOptions& options, const Plan& plan, CallTape& tape,
                    CallView& call, std::string& error) = delete;
bool read_call_view(std::vector<std::uint8_t>&& bytes, const CallReadOptions& options, CallTape& tape, CallView& call,
                    std::string& error) = delete;

// The binary form of a JSON value (the inverse of the reader, for tests and
// native hosts). Integers outside the safe range have no binary form: nullopt,
// as the JS encoder falls back to text for them.
std::optional<std::vector<std::uint8_t>> encode_call_buffer(const nlohmann::json& value);

}  // namespace toolgate
