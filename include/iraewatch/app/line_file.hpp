#pragma once
// Lines from a file or standard input ("-"), numbered from 1, without their CR/LF: how the
// command-line tools read NDJSON.

#include <cstdint>
#include <fstream>
#include <istream>
#include <memory>
#include <string>

#include "iraewatch/core/error.hpp"

namespace iraewatch::app {

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
