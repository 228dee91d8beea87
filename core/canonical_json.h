// RFC 8785 JSON Canonicalization Scheme (JCS) and SHA-256, for approval ids:
// an approval id is the lowercase hex SHA-256 of the JCS form of
// {"arguments": ..., "grant": <grant id>, "tool": <name>}, so any host that
// canonicalizes the same call the same way gets the same id.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "value.h"

namespace toolgate {

// JCS: object members sorted by the UTF-16 code units of their names, no
// insignificant whitespace, strings escaped as in ECMAScript JSON.stringify,
// numbers serialized as ECMAScript Number.prototype.toString of their IEEE-754
// double value (integers beyond 2^53 are rounded to the nearest double first,
// as JCS requires). `value` must be no deeper than the caller's depth limit
// (the core's JSON reader bounds it), as serialization recurses.
std::string canonical_json(const nlohmann::json& value);
// The same for a viewed value; a string or number is written without a DOM
// (a counter `key` value, per call).
std::string canonical_json(Value value);

// Appends `text` as a JSON string literal, escaped as RFC 8785 (and
// ECMAScript JSON.stringify) do: short escapes for \b \t \n \f \r " \\,
// \u00xx for other control characters, everything else as is (valid UTF-8).
void append_json_string(std::string& out, std::string_view text);

// ECMAScript Number.prototype.toString for a finite double (shortest round-trip
// digits, exponent form below 1e-6 and from 1e21).
std::string ecmascript_number(double value);

// Lowercase hex SHA-256 (FIPS 180-4) of the bytes of `data`.
std::string sha256_hex(std::string_view data);

}  // namespace toolgate
