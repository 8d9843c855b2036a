#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "iraewatch/app/ingest_pipeline.hpp"

// The replies to NDJSON lines (docs/records.md): one per line, in order, after the commit. Plain
// ids are written without building a JSON document; every reply must read back as the JSON a
// client expects, byte for byte what nlohmann writes for it.

using namespace iraewatch;

namespace {

std::string reference_ok(const std::string& id, bool duplicate, int version) {
  nlohmann::ordered_json j = {{"ok", true}, {"id", id}};
  if (duplicate) j["duplicate"] = true;
  if (version > 1) j["version"] = version;
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

app::PreparedBatch accepted(const std::vector<std::string>& ids) {
  app::PreparedBatch batch;
  std::uint64_t line = 0;
  for (const auto& id : ids) batch.slots.push_back({++line, false, id, ""});
  return batch;
}

}  // namespace

TEST_CASE("replies to accepted lines carry the id, duplicate and version, as JSON", "[app]") {
  const std::vector<std::string> ids = {"obs-1",
                                        "a b/c:d-9",
                                        "quote\"inside",
                                        "back\\slash",
                                        "tab\there",
                                        "caf\xc3\xa9",  // é: not plain ASCII
                                        ""};
  const auto batch = accepted(ids);
  std::vector<store::WriteOutcome> outcomes;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const bool duplicate = i % 3 == 1;
    outcomes.push_back({duplicate ? store::WriteOutcome::Kind::duplicate : store::WriteOutcome::Kind::stored,
                        static_cast<int>(i % 4) + 1});
  }
  app::BatchCounts counts;
  const auto replies = app::IngestPipeline::replies(batch, store::WriteResult{outcomes}, &counts);
  REQUIRE(replies.size() == ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const bool duplicate = outcomes[i].kind == store::WriteOutcome::Kind::duplicate;
    INFO("id " << ids[i]);
    CHECK(replies[i] == reference_ok(ids[i], duplicate, outcomes[i].version));
    const auto parsed = nlohmann::json::parse(replies[i]);
    CHECK(parsed["id"] == ids[i]);
    CHECK(parsed.value("duplicate", false) == duplicate);
  }
  CHECK(replies[0] == R"({"ok":true,"id":"obs-1"})");
  CHECK(replies[1] == R"({"ok":true,"id":"a b/c:d-9","duplicate":true,"version":2})");
  CHECK(replies[2] == R"({"ok":true,"id":"quote\"inside","version":3})");
  CHECK(counts.stored == 5);
  CHECK(counts.duplicates == 2);
}

TEST_CASE("replies to rejected and blank lines, and to a batch that was not stored", "[app]") {
  app::PreparedBatch batch;
  batch.slots.push_back({1, false, "r1", ""});
  batch.slots.push_back({2, true, "", ""});
  batch.slots.push_back({3, false, "", "line 3: \"value\" is not a number"});
  const std::vector<store::WriteOutcome> outcomes = {{store::WriteOutcome::Kind::stored, 1},
                                                     {store::WriteOutcome::Kind::rejection_stored, 0}};

  app::BatchCounts counts;
  const auto stored = app::IngestPipeline::replies(batch, store::WriteResult{outcomes}, &counts);
  REQUIRE(stored.size() == 3);
  CHECK(stored[0] == R"({"ok":true,"id":"r1"})");
  CHECK(stored[1].empty());
  CHECK(stored[2] == R"({"ok":false,"line":3,"error":"line 3: \"value\" is not a number"})");
  CHECK(counts.stored == 1);
  CHECK(counts.rejected == 1);

  app::BatchCounts failed_counts;
  const auto failed = app::IngestPipeline::replies(
      batch, store::WriteResult{std::unexpected(core::Error{core::ErrorCode::store_unavailable, "disk full"})},
      &failed_counts);
  REQUIRE(failed.size() == 3);
  CHECK(failed[0] == R"({"ok":false,"line":1,"error":"not stored: disk full; send again"})");
  CHECK(failed[1].empty());
  CHECK(failed[2] == R"({"ok":false,"line":3,"error":"not stored: disk full; send again"})");
  CHECK(failed_counts.failed == 2);
}
