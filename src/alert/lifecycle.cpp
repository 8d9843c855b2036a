#include "iraewatch/alert/lifecycle.hpp"

#include <algorithm>

#include "iraewatch/alert/alert_json.hpp"
#include "iraewatch/core/event_time.hpp"

namespace iraewatch::alert {
namespace {

int severity_rank(const std::string& s) {
  if (s == "critical") return 2;
  if (s == "warning") return 1;
  return 0;
}

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  return s;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ",") + s;
  return out;
}

// The one-line human form: "#12 FIRED alert 3 thyroid grade 2 warning patient P1: summary".
std::string human_text(const core::AlertNotice& n, const core::Alert& a) {
  std::string t = "#" + std::to_string(n.seq) + " " + upper(n.event) + " alert " + std::to_string(n.alert_id) + " " +
                  n.signal + " grade " + std::to_string(n.grade) + " " + n.severity + " patient " + n.patient;
  if (n.event == "acknowledged") {
    t += " by " + n.actor;
    if (!n.note.empty()) t += " (" + n.note + ")";
    return t;
  }
  if (n.event == "renotified") t += " (" + n.cause + ")";
  return t + ": " + a.summary;
}

}  // namespace

std::string format_interval(std::int64_t ms) {
  constexpr std::int64_t kMin = 60'000, kHour = 60 * kMin, kDay = 24 * kHour;
  if (ms >= kDay && ms % kDay == 0) return std::to_string(ms / kDay) + "d";
  if (ms >= kHour) {
    const std::int64_t minutes = (ms % kHour) / kMin;
    return std::to_string(ms / kHour) + "h" + (minutes ? " " + std::to_string(minutes) + "min" : "");
  }
  if (ms >= kMin) return std::to_string(ms / kMin) + "min";
  if (ms >= 1000) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

Lifecycle::Lifecycle(LifecyclePolicy policy) : policy_(policy) {}

void Lifecycle::load(std::vector<core::Alert> open_alerts, std::int64_t last_alert_id, std::int64_t last_seq) {
  open_.clear();
  key_of_.clear();
  due_.clear();
  due_of_.clear();
  last_id_ = last_alert_id;
  last_seq_ = last_seq;
  for (auto& a : open_alerts) {
    if (!core::is_open(a.state)) continue;
    Key key{a.patient, a.signal};
    key_of_[a.id] = key;
    last_id_ = std::max(last_id_, a.id);
    schedule(a);
    open_[key] = std::move(a);
  }
}

std::int64_t Lifecycle::interval_ms(const std::string& severity) const {
  if (severity == "critical") return policy_.renotify_critical_ms;
  if (severity == "warning") return policy_.renotify_warning_ms;
  return policy_.renotify_info_ms;
}

void Lifecycle::unschedule(std::int64_t alert_id) {
  if (auto it = due_of_.find(alert_id); it != due_of_.end()) {
    due_.erase({it->second, alert_id});
    due_of_.erase(it);
  }
}

void Lifecycle::schedule(const core::Alert& a) {
  unschedule(a.id);
  const std::int64_t interval = interval_ms(a.severity);
  if (a.state != core::AlertState::firing || interval <= 0) return;
  const std::int64_t at = a.notified_ms + interval;
  due_.emplace(at, a.id);
  due_of_[a.id] = at;
}

Transition Lifecycle::make(const core::Alert& a, const std::string& event, const std::string& cause,
                           const std::string& data_time, std::int64_t clock_ms, std::int64_t wall_ms,
                           const engine::AlertEvent* closing) {
  core::AlertNotice n;
  n.seq = ++last_seq_;
  n.alert_id = a.id;
  n.patient = a.patient;
  n.signal = a.signal;
  n.event = event;
  n.state = a.state;
  // A resolution or retraction speaks with the engine's grade 0 and severity (info); the alert row
  // keeps the grade it had, for listings.
  n.grade = closing ? closing->grade : a.grade;
  n.severity = closing ? closing->severity : a.severity;
  n.pages = event == "fired" || event == "escalated" || event == "renotified";
  n.cause = cause;
  n.clock_ms = clock_ms;
  n.recorded_ms = wall_ms;
  n.data_time = data_time;
  if (event == "acknowledged") {
    n.actor = a.acknowledged_by;
    n.note = a.acknowledged_note;
  }
  n.line = notice_line(n, a.fields);
  n.text = human_text(n, a);
  return Transition{a, std::move(n)};
}

std::optional<Transition> Lifecycle::on_event(const engine::AlertEvent& e, std::int64_t clock_ms,
                                              std::int64_t wall_ms) {
  const Key key{e.patient, e.signal};
  auto it = open_.find(key);
  const std::string cause = "record " + e.trigger;
  const std::string data_time = core::format_rfc3339(e.time);
  const bool closing = e.event == "resolved" || e.event == "retracted";

  if (closing) {
    if (it == open_.end()) return std::nullopt;  // nothing open to close (state rebuilt at start-up)
    core::Alert a = std::move(it->second);
    open_.erase(it);
    key_of_.erase(a.id);
    unschedule(a.id);
    a.state = e.event == "resolved" ? core::AlertState::resolved : core::AlertState::retracted;
    a.summary = e.summary;
    a.fields = to_json_fields(e);
    a.changed_ms = clock_ms;
    // a.grade keeps the last open grade: "resolved, was grade 2" in listings.
    return make(a, e.event, cause, data_time, clock_ms, wall_ms, &e);
  }

  std::string event = e.event;
  if (it == open_.end()) {
    event = "fired";  // whatever the engine called it, nothing was open: a new alert
    core::Alert a;
    a.id = ++last_id_;
    a.patient = e.patient;
    a.signal = e.signal;
    a.state = core::AlertState::firing;
    a.opened_ms = clock_ms;
    it = open_.emplace(key, std::move(a)).first;
    key_of_[it->second.id] = key;
  } else {
    const core::Alert& cur = it->second;
    const bool higher =
        e.grade > cur.grade || (e.grade == cur.grade && severity_rank(e.severity) > severity_rank(cur.severity));
    event = higher ? "escalated" : "updated";
  }
  core::Alert& a = it->second;
  a.grade = e.grade;
  a.severity = e.severity;
  a.rule = e.rule;
  a.rules = join(e.rules);
  a.summary = e.summary;
  a.fields = to_json_fields(e);
  a.changed_ms = clock_ms;
  if (event == "fired" || event == "escalated") {
    a.notified_ms = clock_ms;
    if (a.state == core::AlertState::acknowledged) {  // a rise always pages again
      a.state = core::AlertState::firing;
      a.acknowledged_by.clear();
      a.acknowledged_note.clear();
      a.acknowledged_ms = 0;
    }
  }
  schedule(a);
  return make(a, event, cause, data_time, clock_ms, wall_ms);
}

core::Result<Transition> Lifecycle::acknowledge(std::int64_t alert_id, const std::string& by, const std::string& note,
                                                std::int64_t clock_ms, std::int64_t wall_ms) {
  if (by.empty()) return core::fail(core::ErrorCode::invalid_input, "an acknowledgement needs a name (--by)");
  auto k = key_of_.find(alert_id);
  if (k == key_of_.end())
    return core::fail(core::ErrorCode::not_found, "alert " + std::to_string(alert_id) + " is not open");
  core::Alert& a = open_.at(k->second);
  if (a.state == core::AlertState::acknowledged)
    return core::fail(core::ErrorCode::conflict, "alert " + std::to_string(alert_id) + " is already acknowledged by " +
                                                     a.acknowledged_by + " at " + core::format_utc(a.acknowledged_ms));
  a.state = core::AlertState::acknowledged;
  a.acknowledged_by = by;
  a.acknowledged_note = note;
  a.acknowledged_ms = clock_ms;
  a.changed_ms = clock_ms;
  unschedule(a.id);
  return make(a, "acknowledged", "acknowledged", "", clock_ms, wall_ms);
}

std::vector<Transition> Lifecycle::renotify_due(std::int64_t clock_ms, std::int64_t wall_ms) {
  std::vector<Transition> out;
  while (!due_.empty() && due_.begin()->first <= clock_ms) {
    const std::int64_t id = due_.begin()->second;
    core::Alert& a = open_.at(key_of_.at(id));
    const std::int64_t waited = clock_ms - a.notified_ms;
    a.notified_ms = clock_ms;
    schedule(a);
    out.push_back(make(a, "renotified",
                       "not acknowledged for " + format_interval(waited) + " (" + a.severity + " re-notifies every " +
                           format_interval(interval_ms(a.severity)) + ")",
                       "", clock_ms, wall_ms));
  }
  return out;
}

std::vector<Transition> Lifecycle::merge_patients(const std::string& prior, const std::string& surviving,
                                                  std::int64_t clock_ms, std::int64_t wall_ms) {
  std::vector<Transition> out;
  // A merge is no data: its events are dated by the lifecycle clock (the time of the merge).
  const std::string merge_time = core::format_rfc3339(core::EventTime{clock_ms, 0});
  // The duplicate's closing speaks, like any retraction, with grade 0 and severity info.
  engine::AlertEvent closing;
  closing.grade = 0;
  closing.severity = "info";
  std::vector<Key> keys;
  for (auto it = open_.lower_bound(Key{prior, ""}); it != open_.end() && it->first.first == prior; ++it)
    keys.push_back(it->first);
  for (const auto& key : keys) {
    core::Alert a = std::move(open_.at(key));
    open_.erase(key);
    const Key target{surviving, key.second};
    if (auto kept = open_.find(target); kept != open_.end()) {
      key_of_.erase(a.id);
      unschedule(a.id);
      a.state = core::AlertState::retracted;
      a.fields = as_closed(a.fields, a.grade);
      a.changed_ms = clock_ms;
      out.push_back(
          make(a, "retracted",
               "patient merged into another; the signal continues as alert " + std::to_string(kept->second.id),
               merge_time, clock_ms, wall_ms, &closing));
      continue;
    }
    a.patient = surviving;
    a.fields = with_patient(a.fields, surviving);
    a.changed_ms = clock_ms;
    key_of_[a.id] = target;
    auto& moved = open_[target] = std::move(a);
    out.push_back(make(moved, "updated", "patient merged: the alert now belongs to the surviving patient", merge_time,
                       clock_ms, wall_ms));
  }
  return out;
}

const core::Alert* Lifecycle::open_alert(std::int64_t alert_id) const {
  auto k = key_of_.find(alert_id);
  return k == key_of_.end() ? nullptr : &open_.at(k->second);
}

}  // namespace iraewatch::alert
