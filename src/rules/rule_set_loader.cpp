#include "iraewatch/rules/rule_set_loader.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "iraewatch/rules/concept_map_loader.hpp"
#include "iraewatch/rules/expression_parser.hpp"
#include "yaml_reader.hpp"

namespace iraewatch::rules {

std::string_view to_string(Severity s) {
  switch (s) {
    case Severity::info:
      return "info";
    case Severity::warning:
      return "warning";
    case Severity::critical:
      return "critical";
  }
  return "info";
}

Severity severity_for_grade(int grade) {
  return grade >= 3 ? Severity::critical : grade == 2 ? Severity::warning : Severity::info;
}

std::int64_t RuleSet::freshness_for(const core::Concept& c) const {
  auto it = settings.freshness_ms.find(c.kind);
  return it == settings.freshness_ms.end() ? settings.history_window_ms : it->second;
}

namespace {

namespace fs = std::filesystem;

struct SourceFile {
  std::string path;
  std::string text;
  std::vector<std::string> lines;
  YAML::Node root;
  bool ok = false;
};

SourceFile read_source(const std::string& path, std::vector<Diagnostic>& out) {
  SourceFile f;
  f.path = path;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    out.push_back({path, 0, 0, Diagnostic::Severity::error, "file", "cannot read the file", ""});
    return f;
  }
  std::ostringstream s;
  s << in.rdbuf();
  f.text = s.str();
  std::istringstream lines(f.text);
  for (std::string line; std::getline(lines, line);) f.lines.push_back(line);
  try {
    f.root = YAML::Load(f.text);
    f.ok = true;
  } catch (const YAML::ParserException& e) {
    out.push_back({path, e.mark.line + 1, e.mark.column + 1, Diagnostic::Severity::error, "yaml-syntax", e.msg, ""});
  }
  return f;
}

// "365 d", "48 h", "90d", "2 wk" -> milliseconds.
std::optional<std::int64_t> parse_duration(const std::string& text) {
  std::size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  if (i == 0) return std::nullopt;
  double v = 0;
  try {
    v = std::stod(text.substr(0, i));
  } catch (...) {
    return std::nullopt;
  }
  std::string unit = text.substr(i);
  unit.erase(0, unit.find_first_not_of(' '));
  double ms;
  if (unit == "s")
    ms = 1000;
  else if (unit == "min")
    ms = 60'000;
  else if (unit == "h")
    ms = 3'600'000;
  else if (unit == "d")
    ms = 86'400'000;
  else if (unit == "wk" || unit == "w")
    ms = 7 * 86'400'000.0;
  else
    return std::nullopt;
  if (v <= 0) return std::nullopt;
  return static_cast<std::int64_t>(v * ms);
}

std::uint64_t fnv1a(std::string_view s, std::uint64_t h = 0xcbf29ce484222325ULL) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// Writes each concept's freshness into the functions that use it when the rule gave no window,
// so that evaluation never looks it up.
void resolve_windows(Node& n, const RuleSet& rs) {
  const bool fresh = n.kind == NodeKind::latest || n.kind == NodeKind::held_for;
  if (fresh && n.window_ms == 0) n.window_ms = rs.freshness_for(*rs.concepts.find_concept(n.concept_name));
  if (n.kind == NodeKind::paired) n.other_window_ms = rs.freshness_for(*rs.concepts.find_concept(n.other_concept));
  for (auto& c : n.children) resolve_windows(c, rs);
}

class Loader {
 public:
  LoadedRuleSet load(const std::string& concepts_path, const std::string& settings_path,
                     const std::vector<std::string>& rule_paths) {
    auto rs = std::make_shared<RuleSet>();
    // Stage 1: the concept map (its own loader) and every YAML file.
    {
      std::ifstream in(concepts_path, std::ios::binary);
      std::ostringstream s;
      if (in) s << in.rdbuf();
      auto map = in ? load_concept_map_text(s.str(), concepts_path)
                    : std::unexpected(std::vector<Diagnostic>{{concepts_path, 0, 0, Diagnostic::Severity::error, "file",
                                                               "cannot read the concept map", ""}});
      if (map) {
        rs->concepts = std::move(*map);
      } else {
        append(map.error());
        concepts_ok_ = false;
      }
      hash_ = fnv1a(s.str(), hash_);
    }
    SourceFile settings = read_source(settings_path, diagnostics_);
    hash_ = fnv1a(settings.text, hash_);
    std::vector<SourceFile> rule_files;
    for (const auto& p : rule_paths) {
      rule_files.push_back(read_source(p, diagnostics_));
      hash_ = fnv1a(rule_files.back().text, hash_);
    }

    // Stage 2: settings and definitions (macros and lists from every file).
    if (settings.ok) read_settings(settings, *rs);
    for (auto& f : rule_files)
      if (f.ok) read_definitions(f, false);

    // Stage 3: compile. Conditions need the concept map; without it only structure is checked.
    ExpressionParser parser(rs->concepts, definitions_);
    if (concepts_ok_) compile_macros(parser, rs->concepts);
    std::set<std::string> ids;
    for (auto& f : rule_files)
      if (f.ok) read_rules(f, *rs, parser, ids);
    if (concepts_ok_) warn_unused(parser);

    // Stage 4: default windows (freshness by concept kind), and the index from concept to the
    // enabled rules that read it.
    for (auto& rule : rs->rules) {
      for (auto& g : rule.grades) resolve_windows(g.when.root, *rs);
      for (auto& part : rule.summary.parts)
        if (part.expr) resolve_windows(part.expr->root, *rs);
    }
    for (std::size_t i = 0; i < rs->rules.size(); ++i) {
      if (!rs->rules[i].enabled) continue;
      for (const auto& c : rs->rules[i].inputs) rs->rules_by_concept[c].push_back(i);
    }
    char hex[17];
    std::snprintf(hex, sizeof hex, "%08llx", static_cast<unsigned long long>(hash_ & 0xffffffffULL));
    rs->version = (rs->version.empty() ? std::string("0") : rs->version) + "+" + hex;

    std::stable_sort(diagnostics_.begin(), diagnostics_.end(), [](const Diagnostic& a, const Diagnostic& b) {
      return std::tie(a.file, a.line, a.column) < std::tie(b.file, b.line, b.column);
    });
    LoadedRuleSet out;
    out.diagnostics = std::move(diagnostics_);
    if (!has_errors(out.diagnostics)) out.rules = std::move(rs);
    return out;
  }

 private:
  void append(const std::vector<Diagnostic>& ds) { diagnostics_.insert(diagnostics_.end(), ds.begin(), ds.end()); }

  void take(Reader& r) { append(r.diagnostics()); }

  std::int64_t duration(Reader& r, const YAML::Node& map, const char* key, std::int64_t fallback) {
    const auto node = map[key];
    if (!node) return fallback;
    auto ms = node.IsScalar() ? parse_duration(node.as<std::string>()) : std::nullopt;
    if (!ms) {
      r.error(node, "wrong-type", std::string("'") + key + "' must be a duration such as 48 h or 365 d");
      return fallback;
    }
    return *ms;
  }

  void read_settings(const SourceFile& f, RuleSet& rs) {
    Reader r(f.path);
    const auto& root = f.root;
    if (!root.IsMap()) {
      r.error(root, "wrong-type", "settings.yaml must be a map");
      take(r);
      return;
    }
    r.check_keys(root, {"ruleset", "settings", "signals", "wording", "macros", "lists"}, "");
    if (const auto rsn = root["ruleset"]) {
      r.check_keys(rsn, {"name", "version"}, "");
      rs.name = r.string(rsn, "name", "");
      rs.version = r.string(rsn, "version", "");
    } else {
      r.error(root, "missing-key", "missing 'ruleset' with name and version");
    }
    rs.settings.freshness_ms = {{"lab", 90LL * 86'400'000}, {"vital", 48LL * 3'600'000}, {"symptom", 48LL * 3'600'000}};
    if (const auto s = root["settings"]) {
      r.check_keys(s, {"ici_exposure_window", "combination_window", "pair_window", "freshness", "history_window"}, "");
      rs.settings.ici_exposure_window_ms = duration(r, s, "ici_exposure_window", rs.settings.ici_exposure_window_ms);
      rs.settings.combination_window_ms = duration(r, s, "combination_window", rs.settings.combination_window_ms);
      rs.settings.pair_window_ms = duration(r, s, "pair_window", rs.settings.pair_window_ms);
      rs.settings.history_window_ms = duration(r, s, "history_window", rs.settings.history_window_ms);
      if (const auto fr = s["freshness"]) {
        r.check_keys(fr, {"lab", "vital", "symptom"}, "");
        for (const char* kind : {"lab", "vital", "symptom"})
          rs.settings.freshness_ms[kind] = duration(r, fr, kind, rs.settings.freshness_ms[kind]);
      }
    }
    if (const auto sig = root["signals"]; sig && sig.IsMap()) {
      for (const auto& kv : sig) {
        Signal s;
        s.name = kv.first.as<std::string>();
        r.check_keys(kv.second, {"title", "ctcae"}, s.name);
        s.title = r.string(kv.second, "title", s.name);
        s.ctcae = r.strings(kv.second, "ctcae", s.name);
        rs.signals[s.name] = std::move(s);
      }
    } else {
      r.error(sig ? sig : root, "wrong-type", "'signals' must map each signal name to its title and CTCAE terms");
    }
    if (const auto w = root["wording"]) {
      r.check_keys(w,
                   {"alert_summary", "resolved_summary", "retracted_summary", "review_note", "combination_note",
                    "no_baseline_note", "default_value", "unknown_value"},
                   "");
      rs.wording.unknown_value = r.string(w, "unknown_value", "", false);
      rs.wording.default_value = r.string(w, "default_value", "", false);
      rs.wording.alert_summary = r.string(w, "alert_summary", "");
      rs.wording.resolved_summary = r.string(w, "resolved_summary", "");
      rs.wording.retracted_summary = r.string(w, "retracted_summary", "");
      rs.wording.review_note = r.string(w, "review_note", "");
      rs.wording.combination_note = r.string(w, "combination_note", "");
      rs.wording.no_baseline_note = r.string(w, "no_baseline_note", "");
    } else {
      r.error(root, "missing-key", "missing 'wording' (review_note, combination_note, no_baseline_note)");
    }
    take(r);
    read_definitions(f, true);
  }

  void read_definitions(const SourceFile& f, bool settings_file) {
    Reader r(f.path);
    if (!f.root.IsMap()) return;
    if (const auto m = f.root["macros"]) {
      if (!m.IsMap())
        r.error(m, "wrong-type", "'macros' must map names to expressions");
      else
        for (const auto& kv : m) {
          const auto name = kv.first.as<std::string>();
          if (!kv.second.IsScalar()) {
            r.error(kv.second, "wrong-type", "macro '" + name + "' must be an expression", name);
            continue;
          }
          if (definitions_.macros.count(name) || definitions_.lists.count(name)) {
            r.error(kv.first, "duplicate-id", "'" + name + "' is defined twice", name);
            continue;
          }
          definitions_.macros[name] = kv.second.as<std::string>();
          macro_sites_[name] = Site{&f, kv.second};
        }
    }
    if (const auto l = f.root["lists"]) {
      if (!l.IsMap())
        r.error(l, "wrong-type", "'lists' must map names to lists of concepts");
      else
        for (const auto& kv : l) {
          const auto name = kv.first.as<std::string>();
          if (definitions_.macros.count(name) || definitions_.lists.count(name)) {
            r.error(kv.first, "duplicate-id", "'" + name + "' is defined twice", name);
            continue;
          }
          if (!kv.second.IsSequence()) {
            r.error(kv.second, "wrong-type", "list '" + name + "' must be a list of concept names", name);
            continue;
          }
          std::vector<std::string> items;
          for (const auto& item : kv.second) items.push_back(item.as<std::string>());
          definitions_.lists[name] = items;
          list_sites_[name] = Site{&f, kv.second};
        }
    }
    (void)settings_file;
    take(r);
  }

  struct Site {
    const SourceFile* file = nullptr;
    YAML::Node node;
  };

  // Maps an offset inside a scalar to a 1-based line and column of its file.
  std::pair<int, int> position(const Site& site, int offset) const {
    const auto mark = site.node.Mark();
    int line = mark.line + 1;
    int column = mark.column + 1 + offset;
    const auto& lines = site.file->lines;
    if (mark.line >= 0 && static_cast<std::size_t>(mark.line) < lines.size()) {
      const auto& text = lines[static_cast<std::size_t>(mark.line)];
      const auto col = static_cast<std::size_t>(mark.column);
      if (col < text.size() && (text[col] == '"' || text[col] == '\'')) ++column;
      if (static_cast<std::size_t>(column - 1) > text.size()) column = mark.column + 1;  // folded scalar
    }
    return {line, column};
  }

  void report(const Site& site, const std::vector<ExpressionError>& errors, const std::string& owner) {
    for (const auto& e : errors) {
      auto [line, column] = position(site, e.offset);
      diagnostics_.push_back({site.file->path, line, column, Diagnostic::Severity::error, e.code, e.message, owner});
    }
  }

  void compile_macros(ExpressionParser& parser, const core::ConceptMap& concepts) {
    for (const auto& [name, text] : definitions_.macros) {
      auto compiled = parser.parse_value(text);
      if (!compiled) report(macro_sites_[name], compiled.error(), name);
    }
    for (const auto& [name, items] : definitions_.lists) {
      Reader r(list_sites_[name].file->path);
      for (const auto& item : items)
        if (!concepts.find_concept(item))
          r.error(list_sites_[name].node, "unknown-concept", "list '" + name + "' names unknown concept '" + item + "'",
                  name);
      take(r);
    }
  }

  void warn_unused(const ExpressionParser& parser) {
    // A macro used only by another macro counts as used; compile_macros parsed every macro, so
    // look for references from rules (tracked by the parser) and from other macros' text.
    for (const auto& [name, site] : macro_sites_) {
      if (parser.used_definitions().count(name)) continue;
      Reader r(site.file->path);
      r.warning(site.node, "unused-macro", "macro '" + name + "' is never used", name);
      take(r);
    }
    for (const auto& [name, site] : list_sites_) {
      if (parser.used_definitions().count(name)) continue;
      Reader r(site.file->path);
      r.warning(site.node, "unused-macro", "list '" + name + "' is never used", name);
      take(r);
    }
  }

  Template read_template(const Site& site, const std::string& text, ExpressionParser& parser,
                         const std::string& owner) {
    Template t;
    std::size_t i = 0;
    while (i < text.size()) {
      const auto open = text.find('{', i);
      // '{' that starts a UCUM annotation inside an expression is nested: match braces.
      if (open == std::string::npos) {
        t.parts.push_back({text.substr(i), std::nullopt});
        break;
      }
      if (open > i) t.parts.push_back({text.substr(i, open - i), std::nullopt});
      int depth = 0;
      std::size_t close = open;
      for (; close < text.size(); ++close) {
        if (text[close] == '{') ++depth;
        if (text[close] == '}' && --depth == 0) break;
      }
      if (close >= text.size()) {
        report(site, {{static_cast<int>(open), "syntax", "'{' without a closing '}'"}}, owner);
        break;
      }
      const std::string inner = text.substr(open + 1, close - open - 1);
      auto compiled = parser.parse_value(inner);
      if (!compiled) {
        auto errors = compiled.error();
        for (auto& e : errors) e.offset += static_cast<int>(open + 1);
        report(site, errors, owner);
      } else {
        t.parts.push_back({"", std::move(*compiled)});
      }
      i = close + 1;
    }
    return t;
  }

  void read_rules(const SourceFile& f, RuleSet& rs, ExpressionParser& parser, std::set<std::string>& ids) {
    Reader r(f.path);
    if (!f.root.IsMap()) {
      r.error(f.root, "wrong-type", "a rule file must be a map with 'rules'");
      take(r);
      return;
    }
    r.check_keys(f.root, {"rules", "macros", "lists"}, "");
    const auto rules = f.root["rules"];
    if (!rules || !rules.IsSequence()) {
      r.error(rules ? rules : f.root, "wrong-type", "'rules' must be a list of rules");
      take(r);
      return;
    }
    for (const auto& node : rules) {
      if (!node.IsMap()) {
        r.error(node, "wrong-type", "a rule must be a map");
        continue;
      }
      Rule rule;
      rule.file = f.path;
      rule.line = node.Mark().line + 1;
      rule.id = r.string(node, "id", "");
      const std::string& id = rule.id;
      r.check_keys(node,
                   {"id", "signal", "title", "ctcae", "grades", "severity", "actions", "summary", "references",
                    "enabled", "tags", "options"},
                   id);
      if (!id.empty() && !ids.insert(id).second)
        r.error(node["id"], "duplicate-id", "rule id '" + id + "' is used twice", id);
      rule.signal = r.string(node, "signal", id);
      if (!rule.signal.empty() && !rs.signals.count(rule.signal))
        r.error(node["signal"], "unknown-signal",
                "unknown signal '" + rule.signal + "' (define it under 'signals' in settings.yaml)", id);
      rule.title = r.string(node, "title", id);
      rule.ctcae = r.strings(node, "ctcae", id);
      rule.references = r.strings(node, "references", id);
      rule.tags = r.strings(node, "tags", id);
      if (node["enabled"]) rule.enabled = r.boolean(node, "enabled", id);
      if (const auto sev = node["severity"]) {
        const auto s = r.string(node, "severity", id);
        if (s == "info")
          rule.severity = Severity::info;
        else if (s == "warning")
          rule.severity = Severity::warning;
        else if (s == "critical")
          rule.severity = Severity::critical;
        else
          r.error(sev, "bad-value", "severity must be info, warning or critical", id);
      }
      if (const auto opts = node["options"]) {
        r.check_keys(opts, {"evaluate_preliminary", "require_ici_exposure"}, id);
        rule.evaluate_preliminary = r.boolean(opts, "evaluate_preliminary", id);
        if (opts["require_ici_exposure"]) rule.require_ici_exposure = r.boolean(opts, "require_ici_exposure", id);
      }
      std::set<std::string> inputs;
      const auto grades = node["grades"];
      if (!grades || !grades.IsSequence() || grades.size() == 0) {
        r.error(grades ? grades : node, "wrong-type", "'grades' must be a list of {grade: N, when: CONDITION}", id);
      } else {
        std::set<int> seen;
        for (const auto& g : grades) {
          if (!g.IsMap()) {
            r.error(g, "wrong-type", "a grade must be a map {grade: N, when: CONDITION}", id);
            continue;
          }
          r.check_keys(g, {"grade", "when"}, id);
          int grade = 0;
          const auto gnode = g["grade"];
          if (!gnode || !gnode.IsScalar() || !YAML::convert<int>::decode(gnode, grade)) {
            r.error(gnode ? gnode : g, "wrong-type", "'grade' must be a whole number from 1 to 5", id);
            continue;
          }
          if (grade < 1 || grade > 5) {
            r.error(gnode, "grade-range",
                    "grade " + std::to_string(grade) + " is out of range (CTCAE grades are 1 to 5)", id);
            continue;
          }
          if (!seen.insert(grade).second)
            r.error(gnode, "duplicate-grade", "grade " + std::to_string(grade) + " is listed twice", id);
          const auto when = g["when"];
          if (!when || !when.IsScalar()) {
            r.error(when ? when : g, "wrong-type", "'when' must be a condition", id);
            continue;
          }
          if (!concepts_ok_) continue;
          auto compiled = parser.parse_condition(when.as<std::string>());
          if (!compiled) {
            take(r);
            r.diagnostics().clear();
            report(Site{&f, when}, compiled.error(), id);
            continue;
          }
          collect_inputs(compiled->root, inputs);
          rule.grades.push_back({grade, std::move(*compiled)});
        }
      }
      std::sort(rule.grades.begin(), rule.grades.end(), [](const auto& a, const auto& b) { return a.grade > b.grade; });
      if (const auto actions = node["actions"]; actions && actions.IsMap()) {
        for (const auto& kv : actions) {
          int grade = 0;
          if (!YAML::convert<int>::decode(kv.first, grade) || grade < 1 || grade > 5) {
            r.error(kv.first, "grade-range", "actions are keyed by grade 1 to 5", id);
            continue;
          }
          if (!kv.second.IsScalar()) {
            r.error(kv.second, "wrong-type", "an action must be text", id);
            continue;
          }
          rule.actions[grade] = kv.second.as<std::string>();
        }
      } else {
        r.error(actions ? actions : node, "wrong-type", "'actions' must map grades to recommended actions", id);
      }
      for (const auto& g : rule.grades)
        if (!rule.actions.count(g.grade))
          r.error(node["actions"] ? node["actions"] : node, "missing-key",
                  "no recommended action for grade " + std::to_string(g.grade), id);
      if (const auto summary = node["summary"]; summary && summary.IsScalar()) {
        if (concepts_ok_) {
          take(r);
          r.diagnostics().clear();
          rule.summary = read_template(Site{&f, summary}, summary.as<std::string>(), parser, id);
        }
      } else {
        r.error(summary ? summary : node, "missing-key", "'summary' must be a short text with {expressions}", id);
      }
      rule.inputs.assign(inputs.begin(), inputs.end());
      rs.rules.push_back(std::move(rule));
    }
    take(r);
  }

  std::vector<Diagnostic> diagnostics_;
  Definitions definitions_;
  std::map<std::string, Site> macro_sites_, list_sites_;
  bool concepts_ok_ = true;
  std::uint64_t hash_ = 0xcbf29ce484222325ULL;
};

}  // namespace

LoadedRuleSet load_rule_files(const std::vector<std::string>& paths) {
  std::string dir = paths.empty() ? std::string(".") : fs::path(paths.front()).parent_path().string();
  if (dir.empty()) dir = ".";
  std::string concepts = dir + "/concepts.yaml", settings = dir + "/settings.yaml";
  std::vector<std::string> rule_paths;
  for (const auto& p : paths) {
    const auto name = fs::path(p).filename().string();
    if (name == "concepts.yaml")
      concepts = p;
    else if (name == "settings.yaml")
      settings = p;
    else
      rule_paths.push_back(p);
  }
  try {
    return Loader().load(concepts, settings, rule_paths);
  } catch (const YAML::Exception& e) {
    return LoadedRuleSet{nullptr,
                         {{paths.empty() ? dir : paths.front(), e.mark.line + 1, e.mark.column + 1,
                           Diagnostic::Severity::error, "wrong-type", e.msg, ""}}};
  }
}

LoadedRuleSet load_rule_set(const std::string& dir) {
  std::vector<std::string> paths;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const auto ext = entry.path().extension();
    if (entry.is_regular_file() && (ext == ".yaml" || ext == ".yml")) paths.push_back(entry.path().string());
  }
  if (ec) {
    return LoadedRuleSet{
        nullptr,
        {{dir, 0, 0, Diagnostic::Severity::error, "file", "cannot read the rules folder: " + ec.message(), ""}}};
  }
  std::sort(paths.begin(), paths.end());
  std::vector<std::string> ordered{dir + "/concepts.yaml", dir + "/settings.yaml"};
  for (const auto& p : paths) {
    const auto name = fs::path(p).filename().string();
    if (name != "concepts.yaml" && name != "settings.yaml") ordered.push_back(p);
  }
  return load_rule_files(ordered);
}

}  // namespace iraewatch::rules
