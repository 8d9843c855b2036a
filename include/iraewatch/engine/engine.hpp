#pragma once
// The evaluation engine: a pure library (no IO, no clock) that keeps each patient's history in
// memory, evaluates the rules whose inputs a record changed, as of that record's event time, and
// turns the results into alert events. The same engine serves serve, ingest, replay and test.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "iraewatch/core/record.hpp"
#include "iraewatch/engine/alert_event.hpp"
#include "iraewatch/engine/evaluator.hpp"
#include "iraewatch/engine/patient_history.hpp"
#include "iraewatch/rules/rule_set.hpp"

namespace iraewatch::engine {

// How a committed record relates to what was known before.
enum class Change {
  added,        // a record id seen for the first time
  new_version,  // a later version of a known id (corrected, entered-in-error, changed)
};

class Engine {
 public:
  explicit Engine(std::shared_ptr<const rules::RuleSet> rules);

  // Adds a record to the history without evaluating (start-up warm-up from the store).
  void warm(const core::Record& record);
  // After warm-up: evaluates every patient's signals as of their latest data and records the
  // result as the current state, emitting nothing (so a restart does not fire again).
  void settle();

  // A committed record (never a duplicate): updates the history, evaluates the affected signals
  // as of the record's event time, and returns the alert events that result.
  std::vector<AlertEvent> process(const core::Record& record, Change change);

  const rules::RuleSet& rules() const { return *rules_; }
  std::size_t patient_count() const { return patients_.size(); }

 private:
  struct SignalState {
    int grade = 0;  // 0: no open alert
    rules::Severity severity = rules::Severity::info;
    int best = -1;                      // the signal's rule that sets the grade
    std::vector<int> rule_grades;       // last known grade of each of the signal's rules (0 = did not hold)
    std::vector<std::int64_t> held_ms;  // when each rule last held (to explain a carried grade)
    // What each rule's last holding rested on: (concept index, sample time) pairs. A rule that
    // cannot judge keeps its grade only while none of these has been superseded by newer data.
    std::vector<std::vector<std::pair<int, std::int64_t>>> basis;
    std::uint64_t evidence_key = 0;  // fingerprint of the values behind the current grade
    std::string summary;             // the finding last reported
  };
  struct PatientState {
    PatientHistory history;
    std::vector<SignalState> signals;  // by signal index
  };
  struct SignalInfo {
    const rules::Signal* signal;
    std::vector<const rules::Rule*> rules;
    std::vector<int> inputs;  // concept indexes its rules read
  };
  struct RuleOutcome {
    bool known = false;
    int grade = 0;               // 0: does not hold (or unknown)
    bool gated = false;          // it would hold, but the patient is not on an ICI at this time
    std::vector<Looked> looked;  // what the deciding condition read
  };
  // How a signal's result may change its alert: normally, or (a late record judged as of its own
  // time, before the current picture is judged) only by raising it.
  enum class Mode { normal, raise_only, silent };
  // What a new version took away: the earlier version's sample, or (a dose) the exposure picture.
  struct Withdrawn {
    int concept_index = -1;
    std::int64_t time = 0;
    bool exposure = false;
  };

  PatientState& state_of(const std::string& patient);
  std::vector<AlertEvent> evaluate_signal(const std::string& patient, PatientState& state, std::size_t signal,
                                          std::int64_t t, std::int32_t offset_min, const std::string& trigger,
                                          const Withdrawn* withdrawn, Change change, Mode mode);
  RuleOutcome evaluate_rule(const PatientHistory& history, const rules::Rule& rule, std::int64_t t,
                            const Exposure& exposure) const;
  std::string render(const rules::Template& tmpl, const PatientHistory& history, std::int64_t t,
                     const Exposure& exposure, const rules::Rule& rule) const;
  std::vector<Evidence> evidence(const std::vector<Looked>& looked) const;
  // The newest observation time among the signal's inputs (INT64_MIN when none).
  std::int64_t newest_input_ms(const PatientHistory& history, std::size_t signal) const;
  static bool superseded(const PatientHistory& history, const std::vector<std::pair<int, std::int64_t>>& basis,
                         std::int64_t t);

  std::shared_ptr<const rules::RuleSet> rules_;
  std::vector<SignalInfo> signals_;
  std::vector<std::vector<std::size_t>> signals_of_concept_;  // by concept index
  std::unordered_map<std::string, PatientState> patients_;
};

}  // namespace iraewatch::engine
