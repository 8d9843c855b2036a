// Black box: the command line, as a user or a script runs it.

#include <catch2/catch.hpp>

#include "support/daemon.hpp"

using namespace iraewatch;
using testing::run_binary;
using testing::TempDir;

namespace {
const std::string kExamples = std::string(IRAEWATCH_SOURCE_DIR) + "/examples/records.ndjson";
}

TEST_CASE("04 ingest stores the example data, then finds it all duplicate", "[blackbox]") {
  TempDir tmp;
  auto first = run_binary({"--data-dir", tmp.file("data"), "ingest", kExamples});
  CHECK(first.exit_code == 0);
  CHECK_THAT(first.out, Catch::Contains("20 accepted (20 new, 0 duplicates), 0 rejected"));
  auto second = run_binary({"--data-dir", tmp.file("data"), "ingest", kExamples});
  CHECK(second.exit_code == 0);
  CHECK_THAT(second.out, Catch::Contains("20 accepted (0 new, 20 duplicates), 0 rejected"));

  auto summary = run_binary({"--data-dir", tmp.file("data"), "summary"});
  CHECK(summary.exit_code == 0);
  CHECK_THAT(summary.out, Catch::Contains("patients                3"));
  CHECK_THAT(summary.out, Catch::Contains("observations            14 (15 versions"));
  CHECK_THAT(summary.out, Catch::Contains("administrations         5 (5 of ICIs)"));
}

TEST_CASE("04 ingest reports each rejected line with file and line, and exits 1", "[blackbox]") {
  TempDir tmp;
  const std::string input =
      R"({"type":"observation","id":"s1","patient":"p","code":"cough","value":1,"time":"2026-03-01T08:00:00Z"})"
      "\n{oops\n"
      R"({"type":"observation","id":"s2","patient":"p","code":"cough","value":1,"time":"2026-03-01"})"
      "\n";
  auto r = run_binary({"--data-dir", tmp.file("data"), "ingest", "-"}, input);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.out, Catch::Contains("-: 1 accepted (1 new, 0 duplicates), 2 rejected"));
  CHECK_THAT(r.err, Catch::Contains("-:2: error: not valid JSON"));
  CHECK_THAT(r.err, Catch::Contains("-:3: error: field 'time': invalid time"));

  auto summary = run_binary({"--data-dir", tmp.file("data"), "summary"});
  CHECK_THAT(summary.out, Catch::Contains("rejected input          2"));
  CHECK_THAT(summary.out, Catch::Contains("-:2 [invalid_input] not valid JSON"));
}

TEST_CASE("04 usage errors exit 2 with a reason", "[blackbox]") {
  TempDir tmp;
  testing::write_file(tmp.file("records.txt"), "{}\n");
  auto format = run_binary({"--data-dir", tmp.file("data"), "ingest", tmp.file("records.txt")});
  CHECK(format.exit_code == 2);
  CHECK_THAT(format.err, Catch::Contains("cannot tell the format"));

  auto missing = run_binary({"--data-dir", tmp.file("data"), "ingest", tmp.file("nope.ndjson")});
  CHECK(missing.exit_code == 2);
  CHECK_THAT(missing.err, Catch::Contains("cannot read"));

  testing::write_file(tmp.file("bad.yaml"), "listeners:\n  ndjson:\n    prot: 7000\n    port: many\n");
  auto config = run_binary({"--config", tmp.file("bad.yaml"), "summary"});
  CHECK(config.exit_code == 2);
  CHECK_THAT(config.err, Catch::Contains("bad.yaml:3:5: error: unknown key 'prot' in listeners.ndjson"));
  CHECK_THAT(config.err, Catch::Contains("bad.yaml:4:11: error: 'port' has the wrong type"));

  testing::write_file(tmp.file("odd.yaml"), "? [a, b]\n: 1\n");
  auto odd = run_binary({"--config", tmp.file("odd.yaml"), "summary"});
  CHECK(odd.exit_code == 2);
  CHECK_THAT(odd.err, Catch::Contains("odd.yaml:1:"));

  auto absent = run_binary({"--data-dir", tmp.file("no-such-store"), "summary"});
  CHECK(absent.exit_code == 2);
  CHECK_THAT(absent.err, Catch::Contains("no database at"));

  auto no_command = run_binary({});
  CHECK(no_command.exit_code == 2);

  auto nobody = run_binary({"send", "--to", "127.0.0.1:1", kExamples});
  CHECK(nobody.exit_code == 2);
  CHECK_THAT(nobody.err, Catch::Contains("cannot connect"));
}

TEST_CASE("04 send delivers a file to the running daemon and summarises the replies", "[blackbox]") {
  TempDir tmp;
  testing::Daemon daemon(tmp.file("data"));
  const std::string to = "127.0.0.1:" + std::to_string(daemon.port());
  auto r = run_binary({"send", "--to", to, kExamples});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("20 acknowledged (0 duplicates), 0 errors"));
  auto bad = run_binary({"send", "--to", to, "--print", "-"}, "nonsense\n");
  CHECK(bad.exit_code == 1);
  CHECK_THAT(bad.err, Catch::Contains("-:1: error: not valid JSON"));
  CHECK_THAT(bad.out, Catch::Contains(R"({"ok":false,"line":1)"));
}
