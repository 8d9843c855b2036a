#include "iraewatch/app/rule_loading.hpp"

#include <cstdio>
#include <fstream>

#include "iraewatch/rules/rule_set_loader.hpp"

namespace iraewatch::app {

std::string format_with_source(const rules::Diagnostic& d) {
  std::string out = rules::format(d);
  if (d.line <= 0) return out;
  std::ifstream in(d.file);
  std::string line;
  for (int i = 0; i < d.line && std::getline(in, line); ++i) {
  }
  if (!in) return out;
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
