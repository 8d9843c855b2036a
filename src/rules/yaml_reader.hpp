#pragma once
// Walks YAML documents and collects positioned diagnostics. Private to the rules module.

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "iraewatch/core/record.hpp"
#include "iraewatch/rules/diagnostic.hpp"

namespace iraewatch::rules {

// Collects diagnostics while walking one YAML document.
class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  void warning(const YAML::Node& at, std::string code, std::string message, std::string owner = {}) {
    const auto mark = at.Mark();
    diagnostics_.push_back({file_, mark.line + 1, mark.column + 1, Diagnostic::Severity::warning, std::move(code),
                            std::move(message), std::move(owner)});
  }

  // An error at a position inside a scalar (e.g. a spot in a condition), given as line/column.
  void error_at(int line, int column, std::string code, std::string message, std::string owner = {}) {
    diagnostics_.push_back(
        {file_, line, column, Diagnostic::Severity::error, std::move(code), std::move(message), std::move(owner)});
  }

  const std::string& file() const { return file_; }

  void error(const YAML::Node& at, std::string code, std::string message, std::string owner = {}) {
    const auto mark = at.Mark();
    diagnostics_.push_back({file_, mark.line + 1, mark.column + 1, Diagnostic::Severity::error, std::move(code),
                            std::move(message), std::move(owner)});
  }

  // Keys not in `allowed` are errors: a typo must not silently drop a setting.
  void check_keys(const YAML::Node& map, std::initializer_list<std::string_view> allowed, const std::string& owner) {
    for (const auto& kv : map) {
      const auto key = kv.first.as<std::string>();
      bool known = false;
      for (auto a : allowed) known = known || a == key;
      if (!known) {
        std::string list;
        for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        error(kv.first, "unknown-key", "unknown key '" + key + "' (allowed: " + list + ")", owner);
      }
    }
  }

  std::string string(const YAML::Node& map, const char* key, const std::string& owner, bool required = true) {
    const auto node = map[key];
    if (!node) {
      if (required) error(map, "missing-key", std::string("missing required key '") + key + "'", owner);
      return {};
    }
    if (!node.IsScalar()) {
      error(node, "wrong-type", std::string("'") + key + "' must be a string", owner);
      return {};
    }
    return node.as<std::string>();
  }

  std::optional<double> number(const YAML::Node& map, const char* key, const std::string& owner) {
    const auto node = map[key];
    if (!node) return std::nullopt;
    double v = 0;
    if (!node.IsScalar() || !YAML::convert<double>::decode(node, v) || !std::isfinite(v)) {
      error(node, "wrong-type", std::string("'") + key + "' must be a number", owner);
      return std::nullopt;
    }
    return v;
  }

  std::vector<std::string> strings(const YAML::Node& map, const char* key, const std::string& owner) {
    std::vector<std::string> out;
    const auto node = map[key];
    if (!node) return out;
    if (!node.IsSequence()) {
      error(node, "wrong-type", std::string("'") + key + "' must be a list of strings", owner);
      return out;
    }
    for (const auto& item : node) {
      if (!item.IsScalar()) {
        error(item, "wrong-type", std::string("items of '") + key + "' must be strings", owner);
        continue;
      }
      out.push_back(item.as<std::string>());
    }
    return out;
  }

  std::vector<core::Code> codes(const YAML::Node& map, const std::string& owner) {
    std::vector<core::Code> out;
    const auto node = map["codes"];
    for (const auto& text : strings(map, "codes", owner)) {
      core::Code code = core::parse_code(text);
      if (code.system.empty() || code.code.empty()) {
        error(node, "code-syntax", "code '" + text + "' must be SYSTEM|CODE", owner);
        continue;
      }
      out.push_back(std::move(code));
    }
    return out;
  }

  bool boolean(const YAML::Node& map, const char* key, const std::string& owner) {
    const auto node = map[key];
    if (!node) return false;
    bool v = false;
    if (!node.IsScalar() || !YAML::convert<bool>::decode(node, v)) {
      error(node, "wrong-type", std::string("'") + key + "' must be true or false", owner);
      return false;
    }
    return v;
  }

  std::vector<Diagnostic>& diagnostics() { return diagnostics_; }

 private:
  std::string file_;
  std::vector<Diagnostic> diagnostics_;
};

}  // namespace iraewatch::rules
