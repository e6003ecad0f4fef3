#pragma once
// A small DICOM data dictionary (PS3.6): the keyword and VR of the common tags (file meta,
// patient, study, series, image pixel module), for implicit VR datasets and readable listings.
// Tags outside it have no keyword; their VR is UN in implicit VR datasets.

#include <cstdint>
#include <optional>
#include <string_view>

namespace payloadfs::formats::dicom {

struct DictionaryEntry {
  uint32_t tag;  // group << 16 | element
  std::string_view vr;
  std::string_view keyword;
};

[[nodiscard]] std::optional<DictionaryEntry> lookup(uint32_t tag);

}  // namespace payloadfs::formats::dicom
