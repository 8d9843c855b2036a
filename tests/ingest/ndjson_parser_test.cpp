#include <catch2/catch.hpp>

#include "iraewatch/ingest/ndjson_parser.hpp"
#include "iraewatch/rules/concept_map_loader.hpp"

using namespace iraewatch;

namespace {

const core::ConceptMap& concepts() {
  static const core::ConceptMap map = *rules::load_concept_map(std::string(IRAEWATCH_SOURCE_DIR) + "/rules");
  return map;
}

const core::Provenance kProvenance{"ndjson", "", 1700000000000};

core::Observation observation(const std::string& line) {
  ingest::NdjsonParser parser(concepts());
  auto r = parser.parse(line, kProvenance);
  INFO(line);
  if (!r) FAIL(r.error().message);
  REQUIRE(std::holds_alternative<core::Observation>(*r));
  return std::get<core::Observation>(*r);
}

core::Error error(const std::string& line) {
  ingest::NdjsonParser parser(concepts());
  auto r = parser.parse(line, kProvenance);
  INFO(line);
  REQUIRE_FALSE(r);
  return r.error();
}

}  // namespace

TEST_CASE("a full observation line maps its code, converts its unit and keeps what was sent", "[ingest]") {
  auto o = observation(
      R"({"type":"observation","id":"r1","patient":"MRN-1","code":"http://loinc.org|14920-3","value":12.87,)"
      R"("unit":"pmol/L","time":"2026-03-01T09:00:00+01:00","status":"final","ref_low":10.3,"ref_high":21.9,"baseline":true})");
  CHECK(o.id == "r1");
  CHECK(o.patient == "MRN-1");
  CHECK(o.code == core::Code{"http://loinc.org", "14920-3"});
  CHECK(o.concept_name == "free_t4");
  CHECK(o.value == 12.87);
  CHECK(o.unit == "pmol/L");
  CHECK(o.canonical_value == Approx(1.0));
  CHECK(o.canonical_unit == "ng/dL");
  CHECK(o.time.utc_ms == core::parse_rfc3339("2026-03-01T08:00:00Z")->utc_ms);
  CHECK(o.time.offset_min == 60);
  CHECK(o.status == core::ObservationStatus::final);
  CHECK(o.ref_from_sender);
  CHECK(*o.ref_low == Approx(10.3 / 12.87));
  CHECK(*o.ref_high == Approx(21.9 / 12.87));
  CHECK(o.baseline);
  CHECK(o.provenance.feed == "ndjson");
  CHECK(o.provenance.received_ms == 1700000000000);
}

TEST_CASE("defaults: status final, the concept's reference range, no baseline", "[ingest]") {
  auto o = observation(
      R"({"type":"observation","id":"r2","patient":"p","code":"tsh","value":5,"unit":"uIU/mL","time":"2026-03-01T08:00:00Z"})");
  CHECK(o.concept_name == "tsh");
  CHECK(o.canonical_value == 5);
  CHECK(o.status == core::ObservationStatus::final);
  CHECK_FALSE(o.ref_from_sender);
  CHECK(o.ref_low == 0.3);
  CHECK(o.ref_high == 4.2);
  CHECK_FALSE(o.baseline);
}

TEST_CASE("unitless concepts may omit the unit; symptom scores and flags", "[ingest]") {
  auto o = observation(
      R"({"type":"observation","id":"r3","patient":"p","code":"stool_blood","value":1,"time":"2026-03-01T08:00:00Z"})");
  CHECK(o.canonical_value == 1);
  CHECK(o.canonical_unit == "1");
  auto d = observation(
      R"({"type":"observation","id":"r4","patient":"p","code":"dyspnea","value":3,"unit":"1","time":"2026-03-01T08:00:00Z"})");
  CHECK(d.canonical_value == 3);
}

TEST_CASE("codes outside the concept map are stored unmapped, with text values allowed", "[ingest]") {
  auto o = observation(
      R"({"type":"observation","id":"r5","patient":"p","code":"http://loinc.org|2345-7","value":"positive","time":"2026-03-01T08:00:00Z"})");
  CHECK(o.concept_name.empty());
  CHECK(o.text_value == "positive");
  CHECK_FALSE(o.value);
  CHECK_FALSE(o.canonical_value);
  auto n = observation(
      R"({"type":"observation","id":"r6","patient":"p","code":"http://loinc.org|2345-7","value":6.3,"unit":"mmol/L","time":"2026-03-01T08:00:00Z","ref_high":7.8})");
  CHECK(n.value == 6.3);
  CHECK(n.ref_high == 7.8);
  CHECK(n.ref_from_sender);
}

TEST_CASE("entered-in-error may come without a value", "[ingest]") {
  auto o = observation(
      R"({"type":"observation","id":"r7","patient":"p","code":"tsh","time":"2026-03-01T08:00:00Z","status":"entered-in-error"})");
  CHECK(o.status == core::ObservationStatus::entered_in_error);
  CHECK_FALSE(o.value);
}

TEST_CASE("medication lines resolve ICIs by name, brand or code and keep other drugs", "[ingest]") {
  ingest::NdjsonParser parser(concepts());
  auto med = [&](const std::string& drug) {
    auto r = parser.parse(
        R"({"type":"medication","id":"m1","patient":"p","drug":")" + drug + R"(","time":"2026-03-01T08:00:00Z"})",
        kProvenance);
    REQUIRE(r);
    return std::get<core::MedicationAdministration>(*r);
  };
  CHECK(med("Keytruda").ici == "pembrolizumab");
  CHECK(med(" nivolumab ").ici == "nivolumab");
  CHECK(med("PEMBROLIZUMAB").ici_class == "pd1");
  CHECK(med("http://www.whocc.no/atc|L01FX04").ici == "ipilimumab");
  CHECK(med("http://www.nlm.nih.gov/research/umls/rxnorm|1792776").ici == "atezolizumab");
  auto other = med("vancomycin");
  CHECK(other.ici.empty());
  CHECK(other.drug == core::Code{"", "vancomycin"});
  CHECK(other.status == core::MedicationStatus::completed);
  auto r = parser.parse(
      R"({"type":"medication","id":"m2","patient":"p","drug":"nivolumab","time":"2026-03-01T08:00:00Z","status":"in-progress"})",
      kProvenance);
  REQUIRE(r);
  CHECK(std::get<core::MedicationAdministration>(*r).status == core::MedicationStatus::in_progress);
}

TEST_CASE("every kind of bad line is an error that names the problem", "[ingest]") {
  using core::ErrorCode;
  const std::string t = R"("time":"2026-03-01T08:00:00Z")";
  struct Case {
    std::string line;
    ErrorCode code;
    const char* says;
  };
  const Case cases[] = {
      {"not json", ErrorCode::invalid_input, "not valid JSON"},
      {R"({"type":"observation",)", ErrorCode::invalid_input, "not valid JSON"},
      {"[1,2]", ErrorCode::invalid_input, "must be a JSON object"},
      {"\"text\"", ErrorCode::invalid_input, "must be a JSON object"},
      {"{}", ErrorCode::invalid_input, "field 'type': is required"},
      {R"({"type":3})", ErrorCode::invalid_input, "field 'type': must be a string"},
      {R"({"type":"vital"})", ErrorCode::invalid_input, "unknown type 'vital'"},
      {R"({"type":"observation","patient":"p","code":"tsh","value":1,"unit":"mIU/L",)" + t + "}",
       ErrorCode::invalid_input, "field 'id': is required"},
      {R"({"type":"observation","id":"","patient":"p","code":"tsh","value":1,"unit":"mIU/L",)" + t + "}",
       ErrorCode::invalid_input, "field 'id': must not be empty"},
      {R"({"type":"observation","id":7,"patient":"p","code":"tsh","value":1,"unit":"mIU/L",)" + t + "}",
       ErrorCode::invalid_input, "field 'id': must be a string"},
      {R"({"type":"observation","id":")" + std::string(300, 'x') +
           R"(","patient":"p","code":"tsh","value":1,"unit":"mIU/L",)" + t + "}",
       ErrorCode::limit_exceeded, "longer than 256"},
      {R"({"type":"observation","id":"a","code":"tsh","value":1,"unit":"mIU/L",)" + t + "}", ErrorCode::invalid_input,
       "field 'patient': is required"},
      {R"({"type":"observation","id":"a","patient":"p","value":1,"unit":"mIU/L",)" + t + "}", ErrorCode::invalid_input,
       "field 'code': is required"},
      {R"({"type":"observation","id":"a","patient":"p","code":"thyroid","value":1,"unit":"mIU/L",)" + t + "}",
       ErrorCode::unknown_concept, "unknown concept 'thyroid'"},
      {R"({"type":"observation","id":"a","patient":"p","code":"http://loinc.org|","value":1,)" + t + "}",
       ErrorCode::invalid_input, "empty code"},
      {R"({"type":"observation","id":"a","patient":"p","code":"tsh","unit":"mIU/L",)" + t + "}",
       ErrorCode::invalid_input, "field 'value': is required"},
      {R"({"type":"observation","id":"a","patient":"p","code":"tsh","value":true,"unit":"mIU/L",)" + t + "}",
       ErrorCode::invalid_input, "number or a string"},
      {R"({"type":"observation","id":"a","patient":"p","code":"tsh","value":"high","unit":"mIU/L",)" + t + "}",
       ErrorCode::invalid_input, "needs a number"},
      {R"({"type":"observation","id":"a","patient":"p","code":"tsh","value":1,"unit":"mg",)" + t + "}",
       ErrorCode::unit_mismatch, "unit 'mg' cannot be converted"},
      {R"({"type":"observation","id":"a","patient":"p","code":"tsh","value":1,)" + t + "}", ErrorCode::unit_mismatch,
       "needs a unit"},
      {R"({"type":"observation","id":"a","patient":"p","code":"tsh","value":1,"unit":5,)" + t + "}",
       ErrorCode::invalid_input, "field 'unit': must be a string"},
      {R"({"type":"observation","id":"a","patient":"p","code":"tsh","value":1,"unit":"mIU/L"})",
       ErrorCode::invalid_input, "field 'time': is required"},
      {R"({"type":"observation","id":"a","patient":"p","code":"tsh","value":1,"unit":"mIU/L","time":"2026-03-01 08:00"})",
       ErrorCode::invalid_time, "field 'time'"},
      {R"({"type":"observation","id":"a","patient":"p","code":"tsh","value":1,"unit":"mIU/L","time":"2026-03-01T08:00:00"})",
       ErrorCode::invalid_time, "missing zone"},
      {R"({"type":"observation","id":"a","patient":"p","code":"tsh","value":1,"unit":"mIU/L","status":"done",)" + t +
           "}",
       ErrorCode::invalid_input, "unknown status 'done'"},
      {R"({"type":"observation","id":"a","patient":"p","code":"tsh","value":1,"unit":"mIU/L","ref_low":"0.3",)" + t +
           "}",
       ErrorCode::invalid_input, "field 'ref_low': must be a number"},
      {R"({"type":"observation","id":"a","patient":"p","code":"tsh","value":1,"unit":"mIU/L","ref_low":5,"ref_high":1,)" +
           t + "}",
       ErrorCode::invalid_input, "above ref_high"},
      {R"({"type":"observation","id":"a","patient":"p","code":"tsh","value":1,"unit":"mIU/L","baseline":"yes",)" + t +
           "}",
       ErrorCode::invalid_input, "field 'baseline'"},
      {R"({"type":"observation","id":"a","patient":"p","code":"tsh","valeu":1,"unit":"mIU/L",)" + t + "}",
       ErrorCode::invalid_input, "unknown field 'valeu'"},
      {R"({"type":"medication","id":"m","patient":"p",)" + t + "}", ErrorCode::invalid_input,
       "field 'drug': is required"},
      {R"({"type":"medication","id":"m","patient":"p","drug":"nivolumab","status":"given",)" + t + "}",
       ErrorCode::invalid_input, "unknown status 'given'"},
      {R"({"type":"medication","id":"m","patient":"p","drug":"nivolumab","value":1,)" + t + "}",
       ErrorCode::invalid_input, "unknown field 'value'"},
      {"{\"type\":\"observation\",\"id\":\"\xff\xfe\"}", ErrorCode::invalid_input, "not valid JSON"},
      {std::string("{\"type\":\"observ\0ation\"}", 24), ErrorCode::invalid_input, "not valid JSON"},
      // Regressions: a number beyond double range used to crash the process.
      {R"({"type":"observation","id":"a","patient":"p","code":"tsh","value":1e999,"unit":"mIU/L",)" + t + "}",
       ErrorCode::invalid_input, "not valid JSON"},
      {R"({"type":"observation","id":"a","patient":"p","code":"tsh","value":-1e400,"unit":"mIU/L",)" + t + "}",
       ErrorCode::invalid_input, "not valid JSON"},
      // Regressions: the JSON parser stops at a NUL byte, so whatever followed it was never read.
      {std::string(R"({"type":"medication","id":"m","patient":"p","drug":"nivolumab",)") + t + "}" +
           std::string(1, '\0') + "junk",
       ErrorCode::invalid_input, "NUL byte"},
      // A value that overflows on conversion is not stored as infinity.
      {R"({"type":"observation","id":"a","patient":"p","code":"crp","value":1e308,"unit":"mg/dL",)" + t + "}",
       ErrorCode::invalid_input, "out of range"},
      {R"({"type":"observation","id":"a","patient":"p","code":"crp","value":1,"ref_high":1e308,"unit":"mg/dL",)" + t +
           "}",
       ErrorCode::invalid_input, "out of range"},
      // A retraction's range still needs a convertible unit.
      {R"({"type":"observation","id":"a","patient":"p","code":"tsh","status":"entered-in-error","ref_low":0.3,)" + t +
           "}",
       ErrorCode::unit_mismatch, "field 'ref_low'"},
      {R"({"type":"observation","id":"a","patient":"p","code":"tsh","value":"","unit":"mIU/L",)" + t + "}",
       ErrorCode::invalid_input, "must not be an empty string"},
      {R"({"type":"observation","id":"a","patient":"p","code":"http://loinc.org|1-8","value":"",)" + t + "}",
       ErrorCode::invalid_input, "must not be an empty string"},
  };
  for (const auto& c : cases) {
    auto e = error(c.line);
    INFO(c.line);
    CHECK(e.code == c.code);
    CHECK_THAT(e.message, Catch::Contains(c.says));
    CHECK(e.message.size() < 600);  // errors never echo a whole long line back
  }
}

TEST_CASE("blank lines are recognised", "[ingest]") {
  CHECK(ingest::is_blank(""));
  CHECK(ingest::is_blank(" \t\r"));
  CHECK_FALSE(ingest::is_blank(" {}"));
}
