#pragma once
// Names of ELF constants, as <elf.h> spells them (e_type, e_machine, EI_OSABI, p_type,
// sh_type; the machine- and OS-specific values readelf knows too), and readelf's letters for
// section and segment flags. An unknown value has no name: the caller shows its number.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace payloadfs::formats::elf {

[[nodiscard]] std::optional<std::string_view> type_name(uint16_t type);
[[nodiscard]] std::optional<std::string_view> machine_name(uint16_t machine);
[[nodiscard]] std::optional<std::string_view> osabi_name(uint8_t osabi, uint16_t machine);
[[nodiscard]] std::optional<std::string_view> segment_type_name(uint32_t type, uint16_t machine);
[[nodiscard]] std::optional<std::string_view> section_type_name(uint32_t type, uint16_t machine);
// readelf -S's key: one letter per flag bit, lowest first ("WAX", "AMS", ...).
[[nodiscard]] std::string section_flag_letters(uint64_t flags, uint16_t machine, uint8_t osabi);
// PF_R, PF_W and PF_X as "R", "W", "X", in that order.
[[nodiscard]] std::string segment_flag_letters(uint32_t flags);

}  // namespace payloadfs::formats::elf
