#include "core/formats/support/hdf5_object_header.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <set>

#include "core/formats/support/hdf5_btree2.hpp"
#include "core/formats/support/hdf5_superblock.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/checked_math.hpp"

namespace payloadfs::formats::hdf5 {
namespace {

// One block of messages: [offset, offset + length) of the file.
struct Block {
  uint64_t offset = 0;
  uint64_t length = 0;
};

struct HeaderWalk {
  const ByteSource& file;
  const Sizes& sizes;
  Object& object;
  std::vector<std::string>& errors;
  bool resolve_shared = true;
  SharedTargets* targets = nullptr;
  std::string where;  // "object header at N"
  std::vector<Block> pending = {};
  std::set<uint64_t> seen_blocks = {};
  uint64_t continuations = 0;
  bool message_limit_hit = false;
};

void error(HeaderWalk& walk, const std::string& text) {
  walk.errors.push_back(walk.where + ": " + text);
}

bool checksum_matches(const ByteSource& file, uint64_t offset, uint64_t length, uint32_t stored) {
  std::vector<std::byte> bytes(length);
  return file.read_exact(offset, bytes) && lookup3_checksum(bytes) == stored;
}

// The stored checksum after [offset, offset + length) is that of those bytes.
void verify_checksum(HeaderWalk& walk, uint64_t offset, uint64_t length) {
  BinaryReader in(walk.file);
  const auto end = checked_add(offset, length);
  if (!end) return;
  in.seek(*end);
  const uint32_t stored = in.u32();
  if (!in.ok())
    error(walk, "checksum past the end of the file");
  else if (!checksum_matches(walk.file, offset, length, stored))
    error(walk, "checksum mismatch in the block at " + std::to_string(offset));
}

void add_continuation(HeaderWalk& walk, ByteRange body) {
  BinaryReader in(walk.file);
  BinaryReader msg = in.sub(body.offset, body.length);
  const uint64_t address = read_address(msg, walk.sizes);
  const uint64_t length = read_length(msg, walk.sizes);
  const auto offset = file_offset(walk.sizes, address);
  if (!msg.ok() || !offset) return error(walk, "unreadable continuation message");
  if (++walk.continuations > kMaxContinuations)
    return error(walk, "more than " + std::to_string(kMaxContinuations) + " continuations");
  if (!range_within(*offset, length, walk.file.size()))
    return error(walk, "continuation block at " + std::to_string(*offset) + " (" +
                           std::to_string(length) + " bytes) past the end of the file");
  if (!walk.seen_blocks.insert(*offset).second)
    return error(walk, "continuation loop at " + std::to_string(*offset));
  walk.pending.push_back({*offset, length});
}

bool resolve_shared(HeaderWalk& walk, Message& message);

void keep_message(HeaderWalk& walk, Message message) {
  if (message.type == kNil) return;
  if (message.type == kContinuation) return add_continuation(walk, message.body);
  if (walk.object.messages.size() >= kMaxMessagesPerObject) {
    if (!walk.message_limit_hit)
      error(walk, "more than " + std::to_string(kMaxMessagesPerObject) + " messages");
    walk.message_limit_hit = true;
    return;
  }
  // A shared message that cannot be resolved is left out: its body is not the message's.
  if ((message.flags & 0x02) != 0 && walk.resolve_shared && !resolve_shared(walk, message)) return;
  walk.object.messages.push_back(message);
}

// Version 1 messages: type (2), size (2), flags (1), reserved (3), body (size).
void read_v1_messages(HeaderWalk& walk, const Block& block) {
  BinaryReader file(walk.file);
  BinaryReader in = file.sub(block.offset, block.length);
  while (in.ok() && in.remaining() >= 8 && !walk.message_limit_hit) {
    Message message;
    message.type = in.u16();
    const uint16_t size = in.u16();
    message.flags = in.u8();
    in.skip(3);
    message.body = {in.tell(), size};
    if (!in.need(size)) return error(walk, "message body past its block");
    in.skip(size);
    keep_message(walk, message);
  }
}

// Version 2 messages: type (1), size (2), flags (1), creation order (2, flags bit 2), body.
void read_v2_messages(HeaderWalk& walk, const Block& block, bool creation_order) {
  BinaryReader file(walk.file);
  BinaryReader in = file.sub(block.offset, block.length);
  const uint64_t header_size = creation_order ? 6 : 4;
  while (in.ok() && in.remaining() >= header_size && !walk.message_limit_hit) {
    Message message;
    message.type = in.u8();
    const uint16_t size = in.u16();
    message.flags = in.u8();
    if (creation_order) in.skip(2);
    message.body = {in.tell(), size};
    if (!in.need(size)) return error(walk, "message body past its block");
    in.skip(size);
    keep_message(walk, message);
  }
}

bool read_v1_prefix(HeaderWalk& walk, BinaryReader& in) {
  in.skip(1);  // reserved
  in.skip(2);  // total number of messages: the blocks' contents are read instead
  in.skip(4);  // reference count
  const uint32_t size = in.u32();
  in.skip(4);  // padding to 8 bytes
  if (!in.ok()) return false;
  if (!range_within(in.tell(), size, walk.file.size())) {
    error(walk, "first block past the end of the file");
    return true;
  }
  walk.pending.push_back({in.tell(), size});
  return true;
}

bool read_v2_prefix(HeaderWalk& walk, BinaryReader& in, uint64_t start, uint8_t& flags) {
  const uint8_t version = in.u8();
  flags = in.u8();
  if (version != 2) {
    error(walk, "OHDR version " + std::to_string(version));
    return false;
  }
  if ((flags & 0x20) != 0) in.skip(16);  // access, modification, change and birth times
  if ((flags & 0x10) != 0) in.skip(4);   // attribute phase change values
  const uint64_t size = read_sized(in, static_cast<uint8_t>(1U << (flags & 0x03)));
  if (!in.ok()) return false;
  if (!range_within(in.tell(), size, walk.file.size()) || size > kMaxHeaderBlockBytes) {
    error(walk, "first block past the end of the file");
    return true;
  }
  verify_checksum(walk, start, in.tell() - start + size);
  walk.pending.push_back({in.tell(), size});
  return true;
}

// A version 2 continuation block: "OCHK", messages, checksum.
void read_v2_continuation(HeaderWalk& walk, const Block& block, bool creation_order) {
  std::array<char, 4> signature{};
  BinaryReader in(walk.file);
  in.seek(block.offset);
  for (char& c : signature) c = static_cast<char>(in.u8());
  if (!in.ok() || std::memcmp(signature.data(), "OCHK", 4) != 0 || block.length < 8 ||
      block.length > kMaxHeaderBlockBytes)
    return error(walk, "no OCHK continuation block at " + std::to_string(block.offset));
  verify_checksum(walk, block.offset, block.length - 4);
  read_v2_messages(walk, {block.offset + 4, block.length - 8}, creation_order);
}

}  // namespace

const Message* find_message(const Object& object, uint16_t type) {
  for (const auto& message : object.messages)
    if (message.type == type) return &message;
  return nullptr;
}

bool read_object_header(const ByteSource& file, const Sizes& sizes, uint64_t address,
                        Object& object, std::vector<std::string>& errors, bool resolve,
                        SharedTargets* targets) {
  const auto start = file_offset(sizes, address);
  HeaderWalk walk{
      file, sizes, object, errors, resolve, targets, "object header at " + std::to_string(address)};
  if (!start || *start >= file.size()) {
    error(walk, "past the end of the file");
    return false;
  }
  object.address = *start;
  BinaryReader in(file);
  in.seek(*start);
  std::array<char, 4> signature{};
  for (char& c : signature) c = static_cast<char>(in.u8());
  const bool v2 = in.ok() && std::memcmp(signature.data(), "OHDR", 4) == 0;
  uint8_t flags = 0;
  if (!v2) in.seek(*start + 1);
  const bool read = v2 ? read_v2_prefix(walk, in, *start, flags)
                       : (static_cast<uint8_t>(signature[0]) == 1 && read_v1_prefix(walk, in));
  if (!read) {
    error(walk, in.ok() ? "not an object header" : "cut short");
    return false;
  }
  object.header_version = v2 ? 2 : 1;
  walk.seen_blocks.insert(*start);
  for (size_t i = 0; i < walk.pending.size() && !walk.message_limit_hit; ++i) {
    const Block block = walk.pending[i];
    const bool creation_order = (flags & 0x04) != 0;
    if (!v2)
      read_v1_messages(walk, block);
    else if (i == 0)
      read_v2_messages(walk, block, creation_order);
    else
      read_v2_continuation(walk, block, creation_order);
  }
  return true;
}

namespace {

// Where a shared message's body points: the committed object's header address.
std::optional<uint64_t> shared_target(HeaderWalk& walk, ByteRange body) {
  BinaryReader file(walk.file);
  BinaryReader in = file.sub(body.offset, body.length);
  const uint8_t version = in.u8();
  const uint8_t type = in.u8();
  if (version == 1) in.skip(6);
  if (version == 3 && type == 1) {
    error(walk, "shared message in the shared object header message heap: not read");
    return std::nullopt;
  }
  const uint64_t address = read_address(in, walk.sizes);
  if (!in.ok() || version < 1 || version > 3 || (version == 3 && type != 2)) {
    error(walk, "unreadable shared message (version " + std::to_string(version) + ")");
    return std::nullopt;
  }
  return address;
}

bool resolve_shared(HeaderWalk& walk, Message& message) {
  const auto address = shared_target(walk, message.body);
  if (!address) return false;
  Object read_here;
  const Object* target = &read_here;
  const auto cached =
      walk.targets ? walk.targets->headers.find(*address) : std::map<uint64_t, Object>::iterator{};
  if (walk.targets && cached != walk.targets->headers.end()) {
    target = &cached->second;
  } else {
    if (!read_object_header(walk.file, walk.sizes, *address, read_here, walk.errors, false))
      return false;
    if (walk.targets && walk.targets->headers.size() < kMaxSharedTargets)
      target = &(walk.targets->headers[*address] = std::move(read_here));
  }
  for (const auto& candidate : target->messages) {
    if (candidate.type == message.type && (candidate.flags & 0x02) == 0) {
      message.body = candidate.body;
      return true;
    }
  }
  error(walk, "shared message " + std::to_string(message.type) + " not found in the header at " +
                  std::to_string(*address));
  return false;
}

}  // namespace

}  // namespace payloadfs::formats::hdf5
