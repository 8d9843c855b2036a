#include <catch2/catch.hpp>

#include "iraewatch/rules/concept_map_loader.hpp"

using namespace iraewatch;

namespace {

const core::ConceptMap& shipped() {
  static const core::ConceptMap map = [] {
    auto loaded = rules::load_concept_map(std::string(IRAEWATCH_SOURCE_DIR) + "/rules");
    if (!loaded) FAIL(rules::to_error(loaded.error()).message);
    return *loaded;
  }();
  return map;
}

double convert(const std::string& concept_name, double value, const std::string& unit) {
  const auto* c = shipped().find_concept(concept_name);
  REQUIRE(c != nullptr);
  auto v = shipped().to_canonical(*c, value, unit);
  INFO(concept_name << " " << unit);
  REQUIRE(v);
  return *v;
}

std::vector<rules::Diagnostic> problems(const std::string& yaml) {
  auto r = rules::load_concept_map_text(yaml, "test.yaml");
  REQUIRE_FALSE(r);
  return r.error();
}

}  // namespace

TEST_CASE("the shipped concept map has every concept of the clinical spec with its canonical unit", "[rules]") {
  const std::pair<const char*, const char*> expected[] = {
      {"tsh", "m[IU]/L"},       {"free_t4", "ng/dL"},   {"free_t3", "pg/mL"},
      {"calprotectin", "ug/g"}, {"crp", "mg/L"},        {"spo2", "%"},
      {"spo2_exertion", "%"},   {"resp_rate", "/min"},  {"temperature", "Cel"},
      {"stools_per_day", "/d"}, {"stool_blood", "1"},   {"abdominal_pain", "{score}"},
      {"cough", "{score}"},     {"dyspnea", "{score}"},
  };
  for (const auto& [name, unit] : expected) {
    INFO(name);
    const auto* c = shipped().find_concept(name);
    REQUIRE(c != nullptr);
    CHECK(c->unit == unit);
  }
  CHECK(shipped().concepts().size() == std::size(expected));
}

TEST_CASE("the shipped codes map to the spec's concepts", "[rules]") {
  const std::pair<const char*, const char*> loinc[] = {
      {"3016-3", "tsh"},         {"11580-8", "tsh"},     {"3024-7", "free_t4"}, {"83122-2", "free_t4"},
      {"6892-4", "free_t4"},     {"14920-3", "free_t4"}, {"3051-0", "free_t3"}, {"38445-3", "calprotectin"},
      {"1988-5", "crp"},         {"59408-5", "spo2"},    {"2708-6", "spo2"},    {"9279-1", "resp_rate"},
      {"8310-5", "temperature"},
  };
  for (const auto& [code, name] : loinc) {
    INFO(code);
    const auto* c = shipped().find_by_code({"http://loinc.org", code});
    REQUIRE(c != nullptr);
    CHECK(c->name == name);
  }
}

TEST_CASE("every unit the shipped map accepts converts as the spec says", "[rules]") {
  for (const char* u : {"m[IU]/L", "mIU/L", "u[IU]/mL", "uIU/mL"}) CHECK(convert("tsh", 6.5, u) == 6.5);
  CHECK(convert("free_t4", 1.2, "ng/dL") == 1.2);
  CHECK(convert("free_t4", 12.87, "pmol/L") == Approx(1.0));
  CHECK(convert("free_t4", 9.0, "pmol/L") == Approx(0.6993).epsilon(1e-4));
  CHECK(convert("free_t3", 3.0, "pg/mL") == 3.0);
  CHECK(convert("free_t3", 1.536, "pmol/L") == Approx(1.0));
  CHECK(convert("calprotectin", 130, "ug/g") == 130);
  CHECK(convert("calprotectin", 130, "mg/kg") == 130);
  CHECK(convert("crp", 12, "mg/L") == 12);
  CHECK(convert("crp", 1.2, "mg/dL") == Approx(12));
  CHECK(convert("spo2", 91, "%") == 91);
  CHECK(convert("spo2_exertion", 86, "%") == 86);
  CHECK(convert("resp_rate", 18, "/min") == 18);
  CHECK(convert("temperature", 38.2, "Cel") == 38.2);
  CHECK(convert("temperature", 100.4, "[degF]") == Approx(38.0));
  CHECK(convert("temperature", 32, "[degF]") == Approx(0.0).margin(1e-12));
  CHECK(convert("stools_per_day", 5, "/d") == 5);
  CHECK(convert("stool_blood", 1, "") == 1);
  CHECK(convert("stool_blood", 1, "1") == 1);
  for (const char* c : {"abdominal_pain", "cough", "dyspnea"}) {
    CHECK(convert(c, 3, "") == 3);
    CHECK(convert(c, 3, "1") == 3);
    CHECK(convert(c, 3, "{score}") == 3);
  }
}

TEST_CASE("units the shipped map does not list are refused, never guessed", "[rules]") {
  const std::pair<const char*, const char*> refused[] = {
      {"tsh", "mU/L"},      {"tsh", "ng/dL"}, {"free_t4", "nmol/L"},  {"free_t4", "ng/mL"},      {"crp", "mg/dl"},
      {"temperature", "K"}, {"spo2", ""},     {"stools_per_day", ""}, {"calprotectin", "ug/mL"}, {"tsh", ""},
  };
  for (const auto& [name, unit] : refused) {
    INFO(name << " '" << unit << "'");
    auto v = shipped().to_canonical(*shipped().find_concept(name), 1, unit);
    REQUIRE_FALSE(v);
    CHECK(v.error().code == core::ErrorCode::unit_mismatch);
  }
}

TEST_CASE("the shipped default reference ranges follow the spec", "[rules]") {
  auto range = [](const char* name) {
    const auto* c = shipped().find_concept(name);
    return std::pair{c->ref_low, c->ref_high};
  };
  CHECK(range("tsh") == std::pair<std::optional<double>, std::optional<double>>{0.3, 4.2});
  CHECK(range("free_t4") == std::pair<std::optional<double>, std::optional<double>>{0.9, 1.7});
  CHECK(range("free_t3") == std::pair<std::optional<double>, std::optional<double>>{2.0, 4.4});
  CHECK(range("resp_rate") == std::pair<std::optional<double>, std::optional<double>>{12, 20});
  CHECK(range("crp").second == 5);
  CHECK(range("calprotectin").second == 50);
  CHECK(range("spo2").first == 95);
  CHECK(range("stools_per_day") == std::pair<std::optional<double>, std::optional<double>>{});
}

TEST_CASE("the shipped ICI list matches every name, brand and code of the spec", "[rules]") {
  const std::tuple<const char*, const char*, const char*, const char*> drugs[] = {
      {"ipilimumab", "Yervoy", "L01FX04", "ctla4"},   {"tremelimumab", "Imjudo", "L01FX20", "ctla4"},
      {"nivolumab", "Opdivo", "L01FF01", "pd1"},      {"pembrolizumab", "Keytruda", "L01FF02", "pd1"},
      {"cemiplimab", "Libtayo", "L01FF06", "pd1"},    {"dostarlimab", "Jemperli", "L01FF07", "pd1"},
      {"tislelizumab", "Tevimbra", "L01FF09", "pd1"}, {"retifanlimab", "Zynyz", "L01FF10", "pd1"},
      {"toripalimab", "Loqtorzi", nullptr, "pd1"},    {"atezolizumab", "Tecentriq", "L01FF05", "pdl1"},
      {"durvalumab", "Imfinzi", "L01FF03", "pdl1"},   {"avelumab", "Bavencio", "L01FF04", "pdl1"},
      {"sugemalimab", "Cejemly", "L01FF11", "pdl1"},  {"nivolumab + relatlimab", "Opdualag", "L01FY02", "pd1"},
  };
  for (const auto& [inn, brand, atc, cls] : drugs) {
    INFO(inn);
    const auto* by_inn = shipped().find_drug({"", inn});
    REQUIRE(by_inn != nullptr);
    CHECK(by_inn->drug_class == cls);
    CHECK(shipped().find_drug({"", core::to_lower(brand)}) == by_inn);
    if (atc) CHECK(shipped().find_drug({"http://www.whocc.no/atc", atc}) == by_inn);
  }
  CHECK(shipped().drugs().size() == std::size(drugs));
  const std::pair<const char*, const char*> old_codes[] = {
      {"http://www.whocc.no/atc|L01XC17", "nivolumab"},
      {"http://www.whocc.no/atc|L01XC18", "pembrolizumab"},
      {"http://www.whocc.no/atc|L01XC11", "ipilimumab"},
      {"http://www.nlm.nih.gov/research/umls/rxnorm|1597876", "nivolumab"},
      {"http://www.nlm.nih.gov/research/umls/rxnorm|1547545", "pembrolizumab"},
      {"http://www.nlm.nih.gov/research/umls/rxnorm|1792776", "atezolizumab"},
  };
  for (const auto& [code, inn] : old_codes) {
    INFO(code);
    const auto* d = shipped().find_drug(core::parse_code(code));
    REQUIRE(d != nullptr);
    CHECK(d->inn == inn);
  }
}

TEST_CASE("concept map problems come back together, with 1-based positions and codes", "[rules]") {
  auto d = problems(R"(version: 1
concepts:
  - name: tsh
    kind: lab
    unit: "m[IU]/L"
    codez: []
  - name: tsh
    kind: labs
    unit: "x"
    convert:
      - {from: "y", multiply: 2, divide: 3}
drugs: []
)");
  REQUIRE(d.size() == 4);
  CHECK(rules::format(d[0]) ==
        "test.yaml:6:5: error: [unknown-key] unknown key 'codez' (allowed: name, display, "
        "kind, codes, unit, unit_optional, convert, reference_range) (tsh)");
  CHECK(d[1].code == "bad-value");
  CHECK(d[1].line == 8);
  CHECK(d[2].code == "conversion");
  CHECK(d[2].line == 11);
  CHECK(d[3].code == "duplicate-id");
  CHECK(d[3].line == 7);
}

TEST_CASE("broken YAML, wrong types and missing sections are errors, not crashes", "[rules]") {
  auto syntax = problems("concepts: [\n");
  REQUIRE(syntax.size() == 1);
  CHECK(syntax[0].code == "yaml-syntax");
  CHECK(syntax[0].line >= 1);

  auto not_map = problems("- just\n- a list\n");
  CHECK(not_map[0].code == "wrong-type");

  auto missing = problems("version: 1\n");
  REQUIRE(missing.size() == 2);
  CHECK_THAT(missing[0].message, Catch::Contains("'concepts' must be a list"));
  CHECK_THAT(missing[1].message, Catch::Contains("'drugs' must be a list"));

  auto types = problems(R"(concepts:
  - {name: a, kind: lab, unit: "1", reference_range: {low: high}, codes: "not a list"}
  - {name: b, kind: lab, unit: "1", codes: ["no-bar"], unit_optional: maybe}
drugs:
  - {inn: x, class: pd1, codes: []}
  - {inn: y, brands: [X], class: pd1, codes: []}
)");
  std::vector<std::string> codes;
  for (const auto& p : types) codes.push_back(p.code);
  CHECK(codes == std::vector<std::string>{"wrong-type", "wrong-type", "code-syntax", "wrong-type", "duplicate-id"});

  auto no_file = rules::load_concept_map("/nonexistent-folder");
  REQUIRE_FALSE(no_file);
  CHECK_THAT(rules::format(no_file.error()[0]), Catch::Contains("/nonexistent-folder/concepts.yaml: error: [file]"));
}
