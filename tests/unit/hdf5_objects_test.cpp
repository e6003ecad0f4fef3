// hdf5 structure: files written by h5py and netCDF4-python (tests/fixtures/gen_hdf5.py)
// walked by read_structure() and compared with h5py's own view of them (the sidecars), the
// malformed copies the generator makes, and hand-built headers for the loop and depth limits.

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/formats/support/hdf5_fractal_heap.hpp"
#include "core/formats/support/hdf5_groups.hpp"
#include "core/formats/support/hdf5_objects.hpp"
#include "core/io/checked_math.hpp"
#include "unit/test_support.hpp"

namespace payloadfs {
namespace {

using formats::hdf5::FileStructure;
using formats::hdf5::Object;
using formats::hdf5::ObjectKind;
using testing::Bytes;

std::string fixture(const std::string& rel) {
  return testing::fixtures_dir() + "/hdf5/" + rel;
}

const char* kind_name(ObjectKind kind) {
  switch (kind) {
    case ObjectKind::group:
      return "group";
    case ObjectKind::dataset:
      return "dataset";
    case ObjectKind::datatype:
      return "datatype";
    case ObjectKind::other:
      break;
  }
  return "other";
}

struct Read {
  std::optional<FileStructure> structure;
  std::vector<std::string> errors;
  double seconds = 0;
};

Read read(const std::vector<std::byte>& bytes) {
  Read out;
  const MemorySource source(bytes);
  const auto start = std::chrono::steady_clock::now();
  out.structure = formats::hdf5::read_structure(source, out.errors);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

std::string joined(const std::vector<std::string>& errors) {
  std::string out;
  for (const auto& e : errors) out += e + "\n";
  return out;
}

bool has_error(const Read& r, const std::string& text) {
  for (const auto& e : r.errors)
    if (e.find(text) != std::string::npos) return true;
  return false;
}

const Object* object_at(const FileStructure& s, const std::string& path) {
  for (const auto& o : s.objects)
    if (o.path == path) return &o;
  return nullptr;
}

size_t count_messages(const Object& o, uint16_t type) {
  size_t n = 0;
  for (const auto& m : o.messages) n += m.type == type ? 1 : 0;
  return n;
}

class Fixture : public ::testing::TestWithParam<std::string> {};

// Every object h5py's visititems reaches, in its order, with its kind; nothing else.
TEST_P(Fixture, FindsExactlyTheObjectsH5pySees) {
  const auto bytes = testing::read_file(fixture(GetParam()));
  ASSERT_FALSE(bytes.empty());
  const Json expected = testing::read_fixture_json(fixture(GetParam() + ".expected.json"));
  const Read r = read(bytes);
  ASSERT_TRUE(r.structure.has_value());
  EXPECT_TRUE(r.errors.empty()) << joined(r.errors);
  const FileStructure& s = *r.structure;
  EXPECT_EQ(s.superblock.version, expected["superblock_version"].get<int>());
  EXPECT_EQ(s.superblock.file_offset, expected["userblock"].get<uint64_t>());
  std::vector<std::string> want;
  std::vector<std::string> got;
  for (const auto& o : expected["objects"])
    want.push_back(o["path"].get<std::string>() + " " + o["kind"].get<std::string>());
  for (const auto& o : s.objects) got.push_back(o.path + " " + kind_name(o.kind));
  EXPECT_EQ(got, want);
}

// Object headers and message bodies lie inside the file.
TEST_P(Fixture, AddressesInsideTheFile) {
  const auto bytes = testing::read_file(fixture(GetParam()));
  const Read r = read(bytes);
  ASSERT_TRUE(r.structure.has_value());
  for (const auto& o : r.structure->objects) {
    EXPECT_LT(o.address, bytes.size()) << o.path;
    EXPECT_TRUE(o.header_version == 1 || o.header_version == 2) << o.path;
    for (const auto& m : o.messages)
      EXPECT_TRUE(range_within(m.body.offset, m.body.length, bytes.size())) << o.path;
  }
}

// Compact and dense attributes: as many attribute messages as h5py lists attributes.
TEST_P(Fixture, EveryAttributeIsAMessage) {
  const auto bytes = testing::read_file(fixture(GetParam()));
  const Json expected = testing::read_fixture_json(fixture(GetParam() + ".expected.json"));
  const Read r = read(bytes);
  ASSERT_TRUE(r.structure.has_value());
  for (const auto& o : r.structure->objects) {
    ASSERT_TRUE(expected["attributes"].contains(o.path)) << o.path;
    EXPECT_EQ(count_messages(o, formats::hdf5::kAttribute), expected["attributes"][o.path].size())
        << o.path;
  }
}

// Every group's members (hard, soft and external links), whichever kind of group it is.
TEST_P(Fixture, EveryGroupsMembers) {
  const auto bytes = testing::read_file(fixture(GetParam()));
  const Json expected = testing::read_fixture_json(fixture(GetParam() + ".expected.json"));
  const Read r = read(bytes);
  ASSERT_TRUE(r.structure.has_value());
  const MemorySource source(bytes);
  size_t groups = 0;
  for (const auto& o : r.structure->objects) {
    if (o.kind != ObjectKind::group) continue;
    ++groups;
    std::vector<std::string> errors;
    std::vector<std::string> names;
    for (const auto& link :
         formats::hdf5::group_links(source, r.structure->superblock.sizes, o, errors))
      names.push_back(link.name);
    EXPECT_TRUE(errors.empty()) << joined(errors);
    ASSERT_TRUE(expected["members"].contains(o.path)) << o.path;
    EXPECT_EQ(names, expected["members"][o.path].get<std::vector<std::string>>()) << o.path;
  }
  EXPECT_EQ(groups, expected["members"].size());
}

// Soft and external links, with their targets.
TEST_P(Fixture, SoftAndExternalLinks) {
  const auto bytes = testing::read_file(fixture(GetParam()));
  const Json expected = testing::read_fixture_json(fixture(GetParam() + ".expected.json"));
  const Read r = read(bytes);
  ASSERT_TRUE(r.structure.has_value());
  std::set<std::string> want;
  std::set<std::string> got;
  for (const auto& l : expected["links"])
    want.insert(l["path"].get<std::string>() + " " + l["kind"].get<std::string>() + " " +
                l["target"].get<std::string>());
  for (const auto& l : r.structure->links) got.insert(l.path + " " + l.kind + " " + l.target);
  EXPECT_EQ(got, want);
}

INSTANTIATE_TEST_SUITE_P(H5py, Fixture,
                         ::testing::Values("earliest.h5", "latest.h5", "userblock.h5", "netcdf4.nc",
                                           "netcdf4_classic.nc"),
                         [](const auto& test) {
                           std::string name = test.param;
                           for (char& c : name)
                             if (c == '.') c = '_';
                           return name;
                         });

// The three kinds of groups are each walked: symbol table (earliest), compact and dense
// (latest), with their members found.
TEST(Hdf5Groups, AllThreeKindsWalked) {
  const Read early = read(testing::read_file(fixture("earliest.h5")));
  ASSERT_TRUE(early.structure.has_value());
  const Object* table = object_at(*early.structure, "/group1");
  ASSERT_NE(table, nullptr);
  EXPECT_EQ(count_messages(*table, formats::hdf5::kSymbolTable), 1u);
  EXPECT_NE(object_at(*early.structure, "/group1/i16"), nullptr);
  const Read late = read(testing::read_file(fixture("latest.h5")));
  ASSERT_TRUE(late.structure.has_value());
  const Object* compact = object_at(*late.structure, "/group1");
  ASSERT_NE(compact, nullptr);
  EXPECT_GE(count_messages(*compact, formats::hdf5::kLink), 3u);
  const Object* dense = object_at(*late.structure, "/many");
  ASSERT_NE(dense, nullptr);
  EXPECT_EQ(count_messages(*dense, formats::hdf5::kLink), 0u);
  EXPECT_EQ(count_messages(*dense, formats::hdf5::kLinkInfo), 1u);
  EXPECT_NE(object_at(*late.structure, "/many/m23"), nullptr);
  EXPECT_NE(object_at(*late.structure, "/many/inner/deeper"), nullptr);
  EXPECT_NE(object_at(*late.structure, "/wide"), nullptr);
  const Object* attrs = object_at(*late.structure, "/dense_attrs");
  ASSERT_NE(attrs, nullptr);
  EXPECT_EQ(count_messages(*attrs, formats::hdf5::kAttributeInfo), 1u);
  EXPECT_EQ(count_messages(*attrs, formats::hdf5::kAttribute), 13u);
}

// A dataset of a committed datatype: its shared datatype message is resolved to the message in
// the committed datatype's own header.
TEST(Hdf5Messages, SharedDatatypeResolved) {
  for (const char* name : {"earliest.h5", "latest.h5"}) {
    const Read r = read(testing::read_file(fixture(name)));
    ASSERT_TRUE(r.structure.has_value());
    const Object* committed = object_at(*r.structure, "/named_type");
    const Object* typed = object_at(*r.structure, "/typed");
    ASSERT_NE(committed, nullptr);
    ASSERT_NE(typed, nullptr);
    const formats::hdf5::Message* own = nullptr;
    const formats::hdf5::Message* shared = nullptr;
    for (const auto& m : committed->messages)
      if (m.type == formats::hdf5::kDatatype) own = &m;
    for (const auto& m : typed->messages)
      if (m.type == formats::hdf5::kDatatype) shared = &m;
    ASSERT_NE(own, nullptr);
    ASSERT_NE(shared, nullptr);
    EXPECT_NE(shared->flags & 0x02, 0) << name;
    EXPECT_EQ(shared->body, own->body) << name;
  }
}

// A second hard link to a group is not walked again: its members appear once.
TEST(Hdf5Groups, HardLinkedObjectWalkedOnce) {
  const Read r = read(testing::read_file(fixture("latest.h5")));
  ASSERT_TRUE(r.structure.has_value());
  std::map<uint64_t, int> seen;
  for (const auto& o : r.structure->objects) ++seen[o.address];
  for (const auto& [address, count] : seen) EXPECT_EQ(count, 1) << address;
  EXPECT_NE(object_at(*r.structure, "/group1/hard_again/f32"), nullptr);
  EXPECT_EQ(object_at(*r.structure, "/group1/sub/f32"), nullptr);
}

struct MalformedCase {
  const char* file;
  const char* error;
};

class Malformed : public ::testing::TestWithParam<MalformedCase> {};

TEST_P(Malformed, ErrorsBoundedTimeNoCrash) {
  const auto bytes = testing::read_file(fixture(std::string("malformed/") + GetParam().file));
  ASSERT_FALSE(bytes.empty());
  const Read r = read(bytes);
  EXPECT_FALSE(r.errors.empty());
  EXPECT_TRUE(has_error(r, GetParam().error)) << joined(r.errors);
  EXPECT_LT(r.seconds, 5.0);
  if (r.structure) {
    for (const auto& o : r.structure->objects) EXPECT_LT(o.address, bytes.size());
  }
}

INSTANTIATE_TEST_SUITE_P(Generated, Malformed,
                         ::testing::Values(MalformedCase{"cut_superblock.h5", "superblock"},
                                           MalformedCase{"cut_object_header.h5", "object header"},
                                           MalformedCase{"continuation_past_end.h5",
                                                         "past the end"},
                                           MalformedCase{"btree_loop.h5", "loop"},
                                           MalformedCase{"heap_past_end.h5", "fractal heap"}),
                         [](const auto& test) {
                           std::string name = test.param.file;
                           return name.substr(0, name.find('.'));
                         });

// Hand-built files: a version 0 superblock (8-byte offsets and lengths, base 0) whose root
// object header is at 96, then version 1 object headers.
constexpr uint64_t kRoot = 96;
constexpr uint64_t kUndefined = ~uint64_t{0};

Bytes superblock_v0(uint64_t root = kRoot) {
  Bytes b;
  b.raw("\x89HDF\r\n\x1a\n").zeros(5).u8(8).u8(8).u8(0);
  b.le(4, 2).le(16, 2).le(0, 4);
  b.le(0, 8).le(kUndefined, 8).le(0, 8).le(kUndefined, 8);  // base, free space, EOF, driver
  b.le(0, 8).le(root, 8).le(0, 4).le(0, 4).zeros(16);       // root symbol table entry
  return b;
}

// A version 1 object header prefix with `size` bytes of messages after it.
void v1_prefix(Bytes& b, uint16_t messages, uint32_t size) {
  b.u8(1).u8(0).le(messages, 2).le(1, 4).le(size, 4).zeros(4);
}

// A v1 message: type, size, flags, reserved, body.
void v1_message(Bytes& b, uint16_t type, const Bytes& body) {
  b.le(type, 2).le(body.size(), 2).u8(0).zeros(3).append(body.data());
}

// A hard link message naming `name` at `address`, padded to 8 bytes.
Bytes hard_link(const std::string& name, uint64_t address) {
  Bytes body;
  body.u8(1).u8(0).u8(name.size()).raw(name).le(address, 8).pad_to(8);
  return body;
}

TEST(Hdf5Limits, ContinuationLoop) {
  Bytes b = superblock_v0();
  Bytes continuation;
  continuation.le(kRoot + 16, 8).le(24, 8);  // the root's own first block
  v1_prefix(b, 1, 24);
  v1_message(b, 0x10, continuation);
  const Read r = read(b.data());
  ASSERT_TRUE(r.structure.has_value());
  EXPECT_TRUE(has_error(r, "continuation")) << joined(r.errors);
  EXPECT_LT(r.seconds, 5.0);
}

TEST(Hdf5Limits, ContinuationCount) {
  Bytes b = superblock_v0();
  const uint64_t count = formats::hdf5::kMaxContinuations + 10;
  v1_prefix(b, static_cast<uint16_t>(count), 24);
  for (uint64_t i = 0; i < count; ++i) {  // each block continues into the next one
    Bytes continuation;
    continuation.le(b.size() + 24, 8).le(24, 8);
    v1_message(b, 0x10, continuation);
  }
  const Read r = read(b.data());
  EXPECT_TRUE(has_error(r, "continuations")) << joined(r.errors);
}

TEST(Hdf5Limits, MessageCount) {
  Bytes b = superblock_v0();
  const uint64_t count = formats::hdf5::kMaxMessagesPerObject + 10;
  v1_prefix(b, 0xFFFF, static_cast<uint32_t>(count * 8));
  for (uint64_t i = 0; i < count; ++i) v1_message(b, 0x12, Bytes{});
  const Read r = read(b.data());
  ASSERT_TRUE(r.structure.has_value());
  EXPECT_TRUE(has_error(r, "messages")) << joined(r.errors);
  ASSERT_EQ(r.structure->objects.size(), 1u);
  EXPECT_EQ(r.structure->objects[0].messages.size(), formats::hdf5::kMaxMessagesPerObject);
}

// Groups nested deeper than kMaxGroupDepth: a chain of compact groups, each linking the next.
TEST(Hdf5Limits, GroupDepth) {
  Bytes b = superblock_v0();
  const unsigned chain = formats::hdf5::kMaxGroupDepth + 6;
  for (unsigned i = 0; i < chain; ++i) {
    const Bytes link = hard_link("g", b.size() + 40);
    v1_prefix(b, 1, static_cast<uint32_t>(8 + link.size()));
    v1_message(b, 0x06, link);
  }
  const Read r = read(b.data());
  ASSERT_TRUE(r.structure.has_value());
  EXPECT_TRUE(has_error(r, "nested deeper")) << joined(r.errors);
  EXPECT_LE(r.structure->objects.size(), formats::hdf5::kMaxGroupDepth + 2);
}

// A group that links back to the root and to itself: each object once, no error needed.
TEST(Hdf5Limits, HardLinkCycle) {
  Bytes b = superblock_v0();
  const uint64_t child = kRoot + 40;
  const Bytes down = hard_link("a", child);
  v1_prefix(b, 1, 24);
  v1_message(b, 0x06, down);
  const Bytes up = hard_link("up", kRoot);
  const Bytes self = hard_link("self", child);
  v1_prefix(b, 2, static_cast<uint32_t>(16 + up.size() + self.size()));
  v1_message(b, 0x06, up);
  v1_message(b, 0x06, self);
  const Read r = read(b.data());
  ASSERT_TRUE(r.structure.has_value());
  ASSERT_EQ(r.structure->objects.size(), 2u) << joined(r.errors);
  EXPECT_EQ(r.structure->objects[1].path, "/a");
  EXPECT_EQ(r.structure->objects[1].kind, ObjectKind::group);
}

// A symbol-table group whose version 1 B-tree is a chain of level-1 nodes, each pointing at
// the next (depth limit), or at itself (loop).
Bytes btree_chain(unsigned nodes, bool self_loop) {
  Bytes b = superblock_v0();
  const uint64_t heap = kRoot + 40;
  Bytes table;
  table.le(heap + 40, 8).le(heap, 8);  // B-tree after the heap (32 bytes + 8 of data)
  v1_prefix(b, 1, 24);
  v1_message(b, 0x11, table);
  b.raw("HEAP").zeros(4).le(8, 8).le(kUndefined, 8).le(heap + 32, 8);
  b.zeros(8);  // the data segment: an empty name
  for (unsigned i = 0; i < nodes; ++i) {
    const uint64_t at = b.size();
    const uint64_t next = self_loop ? at : at + 48;
    b.raw("TREE").u8(0).u8(1).le(1, 2).le(kUndefined, 8).le(kUndefined, 8);
    b.le(0, 8).le(next, 8).le(0, 8);  // key, child, key
  }
  return b;
}

TEST(Hdf5Limits, SymbolTableBtreeLoop) {
  const Read r = read(btree_chain(1, true).data());
  ASSERT_TRUE(r.structure.has_value());
  EXPECT_TRUE(has_error(r, "loop")) << joined(r.errors);
  EXPECT_LT(r.seconds, 5.0);
}

TEST(Hdf5Limits, SymbolTableBtreeDepth) {
  const Read r = read(btree_chain(60, false).data());
  ASSERT_TRUE(r.structure.has_value());
  EXPECT_TRUE(has_error(r, "deeper than")) << joined(r.errors);
}

TEST(Hdf5Superblock, NotHdf5AndFoundAfterUserblock) {
  std::vector<std::byte> nothing(4096, std::byte{0x41});
  EXPECT_FALSE(read(nothing).structure.has_value());
  Bytes b;
  b.zeros(1024);
  b.append(superblock_v0(kRoot).data());
  v1_prefix(b, 0, 0);
  const Read r = read(b.data());
  ASSERT_TRUE(r.structure.has_value());
  EXPECT_EQ(r.structure->superblock.file_offset, 1024u);
  ASSERT_EQ(r.structure->objects.size(), 1u) << joined(r.errors);
  EXPECT_EQ(r.structure->objects[0].address, 1024u + kRoot);
}

// Heap IDs: a tiny object is inside the ID, a managed one in the root direct block, a huge one
// is not read, and a managed offset past the block is an error.
TEST(Hdf5FractalHeap, HeapIds) {
  formats::hdf5::FractalHeap heap;
  heap.id_length = 8;
  heap.max_managed_size = 4096;
  heap.table_width = 4;
  heap.start_block_size = 64;
  heap.max_direct_block_size = 1024;
  heap.max_heap_bits = 16;
  heap.root_address = 16;  // a direct block (no rows)
  const formats::hdf5::Sizes sizes;
  Bytes b;
  b.u8(0x23).raw("abcd").zeros(3);         // tiny, 4 bytes
  b.u8(0x00).le(20, 2).le(5, 2).zeros(3);  // managed: offset 20, length 5 (2+2 bytes)
  b.raw("FHDB").zeros(60);                 // the root direct block at 16, 64 bytes
  b.u8(0x10).zeros(7);                     // huge
  b.u8(0x00).le(62, 2).le(5, 2).zeros(3);  // managed, past the block
  const MemorySource source(b.data());
  std::string error;
  const auto tiny = formats::hdf5::heap_object(source, sizes, heap, 0, error);
  ASSERT_TRUE(tiny.has_value()) << error;
  EXPECT_EQ(*tiny, (ByteRange{1, 4}));
  const auto managed = formats::hdf5::heap_object(source, sizes, heap, 8, error);
  ASSERT_TRUE(managed.has_value()) << error;
  EXPECT_EQ(*managed, (ByteRange{36, 5}));
  EXPECT_FALSE(formats::hdf5::heap_object(source, sizes, heap, 80, error).has_value());
  EXPECT_NE(error.find("huge"), std::string::npos) << error;
  error.clear();
  EXPECT_FALSE(formats::hdf5::heap_object(source, sizes, heap, 88, error).has_value());
  EXPECT_FALSE(error.empty());
}

// Every prefix of a real file: no crash, no hang.
TEST(Hdf5Malformed, EveryCut) {
  const auto bytes = testing::read_file(fixture("latest.h5"));
  ASSERT_FALSE(bytes.empty());
  const Read whole = read(bytes);
  ASSERT_TRUE(whole.structure.has_value());
  uint64_t last_header = 0;
  for (const auto& o : whole.structure->objects) last_header = std::max(last_header, o.address);
  const auto start = std::chrono::steady_clock::now();
  for (size_t cut = 0; cut < bytes.size(); cut += 97) {
    const std::vector<std::byte> part(bytes.begin(), bytes.begin() + static_cast<long>(cut));
    const Read r = read(part);
    if (r.structure && cut <= last_header) {  // an object header is cut off
      EXPECT_FALSE(r.errors.empty()) << cut;
    }
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 60.0);
}

// Random byte changes in the metadata of real files (every object header and the structures
// between them): errors at worst, in bounded time.
TEST(Hdf5Malformed, MutationSweep) {
  std::mt19937_64 random(20261208);
  for (const char* name : {"earliest.h5", "latest.h5", "netcdf4.nc"}) {
    const auto bytes = testing::read_file(fixture(name));
    ASSERT_FALSE(bytes.empty());
    const Read whole = read(bytes);
    ASSERT_TRUE(whole.structure.has_value());
    uint64_t end = 0;
    for (const auto& o : whole.structure->objects) end = std::max(end, o.address + 64);
    end = std::min<uint64_t>(end, bytes.size());
    for (int round = 0; round < 300; ++round) {
      auto changed = bytes;
      const int changes = 1 + static_cast<int>(random() % 8);
      for (int i = 0; i < changes; ++i)
        changed[random() % end] = static_cast<std::byte>(random() & 0xFF);
      const Read r = read(changed);
      EXPECT_LT(r.seconds, 5.0) << name << " round " << round;
      if (!r.structure) continue;
      for (const auto& o : r.structure->objects) {
        EXPECT_LT(o.address, changed.size());
        for (const auto& m : o.messages)
          EXPECT_TRUE(range_within(m.body.offset, m.body.length, changed.size()));
      }
    }
  }
}

}  // namespace
}  // namespace payloadfs
