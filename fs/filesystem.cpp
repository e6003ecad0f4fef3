#include "fs/filesystem.hpp"

#include <sys/statvfs.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include "core/render/json_text.hpp"
#include "fs/log.hpp"
#include "fs/readahead.hpp"
#include "payloadfs/version.hpp"

namespace payloadfs {
namespace {

// The I/O pool of pread_sources: threads, and how many of them one source may hold.
constexpr unsigned kIoThreads = 4;
constexpr unsigned kIoThreadsPerSource = 2;
// Metadata operations of payloads (see on_payload_thread): one source at a time each, so
// this many stalled sources before another payload's first parse waits.
constexpr unsigned kMetadataThreads = 8;

// The source directory whose watch reports changes to the node at `path` (a payload's
// entries all have their source file's path).
std::string parent_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

bool may_build(const NodeKey& key, Filesystem::PayloadUse use) {
  const NodeKind kind = key.kind;
  switch (use) {
    case Filesystem::PayloadUse::node:  // a nested payload's directory is checked against it
      return needs_payload(kind) || (kind == NodeKind::payload_dir && !key.nest.empty());
    case Filesystem::PayloadUse::entries:
      return kind == NodeKind::payload_dir || kind == NodeKind::raw_dir ||
             kind == NodeKind::range_dir || kind == NodeKind::nested_dir;
    case Filesystem::PayloadUse::xattrs:
      return needs_payload(kind) || kind == NodeKind::payload_dir;
  }
  return true;
}

}  // namespace

Filesystem::Filesystem(SourceRoot root, Registry registry, MountOptions options)
    : root_(std::move(root)),
      registry_(std::move(registry)),
      options_(options),
      cache_(root_, registry_, options.cache_entries, options.cache_memory, options.nest_depth),
      control_(root_, registry_, payload_errors_, [this] { return stats_json(); }),
      names_(root_, cache_, payload_errors_, control_, options_.refs_prefix, logging_observer()),
      inodes_(names_.root_key()),
      started_(std::chrono::steady_clock::now()) {
  if (options_.pread_sources) {
    io_ = std::make_unique<SourceIoPool>(kIoThreads, kIoThreadsPerSource);
    metadata_ = std::make_unique<SourceIoPool>(kMetadataThreads, 1);
  }
}

// What the namespace sees and only the daemon's log should say.
Namespace::Observer Filesystem::logging_observer() const {
  Namespace::Observer observer;
  observer.built = [](const Payload& payload, const PayloadCache::Built& built,
                      bool newly_malformed) {
    if (log_enabled(LogLevel::debug)) {
      uint64_t slices = payload.slices().size();
      for (const auto& table : payload.tables()) slices += table.records.size();
      const std::chrono::duration<double, std::milli> ms = built.took;
      log(LogLevel::debug, "parsed %s: %s, %llu slices, %.1f ms", payload.path().c_str(),
          std::string(payload.format()).c_str(), static_cast<unsigned long long>(slices),
          ms.count());
    }
    if (newly_malformed) {
      const size_t count = payload.errors().size();
      log(LogLevel::warn, "malformed %s payload %s (%zu error%s): %s",
          std::string(payload.format()).c_str(), payload.path().c_str(), count,
          count == 1 ? "" : "s", payload.errors().front().c_str());
    }
  };
  observer.source_failed = [](const std::string& path, int err) {
    static std::atomic<int64_t> last_logged{0};
    const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    if (last_logged.exchange(now) != now)  // at most about one line a second
      log(LogLevel::warn, "source %s: %s (answered as EIO)", path.c_str(), std::strerror(err));
  };
  return observer;
}

void Filesystem::on_payload_thread(fuse_req_t req, fuse_ino_t ino, PayloadUse use,
                                   std::function<void()> op) {
  if (metadata_ == nullptr) return op();
  const auto key = inodes_.find(ino);
  if (!key || !may_build(*key, use)) return op();
  metadata_->submit(key->path, [this, req, op = std::move(op)](bool cancelled) {
    if (cancelled) return reply_error(req, EIO);
    op();
  });
}

void Filesystem::init(fuse_conn_info* conn) {
  no_opendir_ = (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) != 0;
  // Replies come from memory; splicing would only add syscalls (see docs/layout.md).
  conn->want &=
      ~static_cast<unsigned>(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
  conn->time_gran = 1;
}

void Filesystem::settle() {
  if (!settle_pending_.load(std::memory_order_relaxed) || !settle_pending_.exchange(false)) return;
  if (options_.read_ahead_kb == 0 || options_.mountpoint.empty()) return;
  const std::string problem = set_mount_readahead(options_.mountpoint, options_.read_ahead_kb);
  if (problem.empty()) {
    log(LogLevel::info, "readahead set to %u KiB", options_.read_ahead_kb);
  } else {
    log(LogLevel::warn, "readahead left at the kernel's default (%s)", problem.c_str());
  }
}

void Filesystem::reply_error(fuse_req_t req, int error) {
  if (error != ENOENT) stats_.errors.fetch_add(1, std::memory_order_relaxed);
  fuse_reply_err(req, error);
}

Result<ResolvedNode> Filesystem::resolve(fuse_ino_t ino) {
  auto key = inodes_.find(ino);
  if (!key) return ESTALE;
  return names_.resolve(std::move(*key));
}

Result<NodeKey> Filesystem::child(const ResolvedNode& parent, std::string_view name,
                                  struct stat* source) {
  auto key = names_.child(parent, name, source);
  const NodeKey* found = std::get_if<NodeKey>(&key);
  if (found != nullptr && found->kind == NodeKind::source_dir && watcher_ != nullptr)
    watcher_->watch(found->path);  // before the kernel caches anything below it
  return key;
}

bool Filesystem::watched(const std::string& dir) const {
  return watcher_ != nullptr && watcher_->watching(dir);
}

double Filesystem::attr_timeout(const NodeKey& key) const {
  if (key.kind == NodeKind::control_file && ControlFiles::changes_between_reads(key.sub))
    return 0.0;  // never let the kernel cache a size that the next read will not have
  if (key.kind == NodeKind::control_dir || key.kind == NodeKind::control_file)
    return MountOptions::kWatchedTimeout;
  return options_.attr_timeout.value_or(watched(parent_of(key.path))
                                            ? MountOptions::kWatchedTimeout
                                            : MountOptions::kUnwatchedTimeout);
}

double Filesystem::entry_timeout(const std::string& parent_dir) const {
  return options_.entry_timeout.value_or(watched(parent_dir) ? MountOptions::kWatchedTimeout
                                                             : MountOptions::kUnwatchedTimeout);
}

double Filesystem::negative_timeout(const std::string& parent_dir) const {
  return options_.negative_timeout.value_or(watched(parent_dir) ? MountOptions::kWatchedTimeout
                                                                : MountOptions::kUnwatchedTimeout);
}

void Filesystem::attach(fuse_session* session) {
  session_ = session;
  if (options_.range_nodes > 0) {
    range_nodes_ = std::make_unique<RangeNodeLimit>(
        options_.range_nodes,
        [this](fuse_ino_t ino) { return inodes_.is(ino, NodeKind::range_file); },
        [this](fuse_ino_t parent, fuse_ino_t child, const std::string& name) {
          if (session_ == nullptr || !notifying_.load()) return false;
          return fuse_lowlevel_notify_delete(session_, parent, child, name.c_str(), name.size()) ==
                 0;
        });
  }
  if (!options_.watch_sources) return;
  watcher_ = SourceWatcher::start(root_.path(), [this](const auto& changes, bool overflow) {
    on_source_changes(changes, overflow);
  });
  if (!watcher_ || !watcher_->watch("")) {
    watcher_.reset();
    log(LogLevel::warn, "cannot watch %s for changes; changes show within %.0f s",
        root_.path().c_str(), MountOptions::kUnwatchedTimeout);
  }
}

void Filesystem::quiesce() {
  notifying_.store(false);
  // A range/ LOOKUP queued behind a stalled parse holds the directory lock a prune waits for:
  // answer what waits (EIO) before stopping the range limit.
  if (metadata_ != nullptr) metadata_->cancel_queued();
  // Stopped, not destroyed: workers still ask it what is watched, and tell it of lookups.
  if (watcher_ != nullptr) watcher_->stop();
  if (range_nodes_ != nullptr) range_nodes_->stop();
}

void Filesystem::detach() {
  // Both reply to what waits, while the session can take them.
  if (metadata_ != nullptr) metadata_->stop();
  if (io_ != nullptr) io_->stop();
  quiesce();
  watcher_.reset();
  range_nodes_.reset();
  session_ = nullptr;
}

// Runs on the watcher's thread, never inside a request: telling the kernel to drop cached
// entries while it waits for one of our replies could deadlock.
void Filesystem::on_source_changes(const std::vector<SourceWatcher::Change>& changes,
                                   bool overflow) {
  // Checked before every notification: shutdown may begin while a batch is being sent.
  const auto go_on = [this] { return session_ != nullptr && notifying_.load(); };
  if (overflow) {  // events were lost: every cached attribute is suspect
    for (const fuse_ino_t ino : inodes_.all()) {
      if (!go_on()) return;
      fuse_lowlevel_notify_inval_inode(session_, ino, 0, 0);
    }
    return;
  }
  for (const auto& change : changes) {
    for (const auto& [ino, kind] : inodes_.nodes_of(change.dir)) {
      if (kind != NodeKind::source_dir) continue;
      if (!go_on()) return;
      fuse_lowlevel_notify_inval_entry(session_, ino, change.name.c_str(), change.name.size());
      fuse_lowlevel_notify_inval_inode(session_, ino, 0, 0);  // its mtime and listing
    }
    for (const auto& [ino, kind] : inodes_.nodes_of(SourceRoot::join(change.dir, change.name))) {
      if (!go_on()) return;
      fuse_lowlevel_notify_inval_inode(session_, ino, 0, 0);
    }
  }
}

Result<fuse_entry_param> Filesystem::entry_of(const NodeKey& key, const Payload* payload,
                                              const struct stat* source) {
  auto attr = names_.attributes(key, payload, source);
  if (const int* err = error_of(attr)) return *err;
  fuse_entry_param entry{};
  entry.attr = value_of(attr);
  entry.ino = inodes_.acquire(key);
  entry.attr.st_ino = entry.ino;
  entry.generation = 0;
  entry.attr_timeout = attr_timeout(key);
  entry.entry_timeout = entry_timeout(parent_of(key.path));
  return entry;
}

void Filesystem::lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  settle();
  stats_.lookups.fetch_add(1, std::memory_order_relaxed);
  auto resolved = resolve(parent);
  if (const int* err = error_of(resolved)) return reply_error(req, *err);
  const ResolvedNode& dir = value_of(resolved);
  struct stat source {};
  auto key = child(dir, name, &source);
  if (const int* err = error_of(key)) {
    if (*err != ENOENT) return reply_error(req, *err);
    // A negative entry the kernel may cache for negative_timeout.
    fuse_entry_param negative{};
    const NodeKey& p = dir.key;
    negative.entry_timeout =
        negative_timeout(p.kind == NodeKind::source_dir ? p.path : parent_of(p.path));
    fuse_reply_entry(req, &negative);
    return;
  }
  NodeKey& k = value_of(key);
  std::shared_ptr<const Payload> payload;
  if (needs_payload(k.kind)) {
    auto got = names_.payload_for(k);
    if (const int* err = error_of(got)) return reply_error(req, *err);
    payload = std::move(value_of(got));
    k = Namespace::versioned(std::move(k), *payload);  // the version whose attributes we send
  }
  auto entry = entry_of(k, payload.get(), source.st_ino != 0 ? &source : nullptr);
  if (const int* err = error_of(entry)) return reply_error(req, *err);
  fuse_reply_entry(req, &value_of(entry));
  // After the reply: the kernel has the dentry a prune would delete.
  if (k.kind == NodeKind::range_file && range_nodes_ != nullptr)
    range_nodes_->looked_up(parent, value_of(entry).ino, name);
}

void Filesystem::forget(fuse_ino_t ino, uint64_t count) {
  inodes_.forget(ino, count);
}

void Filesystem::getattr(fuse_req_t req, fuse_ino_t ino) {
  settle();
  stats_.getattrs.fetch_add(1, std::memory_order_relaxed);
  auto resolved = resolve(ino);
  if (const int* err = error_of(resolved)) return reply_error(req, *err);
  const ResolvedNode& r = value_of(resolved);
  auto attr = names_.attributes(r.key, r.payload.get());
  if (const int* err = error_of(attr)) return reply_error(req, *err);
  auto st = value_of(attr);
  st.st_ino = ino;
  fuse_reply_attr(req, &st, attr_timeout(r.key));
}

void Filesystem::opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  settle();
  stats_.opendirs.fetch_add(1, std::memory_order_relaxed);
  // From the first ENOSYS on, the kernel opens and releases directories itself, with
  // FOPEN_CACHE_DIR and FOPEN_KEEP_CACHE: a listing is read once until it changes (the
  // watcher invalidates, and the kernel compares the directory's mtime at each rewind).
  if (no_opendir_) return static_cast<void>(fuse_reply_err(req, ENOSYS));
  // A kernel without zero-message opendir: the same caching, chosen per open.
  auto resolved = resolve(ino);
  if (const int* err = error_of(resolved)) return reply_error(req, *err);
  const ResolvedNode& r = value_of(resolved);
  const NodeKey& k = r.key;
  if (!is_directory(k.kind)) return reply_error(req, ENOTDIR);
  fi->cache_readdir = k.kind != NodeKind::source_dir || watched(k.path);
  fi->keep_cache = fi->cache_readdir;
  if (r.payload)  // a new payload version may list other entries
    fi->keep_cache = inodes_.same_version_as_last_open(ino, r.payload->identity());
  fi->fh = 0;  // READDIR lists by inode (see DirListings)
  fuse_reply_open(req, fi);
}

Result<std::shared_ptr<const OpenDir>> Filesystem::list_directory(fuse_ino_t ino) {
  auto resolved = resolve(ino);
  if (const int* err = error_of(resolved)) return *err;
  const ResolvedNode& r = value_of(resolved);
  const NodeKey& k = r.key;
  if (!is_directory(k.kind)) return ENOTDIR;
  auto listed = names_.list(r);
  if (const int* err = error_of(listed)) return *err;
  Listing& listing = value_of(listed);
  if (listing.control_dir_hides_a_source)
    log(LogLevel::warn, "source entry '%s' is hidden by the control directory",
        std::string(ControlFiles::kDir).c_str());
  auto dir = std::make_shared<OpenDir>();
  dir->payload = r.payload;
  dir->entries.reserve(listing.entries.size() + 2);
  dir->entries.push_back(DirEntry{".", k});
  dir->entries.push_back(DirEntry{"..", k});
  std::move(listing.entries.begin(), listing.entries.end(), std::back_inserter(dir->entries));
  dir->records = listing.records;
  dir->record_table = listing.record_table;
  dir->record_key = std::move(listing.record_key);
  return std::shared_ptr<const OpenDir>(std::move(dir));
}

// READDIRPLUS's entry for `e` of `dir`, looked up as LOOKUP would; null if it vanished.
std::optional<fuse_entry_param> Filesystem::plus_entry(const OpenDir& dir, const DirEntry& e,
                                                       std::shared_ptr<const Payload>& payload) {
  NodeKey key = e.key;
  struct stat source {};
  // (Nested payloads' directories are no source objects: their keys are lookup's already.)
  if ((key.kind == NodeKind::source_dir || key.kind == NodeKind::payload_dir ||
       key.kind == NodeKind::symlink) &&
      key.nest.empty()) {
    // getdents' d_ino is not the identity lookup sees (mount points): ask lookup's way.
    auto looked_up = child(ResolvedNode{dir.entries[0].key, nullptr}, e.name, &source);
    if (auto* k = std::get_if<NodeKey>(&looked_up)) key = std::move(*k);
    if (source.st_ino != key.ino) source.st_ino = 0;  // not that key's stat
  }
  if (needs_payload(key.kind) && !payload) {
    auto got = names_.payload_for(key);
    if (auto* p = std::get_if<std::shared_ptr<const Payload>>(&got)) payload = *p;
  }
  // A payload gone since the listing (its file replaced) leaves nothing to describe.
  if (needs_payload(key.kind) && !payload) return std::nullopt;
  if (payload) key = Namespace::versioned(std::move(key), *payload);
  auto entry = entry_of(key, needs_payload(key.kind) ? payload.get() : nullptr,
                        source.st_ino != 0 ? &source : nullptr);
  if (error_of(entry) != nullptr) return std::nullopt;
  return value_of(entry);
}

void Filesystem::readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, bool plus) {
  stats_.readdirs.fetch_add(1, std::memory_order_relaxed);
  // Offset 0 starts a pass and lists afresh; later offsets continue the pass's listing.
  std::shared_ptr<const OpenDir> listing = offset > 0 ? listings_.find(ino) : nullptr;
  if (!listing) {
    auto listed = list_directory(ino);
    if (const int* err = error_of(listed)) return reply_error(req, *err);
    listing = std::move(value_of(listed));
    listings_.keep(ino, listing);
  }
  const OpenDir& dir = *listing;
  std::vector<char> buf(size);
  size_t used = 0;
  std::shared_ptr<const Payload> payload = dir.payload;
  const uint64_t total = dir.entries.size() + dir.records;
  DirEntry computed;
  for (auto i = static_cast<uint64_t>(std::max<off_t>(offset, 0)); i < total; ++i) {
    if (i >= dir.entries.size()) {  // a record of a table: name and key are computed
      computed.name = payload->tree().name_of_record(dir.record_table, i - dir.entries.size());
      computed.key = dir.record_key;
      computed.key.sub += "/" + computed.name;
    }
    const DirEntry& e = i < dir.entries.size() ? dir.entries[i] : computed;
    const bool dot = i < 2;
    const fuse_ino_t dot_ino = i == 0 ? ino : FUSE_ROOT_ID;
    const auto next = static_cast<off_t>(i + 1);
    size_t added = 0;
    if (!plus) {
      struct stat st {};
      st.st_ino = dot ? dot_ino : InodeTable::preferred(e.key);
      st.st_mode = is_directory(e.key.kind)          ? S_IFDIR
                   : e.key.kind == NodeKind::symlink ? S_IFLNK
                                                     : S_IFREG;
      added = fuse_add_direntry(req, buf.data() + used, size - used, e.name.c_str(), &st, next);
    } else {
      fuse_entry_param entry{};
      if (dot) {
        entry.attr.st_ino = dot_ino;
        entry.attr.st_mode = S_IFDIR;
      } else if (auto found = plus_entry(dir, e, payload)) {
        entry = *found;
      } else {
        continue;  // vanished since opendir
      }
      added =
          fuse_add_direntry_plus(req, buf.data() + used, size - used, e.name.c_str(), &entry, next);
      if (added > size - used && !dot) inodes_.forget(entry.ino, 1);  // did not fit: not sent
    }
    if (added > size - used) break;
    used += added;
  }
  // The kernel asks past the last entry once, and caches the listing as complete.
  if (used == 0) listings_.done(ino, listing.get());
  fuse_reply_buf(req, buf.data(), used);
}

void Filesystem::releasedir(fuse_req_t req) {
  fuse_reply_err(req, 0);
}

void Filesystem::readlink(fuse_req_t req, fuse_ino_t ino) {
  auto resolved = resolve(ino);
  if (const int* err = error_of(resolved)) return reply_error(req, *err);
  const NodeKey& key = value_of(resolved).key;
  if (key.kind != NodeKind::symlink) return reply_error(req, EINVAL);
  // Recomputed on every call: where the link leads is checked against SRC as it is now.
  auto target = root_.link_target(key.path);
  if (const int* err = error_of(target)) return reply_error(req, *err);
  fuse_reply_readlink(req, value_of(target).c_str());
}

void Filesystem::statfs(fuse_req_t req) {
  struct statvfs sv {};
  if (::fstatvfs(root_.fd(), &sv) != 0) return reply_error(req, errno);
  sv.f_bfree = sv.f_bavail = 0;  // read-only: nothing can be written
  sv.f_ffree = sv.f_favail = 0;
  sv.f_namemax = 255;
  sv.f_flag |= ST_RDONLY;
  fuse_reply_statfs(req, &sv);
}

void Filesystem::getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  // ls -l probes security.* and system.* of every entry: answer without parsing payloads.
  if (!is_ours(name)) return static_cast<void>(fuse_reply_err(req, ENODATA));
  auto resolved = resolve(ino);
  if (const int* err = error_of(resolved)) return reply_error(req, *err);
  auto all = names_.xattrs(value_of(resolved));
  if (const int* err = error_of(all)) return reply_error(req, *err);
  for (const auto& [key, value] : value_of(all)) {
    if (key != name) continue;
    if (size == 0) return static_cast<void>(fuse_reply_xattr(req, value.size()));
    if (size < value.size()) return reply_error(req, ERANGE);
    return static_cast<void>(fuse_reply_buf(req, value.data(), value.size()));
  }
  fuse_reply_err(req, ENODATA);  // not an error worth counting: tools probe for names
}

void Filesystem::listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  auto resolved = resolve(ino);
  if (const int* err = error_of(resolved)) return reply_error(req, *err);
  auto all = names_.xattrs(value_of(resolved));
  if (const int* err = error_of(all)) return reply_error(req, *err);
  std::string names;
  for (const auto& [key, value] : value_of(all)) names.append(key).push_back('\0');
  if (size == 0) return static_cast<void>(fuse_reply_xattr(req, names.size()));
  if (size < names.size()) return reply_error(req, ERANGE);
  fuse_reply_buf(req, names.data(), names.size());
}

std::string Filesystem::stats_json() const {
  const auto cache = cache_.counters();
  const auto uptime = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_);
  const auto load = [](const std::atomic<uint64_t>& v) {
    return v.load(std::memory_order_relaxed);
  };
  Json out = {
      {"version", kVersion},
      {"uptime_seconds", uptime.count()},
      {"lookups", load(stats_.lookups)},
      {"getattrs", load(stats_.getattrs)},
      {"readdirs", load(stats_.readdirs)},
      {"opens", load(stats_.opens)},
      {"reads", load(stats_.reads)},
      {"bytes_served", load(stats_.bytes_served)},
      {"errors", load(stats_.errors)},
      {"payloads_mapped", cache.cached},
      {"payload_cache_bytes", cache.memory},
      {"payloads_built", cache.builds},
      {"payloads_with_errors", cache.builds_with_errors},
      {"payloads_not_cached", cache.uncached_builds},
      {"io_queued", io_ != nullptr ? io_->queued() : 0},
      {"payload_cache_hits", cache.hits},
      {"payload_cache_evictions", cache.evictions},
      {"inodes", inodes_.size()},
      {"range_nodes", inodes_.range_files()},
      {"range_nodes_pruned", range_nodes_ != nullptr ? range_nodes_->pruned() : 0},
      {"open_files", files_.size()},
      {"open_dirs", listings_.size()},
      {"opendirs", load(stats_.opendirs)},
      {"source_descriptors_held", sources_.held()},
      {"source_descriptor_budget", sources_.limit()},
  };
  const uint64_t lookups = cache.hits + cache.misses;
  out["payload_cache"] = {
      {"hits", cache.hits},
      {"misses", cache.misses},
      {"evictions", cache.evictions},
      {"hit_ratio",
       lookups == 0 ? 0.0 : static_cast<double>(cache.hits) / static_cast<double>(lookups)},
      {"entries", cache.cached},
      {"bytes", cache.memory},
      {"max_entries", cache.capacity},
      {"max_bytes", cache.memory_budget},
  };
  Json formats = Json::object();
  for (const auto& [name, counts] : cache.formats)
    formats[name] = {{"parsed", counts.parsed}, {"with_errors", counts.with_errors}};
  out["formats"] = std::move(formats);
  return out.dump(2) + "\n";
}

}  // namespace payloadfs
