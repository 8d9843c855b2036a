#include "iraewatch/core/event_time.hpp"

#include <chrono>
#include <cstdio>

namespace iraewatch::core {
namespace {

constexpr std::int64_t kMsPerDay = 86'400'000;

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Reads exactly n digits at text[pos]; false when they are not all digits.
bool read_digits(std::string_view text, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > text.size()) return false;
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    char c = text[pos + i];
    if (!is_digit(c)) return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

std::unexpected<Error> bad_time(std::string_view text, std::string_view why) {
  return fail(ErrorCode::invalid_time, "invalid time '" + std::string(text.substr(0, 64)) + "': " + std::string(why) +
                                           " (expected RFC 3339, e.g. 2026-03-01T08:00:00Z)");
}

// Inverse of days_from_civil.
void civil_from_days(std::int64_t z, int& y, unsigned& m, unsigned& d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t yy = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = static_cast<int>(yy + (m <= 2 ? 1 : 0));
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

}  // namespace

bool is_leap_year(std::int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int days_in_month(std::int64_t year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && is_leap_year(year) ? 29 : kDays[month - 1];
}

std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

Result<EventTime> parse_rfc3339(std::string_view text) {
  int year, month, day, hour, minute, second;
  if (text.size() < 19) return bad_time(text, "too short");
  if (!read_digits(text, 0, 4, year) || text[4] != '-' || !read_digits(text, 5, 2, month) || text[7] != '-' ||
      !read_digits(text, 8, 2, day))
    return bad_time(text, "date must be YYYY-MM-DD");
  if (text[10] != 'T' && text[10] != 't' && text[10] != ' ')
    return bad_time(text, "date and time must be separated by 'T'");
  if (!read_digits(text, 11, 2, hour) || text[13] != ':' || !read_digits(text, 14, 2, minute) || text[16] != ':' ||
      !read_digits(text, 17, 2, second))
    return bad_time(text, "time must be HH:MM:SS");
  if (month < 1 || month > 12) return bad_time(text, "month out of range");
  if (day < 1 || day > days_in_month(year, month)) return bad_time(text, "day out of range");
  if (hour > 23 || minute > 59 || second > 59) return bad_time(text, "time of day out of range");

  std::size_t pos = 19;
  int millis = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    std::size_t start = pos;
    int scale = 100;
    while (pos < text.size() && is_digit(text[pos])) {
      millis += (text[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return bad_time(text, "empty fraction of a second");
  }
  if (pos >= text.size()) return bad_time(text, "missing zone (Z or +HH:MM)");

  int offset_min = 0;
  char z = text[pos];
  if (z == 'Z' || z == 'z') {
    ++pos;
  } else if (z == '+' || z == '-') {
    int oh, om;
    if (!read_digits(text, pos + 1, 2, oh) || pos + 3 >= text.size() || text[pos + 3] != ':' ||
        !read_digits(text, pos + 4, 2, om))
      return bad_time(text, "zone offset must be +HH:MM or -HH:MM");
    if (oh > 23 || om > 59) return bad_time(text, "zone offset out of range");
    offset_min = (oh * 60 + om) * (z == '-' ? -1 : 1);
    pos += 6;
  } else {
    return bad_time(text, "missing zone (Z or +HH:MM)");
  }
  if (pos != text.size()) return bad_time(text, "unexpected characters after the zone");

  const std::int64_t days = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  const std::int64_t local_ms = days * kMsPerDay + ((hour * 60 + minute) * 60 + second) * std::int64_t{1000} + millis;
  return EventTime{local_ms - std::int64_t{offset_min} * 60'000, offset_min};
}

std::string format_rfc3339(EventTime time) {
  const std::int64_t local_ms = time.utc_ms + std::int64_t{time.offset_min} * 60'000;
  const std::int64_t days = floor_div(local_ms, kMsPerDay);
  const std::int64_t in_day = local_ms - days * kMsPerDay;
  int y;
  unsigned m, d;
  civil_from_days(days, y, m, d);
  const auto secs = static_cast<int>(in_day / 1000);
  const auto ms = static_cast<int>(in_day % 1000);
  char buf[48];
  int n =
      std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d", y, m, d, secs / 3600, secs / 60 % 60, secs % 60);
  std::string out(buf, static_cast<std::size_t>(n));
  if (ms != 0) {
    n = std::snprintf(buf, sizeof buf, ".%03d", ms);
    out.append(buf, static_cast<std::size_t>(n));
  }
  if (time.offset_min == 0) {
    out += 'Z';
  } else {
    const int off = time.offset_min < 0 ? -time.offset_min : time.offset_min;
    n = std::snprintf(buf, sizeof buf, "%c%02d:%02d", time.offset_min < 0 ? '-' : '+', off / 60, off % 60);
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

std::string format_utc(std::int64_t utc_ms) {
  return format_rfc3339(EventTime{utc_ms, 0});
}

std::int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace iraewatch::core
