#include "core/formats/support/pe_names.hpp"

#include <array>
#include <utility>

namespace payloadfs::formats::pe {
namespace {

template <typename T, size_t N>
std::optional<std::string_view> lookup(const std::array<std::pair<T, std::string_view>, N>& table,
                                       T value) {
  for (const auto& [key, name] : table)
    if (key == value) return name;
  return std::nullopt;
}

template <typename T, size_t N>
std::vector<std::string_view> flags_of(const std::array<std::pair<T, std::string_view>, N>& table,
                                       T value) {
  std::vector<std::string_view> out;
  for (const auto& [bit, name] : table)
    if ((value & bit) != 0) out.push_back(name);
  return out;
}

constexpr std::array<std::pair<uint16_t, std::string_view>, 27> kMachines = {{
    {0x0000, "UNKNOWN"},   {0x014c, "I386"},      {0x0162, "R3000"},   {0x0166, "R4000"},
    {0x0168, "R10000"},    {0x0169, "WCEMIPSV2"}, {0x0184, "ALPHA"},   {0x01a2, "SH3"},
    {0x01a3, "SH3DSP"},    {0x01a6, "SH4"},       {0x01a8, "SH5"},     {0x01c0, "ARM"},
    {0x01c2, "THUMB"},     {0x01c4, "ARMNT"},     {0x01d3, "AM33"},    {0x01f0, "POWERPC"},
    {0x01f1, "POWERPCFP"}, {0x0200, "IA64"},      {0x0266, "MIPS16"},  {0x0284, "ALPHA64"},
    {0x0ebc, "EBC"},       {0x5032, "RISCV32"},   {0x5064, "RISCV64"}, {0x6264, "LOONGARCH64"},
    {0x8664, "AMD64"},     {0x9041, "M32R"},      {0xaa64, "ARM64"},
}};

constexpr std::array<std::pair<uint16_t, std::string_view>, 14> kSubsystems = {{
    {0, "UNKNOWN"},
    {1, "NATIVE"},
    {2, "WINDOWS_GUI"},
    {3, "WINDOWS_CUI"},
    {5, "OS2_CUI"},
    {7, "POSIX_CUI"},
    {8, "NATIVE_WINDOWS"},
    {9, "WINDOWS_CE_GUI"},
    {10, "EFI_APPLICATION"},
    {11, "EFI_BOOT_SERVICE_DRIVER"},
    {12, "EFI_RUNTIME_DRIVER"},
    {13, "EFI_ROM"},
    {14, "XBOX"},
    {16, "WINDOWS_BOOT_APPLICATION"},
}};

constexpr std::array<std::string_view, 16> kDirectories = {
    "EXPORT", "IMPORT",       "RESOURCE",       "EXCEPTION", "SECURITY",    "BASERELOC",
    "DEBUG",  "COPYRIGHT",    "GLOBALPTR",      "TLS",       "LOAD_CONFIG", "BOUND_IMPORT",
    "IAT",    "DELAY_IMPORT", "COM_DESCRIPTOR", "RESERVED"};

constexpr std::array<std::pair<uint16_t, std::string_view>, 15> kFileFlags = {{
    {0x0001, "IMAGE_FILE_RELOCS_STRIPPED"},
    {0x0002, "IMAGE_FILE_EXECUTABLE_IMAGE"},
    {0x0004, "IMAGE_FILE_LINE_NUMS_STRIPPED"},
    {0x0008, "IMAGE_FILE_LOCAL_SYMS_STRIPPED"},
    {0x0010, "IMAGE_FILE_AGGRESIVE_WS_TRIM"},
    {0x0020, "IMAGE_FILE_LARGE_ADDRESS_AWARE"},
    {0x0080, "IMAGE_FILE_BYTES_REVERSED_LO"},
    {0x0100, "IMAGE_FILE_32BIT_MACHINE"},
    {0x0200, "IMAGE_FILE_DEBUG_STRIPPED"},
    {0x0400, "IMAGE_FILE_REMOVABLE_RUN_FROM_SWAP"},
    {0x0800, "IMAGE_FILE_NET_RUN_FROM_SWAP"},
    {0x1000, "IMAGE_FILE_SYSTEM"},
    {0x2000, "IMAGE_FILE_DLL"},
    {0x4000, "IMAGE_FILE_UP_SYSTEM_ONLY"},
    {0x8000, "IMAGE_FILE_BYTES_REVERSED_HI"},
}};

constexpr std::array<std::pair<uint32_t, std::string_view>, 16> kSectionFlags = {{
    {0x00000008, "IMAGE_SCN_TYPE_NO_PAD"},
    {0x00000020, "IMAGE_SCN_CNT_CODE"},
    {0x00000040, "IMAGE_SCN_CNT_INITIALIZED_DATA"},
    {0x00000080, "IMAGE_SCN_CNT_UNINITIALIZED_DATA"},
    {0x00000200, "IMAGE_SCN_LNK_INFO"},
    {0x00000800, "IMAGE_SCN_LNK_REMOVE"},
    {0x00001000, "IMAGE_SCN_LNK_COMDAT"},
    {0x00008000, "IMAGE_SCN_GPREL"},
    {0x01000000, "IMAGE_SCN_LNK_NRELOC_OVFL"},
    {0x02000000, "IMAGE_SCN_MEM_DISCARDABLE"},
    {0x04000000, "IMAGE_SCN_MEM_NOT_CACHED"},
    {0x08000000, "IMAGE_SCN_MEM_NOT_PAGED"},
    {0x10000000, "IMAGE_SCN_MEM_SHARED"},
    {0x20000000, "IMAGE_SCN_MEM_EXECUTE"},
    {0x40000000, "IMAGE_SCN_MEM_READ"},
    {0x80000000, "IMAGE_SCN_MEM_WRITE"},
}};

// The IMAGE_SCN_ALIGN_* field (bits 20-23): 1 << (value - 1) bytes.
constexpr std::array<std::string_view, 15> kAlignments = {
    "IMAGE_SCN_ALIGN_1BYTES",    "IMAGE_SCN_ALIGN_2BYTES",    "IMAGE_SCN_ALIGN_4BYTES",
    "IMAGE_SCN_ALIGN_8BYTES",    "IMAGE_SCN_ALIGN_16BYTES",   "IMAGE_SCN_ALIGN_32BYTES",
    "IMAGE_SCN_ALIGN_64BYTES",   "IMAGE_SCN_ALIGN_128BYTES",  "IMAGE_SCN_ALIGN_256BYTES",
    "IMAGE_SCN_ALIGN_512BYTES",  "IMAGE_SCN_ALIGN_1024BYTES", "IMAGE_SCN_ALIGN_2048BYTES",
    "IMAGE_SCN_ALIGN_4096BYTES", "IMAGE_SCN_ALIGN_8192BYTES", "IMAGE_SCN_ALIGN_RESERVED"};

constexpr std::array<std::pair<uint16_t, std::string_view>, 11> kDllFlags = {{
    {0x0020, "IMAGE_DLLCHARACTERISTICS_HIGH_ENTROPY_VA"},
    {0x0040, "IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE"},
    {0x0080, "IMAGE_DLLCHARACTERISTICS_FORCE_INTEGRITY"},
    {0x0100, "IMAGE_DLLCHARACTERISTICS_NX_COMPAT"},
    {0x0200, "IMAGE_DLLCHARACTERISTICS_NO_ISOLATION"},
    {0x0400, "IMAGE_DLLCHARACTERISTICS_NO_SEH"},
    {0x0800, "IMAGE_DLLCHARACTERISTICS_NO_BIND"},
    {0x1000, "IMAGE_DLLCHARACTERISTICS_APPCONTAINER"},
    {0x2000, "IMAGE_DLLCHARACTERISTICS_WDM_DRIVER"},
    {0x4000, "IMAGE_DLLCHARACTERISTICS_GUARD_CF"},
    {0x8000, "IMAGE_DLLCHARACTERISTICS_TERMINAL_SERVER_AWARE"},
}};

}  // namespace

std::optional<std::string_view> machine_name(uint16_t machine) {
  return lookup(kMachines, machine);
}

std::optional<std::string_view> subsystem_name(uint16_t subsystem) {
  return lookup(kSubsystems, subsystem);
}

std::string_view directory_name(uint32_t index) {
  return index < kDirectories.size() ? kDirectories[index] : std::string_view("RESERVED");
}

std::vector<std::string_view> file_flags(uint16_t characteristics) {
  return flags_of(kFileFlags, characteristics);
}

std::vector<std::string_view> section_flags(uint32_t characteristics) {
  auto out = flags_of(kSectionFlags, characteristics);
  const uint32_t align = (characteristics >> 20) & 0xF;
  if (align != 0) out.push_back(kAlignments[align - 1]);
  return out;
}

std::vector<std::string_view> dll_flags(uint16_t characteristics) {
  return flags_of(kDllFlags, characteristics);
}

}  // namespace payloadfs::formats::pe
