#include "core/vfs/namespace.hpp"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>

#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"
#include "core/vfs/payload_entries.hpp"
#include "core/vfs/range_name.hpp"

namespace payloadfs {
namespace {

// Read permission is what a source grants; directories get x wherever they get r.
mode_t file_mode(mode_t source) {
  return S_IFREG | (source & 0444);
}
mode_t dir_mode(mode_t source) {
  const mode_t r = source & 0444;
  return S_IFDIR | r | (r >> 2);
}

// The owner and times of a node: those of its source object.
void take_owner_and_times(struct stat& st, const struct stat& source) {
  st.st_uid = source.st_uid;
  st.st_gid = source.st_gid;
  st.st_mtim = st.st_atim = source.st_mtim;
  st.st_ctim = source.st_ctim;
}

// The kind a source object of type `type` (DT_*) is shown as, if it is shown.
std::optional<NodeKind> kind_of_source(unsigned char type, const SourceRoot& root,
                                       const std::string& path) {
  if (type == DT_DIR) return NodeKind::source_dir;
  if (type == DT_REG) return NodeKind::payload_dir;
  // Links leading outside SRC, devices, FIFOs and sockets are not shown.
  if (type == DT_LNK && std::holds_alternative<std::string>(root.link_target(path)))
    return NodeKind::symlink;
  return std::nullopt;
}

}  // namespace

bool within_extent(const Payload& payload, ByteRange range) {
  const ByteRange extent = payload.extent();
  return range.offset >= extent.offset &&
         range_within(range.offset - extent.offset, range.length, extent.length);
}

Namespace::Namespace(const SourceRoot& root, PayloadCache& cache, PayloadErrors& payload_errors,
                     const ControlFiles& control, std::string refs_prefix, Observer observer)
    : root_(root),
      cache_(cache),
      payload_errors_(payload_errors),
      control_(control),
      refs_prefix_(std::move(refs_prefix)),
      observer_(std::move(observer)) {}

NodeKey Namespace::root_key() const {
  struct stat st {};
  if (::fstat(root_.fd(), &st) != 0) st = {};
  return NodeKey::source(NodeKind::source_dir, st.st_dev, st.st_ino, "");
}

int Namespace::source_error(const std::string& path, int err) const {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ELOOP:
      return ESTALE;  // the name leads elsewhere now (or nowhere)
    case ESTALE:
    case EACCES:
    case EPERM:
    case EMFILE:
    case ENFILE:
    case EIO:
      return err;
    default:
      // ENOSPC, ENOMEM, ... from the source's filesystem mean nothing to a reader of ours.
      if (observer_.source_failed) observer_.source_failed(path, err);
      return EIO;
  }
}

std::string Namespace::refs_url(const Payload& payload) const {
  if (!refs_prefix_.empty()) return refs_prefix_ + payload.path();
  return root_.path() + (root_.path().ends_with('/') ? "" : "/") + payload.path();
}

Result<std::shared_ptr<const Payload>> Namespace::payload_for(const NodeKey& key) const {
  PayloadCache::Built built;
  auto got = cache_.get_nested(key.path, key.nest, &built);
  if (const int* err = error_of(got)) return source_error(key.path, *err);
  auto payload = std::move(value_of(got));
  if (built.fresh) {  // a new version (or a rebuilt one), never a cache hit
    // errors.json lists files: a nested payload's errors are in its own header.json only.
    const bool newly_malformed = key.nest.empty() && payload_errors_.record(*payload);
    if (observer_.built) observer_.built(*payload, built, newly_malformed);
  }
  const auto id = payload->identity();
  if (id.dev != key.dev || id.ino != key.ino) return ESTALE;  // another file now has that name
  return payload;
}

Result<ResolvedNode> Namespace::resolve(NodeKey key) const {
  ResolvedNode out{std::move(key), nullptr};
  // A nested payload's directory is there only while its container's version holds it.
  const bool nested_payload_dir = out.key.kind == NodeKind::payload_dir && !out.key.nest.empty();
  if (!needs_payload(out.key.kind) && !nested_payload_dir) return out;
  auto payload = payload_for(out.key);
  if (const int* err = error_of(payload)) return *err;
  out.payload = std::move(value_of(payload));
  const NodeKey& k = out.key;
  if (k.kind == NodeKind::raw_dir || k.kind == NodeKind::raw_file) {
    const auto entry = out.payload->tree().find(k.sub);
    if (!entry || entry->is_dir() != (k.kind == NodeKind::raw_dir)) return ESTALE;
  }
  if (k.kind == NodeKind::refs_json && !out.payload->has_refs_json()) return ESTALE;
  if (is_versioned(k.kind) && k.version != version_of(*out.payload)) return ESTALE;
  if (k.kind == NodeKind::range_file && !within_extent(*out.payload, {k.offset, k.length}))
    return ESTALE;
  if (k.kind == NodeKind::nested_dir) {
    auto members = nested_members(*out.payload);
    if (const int* err = error_of(members)) return *err;
    if (!k.sub.empty() && !value_of(members)->dirs.contains(k.sub)) return ESTALE;
    if (k.sub.empty() && value_of(members)->slices.empty()) return ESTALE;
  }
  if (nested_payload_dir) out.payload = nullptr;  // its attributes are the file's
  return out;
}

Result<NodeKey> Namespace::child(const ResolvedNode& parent, std::string_view name,
                                 struct stat* source) const {
  const NodeKey& p = parent.key;
  switch (p.kind) {
    case NodeKind::source_dir:
      if (p.path.empty() && name == ControlFiles::kDir) return NodeKey::control_dir();
      return source_child(p, name, source);
    case NodeKind::payload_dir:
      return payload_child(p, name);
    case NodeKind::raw_dir: {
      const SliceTree& tree = parent.payload->tree();
      const auto dir = tree.find(p.sub);
      const auto entry = dir ? tree.child(*dir, name) : std::nullopt;
      if (!entry) return ENOENT;
      return p.entry(entry->is_dir() ? NodeKind::raw_dir : NodeKind::raw_file,
                     tree.path_of(*entry));
    }
    case NodeKind::range_dir: {
      auto payload = payload_for(p);
      if (const int* err = error_of(payload)) return *err;
      const auto range = parse_range_name(name, value_of(payload)->size());
      if (!range || !within_extent(*value_of(payload), *range)) return ENOENT;
      return p.range_file(range->offset, range->length);
    }
    case NodeKind::nested_dir:
      return nested_child(parent, name);
    case NodeKind::control_dir:
      if (!ControlFiles::exists(name)) return ENOENT;
      return NodeKey::control_file(name);
    default:
      return ENOTDIR;
  }
}

Result<NodeKey> Namespace::source_child(const NodeKey& dir, std::string_view name,
                                        struct stat* source) const {
  std::string path = SourceRoot::join(dir.path, name);
  auto st = root_.stat(path);
  if (const int* err = error_of(st)) return *err == ENOTDIR ? ENOENT : *err;
  const struct stat& s = value_of(st);
  if (source != nullptr) *source = s;
  const auto kind = kind_of_source(static_cast<unsigned char>(IFTODT(s.st_mode)), root_, path);
  if (!kind) return ENOENT;
  return NodeKey::source(*kind, s.st_dev, s.st_ino, std::move(path));
}

Result<NodeKey> Namespace::payload_child(const NodeKey& dir, std::string_view name,
                                         const Payload* known) const {
  const PayloadEntry* entry = find_payload_entry(name);
  if (entry == nullptr) return ENOENT;
  NodeKey key = dir.entry(entry->kind);
  if (entry->shown != PayloadEntry::Shown::when_offered && !is_versioned(entry->kind)) return key;
  // refs.json and nested/ are offered by some payloads only, and generated files are
  // numbered per version: all need the payload parsed.
  if (entry->kind == NodeKind::nested_dir && !nests_below(dir)) return ENOENT;
  std::shared_ptr<const Payload> held;
  if (known == nullptr) {
    auto payload = payload_for(dir);
    if (const int* err = error_of(payload)) return *err;
    held = std::move(value_of(payload));
    known = held.get();
  }
  if (entry->kind == NodeKind::refs_json && !known->has_refs_json()) return ENOENT;
  if (entry->kind == NodeKind::nested_dir) {
    auto members = nested_members(*known);
    if (const int* err = error_of(members)) return *err;
    if (value_of(members)->slices.empty()) return ENOENT;
  }
  return versioned(std::move(key), *known);
}

NodeVersion Namespace::version_of(const Payload& payload) {
  const SourceIdentity id = payload.identity();
  return NodeVersion{id.size, id.mtime_ns, id.ctime_ns};
}

NodeKey Namespace::versioned(NodeKey key, const Payload& payload) {
  if (is_versioned(key.kind)) key.version = version_of(payload);
  return key;
}

bool Namespace::nests_below(const NodeKey& key) const {
  const size_t level =
      key.nest.empty()
          ? 0
          : 1 + static_cast<size_t>(std::count(key.nest.begin(), key.nest.end(), '\0'));
  return level < cache_.nest_depth();
}

Result<const NestedMembers*> Namespace::nested_members(const Payload& payload) const {
  if (const NestedMembers* found = payload.nested_members_if_found()) return found;
  auto opened = open_version(payload);
  if (const int* err = error_of(opened)) return *err;
  return &payload.nested_members(cache_.registry(),
                                 FdSource(value_of(opened).get(), payload.size()));
}

// nested/<name> under nested/<sub>: a directory of raw/ that holds a nested payload, or a
// slice that is one.
Result<NodeKey> Namespace::nested_child(const ResolvedNode& parent, std::string_view name) const {
  const NodeKey& p = parent.key;
  const SliceTree& tree = parent.payload->tree();
  const auto dir = tree.find(p.sub);
  const auto entry = dir ? tree.child(*dir, name) : std::nullopt;
  if (!entry || entry->kind == SliceTree::Entry::Kind::record) return ENOENT;
  auto members = nested_members(*parent.payload);
  if (const int* err = error_of(members)) return *err;
  std::string path = tree.path_of(*entry);
  if (entry->is_dir()) {
    if (!value_of(members)->dirs.contains(path)) return ENOENT;
    return p.entry(NodeKind::nested_dir, std::move(path));
  }
  if (!value_of(members)->holds_slice(tree.node(entry->node).slice)) return ENOENT;
  return p.nested_payload(path);
}

Result<Listing> Namespace::list(const ResolvedNode& dir) const {
  const NodeKey& k = dir.key;
  switch (k.kind) {
    case NodeKind::source_dir:
      return list_source_dir(k);
    case NodeKind::payload_dir: {
      auto payload = payload_for(k);
      if (const int* err = error_of(payload)) return *err;
      Listing out;
      for (const auto& entry : kPayloadEntries) {
        if (entry.shown == PayloadEntry::Shown::on_lookup) continue;
        auto key = payload_child(k, entry.name, value_of(payload).get());
        if (auto* found = std::get_if<NodeKey>(&key))
          out.entries.push_back(DirEntry{std::string(entry.name), std::move(*found)});
      }
      return out;
    }
    case NodeKind::raw_dir:
      return list_raw_dir(dir);
    case NodeKind::nested_dir:
      return list_nested_dir(dir);
    case NodeKind::control_dir: {
      Listing out;
      for (const auto name : ControlFiles::kNames)
        out.entries.push_back(DirEntry{std::string(name), NodeKey::control_file(name)});
      return out;
    }
    case NodeKind::range_dir:
      return Listing{};  // a name for every byte range: found by lookup, never listed
    default:
      return ENOTDIR;
  }
}

Result<Listing> Namespace::list_source_dir(const NodeKey& dir) const {
  auto listed = root_.list(dir.path);
  if (const int* err = error_of(listed)) return *err;
  Listing out;
  for (auto& e : value_of(listed)) {
    if (dir.path.empty() && e.name == ControlFiles::kDir) {
      out.control_dir_hides_a_source = true;
      continue;
    }
    std::string path = SourceRoot::join(dir.path, e.name);
    unsigned char type = e.type;
    if (type == DT_UNKNOWN) {
      auto st = root_.stat(path);
      if (error_of(st) != nullptr) continue;
      type = static_cast<unsigned char>(IFTODT(value_of(st).st_mode));
    }
    const auto kind = kind_of_source(type, root_, path);
    if (!kind) continue;
    // getdents' d_ino and the directory's dev: what readdir reports without a stat.
    out.entries.push_back(
        DirEntry{std::move(e.name), NodeKey::source(*kind, dir.dev, e.ino, std::move(path))});
  }
  return out;
}

Listing Namespace::list_raw_dir(const ResolvedNode& dir) const {
  const SliceTree& tree = dir.payload->tree();
  const uint32_t node_id = tree.find(dir.key.sub)->node;  // resolve() checked it exists
  Listing out;
  for (const uint32_t id : tree.node(node_id).children) {
    const auto& node = tree.node(id);
    const NodeKind kind = node.is_dir ? NodeKind::raw_dir : NodeKind::raw_file;
    out.entries.push_back(
        DirEntry{std::string(node.name), dir.key.entry(kind, std::string(node.path))});
  }
  out.records = tree.record_count(node_id);
  out.record_table = tree.node(node_id).table.value_or(0);
  out.record_key = dir.key.entry(NodeKind::raw_file, dir.key.sub);
  return out;
}

// The entries of nested/<sub> that hold a nested payload: one head read per candidate slice,
// once per payload version (Payload::nested_members); never a member's parse.
Result<Listing> Namespace::list_nested_dir(const ResolvedNode& dir) const {
  auto found = nested_members(*dir.payload);
  if (const int* err = error_of(found)) return *err;
  const NestedMembers& members = *value_of(found);
  const SliceTree& tree = dir.payload->tree();
  const auto at = tree.find(dir.key.sub);
  if (!at || !at->is_dir()) return ESTALE;
  Listing out;
  for (const uint32_t id : tree.node(at->node).children) {
    const auto& node = tree.node(id);
    std::string path(node.path);
    if (node.is_dir && !node.table && members.dirs.contains(path)) {
      out.entries.push_back(
          DirEntry{std::string(node.name), dir.key.entry(NodeKind::nested_dir, std::move(path))});
    } else if (!node.is_dir && members.holds_slice(node.slice)) {
      out.entries.push_back(DirEntry{std::string(node.name), dir.key.nested_payload(path)});
    }
  }
  return out;
}

Result<struct stat> Namespace::attributes(const NodeKey& key, const Payload* payload,
                                          const struct stat* source) const {
  Result<struct stat> out = EINVAL;
  if (key.kind == NodeKind::control_dir || key.kind == NodeKind::control_file) {
    out = control_attributes(key);
  } else if (!needs_payload(key.kind)) {
    out = source_attributes(key, source);
  } else if (payload != nullptr) {
    out = entry_attributes(key, *payload);
  }
  if (auto* st = std::get_if<struct stat>(&out)) {
    st->st_blksize = 4096;
    st->st_blocks = (st->st_size + 511) / 512;
  }
  return out;
}

struct stat Namespace::control_attributes(const NodeKey& key) const {
  struct stat st {};
  st.st_uid = ::getuid();
  st.st_gid = ::getgid();
  st.st_mtim = st.st_ctim = st.st_atim = control_.started();
  if (key.kind == NodeKind::control_dir) {
    st.st_mode = S_IFDIR | 0555;
    st.st_nlink = 2;
  } else {
    st.st_mode = S_IFREG | 0444;
    st.st_nlink = 1;
    st.st_size = static_cast<off_t>(control_.render(key.sub).size());
  }
  return st;
}

// Source directories, payload directories, range/ and symbolic links: attributes from a
// fresh stat of the source object, which must still be the one the key names.
Result<struct stat> Namespace::source_attributes(const NodeKey& key,
                                                 const struct stat* source) const {
  Result<struct stat> seen =
      source != nullptr ? Result<struct stat>(*source) : root_.stat(key.path);
  if (const int* err = error_of(seen)) return *err == ENOENT ? ESTALE : *err;
  const struct stat& s = value_of(seen);
  if (s.st_dev != key.dev || s.st_ino != key.ino) return ESTALE;
  struct stat st {};
  take_owner_and_times(st, s);
  if (key.kind == NodeKind::symlink) {
    if (!S_ISLNK(s.st_mode)) return ESTALE;
    auto target = root_.link_target(key.path);
    if (const int* err = error_of(target)) return *err == ENOENT ? ESTALE : *err;
    st.st_mode = S_IFLNK | 0777;
    st.st_nlink = 1;
    st.st_size = static_cast<off_t>(value_of(target).size());
    return st;
  }
  const bool is_source_dir = key.kind == NodeKind::source_dir;
  if (is_source_dir != S_ISDIR(s.st_mode)) return ESTALE;
  st.st_mode = is_source_dir ? (S_IFDIR | (s.st_mode & 0555)) : dir_mode(s.st_mode);
  st.st_nlink = 2;
  return st;
}

// The entries of a payload: owner, times and read permission of the source file.
Result<struct stat> Namespace::entry_attributes(const NodeKey& key, const Payload& payload) const {
  const struct stat& s = payload.source_stat();
  struct stat st {};
  take_owner_and_times(st, s);
  if (key.kind == NodeKind::raw_dir || key.kind == NodeKind::nested_dir) {
    st.st_mode = dir_mode(s.st_mode);
    st.st_nlink = 2;
    return st;
  }
  st.st_mode = file_mode(s.st_mode);
  st.st_nlink = 1;
  auto served = entry_content(key, payload);
  if (error_of(served) != nullptr) return st;  // a raw/ name gone from this version: empty
  const NodeContent& c = value_of(served);
  uint64_t size = 0;
  switch (c.kind) {
    case NodeContent::Kind::text:
      size = c.text.size();
      break;
    case NodeContent::Kind::bytes:
      size = c.range.length;
      break;
    case NodeContent::Kind::records_json: {
      auto measured = slices_json_size(payload);
      if (const int* err = error_of(measured)) return *err;
      size = value_of(measured);
      break;
    }
    case NodeContent::Kind::snapshot:
      size = c.snapshot->size();
      break;
  }
  st.st_size = static_cast<off_t>(size);
  return st;
}

Result<NodeContent> Namespace::content(const ResolvedNode& node) const {
  if (node.key.kind == NodeKind::control_file) {
    NodeContent out;
    out.kind = NodeContent::Kind::snapshot;
    out.snapshot = std::make_shared<const std::string>(control_.render(node.key.sub));
    return out;
  }
  if (!needs_payload(node.key.kind) || node.payload == nullptr) return EISDIR;
  return entry_content(node.key, *node.payload);
}

Result<NodeContent> Namespace::entry_content(const NodeKey& key, const Payload& payload) const {
  NodeContent out;
  switch (key.kind) {
    case NodeKind::header_json:
      out.text = payload.header_json();
      return out;
    case NodeKind::slices_json:
      if (!payload.slices_json_whole()) {
        out.kind = NodeContent::Kind::records_json;
        return out;
      }
      out.text = payload.slices_json_head();
      return out;
    case NodeKind::refs_json:
      out.text = payload.refs_json(refs_url(payload));
      return out;
    case NodeKind::magic:
      out.kind = NodeContent::Kind::bytes;
      out.range = payload.magic();
      return out;
    case NodeKind::range_file:
      out.kind = NodeContent::Kind::bytes;
      out.range = {key.offset, key.length};
      return out;
    case NodeKind::raw_file: {
      const auto entry = payload.tree().find(key.sub);
      const auto range = entry ? payload.range_of(*entry) : std::nullopt;
      if (!range) return ESTALE;
      out.kind = NodeContent::Kind::bytes;
      out.range = *range;
      return out;
    }
    default:
      return EISDIR;  // raw/ directories
  }
}

Result<UniqueFd> Namespace::open_version(const Payload& payload) const {
  auto opened = root_.open_file(payload.path());
  if (const int* err = error_of(opened)) return source_error(payload.path(), *err);
  struct stat st {};
  if (::fstat(value_of(opened).get(), &st) != 0 || !(SourceIdentity::of(st) == payload.identity()))
    return ESTALE;
  return opened;
}

Result<uint64_t> Namespace::slices_json_size(const Payload& payload) const {
  if (payload.slices_json_measured()) return payload.slices_json_size();
  // Sized once per version by rendering every record, from this version of the file.
  auto opened = open_version(payload);
  if (const int* err = error_of(opened)) return *err;
  return payload.slices_json_size(FdSource(value_of(opened).get(), payload.size()));
}

Result<Xattrs> Namespace::xattrs(const ResolvedNode& node) const {
  std::shared_ptr<const Payload> payload = node.payload;
  if (node.key.kind == NodeKind::payload_dir) {
    auto got = payload_for(node.key);
    if (const int* err = error_of(got)) return *err;
    payload = std::move(value_of(got));
  }
  Xattrs out;
  if (!payload) return out;  // source directories, control files: none
  const auto add = [&out](std::string_view key, const Json& value) {
    out.emplace_back("user.payloadfs." + std::string(key),
                     value.is_string()
                         ? value.get<std::string>()
                         : value.dump(-1, ' ', false, Json::error_handler_t::replace));
  };
  add("source", utf8_or_escaped(payload->path()));
  add("format", payload->format());
  std::optional<ByteRange> range;
  Json attributes = Json::object();
  if (node.key.kind == NodeKind::magic) range = payload->magic();
  if (node.key.kind == NodeKind::range_file) range = ByteRange{node.key.offset, node.key.length};
  if (node.key.kind == NodeKind::raw_file) {
    const SliceTree& tree = payload->tree();
    const auto entry = tree.find(node.key.sub);
    if (!entry) return ESTALE;
    range = payload->range_of(*entry);
    if (entry->kind == SliceTree::Entry::Kind::slice) {
      attributes = payload->slices()[tree.node(entry->node).slice].attributes;
    } else if (const auto table = tree.node(entry->node).table; table) {
      const RecordTable& t = payload->tables()[*table];
      if (t.attributes) {  // read back from the file, as slices.json does
        auto opened = open_version(*payload);
        if (const int* err = error_of(opened)) return *err;
        attributes = t.attributes(FdSource(value_of(opened).get(), payload->size()),
                                  t.records.at(entry->record));
      }
    }
  }
  if (range) {
    add("offset", range->offset);
    add("length", range->length);
  }
  if (attributes.is_object()) {
    for (const auto& [key, value] : attributes.items()) {
      if (key.find('\0') == std::string::npos && key.size() < 200) add(key, value);
    }
  }
  return out;
}

}  // namespace payloadfs
