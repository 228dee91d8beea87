// toolgate core: the public API in one include.
//
//   auto compiled = toolgate::compile_policy(text);        // once per policy
//   if (!compiled.ok()) { report compiled.diagnostics }
//   auto evaluation = toolgate::evaluate(*compiled.plan, call);   // per call
//   ... host store round trip for approvals and counters ...
//   auto decision = toolgate::finish(evaluation.pending, approved, states);
#pragma once

#include "canonical_json.h"
#include "compile.h"
#include "counter_table.h"
#include "diagnostics.h"
#include "evaluate.h"
#include "plan.h"
#include "wire.h"

namespace toolgate {

inline constexpr const char* kVersion = "0.1.0";
inline constexpr const char* kPolicyLanguageVersion = "1";

}  // namespace toolgate
