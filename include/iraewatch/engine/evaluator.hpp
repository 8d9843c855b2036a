#pragma once
// Evaluates compiled conditions over one patient's history as of a point in event time, with
// three-valued logic: a condition on missing or stale data is unknown, and unknown never holds.

#include <cstdint>
#include <optional>
#include <vector>

#include "iraewatch/engine/patient_history.hpp"
#include "iraewatch/rules/rule_set.hpp"

namespace iraewatch::engine {

struct Value {
  enum class Kind { unknown, boolean, number, duration };
  Kind kind = Kind::unknown;
  bool truth = false;
  double number = 0;               // numbers and durations (ms)
  const Sample* sample = nullptr;  // when the number is one observation
  bool is_default = false;         // baseline(x, default) fell back to its default

  static Value unknown() { return {}; }
  static Value boolean(bool b) { return {Kind::boolean, b, 0, nullptr, false}; }
  static Value num(double v, const Sample* s = nullptr) { return {Kind::number, false, v, s, false}; }
  static Value duration(double ms) { return {Kind::duration, false, ms, nullptr, false}; }
  bool known() const { return kind != Kind::unknown; }
};

// A sample that a condition looked at, for the alert's evidence.
struct Looked {
  const rules::Node* node;  // the function that read it
  const Sample* sample;     // null for a baseline default
  double value;
};

struct Exposure {
  bool on_ici = false;
  std::optional<std::int64_t> first_dose_ms;  // first ICI dose at or before the evaluation time
  std::optional<std::int64_t> last_dose_ms;   // last ICI dose at or before it
  bool combination = false;
};

Exposure exposure_at(const PatientHistory& history, const rules::Settings& settings, std::int64_t t);

class Evaluator {
 public:
  Evaluator(const rules::RuleSet& rules, const PatientHistory& history, std::int64_t time_ms, const Exposure& exposure)
      : rules_(rules), history_(history), t_(time_ms), exposure_(exposure) {}

  // Per rule: whether only values since the first dose count, and whether preliminary ones do.
  void set_rule(const rules::Rule& rule) { rule_ = &rule; }
  Value eval(const rules::Node& node);
  std::vector<Looked>& looked() { return looked_; }

 private:
  bool visible(const Sample& s) const;
  std::int64_t earliest_visible() const;  // no value before this time can count for the rule
  std::vector<Sample>::const_iterator end_at_t(const std::vector<Sample>& v) const;
  const Sample* latest(const std::vector<Sample>& v, std::int64_t window) const;
  Value sample_function(const rules::Node& node);
  Value aggregate(const rules::Node& node);
  Value held_for(const rules::Node& node);

  const rules::RuleSet& rules_;  // settings only: everything per node was resolved at load
  const PatientHistory& history_;
  std::int64_t t_;
  const Exposure& exposure_;
  const rules::Rule* rule_ = nullptr;
  std::vector<Looked> looked_;
};

}  // namespace iraewatch::engine
