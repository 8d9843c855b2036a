#pragma once
// The one error vocabulary of iraewatch. Expected failures (bad record, bad YAML, busy database,
// peer reset) travel as Result<T> = std::expected<T, Error>; exceptions are kept for unusable
// configuration at start-up.

#include <expected>
#include <string>
#include <string_view>

namespace iraewatch::core {

enum class ErrorCode {
  invalid_input,      // malformed bytes: not JSON, a missing or mistyped field
  unknown_concept,    // a bare concept name the concept map does not know
  unit_mismatch,      // a unit that cannot be converted to the concept's canonical unit
  invalid_time,       // not an RFC 3339 date-time with a zone
  limit_exceeded,     // a size, count or time limit was passed
  store_unavailable,  // the database could not commit (busy, full, I/O error)
  io,                 // a file or socket could not be read or written
  config,             // a configuration or rule file is unusable
  not_found,          // what a request names does not exist (an alert id, a patient)
  conflict,           // the request does not fit the current state (acknowledging a closed alert)
};

std::string_view to_string(ErrorCode code);

struct Error {
  ErrorCode code;
  std::string message;  // what and why, for a person; never contains a patient identifier
                        // unless the error is about that record's own content
};

template <typename T>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> fail(ErrorCode code, std::string message) {
  return std::unexpected(Error{code, std::move(message)});
}

}  // namespace iraewatch::core
