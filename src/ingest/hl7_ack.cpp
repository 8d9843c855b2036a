#include "iraewatch/ingest/hl7_ack.hpp"

#include <cstdio>

#include "iraewatch/core/event_time.hpp"

namespace iraewatch::ingest {
namespace {

// YYYYMMDDHHMMSS+0000 (UTC).
std::string hl7_utc(std::int64_t ms) {
  const std::string iso = core::format_utc(ms);  // 2026-03-01T08:00:00Z or with .mmm
  std::string out;
  for (char c : iso.substr(0, 19))
    if (c >= '0' && c <= '9') out += c;
  return out + "+0000";
}

}  // namespace

std::string_view ack_code(AckKind kind, bool enhanced) {
  switch (kind) {
    case AckKind::accept:
      return enhanced ? "CA" : "AA";
    case AckKind::error:
      return enhanced ? "CE" : "AE";
    case AckKind::reject:
      return enhanced ? "CR" : "AR";
  }
  return "AR";
}

AckKind ack_kind(const Hl7Mapped& mapped) {
  if (mapped.rejection) return AckKind::reject;
  return mapped.issues.empty() ? AckKind::accept : AckKind::error;
}

std::string_view describe(Hl7Error code) {
  switch (code) {
    case Hl7Error::segment_sequence:
      return "Segment sequence error";
    case Hl7Error::required_field_missing:
      return "Required field missing";
    case Hl7Error::data_type:
      return "Data type error";
    case Hl7Error::table_value_not_found:
      return "Table value not found";
    case Hl7Error::unsupported_message_type:
      return "Unsupported message type";
    case Hl7Error::unsupported_event:
      return "Unsupported event code";
    case Hl7Error::unsupported_processing_id:
      return "Unsupported processing id";
    case Hl7Error::unsupported_version:
      return "Unsupported version id";
    case Hl7Error::unknown_key:
      return "Unknown key identifier";
    case Hl7Error::duplicate_key:
      return "Duplicate key identifier";
    case Hl7Error::internal_error:
      return "Application internal error";
  }
  return "Application internal error";
}

std::string build_ack(const hl7::Message* message, AckKind kind, bool enhanced, const std::vector<Hl7Issue>& issues,
                      std::string_view text, const AckHeader& header) {
  const hl7::Delimiters d{};
  auto esc = [&](std::string_view s) { return hl7::escape(s, d); };
  std::string receiving_app, receiving_facility, trigger, processing = "P", version = "2.5.1", control;
  if (message) {
    receiving_app = std::string(message->raw(0, 3));
    receiving_facility = std::string(message->raw(0, 4));
    trigger = std::string(message->raw(0, 9, 0, 2));
    if (!message->raw(0, 11).empty()) processing = std::string(message->raw(0, 11));
    if (!message->raw(0, 12, 0, 1).empty()) version = std::string(message->raw(0, 12, 0, 1));
    control = std::string(message->raw(0, 10));
    // The sender's own delimiters may differ from ours: re-escape what we echo.
    if (message->delimiters().component != '^' || message->delimiters().field != '|' ||
        message->delimiters().subcomponent != '&' || message->delimiters().repetition != '~' ||
        message->delimiters().escape != '\\') {
      receiving_app = esc(message->text(0, 3, 0, 1));
      receiving_facility = esc(message->text(0, 4, 0, 1));
      trigger = esc(message->text(0, 9, 0, 2));
      processing = esc(message->text(0, 11, 0, 1));
      if (processing.empty()) processing = "P";
      control = esc(message->text(0, 10));
    }
  }
  std::string out = "MSH|^~\\&|" + esc(header.application) + "|" + esc(header.facility) + "|" + receiving_app + "|" +
                    receiving_facility + "|" + hl7_utc(header.now_ms) + "||ACK" +
                    (trigger.empty() ? std::string() : "^" + trigger + "^ACK") + "|" + esc(header.control_id) + "|" +
                    processing + "|" + version + "\r";
  out += "MSA|" + std::string(ack_code(kind, enhanced)) + "|" + control;
  if (!text.empty()) out += "|" + esc(text.substr(0, 80));
  out += "\r";
  for (const auto& i : issues) {
    const int code = static_cast<int>(i.code);
    // ERR-2.2 / ERR-1.2: the segment's occurrence among segments of its type (the 2nd OBX is OBX^2).
    std::size_t occurrence = 1;
    if (message)
      for (std::size_t k = 0; k < i.segment_index && k < message->segment_count(); ++k)
        occurrence += message->segment_id(k) == i.segment_id ? 1 : 0;
    const std::string seq = std::to_string(occurrence);
    // ERR-2: segment^sequence[^field[^^component]], with no empty trailing parts.
    std::string where = esc(i.segment_id) + "^" + seq;
    if (i.field > 0) {
      where += "^" + std::to_string(i.field);
      if (i.component > 0) where += "^^" + std::to_string(i.component);
    }
    // ERR-1 (the 2.3/2.4 form) and ERR-2..8 (2.5+): location, code, severity, user message.
    out += "ERR|" + esc(i.segment_id) + "^" + seq + "^" + (i.field > 0 ? std::to_string(i.field) : "") + "^" +
           std::to_string(code) + "&" + std::string(describe(i.code)) + "&HL70357|" + where + "|" +
           std::to_string(code) + "^" + std::string(describe(i.code)) + "^HL70357|E||||" +
           esc(i.message.substr(0, 400)) + "\r";
  }
  return out;
}

}  // namespace iraewatch::ingest
