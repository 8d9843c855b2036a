#include "iraewatch/core/time_zone.hpp"

#include <algorithm>
#include <cstdio>
#include <optional>

#include "iraewatch/core/event_time.hpp"

namespace iraewatch::core {
namespace {

constexpr std::int64_t kSecondsPerDay = 86'400;

// Floor division, for instants before 1970.
std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0);
}

// The civil year of a day count (days since 1970-01-01), by H. Hinnant's algorithm.
std::int64_t year_of_day(std::int64_t z) {
  z += 719468;
  const std::int64_t era = floor_div(z, 146097);
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const std::int64_t month = mp < 10 ? mp + 3 : mp - 9;
  return yoe + era * 400 + (month <= 2 ? 1 : 0);
}

std::string offset_text(std::int32_t offset_min) {
  char buf[16];
  const std::int32_t a = offset_min < 0 ? -offset_min : offset_min;
  std::snprintf(buf, sizeof buf, "%c%02d:%02d", offset_min < 0 ? '-' : '+', a / 60, a % 60);
  return buf;
}

// Big-endian readers over the TZif bytes, bounds-checked by the caller.
std::int64_t be(std::string_view b, std::size_t at, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(b[at + i]);
  if (n == 4) return static_cast<std::int32_t>(static_cast<std::uint32_t>(v));
  return static_cast<std::int64_t>(v);
}

// A cursor over a POSIX TZ string.
struct RuleReader {
  std::string_view s;
  std::size_t at = 0;
  bool done() const { return at >= s.size(); }
  char peek() const { return done() ? '\0' : s[at]; }
  bool take(char c) {
    if (peek() != c) return false;
    ++at;
    return true;
  }
  bool number(int& out, int max) {
    if (done() || s[at] < '0' || s[at] > '9') return false;
    long v = 0;
    while (!done() && s[at] >= '0' && s[at] <= '9') {
      v = v * 10 + (s[at++] - '0');
      if (v > max) return false;
    }
    out = static_cast<int>(v);
    return true;
  }
  // A zone abbreviation: letters, or anything but '>' inside <...>.
  bool name() {
    if (take('<')) {
      const std::size_t from = at;
      while (!done() && s[at] != '>') ++at;
      return take('>') && at - 1 > from;
    }
    const std::size_t from = at;
    while (!done() && ((s[at] >= 'A' && s[at] <= 'Z') || (s[at] >= 'a' && s[at] <= 'z'))) ++at;
    return at - from >= 3;
  }
  // [+-]hh[:mm[:ss]] in seconds; hours up to max_hours.
  bool duration(std::int32_t& out, int max_hours) {
    const bool negative = take('-');
    if (!negative) take('+');
    int h = 0, m = 0, sec = 0;
    if (!number(h, max_hours)) return false;
    if (take(':') && (!number(m, 59) || (take(':') && !number(sec, 59)))) return false;
    out = (negative ? -1 : 1) * (h * 3600 + m * 60 + sec);
    return true;
  }
};

}  // namespace

TimeZone TimeZone::fixed(std::int32_t offset_min) {
  TimeZone z;
  z.initial_offset_s_ = offset_min * 60;
  z.name_ = offset_min == 0 ? "UTC" : offset_text(offset_min);
  return z;
}

Result<TimeZone::Rule> TimeZone::parse_rule(std::string_view text) {
  auto bad = [&](const char* why) {
    return fail(ErrorCode::invalid_input, "bad POSIX TZ rule '" + std::string(text.substr(0, 64)) + "': " + why);
  };
  RuleReader r{text};
  Rule rule;
  std::int32_t posix = 0;  // POSIX offsets count west of UTC as positive
  if (!r.name()) return bad("no standard time name");
  if (!r.duration(posix, 24)) return bad("no standard time offset");
  rule.std_offset_s = -posix;
  if (r.done()) return rule;
  if (!r.name()) return bad("bad daylight time name");
  rule.has_dst = true;
  rule.dst_offset_s = rule.std_offset_s + 3600;
  if (r.peek() != ',' && !r.done()) {
    if (!r.duration(posix, 24)) return bad("bad daylight time offset");
    rule.dst_offset_s = -posix;
  }
  auto date = [&](Rule::Date& d) {
    if (!r.take(',')) return false;
    if (r.take('J')) {
      d.kind = Rule::Date::Kind::julian_no_leap;
      if (!r.number(d.day, 365) || d.day < 1) return false;
    } else if (r.take('M')) {
      d.kind = Rule::Date::Kind::month_week_day;
      if (!r.number(d.month, 12) || d.month < 1 || !r.take('.') || !r.number(d.week, 5) || d.week < 1 || !r.take('.') ||
          !r.number(d.day, 6))
        return false;
    } else {
      d.kind = Rule::Date::Kind::zero_based;
      if (!r.number(d.day, 365)) return false;
    }
    // RFC 8536 §3.3.1 allows times from -167 to 167 hours.
    return !r.take('/') || r.duration(d.time_s, 167);
  };
  if (r.done()) {
    // No dates: the POSIX default, as the reference tzcode reads it (US rules since 2007).
    rule.start = {Rule::Date::Kind::month_week_day, 0, 2, 3, 7200};
    rule.end = {Rule::Date::Kind::month_week_day, 0, 1, 11, 7200};
    return rule;
  }
  if (!date(rule.start) || !date(rule.end) || !r.done()) return bad("bad change dates");
  return rule;
}

Result<TimeZone> TimeZone::from_tzif(std::string_view name, std::string_view b) {
  auto bad = [&](const std::string& why) {
    return fail(ErrorCode::invalid_input,
                "time zone '" + std::string(name) + "': not a usable TZif file (" + why + ")");
  };
  constexpr std::size_t kHeader = 44;
  struct Counts {
    std::int64_t isut, isstd, leap, time, type, chars;
  };
  auto counts_at = [&](std::size_t at) -> std::optional<Counts> {
    if (b.size() < at + kHeader || b.substr(at, 4) != "TZif") return std::nullopt;
    return Counts{be(b, at + 20, 4), be(b, at + 24, 4), be(b, at + 28, 4),
                  be(b, at + 32, 4), be(b, at + 36, 4), be(b, at + 40, 4)};
  };
  auto first = counts_at(0);
  if (!first) return bad("no TZif header");
  const char version = b[4];
  auto block_size = [](const Counts& c, std::int64_t time_size) {
    return c.time * time_size + c.time + c.type * 6 + c.chars + c.leap * (time_size + 4) + c.isstd + c.isut;
  };
  for (auto v : {first->isut, first->isstd, first->leap, first->time, first->type, first->chars})
    if (v < 0 || v > 100'000) return bad("counts out of range");
  std::size_t at = kHeader;
  Counts c = *first;
  std::int64_t time_size = 4;
  if (version >= '2') {
    at += static_cast<std::size_t>(block_size(*first, 4));
    auto second = counts_at(at);
    if (!second) return bad("no second header");
    c = *second;
    for (auto v : {c.isut, c.isstd, c.leap, c.time, c.type, c.chars})
      if (v < 0 || v > 100'000) return bad("counts out of range");
    at += kHeader;
    time_size = 8;
  }
  if (c.type < 1) return bad("no local time types");
  if (c.leap > 0) return bad("leap-second zones (right/...) are not supported");
  if (b.size() < at + static_cast<std::size_t>(block_size(c, time_size))) return bad("truncated");

  TimeZone z;
  z.name_ = std::string(name);
  const std::size_t times_at = at;
  const std::size_t indexes_at = times_at + static_cast<std::size_t>(c.time * time_size);
  const std::size_t types_at = indexes_at + static_cast<std::size_t>(c.time);
  std::vector<std::int32_t> type_offsets;
  for (std::int64_t i = 0; i < c.type; ++i) {
    const std::int64_t off = be(b, types_at + static_cast<std::size_t>(i) * 6, 4);
    if (off < -25 * 3600 || off > 26 * 3600) return bad("an offset out of range");
    type_offsets.push_back(static_cast<std::int32_t>(off));
  }
  for (std::int64_t i = 0; i < c.time; ++i) {
    const std::int64_t t =
        be(b, times_at + static_cast<std::size_t>(i * time_size), static_cast<std::size_t>(time_size));
    const auto type = static_cast<unsigned char>(b[indexes_at + static_cast<std::size_t>(i)]);
    if (type >= type_offsets.size()) return bad("a transition names no local time type");
    if (!z.transitions_.empty() && t <= z.transitions_.back()) return bad("transitions out of order");
    z.transitions_.push_back(t);
    z.offsets_s_.push_back(type_offsets[type]);
  }
  z.initial_offset_s_ = type_offsets[0];
  if (version >= '2') {
    const std::size_t footer = at + static_cast<std::size_t>(block_size(c, time_size));
    if (footer < b.size()) {
      if (b[footer] != '\n') return bad("bad footer");
      const std::size_t end = b.find('\n', footer + 1);
      if (end == std::string_view::npos) return bad("bad footer");
      const std::string_view text = b.substr(footer + 1, end - footer - 1);
      if (!text.empty()) {
        auto rule = parse_rule(text);
        if (!rule) return bad(rule.error().message);
        z.rule_ = *rule;
        z.has_rule_ = true;
      }
    }
  }
  return z;
}

std::int32_t TimeZone::rule_offset_s(std::int64_t utc_s) const {
  if (!rule_.has_dst) return rule_.std_offset_s;
  // The changes of the year this instant falls in, as standard time reads it.
  const std::int64_t year = year_of_day(floor_div(utc_s + rule_.std_offset_s, kSecondsPerDay));
  auto local_change = [&](const Rule::Date& d) {
    std::int64_t day = 0;
    switch (d.kind) {
      case Rule::Date::Kind::julian_no_leap:
        day = days_from_civil(year, 1, 1) + d.day - 1 + (is_leap_year(year) && d.day >= 60 ? 1 : 0);
        break;
      case Rule::Date::Kind::zero_based:
        day = days_from_civil(year, 1, 1) + d.day;
        break;
      case Rule::Date::Kind::month_week_day: {
        const std::int64_t first = days_from_civil(year, static_cast<unsigned>(d.month), 1);
        const std::int64_t weekday = ((first + 4) % 7 + 7) % 7;  // 1970-01-01 was a Thursday
        std::int64_t dom = 1 + (d.day - weekday + 7) % 7 + 7 * (d.week - 1);
        while (dom > days_in_month(year, d.month)) dom -= 7;  // week 5: the last one
        day = first + dom - 1;
        break;
      }
    }
    return day * kSecondsPerDay + d.time_s;
  };
  // The start is given in standard time, the end in daylight time.
  const std::int64_t start = local_change(rule_.start) - rule_.std_offset_s;
  const std::int64_t end = local_change(rule_.end) - rule_.dst_offset_s;
  const bool dst = start < end ? (utc_s >= start && utc_s < end) : (utc_s < end || utc_s >= start);
  return dst ? rule_.dst_offset_s : rule_.std_offset_s;
}

std::int32_t TimeZone::offset_at(std::int64_t utc_ms) const {
  const std::int64_t utc_s = floor_div(utc_ms, 1000);
  std::int32_t offset_s = initial_offset_s_;
  if (!transitions_.empty() && utc_s >= transitions_.front()) {
    const auto it = std::upper_bound(transitions_.begin(), transitions_.end(), utc_s);
    offset_s = offsets_s_[static_cast<std::size_t>(it - transitions_.begin()) - 1];
  }
  if (has_rule_ && (transitions_.empty() || utc_s >= transitions_.back())) offset_s = rule_offset_s(utc_s);
  return static_cast<std::int32_t>(floor_div(offset_s, 60));
}

TimeZone::Instant TimeZone::from_local(std::int64_t local_ms) const {
  // The offsets in force a day before and a day after. This assumes no two changes within about
  // two days of each other, which holds for every zone's rules in use today.
  constexpr std::int64_t kDayMs = kSecondsPerDay * 1000;
  const std::int32_t before = offset_at(local_ms - kDayMs), after = offset_at(local_ms + kDayMs);
  auto utc = [&](std::int32_t offset_min) { return local_ms - std::int64_t{offset_min} * 60'000; };
  if (offset_at(utc(before)) == before) return {utc(before), before};  // the first, when it occurs twice
  if (offset_at(utc(after)) == after) return {utc(after), after};
  return {utc(before), offset_at(utc(before))};  // skipped: read as before the change
}

}  // namespace iraewatch::core
