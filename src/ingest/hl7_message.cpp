#include "iraewatch/ingest/hl7_message.hpp"

#include <algorithm>
#include <utility>

namespace iraewatch::ingest::hl7 {
namespace {

using core::ErrorCode;
using core::fail;

constexpr std::string_view kBom = "\xEF\xBB\xBF";
constexpr std::size_t kPreviewBytes = 24;

std::string_view strip_bom(std::string_view text) {
  if (text.starts_with(kBom)) text.remove_prefix(kBom.size());
  return text;
}

// A line made only of spaces, tabs, vertical tabs or form feeds carries nothing and is skipped like
// an empty one (hand-edited files, a stray MLLP start byte on its own line).
bool is_blank(std::string_view line) {
  return std::all_of(line.begin(), line.end(), [](char c) { return c == ' ' || c == '\t' || c == '\v' || c == '\f'; });
}

bool is_upper_or_digit(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool is_alnum(char c) {
  return is_upper_or_digit(c) || (c >= 'a' && c <= 'z');
}
// A delimiter must be a visible ASCII character that cannot occur in a segment id or a number.
bool is_valid_delimiter(char c) {
  return c > ' ' && c < 0x7F && !is_alnum(c);
}

// Calls `on_line(line)` for each line, whatever ends it: CR, LF or CRLF.
template <typename F>
void for_each_line(std::string_view text, F&& on_line) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    // (A plain loop: find_first_of would search the two-character set once per byte.)
    std::size_t end = pos;
    while (end < text.size() && text[end] != '\r' && text[end] != '\n') ++end;
    on_line(text.substr(pos, end - pos));
    if (end < text.size() && text[end] == '\r' && end + 1 < text.size() && text[end + 1] == '\n') ++end;
    pos = end + 1;
  }
}

// The start of a line whose first three characters are `id` and whose fourth, if any, is not a
// letter or digit (so "MSHX|" is not an MSH).
bool starts_segment(std::string_view line, std::string_view id) {
  return line.starts_with(id) && (line.size() == id.size() || !is_alnum(line[id.size()]));
}

bool is_batch_header(std::string_view line) {
  return starts_segment(line, "FHS") || starts_segment(line, "BHS");
}
bool is_batch_trailer(std::string_view line) {
  return starts_segment(line, "BTS") || starts_segment(line, "FTS");
}

// Printable for an error message: at most kPreviewBytes bytes, other bytes as \xNN.
std::string preview(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < kPreviewBytes; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  if (s.size() > kPreviewBytes) out += "...";
  return out;
}

std::string describe_char(char c) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  const auto u = static_cast<unsigned char>(c);
  if (u > 0x20 && u < 0x7F) return std::string("'") + c + "'";
  return std::string("byte 0x") + kHex[u >> 4] + kHex[u & 0xF];
}

// Piece `n` (0-based) of `s` split on `delimiter`; empty when there are not that many pieces. A
// '\0' delimiter means "not defined": the whole text is piece 0 and there is no other. The loop
// stops at the last delimiter, so a huge `n` costs no more than the length of `s`.
// (A plain loop: fields are short, and a library search per delimiter costs more than it saves.)
std::string_view piece(std::string_view s, char delimiter, int n) {
  if (n < 0) return {};
  if (delimiter == '\0') return n == 0 ? s : std::string_view{};
  std::size_t begin = 0;
  const std::size_t size = s.size();
  for (int i = 0; i < n; ++i) {
    while (begin < size && s[begin] != delimiter) ++begin;
    if (begin == size) return {};
    ++begin;
  }
  std::size_t end = begin;
  while (end < size && s[end] != delimiter) ++end;
  return s.substr(begin, end - begin);
}

core::Result<Delimiters> read_delimiters(std::string_view msh) {
  if (msh.size() < 4)
    return fail(ErrorCode::invalid_input,
                "segment 1 (MSH) is too short to carry its delimiters: 'MSH' must be followed by the field "
                "separator and 2 to 5 encoding characters");
  Delimiters d;
  d.field = msh[3];
  if (!is_valid_delimiter(d.field))
    return fail(ErrorCode::invalid_input, "segment 1 (MSH), MSH-1: the field separator " + describe_char(d.field) +
                                              " is not a visible ASCII character other than a letter or digit");
  std::string_view enc = msh.substr(4);
  enc = enc.substr(0, enc.find(d.field));
  if (enc.size() < 2 || enc.size() > 5)
    return fail(ErrorCode::invalid_input, "segment 1 (MSH), MSH-2 has " + std::to_string(enc.size()) +
                                              " encoding character(s) ('" + preview(enc) +
                                              "'), but 2 to 5 are needed (component, repetition, escape, "
                                              "subcomponent, truncation)");
  for (std::size_t i = 0; i < enc.size(); ++i) {
    const char c = enc[i];
    if (!is_valid_delimiter(c))
      return fail(ErrorCode::invalid_input, "segment 1 (MSH), MSH-2: encoding character " + describe_char(c) +
                                                " is not a visible ASCII character other than a letter or digit");
    if (enc.find(c) != i)  // (the field separator cannot be among them: it ends MSH-2)
      return fail(ErrorCode::invalid_input, "segment 1 (MSH), MSH-2: encoding character " + describe_char(c) +
                                                " is used twice (the delimiters must all differ)");
  }
  d.component = enc[0];
  d.repetition = enc[1];
  d.escape = '\0';
  d.subcomponent = '\0';
  if (enc.size() == 3) {
    // Three characters are, in practice, "^~&" from a sender that lost the backslash: '&' is read
    // as the subcomponent separator, as the sender meant, rather than as an escape character.
    if (enc[2] == '&') {
      d.subcomponent = enc[2];
    } else {
      d.escape = enc[2];
    }
  } else if (enc.size() >= 4) {
    d.escape = enc[2];
    d.subcomponent = enc[3];
    if (enc.size() == 5) d.truncation = enc[4];
  }
  return d;
}

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}
int hex_value(char c) {
  if (c <= '9') return c - '0';
  if (c <= 'F') return c - 'A' + 10;
  return c - 'a' + 10;
}

bool all_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), is_hex);
}

// Escapes that only format text: highlighting (\H\ \N\), character sets (\Cxxyy\ \Mxxyy[zz]\),
// locally defined ones (\Z...\) and FT layout commands other than \.br\. They are dropped.
bool is_formatting_escape(std::string_view body) {
  if (body == "H" || body == "N") return true;
  if (body.size() >= 2 && body[0] == 'Z') return true;
  if (body.size() == 5 && body[0] == 'C' && all_hex(body.substr(1))) return true;
  if ((body.size() == 5 || body.size() == 7) && body[0] == 'M' && all_hex(body.substr(1))) return true;
  for (std::string_view command : {".sp", ".fi", ".nf", ".in", ".ti", ".sk", ".ce"})
    if (body.starts_with(command)) return true;
  return false;
}

}  // namespace

core::Result<Message> Message::parse(std::string_view text) {
  Message m;
  m.text_ = strip_bom(text);
  std::vector<std::string_view> lines;
  for_each_line(m.text_, [&](std::string_view line) {
    if (!is_blank(line)) lines.push_back(line);
  });
  if (lines.empty())
    return fail(ErrorCode::invalid_input, "empty message: no segment in " + std::to_string(text.size()) + " bytes");
  const std::string_view first = lines.front();
  if (!first.starts_with("MSH")) {
    if (is_batch_header(first))
      return fail(ErrorCode::invalid_input, "segment 1 is a batch header (" + std::string(first.substr(0, 3)) +
                                                "), not MSH: split the batch into messages first");
    return fail(ErrorCode::invalid_input,
                "segment 1 ('" + preview(first) + "') is not MSH: an HL7 v2 message starts with an MSH segment");
  }
  auto delimiters = read_delimiters(first);
  if (!delimiters) return std::unexpected(std::move(delimiters.error()));
  m.delimiters_ = *delimiters;

  for (std::size_t i = 1; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    const auto where = [i] { return "segment " + std::to_string(i + 1); };
    const bool has_id = line.size() >= 3 && is_upper_or_digit(line[0]) && is_upper_or_digit(line[1]) &&
                        is_upper_or_digit(line[2]) && (line.size() == 3 || line[3] == m.delimiters_.field);
    if (!has_id)
      return fail(ErrorCode::invalid_input, where() + " ('" + preview(line) +
                                                "'): not a segment: a segment starts with an id of three upper-case "
                                                "letters or digits, then the field separator '" +
                                                m.delimiters_.field + "'");
    const std::string_view id = line.substr(0, 3);
    if (id == "MSH")
      return fail(
          ErrorCode::invalid_input,
          where() + " (MSH): a second MSH: the text holds more than one message (split it with split_messages)");
    if (is_batch_header(line) || is_batch_trailer(line))
      return fail(ErrorCode::invalid_input, where() + " (" + std::string(id) +
                                                "): a batch envelope segment inside a message (split the batch with "
                                                "split_messages)");
  }
  m.segments_ = std::move(lines);
  m.first_separator_.reserve(m.segments_.size() + 1);
  m.separators_.reserve(m.text_.size() / 8);
  const char field = m.delimiters_.field;
  for (const auto segment : m.segments_) {
    m.first_separator_.push_back(static_cast<std::uint32_t>(m.separators_.size()));
    for (std::size_t at = 0; at < segment.size(); ++at)
      if (segment[at] == field) m.separators_.push_back(static_cast<std::uint32_t>(at));
  }
  m.first_separator_.push_back(static_cast<std::uint32_t>(m.separators_.size()));
  return m;
}

Message::Field Message::field_of(std::size_t segment, int field) const {
  const std::string_view seg = segments_[segment];
  const bool msh = segment == 0;
  if (field < 0) return {};
  if (field == 0) return {seg.substr(0, 3), true};
  if (msh && field == 1) return {seg.substr(3, 1), true};
  // Piece n of the segment split on the field separator: from just after separator n-1 to
  // separator n (or the end).
  const std::size_t n = static_cast<std::size_t>(msh ? field - 1 : field);
  const std::size_t first = first_separator_[segment], count = first_separator_[segment + 1] - first;
  if (n > count) return {};
  const std::size_t begin = separators_[first + n - 1] + 1;
  const std::size_t end = n < count ? separators_[first + n] : seg.size();
  return {seg.substr(begin, end - begin), msh && field == 2};
}

std::vector<std::size_t> Message::find(std::string_view id) const {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < segments_.size(); ++i)
    if (segment_id(i) == id) out.push_back(i);
  return out;
}

std::size_t Message::next(std::string_view id, std::size_t from) const {
  for (std::size_t i = from; i < segments_.size(); ++i)
    if (segment_id(i) == id) return i;
  return segments_.size();
}

std::string_view Message::raw(const Position& at) const {
  if (at.segment >= segments_.size() || at.repetition < 0 || at.component < 0 || at.subcomponent < 0) return {};
  const auto [field, atomic] = field_of(at.segment, at.field);
  if (atomic) return at.repetition == 0 && at.component <= 1 && at.subcomponent <= 1 ? field : std::string_view{};
  const std::string_view repetition = piece(field, delimiters_.repetition, at.repetition);
  if (at.component == 0 && at.subcomponent == 0) return repetition;
  // A subcomponent asked for without a component is taken from the first component: "a&b" is
  // component 1 with two subcomponents.
  const std::string_view component = piece(repetition, delimiters_.component, std::max(at.component, 1) - 1);
  if (at.subcomponent == 0) return component;
  return piece(component, delimiters_.subcomponent, at.subcomponent - 1);
}

std::string Message::text(const Position& at) const {
  return unescape(raw(at), delimiters_);
}

int Message::repetitions(std::size_t segment, int field) const {
  if (segment >= segments_.size()) return 0;
  const auto [value, atomic] = field_of(segment, field);
  if (value.empty()) return 0;
  if (atomic) return 1;
  return static_cast<int>(std::count(value.begin(), value.end(), delimiters_.repetition)) + 1;
}

int Message::field_count(std::size_t segment) const {
  if (segment >= segments_.size()) return 0;
  const auto separators = static_cast<int>(first_separator_[segment + 1] - first_separator_[segment]);
  return segment == 0 ? separators + 1 : separators;
}

std::string unescape(std::string_view raw, const Delimiters& d) {
  if (d.escape == '\0' || raw.find(d.escape) == std::string_view::npos) return std::string(raw);
  std::string out;
  out.reserve(raw.size());
  std::size_t i = 0;
  while (i < raw.size()) {
    const char c = raw[i];
    if (c != d.escape) {
      out += c;
      ++i;
      continue;
    }
    const std::size_t close = raw.find(d.escape, i + 1);
    if (close == std::string_view::npos) {  // no closing escape: kept as it is
      out.append(raw.substr(i));
      break;
    }
    const std::string_view body = raw.substr(i + 1, close - i - 1);
    bool known = true;
    if (body == "F") {
      out += d.field;
    } else if (body == "S") {
      out += d.component;
    } else if (body == "T") {
      out += d.subcomponent != '\0' ? d.subcomponent : '&';
    } else if (body == "R") {
      out += d.repetition;
    } else if (body == "E") {
      out += d.escape;
    } else if (body == "P" && d.truncation != '\0') {
      out += d.truncation;
    } else if (body == ".br") {
      out += '\n';
    } else if (body.size() >= 3 && body[0] == 'X' && body.size() % 2 == 1 && all_hex(body.substr(1))) {
      for (std::size_t h = 1; h < body.size(); h += 2)
        out += static_cast<char>(hex_value(body[h]) * 16 + hex_value(body[h + 1]));
    } else if (!is_formatting_escape(body)) {
      known = false;
    }
    if (known) {
      i = close + 1;
    } else {  // not an escape sequence this parser knows: the escape character is kept as text
      out += c;
      ++i;
    }
  }
  return out;
}

std::string escape(std::string_view text, const Delimiters& d) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const char* code = nullptr;
    if (c == d.field) {
      code = "F";
    } else if (c == d.component) {
      code = "S";
    } else if (c == d.repetition) {
      code = "R";
    } else if (c == '\r') {
      code = "X0D";
    } else if (c == '\n') {
      code = "X0A";
    } else if (c == '\0') {
      out += c;  // never a delimiter, even where an optional one is not defined
      continue;
    } else if (c == d.escape) {
      code = "E";
    } else if (c == d.subcomponent) {
      code = "T";
    } else if (c == d.truncation) {
      code = "P";
    }
    if (code == nullptr) {
      out += c;
    } else if (d.escape == '\0') {
      // Without an escape character a delimiter or line break cannot be carried: a space keeps the
      // message well formed.
      out += ' ';
    } else {
      out += d.escape;
      out += code;
      out += d.escape;
    }
  }
  return out;
}

core::Result<std::vector<std::string_view>> split_messages(std::string_view file) {
  file = strip_bom(file);
  std::vector<std::string_view> messages;
  const char* start = nullptr;  // of the message being collected
  const auto close = [&](const char* end) {
    if (start != nullptr) messages.emplace_back(start, static_cast<std::size_t>(end - start));
    start = nullptr;
  };
  for_each_line(file, [&](std::string_view line) {
    // Files joined with `cat` keep each one's BOM at the start of a line.
    if (line.starts_with(kBom)) line.remove_prefix(kBom.size());
    if (starts_segment(line, "MSH")) {
      close(line.data());
      start = line.data();
    } else if (is_batch_header(line) || is_batch_trailer(line)) {
      close(line.data());
    }
  });
  close(file.data() + file.size());
  if (messages.empty())
    return fail(ErrorCode::invalid_input, "no MSH segment in " + std::to_string(file.size()) +
                                              " bytes: each HL7 v2 message starts with a line beginning 'MSH'");
  return messages;
}

}  // namespace iraewatch::ingest::hl7
