#include "iraewatch/rules/concept_map_loader.hpp"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

namespace iraewatch::rules {

namespace {

// Collects diagnostics while walking one YAML document.
class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  void error(const YAML::Node& at, std::string code, std::string message, std::string owner = {}) {
    const auto mark = at.Mark();
    diagnostics_.push_back({file_, mark.line + 1, mark.column + 1, Diagnostic::Severity::error,
                            std::move(code), std::move(message), std::move(owner)});
  }

  // Keys not in `allowed` are errors: a typo must not silently drop a setting.
  void check_keys(const YAML::Node& map, std::initializer_list<std::string_view> allowed,
                  const std::string& owner) {
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

  std::string string(const YAML::Node& map, const char* key, const std::string& owner,
                     bool required = true) {
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
  r.check_keys(node, {"name", "display", "kind", "codes", "unit", "unit_optional", "convert", "reference_range"}, owner);
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

LoadResult load_concept_map_text(const std::string& text, const std::string& file) {
  Reader r(file);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    return std::unexpected(std::vector<Diagnostic>{{file, e.mark.line + 1, e.mark.column + 1,
                                                    Diagnostic::Severity::error, "yaml-syntax", e.msg, ""}});
  }
  if (!root.IsMap()) {
    r.error(root, "wrong-type", "the file must be a map with 'concepts' and 'drugs'");
    return std::unexpected(std::move(r.diagnostics()));
  }
  r.check_keys(root, {"version", "concepts", "drugs"}, "");

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

  if (has_errors(r.diagnostics())) return std::unexpected(std::move(r.diagnostics()));
  return core::ConceptMap(std::move(concepts), std::move(drugs));
}

LoadResult load_concept_map(const std::string& rules_dir) {
  const std::string path = rules_dir + "/concepts.yaml";
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::unexpected(std::vector<Diagnostic>{
        {path, 0, 0, Diagnostic::Severity::error, "file", "cannot read the concept map", ""}});
  }
  std::ostringstream text;
  text << in.rdbuf();
  return load_concept_map_text(text.str(), path);
}

}  // namespace iraewatch::rules
