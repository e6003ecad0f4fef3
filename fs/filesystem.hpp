#pragma once
// The low-level FUSE operations. Each asks core/ what exists and replies; payload bytes are
// replied straight from the source mapping (the kernel does the one copy).

#include <fuse_lowlevel.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "core/io/source_root.hpp"
#include "core/model/registry.hpp"
#include "core/payload_cache.hpp"
#include "core/payload_errors.hpp"
#include "core/vfs/control_files.hpp"
#include "core/vfs/namespace.hpp"
#include "core/vfs/node_key.hpp"
#include "fs/dir_listings.hpp"
#include "fs/handle_table.hpp"
#include "fs/inode_table.hpp"
#include "fs/open_handles.hpp"
#include "fs/options.hpp"
#include "fs/range_node_limit.hpp"
#include "fs/source_budget.hpp"
#include "fs/source_io_pool.hpp"
#include "fs/source_watcher.hpp"
#include "fs/stats.hpp"

namespace payloadfs {

class Filesystem {
 public:
  Filesystem(SourceRoot root, Registry registry, MountOptions options);

  void init(fuse_conn_info* conn);
  void lookup(fuse_req_t req, fuse_ino_t parent, const char* name);
  void forget(fuse_ino_t ino, uint64_t count);
  void getattr(fuse_req_t req, fuse_ino_t ino);
  void opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  // Stateless (see DirListings): the kernel opens directories without asking.
  void readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, bool plus);
  void releasedir(fuse_req_t req);
  void open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void read(fuse_req_t req, size_t size, off_t offset, fuse_file_info* fi);
  void release(fuse_req_t req, fuse_file_info* fi);
  void read_slices_json(fuse_req_t req, OpenFile& file, size_t size, off_t offset);
  // On an I/O pool thread: `count` bytes of the source at `offset`, whole, or EIO.
  void read_by_pread(fuse_req_t req, OpenFile& file, uint64_t offset, size_t count);
  void readlink(fuse_req_t req, fuse_ino_t ino);
  void statfs(fuse_req_t req);
  void getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size);
  // Whether an xattr name is one of ours (user.payloadfs.*); others are ENODATA on every node.
  [[nodiscard]] static bool is_ours(std::string_view xattr_name) {
    return xattr_name.rfind("user.payloadfs.", 0) == 0;
  }
  void listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);

  // Replies with an error and counts it.
  void reply_error(fuse_req_t req, int error);

  // What an operation on a node may build: the node's own payload (getattr, open), that of
  // its entries (lookup, opendir, readdir), or the payload its xattrs describe.
  enum class PayloadUse { node, entries, xattrs };
  // Runs `op`, an operation on node `ino`, here, or, with pread_sources when it may build a
  // payload (`use`), on a metadata thread (one per source at a time, sources taking turns):
  // building a payload reads its source, which may stall, and a stalled source must not hold
  // the request workers (a changed file's every node needs the new parse). `op` must own
  // copies of what the request's arguments point to; a cancelled one is answered EIO.
  void on_payload_thread(fuse_req_t req, fuse_ino_t ino, PayloadUse use, std::function<void()> op);

  // Starts watching SRC for changes and bounding range/ nodes (once the session exists, so
  // the kernel's caches can be told), and stops before the session goes away.
  //
  // quiesce() ends the watcher's and the range limit's notifications while the workers still answer
  // requests: a notification may wait in the kernel for a directory lock that a LOOKUP holds, and
  // only a worker's reply releases it (see fs/stop_signals.hpp). The stop signals call it before
  // the loop ends; an unmount ends the loop with the connection gone, so a notification fails at
  // once. detach(), after the loop, frees what attach() made.
  void attach(fuse_session* session);
  void quiesce();
  void detach();

 private:
  // The key of `ino`, checked against the source and with its payload (see Namespace).
  [[nodiscard]] Result<ResolvedNode> resolve(fuse_ino_t ino);
  // Namespace::child, and a source directory found is watched before the kernel caches it.
  [[nodiscard]] Result<NodeKey> child(const ResolvedNode& parent, std::string_view name,
                                      struct stat* source = nullptr);
  // The entry LOOKUP and READDIRPLUS reply for `key` (taking one lookup reference on its
  // number), or the error to answer.
  [[nodiscard]] Result<fuse_entry_param> entry_of(const NodeKey& key, const Payload* payload,
                                                  const struct stat* source);
  // What READDIR lists of `ino`: "." and "..", the entries, computed records.
  [[nodiscard]] Result<std::shared_ptr<const OpenDir>> list_directory(fuse_ino_t ino);
  [[nodiscard]] std::optional<fuse_entry_param> plus_entry(const OpenDir& dir, const DirEntry& e,
                                                           std::shared_ptr<const Payload>& payload);
  // Whether the source still has bytes up to `end` (see read()).
  [[nodiscard]] bool source_has(const OpenFile& file, uint64_t end) const;
  // The open file's descriptor and mapping of a byte node (see open()); an errno otherwise.
  [[nodiscard]] int prepare_bytes(OpenFile& file);
  [[nodiscard]] double attr_timeout(const NodeKey& key) const;
  [[nodiscard]] double entry_timeout(const std::string& parent_dir) const;
  [[nodiscard]] double negative_timeout(const std::string& parent_dir) const;
  [[nodiscard]] bool watched(const std::string& dir) const;
  // One-time tuning that must wait until FUSE INIT has completed (the first other request).
  void settle();
  void on_source_changes(const std::vector<SourceWatcher::Change>& changes, bool overflow);
  [[nodiscard]] Namespace::Observer logging_observer() const;
  [[nodiscard]] std::string stats_json() const;

  SourceRoot root_;
  Registry registry_;
  MountOptions options_;
  PayloadCache cache_;
  PayloadErrors payload_errors_;
  ControlFiles control_;
  Namespace names_;
  InodeTable inodes_;
  Stats stats_;
  SourceBudget sources_;  // before files_: open files give their descriptors back to it
  HandleTable<OpenFile> files_;
  DirListings listings_;
  bool no_opendir_ = false;  // set by init(): the kernel opens directories itself
  fuse_session* session_ = nullptr;
  std::atomic<bool> notifying_{true};  // false from quiesce(): no new notification
  std::atomic<bool> settle_pending_{true};
  std::unique_ptr<SourceWatcher> watcher_;       // null when SRC is not watched
  std::unique_ptr<SourceIoPool> io_;             // with pread_sources only
  std::unique_ptr<SourceIoPool> metadata_;       // with pread_sources only
  std::unique_ptr<RangeNodeLimit> range_nodes_;  // null with -o range_nodes=0
  const std::chrono::steady_clock::time_point started_;
};

}  // namespace payloadfs
