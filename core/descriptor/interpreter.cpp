// Parsing a file with a compiled descriptor: the magic, the header fields, the validations, then
// each slices entry (single slices, fixed-stride tables, walked sequences of records), with
// every problem listed in the Layout's errors rather than thrown.

#include "core/descriptor/interpreter.hpp"

#include <algorithm>
#include <atomic>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/descriptor/field_reader.hpp"
#include "core/descriptor/record_table.hpp"
#include "core/io/checked_math.hpp"
#include "core/render/json_text.hpp"

namespace payloadfs::descriptor::detail {
namespace {

// Holds the parse-time reader, so it exists before the FieldReader base that refers to it.
struct ParseReader {
  ParseReader(const ByteSource& source, Endian endian) : parse_reader(source, endian) {}
  BinaryReader parse_reader;
};

class FileParser : private ParseReader, private FieldReader {
 public:
  FileParser(const Compiled& d, const ByteSource& source)
      : ParseReader(source, d.endian),
        FieldReader(source, parse_reader, std::vector<Slot>(d.slot_count), d.endian,
                    d.limits.max_reads, d.limits.max_field_bytes),
        d_(d) {
    const uint64_t size = source.size();
    slots_[kSlotSize] = size > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
                            ? Slot{0, SlotState::too_large}
                            : Slot::of(static_cast<int64_t>(size));
  }

  Layout run() {
    match_magic();
    ErrorSink header_errors(layout_, std::numeric_limits<uint64_t>::max());
    for (const auto& f : d_.fields) {
      auto where = [&] { return "field '" + f.name + "'"; };
      layout_.header[f.name] = read_field(f, 0, where, header_errors).value_or(Json(nullptr));
    }
    for (const auto& v : d_.validations) {
      auto r = v.expr.evaluate(ctx_);
      if (const auto* err = std::get_if<ExprError>(&r)) {
        layout_.add_error("validation \"" + utf8_or_escaped(v.expr.text()) +
                          "\" could not be evaluated: " + column_note(v.expr, *err));
      } else if (std::get<int64_t>(r) == 0) {
        layout_.add_error("validation failed: " + (v.message.empty()
                                                       ? utf8_or_escaped(v.expr.text())
                                                       : utf8_or_escaped(v.message)));
      }
    }
    for (const auto& s : d_.slices) {
      ErrorSink sink(layout_, d_.limits.max_errors_per_slice);
      switch (s.kind) {
        case SliceKind::single:
          single(s, sink);
          break;
        case SliceKind::table:
          table(s, sink);
          break;
        case SliceKind::walk:
          walk(s, sink);
          break;
      }
      sink.finish("slice '" + utf8_or_escaped(s.name) + "'");
    }
    return std::move(layout_);
  }

 private:
  void match_magic() {
    for (const auto& m : d_.magics) {
      std::vector<std::byte> got(m.bytes.size());
      if (range_within(m.offset, got.size(), source_.size()) && source_.read_exact(m.offset, got) &&
          got == m.bytes) {
        layout_.magic = ByteRange{m.offset, m.bytes.size()};
        if (m.endian) ctx_.default_endian = *m.endian;
        return;
      }
    }
    layout_.add_error("the file does not start with the descriptor's magic (" + d_.signature + ")");
    layout_.magic = ByteRange{d_.magics.front().offset, d_.magics.front().bytes.size()};
  }

  // `{i}` zero-padded to the digits of the largest index, so `ls` sorts the records (the same
  // rule as the built-in record tables: 10 records are 0..9, 11 are 00..10).
  static std::string name_of(const std::string& tmpl, uint64_t index, uint64_t count) {
    const size_t width = std::to_string(count == 0 ? 0 : count - 1).size();
    std::string digits = std::to_string(index);
    if (digits.size() < width) digits.insert(0, width - digits.size(), '0');
    std::string out;
    size_t from = 0;
    for (size_t at; (at = tmpl.find("{i}", from)) != std::string::npos; from = at + 3)
      out += tmpl.substr(from, at - from) + digits;
    return out + tmpl.substr(from);
  }

  // An evaluated offset and length as a slice, when it lies inside the file.
  template <typename Where>
  bool in_file(int64_t offset, int64_t length, const Where& where, ErrorSink& sink) {
    if (offset < 0 || length < 0) {
      sink.report([&] {
        return where() + ": negative " +
               (offset < 0 ? "offset " + std::to_string(offset)
                           : "length " + std::to_string(length));
      });
      return false;
    }
    if (!range_within(static_cast<uint64_t>(offset), static_cast<uint64_t>(length),
                      source_.size())) {
      sink.report([&] {
        return where() + " [" + std::to_string(offset) + "+" + std::to_string(length) +
               "] lies outside the file (size " + std::to_string(source_.size()) + ")";
      });
      return false;
    }
    return true;
  }

  // One record of a single slice or a table: offset, fields (into `attributes` unless null),
  // length. The slice, or nullopt when the record fails.
  template <typename Name>
  std::optional<ByteRange> fixed_record(const SliceSpec& s, const Name& name, Json* attributes,
                                        ErrorSink& sink) {
    auto where = [&] { return "slice '" + utf8_or_escaped(name()) + "'"; };
    const auto offset = eval(*s.offset, where, "offset", sink);
    if (!offset) return std::nullopt;
    if (*offset < 0) {
      sink.report([&] { return where() + ": negative offset " + std::to_string(*offset); });
      return std::nullopt;
    }
    set_at(static_cast<uint64_t>(*offset));
    if (!record_fields(s.fields, static_cast<uint64_t>(*offset), where, attributes, sink))
      return std::nullopt;
    const auto length = eval(*s.length, where, "length", sink);
    if (!length || !in_file(*offset, *length, where, sink)) return std::nullopt;
    return ByteRange{static_cast<uint64_t>(*offset), static_cast<uint64_t>(*length)};
  }

  void single(const SliceSpec& s, ErrorSink& sink) {
    set_index(std::nullopt);
    Json attributes = Json::object();
    const auto range = fixed_record(
        s, [&] { return s.name; }, &attributes, sink);
    if (range) layout_.slices.push_back(Slice{s.name, *range, std::move(attributes)});
  }

  // A count expression, checked and capped.
  template <typename Where>
  std::optional<uint64_t> count_of(const SliceSpec& s, const Where& where, ErrorSink& sink) {
    const auto count = eval(*s.count, where, "count", sink);
    if (!count) return std::nullopt;
    if (*count < 0) {
      sink.report([&] { return where() + ": negative count " + std::to_string(*count); });
      return std::nullopt;
    }
    auto n = static_cast<uint64_t>(*count);
    if (n > d_.limits.max_records) {
      sink.report([&] {
        return where() + ": count " + std::to_string(n) + " exceeds the limit of " +
               std::to_string(d_.limits.max_records) + " records; only those are listed";
      });
      n = d_.limits.max_records;
    }
    return n;
  }

  // The records of one table or walk as they are found: a compact RecordTable (16 bytes a
  // record, attributes read back through TableFields) while the records are numbered 0, 1, 2,
  // ... without gaps and fit the encoding; otherwise one Slice each (`spilled`).
  struct Collected {
    std::shared_ptr<TableFields> fields;  // null: Slices from the start
    std::vector<Record> records;
    bool spilled = false;
    size_t first_slice = 0;         // where this entry's slices begin in layout_.slices
    std::vector<uint64_t> indices;  // record numbers of those slices, for their names
    bool have_delta = false;        // index mode of a walk: `delta` set by the first record
  };

  Collected collect(const SliceSpec& s) {
    Collected c;
    c.first_slice = layout_.slices.size();
    if (s.table_dir.empty()) {
      c.spilled = true;
      return c;
    }
    static std::atomic<uint64_t> next_id{1};
    c.fields = std::make_shared<TableFields>();
    c.fields->id = next_id.fetch_add(1, std::memory_order_relaxed);
    c.fields->fields = s.fields;
    c.fields->slots = slots_;
    c.fields->slots[kSlotIndex] = Slot{};
    c.fields->slots[kSlotAt] = Slot{};
    for (size_t k = kFirstFieldSlot + d_.fields.size(); k < c.fields->slots.size(); ++k)
      c.fields->slots[k] = Slot{};
    c.fields->endian = ctx_.default_endian;
    c.fields->max_reads = d_.limits.max_reads;
    c.fields->max_field_bytes = d_.limits.max_field_bytes;
    c.fields->delta = 0;
    c.have_delta = s.kind == SliceKind::table;  // a table's slice starts at @
    return c;
  }

  // Whether record `index` (starting at `at`, slice `range`) can join the compact table.
  static bool fits(Collected& c, const SliceSpec& s, uint64_t index, uint64_t at, ByteRange range) {
    if (index != c.records.size() || range.length > std::numeric_limits<uint32_t>::max())
      return false;
    const int64_t delta = static_cast<int64_t>(range.offset) - static_cast<int64_t>(at);
    TableFields& f = *c.fields;
    if (f.mode == TagMode::index) {
      if (index > std::numeric_limits<uint32_t>::max()) return false;
      if (!c.have_delta) {
        f.delta = delta;
        c.have_delta = true;
      }
      if (delta == f.delta) return true;
      // data_offset - @ varies: tags can hold it instead of i when no field uses i.
      if (s.fields_use_index || f.delta < 0 || f.delta > std::numeric_limits<uint32_t>::max())
        return false;
      for (auto& r : c.records) r.tag = static_cast<uint32_t>(f.delta);
      f.mode = TagMode::delta;
    }
    return delta >= 0 && delta <= std::numeric_limits<uint32_t>::max();
  }

  // Adds record `index`; `attributes` are its fields when already read (they are when the
  // records are Slices), else nullopt.
  void add(Collected& c, const SliceSpec& s, uint64_t index, uint64_t at, ByteRange range,
           std::optional<Json> attributes) {
    if (!c.spilled && fits(c, s, index, at, range)) {
      const TableFields& f = *c.fields;
      const uint64_t tag = f.mode == TagMode::index ? index : range.offset - at;  // see TagMode
      c.records.push_back(
          Record{range.offset, static_cast<uint32_t>(range.length), static_cast<uint32_t>(tag)});
      return;
    }
    if (!c.spilled) spill(c);
    if (!attributes) attributes = c.fields->read(source_, at, index);
    layout_.slices.push_back(Slice{{}, range, std::move(*attributes)});
    c.indices.push_back(index);
  }

  // Turns the records collected so far (numbered 0..n-1) into Slices, reading their fields
  // back as the table would: a gap in the numbering (a record in the middle failed), a data
  // length of 4 GiB or more, or a data offset the tags cannot encode.
  void spill(Collected& c) {
    for (size_t k = 0; k < c.records.size(); ++k) {
      const Record& r = c.records[k];
      layout_.slices.push_back(Slice{{}, {r.offset, r.length}, (*c.fields)(source_, r)});
      c.indices.push_back(k);
    }
    c.records = {};
    c.spilled = true;
  }

  // Names the Slices (`total` records, for the padding of {i}), or adds the compact table.
  void finish(Collected& c, const SliceSpec& s, uint64_t total) {
    if (c.spilled) {
      for (size_t k = c.first_slice; k < layout_.slices.size(); ++k)
        layout_.slices[k].name = name_of(s.name, c.indices[k - c.first_slice], total);
      return;
    }
    if (c.records.empty()) return;
    c.records.shrink_to_fit();
    std::shared_ptr<const TableFields> fields = std::move(c.fields);
    layout_.tables.push_back(RecordTable{s.table_dir,
                                         std::move(c.records),
                                         [fields](const ByteSource& source, const Record& record) {
                                           return (*fields)(source, record);
                                         },
                                         {}});
  }

  void table(const SliceSpec& s, ErrorSink& sink) {
    auto where = [&] { return "slice '" + utf8_or_escaped(s.name) + "'"; };
    slots_[kSlotIndex] = Slot{};
    slots_[kSlotAt] = Slot{};
    const auto count = count_of(s, where, sink);
    if (!count) return;
    Collected c = collect(s);
    if (!c.spilled) c.records.reserve(static_cast<size_t>(*count));
    for (uint64_t i = 0; i < *count; ++i) {
      set_index(i);
      Json attributes = Json::object();
      const auto range = fixed_record(
          s, [&] { return name_of(s.name, i, *count); }, c.spilled ? &attributes : nullptr, sink);
      if (range) {
        add(c, s, i, range->offset, *range,
            c.spilled ? std::optional<Json>(std::move(attributes)) : std::nullopt);
      } else if (reads_left_ == 0) {
        // Once the read budget is gone every further record would fail the same way.
        sink.report([&] {
          return where() + ": the limit on reads per file is exhausted at record " +
                 std::to_string(i);
        });
        break;
      }
    }
    finish(c, s, *count);
  }

  // Where a walk starts and stops: `until` is the file's size unless given.
  struct WalkBounds {
    uint64_t start = 0;
    uint64_t until = 0;
    bool explicit_until = false;
    std::optional<uint64_t> count;
  };

  template <typename Where>
  std::optional<WalkBounds> walk_bounds(const SliceSpec& s, const Where& where, ErrorSink& sink) {
    WalkBounds b;
    const auto start = eval(*s.start, where, "start", sink);
    if (!start) return std::nullopt;
    if (*start < 0) {
      sink.report([&] { return where() + ": negative start " + std::to_string(*start); });
      return std::nullopt;
    }
    b.start = static_cast<uint64_t>(*start);
    b.until = source_.size();
    if (s.until) {
      const auto u = eval(*s.until, where, "until", sink);
      if (!u) return std::nullopt;
      if (*u < 0) {
        sink.report([&] { return where() + ": negative until " + std::to_string(*u); });
        return std::nullopt;
      }
      b.until = static_cast<uint64_t>(*u);
      b.explicit_until = true;
    }
    if (s.count) {
      b.count = count_of(s, where, sink);
      if (!b.count) return std::nullopt;
    }
    return b;
  }

  void walk(const SliceSpec& s, ErrorSink& sink) {
    auto where = [&] { return "slice '" + utf8_or_escaped(s.name) + "'"; };
    slots_[kSlotIndex] = Slot{};
    slots_[kSlotAt] = Slot{};
    const auto bounds = walk_bounds(s, where, sink);
    if (!bounds) return;
    const auto& [start, until, explicit_until, count] = *bounds;
    Collected c = collect(s);
    uint64_t pos = start;
    uint64_t n = 0;
    for (;; ++n) {
      if (count ? n >= *count : pos >= until) break;
      if (explicit_until && pos >= until) break;
      if (n >= d_.limits.max_records) {
        sink.report([&] {
          return where() + ": stopped after " + std::to_string(n) + " records (the limit)";
        });
        break;
      }
      const auto next = walk_record(s, *bounds, n, pos, c, sink);
      if (!next) break;
      pos = *next;
    }
    // Names are known once the number of records is.
    finish(c, s, count ? *count : n);
  }

  // Record `n` of a walk, at `pos`: its fields, length and data range. Where the next record
  // starts, or nullopt when the walk cannot go on.
  std::optional<uint64_t> walk_record(const SliceSpec& s, const WalkBounds& b, uint64_t n,
                                      uint64_t pos, Collected& c, ErrorSink& sink) {
    set_index(n);
    set_at(pos);
    auto rec = [&] {
      return "slice '" + utf8_or_escaped(s.name) + "' record " + std::to_string(n) + " at offset " +
             std::to_string(pos);
    };
    Json attributes = Json::object();
    if (!record_fields(s.fields, pos, rec, c.spilled ? &attributes : nullptr, sink))
      return std::nullopt;
    const auto length = eval(*s.length, rec, "length", sink);
    if (!length) return std::nullopt;
    if (*length <= 0) {
      sink.report([&] {
        return rec() + ": length " + std::to_string(*length) +
               " does not advance the walk; stopped";
      });
      return std::nullopt;
    }
    const auto end = checked_add(pos, static_cast<uint64_t>(*length));
    if (!end || *end > std::min(b.until, source_.size())) {
      sink.report([&] {
        return rec() + ": length " + std::to_string(*length) + " runs past " +
               (b.explicit_until && b.until < source_.size()
                    ? "the end of the sequence (" + std::to_string(b.until) + ")"
                    : "the end of the file (size " + std::to_string(source_.size()) + ")") +
               "; stopped";
      });
      return std::nullopt;
    }
    std::optional<int64_t> data_offset = static_cast<int64_t>(pos);
    std::optional<int64_t> data_length = *length;
    if (s.data_offset) data_offset = eval(*s.data_offset, rec, "data_offset", sink);
    if (data_offset && s.data_length) data_length = eval(*s.data_length, rec, "data_length", sink);
    // The record itself is sound, so a bad data range loses only this slice.
    auto data_where = [&] { return rec() + " data"; };
    if (data_offset && data_length && in_file(*data_offset, *data_length, data_where, sink)) {
      add(c, s, n, pos,
          ByteRange{static_cast<uint64_t>(*data_offset), static_cast<uint64_t>(*data_length)},
          c.spilled ? std::optional<Json>(std::move(attributes)) : std::nullopt);
    }
    return *end;
  }

  const Compiled& d_;
  Layout layout_;
};
}  // namespace

Layout interpret(const Compiled& spec, const ByteSource& source) {
  return FileParser(spec, source).run();
}

}  // namespace payloadfs::descriptor::detail
