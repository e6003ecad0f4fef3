// The data-only pickle machine against CPython's own unpickler (tests/fixtures/gen_pickle.py
// renders what CPython's stack machine builds, with recording stubs for every import), and
// against a hostile corpus: refused opcodes, bombs, deep nesting, bad lengths, truncations.

#include "core/formats/support/pickle_machine.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "core/io/binary_reader.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

using formats::pickle::Limits;
using formats::pickle::load;
using formats::pickle::Result;
using formats::pickle::Value;
using Kind = Value::Kind;
using namespace std::string_literals;

// The machine's value in the JSON shape gen_pickle.py renders CPython's (see its docstring).
// Shared values are expanded; `budget` bounds the expansion.
Json render(const Value& v, size_t& budget) {
  if (budget == 0) throw std::runtime_error("render budget exhausted");
  --budget;
  auto list = [&budget](const std::vector<const Value*>& items) {
    Json out = Json::array();
    for (const Value* item : items) out.push_back(render(*item, budget));
    return out;
  };
  auto pairs = [&budget](const std::vector<const Value*>& items) {
    Json out = Json::array();
    for (size_t i = 0; i + 1 < items.size(); i += 2) {
      out.push_back(Json::array({render(*items[i], budget), render(*items[i + 1], budget)}));
    }
    return out;
  };
  auto hex = [](const std::string& bytes) {
    std::string out;
    char digits[3];
    for (const char c : bytes) {
      std::snprintf(digits, sizeof digits, "%02x", static_cast<unsigned char>(c));
      out += digits;
    }
    return out;
  };
  switch (v.kind) {
    case Kind::none:
      return nullptr;
    case Kind::boolean:
      return v.boolean;
    case Kind::integer:
      return v.integer;
    case Kind::big_integer:
      return Json{{"int", v.text}};
    case Kind::floating: {
      uint64_t bits = 0;
      std::memcpy(&bits, &v.floating, sizeof bits);
      char text[17];
      std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(bits));
      return Json{{"float", text}};
    }
    case Kind::string:
      return v.text;
    case Kind::bytes:
      return Json{{"bytes", hex(v.text)}};
    case Kind::bytearray:
      return Json{{"bytearray", hex(v.text)}};
    case Kind::tuple:
      return Json{{"tuple", list(v.items)}};
    case Kind::list:
      return list(v.items);
    case Kind::dict:
      return Json{{"dict", pairs(v.items)}};
    case Kind::set:
      return Json{{"set", list(v.items)}};
    case Kind::frozenset:
      return Json{{"frozenset", list(v.items)}};
    case Kind::global:
      return Json{{"global", Json::array({v.module, v.name})}};
    case Kind::persistent_id:
      return Json{{"persistent_id", render(*v.pid, budget)}};
    case Kind::call:
      break;
  }
  const bool is_new =
      v.call_opcode == Value::CallOpcode::newobj || v.call_opcode == Value::CallOpcode::newobj_ex;
  Json out = {{"call", render(*v.callable, budget)},
              {"via", is_new ? "new" : "call"},
              {"args", render(*v.args, budget)}};
  if (v.kwargs != nullptr && !v.kwargs->items.empty()) out["kwargs"] = render(*v.kwargs, budget);
  if (!v.items.empty()) out["items"] = list(v.items);
  if (!v.dict_items.empty()) out["dict_items"] = pairs(v.dict_items);
  if (v.state != nullptr) out["state"] = render(*v.state, budget);
  return out;
}

Json render(const Value& v) {
  size_t budget = 1'000'000;
  return render(v, budget);
}

Result load_text(const std::string& bytes, const Limits& limits = {}) {
  return load(std::as_bytes(std::span(bytes.data(), bytes.size())), limits);
}

std::string errors_of(const Result& r) {
  std::string out;
  for (const auto& e : r.errors) out += e + "\n";
  return out;
}

// The pickle fails with an error containing `text`, and no root.
void expect_refused(const std::string& pickle, const std::string& text, const Limits& limits = {}) {
  const Result r = load_text(pickle, limits);
  EXPECT_EQ(r.root, nullptr) << text;
  ASSERT_FALSE(r.errors.empty()) << "no error; expected: " << text;
  EXPECT_NE(r.errors.front().find(text), std::string::npos)
      << "error: " << r.errors.front() << "\nexpected: " << text;
}

std::string fixture_dir() {
  return testing::fixtures_dir() + "/pickle";
}

std::string read_text(const std::string& path) {
  const auto bytes = testing::read_file(path);
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// ---- the real producers: CPython's pickle and torch.save ----

TEST(PickleMachine, MatchesCPythonsUnpicklerOnEveryFixture) {
  const Json expected = testing::read_fixture_json(fixture_dir() + "/expected.json");
  ASSERT_TRUE(expected.is_object());
  ASSERT_GE(expected.size(), 12u);
  for (const auto& [name, want] : expected.items()) {
    SCOPED_TRACE(name);
    const std::string bytes = read_text(fixture_dir() + "/" + want["file"].get<std::string>());
    ASSERT_FALSE(bytes.empty());
    const Result r = load_text(bytes);
    ASSERT_TRUE(r.errors.empty()) << errors_of(r);
    ASSERT_NE(r.root, nullptr);
    EXPECT_EQ(render(*r.root), want["tree"]);
    EXPECT_EQ(Json(r.globals), want["globals"]);
    EXPECT_EQ(r.protocol, want["protocol"].get<int>());
    EXPECT_EQ(r.length, bytes.size());
  }
}

TEST(PickleMachine, TorchStateDictNamesItsStoragesAndImports) {
  const Result r = load_text(read_text(fixture_dir() + "/torch_linear.pkl"));
  ASSERT_NE(r.root, nullptr) << errors_of(r);
  // OrderedDict() then SETITEMS: each value is _rebuild_tensor_v2(persistent_id(...), ...).
  ASSERT_EQ(r.root->kind, Kind::call);
  EXPECT_EQ(r.root->callable->name, "OrderedDict");
  ASSERT_EQ(r.root->dict_items.size(), 4u);
  EXPECT_EQ(r.root->dict_items[0]->text, "weight");
  const Value& tensor = *r.root->dict_items[1];
  ASSERT_EQ(tensor.kind, Kind::call);
  EXPECT_EQ(tensor.callable->module, "torch._utils");
  EXPECT_EQ(tensor.callable->name, "_rebuild_tensor_v2");
  const Value& pid = *tensor.args->items.at(0);
  ASSERT_EQ(pid.kind, Kind::persistent_id);
  ASSERT_EQ(pid.pid->kind, Kind::tuple);
  ASSERT_EQ(pid.pid->items.size(), 5u);
  EXPECT_EQ(pid.pid->items[0]->text, "storage");
  EXPECT_EQ(pid.pid->items[1]->name, "FloatStorage");
  EXPECT_EQ(pid.pid->items[2]->text, "0");
  EXPECT_EQ(pid.pid->items[4]->integer, 6);
  EXPECT_EQ(r.globals,
            (std::vector<std::string>{"collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                                      "torch.FloatStorage"}));
}

TEST(PickleMachine, OsSystemIsRecordedNeverRun) {
  for (const char* file : {"os_system_p0.pkl", "os_system_p2.pkl"}) {
    const Result r = load_text(read_text(fixture_dir() + "/" + file));
    ASSERT_NE(r.root, nullptr) << errors_of(r);
    EXPECT_EQ(r.globals, std::vector<std::string>{"posix.system"}) << file;
  }
  // By hand, protocol 2: os.system("touch <marker>"); the marker must not appear.
  const auto marker = std::filesystem::temp_directory_path() / "payloadfs-pickle-never-run";
  std::filesystem::remove(marker);
  const std::string command = "touch " + marker.string();
  std::string p =
      "\x80\x02"
      "cos\nsystem\n"
      "X";
  for (int i = 0; i < 4; ++i) p += static_cast<char>((command.size() >> (8 * i)) & 0xFF);
  p += command +
       "\x85"
       "R.";
  const Result r = load_text(p);
  ASSERT_NE(r.root, nullptr) << errors_of(r);
  EXPECT_EQ(r.globals, std::vector<std::string>{"os.system"});
  EXPECT_EQ(r.root->kind, Kind::call);
  EXPECT_EQ(r.root->args->items.at(0)->text, command);
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST(PickleMachine, EveryTruncationOfARealPickleFailsCleanly) {
  for (const char* file : {"torch_mixed.pkl", "torch_linear.pkl", "bytearray_p5.pkl",
                           "os_system_p0.pkl", "newobj_ex_p4.pkl"}) {
    const std::string bytes = read_text(fixture_dir() + "/" + file);
    ASSERT_FALSE(bytes.empty()) << file;
    for (size_t n = 0; n < bytes.size(); ++n) {
      const Result r = load_text(bytes.substr(0, n));
      EXPECT_EQ(r.root, nullptr) << file << " cut at " << n;
      EXPECT_FALSE(r.errors.empty()) << file << " cut at " << n;
    }
  }
  // The big ones at a few hundred places each (every byte would be quadratic).
  for (const char* file : {"mixed_p0.pkl", "mixed_p2.pkl", "mixed_p5.pkl"}) {
    const std::string bytes = read_text(fixture_dir() + "/" + file);
    for (size_t n = 0; n < bytes.size(); n += 97) {
      const Result r = load_text(bytes.substr(0, n));
      EXPECT_EQ(r.root, nullptr) << file << " cut at " << n;
      EXPECT_FALSE(r.errors.empty()) << file << " cut at " << n;
    }
  }
}

TEST(PickleMachine, ReadsASubReaderFromItsPosition) {
  // A pickle inside a bigger file, as data.pkl is inside a zip: offsets in errors count from
  // the pickle's first byte, and the reader's range ends the pickle.
  const std::string file =
      "zip header"
      "\x80\x02K\x07."
      "NEXT MEMBER";
  const auto bytes = std::as_bytes(std::span(file.data(), file.size()));
  MemorySource source(bytes);
  BinaryReader whole(source);
  BinaryReader pickle = whole.sub(10, 5);
  const Result r = load(pickle);
  ASSERT_NE(r.root, nullptr) << errors_of(r);
  EXPECT_TRUE(r.errors.empty()) << errors_of(r);
  EXPECT_EQ(r.root->integer, 7);
  EXPECT_EQ(r.length, 5u);
  BinaryReader cut = whole.sub(10, 4);
  const Result failed = load(cut);
  EXPECT_EQ(failed.root, nullptr);
  ASSERT_EQ(failed.errors.size(), 1u);
  EXPECT_EQ(failed.errors[0], "byte 4: the pickle ends without STOP");
}

// ---- protocol 0 text and the opcodes CPython 3 no longer writes ----

TEST(PickleMachine, ProtocolZeroTextForms) {
  const Result r = load_text(
      "(S'a\\nb\\x41\\101\\''\nI01\nI00\nI-7\nL123456789012345678901234567890L\nF-1.5\n"
      "Vx\\u00e9\\U0001f600\np5\ng5\nP17\nl.");
  ASSERT_NE(r.root, nullptr) << errors_of(r);
  const Json want = Json::parse(R"(["a\nbAA'", true, false, -7,
      {"int": "123456789012345678901234567890"}, {"float": "bff8000000000000"},
      "xé😀", "xé😀", {"persistent_id": "17"}])");
  EXPECT_EQ(render(*r.root), want);
}

TEST(PickleMachine, InstAndObjAreRecordedCalls) {
  const Result ok = load_text("((I1\nimod\ncls\n(cpkg.mod\nOther\nI2\not.");
  ASSERT_NE(ok.root, nullptr) << errors_of(ok);
  EXPECT_EQ(render(*ok.root), Json::parse(R"({"tuple": [
      {"call": {"global": ["mod", "cls"]}, "via": "call", "args": {"tuple": [1]}},
      {"call": {"global": ["pkg.mod", "Other"]}, "via": "call", "args": {"tuple": [2]}}]})"));
  EXPECT_EQ(ok.root->items[0]->call_opcode, Value::CallOpcode::inst);
  EXPECT_EQ(ok.root->items[1]->call_opcode, Value::CallOpcode::obj);
  EXPECT_EQ(ok.globals, (std::vector<std::string>{"mod.cls", "pkg.mod.Other"}));
}

TEST(PickleMachine, PopAfterMarkDropsTheMark) {
  const Result r = load_text("(0N.");
  ASSERT_NE(r.root, nullptr) << errors_of(r);
  EXPECT_EQ(r.root->kind, Kind::none);
}

// ---- hostile input ----

TEST(PickleMachine, RefusesEveryByteThatIsNoDataOpcode) {
  int refused = 0;
  for (int byte = 0; byte < 256; ++byte) {
    const auto code = static_cast<uint8_t>(byte);
    if (*formats::pickle::opcode_name(code) != '\0') continue;
    SCOPED_TRACE(byte);
    expect_refused(std::string(1, static_cast<char>(byte)) + "N.", "is unknown (refused)");
    ++refused;
  }
  EXPECT_EQ(refused, 256 - 68);  // pickletools lists 68 opcodes
  expect_refused("\x82\x01.", "extension-registry");
  expect_refused("\x83\x01\x00."s, "extension-registry");
  expect_refused("\x84\x01\x00\x00\x00."s, "extension-registry");
  expect_refused("\x80\x05\x97.", "out-of-band buffer");
  expect_refused("\x80\x06N.", "protocol 6 is newer");
}

TEST(PickleMachine, StackMarksAndStop) {
  expect_refused("0", "pops an empty stack");
  expect_refused(".", "pops an empty stack");
  expect_refused("R.", "pops an empty stack");
  expect_refused("Q.", "pops an empty stack");
  expect_refused("N(\x85.", "needs 1 values above the last MARK");
  expect_refused("N(R.", "pops past a MARK");
  expect_refused("t.", "no MARK");
  expect_refused("(N.", "MARK(s) left open at STOP");
  expect_refused("NN.", "value(s) left on the stack at STOP");
  expect_refused("N", "ends without STOP");
  expect_refused("", "ends without STOP");
  expect_refused("(Ne.", "nothing below its MARK");
  // Bytes after STOP: an error, but the value stands.
  const Result trailing = load_text("N.N");
  ASSERT_NE(trailing.root, nullptr);
  ASSERT_EQ(trailing.errors.size(), 1u);
  EXPECT_NE(trailing.errors[0].find("1 bytes after STOP"), std::string::npos) << trailing.errors[0];
  EXPECT_EQ(trailing.length, 2u);
}

TEST(PickleMachine, WrongTargetsAndArguments) {
  expect_refused(
      "(NNt"
      "N"
      "a.",
      "appends to a tuple");
  expect_refused("]NNs.", "sets items of a list");
  expect_refused("}Nb.", "sets the state of a dict");
  expect_refused("](N\x90.", "adds items to a list");
  expect_refused("cm\nf\nNR.", "the arguments are a None, not a tuple");
  expect_refused("cm\nf\nN\x81.", "not a tuple");
  expect_refused("cm\nf\n)N\x92.", "needs a tuple and a dict");
  expect_refused("(NNNd.", "odd number of items for DICT");
  expect_refused("}(Nu.", "odd number of items for SETITEMS");
  expect_refused("(o.", "no class after its MARK");
  expect_refused("K\x01K\x02\x93.", "module and name must be str");
  expect_refused("X\x02\x00\x00\x00\xff\xfe."s, "not UTF-8");
  expect_refused("S'\xff'\n.", "not UTF-8");
  expect_refused("Vbad \\u12\n.", "bad \\u escape");
  expect_refused("Sunquoted\n.", "not a quoted Python string literal");
  expect_refused("Inope\n.", "is not an integer");
  expect_refused("Fnope\n.", "is not a float");
  expect_refused("Pn\xc3\xa9\n.", "not ASCII");
  expect_refused("c\xff\nname\n.", "not UTF-8");
}

TEST(PickleMachine, MemoIsAMapWithLimits) {
  // The largest indexes cost one entry each; a missing one is an error.
  const Result big = load_text(
      "Nr\xff\xff\xff\xff"
      "0j\xff\xff\xff\xff.");
  ASSERT_NE(big.root, nullptr) << errors_of(big);
  const Result text = load_text("Np18446744073709551615\n0g18446744073709551615\n.");
  ASSERT_NE(text.root, nullptr) << errors_of(text);
  expect_refused("Np18446744073709551616\n.", "is not a decimal number");
  expect_refused("Np-1\n.", "is not a decimal number");
  expect_refused("h\x07.", "memo index 7 was never stored");
  expect_refused("q\x00."s, "pops an empty stack");
  Limits small;
  small.max_memo = 10;
  std::string many = "N";
  for (int i = 0; i < 11; ++i) many += "\x94";
  expect_refused(many + ".", "more than 10 memo entries", small);
  // Re-storing one index does not grow the memo.
  std::string same = "N";
  for (int i = 0; i < 50; ++i) same += "q\x03";
  const Result reused = load_text(same + ".", small);
  EXPECT_NE(reused.root, nullptr) << errors_of(reused);
}

TEST(PickleMachine, BinpersidTakesAnyValueAndRecordsIt) {
  const Result r = load_text("\x80\x02K\x05Q.");
  ASSERT_NE(r.root, nullptr) << errors_of(r);
  EXPECT_EQ(render(*r.root), Json::parse(R"({"persistent_id": 5})"));
  const Result garbage = load_text("\x80\x02(K\x01]}tQ.");
  ASSERT_NE(garbage.root, nullptr) << errors_of(garbage);
  EXPECT_EQ(render(*garbage.root),
            Json::parse(R"({"persistent_id": {"tuple": [1, [], {"dict": []}]}})"));
}

TEST(PickleMachine, SharedStructureBombCostsWhatItAllocates) {
  // x = []; then 150 times x = (x, x): 2^150 leaves when expanded, 151 values allocated.
  std::string p =
      "\x80\x02]q\x00"
      "0"s;
  for (int i = 0; i < 150; ++i)
    p += "h\x00h\x00\x86q\x00"
         "0"s;
  p += "h\x00."s;
  const Result r = load_text(p);
  ASSERT_NE(r.root, nullptr) << errors_of(r);
  EXPECT_LE(r.values.size(), 151u);
  // The same past the depth limit is refused by the graph check, not by expanding it.
  std::string deep =
      "\x80\x02]q\x00"
      "0"s;
  for (int i = 0; i < 250; ++i)
    deep +=
        "h\x00h\x00\x86q\x00"
        "0"s;
  expect_refused(deep + "h\x00."s, "nests deeper than 200");
}

TEST(PickleMachine, DeepNestingIsRefused) {
  expect_refused(std::string(20'000, '('), "MARKs open at once");
  std::string tuples = ")";
  for (int i = 0; i < 100'000; ++i) tuples += "\x85";
  expect_refused(tuples + ".", "nests deeper than 200");
  std::string lists = std::string(5'000, ']') + std::string(4'999, 'a') + ".";
  expect_refused(lists, "nests deeper than 200");
  // Just inside the limit is fine.
  std::string ok = ")";
  for (int i = 0; i < 200; ++i) ok += "\x85";
  const Result r = load_text(ok + ".");
  EXPECT_NE(r.root, nullptr) << errors_of(r);
}

TEST(PickleMachine, CyclesAreRefused) {
  expect_refused(
      "]q\x00h\x00"
      "a."s,
      "holds itself");
  expect_refused("}q\x00K\x01h\x00s."s, "holds itself");
  expect_refused(
      "cm\nC\n)Rq\x00h\x00"
      "b."s,
      "holds itself");
}

TEST(PickleMachine, HugeDeclaredLengths) {
  expect_refused(
      "X\xff\xff\xff\xff"
      "abc",
      "declares 4294967295 bytes, but only 3 remain");
  expect_refused(
      "\x8e\xff\xff\xff\xff\xff\xff\xff\x7f"
      "ab",
      "declares 9223372036854775807 bytes");
  Limits small;
  small.max_string_bytes = 2;
  expect_refused(
      "C\x03"
      "abc.",
      "exceeds the limit of 2", small);
  expect_refused(
      "B\x10\x00\x00\x00"
      "ab"s,
      "declares 16 bytes, but only 2 remain");
  expect_refused(
      "\x8b\xff\xff\xff\x7f"
      "ab",
      "exceeds the limit of 1024");
  expect_refused(
      "\x8b\x00\x00\x00\x80"
      "ab"s,
      "negative byte count");
  expect_refused(
      "T\xff\xff\xff\xff"
      "ab",
      "negative byte count");
  expect_refused("\x95\x00\x00\x00\x01\x00\x00\x00\x00N."s, "a frame of 16777216 bytes");
  expect_refused("J\x01\x00"s, "needs 4 bytes of argument");
  expect_refused("cmodule", "runs past the end");
  expect_refused("I" + std::string(100'000, '1') + "\n.", "longer than 65536 bytes");
  expect_refused("I" + std::string(4'000, '1') + "\n.", "exceeds the limit");
}

TEST(PickleMachine, CountLimits) {
  Limits limits;
  limits.max_values = 1000;
  expect_refused(std::string(2000, 'N'), "more than 1000 values", limits);
  limits = {};
  limits.max_items = 100;
  std::string appends = "](" + std::string(60, 'N') + "e(" + std::string(60, 'N') + "e.";
  expect_refused(appends, "more than 100 container items", limits);
  limits = {};
  limits.max_stack = 50;
  expect_refused(std::string(51, 'N'), "the stack grows past 50", limits);
  limits = {};
  limits.max_text_bytes = 10;
  expect_refused(
      "C\x08"
      "abcdefghC\x08"
      "abcdefgh\x86.",
      "bytes of strings in all", limits);
  limits = {};
  limits.max_globals = 2;
  expect_refused("ca\nb\nca\nb\ncc\nd\nce\nf\n.", "more than 2 globals", limits);
  // DUP into APPENDS: one allocation per slot, counted.
  limits = {};
  limits.max_items = 1000;
  const std::string dup_bomb = "]N" + std::string(2000, '2');
  expect_refused("](" + dup_bomb.substr(1) + "e.", "container items", limits);
}

TEST(PickleMachine, BigIntegersInDecimal) {
  // LONG1 of 9 bytes: 2^64 and -2^64 - 1; padded small values still fit int64.
  const Result r = load_text(
      "(\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01"
      "\x8a\x09\xff\xff\xff\xff\xff\xff\xff\xff\xfe"
      "\x8a\x0a\x05\x00\x00\x00\x00\x00\x00\x00\x00\x00"
      "\x8a\x00"
      "\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80l."s);
  ASSERT_NE(r.root, nullptr) << errors_of(r);
  EXPECT_EQ(render(*r.root), Json::parse(R"([{"int": "18446744073709551616"},
      {"int": "-18446744073709551617"}, 5, 0, -9223372036854775808])"));
}

}  // namespace
}  // namespace payloadfs
