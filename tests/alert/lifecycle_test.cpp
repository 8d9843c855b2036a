#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <map>

#include "iraewatch/alert/lifecycle.hpp"
#include "iraewatch/core/event_time.hpp"
#include "iraewatch/engine/engine.hpp"
#include "iraewatch/engine/record_ledger.hpp"
#include "iraewatch/ingest/ndjson_parser.hpp"
#include "iraewatch/rules/rule_set_loader.hpp"

using namespace iraewatch;

namespace {

constexpr std::int64_t kHour = 3'600'000;
constexpr std::int64_t kDay = 24 * kHour;
const std::int64_t kStart = core::parse_rfc3339("2026-01-01T00:00:00Z")->utc_ms;

engine::AlertEvent finding(const std::string& event, const std::string& signal, int grade, const std::string& severity,
                           const std::string& patient = "P1") {
  engine::AlertEvent e;
  e.event = event;
  e.patient = patient;
  e.signal = signal;
  e.grade = grade;
  e.severity = severity;
  e.indicator = severity;
  e.rule = "R" + std::to_string(grade);
  e.rules = {e.rule};
  e.summary = "Possible " + signal + ", suspected grade " + std::to_string(grade);
  e.time = core::EventTime{kStart, 0};
  e.trigger = "t|" + event + std::to_string(grade);
  return e;
}

alert::LifecyclePolicy policy() {
  alert::LifecyclePolicy p;
  p.renotify_critical_ms = 4 * kHour;
  p.renotify_warning_ms = 24 * kHour;
  p.renotify_info_ms = 0;
  return p;
}

}  // namespace

TEST_CASE("fired, updated, escalated, resolved: one alert per episode, seq strictly increasing", "[alert]") {
  alert::Lifecycle lc(policy());
  auto fired = lc.on_event(finding("fired", "colitis", 2, "warning"), kStart, kStart);
  REQUIRE(fired);
  CHECK(fired->notice.event == "fired");
  CHECK(fired->notice.pages);
  CHECK(fired->notice.seq == 1);
  CHECK(fired->alert.id == 1);
  CHECK(fired->alert.state == core::AlertState::firing);
  CHECK(fired->notice.cause == "record t|fired2");

  auto fell = lc.on_event(finding("updated", "colitis", 1, "info"), kStart + kHour, kStart + kHour);
  REQUIRE(fell);
  CHECK(fell->notice.event == "updated");
  CHECK_FALSE(fell->notice.pages);  // a fall never pages
  CHECK(fell->notice.alert_id == 1);
  CHECK(fell->notice.seq == 2);

  auto rose = lc.on_event(finding("escalated", "colitis", 3, "critical"), kStart + 2 * kHour, kStart + 2 * kHour);
  REQUIRE(rose);
  CHECK(rose->notice.event == "escalated");
  CHECK(rose->notice.pages);
  CHECK(rose->alert.grade == 3);

  // Another signal of the same patient is another alert.
  auto other = lc.on_event(finding("fired", "thyroid", 1, "info"), kStart + 2 * kHour, kStart + 2 * kHour);
  REQUIRE(other);
  CHECK(other->alert.id == 2);
  CHECK(lc.open_count() == 2);

  auto resolved = lc.on_event(finding("resolved", "colitis", 0, "info"), kStart + 3 * kHour, kStart + 3 * kHour);
  REQUIRE(resolved);
  CHECK(resolved->notice.event == "resolved");
  CHECK(resolved->alert.state == core::AlertState::resolved);
  CHECK(resolved->notice.grade == 0);
  CHECK(resolved->alert.grade == 3);  // the listing keeps "was grade 3"
  CHECK(lc.open_count() == 1);
  CHECK(lc.open_alert(1) == nullptr);

  // A resolution with nothing open changes nothing.
  CHECK_FALSE(lc.on_event(finding("resolved", "colitis", 0, "info"), kStart + 4 * kHour, kStart + 4 * kHour));

  // The next firing is a new episode: a new alert id.
  auto again = lc.on_event(finding("fired", "colitis", 1, "info"), kStart + 5 * kHour, kStart + 5 * kHour);
  REQUIRE(again);
  CHECK(again->alert.id == 3);
  CHECK(again->notice.seq == 6);
}

TEST_CASE("retracted closes the alert when its data is withdrawn", "[alert]") {
  alert::Lifecycle lc(policy());
  REQUIRE(lc.on_event(finding("fired", "thyroid", 2, "warning"), kStart, kStart));
  auto r = lc.on_event(finding("retracted", "thyroid", 0, "info"), kStart + kHour, kStart + kHour);
  REQUIRE(r);
  CHECK(r->notice.event == "retracted");
  CHECK(r->alert.state == core::AlertState::retracted);
  CHECK_FALSE(r->notice.pages);
  CHECK(lc.open_count() == 0);
}

TEST_CASE("acknowledgement records who and why; an escalation clears it; an update does not", "[alert]") {
  alert::Lifecycle lc(policy());
  REQUIRE(lc.on_event(finding("fired", "colitis", 2, "warning"), kStart, kStart));

  CHECK(lc.acknowledge(1, "", "x", kStart, kStart).error().code == core::ErrorCode::invalid_input);
  CHECK(lc.acknowledge(9, "nurse.kim", "", kStart, kStart).error().code == core::ErrorCode::not_found);

  auto ack = lc.acknowledge(1, "nurse.kim", "called the patient; clinic tomorrow", kStart + kHour, kStart + kHour);
  REQUIRE(ack);
  CHECK(ack->notice.event == "acknowledged");
  CHECK(ack->notice.actor == "nurse.kim");
  CHECK(ack->notice.note == "called the patient; clinic tomorrow");
  CHECK(ack->alert.state == core::AlertState::acknowledged);
  CHECK_FALSE(ack->notice.pages);
  const auto line = nlohmann::json::parse(ack->notice.line);
  CHECK(line["event"] == "acknowledged");
  CHECK(line["acknowledged_by"] == "nurse.kim");
  CHECK(line["state"] == "acknowledged");
  CHECK(line["alert_id"] == 1);

  auto twice = lc.acknowledge(1, "nurse.lee", "", kStart + kHour, kStart + kHour);
  REQUIRE_FALSE(twice);
  CHECK(twice.error().code == core::ErrorCode::conflict);

  auto fell = lc.on_event(finding("updated", "colitis", 1, "info"), kStart + 2 * kHour, kStart + 2 * kHour);
  REQUIRE(fell);
  CHECK(fell->alert.state == core::AlertState::acknowledged);

  auto rose = lc.on_event(finding("escalated", "colitis", 3, "critical"), kStart + 3 * kHour, kStart + 3 * kHour);
  REQUIRE(rose);
  CHECK(rose->notice.event == "escalated");
  CHECK(rose->alert.state == core::AlertState::firing);
  CHECK(rose->alert.acknowledged_by.empty());
  CHECK(lc.acknowledge(1, "nurse.lee", "", kStart + 4 * kHour, kStart + 4 * kHour));
}

TEST_CASE("an unacknowledged alert is re-notified per severity; acknowledged or info ones are not", "[alert]") {
  alert::Lifecycle lc(policy());
  REQUIRE(lc.on_event(finding("fired", "pneumonitis", 3, "critical"), kStart, kStart));
  REQUIRE(lc.on_event(finding("fired", "colitis", 2, "warning"), kStart, kStart));
  REQUIRE(lc.on_event(finding("fired", "thyroid", 1, "info"), kStart, kStart));
  CHECK(lc.next_due_ms() == kStart + 4 * kHour);

  CHECK(lc.renotify_due(kStart + 4 * kHour - 1, 0).empty());
  auto due = lc.renotify_due(kStart + 4 * kHour, 0);
  REQUIRE(due.size() == 1);
  CHECK(due[0].notice.event == "renotified");
  CHECK(due[0].notice.signal == "pneumonitis");
  CHECK(due[0].notice.pages);
  CHECK(due[0].notice.cause.find("not acknowledged for 4h") != std::string::npos);
  // Not again until another interval has passed.
  CHECK(lc.renotify_due(kStart + 5 * kHour, 0).empty());

  // Acknowledged: the critical one is quiet from now on.
  REQUIRE(lc.acknowledge(1, "nurse.kim", "", kStart + 6 * kHour, 0));
  auto later = lc.renotify_due(kStart + 25 * kHour, 0);
  REQUIRE(later.size() == 1);
  CHECK(later[0].notice.signal == "colitis");  // warning: every 24 h; info: never
}

TEST_CASE("load restores open alerts and counters; a fired for an open alert does not open another", "[alert]") {
  alert::Lifecycle first(policy());
  auto t = first.on_event(finding("fired", "colitis", 2, "warning"), kStart, kStart);
  REQUIRE(t);

  alert::Lifecycle second(policy());
  second.load({t->alert}, 1, 1);
  CHECK(second.open_count() == 1);
  // After a restart the engine may report the same signal as fired again: same alert.
  auto same = second.on_event(finding("fired", "colitis", 2, "warning"), kStart + kHour, kStart + kHour);
  REQUIRE(same);
  CHECK(same->notice.event == "updated");
  CHECK(same->notice.alert_id == 1);
  CHECK(same->notice.seq == 2);
  auto higher = second.on_event(finding("fired", "colitis", 3, "critical"), kStart + kHour, kStart + kHour);
  REQUIRE(higher);
  CHECK(higher->notice.event == "escalated");
  // The renotification schedule survives too.
  CHECK(second.next_due_ms() == kStart + kHour + 4 * kHour);
}

TEST_CASE("a notice line is the event's content plus the lifecycle fields", "[alert]") {
  alert::Lifecycle lc(policy());
  auto t = lc.on_event(finding("fired", "colitis", 2, "warning", "MRN \"x\""), kStart, kStart + 1500);
  REQUIRE(t);
  const auto j = nlohmann::ordered_json::parse(t->notice.line);
  CHECK(j.begin().key() == "event");
  CHECK(j["event"] == "fired");
  CHECK(j["patient"] == "MRN \"x\"");
  CHECK(j["grade"] == 2);
  CHECK(j["seq"] == 1);
  CHECK(j["alert_id"] == 1);
  CHECK(j["state"] == "firing");
  CHECK(j["pages"] == true);
  CHECK(j["recorded_at"] == "2026-01-01T00:00:01.500Z");
  CHECK(j["cause"] == "record t|fired2");
  CHECK(t->notice.text.find("#1 FIRED alert 1 colitis grade 2 warning") == 0);
}

// The engine with the shipped rules, followed by the lifecycle, as `replay` and the daemon run them.
namespace {

class Pipeline {
 public:
  Pipeline()
      : rules_(rules::load_rule_set(std::string(IRAEWATCH_SOURCE_DIR) + "/rules").rules),
        engine_(rules_),
        parser_(rules_->concepts),
        lifecycle_(policy()) {}

  // Returns "event:signal:grade" of each notice.
  std::vector<std::string> feed(const std::string& line) {
    auto record = parser_.parse(line, core::Provenance{"t", "", 0});
    REQUIRE(record);
    std::vector<std::string> out;
    auto change = ledger_.admit(*record);
    if (!change) return out;
    for (const auto& e : engine_.process(*record, *change)) {
      auto t = lifecycle_.on_event(e, 0, 0);
      if (t) out.push_back(t->notice.event + ":" + t->notice.signal + ":" + std::to_string(t->notice.grade));
    }
    return out;
  }
  std::vector<std::string> obs(const std::string& id, const std::string& code, double value, int day,
                               const std::string& unit, const std::string& extra = "") {
    return feed(R"({"type":"observation","id":")" + id + R"(","patient":"P","code":")" + code + R"(","value":)" +
                std::to_string(value) + R"(,"unit":")" + unit + R"(","time":")" +
                core::format_utc(kStart + day * kDay) + "\"" + extra + "}");
  }

 private:
  std::shared_ptr<const rules::RuleSet> rules_;
  engine::Engine engine_;
  engine::RecordLedger ledger_;
  ingest::NdjsonParser parser_;
  alert::Lifecycle lifecycle_;
};

using V = std::vector<std::string>;

}  // namespace

TEST_CASE("with the shipped rules: the same record twice notifies once", "[alert]") {
  Pipeline p;
  p.feed(R"({"type":"medication","id":"d","patient":"P","drug":"pembrolizumab","time":"2026-01-01T00:00:00Z"})");
  CHECK(p.obs("t1", "tsh", 6.8, 20, "m[IU]/L") == V{"fired:thyroid:1"});
  CHECK(p.obs("t1", "tsh", 6.8, 20, "m[IU]/L") == V{});
}

TEST_CASE("with the shipped rules: a corrected result retracts the alert it raised", "[alert]") {
  Pipeline p;
  p.feed(R"({"type":"medication","id":"d","patient":"P","drug":"pembrolizumab","time":"2026-01-01T00:00:00Z"})");
  CHECK(p.obs("t1", "tsh", 6.8, 20, "m[IU]/L") == V{"fired:thyroid:1"});
  CHECK(p.obs("t1", "tsh", 2.0, 20, "m[IU]/L", R"(,"status":"corrected")") == V{"retracted:thyroid:0"});
}

TEST_CASE("with the shipped rules: a grade that rises then falls escalates, then updates", "[alert]") {
  Pipeline p;
  p.feed(R"({"type":"medication","id":"d","patient":"P","drug":"pembrolizumab","time":"2026-01-01T00:00:00Z"})");
  p.obs("s0", "stools_per_day", 1, -2, "/d", R"(,"baseline":true)");
  CHECK(p.obs("s1", "stools_per_day", 3, 10, "/d") == V{"fired:colitis:1"});
  CHECK(p.obs("s2", "stools_per_day", 9, 11, "/d") == V{"escalated:colitis:3"});
  CHECK(p.obs("s3", "stools_per_day", 4, 12, "/d") == V{"updated:colitis:1"});
  CHECK(p.obs("s4", "stools_per_day", 1, 13, "/d") == V{"resolved:colitis:0"});
}

TEST_CASE("merging two patients moves open alerts, or closes the duplicate of a signal", "[alert]") {
  alert::Lifecycle lc(policy());
  REQUIRE(lc.on_event(finding("fired", "thyroid", 2, "warning", "OLD"), kStart, kStart));    // alert 1
  REQUIRE(lc.on_event(finding("fired", "colitis", 1, "info", "OLD"), kStart, kStart));       // alert 2
  REQUIRE(lc.on_event(finding("fired", "thyroid", 1, "info", "SURVIVOR"), kStart, kStart));  // alert 3
  auto merged = lc.merge_patients("OLD", "SURVIVOR", kStart + kHour, kStart + kHour);
  REQUIRE(merged.size() == 2);
  // colitis moves (no colitis alert for the survivor yet); thyroid duplicates the survivor's alert 3.
  std::map<std::string, alert::Transition> by_signal;
  for (auto& t : merged) by_signal.emplace(t.notice.signal, t);
  CHECK(by_signal.at("colitis").notice.event == "updated");
  CHECK(by_signal.at("colitis").alert.patient == "SURVIVOR");
  CHECK(nlohmann::json::parse(by_signal.at("colitis").notice.line)["patient"] == "SURVIVOR");
  CHECK(by_signal.at("thyroid").notice.event == "retracted");
  CHECK(by_signal.at("thyroid").notice.cause.find("alert 3") != std::string::npos);
  // Like any retraction: grade 0, info, in the event; the closed alert keeps its grade for listings.
  CHECK(by_signal.at("thyroid").notice.grade == 0);
  CHECK(by_signal.at("thyroid").notice.severity == "info");
  CHECK(by_signal.at("thyroid").alert.grade == 2);
  CHECK(nlohmann::json::parse(by_signal.at("thyroid").notice.line)["grade"] == 0);
  // Both events are dated by the merge (no data caused them).
  const std::string merge_time = core::format_rfc3339(core::EventTime{kStart + kHour, 0});
  CHECK(by_signal.at("thyroid").notice.data_time == merge_time);
  CHECK(by_signal.at("colitis").notice.data_time == merge_time);
  CHECK(lc.open_count() == 2);
  // Later findings for the survivor update the moved alert, not a new one.
  auto later = lc.on_event(finding("escalated", "colitis", 2, "warning", "SURVIVOR"), kStart + 2 * kHour, 0);
  REQUIRE(later);
  CHECK(later->notice.alert_id == 2);
  CHECK(later->notice.event == "escalated");
}
