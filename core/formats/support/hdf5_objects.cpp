// read_structure(): the superblock, then every object reachable from the root group, depth
// first with each group's links in name order (h5py's visititems order), each object once.

#include "core/formats/support/hdf5_objects.hpp"

#include <set>

#include "core/formats/support/hdf5_dense_storage.hpp"
#include "core/formats/support/hdf5_groups.hpp"
#include "core/formats/support/hdf5_object_header.hpp"
#include "core/formats/support/hdf5_superblock.hpp"

namespace payloadfs::formats::hdf5 {
namespace {

struct Walk {
  const ByteSource& file;
  FileStructure& structure;
  std::vector<std::string>& errors;
  std::set<uint64_t> visited;  // object header file offsets
  SharedTargets shared = {};
  bool object_limit_hit = false;
};

ObjectKind kind_of(const Object& object, bool root) {
  if (find_message(object, kDataLayout) != nullptr) return ObjectKind::dataset;
  if (root || is_group(object)) return ObjectKind::group;
  if (find_message(object, kDatatype) != nullptr) return ObjectKind::datatype;
  return ObjectKind::other;
}

std::string child_path(const std::string& parent, const std::string& name) {
  return parent == "/" ? "/" + name : parent + "/" + name;
}

// Reads the object at `address` and appends it; its index in objects, or nullopt.
std::optional<size_t> add_object(Walk& walk, const std::string& path, uint64_t address, bool root) {
  const Sizes& sizes = walk.structure.superblock.sizes;
  if (walk.structure.objects.size() >= kMaxObjects) {
    if (!walk.object_limit_hit)
      walk.errors.push_back("more than " + std::to_string(kMaxObjects) +
                            " objects: the rest not walked");
    walk.object_limit_hit = true;
    return std::nullopt;
  }
  Object object;
  object.path = path;
  if (!read_object_header(walk.file, sizes, address, object, walk.errors, true, &walk.shared))
    return std::nullopt;
  append_dense_attributes(walk.file, sizes, object, walk.errors);
  object.kind = kind_of(object, root);
  walk.structure.objects.push_back(std::move(object));
  return walk.structure.objects.size() - 1;
}

void walk_group(Walk& walk, size_t group_index, unsigned depth) {
  const Sizes& sizes = walk.structure.superblock.sizes;
  const std::string path = walk.structure.objects[group_index].path;
  if (depth >= kMaxGroupDepth)
    return walk.errors.push_back("group " + path + ": nested deeper than " +
                                 std::to_string(kMaxGroupDepth) + " groups");
  const auto links =
      group_links(walk.file, sizes, walk.structure.objects[group_index], walk.errors);
  for (const auto& link : links) {
    const std::string link_path = child_path(path, link.name);
    if (link.kind != Link::Kind::hard) {
      walk.structure.links.push_back(
          NamedLink{link_path, link.kind == Link::Kind::soft ? "soft" : "external", link.target});
      continue;
    }
    const auto offset = file_offset(sizes, link.address);
    if (!offset) {
      walk.errors.push_back("link " + link_path + ": undefined address");
      continue;
    }
    if (!walk.visited.insert(*offset).second) continue;  // another hard link to a walked object
    const auto index = add_object(walk, link_path, link.address, false);
    if (!index) {
      if (walk.object_limit_hit) return;
      continue;
    }
    if (walk.structure.objects[*index].kind == ObjectKind::group)
      walk_group(walk, *index, depth + 1);
    if (walk.object_limit_hit) return;
  }
}

}  // namespace

namespace {

std::optional<FileStructure> walk_file(const ByteSource& file, std::vector<std::string>& errors) {
  auto superblock = find_superblock(file, errors);
  if (!superblock) return std::nullopt;
  FileStructure structure;
  structure.superblock = *superblock;
  if (superblock->root_address == kUndefinedAddress) return structure;
  Walk walk{file, structure, errors, {}, {}, false};
  const auto root_offset = file_offset(superblock->sizes, superblock->root_address);
  if (root_offset) walk.visited.insert(*root_offset);
  const auto root = add_object(walk, "/", superblock->root_address, true);
  if (root) walk_group(walk, *root, 0);
  return structure;
}

}  // namespace

std::optional<FileStructure> read_structure(const ByteSource& file,
                                            std::vector<std::string>& errors) {
  try {
    return walk_file(file, errors);
  } catch (const std::exception& error) {  // memory exhausted: what was read is lost
    errors.push_back(std::string("hdf5 structure not read: ") + error.what());
    return std::nullopt;
  }
}

}  // namespace payloadfs::formats::hdf5
