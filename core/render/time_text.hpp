#pragma once
// Timestamps as text: ISO-8601 in UTC, as header.json and the capture formats show them.

#include <cstdint>
#include <string>

namespace payloadfs {

// "YYYY-MM-DDTHH:MM:SS[.fraction]Z" in UTC, `fraction` printed with exactly `digits` digits
// (0..19). Hand-rolled (days-from-civil, H. Hinnant): it runs once per packet, and gmtime_r
// fails outside time_t's calendar range.
[[nodiscard]] std::string utc_timestamp(int64_t seconds, uint64_t fraction, unsigned digits);

}  // namespace payloadfs
