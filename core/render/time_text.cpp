#include "core/render/time_text.hpp"

namespace payloadfs {

std::string utc_timestamp(int64_t seconds, uint64_t fraction, unsigned digits) {
  if (digits > 19) digits = 19;
  int64_t days = seconds / 86400;
  int64_t rem = seconds % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);

  std::string out;
  out.reserve(32 + digits);
  auto put = [&out](int64_t value, unsigned width) {
    char buf[24];
    unsigned n = 0;
    auto v = static_cast<uint64_t>(value);
    do {
      buf[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    for (unsigned i = n; i < width; ++i) out.push_back('0');
    while (n > 0) out.push_back(buf[--n]);
  };
  if (year < 0) {
    out.push_back('-');
    put(-year, 4);
  } else {
    put(year, 4);
  }
  out.push_back('-');
  put(month, 2);
  out.push_back('-');
  put(day, 2);
  out.push_back('T');
  put(rem / 3600, 2);
  out.push_back(':');
  put(rem / 60 % 60, 2);
  out.push_back(':');
  put(rem % 60, 2);
  if (digits > 0) {
    out.push_back('.');
    char buf[24];
    for (unsigned i = digits; i > 0; --i) {
      buf[i - 1] = static_cast<char>('0' + fraction % 10);
      fraction /= 10;
    }
    out.append(buf, digits);
  }
  out.push_back('Z');
  return out;
}

}  // namespace payloadfs
