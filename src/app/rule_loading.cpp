#include "iraewatch/app/rule_loading.hpp"

#include <cstdio>
#include <fstream>
#include <map>
#include <vector>

#include "iraewatch/rules/rule_set_loader.hpp"

namespace iraewatch::app {

namespace {

// The lines of a file, read once however many diagnostics point into it.
const std::vector<std::string>& lines_of(const std::string& file) {
  static std::map<std::string, std::vector<std::string>> cache;
  auto [it, added] = cache.try_emplace(file);
  if (added) {
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);) it->second.push_back(line);
  }
  return it->second;
}

}  // namespace

std::string format_with_source(const rules::Diagnostic& d) {
  std::string out = rules::format(d);
  if (d.line <= 0) return out;
  const auto& lines = lines_of(d.file);
  if (static_cast<std::size_t>(d.line) > lines.size()) return out;
  const std::string& line = lines[static_cast<std::size_t>(d.line - 1)];
  out += "\n  " + line + "\n  ";
  for (int i = 1; i < d.column && static_cast<std::size_t>(i - 1) < line.size(); ++i)
    out += line[static_cast<std::size_t>(i - 1)] == '\t' ? '\t' : ' ';
  out += "^";
  return out;
}

std::shared_ptr<const rules::RuleSet> load_rules_or_report(const Config& config) {
  auto loaded = rules::load_rule_set(effective_rules_dir(config));
  for (const auto& d : loaded.diagnostics)
    if (d.severity == rules::Diagnostic::Severity::error) std::fprintf(stderr, "%s\n", format_with_source(d).c_str());
  if (!loaded.rules)
    std::fprintf(stderr, "iraewatch: the rules in %s do not load; run 'iraewatch check' for details\n",
                 effective_rules_dir(config).c_str());
  return loaded.rules;
}

}  // namespace iraewatch::app
