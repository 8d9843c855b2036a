#include "iraewatch/alert/syslog_output.hpp"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <utility>

namespace iraewatch::alert {

using core::ErrorCode;
using core::fail;

namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";  // RFC 5424 §6.4: MSG is UTF-8 when it starts so
constexpr std::string_view kStructuredDataId = "iraewatch@32473";
constexpr std::size_t kMaxHostname = 255;  // RFC 5424 §6.2.4
constexpr std::size_t kMaxAppName = 48;    // §6.2.5
constexpr std::size_t kMaxMsgId = 32;      // §6.2.7
// Cutting each string SD-PARAM value keeps the header under half of kMaxMessageBytes, whatever a
// rule names its signal: the text always has room, and the structured data is never cut.
constexpr std::size_t kMaxParamValue = 512;
// A full receive queue (a stuck syslog daemon) must not stall delivery to every other output.
constexpr timeval kSendTimeout{1, 0};

std::string system_reason() {
  return std::strerror(errno);
}

// The longest prefix of at most `max` bytes that does not end inside a UTF-8 sequence: when the
// byte at the cut is a continuation byte, the cut moves back to the start of its character.
std::string_view utf8_prefix(std::string_view text, std::size_t max) {
  if (text.size() <= max) return text;
  std::size_t end = max;
  for (int i = 0; i < 3 && end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80; ++i) --end;
  return text.substr(0, end);
}

// HOSTNAME, APP-NAME and MSGID are 1*N PRINTUSASCII (33-126); an unknown value is "-".
std::string header_field(std::string_view text, std::size_t max) {
  std::string field(text.substr(0, max));
  for (char& c : field)
    if (const auto byte = static_cast<unsigned char>(c); byte < 33 || byte > 126) c = '_';
  return field.empty() ? "-" : field;
}

std::string local_hostname() {
  char name[kMaxHostname + 1] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "";
  return name;
}

int syslog_severity(std::string_view severity) {
  if (severity == "critical") return 2;
  if (severity == "warning") return 4;
  if (severity == "info") return 6;
  return 5;  // notice
}

// RFC 3339 in UTC, always with milliseconds (RFC 5424 §6.2.3 allows up to 6 digits).
std::string timestamp(std::int64_t utc_ms) {
  using namespace std::chrono;
  const sys_time<milliseconds> time{milliseconds{utc_ms}};
  const auto day = floor<days>(time);
  const year_month_day date{day};
  const hh_mm_ss clock{time - day};
  char text[40];
  std::snprintf(text, sizeof text, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                static_cast<int>(clock.hours().count()), static_cast<int>(clock.minutes().count()),
                static_cast<int>(clock.seconds().count()), static_cast<int>(clock.subseconds().count()));
  return text;
}

// An SD-PARAM: name="value", with '"', '\' and ']' escaped (§6.3.3).
void append_param(std::string& out, std::string_view name, std::string_view value) {
  out += ' ';
  out += name;
  out += "=\"";
  for (char c : utf8_prefix(value, kMaxParamValue)) {
    if (c == '"' || c == '\\' || c == ']') out += '\\';
    out += c;
  }
  out += '"';
}

// `options` has its hostname and app_name already made header-safe.
std::string format_message(const core::AlertNotice& notice, const SyslogOptions& options, pid_t pid) {
  std::string m;
  m.reserve(512 + notice.text.size());
  m += '<';
  m += std::to_string(options.facility * 8 + syslog_severity(notice.severity));
  m += ">1 ";
  m += timestamp(notice.recorded_ms);
  m += ' ';
  m += options.hostname;
  m += ' ';
  m += options.app_name;
  m += ' ';
  m += std::to_string(pid);
  m += ' ';
  m += header_field(notice.event, kMaxMsgId);
  m += " [";
  m += kStructuredDataId;
  append_param(m, "seq", std::to_string(notice.seq));
  append_param(m, "alert", std::to_string(notice.alert_id));
  append_param(m, "event", notice.event);
  append_param(m, "signal", notice.signal);
  append_param(m, "grade", std::to_string(notice.grade));
  append_param(m, "severity", notice.severity);
  m += "] ";
  m += kBom;
  assert(m.size() < SyslogOutput::kMaxMessageBytes / 2);
  m += utf8_prefix(notice.text, SyslogOutput::kMaxMessageBytes - m.size());
  return m;
}

}  // namespace

core::Result<std::unique_ptr<SyslogOutput>> SyslogOutput::open(SyslogOptions options) {
  if (options.facility < 0 || options.facility > 23)
    return fail(ErrorCode::config, "syslog facility " + std::to_string(options.facility) + " is not in 0-23");
  if (!options.unix_path.empty() && options.unix_path.size() >= sizeof(sockaddr_un{}.sun_path))
    return fail(ErrorCode::config, "syslog socket path '" + options.unix_path + "' is too long");
  options.hostname = header_field(options.hostname.empty() ? local_hostname() : options.hostname, kMaxHostname);
  options.app_name = header_field(options.app_name, kMaxAppName);
  std::unique_ptr<SyslogOutput> output(new SyslogOutput(std::move(options)));
  // A Unix socket may appear later (syslog starting after us): deliver() connects then, and until
  // it does the notices wait in the outbox. A UDP destination that cannot even be resolved is a
  // configuration mistake.
  if (auto connected = output->connect_socket(); !connected && output->options_.unix_path.empty())
    return std::unexpected(std::move(connected.error()));
  return output;
}

SyslogOutput::SyslogOutput(SyslogOptions options)
    : options_(std::move(options)),
      destination_(options_.unix_path.empty() ? "udp " + options_.host + ":" + std::to_string(options_.port)
                                              : "unix " + options_.unix_path) {}

SyslogOutput::~SyslogOutput() {
  if (fd_ >= 0) ::close(fd_);
}

// A connected datagram socket: the kernel then reports a missing receiver (ECONNREFUSED) on send.
core::Result<void> SyslogOutput::connect_socket() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  sockaddr_storage address{};
  socklen_t address_size = 0;
  if (!options_.unix_path.empty()) {
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, options_.unix_path.c_str(), options_.unix_path.size() + 1);
    std::memcpy(&address, &un, sizeof un);
    address_size = sizeof un;
  } else {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* found = nullptr;
    if (const int rc = ::getaddrinfo(options_.host.c_str(), std::to_string(options_.port).c_str(), &hints, &found);
        rc != 0)
      return fail(ErrorCode::io, "cannot resolve syslog host '" + options_.host + "': " + ::gai_strerror(rc));
    std::memcpy(&address, found->ai_addr, found->ai_addrlen);
    address_size = found->ai_addrlen;
    ::freeaddrinfo(found);
  }
  const int fd = ::socket(address.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(ErrorCode::io, "cannot create a socket for syslog " + destination_ + ": " + system_reason());
  if (::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &kSendTimeout, sizeof kSendTimeout) != 0 ||
      ::connect(fd, reinterpret_cast<const sockaddr*>(&address), address_size) != 0) {
    const std::string reason = system_reason();
    ::close(fd);
    return fail(ErrorCode::io, "cannot connect to syslog " + destination_ + ": " + reason);
  }
  fd_ = fd;
  return {};
}

core::Result<void> SyslogOutput::send_message(const std::string& message) {
  bool reconnected = false;
  while (true) {
    const ssize_t n = ::send(fd_, message.data(), message.size(), MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(message.size())) return {};
    if (n >= 0) return fail(ErrorCode::io, "short send to syslog " + destination_);
    if (errno == EINTR) continue;
    // A restarted syslog daemon binds a new socket at the same path: the old peer is gone.
    const bool peer_gone = errno == ECONNREFUSED || errno == ENOTCONN || errno == ENOENT;
    if (options_.unix_path.empty() || !peer_gone || reconnected)
      return fail(ErrorCode::io, "cannot send to syslog " + destination_ + ": " + system_reason());
    if (auto connected = connect_socket(); !connected) return connected;
    reconnected = true;
  }
}

core::Result<void> SyslogOutput::deliver(std::span<const core::AlertNotice> notices) {
  if (fd_ < 0) {
    if (auto connected = connect_socket(); !connected) return connected;
  }
  const pid_t pid = ::getpid();
  for (const auto& notice : notices) {
    if (auto sent = send_message(format_message(notice, options_, pid)); !sent) return sent;
  }
  return {};
}

}  // namespace iraewatch::alert
