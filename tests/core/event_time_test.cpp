#include <catch2/catch.hpp>

#include "iraewatch/core/event_time.hpp"

using namespace iraewatch::core;

TEST_CASE("RFC 3339 times parse to UTC milliseconds and keep the offset", "[core]") {
  auto t = parse_rfc3339("2026-03-01T08:00:00Z");
  REQUIRE(t);
  CHECK(t->utc_ms == 1772352000000);
  CHECK(t->offset_min == 0);

  auto plus = parse_rfc3339("2026-03-01T09:30:00+01:30");
  REQUIRE(plus);
  CHECK(plus->utc_ms == t->utc_ms);
  CHECK(plus->offset_min == 90);

  auto minus = parse_rfc3339("2026-02-28T23:00:00-09:00");
  REQUIRE(minus);
  CHECK(minus->utc_ms == t->utc_ms);
  CHECK(minus->offset_min == -540);

  auto frac = parse_rfc3339("2026-03-01T08:00:00.123456Z");
  REQUIRE(frac);
  CHECK(frac->utc_ms == t->utc_ms + 123);

  CHECK(parse_rfc3339("1970-01-01T00:00:00Z")->utc_ms == 0);
  CHECK(parse_rfc3339("1969-12-31T23:59:59Z")->utc_ms == -1000);
  CHECK(parse_rfc3339("2024-02-29t12:00:00z"));
  CHECK(parse_rfc3339("2024-02-29 12:00:00Z"));
}

TEST_CASE("times round-trip through the formatter in their own zone", "[core]") {
  for (const char* text : {"2026-03-01T08:00:00Z", "2026-03-01T09:30:00+01:30", "1999-12-31T23:59:59.250-05:00",
                           "2000-02-29T00:00:00Z", "1960-06-15T12:00:00+14:00"}) {
    auto t = parse_rfc3339(text);
    REQUIRE(t);
    CHECK(format_rfc3339(*t) == text);
  }
  CHECK(format_utc(0) == "1970-01-01T00:00:00Z");
}

TEST_CASE("malformed or zone-less times are invalid_time errors that say why", "[core]") {
  struct Case {
    const char* text;
    const char* why;
  };
  const Case cases[] = {
      {"2026-03-01T08:00:00", "missing zone"},
      {"2026-03-01", "too short"},
      {"2026-13-01T08:00:00Z", "month out of range"},
      {"2025-02-29T08:00:00Z", "day out of range"},
      {"2026-03-01T24:00:00Z", "time of day out of range"},
      {"2026-03-01T23:59:60Z", "time of day out of range"},
      {"2026-03-01X08:00:00Z", "separated by 'T'"},
      {"2026/03/01T08:00:00Z", "YYYY-MM-DD"},
      {"2026-03-01T08:00:00+0100", "+HH:MM"},
      {"2026-03-01T08:00:00.Z", "empty fraction"},
      {"2026-03-01T08:00:00Zjunk", "after the zone"},
      {"", "too short"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto t = parse_rfc3339(c.text);
    REQUIRE_FALSE(t);
    CHECK(t.error().code == ErrorCode::invalid_time);
    CHECK_THAT(t.error().message, Catch::Contains(c.why));
  }
}
