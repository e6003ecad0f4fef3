#pragma once
// JSON text to a checked, compiled descriptor (spec.hpp). Every problem becomes one LoadError
// naming the file, the JSON path and what is wrong; nothing throws out of here.

#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "core/descriptor/descriptor.hpp"
#include "core/descriptor/spec.hpp"

namespace payloadfs::descriptor::detail {

// `source_path` is what messages and Compiled::source_path name.
[[nodiscard]] std::variant<std::unique_ptr<Compiled>, LoadError> load_spec(
    std::string_view json_text, const std::string& source_path, const Limits& limits);

}  // namespace payloadfs::descriptor::detail
