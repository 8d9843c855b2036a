#include "iraewatch/rules/expression_parser.hpp"

#include <cctype>
#include <charconv>
#include <cmath>

namespace iraewatch::rules {

std::string_view to_string(CompareOp op) {
  switch (op) {
    case CompareOp::lt:
      return "<";
    case CompareOp::le:
      return "<=";
    case CompareOp::gt:
      return ">";
    case CompareOp::ge:
      return ">=";
    case CompareOp::eq:
      return "==";
    case CompareOp::ne:
      return "!=";
  }
  return "?";
}

void collect_inputs(const Node& node, std::set<std::string>& out) {
  if (!node.concept_name.empty()) out.insert(node.concept_name);
  if (!node.other_concept.empty()) out.insert(node.other_concept);
  for (const auto& c : node.children) collect_inputs(c, out);
}

namespace {

enum class Tok { number, ident, lparen, rparen, comma, plus, minus, star, slash, lt, le, gt, ge, eq, ne, end };

struct Token {
  Tok kind = Tok::end;
  std::string text;
  double value = 0;
  std::string unit;  // for numbers: the unit written after it, if any
  int offset = 0;
  int unit_offset = 0;
};

// Thrown inside the parser to stop at the first problem of one expression; never escapes it.
struct Failure {
  ExpressionError error;
};

[[noreturn]] void fail_at(int offset, std::string code, std::string message) {
  throw Failure{{offset, std::move(code), std::move(message)}};
}

bool is_ident_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool is_ident_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

bool is_keyword(std::string_view w) {
  return w == "and" || w == "or" || w == "not";
}

// Time units a literal may carry to be a duration, in milliseconds.
std::optional<double> duration_unit_ms(std::string_view unit) {
  if (unit == "s") return 1000.0;
  if (unit == "min") return 60'000.0;
  if (unit == "h") return 3'600'000.0;
  if (unit == "d") return 86'400'000.0;
  if (unit == "wk" || unit == "w") return 7 * 86'400'000.0;
  return std::nullopt;
}

bool is_dimensionless(std::string_view unit) {
  return unit.empty() || unit == "1" || (unit.size() >= 2 && unit.front() == '{' && unit.back() == '}');
}

std::vector<Token> tokenize(const std::string& text) {
  std::vector<Token> out;
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    const char c = text[i];
    const int at = static_cast<int>(i);
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) ||
        (c == '.' && i + 1 < n && std::isdigit(static_cast<unsigned char>(text[i + 1])))) {
      std::size_t j = i;
      while (j < n && (std::isdigit(static_cast<unsigned char>(text[j])) || text[j] == '.')) ++j;
      Token t{Tok::number, text.substr(i, j - i), 0, "", at};
      auto [ptr, ec] = std::from_chars(text.data() + i, text.data() + j, t.value);
      if (ec != std::errc() || ptr != text.data() + j) fail_at(at, "syntax", "malformed number '" + t.text + "'");
      // A unit may follow, with or without a space: 4.5 m[IU]/L, 48h, 88 %, 4 /d, 2 {score}.
      std::size_t k = j;
      while (k < n && text[k] == ' ') ++k;
      const bool unit_start =
          k < n &&
          (std::isalpha(static_cast<unsigned char>(text[k])) || text[k] == '%' || text[k] == '[' || text[k] == '{' ||
           (text[k] == '/' && k + 1 < n &&
            (std::isalpha(static_cast<unsigned char>(text[k + 1])) || text[k + 1] == '[' || text[k + 1] == '{')));
      if (unit_start) {
        std::size_t e = k;
        while (e < n && !std::isspace(static_cast<unsigned char>(text[e])) && text[e] != ',' && text[e] != ')' &&
               text[e] != '(')
          ++e;
        const std::string word = text.substr(k, e - k);
        if (!is_keyword(word)) {
          t.unit = word;
          t.unit_offset = static_cast<int>(k);
          j = e;
        }
      }
      out.push_back(std::move(t));
      i = j;
      continue;
    }
    if (is_ident_start(c)) {
      std::size_t j = i;
      while (j < n && is_ident_char(text[j])) ++j;
      out.push_back(Token{Tok::ident, text.substr(i, j - i), 0, "", at});
      i = j;
      continue;
    }
    auto two = [&](char next) { return i + 1 < n && text[i + 1] == next; };
    Tok kind;
    int len = 1;
    switch (c) {
      case '(':
        kind = Tok::lparen;
        break;
      case ')':
        kind = Tok::rparen;
        break;
      case ',':
        kind = Tok::comma;
        break;
      case '+':
        kind = Tok::plus;
        break;
      case '-':
        kind = Tok::minus;
        break;
      case '*':
        kind = Tok::star;
        break;
      case '/':
        kind = Tok::slash;
        break;
      case '<':
        kind = two('=') ? (len = 2, Tok::le) : Tok::lt;
        break;
      case '>':
        kind = two('=') ? (len = 2, Tok::ge) : Tok::gt;
        break;
      case '=':
        if (!two('=')) fail_at(at, "syntax", "use '==' to compare");
        kind = Tok::eq;
        len = 2;
        break;
      case '!':
        if (!two('=')) fail_at(at, "syntax", "use 'not' for negation, '!=' for inequality");
        kind = Tok::ne;
        len = 2;
        break;
      default:
        fail_at(at, "syntax", std::string("unexpected character '") + c + "'");
    }
    out.push_back(Token{kind, text.substr(i, static_cast<std::size_t>(len)), 0, "", at});
    i += static_cast<std::size_t>(len);
  }
  out.push_back(Token{Tok::end, "", 0, "", static_cast<int>(n)});
  return out;
}

std::string describe(const Node& n) {
  switch (n.type) {
    case ValueType::boolean:
      return "true/false";
    case ValueType::duration:
      return "a duration";
    default:
      return n.unit.empty() ? std::string("a plain number") : "a quantity in " + n.unit;
  }
}

bool is_numeric(const Node& n) {
  return n.type == ValueType::quantity || n.type == ValueType::sample;
}

struct FunctionInfo {
  std::string_view name;
  NodeKind kind;
};

constexpr FunctionInfo kFunctions[] = {
    {"latest", NodeKind::latest},
    {"previous", NodeKind::previous},
    {"baseline", NodeKind::baseline},
    {"paired", NodeKind::paired},
    {"min", NodeKind::min},
    {"max", NodeKind::max},
    {"avg", NodeKind::avg},
    {"count", NodeKind::count},
    {"held_for", NodeKind::held_for},
    {"ref_low", NodeKind::ref_low},
    {"ref_high", NodeKind::ref_high},
    {"below_low", NodeKind::below_low},
    {"above_high", NodeKind::above_high},
    {"on_ici", NodeKind::on_ici},
    {"combination_therapy", NodeKind::combination_therapy},
    {"days_since_first_dose", NodeKind::days_since_first_dose},
    {"days_since_last_dose", NodeKind::days_since_last_dose},
};

std::string function_names() {
  std::string s;
  for (const auto& f : kFunctions) s += (s.empty() ? "" : ", ") + std::string(f.name);
  return s + ", any, all";
}

class Parser {
 public:
  using MacroLookup = std::function<Node(const std::string& name, int offset)>;

  Parser(const std::vector<Token>& tokens, const core::ConceptMap& concepts, const Definitions& defs,
         std::set<std::string>& used, MacroLookup macro)
      : t_(tokens), concepts_(concepts), defs_(defs), used_(used), macro_(std::move(macro)) {}

  Node parse_all() {
    Node n = parse_or();
    if (peek().kind != Tok::end) fail_at(peek().offset, "syntax", "unexpected '" + peek().text + "'");
    return n;
  }

 private:
  const Token& peek() const { return t_[pos_]; }
  const Token& next() { return t_[pos_++]; }
  bool accept(Tok k) {
    if (peek().kind != k) return false;
    ++pos_;
    return true;
  }
  bool accept_word(std::string_view w) {
    if (peek().kind != Tok::ident || peek().text != w) return false;
    ++pos_;
    return true;
  }
  void expect(Tok k, std::string_view what) {
    if (!accept(k))
      fail_at(peek().offset, "syntax",
              "expected " + std::string(what) +
                  (peek().kind == Tok::end ? " at the end" : " before '" + peek().text + "'"));
  }

  Node parse_or() {
    Node left = parse_and();
    while (peek().kind == Tok::ident && peek().text == "or") {
      const int at = next().offset;
      left = logical(NodeKind::logical_or, std::move(left), parse_and(), at);
    }
    return left;
  }

  Node parse_and() {
    Node left = parse_not();
    while (peek().kind == Tok::ident && peek().text == "and") {
      const int at = next().offset;
      left = logical(NodeKind::logical_and, std::move(left), parse_not(), at);
    }
    return left;
  }

  // Bounds the recursion of nested parentheses, negations and 'not's (a stack, not a crash).
  struct Depth {
    explicit Depth(Parser& p) : p_(p) {
      if (++p_.depth_ > kMaxDepth) fail_at(p_.peek().offset, "syntax", "expression nested too deeply");
    }
    ~Depth() { --p_.depth_; }
    Parser& p_;
  };
  static constexpr int kMaxDepth = 200;

  Node parse_not() {
    Depth depth(*this);
    if (peek().kind == Tok::ident && peek().text == "not") {
      const int at = next().offset;
      Node operand = parse_not();
      require_boolean(operand, at, "'not'");
      Node n{NodeKind::logical_not, ValueType::boolean};
      n.offset = at;
      n.children.push_back(std::move(operand));
      return n;
    }
    return parse_compare();
  }

  Node logical(NodeKind kind, Node a, Node b, int at) {
    require_boolean(a, a.offset, kind == NodeKind::logical_and ? "'and'" : "'or'");
    require_boolean(b, b.offset, kind == NodeKind::logical_and ? "'and'" : "'or'");
    Node n{kind, ValueType::boolean};
    n.offset = at;
    n.children.push_back(std::move(a));
    n.children.push_back(std::move(b));
    return n;
  }

  void require_boolean(const Node& n, int at, std::string_view where) {
    if (n.type != ValueType::boolean)
      fail_at(at, "wrong-type", "operand of " + std::string(where) + " must be true/false, not " + describe(n));
  }

  Node parse_compare() {
    Node left = parse_sum();
    CompareOp op;
    switch (peek().kind) {
      case Tok::lt:
        op = CompareOp::lt;
        break;
      case Tok::le:
        op = CompareOp::le;
        break;
      case Tok::gt:
        op = CompareOp::gt;
        break;
      case Tok::ge:
        op = CompareOp::ge;
        break;
      case Tok::eq:
        op = CompareOp::eq;
        break;
      case Tok::ne:
        op = CompareOp::ne;
        break;
      default:
        return left;
    }
    const int at = next().offset;
    Node right = parse_sum();
    unify(left, right, at, "compare");
    Node n{NodeKind::compare, ValueType::boolean};
    n.op = op;
    n.offset = at;
    n.children.push_back(std::move(left));
    n.children.push_back(std::move(right));
    return n;
  }

  Node parse_sum() {
    Node left = parse_product();
    while (peek().kind == Tok::plus || peek().kind == Tok::minus) {
      const bool plus = peek().kind == Tok::plus;
      const int at = next().offset;
      Node right = parse_product();
      unify(left, right, at, plus ? "add" : "subtract");
      Node n{plus ? NodeKind::add : NodeKind::subtract,
             left.type == ValueType::duration ? ValueType::duration : ValueType::quantity};
      n.unit = left.unit;
      n.concept_name.clear();
      n.offset = at;
      carry_concept(n, left, right);
      n.children.push_back(std::move(left));
      n.children.push_back(std::move(right));
      left = std::move(n);
    }
    return left;
  }

  Node parse_product() {
    Node left = parse_unary();
    while (peek().kind == Tok::star || peek().kind == Tok::slash) {
      const bool times = peek().kind == Tok::star;
      const int at = next().offset;
      Node right = parse_unary();
      if (!is_numeric(left) || !is_numeric(right))
        fail_at(
            at, "wrong-type",
            std::string("cannot ") + (times ? "multiply " : "divide ") + describe(left) + " and " + describe(right));
      std::string unit;
      if (is_dimensionless(right.unit)) {
        unit = left.unit;
      } else if (times && is_dimensionless(left.unit)) {
        unit = right.unit;
      } else if (!times && left.unit == right.unit) {
        unit = "1";  // a ratio of like quantities
      } else {
        fail_at(at, "unit-mismatch",
                "cannot " + std::string(times ? "multiply " : "divide ") + left.unit + " by " + right.unit);
      }
      Node n{times ? NodeKind::multiply : NodeKind::divide, ValueType::quantity};
      n.unit = unit.empty() ? "1" : unit;
      n.offset = at;
      if (n.unit == left.unit) n.other_concept = concept_of(left);
      n.children.push_back(std::move(left));
      n.children.push_back(std::move(right));
      left = std::move(n);
    }
    return left;
  }

  Node parse_unary() {
    Depth depth(*this);
    if (peek().kind == Tok::minus) {
      const int at = next().offset;
      Node operand = parse_unary();
      if (operand.kind == NodeKind::number || operand.kind == NodeKind::duration) {
        operand.number = -operand.number;
        operand.offset = at;
        return operand;
      }
      if (!is_numeric(operand)) fail_at(at, "wrong-type", "cannot negate " + describe(operand));
      Node n{NodeKind::negate, ValueType::quantity};
      n.unit = operand.unit;
      n.offset = at;
      n.children.push_back(std::move(operand));
      return n;
    }
    return parse_primary();
  }

  Node parse_primary() {
    const Token& tok = peek();
    if (accept(Tok::lparen)) {
      Node inner = parse_or();
      expect(Tok::rparen, "')'");
      return inner;
    }
    if (tok.kind == Tok::number) {
      next();
      return literal(tok);
    }
    if (tok.kind != Tok::ident)
      fail_at(tok.offset, "syntax",
              tok.kind == Tok::end ? "expression ends too early" : "unexpected '" + tok.text + "'");
    const Token& name = next();
    if (name.text == "true" || name.text == "false") {
      Node n{NodeKind::boolean, ValueType::boolean};
      n.flag = name.text == "true";
      n.offset = name.offset;
      return n;
    }
    if (name.text == "any" || name.text == "all") return parse_quantifier(name);
    for (const auto& f : kFunctions)
      if (f.name == name.text) return parse_function(f.kind, name);
    if (defs_.macros.count(name.text)) {
      used_.insert(name.text);
      return macro_(name.text, name.offset);
    }
    if (name.text == "_" && binding_)
      fail_at(name.offset, "syntax", "'_' stands for a concept: use it as a function argument, e.g. latest(_)");
    if (concepts_.find_concept(name.text))
      fail_at(name.offset, "syntax",
              "'" + name.text + "' is a concept; write latest(" + name.text + ") or another function of it");
    if (peek().kind == Tok::lparen)
      fail_at(name.offset, "unknown-function",
              "unknown function '" + name.text + "' (known: " + function_names() + ")");
    fail_at(name.offset, "undefined-macro", "'" + name.text + "' is not a defined macro, function or concept");
  }

  Node literal(const Token& tok) {
    if (tok.unit.empty()) {
      Node n{NodeKind::number, ValueType::quantity};
      n.number = tok.value;
      n.offset = tok.offset;
      return n;  // a plain number: unit "" until unified
    }
    if (auto ms = duration_unit_ms(tok.unit)) {
      Node n{NodeKind::duration, ValueType::duration};
      n.number = tok.value * *ms;
      n.offset = tok.offset;
      return n;
    }
    Node n{NodeKind::number, ValueType::quantity};
    n.number = tok.value;
    n.unit = tok.unit;
    n.offset = tok.offset;
    n.unit_offset = tok.unit_offset;
    return n;
  }

  // The concept whose conversions apply to a node's unit, if any.
  std::string concept_of(const Node& n) const {
    return n.kind == NodeKind::number ? std::string() : (n.concept_name.empty() ? n.other_concept : n.concept_name);
  }

  void carry_concept(Node& out, const Node& a, const Node& b) const {
    out.other_concept = concept_of(a).empty() ? concept_of(b) : concept_of(a);
  }

  // Makes two operands comparable: converts a literal into the other side's unit through that
  // side's concept, or reports why they cannot be compared.
  void unify(Node& a, Node& b, int at, std::string_view verb) {
    if (a.type == ValueType::boolean || b.type == ValueType::boolean) {
      if (a.type == b.type && (verb == "compare")) return;  // true == false is fine
      fail_at(at, "wrong-type", "cannot " + std::string(verb) + " " + describe(a) + " and " + describe(b));
    }
    if ((a.type == ValueType::duration) != (b.type == ValueType::duration)) {
      const Node& plain = a.type == ValueType::duration ? b : a;
      fail_at(at, "unit-mismatch",
              "cannot " + std::string(verb) + " a duration and " + describe(plain) +
                  (plain.kind == NodeKind::number && plain.unit.empty() ? " (write a time unit, e.g. 28 d)" : ""));
    }
    if (a.type == ValueType::duration) return;
    convert_literal(a, b, at, verb);
    convert_literal(b, a, at, verb);
    const bool same = a.unit == b.unit || (is_dimensionless(a.unit) && is_dimensionless(b.unit));
    if (!same) {
      fail_at(at, "unit-mismatch", "cannot " + std::string(verb) + " " + describe(a) + " and " + describe(b));
    }
  }

  // If `lit` is a literal whose unit differs from `other`'s, converts it.
  void convert_literal(Node& lit, const Node& other, int at, std::string_view verb) {
    if (lit.kind != NodeKind::number || other.kind == NodeKind::number) return;
    if (lit.unit == other.unit) return;
    if (lit.unit.empty()) {
      if (is_dimensionless(other.unit)) {
        lit.unit = other.unit;
        return;
      }
      fail_at(lit.offset, "unit-mismatch",
              "a plain number cannot " + std::string(verb) + " with a quantity in " + other.unit +
                  "; write the unit, e.g. " + format_number(lit.number) + " " + other.unit);
    }
    const std::string cname = concept_of(other);
    if (const core::Concept* c = cname.empty() ? nullptr : concepts_.find_concept(cname)) {
      if (auto v = concepts_.to_canonical(*c, lit.number, lit.unit)) {
        // Against a difference (x - y, -x) a literal is an interval: scale it, never shift it
        // (a rise of 1.8 [degF] is 1 Cel, not -16.8 Cel).
        const bool interval =
            other.kind == NodeKind::add || other.kind == NodeKind::subtract || other.kind == NodeKind::negate;
        lit.number = interval ? *v - *concepts_.to_canonical(*c, 0.0, lit.unit) : *v;
        lit.unit = other.unit;
        return;
      }
    }
    fail_at(lit.unit_offset, "unit-mismatch",
            "unit '" + lit.unit + "' cannot be converted to " + other.unit +
                (cname.empty() ? "" : " (the unit of " + cname + ")"));
    (void)at;
  }

  static std::string format_number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
  }

  // A concept argument: a concept name, or '_' inside any()/all().
  std::string concept_arg() {
    const Token& tok = peek();
    if (tok.kind != Tok::ident) fail_at(tok.offset, "wrong-arguments", "expected a concept name");
    next();
    std::string name = tok.text;
    if (name == "_") {
      if (!binding_) fail_at(tok.offset, "syntax", "'_' is only meaningful inside any(LIST, ...) or all(LIST, ...)");
      name = *binding_;
    }
    if (!concepts_.find_concept(name)) {
      fail_at(tok.offset, "unknown-concept", "unknown concept '" + name + "' (not in concepts.yaml)");
    }
    return name;
  }

  std::int64_t window_arg() {
    const Token& tok = peek();
    Node d = parse_sum();
    if (d.kind != NodeKind::duration) fail_at(tok.offset, "wrong-arguments", "expected a duration such as 48h or 28 d");
    if (d.number <= 0) fail_at(tok.offset, "wrong-arguments", "a window must be longer than zero");
    return static_cast<std::int64_t>(d.number);
  }

  Node sample_node(NodeKind kind, const std::string& concept_name, int at) {
    const core::Concept* c = concepts_.find_concept(concept_name);
    Node n{kind, ValueType::sample};
    n.concept_name = concept_name;
    n.concept_index = static_cast<int>(concepts_.index_of(*c));
    n.unit = c->unit;
    n.offset = at;
    return n;
  }

  Node parse_function(NodeKind kind, const Token& name) {
    const int at = name.offset;
    const bool bare_allowed = kind == NodeKind::on_ici || kind == NodeKind::combination_therapy ||
                              kind == NodeKind::days_since_first_dose || kind == NodeKind::days_since_last_dose;
    if (bare_allowed) {
      if (accept(Tok::lparen)) expect(Tok::rparen, "')' (this function takes no arguments)");
      Node n{kind, kind == NodeKind::on_ici || kind == NodeKind::combination_therapy ? ValueType::boolean
                                                                                     : ValueType::duration};
      n.offset = at;
      return n;
    }
    if (!accept(Tok::lparen)) fail_at(peek().offset, "syntax", "expected '(' after " + name.text);
    Node n;
    switch (kind) {
      case NodeKind::latest: {
        n = sample_node(kind, concept_arg(), at);
        if (accept(Tok::comma)) n.window_ms = window_arg();
        break;
      }
      case NodeKind::previous:
        n = sample_node(kind, concept_arg(), at);
        break;
      case NodeKind::baseline: {
        n = sample_node(kind, concept_arg(), at);
        if (accept(Tok::comma)) {
          Node def = parse_sum();
          if (def.kind != NodeKind::number)
            fail_at(def.offset, "wrong-arguments", "the default of baseline() must be a number with a unit");
          convert_literal(def, n, def.offset, "stand for a baseline");
          n.flag = true;
          n.number = def.number;
        }
        break;
      }
      case NodeKind::paired: {
        n = sample_node(kind, concept_arg(), at);
        expect(Tok::comma, "',' and the concept to pair with");
        n.other_concept = concept_arg();
        n.other_index = static_cast<int>(concepts_.index_of(*concepts_.find_concept(n.other_concept)));
        break;
      }
      case NodeKind::min:
      case NodeKind::max:
      case NodeKind::avg:
      case NodeKind::count: {
        n = sample_node(kind, concept_arg(), at);
        expect(Tok::comma, "',' and a window such as 7 d");
        n.window_ms = window_arg();
        if (kind == NodeKind::avg) n.type = ValueType::quantity;
        if (kind == NodeKind::count) {
          n.type = ValueType::quantity;
          n.unit = "1";
        }
        break;
      }
      case NodeKind::held_for: {
        n = sample_node(kind, concept_arg(), at);
        n.type = ValueType::duration;
        switch (peek().kind) {
          case Tok::lt:
            n.op = CompareOp::lt;
            break;
          case Tok::le:
            n.op = CompareOp::le;
            break;
          case Tok::gt:
            n.op = CompareOp::gt;
            break;
          case Tok::ge:
            n.op = CompareOp::ge;
            break;
          default:
            fail_at(peek().offset, "wrong-arguments", "held_for needs a comparison such as held_for(tsh > 10 m[IU]/L)");
        }
        next();
        Node threshold = parse_unary();
        if (threshold.kind != NodeKind::number)
          fail_at(threshold.offset, "wrong-arguments", "held_for compares with a number and its unit");
        Node probe = sample_node(NodeKind::latest, n.concept_name, at);
        convert_literal(threshold, probe, threshold.offset, "compare");
        n.number = threshold.number;
        break;
      }
      case NodeKind::ref_low:
      case NodeKind::ref_high:
      case NodeKind::below_low:
      case NodeKind::above_high: {
        Node arg;
        if (peek().kind == Tok::ident && t_[pos_ + 1].kind != Tok::lparen &&
            (concepts_.find_concept(peek().text) || peek().text == "_")) {
          const int arg_at = peek().offset;
          arg = sample_node(NodeKind::latest, concept_arg(), arg_at);
        } else {
          arg = parse_sum();
        }
        if (arg.type != ValueType::sample)
          fail_at(arg.offset, "wrong-arguments",
                  name.text + " needs one observation, e.g. latest(x) or paired(x, y), not " + describe(arg));
        const bool boolean = kind == NodeKind::below_low || kind == NodeKind::above_high;
        n = Node{kind, boolean ? ValueType::boolean : ValueType::quantity};
        n.unit = boolean ? "" : arg.unit;
        n.other_concept = arg.concept_name;
        n.offset = at;
        n.children.push_back(std::move(arg));
        break;
      }
      default:
        fail_at(at, "unknown-function", "unknown function '" + name.text + "'");
    }
    expect(Tok::rparen, "')'");
    return n;
  }

  // any(LIST, condition with _) / all(LIST, ...): expands into or / and over the list.
  Node parse_quantifier(const Token& name) {
    const bool any = name.text == "any";
    expect(Tok::lparen, "'('");
    const Token& list_tok = peek();
    if (list_tok.kind != Tok::ident)
      fail_at(list_tok.offset, "wrong-arguments", name.text + "() needs a list name first");
    next();
    auto list = defs_.lists.find(list_tok.text);
    if (list == defs_.lists.end())
      fail_at(list_tok.offset, "undefined-macro", "'" + list_tok.text + "' is not a defined list");
    used_.insert(list_tok.text);
    expect(Tok::comma, "',' and a condition using _");
    const std::size_t body = pos_;
    const auto saved = binding_;
    Node result;
    bool first = true;
    for (const auto& element : list->second) {
      pos_ = body;
      binding_ = element;
      Node branch = parse_or();
      require_boolean(branch, branch.offset, name.text + "()");
      if (first) {
        result = std::move(branch);
        first = false;
      } else {
        result = logical(any ? NodeKind::logical_or : NodeKind::logical_and, std::move(result), std::move(branch),
                         name.offset);
      }
    }
    binding_ = saved;
    if (first) fail_at(list_tok.offset, "wrong-arguments", "list '" + list_tok.text + "' is empty");
    expect(Tok::rparen, "')'");
    return result;
  }

  const std::vector<Token>& t_;
  std::size_t pos_ = 0;
  const core::ConceptMap& concepts_;
  const Definitions& defs_;
  std::set<std::string>& used_;
  MacroLookup macro_;
  std::optional<std::string> binding_;
  int depth_ = 0;
};

}  // namespace

ExpressionParser::ExpressionParser(const core::ConceptMap& concepts, const Definitions& definitions)
    : concepts_(concepts), definitions_(definitions) {}

std::expected<Expression, std::vector<ExpressionError>> ExpressionParser::parse_condition(const std::string& text) {
  return parse(text, true);
}

std::expected<Expression, std::vector<ExpressionError>> ExpressionParser::parse_value(const std::string& text) {
  return parse(text, false);
}

std::expected<Expression, std::vector<ExpressionError>> ExpressionParser::parse(const std::string& text,
                                                                                bool condition) {
  try {
    const auto tokens = tokenize(text);
    auto macro = [this](const std::string& name, int offset) -> Node {
      if (auto it = compiled_macros_.find(name); it != compiled_macros_.end()) return it->second;
      if (expanding_.count(name)) fail_at(offset, "macro-cycle", "macro '" + name + "' refers to itself");
      expanding_.insert(name);
      auto inner = parse(definitions_.macros.at(name), false);
      expanding_.erase(name);
      if (!inner) {
        const auto& e = inner.error().front();
        fail_at(offset, e.code, "in macro '" + name + "': " + e.message);
      }
      compiled_macros_.emplace(name, inner->root);
      return inner->root;
    };
    Parser parser(tokens, concepts_, definitions_, used_, macro);
    Node root = parser.parse_all();
    if (root.kind == NodeKind::number && root.unit.empty()) root.unit = "1";
    if (condition && root.type != ValueType::boolean)
      fail_at(0, "wrong-type", "a condition must be true or false, not " + describe(root));
    return Expression{text, std::move(root)};
  } catch (const Failure& f) {
    return std::unexpected(std::vector<ExpressionError>{f.error});
  }
}

}  // namespace iraewatch::rules
