#include "iraewatch/core/error.hpp"

namespace iraewatch::core {

std::string_view to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::invalid_input:
      return "invalid_input";
    case ErrorCode::unknown_concept:
      return "unknown_concept";
    case ErrorCode::unit_mismatch:
      return "unit_mismatch";
    case ErrorCode::invalid_time:
      return "invalid_time";
    case ErrorCode::limit_exceeded:
      return "limit_exceeded";
    case ErrorCode::store_unavailable:
      return "store_unavailable";
    case ErrorCode::io:
      return "io";
    case ErrorCode::config:
      return "config";
    case ErrorCode::not_found:
      return "not_found";
    case ErrorCode::conflict:
      return "conflict";
  }
  return "unknown";
}

}  // namespace iraewatch::core
