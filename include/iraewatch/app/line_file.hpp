#pragma once
// How the command-line tools read their input files: lines from a file or standard input ("-"),
// numbered from 1, without their CR/LF (NDJSON); a whole file (HL7 v2); and a file's format
// told from its name.

#include <cstdint>
#include <fstream>
#include <istream>
#include <memory>
#include <string>

#include "iraewatch/core/error.hpp"

namespace iraewatch::app {

// "hl7" for a name ending in .hl7, "ndjson" for .ndjson, .jsonl or .json (in any letter case);
// otherwise (and for "-") "".
std::string format_by_name(const std::string& name);

// The format to read `name` in: `forced` when set, else by its name; standard input ("-") with no
// format given is NDJSON. "" when it cannot be told.
std::string input_format(const std::string& name, const std::string& forced);

// The whole content of a file, or of standard input for "-".
core::Result<std::string> read_whole(const std::string& name);

class LineFile {
 public:
  static core::Result<LineFile> open(const std::string& name);

  // The next line into `line`; false at the end.
  bool next(std::string& line);
  std::uint64_t line_number() const { return line_number_; }

 private:
  LineFile() = default;
  std::unique_ptr<std::ifstream> file_;  // null for standard input
  std::istream* in_ = nullptr;
  std::uint64_t line_number_ = 0;
};

}  // namespace iraewatch::app
