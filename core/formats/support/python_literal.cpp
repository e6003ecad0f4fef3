#include "core/formats/support/python_literal.hpp"

#include <cctype>
#include <cstdint>
#include <limits>

namespace payloadfs {
namespace {

constexpr int kMaxDepth = 32;

class LiteralParser {
 public:
  explicit LiteralParser(std::string_view text) : text_(text) {}

  std::variant<nlohmann::ordered_json, PythonLiteralError> parse_all() {
    nlohmann::ordered_json value = parse_value(0);
    skip_space();
    if (error_.empty() && pos_ != text_.size()) fail("unexpected trailing text");
    if (!error_.empty()) return PythonLiteralError{error_ + " at position " + std::to_string(pos_)};
    return value;
  }

 private:
  void fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
  }
  bool failed() const { return !error_.empty(); }

  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool consume(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool consume_word(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    const size_t end = pos_ + word.size();
    if (end < text_.size() &&
        (std::isalnum(static_cast<unsigned char>(text_[end])) || text_[end] == '_'))
      return false;
    pos_ = end;
    return true;
  }

  nlohmann::ordered_json parse_value(int depth) {
    if (depth > kMaxDepth) {
      fail("nesting deeper than " + std::to_string(kMaxDepth));
      return nullptr;
    }
    skip_space();
    if (pos_ >= text_.size()) {
      fail("unexpected end of text");
      return nullptr;
    }
    const char c = text_[pos_];
    if (c == '{') return parse_dict(depth);
    if (c == '[') return parse_sequence(']', depth);
    if (c == '(') return parse_sequence(')', depth);
    if (c == '\'' || c == '"') return parse_string();
    if (c == '-' || c == '+' || std::isdigit(static_cast<unsigned char>(c))) return parse_integer();
    if (consume_word("True")) return true;
    if (consume_word("False")) return false;
    if (consume_word("None")) return nullptr;
    fail(std::string("unexpected character '") + c + "'");
    return nullptr;
  }

  nlohmann::ordered_json parse_dict(int depth) {
    ++pos_;  // '{'
    nlohmann::ordered_json out = nlohmann::ordered_json::object();
    while (!failed()) {
      if (consume('}')) return out;
      skip_space();
      if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) {
        fail("dictionary keys must be strings");
        break;
      }
      std::string key = parse_string();
      if (!consume(':')) {
        fail("expected ':' after dictionary key");
        break;
      }
      nlohmann::ordered_json value = parse_value(depth + 1);
      if (failed()) break;
      if (out.contains(key)) {
        fail("duplicate dictionary key '" + key + "'");
        break;
      }
      out[key] = std::move(value);
      if (consume(',')) continue;
      if (consume('}')) return out;
      fail("expected ',' or '}' in dictionary");
    }
    return nullptr;
  }

  nlohmann::ordered_json parse_sequence(char close, int depth) {
    ++pos_;  // '[' or '('
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    while (!failed()) {
      if (consume(close)) return out;
      out.push_back(parse_value(depth + 1));
      if (failed()) break;
      if (consume(',')) continue;
      if (consume(close)) return out;
      fail(std::string("expected ',' or '") + close + "'");
    }
    return nullptr;
  }

  std::string parse_string() {
    const char quote = text_[pos_++];
    std::string out;
    while (pos_ < text_.size()) {
      const char c = text_[pos_++];
      if (c == quote) return out;
      if (c == '\n') break;
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (pos_ >= text_.size()) break;
      const char e = text_[pos_++];
      switch (e) {
        case 'n':
          out.push_back('\n');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case '0':
          out.push_back('\0');
          break;
        case '\\':
        case '\'':
        case '"':
          out.push_back(e);
          break;
        case 'x': {
          if (text_.size() - pos_ < 2 || !std::isxdigit(static_cast<unsigned char>(text_[pos_])) ||
              !std::isxdigit(static_cast<unsigned char>(text_[pos_ + 1]))) {
            fail("bad \\x escape in string");
            return out;
          }
          out.push_back(
              static_cast<char>(std::stoi(std::string(text_.substr(pos_, 2)), nullptr, 16)));
          pos_ += 2;
          break;
        }
        default:
          out.push_back('\\');
          out.push_back(e);
          break;
      }
    }
    fail("unterminated string");
    return out;
  }

  nlohmann::ordered_json parse_integer() {
    bool negative = false;
    if (text_[pos_] == '-' || text_[pos_] == '+') negative = text_[pos_++] == '-';
    if (pos_ >= text_.size() || !std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
      fail("expected digits");
      return nullptr;
    }
    uint64_t value = 0;
    while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
      const auto digit = static_cast<uint64_t>(text_[pos_++] - '0');
      if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10) {
        fail("integer out of range");
        return nullptr;
      }
      value = value * 10 + digit;
    }
    if (pos_ < text_.size() && (text_[pos_] == '.' || text_[pos_] == 'e' || text_[pos_] == 'E' ||
                                text_[pos_] == 'L' || text_[pos_] == 'j')) {
      fail("only integers are supported");
      return nullptr;
    }
    if (!negative) return value;
    if (value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1) {
      fail("integer out of range");
      return nullptr;
    }
    return value == 0 ? int64_t{0} : static_cast<int64_t>(~value + 1);
  }

  std::string_view text_;
  size_t pos_ = 0;
  std::string error_;
};

}  // namespace

std::variant<nlohmann::ordered_json, PythonLiteralError> parse_python_literal(
    std::string_view text) {
  return LiteralParser(text).parse_all();
}

}  // namespace payloadfs
