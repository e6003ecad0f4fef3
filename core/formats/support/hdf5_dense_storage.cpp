#include "core/formats/support/hdf5_dense_storage.hpp"

#include "core/formats/support/hdf5_btree2.hpp"
#include "core/formats/support/hdf5_fractal_heap.hpp"
#include "core/formats/support/hdf5_object_header.hpp"
#include "core/formats/support/hdf5_superblock.hpp"
#include "core/io/binary_reader.hpp"

namespace payloadfs::formats::hdf5 {
namespace {

constexpr uint8_t kLinkNameRecord = 5;
constexpr uint8_t kAttributeNameRecord = 8;

// The heap and name index addresses of a link info or attribute info message.
struct DenseIndex {
  uint64_t heap = kUndefinedAddress;
  uint64_t names = kUndefinedAddress;
};

std::optional<DenseIndex> read_index(const ByteSource& file, const Sizes& sizes, ByteRange body,
                                     uint64_t creation_index_bytes) {
  BinaryReader whole(file);
  BinaryReader in = whole.sub(body.offset, body.length);
  in.skip(1);  // version
  const uint8_t flags = in.u8();
  if ((flags & 0x01) != 0) in.skip(creation_index_bytes);
  DenseIndex index;
  index.heap = read_address(in, sizes);
  index.names = read_address(in, sizes);
  if (!in.ok()) return std::nullopt;
  return index;
}

// Calls `visit` with each heap object the name index lists (the heap ID at `id_at` bytes into
// each record), stopping at `limit` objects.
template <typename Visit>
void walk_dense(const ByteSource& file, const Sizes& sizes, const DenseIndex& index,
                uint8_t record_type, uint64_t id_at, uint64_t limit,
                std::vector<std::string>& errors, const std::string& where, Visit visit) {
  std::string error;
  const auto heap = read_fractal_heap(file, sizes, index.heap, error);
  if (!heap) return errors.push_back(where + ": " + error);
  uint64_t count = 0;
  const auto tree = walk_btree2(
      file, sizes, index.names, record_type,
      [&](ByteRange record) {
        if (++count > limit) {
          errors.push_back(where + ": more than " + std::to_string(limit) + " entries");
          return false;
        }
        std::string object_error;
        const auto object = heap_object(file, sizes, *heap, record.offset + id_at, object_error);
        if (object)
          visit(*object, record);
        else
          errors.push_back(where + ": " + object_error);
        return true;
      },
      errors);
  if (!tree)
    errors.push_back(where + ": name index not read");
  else if (count < tree->total_records && count <= limit)
    errors.push_back(where + ": " + std::to_string(count) + " of " +
                     std::to_string(tree->total_records) + " entries read");
}

}  // namespace

void dense_links(const ByteSource& file, const Sizes& sizes, ByteRange link_info,
                 std::vector<Link>& links, std::vector<std::string>& errors,
                 const std::string& where) {
  const auto index = read_index(file, sizes, link_info, 8);
  if (!index) return errors.push_back(where + ": link info message cut short");
  if (index->heap == kUndefinedAddress) return;  // compact: the links are messages
  walk_dense(file, sizes, *index, kLinkNameRecord, 4, kMaxLinksPerGroup, errors, where,
             [&](ByteRange object, ByteRange) {
               Link link;
               std::string error;
               if (parse_link_message(file, sizes, object, link, error))
                 links.push_back(std::move(link));
               else
                 errors.push_back(where + ": " + error);
             });
}

void append_dense_attributes(const ByteSource& file, const Sizes& sizes, Object& object,
                             std::vector<std::string>& errors) {
  const Message* info = find_message(object, kAttributeInfo);
  if (info == nullptr) return;
  const auto index = read_index(file, sizes, info->body, 2);
  const std::string where = "attributes of " + object.path;
  if (!index) return errors.push_back(where + ": attribute info message cut short");
  if (index->heap == kUndefinedAddress) return;
  std::vector<Message> found;
  walk_dense(file, sizes, *index, kAttributeNameRecord, 0, kMaxMessagesPerObject, errors, where,
             [&](ByteRange body, ByteRange record) {
               BinaryReader whole(file);
               BinaryReader in = whole.sub(record.offset + 8, 1);  // after the heap ID
               found.push_back(Message{kAttribute, in.u8(), body});
             });
  object.messages.insert(object.messages.end(), found.begin(), found.end());
}

}  // namespace payloadfs::formats::hdf5
