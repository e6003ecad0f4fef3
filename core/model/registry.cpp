#include "core/model/registry.hpp"

#include <stdexcept>

#include "core/formats/builtin.hpp"

namespace payloadfs {

Registry Registry::with_builtins() {
  Registry registry;
  // Detection order, and the fallback, as format_list.def lists them.
#define PAYLOADFS_FORMAT(name) registry.add(formats::make_##name());
#define PAYLOADFS_FALLBACK_FORMAT(name) registry.fallback_ = formats::make_##name();
#include "core/formats/format_list.def"
  return registry;
}

void Registry::add(std::unique_ptr<Format> format) {
  formats_.push_back(std::move(format));
}

void Registry::add_descriptor(std::unique_ptr<Format> format, std::string source) {
  descriptors_.push_back(std::move(format));
  descriptor_sources_.push_back(std::move(source));
}

std::string_view Registry::source_of(const Format& format) const {
  for (size_t i = 0; i < descriptors_.size(); ++i)
    if (descriptors_[i].get() == &format) return descriptor_sources_[i];
  return "built-in";
}

const Format& Registry::detect(std::span<const std::byte> head, uint64_t size) const {
  for (const auto& format : descriptors_)
    if (format->detect(head, size)) return *format;
  for (const auto& format : formats_)
    if (format->detect(head, size)) return *format;
  if (!fallback_) throw std::logic_error("registry has no fallback format");
  return *fallback_;
}

std::vector<const Format*> Registry::formats() const {
  std::vector<const Format*> out;
  for (const auto& format : descriptors_) out.push_back(format.get());
  for (const auto& format : formats_) out.push_back(format.get());
  if (fallback_) out.push_back(fallback_.get());
  return out;
}

const Format* Registry::find(std::string_view name) const {
  for (const auto& format : descriptors_)
    if (format->name() == name) return format.get();
  for (const auto& format : formats_)
    if (format->name() == name) return format.get();
  if (fallback_ && fallback_->name() == name) return fallback_.get();
  return nullptr;
}

}  // namespace payloadfs
