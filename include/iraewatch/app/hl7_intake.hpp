#pragma once
// One HL7 v2 message, from bytes to committed records and its ACK: parse, map, deduplicate by
// (feed, MSH-3, MSH-4, MSH-10), keep the raw message with its ACK for audit, store the records
// and the rejected segments, evaluate, and (ADT) update or merge patients. Shared by the MLLP
// listener, `ingest` and their tests.
//
// Two steps, so that the writer thread does only store work: prepare() (any thread, no store)
// parses, maps and builds the ACKs; commit() runs inside a writer transaction (a Writer task) and
// returns the ACK to send, which may be sent only once that transaction has committed.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "iraewatch/app/alerting.hpp"
#include "iraewatch/core/concept_map.hpp"
#include "iraewatch/ingest/hl7_ack.hpp"
#include "iraewatch/ingest/hl7_mapper.hpp"
#include "iraewatch/store/store.hpp"

namespace iraewatch::app {

struct Hl7Outcome {
  std::string ack;       // the ACK message (unframed)
  std::string ack_code;  // AA, AE, AR, CA, CE, CR
  bool repeat = false;   // a message already processed: its stored ACK, nothing done again
  std::size_t stored = 0, duplicates = 0, rejected = 0, ignored = 0;
  std::string reason;  // why it was rejected (AR/CR) or what failed (AE/CE), for logs and the CLI
};

// A message parsed and mapped, with its ACKs built: everything that needs no store. Owns its
// data (no views into the payload).
struct Hl7Prepared {
  std::string payload, source;
  std::int64_t now_ms = 0;
  std::uint64_t hash = 0;  // payload_hash() of the message's segments
  bool readable = false;   // false: unparseable; `ack` is the AR and `reason` says why
  ingest::Hl7Mapped mapped;
  std::string ack, ack_code, reason;  // the answer when the key is new
  struct Segment {
    std::int64_t position = 0;  // 1-based segment number
    std::string reason, raw;
  };
  std::vector<Segment> rejected_segments;  // the segments of mapped.issues, kept as rejected input
};

class Hl7Intake {
 public:
  // The concept map must outlive the intake. `alerting` may be null (no evaluation).
  Hl7Intake(const core::ConceptMap& concepts, ingest::Hl7Options options, std::string ack_facility, Alerting* alerting);

  // Parses and maps; touches no store. Thread-safe (const).
  Hl7Prepared prepare(std::string payload, std::string source, std::int64_t now_ms) const;

  // Inside a transaction: an Error only when the store failed (the caller must not send the ACK;
  // the transaction rolls back and not_stored_ack() answers instead). `prepared.mapped.records`
  // are moved out.
  core::Result<Hl7Outcome> commit(store::Store& store, Hl7Prepared& prepared);

  // prepare() then commit(), inside a transaction.
  core::Result<Hl7Outcome> process(store::Store& store, std::string_view payload, const std::string& source,
                                   std::int64_t now_ms);

  // The reply when the transaction did not commit: AR/CR with an internal-error ERR, "send again".
  std::string not_stored_ack(std::string_view payload, std::string_view why, std::int64_t now_ms) const;
  // The reply to a frame over the size limit (nothing of it is processed).
  std::string too_large_ack(std::string_view prefix, std::size_t limit, std::int64_t now_ms) const;

  const std::string& feed() const { return mapper_.options().feed; }

 private:
  ingest::AckHeader header(std::string_view control_id, std::int64_t now_ms) const;

  ingest::Hl7Mapper mapper_;
  std::string ack_facility_;
  Alerting* alerting_;
};

// A stable 64-bit FNV-1a hash of a message (to tell a resend from a reused control id): of its
// segments, each followed by CR, so that the same message read from a file with LF or CRLF
// segment ends (or a leading BOM) hashes as it does over MLLP. Bytes that do not parse as a
// message are hashed as they are.
std::uint64_t payload_hash(std::string_view payload);

}  // namespace iraewatch::app
