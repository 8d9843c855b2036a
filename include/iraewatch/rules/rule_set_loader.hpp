#pragma once
// Loads a rules folder in stages: read every YAML file into plain data that keeps positions,
// collect definitions, compile conditions and templates, and check the whole. Every problem of
// every file comes back in one pass; a set with any error is never returned.

#include <memory>
#include <string>
#include <vector>

#include "iraewatch/rules/diagnostic.hpp"
#include "iraewatch/rules/rule_set.hpp"

namespace iraewatch::rules {

struct LoadedRuleSet {
  std::shared_ptr<const RuleSet> rules;  // null when any diagnostic is an error
  std::vector<Diagnostic> diagnostics;   // errors and warnings, in file order
};

// A folder holding concepts.yaml, settings.yaml and rule files (*.yaml).
LoadedRuleSet load_rule_set(const std::string& dir);

// Explicit files; concepts.yaml and settings.yaml are taken from the folder of the first file
// when not among them.
LoadedRuleSet load_rule_files(const std::vector<std::string>& paths);

}  // namespace iraewatch::rules
