// payloadfs_faultfs: a test-only FUSE filesystem serving a backing directory read-only (regular
// files, directories and links passed through) that injects faults on chosen files.
//
//   payloadfs_faultfs --rules=FILE [--events=FILE] BACKING MNT [-f] [-s] [-d] [-o OPT,...]
//
// Rules: one a line, `PATH FAULT [ARG...]`, `#` starts a comment, PATH is relative to BACKING
// (a leading `/` is ignored), several lines may name the same file:
//
//   PATH eio_from OFFSET       a read touching any byte at or past OFFSET fails with EIO
//   PATH short N               a read returns at most N bytes (fewer than asked, not at EOF)
//   PATH block SECONDS [FROM]  a read touching any byte at or past FROM (default 0) waits
//                              SECONDS (or until SIGUSR1, or the end), then answers normally
//   PATH size N                getattr reports N bytes; reads still serve the backing file
//   PATH vanish                lookup and getattr succeed; open fails with ENOENT
//   PATH open_error ERR        open fails with ERR: ENOSPC, ENOMEM, EIO, EACCES, ... or a number
//   PATH direct_io             opened with direct_io (short reads then reach the reader as
//                              such; through the page cache the kernel takes one for EOF)
//
// The rules file is read at start (an invalid one is refused) and again whenever it changes:
// every request stats it (identity, size, mtime). Replace it with rename() to change the rules
// atomically; a line that does not parse is then reported on stderr and ignored.
//
// Events: each fault, as it is injected, appends one line `PATH FAULT OFFSET SIZE` (offset and
// size of the read; 0 0 for open) to the events file with a single write(), so that a test can
// wait for a read to be blocked, or count faults, instead of sleeping.
//
// The kernel caches no entry or attribute (timeouts 0) and drops a file's page cache at each
// open (no keep_cache), so the mount above meets the rules on every request it makes.
// Multi-threaded unless -s: a blocked read holds one worker only. SIGUSR1 releases the reads
// blocked at that moment. SIGTERM, SIGINT and unmounting end it (blocked reads are released).
#define FUSE_USE_VERSION 314
#include <dirent.h>
#include <fcntl.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Faults {
  std::optional<uint64_t> eio_from;
  std::optional<uint64_t> short_max;
  std::optional<double> block_seconds;
  uint64_t block_from = 0;
  std::optional<uint64_t> size;
  bool vanish = false;
  int open_error = 0;
  bool direct_io = false;
};

int errno_named(const std::string& name) {
  static const std::map<std::string, int> kNames = {
      {"ENOSPC", ENOSPC}, {"ENOMEM", ENOMEM}, {"EIO", EIO},       {"EACCES", EACCES},
      {"EPERM", EPERM},   {"EMFILE", EMFILE}, {"ENFILE", ENFILE}, {"EAGAIN", EAGAIN},
      {"EINTR", EINTR},   {"ENOENT", ENOENT}, {"ESTALE", ESTALE}, {"EOVERFLOW", EOVERFLOW}};
  if (auto it = kNames.find(name); it != kNames.end()) return it->second;
  char* end = nullptr;
  const long value = std::strtol(name.c_str(), &end, 10);
  return (end != name.c_str() && *end == '\0' && value > 0 && value < 512) ? static_cast<int>(value)
                                                                           : 0;
}

bool parse_u64(const std::string& text, uint64_t* out) {
  if (text.empty() || text[0] == '-') return false;
  char* end = nullptr;
  errno = 0;
  const unsigned long long value = std::strtoull(text.c_str(), &end, 0);
  if (errno != 0 || *end != '\0') return false;
  *out = value;
  return true;
}

// One line into `faults`; false (and `why`) if it does not parse.
bool parse_rule(const std::vector<std::string>& words, std::map<std::string, Faults>& faults,
                std::string* why) {
  std::string path = words[0];
  while (path.starts_with('/')) path.erase(0, 1);
  const std::string& fault = words[1];
  Faults& f = faults[path];
  const size_t args = words.size() - 2;
  uint64_t n = 0;
  if (fault == "eio_from" && args == 1 && parse_u64(words[2], &n)) {
    f.eio_from = n;
  } else if (fault == "short" && args == 1 && parse_u64(words[2], &n) && n > 0) {
    f.short_max = n;
  } else if (fault == "block" && (args == 1 || args == 2)) {
    char* end = nullptr;
    const double seconds = std::strtod(words[2].c_str(), &end);
    uint64_t from = 0;
    if (*end != '\0' || !(seconds >= 0) || (args == 2 && !parse_u64(words[3], &from))) {
      *why = "bad SECONDS or FROM";
      return false;
    }
    f.block_seconds = seconds;
    f.block_from = from;
  } else if (fault == "size" && args == 1 && parse_u64(words[2], &n)) {
    f.size = n;
  } else if (fault == "vanish" && args == 0) {
    f.vanish = true;
  } else if (fault == "open_error" && args == 1 && errno_named(words[2]) != 0) {
    f.open_error = errno_named(words[2]);
  } else if (fault == "direct_io" && args == 0) {
    f.direct_io = true;
  } else {
    *why = "unknown fault or bad arguments";
    return false;
  }
  return true;
}

class Rules {
 public:
  explicit Rules(std::string path) : path_(std::move(path)) {}

  // Loads the file; false if it cannot be read or a line does not parse.
  bool load() {
    const std::lock_guard lock(mutex_);
    return reload_locked();
  }

  // The faults of `path` under the rules as the file is now.
  Faults of(const std::string& path) {
    const std::lock_guard lock(mutex_);
    struct stat st {};
    if (::stat(path_.c_str(), &st) == 0 &&
        (st.st_ino != seen_.st_ino || st.st_dev != seen_.st_dev || st.st_size != seen_.st_size ||
         st.st_mtim.tv_sec != seen_.st_mtim.tv_sec || st.st_mtim.tv_nsec != seen_.st_mtim.tv_nsec))
      (void)reload_locked();
    const auto it = faults_.find(path);
    return it == faults_.end() ? Faults{} : it->second;
  }

 private:
  bool reload_locked() {
    std::ifstream in(path_);
    if (!in || ::stat(path_.c_str(), &seen_) != 0) {
      std::fprintf(stderr, "faultfs: cannot read rules file %s\n", path_.c_str());
      return false;
    }
    std::map<std::string, Faults> faults;
    bool ok = true;
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
      line = line.substr(0, line.find('#'));
      std::istringstream split(line);
      std::vector<std::string> words;
      for (std::string word; split >> word;) words.push_back(word);
      if (words.empty()) continue;
      std::string why = "missing FAULT";
      if (words.size() < 2 || !parse_rule(words, faults, &why)) {
        std::fprintf(stderr, "faultfs: %s:%d: %s: %s\n", path_.c_str(), number, why.c_str(),
                     line.c_str());
        ok = false;
      }
    }
    faults_ = std::move(faults);
    return ok;
  }

  std::string path_;
  std::mutex mutex_;
  struct stat seen_ {};
  std::map<std::string, Faults> faults_;
};

struct Options {
  const char* rules = nullptr;
  const char* events = nullptr;
  const char* backing = nullptr;
};

int g_root = -1;    // the backing directory
int g_events = -1;  // the events file, or -1
Rules* g_rules = nullptr;
std::atomic<unsigned> g_releases{0};  // SIGUSR1s so far
static_assert(std::atomic<unsigned>::is_always_lock_free);

void on_sigusr1(int) {
  g_releases.fetch_add(1);
}

// The path under BACKING: "." for the root.
std::string relative(const char* path) {
  while (*path == '/') ++path;
  return *path == '\0' ? std::string(".") : std::string(path);
}

void event(const std::string& path, const char* fault, uint64_t offset, uint64_t size) {
  if (g_events < 0) return;
  char line[4096];
  const int n =
      std::snprintf(line, sizeof line, "%s %s %llu %llu\n", path.c_str(), fault,
                    static_cast<unsigned long long>(offset), static_cast<unsigned long long>(size));
  if (n > 0 && static_cast<size_t>(n) < sizeof line)
    (void)!::write(g_events, line, static_cast<size_t>(n));  // O_APPEND: one line, whole
}

// Waits `seconds`, or until SIGUSR1 or the session ends, whichever is first.
void wait_blocked(double seconds) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(seconds));
  const unsigned releases = g_releases.load();
  fuse_session* session = fuse_get_session(fuse_get_context()->fuse);
  while (Clock::now() < deadline && g_releases.load() == releases && !fuse_session_exited(session))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

void* fs_init(fuse_conn_info* conn, fuse_config* cfg) {
  (void)conn;
  cfg->use_ino = 1;  // the backing inode numbers: stable identities for the mount above
  cfg->entry_timeout = 0;
  cfg->attr_timeout = 0;
  cfg->negative_timeout = 0;
  cfg->kernel_cache = 0;
  return nullptr;
}

int fs_getattr(const char* path, struct stat* st, fuse_file_info* fi) {
  const std::string rel = relative(path);
  const int got = fi != nullptr ? ::fstat(static_cast<int>(fi->fh), st)
                                : ::fstatat(g_root, rel.c_str(), st, AT_SYMLINK_NOFOLLOW);
  if (got != 0) return -errno;
  if (const Faults f = g_rules->of(rel); f.size && S_ISREG(st->st_mode)) {
    st->st_size = static_cast<off_t>(*f.size);
    st->st_blocks = (st->st_size + 511) / 512;
  }
  return 0;
}

int fs_readlink(const char* path, char* buf, size_t size) {
  if (size == 0) return -EINVAL;
  const ssize_t n = ::readlinkat(g_root, relative(path).c_str(), buf, size - 1);
  if (n < 0) return -errno;
  buf[n] = '\0';
  return 0;
}

int fs_readdir(const char* path, void* buf, fuse_fill_dir_t filler, off_t, fuse_file_info*,
               fuse_readdir_flags) {
  const int fd = ::openat(g_root, relative(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -errno;
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    const int err = errno;
    ::close(fd);
    return -err;
  }
  while (const dirent* d = ::readdir(dir)) {
    struct stat st {};
    st.st_ino = d->d_ino;
    st.st_mode = static_cast<mode_t>(DTTOIF(d->d_type));
    if (filler(buf, d->d_name, &st, 0, static_cast<fuse_fill_dir_flags>(0)) != 0) break;
  }
  ::closedir(dir);
  return 0;
}

int fs_open(const char* path, fuse_file_info* fi) {
  if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC) != 0) return -EROFS;
  const std::string rel = relative(path);
  const Faults f = g_rules->of(rel);
  if (f.open_error != 0) {
    event(rel, "open_error", 0, 0);
    return -f.open_error;
  }
  if (f.vanish) {
    event(rel, "vanish", 0, 0);
    return -ENOENT;
  }
  const int fd = ::openat(g_root, rel.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -errno;
  fi->fh = static_cast<uint64_t>(fd);
  fi->direct_io = f.direct_io ? 1 : 0;
  fi->keep_cache = 0;
  return 0;
}

int fs_read(const char* path, char* buf, size_t size, off_t offset, fuse_file_info* fi) {
  const std::string rel = relative(path);
  const Faults f = g_rules->of(rel);
  const auto start = static_cast<uint64_t>(offset);
  const uint64_t end = start + size;
  if (f.block_seconds && end > f.block_from) {
    event(rel, "block", start, size);
    wait_blocked(*f.block_seconds);
  }
  if (f.eio_from && end > *f.eio_from) {
    event(rel, "eio", start, size);
    return -EIO;
  }
  const size_t want = f.short_max ? std::min<size_t>(size, *f.short_max) : size;
  const ssize_t n = ::pread(static_cast<int>(fi->fh), buf, want, offset);
  if (n < 0) return -errno;
  if (want < size && static_cast<size_t>(n) == want) {
    // Short only if the file had more to give.
    char next = 0;
    if (::pread(static_cast<int>(fi->fh), &next, 1, offset + n) == 1)
      event(rel, "short", start, size);
  }
  return static_cast<int>(n);
}

int fs_statfs(const char*, struct statvfs* sv) {
  return ::fstatvfs(g_root, sv) == 0 ? 0 : -errno;
}

int fs_release(const char*, fuse_file_info* fi) {
  ::close(static_cast<int>(fi->fh));
  return 0;
}

fuse_operations operations() {
  fuse_operations ops{};
  ops.init = fs_init;
  ops.getattr = fs_getattr;
  ops.readlink = fs_readlink;
  ops.readdir = fs_readdir;
  ops.open = fs_open;
  ops.read = fs_read;
  ops.statfs = fs_statfs;
  ops.release = fs_release;
  return ops;
}

const fuse_opt kOptions[] = {{"--rules=%s", offsetof(Options, rules), 0},
                             {"--events=%s", offsetof(Options, events), 0},
                             FUSE_OPT_END};

// The first argument that is not an option is BACKING; the rest go to libfuse.
int take_backing(void* data, const char* arg, int key, fuse_args*) {
  auto* options = static_cast<Options*>(data);
  if (key == FUSE_OPT_KEY_NONOPT && options->backing == nullptr) {
    options->backing = arg;
    return 0;
  }
  return 1;
}

}  // namespace

int main(int argc, char* argv[]) {
  fuse_args args = FUSE_ARGS_INIT(argc, argv);
  Options options;
  if (fuse_opt_parse(&args, &options, kOptions, take_backing) != 0) return 2;
  if (options.rules == nullptr || options.backing == nullptr) {
    std::fprintf(stderr,
                 "usage: %s --rules=FILE [--events=FILE] BACKING MNT [-f] [-s] [-d] [-o OPT]\n",
                 argv[0]);
    return 2;
  }
  g_root = ::open(options.backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (g_root < 0) {
    std::fprintf(stderr, "faultfs: %s: %s\n", options.backing, std::strerror(errno));
    return 1;
  }
  if (options.events != nullptr) {
    g_events = ::open(options.events, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (g_events < 0) {
      std::fprintf(stderr, "faultfs: %s: %s\n", options.events, std::strerror(errno));
      return 1;
    }
  }
  Rules rules(options.rules);
  if (!rules.load()) return 1;
  g_rules = &rules;
  struct sigaction release {};
  release.sa_handler = on_sigusr1;
  ::sigemptyset(&release.sa_mask);
  ::sigaction(SIGUSR1, &release, nullptr);
  // Read-only, and named so that mount tables say what it is.
  fuse_opt_add_arg(&args, "-oro,fsname=faultfs,subtype=faultfs,max_threads=64");
  const fuse_operations ops = operations();
  const int status = fuse_main(args.argc, args.argv, &ops, nullptr);
  fuse_opt_free_args(&args);
  return status;
}
