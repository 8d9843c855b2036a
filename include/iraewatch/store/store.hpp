#pragma once
// The durable store: one SQLite file in WAL mode holding patients, every version of every record,
// and rejected input with its reason (docs/database.md). This class owns every SQL string of the
// project. One Store is one connection and is not thread-safe: the daemon gives its single writer
// thread one Store, and readers open their own.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "iraewatch/core/alert.hpp"
#include "iraewatch/core/error.hpp"
#include "iraewatch/core/record.hpp"

struct sqlite3;

namespace iraewatch::store {

// Input that could not be turned into a record, kept with its reason.
struct Rejection {
  std::string feed;           // which listener or command received it
  std::string source;         // a file name or a peer address
  std::int64_t position = 0;  // the line (or message) number within the source, 1-based
  core::Error error;
  std::string raw;  // the bytes as received (a prefix, when `truncated`)
  bool truncated = false;
  std::int64_t received_ms = 0;
};

using WriteItem = std::variant<core::Record, Rejection>;

struct WriteOutcome {
  enum class Kind { stored, duplicate, rejection_stored };
  Kind kind;
  int version = 0;  // the record's version (1 for a new id); 0 for rejections
};

// Shared by the writer's connection and the Checkpointer (serve): how full the WAL is, and
// whether the checkpointer wants the writer to finish a checkpoint. A PASSIVE checkpoint that
// runs beside a busy writer never copies the frames committed while it ran, so SQLite never
// starts the WAL over and the file grows for as long as the load lasts (hundreds of MB a minute
// at benchmark rates, each commit an append that also rewrites the inode). The checkpointer does
// the bulk of the copying; the writer then copies the few frames left, between two of its
// transactions, so that its next transaction starts the WAL from the beginning.
struct WalGauge {
  std::atomic<std::int64_t> frames{0};   // frames in the WAL after the writer's last commit
  std::atomic<bool> tail_wanted{false};  // set by the checkpointer, cleared by the writer
};

struct StoreOptions {
  bool synchronous_full = true;  // fsync every commit (synchronous=FULL); NORMAL otherwise
  int busy_timeout_ms = 5000;
  bool create = true;  // false: an absent database is an error (for read-only tools)
  // false: this connection never checkpoints the WAL inside a commit; a Checkpointer must.
  bool auto_checkpoint = true;
  // When set (with auto_checkpoint false): the writer's side of a Checkpointer (see WalGauge).
  std::shared_ptr<WalGauge> wal;
};

// One stored version of an observation, as read back (for tests, tools and the engine's warm-up).
struct StoredObservation {
  core::Observation observation;
  int version = 0;
  bool is_current = false;
};

struct RejectedRow {
  std::int64_t id = 0;
  std::int64_t received_ms = 0;
  std::string feed, source;
  std::int64_t position = 0;
  std::string error_code, reason, raw;
  bool truncated = false;
};

struct Summary {
  std::int64_t patients = 0;
  std::int64_t observations = 0;            // current versions, not withdrawn
  std::int64_t withdrawn_observations = 0;  // current version is entered-in-error or cancelled
  std::int64_t observation_versions = 0;    // all versions
  std::int64_t unmapped_observations = 0;   // current, code not in the concept map
  std::int64_t administrations = 0;         // current versions
  std::int64_t ici_administrations = 0;
  std::int64_t rejected = 0;
  std::vector<std::pair<std::string, std::int64_t>> by_concept;  // current observations per concept
};

// An inbound message kept for audit, with the ACK it got (HL7 v2).
struct InboundMessage {
  std::string feed, source;
  std::int64_t received_ms = 0;
  std::string sending_application, sending_facility, control_id;  // control_id "" when unreadable
  std::string message_type;
  std::uint64_t payload_hash = 0;
  std::string ack_code, ack;
  std::string raw;
};

// Which alerts a listing wants.
struct AlertQuery {
  bool open_only = false;  // firing or acknowledged
  std::string patient;     // empty: every patient
  int limit = 1000;        // newest first
};

// One stored record version of one patient, described for `iraewatch history`.
struct PatientRecordRow {
  std::int64_t time_ms = 0;
  std::int32_t offset_min = 0;
  std::string kind;  // observation, medication
  std::string feed, record_id;
  int version = 0;
  bool is_current = false;
  std::string what;   // concept or code / drug
  std::string value;  // value and unit, or text value; "" for a medication
  std::string status;
  std::int64_t received_ms = 0;
};

class Store {
 public:
  // Opens (creating when needed) DATA_DIR/iraewatch.db: the folder with mode 0700, the file 0600;
  // WAL mode; runs migrations.
  static core::Result<std::unique_ptr<Store>> open(const std::string& data_dir, StoreOptions options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  static std::string database_path(const std::string& data_dir);

  // Writes. A batch is begin(), apply() per item, commit(). An Error from apply() means the
  // connection failed: the caller must rollback() and treat the whole batch as not stored.
  // Nothing is durable (or may be acknowledged) before commit() returns success.
  core::Result<void> begin();
  core::Result<WriteOutcome> apply(const WriteItem& item);
  core::Result<void> commit();
  void rollback();

  // begin + apply each + commit, rolling back on failure.
  core::Result<std::vector<WriteOutcome>> write_batch(std::span<const WriteItem> items);

  // Alerts (inside a transaction begun with begin(), like apply()). save_alert inserts or
  // replaces by id; append_alert_event adds one outbox row with the notice's own seq.
  core::Result<void> save_alert(const core::Alert& alert);
  core::Result<void> append_alert_event(const core::AlertNotice& notice);
  // Inbound messages: the stored one with the same (feed, application, facility, control id).
  core::Result<std::optional<InboundMessage>> find_message(const std::string& feed, const std::string& application,
                                                           const std::string& facility, const std::string& control_id);
  core::Result<void> insert_message(const InboundMessage& message);
  // A patient update (ADT): the patient exists from now on, and is marked updated.
  core::Result<void> touch_patient(const std::string& patient, std::int64_t now_ms);
  // A merge (ADT^A40): every record and closed alert of `prior` becomes `surviving`'s, and
  // `prior` is marked merged. Returns how many records moved. Open alerts are the caller's
  // (the lifecycle moves or closes them first).
  core::Result<std::int64_t> merge_patient(const std::string& prior, const std::string& surviving, std::int64_t now_ms);

  // Output delivery positions: the last seq each named output delivered (0 when never).
  core::Result<void> set_output_position(const std::string& name, std::int64_t seq, std::int64_t now_ms);

  // Copies committed WAL pages into the database without blocking writers (PASSIVE).
  struct CheckpointResult {
    int copied_frames = 0;  // frames of the WAL now in the database
  };
  core::Result<CheckpointResult> checkpoint();
  // fdatasync of the database file. A PASSIVE checkpoint syncs the database only when it copied
  // the whole WAL; the Checkpointer calls this after passes that did not, so that the writer's
  // final share (finish_checkpoint_if_wanted) syncs only the few pages it copied itself.
  core::Result<void> sync_database_file();
  // For the Writer's sync thread (WriterOptions::sync_aside): whether this connection's commits
  // sync themselves (synchronous=FULL), turning that off, and the WAL file to sync instead.
  bool synchronous_full() const { return synchronous_full_; }
  core::Result<void> set_synchronous_full(bool full);
  std::string wal_path() const;
  // For the writer's connection, between transactions: when the Checkpointer asked for it (see
  // WalGauge), a PASSIVE checkpoint of the frames it could not copy. Does nothing otherwise.
  void finish_checkpoint_if_wanted();

  // Reads.
  int schema_version();
  core::Result<Summary> summary();
  core::Result<std::vector<StoredObservation>> observation_versions(const std::string& feed,
                                                                    const std::string& record_id);
  core::Result<std::vector<RejectedRow>> rejected(int limit);
  // Every current record the engine needs, oldest first: mapped observations taken since
  // `since_ms` (and baseline-flagged ones of any age), and every administration.
  core::Result<void> for_each_current_record(std::int64_t since_ms, const std::function<void(const core::Record&)>& fn);
  // Alerts, newest first.
  core::Result<std::vector<core::Alert>> alerts(const AlertQuery& query);
  core::Result<std::optional<core::Alert>> alert(std::int64_t id);
  // The largest alert id and event seq in use (0 when none).
  core::Result<std::int64_t> last_alert_id();
  core::Result<std::int64_t> last_alert_seq();
  // Outbox rows with after_seq < seq <= up_to_seq, oldest first, at most `limit`. Readers beside a
  // Writer that syncs aside pass the seq announced as on disk: a later row is committed, but may
  // not survive a power loss yet.
  core::Result<std::vector<core::AlertNotice>> alert_events_after(std::int64_t after_seq, int limit,
                                                                  std::int64_t up_to_seq = INT64_MAX);
  // Only (seq, line) of those rows: what subscribers are sent.
  core::Result<std::vector<std::pair<std::int64_t, std::string>>> alert_lines_after(std::int64_t after_seq, int limit,
                                                                                    std::int64_t up_to_seq = INT64_MAX);
  // Every alert event of one patient, oldest first.
  core::Result<std::vector<core::AlertNotice>> alert_events_of_patient(const std::string& patient);
  core::Result<std::int64_t> output_position(const std::string& name);
  // nullopt when the output has never saved a position (a new output).
  core::Result<std::optional<std::int64_t>> saved_output_position(const std::string& name);
  // Every stored version of every record of one patient, in event-time order.
  core::Result<std::vector<PatientRecordRow>> records_of_patient(const std::string& patient);

 private:
  struct Statements;
  Store(sqlite3* db, std::unique_ptr<Statements> statements);
  core::Result<std::int64_t> patient_id(const std::string& key, std::int64_t now_ms);
  core::Result<WriteOutcome> apply_observation(const core::Observation& o);
  core::Result<WriteOutcome> apply_medication(const core::MedicationAdministration& m);
  core::Result<WriteOutcome> apply_rejection(const Rejection& r);

  sqlite3* db_;
  std::unique_ptr<Statements> stmts_;
  bool in_transaction_ = false;
  std::shared_ptr<WalGauge> wal_;  // kept alive for the WAL hook
  bool synchronous_full_ = true;
};

}  // namespace iraewatch::store
