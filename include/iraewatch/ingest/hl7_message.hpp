#pragma once
// An HL7 v2 (ER7, pipe-delimited) message, split without copying: the Message keeps views into
// the caller's text, which must outlive it. Versions 2.3 to 2.8. Delimiters come from MSH-1 and
// MSH-2 (two to five encoding characters, so a message whose MSH-2 is "^~&" works: with three, an
// '&' third is the subcomponent separator and there is no escape character); segments end
// with CR, LF or CRLF; a leading UTF-8 BOM is skipped. Escapes are decoded only when asked for,
// by text(). Positions follow HL7's numbering: fields, components and subcomponents are 1-based,
// repetitions 0-based; for MSH, field 1 is the field separator itself and field 2 the encoding
// characters, so MSH-9 is msg.raw(0, 9) as the standard names it.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "iraewatch/core/error.hpp"

namespace iraewatch::ingest::hl7 {

struct Delimiters {
  char field = '|';
  char component = '^';
  char repetition = '~';
  char escape = '\\';       // '\0' when MSH-2 has none
  char subcomponent = '&';  // '\0' when MSH-2 has none
  char truncation = '\0';   // 2.7+: the fifth encoding character, when present
};

// A position inside a message: segment index, field, repetition, component, subcomponent.
// component 0 means the whole repetition; subcomponent 0 the whole component (a subcomponent asked
// for with component 0 is read from component 1). Field 0 is the segment id. MSH-1 and MSH-2 are
// never split: only their repetition 0, component 0 or 1, subcomponent 0 or 1 exist. Negative or
// out-of-range values of any member give an empty value, never a crash.
struct Position {
  std::size_t segment = 0;
  int field = 0;
  int repetition = 0;
  int component = 0;
  int subcomponent = 0;
};

class Message {
 public:
  // Splits the text into segments. Errors (ErrorCode::invalid_input, with where and why): empty
  // input, no MSH segment first, an MSH too short to carry its delimiters, invalid encoding
  // characters (repeated, or alphanumeric), a segment id that is not three upper-case letters or
  // digits followed by the field separator (so junk lines such as "||||" are rejected, not
  // skipped), a second MSH or a batch FHS/BHS/BTS/FTS segment (use split_messages()). Blank lines,
  // and lines of only whitespace (spaces, tabs, a stray vertical tab), are skipped. Error messages
  // number segments from 1, as a person counts them: "segment 8 ('||||'): not a segment ...".
  static core::Result<Message> parse(std::string_view text);

  const Delimiters& delimiters() const { return delimiters_; }
  std::string_view text() const { return text_; }  // without the BOM, as given otherwise

  std::size_t segment_count() const { return segments_.size(); }
  std::string_view segment(std::size_t index) const { return segments_[index]; }  // the whole segment
  std::string_view segment_id(std::size_t index) const { return segments_[index].substr(0, 3); }
  // Indexes of the segments with this id, in order.
  std::vector<std::size_t> find(std::string_view id) const;
  // The first segment with this id at or after `from`, or segment_count().
  std::size_t next(std::string_view id, std::size_t from = 0) const;

  // The raw (still escaped) value at a position; empty when absent.
  std::string_view raw(const Position& at) const;
  std::string_view raw(std::size_t segment, int field, int repetition = 0, int component = 0,
                       int subcomponent = 0) const {
    return raw(Position{segment, field, repetition, component, subcomponent});
  }
  // The decoded value (escape sequences resolved, see unescape()).
  std::string text(const Position& at) const;
  std::string text(std::size_t segment, int field, int repetition = 0, int component = 0, int subcomponent = 0) const {
    return text(Position{segment, field, repetition, component, subcomponent});
  }
  // How many repetitions a field has (0 when the field is absent or empty).
  int repetitions(std::size_t segment, int field) const;
  // How many fields a segment has (for MSH, counting MSH-1).
  int field_count(std::size_t segment) const;
  // HL7's explicit null: the value is exactly "" (two double quotes), which means "delete this
  // value", unlike an empty field, which means "not sent".
  bool is_null(const Position& at) const { return raw(at) == "\"\""; }

 private:
  // A whole field: segment 0 is the only MSH, whose field 1 is the separator itself and field 2
  // the encoding characters, neither split any further (`atomic`).
  struct Field {
    std::string_view value;
    bool atomic = false;
  };
  Field field_of(std::size_t segment, int field) const;

  std::string_view text_;
  Delimiters delimiters_;
  std::vector<std::string_view> segments_;
  // Where each segment's field separators are (offsets within the segment), so that a field is
  // found without scanning: segment i's are separators_[first_separator_[i] .. first_separator_[i + 1]).
  std::vector<std::uint32_t> separators_;
  std::vector<std::uint32_t> first_separator_;
};

// Resolves \F\ \S\ \T\ \R\ \E\ (the delimiters), \P\ (2.7's truncation character, when MSH-2
// has one), \Xhh...\ (bytes given in hex), \.br\ (a line break, as '\n'); other escapes are
// dropped: \H\ \N\ highlighting, \Zxx\, \Cxxyy\, \Mxxyyzz\ and the other FT layout commands.
// A malformed or unknown escape (no closing escape character, bad hex, an unknown letter) is kept
// as it is. The result is never longer than `raw`.
std::string unescape(std::string_view raw, const Delimiters& delimiters);
// The reverse, for text put into an ACK: delimiters and the escape character are escaped (the
// truncation character as \P\), and CR and LF become \X0D\ and \X0A\. With no escape character
// in `delimiters`, those characters become spaces.
std::string escape(std::string_view text, const Delimiters& delimiters);

// Splits a file (or stream) of messages into messages: a batch FHS/BHS ... BTS/FTS envelope is
// removed, each message starts at an MSH segment. Whatever comes before the first MSH that is
// not a batch header, and blank lines, are ignored. An Error when no MSH is found. Each view runs
// from its MSH to just before the next MSH, batch segment or the end (line ends included); a BOM
// at the start of the file, or of a line (files joined with cat), is not part of any view.
core::Result<std::vector<std::string_view>> split_messages(std::string_view file);

}  // namespace iraewatch::ingest::hl7
