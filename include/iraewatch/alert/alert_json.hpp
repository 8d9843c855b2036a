#pragma once
// The JSON form of an alert event: one line per event (docs/alerts.md). Field names are a
// contract with integrators: fields may be added, never renamed.

#include <string>
#include <string_view>

#include "iraewatch/core/alert.hpp"
#include "iraewatch/engine/alert_event.hpp"

namespace iraewatch::alert {

// The engine's event alone (`iraewatch test` and older tools).
std::string to_json_line(const engine::AlertEvent& event);

// The content of an event as JSON object members without the braces and without "event": what an
// alert keeps (core::Alert::fields) so that later notices can repeat it.
std::string to_json_fields(const engine::AlertEvent& event);

// `fields` (from to_json_fields) with another patient (after a merge of two patients).
std::string with_patient(std::string_view fields, std::string_view patient);

// `fields` as a closing speaks (the alert closed without a new finding, e.g. by a merge): grade 0,
// previous_grade the grade it had, severity and indicator info; the rest as it was.
std::string as_closed(std::string_view fields, int previous_grade);

// The delivered line of a notice: {"event":…, the content `fields`, then the lifecycle members
// "seq", "alert_id", "state", "pages", "recorded_at", "cause", "acknowledged_by", "note"}.
std::string notice_line(const core::AlertNotice& notice, std::string_view fields);

}  // namespace iraewatch::alert
