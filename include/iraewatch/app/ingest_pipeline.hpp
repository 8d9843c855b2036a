#pragma once
// The one path from received lines to stored items and back to replies, shared by `serve` (TCP)
// and `ingest` (files): parse each line, turn failures into rejections kept with their reason,
// and after the commit, build one reply per line.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "iraewatch/core/concept_map.hpp"
#include "iraewatch/ingest/ndjson_parser.hpp"
#include "iraewatch/store/writer.hpp"

namespace iraewatch::app {

struct InputLine {
  std::uint64_t number = 0;  // 1-based position in its source
  std::string text;
  bool too_long = false;  // text is only a prefix of a line over the size limit
  std::size_t limit = 0;  // the limit it passed, for the message
};

// A batch ready for the writer, and what is needed to answer it.
struct PreparedBatch {
  struct Slot {
    std::uint64_t line = 0;
    bool blank = false;  // no item, no reply
    std::string id;      // the record id, for accepted lines
    std::string error;   // the parse error, for rejected lines
  };
  std::vector<store::WriteItem> items;  // one per non-blank slot, in order
  std::vector<Slot> slots;
};

struct BatchCounts {
  std::size_t stored = 0, duplicates = 0, rejected = 0, failed = 0;
};

class IngestPipeline {
 public:
  IngestPipeline(const core::ConceptMap& concepts, std::string feed);

  // `source_is_stream`: a TCP connection (closed after an over-long line), not a file.
  PreparedBatch prepare(std::string_view source, std::vector<InputLine> lines, bool source_is_stream = false) const;

  // One JSON reply per slot ("" for blank lines), per docs/records.md.
  static std::vector<std::string> replies(const PreparedBatch& batch, const store::WriteResult& result,
                                          BatchCounts* counts = nullptr);

  const std::string& feed() const { return feed_; }

 private:
  ingest::NdjsonParser parser_;
  std::string feed_;
};

}  // namespace iraewatch::app
