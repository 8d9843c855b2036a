#include <catch2/catch.hpp>

#include "iraewatch/core/record.hpp"

using namespace iraewatch::core;

TEST_CASE("codes split at the last bar; bare names have no system", "[core]") {
  CHECK(parse_code("http://loinc.org|3016-3") == Code{"http://loinc.org", "3016-3"});
  CHECK(parse_code("tsh") == Code{"", "tsh"});
  CHECK(parse_code("a|b|c") == Code{"a|b", "c"});
  CHECK(to_string(Code{"http://loinc.org", "3016-3"}) == "http://loinc.org|3016-3");
  CHECK(to_string(Code{"", "tsh"}) == "tsh");
}

TEST_CASE("statuses parse from their FHIR spellings and reject anything else", "[core]") {
  CHECK(parse_observation_status("entered-in-error") == ObservationStatus::entered_in_error);
  CHECK(parse_observation_status("corrected") == ObservationStatus::corrected);
  CHECK(to_string(ObservationStatus::preliminary) == "preliminary");
  auto bad = parse_observation_status("FINAL");
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, Catch::Contains("final, corrected, preliminary"));
  CHECK(parse_medication_status("in-progress") == MedicationStatus::in_progress);
  CHECK_FALSE(parse_medication_status("done"));
}

TEST_CASE("content hash ignores provenance but sees every clinical field", "[core]") {
  Observation a;
  a.id = "r1";
  a.patient = "p1";
  a.code = {"http://loinc.org", "3016-3"};
  a.value = 5.0;
  a.unit = "m[IU]/L";
  a.time = EventTime{1000, 0};
  Observation b = a;
  b.provenance.received_ms = 999;
  b.provenance.feed = "other";
  CHECK(content_hash(Record(a)) == content_hash(Record(b)));

  b = a;
  b.value = 5.000001;
  CHECK(content_hash(Record(a)) != content_hash(Record(b)));
  b = a;
  b.status = ObservationStatus::corrected;
  CHECK(content_hash(Record(a)) != content_hash(Record(b)));
  b = a;
  b.time.offset_min = 60;
  CHECK(content_hash(Record(a)) != content_hash(Record(b)));
  b = a;
  b.baseline = true;
  CHECK(content_hash(Record(a)) != content_hash(Record(b)));

  MedicationAdministration m;
  m.id = "m1";
  m.patient = "p1";
  m.drug = {"", "nivolumab"};
  MedicationAdministration m2 = m;
  m2.status = MedicationStatus::entered_in_error;
  CHECK(content_hash(Record(m)) != content_hash(Record(m2)));
}
