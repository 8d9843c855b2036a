#pragma once
// What the engine reports: a change in the state of one (patient, signal) alert, with the
// content a nurse needs (clinical spec §6). docs/alerts.md describes the JSON form.

#include <cstdint>
#include <string>
#include <vector>

#include "iraewatch/core/event_time.hpp"

namespace iraewatch::engine {

struct Evidence {
  std::string concept_name;
  std::string display;  // e.g. "TSH"
  std::string role;     // "latest", "previous", "baseline", "paired", "min", "max"
  double value = 0;
  std::string unit;      // canonical unit
  core::EventTime time;  // when the value was taken (zero when it is a default)
  bool from_baseline = false;
  std::string note;       // e.g. "no baseline recorded; graded against 0"
  std::string record_id;  // "feed|id"; empty for a default
};

struct AlertEvent {
  std::string event;  // fired, escalated, updated, resolved, retracted
  std::string patient;
  std::string signal;
  int grade = 0;  // 0 for resolved and retracted
  int previous_grade = 0;
  std::string severity;            // info, warning, critical
  std::string indicator;           // CDS Hooks: info, warning, critical
  std::string rule;                // the rule that sets the grade
  std::vector<std::string> rules;  // every rule that holds
  std::string title;
  std::string summary;  // under 140 characters
  std::string action;   // recommended action for the grade
  std::vector<std::string> ctcae;
  std::vector<Evidence> evidence;
  bool combination_therapy = false;
  std::string context;  // combination-therapy note, when it applies
  std::string review_note;
  std::vector<std::string> references;
  core::EventTime time;  // event time of the data that caused it
  std::string trigger;   // "feed|id" of that record
  std::string ruleset_version;
};

}  // namespace iraewatch::engine
