#pragma once
// HDF5 dense storage (File Format Specification 3.0, IV.A.2.c and IV.A.2.v): a group's links
// or an object's attributes kept as messages in a fractal heap and indexed by name in a
// version 2 B-tree (record types 5 and 8).

#include <string>
#include <vector>

#include "core/formats/support/hdf5_groups.hpp"
#include "core/formats/support/hdf5_objects.hpp"
#include "core/io/byte_source.hpp"

namespace payloadfs::formats::hdf5 {

// Appends the links of a link info message whose fractal heap is defined (a dense group);
// nothing for a compact group (undefined heap address).
void dense_links(const ByteSource& file, const Sizes& sizes, ByteRange link_info,
                 std::vector<Link>& links, std::vector<std::string>& errors,
                 const std::string& where);

// Appends to `object` an attribute message per attribute of its attribute info message's
// dense storage, whose body is the attribute's fractal heap object.
void append_dense_attributes(const ByteSource& file, const Sizes& sizes, Object& object,
                             std::vector<std::string>& errors);

}  // namespace payloadfs::formats::hdf5
