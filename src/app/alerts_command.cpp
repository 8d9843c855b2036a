// `iraewatch alerts`, `iraewatch ack` and `iraewatch history`: looking at alerts and
// acknowledging them. Reads go straight to the database (WAL readers never block the daemon);
// an acknowledgement goes through the daemon's control socket when it runs, so that its
// in-memory alert state stays the truth, and through the database when it does not.

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>

#include "iraewatch/alert/lifecycle.hpp"
#include "iraewatch/app/alert_outputs.hpp"
#include "iraewatch/app/alerting.hpp"
#include "iraewatch/app/commands.hpp"
#include "iraewatch/core/event_time.hpp"
#include "iraewatch/net/control_server.hpp"
#include "iraewatch/store/store.hpp"

namespace iraewatch::app {
namespace {

core::Result<std::unique_ptr<store::Store>> open_existing(const Config& config) {
  return store::Store::open(config.data_dir, {config.synchronous_full, 5000, false});
}

std::vector<std::string> split_rules(const std::string& rules) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < rules.size()) {
    auto end = rules.find(',', start);
    if (end == std::string::npos) end = rules.size();
    if (end > start) out.push_back(rules.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string time_or_empty(std::int64_t ms) {
  return ms == 0 ? "" : core::format_utc(ms);
}

nlohmann::ordered_json alert_json(const core::Alert& a) {
  return {{"id", a.id},
          {"patient", a.patient},
          {"signal", a.signal},
          {"state", core::to_string(a.state)},
          {"grade", a.grade},
          {"severity", a.severity},
          {"rule", a.rule},
          {"rules", split_rules(a.rules)},
          {"summary", a.summary},
          {"opened_at", time_or_empty(a.opened_ms)},
          {"changed_at", time_or_empty(a.changed_ms)},
          {"notified_at", time_or_empty(a.notified_ms)},
          {"acknowledged_by", a.acknowledged_by},
          {"acknowledged_note", a.acknowledged_note},
          {"acknowledged_at", time_or_empty(a.acknowledged_ms)}};
}

std::string dump(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

int ack_offline(const Config& config, const AckOptions& options) {
  auto store = open_existing(config);
  if (!store) {
    std::fprintf(stderr, "iraewatch: cannot open the store: %s\n", store.error().message.c_str());
    return 2;
  }
  alert::Lifecycle lifecycle(lifecycle_policy(config));
  if (auto r = load_lifecycle(**store, lifecycle); !r) {
    std::fprintf(stderr, "iraewatch: %s\n", r.error().message.c_str());
    return 2;
  }
  const std::int64_t now = core::wall_clock_ms();
  auto t = lifecycle.acknowledge(options.alert_id, options.by, options.note, now, now);
  if (!t) {
    auto known = (*store)->alert(options.alert_id);
    if (t.error().code == core::ErrorCode::not_found && known && *known) {
      std::fprintf(stderr, "iraewatch: alert %lld is %s; only an open alert can be acknowledged\n",
                   static_cast<long long>(options.alert_id), std::string(core::to_string((*known)->state)).c_str());
    } else if (t.error().code == core::ErrorCode::not_found) {
      std::fprintf(stderr, "iraewatch: there is no alert %lld\n", static_cast<long long>(options.alert_id));
    } else {
      std::fprintf(stderr, "iraewatch: %s\n", t.error().message.c_str());
    }
    return 1;
  }
  auto r = (*store)->begin();
  if (r) r = persist(**store, *t);
  if (r) r = (*store)->commit();
  if (!r) {
    (*store)->rollback();
    std::fprintf(stderr, "iraewatch: not stored: %s\n", r.error().message.c_str());
    return 2;
  }
  std::printf(
      "alert %lld acknowledged by %s (event seq %lld); the daemon is not running: outputs deliver it when "
      "it next starts\n",
      static_cast<long long>(options.alert_id), options.by.c_str(), static_cast<long long>(t->notice.seq));
  return 0;
}

}  // namespace

int run_alerts(const Config& config, const AlertsOptions& options) {
  auto store = open_existing(config);
  if (!store) {
    std::fprintf(stderr, "iraewatch: cannot open the store: %s\n", store.error().message.c_str());
    return 2;
  }
  auto alerts = (*store)->alerts({options.active, options.patient, options.limit});
  if (!alerts) {
    std::fprintf(stderr, "iraewatch: %s\n", alerts.error().message.c_str());
    return 2;
  }
  if (options.json) {
    for (const auto& a : *alerts) std::printf("%s\n", dump(alert_json(a)).c_str());
    return 0;
  }
  if (alerts->empty()) {
    std::printf("no %salerts%s\n", options.active ? "open " : "", options.patient.empty() ? "" : " for this patient");
    return 0;
  }
  std::printf("%-6s %-13s %-12s %-5s %-9s %-16s %-20s %s\n", "ID", "STATE", "SIGNAL", "GRADE", "SEVERITY", "PATIENT",
              "CHANGED (UTC)", "SUMMARY");
  for (const auto& a : *alerts) {
    std::string state(core::to_string(a.state));
    if (a.state == core::AlertState::acknowledged) state += "*";
    std::printf("%-6lld %-13s %-12s %-5d %-9s %-16s %-20s %s\n", static_cast<long long>(a.id), state.c_str(),
                a.signal.c_str(), a.grade, a.severity.c_str(), a.patient.c_str(),
                core::format_utc(a.changed_ms).substr(0, 19).c_str(), a.summary.c_str());
    if (a.state == core::AlertState::acknowledged)
      std::printf("%-6s * by %s at %s%s%s\n", "", a.acknowledged_by.c_str(),
                  core::format_utc(a.acknowledged_ms).c_str(), a.acknowledged_note.empty() ? "" : ": ",
                  a.acknowledged_note.c_str());
  }
  return 0;
}

int run_ack(const Config& config, const AckOptions& options) {
  if (options.by.empty()) {
    std::fprintf(stderr, "iraewatch: --by must name who acknowledges\n");
    return 2;
  }
  const std::string control = control_socket_path(config);
  if (!control.empty()) {
    const std::string request = dump(nlohmann::ordered_json{
        {"command", "ack"}, {"alert", options.alert_id}, {"by", options.by}, {"note", options.note}});
    auto reply = net::control_request(control, request);
    if (reply) {
      auto j = nlohmann::json::parse(*reply, nullptr, false);
      if (!j.is_object()) {
        std::fprintf(stderr, "iraewatch: the daemon sent an unreadable reply\n");
        return 2;
      }
      if (j.value("ok", false)) {
        std::printf("alert %lld acknowledged by %s (event seq %lld)\n", static_cast<long long>(options.alert_id),
                    options.by.c_str(), static_cast<long long>(j.value("seq", 0LL)));
        return 0;
      }
      const std::string code = j.value("code", "");
      std::fprintf(stderr, "iraewatch: %s\n", j.value("error", std::string("refused")).c_str());
      return code == "not_found" || code == "conflict" || code == "invalid_input" ? 1 : 2;
    }
    if (reply.error().code != core::ErrorCode::not_found) {
      // A daemon may be running and busy: writing behind its back would fork the alert state.
      std::fprintf(stderr, "iraewatch: %s; not acknowledged (try again)\n", reply.error().message.c_str());
      return 2;
    }
    // Nobody listens on the control socket: no daemon runs on this data folder.
  }
  return ack_offline(config, options);
}

int run_history(const Config& config, const HistoryOptions& options) {
  auto store = open_existing(config);
  if (!store) {
    std::fprintf(stderr, "iraewatch: cannot open the store: %s\n", store.error().message.c_str());
    return 2;
  }
  auto records = (*store)->records_of_patient(options.patient);
  if (!records) {
    std::fprintf(stderr, "iraewatch: %s\n", records.error().message.c_str());
    return 2;
  }
  auto events = (*store)->alert_events_of_patient(options.patient);
  if (!events) {
    std::fprintf(stderr, "iraewatch: %s\n", events.error().message.c_str());
    return 2;
  }
  if (records->empty() && events->empty()) {
    std::fprintf(stderr, "iraewatch: no records or alerts for this patient\n");
    return 1;
  }
  // One timeline: records at their event time; alert events at the time of the data they rest
  // on (acknowledgements and re-notifications at the time they happened). Ties: records first.
  struct Entry {
    std::int64_t time_ms;
    int order;  // 0 record, 1 alert event
    std::size_t index;
  };
  std::vector<Entry> timeline;
  for (std::size_t i = 0; i < records->size(); ++i) timeline.push_back({(*records)[i].time_ms, 0, i});
  for (std::size_t i = 0; i < events->size(); ++i) {
    const auto& e = (*events)[i];
    std::int64_t ms = e.clock_ms;
    if (auto t = core::parse_rfc3339(e.data_time); !e.data_time.empty() && t) ms = t->utc_ms;
    timeline.push_back({ms, 1, i});
  }
  std::stable_sort(timeline.begin(), timeline.end(), [](const Entry& a, const Entry& b) {
    return a.time_ms != b.time_ms ? a.time_ms < b.time_ms : a.order < b.order;
  });
  for (const auto& entry : timeline) {
    if (entry.order == 0) {
      const auto& r = (*records)[entry.index];
      const std::string time = core::format_rfc3339(core::EventTime{r.time_ms, r.offset_min});
      if (options.json) {
        std::printf("%s\n", dump(nlohmann::ordered_json{{"type", "record"},
                                                        {"time", time},
                                                        {"kind", r.kind},
                                                        {"feed", r.feed},
                                                        {"id", r.record_id},
                                                        {"version", r.version},
                                                        {"current", r.is_current},
                                                        {"what", r.what},
                                                        {"value", r.value},
                                                        {"status", r.status}})
                                .c_str());
      } else {
        std::printf("%-25s record  %-11s %-16s %-14s %-16s %s|%s v%d%s\n", time.c_str(), r.kind.c_str(), r.what.c_str(),
                    r.value.c_str(), r.status.c_str(), r.feed.c_str(), r.record_id.c_str(), r.version,
                    r.is_current ? "" : " (superseded)");
      }
    } else {
      const auto& e = (*events)[entry.index];
      if (options.json) {
        std::printf("{\"type\":\"alert_event\",\"alert_event\":%s}\n", e.line.c_str());
      } else {
        const std::string time = e.data_time.empty() ? core::format_utc(e.clock_ms) : e.data_time;
        std::printf("%-25s alert   %s\n", time.c_str(), e.text.c_str());
      }
    }
  }
  return 0;
}

}  // namespace iraewatch::app
