#pragma once
// Event time: when a thing happened, as the sender said it, with the sender's UTC offset kept so
// that it can be shown back in the sender's zone. Evaluation uses utc_ms only.

#include <cstdint>
#include <string>
#include <string_view>

#include "iraewatch/core/error.hpp"

namespace iraewatch::core {

struct EventTime {
  std::int64_t utc_ms = 0;      // milliseconds since 1970-01-01T00:00:00Z
  std::int32_t offset_min = 0;  // the sender's offset from UTC, in minutes (Z is 0)

  friend bool operator==(const EventTime&, const EventTime&) = default;
};

// Parses an RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM). A zone is
// required: a time without one is ambiguous and is an invalid_time error. 't' and ' ' are
// accepted for 'T', 'z' for 'Z' (RFC 3339 §5.6 allows both). Fractions beyond milliseconds are
// truncated. Leap seconds (60) are rejected.
Result<EventTime> parse_rfc3339(std::string_view text);

// Formats in the time's own offset, with milliseconds only when they are not zero.
std::string format_rfc3339(EventTime time);

// Formats a UTC instant (wall-clock or event time) as ...Z.
std::string format_utc(std::int64_t utc_ms);

// Proleptic Gregorian calendar facts.
bool is_leap_year(std::int64_t year);
int days_in_month(std::int64_t year, int month);  // month 1..12

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
std::int64_t days_from_civil(std::int64_t year, unsigned month, unsigned day);

// Wall-clock now, in UTC milliseconds. Only for delivery and audit, never for evaluation.
std::int64_t wall_clock_ms();

}  // namespace iraewatch::core
