#pragma once
// A problem found while loading a rule or concept file: data with a code and a position, never a
// crash. Positions are 1-based, as editors show them.

#include <string>
#include <vector>

#include "iraewatch/core/error.hpp"

namespace iraewatch::rules {

struct Diagnostic {
  enum class Severity { error, warning };

  std::string file;
  int line = 0;    // 1-based; 0 when the problem has no position (e.g. a missing file)
  int column = 0;  // 1-based
  Severity severity = Severity::error;
  std::string code;     // short and stable, e.g. "unknown-key", "unit-syntax"
  std::string message;  // what and why
  std::string rule;     // the rule or concept the problem belongs to, when there is one
};

// "file:line:col: error: [code] message (rule)"
std::string format(const Diagnostic& d);

bool has_errors(const std::vector<Diagnostic>& diagnostics);

// All diagnostics in one config error, one per line, for start-up failures.
core::Error to_error(const std::vector<Diagnostic>& diagnostics);

}  // namespace iraewatch::rules
