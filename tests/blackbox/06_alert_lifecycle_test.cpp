// Black box: the alert lifecycle of the running daemon, seen as a nurse's tools and an
// integrator's subscriber see it: the outbox over the subscriber socket, resumption by seq,
// acknowledgement through the control socket and through the database, history, re-notification,
// heartbeats, and delivery after a SIGKILL between commit and delivery.

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "support/daemon.hpp"
#include "support/line_socket.hpp"

using namespace iraewatch;
using testing::Daemon;
using testing::LineSocket;
using testing::run_binary;
using testing::TempDir;
using json = nlohmann::json;

namespace {

const std::string kExamples = std::string(IRAEWATCH_SOURCE_DIR) + "/examples/records.ndjson";

std::string send_to(const Daemon& d, const std::string& file) {
  auto r = run_binary({"send", "--to", "127.0.0.1:" + std::to_string(d.port()), file});
  REQUIRE(r.exit_code == 0);
  return r.out;
}

// Reads subscriber lines until `n` alert events have arrived (heartbeats skipped), bounded.
std::vector<json> read_events(LineSocket& s, std::size_t n,
                              std::chrono::milliseconds per_line = std::chrono::seconds(10)) {
  std::vector<json> out;
  for (int guard = 0; out.size() < n && guard < 1000; ++guard) {
    auto line = s.read_line(per_line);
    if (!line) break;
    auto j = json::parse(*line);
    if (j.contains("type")) continue;  // hello, heartbeat
    out.push_back(std::move(j));
  }
  return out;
}

json hello(LineSocket& s) {
  auto line = s.read_line();
  REQUIRE(line);
  auto j = json::parse(*line);
  REQUIRE(j["type"] == "hello");
  return j;
}

// A thyroid finding for another patient: a dose, then a high TSH.
std::string thyroid_records(const std::string& patient) {
  return R"({"type":"medication","id":"d-)" + patient + R"(","patient":")" + patient +
         R"(","drug":"nivolumab","time":"2026-03-01T09:00:00Z"})"
         "\n" +
         R"({"type":"observation","id":"t-)" + patient + R"(","patient":")" + patient +
         R"(","code":"tsh","value":7.5,"unit":"m[IU]/L","time":"2026-03-20T08:00:00Z"})"
         "\n";
}

class DatagramReceiver {
 public:
  explicit DatagramReceiver(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  ~DatagramReceiver() { ::close(fd_); }
  std::optional<std::string> receive(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    char buf[16384];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return std::nullopt;
    return std::string(buf, static_cast<std::size_t>(n));
  }

 private:
  int fd_ = -1;
};

}  // namespace

TEST_CASE("06 a subscriber disconnects and resumes from its seq without loss or duplicates", "[blackbox]") {
  TempDir tmp;
  Daemon daemon(tmp.file("data"));
  std::int64_t last_seen = 0;
  {
    LineSocket sub(daemon.subscriber_port());
    CHECK(hello(sub)["seq"] == 0);
    send_to(daemon, kExamples);
    auto events = read_events(sub, 5);
    REQUIRE(events.size() == 5);
    for (std::size_t i = 0; i < events.size(); ++i) CHECK(events[i]["seq"] == static_cast<int>(i + 1));
    CHECK(events[0]["event"] == "fired");
    CHECK(events[0]["state"] == "firing");
    CHECK(events[0]["alert_id"].is_number_integer());
    CHECK(events[0]["summary"].get<std::string>().size() < 140);
    last_seen = 2;  // the subscriber "processed" two events, then its connection drops
  }
  // Events committed while nobody listens stay in the outbox.
  testing::write_file(tmp.file("more.ndjson"), thyroid_records("MRN-7") + thyroid_records("MRN-8"));
  send_to(daemon, tmp.file("more.ndjson"));
  LineSocket sub(daemon.subscriber_port());
  const auto h = hello(sub);
  CHECK(h["seq"] == 7);
  sub.send(R"({"since":)" + std::to_string(last_seen) + "}\n");
  auto events = read_events(sub, 5);
  REQUIRE(events.size() == 5);
  std::vector<int> seqs;
  for (const auto& e : events) seqs.push_back(e["seq"]);
  CHECK(seqs == std::vector<int>{3, 4, 5, 6, 7});
  CHECK(events[3]["patient"] == "MRN-7");
  CHECK(events[4]["patient"] == "MRN-8");
  // Nothing more arrives: no duplicates after the catch-up.
  auto extra = read_events(sub, 1, std::chrono::milliseconds(300));
  CHECK(extra.empty());

  // The same data again notifies no one.
  send_to(daemon, kExamples);
  CHECK(read_events(sub, 1, std::chrono::milliseconds(500)).empty());
}

TEST_CASE("06 SIGKILL between commit and delivery: the event is delivered after restart", "[blackbox]") {
  TempDir tmp;
  const std::string data = tmp.file("data");
  const std::string syslog_path = tmp.file("syslog.sock");
  // Syslog is not listening yet: every event is committed but cannot be delivered to it.
  testing::write_file(tmp.file("config.yaml"),
                      "alerts:\n  outputs:\n    syslog:\n      enabled: true\n      unix_path: " + syslog_path + "\n");
  {
    Daemon daemon(data, {"--config", tmp.file("config.yaml")});
    const auto out = send_to(daemon, kExamples);  // acknowledged: committed with their alert events
    CHECK_THAT(out, Catch::Contains("20 acknowledged"));
    ::kill(daemon.pid(), SIGKILL);
    CHECK(daemon.stop(SIGKILL) == -SIGKILL);
  }
  DatagramReceiver syslog(syslog_path);
  Daemon daemon(data, {"--config", tmp.file("config.yaml")});
  std::set<int> seqs;
  for (int i = 0; i < 50 && seqs.size() < 5; ++i) {
    auto msg = syslog.receive(std::chrono::seconds(5));
    if (!msg) break;
    CHECK_THAT(*msg, Catch::StartsWith("<1"));
    const auto at = msg->find("seq=\"");
    REQUIRE(at != std::string::npos);
    seqs.insert(std::stoi(msg->substr(at + 5)));
  }
  CHECK(seqs == std::set<int>{1, 2, 3, 4, 5});
  // The subscriber socket replays the same outbox from any seq.
  LineSocket sub(daemon.subscriber_port());
  hello(sub);
  sub.send("{\"since\":0}\n");
  CHECK(read_events(sub, 5).size() == 5);
  // The file output got them too, each at least once, in order.
  const auto log = testing::read_file(data + "/alerts.jsonl");
  int lines = 0;
  for (std::size_t pos = 0; (pos = log.find('\n', pos)) != std::string::npos; ++pos) ++lines;
  CHECK(lines >= 5);
}

TEST_CASE("06 acknowledge through the running daemon and through the database; alerts and history", "[blackbox]") {
  TempDir tmp;
  const std::string data = tmp.file("data");
  std::int64_t colitis_id = 0, thyroid_id = 0;
  {
    Daemon daemon(data);
    LineSocket sub(daemon.subscriber_port());
    hello(sub);
    send_to(daemon, kExamples);
    REQUIRE(read_events(sub, 5).size() == 5);

    auto listed = run_binary({"--data-dir", data, "alerts", "--active", "--json"});
    REQUIRE(listed.exit_code == 0);
    std::size_t n = 0;
    for (std::size_t start = 0, end; (end = listed.out.find('\n', start)) != std::string::npos; start = end + 1) {
      auto a = json::parse(listed.out.substr(start, end - start));
      ++n;
      CHECK(a["state"] == "firing");
      if (a["signal"] == "colitis") colitis_id = a["id"];
      if (a["signal"] == "thyroid") thyroid_id = a["id"];
    }
    CHECK(n == 3);  // one open alert per (patient, signal)
    REQUIRE(colitis_id > 0);

    auto ack = run_binary({"--data-dir", data, "ack", std::to_string(colitis_id), "--by", "nurse.kim", "--note",
                           "patient called; stool tests ordered"});
    CHECK(ack.exit_code == 0);
    CHECK_THAT(ack.out, Catch::Contains("acknowledged by nurse.kim"));
    auto events = read_events(sub, 1);
    REQUIRE(events.size() == 1);
    CHECK(events[0]["event"] == "acknowledged");
    CHECK(events[0]["acknowledged_by"] == "nurse.kim");
    CHECK(events[0]["note"] == "patient called; stool tests ordered");
    CHECK(events[0]["alert_id"] == colitis_id);

    auto twice = run_binary({"--data-dir", data, "ack", std::to_string(colitis_id), "--by", "nurse.lee"});
    CHECK(twice.exit_code == 1);
    CHECK_THAT(twice.err, Catch::Contains("already acknowledged by nurse.kim"));
    auto unknown = run_binary({"--data-dir", data, "ack", "999", "--by", "nurse.lee"});
    CHECK(unknown.exit_code == 1);

    auto table = run_binary({"--data-dir", data, "alerts"});
    CHECK_THAT(table.out, Catch::Contains("acknowledged*"));
    CHECK_THAT(table.out, Catch::Contains("by nurse.kim"));
  }
  // The daemon is stopped: the acknowledgement goes to the database, and is delivered next start.
  auto offline = run_binary({"--data-dir", data, "ack", std::to_string(thyroid_id), "--by", "nurse.lee"});
  CHECK(offline.exit_code == 0);
  CHECK_THAT(offline.out, Catch::Contains("not running"));
  {
    Daemon daemon(data);
    LineSocket sub(daemon.subscriber_port());
    hello(sub);
    sub.send("{\"since\":6}\n");
    auto events = read_events(sub, 1);
    REQUIRE(events.size() == 1);
    CHECK(events[0]["event"] == "acknowledged");
    CHECK(events[0]["acknowledged_by"] == "nurse.lee");
  }
  auto history = run_binary({"--data-dir", data, "history", "MRN-2002"});
  CHECK(history.exit_code == 0);
  CHECK_THAT(history.out, Catch::Contains("record  observation stools_per_day"));
  CHECK_THAT(history.out, Catch::Contains("alert   #"));
  CHECK_THAT(history.out, Catch::Contains("FIRED alert"));
  CHECK_THAT(history.out, Catch::Contains("ACKNOWLEDGED"));
  // Records come in event-time order: the baseline of 30 January before the dose of 2 February.
  CHECK(history.out.find("2026-01-30") < history.out.find("2026-02-02"));
  auto nobody = run_binary({"--data-dir", data, "history", "MRN-0000"});
  CHECK(nobody.exit_code == 1);
}

TEST_CASE("06 an unacknowledged alert is re-notified; heartbeats keep a quiet socket alive", "[blackbox]") {
  TempDir tmp;
  testing::write_file(tmp.file("config.yaml"),
                      "alerts:\n  renotify:\n    critical: 1s\n    warning: 1s\n    info: 1s\n"
                      "  outputs:\n    subscribers:\n      heartbeat: 200ms\n");
  Daemon daemon(tmp.file("data"), {"--config", tmp.file("config.yaml")});
  LineSocket sub(daemon.subscriber_port());
  CHECK(hello(sub)["heartbeat_s"].is_number());
  // A heartbeat arrives before any event.
  auto line = sub.read_line(std::chrono::seconds(5));
  REQUIRE(line);
  CHECK(json::parse(*line)["type"] == "heartbeat");

  testing::write_file(tmp.file("t.ndjson"), thyroid_records("MRN-9"));
  send_to(daemon, tmp.file("t.ndjson"));
  auto fired = read_events(sub, 1);
  REQUIRE(fired.size() == 1);
  CHECK(fired[0]["event"] == "fired");
  const std::int64_t id = fired[0]["alert_id"];
  auto again = read_events(sub, 1, std::chrono::seconds(5));
  REQUIRE(again.size() == 1);
  CHECK(again[0]["event"] == "renotified");
  CHECK(again[0]["alert_id"] == id);
  CHECK(again[0]["pages"] == true);
  // Acknowledged: quiet from then on (only heartbeats).
  REQUIRE(run_binary({"--data-dir", tmp.file("data"), "--config", tmp.file("config.yaml"), "ack", std::to_string(id),
                      "--by", "nurse.kim"})
              .exit_code == 0);
  // Renotifications already on their way may come before the acknowledgement; none after it.
  bool acked = false;
  for (int i = 0; i < 20 && !acked; ++i) {
    auto e = read_events(sub, 1);
    REQUIRE(e.size() == 1);
    acked = e[0]["event"] == "acknowledged";
  }
  REQUIRE(acked);
  auto after = read_events(sub, 3, std::chrono::milliseconds(1500));
  for (const auto& e : after) CHECK(e["event"] != "renotified");
}
