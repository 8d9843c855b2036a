#include "iraewatch/alert/alert_json.hpp"

#include <nlohmann/json.hpp>

#include <charconv>
#include <cstdio>

namespace iraewatch::alert {
namespace {

// A small JSON writer: alert lines are written on the hot path (replay writes hundreds of
// thousands), so they are appended to one string rather than built as a document tree.
class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  void begin_object() { open('{'); }
  void end_object() { close('}'); }
  void begin_array(std::string_view key) {
    this->key(key);
    open('[');
  }
  void end_array() { close(']'); }

  void key(std::string_view k) {
    comma();
    string_value(k);
    out_ += ':';
    after_key_ = true;
  }
  void field(std::string_view k, std::string_view v) {
    key(k);
    value(v);
  }
  void field(std::string_view k, const char* v) { field(k, std::string_view(v)); }
  void field(std::string_view k, const std::string& v) { field(k, std::string_view(v)); }
  void field(std::string_view k, int v) {
    key(k);
    comma();
    out_ += std::to_string(v);
  }
  void field(std::string_view k, double v) {
    key(k);
    comma();
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, ec == std::errc() ? end : buf);
  }
  void raw(std::string_view v) {
    comma();
    out_ += v;
  }
  void field(std::string_view k, bool v) {
    key(k);
    comma();
    out_ += v ? "true" : "false";
  }
  void value(std::string_view v) {
    comma();
    string_value(v);
  }
  void strings(std::string_view k, const std::vector<std::string>& items) {
    begin_array(k);
    for (const auto& s : items) value(s);
    end_array();
  }

 private:
  void open(char c) {
    comma();
    out_ += c;
    first_ = true;
  }
  void close(char c) {
    out_ += c;
    first_ = false;
  }
  void comma() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_) out_ += ',';
    first_ = false;
  }
  void string_value(std::string_view s) {
    out_ += '"';
    // Copy runs that need no escaping in one go.
    std::size_t run = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c >= 0x20 && c != '"' && c != '\\') continue;
      out_.append(s.data() + run, i - run);
      run = i + 1;
      switch (c) {
        case '"':
          out_ += "\\\"";
          break;
        case '\\':
          out_ += "\\\\";
          break;
        case '\n':
          out_ += "\\n";
          break;
        case '\r':
          out_ += "\\r";
          break;
        case '\t':
          out_ += "\\t";
          break;
        default:
          if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out_ += buf;
          }
      }
    }
    out_.append(s.data() + run, s.size() - run);  // UTF-8 passes through as it came
    out_ += '"';
  }

  std::string& out_;
  bool first_ = true;
  bool after_key_ = false;
};

}  // namespace

namespace {

// The content members of an event, in contract order, after "event".
void write_content(JsonWriter& w, const engine::AlertEvent& e) {
  w.field("patient", e.patient);
  w.field("signal", e.signal);
  w.field("grade", e.grade);
  w.field("previous_grade", e.previous_grade);
  w.field("severity", e.severity);
  w.field("indicator", e.indicator);
  w.field("rule", e.rule);
  w.strings("rules", e.rules);
  w.field("title", e.title);
  w.field("summary", e.summary);
  w.field("detail", e.review_note);
  w.field("action", e.action);
  w.strings("ctcae", e.ctcae);
  w.begin_array("evidence");
  for (const auto& ev : e.evidence) {
    w.begin_object();
    w.field("concept", ev.concept_name);
    w.field("display", ev.display);
    w.field("role", ev.role);
    w.field("value", ev.value);
    w.field("unit", ev.unit);
    w.field("baseline", ev.from_baseline);
    if (!ev.record_id.empty()) {
      w.field("time", core::format_rfc3339(ev.time));
      w.field("record", ev.record_id);
    }
    if (!ev.note.empty()) w.field("note", ev.note);
    w.end_object();
  }
  w.end_array();
  w.field("combination_therapy", e.combination_therapy);
  w.field("context", e.context);
  w.key("source");
  w.begin_object();
  w.field("label", "iraewatch " + e.ruleset_version);
  w.strings("references", e.references);
  w.end_object();
  w.field("time", core::format_rfc3339(e.time));
  w.field("trigger", e.trigger);
  w.field("ruleset_version", e.ruleset_version);
}

}  // namespace

std::string to_json_line(const engine::AlertEvent& e) {
  std::string out;
  out.reserve(2048);
  JsonWriter w(out);
  w.begin_object();
  w.field("event", e.event);
  write_content(w, e);
  w.end_object();
  return out;
}

std::string to_json_fields(const engine::AlertEvent& e) {
  std::string out;
  out.reserve(2048);
  JsonWriter w(out);
  w.begin_object();
  write_content(w, e);
  w.end_object();
  return out.substr(1, out.size() - 2);
}

std::string with_patient(std::string_view fields, std::string_view patient) {
  // to_json_fields always starts with "patient":"...","signal":
  const auto signal = fields.find(",\"signal\":");
  if (!fields.starts_with("\"patient\":") || signal == std::string_view::npos) return std::string(fields);
  std::string out;
  JsonWriter w(out);
  w.begin_object();
  w.field("patient", patient);
  return out.substr(1) + std::string(fields.substr(signal));
}

std::string as_closed(std::string_view fields, int previous_grade) {
  auto j = nlohmann::ordered_json::parse("{" + std::string(fields) + "}", nullptr, false);
  if (!j.is_object()) return std::string(fields);
  j["grade"] = 0;
  j["previous_grade"] = previous_grade;
  j["severity"] = "info";
  j["indicator"] = "info";
  const std::string out = j.dump();
  return out.substr(1, out.size() - 2);
}

std::string notice_line(const core::AlertNotice& n, std::string_view fields) {
  std::string out;
  out.reserve(fields.size() + 256);
  {
    JsonWriter w(out);
    w.begin_object();
    w.field("event", n.event);
  }
  if (!fields.empty()) {
    out += ',';
    out += fields;
  }
  std::string tail;
  JsonWriter w(tail);
  w.begin_object();
  w.key("seq");
  w.raw(std::to_string(n.seq));
  w.key("alert_id");
  w.raw(std::to_string(n.alert_id));
  w.field("state", core::to_string(n.state));
  w.field("pages", n.pages);
  w.field("recorded_at", core::format_utc(n.recorded_ms));
  w.field("cause", n.cause);
  w.field("acknowledged_by", n.actor);
  w.field("note", n.note);
  w.end_object();
  out += ',';
  out.append(tail, 1, std::string::npos);
  return out;
}

}  // namespace iraewatch::alert
