#pragma once
// The registry a mount (or --inspect) uses: user descriptors first, then the built-ins.

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/model/registry.hpp"

namespace payloadfs {

inline constexpr const char* kSystemDescriptorDir = "/etc/payloadfs/formats";

// Descriptor directories in load order: `explicit_dir` (-o formats=DIR), then
// $XDG_CONFIG_HOME/payloadfs/formats (~/.config when unset), then the system directory:
// $PAYLOADFS_SYSTEM_FORMATS when set (none when empty), else kSystemDescriptorDir.
[[nodiscard]] std::vector<std::string> descriptor_dirs(
    const std::optional<std::string>& explicit_dir);

// The registry with every descriptor of `dirs`, or a one-line error naming the file, the JSON
// path and the problem.
[[nodiscard]] std::variant<Registry, std::string> load_registry(
    const std::vector<std::string>& dirs);

// `payloadfs --check-format DESC.json FILE...`: validates a descriptor and shows what it parses
// from sample files.
int run_check_format(int argc, char** argv);

}  // namespace payloadfs
