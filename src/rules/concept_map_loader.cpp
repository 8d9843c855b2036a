#include "iraewatch/rules/concept_map_loader.hpp"

#include <yaml-cpp/yaml.h>

#include "yaml_reader.hpp"

#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace iraewatch::rules {

namespace {

core::UnitConversion read_conversion(Reader& r, const YAML::Node& node, const std::string& owner) {
  core::UnitConversion conv;
  if (!node.IsMap()) {
    r.error(node, "wrong-type", "a conversion must be a map such as {from: \"mg/dL\", multiply: 10}", owner);
    return conv;
  }
  r.check_keys(node, {"from", "multiply", "divide", "offset_before"}, owner);
  conv.from = r.string(node, "from", owner);
  const auto multiply = r.number(node, "multiply", owner);
  const auto divide = r.number(node, "divide", owner);
  if (multiply && divide) r.error(node, "conversion", "give 'multiply' or 'divide', not both", owner);
  if (divide && *divide == 0) r.error(node["divide"], "conversion", "'divide' must not be 0", owner);
  if (multiply && *multiply == 0) r.error(node["multiply"], "conversion", "'multiply' must not be 0", owner);
  if (multiply) conv.factor = *multiply;
  if (divide && *divide != 0) conv.factor = 1.0 / *divide;
  conv.offset_before = r.number(node, "offset_before", owner).value_or(0.0);
  return conv;
}

core::Concept read_concept(Reader& r, const YAML::Node& node) {
  core::Concept c;
  c.name = r.string(node, "name", "");
  const std::string& owner = c.name;
  r.check_keys(node, {"name", "display", "kind", "codes", "unit", "unit_optional", "convert", "reference_range"},
               owner);
  c.display = r.string(node, "display", owner, false);
  if (c.display.empty()) c.display = c.name;
  c.kind = r.string(node, "kind", owner);
  if (!c.kind.empty() && c.kind != "lab" && c.kind != "vital" && c.kind != "symptom")
    r.error(node["kind"], "bad-value", "kind must be lab, vital or symptom", owner);
  c.codes = r.codes(node, owner);
  c.unit = r.string(node, "unit", owner);
  c.unit_optional = r.boolean(node, "unit_optional", owner);
  if (const auto conv = node["convert"]) {
    if (!conv.IsSequence()) {
      r.error(conv, "wrong-type", "'convert' must be a list of conversions", owner);
    } else {
      std::set<std::string> seen{c.unit};
      for (const auto& item : conv) {
        auto uc = read_conversion(r, item, owner);
        if (!uc.from.empty() && !seen.insert(uc.from).second)
          r.error(item, "duplicate-unit", "unit '" + uc.from + "' is listed twice", owner);
        c.conversions.push_back(std::move(uc));
      }
    }
  }
  if (const auto range = node["reference_range"]) {
    if (!range.IsMap()) {
      r.error(range, "wrong-type", "'reference_range' must be a map {low: N, high: N}", owner);
    } else {
      r.check_keys(range, {"low", "high"}, owner);
      c.ref_low = r.number(range, "low", owner);
      c.ref_high = r.number(range, "high", owner);
      if (c.ref_low && c.ref_high && *c.ref_low > *c.ref_high)
        r.error(range, "bad-range", "reference range low is above high", owner);
    }
  }
  return c;
}

core::Drug read_drug(Reader& r, const YAML::Node& node) {
  core::Drug d;
  d.inn = r.string(node, "inn", "");
  const std::string& owner = d.inn;
  r.check_keys(node, {"inn", "brands", "targets", "class", "codes"}, owner);
  d.brands = r.strings(node, "brands", owner);
  d.targets = r.strings(node, "targets", owner);
  d.drug_class = r.string(node, "class", owner);
  d.codes = r.codes(node, owner);
  return d;
}

}  // namespace

namespace {
LoadResult read_concept_map(const std::string& text, const std::string& file);
}  // namespace

LoadResult load_concept_map_text(const std::string& text, const std::string& file) {
  try {
    return read_concept_map(text, file);
  } catch (const YAML::Exception& e) {
    // e.g. a key that is not a scalar: still a positioned error, never a crash.
    return std::unexpected(std::vector<Diagnostic>{
        {file, e.mark.line + 1, e.mark.column + 1, Diagnostic::Severity::error, "wrong-type", e.msg, ""}});
  }
}

namespace {

LoadResult read_concept_map(const std::string& text, const std::string& file) {
  Reader r(file);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    return std::unexpected(std::vector<Diagnostic>{
        {file, e.mark.line + 1, e.mark.column + 1, Diagnostic::Severity::error, "yaml-syntax", e.msg, ""}});
  }
  if (!root.IsMap()) {
    r.error(root, "wrong-type", "the file must be a map with 'concepts' and 'drugs'");
    return std::unexpected(std::move(r.diagnostics()));
  }
  r.check_keys(root, {"version", "concepts", "drugs", "code_systems"}, "");

  std::vector<core::Concept> concepts;
  std::vector<core::Drug> drugs;
  std::set<std::string> names, codes, drug_names, drug_codes;

  const auto concept_nodes = root["concepts"];
  if (!concept_nodes || !concept_nodes.IsSequence()) {
    r.error(concept_nodes ? concept_nodes : root, "wrong-type", "'concepts' must be a list");
  } else {
    for (const auto& node : concept_nodes) {
      if (!node.IsMap()) {
        r.error(node, "wrong-type", "a concept must be a map");
        continue;
      }
      auto c = read_concept(r, node);
      if (!c.name.empty() && !names.insert(c.name).second)
        r.error(node, "duplicate-id", "concept '" + c.name + "' is defined twice", c.name);
      for (const auto& code : c.codes)
        if (!codes.insert(core::to_string(code)).second)
          r.error(node["codes"], "duplicate-code", "code '" + core::to_string(code) + "' maps to two concepts", c.name);
      concepts.push_back(std::move(c));
    }
  }

  const auto drug_nodes = root["drugs"];
  if (!drug_nodes || !drug_nodes.IsSequence()) {
    r.error(drug_nodes ? drug_nodes : root, "wrong-type", "'drugs' must be a list");
  } else {
    for (const auto& node : drug_nodes) {
      if (!node.IsMap()) {
        r.error(node, "wrong-type", "a drug must be a map");
        continue;
      }
      auto d = read_drug(r, node);
      std::vector<std::string> all_names{d.inn};
      all_names.insert(all_names.end(), d.brands.begin(), d.brands.end());
      for (const auto& n : all_names)
        if (!n.empty() && !drug_names.insert(core::to_lower(n)).second)
          r.error(node, "duplicate-id", "drug name '" + n + "' is listed twice", d.inn);
      for (const auto& code : d.codes)
        if (!drug_codes.insert(core::to_string(code)).second)
          r.error(node["codes"], "duplicate-code", "drug code '" + core::to_string(code) + "' is listed twice", d.inn);
      drugs.push_back(std::move(d));
    }
  }

  // HL7 v2 coding system names (table 0396) -> the system URIs the codes above use.
  std::map<std::string, std::string, std::less<>> systems;
  if (const auto sys = root["code_systems"]) {
    if (!sys.IsMap()) {
      r.error(sys, "wrong-type", "'code_systems' must be a map of HL7 names to system URIs");
    } else {
      for (const auto& kv : sys) {
        if (!kv.first.IsScalar() || !kv.second.IsScalar() || kv.second.Scalar().empty()) {
          r.error(kv.first, "wrong-type", "a code system maps a name to a non-empty URI");
          continue;
        }
        systems.emplace(kv.first.Scalar(), kv.second.Scalar());
      }
    }
  }

  if (has_errors(r.diagnostics())) return std::unexpected(std::move(r.diagnostics()));
  return core::ConceptMap(std::move(concepts), std::move(drugs), std::move(systems));
}

}  // namespace

LoadResult load_concept_map(const std::string& rules_dir) {
  const std::string path = rules_dir + "/concepts.yaml";
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::unexpected(
        std::vector<Diagnostic>{{path, 0, 0, Diagnostic::Severity::error, "file", "cannot read the concept map", ""}});
  }
  std::ostringstream text;
  text << in.rdbuf();
  return load_concept_map_text(text.str(), path);
}

}  // namespace iraewatch::rules
