// The libfuse low-level operation table: C callbacks forwarding to Filesystem, plus the
// read-only answers (EROFS) for every operation that would change something.

#include "fs/ops.hpp"

#include <cerrno>
#include <string>

#include "fs/filesystem.hpp"

namespace payloadfs {
namespace {

using Use = Filesystem::PayloadUse;

Filesystem& fs(fuse_req_t req) {
  return *static_cast<Filesystem*>(fuse_req_userdata(req));
}

void op_init(void* userdata, fuse_conn_info* conn) {
  static_cast<Filesystem*>(userdata)->init(conn);
}
// Operations that may build a payload run where Filesystem::on_payload_thread says; what
// their arguments point to lives only until they return, so the deferred ones own copies.
void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  fs(req).on_payload_thread(req, parent, Use::entries, [req, parent, name = std::string(name)] {
    fs(req).lookup(req, parent, name.c_str());
  });
}
void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t n) {
  fs(req).forget(ino, n);
  fuse_reply_none(req);
}
void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  for (size_t i = 0; i < count; ++i) fs(req).forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}
void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  fs(req).on_payload_thread(req, ino, Use::node, [req, ino] { fs(req).getattr(req, ino); });
}
void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  fs(req).on_payload_thread(req, ino, Use::entries,
                            [req, ino, file = *fi]() mutable { fs(req).opendir(req, ino, &file); });
}
void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  fs(req).on_payload_thread(req, ino, Use::entries,
                            [req, ino, size, off] { fs(req).readdir(req, ino, size, off, false); });
}
void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  fs(req).on_payload_thread(req, ino, Use::entries,
                            [req, ino, size, off] { fs(req).readdir(req, ino, size, off, true); });
}
void op_releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info*) {
  fs(req).releasedir(req);
}
void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  fs(req).on_payload_thread(req, ino, Use::node,
                            [req, ino, file = *fi]() mutable { fs(req).open(req, ino, &file); });
}
void op_read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  fs(req).read(req, size, off, fi);
}
void op_release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  fs(req).release(req, fi);
}
void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  fs(req).readlink(req, ino);
}
void op_statfs(fuse_req_t req, fuse_ino_t) {
  fs(req).statfs(req);
}
void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  // ls -l probes security.* and system.* of every entry: those are answered at once.
  if (!Filesystem::is_ours(name)) return static_cast<void>(fuse_reply_err(req, ENODATA));
  fs(req).on_payload_thread(req, ino, Use::xattrs, [req, ino, name = std::string(name), size] {
    fs(req).getxattr(req, ino, name.c_str(), size);
  });
}
void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  fs(req).on_payload_thread(req, ino, Use::xattrs,
                            [req, ino, size] { fs(req).listxattr(req, ino, size); });
}

// Everything that writes: the filesystem is read-only.
void erofs(fuse_req_t req) {
  fs(req).reply_error(req, EROFS);
}
void op_setattr(fuse_req_t req, fuse_ino_t, struct stat*, int, fuse_file_info*) {
  erofs(req);
}
void op_mknod(fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) {
  erofs(req);
}
void op_mkdir(fuse_req_t req, fuse_ino_t, const char*, mode_t) {
  erofs(req);
}
void op_unlink(fuse_req_t req, fuse_ino_t, const char*) {
  erofs(req);
}
void op_rmdir(fuse_req_t req, fuse_ino_t, const char*) {
  erofs(req);
}
void op_symlink(fuse_req_t req, const char*, fuse_ino_t, const char*) {
  erofs(req);
}
void op_rename(fuse_req_t req, fuse_ino_t, const char*, fuse_ino_t, const char*, unsigned) {
  erofs(req);
}
void op_link(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) {
  erofs(req);
}
void op_write(fuse_req_t req, fuse_ino_t, const char*, size_t, off_t, fuse_file_info*) {
  erofs(req);
}
void op_create(fuse_req_t req, fuse_ino_t, const char*, mode_t, fuse_file_info*) {
  erofs(req);
}
void op_setxattr(fuse_req_t req, fuse_ino_t, const char*, const char*, size_t, int) {
  erofs(req);
}
void op_removexattr(fuse_req_t req, fuse_ino_t, const char*) {
  erofs(req);
}
void op_fallocate(fuse_req_t req, fuse_ino_t, int, off_t, off_t, fuse_file_info*) {
  erofs(req);
}

}  // namespace

fuse_lowlevel_ops make_operations() {
  fuse_lowlevel_ops ops{};
  ops.init = op_init;
  ops.lookup = op_lookup;
  ops.forget = op_forget;
  ops.forget_multi = op_forget_multi;
  ops.getattr = op_getattr;
  ops.opendir = op_opendir;
  ops.readdir = op_readdir;
  ops.readdirplus = op_readdirplus;
  ops.releasedir = op_releasedir;
  ops.open = op_open;
  ops.read = op_read;
  ops.release = op_release;
  ops.readlink = op_readlink;
  ops.statfs = op_statfs;
  ops.getxattr = op_getxattr;
  ops.listxattr = op_listxattr;
  ops.setattr = op_setattr;
  ops.mknod = op_mknod;
  ops.mkdir = op_mkdir;
  ops.unlink = op_unlink;
  ops.rmdir = op_rmdir;
  ops.symlink = op_symlink;
  ops.rename = op_rename;
  ops.link = op_link;
  ops.write = op_write;
  ops.create = op_create;
  ops.setxattr = op_setxattr;
  ops.removexattr = op_removexattr;
  ops.fallocate = op_fallocate;
  return ops;
}

}  // namespace payloadfs
