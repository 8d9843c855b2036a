// The alert tables of the store (docs/database.md, schema version 2): alerts, alert_events (the
// outbox and audit trail) and output_positions.

#include <cstdio>

#include "iraewatch/core/event_time.hpp"
#include "iraewatch/store/store.hpp"
#include "statement.hpp"
#include "statements.hpp"

namespace iraewatch::store {
namespace {

constexpr const char* kAlertColumns =
    "id, patient_key, signal, state, grade, severity, rule, rules, summary, fields, opened_ms, changed_ms, "
    "notified_ms, acknowledged_by, acknowledged_note, acknowledged_ms";

core::Alert read_alert(const Statement& s) {
  core::Alert a;
  a.id = s.int64(0);
  a.patient = s.text(1);
  a.signal = s.text(2);
  a.state = core::parse_alert_state(s.text(3)).value_or(core::AlertState::firing);
  a.grade = static_cast<int>(s.int64(4));
  a.severity = s.text(5);
  a.rule = s.text(6);
  a.rules = s.text(7);
  a.summary = s.text(8);
  a.fields = s.text(9);
  a.opened_ms = s.int64(10);
  a.changed_ms = s.int64(11);
  a.notified_ms = s.int64(12);
  a.acknowledged_by = s.text(13);
  a.acknowledged_note = s.text(14);
  a.acknowledged_ms = s.is_null(15) ? 0 : s.int64(15);
  return a;
}

core::AlertNotice read_notice(const Statement& s) {
  core::AlertNotice n;
  n.seq = s.int64(0);
  n.alert_id = s.int64(1);
  n.patient = s.text(2);
  n.signal = s.text(3);
  n.event = s.text(4);
  n.state = core::parse_alert_state(s.text(5)).value_or(core::AlertState::firing);
  n.grade = static_cast<int>(s.int64(6));
  n.severity = s.text(7);
  n.pages = s.int64(8) != 0;
  n.cause = s.text(9);
  n.actor = s.text(10);
  n.note = s.text(11);
  n.clock_ms = s.int64(12);
  n.recorded_ms = s.int64(13);
  n.data_time = s.text(14);
  n.line = s.text(15);
  n.text = s.text(16);
  return n;
}

template <typename T, typename Read>
core::Result<std::vector<T>> collect(Statement& s, Read read) {
  std::vector<T> out;
  for (;;) {
    auto row = s.step();
    if (!row) {
      s.reset();
      return std::unexpected(row.error());
    }
    if (!*row) break;
    out.push_back(read(s));
  }
  s.reset();
  return out;
}

core::Result<std::int64_t> single_int(Statement& s) {
  auto row = s.step();
  if (!row) {
    s.reset();
    return std::unexpected(row.error());
  }
  const std::int64_t v = *row && !s.is_null(0) ? s.int64(0) : 0;
  s.reset();
  return v;
}

}  // namespace

core::Result<void> Store::save_alert(const core::Alert& a) {
  auto& s = stmts_->save_alert;
  s.bind(1, a.id).bind(2, a.patient).bind(3, a.signal).bind(4, core::to_string(a.state));
  s.bind(5, std::int64_t{a.grade}).bind(6, a.severity).bind(7, a.rule).bind(8, a.rules).bind(9, a.summary);
  s.bind(10, a.fields).bind(11, a.opened_ms).bind(12, a.changed_ms).bind(13, a.notified_ms);
  s.bind_text_or_null(14, a.acknowledged_by).bind_text_or_null(15, a.acknowledged_note);
  if (a.acknowledged_ms != 0)
    s.bind(16, a.acknowledged_ms);
  else
    s.bind_null(16);
  return s.run();
}

core::Result<void> Store::append_alert_event(const core::AlertNotice& n) {
  auto& s = stmts_->insert_alert_event;
  s.bind(1, n.seq).bind(2, n.alert_id).bind(3, n.patient).bind(4, n.signal).bind(5, n.event);
  s.bind(6, core::to_string(n.state)).bind(7, std::int64_t{n.grade}).bind(8, n.severity);
  s.bind(9, std::int64_t{n.pages}).bind(10, n.cause).bind_text_or_null(11, n.actor).bind_text_or_null(12, n.note);
  s.bind(13, n.clock_ms).bind(14, n.recorded_ms).bind(15, n.data_time).bind(16, n.line).bind(17, n.text);
  return s.run();
}

core::Result<void> Store::set_output_position(const std::string& name, std::int64_t seq, std::int64_t now_ms) {
  Statement s(db_,
              "INSERT INTO output_positions (name, seq, updated_ms) VALUES (?1, ?2, ?3) "
              "ON CONFLICT (name) DO UPDATE SET seq = max(seq, excluded.seq), updated_ms = excluded.updated_ms");
  return s.bind(1, name).bind(2, seq).bind(3, now_ms).run();
}

core::Result<std::int64_t> Store::output_position(const std::string& name) {
  Statement s(db_, "SELECT seq FROM output_positions WHERE name = ?1");
  s.bind(1, name);
  return single_int(s);
}

core::Result<std::optional<std::int64_t>> Store::saved_output_position(const std::string& name) {
  Statement s(db_, "SELECT seq FROM output_positions WHERE name = ?1");
  s.bind(1, name);
  auto row = s.step();
  if (!row) return std::unexpected(row.error());
  if (!*row) return std::optional<std::int64_t>{};
  return std::optional<std::int64_t>{s.int64(0)};
}

core::Result<std::vector<core::Alert>> Store::alerts(const AlertQuery& q) {
  std::string sql = std::string("SELECT ") + kAlertColumns + " FROM alerts WHERE 1 = 1";
  if (q.open_only) sql += " AND state IN ('firing', 'acknowledged')";
  if (!q.patient.empty()) sql += " AND patient_key = ?1";
  sql += " ORDER BY id DESC LIMIT ?2";
  Statement s(db_, sql);
  if (!q.patient.empty()) s.bind(1, q.patient);
  s.bind(2, std::int64_t{q.limit});
  return collect<core::Alert>(s, read_alert);
}

core::Result<std::optional<core::Alert>> Store::alert(std::int64_t id) {
  Statement s(db_, std::string("SELECT ") + kAlertColumns + " FROM alerts WHERE id = ?1");
  s.bind(1, id);
  auto rows = collect<core::Alert>(s, read_alert);
  if (!rows) return std::unexpected(rows.error());
  if (rows->empty()) return std::optional<core::Alert>{};
  return std::optional<core::Alert>{std::move(rows->front())};
}

core::Result<std::int64_t> Store::last_alert_id() {
  Statement s(db_, "SELECT coalesce(max(id), 0) FROM alerts");
  return single_int(s);
}

core::Result<std::int64_t> Store::last_alert_seq() {
  return single_int(stmts_->last_alert_seq);
}

core::Result<std::vector<core::AlertNotice>> Store::alert_events_after(std::int64_t after_seq, int limit,
                                                                       std::int64_t up_to_seq) {
  auto& s = stmts_->alert_events_after;
  s.bind(1, after_seq).bind(2, std::int64_t{limit}).bind(3, up_to_seq);
  return collect<core::AlertNotice>(s, read_notice);
}

core::Result<std::vector<std::pair<std::int64_t, std::string>>> Store::alert_lines_after(std::int64_t after_seq,
                                                                                         int limit,
                                                                                         std::int64_t up_to_seq) {
  auto& s = stmts_->alert_lines_after;
  s.bind(1, after_seq).bind(2, std::int64_t{limit}).bind(3, up_to_seq);
  return collect<std::pair<std::int64_t, std::string>>(s, [](const Statement& st) {
    return std::pair<std::int64_t, std::string>{st.int64(0), st.text(1)};
  });
}

core::Result<std::vector<core::AlertNotice>> Store::alert_events_of_patient(const std::string& patient) {
  Statement s(db_,
              "SELECT seq, alert_id, patient_key, signal, event, state, grade, severity, pages, cause, actor, note, "
              "clock_ms, recorded_ms, data_time, line, text FROM alert_events WHERE patient_key = ?1 ORDER BY seq");
  s.bind(1, patient);
  return collect<core::AlertNotice>(s, read_notice);
}

core::Result<std::vector<PatientRecordRow>> Store::records_of_patient(const std::string& patient) {
  Statement s(db_,
              "SELECT o.event_time_ms, o.event_offset_min, 'observation', o.feed, o.record_id, o.version, "
              "o.is_current, coalesce(o.concept, CASE o.code_system WHEN '' THEN o.code ELSE o.code_system || '|' || "
              "o.code END), o.value_num, o.value_text, "
              "o.unit, o.status, o.received_ms "
              "FROM observations o JOIN patients p ON p.id = o.patient_id WHERE p.patient_key = ?1 "
              "UNION ALL "
              "SELECT a.event_time_ms, a.event_offset_min, 'medication', a.feed, a.record_id, a.version, "
              "a.is_current, coalesce(a.ici, CASE a.drug_system WHEN '' THEN a.drug_code ELSE a.drug_system || '|' || "
              "a.drug_code END), NULL, NULL, NULL, a.status, "
              "a.received_ms FROM administrations a JOIN patients p ON p.id = a.patient_id WHERE p.patient_key = ?1 "
              "ORDER BY 1, 4, 5, 6");
  s.bind(1, patient);
  return collect<PatientRecordRow>(s, [](const Statement& st) {
    PatientRecordRow r;
    r.time_ms = st.int64(0);
    r.offset_min = static_cast<std::int32_t>(st.int64(1));
    r.kind = st.text(2);
    r.feed = st.text(3);
    r.record_id = st.text(4);
    r.version = static_cast<int>(st.int64(5));
    r.is_current = st.int64(6) != 0;
    r.what = st.text(7);
    if (!st.is_null(8)) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%g", st.real(8));
      r.value = buf;
      if (!st.text(10).empty()) r.value.append(" ").append(st.text(10));
    } else {
      r.value = st.text(9);
    }
    r.status = st.text(11);
    r.received_ms = st.int64(12);
    return r;
  });
}

core::Result<std::optional<InboundMessage>> Store::find_message(const std::string& feed, const std::string& application,
                                                                const std::string& facility,
                                                                const std::string& control_id) {
  if (control_id.empty()) return std::optional<InboundMessage>{};  // no key: never a resend
  Statement& s = stmts_->find_message;
  s.reset();
  s.bind(1, feed).bind(2, application).bind(3, facility).bind(4, control_id);
  auto row = s.step();
  if (!row) return std::unexpected(row.error());
  if (!*row) return std::optional<InboundMessage>{};
  InboundMessage m;
  m.feed = feed;
  m.sending_application = application;
  m.sending_facility = facility;
  m.control_id = control_id;
  m.source = s.text(0);
  m.received_ms = s.int64(1);
  m.message_type = s.text(2);
  m.payload_hash = static_cast<std::uint64_t>(s.int64(3));
  m.ack_code = s.text(4);
  m.ack = s.text(5);
  s.reset();
  return std::optional<InboundMessage>{std::move(m)};
}

core::Result<void> Store::insert_message(const InboundMessage& m) {
  Statement& s = stmts_->insert_message;
  s.reset();
  s.bind(1, m.feed).bind(2, m.source).bind(3, m.received_ms).bind(4, m.sending_application);
  s.bind(5, m.sending_facility).bind(6, m.control_id).bind(7, m.message_type);
  s.bind(8, static_cast<std::int64_t>(m.payload_hash)).bind(9, m.ack_code).bind(10, m.ack).bind_blob(11, m.raw);
  return s.run();
}

core::Result<void> Store::touch_patient(const std::string& patient, std::int64_t now_ms) {
  auto id = patient_id(patient, now_ms);
  if (!id) return std::unexpected(id.error());
  Statement s(db_, "UPDATE patients SET updated_ms = ?2 WHERE id = ?1");
  return s.bind(1, *id).bind(2, now_ms).run();
}

core::Result<std::int64_t> Store::merge_patient(const std::string& prior, const std::string& surviving,
                                                std::int64_t now_ms) {
  auto to = patient_id(surviving, now_ms);
  if (!to) return std::unexpected(to.error());
  auto from = patient_id(prior, now_ms);
  if (!from) return std::unexpected(from.error());
  std::int64_t moved = 0;
  for (const char* sql : {"UPDATE observations SET patient_id = ?2 WHERE patient_id = ?1",
                          "UPDATE administrations SET patient_id = ?2 WHERE patient_id = ?1"}) {
    Statement s(db_, sql);
    if (auto r = s.bind(1, *from).bind(2, *to).run(); !r) return std::unexpected(r.error());
    moved += sqlite3_changes(db_);
  }
  Statement alerts(db_,
                   "UPDATE alerts SET patient_key = ?2 WHERE patient_key = ?1 AND state IN ('resolved', 'retracted')");
  if (auto r = alerts.bind(1, prior).bind(2, surviving).run(); !r) return std::unexpected(r.error());
  Statement events(db_, "UPDATE alert_events SET patient_key = ?2 WHERE patient_key = ?1");
  if (auto r = events.bind(1, prior).bind(2, surviving).run(); !r) return std::unexpected(r.error());
  Statement mark(db_, "UPDATE patients SET merged_into = ?2, updated_ms = ?3 WHERE id = ?1");
  if (auto r = mark.bind(1, *from).bind(2, surviving).bind(3, now_ms).run(); !r) return std::unexpected(r.error());
  return moved;
}

}  // namespace iraewatch::store
