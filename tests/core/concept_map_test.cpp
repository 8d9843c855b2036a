#include <catch2/catch.hpp>

#include "iraewatch/core/concept_map.hpp"

using namespace iraewatch::core;

namespace {
ConceptMap small_map() {
  Concept temp{"temperature",
               "temperature",
               "vital",
               {{"http://loinc.org", "8310-5"}},
               "Cel",
               false,
               {{"[degF]", 1.0 / 1.8, -32.0}},
               std::nullopt,
               38.0};
  Concept score{"cough", "cough", "symptom", {}, "{score}", true, {{"1", 1.0, 0.0}}, std::nullopt, std::nullopt};
  Drug nivo{"nivolumab", {"Opdivo"}, {"PD-1"}, "pd1", {{"http://www.whocc.no/atc", "L01FF01"}}};
  return ConceptMap({temp, score}, {nivo});
}
}  // namespace

TEST_CASE("concepts are found by name and by SYSTEM|CODE", "[core]") {
  auto map = small_map();
  REQUIRE(map.find_concept("temperature"));
  CHECK(map.find_by_code({"http://loinc.org", "8310-5"})->name == "temperature");
  CHECK(map.find_by_code({"", "cough"})->name == "cough");
  CHECK(map.find_by_code({"http://loinc.org", "0000-0"}) == nullptr);
  CHECK(map.find_concept("Temperature") == nullptr);
}

TEST_CASE("drugs match by INN or brand in any case, or by code", "[core]") {
  auto map = small_map();
  CHECK(map.find_drug({"", "NIVOLUMAB"})->inn == "nivolumab");
  CHECK(map.find_drug({"", "opdivo"})->inn == "nivolumab");
  CHECK(map.find_drug({"http://www.whocc.no/atc", "L01FF01"})->inn == "nivolumab");
  CHECK(map.find_drug({"http://www.whocc.no/atc", "l01ff01"}) == nullptr);
  CHECK(map.find_drug({"", "aspirin"}) == nullptr);
}

TEST_CASE("unit conversion is explicit; unknown or missing units are errors", "[core]") {
  auto map = small_map();
  const auto& temp = *map.find_concept("temperature");
  CHECK(*map.to_canonical(temp, 37.5, "Cel") == 37.5);
  CHECK(*map.to_canonical(temp, 212, "[degF]") == Approx(100.0));
  CHECK(*map.to_canonical(temp, 100.4, "[degF]") == Approx(38.0));
  auto wrong = map.to_canonical(temp, 37, "K");
  REQUIRE_FALSE(wrong);
  CHECK(wrong.error().code == ErrorCode::unit_mismatch);
  CHECK_THAT(wrong.error().message, Catch::Contains("'K'") && Catch::Contains("'[degF]'"));
  auto missing = map.to_canonical(temp, 37, "");
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error().message, Catch::Contains("needs a unit"));

  const auto& cough = *map.find_concept("cough");
  CHECK(*map.to_canonical(cough, 2, "") == 2);
  CHECK(*map.to_canonical(cough, 2, "1") == 2);
  CHECK(*map.to_canonical(cough, 2, "{score}") == 2);
  CHECK_FALSE(map.to_canonical(cough, 2, "%"));
}
