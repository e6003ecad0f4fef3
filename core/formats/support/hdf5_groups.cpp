#include "core/formats/support/hdf5_groups.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <set>

#include "core/formats/support/hdf5_addresses.hpp"
#include "core/formats/support/hdf5_dense_storage.hpp"
#include "core/formats/support/hdf5_object_header.hpp"
#include "core/formats/support/hdf5_superblock.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"

namespace payloadfs::formats::hdf5 {
namespace {

// A local heap's data segment (III.D).
struct LocalHeap {
  uint64_t data = 0;  // file offset
  uint64_t size = 0;
};

std::optional<LocalHeap> read_local_heap(const ByteSource& file, const Sizes& sizes,
                                         uint64_t address, std::string& error) {
  const auto start = file_offset(sizes, address);
  BinaryReader in(file);
  if (start) in.seek(*start);
  if (!start || !signature_is(in, "HEAP")) {
    error = "no HEAP local heap at address " + std::to_string(address);
    return std::nullopt;
  }
  in.skip(4);  // version, reserved
  LocalHeap heap;
  heap.size = read_length(in, sizes);
  read_length(in, sizes);  // free list head
  const auto data = file_offset(sizes, read_address(in, sizes));
  if (!in.ok() || !data || !range_within(*data, heap.size, file.size())) {
    error = "local heap data segment past the end of the file";
    return std::nullopt;
  }
  heap.data = *data;
  return heap;
}

// The NUL-terminated string at `offset` of the heap's data segment.
std::optional<std::string> heap_string(const ByteSource& file, const LocalHeap& heap,
                                       uint64_t offset) {
  if (offset >= heap.size) return std::nullopt;
  BinaryReader whole(file);
  BinaryReader in = whole.sub(heap.data + offset, std::min(heap.size - offset, kMaxLinkNameBytes));
  std::string out;
  while (in.ok() && in.remaining() > 0) {
    const char c = static_cast<char>(in.u8());
    if (c == '\0') return out;
    out.push_back(c);
  }
  return std::nullopt;
}

struct SymbolTableWalk {
  const ByteSource& file;
  const Sizes& sizes;
  LocalHeap heap;
  std::vector<Link>& links;
  std::vector<std::string>& errors;
  std::string where;
  std::set<uint64_t> seen;
};

void read_snod(SymbolTableWalk& walk, uint64_t address) {
  const auto start = file_offset(walk.sizes, address);
  if (start && !walk.seen.insert(*start).second)
    return walk.errors.push_back(walk.where + ": SNOD node at address " + std::to_string(address) +
                                 " listed twice");
  BinaryReader in(walk.file);
  if (start) in.seek(*start);
  if (!start || !signature_is(in, "SNOD"))
    return walk.errors.push_back(walk.where + ": no SNOD node at address " +
                                 std::to_string(address));
  in.skip(2);  // version, reserved
  const uint16_t count = in.u16();
  for (uint16_t i = 0; i < count && in.ok(); ++i) {
    const uint64_t name_offset = read_length(in, walk.sizes);
    Link link;
    link.address = read_address(in, walk.sizes);
    const uint32_t cache_type = in.u32();
    in.skip(4);
    const uint64_t scratch = in.tell();
    in.skip(16);
    const auto name = heap_string(walk.file, walk.heap, name_offset);
    if (!in.ok() || !name) break;
    link.name = *name;
    if (cache_type == 2) {  // a soft link: the scratch pad holds its value's heap offset
      BinaryReader value(walk.file);
      value.seek(scratch);
      link.kind = Link::Kind::soft;
      link.target = heap_string(walk.file, walk.heap, value.u32()).value_or("");
    }
    if (walk.links.size() >= kMaxLinksPerGroup)
      return walk.errors.push_back(walk.where + ": more than " + std::to_string(kMaxLinksPerGroup) +
                                   " links");
    walk.links.push_back(std::move(link));
  }
  if (!in.ok()) walk.errors.push_back(walk.where + ": SNOD node cut short");
}

void walk_btree1(SymbolTableWalk& walk, uint64_t address, unsigned depth) {
  const auto start = file_offset(walk.sizes, address);
  if (!start || !walk.seen.insert(*start).second)
    return walk.errors.push_back(walk.where + ": B-tree loop at address " +
                                 std::to_string(address));
  if (depth > kMaxBtree1Depth)
    return walk.errors.push_back(walk.where + ": B-tree deeper than " +
                                 std::to_string(kMaxBtree1Depth));
  BinaryReader in(walk.file);
  in.seek(*start);
  const bool signed_ok = signature_is(in, "TREE");
  const uint8_t type = in.u8();
  const uint8_t level = in.u8();
  const uint16_t entries = in.u16();
  read_address(in, walk.sizes);  // left sibling
  read_address(in, walk.sizes);  // right sibling
  if (!in.ok() || !signed_ok || type != 0)
    return walk.errors.push_back(walk.where + ": no group B-tree node at address " +
                                 std::to_string(address));
  std::vector<uint64_t> children;
  for (uint16_t i = 0; i < entries && in.ok(); ++i) {
    in.skip(walk.sizes.lengths);  // key: a name's heap offset
    children.push_back(read_address(in, walk.sizes));
  }
  if (!in.ok()) walk.errors.push_back(walk.where + ": B-tree node cut short");
  for (uint64_t child : children) {
    if (walk.links.size() >= kMaxLinksPerGroup) return;  // reported where it was reached
    if (level == 0)
      read_snod(walk, child);
    else
      walk_btree1(walk, child, depth + 1);
  }
}

void symbol_table_links(const ByteSource& file, const Sizes& sizes, ByteRange body,
                        std::vector<Link>& links, std::vector<std::string>& errors,
                        const std::string& where) {
  BinaryReader whole(file);
  BinaryReader in = whole.sub(body.offset, body.length);
  const uint64_t btree = read_address(in, sizes);
  const uint64_t heap_address = read_address(in, sizes);
  std::string error;
  const auto heap = in.ok() ? read_local_heap(file, sizes, heap_address, error) : std::nullopt;
  if (!heap)
    return errors.push_back(where + ": " + (in.ok() ? error : "symbol table message cut short"));
  SymbolTableWalk walk{file, sizes, *heap, links, errors, where, {}};
  walk_btree1(walk, btree, 0);
}

}  // namespace

bool parse_link_message(const ByteSource& file, const Sizes& sizes, ByteRange body, Link& link,
                        std::string& error) {
  BinaryReader whole(file);
  BinaryReader in = whole.sub(body.offset, body.length);
  const uint8_t version = in.u8();
  const uint8_t flags = in.u8();
  const uint8_t type = (flags & 0x08) != 0 ? in.u8() : 0;
  if ((flags & 0x04) != 0) in.skip(8);  // creation order
  if ((flags & 0x10) != 0) in.skip(1);  // name character set
  const uint64_t name_length = read_sized(in, static_cast<uint8_t>(1U << (flags & 0x03)));
  link.name = in.text(name_length, kMaxLinkNameBytes);
  if (type == 0) {
    link.address = read_address(in, sizes);
  } else if (type == 1 || type == 64) {
    const uint16_t length = in.u16();
    std::string value = in.text(length);
    link.kind = type == 1 ? Link::Kind::soft : Link::Kind::external;
    if (type == 1) {
      link.target = value;
    } else if (!value.empty()) {  // flags byte, file name NUL, path NUL
      const std::string rest = value.substr(1);
      const size_t nul = rest.find('\0');
      const std::string file_name = rest.substr(0, nul);
      const std::string path = nul == std::string::npos ? "" : rest.substr(nul + 1);
      link.target = file_name + ":" + path.substr(0, path.find('\0'));
    }
  } else {
    error = "link type " + std::to_string(type);
    return false;
  }
  if (!in.ok() || version != 1) {
    error = "unreadable link message";
    return false;
  }
  return true;
}

bool is_group(const Object& object) {
  return find_message(object, kSymbolTable) != nullptr ||
         find_message(object, kLinkInfo) != nullptr || find_message(object, kLink) != nullptr;
}

std::vector<Link> group_links(const ByteSource& file, const Sizes& sizes, const Object& group,
                              std::vector<std::string>& errors) {
  std::vector<Link> links;
  const std::string where = "group " + group.path;
  if (const Message* table = find_message(group, kSymbolTable))
    symbol_table_links(file, sizes, table->body, links, errors, where);
  for (const auto& message : group.messages) {
    if (message.type != kLink) continue;
    Link link;
    std::string error;
    if (links.size() >= kMaxLinksPerGroup) {
      errors.push_back(where + ": more than " + std::to_string(kMaxLinksPerGroup) + " links");
      break;
    }
    if (parse_link_message(file, sizes, message.body, link, error))
      links.push_back(std::move(link));
    else
      errors.push_back(where + ": " + error);
  }
  if (const Message* info = find_message(group, kLinkInfo))
    dense_links(file, sizes, info->body, links, errors, where);
  std::stable_sort(links.begin(), links.end(),
                   [](const Link& a, const Link& b) { return a.name < b.name; });
  return links;
}

}  // namespace payloadfs::formats::hdf5
