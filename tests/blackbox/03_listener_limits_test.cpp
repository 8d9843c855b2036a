// Black box: the listener's limits give a clear error and close the connection, never a crash,
// and never lose the valid lines around the offending one.

#include <signal.h>
#include <catch2/catch.hpp>

#include <memory>

#include "iraewatch/store/store.hpp"
#include "support/daemon.hpp"
#include "support/line_socket.hpp"

using namespace iraewatch;
using testing::Daemon;
using testing::LineSocket;
using testing::TempDir;

namespace {

std::string obs(const std::string& id) {
  return R"({"type":"observation","id":")" + id +
         R"(","patient":"MRN-1","code":"cough","value":2,"time":"2026-03-01T08:00:00Z"})";
}

std::string limits_config(const TempDir& tmp) {
  const std::string path = tmp.file("limits.yaml");
  testing::write_file(path, R"(listeners:
  ndjson:
    max_line_bytes: 1024
    idle_timeout_seconds: 1
    max_connections: 2
)");
  return path;
}

}  // namespace

TEST_CASE("03 an over-long line is refused and kept; lines before it are stored", "[blackbox]") {
  TempDir tmp;
  const std::string data = tmp.file("data");
  {
    Daemon daemon(data, {"--config", limits_config(tmp)});
    LineSocket client(daemon.port());
    client.send(obs("l1") + "\n" + std::string(5000, 'x') + "\n" + obs("l3") + "\n");
    CHECK(client.read_line() == R"({"ok":true,"id":"l1"})");
    CHECK(client.read_line() == R"({"ok":false,"line":2,"error":"line is longer than 1024 bytes; connection closed"})");
    CHECK(client.closed_by_peer());

    // A line that never ends is cut off too, without reading it all.
    LineSocket endless(daemon.port());
    endless.send(std::string(4096, '{'));
    CHECK(endless.read_line() ==
          R"({"ok":false,"line":1,"error":"line is longer than 1024 bytes; connection closed"})");
    CHECK(endless.closed_by_peer());

    // The daemon is still serving.
    LineSocket after(daemon.port());
    after.send(obs("l4") + "\n");
    CHECK(after.read_line() == R"({"ok":true,"id":"l4"})");
  }
  auto store = store::Store::open(data);
  REQUIRE(store);
  CHECK((*store)->summary()->observations == 2);
  auto rejected = *(*store)->rejected(10);
  REQUIRE(rejected.size() == 2);
  CHECK(rejected[1].error_code == "limit_exceeded");
  CHECK(rejected[1].truncated);
  CHECK(rejected[1].raw.size() <= 64 * 1024);
  CHECK(rejected[1].raw.substr(0, 10) == "xxxxxxxxxx");
}

TEST_CASE("03 an idle connection is told and closed after the idle timeout", "[blackbox]") {
  TempDir tmp;
  Daemon daemon(tmp.file("data"), {"--config", limits_config(tmp)});
  LineSocket client(daemon.port());
  client.send(obs("i1") + "\n");
  CHECK(client.read_line() == R"({"ok":true,"id":"i1"})");
  auto line = client.read_line(std::chrono::seconds(10));
  REQUIRE(line);
  CHECK_THAT(*line, Catch::Contains("idle timeout"));
  CHECK(client.closed_by_peer());
}

TEST_CASE("03 connections past the limit are refused with a reason; the others go on", "[blackbox]") {
  TempDir tmp;
  Daemon daemon(tmp.file("data"), {"--config", limits_config(tmp)});
  auto c1 = std::make_unique<LineSocket>(daemon.port());
  LineSocket c2(daemon.port());
  c1->send(obs("c1") + "\n");
  CHECK(c1->read_line() == R"({"ok":true,"id":"c1"})");
  c2.send(obs("c2") + "\n");
  CHECK(c2.read_line() == R"({"ok":true,"id":"c2"})");

  LineSocket c3(daemon.port());
  auto refused = c3.read_line();
  REQUIRE(refused);
  CHECK(*refused == R"({"ok":false,"error":"too many connections (limit 2); try again later"})");
  CHECK(c3.closed_by_peer());

  c1.reset();  // a slot frees up
  bool served = false;
  for (int attempt = 0; attempt < 50 && !served; ++attempt) {
    LineSocket c4(daemon.port());
    c4.send(obs("c4") + "\n");
    auto reply = c4.read_line(std::chrono::seconds(2));
    served = reply && *reply == R"({"ok":true,"id":"c4"})";
  }
  CHECK(served);
}

TEST_CASE("03 a client that resets mid-batch does not disturb the daemon", "[blackbox]") {
  TempDir tmp;
  const std::string data = tmp.file("data");
  Daemon daemon(data);
  for (int round = 0; round < 5; ++round) {
    LineSocket rude(daemon.port());
    std::string payload;
    for (int i = 0; i < 500; ++i) payload += obs("r" + std::to_string(round) + "-" + std::to_string(i)) + "\n";
    rude.send(payload);
  }  // closed without reading a reply
  LineSocket polite(daemon.port());
  polite.send(obs("p1") + "\n");
  CHECK(polite.read_line() == R"({"ok":true,"id":"p1"})");
  CHECK(daemon.stop(SIGTERM) == 0);
}
