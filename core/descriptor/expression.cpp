// The descriptor expression language (see expression.hpp and docs/descriptors.md). Parsing is
// precedence climbing over C's binary operator levels; evaluation walks the flat node vector.

#include "core/descriptor/expression.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>
#include <optional>

#include "core/io/checked_math.hpp"

namespace payloadfs::descriptor {

std::variant<size_t, std::string> Scope::resolve(std::string_view name) const {
  const auto it = names_.find(name);
  if (it == names_.end()) return "unknown name '" + std::string(name) + "'";
  return it->second;
}

namespace {

using Op = Expression::Op;

struct BinaryOp {
  std::string_view token;
  Op op;
  int precedence;  // higher binds tighter; C's levels
};
// Longer tokens first so "<<" is not taken for "<".
constexpr std::array<BinaryOp, 18> kBinaryOps = {{
    {"||", Op::log_or, 1},
    {"&&", Op::log_and, 2},
    {"<<", Op::shl, 8},
    {">>", Op::shr, 8},
    {"==", Op::eq, 6},
    {"!=", Op::ne, 6},
    {"<=", Op::le, 7},
    {">=", Op::ge, 7},
    {"|", Op::bit_or, 3},
    {"^", Op::bit_xor, 4},
    {"&", Op::bit_and, 5},
    {"<", Op::lt, 7},
    {">", Op::gt, 7},
    {"+", Op::add, 9},
    {"-", Op::sub, 9},
    {"*", Op::mul, 10},
    {"/", Op::div, 10},
    {"%", Op::mod, 10},
}};

std::string_view op_text(Op op) {
  for (const auto& b : kBinaryOps)
    if (b.op == op) return b.token;
  return "?";
}

// u8 u16 u32 u64 i8 .. i64, optionally followed by "le" or "be".
std::optional<Expression::ReadSpec> reader_function(std::string_view name) {
  if (name.size() < 2 || (name[0] != 'u' && name[0] != 'i')) return std::nullopt;
  Expression::ReadSpec spec;
  spec.is_signed = name[0] == 'i';
  std::string_view rest = name.substr(1);
  if (rest.size() > 2 && (rest.ends_with("le") || rest.ends_with("be"))) {
    spec.endian = rest.ends_with("le") ? 1 : 2;
    rest.remove_suffix(2);
  }
  if (rest == "8") {
    spec.width = 1;
  } else if (rest == "16") {
    spec.width = 2;
  } else if (rest == "32") {
    spec.width = 4;
  } else if (rest == "64") {
    spec.width = 8;
  } else {
    return std::nullopt;
  }
  return spec;
}

bool is_name_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_';
}
bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
}

}  // namespace

class Parser {
 public:
  Parser(std::string_view text, const Scope& scope, const ExpressionLimits& limits)
      : text_(text), scope_(scope), limits_(limits) {}

  std::variant<Expression, ExprError> run() {
    if (text_.size() > limits_.max_length)
      return ExprError{
          "expression is longer than " + std::to_string(limits_.max_length) + " characters", 0};
    skip_space();
    if (pos_ == text_.size()) return ExprError{"empty expression", 0};
    const auto root = binary(0);
    if (!root) return *error_;
    skip_space();
    if (pos_ != text_.size()) {
      return ExprError{"unexpected '" + std::string(1, text_[pos_]) + "'", pos_};
    }
    out_.text_ = std::string(text_);
    out_.root_ = *root;
    return std::move(out_);
  }

 private:
  std::optional<uint32_t> fail(std::string message, size_t position) {
    if (!error_) error_ = ExprError{std::move(message), position};
    return std::nullopt;
  }

  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_])) != 0)
      ++pos_;
  }

  std::optional<uint32_t> add(Expression::Node node, unsigned depth) {
    if (depth > limits_.max_depth)
      return fail("expression nests deeper than " + std::to_string(limits_.max_depth) + " levels",
                  node.position);
    out_.nodes_.push_back(node);
    depths_.push_back(depth);
    return static_cast<uint32_t>(out_.nodes_.size() - 1);
  }

  const BinaryOp* peek_binary() {
    skip_space();
    const std::string_view rest = text_.substr(pos_);
    for (const auto& b : kBinaryOps) {
      if (!rest.starts_with(b.token)) continue;
      // "&" must not be the start of "&&" etc.; the table lists longer tokens first.
      return &b;
    }
    return nullptr;
  }

  std::optional<uint32_t> binary(int min_precedence) {
    auto left = unary();
    if (!left) return std::nullopt;
    for (;;) {
      const BinaryOp* op = peek_binary();
      if (op == nullptr || op->precedence < min_precedence) break;
      const size_t at = pos_;
      pos_ += op->token.size();
      auto right = binary(op->precedence + 1);  // left-associative
      if (!right) return std::nullopt;
      Expression::Node node;
      node.op = op->op;
      node.position = static_cast<uint32_t>(at);
      node.a = *left;
      node.b = *right;
      left = add(node, std::max(depths_[*left], depths_[*right]) + 1);
      if (!left) return std::nullopt;
    }
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == '=' &&
        (pos_ + 1 >= text_.size() || text_[pos_ + 1] != '='))
      return fail("'=' is not an operator (use '==')", pos_);
    return left;
  }

  std::optional<uint32_t> unary() {
    skip_space();
    if (++nesting_ > limits_.max_depth)
      return fail("expression nests deeper than " + std::to_string(limits_.max_depth) + " levels",
                  pos_);
    auto result = unary_inner();
    --nesting_;
    return result;
  }

  std::optional<uint32_t> unary_inner() {
    if (pos_ >= text_.size()) return fail("unexpected end of expression", pos_);
    const size_t at = pos_;
    const char c = text_[pos_];
    if (c == '-' || c == '~' || c == '!' || c == '+') {
      ++pos_;
      auto operand = unary();
      if (!operand) return std::nullopt;
      if (c == '+') return operand;
      Expression::Node node;
      node.op = c == '-' ? Op::neg : c == '~' ? Op::bit_not : Op::log_not;
      node.position = static_cast<uint32_t>(at);
      node.a = *operand;
      return add(node, depths_[*operand] + 1);
    }
    if (c == '(') {
      ++pos_;
      auto inner = binary(0);
      if (!inner) return std::nullopt;
      skip_space();
      if (pos_ >= text_.size() || text_[pos_] != ')') return fail("expected ')'", pos_);
      ++pos_;
      return inner;
    }
    if (c == '@') {
      ++pos_;
      return resolve("@", at);
    }
    if (std::isdigit(static_cast<unsigned char>(c)) != 0) return number();
    if (is_name_start(c)) {
      while (pos_ < text_.size() && is_name_char(text_[pos_])) ++pos_;
      const std::string_view name = text_.substr(at, pos_ - at);
      skip_space();
      if (pos_ < text_.size() && text_[pos_] == '(') {
        const auto spec = reader_function(name);
        if (!spec) return fail("unknown function '" + std::string(name) + "'", at);
        ++pos_;
        auto argument = binary(0);
        if (!argument) return std::nullopt;
        skip_space();
        if (pos_ >= text_.size() || text_[pos_] != ')')
          return fail("expected ')' after the argument of " + std::string(name), pos_);
        ++pos_;
        Expression::Node node;
        node.op = Op::read;
        node.read = *spec;
        node.position = static_cast<uint32_t>(at);
        node.a = *argument;
        return add(node, depths_[*argument] + 1);
      }
      if (reader_function(name))
        return fail(
            "'" + std::string(name) + "' is a function: write " + std::string(name) + "(offset)",
            at);
      return resolve(name, at);
    }
    return fail("unexpected '" + std::string(1, c) + "'", at);
  }

  std::optional<uint32_t> resolve(std::string_view name, size_t at) {
    auto resolved = scope_.resolve(name);
    if (auto* reason = std::get_if<std::string>(&resolved)) return fail(*reason, at);
    Expression::Node node;
    node.op = Op::slot;
    node.position = static_cast<uint32_t>(at);
    node.value = static_cast<int64_t>(std::get<size_t>(resolved));
    node.b = static_cast<uint32_t>(out_.names_.size());
    out_.names_.emplace_back(name);
    return add(node, 1);
  }

  std::optional<uint32_t> number() {
    const size_t at = pos_;
    unsigned base = 10;
    if (text_.substr(pos_).starts_with("0x") || text_.substr(pos_).starts_with("0X")) {
      base = 16;
      pos_ += 2;
    }
    uint64_t value = 0;
    bool digits = false;
    while (pos_ < text_.size() && std::isalnum(static_cast<unsigned char>(text_[pos_])) != 0) {
      const char ch = static_cast<char>(std::tolower(static_cast<unsigned char>(text_[pos_])));
      unsigned digit = 0;
      if (ch >= '0' && ch <= '9') {
        digit = static_cast<unsigned>(ch - '0');
      } else if (base == 16 && ch >= 'a' && ch <= 'f') {
        digit = static_cast<unsigned>(ch - 'a' + 10);
      } else {
        return fail("malformed number '" + std::string(text_.substr(at, pos_ + 1 - at)) + "'", at);
      }
      const auto scaled = checked_mul(value, base);
      const auto sum = scaled ? checked_add(*scaled, digit) : std::nullopt;
      if (!sum || *sum > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return fail("number does not fit in a signed 64-bit integer", at);
      value = *sum;
      digits = true;
      ++pos_;
    }
    if (!digits) return fail("malformed number", at);
    Expression::Node node;
    node.op = Op::constant;
    node.position = static_cast<uint32_t>(at);
    node.value = static_cast<int64_t>(value);
    return add(node, 1);
  }

  std::string_view text_;
  const Scope& scope_;
  const ExpressionLimits& limits_;
  size_t pos_ = 0;
  unsigned nesting_ = 0;
  std::optional<ExprError> error_;
  Expression out_;
  std::vector<unsigned> depths_;
};

std::variant<Expression, ExprError> Expression::parse(std::string_view text, const Scope& scope,
                                                      const ExpressionLimits& limits) {
  return Parser(text, scope, limits).run();
}

Expression Expression::constant(int64_t value) {
  Expression e;
  e.text_ = std::to_string(value);
  Node node;
  node.op = Op::constant;
  node.value = value;
  e.nodes_.push_back(node);
  return e;
}

EvalResult Expression::evaluate(EvalContext& context) const {
  if (nodes_.empty()) return ExprError{"empty expression", 0};
  return eval(root_, context);
}

namespace {

ExprError overflow(int64_t a, Op op, int64_t b, size_t position) {
  return ExprError{
      "overflow in " + std::to_string(a) + " " + std::string(op_text(op)) + " " + std::to_string(b),
      position};
}

}  // namespace

bool Expression::uses_slot(size_t slot) const noexcept {
  return std::any_of(nodes_.begin(), nodes_.end(), [slot](const Node& n) {
    return n.op == Op::slot && static_cast<size_t>(n.value) == slot;
  });
}

EvalResult Expression::eval_slot(const Node& n, EvalContext& context) const {
  const auto slot = static_cast<size_t>(n.value);
  const std::string& name = names_[n.b];
  if (slot >= context.slots.size())
    return ExprError{"'" + name + "' has no value here", n.position};
  const Slot& s = context.slots[slot];
  if (s.state == SlotState::ok) return s.value;
  if (s.state == SlotState::too_large)
    return ExprError{"the value of '" + name + "' does not fit in a signed 64-bit integer",
                     n.position};
  return ExprError{"'" + name + "' has no value (it could not be read)", n.position};
}

namespace {

uint64_t read_width(BinaryReader& r, uint8_t width) {
  switch (width) {
    case 1:
      return r.u8();
    case 2:
      return r.u16();
    case 4:
      return r.u32();
    default:
      return r.u64();
  }
}

}  // namespace

EvalResult Expression::eval_read(const Node& n, EvalContext& context) const {
  auto arg = eval(n.a, context);
  if (std::holds_alternative<ExprError>(arg)) return arg;
  const int64_t offset = std::get<int64_t>(arg);
  const std::string fn = std::string(n.read.is_signed ? "i" : "u") +
                         std::to_string(n.read.width * 8) +
                         (n.read.endian == 1   ? "le"
                          : n.read.endian == 2 ? "be"
                                               : "");
  if (offset < 0)
    return ExprError{fn + "(" + std::to_string(offset) + "): negative offset", n.position};
  if (context.reader == nullptr) return ExprError{fn + ": no file to read", n.position};
  BinaryReader& r = *context.reader;
  const auto off = static_cast<uint64_t>(offset);
  if (!range_within(off, n.read.width, r.size()))
    return ExprError{fn + "(" + std::to_string(offset) + ") runs past the end of the file (size " +
                         std::to_string(r.size()) + ")",
                     n.position};
  if (context.reads_left != nullptr) {
    if (*context.reads_left == 0)
      return ExprError{fn + ": the limit on reads per file is exhausted", n.position};
    --*context.reads_left;
  }
  r.set_endian(n.read.endian == 0   ? context.default_endian
               : n.read.endian == 1 ? Endian::little
                                    : Endian::big);
  r.seek(off);
  uint64_t raw = read_width(r, n.read.width);
  if (!r.ok()) return ExprError{fn + ": " + *r.error(), n.position};
  if (n.read.is_signed) {
    const unsigned bits = n.read.width * 8U;
    if (bits < 64 && (raw >> (bits - 1)) != 0) raw |= ~uint64_t{0} << bits;  // sign-extend
    return static_cast<int64_t>(raw);
  }
  if (raw > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return ExprError{fn + "(" + std::to_string(offset) + ") = " + std::to_string(raw) +
                         " does not fit in a signed 64-bit integer",
                     n.position};
  return static_cast<int64_t>(raw);
}

namespace {

// A binary operator on two evaluated operands, overflow-checked.
EvalResult apply_binary(Op op, int64_t a, int64_t b, uint32_t position) {
  int64_t r = 0;
  switch (op) {
    case Op::add:
      if (__builtin_add_overflow(a, b, &r)) return overflow(a, op, b, position);
      return r;
    case Op::sub:
      if (__builtin_sub_overflow(a, b, &r)) return overflow(a, op, b, position);
      return r;
    case Op::mul:
      if (__builtin_mul_overflow(a, b, &r)) return overflow(a, op, b, position);
      return r;
    case Op::div:
    case Op::mod:
      if (b == 0) return ExprError{"division by zero", position};
      if (a == std::numeric_limits<int64_t>::min() && b == -1) return overflow(a, op, b, position);
      return op == Op::div ? a / b : a % b;
    case Op::shl:
    case Op::shr: {
      if (b < 0 || b > 63)
        return ExprError{"shift count " + std::to_string(b) + " is outside 0..63", position};
      if (op == Op::shr) return a >> b;  // arithmetic: C++20 defines it for negative values
      if (b == 63) {
        if (a == 0 || a == -1) return a == 0 ? int64_t{0} : std::numeric_limits<int64_t>::min();
        return overflow(a, op, b, position);
      }
      if (__builtin_mul_overflow(a, int64_t{1} << b, &r)) return overflow(a, op, b, position);
      return r;
    }
    case Op::bit_and:
      return a & b;
    case Op::bit_or:
      return a | b;
    case Op::bit_xor:
      return a ^ b;
    case Op::eq:
      return int64_t{a == b};
    case Op::ne:
      return int64_t{a != b};
    case Op::lt:
      return int64_t{a < b};
    case Op::le:
      return int64_t{a <= b};
    case Op::gt:
      return int64_t{a > b};
    case Op::ge:
      return int64_t{a >= b};
    default:
      return ExprError{"internal error: unknown operator", position};
  }
}

}  // namespace

EvalResult Expression::eval(uint32_t index, EvalContext& context) const {
  const Node& n = nodes_[index];
  switch (n.op) {
    case Op::constant:
      return n.value;
    case Op::slot:
      return eval_slot(n, context);
    case Op::read:
      return eval_read(n, context);
    case Op::log_and:
    case Op::log_or: {
      auto left = eval(n.a, context);
      if (std::holds_alternative<ExprError>(left)) return left;
      const bool l = std::get<int64_t>(left) != 0;
      if (n.op == Op::log_and && !l) return int64_t{0};
      if (n.op == Op::log_or && l) return int64_t{1};
      auto right = eval(n.b, context);
      if (std::holds_alternative<ExprError>(right)) return right;
      return int64_t{std::get<int64_t>(right) != 0 ? 1 : 0};
    }
    case Op::neg:
    case Op::bit_not:
    case Op::log_not: {
      auto operand = eval(n.a, context);
      if (std::holds_alternative<ExprError>(operand)) return operand;
      const int64_t v = std::get<int64_t>(operand);
      if (n.op == Op::log_not) return int64_t{v == 0 ? 1 : 0};
      if (n.op == Op::bit_not) return ~v;
      if (v == std::numeric_limits<int64_t>::min())
        return ExprError{"overflow in -(" + std::to_string(v) + ")", n.position};
      return -v;
    }
    default:
      break;
  }
  auto left = eval(n.a, context);
  if (std::holds_alternative<ExprError>(left)) return left;
  auto right = eval(n.b, context);
  if (std::holds_alternative<ExprError>(right)) return right;
  return apply_binary(n.op, std::get<int64_t>(left), std::get<int64_t>(right), n.position);
}

}  // namespace payloadfs::descriptor
