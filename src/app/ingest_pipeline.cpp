#include "iraewatch/app/ingest_pipeline.hpp"

#include <nlohmann/json.hpp>

namespace iraewatch::app {

namespace {

// The success reply for a plain ASCII id (nothing to escape in JSON), written directly: on the writer's
// thread, where building it as a JSON document cost a sixth of each record's time. The same text
// as nlohmann's dump; any other id goes through nlohmann.
bool append_plain_ok_reply(std::string& out, const std::string& id, bool duplicate, int version) {
  for (const unsigned char c : id)
    if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') return false;
  out.reserve(id.size() + 48);
  out += R"({"ok":true,"id":")";
  out += id;
  out += '"';
  if (duplicate) out += R"(,"duplicate":true)";
  if (version > 1) {
    out += R"(,"version":)";
    out += std::to_string(version);
  }
  out += '}';
  return true;
}

}  // namespace

IngestPipeline::IngestPipeline(const core::ConceptMap& concepts, std::string feed)
    : parser_(concepts), feed_(std::move(feed)) {}

PreparedBatch IngestPipeline::prepare(std::string_view source, std::vector<InputLine> lines,
                                      bool source_is_stream) const {
  PreparedBatch batch;
  batch.slots.reserve(lines.size());
  batch.items.reserve(lines.size());
  const std::int64_t now = core::wall_clock_ms();
  const core::Provenance provenance{feed_, "", now};
  for (auto& line : lines) {
    PreparedBatch::Slot slot;
    slot.line = line.number;
    core::Result<core::Record> record = line.too_long
                                            ? core::fail(core::ErrorCode::limit_exceeded,
                                                         "line is longer than " + std::to_string(line.limit) +
                                                             " bytes" + (source_is_stream ? "; connection closed" : ""))
                                            : parser_.parse(line.text, provenance);
    if (!line.too_long && ingest::is_blank(line.text)) {
      slot.blank = true;
    } else if (record) {
      slot.id = core::record_id(*record);
      batch.items.emplace_back(std::move(*record));
    } else {
      slot.error = record.error().message;
      batch.items.emplace_back(store::Rejection{feed_, std::string(source), static_cast<std::int64_t>(line.number),
                                                record.error(), std::move(line.text), line.too_long, now});
    }
    batch.slots.push_back(std::move(slot));
  }
  return batch;
}

std::vector<std::string> IngestPipeline::replies(const PreparedBatch& batch, const store::WriteResult& result,
                                                 BatchCounts* counts) {
  std::vector<std::string> out;
  out.reserve(batch.slots.size());
  std::size_t item = 0;
  for (const auto& slot : batch.slots) {
    if (slot.blank) {
      out.emplace_back();
      continue;
    }
    nlohmann::ordered_json reply;
    if (!result) {
      // Nothing of this batch is stored: the sender must send it again.
      reply = {{"ok", false}, {"line", slot.line}, {"error", "not stored: " + result.error().message + "; send again"}};
      if (counts) ++counts->failed;
    } else if (!slot.error.empty()) {
      reply = {{"ok", false}, {"line", slot.line}, {"error", slot.error}};
      if (counts) ++counts->rejected;
    } else {
      const auto& outcome = (*result)[item];
      const bool duplicate = outcome.kind == store::WriteOutcome::Kind::duplicate;
      if (counts) ++(duplicate ? counts->duplicates : counts->stored);
      std::string plain;
      if (append_plain_ok_reply(plain, slot.id, duplicate, outcome.version)) {
        ++item;
        out.push_back(std::move(plain));
        continue;
      }
      reply = {{"ok", true}, {"id", slot.id}};
      if (duplicate) reply["duplicate"] = true;
      if (outcome.version > 1) reply["version"] = outcome.version;
    }
    ++item;
    out.push_back(reply.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
  }
  return out;
}

}  // namespace iraewatch::app
