#include "core/formats/support/python_literal.hpp"

#include <gtest/gtest.h>

namespace payloadfs {
namespace {

nlohmann::ordered_json parse_ok(std::string_view text) {
  auto r = parse_python_literal(text);
  if (auto* e = std::get_if<PythonLiteralError>(&r)) ADD_FAILURE() << text << ": " << e->message;
  return std::get_if<nlohmann::ordered_json>(&r) ? std::get<nlohmann::ordered_json>(r) : nullptr;
}

bool parses(std::string_view text) {
  return std::holds_alternative<nlohmann::ordered_json>(parse_python_literal(text));
}

TEST(PythonLiteral, NumpyHeader) {
  const auto v =
      parse_ok("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }          \n");
  EXPECT_EQ(v["descr"], "<f4");
  EXPECT_EQ(v["fortran_order"], false);
  EXPECT_EQ(v["shape"], nlohmann::ordered_json::array({3, 4}));
}

TEST(PythonLiteral, TuplesListsAndScalars) {
  EXPECT_EQ(parse_ok("()"), nlohmann::ordered_json::array());
  EXPECT_EQ(parse_ok("(5,)"), nlohmann::ordered_json::array({5}));
  EXPECT_EQ(parse_ok("[('x', '<f4'), ('y', '<i8', (2,))]").dump(),
            R"([["x","<f4"],["y","<i8",[2]]])");
  EXPECT_EQ(parse_ok("None"), nullptr);
  EXPECT_EQ(parse_ok("True"), true);
  EXPECT_EQ(parse_ok("-12"), -12);
  EXPECT_EQ(parse_ok("18446744073709551615"), 18446744073709551615ULL);
  EXPECT_EQ(parse_ok("-9223372036854775808"), INT64_MIN);
  EXPECT_EQ(parse_ok(R"("it's")"), "it's");
  EXPECT_EQ(parse_ok(R"('a\'b\\c\x41')"), "a'b\\cA");
}

TEST(PythonLiteral, RejectsWhatIsNotALiteral) {
  for (const char* bad :
       {"", "{", "{'a' 1}", "{1: 2}", "[1 2]", "'unterminated", "1.5", "Truex", "__import__('os')",
        "{'a': 1} junk", "18446744073709551616", "-9223372036854775809", "{'a': 1, 'a': 2}"}) {
    EXPECT_FALSE(parses(bad)) << bad;
  }
}

TEST(PythonLiteral, NestingIsBounded) {
  EXPECT_FALSE(parses(std::string(100000, '[') + std::string(100000, ']')));
  EXPECT_TRUE(parses(std::string(20, '(') + std::string(20, ')')));
}

}  // namespace
}  // namespace payloadfs
