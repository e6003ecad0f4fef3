#pragma once
// Reading a descriptor's fields and evaluating its expressions against one file, shared by the
// parse (interpreter.cpp) and by record tables reading their attributes back (record_table.cpp).
// Problems go to a sink as callables, so messages are only formatted while someone keeps them.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "core/descriptor/expression.hpp"
#include "core/descriptor/spec.hpp"
#include "core/io/binary_reader.hpp"
#include "core/io/byte_source.hpp"
#include "core/io/checked_math.hpp"
#include "core/model/layout.hpp"

namespace payloadfs::descriptor::detail {

// "<message> (in "<expression>" at column N)".
[[nodiscard]] std::string column_note(const Expression& e, const ExprError& err);

// An error list with a cap. Messages are made by callables, only while under the cap, so a
// million failing records cost no string formatting.
class ErrorSink {
 public:
  ErrorSink(Layout& layout, uint64_t cap) : layout_(layout), cap_(cap) {}
  template <typename Make>
  void report(const Make& make) {
    if (count_++ < cap_) layout_.add_error(make());
  }
  void finish(const std::string& what) {
    if (count_ > cap_)
      layout_.add_error(what + ": " + std::to_string(count_ - cap_) + " more errors not listed");
  }
  [[nodiscard]] uint64_t count() const noexcept { return count_; }

 private:
  Layout& layout_;
  uint64_t cap_;
  uint64_t count_ = 0;
};

// Discards problems: used when a record table's attributes are read back, after parsing has
// already reported them.
struct NullSink {
  template <typename Make>
  void report(const Make&) {}
};

// Reads fields and evaluates expressions against one file: the header's and the records' when
// parsing, a record's when a record table's attributes are read back. Slots hold `size`, `i`,
// `@` and the fields' values.
class FieldReader {
 public:
  FieldReader(const ByteSource& source, BinaryReader& reader, std::vector<Slot> slots,
              Endian endian, uint64_t max_reads, uint64_t max_field_bytes)
      : source_(source),
        reader_(reader),
        slots_(std::move(slots)),
        reads_left_(max_reads),
        max_field_bytes_(max_field_bytes) {
    ctx_.reader = &reader_;
    ctx_.default_endian = endian;
    ctx_.slots = slots_;
    ctx_.reads_left = &reads_left_;
  }
  FieldReader(const FieldReader&) = delete;
  FieldReader& operator=(const FieldReader&) = delete;

  template <typename Where, typename Sink>
  std::optional<int64_t> eval(const Expression& e, const Where& where, const char* what,
                              Sink& sink) {
    auto r = e.evaluate(ctx_);
    if (const auto* err = std::get_if<ExprError>(&r)) {
      sink.report([&] { return where() + " " + what + ": " + column_note(e, *err); });
      return std::nullopt;
    }
    return std::get<int64_t>(r);
  }

  // Reads one field (header: base 0; record: base = @), sets its slot and renders its value.
  // A problem is reported and gives nullopt.
  template <typename Where, typename Sink>
  std::optional<Json> read_field(const FieldSpec& f, uint64_t base, const Where& where,
                                 Sink& sink) {
    slots_[f.slot] = Slot{};
    auto fail = [&](auto make) -> std::optional<Json> {
      sink.report([&] { return where() + ": " + make(); });
      return std::nullopt;
    };
    if (f.type == FieldType::computed) {
      const auto v = eval(*f.value, where, "value", sink);
      if (!v) return std::nullopt;
      slots_[f.slot] = Slot::of(*v);
      return render_integer(f, static_cast<uint64_t>(*v));
    }
    const auto rel = eval(*f.offset, where, "offset", sink);
    if (!rel) return std::nullopt;
    if (*rel < 0) return fail([&] { return "negative offset " + std::to_string(*rel); });
    const auto offset = checked_add(base, static_cast<uint64_t>(*rel));
    if (!offset) return fail([] { return std::string("offset overflows 64 bits"); });
    uint64_t length = f.width;
    if (f.length) {
      const auto len = eval(*f.length, where, "length", sink);
      if (!len) return std::nullopt;
      if (*len < 0 || static_cast<uint64_t>(*len) > max_field_bytes_)
        return fail([&] {
          return "length " + std::to_string(*len) + " is outside 0.." +
                 std::to_string(max_field_bytes_);
        });
      length = static_cast<uint64_t>(*len);
    }
    if (!range_within(*offset, length, source_.size()))
      return fail([&] {
        return std::to_string(length) + " bytes at offset " + std::to_string(*offset) +
               " run past the end of the file (size " + std::to_string(source_.size()) + ")";
      });
    if (reads_left_ == 0)
      return fail([] { return std::string("the limit on reads per file is exhausted"); });
    --reads_left_;
    Json out = decode(f, *offset, length);
    if (!reader_.ok()) {
      slots_[f.slot] = Slot{};
      return fail([&] { return *reader_.error(); });
    }
    return out;
  }

  // Reads a record's fields relative to `at`, into `attributes` unless it is null; false (with
  // the problem reported) when one fails.
  template <typename Where, typename Sink>
  bool record_fields(const std::vector<FieldSpec>& fields, uint64_t at, const Where& where,
                     Json* attributes, Sink& sink) {
    for (const auto& f : fields) {
      auto field_where = [&] { return where() + " field '" + f.name + "'"; };
      auto v = read_field(f, at, field_where, sink);
      if (!v) return false;
      if (attributes != nullptr) (*attributes)[f.name] = std::move(*v);
    }
    return true;
  }

  void set_index(std::optional<uint64_t> i) {
    slots_[kSlotIndex] = i ? Slot::of(static_cast<int64_t>(*i)) : Slot{};
  }
  void set_at(uint64_t at) { slots_[kSlotAt] = Slot::of(static_cast<int64_t>(at)); }

 protected:
  const ByteSource& source_;
  BinaryReader& reader_;
  std::vector<Slot> slots_;
  uint64_t reads_left_ = 0;
  uint64_t max_field_bytes_ = 0;
  EvalContext ctx_;

 private:
  static Json render_integer(const FieldSpec& f, uint64_t bits);
  static Json render_float(double v);
  // The field's `length` bytes at `offset`, already checked to lie in the file: its value,
  // rendered, with its slot set for integers and bools. A failed read leaves reader_ not ok().
  Json decode(const FieldSpec& f, uint64_t offset, uint64_t length);
  // An integer field's value as a 64-bit pattern, sign-extended for the signed types.
  uint64_t read_bits(const FieldSpec& f);
};

}  // namespace payloadfs::descriptor::detail
