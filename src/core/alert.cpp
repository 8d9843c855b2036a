#include "iraewatch/core/alert.hpp"

namespace iraewatch::core {

std::string_view to_string(AlertState state) {
  switch (state) {
    case AlertState::firing:
      return "firing";
    case AlertState::acknowledged:
      return "acknowledged";
    case AlertState::resolved:
      return "resolved";
    case AlertState::retracted:
      return "retracted";
  }
  return "firing";
}

std::optional<AlertState> parse_alert_state(std::string_view text) {
  for (auto s : {AlertState::firing, AlertState::acknowledged, AlertState::resolved, AlertState::retracted})
    if (to_string(s) == text) return s;
  return std::nullopt;
}

}  // namespace iraewatch::core
