#pragma once
// Link-layer header types of packet captures (pcap's and pcapng's LINKTYPE_* numbers).

#include <cstdint>
#include <string_view>

namespace payloadfs::formats::capture {

// The LINKTYPE_* name of `linktype` from the tcpdump.org link-layer header types registry
// (libpcap's pcap-common.c), without the prefix; empty for numbers not in it.
[[nodiscard]] std::string_view linktype_name(uint32_t linktype) noexcept;

// libpcap's max_snaplen_for_dlt(): the largest packet it accepts for a link type. A captured
// length above it means the record header is garbage, not a big packet.
[[nodiscard]] uint32_t max_caplen_for_linktype(uint32_t linktype) noexcept;

}  // namespace payloadfs::formats::capture
