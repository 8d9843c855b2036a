#pragma once
// Loads the configured rule set for a command, printing its diagnostics the way `check` does.

#include <memory>
#include <string>

#include "iraewatch/app/config.hpp"
#include "iraewatch/rules/diagnostic.hpp"
#include "iraewatch/rules/rule_set.hpp"

namespace iraewatch::app {

// Null (after printing every error to stderr) when the rule set does not load.
std::shared_ptr<const rules::RuleSet> load_rules_or_report(const Config& config);

// "file:line:col: error: [code] message (rule)", then the source line and a caret under the spot.
std::string format_with_source(const rules::Diagnostic& d);

}  // namespace iraewatch::app
