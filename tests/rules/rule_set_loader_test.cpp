#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "iraewatch/rules/rule_set_loader.hpp"
#include "support/daemon.hpp"

using namespace iraewatch;

namespace {

const std::string kRules = std::string(IRAEWATCH_SOURCE_DIR) + "/rules";

// A rules folder with the shipped concepts and settings and one rule file of our own.
std::string folder_with(const testing::TempDir& tmp, const std::string& rule_file) {
  const std::string dir = tmp.file("rules");
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(kRules + "/concepts.yaml", dir + "/concepts.yaml");
  std::filesystem::copy_file(kRules + "/settings.yaml", dir + "/settings.yaml");
  testing::write_file(dir + "/custom.yaml", rule_file);
  return dir;
}

// The diagnostics of our own file (the shipped settings' macros are unused without the shipped rules).
std::vector<rules::Diagnostic> own(const rules::LoadedRuleSet& r) {
  std::vector<rules::Diagnostic> out;
  for (const auto& d : r.diagnostics)
    if (d.file.ends_with("custom.yaml")) out.push_back(d);
  return out;
}

std::vector<std::string> codes(const rules::LoadedRuleSet& r) {
  std::vector<std::string> out;
  for (const auto& d : own(r)) out.push_back(d.code + "@" + std::to_string(d.line));
  return out;
}

}  // namespace

TEST_CASE("the shipped rule set loads with no problems and indexes its inputs", "[rules]") {
  auto r = rules::load_rule_set(kRules);
  for (const auto& d : r.diagnostics) INFO(rules::format(d));
  CHECK(r.diagnostics.empty());
  REQUIRE(r.rules);
  std::vector<std::string> ids;
  for (const auto& rule : r.rules->rules) ids.push_back(rule.id);
  CHECK(ids == std::vector<std::string>{"C1", "C2", "C3", "C4", "C5", "P1", "P2", "P3", "P4", "P5", "T1", "T2", "T3",
                                        "T4", "T5"});
  CHECK(r.rules->signals.size() == 3);
  CHECK_THAT(r.rules->version, Catch::StartsWith("2026.11.0+"));
  const auto& by_tsh = r.rules->rules_by_concept.at("tsh");
  CHECK(by_tsh.size() == 5);                                          // T1-T5
  CHECK(r.rules->rules_by_concept.at("stools_per_day").size() == 2);  // C1, C3
  CHECK(r.rules->settings.ici_exposure_window_ms == 365LL * 86400000);
  CHECK(r.rules->settings.freshness_ms.at("symptom") == 48LL * 3600000);
  CHECK(r.rules->settings.freshness_ms.at("lab") == 90LL * 86400000);
  const auto& t5 = r.rules->rules[14];
  CHECK(t5.severity == rules::Severity::critical);
  CHECK(t5.grades.size() == 1);
}

TEST_CASE("every kind of rule problem is reported in one pass with its position", "[rules]") {
  testing::TempDir tmp;
  const auto dir = folder_with(tmp, R"(rules:
  - id: X1
    signal: thyroid
    title: test
    grades:
      - {grade: 1, when: "latest(tsh) > 4.5 %"}
    actions: {1: do something}
    summary: "x"
  - id: X1
    signal: thyroid
    title: dup
    colour: red
    grades:
      - {grade: 6, when: "latest(tsh) > 1 m[IU]/L"}
      - {grade: 2, when: "latest(thyroxine) > 1 ng/dL"}
      - {grade: 3, when: "lastest(tsh) > 1 m[IU]/L"}
      - {grade: 4, when: "rise > 1 m[IU]/L"}
    actions: {1: a, 2: b, 3: c, 4: d}
    summary: "{latest(tsh)}"
  - id: X3
    signal: kidney
    title: wrong types
    grades: "latest(tsh) > 1"
    enabled: maybe
    actions: {}
    summary: "ok"
macros:
  unused_one: latest(tsh) * 2
)");
  auto r = rules::load_rule_set(dir);
  CHECK_FALSE(r.rules);
  CHECK(codes(r) == std::vector<std::string>{"unit-mismatch@6", "duplicate-id@9", "unknown-key@12", "grade-range@14",
                                             "unknown-concept@15", "unknown-function@16", "undefined-macro@17",
                                             "unknown-signal@21", "wrong-type@23", "wrong-type@24", "unused-macro@28"});
  // Positions point into the condition itself (1-based), after the opening quote.
  const auto unit = own(r)[0];
  CHECK(unit.column == 45);  // under the percent sign
  CHECK(unit.rule == "X1");
  CHECK(rules::format(unit) == dir +
                                   "/custom.yaml:6:45: error: [unit-mismatch] unit '%' cannot be converted to "
                                   "m[IU]/L (the unit of tsh) (X1)");
  CHECK(own(r).back().severity == rules::Diagnostic::Severity::warning);
}

TEST_CASE("YAML syntax errors and a missing settings file are reported, not thrown", "[rules]") {
  testing::TempDir tmp;
  const auto dir = folder_with(tmp, "rules:\n  - id: [unclosed\n");
  auto r = rules::load_rule_set(dir);
  CHECK_FALSE(r.rules);
  REQUIRE_FALSE(r.diagnostics.empty());
  CHECK(r.diagnostics[0].code == "yaml-syntax");
  CHECK(r.diagnostics[0].line >= 2);

  std::filesystem::remove(dir + "/settings.yaml");
  auto missing = rules::load_rule_set(dir);
  CHECK_FALSE(missing.rules);
  bool file_error = false;
  for (const auto& d : missing.diagnostics)
    file_error = file_error || (d.code == "file" && d.file == dir + "/settings.yaml");
  CHECK(file_error);
}

TEST_CASE("a rule with an unused macro only warns and still loads", "[rules]") {
  testing::TempDir tmp;
  const auto dir = folder_with(tmp, R"(rules:
  - id: Z1
    signal: thyroid
    title: very high TSH
    grades:
      - {grade: 2, when: "latest(tsh) > 20 m[IU]/L"}
    actions: {2: call the clinic}
    summary: "TSH {latest(tsh)}"
macros:
  spare: latest(tsh)
)");
  auto r = rules::load_rule_set(dir);
  REQUIRE(r.rules);
  for (const auto& d : r.diagnostics) CHECK(d.severity == rules::Diagnostic::Severity::warning);
  REQUIRE(own(r).size() == 1);
  CHECK(own(r)[0].code == "unused-macro");
  CHECK(r.rules->rules.back().id == "Z1");
}
