#include "migrations.hpp"

#include <string>
#include <string_view>

#include "statement.hpp"

namespace iraewatch::store {
namespace {

// docs/database.md describes every table and column.
constexpr std::string_view kMigrations[] = {
    // 1: patients, every version of every record, administrations, rejected input.
    R"sql(
CREATE TABLE patients (
  id            INTEGER PRIMARY KEY,
  patient_key   TEXT NOT NULL UNIQUE,
  first_seen_ms INTEGER NOT NULL
);

CREATE TABLE observations (
  id               INTEGER PRIMARY KEY,
  feed             TEXT NOT NULL,
  record_id        TEXT NOT NULL,
  version          INTEGER NOT NULL,
  is_current       INTEGER NOT NULL,
  patient_id       INTEGER NOT NULL REFERENCES patients(id),
  code_system      TEXT NOT NULL,
  code             TEXT NOT NULL,
  concept          TEXT,
  value_num        REAL,
  value_text       TEXT,
  unit             TEXT,
  canonical_value  REAL,
  canonical_unit   TEXT,
  event_time_ms    INTEGER NOT NULL,
  event_offset_min INTEGER NOT NULL,
  status           TEXT NOT NULL,
  ref_low          REAL,
  ref_high         REAL,
  ref_from_sender  INTEGER NOT NULL,
  baseline         INTEGER NOT NULL,
  message_id       TEXT,
  received_ms      INTEGER NOT NULL,
  content_hash     INTEGER NOT NULL,
  UNIQUE (feed, record_id, version)
);
CREATE INDEX observations_by_hash ON observations (feed, record_id, content_hash);
CREATE INDEX observations_by_patient ON observations (patient_id, concept, event_time_ms) WHERE is_current = 1;

CREATE TABLE administrations (
  id               INTEGER PRIMARY KEY,
  feed             TEXT NOT NULL,
  record_id        TEXT NOT NULL,
  version          INTEGER NOT NULL,
  is_current       INTEGER NOT NULL,
  patient_id       INTEGER NOT NULL REFERENCES patients(id),
  drug_system      TEXT NOT NULL,
  drug_code        TEXT NOT NULL,
  ici              TEXT,
  ici_class        TEXT,
  event_time_ms    INTEGER NOT NULL,
  event_offset_min INTEGER NOT NULL,
  status           TEXT NOT NULL,
  message_id       TEXT,
  received_ms      INTEGER NOT NULL,
  content_hash     INTEGER NOT NULL,
  UNIQUE (feed, record_id, version)
);
CREATE INDEX administrations_by_hash ON administrations (feed, record_id, content_hash);
CREATE INDEX administrations_by_patient ON administrations (patient_id, event_time_ms) WHERE is_current = 1;

CREATE TABLE rejected (
  id          INTEGER PRIMARY KEY,
  received_ms INTEGER NOT NULL,
  feed        TEXT NOT NULL,
  source      TEXT NOT NULL,
  position    INTEGER NOT NULL,
  error_code  TEXT NOT NULL,
  reason      TEXT NOT NULL,
  raw         BLOB NOT NULL,
  truncated   INTEGER NOT NULL
);
)sql",
    // 2: the alert lifecycle: alerts, their events (outbox and audit trail), output positions.
    R"sql(
CREATE TABLE alerts (
  id                INTEGER PRIMARY KEY,
  patient_key       TEXT NOT NULL,
  signal            TEXT NOT NULL,
  state             TEXT NOT NULL,
  grade             INTEGER NOT NULL,
  severity          TEXT NOT NULL,
  rule              TEXT NOT NULL,
  rules             TEXT NOT NULL,
  summary           TEXT NOT NULL,
  fields            TEXT NOT NULL,
  opened_ms         INTEGER NOT NULL,
  changed_ms        INTEGER NOT NULL,
  notified_ms       INTEGER NOT NULL,
  acknowledged_by   TEXT,
  acknowledged_note TEXT,
  acknowledged_ms   INTEGER
);
CREATE UNIQUE INDEX alerts_open ON alerts (patient_key, signal) WHERE state IN ('firing', 'acknowledged');
CREATE INDEX alerts_by_patient ON alerts (patient_key, id);

CREATE TABLE alert_events (
  seq         INTEGER PRIMARY KEY,
  alert_id    INTEGER NOT NULL REFERENCES alerts(id),
  patient_key TEXT NOT NULL,
  signal      TEXT NOT NULL,
  event       TEXT NOT NULL,
  state       TEXT NOT NULL,
  grade       INTEGER NOT NULL,
  severity    TEXT NOT NULL,
  pages       INTEGER NOT NULL,
  cause       TEXT NOT NULL,
  actor       TEXT,
  note        TEXT,
  clock_ms    INTEGER NOT NULL,
  recorded_ms INTEGER NOT NULL,
  data_time   TEXT NOT NULL,
  line        TEXT NOT NULL,
  text        TEXT NOT NULL
);
CREATE INDEX alert_events_by_patient ON alert_events (patient_key, seq);

CREATE TABLE output_positions (
  name       TEXT PRIMARY KEY,
  seq        INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
);
)sql",
    // 3: inbound messages (HL7 v2) kept for audit with their ACK; patient updates and merges.
    R"sql(
CREATE TABLE inbound_messages (
  id                  INTEGER PRIMARY KEY,
  feed                TEXT NOT NULL,
  source              TEXT NOT NULL,
  received_ms         INTEGER NOT NULL,
  sending_application TEXT NOT NULL,
  sending_facility    TEXT NOT NULL,
  control_id          TEXT NOT NULL,
  message_type        TEXT NOT NULL,
  payload_hash        INTEGER NOT NULL,
  ack_code            TEXT NOT NULL,
  ack                 TEXT NOT NULL,
  raw                 BLOB NOT NULL
);
CREATE UNIQUE INDEX inbound_messages_key ON inbound_messages (feed, sending_application, sending_facility, control_id)
  WHERE control_id <> '';

ALTER TABLE patients ADD COLUMN updated_ms INTEGER;
ALTER TABLE patients ADD COLUMN merged_into TEXT;
)sql",
    // 4: a record's versions are found through UNIQUE (feed, record_id, version) alone: the
    // separate content-hash indexes cost a third of each insert and found nothing it does not.
    R"sql(
DROP INDEX observations_by_hash;
DROP INDEX administrations_by_hash;
)sql",
    // 5: the by-patient indexes serve what reads by patient: a patient's history and an ADT^A40
    // merge (both scanned the whole table, since they read every version, not only current ones).
    // Without the concept in the key, the observations of one message, same patient and time,
    // sit together: one index page per message instead of one per concept.
    R"sql(
DROP INDEX observations_by_patient;
CREATE INDEX observations_by_patient ON observations (patient_id, event_time_ms);
DROP INDEX administrations_by_patient;
CREATE INDEX administrations_by_patient ON administrations (patient_id, event_time_ms);
)sql",
};

core::Result<void> exec(sqlite3* db, std::string_view sql, std::string_view what) {
  char* err = nullptr;
  if (sqlite3_exec(db, std::string(sql).c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string message = std::string(what) + ": " + (err ? err : "unknown error");
    sqlite3_free(err);
    return core::fail(core::ErrorCode::store_unavailable, message);
  }
  return {};
}

}  // namespace

int latest_schema_version() {
  return static_cast<int>(std::size(kMigrations));
}

core::Result<int> migrate(sqlite3* db) {
  Statement get_version(db, "PRAGMA user_version");
  auto row = get_version.step();
  if (!row) return std::unexpected(row.error());
  const int current = static_cast<int>(get_version.int64(0));
  get_version.reset();
  if (current > latest_schema_version()) {
    return core::fail(core::ErrorCode::store_unavailable,
                      "database schema version " + std::to_string(current) + " is newer than this program (" +
                          std::to_string(latest_schema_version()) + "); upgrade iraewatch");
  }
  for (int v = current; v < latest_schema_version(); ++v) {
    const std::string what = "migration " + std::to_string(v + 1);
    if (auto r = exec(db, "BEGIN IMMEDIATE", what); !r) return std::unexpected(r.error());
    auto r = exec(db, kMigrations[v], what);
    if (r) r = exec(db, "PRAGMA user_version = " + std::to_string(v + 1), what);
    if (r) r = exec(db, "COMMIT", what);
    if (!r) {
      exec(db, "ROLLBACK", what);
      return std::unexpected(r.error());
    }
  }
  return latest_schema_version();
}

}  // namespace iraewatch::store
