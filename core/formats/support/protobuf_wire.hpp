#pragma once
// A bounded reader of the protocol buffers wire format (protobuf.dev, "Encoding"): a message is
// a sequence of fields, each a varint key (field number << 3 | wire type) and a value: a varint
// (type 0), 8 bytes (type 1, I64), a varint length and that many bytes (type 2, LEN: strings,
// bytes, nested messages, packed repeated fields) or 4 bytes (type 5, I32). Groups (types 3
// and 4) are deprecated and not accepted. A nested message is read by a child WireReader over
// its LEN payload, one level deeper; readers refuse to go deeper than kMaxMessageDepth.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/io/binary_reader.hpp"

namespace payloadfs::protobuf {

// A varint holds at most 64 bits: 10 bytes, the last one 0 or 1.
inline constexpr uint64_t kMaxVarintBytes = 10;
// The largest field number the language allows (2^29 - 1).
inline constexpr uint64_t kMaxFieldNumber = (1ULL << 29) - 1;
// Nested messages read below the outermost one.
inline constexpr int kMaxMessageDepth = 32;

enum class WireType : uint8_t { varint = 0, i64 = 1, len = 2, i32 = 5 };

struct Field {
  uint32_t number = 0;
  WireType type = WireType::varint;
  // The value of a varint, I64 or I32 field (the raw bits); a LEN field's payload length.
  uint64_t value = 0;
  // Where the field's key starts, and where a LEN field's payload starts (file offsets).
  uint64_t key_offset = 0;
  uint64_t payload_offset = 0;
  // A LEN field whose length ran past the end of its message: `value` is cut to the bytes that
  // are there (so that a cut file still shows what it holds), and the reader has failed.
  bool cut = false;
};

// Reads one varint; nullopt (and the reader failed) when cut or longer than 64 bits.
std::optional<uint64_t> read_varint(BinaryReader& reader);

class WireReader {
 public:
  // The message that fills the rest of `reader`'s range, at depth 0.
  explicit WireReader(BinaryReader& reader);
  // The nested message in `field` (a LEN field just read by `parent`), one level deeper.
  WireReader(WireReader& parent, const Field& field);

  WireReader(const WireReader&) = delete;
  WireReader& operator=(const WireReader&) = delete;

  // The next field (a LEN payload is skipped over: read it with text(), a child reader or
  // packed_*). False at the end of the message or on the first error, which sticks; a LEN
  // field cut by the end of the message is still returned once (Field::cut), with the error.
  bool next(Field& field);

  // A LEN field's payload as bytes, at most max_bytes of it (the rest is left unread).
  std::string text(const Field& field, uint64_t max_bytes);
  // The varints of a packed repeated field (or the one value of an unpacked varint field),
  // appended to `out` up to max_count values; false when malformed or over max_count.
  bool packed_varints(const Field& field, std::vector<uint64_t>& out, uint64_t max_count);

  [[nodiscard]] bool ok() const noexcept { return !error_.has_value(); }
  [[nodiscard]] const std::optional<std::string>& error() const noexcept { return error_; }
  [[nodiscard]] int depth() const noexcept { return depth_; }
  // Where the message's bytes end (exclusive), and how far it has been read.
  [[nodiscard]] uint64_t end() const noexcept { return reader_.end(); }
  [[nodiscard]] uint64_t tell() const noexcept { return reader_.tell(); }

 private:
  void fail(std::string message);

  BinaryReader reader_;
  int depth_ = 0;
  std::optional<std::string> error_;
};

}  // namespace payloadfs::protobuf
