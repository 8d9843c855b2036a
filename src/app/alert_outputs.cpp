#include "iraewatch/app/alert_outputs.hpp"

#include <cstdio>

#include "iraewatch/alert/console_output.hpp"
#include "iraewatch/alert/file_output.hpp"
#include "iraewatch/alert/syslog_output.hpp"

namespace iraewatch::app {

alert::LifecyclePolicy lifecycle_policy(const Config& config) {
  alert::LifecyclePolicy p;
  p.renotify_critical_ms = config.alerts.renotify_critical.count();
  p.renotify_warning_ms = config.alerts.renotify_warning.count();
  p.renotify_info_ms = config.alerts.renotify_info.count();
  return p;
}

core::Result<std::vector<std::unique_ptr<alert::Output>>> make_outputs(const Config& config, bool with_console) {
  const auto& o = config.alerts.outputs;
  std::vector<std::unique_ptr<alert::Output>> out;
  if (o.file) {
    auto f = alert::FileOutput::open("file", alert_log_path(config), o.file_max_bytes, o.file_max_files);
    if (!f) return std::unexpected(f.error());
    out.push_back(std::move(*f));
  }
  if (o.console && with_console) out.push_back(std::make_unique<alert::ConsoleOutput>("console", stdout));
  if (o.syslog) {
    alert::SyslogOptions so;
    so.host = o.syslog_host;
    so.port = o.syslog_port;
    so.unix_path = o.syslog_unix_path;
    so.facility = o.syslog_facility;
    auto s = alert::SyslogOutput::open(so);
    if (!s) return std::unexpected(s.error());
    out.push_back(std::move(*s));
  }
  return out;
}

ingest::Hl7Options hl7_options(const Config& config) {
  ingest::Hl7Options o;
  o.feed = config.mllp.feed;
  o.zone = config.hl7.zone;
  o.identifier_types = config.hl7.identifier_types;
  o.assigning_authority = config.hl7.assigning_authority;
  o.processing_ids = config.hl7.processing_ids;
  return o;
}

std::string control_socket_path(const Config& config) {
  return data_path(config, config.alerts.control_socket);
}

}  // namespace iraewatch::app
