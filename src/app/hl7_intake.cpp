#include "iraewatch/app/hl7_intake.hpp"

#include <spdlog/spdlog.h>

namespace iraewatch::app {

std::uint64_t payload_hash(std::string_view payload) {
  std::uint64_t h = 14695981039346656037ULL;  // FNV-1a 64-bit offset basis
  for (unsigned char c : payload) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

Hl7Intake::Hl7Intake(const core::ConceptMap& concepts, ingest::Hl7Options options, std::string ack_facility,
                     Alerting* alerting)
    : mapper_(concepts, std::move(options)), ack_facility_(std::move(ack_facility)), alerting_(alerting) {}

ingest::AckHeader Hl7Intake::header(std::string_view control_id, std::int64_t now_ms) const {
  ingest::AckHeader h;
  h.facility = ack_facility_;
  h.control_id = "ACK" + std::string(control_id.substr(0, 190));
  h.now_ms = now_ms;
  return h;
}

std::string Hl7Intake::not_stored_ack(std::string_view payload, std::string_view why, std::int64_t now_ms) const {
  auto message = ingest::hl7::Message::parse(payload);
  const ingest::hl7::Message* m = message ? &*message : nullptr;
  const bool enhanced = m && !m->raw(0, 15).empty();
  ingest::Hl7Issue issue{
      "MSH", 0, 0, 0, ingest::Hl7Error::internal_error, "not stored: " + std::string(why) + "; send the message again"};
  return ingest::build_ack(m, ingest::AckKind::reject, enhanced, {issue}, "not stored; send again",
                           header(m ? m->raw(0, 10) : "", now_ms));
}

std::string Hl7Intake::too_large_ack(std::string_view prefix, std::size_t limit, std::int64_t now_ms) const {
  auto message = ingest::hl7::Message::parse(prefix);
  const ingest::hl7::Message* m = message ? &*message : nullptr;
  ingest::Hl7Issue issue{"MSH",
                         0,
                         0,
                         0,
                         ingest::Hl7Error::data_type,
                         "the message is larger than " + std::to_string(limit) + " bytes; nothing was stored"};
  return ingest::build_ack(m, ingest::AckKind::reject, m && !m->raw(0, 15).empty(), {issue}, "message too large",
                           header(m ? m->raw(0, 10) : "", now_ms));
}

core::Result<Hl7Outcome> Hl7Intake::process(store::Store& store, std::string_view payload, const std::string& source,
                                            std::int64_t now_ms) {
  Hl7Outcome out;
  const std::uint64_t hash = payload_hash(payload);
  auto reject_row = [&](std::int64_t position, std::string_view raw, core::ErrorCode code, const std::string& why) {
    return store.apply(
        store::Rejection{feed(), source, position, core::Error{code, why}, std::string(raw), false, now_ms});
  };

  auto message = ingest::hl7::Message::parse(payload);
  if (!message) {
    // Unreadable: kept for audit, answered AR without a control id to echo.
    out.reason = message.error().message;
    ingest::Hl7Issue issue{"MSH", 0, 0, 0, ingest::Hl7Error::segment_sequence, out.reason};
    out.ack =
        ingest::build_ack(nullptr, ingest::AckKind::reject, false, {issue}, "unreadable message", header("", now_ms));
    out.ack_code = "AR";
    out.rejected = 1;
    if (auto r = store.insert_message(
            {feed(), source, now_ms, "", "", "", "", hash, out.ack_code, out.ack, std::string(payload)});
        !r)
      return std::unexpected(r.error());
    if (auto r = reject_row(1, payload, core::ErrorCode::invalid_input, out.reason); !r)
      return std::unexpected(r.error());
    return out;
  }
  const auto& m = *message;
  ingest::Hl7Mapped mapped = mapper_.map(m, now_ms);

  if (!mapped.control_id.empty()) {
    auto seen = store.find_message(feed(), mapped.sending_application, mapped.sending_facility, mapped.control_id);
    if (!seen) return std::unexpected(seen.error());
    if (*seen) {
      if ((*seen)->payload_hash == hash) {
        out.ack = (*seen)->ack;
        out.ack_code = (*seen)->ack_code;
        out.repeat = true;
        return out;
      }
      // Same key, other content: refused, and kept as rejected input.
      mapped.records.clear();
      mapped.issues.clear();
      mapped.rejection = ingest::Hl7Issue{"MSH",
                                          0,
                                          10,
                                          0,
                                          ingest::Hl7Error::duplicate_key,
                                          "MSH-10 control id was already used by a different message from this sender"};
      out.reason = mapped.rejection->message;
      const auto kind = ingest::AckKind::reject;
      out.ack = ingest::build_ack(&m, kind, mapped.enhanced_ack, {*mapped.rejection}, "duplicate control id",
                                  header(mapped.control_id, now_ms));
      out.ack_code = std::string(ingest::ack_code(kind, mapped.enhanced_ack));
      out.rejected = 1;
      if (auto r = reject_row(1, payload, core::ErrorCode::invalid_input, out.reason); !r)
        return std::unexpected(r.error());
      return out;
    }
  }

  const auto kind = ingest::ack_kind(mapped);
  std::vector<ingest::Hl7Issue> errs = mapped.issues;
  if (mapped.rejection) errs.insert(errs.begin(), *mapped.rejection);
  const std::string text = mapped.rejection ? mapped.rejection->message
                           : mapped.issues.empty()
                               ? std::string()
                               : std::to_string(mapped.issues.size()) + " segment(s) not used; see ERR";
  out.ack = ingest::build_ack(&m, kind, mapped.enhanced_ack, errs, text, header(mapped.control_id, now_ms));
  out.ack_code = std::string(ingest::ack_code(kind, mapped.enhanced_ack));
  out.ignored = mapped.ignored_results;
  if (auto r = store.insert_message({feed(), source, now_ms, mapped.sending_application, mapped.sending_facility,
                                     mapped.control_id, mapped.message_type, hash, out.ack_code, out.ack,
                                     std::string(payload)});
      !r)
    return std::unexpected(r.error());

  const std::string where = source + " " + mapped.control_id;
  if (mapped.rejection) {
    out.reason = mapped.rejection->message;
    out.rejected = 1;
    if (auto r = reject_row(1, payload, core::ErrorCode::invalid_input, out.reason); !r)
      return std::unexpected(r.error());
    return out;
  }
  for (const auto& issue : mapped.issues) {
    ++out.rejected;
    if (out.reason.empty()) out.reason = issue.message;
    if (auto r = store.apply(
            store::Rejection{feed(), where, static_cast<std::int64_t>(issue.segment_index + 1),
                             core::Error{core::ErrorCode::invalid_input,
                                         issue.segment_id + "-" + std::to_string(issue.field) + ": " + issue.message},
                             std::string(m.segment(issue.segment_index)), false, now_ms});
        !r)
      return std::unexpected(r.error());
  }
  std::vector<store::WriteItem> items;
  items.reserve(mapped.records.size());
  for (auto& r : mapped.records) items.emplace_back(std::move(r));
  std::vector<store::WriteOutcome> outcomes;
  outcomes.reserve(items.size());
  for (const auto& item : items) {
    auto o = store.apply(item);
    if (!o) return std::unexpected(o.error());
    outcomes.push_back(*o);
    if (o->kind == store::WriteOutcome::Kind::duplicate)
      ++out.duplicates;
    else
      ++out.stored;
  }
  if (alerting_ && !items.empty())
    if (auto r = alerting_->after_apply(store, items, outcomes); !r) return std::unexpected(r.error());

  if (mapped.kind == ingest::Hl7Mapped::Kind::patient_update) {
    if (auto r = store.touch_patient(mapped.patient, now_ms); !r) return std::unexpected(r.error());
  } else if (mapped.kind == ingest::Hl7Mapped::Kind::patient_merge) {
    if (alerting_) {
      if (auto r = alerting_->merge_patients(store, mapped.merged_patient, mapped.patient); !r)
        return std::unexpected(r.error());
    } else if (auto r = store.merge_patient(mapped.merged_patient, mapped.patient, now_ms); !r) {
      return std::unexpected(r.error());
    }
  }
  return out;
}

}  // namespace iraewatch::app
