// `iraewatch check [PATH...]`: validates rule folders or files and reports every problem.

#include <cstdio>
#include <filesystem>

#include "iraewatch/app/commands.hpp"
#include "iraewatch/app/rule_loading.hpp"
#include "iraewatch/rules/rule_set_loader.hpp"

namespace iraewatch::app {

int run_check(const Config& config, const std::vector<std::string>& paths_in) {
  std::vector<std::string> paths = paths_in;
  if (paths.empty()) paths.push_back(effective_rules_dir(config));
  std::vector<std::string> files;
  std::vector<rules::LoadedRuleSet> results;
  for (const auto& p : paths) {
    if (!std::filesystem::exists(p)) {
      std::printf("%s: error: [file] no such file or folder\n1 error, 0 warnings\n", p.c_str());
      return 1;
    }
    if (std::filesystem::is_directory(p))
      results.push_back(rules::load_rule_set(p));
    else
      files.push_back(p);
  }
  if (!files.empty()) results.push_back(rules::load_rule_files(files));
  int errors = 0, warnings = 0;
  std::size_t rule_count = 0, disabled = 0;
  for (const auto& r : results) {
    for (const auto& d : r.diagnostics) {
      std::printf("%s\n", format_with_source(d).c_str());
      (d.severity == rules::Diagnostic::Severity::error ? errors : warnings)++;
    }
    if (r.rules)
      for (const auto& rule : r.rules->rules) (rule.enabled ? rule_count : disabled)++;
  }
  std::printf("%d error%s, %d warning%s", errors, errors == 1 ? "" : "s", warnings, warnings == 1 ? "" : "s");
  if (errors == 0) std::printf("; %zu rules ok", rule_count);
  if (errors == 0 && disabled > 0) std::printf(" (%zu disabled)", disabled);
  std::printf("\n");
  return errors > 0 ? 1 : 0;
}

}  // namespace iraewatch::app
