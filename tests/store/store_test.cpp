#include <sqlite3.h>
#include <sys/stat.h>
#include <catch2/catch.hpp>

#include "iraewatch/ingest/ndjson_parser.hpp"
#include "iraewatch/rules/concept_map_loader.hpp"
#include "iraewatch/store/store.hpp"
#include "support/daemon.hpp"

using namespace iraewatch;
using store::WriteOutcome;

namespace {

const core::ConceptMap& concepts() {
  static const core::ConceptMap map = *rules::load_concept_map(std::string(IRAEWATCH_SOURCE_DIR) + "/rules");
  return map;
}

store::WriteItem record(const std::string& line, const std::string& feed = "ndjson") {
  ingest::NdjsonParser parser(concepts());
  auto r = parser.parse(line, core::Provenance{feed, "", 1});
  REQUIRE(r);
  return store::WriteItem(*r);
}

std::string tsh(const std::string& id, double value, const std::string& extra = "") {
  return R"({"type":"observation","id":")" + id + R"(","patient":"MRN-1","code":"tsh","value":)" +
         std::to_string(value) + R"(,"unit":"mIU/L","time":"2026-03-01T08:00:00Z")" + extra + "}";
}

std::unique_ptr<store::Store> open(const std::string& dir) {
  auto s = store::Store::open(dir);
  if (!s) FAIL(s.error().message);
  return std::move(*s);
}

WriteOutcome write_one(store::Store& s, store::WriteItem item) {
  std::vector<store::WriteItem> items{std::move(item)};
  auto r = s.write_batch(items);
  if (!r) FAIL(r.error().message);
  REQUIRE(r->size() == 1);
  return (*r)[0];
}

int sqlite_int(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  const int v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

// The query plan's detail lines, joined.
std::string query_plan(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, ("EXPLAIN QUERY PLAN " + sql).c_str(), -1, &st, nullptr) == SQLITE_OK);
  std::string plan;
  while (sqlite3_step(st) == SQLITE_ROW)
    plan += std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 3))) + "\n";
  sqlite3_finalize(st);
  sqlite3_close(db);
  return plan;
}

}  // namespace

TEST_CASE("opening creates an owner-only folder and database at the newest schema", "[store]") {
  testing::TempDir tmp;
  const std::string dir = tmp.file("data");
  {
    auto s = open(dir);
    CHECK(s->schema_version() == 5);
    write_one(*s, record(tsh("a", 1)));  // make the WAL exist
    struct stat st {};
    REQUIRE(::stat(dir.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    for (const char* f : {"/iraewatch.db", "/iraewatch.db-wal", "/iraewatch.db-shm"}) {
      INFO(f);
      REQUIRE(::stat((dir + f).c_str(), &st) == 0);
      CHECK((st.st_mode & 0077) == 0);
    }
  }
  CHECK(sqlite_int(store::Store::database_path(dir), "PRAGMA user_version") == 5);
  CHECK(sqlite_int(store::Store::database_path(dir), "PRAGMA journal_mode = WAL") == 0);  // returns text 'wal'
  auto again = open(dir);  // reopening migrates nothing and keeps the data
  CHECK(again->schema_version() == 5);
  CHECK(again->summary()->observations == 1);
}

// A patient's history (`iraewatch history`) and an ADT^A40 merge read every version of one
// patient's records; before schema 5 both scanned the whole table (seconds, in the writer's
// transaction, on a database of millions of records).
TEST_CASE("reading or merging one patient's records goes through the by-patient indexes", "[store]") {
  testing::TempDir tmp;
  const std::string dir = tmp.file("data");
  { auto s = open(dir); }
  const std::string db = store::Store::database_path(dir);
  for (const char* table : {"observations", "administrations"}) {
    INFO(table);
    const std::string merge = std::string("UPDATE ") + table + " SET patient_id = 2 WHERE patient_id = 1";
    const std::string history = std::string("SELECT t.event_time_ms FROM ") + table +
                                " t JOIN patients p ON p.id = t.patient_id WHERE p.patient_key = 'MRN-1'";
    const std::string index = std::string(table) + "_by_patient (patient_id=?)";
    CHECK_THAT(query_plan(db, merge), Catch::Contains(index));
    CHECK_THAT(query_plan(db, history), Catch::Contains(index));
    CHECK_THAT(query_plan(db, history), !Catch::Contains("SCAN t"));
  }
}

TEST_CASE("a database from a newer iraewatch is refused, not damaged", "[store]") {
  testing::TempDir tmp;
  const std::string dir = tmp.file("data");
  { open(dir); }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(store::Store::database_path(dir).c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  auto s = store::Store::open(dir);
  REQUIRE_FALSE(s);
  CHECK_THAT(s.error().message, Catch::Contains("schema version 99 is newer"));
}

TEST_CASE("the same record again is a no-op; a changed one is a new version", "[store]") {
  testing::TempDir tmp;
  auto s = open(tmp.file("data"));
  CHECK(write_one(*s, record(tsh("r1", 6.8))).kind == WriteOutcome::Kind::stored);
  auto dup = write_one(*s, record(tsh("r1", 6.8)));
  CHECK(dup.kind == WriteOutcome::Kind::duplicate);
  CHECK(dup.version == 1);

  auto corrected = write_one(*s, record(tsh("r1", 6.3, R"(,"status":"corrected")")));
  CHECK(corrected.kind == WriteOutcome::Kind::stored);
  CHECK(corrected.version == 2);

  auto versions = s->observation_versions("ndjson", "r1");
  REQUIRE(versions);
  REQUIRE(versions->size() == 2);
  CHECK((*versions)[0].observation.value == 6.8);
  CHECK_FALSE((*versions)[0].is_current);
  CHECK((*versions)[1].observation.value == 6.3);
  CHECK((*versions)[1].observation.status == core::ObservationStatus::corrected);
  CHECK((*versions)[1].is_current);

  // A late resend of the first version's content changes nothing.
  auto late = write_one(*s, record(tsh("r1", 6.8)));
  CHECK(late.kind == WriteOutcome::Kind::duplicate);
  CHECK(late.version == 1);
  CHECK(s->observation_versions("ndjson", "r1")->size() == 2);
  CHECK(s->observation_versions("ndjson", "r1")->back().is_current);

  auto summary = s->summary();
  CHECK(summary->observations == 1);
  CHECK(summary->observation_versions == 2);
  CHECK(summary->patients == 1);
}

TEST_CASE("entered-in-error becomes the current version, keeping the history", "[store]") {
  testing::TempDir tmp;
  auto s = open(tmp.file("data"));
  write_one(*s, record(tsh("r1", 12)));
  auto retracted = write_one(
      *s,
      record(
          R"({"type":"observation","id":"r1","patient":"MRN-1","code":"tsh","time":"2026-03-01T08:00:00Z","status":"entered-in-error"})"));
  CHECK(retracted.version == 2);
  auto versions = *s->observation_versions("ndjson", "r1");
  REQUIRE(versions.size() == 2);
  CHECK(versions[1].observation.status == core::ObservationStatus::entered_in_error);
  CHECK(versions[1].is_current);
  CHECK_FALSE(versions[1].observation.value);
}

TEST_CASE("record ids are scoped by feed", "[store]") {
  testing::TempDir tmp;
  auto s = open(tmp.file("data"));
  CHECK(write_one(*s, record(tsh("r1", 5), "lab-a")).kind == WriteOutcome::Kind::stored);
  CHECK(write_one(*s, record(tsh("r1", 5), "lab-b")).kind == WriteOutcome::Kind::stored);
  CHECK(s->summary()->observations == 2);
}

TEST_CASE("medications keep versions and ICI classification", "[store]") {
  testing::TempDir tmp;
  auto s = open(tmp.file("data"));
  const std::string m =
      R"({"type":"medication","id":"m1","patient":"MRN-1","drug":"Opdivo","time":"2026-03-01T08:00:00Z")";
  CHECK(write_one(*s, record(m + "}")).kind == WriteOutcome::Kind::stored);
  CHECK(write_one(*s, record(m + "}")).kind == WriteOutcome::Kind::duplicate);
  CHECK(write_one(*s, record(m + R"(,"status":"entered-in-error"})")).version == 2);
  write_one(
      *s,
      record(R"({"type":"medication","id":"m2","patient":"MRN-1","drug":"aspirin","time":"2026-03-01T08:00:00Z"})"));
  auto summary = *s->summary();
  CHECK(summary.administrations == 2);
  CHECK(summary.ici_administrations == 1);
  CHECK(sqlite_int(store::Store::database_path(tmp.file("data")),
                   "SELECT count(*) FROM administrations WHERE ici = 'nivolumab' AND ici_class = 'pd1'") == 2);
}

TEST_CASE("rejected input is kept with its source, position, reason and raw bytes", "[store]") {
  testing::TempDir tmp;
  auto s = open(tmp.file("data"));
  const std::string raw("bad\0line\xff", 9);
  store::Rejection r{"ndjson", "feed.ndjson", 42, {core::ErrorCode::invalid_input, "not valid JSON: ..."},
                     raw,      false,         7};
  CHECK(write_one(*s, r).kind == WriteOutcome::Kind::rejection_stored);
  auto rows = *s->rejected(10);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].source == "feed.ndjson");
  CHECK(rows[0].position == 42);
  CHECK(rows[0].error_code == "invalid_input");
  CHECK(rows[0].reason == "not valid JSON: ...");
  CHECK(rows[0].raw == raw);
  CHECK(rows[0].received_ms == 7);
  CHECK(s->summary()->rejected == 1);
}

TEST_CASE("a failed batch stores nothing of itself", "[store]") {
  testing::TempDir tmp;
  const std::string dir = tmp.file("data");
  auto s = open(dir);
  // Another connection holds the write lock past the busy timeout.
  auto other = store::Store::open(dir, {true, 50});
  REQUIRE(other);
  auto blocked = store::Store::open(dir, {true, 50});
  REQUIRE(blocked);
  REQUIRE((*other)->begin());
  std::vector<store::WriteItem> items{record(tsh("x1", 1)), record(tsh("x2", 2))};
  auto r = (*blocked)->write_batch(items);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == core::ErrorCode::store_unavailable);
  (*other)->rollback();
  CHECK(s->summary()->observations == 0);
  // The same connection works again once the lock is free.
  auto retry = (*blocked)->write_batch(items);
  REQUIRE(retry);
  CHECK(s->summary()->observations == 2);
}
