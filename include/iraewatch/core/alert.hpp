#pragma once
// The vocabulary of the alert lifecycle (docs/alerts.md): one Alert per (patient, signal) episode
// and one AlertNotice per transition. The alert module decides the transitions, the store keeps
// them (alerts and alert_events tables), the outputs deliver the notices. Plain data, no logic.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace iraewatch::core {

enum class AlertState { firing, acknowledged, resolved, retracted };

std::string_view to_string(AlertState state);
// "firing" -> firing, ...; nullopt when the text names no state.
std::optional<AlertState> parse_alert_state(std::string_view text);

inline bool is_open(AlertState s) {
  return s == AlertState::firing || s == AlertState::acknowledged;
}

// One alert: opened when a signal starts to hold, closed (resolved or retracted) when it stops.
// At most one open alert exists per (patient, signal); the next firing opens a new one.
struct Alert {
  std::int64_t id = 0;  // the number nurses acknowledge by; strictly increasing
  std::string patient;
  std::string signal;
  AlertState state = AlertState::firing;
  int grade = 0;         // current suspected CTCAE grade (the last open grade once closed)
  std::string severity;  // info, warning, critical
  std::string rule;      // the rule that sets the grade
  std::string rules;     // every rule that holds, comma-separated
  std::string summary;   // the latest summary line
  std::string fields;    // the latest content as JSON members without braces (alert_json.hpp)
  // Lifecycle clock (wall clock in serve, event time in replay), in ms since the epoch.
  std::int64_t opened_ms = 0;
  std::int64_t changed_ms = 0;
  std::int64_t notified_ms = 0;  // last time it paged: fired, escalated or renotified
  std::string acknowledged_by;
  std::string acknowledged_note;
  std::int64_t acknowledged_ms = 0;
};

// One transition of one alert: a row of the outbox and audit trail, and one delivered line.
struct AlertNotice {
  std::int64_t seq = 0;  // strictly increasing over the whole database
  std::int64_t alert_id = 0;
  std::string patient;
  std::string signal;
  std::string event;                      // fired, escalated, updated, renotified, acknowledged, resolved, retracted
  AlertState state = AlertState::firing;  // the alert's state after this event
  int grade = 0;
  std::string severity;
  bool pages = false;            // fired, escalated, renotified: a nurse should be notified now
  std::string cause;             // why: "record ndjson|lab-7", "not acknowledged for 4h", "acknowledged"
  std::string actor;             // who acknowledged (acknowledged only)
  std::string note;              // their note (acknowledged only)
  std::int64_t clock_ms = 0;     // lifecycle clock at the transition
  std::int64_t recorded_ms = 0;  // wall clock when iraewatch recorded it
  std::string data_time;         // RFC 3339 event time of the data it rests on ("" for ack/renotify)
  std::string line;              // the JSON line delivered (no newline)
  std::string text;              // the one-line human form
};

}  // namespace iraewatch::core
