// Black box: the real daemon on loopback, fed NDJSON as an integration engine would.

#include <signal.h>
#include <catch2/catch.hpp>

#include "iraewatch/store/store.hpp"
#include "support/daemon.hpp"
#include "support/line_socket.hpp"

using namespace iraewatch;
using testing::Daemon;
using testing::LineSocket;
using testing::TempDir;

namespace {

std::string obs(const std::string& id, const std::string& patient = "MRN-1", double value = 5.5) {
  return R"({"type":"observation","id":")" + id + R"(","patient":")" + patient +
         R"(","code":"http://loinc.org|3016-3","value":)" + std::to_string(value) +
         R"(,"unit":"mIU/L","time":"2026-03-01T08:00:00+01:00"})";
}

}  // namespace

TEST_CASE("01 good and bad lines each get one reply, in order, and only good ones are stored", "[blackbox]") {
  TempDir tmp;
  const std::string data = tmp.file("data");
  {
    Daemon daemon(data);
    LineSocket client(daemon.port());
    client.send(
        obs("a1") + "\n" + "this is not json\n" + obs("a2") + "\n\n" +
        R"({"type":"observation","id":"a3","patient":"MRN-1","code":"tsh","value":1,"unit":"g","time":"2026-03-01T08:00:00Z"})" +
        "\n" + obs("a4") + "\r\n");
    CHECK(client.read_line() == R"({"ok":true,"id":"a1"})");
    auto bad = client.read_line();
    REQUIRE(bad);
    CHECK_THAT(*bad, Catch::StartsWith(R"({"ok":false,"line":2,"error":"not valid JSON)"));
    CHECK(client.read_line() == R"({"ok":true,"id":"a2"})");
    auto unit = client.read_line();  // line 4 was blank: no reply, but it counts
    REQUIRE(unit);
    CHECK_THAT(*unit, Catch::StartsWith(R"({"ok":false,"line":5,"error":"field 'unit': unit 'g' cannot be converted)"));
    CHECK(client.read_line() == R"({"ok":true,"id":"a4"})");

    // A line split across writes, and a final line without a newline at EOF.
    const std::string split = obs("a5");
    client.send(split.substr(0, 10));
    client.send(split.substr(10) + "\n" + obs("a6"));
    client.shutdown_send();
    CHECK(client.read_line() == R"({"ok":true,"id":"a5"})");
    CHECK(client.read_line() == R"({"ok":true,"id":"a6"})");
    CHECK(client.closed_by_peer());

    // The same lines again, on a new connection: acknowledged as duplicates, stored once.
    LineSocket again(daemon.port());
    again.send(obs("a1") + "\n" + obs("a1", "MRN-1", 7.25) + "\n");
    CHECK(again.read_line() == R"({"ok":true,"id":"a1","duplicate":true})");
    CHECK(again.read_line() == R"({"ok":true,"id":"a1","version":2})");
    CHECK(daemon.stop(SIGTERM) == 0);
  }
  auto store = store::Store::open(data);
  REQUIRE(store);
  auto summary = (*store)->summary();
  CHECK(summary->observations == 5);  // a1 a2 a4 a5 a6
  CHECK(summary->observation_versions == 6);
  CHECK(summary->rejected == 2);
  auto rejected = *(*store)->rejected(10);
  REQUIRE(rejected.size() == 2);
  CHECK(rejected[1].raw == "this is not json");
  CHECK(rejected[1].position == 2);
  CHECK_THAT(rejected[1].source, Catch::StartsWith("127.0.0.1:"));
  CHECK(rejected[0].error_code == "unit_mismatch");
  auto v = *(*store)->observation_versions("ndjson", "a1");
  REQUIRE(v.size() == 2);
  CHECK(v[1].observation.canonical_value == 7.25);
  CHECK(v[1].observation.time.offset_min == 60);
}

TEST_CASE("01 SIGTERM drains: every acknowledged record is stored and the daemon exits 0", "[blackbox]") {
  TempDir tmp;
  const std::string data = tmp.file("data");
  constexpr int kLines = 2000;
  int acked = 0;
  {
    Daemon daemon(data);
    LineSocket client(daemon.port());
    std::string payload;
    for (int i = 0; i < kLines; ++i) payload += obs("t" + std::to_string(i), "MRN-" + std::to_string(i % 37)) + "\n";
    client.send(payload);
    // Wait for the first reply so that the batch is under way, then ask the daemon to stop.
    auto first = client.read_line();
    REQUIRE(first);
    acked = 1;
    CHECK(daemon.stop(SIGTERM) == 0);
    while (auto line = client.read_line(std::chrono::seconds(5))) {
      CHECK_THAT(*line, Catch::StartsWith(R"({"ok":true)"));
      ++acked;
    }
    CHECK_THAT(daemon.log(), Catch::Contains("stopped:"));
  }
  auto store = store::Store::open(data);
  REQUIRE(store);
  CHECK((*store)->summary()->observations >= acked);
  CHECK((*store)->summary()->patients <= 37);
}

TEST_CASE("01 the daemon refuses to start on unusable rules or config, with a clear message", "[blackbox]") {
  TempDir tmp;
  testing::write_file(tmp.file("concepts.yaml"), "concepts: [\n");
  auto r =
      testing::run_binary({"--data-dir", tmp.file("data"), "--rules", tmp.path(), "serve", "--listen", "127.0.0.1:0"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("concepts.yaml:2:1: error: [yaml-syntax]"));

  auto bad_listen = testing::run_binary({"--data-dir", tmp.file("data"), "serve", "--listen", "nowhere"});
  CHECK(bad_listen.exit_code == 2);
  CHECK_THAT(bad_listen.err, Catch::Contains("must be HOST:PORT"));
}
