#pragma once
// Reads rules/concepts.yaml into a validated core::ConceptMap. Every problem in the file is
// reported in one pass; a file with any error yields no map.

#include <expected>
#include <string>
#include <vector>

#include "iraewatch/core/concept_map.hpp"
#include "iraewatch/rules/diagnostic.hpp"

namespace iraewatch::rules {

using LoadResult = std::expected<core::ConceptMap, std::vector<Diagnostic>>;

// `file` names the text in diagnostics; `text` is the YAML itself.
LoadResult load_concept_map_text(const std::string& text, const std::string& file);

// Reads DIR/concepts.yaml.
LoadResult load_concept_map(const std::string& rules_dir);

}  // namespace iraewatch::rules
