// Black box: check, replay, and the daemon's alert log, as a pharmacist and an integrator use them.

#include <catch2/catch.hpp>

#include <filesystem>
#include <sstream>
#include <thread>

#include "support/daemon.hpp"
#include "support/line_socket.hpp"

using namespace iraewatch;
using testing::run_binary;
using testing::TempDir;

namespace {

const std::string kSource = IRAEWATCH_SOURCE_DIR;
const std::string kExamples = kSource + "/examples/records.ndjson";

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

}  // namespace

TEST_CASE("05 check passes the shipped rules and points at each problem in a broken copy", "[blackbox]") {
  auto ok = run_binary({"check"});
  CHECK(ok.exit_code == 0);
  CHECK_THAT(ok.out, Catch::Contains("0 errors, 0 warnings; 15 rules ok"));

  TempDir tmp;
  std::filesystem::copy(kSource + "/rules", tmp.file("rules"));
  std::string thyroid = testing::read_file(tmp.file("rules/thyroid.yaml"));
  const std::string from = R"(when: "latest(tsh) > 4.5 m[IU]/L"})";
  const auto pos = thyroid.find(from);
  REQUIRE(pos != std::string::npos);
  thyroid.replace(pos, from.size(), R"(when: "latest(tsh) > 4.5 %"})");
  testing::write_file(tmp.file("rules/thyroid.yaml"), thyroid);

  auto bad = run_binary({"check", tmp.file("rules")});
  CHECK(bad.exit_code == 1);
  CHECK_THAT(bad.out, Catch::Contains("rules/thyroid.yaml:"));
  CHECK_THAT(bad.out, Catch::Contains(
                          ": error: [unit-mismatch] unit '%' cannot be converted to m[IU]/L (the unit of tsh) (T1)"));
  CHECK_THAT(bad.out, Catch::Contains("1 error, 0 warnings"));
  // The source line, then a caret under the '%'.
  const auto out = lines_of(bad.out);
  REQUIRE(out.size() >= 3);
  const auto& source = out[1];
  const auto& caret = out[2];
  CHECK_THAT(source, Catch::Contains("latest(tsh) > 4.5 %"));
  REQUIRE(caret.find('^') != std::string::npos);
  CHECK(source[caret.find('^')] == '%');

  // A daemon never starts on a rule set with errors.
  auto serve =
      run_binary({"--rules", tmp.file("rules"), "--data-dir", tmp.file("data"), "serve", "--listen", "127.0.0.1:0"});
  CHECK(serve.exit_code == 2);
  CHECK_THAT(serve.err, Catch::Contains("[unit-mismatch]"));
}

TEST_CASE("05 replay prints one JSON event per line with the contract's fields", "[blackbox]") {
  auto r = run_binary({"replay", kExamples});
  CHECK(r.exit_code == 0);
  const auto events = lines_of(r.out);
  // Five findings, and one re-notification: replay's lifecycle clock is event time, and the
  // warning thyroid alert of 16 February is still unacknowledged when later data arrives.
  REQUIRE(events.size() == 6);
  for (const auto& e : events) {
    for (const char* field :
         {"\"event\":", "\"patient\":", "\"signal\":", "\"grade\":", "\"severity\":", "\"rule\":", "\"title\":",
          "\"summary\":", "\"action\":", "\"evidence\":", "\"time\":", "\"ruleset_version\":"}) {
      INFO(e);
      CHECK_THAT(e, Catch::Contains(field));
    }
    CHECK_THAT(e, Catch::Contains("For clinician review"));
  }
  CHECK_THAT(events[0], Catch::StartsWith(R"({"event":"fired","patient":"MRN-1001","signal":"thyroid","grade":1)"));
  CHECK_THAT(r.err, Catch::Contains("replay: 20 records (0 duplicates), 0 rejected, 3 patients"));
  CHECK_THAT(r.err, Catch::Contains("C1           fired 1"));
  CHECK_THAT(events[2],
             Catch::StartsWith(R"({"event":"renotified","patient":"MRN-1001","signal":"thyroid","grade":2)"));
  CHECK_THAT(events[2], Catch::Contains(R"("seq":3,"alert_id":1,"state":"firing","pages":true)"));
  CHECK_THAT(r.err, Catch::Contains("thyroid      renotified 1"));

  // Rejected lines go to stderr with their line numbers; the rest is still replayed.
  TempDir tmp;
  testing::write_file(tmp.file("mixed.ndjson"), testing::read_file(kExamples) + "garbage\n");
  auto mixed = run_binary({"replay", tmp.file("mixed.ndjson")});
  CHECK(mixed.exit_code == 1);
  CHECK(lines_of(mixed.out).size() == 6);
  CHECK_THAT(mixed.err, Catch::Contains("mixed.ndjson:21: error: not valid JSON"));
}

TEST_CASE("05 the daemon appends alert events for committed records, and never twice", "[blackbox]") {
  TempDir tmp;
  const std::string data = tmp.file("data");
  const std::string log = data + "/alerts.jsonl";
  auto wait_for_lines = [&](std::size_t n) {
    for (int i = 0; i < 200 && lines_of(testing::read_file(log)).size() < n; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    return lines_of(testing::read_file(log));
  };
  {
    testing::Daemon daemon(data);
    auto sent = run_binary({"send", "--to", "127.0.0.1:" + std::to_string(daemon.port()), kExamples});
    CHECK(sent.exit_code == 0);
    const auto events = wait_for_lines(5);
    REQUIRE(events.size() == 5);
    CHECK_THAT(
        events[2],
        Catch::Contains(
            R"x("summary":"Possible immune-related colitis, suspected CTCAE grade 2: 6 stools/day (baseline 1)")x"));
  }
  // After a restart the engine is warmed from the store (19 current records: one line corrected
  // another), and the same data again alerts no one.
  testing::Daemon daemon(data);
  CHECK_THAT(daemon.log(), Catch::Contains("engine warmed with 19 records of 3 patients"));
  auto again = run_binary({"send", "--to", "127.0.0.1:" + std::to_string(daemon.port()), kExamples});
  CHECK_THAT(again.out, Catch::Contains("20 acknowledged (20 duplicates)"));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(lines_of(testing::read_file(log)).size() == 5);
}
