#include <catch2/catch.hpp>

#include <string>

#include "iraewatch/core/event_time.hpp"
#include "iraewatch/core/time_zone.hpp"
#include "support/daemon.hpp"

// Time zones from TZif files (RFC 8536). The files in tests/data/third_party/tzdata are copies
// of Debian 12's tzdata 2025b (the IANA tz database, public domain): "fat" files that list the
// transitions up to 2037, then a POSIX TZ rule in their footer.

using namespace iraewatch;
using core::TimeZone;

namespace {

const std::string kTzDir = std::string(IRAEWATCH_SOURCE_DIR) + "/tests/data/third_party/tzdata/";

TimeZone zone(const std::string& file, const std::string& name) {
  auto z = TimeZone::from_tzif(name, testing::read_file(kTzDir + file));
  if (!z) FAIL(z.error().message);
  return *z;
}

std::int64_t at(int y, unsigned mo, unsigned d, int h, int mi) {
  return ((core::days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60'000LL;
}

// A minimal TZif v2 file with no transitions: only the footer's rule says when clocks change
// (as in the "slim" files some systems ship). Team-written.
std::string rule_only_tzif(const std::string& rule, std::int32_t std_offset_s) {
  auto be32 = [](std::string& out, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xFF));
  };
  auto block = [&](std::string& out) {
    out += "TZif2";
    out.append(15, '\0');
    for (std::uint32_t count : {0u, 0u, 0u, 0u, 1u, 4u}) be32(out, count);  // isut isstd leap time type char
  };
  std::string out;
  for (int i = 0; i < 2; ++i) {
    block(out);
    be32(out, static_cast<std::uint32_t>(std_offset_s));
    out.push_back('\0');  // isdst
    out.push_back('\0');  // abbreviation index
    out.append("STD", 4);
  }
  return out + "\n" + rule + "\n";
}

}  // namespace

TEST_CASE("Europe/London: GMT in winter, BST in summer, from the file and past 2037 from its rule", "[core]") {
  const TimeZone london = zone("Europe-London.tzif", "Europe/London");
  CHECK(london.name() == "Europe/London");
  auto winter = london.from_local(at(2026, 1, 15, 12, 0));
  CHECK(winter.utc_ms == at(2026, 1, 15, 12, 0));
  CHECK(winter.offset_min == 0);
  auto summer = london.from_local(at(2026, 7, 15, 12, 0));
  CHECK(summer.utc_ms == at(2026, 7, 15, 11, 0));
  CHECK(summer.offset_min == 60);
  // Clocks go forward at 01:00 UTC on the last Sunday of March (29 March 2026).
  CHECK(london.offset_at(at(2026, 3, 29, 0, 59)) == 0);
  CHECK(london.offset_at(at(2026, 3, 29, 1, 0)) == 60);
  // Past the file's last transition (2037) the footer's rule decides.
  CHECK(london.from_local(at(2050, 7, 1, 12, 0)).offset_min == 60);
  CHECK(london.from_local(at(2050, 12, 1, 12, 0)).offset_min == 0);
  // Before the first transition: local mean time, -0:01:15 (rounded down to whole minutes).
  CHECK(london.offset_at(at(1800, 1, 1, 0, 0)) == -2);
}

TEST_CASE("a local time skipped or repeated by a clock change is read one documented way", "[core]") {
  const TimeZone london = zone("Europe-London.tzif", "Europe/London");
  // 01:30 on 29 March 2026 does not exist: read with the offset from before the change, it is
  // 01:30 UTC, which London shows as 02:30 BST.
  auto skipped = london.from_local(at(2026, 3, 29, 1, 30));
  CHECK(skipped.utc_ms == at(2026, 3, 29, 1, 30));
  CHECK(skipped.offset_min == 60);
  // 01:30 on 25 October 2026 happens twice: the first one (BST) is taken.
  auto repeated = london.from_local(at(2026, 10, 25, 1, 30));
  CHECK(repeated.utc_ms == at(2026, 10, 25, 0, 30));
  CHECK(repeated.offset_min == 60);
  // New York skips 02:00-03:00 on 8 March 2026: 02:30 is read as EST, i.e. 03:30 EDT.
  const TimeZone new_york = zone("America-New_York.tzif", "America/New_York");
  auto ny = new_york.from_local(at(2026, 3, 8, 2, 30));
  CHECK(ny.utc_ms == at(2026, 3, 8, 7, 30));
  CHECK(ny.offset_min == -240);
  CHECK(new_york.from_local(at(2026, 1, 8, 9, 0)).offset_min == -300);
}

TEST_CASE("southern hemisphere: summer time spans the new year", "[core]") {
  const TimeZone sydney = zone("Australia-Sydney.tzif", "Australia/Sydney");
  CHECK(sydney.from_local(at(2026, 1, 15, 12, 0)).offset_min == 660);
  CHECK(sydney.from_local(at(2026, 7, 15, 12, 0)).offset_min == 600);
  CHECK(sydney.from_local(at(2045, 1, 15, 12, 0)).offset_min == 660);  // the footer's rule
  CHECK(sydney.from_local(at(2045, 7, 15, 12, 0)).offset_min == 600);
}

TEST_CASE("a file with no transitions follows its footer's rule alone", "[core]") {
  auto cet = TimeZone::from_tzif("CET", rule_only_tzif("CET-1CEST,M3.5.0,M10.5.0/3", 3600));
  REQUIRE(cet);
  CHECK(cet->from_local(at(2026, 1, 1, 12, 0)).offset_min == 60);
  CHECK(cet->from_local(at(2026, 7, 1, 12, 0)).offset_min == 120);
  // Summer time starts at 02:00 standard time on the last Sunday of March (29 March 2026) and
  // ends at 03:00 summer time on the last Sunday of October (25 October 2026).
  CHECK(cet->offset_at(at(2026, 3, 29, 0, 59)) == 60);
  CHECK(cet->offset_at(at(2026, 3, 29, 1, 0)) == 120);
  CHECK(cet->offset_at(at(2026, 10, 25, 0, 59)) == 120);
  CHECK(cet->offset_at(at(2026, 10, 25, 1, 0)) == 60);
  // A zone without summer time, in the <+03> form.
  auto plus3 = TimeZone::from_tzif("Etc/GMT-3", rule_only_tzif("<+03>-3", 10800));
  REQUIRE(plus3);
  CHECK(plus3->from_local(at(2026, 7, 1, 12, 0)).offset_min == 180);
  // Julian days: J60 is 1 March in every year.
  auto julian = TimeZone::from_tzif("J", rule_only_tzif("AAA0BBB,J60,J300", 0));
  REQUIRE(julian);
  CHECK(julian->offset_at(at(2028, 2, 29, 12, 0)) == 0);
  CHECK(julian->offset_at(at(2028, 3, 1, 12, 0)) == 60);
}

TEST_CASE("a fixed offset and UTC", "[core]") {
  const TimeZone utc;
  CHECK(utc.name() == "UTC");
  CHECK(utc.from_local(at(2026, 7, 1, 12, 0)).utc_ms == at(2026, 7, 1, 12, 0));
  const TimeZone est = TimeZone::fixed(-300);
  CHECK(est.name() == "-05:00");
  auto t = est.from_local(at(2026, 7, 1, 12, 0));
  CHECK(t.utc_ms == at(2026, 7, 1, 17, 0));
  CHECK(t.offset_min == -300);
  CHECK(TimeZone::fixed(330).name() == "+05:30");
}

TEST_CASE("what is not a usable TZif file is refused with the reason", "[core]") {
  auto not_tzif = TimeZone::from_tzif("Mars/Olympus", "hello, world, this is not a time zone file at all.....");
  REQUIRE_FALSE(not_tzif);
  CHECK_THAT(not_tzif.error().message, Catch::Contains("time zone 'Mars/Olympus': not a usable TZif file"));
  const std::string london = testing::read_file(kTzDir + "Europe-London.tzif");
  auto truncated = TimeZone::from_tzif("Europe/London", london.substr(0, london.size() - 300));
  REQUIRE_FALSE(truncated);
  CHECK_THAT(truncated.error().message, Catch::Contains("truncated"));
  auto bad_rule = TimeZone::from_tzif("X", rule_only_tzif("CET-1CEST,M13.5.0,M10.5.0", 3600));
  REQUIRE_FALSE(bad_rule);
  CHECK_THAT(bad_rule.error().message, Catch::Contains("bad change dates"));
}
