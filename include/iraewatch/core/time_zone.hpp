#pragma once
// A time zone: the UTC offset in force at any instant, so that a local wall-clock time sent
// without an offset (HL7 times often are) becomes an instant with the offset that applied then,
// daylight saving time included. Built from the bytes of a TZif file (RFC 8536, what
// /usr/share/zoneinfo holds), including the POSIX TZ rule of its footer for times past the last
// listed transition, or from a fixed offset. Pure: reading the file is the caller's job.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "iraewatch/core/error.hpp"

namespace iraewatch::core {

class TimeZone {
 public:
  // UTC, the default.
  TimeZone() = default;
  static TimeZone fixed(std::int32_t offset_min);
  // `name` is for messages and name(); `tzif` is the whole file.
  static Result<TimeZone> from_tzif(std::string_view name, std::string_view tzif);

  // The offset from UTC, in minutes, in force at a UTC instant.
  std::int32_t offset_at(std::int64_t utc_ms) const;

  // The instant of a local wall-clock time (milliseconds since 1970-01-01T00:00 local), with the
  // offset in force at that instant. A time that occurs twice (the hour repeated when clocks go
  // back) is taken as the first; a time that does not exist (the hour skipped when clocks go
  // forward) is read with the offset from before the change, so 02:30 becomes 03:30 summer time.
  struct Instant {
    std::int64_t utc_ms = 0;
    std::int32_t offset_min = 0;
  };
  Instant from_local(std::int64_t local_ms) const;

  // "UTC", "+01:00" for a fixed offset, or the name given to from_tzif.
  const std::string& name() const { return name_; }

 private:
  // A POSIX TZ rule (the TZif footer), e.g. CET-1CEST,M3.5.0,M10.5.0/3.
  struct Rule {
    struct Date {
      enum class Kind { julian_no_leap, zero_based, month_week_day } kind = Kind::month_week_day;
      int day = 0, week = 0, month = 0;  // Jn / n: day; Mm.w.d: month, week, day (0 = Sunday)
      std::int32_t time_s = 7200;        // local time of the change, seconds (default 02:00)
    };
    std::int32_t std_offset_s = 0;  // east of UTC, seconds
    bool has_dst = false;
    std::int32_t dst_offset_s = 0;
    Date start, end;
  };
  static Result<Rule> parse_rule(std::string_view text);
  std::int32_t rule_offset_s(std::int64_t utc_s) const;

  std::string name_ = "UTC";
  std::vector<std::int64_t> transitions_;  // UTC seconds, ascending
  std::vector<std::int32_t> offsets_s_;    // the offset from each transition on
  std::int32_t initial_offset_s_ = 0;      // before the first transition (or always, when fixed)
  bool has_rule_ = false;
  Rule rule_;
};

}  // namespace iraewatch::core
