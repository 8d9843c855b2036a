#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "iraewatch/alert/syslog_output.hpp"
#include "support/daemon.hpp"

using namespace iraewatch;

namespace {

constexpr std::int64_t kRecordedMs = 1795687200123;  // 2026-11-26T10:00:00.123Z
const std::string kBom = "\xEF\xBB\xBF";

// A datagram socket the test receives on: UDP on 127.0.0.1 with a free port, or a Unix path.
class Receiver {
 public:
  Receiver() : fd_(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    if (fd_ < 0) throw std::runtime_error("socket failed");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), size) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size) != 0)
      throw std::runtime_error("bind failed");
    port_ = ntohs(address.sin_port);
  }
  explicit Receiver(const std::string& path) : fd_(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    if (fd_ < 0) throw std::runtime_error("socket failed");
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
      throw std::runtime_error("bind failed");
  }
  ~Receiver() { ::close(fd_); }
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  std::uint16_t port() const { return port_; }

  // The next datagram, or nullopt when none comes within the timeout.
  std::optional<std::string> receive(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    std::string buffer(65536, '\0');
    const ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), 0);
    if (n < 0) return std::nullopt;
    buffer.resize(static_cast<std::size_t>(n));
    return buffer;
  }

 private:
  int fd_;
  std::uint16_t port_ = 0;
};

core::AlertNotice notice(std::int64_t seq, std::string severity, std::string signal = "colitis",
                         std::string text = "Possible immune-related colitis, suspected CTCAE grade 2 (MRN-2002)") {
  core::AlertNotice n;
  n.seq = seq;
  n.alert_id = 7;
  n.patient = "MRN-2002";
  n.signal = std::move(signal);
  n.event = "fired";
  n.grade = 2;
  n.severity = std::move(severity);
  n.pages = true;
  n.recorded_ms = kRecordedMs;
  n.line = R"({"event":"fired"})";
  n.text = std::move(text);
  return n;
}

std::string pid() {
  return std::to_string(::getpid());
}

// What the output should send for `n` from host "ward-7" with the default app name.
std::string expected(const core::AlertNotice& n, int pri, const std::string& signal_escaped) {
  return "<" + std::to_string(pri) + ">1 2026-11-26T10:00:00.123Z ward-7 iraewatch " + pid() + " " + n.event +
         " [iraewatch@32473 seq=\"" + std::to_string(n.seq) + "\" alert=\"" + std::to_string(n.alert_id) +
         "\" event=\"" + n.event + "\" signal=\"" + signal_escaped + "\" grade=\"" + std::to_string(n.grade) +
         "\" severity=\"" + n.severity + "\"] " + kBom + n.text;
}

std::vector<std::string> fields(const std::string& message) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (int i = 0; i < 6; ++i) {
    const std::size_t space = message.find(' ', start);
    out.push_back(message.substr(start, space - start));
    start = space + 1;
  }
  out.push_back(message.substr(start));
  return out;
}

bool valid_utf8(const std::string& text) {
  for (std::size_t i = 0; i < text.size();) {
    const auto lead = static_cast<unsigned char>(text[i]);
    const std::size_t length = lead < 0x80           ? 1
                               : (lead >> 5) == 0x6  ? 2
                               : (lead >> 4) == 0xE  ? 3
                               : (lead >> 3) == 0x1E ? 4
                                                     : 0;
    if (length == 0 || i + length > text.size()) return false;
    for (std::size_t k = 1; k < length; ++k)
      if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return false;
    i += length;
  }
  return true;
}

alert::SyslogOptions udp_options(const Receiver& receiver) {
  alert::SyslogOptions options;
  options.port = receiver.port();
  options.hostname = "ward-7";
  return options;
}

}  // namespace

TEST_CASE("the syslog output sends one RFC 5424 datagram per notice over UDP", "[alert]") {
  Receiver receiver;
  auto output = alert::SyslogOutput::open(udp_options(receiver));
  REQUIRE(output);
  CHECK((*output)->name() == "syslog");

  std::vector<core::AlertNotice> batch{notice(41, "critical"), notice(42, "warning"), notice(43, "info"),
                                       notice(44, "unknown")};
  batch[0].text = "Possible immune-related colitis — grade 3 (MRN-2002)";
  batch[0].grade = 3;
  batch[2].event = "resolved";
  REQUIRE((*output)->deliver(batch));

  // local0 (16) * 8 + critical 2, warning 4, info 6, anything else notice 5.
  const int pri[] = {130, 132, 134, 133};
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto message = receiver.receive();
    REQUIRE(message);
    CHECK(*message == expected(batch[i], pri[i], "colitis"));
  }
  CHECK_FALSE(receiver.receive(std::chrono::milliseconds(50)));

  SECTION("the fields, one by one") {
    REQUIRE((*output)->deliver(std::vector{notice(45, "warning")}));
    const auto message = receiver.receive();
    REQUIRE(message);
    const auto f = fields(*message);
    CHECK(f[0] == "<132>1");
    CHECK(f[1] == "2026-11-26T10:00:00.123Z");
    CHECK(f[2] == "ward-7");
    CHECK(f[3] == "iraewatch");
    CHECK(f[4] == pid());
    CHECK(f[5] == "fired");
    CHECK(f[6].starts_with("[iraewatch@32473 seq=\"45\" alert=\"7\" "));
    const std::size_t body = f[6].find("\"] ");
    REQUIRE(body != std::string::npos);
    CHECK(f[6].substr(body + 3) == kBom + "Possible immune-related colitis, suspected CTCAE grade 2 (MRN-2002)");
  }
}

TEST_CASE("syslog SD-PARAM values escape '\"', '\\' and ']'", "[alert]") {
  Receiver receiver;
  auto output = alert::SyslogOutput::open(udp_options(receiver));
  REQUIRE(output);
  const auto n = notice(1, "warning", R"(col"it]is\x)");
  REQUIRE((*output)->deliver(std::vector{n}));
  const auto message = receiver.receive();
  REQUIRE(message);
  CHECK(*message == expected(n, 132, R"(col\"it\]is\\x)"));
}

TEST_CASE("syslog header fields are printable US-ASCII within the RFC 5424 maxima", "[alert]") {
  Receiver receiver;
  auto options = udp_options(receiver);

  SECTION("other bytes become '_' and long values are cut") {
    options.hostname = "ward 7\tnorth\xC3\xA9" + std::string(300, 'h');
    options.app_name = std::string(60, 'a');
    options.facility = 23;
    auto output = alert::SyslogOutput::open(options);
    REQUIRE(output);
    auto n = notice(1, "critical");
    n.event = "re notified";
    REQUIRE((*output)->deliver(std::vector{n}));
    const auto message = receiver.receive();
    REQUIRE(message);
    const auto f = fields(*message);
    CHECK(f[0] == "<186>1");  // 23 * 8 + 2
    CHECK(f[2] == ("ward_7_north__" + std::string(300, 'h')).substr(0, 255));
    CHECK(f[3] == std::string(48, 'a'));
    CHECK(f[5] == "re_notified");
    CHECK(f[6].starts_with(R"([iraewatch@32473 seq="1" alert="7" event="re notified" )"));
  }

  SECTION("an empty hostname is the machine's, an empty MSGID the NILVALUE") {
    options.hostname = "";
    auto output = alert::SyslogOutput::open(options);
    REQUIRE(output);
    auto n = notice(1, "info");
    n.event = "";
    REQUIRE((*output)->deliver(std::vector{n}));
    const auto message = receiver.receive();
    REQUIRE(message);
    const auto f = fields(*message);
    CHECK_FALSE(f[2].empty());
    CHECK(f[2].size() <= 255);
    CHECK(f[5] == "-");
  }
}

TEST_CASE("a long syslog message is cut to 8 KiB at a UTF-8 character boundary", "[alert]") {
  Receiver receiver;
  auto output = alert::SyslogOutput::open(udp_options(receiver));
  REQUIRE(output);
  // Three-byte characters after 0, 1 and 2 ASCII bytes: every position of the cut is met.
  for (const std::string prefix : {"", "x", "xy"}) {
    std::string text = prefix;
    for (int i = 0; i < 4000; ++i) text += "\xE2\x82\xAC";  // €
    const auto n = notice(1, "info", "colitis", text);
    REQUIRE((*output)->deliver(std::vector{n}));
    const auto message = receiver.receive();
    REQUIRE(message);
    CHECK(message->size() <= alert::SyslogOutput::kMaxMessageBytes);
    CHECK(message->size() > alert::SyslogOutput::kMaxMessageBytes - 3);
    CHECK(valid_utf8(*message));
    CHECK(expected(n, 134, "colitis").starts_with(*message));
  }
}

TEST_CASE("the syslog output sends to a Unix datagram socket", "[alert]") {
  testing::TempDir tmp;
  const std::string path = tmp.file("log");
  auto receiver = std::make_unique<Receiver>(path);
  alert::SyslogOptions options;
  options.name = "journal";
  options.unix_path = path;
  options.hostname = "ward-7";
  auto output = alert::SyslogOutput::open(options);
  REQUIRE(output);
  CHECK((*output)->name() == "journal");

  std::vector<core::AlertNotice> batch{notice(1, "critical"), notice(2, "warning", R"(a"b]c)")};
  REQUIRE((*output)->deliver(batch));
  auto message = receiver->receive();
  REQUIRE(message);
  CHECK(*message == expected(batch[0], 130, "colitis"));
  message = receiver->receive();
  REQUIRE(message);
  CHECK(*message == expected(batch[1], 132, R"(a\"b\]c)"));

  SECTION("a receiver bound again at the path (syslog restarted) is reconnected") {
    receiver.reset();
    ::unlink(path.c_str());
    receiver = std::make_unique<Receiver>(path);
    REQUIRE((*output)->deliver(std::vector{notice(3, "info")}));
    message = receiver->receive();
    REQUIRE(message);
    CHECK(*message == expected(notice(3, "info"), 134, "colitis"));
  }

  SECTION("a receiver that is gone is an io error") {
    receiver.reset();
    ::unlink(path.c_str());
    auto sent = (*output)->deliver(std::vector{notice(3, "info")});
    REQUIRE_FALSE(sent);
    CHECK(sent.error().code == core::ErrorCode::io);
    CHECK(sent.error().message.find(path) != std::string::npos);
  }
}

TEST_CASE("syslog output errors", "[alert]") {
  testing::TempDir tmp;

  SECTION("no socket at the Unix path yet: it opens, delivery fails with io until one appears") {
    alert::SyslogOptions options;
    options.unix_path = tmp.file("missing");
    auto output = alert::SyslogOutput::open(options);
    REQUIRE(output);
    std::vector<core::AlertNotice> one(1);
    one[0].event = "fired";
    one[0].text = "x";
    auto sent = (*output)->deliver(one);
    REQUIRE_FALSE(sent);
    CHECK(sent.error().code == core::ErrorCode::io);
    CHECK(sent.error().message.find(options.unix_path) != std::string::npos);
  }

  SECTION("a facility outside 0-23: config") {
    alert::SyslogOptions options;
    options.facility = 24;
    auto output = alert::SyslogOutput::open(options);
    REQUIRE_FALSE(output);
    CHECK(output.error().code == core::ErrorCode::config);
  }

  SECTION("nobody listening on the UDP port: io, once the kernel knows") {
    std::uint16_t port = 0;
    {
      Receiver gone;
      port = gone.port();
    }
    alert::SyslogOptions options;
    options.port = port;
    auto output = alert::SyslogOutput::open(options);
    REQUIRE(output);
    // The refusal (ICMP port unreachable) is reported on the send after the one it answers.
    core::Result<void> sent;
    for (int attempt = 0; attempt < 20 && sent; ++attempt) {
      sent = (*output)->deliver(std::vector{notice(1, "info")});
      if (sent) ::usleep(10'000);
    }
    REQUIRE_FALSE(sent);
    CHECK(sent.error().code == core::ErrorCode::io);
    CHECK(sent.error().message.find("udp 127.0.0.1:" + std::to_string(port)) != std::string::npos);
  }
}
