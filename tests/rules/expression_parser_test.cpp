#include <catch2/catch.hpp>

#include "iraewatch/rules/concept_map_loader.hpp"
#include "iraewatch/rules/expression_parser.hpp"

using namespace iraewatch;
using rules::NodeKind;

namespace {

const core::ConceptMap& concepts() {
  static const core::ConceptMap map = *rules::load_concept_map(std::string(IRAEWATCH_SOURCE_DIR) + "/rules");
  return map;
}

rules::Definitions defs() {
  rules::Definitions d;
  d.macros["increase"] = "latest(stools_per_day) - baseline(stools_per_day, 0 /d)";
  d.macros["loop_a"] = "loop_b";
  d.macros["loop_b"] = "loop_a";
  d.lists["resp"] = {"cough", "dyspnea"};
  return d;
}

rules::Expression ok(const std::string& text) {
  auto d = defs();
  rules::ExpressionParser p(concepts(), d);
  auto e = p.parse_condition(text);
  INFO(text);
  if (!e) FAIL(e.error()[0].message);
  return *e;
}

rules::ExpressionError bad(const std::string& text) {
  auto d = defs();
  rules::ExpressionParser p(concepts(), d);
  auto e = p.parse_condition(text);
  INFO(text);
  REQUIRE_FALSE(e);
  return e.error()[0];
}

}  // namespace

TEST_CASE("conditions compile to typed trees with units resolved at load", "[rules]") {
  auto e = ok("latest(tsh) > 10 m[IU]/L");
  REQUIRE(e.root.kind == NodeKind::compare);
  CHECK(e.root.children[0].kind == NodeKind::latest);
  CHECK(e.root.children[0].concept_name == "tsh");
  CHECK(e.root.children[1].number == 10);

  // A compatible unit is converted into the concept's unit: 9 pmol/L of free T4 is 0.699 ng/dL.
  auto conv = ok("latest(free_t4) < 9 pmol/L");
  CHECK(conv.root.children[1].number == Approx(9 / 12.87));
  CHECK(conv.root.children[1].unit == "ng/dL");
  auto f = ok("latest(temperature) >= 100.4 [degF]");
  CHECK(f.root.children[1].number == Approx(38.0));
  // Against a difference, a unit with an offset converts as an interval.
  auto rise = ok("latest(temperature) - baseline(temperature) >= 1.8 [degF]");
  CHECK(rise.root.children[1].number == Approx(1.0));

  auto windowed = ok("latest(tsh, 48h) > 4.5 m[IU]/L");
  CHECK(windowed.root.children[0].window_ms == 48LL * 3600 * 1000);
  auto spaced = ok("count(stools_per_day, 7 d) >= 3");
  CHECK(spaced.root.children[0].window_ms == 7LL * 86400 * 1000);

  ok("latest(free_t4) < ref_low(free_t4)");
  ok("below_low(paired(free_t4, tsh)) and not above_high(latest(tsh))");
  ok("increase >= 4 /d or latest(stool_blood) == 1");
  ok("held_for(tsh > 10 m[IU]/L) >= 28 d");
  ok("on_ici and days_since_last_dose <= 365 d and combination_therapy()");
  ok("baseline(spo2) - latest(spo2) >= 4 %");
  ok("avg(spo2, 3 d) < 92 % and min(spo2, 3 d) < 90 % and max(spo2, 3d) < 95 %");
  ok("(latest(crp) * 2) > 10 mg/L");
  ok("latest(crp) > 1 mg/dL");  // converted: 10 mg/L
  ok("previous(tsh) < latest(tsh)");
}

TEST_CASE("any/all expand a list over '_'", "[rules]") {
  auto e = ok("any(resp, latest(_) >= 2)");
  REQUIRE(e.root.kind == NodeKind::logical_or);
  CHECK(e.root.children[0].children[0].concept_name == "cough");
  CHECK(e.root.children[1].children[0].concept_name == "dyspnea");
  auto a = ok("all(resp, latest(_) < 1)");
  CHECK(a.root.kind == NodeKind::logical_and);
}

TEST_CASE("inputs lists every concept a condition reads, through macros", "[rules]") {
  auto e = ok("increase >= 1 /d and below_low(paired(free_t4, tsh))");
  std::set<std::string> inputs;
  rules::collect_inputs(e.root, inputs);
  CHECK(inputs == std::set<std::string>{"stools_per_day", "free_t4", "tsh"});
}

TEST_CASE("bad conditions are load errors with a code and the spot", "[rules]") {
  struct Case {
    const char* text;
    const char* code;
    int offset;
    const char* says;
  };
  const Case cases[] = {
      {"latest(tsh) > 4.5 %", "unit-mismatch", 18, "'%' cannot be converted to m[IU]/L"},
      {"latest(tsh) > 4.5", "unit-mismatch", 14, "write the unit"},
      {"latest(tsh) > latest(spo2)", "unit-mismatch", 12, "cannot compare"},
      {"latest(tsh) > 28 d", "unit-mismatch", 12, "a duration"},
      {"held_for(tsh > 10 m[IU]/L) >= 28", "unit-mismatch", 27, "write a time unit"},
      {"latest(thyroxine) > 1 ng/dL", "unknown-concept", 7, "unknown concept 'thyroxine'"},
      {"lastest(tsh) > 1 m[IU]/L", "unknown-function", 0, "unknown function 'lastest'"},
      {"stool_rise >= 4 /d", "undefined-macro", 0, "'stool_rise' is not a defined macro"},
      {"latest(tsh)", "wrong-type", 0, "must be true or false"},
      {"latest(tsh) > 1 m[IU]/L and 3", "wrong-type", 28, "must be true/false"},
      {"latest(tsh) > (1 m[IU]/L", "syntax", 24, "expected ')'"},
      {"latest(tsh) = 1 m[IU]/L", "syntax", 12, "use '=='"},
      {"latest(tsh) > 1 m[IU]/L)", "syntax", 23, "unexpected ')'"},
      {"tsh > 1 m[IU]/L", "syntax", 0, "write latest(tsh)"},
      {"latest(tsh, 2) > 1 m[IU]/L", "wrong-arguments", 12, "duration"},
      {"min(tsh) > 1 m[IU]/L", "syntax", 7, "window"},
      {"below_low(3)", "wrong-arguments", 10, "needs one observation"},
      {"loop_a", "macro-cycle", 0, "refers to itself"},
      {"any(nolist, latest(_) > 1)", "undefined-macro", 4, "not a defined list"},
      {"latest(_) > 1", "syntax", 7, "only meaningful inside any"},
      {"latest(tsh) > 1 m[IU]/L @", "syntax", 24, "unexpected character"},
  };
  // Nesting is bounded: a deep expression is an error, not a stack overflow.
  const std::string deep = std::string(5000, '(') + "latest(tsh) > 1 m[IU]/L" + std::string(5000, ')');
  CHECK_THAT(bad(deep).message, Catch::Contains("nested too deeply"));
  std::string nots;
  for (int i = 0; i < 100000; ++i) nots += "not ";
  CHECK_THAT(bad(nots + "true").message, Catch::Contains("nested too deeply"));
  for (const auto& c : cases) {
    auto e = bad(c.text);
    INFO(c.text << " -> " << e.message);
    CHECK(e.code == c.code);
    CHECK(e.offset == c.offset);
    CHECK_THAT(e.message, Catch::Contains(c.says));
  }
}
