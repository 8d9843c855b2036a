#pragma once
// The store's cached prepared statements. Private to the store module.

#include <cstdint>
#include <string>
#include <unordered_map>

#include "iraewatch/store/store.hpp"
#include "statement.hpp"

namespace iraewatch::store {

inline constexpr const char* kObservationInsert =
    "INSERT INTO observations (feed, record_id, version, is_current, patient_id, code_system, code, concept, "
    "value_num, value_text, unit, canonical_value, canonical_unit, event_time_ms, event_offset_min, status, ref_low, "
    "ref_high, ref_from_sender, baseline, message_id, received_ms, content_hash) VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, "
    "?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)";
inline constexpr const char* kAdministrationInsert =
    "INSERT INTO administrations (feed, record_id, version, is_current, patient_id, drug_system, drug_code, ici, "
    "ici_class, event_time_ms, event_offset_min, status, message_id, received_ms, content_hash) VALUES (?1, ?2, ?3, "
    "1, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";
// Appended to an insert bound with version 1: a record id already stored inserts nothing.
inline constexpr const char* kFirstVersionOnly = " ON CONFLICT (feed, record_id, version) DO NOTHING";

struct Store::Statements {
  explicit Statements(sqlite3* db)
      : begin(db, "BEGIN IMMEDIATE"),
        commit(db, "COMMIT"),
        rollback(db, "ROLLBACK"),
        find_patient(db, "SELECT id FROM patients WHERE patient_key = ?1"),
        insert_patient(db, "INSERT INTO patients (patient_key, first_seen_ms) VALUES (?1, ?2)"),
        obs_versions(db, "SELECT version, content_hash FROM observations WHERE feed = ?1 AND record_id = ?2"),
        obs_retire(db, "UPDATE observations SET is_current = 0 WHERE feed = ?1 AND record_id = ?2 AND is_current = 1"),
        obs_insert(db, kObservationInsert),
        obs_insert_new(db, std::string(kObservationInsert) + kFirstVersionOnly),
        med_versions(db, "SELECT version, content_hash FROM administrations WHERE feed = ?1 AND record_id = ?2"),
        med_retire(db,
                   "UPDATE administrations SET is_current = 0 WHERE feed = ?1 AND record_id = ?2 AND is_current = 1"),
        med_insert(db, kAdministrationInsert),
        med_insert_new(db, std::string(kAdministrationInsert) + kFirstVersionOnly),
        insert_rejected(
            db,
            "INSERT INTO rejected (received_ms, feed, source, position, error_code, reason, raw, truncated) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
        save_alert(
            db,
            "INSERT INTO alerts (id, patient_key, signal, state, grade, severity, rule, rules, summary, fields, "
            "opened_ms, changed_ms, notified_ms, acknowledged_by, acknowledged_note, acknowledged_ms) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) "
            "ON CONFLICT (id) DO UPDATE SET patient_key = excluded.patient_key, signal = excluded.signal, "
            "state = excluded.state, grade = excluded.grade, severity = excluded.severity, rule = excluded.rule, "
            "rules = excluded.rules, summary = excluded.summary, fields = excluded.fields, "
            "changed_ms = excluded.changed_ms, notified_ms = excluded.notified_ms, "
            "acknowledged_by = excluded.acknowledged_by, acknowledged_note = excluded.acknowledged_note, "
            "acknowledged_ms = excluded.acknowledged_ms"),
        insert_alert_event(db,
                           "INSERT INTO alert_events (seq, alert_id, patient_key, signal, event, state, grade, "
                           "severity, pages, cause, actor, note, clock_ms, recorded_ms, data_time, line, text) "
                           "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"),
        alert_events_after(db,
                           "SELECT seq, alert_id, patient_key, signal, event, state, grade, severity, pages, cause, "
                           "actor, note, clock_ms, recorded_ms, data_time, line, text FROM alert_events "
                           "WHERE seq > ?1 AND seq <= ?3 ORDER BY seq LIMIT ?2"),
        alert_lines_after(db, "SELECT seq, line FROM alert_events WHERE seq > ?1 AND seq <= ?3 ORDER BY seq LIMIT ?2"),
        last_alert_seq(db, "SELECT coalesce(max(seq), 0) FROM alert_events"),
        // `control_id <> ''` lets SQLite use the partial unique index inbound_messages_key.
        find_message(db,
                     "SELECT source, received_ms, message_type, payload_hash, ack_code, ack FROM inbound_messages "
                     "WHERE feed = ?1 AND sending_application = ?2 AND sending_facility = ?3 AND control_id = ?4 "
                     "AND control_id <> ''"),
        insert_message(db,
                       "INSERT INTO inbound_messages (feed, source, received_ms, sending_application, "
                       "sending_facility, control_id, message_type, payload_hash, ack_code, ack, raw) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)") {}

  Statement begin, commit, rollback;
  Statement find_patient, insert_patient;
  // The versions of one record (the UNIQUE (feed, record_id, version) index finds them).
  // *_insert_new: the same insert, as version 1 of a record id not seen before; it inserts nothing
  // when the id has a version 1 already (then the versions are read, as identify() does).
  Statement obs_versions, obs_retire, obs_insert, obs_insert_new;
  Statement med_versions, med_retire, med_insert, med_insert_new;
  Statement insert_rejected;
  Statement save_alert, insert_alert_event, alert_events_after, alert_lines_after, last_alert_seq;
  Statement find_message, insert_message;
  // Patients known to be committed, and those added by the open transaction.
  std::unordered_map<std::string, std::int64_t> patients, pending_patients;
};

}  // namespace iraewatch::store
