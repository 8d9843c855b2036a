// Black box: SIGKILL mid-stream loses no acknowledged record, and a resend stores nothing twice.

#include <signal.h>
#include <catch2/catch.hpp>

#include <filesystem>
#include <set>
#include <thread>

#include "iraewatch/store/store.hpp"
#include "support/daemon.hpp"
#include "support/line_socket.hpp"

using namespace iraewatch;
using testing::Daemon;
using testing::LineSocket;
using testing::TempDir;

namespace {

std::string line_for(int i) {
  return R"({"type":"observation","id":"k)" + std::to_string(i) + R"(","patient":"MRN-)" + std::to_string(i % 101) +
         R"(","code":"spo2","value":)" + std::to_string(90 + i % 8) + R"(,"unit":"%","time":"2026-03-01T08:00:00Z"})";
}

std::string id_of(const std::string& reply) {
  const auto start = reply.find("\"id\":\"");
  if (start == std::string::npos) return {};
  return reply.substr(start + 6, reply.find('"', start + 6) - start - 6);
}

}  // namespace

TEST_CASE("02 SIGKILL mid-stream: every acknowledged record is stored exactly once after restart", "[blackbox]") {
  TempDir tmp;
  const std::string data = tmp.file("data");
  constexpr int kLines = 30000;
  std::string payload;
  for (int i = 0; i < kLines; ++i) payload += line_for(i) + "\n";

  std::set<std::string> acked;
  {
    Daemon daemon(data);
    LineSocket client(daemon.port());
    std::thread sender([&] {
      try {
        client.send(payload);
      } catch (const std::exception&) {
        // The daemon dies under us: expected.
      }
    });
    while (auto reply = client.read_line(std::chrono::seconds(10))) {
      REQUIRE_THAT(*reply, Catch::StartsWith(R"({"ok":true)"));
      acked.insert(id_of(*reply));
      if (acked.size() == 3000) ::kill(daemon.pid(), SIGKILL);
    }
    sender.join();
    CHECK(daemon.stop(SIGKILL) == -SIGKILL);
  }
  INFO("acknowledged before the kill: " << acked.size());
  REQUIRE(acked.size() >= 3000);
  REQUIRE(acked.size() < static_cast<std::size_t>(kLines));  // the kill really landed mid-stream

  {
    auto store = store::Store::open(data);
    REQUIRE(store);
    for (const auto& id : acked) {
      auto versions = (*store)->observation_versions("ndjson", id);
      REQUIRE(versions);
      INFO(id);
      REQUIRE(versions->size() == 1);
    }
  }

  // Restart and resend everything, as a sender does after a lost connection.
  Daemon daemon(data);
  LineSocket client(daemon.port());
  std::thread sender([&] { client.send(payload); });
  int replies = 0, duplicates = 0;
  while (replies < kLines) {
    auto reply = client.read_line(std::chrono::seconds(30));
    REQUIRE(reply);
    REQUIRE_THAT(*reply, Catch::StartsWith(R"({"ok":true)"));
    const bool dup = reply->find("\"duplicate\":true") != std::string::npos;
    if (acked.count(id_of(*reply))) CHECK(dup);
    duplicates += dup;
    ++replies;
  }
  sender.join();
  CHECK(duplicates >= static_cast<int>(acked.size()));
  CHECK(daemon.stop(SIGTERM) == 0);

  auto store = store::Store::open(data);
  REQUIRE(store);
  auto summary = (*store)->summary();
  CHECK(summary->observations == kLines);
  CHECK(summary->observation_versions == kLines);  // nothing stored twice
  CHECK(summary->patients == 101);
}

TEST_CASE("02 an outside reader does not cost acknowledged records their durability", "[blackbox]") {
  // Regression: opening and closing the database file inside the daemon dropped SQLite's POSIX
  // locks; the next outside reader then took itself for the last user, checkpointed and deleted
  // the WAL under the daemon, and acknowledged records were lost on SIGKILL.
  TempDir tmp;
  const std::string data = tmp.file("data");
  Daemon daemon(data);
  {
    auto reader = store::Store::open(data, {true, 5000, false});
    REQUIRE(reader);
    CHECK((*reader)->summary()->observations == 0);
  }  // the outside connection closes here
  LineSocket client(daemon.port());
  std::string payload;
  for (int i = 0; i < 10; ++i) payload += line_for(i) + "\n";
  client.send(payload);
  for (int i = 0; i < 10; ++i) {
    auto reply = client.read_line();
    REQUIRE(reply);
    REQUIRE_THAT(*reply, Catch::StartsWith(R"({"ok":true)"));
  }
  CHECK(std::filesystem::exists(data + "/iraewatch.db-wal"));
  CHECK(daemon.stop(SIGKILL) == -SIGKILL);
  auto store = store::Store::open(data);
  REQUIRE(store);
  CHECK((*store)->summary()->observations == 10);
}
