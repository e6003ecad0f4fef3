// Filesystem's open files: open, read and release, and the two ways bytes reach a reply
// (from the source mapping, or with pread on the I/O pool).

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "fs/filesystem.hpp"
#include "fs/log.hpp"

namespace payloadfs {
namespace {

// Reads at least this large have their source pages mapped in one call before the reply.
constexpr size_t kPopulateBytes = 64 << 10;

}  // namespace

void Filesystem::open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  settle();
  stats_.opens.fetch_add(1, std::memory_order_relaxed);
  if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC) != 0)
    return reply_error(req, EROFS);
  auto resolved = resolve(ino);
  if (const int* err = error_of(resolved)) return reply_error(req, *err);
  const ResolvedNode& r = value_of(resolved);
  auto content = names_.content(r);
  if (const int* err = error_of(content)) return reply_error(req, *err);
  NodeContent& c = value_of(content);
  auto file = std::make_unique<OpenFile>();
  file->payload = r.payload;
  switch (c.kind) {
    case NodeContent::Kind::text:
      file->text = c.text;
      break;
    case NodeContent::Kind::records_json: {
      // Records are rendered from the file itself: reopen it, and make sure it is still the
      // version this payload describes. Kept while the budget allows; else each read reopens.
      auto opened = names_.open_version(*r.payload);
      if (const int* err = error_of(opened)) return reply_error(req, *err);
      file->source = sources_.hold(std::move(value_of(opened)));
      file->serves = OpenFile::Serves::records_json;
      break;
    }
    case NodeContent::Kind::snapshot:
      file->owned_text = std::move(c.snapshot);
      file->text = *file->owned_text;
      fi->direct_io = 1;  // a snapshot whose size may differ from the last getattr
      break;
    case NodeContent::Kind::bytes:
      file->range = c.range;
      file->serves = options_.pread_sources ? OpenFile::Serves::pread : OpenFile::Serves::mapped;
      if (const int err = prepare_bytes(*file); err != 0) return reply_error(req, err);
      break;
  }
  if (is_versioned(r.key.kind)) {
    // A generated file's node is one payload version (NodeVersion): whatever the kernel
    // cached of it is this text, and its size is this text's.
    fi->keep_cache = 1;
  } else if (file->payload) {
    // Same version as the kernel's cached pages: keep them. Otherwise they are stale.
    fi->keep_cache = inodes_.same_version_as_last_open(ino, file->payload->identity());
  }
  fi->noflush = 1;
  fi->fh = files_.adopt(std::move(file));
  if (fuse_reply_open(req, fi) != 0) files_.drop(fi->fh);
}

int Filesystem::prepare_bytes(OpenFile& file) {
  const Payload& payload = *file.payload;
  const struct stat& opened_as = payload.source_stat();
  if (file.serves == OpenFile::Serves::pread) {
    // Bytes come from pread on the I/O pool, which opens the source on the first read (an
    // open of a FUSE source can wait for a read under way on it). The name must still lead
    // to the file this version was built from.
    auto now = root_.stat(payload.path());
    if (const int* err = error_of(now)) return names_.source_error(payload.path(), *err);
    return is_same_file(value_of(now), opened_as) ? 0 : ESTALE;
  }
  // The first byte file opened of a payload maps it. The descriptor is then held, within the
  // budget, for read()'s check of the source's current size: the same file, not necessarily
  // the same version. Beyond the budget read() checks by path.
  const bool unmapped = !payload.mapped();
  if (!unmapped && sources_.spent()) return 0;
  auto opened = root_.open_file(payload.path());
  if (const int* err = error_of(opened))
    return unmapped ? names_.source_error(payload.path(), *err) : 0;
  UniqueFd& fd = value_of(opened);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !is_same_file(st, opened_as))
    return ESTALE;  // replaced since the lookup
  if (const int err = payload.map(fd.get()); err != 0) {
    log(LogLevel::warn, "cannot map %s: %s", payload.path().c_str(), std::strerror(err));
    return err == ESTALE ? ESTALE : EIO;
  }
  if (!sources_.spent()) file.source = sources_.hold(std::move(fd));
  return 0;
}

void Filesystem::read(fuse_req_t req, size_t size, off_t offset, fuse_file_info* fi) {
  stats_.reads.fetch_add(1, std::memory_order_relaxed);
  OpenFile& file = HandleTable<OpenFile>::get(fi->fh);
  if (file.serves == OpenFile::Serves::records_json) {
    // It reads the source (record attributes): off the workers where sources may stall.
    if (metadata_ == nullptr) return read_slices_json(req, file, size, offset);
    // `file` lives until release(), which the kernel sends only once this read is answered.
    return metadata_->submit(file.payload->path(),
                             [this, req, &file, size, offset](bool cancelled) {
                               if (cancelled) return reply_error(req, EIO);
                               read_slices_json(req, file, size, offset);
                             });
  }
  const bool is_text = file.serves == OpenFile::Serves::text;
  const uint64_t length = is_text ? file.text.size() : file.range.length;
  const auto start = static_cast<uint64_t>(std::max<off_t>(offset, 0));
  if (start >= length) {
    fuse_reply_buf(req, nullptr, 0);
    return;
  }
  const size_t count = static_cast<size_t>(std::min<uint64_t>(size, length - start));
  if (file.serves == OpenFile::Serves::pread)
    return read_by_pread(req, file, file.range.offset + start, count);
  const char* data = nullptr;
  ByteRange prefetch{};  // the next range of a sequential reader, mapped after the reply
  // The reply's buffer must outlive fuse_reply_buf, not only the kernel's copy: once the reply
  // is written, the reader may close and release() free `file` on another worker before
  // fuse_reply_buf returns (ASan's writev interceptor reads the iovec after the call). These
  // references keep the text or mapping replied from alive until this function returns.
  const std::shared_ptr<const Payload> payload = file.payload;
  const std::shared_ptr<const std::string> owned_text = file.owned_text;
  if (is_text) {
    data = file.text.data() + start;
  } else {
    const uint64_t source_offset = file.range.offset + start;
    // A source cut inside a page still reads through the mapping, as zeros past its new end:
    // bytes that no version had. Answer EIO for bytes the file no longer has (never a short
    // reply, which would make the kernel shrink the file). A cut after this check faults the
    // kernel's copy instead, except within the new last page: a window of microseconds.
    if (!source_has(file, source_offset + count)) return reply_error(req, EIO);
    const auto bytes = payload->bytes({source_offset, count});
    if (bytes.size() != count) return reply_error(req, EIO);
    // Readahead-sized requests: one madvise maps every page before the kernel copies them
    // (measured 1.6 -> 2.6-3.6 GB/s); for a few pages the faults cost less than the call.
    if (count >= kPopulateBytes) {
      payload->populate({source_offset, count});
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
    auto opened = names_.open_version(*file.payload);
    if (error_of(opened) != nullptr) return reply_error(req, EIO);
    reopened = std::move(value_of(opened));
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
        auto opened = names_.open_version(*file.payload);
        if (const int* err = error_of(opened)) {
          error = *err;
        } else {
          once = std::move(value_of(opened));
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

bool Filesystem::source_has(const OpenFile& file, uint64_t end) const {
  struct stat st {};
  if (file.source.valid()) {
    return ::fstat(file.source.get(), &st) == 0 && static_cast<uint64_t>(st.st_size) >= end;
  }
  // No descriptor held: look the file up by path. Only the same file, shrunk, is known to
  // lack the bytes; a file gone or replaced leaves this version's pages intact.
  auto now = root_.stat(file.payload->path());
  const auto* s = std::get_if<struct stat>(&now);
  return s == nullptr || !is_same_file(*s, file.payload->source_stat()) ||
         static_cast<uint64_t>(s->st_size) >= end;
}

void Filesystem::release(fuse_req_t req, fuse_file_info* fi) {
  files_.drop(fi->fh);
  fuse_reply_err(req, 0);
}

}  // namespace payloadfs
