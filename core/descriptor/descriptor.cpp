// The public face of format descriptors: DescriptorFormat over a compiled spec, and loading one
// descriptor from text or a file. The work is in loader.cpp (JSON -> spec), interpreter.cpp
// (spec + file -> Layout) and directory.cpp (every descriptor of a directory).

#include "core/descriptor/descriptor.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/descriptor/interpreter.hpp"
#include "core/descriptor/loader.hpp"
#include "core/descriptor/spec.hpp"
#include "core/io/checked_math.hpp"
#include "core/io/unique_fd.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::descriptor {

DescriptorFormat::DescriptorFormat(std::unique_ptr<const Compiled> compiled)
    : compiled_(std::move(compiled)) {}
DescriptorFormat::~DescriptorFormat() = default;

std::string_view DescriptorFormat::name() const noexcept {
  return compiled_->name;
}
std::string_view DescriptorFormat::description() const noexcept {
  return compiled_->description;
}
std::string_view DescriptorFormat::signature() const noexcept {
  return compiled_->signature;
}
const std::string& DescriptorFormat::source_path() const noexcept {
  return compiled_->source_path;
}

bool DescriptorFormat::detect(std::span<const std::byte> head, uint64_t) const {
  for (const auto& m : compiled_->magics) {
    if (range_within(m.offset, m.bytes.size(), head.size()) &&
        std::equal(m.bytes.begin(), m.bytes.end(),
                   head.begin() + static_cast<std::ptrdiff_t>(m.offset)))
      return true;
  }
  return false;
}

Layout DescriptorFormat::parse(const ByteSource& source) const {
  return detail::interpret(*compiled_, source);
}

std::variant<std::unique_ptr<DescriptorFormat>, LoadError> parse_descriptor(
    std::string_view json_text, const std::string& source_path, const Limits& limits) {
  auto spec = detail::load_spec(json_text, source_path, limits);
  if (auto* err = std::get_if<LoadError>(&spec)) return std::move(*err);
  return std::make_unique<DescriptorFormat>(std::get<std::unique_ptr<Compiled>>(std::move(spec)));
}

std::variant<std::unique_ptr<DescriptorFormat>, LoadError> load_descriptor_file(
    const std::string& path, const Limits& limits) {
  const std::string file = utf8_or_escaped(path);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return LoadError{file + ": cannot open: " + std::strerror(errno)};
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return LoadError{file + ": cannot stat: " + std::strerror(errno)};
  if (!S_ISREG(st.st_mode)) return LoadError{file + ": not a regular file"};
  if (static_cast<uint64_t>(st.st_size) > limits.max_descriptor_bytes)
    return LoadError{file + ": larger than " + std::to_string(limits.max_descriptor_bytes) +
                     " bytes"};
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n =
        ::pread(fd.get(), text.data() + done, text.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return LoadError{file + ": cannot read: " + (n < 0 ? std::strerror(errno) : "short read")};
    done += static_cast<size_t>(n);
  }
  return parse_descriptor(text, path, limits);
}

}  // namespace payloadfs::descriptor
