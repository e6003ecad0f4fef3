// The descriptor expression language: precedence, overflow, division by zero, reads, caps.

#include "core/descriptor/expression.hpp"

#include <random>
#include <string>
#include <vector>

#include "unit/test_support.hpp"

namespace payloadfs::descriptor {
namespace {

using payloadfs::testing::Bytes;

struct Env {
  std::vector<std::byte> bytes;
  std::vector<Slot> slots{Slot::of(0), Slot{}, Slot{}, Slot::of(40), Slot{0, SlotState::too_large},
                          Slot{}};
  Endian endian = Endian::little;
  uint64_t reads_left = 1000;
};

Scope test_scope() {
  Scope scope;
  scope.define("size", 0);
  scope.define("i", 1);
  scope.define("@", 2);
  scope.define("x", 3);
  scope.define("big", 4);
  scope.define("missing", 5);
  scope.forbid("later", "field 'later' is defined later");
  return scope;
}

EvalResult run(const std::string& text, Env env = {}) {
  auto parsed = Expression::parse(text, test_scope());
  if (auto* err = std::get_if<ExprError>(&parsed)) return *err;
  MemorySource source(env.bytes);
  BinaryReader reader(source);
  env.slots[0] = Slot::of(static_cast<int64_t>(env.bytes.size()));
  EvalContext ctx;
  ctx.reader = &reader;
  ctx.default_endian = env.endian;
  ctx.slots = env.slots;
  ctx.reads_left = &env.reads_left;
  return std::get<Expression>(parsed).evaluate(ctx);
}

int64_t value(const std::string& text, Env env = {}) {
  auto r = run(text, std::move(env));
  if (auto* err = std::get_if<ExprError>(&r)) {
    ADD_FAILURE() << text << ": " << err->message << " at " << err->position;
    return -999999;
  }
  return std::get<int64_t>(r);
}

ExprError error(const std::string& text, Env env = {}) {
  auto r = run(text, std::move(env));
  if (auto* err = std::get_if<ExprError>(&r)) return *err;
  ADD_FAILURE() << text << " evaluated to " << std::get<int64_t>(r) << ", expected an error";
  return {};
}

TEST(Expression, Literals) {
  EXPECT_EQ(value("0"), 0);
  EXPECT_EQ(value("42"), 42);
  EXPECT_EQ(value("0x10 + 0XfF"), 271);
  EXPECT_EQ(value("9223372036854775807"), INT64_MAX);
  EXPECT_EQ(value("0x7fffffffffffffff"), INT64_MAX);
  EXPECT_NE(error("9223372036854775808").message.find("does not fit"), std::string::npos);
  EXPECT_NE(error("0x8000000000000000").message.find("does not fit"), std::string::npos);
  EXPECT_NE(error("12abc").message.find("malformed number"), std::string::npos);
  EXPECT_NE(error("0x").message.find("malformed"), std::string::npos);
}

TEST(Expression, PrecedenceAndAssociativity) {
  EXPECT_EQ(value("1 + 2 * 3"), 7);
  EXPECT_EQ(value("(1 + 2) * 3"), 9);
  EXPECT_EQ(value("10 - 3 - 2"), 5);
  EXPECT_EQ(value("100 / 10 / 5"), 2);
  EXPECT_EQ(value("1 << 2 + 1"), 8);
  EXPECT_EQ(value("1 | 2 & 3"), 3);
  EXPECT_EQ(value("2 ^ 3 | 4"), 5);
  EXPECT_EQ(value("6 ^ 3 & 1"), 7);   // & binds tighter than ^
  EXPECT_EQ(value("6 & 3 == 3"), 0);  // == binds tighter than &, as in C
  EXPECT_EQ(value("1 < 2 == 1"), 1);
  EXPECT_EQ(value("3 > 2 > 1"), 0);  // (3 > 2) > 1
  EXPECT_EQ(value("1 == 1 && 2 < 3"), 1);
  EXPECT_EQ(value("0 || 0 && 1"), 0);
  EXPECT_EQ(value("1 || 0 && 0"), 1);  // && binds tighter than ||
  EXPECT_EQ(value("!0 + 1"), 2);
  EXPECT_EQ(value("-2 * 3"), -6);
  EXPECT_EQ(value("- -2"), 2);
  EXPECT_EQ(value("+5"), 5);
  EXPECT_EQ(value("~0"), -1);
  EXPECT_EQ(value("~0 & 0xff"), 255);
  EXPECT_EQ(value("!5"), 0);
  EXPECT_EQ(value("-7 / 2"), -3);
  EXPECT_EQ(value("-7 % 2"), -1);
  EXPECT_EQ(value("7 % -2"), 1);
  EXPECT_EQ(value("-16 >> 2"), -4);
  EXPECT_EQ(value("1 << 62"), int64_t{1} << 62);
  EXPECT_EQ(value("-1 << 63"), INT64_MIN);
  EXPECT_EQ(value("0 << 63"), 0);
  EXPECT_EQ(value("5 != 4 && 4 <= 4 && 4 >= 4 && 3 < 4"), 1);
  EXPECT_EQ(value("2 * (3 + (4 - 1)) % 5"), 2);
  EXPECT_EQ(value("  1+\t2 \n"), 3);
}

TEST(Expression, Overflow) {
  EXPECT_NE(error("9223372036854775807 + 1").message.find("overflow"), std::string::npos);
  EXPECT_NE(error("-9223372036854775807 - 2").message.find("overflow"), std::string::npos);
  EXPECT_NE(error("4611686018427387904 * 2").message.find("overflow"), std::string::npos);
  EXPECT_NE(error("-(-9223372036854775807 - 1)").message.find("overflow"), std::string::npos);
  EXPECT_NE(error("(-9223372036854775807 - 1) / -1").message.find("overflow"), std::string::npos);
  EXPECT_NE(error("(-9223372036854775807 - 1) % -1").message.find("overflow"), std::string::npos);
  EXPECT_NE(error("1 << 63").message.find("overflow"), std::string::npos);
  EXPECT_NE(error("3 << 62").message.find("overflow"), std::string::npos);
  EXPECT_NE(error("1 << 64").message.find("outside 0..63"), std::string::npos);
  EXPECT_NE(error("1 >> -1").message.find("outside 0..63"), std::string::npos);
  EXPECT_NE(error("1 >> 64").message.find("outside 0..63"), std::string::npos);
  EXPECT_EQ(value("-9223372036854775807 - 1"), INT64_MIN);
  // The position points at the operator that failed.
  EXPECT_EQ(error("1 + 9223372036854775807 + 0").position, 2u);
}

TEST(Expression, DivisionByZero) {
  EXPECT_EQ(error("1 / 0").message, "division by zero");
  EXPECT_EQ(error("1 % 0").message, "division by zero");
  EXPECT_EQ(error("1 / (2 - 2)").position, 2u);
  // && and || short-circuit, so a guard protects the division.
  EXPECT_EQ(value("0 && 1 / 0"), 0);
  EXPECT_EQ(value("1 || 1 / 0"), 1);
  EXPECT_EQ(error("1 && 1 / 0").message, "division by zero");
}

TEST(Expression, Names) {
  EXPECT_EQ(value("x * 2"), 80);
  EXPECT_EQ(value("size", Env{Bytes().zeros(7).data()}), 7);
  EXPECT_NE(error("missing + 1").message.find("could not be read"), std::string::npos);
  EXPECT_NE(error("big").message.find("does not fit"), std::string::npos);
  EXPECT_NE(error("i").message.find("'i'"), std::string::npos);
  const auto unknown = error("1 + nope");
  EXPECT_EQ(unknown.message, "unknown name 'nope'");
  EXPECT_EQ(unknown.position, 4u);
  EXPECT_EQ(error("later").message, "field 'later' is defined later");
  Scope without_at;
  without_at.forbid("@", "'@' exists only in slices");
  auto parsed = Expression::parse("@ + 1", without_at);
  ASSERT_TRUE(std::holds_alternative<ExprError>(parsed));
  EXPECT_EQ(std::get<ExprError>(parsed).message, "'@' exists only in slices");
}

TEST(Expression, Reads) {
  Env env;
  env.bytes = Bytes().le(0x0807060504030201, 8).u8(0xff).data();
  EXPECT_EQ(value("u8(0)", env), 1);
  EXPECT_EQ(value("u16(0)", env), 0x0201);
  EXPECT_EQ(value("u16le(0)", env), 0x0201);
  EXPECT_EQ(value("u16be(0)", env), 0x0102);
  EXPECT_EQ(value("u32(0)", env), 0x04030201);
  EXPECT_EQ(value("u32be(4)", env), 0x05060708);
  EXPECT_EQ(value("u64(0)", env), 0x0807060504030201);
  EXPECT_EQ(value("u8(8)", env), 255);
  EXPECT_EQ(value("i8(8)", env), -1);
  EXPECT_EQ(value("i16(7)", env), -248);  // 08 ff little-endian
  EXPECT_EQ(value("i16be(7)", env), 0x08ff);
  EXPECT_EQ(value("u8(u8(0) + 1)", env), 3);
  EXPECT_EQ(value("u8(size - 1)", env), 255);
  Env big = env;
  big.endian = Endian::big;
  EXPECT_EQ(value("u16(0)", big), 0x0102);
  EXPECT_EQ(value("u16le(0)", big), 0x0201);
  EXPECT_EQ(value("i32(5)", big), 0x0607'08ff);
  Env ones;
  ones.bytes = Bytes().le(~uint64_t{0}, 8).data();
  EXPECT_EQ(value("i64(0)", ones), -1);
  EXPECT_EQ(value("i32(4)", ones), -1);
  EXPECT_NE(error("u64(0)", ones).message.find("does not fit"), std::string::npos);
}

TEST(Expression, ReadsOutOfBounds) {
  Env env;
  env.bytes = Bytes().zeros(9).data();
  EXPECT_NE(error("u8(9)", env).message.find("past the end of the file (size 9)"),
            std::string::npos);
  EXPECT_NE(error("u64(2)", env).message.find("past the end"), std::string::npos);
  EXPECT_NE(error("u16(8)", env).message.find("past the end"), std::string::npos);
  EXPECT_NE(error("u8(-1)", env).message.find("negative offset"), std::string::npos);
  EXPECT_NE(error("u8(9223372036854775807)", env).message.find("past the end"), std::string::npos);
  EXPECT_EQ(error("1 + u32(100)", env).position, 4u);
  Env empty;
  EXPECT_NE(error("u8(0)", empty).message.find("past the end"), std::string::npos);
}

TEST(Expression, ReadBudget) {
  Env env;
  env.bytes = Bytes().zeros(4).data();
  env.reads_left = 2;
  EXPECT_EQ(value("u8(0) + u8(1)", env), 0);
  EXPECT_NE(error("u8(0) + u8(1) + u8(2)", env).message.find("limit on reads"), std::string::npos);
  auto parsed = Expression::parse("u8(0)", test_scope());
  EvalContext no_reader;
  EXPECT_TRUE(std::holds_alternative<ExprError>(std::get<Expression>(parsed).evaluate(no_reader)));
}

TEST(Expression, SyntaxErrorsHavePositions) {
  struct Case {
    const char* text;
    const char* message;
    size_t position;
  };
  const Case cases[] = {
      {"", "empty expression", 0},
      {"   ", "empty expression", 0},
      {"1 +", "unexpected end of expression", 3},
      {"(1 + 2", "expected ')'", 6},
      {"1 2", "unexpected '2'", 2},
      {"1 = 2", "'=' is not an operator (use '==')", 2},
      {"u9(1)", "unknown function 'u9'", 0},
      {"2 * u8 + 1", "'u8' is a function: write u8(offset)", 4},
      {"u8(1", "expected ')' after the argument of u8", 4},
      {"1 + #", "unexpected '#'", 4},
      {"1 +* 2", "unexpected '*'", 3},
      {")", "unexpected ')'", 0},
  };
  for (const auto& c : cases) {
    auto parsed = Expression::parse(c.text, test_scope());
    ASSERT_TRUE(std::holds_alternative<ExprError>(parsed)) << c.text;
    EXPECT_EQ(std::get<ExprError>(parsed).message, c.message) << c.text;
    EXPECT_EQ(std::get<ExprError>(parsed).position, c.position) << c.text;
  }
}

TEST(Expression, DepthAndLengthCaps) {
  auto parens = [](int n) { return std::string(n, '(') + "1" + std::string(n, ')'); };
  EXPECT_EQ(value(parens(30)), 1);
  EXPECT_NE(error(parens(100)).message.find("nests deeper than 64"), std::string::npos);
  EXPECT_NE(error(std::string(3000, '-') + "1").message.find("nests deeper"), std::string::npos);
  EXPECT_NE(error(std::string(2000, '(')).message.find("nests deeper"), std::string::npos);
  std::string sum = "1";
  for (int k = 0; k < 50; ++k) sum += "+1";
  EXPECT_EQ(value(sum), 51);
  for (int k = 0; k < 50; ++k) sum += "+1";
  EXPECT_NE(error(sum).message.find("nests deeper"), std::string::npos);
  EXPECT_NE(error("1" + std::string(5000, ' ')).message.find("longer than 4096"),
            std::string::npos);
  ExpressionLimits tight;
  tight.max_depth = 3;
  EXPECT_TRUE(std::holds_alternative<Expression>(Expression::parse("1 + 2", test_scope(), tight)));
  EXPECT_TRUE(
      std::holds_alternative<ExprError>(Expression::parse("1 + 2 + 3 + 4", test_scope(), tight)));
}

TEST(Expression, ConstantAndReuse) {
  const auto c = Expression::constant(-5);
  EvalContext ctx;
  EXPECT_EQ(std::get<int64_t>(c.evaluate(ctx)), -5);
  // Parsed once, evaluated many times with different slot values.
  auto parsed = Expression::parse("i * 8 + 3", test_scope());
  const auto& e = std::get<Expression>(parsed);
  std::vector<Slot> slots(3);
  ctx.slots = slots;
  for (int64_t i = 0; i < 100; ++i) {
    slots[1] = Slot::of(i);
    EXPECT_EQ(std::get<int64_t>(e.evaluate(ctx)), i * 8 + 3);
  }
}

// Random token soup: parsing and evaluating never crash, and errors point inside the text.
TEST(Expression, RandomRobustness) {
  const char* tokens[] = {"1",    "0",    "-1",  "0x7fffffffffffffff",
                          "x",    "size", "i",   "@",
                          "+",    "-",    "*",   "/",
                          "%",    "<<",   ">>",  "&",
                          "|",    "^",    "~",   "!",
                          "==",   "!=",   "<",   "<=",
                          ">",    ">=",   "&&",  "||",
                          "(",    ")",    "u8(", "i16be(",
                          "u64(", "63",   "big", "missing",
                          " "};
  std::mt19937 rng(1234);
  Env env;
  env.bytes = Bytes().le(0x8877665544332211, 8).le(0xffffffffffffffff, 8).data();
  env.slots[1] = Slot::of(3);
  env.slots[2] = Slot::of(5);
  int ok = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string text;
    const int n = 1 + static_cast<int>(rng() % 12);
    for (int k = 0; k < n; ++k) text += tokens[rng() % std::size(tokens)];
    auto r = run(text, env);
    if (auto* err = std::get_if<ExprError>(&r)) {
      EXPECT_LE(err->position, text.size()) << text;
      EXPECT_FALSE(err->message.empty());
    } else {
      ++ok;
    }
  }
  EXPECT_GT(ok, 100);
}

}  // namespace
}  // namespace payloadfs::descriptor
