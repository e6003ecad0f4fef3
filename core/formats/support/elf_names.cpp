// Names of ELF constants (<elf.h>'s, with the machine- and OS-specific ones readelf knows) and
// readelf's flag letters.

#include "core/formats/support/elf_names.hpp"

#include <span>

namespace payloadfs::formats::elf {
namespace {

constexpr uint16_t kEmMips = 8, kEmPpc = 20, kEmArm = 40, kEmX86_64 = 62, kEmAarch64 = 183,
                   kEmRiscv = 243, kEmL1om = 180, kEmK1om = 181;

struct Named {
  uint32_t value;
  std::string_view name;
};

constexpr Named kMachines[] = {
    {0, "EM_NONE"},         {1, "EM_M32"},          {2, "EM_SPARC"},
    {3, "EM_386"},          {4, "EM_68K"},          {5, "EM_88K"},
    {6, "EM_IAMCU"},        {7, "EM_860"},          {8, "EM_MIPS"},
    {9, "EM_S370"},         {10, "EM_MIPS_RS3_LE"}, {15, "EM_PARISC"},
    {18, "EM_SPARC32PLUS"}, {20, "EM_PPC"},         {21, "EM_PPC64"},
    {22, "EM_S390"},        {23, "EM_SPU"},         {40, "EM_ARM"},
    {41, "EM_FAKE_ALPHA"},  {42, "EM_SH"},          {43, "EM_SPARCV9"},
    {50, "EM_IA_64"},       {62, "EM_X86_64"},      {75, "EM_VAX"},
    {76, "EM_CRIS"},        {83, "EM_AVR"},         {88, "EM_M32R"},
    {92, "EM_OPENRISC"},    {93, "EM_ARC_COMPACT"}, {94, "EM_XTENSA"},
    {105, "EM_MSP430"},     {106, "EM_BLACKFIN"},   {113, "EM_ALTERA_NIOS2"},
    {140, "EM_TI_C6000"},   {164, "EM_QDSP6"},      {167, "EM_NDS32"},
    {183, "EM_AARCH64"},    {189, "EM_MICROBLAZE"}, {190, "EM_CUDA"},
    {191, "EM_TILEGX"},     {195, "EM_ARCV2"},      {220, "EM_Z80"},
    {224, "EM_AMDGPU"},     {243, "EM_RISCV"},      {247, "EM_BPF"},
    {252, "EM_CSKY"},       {258, "EM_LOONGARCH"},  {0x9026, "EM_ALPHA"},
};

constexpr Named kOsabis[] = {
    {0, "ELFOSABI_NONE"},      {1, "ELFOSABI_HPUX"},     {2, "ELFOSABI_NETBSD"},
    {3, "ELFOSABI_GNU"},       {6, "ELFOSABI_SOLARIS"},  {7, "ELFOSABI_AIX"},
    {8, "ELFOSABI_IRIX"},      {9, "ELFOSABI_FREEBSD"},  {10, "ELFOSABI_TRU64"},
    {11, "ELFOSABI_MODESTO"},  {12, "ELFOSABI_OPENBSD"}, {13, "ELFOSABI_OPENVMS"},
    {14, "ELFOSABI_NSK"},      {15, "ELFOSABI_AROS"},    {16, "ELFOSABI_FENIXOS"},
    {17, "ELFOSABI_CLOUDABI"}, {18, "ELFOSABI_OPENVOS"}, {255, "ELFOSABI_STANDALONE"},
};

constexpr Named kTypes[] = {
    {0, "ET_NONE"}, {1, "ET_REL"}, {2, "ET_EXEC"}, {3, "ET_DYN"}, {4, "ET_CORE"},
};

constexpr Named kSegmentTypes[] = {
    {0, "PT_NULL"},
    {1, "PT_LOAD"},
    {2, "PT_DYNAMIC"},
    {3, "PT_INTERP"},
    {4, "PT_NOTE"},
    {5, "PT_SHLIB"},
    {6, "PT_PHDR"},
    {7, "PT_TLS"},
    {0x6474e550, "PT_GNU_EH_FRAME"},
    {0x6474e551, "PT_GNU_STACK"},
    {0x6474e552, "PT_GNU_RELRO"},
    {0x6474e553, "PT_GNU_PROPERTY"},
    {0x6474e554, "PT_GNU_SFRAME"},
    {0x65a3dbe6, "PT_OPENBSD_RANDOMIZE"},
    {0x65a3dbe7, "PT_OPENBSD_WXNEEDED"},
    {0x65a41be6, "PT_OPENBSD_BOOTDATA"},
    {0x6ffffffa, "PT_SUNWBSS"},
    {0x6ffffffb, "PT_SUNWSTACK"},
};

constexpr Named kSectionTypes[] = {
    {0, "SHT_NULL"},
    {1, "SHT_PROGBITS"},
    {2, "SHT_SYMTAB"},
    {3, "SHT_STRTAB"},
    {4, "SHT_RELA"},
    {5, "SHT_HASH"},
    {6, "SHT_DYNAMIC"},
    {7, "SHT_NOTE"},
    {8, "SHT_NOBITS"},
    {9, "SHT_REL"},
    {10, "SHT_SHLIB"},
    {11, "SHT_DYNSYM"},
    {14, "SHT_INIT_ARRAY"},
    {15, "SHT_FINI_ARRAY"},
    {16, "SHT_PREINIT_ARRAY"},
    {17, "SHT_GROUP"},
    {18, "SHT_SYMTAB_SHNDX"},
    {19, "SHT_RELR"},
    {0x6fff4c00, "SHT_LLVM_ODRTAB"},
    {0x6fff4c01, "SHT_LLVM_LINKER_OPTIONS"},
    {0x6fff4c03, "SHT_LLVM_ADDRSIG"},
    {0x6fff4c04, "SHT_LLVM_DEPENDENT_LIBRARIES"},
    {0x6ffffff5, "SHT_GNU_ATTRIBUTES"},
    {0x6ffffff6, "SHT_GNU_HASH"},
    {0x6ffffff7, "SHT_GNU_LIBLIST"},
    {0x6ffffff8, "SHT_CHECKSUM"},
    {0x6ffffffd, "SHT_GNU_verdef"},
    {0x6ffffffe, "SHT_GNU_verneed"},
    {0x6fffffff, "SHT_GNU_versym"},
};

std::optional<std::string_view> lookup(std::span<const Named> table, uint32_t value) {
  for (const auto& entry : table)
    if (entry.value == value) return entry.name;
  return std::nullopt;
}

}  // namespace

std::optional<std::string_view> type_name(uint16_t type) {
  return lookup(kTypes, type);
}

std::optional<std::string_view> machine_name(uint16_t machine) {
  return lookup(kMachines, machine);
}

std::optional<std::string_view> osabi_name(uint8_t osabi, uint16_t machine) {
  if (machine == kEmArm && osabi == 64) return "ELFOSABI_ARM_AEABI";
  if (machine == kEmArm && osabi == 97) return "ELFOSABI_ARM";
  return lookup(kOsabis, osabi);
}

std::optional<std::string_view> segment_type_name(uint32_t type, uint16_t machine) {
  if (type == 0x70000000 && machine == kEmArm) return "PT_ARM_EXIDX";
  if (machine == kEmMips) {
    if (type == 0x70000000) return "PT_MIPS_REGINFO";
    if (type == 0x70000001) return "PT_MIPS_RTPROC";
    if (type == 0x70000002) return "PT_MIPS_OPTIONS";
    if (type == 0x70000003) return "PT_MIPS_ABIFLAGS";
  }
  if (type == 0x70000002 && machine == kEmAarch64) return "PT_AARCH64_MEMTAG_MTE";
  if (type == 0x70000003 && machine == kEmRiscv) return "PT_RISCV_ATTRIBUTES";
  return lookup(kSegmentTypes, type);
}

std::optional<std::string_view> section_type_name(uint32_t type, uint16_t machine) {
  if (type == 0x70000001 && (machine == kEmX86_64 || machine == kEmL1om || machine == kEmK1om))
    return "SHT_X86_64_UNWIND";
  if (machine == kEmArm) {
    if (type == 0x70000001) return "SHT_ARM_EXIDX";
    if (type == 0x70000002) return "SHT_ARM_PREEMPTMAP";
    if (type == 0x70000003) return "SHT_ARM_ATTRIBUTES";
  }
  if (type == 0x70000003 && machine == kEmRiscv) return "SHT_RISCV_ATTRIBUTES";
  if (machine == kEmMips) {
    if (type == 0x70000006) return "SHT_MIPS_REGINFO";
    if (type == 0x7000000d) return "SHT_MIPS_OPTIONS";
    if (type == 0x7000001e) return "SHT_MIPS_DWARF";
    if (type == 0x7000002a) return "SHT_MIPS_ABIFLAGS";
  }
  return lookup(kSectionTypes, type);
}

// readelf -S's key: one letter per flag bit, lowest bit first; 'o'/'p' stand for all
// OS-/processor-specific bits not named otherwise, 'x' for unknown bits.
std::string section_flag_letters(uint64_t flags, uint16_t machine, uint8_t osabi) {
  constexpr uint64_t kMaskOs = 0x0ff00000, kMaskProc = 0xf0000000;
  constexpr uint64_t kGnuRetain = 0x200000, kGnuMbind = 0x01000000, kExclude = 0x80000000;
  std::string out;
  while (flags != 0) {
    const uint64_t flag = flags & (~flags + 1);
    flags &= ~flag;
    char letter = 'x';
    switch (flag) {
      case 0x1:
        letter = 'W';
        break;
      case 0x2:
        letter = 'A';
        break;
      case 0x4:
        letter = 'X';
        break;
      case 0x10:
        letter = 'M';
        break;
      case 0x20:
        letter = 'S';
        break;
      case 0x40:
        letter = 'I';
        break;
      case 0x80:
        letter = 'L';
        break;
      case 0x100:
        letter = 'O';
        break;
      case 0x200:
        letter = 'G';
        break;
      case 0x400:
        letter = 'T';
        break;
      case 0x800:
        letter = 'C';
        break;
      case kExclude:
        letter = 'E';
        break;
      default:
        if ((machine == kEmX86_64 || machine == kEmL1om || machine == kEmK1om) &&
            flag == 0x10000000) {
          letter = 'l';
        } else if (machine == kEmArm && flag == 0x20000000) {
          letter = 'y';
        } else if (machine == kEmPpc && flag == 0x10000000) {
          letter = 'v';
        } else if ((flag & kMaskOs) != 0) {
          // As readelf: 'R' (retain) for GNU and FreeBSD, 'D' (mbind) also for NONE;
          // otherwise one 'o' stands for all OS-specific bits.
          const bool gnu = osabi == 3 || osabi == 9;
          if (gnu && flag == kGnuRetain) {
            letter = 'R';
          } else if ((gnu || osabi == 0) && flag == kGnuMbind) {
            letter = 'D';
          } else {
            letter = 'o';
            flags &= ~kMaskOs;
          }
        } else if ((flag & kMaskProc) != 0) {
          letter = 'p';
          flags &= ~kMaskProc;
        }
    }
    out += letter;
  }
  return out;
}

std::string segment_flag_letters(uint32_t flags) {
  std::string out;
  if ((flags & 4) != 0) out += 'R';
  if ((flags & 2) != 0) out += 'W';
  if ((flags & 1) != 0) out += 'X';
  return out;
}

}  // namespace payloadfs::formats::elf
