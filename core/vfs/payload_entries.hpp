#pragma once
// What a payload directory holds: the one table of its entries. Adding an entry is a line
// here, its NodeKind, and what it serves in Namespace::content().

#include <string_view>

#include "core/vfs/node_key.hpp"

namespace payloadfs {

struct PayloadEntry {
  enum class Shown : uint8_t {
    always,        // listed and found in every payload directory
    when_offered,  // only where the payload offers it (refs.json: payloads with array slices;
                   // nested/: payloads with a slice holding a payload, above -o nest_depth)
    on_lookup,     // found by name, never listed (range/ has a name for every byte range)
  };
  std::string_view name;
  NodeKind kind;
  Shown shown;
};

inline constexpr PayloadEntry kPayloadEntries[] = {
    {"header.json", NodeKind::header_json, PayloadEntry::Shown::always},
    {"slices.json", NodeKind::slices_json, PayloadEntry::Shown::always},
    {"refs.json", NodeKind::refs_json, PayloadEntry::Shown::when_offered},
    {"magic", NodeKind::magic, PayloadEntry::Shown::always},
    {"raw", NodeKind::raw_dir, PayloadEntry::Shown::always},
    {"range", NodeKind::range_dir, PayloadEntry::Shown::on_lookup},
    {"nested", NodeKind::nested_dir, PayloadEntry::Shown::when_offered},
};

[[nodiscard]] constexpr const PayloadEntry* find_payload_entry(std::string_view name) {
  for (const auto& entry : kPayloadEntries)
    if (entry.name == name) return &entry;
  return nullptr;
}

}  // namespace payloadfs
