#include "core/model/registry.hpp"

#include <stdexcept>

#include "core/formats/builtin.hpp"

namespace payloadfs {

Registry Registry::with_builtins() {
  Registry registry;
  // Fixed signatures at offset 0.
  registry.add(formats::make_npy());
  registry.add(formats::make_gguf());
  registry.add(formats::make_sqlite());
  registry.add(formats::make_png());
  registry.add(formats::make_wav());
  registry.add(formats::make_elf());
  registry.add(formats::make_gzip());
  registry.add(formats::make_pcap());
  registry.add(formats::make_pcapng());
  registry.add(formats::make_mcap());
  registry.add(formats::make_zip());
  // A signature away from offset 0 (tar's "ustar" at 257, checked with the header checksum).
  registry.add(formats::make_tar());
  // Structural detection (no signature) comes after every signature format.
  registry.add(formats::make_safetensors());
  registry.fallback_ = formats::make_unknown();
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
