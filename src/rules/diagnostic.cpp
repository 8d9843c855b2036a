#include "iraewatch/rules/diagnostic.hpp"

namespace iraewatch::rules {

std::string format(const Diagnostic& d) {
  std::string out = d.file;
  if (d.line > 0) out += ":" + std::to_string(d.line) + ":" + std::to_string(d.column);
  out += d.severity == Diagnostic::Severity::error ? ": error: " : ": warning: ";
  out += "[" + d.code + "] " + d.message;
  if (!d.rule.empty()) out += " (" + d.rule + ")";
  return out;
}

bool has_errors(const std::vector<Diagnostic>& diagnostics) {
  for (const auto& d : diagnostics)
    if (d.severity == Diagnostic::Severity::error) return true;
  return false;
}

core::Error to_error(const std::vector<Diagnostic>& diagnostics) {
  std::string message;
  for (const auto& d : diagnostics) {
    if (!message.empty()) message += "\n";
    message += format(d);
  }
  return core::Error{core::ErrorCode::config, message};
}

}  // namespace iraewatch::rules
