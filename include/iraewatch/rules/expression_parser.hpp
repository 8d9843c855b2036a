#pragma once
// Parses and type-checks condition text into an Expression (expression.hpp). Pure; problems come
// back as data with their offset in the text.

#include <expected>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "iraewatch/core/concept_map.hpp"
#include "iraewatch/rules/expression.hpp"

namespace iraewatch::rules {

struct ExpressionError {
  int offset = 0;    // 0-based position in the text
  std::string code;  // "syntax", "unknown-concept", "unknown-function", "unit-mismatch", ...
  std::string message;
};

// Named macros (expression text) and lists (concept names) visible to a condition.
struct Definitions {
  std::map<std::string, std::string> macros;
  std::map<std::string, std::vector<std::string>> lists;
};

class ExpressionParser {
 public:
  ExpressionParser(const core::ConceptMap& concepts, const Definitions& definitions);

  // A condition: must be boolean.
  std::expected<Expression, std::vector<ExpressionError>> parse_condition(const std::string& text);
  // Any well-typed expression (for summary templates).
  std::expected<Expression, std::vector<ExpressionError>> parse_value(const std::string& text);

  // Macros and lists referenced so far by any parse (for the unused-macro warning).
  const std::set<std::string>& used_definitions() const { return used_; }

 private:
  std::expected<Expression, std::vector<ExpressionError>> parse(const std::string& text, bool condition);

  const core::ConceptMap& concepts_;
  const Definitions& definitions_;
  std::map<std::string, Node> compiled_macros_;
  std::set<std::string> expanding_;  // cycle detection
  std::set<std::string> used_;
};

// Collects the concepts an expression reads.
void collect_inputs(const Node& node, std::set<std::string>& out);

}  // namespace iraewatch::rules
