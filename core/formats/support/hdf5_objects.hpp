#pragma once
// The structure of an HDF5 file (File Format Specification 3.0): the superblock (versions 0
// to 3), object headers (version 1, and version 2 with OHDR/OCHK), their continuation blocks,
// and the groups that link objects by name: symbol-table groups (a version 1 B-tree of type 0,
// SNOD nodes and a local heap), compact groups (link messages in the object header) and dense
// groups (link info message: a fractal heap of link messages indexed by a version 2 B-tree).
// What the objects' messages mean is hdf5_messages.hpp's business.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/formats/support/hdf5_chunks.hpp"
#include "core/io/byte_source.hpp"
#include "core/model/layout.hpp"

namespace payloadfs::formats::hdf5 {

// Limits on hostile input; what a limit cut is reported in the errors.
inline constexpr uint64_t kMaxObjects = 100'000;  // objects walked per file
inline constexpr unsigned kMaxGroupDepth = 64;    // groups nested in groups
inline constexpr uint64_t kMaxMessagesPerObject = 4096;
inline constexpr uint64_t kMaxContinuations = 4096;  // continuation blocks per object header
inline constexpr uint64_t kMaxLinksPerGroup = 1'000'000;

// Message types the walk and the messages module use (specification IV.A.2).
enum MessageType : uint16_t {
  kNil = 0x00,
  kDataspace = 0x01,
  kLinkInfo = 0x02,
  kDatatype = 0x03,
  kFillValueOld = 0x04,
  kFillValue = 0x05,
  kLink = 0x06,
  kExternalFiles = 0x07,
  kDataLayout = 0x08,
  kFilterPipeline = 0x0B,
  kAttribute = 0x0C,
  kContinuation = 0x10,
  kSymbolTable = 0x11,
  kModificationTime = 0x12,
  kAttributeInfo = 0x15,
};

struct Superblock {
  uint8_t version = 0;
  uint64_t file_offset = 0;                   // where its signature is: 0, 512, 1024, 2048, ...
  Sizes sizes;                                // base address applied to every address below
  uint64_t root_address = kUndefinedAddress;  // the root group's object header
  uint64_t end_of_file_address = kUndefinedAddress;
};

// One message of an object header. A shared message (flags bit 1) is already resolved: its
// body is the body of the message it refers to, in a committed datatype's object header.
// NIL and continuation messages, and shared messages that cannot be resolved (reported in
// the errors), are left out.
struct Message {
  uint16_t type = 0;
  uint8_t flags = 0;
  ByteRange body;  // in the file
};

enum class ObjectKind : uint8_t { group, dataset, datatype, other };

struct Object {
  std::string path;  // "/" for the root group, "/a/b" below it: the first path that reached it
  uint64_t address = kUndefinedAddress;  // of its object header (file offset)
  ObjectKind kind = ObjectKind::other;
  uint8_t header_version = 0;  // 1 or 2
  // In header order (continuations followed); attributes in dense storage are appended as
  // attribute messages whose bodies are their fractal heap objects.
  std::vector<Message> messages;
};

// A soft or external link, which names a path rather than an object.
struct NamedLink {
  std::string path;    // where the link is
  std::string kind;    // "soft" or "external"
  std::string target;  // the path it names; for external links "file:path"
};

struct FileStructure {
  Superblock superblock;
  std::vector<Object> objects;  // depth first from "/", links in name order (h5py's visit)
  std::vector<NamedLink> links;
};

// Finds the superblock (at 0 or a power of two from 512 on) and walks every object reachable
// from the root group, each object once (a second hard link to it is not walked again).
// nullopt when there is no superblock; otherwise what could be read, and in `errors` what is
// malformed or was cut at a limit. Never throws.
std::optional<FileStructure> read_structure(const ByteSource& file,
                                            std::vector<std::string>& errors);

}  // namespace payloadfs::formats::hdf5
