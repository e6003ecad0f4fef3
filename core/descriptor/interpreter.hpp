#pragma once
// Reading a file with a compiled descriptor: its header fields, validations and slices.

#include "core/descriptor/spec.hpp"
#include "core/io/byte_source.hpp"
#include "core/model/layout.hpp"

namespace payloadfs::descriptor::detail {

// Never throws for bad input: every problem becomes one of Layout::errors (capped per slices
// entry by Limits::max_errors_per_slice).
[[nodiscard]] Layout interpret(const Compiled& spec, const ByteSource& source);

}  // namespace payloadfs::descriptor::detail
