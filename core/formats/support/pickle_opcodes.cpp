// The pickle machine's opcodes: one handler each, as pickletools documents them, and the table
// from opcode byte to handler. A byte without a handler is refused.

#include <algorithm>
#include <bit>

#include "core/formats/support/pickle_machine_impl.hpp"

namespace payloadfs::formats::pickle {
namespace {

struct OpcodeName {
  uint8_t code;
  const char* name;
};

// Every opcode of CPython's Lib/pickletools.py, protocols 0 to 5.
constexpr OpcodeName kOpcodeNames[] = {
    {'(', "MARK"},
    {'.', "STOP"},
    {'0', "POP"},
    {'1', "POP_MARK"},
    {'2', "DUP"},
    {'F', "FLOAT"},
    {'I', "INT"},
    {'J', "BININT"},
    {'K', "BININT1"},
    {'L', "LONG"},
    {'M', "BININT2"},
    {'N', "NONE"},
    {'P', "PERSID"},
    {'Q', "BINPERSID"},
    {'R', "REDUCE"},
    {'S', "STRING"},
    {'T', "BINSTRING"},
    {'U', "SHORT_BINSTRING"},
    {'V', "UNICODE"},
    {'X', "BINUNICODE"},
    {'a', "APPEND"},
    {'b', "BUILD"},
    {'c', "GLOBAL"},
    {'d', "DICT"},
    {'}', "EMPTY_DICT"},
    {'e', "APPENDS"},
    {'g', "GET"},
    {'h', "BINGET"},
    {'i', "INST"},
    {'j', "LONG_BINGET"},
    {'l', "LIST"},
    {']', "EMPTY_LIST"},
    {'o', "OBJ"},
    {'p', "PUT"},
    {'q', "BINPUT"},
    {'r', "LONG_BINPUT"},
    {'s', "SETITEM"},
    {'t', "TUPLE"},
    {')', "EMPTY_TUPLE"},
    {'u', "SETITEMS"},
    {'G', "BINFLOAT"},
    {0x80, "PROTO"},
    {0x81, "NEWOBJ"},
    {0x82, "EXT1"},
    {0x83, "EXT2"},
    {0x84, "EXT4"},
    {0x85, "TUPLE1"},
    {0x86, "TUPLE2"},
    {0x87, "TUPLE3"},
    {0x88, "NEWTRUE"},
    {0x89, "NEWFALSE"},
    {0x8a, "LONG1"},
    {0x8b, "LONG4"},
    {'B', "BINBYTES"},
    {'C', "SHORT_BINBYTES"},
    {0x8c, "SHORT_BINUNICODE"},
    {0x8d, "BINUNICODE8"},
    {0x8e, "BINBYTES8"},
    {0x8f, "EMPTY_SET"},
    {0x90, "ADDITEMS"},
    {0x91, "FROZENSET"},
    {0x92, "NEWOBJ_EX"},
    {0x93, "STACK_GLOBAL"},
    {0x94, "MEMOIZE"},
    {0x95, "FRAME"},
    {0x96, "BYTEARRAY8"},
    {0x97, "NEXT_BUFFER"},
    {0x98, "READONLY_BUFFER"},
};

}  // namespace

const char* opcode_name(uint8_t opcode) {
  for (const OpcodeName& entry : kOpcodeNames) {
    if (entry.code == opcode) return entry.name;
  }
  return "";
}

namespace detail {

const std::array<Machine::Handler, 256>& Machine::handlers() {
  static const std::array<Handler, 256> table = [] {
    std::array<Handler, 256> t{};
    t['('] = &Machine::op_mark, t['.'] = &Machine::op_stop, t['0'] = &Machine::op_pop;
    t['1'] = &Machine::op_pop_mark, t['2'] = &Machine::op_dup, t['F'] = &Machine::op_float;
    t['I'] = &Machine::op_int, t['J'] = &Machine::op_binint, t['K'] = &Machine::op_binint1;
    t['L'] = &Machine::op_long, t['M'] = &Machine::op_binint2, t['N'] = &Machine::op_none;
    t['P'] = &Machine::op_persid, t['Q'] = &Machine::op_binpersid, t['R'] = &Machine::op_reduce;
    t['S'] = &Machine::op_string, t['T'] = &Machine::op_binstring;
    t['U'] = &Machine::op_short_binstring, t['V'] = &Machine::op_unicode;
    t['X'] = &Machine::op_binunicode, t['a'] = &Machine::op_append, t['b'] = &Machine::op_build;
    t['c'] = &Machine::op_global, t['d'] = &Machine::op_dict, t['}'] = &Machine::op_empty_dict;
    t['e'] = &Machine::op_appends, t['g'] = &Machine::op_get, t['h'] = &Machine::op_binget;
    t['i'] = &Machine::op_inst, t['j'] = &Machine::op_long_binget, t['l'] = &Machine::op_list;
    t[']'] = &Machine::op_empty_list, t['o'] = &Machine::op_obj, t['p'] = &Machine::op_put;
    t['q'] = &Machine::op_binput, t['r'] = &Machine::op_long_binput;
    t['s'] = &Machine::op_setitem, t['t'] = &Machine::op_tuple, t[')'] = &Machine::op_empty_tuple;
    t['u'] = &Machine::op_setitems, t['G'] = &Machine::op_binfloat, t[0x80] = &Machine::op_proto;
    t[0x81] = &Machine::op_newobj, t[0x82] = &Machine::op_ext, t[0x83] = &Machine::op_ext;
    t[0x84] = &Machine::op_ext, t[0x85] = &Machine::op_tuple1, t[0x86] = &Machine::op_tuple2;
    t[0x87] = &Machine::op_tuple3, t[0x88] = &Machine::op_newtrue;
    t[0x89] = &Machine::op_newfalse, t[0x8a] = &Machine::op_long1, t[0x8b] = &Machine::op_long4;
    t['B'] = &Machine::op_binbytes, t['C'] = &Machine::op_short_binbytes;
    t[0x8c] = &Machine::op_short_binunicode, t[0x8d] = &Machine::op_binunicode8;
    t[0x8e] = &Machine::op_binbytes8, t[0x8f] = &Machine::op_empty_set;
    t[0x90] = &Machine::op_additems, t[0x91] = &Machine::op_frozenset;
    t[0x92] = &Machine::op_newobj_ex, t[0x93] = &Machine::op_stack_global;
    t[0x94] = &Machine::op_memoize, t[0x95] = &Machine::op_frame;
    t[0x96] = &Machine::op_bytearray8, t[0x97] = &Machine::op_next_buffer;
    t[0x98] = &Machine::op_readonly_buffer;
    return t;
  }();
  return table;
}

// ---- framing, stack, marks ----

bool Machine::op_proto() {
  if (!need(1)) return false;
  const uint8_t protocol = reader_.u8();
  if (protocol > kHighestProtocol) {
    return fail("protocol " + std::to_string(protocol) + " is newer than 5, the highest known");
  }
  result_.protocol = protocol;
  return true;
}

bool Machine::op_frame() {
  if (!need(8)) return false;
  const uint64_t length = reader_.u64();
  if (length > reader_.remaining()) {
    return fail("a frame of " + std::to_string(length) + " bytes, but only " +
                std::to_string(reader_.remaining()) + " remain");
  }
  return true;  // frames only group opcodes for reading ahead
}

bool Machine::op_stop() {
  Value* value = pop();
  if (value == nullptr) return false;
  if (!marks_.empty()) return fail(std::to_string(marks_.size()) + " MARK(s) left open at STOP");
  if (!stack_.empty()) {
    return fail(std::to_string(stack_.size()) + " value(s) left on the stack at STOP");
  }
  stopped_ = true;
  stopped_value_ = value;
  return true;
}

bool Machine::op_mark() {
  if (marks_.size() >= limits_.max_marks) {
    return fail("more than " + std::to_string(limits_.max_marks) +
                " MARKs open at once (Limits::max_marks)");
  }
  marks_.push_back(stack_.size());
  return true;
}

bool Machine::op_pop() {
  if (!marks_.empty() && marks_.back() == stack_.size()) {  // POP right after MARK drops it
    marks_.pop_back();
    return true;
  }
  return pop() != nullptr;
}

bool Machine::op_pop_mark() {
  std::vector<Value*> dropped;
  return pop_mark(dropped);
}

bool Machine::op_dup() {
  return push(top());
}

// ---- scalars ----

bool Machine::push_boolean(bool value) {
  Value* out = make(Kind::boolean);
  if (out != nullptr) out->boolean = value;
  return push(out);
}

bool Machine::push_integer_text(std::string_view text) {
  if (text.size() > 3 * limits_.max_integer_bytes) {
    return fail("an integer of " + std::to_string(text.size()) + " digits exceeds the limit (" +
                std::to_string(limits_.max_integer_bytes) + " bytes, Limits::max_integer_bytes)");
  }
  const auto integer = integer_from_decimal(text);
  if (!integer) return fail("\"" + std::string(text.substr(0, 40)) + "\" is not an integer");
  return push(make_integer(*integer));
}

bool Machine::op_int() {
  std::string line;
  if (!read_line(line)) return false;
  if (line == "00" || line == "01") return push_boolean(line == "01");  // protocol 0's bools
  return push_integer_text(line);
}

bool Machine::op_binint() {
  if (!need(4)) return false;
  return push(make_integer({true, reader_.i32(), {}}));
}

bool Machine::op_binint1() {
  if (!need(1)) return false;
  return push(make_integer({true, reader_.u8(), {}}));
}

bool Machine::op_binint2() {
  if (!need(2)) return false;
  return push(make_integer({true, reader_.u16(), {}}));
}

bool Machine::op_long() {
  std::string line;
  if (!read_line(line)) return false;
  if (!line.empty() && line.back() == 'L') line.pop_back();
  return push_integer_text(line);
}

bool Machine::push_long(uint64_t length) {
  if (length > limits_.max_integer_bytes) {
    return fail("an integer of " + std::to_string(length) + " bytes exceeds the limit of " +
                std::to_string(limits_.max_integer_bytes) + " (Limits::max_integer_bytes)");
  }
  std::string bytes;
  if (!read_bytes(length, bytes)) return false;
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  return push(make_integer(integer_from_twos_complement({data, bytes.size()})));
}

bool Machine::op_long1() {
  return need(1) && push_long(reader_.u8());
}

bool Machine::op_long4() {
  if (!need(4)) return false;
  const int32_t length = reader_.i32();
  if (length < 0) return fail("negative byte count " + std::to_string(length));
  return push_long(static_cast<uint64_t>(length));
}

bool Machine::op_float() {
  std::string line;
  if (!read_line(line)) return false;
  const auto value = float_from_text(line);
  if (!value) return fail("\"" + line.substr(0, 40) + "\" is not a float");
  Value* out = make(Kind::floating);
  if (out != nullptr) out->floating = *value;
  return push(out);
}

bool Machine::op_binfloat() {
  if (!need(8)) return false;
  std::array<std::byte, 8> bytes{};
  if (!reader_.read_into(bytes)) return fail(reader_.error().value_or("read error"));
  Value* out = make(Kind::floating);
  if (out != nullptr) out->floating = std::bit_cast<double>(read_be<uint64_t>(bytes.data()));
  return push(out);
}

// ---- strings and bytes ----

// Python 2's str (STRING, BINSTRING, SHORT_BINSTRING), decoded as torch.load decodes it
// (encoding="utf-8").
bool Machine::push_string(std::string bytes) {
  if (!is_valid_utf8(bytes)) return fail("a Python 2 string that is not UTF-8");
  return push(make_text(Kind::string, std::move(bytes)));
}

bool Machine::push_counted_text(Kind kind, uint64_t length) {
  std::string text;
  if (!read_bytes(length, text)) return false;
  if (kind == Kind::string && !is_valid_utf8(text)) return fail("a str that is not UTF-8");
  return push(make_text(kind, std::move(text)));
}

bool Machine::op_string() {
  std::string line;
  if (!read_line(line) || !charge_text(line.size())) return false;
  auto bytes = decode_quoted_string(line);
  if (!bytes) return fail("the argument is not a quoted Python string literal");
  return push_string(std::move(*bytes));
}

bool Machine::op_binstring() {
  if (!need(4)) return false;
  const int32_t length = reader_.i32();
  if (length < 0) return fail("negative byte count " + std::to_string(length));
  std::string bytes;
  return read_bytes(static_cast<uint64_t>(length), bytes) && push_string(std::move(bytes));
}

bool Machine::op_short_binstring() {
  if (!need(1)) return false;
  std::string bytes;
  return read_bytes(reader_.u8(), bytes) && push_string(std::move(bytes));
}

bool Machine::op_unicode() {
  std::string line;
  if (!read_line(line)) return false;
  auto text = decode_raw_unicode_escape(line);
  if (!text) return fail("a bad \\u escape or a surrogate in raw-unicode-escape text");
  if (!charge_text(text->size())) return false;
  return push(make_text(Kind::string, std::move(*text)));
}

bool Machine::op_binunicode() {
  return need(4) && push_counted_text(Kind::string, reader_.u32());
}
bool Machine::op_short_binunicode() {
  return need(1) && push_counted_text(Kind::string, reader_.u8());
}
bool Machine::op_binunicode8() {
  return need(8) && push_counted_text(Kind::string, reader_.u64());
}
bool Machine::op_binbytes() {
  return need(4) && push_counted_text(Kind::bytes, reader_.u32());
}
bool Machine::op_short_binbytes() {
  return need(1) && push_counted_text(Kind::bytes, reader_.u8());
}
bool Machine::op_binbytes8() {
  return need(8) && push_counted_text(Kind::bytes, reader_.u64());
}
bool Machine::op_bytearray8() {
  return need(8) && push_counted_text(Kind::bytearray, reader_.u64());
}

bool Machine::op_next_buffer() {
  return fail("an out-of-band buffer (protocol 5), whose bytes are not in the pickle");
}

// ---- containers ----

bool Machine::op_marked_container(Kind kind) {
  std::vector<Value*> items;
  return pop_mark(items) && push(make_container(kind, items));
}

bool Machine::push_tuple(size_t count) {
  if (stack_.size() < fence() + count) {
    return fail("needs " + std::to_string(count) + " values above the last MARK, has " +
                std::to_string(stack_.size() - fence()));
  }
  const std::vector<Value*> items(stack_.end() - static_cast<std::ptrdiff_t>(count), stack_.end());
  stack_.resize(stack_.size() - count);
  return push(make_container(Kind::tuple, items));
}

bool Machine::op_dict() {
  std::vector<Value*> items;
  if (!pop_mark(items)) return false;
  if (items.size() % 2 != 0) return fail("an odd number of items for DICT");
  return push(make_container(Kind::dict, items));
}

bool Machine::append_to(Value* target, const std::vector<Value*>& items) {
  if (target->kind != Kind::list && target->kind != Kind::call) {
    return fail(std::string("appends to a ") + kind_name(target->kind) + ", not to a list");
  }
  if (!charge_items(items.size())) return false;
  target->items.insert(target->items.end(), items.begin(), items.end());
  return true;
}

bool Machine::set_items_of(Value* target, const std::vector<Value*>& pairs) {
  if (pairs.size() % 2 != 0) return fail("an odd number of items for SETITEMS");
  if (target->kind != Kind::dict && target->kind != Kind::call) {
    return fail(std::string("sets items of a ") + kind_name(target->kind) + ", not of a dict");
  }
  if (!charge_items(pairs.size())) return false;
  auto& slots = target->kind == Kind::dict ? target->items : target->dict_items;
  slots.insert(slots.end(), pairs.begin(), pairs.end());
  return true;
}

bool Machine::op_append() {
  Value* item = pop();
  Value* target = item != nullptr ? top() : nullptr;
  return target != nullptr && append_to(target, {item});
}

bool Machine::op_setitem() {
  Value* value = pop();
  Value* key = value != nullptr ? pop() : nullptr;
  Value* target = key != nullptr ? top() : nullptr;
  return target != nullptr && set_items_of(target, {key, value});
}

// APPENDS, SETITEMS and ADDITEMS change the value just below their MARK.
Value* Machine::pop_mark_target(std::vector<Value*>& items) {
  if (!pop_mark(items)) return nullptr;
  if (stack_.size() <= fence()) {
    fail("nothing below its MARK to change");
    return nullptr;
  }
  return stack_.back();
}

bool Machine::op_appends() {
  std::vector<Value*> items;
  Value* target = pop_mark_target(items);
  return target != nullptr && append_to(target, items);
}

bool Machine::op_setitems() {
  std::vector<Value*> items;
  Value* target = pop_mark_target(items);
  return target != nullptr && set_items_of(target, items);
}

bool Machine::op_additems() {
  std::vector<Value*> items;
  Value* target = pop_mark_target(items);
  if (target == nullptr) return false;
  if (target->kind != Kind::set) {
    return fail(std::string("adds items to a ") + kind_name(target->kind) + ", not to a set");
  }
  if (!charge_items(items.size())) return false;
  target->items.insert(target->items.end(), items.begin(), items.end());
  return true;
}

// ---- memo ----

bool Machine::op_get() {
  uint64_t index = 0;
  return read_index_line(index) && memo_get(index);
}
bool Machine::op_binget() {
  return need(1) && memo_get(reader_.u8());
}
bool Machine::op_long_binget() {
  return need(4) && memo_get(reader_.u32());
}
bool Machine::op_put() {
  uint64_t index = 0;
  return read_index_line(index) && memo_put(index);
}
bool Machine::op_binput() {
  return need(1) && memo_put(reader_.u8());
}
bool Machine::op_long_binput() {
  return need(4) && memo_put(reader_.u32());
}

// ---- globals, calls, persistent ids ----

bool Machine::op_ext() {
  return fail(
      "an extension-registry code (copyreg), which names a global only in the process "
      "that registered it (refused)");
}

bool Machine::op_global() {
  std::string module;
  std::string name;
  return read_line(module) && read_line(name) &&
         push(make_global(std::move(module), std::move(name)));
}

bool Machine::op_stack_global() {
  Value* name = pop();
  Value* module = name != nullptr ? pop() : nullptr;
  if (module == nullptr) return false;
  if (module->kind != Kind::string || name->kind != Kind::string) {
    return fail(std::string("module and name must be str, not ") + kind_name(module->kind) +
                " and " + kind_name(name->kind));
  }
  return push(make_global(module->text, name->text));
}

bool Machine::op_inst() {
  std::string module;
  std::string name;
  if (!read_line(module) || !read_line(name)) return false;
  std::vector<Value*> args;
  if (!pop_mark(args)) return false;
  Value* callable = make_global(std::move(module), std::move(name));
  Value* tuple = callable != nullptr ? make_container(Kind::tuple, args) : nullptr;
  return tuple != nullptr && push(make_call(Value::CallOpcode::inst, callable, tuple, nullptr));
}

bool Machine::op_obj() {
  std::vector<Value*> items;
  if (!pop_mark(items)) return false;
  if (items.empty()) return fail("no class after its MARK");
  Value* tuple = make_container(Kind::tuple, {items.begin() + 1, items.end()});
  return tuple != nullptr && push(make_call(Value::CallOpcode::obj, items[0], tuple, nullptr));
}

bool Machine::op_reduce() {
  Value* args = pop();
  Value* callable = args != nullptr ? pop() : nullptr;
  if (callable == nullptr) return false;
  if (args->kind != Kind::tuple) {
    return fail(std::string("the arguments are a ") + kind_name(args->kind) + ", not a tuple");
  }
  return push(make_call(Value::CallOpcode::reduce, callable, args, nullptr));
}

bool Machine::op_newobj() {
  Value* args = pop();
  Value* cls = args != nullptr ? pop() : nullptr;
  if (cls == nullptr) return false;
  if (args->kind != Kind::tuple) {
    return fail(std::string("the arguments are a ") + kind_name(args->kind) + ", not a tuple");
  }
  return push(make_call(Value::CallOpcode::newobj, cls, args, nullptr));
}

bool Machine::op_newobj_ex() {
  Value* kwargs = pop();
  Value* args = kwargs != nullptr ? pop() : nullptr;
  Value* cls = args != nullptr ? pop() : nullptr;
  if (cls == nullptr) return false;
  if (args->kind != Kind::tuple || kwargs->kind != Kind::dict) {
    return fail(std::string("needs a tuple and a dict, not a ") + kind_name(args->kind) +
                " and a " + kind_name(kwargs->kind));
  }
  return push(make_call(Value::CallOpcode::newobj_ex, cls, args, kwargs));
}

bool Machine::op_build() {
  Value* state = pop();
  Value* target = state != nullptr ? top() : nullptr;
  if (target == nullptr) return false;
  if (target->kind != Kind::call) {
    return fail(std::string("sets the state of a ") + kind_name(target->kind) +
                ", not of an object a call made");
  }
  target->state = state;  // a later BUILD replaces it, as a second __setstate__ would
  return true;
}

bool Machine::make_persistent_id(Value* pid) {
  Value* value = pid != nullptr ? make(Kind::persistent_id) : nullptr;
  if (value != nullptr) value->pid = pid;
  return push(value);
}

bool Machine::op_persid() {
  std::string line;
  if (!read_line(line) || !charge_text(line.size())) return false;
  if (!std::all_of(line.begin(), line.end(), [](char c) { return (c & 0x80) == 0; })) {
    return fail("a persistent id that is not ASCII");
  }
  return make_persistent_id(make_text(Kind::string, std::move(line)));
}

bool Machine::op_binpersid() {
  return make_persistent_id(pop());
}

}  // namespace detail
}  // namespace payloadfs::formats::pickle
