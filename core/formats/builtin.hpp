#pragma once
// Factories for the built-in formats; registry.cpp lists them in detection order.

#include <memory>

#include "core/model/format.hpp"

namespace payloadfs::formats {

std::unique_ptr<Format> make_npy();
std::unique_ptr<Format> make_safetensors();
std::unique_ptr<Format> make_gguf();
std::unique_ptr<Format> make_elf();
std::unique_ptr<Format> make_png();
std::unique_ptr<Format> make_wav();
std::unique_ptr<Format> make_tar();
std::unique_ptr<Format> make_zip();
std::unique_ptr<Format> make_gzip();
std::unique_ptr<Format> make_sqlite();
std::unique_ptr<Format> make_pcap();
std::unique_ptr<Format> make_pcapng();
std::unique_ptr<Format> make_mcap();
std::unique_ptr<Format> make_unknown();

}  // namespace payloadfs::formats
