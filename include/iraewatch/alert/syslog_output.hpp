#pragma once
// The syslog output: one RFC 5424 message per alert notice, sent as a datagram over UDP (RFC 5426)
// or to a local Unix datagram socket such as /dev/log. The message (RFC 5424 §6):
//
//   <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [iraewatch@32473 seq="N" alert="ID"
//   event="EVENT" signal="SIGNAL" grade="G" severity="SEV"] BOM MSG
//
// with PRI = facility * 8 + the notice's severity (critical 2, warning 4, info 6, anything else
// 5), TIMESTAMP its recorded_ms in UTC with milliseconds (2026-11-26T10:00:00.123Z), PROCID the
// process id, MSGID its event, and MSG its text after the UTF-8 BOM. SD-PARAM values have `"`,
// `\` and `]` escaped with a backslash (§6.3.3), and each string value is cut to 512 bytes.
// HOSTNAME (at most 255 bytes), APP-NAME (48) and MSGID (32) are printable US-ASCII: other bytes
// become '_', and an empty one is the NILVALUE "-". 32473 is the enterprise number RFC 5612
// reserves for documentation. A message is at most 8192 bytes: a longer text is cut at a UTF-8
// character boundary, so that the datagram stays valid UTF-8.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "iraewatch/alert/output.hpp"
#include "iraewatch/core/alert.hpp"
#include "iraewatch/core/error.hpp"

namespace iraewatch::alert {

struct SyslogOptions {
  std::string name = "syslog";  // the output's name (its position key in the store)
  std::string host = "127.0.0.1";
  std::uint16_t port = 514;
  std::string unix_path;  // when set, a Unix datagram socket used instead of UDP (e.g. /dev/log)
  int facility = 16;      // 0-23; 16 is local0
  std::string app_name = "iraewatch";
  std::string hostname;  // empty: gethostname()
};

class SyslogOutput final : public Output {
 public:
  // The largest message sent, in bytes. RFC 5426 only asks receivers to take 480 (and
  // recommends 2048), but rsyslog and syslog-ng take 8192 by default.
  static constexpr std::size_t kMaxMessageBytes = 8192;

  // Resolves the destination and connects a datagram socket to it. Errors: config for a facility
  // outside 0-23 or a Unix path too long for a socket address; io when the host cannot be
  // resolved or the socket cannot be created or connected. A Unix path where nobody listens yet is
  // not an error: deliver() connects when it can, and fails until then.
  static core::Result<std::unique_ptr<SyslogOutput>> open(SyslogOptions options);

  ~SyslogOutput() override;
  SyslogOutput(const SyslogOutput&) = delete;
  SyslogOutput& operator=(const SyslogOutput&) = delete;

  const std::string& name() const override { return options_.name; }

  // Sends one datagram per notice, in order. Success means each was handed to the kernel: over
  // UDP nothing confirms that a receiver got it. A send that fails (or blocks for more than a
  // second) is an io error. A Unix socket whose receiver went away (syslog restarted) is
  // reconnected once before the send counts as failed.
  core::Result<void> deliver(std::span<const core::AlertNotice> notices) override;

 private:
  explicit SyslogOutput(SyslogOptions options);

  core::Result<void> connect_socket();
  core::Result<void> send_message(const std::string& message);

  SyslogOptions options_;    // hostname and app_name already made RFC 5424-safe
  std::string destination_;  // for error messages: "udp 127.0.0.1:514" or "unix /dev/log"
  int fd_ = -1;              // -1 after a failed reconnect: the next deliver() connects again
};

}  // namespace iraewatch::alert
