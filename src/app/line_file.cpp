#include "iraewatch/app/line_file.hpp"

#include <iostream>

namespace iraewatch::app {

core::Result<LineFile> LineFile::open(const std::string& name) {
  LineFile f;
  if (name == "-") {
    f.in_ = &std::cin;
    return f;
  }
  f.file_ = std::make_unique<std::ifstream>(name, std::ios::binary);
  if (!*f.file_) return core::fail(core::ErrorCode::io, "cannot read '" + name + "'");
  f.in_ = f.file_.get();
  return f;
}

bool LineFile::next(std::string& line) {
  if (!std::getline(*in_, line)) return false;
  ++line_number_;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return true;
}

}  // namespace iraewatch::app
