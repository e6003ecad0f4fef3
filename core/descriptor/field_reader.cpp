// The non-template half of FieldReader: decoding a field's bytes and rendering its value.

#include "core/descriptor/field_reader.hpp"

#include <cmath>
#include <cstddef>
#include <limits>

#include "core/render/hex.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::descriptor::detail {

std::string column_note(const Expression& e, const ExprError& err) {
  return err.message + " (in \"" + utf8_or_escaped(e.text()) + "\" at column " +
         std::to_string(err.position + 1) + ")";
}

Json FieldReader::render_integer(const FieldSpec& f, uint64_t bits) {
  Json value = is_signed_type(f.type) ? Json(static_cast<int64_t>(bits)) : Json(bits);
  if (!f.enum_names.empty()) {
    const auto it = f.enum_names.find(bits);
    return Json{{"value", value},
                {"name", it != f.enum_names.end() ? Json(it->second) : Json(nullptr)}};
  }
  if (!f.flag_names.empty()) {
    Json names = Json::array();
    for (unsigned b = 0; b < 64; ++b) {
      if (((bits >> b) & 1U) == 0) continue;
      const auto it = f.flag_names.find(b);
      names.push_back(it != f.flag_names.end() ? it->second : "bit" + std::to_string(b));
    }
    return Json{{"value", value}, {"flags", std::move(names)}};
  }
  return value;
}

Json FieldReader::render_float(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  return v;
}

Json FieldReader::decode(const FieldSpec& f, uint64_t offset, uint64_t length) {
  reader_.seek(offset);
  reader_.set_endian(f.endian == 0   ? ctx_.default_endian
                     : f.endian == 1 ? Endian::little
                                     : Endian::big);
  switch (f.type) {
    case FieldType::str: {
      std::string text = reader_.text(length, max_field_bytes_);
      const auto nul = text.find('\0');
      if (nul != std::string::npos) text.resize(nul);
      return utf8_or_escaped(text);
    }
    case FieldType::bytes: {
      std::vector<std::byte> bytes(static_cast<size_t>(length));
      (void)reader_.read_into(bytes);
      return to_hex(bytes);
    }
    case FieldType::f32:
      return render_float(static_cast<double>(reader_.f32()));
    case FieldType::f64:
      return render_float(reader_.f64());
    case FieldType::boolean: {
      const bool b = reader_.u8() != 0;
      slots_[f.slot] = Slot::of(b ? 1 : 0);
      return b;
    }
    default: {
      const uint64_t bits = read_bits(f);
      // Expressions are signed 64-bit: larger unsigned values exist but cannot be used there.
      if (!is_signed_type(f.type) &&
          bits > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        slots_[f.slot] = Slot{0, SlotState::too_large};
      } else {
        slots_[f.slot] = Slot::of(static_cast<int64_t>(bits));
      }
      return render_integer(f, bits);
    }
  }
}

uint64_t FieldReader::read_bits(const FieldSpec& f) {
  uint64_t bits = 0;
  switch (f.width) {
    case 1:
      bits = reader_.u8();
      break;
    case 2:
      bits = reader_.u16();
      break;
    case 4:
      bits = reader_.u32();
      break;
    default:
      bits = reader_.u64();
      break;
  }
  if (is_signed_type(f.type) && f.width < 8 && ((bits >> (f.width * 8 - 1)) & 1U) != 0)
    bits |= ~uint64_t{0} << (f.width * 8);
  return bits;
}

}  // namespace payloadfs::descriptor::detail
