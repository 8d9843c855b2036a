#include "iraewatch/app/line_file.hpp"

#include <cctype>
#include <iostream>
#include <iterator>

namespace iraewatch::app {

namespace {

bool ends_with_ignoring_case(const std::string& name, std::string_view suffix) {
  if (name.size() < suffix.size()) return false;
  for (std::size_t i = 0; i < suffix.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[name.size() - suffix.size() + i]);
    if (std::tolower(c) != suffix[i]) return false;
  }
  return true;
}

}  // namespace

std::string format_by_name(const std::string& name) {
  if (ends_with_ignoring_case(name, ".hl7")) return "hl7";
  for (std::string_view ext : {".ndjson", ".jsonl", ".json"})
    if (ends_with_ignoring_case(name, ext)) return "ndjson";
  return "";
}

std::string input_format(const std::string& name, const std::string& forced) {
  if (!forced.empty()) return forced;
  if (name == "-") return "ndjson";
  return format_by_name(name);
}

core::Result<std::string> read_whole(const std::string& name) {
  std::string text;
  if (name == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    if (std::cin.bad()) return core::fail(core::ErrorCode::io, "cannot read standard input");
    return text;
  }
  std::ifstream in(name, std::ios::binary);
  if (!in) return core::fail(core::ErrorCode::io, "cannot read '" + name + "'");
  text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (in.bad()) return core::fail(core::ErrorCode::io, "cannot read '" + name + "'");
  return text;
}

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
