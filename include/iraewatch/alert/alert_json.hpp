#pragma once
// The JSON form of an alert event: one line per event (docs/alerts.md). Field names are a
// contract with integrators: fields may be added, never renamed.

#include <string>

#include "iraewatch/engine/alert_event.hpp"

namespace iraewatch::alert {

std::string to_json_line(const engine::AlertEvent& event);

}  // namespace iraewatch::alert
