#include "iraewatch/store/store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <unordered_map>

#include "migrations.hpp"
#include "statement.hpp"
#include "statements.hpp"

namespace iraewatch::store {

using core::ErrorCode;
using core::fail;

namespace {

core::Result<void> exec(sqlite3* db, const char* sql) {
  if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) return std::unexpected(sqlite_error(db, sql));
  return {};
}

// Creates the folder (0700) and the database file (0600) before SQLite touches them, so that no
// other user can ever read patient data; SQLite gives the -wal and -shm files the same mode.
// An existing file is never opened here: closing any descriptor of a file drops every POSIX lock
// this process holds on it, including those of a connection already open, and SQLite then
// believes nobody uses the database (another process may checkpoint and delete the WAL).
core::Result<void> prepare_files(const std::string& data_dir, const std::string& path) {
  std::error_code ec;
  // Only a folder we create is made owner-only; an existing one keeps its mode.
  if (std::filesystem::create_directories(data_dir, ec) && ::chmod(data_dir.c_str(), 0700) != 0)
    return fail(ErrorCode::io, "cannot restrict data folder '" + data_dir + "': " + std::strerror(errno));
  if (ec) return fail(ErrorCode::io, "cannot create data folder '" + data_dir + "': " + ec.message());
  if (std::filesystem::exists(path, ec)) {
    if (::chmod(path.c_str(), 0600) != 0)
      return fail(ErrorCode::io, "cannot restrict database '" + path + "': " + std::strerror(errno));
    return {};
  }
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 && errno != EEXIST)
    return fail(ErrorCode::io, "cannot create database '" + path + "': " + std::strerror(errno));
  if (fd >= 0) {
    const int rc = ::fchmod(fd, 0600);
    ::close(fd);  // nothing of ours had it open: it did not exist
    if (rc != 0) return fail(ErrorCode::io, "cannot restrict database '" + path + "': " + std::strerror(errno));
  }
  return {};
}

// Decodes the hash stored as a signed 64-bit integer (SQLite has no unsigned type).
std::int64_t hash_column(std::uint64_t h) {
  return static_cast<std::int64_t>(h);
}

}  // namespace

std::string Store::database_path(const std::string& data_dir) {
  return data_dir + "/iraewatch.db";
}

core::Result<std::unique_ptr<Store>> Store::open(const std::string& data_dir, StoreOptions options) {
  const std::string path = database_path(data_dir);
  if (!options.create && !std::filesystem::exists(path))
    return fail(ErrorCode::io, "no database at '" + path + "' (check --data-dir)");
  if (auto ok = prepare_files(data_dir, path); !ok) return std::unexpected(ok.error());
  // Memory statistics cost a global mutex on every SQLite allocation; nothing here reads them.
  // Only possible before SQLite initialises (later it is refused, harmlessly).
  static const bool memstatus_off = [] { return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK; }();
  (void)memstatus_off;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    auto err = sqlite_error(db, "cannot open database '" + path + "'");
    sqlite3_close(db);
    return std::unexpected(err);
  }
  sqlite3_busy_timeout(db, options.busy_timeout_ms);
  auto setup = exec(db, "PRAGMA journal_mode = WAL");
  if (setup) setup = exec(db, options.synchronous_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
  if (setup) setup = exec(db, "PRAGMA foreign_keys = ON");
  if (setup) setup = exec(db, "PRAGMA cache_size = -65536");  // 64 MiB: keeps the indexes hot
  if (setup && !options.auto_checkpoint) {
    setup = exec(db, "PRAGMA wal_autocheckpoint = 0");
    if (options.wal) {
      // Replaces SQLite's own hook (auto-checkpoint is off). The gauge outlives the connection:
      // the hook's argument is the shared gauge, kept alive by the Store.
      sqlite3_wal_hook(
          db,
          [](void* arg, sqlite3*, const char*, int frames) {
            static_cast<WalGauge*>(arg)->frames.store(frames, std::memory_order_relaxed);
            return SQLITE_OK;
          },
          options.wal.get());
    }
  }
  if (setup) {
    auto migrated = migrate(db);
    if (!migrated) setup = std::unexpected(migrated.error());
  }
  if (!setup) {
    sqlite3_close(db);
    return std::unexpected(setup.error());
  }
  auto store = std::unique_ptr<Store>(new Store(db, std::make_unique<Statements>(db)));
  store->wal_ = options.wal;
  store->synchronous_full_ = options.synchronous_full;
  return store;
}

Store::Store(sqlite3* db, std::unique_ptr<Statements> statements) : db_(db), stmts_(std::move(statements)) {}

Store::~Store() {
  if (in_transaction_) rollback();
  stmts_.reset();  // statements must be finalized before the connection closes
  sqlite3_close(db_);
}

core::Result<Store::CheckpointResult> Store::checkpoint() {
  CheckpointResult result;
  const int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, &result.copied_frames);
  if (rc != SQLITE_OK) return std::unexpected(sqlite_error(db_, "WAL checkpoint failed"));
  return result;
}

core::Result<void> Store::sync_database_file() {
  sqlite3_file* file = nullptr;
  int rc = sqlite3_file_control(db_, "main", SQLITE_FCNTL_FILE_POINTER, &file);
  if (rc == SQLITE_OK && (file == nullptr || file->pMethods == nullptr)) rc = SQLITE_MISUSE;  // not open
  if (rc == SQLITE_OK) rc = file->pMethods->xSync(file, SQLITE_SYNC_NORMAL);
  if (rc != SQLITE_OK)
    return fail(ErrorCode::store_unavailable, std::string("syncing the database file failed: ") + sqlite3_errstr(rc));
  return {};
}

core::Result<void> Store::set_synchronous_full(bool full) {
  if (in_transaction_) return fail(ErrorCode::store_unavailable, "cannot change synchronous inside a transaction");
  if (auto r = exec(db_, full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL"); !r) return r;
  synchronous_full_ = full;
  return {};
}

std::string Store::wal_path() const {
  return sqlite3_filename_wal(sqlite3_db_filename(db_, "main"));
}

void Store::finish_checkpoint_if_wanted() {
  if (!wal_ || in_transaction_ || !wal_->tail_wanted.exchange(false, std::memory_order_relaxed)) return;
  // A failure (say, the checkpointer's own run is still going) only means the WAL restarts later.
  (void)checkpoint();
}

int Store::schema_version() {
  Statement s(db_, "PRAGMA user_version");
  auto row = s.step();
  return row && *row ? static_cast<int>(s.int64(0)) : -1;
}

core::Result<void> Store::begin() {
  if (auto r = stmts_->begin.run(); !r) return r;
  in_transaction_ = true;
  return {};
}

core::Result<void> Store::commit() {
  if (auto r = stmts_->commit.run(); !r) {
    rollback();
    return r;
  }
  in_transaction_ = false;
  stmts_->patients.merge(stmts_->pending_patients);
  stmts_->pending_patients.clear();
  return {};
}

void Store::rollback() {
  if (sqlite3_get_autocommit(db_) == 0) (void)stmts_->rollback.run();
  in_transaction_ = false;
  stmts_->pending_patients.clear();
}

core::Result<std::vector<WriteOutcome>> Store::write_batch(std::span<const WriteItem> items) {
  if (auto r = begin(); !r) return std::unexpected(r.error());
  std::vector<WriteOutcome> outcomes;
  outcomes.reserve(items.size());
  for (const auto& item : items) {
    auto outcome = apply(item);
    if (!outcome) {
      rollback();
      return std::unexpected(outcome.error());
    }
    outcomes.push_back(*outcome);
  }
  if (auto r = commit(); !r) return std::unexpected(r.error());
  return outcomes;
}

core::Result<WriteOutcome> Store::apply(const WriteItem& item) {
  if (const auto* rejection = std::get_if<Rejection>(&item)) return apply_rejection(*rejection);
  const auto& record = std::get<core::Record>(item);
  if (const auto* o = std::get_if<core::Observation>(&record)) return apply_observation(*o);
  return apply_medication(std::get<core::MedicationAdministration>(record));
}

core::Result<std::int64_t> Store::patient_id(const std::string& key, std::int64_t now_ms) {
  if (auto it = stmts_->patients.find(key); it != stmts_->patients.end()) return it->second;
  if (auto it = stmts_->pending_patients.find(key); it != stmts_->pending_patients.end()) return it->second;
  auto& find = stmts_->find_patient;
  find.bind(1, key);
  auto row = find.step();
  if (!row) return std::unexpected(row.error());
  std::int64_t id;
  if (*row) {
    id = find.int64(0);
    find.reset();
    stmts_->patients.emplace(key, id);
    return id;
  }
  find.reset();
  if (auto r = stmts_->insert_patient.bind(1, key).bind(2, now_ms).run(); !r) return std::unexpected(r.error());
  id = sqlite3_last_insert_rowid(db_);
  stmts_->pending_patients.emplace(key, id);
  return id;
}

namespace {

// Shared identity logic for both record tables: the same content as any stored version is a
// duplicate of it; otherwise the record becomes the next version and the earlier current version
// is retired (kept for audit). One index lookup reads every version of the record.
struct Identity {
  bool duplicate = false;
  int version = 1;  // the duplicate's version, or the new one
};

core::Result<Identity> identify(Statement& versions, Statement& retire, const std::string& feed, const std::string& id,
                                std::uint64_t hash) {
  versions.bind(1, feed).bind(2, id);
  Identity out;
  int max_version = 0;
  const std::int64_t wanted = hash_column(hash);
  for (;;) {
    auto row = versions.step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    const int v = static_cast<int>(versions.int64(0));
    if (versions.int64(1) == wanted) {
      out.duplicate = true;
      out.version = v;
    }
    max_version = std::max(max_version, v);
  }
  versions.reset();
  if (out.duplicate) return out;
  out.version = max_version + 1;
  if (max_version > 0) {
    if (auto r = retire.bind(1, feed).bind(2, id).run(); !r) return std::unexpected(r.error());
  }
  return out;
}

void bind_observation(Statement& ins, const core::Observation& o, int version, std::int64_t patient,
                      std::uint64_t hash) {
  ins.bind(1, o.provenance.feed).bind(2, o.id).bind(3, std::int64_t{version}).bind(4, patient);
  ins.bind(5, o.code.system).bind(6, o.code.code).bind_text_or_null(7, o.concept_name);
  ins.bind(8, o.value);
  if (o.value)
    ins.bind_null(9);
  else
    ins.bind_text_or_null(9, o.text_value);
  ins.bind_text_or_null(10, o.unit).bind(11, o.canonical_value).bind_text_or_null(12, o.canonical_unit);
  ins.bind(13, o.time.utc_ms).bind(14, std::int64_t{o.time.offset_min}).bind(15, core::to_string(o.status));
  ins.bind(16, o.ref_low).bind(17, o.ref_high).bind(18, std::int64_t{o.ref_from_sender});
  ins.bind(19, std::int64_t{o.baseline}).bind_text_or_null(20, o.provenance.message_id);
  ins.bind(21, o.provenance.received_ms).bind(22, hash_column(hash));
}

void bind_administration(Statement& ins, const core::MedicationAdministration& m, int version, std::int64_t patient,
                         std::uint64_t hash) {
  ins.bind(1, m.provenance.feed).bind(2, m.id).bind(3, std::int64_t{version}).bind(4, patient);
  ins.bind(5, m.drug.system).bind(6, m.drug.code).bind_text_or_null(7, m.ici).bind_text_or_null(8, m.ici_class);
  ins.bind(9, m.time.utc_ms).bind(10, std::int64_t{m.time.offset_min}).bind(11, core::to_string(m.status));
  ins.bind_text_or_null(12, m.provenance.message_id).bind(13, m.provenance.received_ms).bind(14, hash_column(hash));
}

// Most records arrive once: each is inserted as version 1 straight away, and only when its id is
// stored already are its versions read (identify).
template <typename Record, typename Bind>
core::Result<WriteOutcome> insert_record(sqlite3* db, const Record& r, std::int64_t patient, Statement& insert_new,
                                         Statement& insert, Statement& versions, Statement& retire, Bind bind) {
  const std::uint64_t hash = core::content_hash(r);
  bind(insert_new, r, 1, patient, hash);
  if (auto done = insert_new.run(); !done) return std::unexpected(done.error());
  if (sqlite3_changes(db) == 1) return WriteOutcome{WriteOutcome::Kind::stored, 1};
  auto identity = identify(versions, retire, r.provenance.feed, r.id, hash);
  if (!identity) return std::unexpected(identity.error());
  if (identity->duplicate) return WriteOutcome{WriteOutcome::Kind::duplicate, identity->version};
  bind(insert, r, identity->version, patient, hash);
  if (auto done = insert.run(); !done) return std::unexpected(done.error());
  return WriteOutcome{WriteOutcome::Kind::stored, identity->version};
}

}  // namespace

// The patient is looked up (or added) first. A duplicate's patient exists already, since the
// content hash covers the patient.
core::Result<WriteOutcome> Store::apply_observation(const core::Observation& o) {
  auto patient = patient_id(o.patient, o.provenance.received_ms);
  if (!patient) return std::unexpected(patient.error());
  auto& s = *stmts_;
  return insert_record(db_, o, *patient, s.obs_insert_new, s.obs_insert, s.obs_versions, s.obs_retire,
                       bind_observation);
}

core::Result<WriteOutcome> Store::apply_medication(const core::MedicationAdministration& m) {
  auto patient = patient_id(m.patient, m.provenance.received_ms);
  if (!patient) return std::unexpected(patient.error());
  auto& s = *stmts_;
  return insert_record(db_, m, *patient, s.med_insert_new, s.med_insert, s.med_versions, s.med_retire,
                       bind_administration);
}

core::Result<WriteOutcome> Store::apply_rejection(const Rejection& r) {
  auto& ins = stmts_->insert_rejected;
  ins.bind(1, r.received_ms).bind(2, r.feed).bind(3, r.source).bind(4, r.position);
  ins.bind(5, core::to_string(r.error.code)).bind(6, r.error.message).bind_blob(7, r.raw);
  ins.bind(8, std::int64_t{r.truncated});
  if (auto res = ins.run(); !res) return std::unexpected(res.error());
  return WriteOutcome{WriteOutcome::Kind::rejection_stored, 0};
}

core::Result<Summary> Store::summary() {
  Summary out;
  struct Count {
    const char* sql;
    std::int64_t* into;
  };
  const Count counts[] = {
      {"SELECT count(*) FROM patients", &out.patients},
      {"SELECT count(*) FROM observations WHERE is_current = 1 AND status NOT IN ('entered-in-error', 'cancelled')",
       &out.observations},
      {"SELECT count(*) FROM observations WHERE is_current = 1 AND status IN ('entered-in-error', 'cancelled')",
       &out.withdrawn_observations},
      {"SELECT count(*) FROM observations", &out.observation_versions},
      {"SELECT count(*) FROM observations WHERE is_current = 1 AND concept IS NULL", &out.unmapped_observations},
      {"SELECT count(*) FROM administrations WHERE is_current = 1", &out.administrations},
      {"SELECT count(*) FROM administrations WHERE is_current = 1 AND ici IS NOT NULL", &out.ici_administrations},
      {"SELECT count(*) FROM rejected", &out.rejected},
  };
  for (const auto& c : counts) {
    Statement s(db_, c.sql);
    auto row = s.step();
    if (!row) return std::unexpected(row.error());
    *c.into = s.int64(0);
  }
  Statement by_concept(db_,
                       "SELECT concept, count(*) FROM observations WHERE is_current = 1 AND concept IS NOT NULL "
                       "AND status NOT IN ('entered-in-error', 'cancelled') "
                       "GROUP BY concept ORDER BY concept");
  for (;;) {
    auto row = by_concept.step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    out.by_concept.emplace_back(by_concept.text(0), by_concept.int64(1));
  }
  return out;
}

core::Result<std::vector<StoredObservation>> Store::observation_versions(const std::string& feed,
                                                                         const std::string& record_id) {
  Statement s(db_,
              "SELECT o.version, o.is_current, p.patient_key, o.code_system, o.code, o.concept, o.value_num, "
              "o.value_text, o.unit, o.canonical_value, o.canonical_unit, o.event_time_ms, o.event_offset_min, "
              "o.status, o.ref_low, o.ref_high, o.ref_from_sender, o.baseline, o.message_id, o.received_ms "
              "FROM observations o JOIN patients p ON p.id = o.patient_id "
              "WHERE o.feed = ?1 AND o.record_id = ?2 ORDER BY o.version");
  s.bind(1, feed).bind(2, record_id);
  std::vector<StoredObservation> out;
  for (;;) {
    auto row = s.step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    StoredObservation so;
    so.version = static_cast<int>(s.int64(0));
    so.is_current = s.int64(1) != 0;
    auto& o = so.observation;
    o.id = record_id;
    o.patient = s.text(2);
    o.code = core::Code{s.text(3), s.text(4)};
    o.concept_name = s.text(5);
    if (!s.is_null(6)) o.value = s.real(6);
    o.text_value = s.text(7);
    o.unit = s.text(8);
    if (!s.is_null(9)) o.canonical_value = s.real(9);
    o.canonical_unit = s.text(10);
    o.time = core::EventTime{s.int64(11), static_cast<std::int32_t>(s.int64(12))};
    auto status = core::parse_observation_status(s.text(13));
    o.status = status.value_or(core::ObservationStatus::final);
    if (!s.is_null(14)) o.ref_low = s.real(14);
    if (!s.is_null(15)) o.ref_high = s.real(15);
    o.ref_from_sender = s.int64(16) != 0;
    o.baseline = s.int64(17) != 0;
    o.provenance = core::Provenance{feed, s.text(18), s.int64(19)};
    out.push_back(std::move(so));
  }
  return out;
}

core::Result<void> Store::for_each_current_record(std::int64_t since_ms,
                                                  const std::function<void(const core::Record&)>& fn) {
  Statement meds(
      db_,
      "SELECT a.feed, a.record_id, p.patient_key, a.drug_system, a.drug_code, a.ici, a.ici_class, "
      "a.event_time_ms, a.event_offset_min, a.status FROM administrations a JOIN patients p ON p.id = a.patient_id "
      "WHERE a.is_current = 1 ORDER BY a.event_time_ms");
  for (;;) {
    auto row = meds.step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    core::MedicationAdministration m;
    m.provenance.feed = meds.text(0);
    m.id = meds.text(1);
    m.patient = meds.text(2);
    m.drug = core::Code{meds.text(3), meds.text(4)};
    m.ici = meds.text(5);
    m.ici_class = meds.text(6);
    m.time = core::EventTime{meds.int64(7), static_cast<std::int32_t>(meds.int64(8))};
    m.status = core::parse_medication_status(meds.text(9)).value_or(core::MedicationStatus::completed);
    fn(core::Record(std::move(m)));
  }
  Statement obs(
      db_,
      "SELECT o.feed, o.record_id, p.patient_key, o.concept, o.canonical_value, o.event_time_ms, "
      "o.event_offset_min, o.status, o.ref_low, o.ref_high, o.baseline FROM observations o "
      "JOIN patients p ON p.id = o.patient_id WHERE o.is_current = 1 AND o.concept IS NOT NULL "
      "AND o.canonical_value IS NOT NULL AND (o.event_time_ms >= ?1 OR o.baseline = 1) ORDER BY o.event_time_ms");
  obs.bind(1, since_ms);
  for (;;) {
    auto row = obs.step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    core::Observation o;
    o.provenance.feed = obs.text(0);
    o.id = obs.text(1);
    o.patient = obs.text(2);
    o.concept_name = obs.text(3);
    o.canonical_value = obs.real(4);
    o.time = core::EventTime{obs.int64(5), static_cast<std::int32_t>(obs.int64(6))};
    o.status = core::parse_observation_status(obs.text(7)).value_or(core::ObservationStatus::final);
    if (!obs.is_null(8)) o.ref_low = obs.real(8);
    if (!obs.is_null(9)) o.ref_high = obs.real(9);
    o.baseline = obs.int64(10) != 0;
    fn(core::Record(std::move(o)));
  }
  return {};
}

core::Result<std::vector<RejectedRow>> Store::rejected(int limit) {
  Statement s(db_,
              "SELECT id, received_ms, feed, source, position, error_code, reason, raw, truncated FROM rejected "
              "ORDER BY id DESC LIMIT ?1");
  s.bind(1, std::int64_t{limit});
  std::vector<RejectedRow> out;
  for (;;) {
    auto row = s.step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    out.push_back(RejectedRow{s.int64(0), s.int64(1), s.text(2), s.text(3), s.int64(4), s.text(5), s.text(6), s.text(7),
                              s.int64(8) != 0});
  }
  return out;
}

}  // namespace iraewatch::store
