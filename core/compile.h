// Compile stage: policy text -> immutable Plan, or every problem at once.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>
#include <vector>

#include "diagnostics.h"
#include "plan.h"

namespace toolgate {

struct CompileOptions {
  // Nesting limit for the policy document; deeper documents are rejected with
  // json_too_deep instead of risking the stack in later stages.
  std::size_t max_depth = 128;
};

struct CompileResult {
  std::shared_ptr<const Plan> plan;      // null when any diagnostic is an error
  std::vector<Diagnostic> diagnostics;   // errors and warnings, in document order
  bool ok() const { return plan != nullptr; }
};

// Never throws. A policy with any error is rejected whole (plan == nullptr).
CompileResult compile_policy(std::string_view text, const CompileOptions& options = {});

}  // namespace toolgate
