#include "iraewatch/alert/alert_json.hpp"

#include <nlohmann/json.hpp>

namespace iraewatch::alert {

std::string to_json_line(const engine::AlertEvent& e) {
  nlohmann::ordered_json evidence = nlohmann::ordered_json::array();
  for (const auto& ev : e.evidence) {
    nlohmann::ordered_json item = {{"concept", ev.concept_name}, {"display", ev.display}, {"role", ev.role},
                                   {"value", ev.value}, {"unit", ev.unit}, {"baseline", ev.from_baseline}};
    if (!ev.record_id.empty()) {
      item["time"] = core::format_rfc3339(ev.time);
      item["record"] = ev.record_id;
    }
    if (!ev.note.empty()) item["note"] = ev.note;
    evidence.push_back(std::move(item));
  }
  nlohmann::ordered_json j = {
      {"event", e.event},
      {"patient", e.patient},
      {"signal", e.signal},
      {"grade", e.grade},
      {"previous_grade", e.previous_grade},
      {"severity", e.severity},
      {"indicator", e.indicator},
      {"rule", e.rule},
      {"rules", e.rules},
      {"title", e.title},
      {"summary", e.summary},
      {"detail", e.review_note},
      {"action", e.action},
      {"ctcae", e.ctcae},
      {"evidence", std::move(evidence)},
      {"combination_therapy", e.combination_therapy},
      {"context", e.context},
      {"source", {{"label", "iraewatch " + e.ruleset_version}, {"references", e.references}}},
      {"time", core::format_rfc3339(e.time)},
      {"trigger", e.trigger},
      {"ruleset_version", e.ruleset_version},
  };
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace iraewatch::alert
