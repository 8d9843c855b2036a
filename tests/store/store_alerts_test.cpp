#include <sqlite3.h>
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "iraewatch/store/store.hpp"
#include "support/daemon.hpp"

// The alert tables of the store (src/store/store_alerts.cpp, schema version 2): alerts,
// alert_events (the outbox) and output_positions, and the per-patient record listing.

using namespace iraewatch;

namespace {

std::unique_ptr<store::Store> open(const std::string& dir) {
  auto s = store::Store::open(dir);
  if (!s) FAIL(s.error().message);
  return std::move(*s);
}

core::Alert alert(std::int64_t id, const std::string& patient, const std::string& signal,
                  core::AlertState state = core::AlertState::firing) {
  core::Alert a;
  a.id = id;
  a.patient = patient;
  a.signal = signal;
  a.state = state;
  a.grade = 2;
  a.severity = "warning";
  a.rule = signal + "_g2";
  a.rules = signal + "_g2";
  a.summary = "summary of " + std::to_string(id);
  a.fields = R"("x":1)";
  a.opened_ms = 1000 * id;
  a.changed_ms = 1000 * id + 1;
  a.notified_ms = 1000 * id + 2;
  return a;
}

core::AlertNotice notice(std::int64_t seq, std::int64_t alert_id, const std::string& patient) {
  core::AlertNotice n;
  n.seq = seq;
  n.alert_id = alert_id;
  n.patient = patient;
  n.signal = "colitis";
  n.event = "fired";
  n.state = core::AlertState::firing;
  n.grade = 2;
  n.severity = "warning";
  n.pages = true;
  n.cause = "record ndjson|lab-" + std::to_string(seq);
  n.clock_ms = 5000 + seq;
  n.recorded_ms = 6000 + seq;
  n.data_time = "2026-03-01T08:00:00Z";
  n.line = R"({"seq":)" + std::to_string(seq) + "}";
  n.text = "alert " + std::to_string(seq);
  return n;
}

// One transaction, as the contract asks; FAILs on any error.
template <typename Fn>
void in_transaction(store::Store& s, Fn fn) {
  REQUIRE(s.begin());
  auto r = fn();
  if (!r) {
    s.rollback();
    FAIL(r.error().message);
  }
  REQUIRE(s.commit());
}

void save(store::Store& s, const core::Alert& a) {
  in_transaction(s, [&] { return s.save_alert(a); });
}

void append(store::Store& s, const core::AlertNotice& n) {
  in_transaction(s, [&] { return s.append_alert_event(n); });
}

std::vector<std::int64_t> seqs(const std::vector<core::AlertNotice>& notices) {
  std::vector<std::int64_t> out;
  for (const auto& n : notices) out.push_back(n.seq);
  return out;
}

std::vector<std::int64_t> ids(const std::vector<core::Alert>& alerts) {
  std::vector<std::int64_t> out;
  for (const auto& a : alerts) out.push_back(a.id);
  return out;
}

std::int64_t sqlite_int(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  const std::int64_t v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

void sqlite_exec(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(db_path.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  const std::string message = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  INFO(message);
  REQUIRE(rc == SQLITE_OK);
}

store::WriteItem observation(const std::string& id, const std::string& patient, std::int64_t time_ms, double value,
                             const std::string& concept_name = "tsh") {
  core::Observation o;
  o.id = id;
  o.patient = patient;
  o.code = {"http://loinc.org", "3016-3"};
  o.concept_name = concept_name;
  o.value = value;
  o.unit = "mIU/L";
  o.time = {time_ms, 60};
  o.provenance = {"ndjson", "", 100 + time_ms};
  return store::WriteItem(core::Record(o));
}

store::WriteItem medication(const std::string& id, const std::string& patient, std::int64_t time_ms) {
  core::MedicationAdministration m;
  m.id = id;
  m.patient = patient;
  m.drug = {"", "nivolumab"};
  m.ici = "nivolumab";
  m.ici_class = "pd1";
  m.time = {time_ms, 0};
  m.provenance = {"ndjson", "", 100 + time_ms};
  return store::WriteItem(core::Record(m));
}

}  // namespace

TEST_CASE("a fresh store has the alert tables and index (schema 2 or later)", "[store][alerts]") {
  testing::TempDir tmp;
  const std::string dir = tmp.file("data");
  int version = 0;
  {
    auto s = open(dir);
    version = s->schema_version();
  }
  const auto db = store::Store::database_path(dir);
  CHECK(version >= 2);  // 2 added the alert tables; later migrations build on it
  CHECK(sqlite_int(db, "PRAGMA user_version") == version);
  for (const char* table : {"alerts", "alert_events", "output_positions"}) {
    INFO(table);
    CHECK(sqlite_int(db, std::string("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '") + table +
                             "'") == 1);
  }
  CHECK(sqlite_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'alerts_open'") == 1);
  CHECK(sqlite_int(
            db, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'alert_events_by_patient'") == 1);
}

TEST_CASE("a version-1 database is migrated and keeps its records", "[store][alerts]") {
  testing::TempDir tmp;
  int latest = 0;
  {
    auto fresh = open(tmp.file("fresh"));
    latest = fresh->schema_version();
  }
  // A database as iraewatch with schema version 1 left it: migration 1's schema, copied as it was
  // in commit 406fa9b (src/store/migrations.cpp), with one patient and one observation.
  const std::string dir = tmp.file("data");
  std::filesystem::create_directories(dir);
  const auto db = store::Store::database_path(dir);
  sqlite_exec(db, R"sql(
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
INSERT INTO patients (id, patient_key, first_seen_ms) VALUES (1, 'MRN-1', 5);
INSERT INTO observations (feed, record_id, version, is_current, patient_id, code_system, code, concept, value_num,
  unit, event_time_ms, event_offset_min, status, ref_from_sender, baseline, received_ms, content_hash)
  VALUES ('ndjson', 'old-1', 1, 1, 1, '', 'tsh', 'tsh', 2.5, 'mIU/L', 1000, 0, 'final', 0, 0, 5, 42);
PRAGMA user_version = 1;
)sql");
  REQUIRE(sqlite_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'alerts'") == 0);

  auto s = open(dir);
  CHECK(s->schema_version() == latest);
  CHECK(s->summary()->observations == 1);
  auto rows = s->records_of_patient("MRN-1");
  REQUIRE(rows);
  REQUIRE(rows->size() == 1);
  CHECK(rows->front().record_id == "old-1");
  CHECK(rows->front().value == "2.5 mIU/L");
  // The new tables work, foreign key included.
  save(*s, alert(1, "MRN-1", "colitis"));
  append(*s, notice(1, 1, "MRN-1"));
  CHECK(*s->last_alert_seq() == 1);
  CHECK(sqlite_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'alerts_open'") == 1);
}

TEST_CASE("save_alert inserts, then updates by id", "[store][alerts]") {
  testing::TempDir tmp;
  auto s = open(tmp.file("data"));
  auto a = alert(1, "MRN-1", "colitis");
  save(*s, a);
  auto got = s->alert(1);
  REQUIRE(got);
  REQUIRE(got->has_value());
  const core::Alert& first = **got;
  CHECK(first.patient == "MRN-1");
  CHECK(first.signal == "colitis");
  CHECK(first.state == core::AlertState::firing);
  CHECK(first.grade == 2);
  CHECK(first.severity == "warning");
  CHECK(first.rule == "colitis_g2");
  CHECK(first.summary == "summary of 1");
  CHECK(first.fields == R"("x":1)");
  CHECK(first.opened_ms == 1000);
  CHECK(first.changed_ms == 1001);
  CHECK(first.notified_ms == 1002);
  CHECK(first.acknowledged_by.empty());
  CHECK(first.acknowledged_ms == 0);

  a.state = core::AlertState::acknowledged;
  a.grade = 3;
  a.severity = "critical";
  a.rule = "colitis_g3";
  a.rules = "colitis_g2,colitis_g3";
  a.summary = "worse";
  a.changed_ms = 9000;
  a.notified_ms = 8000;
  a.acknowledged_by = "nurse.a";
  a.acknowledged_note = "called the team";
  a.acknowledged_ms = 9000;
  save(*s, a);
  auto all = s->alerts({});
  REQUIRE(all);
  REQUIRE(all->size() == 1);  // updated in place, not a second row
  const core::Alert& second = all->front();
  CHECK(second.id == 1);
  CHECK(second.state == core::AlertState::acknowledged);
  CHECK(second.grade == 3);
  CHECK(second.severity == "critical");
  CHECK(second.rule == "colitis_g3");
  CHECK(second.rules == "colitis_g2,colitis_g3");
  CHECK(second.summary == "worse");
  CHECK(second.changed_ms == 9000);
  CHECK(second.notified_ms == 8000);
  CHECK(second.acknowledged_by == "nurse.a");
  CHECK(second.acknowledged_note == "called the team");
  CHECK(second.acknowledged_ms == 9000);
  CHECK(*s->last_alert_id() == 1);
}

TEST_CASE("at most one open alert per patient and signal", "[store][alerts]") {
  testing::TempDir tmp;
  auto s = open(tmp.file("data"));
  save(*s, alert(1, "MRN-1", "colitis"));

  SECTION("a second open alert for the same pair is refused") {
    for (auto state : {core::AlertState::firing, core::AlertState::acknowledged}) {
      REQUIRE(s->begin());
      auto r = s->save_alert(alert(2, "MRN-1", "colitis", state));
      s->rollback();
      REQUIRE_FALSE(r);
      CHECK(r.error().code == core::ErrorCode::store_unavailable);
    }
    CHECK(ids(*s->alerts({})) == std::vector<std::int64_t>{1});
  }
  SECTION("other pairs, and closed alerts of the same pair, are fine") {
    save(*s, alert(2, "MRN-1", "pneumonitis"));
    save(*s, alert(3, "MRN-2", "colitis"));
    save(*s, alert(4, "MRN-1", "colitis", core::AlertState::resolved));
    save(*s, alert(5, "MRN-1", "colitis", core::AlertState::retracted));
    CHECK(s->alerts({})->size() == 5);
  }
  SECTION("once the open one is resolved, a new one may open") {
    auto resolved = alert(1, "MRN-1", "colitis", core::AlertState::resolved);
    save(*s, resolved);
    save(*s, alert(2, "MRN-1", "colitis"));
    store::AlertQuery open_only;
    open_only.open_only = true;
    CHECK(ids(*s->alerts(open_only)) == std::vector<std::int64_t>{2});
    // ...and the resolved one cannot be reopened beside it.
    REQUIRE(s->begin());
    auto r = s->save_alert(alert(1, "MRN-1", "colitis", core::AlertState::firing));
    s->rollback();
    CHECK_FALSE(r);
  }
}

TEST_CASE("alerts() filters by openness and patient, newest first, up to a limit", "[store][alerts]") {
  testing::TempDir tmp;
  auto s = open(tmp.file("data"));
  save(*s, alert(1, "MRN-1", "colitis", core::AlertState::resolved));
  save(*s, alert(2, "MRN-1", "colitis", core::AlertState::firing));
  save(*s, alert(3, "MRN-2", "colitis", core::AlertState::acknowledged));
  save(*s, alert(4, "MRN-2", "hepatitis", core::AlertState::retracted));
  save(*s, alert(5, "MRN-1", "pneumonitis", core::AlertState::acknowledged));

  store::AlertQuery q;
  CHECK(ids(*s->alerts(q)) == std::vector<std::int64_t>{5, 4, 3, 2, 1});
  q.open_only = true;
  CHECK(ids(*s->alerts(q)) == std::vector<std::int64_t>{5, 3, 2});
  q.patient = "MRN-1";
  CHECK(ids(*s->alerts(q)) == std::vector<std::int64_t>{5, 2});
  q.open_only = false;
  CHECK(ids(*s->alerts(q)) == std::vector<std::int64_t>{5, 2, 1});
  q.limit = 2;
  CHECK(ids(*s->alerts(q)) == std::vector<std::int64_t>{5, 2});
  q.patient.clear();
  q.limit = 3;
  CHECK(ids(*s->alerts(q)) == std::vector<std::int64_t>{5, 4, 3});
  q.patient = "MRN-9";
  CHECK(s->alerts(q)->empty());

  auto missing = s->alert(42);
  REQUIRE(missing);
  CHECK_FALSE(missing->has_value());
  auto present = s->alert(3);
  REQUIRE(present);
  REQUIRE(present->has_value());
  CHECK((*present)->patient == "MRN-2");
}

TEST_CASE("the outbox pages by seq, with after and limit", "[store][alerts]") {
  testing::TempDir tmp;
  auto s = open(tmp.file("data"));
  CHECK(*s->last_alert_id() == 0);
  CHECK(*s->last_alert_seq() == 0);
  CHECK(s->alert_events_after(0, 100)->empty());
  save(*s, alert(1, "MRN-1", "colitis"));
  save(*s, alert(7, "MRN-2", "colitis"));
  // Inserted out of order: reads come back in seq order all the same.
  REQUIRE(s->begin());
  for (std::int64_t seq : {3, 1, 5, 2, 4, 6}) {
    auto r = s->append_alert_event(notice(seq, seq % 2 == 0 ? 7 : 1, seq % 2 == 0 ? "MRN-2" : "MRN-1"));
    if (!r) FAIL(r.error().message);
  }
  REQUIRE(s->commit());

  CHECK(*s->last_alert_id() == 7);
  CHECK(*s->last_alert_seq() == 6);
  CHECK(seqs(*s->alert_events_after(0, 100)) == std::vector<std::int64_t>{1, 2, 3, 4, 5, 6});
  CHECK(seqs(*s->alert_events_after(0, 2)) == std::vector<std::int64_t>{1, 2});
  CHECK(seqs(*s->alert_events_after(2, 2)) == std::vector<std::int64_t>{3, 4});
  CHECK(seqs(*s->alert_events_after(4, 100)) == std::vector<std::int64_t>{5, 6});
  CHECK(s->alert_events_after(6, 100)->empty());

  // Every field survives the round trip; empty actor and note are stored as NULL and come back empty.
  auto page = s->alert_events_after(2, 1);
  REQUIRE(page);
  REQUIRE(page->size() == 1);
  const auto& n = page->front();
  const auto want = notice(3, 1, "MRN-1");
  CHECK(n.alert_id == 1);
  CHECK(n.patient == "MRN-1");
  CHECK(n.signal == want.signal);
  CHECK(n.event == want.event);
  CHECK(n.state == core::AlertState::firing);
  CHECK(n.grade == 2);
  CHECK(n.severity == "warning");
  CHECK(n.pages);
  CHECK(n.cause == want.cause);
  CHECK(n.actor.empty());
  CHECK(n.note.empty());
  CHECK(n.clock_ms == want.clock_ms);
  CHECK(n.recorded_ms == want.recorded_ms);
  CHECK(n.data_time == want.data_time);
  CHECK(n.line == want.line);
  CHECK(n.text == want.text);

  CHECK(seqs(*s->alert_events_of_patient("MRN-1")) == std::vector<std::int64_t>{1, 3, 5});
  CHECK(seqs(*s->alert_events_of_patient("MRN-2")) == std::vector<std::int64_t>{2, 4, 6});
  CHECK(s->alert_events_of_patient("MRN-3")->empty());
}

TEST_CASE("an acknowledgement event keeps its actor and note", "[store][alerts]") {
  testing::TempDir tmp;
  auto s = open(tmp.file("data"));
  save(*s, alert(1, "MRN-1", "colitis"));
  auto n = notice(1, 1, "MRN-1");
  n.event = "acknowledged";
  n.state = core::AlertState::acknowledged;
  n.pages = false;
  n.actor = "nurse.b";
  n.note = "seen";
  append(*s, n);
  auto got = s->alert_events_of_patient("MRN-1");
  REQUIRE(got);
  REQUIRE(got->size() == 1);
  CHECK(got->front().event == "acknowledged");
  CHECK(got->front().state == core::AlertState::acknowledged);
  CHECK_FALSE(got->front().pages);
  CHECK(got->front().actor == "nurse.b");
  CHECK(got->front().note == "seen");
}

TEST_CASE("an outbox row needs its alert, and seqs are unique", "[store][alerts]") {
  testing::TempDir tmp;
  auto s = open(tmp.file("data"));
  REQUIRE(s->begin());
  auto orphan = s->append_alert_event(notice(1, 99, "MRN-1"));  // no alert 99: foreign key
  s->rollback();
  CHECK_FALSE(orphan);

  save(*s, alert(1, "MRN-1", "colitis"));
  append(*s, notice(1, 1, "MRN-1"));
  REQUIRE(s->begin());
  auto again = s->append_alert_event(notice(1, 1, "MRN-1"));
  s->rollback();
  CHECK_FALSE(again);
  CHECK(seqs(*s->alert_events_after(0, 10)) == std::vector<std::int64_t>{1});
}

TEST_CASE("output positions start at 0 and never move backwards", "[store][alerts]") {
  testing::TempDir tmp;
  const std::string dir = tmp.file("data");
  {
    auto s = open(dir);
    CHECK(*s->output_position("file") == 0);
    in_transaction(*s, [&] { return s->set_output_position("file", 5, 100); });
    CHECK(*s->output_position("file") == 5);
    in_transaction(*s, [&] { return s->set_output_position("file", 3, 200); });  // a stale save
    CHECK(*s->output_position("file") == 5);
    in_transaction(*s, [&] { return s->set_output_position("file", 9, 300); });
    in_transaction(*s, [&] { return s->set_output_position("syslog", 2, 300); });
    CHECK(*s->output_position("file") == 9);
    CHECK(*s->output_position("syslog") == 2);
    CHECK(*s->output_position("console") == 0);
  }
  CHECK(*open(dir)->output_position("file") == 9);  // durable
}

TEST_CASE("records_of_patient lists every version of every record in event-time order", "[store][alerts]") {
  testing::TempDir tmp;
  auto s = open(tmp.file("data"));
  std::vector<store::WriteItem> items{
      observation("o2", "MRN-1", 3000, 7), medication("m1", "MRN-1", 1000), observation("o1", "MRN-1", 2000, 3),
      observation("x1", "MRN-2", 1500, 1),  // another patient
  };
  REQUIRE(s->write_batch(items));
  // A correction of o1 (a second version) and an unmapped observation.
  std::vector<store::WriteItem> more{observation("o1", "MRN-1", 2000, 5), observation("u1", "MRN-1", 4000, 1, "")};
  REQUIRE(s->write_batch(more));

  auto rows = s->records_of_patient("MRN-1");
  REQUIRE(rows);
  REQUIRE(rows->size() == 5);
  const auto& r = *rows;
  CHECK(r[0].kind == "medication");
  CHECK(r[0].record_id == "m1");
  CHECK(r[0].time_ms == 1000);
  CHECK(r[0].what == "nivolumab");
  CHECK(r[0].value.empty());
  CHECK(r[0].status == "completed");
  CHECK(r[0].version == 1);
  CHECK(r[0].is_current);

  CHECK(r[1].kind == "observation");
  CHECK(r[1].record_id == "o1");
  CHECK(r[1].version == 1);
  CHECK_FALSE(r[1].is_current);
  CHECK(r[1].value == "3 mIU/L");
  CHECK(r[1].time_ms == 2000);
  CHECK(r[1].offset_min == 60);
  CHECK(r[1].feed == "ndjson");
  CHECK(r[1].what == "tsh");
  CHECK(r[1].status == "final");
  CHECK(r[1].received_ms == 2100);

  CHECK(r[2].record_id == "o1");
  CHECK(r[2].version == 2);
  CHECK(r[2].is_current);
  CHECK(r[2].value == "5 mIU/L");

  CHECK(r[3].record_id == "o2");
  CHECK(r[3].time_ms == 3000);

  CHECK(r[4].record_id == "u1");
  CHECK(r[4].what == "http://loinc.org|3016-3");  // unmapped: the code as sent

  CHECK(s->records_of_patient("MRN-3")->empty());
  auto other = s->records_of_patient("MRN-2");
  REQUIRE(other);
  REQUIRE(other->size() == 1);
  CHECK(other->front().record_id == "x1");
}

TEST_CASE("records_of_patient shows a text value, and a non-ICI drug as it was sent", "[store][alerts]") {
  testing::TempDir tmp;
  auto s = open(tmp.file("data"));
  auto text = observation("t1", "MRN-1", 1000, 0, "");
  auto& o = std::get<core::Observation>(std::get<core::Record>(text));
  o.value.reset();
  o.unit.clear();
  o.text_value = "positive";
  auto aspirin = medication("m1", "MRN-1", 2000);
  auto& m = std::get<core::MedicationAdministration>(std::get<core::Record>(aspirin));
  m.drug = {"", "aspirin"};  // a bare name, not an ICI: what the NDJSON parser makes of "drug":"aspirin"
  m.ici.clear();
  m.ici_class.clear();
  auto coded = medication("m2", "MRN-1", 3000);
  auto& c = std::get<core::MedicationAdministration>(std::get<core::Record>(coded));
  c.drug = {"http://www.nlm.nih.gov/research/umls/rxnorm", "1191"};
  c.ici.clear();
  c.ici_class.clear();
  std::vector<store::WriteItem> items{text, aspirin, coded};
  REQUIRE(s->write_batch(items));

  auto rows = s->records_of_patient("MRN-1");
  REQUIRE(rows);
  REQUIRE(rows->size() == 3);
  CHECK((*rows)[0].value == "positive");
  CHECK((*rows)[2].what == "http://www.nlm.nih.gov/research/umls/rxnorm|1191");
  // Pins a bug found in 406fa9b (records_of_patient): the SQL built drug_system || '|' ||
  // drug_code, so a drug sent by bare name showed as "|aspirin" in `iraewatch history`, where
  // the code as sent (core::to_string(Code)) is "aspirin".
  CHECK((*rows)[1].what == "aspirin");
}
