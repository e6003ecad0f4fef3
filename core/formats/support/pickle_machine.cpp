// The machine of pickle_machine.hpp: CPython's Unpickler (Lib/pickle.py, Modules/_pickle.c)
// with every call, import and attribute write replaced by recording it in a Value.

#include "core/formats/support/pickle_machine.hpp"

#include <algorithm>
#include <charconv>
#include <exception>

#include "core/formats/support/pickle_graph.hpp"
#include "core/formats/support/pickle_machine_impl.hpp"
#include "core/io/byte_source.hpp"

namespace payloadfs::formats::pickle {
namespace detail {

const char* kind_name(Value::Kind kind) {
  static constexpr const char* kNames[] = {
      "None",  "bool", "int",  "int", "float",     "str",    "bytes", "bytearray",
      "tuple", "list", "dict", "set", "frozenset", "global", "call",  "persistent id"};
  return kNames[static_cast<size_t>(kind)];
}

std::string hex_byte(uint8_t byte) {
  static constexpr char kDigits[] = "0123456789abcdef";
  return std::string("0x") + kDigits[byte >> 4] + kDigits[byte & 15];
}

// ---- errors and input ----

bool Machine::fail(const std::string& message) {
  if (failed_) return false;
  failed_ = true;
  std::string where = "byte " + std::to_string(opcode_offset_);
  const char* name = opcode_name(opcode_);
  where += *name != '\0' ? std::string(" (") + name + ")" : " (opcode " + hex_byte(opcode_) + ")";
  result_.errors.push_back(where + ": " + message);
  return false;
}

bool Machine::need(uint64_t count) {
  if (reader_.remaining() >= count) return true;
  return fail("needs " + std::to_string(count) + " bytes of argument, the pickle ends after " +
              std::to_string(reader_.remaining()));
}

bool Machine::read_bytes(uint64_t length, std::string& out) {
  if (length > reader_.remaining()) {
    return fail("declares " + std::to_string(length) + " bytes, but only " +
                std::to_string(reader_.remaining()) + " remain");
  }
  if (length > limits_.max_string_bytes) {
    return fail("a value of " + std::to_string(length) + " bytes exceeds the limit of " +
                std::to_string(limits_.max_string_bytes) + " (Limits::max_string_bytes)");
  }
  if (!charge_text(length)) return false;
  out = reader_.text(length, length);
  return reader_.ok() || fail(reader_.error().value_or("read error"));
}

bool Machine::read_line(std::string& out) {
  out.clear();
  while (true) {
    if (reader_.remaining() == 0) return fail("its newline-ended argument runs past the end");
    const auto byte = static_cast<char>(reader_.u8());
    if (!reader_.ok()) return fail(reader_.error().value_or("read error"));
    if (byte == '\n') break;
    if (out.size() >= limits_.max_line_bytes) {
      return fail("its argument line is longer than " + std::to_string(limits_.max_line_bytes) +
                  " bytes (Limits::max_line_bytes)");
    }
    out.push_back(byte);
  }
  return true;
}

bool Machine::read_index_line(uint64_t& index) {
  std::string line;
  if (!read_line(line)) return false;
  const auto [end, error] = std::from_chars(line.data(), line.data() + line.size(), index);
  if (line.empty() || error != std::errc{} || end != line.data() + line.size()) {
    return fail("memo index \"" + line.substr(0, 40) + "\" is not a decimal number");
  }
  return true;
}

// ---- allocation ----

Value* Machine::make(Kind kind) {
  if (result_.values.size() >= limits_.max_values) {
    fail("more than " + std::to_string(limits_.max_values) + " values (Limits::max_values)");
    return nullptr;
  }
  result_.values.push_back(std::make_unique<Value>());
  Value* value = result_.values.back().get();
  value->kind = kind;
  return value;
}

bool Machine::charge_items(size_t count) {
  if (count > limits_.max_items - std::min(items_, limits_.max_items)) {
    return fail("more than " + std::to_string(limits_.max_items) +
                " container items in all (Limits::max_items)");
  }
  items_ += count;
  return true;
}

bool Machine::charge_text(size_t count) {
  if (count > limits_.max_text_bytes - std::min(text_bytes_, limits_.max_text_bytes)) {
    return fail("more than " + std::to_string(limits_.max_text_bytes) +
                " bytes of strings in all (Limits::max_text_bytes)");
  }
  text_bytes_ += count;
  return true;
}

Value* Machine::make_text(Kind kind, std::string text) {
  Value* value = make(kind);
  if (value != nullptr) value->text = std::move(text);
  return value;
}

Value* Machine::make_integer(const Integer& integer) {
  if (integer.fits) {
    Value* value = make(Kind::integer);
    if (value != nullptr) value->integer = integer.value;
    return value;
  }
  if (!charge_text(integer.decimal.size())) return nullptr;
  return make_text(Kind::big_integer, integer.decimal);
}

Value* Machine::make_container(Kind kind, const std::vector<Value*>& items) {
  if (!charge_items(items.size())) return nullptr;
  Value* value = make(kind);
  if (value != nullptr) value->items.assign(items.begin(), items.end());
  return value;
}

Value* Machine::make_global(std::string module, std::string name) {
  if (!is_valid_utf8(module) || !is_valid_utf8(name)) {
    fail("a global's module or name is not UTF-8");
    return nullptr;
  }
  std::string dotted = module + "." + name;
  if (!seen_globals_.contains(dotted)) {
    if (seen_globals_.size() >= limits_.max_globals) {
      fail("more than " + std::to_string(limits_.max_globals) + " globals (Limits::max_globals)");
      return nullptr;
    }
    seen_globals_.insert(dotted);
    result_.globals.push_back(std::move(dotted));
  }
  if (!charge_text(module.size() + name.size())) return nullptr;
  Value* value = make(Kind::global);
  if (value == nullptr) return nullptr;
  value->module = std::move(module);
  value->name = std::move(name);
  return value;
}

Value* Machine::make_call(Value::CallOpcode opcode, Value* callable, Value* args, Value* kwargs) {
  Value* value = make(Kind::call);
  if (value == nullptr) return nullptr;
  value->call_opcode = opcode;
  value->callable = callable;
  value->args = args;
  value->kwargs = kwargs;
  return value;
}

// ---- stack, marks, memo ----

bool Machine::push(Value* value) {
  if (value == nullptr) return false;  // make() failed and said why
  if (stack_.size() >= limits_.max_stack) {
    return fail("the stack grows past " + std::to_string(limits_.max_stack) +
                " entries (Limits::max_stack)");
  }
  stack_.push_back(value);
  return true;
}

Value* Machine::pop() {
  Value* value = top();
  if (value != nullptr) stack_.pop_back();
  return value;
}

Value* Machine::top() {
  if (stack_.size() > fence()) return stack_.back();
  fail(marks_.empty() ? "pops an empty stack" : "pops past a MARK (a stack underflow)");
  return nullptr;
}

bool Machine::pop_mark(std::vector<Value*>& items) {
  if (marks_.empty()) return fail("no MARK to pop to");
  const size_t mark = marks_.back();
  marks_.pop_back();
  items.assign(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
  stack_.resize(mark);
  return true;
}

bool Machine::memo_get(uint64_t index) {
  const auto found = memo_.find(index);
  if (found == memo_.end()) {
    return fail("memo index " + std::to_string(index) + " was never stored");
  }
  return push(found->second);
}

bool Machine::memo_put(uint64_t index) {
  Value* value = top();
  if (value == nullptr) return false;
  if (!memo_.contains(index) && memo_.size() >= limits_.max_memo) {
    return fail("more than " + std::to_string(limits_.max_memo) +
                " memo entries (Limits::max_memo)");
  }
  memo_[index] = value;
  return true;
}

// ---- the loop ----

void Machine::run() {
  while (!failed_ && !stopped_) {
    opcode_offset_ = reader_.tell() - start_;
    if (reader_.remaining() == 0) {
      opcode_ = 0;
      result_.errors.push_back("byte " + std::to_string(opcode_offset_) +
                               ": the pickle ends without STOP");
      failed_ = true;
      break;
    }
    opcode_ = reader_.u8();
    if (!reader_.ok()) {
      fail(reader_.error().value_or("read error"));
      break;
    }
    const Handler handler = handlers()[opcode_];
    if (handler == nullptr) {
      fail(*opcode_name(opcode_) != '\0'
               ? std::string("is not supported by this data-only reader (refused)")
               : "opcode " + hex_byte(opcode_) + " is unknown (refused)");
      break;
    }
    (this->*handler)();
  }
  finish();
}

void Machine::finish() {
  result_.length = reader_.tell() - start_;
  if (!stopped_ || failed_) return;
  if (!check_graph(*stopped_value_, limits_.max_depth, result_.errors)) return;
  result_.root = stopped_value_;
  if (reader_.remaining() > 0) {
    result_.errors.push_back("byte " + std::to_string(result_.length) + ": " +
                             std::to_string(reader_.remaining()) + " bytes after STOP");
  }
}

}  // namespace detail

Result load(BinaryReader& reader, const Limits& limits) {
  Result result;
  try {
    detail::Machine machine(reader, limits, result);
    machine.run();
  } catch (const std::exception& error) {  // std::bad_alloc, despite the limits
    result.root = nullptr;
    result.errors.push_back(std::string("the pickle reader failed: ") + error.what());
  }
  return result;
}

Result load(std::span<const std::byte> bytes, const Limits& limits) {
  MemorySource source(bytes);
  BinaryReader reader(source);
  return load(reader, limits);
}

}  // namespace payloadfs::formats::pickle
