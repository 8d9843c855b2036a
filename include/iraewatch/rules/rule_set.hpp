#pragma once
// A validated, immutable rule set: settings, signals, concept map and compiled rules. Built by
// load_rule_set (rule_set_loader.hpp); the engine only reads it.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "iraewatch/core/concept_map.hpp"
#include "iraewatch/rules/expression.hpp"

namespace iraewatch::rules {

struct Settings {
  std::int64_t ici_exposure_window_ms = 365LL * 86'400'000;
  std::int64_t combination_window_ms = 42LL * 86'400'000;
  std::int64_t pair_window_ms = 14LL * 86'400'000;
  std::map<std::string, std::int64_t> freshness_ms;  // by concept kind: lab, vital, symptom
  std::int64_t history_window_ms = 730LL * 86'400'000;
};

struct Wording {
  // Summary lines; placeholders {signal_title}, {grade}, {previous_grade}, {finding}.
  std::string alert_summary;      // e.g. "{signal_title}, suspected CTCAE grade {grade}: {finding}"
  std::string resolved_summary;   // newer data shows the signal no longer holds
  std::string retracted_summary;  // the data that raised it was corrected or withdrawn
  std::string review_note;        // "for clinician review" sentence, on every alert
  std::string combination_note;   // added when combination therapy applies
  std::string no_baseline_note;   // evidence note when a baseline default was used
  std::string default_value;      // how a summary shows a default, e.g. "{value}, none recorded"
  std::string unknown_value;      // how a summary shows missing or stale data, e.g. "not reported"
};

struct Signal {
  std::string name;   // e.g. "colitis"
  std::string title;  // e.g. "Possible immune-related colitis"
  std::vector<std::string> ctcae;
};

struct GradedCondition {
  int grade = 1;
  Expression when;
};

enum class Severity { info, warning, critical };
std::string_view to_string(Severity s);
// CTCAE grade 1 info, 2 warning, 3 and above critical.
Severity severity_for_grade(int grade);

// A summary template: literal text with {expression} parts.
struct Template {
  struct Part {
    std::string text;  // literal text, when `expr` is empty
    std::optional<Expression> expr;
  };
  std::vector<Part> parts;
};

struct Rule {
  std::string id;
  std::string signal;
  std::string title;
  std::vector<std::string> ctcae;
  std::vector<GradedCondition> grades;  // highest grade first
  std::optional<Severity> severity;     // overrides the grade's severity
  std::map<int, std::string> actions;   // recommended action per grade
  Template summary;
  std::vector<std::string> references;
  std::vector<std::string> tags;
  bool enabled = true;
  bool evaluate_preliminary = false;  // preliminary results count for this rule
  bool require_ici_exposure = true;   // only on-ICI patients, only values since the first dose
  std::vector<std::string> inputs;    // concepts the rule reads (index for the engine)
  std::string file;
  int line = 0;
};

struct RuleSet {
  std::string name;
  std::string version;  // declared version + content hash, e.g. "2026.11.1+3f2a9c01"
  core::ConceptMap concepts;
  Settings settings;
  Wording wording;
  std::map<std::string, Signal> signals;
  std::vector<Rule> rules;  // enabled and disabled, in file order
  // concept -> indexes into `rules` of the enabled rules that read it
  std::map<std::string, std::vector<std::size_t>, std::less<>> rules_by_concept;

  std::int64_t freshness_for(const core::Concept& c) const;
};

}  // namespace iraewatch::rules
