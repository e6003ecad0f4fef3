#pragma once
// A data-only pickle reader: the stack machine of CPython's Lib/pickle.py (protocols 0 to 5)
// for the opcodes a data pickle uses, which never calls, imports or executes anything. What
// REDUCE, NEWOBJ, OBJ, INST and BUILD would do is recorded as a `call` value; every global the
// pickle names (what pickle.load / torch.load would import) is listed in Result::globals.
// Unknown opcodes, malformed arguments and exceeded limits stop the machine with an error
// string; load() never throws. Used by the pytorch format for torch.save's data.pkl.
//
// API changes (newest first): none yet.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace payloadfs {
class BinaryReader;
}

namespace payloadfs::formats::pickle {

// A Python value as the pickle describes it. Values are owned by the Result that load()
// returned and point at each other with plain pointers, valid while that Result lives. A value
// may be shared (the memo: BINGET of one entry twice), so a walker that expands the tree
// should count what it visits; a successful load guarantees the graph under `root` has no
// cycle and nests at most Limits::max_depth deep.
struct Value {
  enum class Kind {
    none,
    boolean,        // `boolean`
    integer,        // `integer` (any integer that fits in int64)
    big_integer,    // `text`: decimal digits, with a leading '-' when negative
    floating,       // `floating`
    string,         // `text`: UTF-8 (str; also protocol-0/Python 2 STRING, decoded as UTF-8)
    bytes,          // `text`: the raw bytes
    bytearray,      // `text`: the raw bytes (BYTEARRAY8)
    tuple,          // `items`
    list,           // `items`
    dict,           // `items`: key, value, key, value... in the order the pickle set them
    set,            // `items`
    frozenset,      // `items`
    global,         // `module`, `name` (GLOBAL, STACK_GLOBAL; INST's class)
    call,           // `callable`, `args` (a tuple), `kwargs`, `items`, `dict_items`, `state`
    persistent_id,  // `pid` (PERSID: a string; BINPERSID: any value)
  };
  // How a call value was made: REDUCE, OBJ and INST call the callable with `args`, NEWOBJ and
  // NEWOBJ_EX call callable.__new__(callable, *args, **kwargs).
  enum class CallOpcode { reduce, obj, inst, newobj, newobj_ex };

  Kind kind = Kind::none;
  bool boolean = false;
  int64_t integer = 0;
  double floating = 0;
  std::string text;
  std::string module;  // global
  std::string name;    // global
  // tuple, list, set, frozenset: the elements; dict: keys and values alternating; call: what
  // APPEND/APPENDS added to the object the call produced.
  std::vector<const Value*> items;
  // call: key, value, key, value... that SETITEM/SETITEMS set on the produced object.
  std::vector<const Value*> dict_items;
  CallOpcode call_opcode = CallOpcode::reduce;
  const Value* callable = nullptr;  // call: usually a global
  const Value* args = nullptr;      // call: a tuple (never null for a call)
  const Value* kwargs = nullptr;    // call (NEWOBJ_EX only): a dict
  const Value* state = nullptr;     // call: the last BUILD's state, or null
  const Value* pid = nullptr;       // persistent_id: the persistent id
};

// Bounds on what one load() allocates; the defaults fit the data.pkl of checkpoints of up to
// about 50,000 tensors (torch.save writes about 20 values per tensor). Shared values count
// once: a count is of what is allocated.
struct Limits {
  static constexpr size_t kMaxValues = 1'000'000;
  static constexpr size_t kMaxItems = 4'000'000;
  static constexpr size_t kMaxTextBytes = 64u << 20;
  static constexpr size_t kMaxStringBytes = 16u << 20;
  static constexpr size_t kMaxIntegerBytes = 1024;
  static constexpr size_t kMaxStack = 1'000'000;
  static constexpr size_t kMaxMarks = 10'000;
  static constexpr size_t kMaxMemo = 1'000'000;
  static constexpr size_t kMaxDepth = 200;
  static constexpr size_t kMaxGlobals = 10'000;
  static constexpr size_t kMaxLineBytes = 64u << 10;

  size_t max_values = kMaxValues;               // values created
  size_t max_items = kMaxItems;                 // container slots, all containers together
  size_t max_text_bytes = kMaxTextBytes;        // bytes of all strings, bytes and big integers
  size_t max_string_bytes = kMaxStringBytes;    // one string or bytes value
  size_t max_integer_bytes = kMaxIntegerBytes;  // one LONG1/LONG4 (or LONG text) integer
  size_t max_stack = kMaxStack;                 // entries on the stack
  size_t max_marks = kMaxMarks;                 // MARKs open at once
  size_t max_memo = kMaxMemo;                   // memo entries (the memo is a map)
  size_t max_depth = kMaxDepth;                 // nesting of the result under root
  size_t max_globals = kMaxGlobals;             // distinct globals
  size_t max_line_bytes = kMaxLineBytes;        // one newline-ended argument (protocol 0)
};

struct Result {
  // The value STOP returned; null when the machine failed before or at STOP (a MARK left
  // open, values left on the stack) or its result broke a limit (a cycle, too deep). Bytes
  // after STOP are an error but keep `root`.
  const Value* root = nullptr;
  // "module.name" of every GLOBAL, STACK_GLOBAL and INST, deduplicated, in first-seen order;
  // filled up to a failure, so a refused pickle still says what it would have imported.
  std::vector<std::string> globals;
  // Why the machine stopped or what it cut, e.g. "byte 17 (BINGET): memo index 4 was never
  // stored" (byte offsets from the pickle's first byte). Empty for a clean pickle.
  std::vector<std::string> errors;
  // The pickle's protocol (PROTO's argument; 0 without PROTO) and the bytes it took, STOP
  // included.
  int protocol = 0;
  uint64_t length = 0;
  // Owns every value (move-only).
  std::vector<std::unique_ptr<Value>> values;
};

// Reads one pickle from the reader's position to its end (a sub-reader over data.pkl).
[[nodiscard]] Result load(BinaryReader& reader, const Limits& limits = {});
[[nodiscard]] Result load(std::span<const std::byte> bytes, const Limits& limits = {});

// The opcode's name as pickletools spells it ("BINGET"), or "" for a byte that is no opcode.
[[nodiscard]] const char* opcode_name(uint8_t opcode);

}  // namespace payloadfs::formats::pickle
