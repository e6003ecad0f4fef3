#pragma once
// The expression language of format descriptors (docs/descriptors.md): signed 64-bit integers,
// names resolved to slots when the expression is compiled, reader functions u8(..)..i64(..)
// (optionally suffixed le/be), and the C operators with C precedence. An expression is parsed
// once into a small AST and evaluated many times. Every operation is overflow-checked; failures
// (overflow, division by zero, a read outside the file) are error values, never UB or throws.

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/io/binary_reader.hpp"

namespace payloadfs::descriptor {

// An error with the 0-based character position in the expression text it refers to.
struct ExprError {
  std::string message;
  size_t position = 0;
};

struct ExpressionLimits {
  unsigned max_depth = 64;   // AST nesting (operators, parentheses, calls)
  size_t max_length = 4096;  // characters of expression text
};

// A name's value at evaluation time. `unset`: the value could not be established (its read
// failed); `too_large`: an unsigned value >= 2^63 that has no signed 64-bit representation.
enum class SlotState : uint8_t { unset, ok, too_large };
struct Slot {
  int64_t value = 0;
  SlotState state = SlotState::unset;
  static Slot of(int64_t v) { return {v, SlotState::ok}; }
};

// Which names an expression may use, decided when it is compiled. A name maps to a slot index,
// or to the reason it cannot be used at this place ("'i' exists only in tables ...").
class Scope {
 public:
  void define(const std::string& name, size_t slot) { names_[name] = slot; }
  void forbid(const std::string& name, std::string reason) { names_[name] = std::move(reason); }
  [[nodiscard]] std::variant<size_t, std::string> resolve(std::string_view name) const;

 private:
  std::map<std::string, std::variant<size_t, std::string>, std::less<>> names_;
};

struct EvalContext {
  BinaryReader* reader = nullptr;  // reads fail when null; reads are bounds-checked against size()
  Endian default_endian = Endian::little;
  std::span<const Slot> slots;
  uint64_t* reads_left = nullptr;  // shared read budget; a read with none left is an error
};

using EvalResult = std::variant<int64_t, ExprError>;

class Expression {
 public:
  // Parses and resolves names; every error names its position.
  static std::variant<Expression, ExprError> parse(std::string_view text, const Scope& scope,
                                                   const ExpressionLimits& limits = {});
  // A constant, e.g. from a JSON integer.
  static Expression constant(int64_t value);

  [[nodiscard]] EvalResult evaluate(EvalContext& context) const;
  [[nodiscard]] const std::string& text() const noexcept { return text_; }
  // Whether the expression refers to the name resolved to `slot`.
  [[nodiscard]] bool uses_slot(size_t slot) const noexcept;

  enum class Op : uint8_t {
    constant,
    slot,
    read,
    neg,
    bit_not,
    log_not,
    add,
    sub,
    mul,
    div,
    mod,
    shl,
    shr,
    bit_and,
    bit_or,
    bit_xor,
    eq,
    ne,
    lt,
    le,
    gt,
    ge,
    log_and,
    log_or,
  };
  // A read: width in bytes, signedness, and endianness (0 = the descriptor's default).
  struct ReadSpec {
    uint8_t width = 1;
    bool is_signed = false;
    uint8_t endian = 0;  // 0 default, 1 little, 2 big
  };
  struct Node {
    Op op = Op::constant;
    ReadSpec read{};
    uint32_t position = 0;
    uint32_t a = 0, b = 0;  // children
    int64_t value = 0;      // constant value or slot index
  };

 private:
  friend class Parser;
  EvalResult eval(uint32_t index, EvalContext& context) const;
  EvalResult eval_slot(const Node& n, EvalContext& context) const;
  EvalResult eval_read(const Node& n, EvalContext& context) const;

  std::string text_;
  std::vector<Node> nodes_;
  std::vector<std::string> names_;  // slot names used, for messages (indexed by Node::b for slots)
  uint32_t root_ = 0;
};

}  // namespace payloadfs::descriptor
