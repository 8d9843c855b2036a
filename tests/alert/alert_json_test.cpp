#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "iraewatch/alert/alert_json.hpp"

using namespace iraewatch;

TEST_CASE("alert lines are valid JSON with every contract field, escaped", "[alert]") {
  engine::AlertEvent e;
  e.event = "fired";
  e.patient = "MRN \"7\"\\x\n\t\x01";
  e.signal = "thyroid";
  e.grade = 2;
  e.severity = "warning";
  e.indicator = "warning";
  e.rule = "T3";
  e.rules = {"T1", "T3"};
  e.title = "Possible immune-related thyroid dysfunction: é";
  e.summary = "TSH 6.8";
  e.review_note = "For clinician review";
  e.action = "Start levothyroxine";
  e.ctcae = {"Hypothyroidism"};
  engine::Evidence ev;
  ev.concept_name = "tsh";
  ev.display = "TSH";
  ev.role = "latest";
  ev.value = 0.7070707;
  ev.unit = "m[IU]/L";
  ev.time = *core::parse_rfc3339("2026-02-16T08:10:00+01:00");
  ev.record_id = "ndjson|t1";
  e.evidence = {ev};
  e.time = *core::parse_rfc3339("2026-02-16T08:10:00+01:00");
  e.trigger = "ndjson|t1";
  e.ruleset_version = "2026.11.0+abc";
  e.references = {"NCI CTCAE v5.0"};

  const std::string line = alert::to_json_line(e);
  CHECK(line.find('\n') == std::string::npos);
  const auto j = nlohmann::json::parse(line);
  CHECK(j["patient"] == "MRN \"7\"\\x\n\t\x01");
  CHECK(j["title"] == "Possible immune-related thyroid dysfunction: é");
  CHECK(j["grade"] == 2);
  CHECK(j["rules"] == nlohmann::json::array({"T1", "T3"}));
  CHECK(j["evidence"][0]["value"] == 0.7070707);
  CHECK(j["evidence"][0]["time"] == "2026-02-16T08:10:00+01:00");
  CHECK(j["evidence"][0]["baseline"] == false);
  CHECK(j["source"]["references"][0] == "NCI CTCAE v5.0");
  CHECK(j["time"] == "2026-02-16T08:10:00+01:00");
  for (const char* field :
       {"event",   "patient", "signal",  "grade",   "previous_grade", "severity", "indicator", "rule",
        "rules",   "title",   "summary", "detail",  "action",         "ctcae",    "evidence",  "combination_therapy",
        "context", "source",  "time",    "trigger", "ruleset_version"}) {
    INFO(field);
    CHECK(j.contains(field));
  }
}
