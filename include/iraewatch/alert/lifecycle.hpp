#pragma once
// The alert lifecycle (docs/alerts.md): turns the engine's findings into alerts that are few,
// clear and never duplicated. One open alert per (patient, signal); states firing, acknowledged,
// resolved, retracted; events fired, escalated, updated, renotified, acknowledged, resolved,
// retracted. A pure state machine: no IO, no clock. The caller passes the lifecycle clock (wall
// clock in serve, event time in replay) and persists each Transition it returns (the alert row
// and the outbox row) in the same transaction as the data that caused it.

#include <climits>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "iraewatch/core/alert.hpp"
#include "iraewatch/core/error.hpp"
#include "iraewatch/engine/alert_event.hpp"

namespace iraewatch::alert {

struct LifecyclePolicy {
  // How long an unacknowledged firing alert waits before it pages again, per severity, in ms.
  // 0: never.
  std::int64_t renotify_info_ms = 0;
  std::int64_t renotify_warning_ms = 24LL * 3600 * 1000;
  std::int64_t renotify_critical_ms = 4LL * 3600 * 1000;
};

// One change to persist: the alert as it now is, and the notice that tells of it.
struct Transition {
  core::Alert alert;
  core::AlertNotice notice;
};

class Lifecycle {
 public:
  explicit Lifecycle(LifecyclePolicy policy = {});

  // Replaces the state with the store's: its open alerts and the last id and seq in use.
  void load(std::vector<core::Alert> open_alerts, std::int64_t last_alert_id, std::int64_t last_seq);

  // An engine event at lifecycle time clock_ms (recorded at wall_ms): at most one transition.
  // Nothing when it changes nothing (a resolution for a signal with no open alert).
  std::optional<Transition> on_event(const engine::AlertEvent& event, std::int64_t clock_ms, std::int64_t wall_ms);

  // A nurse acknowledges an open alert. not_found when no open alert has that id; conflict when
  // it is already acknowledged. `by` must not be empty.
  core::Result<Transition> acknowledge(std::int64_t alert_id, const std::string& by, const std::string& note,
                                       std::int64_t clock_ms, std::int64_t wall_ms);

  // Every firing (unacknowledged) alert whose severity's interval has passed since it last paged.
  std::vector<Transition> renotify_due(std::int64_t clock_ms, std::int64_t wall_ms);

  // Two patients become one (HL7 ADT^A40): each open alert of `prior` moves to `surviving`
  // (an `updated` event), unless `surviving` has an open alert for the same signal: then the
  // moved one is closed as `retracted`, and the surviving one goes on.
  std::vector<Transition> merge_patients(const std::string& prior, const std::string& surviving, std::int64_t clock_ms,
                                         std::int64_t wall_ms);

  const core::Alert* open_alert(std::int64_t alert_id) const;
  std::size_t open_count() const { return open_.size(); }
  std::int64_t last_seq() const { return last_seq_; }
  // When the next re-notification falls due (INT64_MAX when none is scheduled).
  std::int64_t next_due_ms() const { return due_.empty() ? INT64_MAX : due_.begin()->first; }

 private:
  using Key = std::pair<std::string, std::string>;  // (patient, signal)

  std::int64_t interval_ms(const std::string& severity) const;
  void schedule(const core::Alert& alert);  // (re)computes its renotification time
  void unschedule(std::int64_t alert_id);
  Transition make(const core::Alert& alert, const std::string& event, const std::string& cause,
                  const std::string& data_time, std::int64_t clock_ms, std::int64_t wall_ms,
                  const engine::AlertEvent* closing = nullptr);

  LifecyclePolicy policy_;
  std::map<Key, core::Alert> open_;
  std::unordered_map<std::int64_t, Key> key_of_;
  std::set<std::pair<std::int64_t, std::int64_t>> due_;  // (renotify at, alert id), firing alerts only
  std::unordered_map<std::int64_t, std::int64_t> due_of_;
  std::int64_t last_id_ = 0;
  std::int64_t last_seq_ = 0;
};

// "2d", "4h", "1h 20min", "30min", "90s": how an interval reads in a cause (rounded down).
std::string format_interval(std::int64_t ms);

}  // namespace iraewatch::alert
