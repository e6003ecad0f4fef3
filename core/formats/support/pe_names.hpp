#pragma once
// Names of PE/COFF constants as winnt.h spells them (Microsoft PE Format specification):
// machine types, file, section and DLL characteristics, subsystems, data directories. An
// unknown value has no name: the caller shows its number.

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace payloadfs::formats::pe {

// IMAGE_FILE_MACHINE_* without the prefix ("AMD64", "I386", "ARM64", ...).
[[nodiscard]] std::optional<std::string_view> machine_name(uint16_t machine);
// IMAGE_SUBSYSTEM_* without the prefix ("WINDOWS_CUI", ...).
[[nodiscard]] std::optional<std::string_view> subsystem_name(uint16_t subsystem);
// The data directories' names in their order, as pefile spells them without its
// IMAGE_DIRECTORY_ENTRY_ prefix ("EXPORT", "IMPORT", ..., "RESERVED").
[[nodiscard]] std::string_view directory_name(uint32_t index);
// The full winnt.h names of the flags set in a Characteristics field (IMAGE_FILE_*,
// IMAGE_SCN_* with the IMAGE_SCN_ALIGN_* field decoded, IMAGE_DLLCHARACTERISTICS_*).
[[nodiscard]] std::vector<std::string_view> file_flags(uint16_t characteristics);
[[nodiscard]] std::vector<std::string_view> section_flags(uint32_t characteristics);
[[nodiscard]] std::vector<std::string_view> dll_flags(uint16_t characteristics);

}  // namespace payloadfs::formats::pe
