#include "iraewatch/app/hl7_intake.hpp"

#include <spdlog/spdlog.h>

namespace iraewatch::app {

namespace {

constexpr std::uint64_t kFnvOffset = 14695981039346656037ULL;  // FNV-1a 64-bit offset basis
constexpr std::uint64_t kFnvPrime = 1099511628211ULL;

std::uint64_t fnv1a(std::uint64_t h, std::string_view bytes) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= kFnvPrime;
  }
  return h;
}

std::uint64_t segments_hash(const ingest::hl7::Message& m) {
  std::uint64_t h = kFnvOffset;
  for (std::size_t i = 0; i < m.segment_count(); ++i) h = fnv1a(fnv1a(h, m.segment(i)), "\r");
  return h;
}

}  // namespace

std::uint64_t payload_hash(std::string_view payload) {
  if (auto m = ingest::hl7::Message::parse(payload)) return segments_hash(*m);
  return fnv1a(kFnvOffset, payload);
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

Hl7Prepared Hl7Intake::prepare(std::string payload, std::string source, std::int64_t now_ms) const {
  Hl7Prepared p;
  p.payload = std::move(payload);
  p.source = std::move(source);
  p.now_ms = now_ms;
  auto message = ingest::hl7::Message::parse(p.payload);
  if (!message) {
    // Unreadable: kept for audit, answered AR without a control id to echo.
    p.hash = fnv1a(kFnvOffset, p.payload);
    p.reason = message.error().message;
    ingest::Hl7Issue issue{"MSH", 0, 0, 0, ingest::Hl7Error::segment_sequence, p.reason};
    p.ack =
        ingest::build_ack(nullptr, ingest::AckKind::reject, false, {issue}, "unreadable message", header("", now_ms));
    p.ack_code = "AR";
    return p;
  }
  const auto& m = *message;
  p.readable = true;
  p.hash = segments_hash(m);
  p.mapped = mapper_.map(m, now_ms);
  auto& mapped = p.mapped;

  const auto kind = ingest::ack_kind(mapped);
  std::vector<ingest::Hl7Issue> errs = mapped.issues;
  if (mapped.rejection) errs.insert(errs.begin(), *mapped.rejection);
  const std::string text = mapped.rejection ? mapped.rejection->message
                           : mapped.issues.empty()
                               ? std::string()
                               : std::to_string(mapped.issues.size()) + " segment(s) not used; see ERR";
  p.ack = ingest::build_ack(&m, kind, mapped.enhanced_ack, errs, text, header(mapped.control_id, now_ms));
  p.ack_code = std::string(ingest::ack_code(kind, mapped.enhanced_ack));
  if (mapped.rejection) {
    p.reason = mapped.rejection->message;
  } else {
    for (const auto& issue : mapped.issues) {
      if (p.reason.empty()) p.reason = issue.message;
      const std::size_t unused = issue.unused_segment.value_or(issue.segment_index);
      p.rejected_segments.push_back(
          {static_cast<std::int64_t>(unused + 1), ingest::located(issue), std::string(m.segment(unused))});
    }
  }
  return p;
}

core::Result<Hl7Outcome> Hl7Intake::process(store::Store& store, std::string_view payload, const std::string& source,
                                            std::int64_t now_ms) {
  auto prepared = prepare(std::string(payload), source, now_ms);
  return commit(store, prepared);
}

core::Result<Hl7Outcome> Hl7Intake::commit(store::Store& store, Hl7Prepared& p) {
  Hl7Outcome out;
  auto& mapped = p.mapped;
  auto reject_row = [&](std::string_view reason) {
    return store.apply(store::Rejection{feed(), p.source, 1,
                                        core::Error{core::ErrorCode::invalid_input, std::string(reason)}, p.payload,
                                        false, p.now_ms});
  };

  if (!p.readable) {
    out.ack = p.ack;
    out.ack_code = p.ack_code;
    out.reason = p.reason;
    out.rejected = 1;
    if (auto r = store.insert_message(
            {feed(), p.source, p.now_ms, "", "", "", "", p.hash, out.ack_code, out.ack, p.payload});
        !r)
      return std::unexpected(r.error());
    if (auto r = reject_row(out.reason); !r) return std::unexpected(r.error());
    return out;
  }

  if (!mapped.control_id.empty()) {
    auto seen = store.find_message(feed(), mapped.sending_application, mapped.sending_facility, mapped.control_id);
    if (!seen) return std::unexpected(seen.error());
    if (*seen) {
      if ((*seen)->payload_hash == p.hash) {
        out.ack = (*seen)->ack;
        out.ack_code = (*seen)->ack_code;
        out.repeat = true;
        return out;
      }
      // Same key as a stored message, other content: refused, and kept as rejected input. (Rare:
      // the ACK is built here, from the message parsed again.)
      out.reason = "MSH-10 control id was already used by a different message from this sender";
      const ingest::Hl7Issue reused{"MSH", 0, 10, 0, ingest::Hl7Error::duplicate_key, out.reason};
      auto again = ingest::hl7::Message::parse(p.payload);
      out.ack = ingest::build_ack(again ? &*again : nullptr, ingest::AckKind::reject, mapped.enhanced_ack, {reused},
                                  "duplicate control id", header(mapped.control_id, p.now_ms));
      out.ack_code = std::string(ingest::ack_code(ingest::AckKind::reject, mapped.enhanced_ack));
      out.rejected = 1;
      if (auto r = reject_row(out.reason); !r) return std::unexpected(r.error());
      return out;
    }
  }

  out.ack = p.ack;
  out.ack_code = p.ack_code;
  out.reason = p.reason;
  out.ignored = mapped.ignored_results;
  if (auto r = store.insert_message({feed(), p.source, p.now_ms, mapped.sending_application, mapped.sending_facility,
                                     mapped.control_id, mapped.message_type, p.hash, out.ack_code, out.ack, p.payload});
      !r)
    return std::unexpected(r.error());

  if (mapped.rejection) {
    out.rejected = 1;
    if (auto r = reject_row(out.reason); !r) return std::unexpected(r.error());
    return out;
  }
  const std::string where = p.source + " " + mapped.control_id;
  for (const auto& seg : p.rejected_segments) {
    ++out.rejected;
    if (auto r = store.apply(store::Rejection{feed(), where, seg.position,
                                              core::Error{core::ErrorCode::invalid_input, seg.reason}, seg.raw, false,
                                              p.now_ms});
        !r)
      return std::unexpected(r.error());
  }
  std::vector<store::WriteItem> items;
  items.reserve(mapped.records.size());
  for (auto& r : mapped.records) items.emplace_back(std::move(r));
  mapped.records.clear();
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
    if (auto r = store.touch_patient(mapped.patient, p.now_ms); !r) return std::unexpected(r.error());
  } else if (mapped.kind == ingest::Hl7Mapped::Kind::patient_merge) {
    for (const auto& [prior, surviving] : mapped.merges) {
      if (alerting_) {
        if (auto r = alerting_->merge_patients(store, prior, surviving); !r) return std::unexpected(r.error());
      } else if (auto r = store.merge_patient(prior, surviving, p.now_ms); !r) {
        return std::unexpected(r.error());
      }
    }
  }
  return out;
}

}  // namespace iraewatch::app
