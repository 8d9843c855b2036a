#pragma once
// The record model: what iraewatch stores and evaluates. Every feed (NDJSON, HL7 v2, FHIR) turns
// its input into these types; nothing downstream knows which feed a record came from except
// through its Provenance.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "iraewatch/core/error.hpp"
#include "iraewatch/core/event_time.hpp"

namespace iraewatch::core {

// A code as sent: SYSTEM|CODE, or a bare concept name (system empty).
struct Code {
  std::string system;
  std::string code;

  friend bool operator==(const Code&, const Code&) = default;
};

// Splits "SYSTEM|CODE" at its last '|'; a string with no '|' is a bare name.
Code parse_code(std::string_view text);
std::string to_string(const Code& code);

enum class ObservationStatus { final, corrected, preliminary, entered_in_error, cancelled };
enum class MedicationStatus { completed, in_progress, not_done, on_hold, stopped, entered_in_error };

std::string_view to_string(ObservationStatus status);
std::string_view to_string(MedicationStatus status);
Result<ObservationStatus> parse_observation_status(std::string_view text);
Result<MedicationStatus> parse_medication_status(std::string_view text);

// Where a record came from. `feed` scopes the sender's record ids: the same id from two feeds is
// two records.
struct Provenance {
  std::string feed;              // e.g. "ndjson", "hl7-lab"; set by the listener or the CLI
  std::string message_id;        // the carrying message's id, when the feed has one
  std::int64_t received_ms = 0;  // wall-clock time of arrival
};

struct Observation {
  std::string id;            // the sender's record id
  std::string patient;       // the sender's patient identifier
  Code code;                 // as sent
  std::string concept_name;  // the concept it maps to; empty when the code is not in the concept map

  // The value as sent: a number with its unit, or a coded/text value.
  std::optional<double> value;
  std::string text_value;
  std::string unit;

  // The numeric value in the concept's canonical unit (mapped numeric observations only).
  std::optional<double> canonical_value;
  std::string canonical_unit;

  EventTime time;
  ObservationStatus status = ObservationStatus::final;
  // The reference range that applies to this result, in the canonical unit: the sender's own
  // when it sent one, otherwise the concept's default.
  std::optional<double> ref_low;
  std::optional<double> ref_high;
  bool ref_from_sender = false;
  bool baseline = false;  // the sender flagged this value as the patient's baseline

  Provenance provenance;
};

struct MedicationAdministration {
  std::string id;
  std::string patient;
  Code drug;              // as sent: a name, or SYSTEM|CODE
  std::string ici;        // the ICI's INN when the drug is a known ICI, otherwise empty
  std::string ici_class;  // e.g. "ctla4", "pd1", "pdl1"; empty for non-ICI drugs
  EventTime time;
  MedicationStatus status = MedicationStatus::completed;
  Provenance provenance;
};

using Record = std::variant<Observation, MedicationAdministration>;

const std::string& record_id(const Record& record);
const std::string& record_patient(const Record& record);

// A stable 64-bit fingerprint of a record's clinical content (everything but provenance), so
// that a resend of the same content is recognised whatever its arrival time.
std::uint64_t content_hash(const Record& record);
std::uint64_t content_hash(const Observation& observation);
std::uint64_t content_hash(const MedicationAdministration& administration);

}  // namespace iraewatch::core
