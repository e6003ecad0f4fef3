#include "fs/filesystem.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"
#include "core/vfs/range_name.hpp"
#include "fs/log.hpp"
#include "fs/readahead.hpp"
#include "payloadfs/version.hpp"

namespace payloadfs {
namespace {

constexpr std::string_view kControlDir = ".payloadfs";
// The I/O pool of pread_sources: threads, and how many of them one source may hold.
constexpr unsigned kIoThreads = 4;
constexpr unsigned kIoThreadsPerSource = 2;
// Metadata operations of payloads (see on_payload_thread): one source at a time each, so
// this many stalled sources before another payload's first parse waits.
constexpr unsigned kMetadataThreads = 8;
// Reads at least this large have their source pages mapped in one call before the reply.
constexpr size_t kPopulateBytes = 64 << 10;
constexpr std::string_view kControlFiles[] = {"version", "formats.json", "stats.json",
                                              "errors.json"};
constexpr std::string_view kPayloadEntries[] = {"header.json", "slices.json", "refs.json", "magic",
                                                "raw"};

struct stat must_stat_root(const SourceRoot& root) {
  struct stat st {};
  if (::fstat(root.fd(), &st) != 0) st.st_mode = S_IFDIR | 0555;
  return st;
}

struct timespec wall_now() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return ts;
}

// The source directory whose watch reports changes to the node at `path` (a payload's
// entries all have their source file's path).
std::string parent_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

// Where refs.json's references point: -o refs_prefix, or SRC's absolute path, then the path.
std::string refs_url(const SourceRoot& root, const MountOptions& options, const Payload& payload) {
  if (!options.refs_prefix.empty()) return options.refs_prefix + payload.path();
  return root.path() + (root.path().ends_with('/') ? "" : "/") + payload.path();
}

// Read permission is what a source grants; directories get x wherever they get r.
mode_t file_mode(mode_t source) {
  return S_IFREG | (source & 0444);
}
mode_t dir_mode(mode_t source) {
  const mode_t r = source & 0444;
  return S_IFDIR | r | (r >> 2);
}

}  // namespace

Filesystem::Filesystem(SourceRoot root, Registry registry, MountOptions options)
    : root_(std::move(root)),
      registry_(std::move(registry)),
      options_(options),
      cache_(root_, registry_, options.cache_entries, options.cache_memory),
      inodes_(NodeKey{NodeKind::source_dir, must_stat_root(root_).st_dev,
                      must_stat_root(root_).st_ino, "", "", 0, 0}),
      started_(std::chrono::steady_clock::now()),
      started_wall_(wall_now()) {
  if (options_.pread_sources) {
    io_ = std::make_unique<SourceIoPool>(kIoThreads, kIoThreadsPerSource);
    metadata_ = std::make_unique<SourceIoPool>(kMetadataThreads, 1);
  }
}

namespace {

bool may_build(NodeKind kind, Filesystem::PayloadUse use) {
  switch (use) {
    case Filesystem::PayloadUse::node:
      return needs_payload(kind);
    case Filesystem::PayloadUse::entries:
      return kind == NodeKind::payload_dir || kind == NodeKind::raw_dir ||
             kind == NodeKind::range_dir;
    case Filesystem::PayloadUse::xattrs:
      return needs_payload(kind) || kind == NodeKind::payload_dir;
  }
  return true;
}

}  // namespace

void Filesystem::on_payload_thread(fuse_req_t req, fuse_ino_t ino, PayloadUse use,
                                   std::function<void()> op) {
  if (metadata_ == nullptr) return op();
  const auto key = inodes_.find(ino);
  if (!key || !may_build(key->kind, use)) return op();
  metadata_->submit(key->path, [this, req, op = std::move(op)](bool cancelled) {
    if (cancelled) return reply_error(req, EIO);
    op();
  });
}

void Filesystem::init(fuse_conn_info* conn) {
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

int Filesystem::source_error(const std::string& path, int err) const {
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
    default: {
      // ENOSPC, ENOMEM, ... from the source's filesystem mean nothing to a reader of ours.
      static std::atomic<int64_t> last_logged{0};
      const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::steady_clock::now().time_since_epoch())
                              .count();
      if (last_logged.exchange(now) != now)  // at most about one line a second
        log(LogLevel::warn, "source %s: %s (answered as EIO)", path.c_str(), std::strerror(err));
      return EIO;
    }
  }
}

std::variant<std::shared_ptr<const Payload>, int> Filesystem::payload_for(const NodeKey& key) {
  PayloadCache::Built built;
  auto got = cache_.get(key.path, &built);
  if (const int* err = std::get_if<int>(&got)) return source_error(key.path, *err);
  auto payload = std::get<std::shared_ptr<const Payload>>(std::move(got));
  if (built.fresh) {  // a new version (or a rebuilt one): logged here, never on cache hits
    if (log_enabled(LogLevel::debug)) {
      uint64_t slices = payload->slices().size();
      for (const auto& table : payload->tables()) slices += table.records.size();
      const std::chrono::duration<double, std::milli> ms = built.took;
      log(LogLevel::debug, "parsed %s: %s, %llu slices, %.1f ms", payload->path().c_str(),
          std::string(payload->format()).c_str(), static_cast<unsigned long long>(slices),
          ms.count());
    }
    if (payload_errors_.record(*payload)) {
      const size_t count = payload->errors().size();
      log(LogLevel::warn, "malformed %s payload %s (%zu error%s): %s",
          std::string(payload->format()).c_str(), payload->path().c_str(), count,
          count == 1 ? "" : "s", payload->errors().front().c_str());
    }
  }
  const auto id = payload->identity();
  if (id.dev != key.dev || id.ino != key.ino) return ESTALE;  // another file now has that name
  return payload;
}

std::variant<Filesystem::Resolved, int> Filesystem::resolve(fuse_ino_t ino) {
  auto key = inodes_.find(ino);
  if (!key) return ESTALE;
  Resolved out{std::move(*key), nullptr};
  if (needs_payload(out.key.kind)) {
    auto payload = payload_for(out.key);
    if (const int* err = std::get_if<int>(&payload)) return *err;
    out.payload = std::get<std::shared_ptr<const Payload>>(std::move(payload));
    if (out.key.kind == NodeKind::raw_dir || out.key.kind == NodeKind::raw_file) {
      const auto entry = out.payload->tree().find(out.key.sub);
      const bool want_dir = out.key.kind == NodeKind::raw_dir;
      if (!entry || entry->is_dir() != want_dir) return ESTALE;
    }
    if (out.key.kind == NodeKind::refs_json && !out.payload->has_refs_json()) return ESTALE;
    if (out.key.kind == NodeKind::range_file &&
        !range_within(out.key.offset, out.key.length, out.payload->size()))
      return ESTALE;
  }
  return out;
}

std::variant<NodeKey, int> Filesystem::child(const Resolved& parent, std::string_view name,
                                             struct stat* source) {
  const NodeKey& p = parent.key;
  NodeKey key{NodeKind::source_dir, p.dev, p.ino, p.path, "", 0, 0};
  switch (p.kind) {
    case NodeKind::source_dir: {
      if (p.path.empty() && name == kControlDir) {
        return NodeKey{NodeKind::control_dir, 0, 0, "", "", 0, 0};
      }
      const std::string path = SourceRoot::join(p.path, name);
      auto st = root_.stat(path);
      if (const int* err = std::get_if<int>(&st)) return *err == ENOTDIR ? ENOENT : *err;
      const auto& s = std::get<struct stat>(st);
      if (source != nullptr) *source = s;
      if (S_ISDIR(s.st_mode)) {
        if (watcher_ != nullptr) watcher_->watch(path);  // before the kernel caches anything
        return NodeKey{NodeKind::source_dir, s.st_dev, s.st_ino, path, "", 0, 0};
      }
      if (S_ISREG(s.st_mode))
        return NodeKey{NodeKind::payload_dir, s.st_dev, s.st_ino, path, "", 0, 0};
      if (S_ISLNK(s.st_mode) && std::holds_alternative<std::string>(root_.link_target(path)))
        return NodeKey{NodeKind::symlink, s.st_dev, s.st_ino, path, "", 0, 0};
      return ENOENT;  // links leading outside SRC, devices, FIFOs, sockets are not shown
    }
    case NodeKind::payload_dir:
      if (name == "header.json")
        key.kind = NodeKind::header_json;
      else if (name == "slices.json")
        key.kind = NodeKind::slices_json;
      else if (name == "refs.json") {
        // Only payloads with array slices have one: the payload must be parsed to know.
        auto payload = payload_for(p);
        if (const int* err = std::get_if<int>(&payload)) return *err;
        if (!std::get<std::shared_ptr<const Payload>>(payload)->has_refs_json()) return ENOENT;
        key.kind = NodeKind::refs_json;
      } else if (name == "magic")
        key.kind = NodeKind::magic;
      else if (name == "raw")
        key.kind = NodeKind::raw_dir;
      else if (name == "range")
        key.kind = NodeKind::range_dir;
      else
        return ENOENT;
      return key;
    case NodeKind::raw_dir: {
      const SliceTree& tree = parent.payload->tree();
      const auto dir = tree.find(p.sub);
      const auto entry = dir ? tree.child(*dir, name) : std::nullopt;
      if (!entry) return ENOENT;
      key.kind = entry->is_dir() ? NodeKind::raw_dir : NodeKind::raw_file;
      key.sub = tree.path_of(*entry);
      return key;
    }
    case NodeKind::range_dir: {
      auto payload = payload_for(p);
      if (const int* err = std::get_if<int>(&payload)) return *err;
      const auto range =
          parse_range_name(name, std::get<std::shared_ptr<const Payload>>(payload)->size());
      if (!range) return ENOENT;
      key.kind = NodeKind::range_file;
      key.offset = range->offset;
      key.length = range->length;
      return key;
    }
    case NodeKind::control_dir:
      for (const auto file : kControlFiles) {
        if (name == file) return NodeKey{NodeKind::control_file, 0, 0, "", std::string(file), 0, 0};
      }
      return ENOENT;
    default:
      return ENOTDIR;
  }
}

std::variant<uint64_t, int> Filesystem::slices_json_size(const Payload& payload) {
  if (payload.slices_json_measured()) return payload.slices_json_size();
  // Sized once per version by rendering every record, from this version of the file.
  auto opened = source_of_version(payload);
  if (const int* err = std::get_if<int>(&opened)) return *err;
  return payload.slices_json_size(FdSource(std::get<UniqueFd>(opened).get(), payload.size()));
}

std::variant<struct stat, int> Filesystem::attributes(const NodeKey& key, const Payload* payload,
                                                      const struct stat* source) {
  // The caller's fresh stat of a source object, or a new one.
  const auto source_stat = [&]() -> std::variant<struct stat, int> {
    if (source != nullptr) return *source;
    return root_.stat(key.path);
  };
  struct stat st {};
  st.st_blksize = 4096;
  if (key.kind == NodeKind::control_dir || key.kind == NodeKind::control_file) {
    st.st_uid = ::getuid();
    st.st_gid = ::getgid();
    st.st_mtim = st.st_ctim = st.st_atim = started_wall_;
    if (key.kind == NodeKind::control_dir) {
      st.st_mode = S_IFDIR | 0555;
      st.st_nlink = 2;
    } else {
      st.st_mode = S_IFREG | 0444;
      st.st_nlink = 1;
      st.st_size = static_cast<off_t>(control_file(key.sub).size());
    }
  } else if (key.kind == NodeKind::symlink) {
    auto seen = source_stat();
    if (const int* err = std::get_if<int>(&seen)) return *err == ENOENT ? ESTALE : *err;
    const auto& s = std::get<struct stat>(seen);
    if (s.st_dev != key.dev || s.st_ino != key.ino || !S_ISLNK(s.st_mode)) return ESTALE;
    auto target = root_.link_target(key.path);
    if (const int* err = std::get_if<int>(&target)) return *err == ENOENT ? ESTALE : *err;
    st.st_mode = S_IFLNK | 0777;
    st.st_nlink = 1;
    st.st_size = static_cast<off_t>(std::get<std::string>(target).size());
    st.st_uid = s.st_uid;
    st.st_gid = s.st_gid;
    st.st_mtim = st.st_atim = s.st_mtim;
    st.st_ctim = s.st_ctim;
  } else if (key.kind == NodeKind::source_dir || key.kind == NodeKind::payload_dir ||
             key.kind == NodeKind::range_dir) {
    auto seen = source_stat();
    if (const int* err = std::get_if<int>(&seen)) return *err == ENOENT ? ESTALE : *err;
    const auto& s = std::get<struct stat>(seen);
    if (s.st_dev != key.dev || s.st_ino != key.ino) return ESTALE;
    const bool is_source_dir = key.kind == NodeKind::source_dir;
    if (is_source_dir != S_ISDIR(s.st_mode)) return ESTALE;
    st.st_mode = is_source_dir ? (S_IFDIR | (s.st_mode & 0555)) : dir_mode(s.st_mode);
    st.st_nlink = 2;
    st.st_uid = s.st_uid;
    st.st_gid = s.st_gid;
    st.st_mtim = st.st_atim = s.st_mtim;
    st.st_ctim = s.st_ctim;
  } else {
    const struct stat& s = payload->source_stat();
    st.st_uid = s.st_uid;
    st.st_gid = s.st_gid;
    st.st_mtim = st.st_atim = s.st_mtim;
    st.st_ctim = s.st_ctim;
    st.st_mode = file_mode(s.st_mode);
    st.st_nlink = 1;
    uint64_t size = 0;
    switch (key.kind) {
      case NodeKind::header_json:
        size = payload->header_json().size();
        break;
      case NodeKind::slices_json: {
        auto measured = slices_json_size(*payload);
        if (const int* err = std::get_if<int>(&measured)) return *err;
        size = std::get<uint64_t>(measured);
        break;
      }
      case NodeKind::refs_json:
        size = payload->refs_json(refs_url(root_, options_, *payload)).size();
        break;
      case NodeKind::magic:
        size = payload->magic().length;
        break;
      case NodeKind::range_file:
        size = key.length;
        break;
      case NodeKind::raw_file: {
        const auto entry = payload->tree().find(key.sub);
        const auto range = entry ? payload->range_of(*entry) : std::nullopt;
        size = range ? range->length : 0;
        break;
      }
      case NodeKind::raw_dir:
        st.st_mode = dir_mode(s.st_mode);
        st.st_nlink = 2;
        break;
      default:
        break;
    }
    st.st_size = static_cast<off_t>(size);
  }
  st.st_ino = InodeTable::preferred(key);
  st.st_blocks = (st.st_size + 511) / 512;
  return st;
}

bool Filesystem::watched(const std::string& dir) const {
  return watcher_ != nullptr && watcher_->watching(dir);
}

double Filesystem::attr_timeout(const NodeKey& key) const {
  // stats.json and errors.json change size between calls: never let the kernel cache their
  // attributes.
  if (key.kind == NodeKind::control_file && (key.sub == "stats.json" || key.sub == "errors.json"))
    return 0.0;
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

void Filesystem::lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  settle();
  stats_.lookups.fetch_add(1, std::memory_order_relaxed);
  auto resolved = resolve(parent);
  if (const int* err = std::get_if<int>(&resolved)) return reply_error(req, *err);
  struct stat source {};
  source.st_ino = 0;
  auto key = child(std::get<Resolved>(resolved), name, &source);
  if (const int* err = std::get_if<int>(&key)) {
    if (*err == ENOENT) {
      // A negative entry the kernel may cache for negative_timeout.
      fuse_entry_param negative{};
      const NodeKey& p = std::get<Resolved>(resolved).key;
      negative.entry_timeout =
          negative_timeout(p.kind == NodeKind::source_dir ? p.path : parent_of(p.path));
      fuse_reply_entry(req, &negative);
      return;
    }
    return reply_error(req, *err);
  }
  const NodeKey& k = std::get<NodeKey>(key);
  std::shared_ptr<const Payload> payload;
  if (needs_payload(k.kind)) {
    auto got = payload_for(k);
    if (const int* err = std::get_if<int>(&got)) return reply_error(req, *err);
    payload = std::get<std::shared_ptr<const Payload>>(std::move(got));
  }
  auto attr = attributes(k, payload.get(), source.st_ino != 0 ? &source : nullptr);
  if (const int* err = std::get_if<int>(&attr)) return reply_error(req, *err);
  fuse_entry_param entry{};
  entry.attr = std::get<struct stat>(attr);
  entry.ino = inodes_.acquire(k);
  entry.attr.st_ino = entry.ino;
  entry.generation = 0;
  entry.attr_timeout = attr_timeout(k);
  entry.entry_timeout = entry_timeout(parent_of(k.path));
  fuse_reply_entry(req, &entry);
  // After the reply: the kernel has the dentry a prune would delete.
  if (k.kind == NodeKind::range_file && range_nodes_ != nullptr)
    range_nodes_->looked_up(parent, entry.ino, name);
}

void Filesystem::forget(fuse_ino_t ino, uint64_t count) {
  inodes_.forget(ino, count);
}

void Filesystem::getattr(fuse_req_t req, fuse_ino_t ino) {
  settle();
  stats_.getattrs.fetch_add(1, std::memory_order_relaxed);
  auto resolved = resolve(ino);
  if (const int* err = std::get_if<int>(&resolved)) return reply_error(req, *err);
  const auto& r = std::get<Resolved>(resolved);
  auto attr = attributes(r.key, r.payload.get());
  if (const int* err = std::get_if<int>(&attr)) return reply_error(req, *err);
  auto st = std::get<struct stat>(attr);
  st.st_ino = ino;
  fuse_reply_attr(req, &st, attr_timeout(r.key));
}

void Filesystem::opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  settle();
  auto resolved = resolve(ino);
  if (const int* err = std::get_if<int>(&resolved)) return reply_error(req, *err);
  auto& r = std::get<Resolved>(resolved);
  if (!is_directory(r.key.kind)) return reply_error(req, ENOTDIR);
  auto dir = std::make_unique<OpenDir>();
  dir->entries.push_back(DirEntry{".", r.key});
  dir->entries.push_back(DirEntry{"..", r.key});
  const NodeKey& k = r.key;
  switch (k.kind) {
    case NodeKind::source_dir: {
      auto listed = root_.list(k.path);
      if (const int* err = std::get_if<int>(&listed)) return reply_error(req, *err);
      for (auto& e : std::get<std::vector<SourceRoot::Entry>>(listed)) {
        if (k.path.empty() && e.name == kControlDir) {
          fuse_log(FUSE_LOG_WARNING,
                   "payloadfs: source entry '%s' is hidden by the control directory\n",
                   e.name.c_str());
          continue;
        }
        std::string path = SourceRoot::join(k.path, e.name);
        unsigned char type = e.type;
        if (type == DT_UNKNOWN) {
          auto st = root_.stat(path);
          if (std::holds_alternative<int>(st)) continue;
          type = static_cast<unsigned char>(IFTODT(std::get<struct stat>(st).st_mode));
        }
        NodeKind kind;
        if (type == DT_DIR)
          kind = NodeKind::source_dir;
        else if (type == DT_REG)
          kind = NodeKind::payload_dir;
        else if (type == DT_LNK && std::holds_alternative<std::string>(root_.link_target(path)))
          kind = NodeKind::symlink;
        else
          continue;
        dir->entries.push_back(
            DirEntry{std::move(e.name), NodeKey{kind, k.dev, e.ino, std::move(path), "", 0, 0}});
      }
      break;
    }
    case NodeKind::payload_dir:
      for (const auto name : kPayloadEntries) {
        auto key = child(r, name);
        if (auto* nk = std::get_if<NodeKey>(&key))
          dir->entries.push_back(DirEntry{std::string(name), *nk});
      }
      break;
    case NodeKind::raw_dir: {
      dir->payload = r.payload;
      const SliceTree& tree = r.payload->tree();
      const uint32_t node_id = tree.find(k.sub)->node;
      for (const uint32_t id : tree.node(node_id).children) {
        const auto& node = tree.node(id);
        NodeKey key = k;
        key.kind = node.is_dir ? NodeKind::raw_dir : NodeKind::raw_file;
        key.sub = node.path;
        dir->entries.push_back(DirEntry{node.name, std::move(key)});
      }
      dir->records = tree.record_count(node_id);
      dir->record_key = k;
      dir->record_key.kind = NodeKind::raw_file;
      break;
    }
    case NodeKind::control_dir:
      for (const auto name : kControlFiles)
        dir->entries.push_back(DirEntry{
            std::string(name), NodeKey{NodeKind::control_file, 0, 0, "", std::string(name), 0, 0}});
      break;
    default:
      break;  // range/ is not listed
  }
  // Virtual directories only change with a new payload version; a watched source directory's
  // cached listing is invalidated when an entry changes. Unwatched ones are listed afresh.
  fi->cache_readdir = k.kind != NodeKind::source_dir || watched(k.path);
  fi->keep_cache = fi->cache_readdir;
  if (k.kind == NodeKind::raw_dir)  // a new payload version may list other slices
    fi->keep_cache = inodes_.same_version_as_last_open(ino, r.payload->identity());
  if (k.kind == NodeKind::payload_dir) fi->keep_cache = false;  // refs.json depends on the version
  fi->fh = dirs_.adopt(std::move(dir));
  if (fuse_reply_open(req, fi) != 0) dirs_.drop(fi->fh);  // interrupted: free it
}

void Filesystem::readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
                         fuse_file_info* fi, bool plus) {
  stats_.readdirs.fetch_add(1, std::memory_order_relaxed);
  const OpenDir& dir = HandleTable<OpenDir>::get(fi->fh);
  std::vector<char> buf(size);
  size_t used = 0;
  std::shared_ptr<const Payload> payload = dir.payload;
  const uint64_t total = dir.entries.size() + dir.records;
  DirEntry computed;
  for (auto i = static_cast<uint64_t>(std::max<off_t>(offset, 0)); i < total; ++i) {
    if (i >= dir.entries.size()) {  // a record of a table: name and key are computed
      computed.name = SliceTree::record_name(i - dir.entries.size(), dir.records);
      computed.key = dir.record_key;
      computed.key.sub += "/" + computed.name;
    }
    const DirEntry& e = i < dir.entries.size() ? dir.entries[i] : computed;
    const bool dot = i < 2;
    const auto next = static_cast<off_t>(i + 1);
    size_t added = 0;
    if (!plus) {
      struct stat st {};
      st.st_ino = dot ? (i == 0 ? ino : FUSE_ROOT_ID) : InodeTable::preferred(e.key);
      st.st_mode = is_directory(e.key.kind)          ? S_IFDIR
                   : e.key.kind == NodeKind::symlink ? S_IFLNK
                                                     : S_IFREG;
      added = fuse_add_direntry(req, buf.data() + used, size - used, e.name.c_str(), &st, next);
    } else {
      fuse_entry_param entry{};
      if (dot) {
        entry.attr.st_ino = i == 0 ? ino : FUSE_ROOT_ID;
        entry.attr.st_mode = S_IFDIR;
      } else {
        NodeKey key = e.key;
        struct stat source {};
        source.st_ino = 0;
        if (key.kind == NodeKind::source_dir || key.kind == NodeKind::payload_dir ||
            key.kind == NodeKind::symlink) {
          // getdents' d_ino is not the identity lookup sees (mount points): ask lookup's way.
          auto looked_up = child(Resolved{dir.entries[0].key, nullptr}, e.name, &source);
          if (auto* k = std::get_if<NodeKey>(&looked_up)) key = std::move(*k);
          if (source.st_ino != key.ino) source.st_ino = 0;  // not that key's stat
        }
        if (needs_payload(key.kind) && !payload) {
          auto got = payload_for(key);
          if (auto* p = std::get_if<std::shared_ptr<const Payload>>(&got)) payload = *p;
        }
        // A payload gone since opendir (its file replaced) leaves nothing to describe.
        std::variant<struct stat, int> attr = ESTALE;
        if (!needs_payload(key.kind) || payload)
          attr = attributes(key, needs_payload(key.kind) ? payload.get() : nullptr,
                            source.st_ino != 0 ? &source : nullptr);
        if (const auto* st = std::get_if<struct stat>(&attr)) {
          entry.attr = *st;
          entry.ino = inodes_.acquire(key);
          entry.attr.st_ino = entry.ino;
          entry.attr_timeout = attr_timeout(key);
          entry.entry_timeout = entry_timeout(parent_of(key.path));
        } else {
          continue;  // vanished since opendir
        }
      }
      added =
          fuse_add_direntry_plus(req, buf.data() + used, size - used, e.name.c_str(), &entry, next);
      if (added > size - used && !dot) inodes_.forget(entry.ino, 1);  // did not fit: not sent
    }
    if (added > size - used) break;
    used += added;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void Filesystem::releasedir(fuse_req_t req, fuse_file_info* fi) {
  dirs_.drop(fi->fh);
  fuse_reply_err(req, 0);
}

void Filesystem::open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  settle();
  stats_.opens.fetch_add(1, std::memory_order_relaxed);
  if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC) != 0)
    return reply_error(req, EROFS);
  auto resolved = resolve(ino);
  if (const int* err = std::get_if<int>(&resolved)) return reply_error(req, *err);
  auto& r = std::get<Resolved>(resolved);
  auto file = std::make_unique<OpenFile>();
  file->payload = r.payload;
  switch (r.key.kind) {
    case NodeKind::header_json:
      file->is_text = true;
      file->text = r.payload->header_json();
      break;
    case NodeKind::slices_json:
      file->is_text = true;
      if (r.payload->slices_json_whole()) {
        file->text = r.payload->slices_json_head();
      } else {
        // Records are rendered from the file itself: reopen it, and make sure it is still
        // the version this payload describes.
        auto opened = source_of_version(*r.payload);
        if (const int* err = std::get_if<int>(&opened)) return reply_error(req, *err);
        // Kept while the budget allows; otherwise each read reopens it.
        file->source = sources_.hold(std::move(std::get<UniqueFd>(opened)));
        file->is_slices_json = true;
      }
      break;
    case NodeKind::refs_json:
      file->is_text = true;
      file->text = r.payload->refs_json(refs_url(root_, options_, *r.payload));
      break;
    case NodeKind::magic:
      file->range = r.payload->magic();
      break;
    case NodeKind::range_file:
      file->range = {r.key.offset, r.key.length};
      break;
    case NodeKind::raw_file: {
      const auto entry = r.payload->tree().find(r.key.sub);
      const auto range = entry ? r.payload->range_of(*entry) : std::nullopt;
      if (!range) return reply_error(req, ESTALE);
      file->range = *range;
      break;
    }
    case NodeKind::control_file:
      file->is_text = true;
      file->owned_text = std::make_shared<const std::string>(control_file(r.key.sub));
      file->text = *file->owned_text;
      fi->direct_io = 1;  // a snapshot whose size may differ from the last getattr
      break;
    default:
      return reply_error(req, EISDIR);
  }
  if (file->payload && !file->is_text && options_.pread_sources) {
    // Bytes come from pread on the I/O pool, which opens the source on the first read (an
    // open of a FUSE source can wait for a read under way on it). The name must still lead
    // to the file this version was built from.
    auto now = root_.stat(file->payload->path());
    if (const int* err = std::get_if<int>(&now))
      return reply_error(req, source_error(file->payload->path(), *err));
    const struct stat& s = std::get<struct stat>(now);
    const struct stat& opened_as = file->payload->source_stat();
    if (s.st_dev != opened_as.st_dev || s.st_ino != opened_as.st_ino)
      return reply_error(req, ESTALE);
    file->pread = true;
  } else if (file->payload && !file->is_text) {
    // The first byte file opened of a payload maps it. The descriptor is then held, within
    // the budget, for read()'s check of the source's current size: the same file, not
    // necessarily the same version. Beyond the budget read() checks by path.
    const bool unmapped = !file->payload->mapped();
    if (unmapped || !sources_.spent()) {
      auto opened = root_.open_file(file->payload->path());
      if (const int* err = std::get_if<int>(&opened); err != nullptr && unmapped)
        return reply_error(req, source_error(file->payload->path(), *err));
      if (auto* fd = std::get_if<UniqueFd>(&opened)) {
        struct stat st {};
        const struct stat& opened_as = file->payload->source_stat();
        if (::fstat(fd->get(), &st) != 0 || st.st_dev != opened_as.st_dev ||
            st.st_ino != opened_as.st_ino)
          return reply_error(req, ESTALE);  // replaced since the lookup
        if (const int err = file->payload->map(fd->get()); err != 0) {
          log(LogLevel::warn, "cannot map %s: %s", file->payload->path().c_str(),
              std::strerror(err));
          return reply_error(req, err == ESTALE ? ESTALE : EIO);
        }
        if (!sources_.spent()) file->source = sources_.hold(std::move(*fd));
      }
    }
  }
  if (file->payload) {
    // Same version as the kernel's cached pages: keep them. Otherwise they are stale.
    fi->keep_cache = inodes_.same_version_as_last_open(ino, file->payload->identity());
  }
  // Generated JSON is read whole from the version opened, not through the page cache: a
  // source rewritten between a getattr and a read could otherwise pair one version's size
  // with another's text. (Payload bytes stay cached and mmap-able.)
  if (r.key.kind == NodeKind::header_json || r.key.kind == NodeKind::slices_json ||
      r.key.kind == NodeKind::refs_json)
    fi->direct_io = 1;
  fi->noflush = 1;
  fi->fh = files_.adopt(std::move(file));
  if (fuse_reply_open(req, fi) != 0) files_.drop(fi->fh);
}

void Filesystem::read(fuse_req_t req, size_t size, off_t offset, fuse_file_info* fi) {
  stats_.reads.fetch_add(1, std::memory_order_relaxed);
  OpenFile& file = HandleTable<OpenFile>::get(fi->fh);
  if (file.is_slices_json) {
    // It reads the source (record attributes): off the workers where sources may stall.
    if (metadata_ == nullptr) return read_slices_json(req, file, size, offset);
    // `file` lives until release(), which the kernel sends only once this read is answered.
    return metadata_->submit(file.payload->path(),
                             [this, req, &file, size, offset](bool cancelled) {
                               if (cancelled) return reply_error(req, EIO);
                               read_slices_json(req, file, size, offset);
                             });
  }
  const uint64_t length = file.is_text ? file.text.size() : file.range.length;
  const auto start = static_cast<uint64_t>(std::max<off_t>(offset, 0));
  if (start >= length) {
    fuse_reply_buf(req, nullptr, 0);
    return;
  }
  const size_t count = static_cast<size_t>(std::min<uint64_t>(size, length - start));
  const char* data = nullptr;
  ByteRange prefetch{};  // the next range of a sequential reader, mapped after the reply
  // The reply's buffer must outlive fuse_reply_buf, not only the kernel's copy: once the reply
  // is written, the reader may close and release() free `file` on another worker before
  // fuse_reply_buf returns (ASan's writev interceptor reads the iovec after the call). These
  // references keep the text or mapping replied from alive until this function returns.
  const std::shared_ptr<const Payload> payload = file.payload;
  const std::shared_ptr<const std::string> owned_text = file.owned_text;
  if (file.is_text) {
    data = file.text.data() + start;
  } else if (file.pread) {
    return read_by_pread(req, file, file.range.offset + start, count);
  } else {
    const uint64_t source_offset = file.range.offset + start;
    // A source cut inside a page still reads through the mapping, as zeros past its new end:
    // bytes that no version had. Answer EIO for bytes the file no longer has (never a short
    // reply, which would make the kernel shrink the file). A cut after this check faults the
    // kernel's copy instead, except within the new last page: a window of microseconds.
    if (!source_has(file, source_offset + count)) return reply_error(req, EIO);
    const auto bytes = file.payload->bytes({source_offset, count});
    if (bytes.size() != count) return reply_error(req, EIO);
    // Readahead-sized requests: one madvise maps every page before the kernel copies them
    // (measured 1.6 -> 2.6-3.6 GB/s); for a few pages the faults cost less than the call.
    if (count >= kPopulateBytes) {
      file.payload->populate({source_offset, count});
      // Sequential: map the next range while the kernel copies this one out and the reader
      // consumes it (so that the next request finds its pages mapped).
      const uint64_t end = start + count;
      if (file.next_read.exchange(end, std::memory_order_relaxed) == start && end < length) {
        prefetch = {file.range.offset + end, std::min<uint64_t>(count, length - end)};
      }
    }
    data = reinterpret_cast<const char*>(bytes.data());
  }
  // The kernel copies straight from the mapping. If the source shrank under us, that copy
  // faults inside the kernel, the write fails with EFAULT and the reader gets EIO: no SIGBUS.
  if (fuse_reply_buf(req, data, count) == 0) {
    stats_.bytes_served.fetch_add(count, std::memory_order_relaxed);
  } else {
    stats_.errors.fetch_add(1, std::memory_order_relaxed);
  }
  if (prefetch.length > 0) payload->populate(prefetch);
}

// slices.json of a payload with record tables: assembled from pieces rendered on demand (a
// copy, but of generated text, never of payload bytes).
void Filesystem::read_slices_json(fuse_req_t req, OpenFile& file, size_t size, off_t offset) {
  UniqueFd reopened;  // when the budget did not let the handle keep one
  if (!file.source.valid()) {
    auto opened = source_of_version(*file.payload);
    if (std::holds_alternative<int>(opened)) return reply_error(req, EIO);
    reopened = std::move(std::get<UniqueFd>(opened));
  }
  const FdSource source(file.source.valid() ? file.source.get() : reopened.get(),
                        file.payload->size());
  const uint64_t length = file.payload->slices_json_size(source);
  auto position = static_cast<uint64_t>(std::max<off_t>(offset, 0));
  const uint64_t end = std::min<uint64_t>(length, position + size);
  std::string out;
  bool changed = false;
  {
    // Released before replying: once the reply is out, release() may free `file`.
    const std::lock_guard lock(file.piece_mutex);
    while (position < end) {
      SlicesJson::Piece& piece = file.piece;
      const bool cached = position >= piece.start && position - piece.start < piece.text.size();
      if (!cached && !file.payload->slices_json_piece(position, source, piece)) {
        changed = true;
        break;
      }
      const uint64_t from = position - piece.start;
      const auto take =
          static_cast<size_t>(std::min<uint64_t>(piece.text.size() - from, end - position));
      out.append(piece.text, static_cast<size_t>(from), take);
      position += take;
    }
  }
  if (changed) return reply_error(req, EIO);  // the source changed under us: never short
  if (fuse_reply_buf(req, out.data(), out.size()) == 0)
    stats_.bytes_served.fetch_add(out.size(), std::memory_order_relaxed);
}

void Filesystem::read_by_pread(fuse_req_t req, OpenFile& file, uint64_t offset, size_t count) {
  // `file` outlives the job: the kernel sends no release while a read of it is unanswered.
  io_->submit(file.payload->path(), [this, req, &file, offset, count](bool cancelled) {
    if (cancelled) return reply_error(req, EIO);
    UniqueFd once;  // this read's own descriptor, when the budget lets the handle keep none
    int fd = -1;
    int error = 0;
    {
      // Never reply inside: once replied, release() may free `file`, and its mutex with it.
      const std::lock_guard lock(file.source_mutex);
      if (!file.source.valid()) {
        auto opened = source_of_version(*file.payload);
        if (const int* err = std::get_if<int>(&opened)) {
          error = *err;
        } else {
          once = std::move(std::get<UniqueFd>(opened));
          if (!sources_.spent()) file.source = sources_.hold(std::move(once));
        }
      }
      if (error == 0) fd = file.source.valid() ? file.source.get() : once.get();
    }
    if (error != 0) return reply_error(req, error);
    // One buffer a pool thread, as large as the largest read (FUSE's max_read).
    thread_local std::vector<char> buffer;
    buffer.resize(std::max(buffer.size(), count));
    size_t done = 0;
    while (done < count) {
      // A short read is not the end where the source's files are direct_io (FUSE): read on.
      const ssize_t n =
          ::pread(fd, buffer.data() + done, count - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // an error, or the end: the source has not got these bytes
      done += static_cast<size_t>(n);
    }
    if (done != count) return reply_error(req, EIO);  // never short, never zeros
    if (fuse_reply_buf(req, buffer.data(), count) == 0)
      stats_.bytes_served.fetch_add(count, std::memory_order_relaxed);
  });
}

std::variant<UniqueFd, int> Filesystem::source_of_version(const Payload& payload) const {
  auto opened = root_.open_file(payload.path());
  if (const int* err = std::get_if<int>(&opened)) return source_error(payload.path(), *err);
  struct stat st {};
  if (::fstat(std::get<UniqueFd>(opened).get(), &st) != 0 ||
      !(SourceIdentity::of(st) == payload.identity()))
    return ESTALE;
  return opened;
}

bool Filesystem::source_has(const OpenFile& file, uint64_t end) const {
  struct stat st {};
  if (file.source.valid()) {
    return ::fstat(file.source.get(), &st) == 0 && static_cast<uint64_t>(st.st_size) >= end;
  }
  // No descriptor held: look the file up by path. Only the same file, shrunk, is known to
  // lack the bytes; a file gone or replaced leaves this version's pages intact.
  auto now = root_.stat(file.payload->path());
  const auto* s = std::get_if<struct stat>(&now);
  const struct stat& opened_as = file.payload->source_stat();
  return s == nullptr || s->st_dev != opened_as.st_dev || s->st_ino != opened_as.st_ino ||
         static_cast<uint64_t>(s->st_size) >= end;
}

void Filesystem::release(fuse_req_t req, fuse_file_info* fi) {
  files_.drop(fi->fh);
  fuse_reply_err(req, 0);
}

void Filesystem::readlink(fuse_req_t req, fuse_ino_t ino) {
  auto resolved = resolve(ino);
  if (const int* err = std::get_if<int>(&resolved)) return reply_error(req, *err);
  const NodeKey& key = std::get<Resolved>(resolved).key;
  if (key.kind != NodeKind::symlink) return reply_error(req, EINVAL);
  // Recomputed on every call: where the link leads is checked against SRC as it is now.
  auto target = root_.link_target(key.path);
  if (const int* err = std::get_if<int>(&target)) return reply_error(req, *err);
  fuse_reply_readlink(req, std::get<std::string>(target).c_str());
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

std::variant<Filesystem::Xattrs, int> Filesystem::xattrs(fuse_ino_t ino) {
  auto resolved = resolve(ino);
  if (const int* err = std::get_if<int>(&resolved)) return *err;
  const auto& r = std::get<Resolved>(resolved);
  Xattrs out;
  const auto add = [&out](std::string_view key, const Json& value) {
    out.emplace_back("user.payloadfs." + std::string(key),
                     value.is_string()
                         ? value.get<std::string>()
                         : value.dump(-1, ' ', false, Json::error_handler_t::replace));
  };
  std::shared_ptr<const Payload> payload = r.payload;
  if (r.key.kind == NodeKind::payload_dir) {
    auto got = payload_for(r.key);
    if (const int* err = std::get_if<int>(&got)) return *err;
    payload = std::get<std::shared_ptr<const Payload>>(std::move(got));
  }
  if (!payload) return out;  // source directories, control files: none
  add("source", utf8_or_escaped(payload->path()));
  add("format", payload->format());
  std::optional<ByteRange> range;
  Json attributes = Json::object();
  if (r.key.kind == NodeKind::magic) range = payload->magic();
  if (r.key.kind == NodeKind::range_file) range = ByteRange{r.key.offset, r.key.length};
  if (r.key.kind == NodeKind::raw_file) {
    const auto entry = payload->tree().find(r.key.sub);
    if (!entry) return ESTALE;
    range = payload->range_of(*entry);
    if (entry->kind == SliceTree::Entry::Kind::slice) {
      attributes = payload->slices()[payload->tree().node(entry->node).slice].attributes;
    } else if (const auto table = payload->tree().node(entry->node).table; table) {
      const RecordTable& t = payload->tables()[*table];
      if (t.attributes) {  // read back from the file, as slices.json does
        auto opened = root_.open_file(payload->path());
        if (const int* err = std::get_if<int>(&opened)) return *err;
        const UniqueFd fd = std::move(std::get<UniqueFd>(opened));
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0 || !(SourceIdentity::of(st) == payload->identity()))
          return ESTALE;
        attributes = t.attributes(FdSource(fd.get(), payload->size()), t.records.at(entry->record));
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

void Filesystem::getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  // ls -l probes security.* and system.* of every entry: answer without parsing payloads.
  if (!is_ours(name)) return static_cast<void>(fuse_reply_err(req, ENODATA));
  auto all = xattrs(ino);
  if (const int* err = std::get_if<int>(&all)) return reply_error(req, *err);
  for (const auto& [key, value] : std::get<Xattrs>(all)) {
    if (key != name) continue;
    if (size == 0) return static_cast<void>(fuse_reply_xattr(req, value.size()));
    if (size < value.size()) return reply_error(req, ERANGE);
    return static_cast<void>(fuse_reply_buf(req, value.data(), value.size()));
  }
  fuse_reply_err(req, ENODATA);  // not an error worth counting: tools probe for names
}

void Filesystem::listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  auto all = xattrs(ino);
  if (const int* err = std::get_if<int>(&all)) return reply_error(req, *err);
  std::string names;
  for (const auto& [key, value] : std::get<Xattrs>(all)) names.append(key).push_back('\0');
  if (size == 0) return static_cast<void>(fuse_reply_xattr(req, names.size()));
  if (size < names.size()) return reply_error(req, ERANGE);
  fuse_reply_buf(req, names.data(), names.size());
}

std::string Filesystem::control_file(std::string_view name) const {
  if (name == "version") return std::string("payloadfs ") + kVersion + "\n";
  if (name == "formats.json") return formats_json();
  if (name == "stats.json") return stats_json();
  if (name == "errors.json") return errors_json();
  return {};
}

std::string Filesystem::formats_json() const {
  Json out = Json::array();
  for (const Format* format : registry_.formats()) {
    out.push_back({{"name", format->name()},
                   {"description", format->description()},
                   {"signature", format->signature()},
                   {"source", registry_.source_of(*format)}});
  }
  return out.dump(2) + "\n";
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
      {"open_dirs", dirs_.size()},
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

// Payload versions that reported errors and are still current: entries whose source is gone
// or changed since are dropped here (a changed source is listed again once it is parsed).
std::string Filesystem::errors_json() const {
  Json payloads = Json::array();
  for (const auto& entry : payload_errors_.entries()) {
    auto st = root_.stat(entry.path);
    const auto* s = std::get_if<struct stat>(&st);
    if (s == nullptr || !S_ISREG(s->st_mode) || !(SourceIdentity::of(*s) == entry.identity)) {
      payload_errors_.forget(entry.path, entry.identity);
      continue;
    }
    payloads.push_back({{"path", utf8_or_escaped(entry.path)},
                        {"format", entry.format},
                        {"first_error", utf8_or_escaped(entry.first_error)},
                        {"error_count", entry.error_count}});
  }
  Json out = Json::object();
  out["count"] = payloads.size();
  out["truncated"] = payload_errors_.truncated();
  out["payloads"] = std::move(payloads);
  return out.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace payloadfs
