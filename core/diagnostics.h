// Diagnostics: problems found in a policy, reported as values (never thrown).
// Every diagnostic carries a stable `code` (listed in core/README.md; tools may
// match on it), the JSON Pointer of the offending part and its line:column.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace toolgate {

enum class Severity { error, warning };

std::string_view to_string(Severity severity);

struct Diagnostic {
  std::string code;       // stable identifier, e.g. "unknown_field"
  Severity severity = Severity::error;
  std::string message;    // what is wrong and how to fix it
  std::string pointer;    // JSON Pointer (RFC 6901) into the policy; "" is the document
  std::size_t line = 0;   // 1-based; 0 when unknown
  std::size_t column = 0; // 1-based, counted in Unicode code points; 0 when unknown
};

bool has_errors(const std::vector<Diagnostic>& diagnostics);

// RFC 6901 escaping of one reference token ("~" -> "~0", "/" -> "~1").
std::string escape_pointer_token(std::string_view token);

}  // namespace toolgate
