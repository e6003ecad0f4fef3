#pragma once
// The state of the pickle machine (pickle_machine.hpp), shared by pickle_machine.cpp (stack,
// memo, limits, the loop) and pickle_opcodes.cpp (one handler per opcode). Internal.

#include <array>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/formats/support/pickle_machine.hpp"
#include "core/formats/support/pickle_text.hpp"
#include "core/io/binary_reader.hpp"

namespace payloadfs::formats::pickle::detail {

using Kind = Value::Kind;
constexpr int kHighestProtocol = 5;

class Machine {
 public:
  Machine(BinaryReader& reader, const Limits& limits, Result& result)
      : reader_(reader), limits_(limits), result_(result), start_(reader.tell()) {}
  void run();

 private:
  using Handler = bool (Machine::*)();
  static const std::array<Handler, 256>& handlers();

  bool fail(const std::string& message);
  // Input.
  bool need(uint64_t count);
  bool read_bytes(uint64_t length, std::string& out);
  bool read_line(std::string& out);
  bool read_index_line(uint64_t& index);
  // Allocation, counted against the limits.
  Value* make(Kind kind);
  bool charge_items(size_t count);
  bool charge_text(size_t count);
  Value* make_text(Kind kind, std::string text);
  Value* make_integer(const Integer& integer);
  Value* make_container(Kind kind, const std::vector<Value*>& items);
  Value* make_global(std::string module, std::string name);
  Value* make_call(Value::CallOpcode opcode, Value* callable, Value* args, Value* kwargs);
  // The stack, its MARKs and the memo.
  bool push(Value* value);
  [[nodiscard]] size_t fence() const { return marks_.empty() ? 0 : marks_.back(); }
  Value* pop();
  Value* top();
  bool pop_mark(std::vector<Value*>& items);
  // Pops to the last MARK and returns the value below it (APPENDS, SETITEMS, ADDITEMS).
  Value* pop_mark_target(std::vector<Value*>& items);
  bool memo_get(uint64_t index);
  bool memo_put(uint64_t index);
  // Opcodes shared by several handlers.
  bool push_integer_text(std::string_view text);
  bool push_string(std::string bytes);
  bool push_counted_text(Kind kind, uint64_t length);
  bool push_long(uint64_t length);
  bool push_tuple(size_t count);
  bool append_to(Value* target, const std::vector<Value*>& items);
  bool set_items_of(Value* target, const std::vector<Value*>& pairs);

  // One handler per opcode (pickletools' names).
  bool op_proto();
  bool op_frame();
  bool op_stop();
  bool op_mark();
  bool op_pop();
  bool op_pop_mark();
  bool op_dup();
  bool op_none() { return push(make(Kind::none)); }
  bool op_newtrue() { return push_boolean(true); }
  bool op_newfalse() { return push_boolean(false); }
  bool push_boolean(bool value);
  bool op_int();
  bool op_binint();
  bool op_binint1();
  bool op_binint2();
  bool op_long();
  bool op_long1();
  bool op_long4();
  bool op_float();
  bool op_binfloat();
  bool op_string();
  bool op_binstring();
  bool op_short_binstring();
  bool op_unicode();
  bool op_binunicode();
  bool op_short_binunicode();
  bool op_binunicode8();
  bool op_binbytes();
  bool op_short_binbytes();
  bool op_binbytes8();
  bool op_bytearray8();
  bool op_next_buffer();
  bool op_readonly_buffer() { return top() != nullptr; }
  bool op_empty_list() { return push(make(Kind::list)); }
  bool op_empty_tuple() { return push(make(Kind::tuple)); }
  bool op_empty_dict() { return push(make(Kind::dict)); }
  bool op_empty_set() { return push(make(Kind::set)); }
  bool op_list() { return op_marked_container(Kind::list); }
  bool op_tuple() { return op_marked_container(Kind::tuple); }
  bool op_frozenset() { return op_marked_container(Kind::frozenset); }
  bool op_marked_container(Kind kind);
  bool op_tuple1() { return push_tuple(1); }
  bool op_tuple2() { return push_tuple(2); }
  bool op_tuple3() { return push_tuple(3); }
  bool op_dict();
  bool op_append();
  bool op_appends();
  bool op_setitem();
  bool op_setitems();
  bool op_additems();
  bool op_get();
  bool op_binget();
  bool op_long_binget();
  bool op_put();
  bool op_binput();
  bool op_long_binput();
  bool op_memoize() { return memo_put(memo_.size()); }
  bool op_ext();
  bool op_global();
  bool op_stack_global();
  bool op_inst();
  bool op_obj();
  bool op_reduce();
  bool op_newobj();
  bool op_newobj_ex();
  bool op_build();
  bool op_persid();
  bool op_binpersid();
  bool make_persistent_id(Value* pid);

  void finish();

  BinaryReader& reader_;
  const Limits& limits_;
  Result& result_;
  const uint64_t start_;
  uint64_t opcode_offset_ = 0;  // from start_
  uint8_t opcode_ = 0;
  bool failed_ = false;
  bool stopped_ = false;
  Value* stopped_value_ = nullptr;
  std::vector<Value*> stack_;
  std::vector<size_t> marks_;  // stack sizes at each open MARK
  std::unordered_map<uint64_t, Value*> memo_;
  std::unordered_set<std::string> seen_globals_;
  size_t items_ = 0;
  size_t text_bytes_ = 0;
};

// "int", "tuple", ... for messages.
[[nodiscard]] const char* kind_name(Value::Kind kind);
// "0x2e".
[[nodiscard]] std::string hex_byte(uint8_t byte);

}  // namespace payloadfs::formats::pickle::detail
