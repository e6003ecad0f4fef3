#include "core/formats/support/protobuf_wire.hpp"

#include "core/io/checked_math.hpp"

namespace payloadfs::protobuf {

std::optional<uint64_t> read_varint(BinaryReader& reader) {
  uint64_t value = 0;
  for (uint64_t i = 0; i < kMaxVarintBytes; ++i) {
    const uint8_t byte = reader.u8();
    if (!reader.ok()) return std::nullopt;
    // The tenth byte carries bit 63 only.
    if (i == kMaxVarintBytes - 1 && byte > 1) break;
    value |= uint64_t{byte & 0x7Fu} << (7 * i);
    if ((byte & 0x80) == 0) return value;
  }
  reader.fail("varint longer than 64 bits");
  return std::nullopt;
}

WireReader::WireReader(BinaryReader& reader)
    : reader_(reader.sub(reader.tell(), reader.remaining())) {
  if (!reader_.ok()) error_ = "message range is outside the file";
}

WireReader::WireReader(WireReader& parent, const Field& field)
    : reader_(
          parent.reader_.sub(field.payload_offset, field.type == WireType::len ? field.value : 0)),
      depth_(parent.depth_ + 1) {
  if (field.type != WireType::len) {
    fail("field " + std::to_string(field.number) + " is not a length-delimited message");
  } else if (depth_ > kMaxMessageDepth) {
    fail("messages nest deeper than " + std::to_string(kMaxMessageDepth) + " levels");
  } else if (!reader_.ok()) {
    fail("nested message range is outside its parent");
  }
}

void WireReader::fail(std::string message) {
  if (!error_) error_ = std::move(message);
}

bool WireReader::next(Field& field) {
  if (error_ || reader_.remaining() == 0) return false;
  const uint64_t at = reader_.tell();
  const auto where = [at] { return "field at offset " + std::to_string(at) + ": "; };
  const auto key = read_varint(reader_);
  if (!key) {
    fail(where() + (reader_.error() ? *reader_.error() : "bad key"));
    return false;
  }
  const uint64_t number = *key >> 3;
  const auto type = static_cast<uint8_t>(*key & 7);
  if (number == 0 || number > kMaxFieldNumber) {
    fail(where() + "field number " + std::to_string(number) + " is out of range");
    return false;
  }
  field = Field{static_cast<uint32_t>(number), static_cast<WireType>(type), 0, at, 0, false};
  std::optional<uint64_t> value;
  switch (type) {
    case 0:
      value = read_varint(reader_);
      break;
    case 1:
      value = reader_.u64();
      break;
    case 5:
      value = reader_.u32();
      break;
    case 2:
      value = read_varint(reader_);
      field.payload_offset = reader_.tell();
      if (value && *value > reader_.remaining()) {
        fail(where() + "length " + std::to_string(*value) + " of field " + std::to_string(number) +
             " runs past the end of its message (" + std::to_string(reader_.remaining()) +
             " bytes remain)");
        field.value = reader_.remaining();
        field.cut = true;
        return true;
      }
      if (value) reader_.skip(*value);
      break;
    default:
      fail(where() + "wire type " + std::to_string(type) + " of field " + std::to_string(number) +
           (type == 3 || type == 4 ? " (a group) is not supported" : " is invalid"));
      return false;
  }
  if (!value || !reader_.ok()) {
    fail(where() + "value of field " + std::to_string(number) +
         " is cut: " + reader_.error().value_or("bad varint"));
    return false;
  }
  field.value = *value;
  return true;
}

std::string WireReader::text(const Field& field, uint64_t max_bytes) {
  if (field.type != WireType::len) return {};
  BinaryReader r = reader_.sub(field.payload_offset, std::min(field.value, max_bytes));
  std::string out = r.text(r.remaining(), max_bytes);
  if (!r.ok()) fail("cannot read field " + std::to_string(field.number) + ": " + *r.error());
  return out;
}

bool WireReader::packed_varints(const Field& field, std::vector<uint64_t>& out,
                                uint64_t max_count) {
  if (field.type == WireType::varint) {
    if (out.size() >= max_count) return false;
    out.push_back(field.value);
    return true;
  }
  if (field.type != WireType::len) return false;
  BinaryReader r = reader_.sub(field.payload_offset, field.value);
  while (r.ok() && r.remaining() > 0) {
    if (out.size() >= max_count) return false;
    const auto v = read_varint(r);
    if (!v) return false;
    out.push_back(*v);
  }
  return r.ok();
}

}  // namespace payloadfs::protobuf
