#include <catch2/catch.hpp>

#include <filesystem>

#include "iraewatch/engine/engine.hpp"
#include "iraewatch/engine/evaluator.hpp"
#include "iraewatch/engine/record_ledger.hpp"
#include "iraewatch/ingest/ndjson_parser.hpp"
#include "iraewatch/rules/rule_set_loader.hpp"
#include "support/daemon.hpp"

using namespace iraewatch;

namespace {

const std::string kRules = std::string(IRAEWATCH_SOURCE_DIR) + "/rules";
constexpr std::int64_t kDay = 86'400'000;
const std::int64_t kStart = core::parse_rfc3339("2026-01-01T00:00:00Z")->utc_ms;

// The shipped concepts and settings with the given rules only.
std::shared_ptr<const rules::RuleSet> rule_set(const std::string& rules_yaml) {
  testing::TempDir tmp;
  std::filesystem::copy_file(kRules + "/concepts.yaml", tmp.file("concepts.yaml"));
  std::filesystem::copy_file(kRules + "/settings.yaml", tmp.file("settings.yaml"));
  testing::write_file(tmp.file("test.yaml"), rules_yaml);
  auto loaded = rules::load_rule_set(tmp.path());
  for (const auto& d : loaded.diagnostics)
    if (d.severity == rules::Diagnostic::Severity::error) FAIL(rules::format(d));
  REQUIRE(loaded.rules);
  return loaded.rules;
}

std::shared_ptr<const rules::RuleSet> shipped() {
  static auto rs = rules::load_rule_set(kRules).rules;
  return rs;
}

// Feeds NDJSON-like records (time in days after kStart) and collects events as "event:signal:grade".
class Harness {
 public:
  explicit Harness(std::shared_ptr<const rules::RuleSet> rs) : rules_(rs), engine_(rs), parser_(rs->concepts) {}

  std::vector<std::string> obs(const std::string& id, const std::string& code, double value, double day,
                               const std::string& extra = "") {
    return feed(R"({"type":"observation","id":")" + id + R"(","patient":"P","code":")" + code + R"(","value":)" +
                std::to_string(value) + R"(,"time":")" +
                core::format_utc(kStart + static_cast<std::int64_t>(day * kDay)) + "\"" + extra + "}");
  }
  std::vector<std::string> dose(const std::string& id, const std::string& drug, double day,
                                const std::string& extra = "") {
    return feed(R"({"type":"medication","id":")" + id + R"(","patient":"P","drug":")" + drug + R"(","time":")" +
                core::format_utc(kStart + static_cast<std::int64_t>(day * kDay)) + "\"" + extra + "}");
  }
  std::vector<std::string> feed(const std::string& line) {
    auto record = parser_.parse(line, core::Provenance{"t", "", 0});
    if (!record) FAIL(record.error().message);
    std::vector<std::string> out;
    auto change = ledger_.admit(*record);
    if (!change) return out;
    last_.clear();
    for (auto& e : engine_.process(*record, *change)) {
      out.push_back(e.event + ":" + e.signal + ":" + std::to_string(e.grade));
      last_.push_back(std::move(e));
    }
    return out;
  }
  const std::vector<engine::AlertEvent>& last() const { return last_; }

 private:
  std::shared_ptr<const rules::RuleSet> rules_;
  engine::Engine engine_;
  engine::RecordLedger ledger_;
  ingest::NdjsonParser parser_;
  std::vector<engine::AlertEvent> last_;
};

using V = std::vector<std::string>;

}  // namespace

TEST_CASE("three-valued logic: unknown never holds, and and/or follow Kleene", "[engine]") {
  auto rs = rule_set(R"yaml(rules:
  - id: OR
    signal: pneumonitis
    title: either
    grades: [{grade: 2, when: "latest(cough) >= 2 or latest(dyspnea) >= 2"}]
    actions: {2: review}
    summary: "x"
  - id: AND
    signal: colitis
    title: both
    grades: [{grade: 1, when: "latest(cough) >= 1 and not (latest(dyspnea) >= 1)"}]
    actions: {1: review}
    summary: "x"
)yaml");
  Harness h(rs);
  h.dose("d", "nivolumab", 0);
  // cough 0 and dyspnea unknown: OR is unknown (no event); AND is false.
  CHECK(h.obs("c1", "cough", 0, 1) == V{});
  // unknown or true = true
  CHECK(h.obs("d1", "dyspnea", 3, 1.1) == V{"fired:pneumonitis:2"});
  // cough 1 with dyspnea 3 (fresh): AND is false; cough 1 alone after dyspnea goes stale: unknown.
  CHECK(h.obs("c2", "cough", 1, 1.2) == V{});
  CHECK(h.obs("c3", "cough", 1, 5) == V{});  // dyspnea stale (> 48 h): AND unknown, OR unknown -> stays open
}

TEST_CASE("an open alert is never resolved by silence, only by newer data", "[engine]") {
  Harness h(shipped());
  h.dose("d", "pembrolizumab", 0);
  h.obs("s0", "stools_per_day", 1, -1, R"(,"unit":"/d","baseline":true)");
  CHECK(h.obs("s1", "stools_per_day", 6, 10, R"(,"unit":"/d")") == V{"fired:colitis:2"});
  // Days later a lab arrives: the stool value is stale, C1 cannot judge; nothing changes.
  CHECK(h.obs("cal", "calprotectin", 40, 14, R"(,"unit":"ug/g")") == V{});
  // Newer stool data within baseline: resolved.
  CHECK(h.obs("s2", "stools_per_day", 1, 15, R"(,"unit":"/d")") == V{"resolved:colitis:0"});
  CHECK(h.last()[0].previous_grade == 2);
}

TEST_CASE("grade changes escalate and update; withdrawn data retracts", "[engine]") {
  Harness h(shipped());
  h.dose("d", "pembrolizumab", 0);
  CHECK(h.obs("t1", "tsh", 4.6, 10, R"(,"unit":"m[IU]/L")") == V{"fired:thyroid:1"});
  CHECK(h.obs("f1", "free_t4", 0.5, 10, R"(,"unit":"ng/dL")") == V{"escalated:thyroid:2"});
  // The free T4 is corrected to normal: T3 no longer holds, T1 still does.
  CHECK(h.obs("f1", "free_t4", 1.2, 10, R"(,"unit":"ng/dL","status":"corrected")") == V{"updated:thyroid:1"});
  // The TSH is withdrawn: nothing raised the alert any more.
  CHECK(
      h.feed(
          R"({"type":"observation","id":"t1","patient":"P","code":"tsh","time":"2026-01-11T00:00:00Z","status":"entered-in-error"})") ==
      V{"retracted:thyroid:0"});
  // The same record again changes nothing.
  CHECK(
      h.feed(
          R"({"type":"observation","id":"t1","patient":"P","code":"tsh","time":"2026-01-11T00:00:00Z","status":"entered-in-error"})") ==
      V{});
}

TEST_CASE("exposure gates the shipped rules", "[engine]") {
  Harness h(shipped());
  // A pre-treatment abnormal TSH, then the first dose: nothing fires.
  CHECK(h.obs("t0", "tsh", 12, 0, R"(,"unit":"m[IU]/L")") == V{});
  CHECK(h.dose("d", "nivolumab", 1) == V{});
  // After the dose it fires; 366 days after the last dose it does not.
  CHECK(h.obs("t1", "tsh", 4.9, 20, R"(,"unit":"m[IU]/L")") == V{"fired:thyroid:1"});
  Harness late(shipped());
  late.dose("d", "nivolumab", 0);
  CHECK(late.obs("t1", "tsh", 4.9, 366, R"(,"unit":"m[IU]/L")") == V{});
  CHECK(late.obs("t2", "tsh", 4.9, 365, R"(,"unit":"m[IU]/L")") == V{"fired:thyroid:1"});
}

TEST_CASE("alerts carry the spec's content: summary, evidence, action, sources, review note", "[engine]") {
  Harness h(shipped());
  h.dose("d1", "ipilimumab", 0);
  h.dose("d2", "nivolumab", 1);
  h.obs("s0", "stools_per_day", 1, -2, R"(,"unit":"/d","baseline":true)");
  REQUIRE(h.obs("s1", "stools_per_day", 6, 10, R"(,"unit":"/d")") == V{"fired:colitis:2"});
  const auto& e = h.last()[0];
  CHECK(e.summary == "Possible immune-related colitis, suspected CTCAE grade 2: 6 stools/day (baseline 1)");
  CHECK(e.summary.size() < 140);
  CHECK(e.severity == "warning");
  CHECK(e.rule == "C1");
  CHECK(e.ctcae == std::vector<std::string>{"Diarrhea"});
  CHECK_THAT(e.action, Catch::Contains("Hold the ICI"));
  CHECK_THAT(e.review_note, Catch::Contains("For clinician review"));
  CHECK(e.combination_therapy);
  CHECK_THAT(e.context, Catch::Contains("combination"));
  REQUIRE(e.evidence.size() == 2);
  CHECK(e.evidence[0].role == "latest");
  CHECK(e.evidence[0].value == 6);
  CHECK(e.evidence[1].from_baseline);
  CHECK(e.evidence[1].value == 1);
  CHECK_FALSE(e.references.empty());
  CHECK_THAT(e.ruleset_version, Catch::StartsWith("2026.11.0+"));
}

TEST_CASE("late data is evaluated as of its own time", "[engine]") {
  Harness h(shipped());
  h.dose("d", "pembrolizumab", 0);
  CHECK(h.obs("t2", "tsh", 3.0, 60, R"(,"unit":"m[IU]/L")") == V{});
  // An older result arrives afterwards: as of day 30 the latest TSH was 6, so T1 held then; the
  // newest data (day 60) shows it no longer holds, so the alert is also closed, as of day 60.
  CHECK(h.obs("t1", "tsh", 6.0, 30, R"(,"unit":"m[IU]/L")") == V{"fired:thyroid:1", "resolved:thyroid:0"});
  CHECK(h.last()[0].time.utc_ms == kStart + 30 * kDay);
  CHECK(h.last()[1].time.utc_ms == kStart + 60 * kDay);
  // A late normal value never lowers a current alert.
  Harness g(shipped());
  g.dose("d", "pembrolizumab", 0);
  CHECK(g.obs("t2", "tsh", 8.0, 60, R"(,"unit":"m[IU]/L")") == V{"fired:thyroid:1"});
  CHECK(g.obs("t1", "tsh", 2.0, 30, R"(,"unit":"m[IU]/L")") == V{});
}
