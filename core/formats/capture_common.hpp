#pragma once
// Helpers shared by the packet-capture parsers (pcap.cpp, pcapng.cpp): link-layer type names,
// cheap ISO-8601 timestamps, and zero-padded record names. Header-only so each parser stays
// one translation unit.

#include <cstdint>
#include <string>
#include <string_view>

namespace payloadfs::formats::capture {

// LINKTYPE_* names from the tcpdump.org link-layer header types registry (libpcap's
// pcap-common.c); empty for numbers not in it.
inline std::string_view linktype_name(uint32_t linktype) noexcept {
  switch (linktype) {
    case 0:
      return "NULL";
    case 1:
      return "ETHERNET";
    case 2:
      return "EXP_ETHERNET";
    case 3:
      return "AX25";
    case 4:
      return "PRONET";
    case 5:
      return "CHAOS";
    case 6:
      return "IEEE802_5";
    case 7:
      return "ARCNET_BSD";
    case 8:
      return "SLIP";
    case 9:
      return "PPP";
    case 10:
      return "FDDI";
    case 50:
      return "PPP_HDLC";
    case 51:
      return "PPP_ETHER";
    case 99:
      return "SYMANTEC_FIREWALL";
    case 100:
      return "ATM_RFC1483";
    case 101:
      return "RAW";
    case 102:
      return "SLIP_BSDOS";
    case 103:
      return "PPP_BSDOS";
    case 104:
      return "C_HDLC";
    case 105:
      return "IEEE802_11";
    case 106:
      return "ATM_CLIP";
    case 107:
      return "FRELAY";
    case 108:
      return "LOOP";
    case 109:
      return "ENC";
    case 110:
      return "LANE8023";
    case 111:
      return "HIPPI";
    case 112:
      return "NETBSD_HDLC";
    case 113:
      return "LINUX_SLL";
    case 114:
      return "LTALK";
    case 115:
      return "ECONET";
    case 116:
      return "IPFILTER";
    case 117:
      return "PFLOG";
    case 118:
      return "CISCO_IOS";
    case 119:
      return "IEEE802_11_PRISM";
    case 120:
      return "IEEE802_11_AIRONET";
    case 121:
      return "HHDLC";
    case 122:
      return "IP_OVER_FC";
    case 123:
      return "SUNATM";
    case 124:
      return "RIO";
    case 125:
      return "PCI_EXP";
    case 126:
      return "AURORA";
    case 127:
      return "IEEE802_11_RADIOTAP";
    case 128:
      return "TZSP";
    case 129:
      return "ARCNET_LINUX";
    case 130:
      return "JUNIPER_MLPPP";
    case 131:
      return "JUNIPER_MLFR";
    case 132:
      return "JUNIPER_ES";
    case 133:
      return "JUNIPER_GGSN";
    case 134:
      return "JUNIPER_MFR";
    case 135:
      return "JUNIPER_ATM2";
    case 136:
      return "JUNIPER_SERVICES";
    case 137:
      return "JUNIPER_ATM1";
    case 138:
      return "APPLE_IP_OVER_IEEE1394";
    case 139:
      return "MTP2_WITH_PHDR";
    case 140:
      return "MTP2";
    case 141:
      return "MTP3";
    case 142:
      return "SCCP";
    case 143:
      return "DOCSIS";
    case 144:
      return "LINUX_IRDA";
    case 145:
      return "IBM_SP";
    case 146:
      return "IBM_SN";
    case 147:
      return "USER0";
    case 148:
      return "USER1";
    case 149:
      return "USER2";
    case 150:
      return "USER3";
    case 151:
      return "USER4";
    case 152:
      return "USER5";
    case 153:
      return "USER6";
    case 154:
      return "USER7";
    case 155:
      return "USER8";
    case 156:
      return "USER9";
    case 157:
      return "USER10";
    case 158:
      return "USER11";
    case 159:
      return "USER12";
    case 160:
      return "USER13";
    case 161:
      return "USER14";
    case 162:
      return "USER15";
    case 163:
      return "IEEE802_11_AVS";
    case 164:
      return "JUNIPER_MONITOR";
    case 165:
      return "BACNET_MS_TP";
    case 166:
      return "PPP_PPPD";
    case 167:
      return "JUNIPER_PPPOE";
    case 168:
      return "JUNIPER_PPPOE_ATM";
    case 169:
      return "GPRS_LLC";
    case 170:
      return "GPF_T";
    case 171:
      return "GPF_F";
    case 172:
      return "GCOM_T1E1";
    case 173:
      return "GCOM_SERIAL";
    case 174:
      return "JUNIPER_PIC_PEER";
    case 175:
      return "ERF_ETH";
    case 176:
      return "ERF_POS";
    case 177:
      return "LINUX_LAPD";
    case 178:
      return "JUNIPER_ETHER";
    case 179:
      return "JUNIPER_PPP";
    case 180:
      return "JUNIPER_FRELAY";
    case 181:
      return "JUNIPER_CHDLC";
    case 182:
      return "MFR";
    case 183:
      return "JUNIPER_VP";
    case 184:
      return "A429";
    case 185:
      return "A653_ICM";
    case 186:
      return "USB_FREEBSD";
    case 187:
      return "BLUETOOTH_HCI_H4";
    case 188:
      return "IEEE802_16_MAC_CPS";
    case 189:
      return "USB_LINUX";
    case 190:
      return "CAN20B";
    case 191:
      return "IEEE802_15_4_LINUX";
    case 192:
      return "PPI";
    case 193:
      return "IEEE802_16_MAC_CPS_RADIO";
    case 194:
      return "JUNIPER_ISM";
    case 195:
      return "IEEE802_15_4_WITHFCS";
    case 196:
      return "SITA";
    case 197:
      return "ERF";
    case 198:
      return "RAIF1";
    case 199:
      return "IPMB_KONTRON";
    case 200:
      return "JUNIPER_ST";
    case 201:
      return "BLUETOOTH_HCI_H4_WITH_PHDR";
    case 202:
      return "AX25_KISS";
    case 203:
      return "LAPD";
    case 204:
      return "PPP_WITH_DIR";
    case 205:
      return "C_HDLC_WITH_DIR";
    case 206:
      return "FRELAY_WITH_DIR";
    case 207:
      return "LAPB_WITH_DIR";
    case 209:
      return "IPMB_LINUX";
    case 210:
      return "FLEXRAY";
    case 211:
      return "MOST";
    case 212:
      return "LIN";
    case 213:
      return "X2E_SERIAL";
    case 214:
      return "X2E_XORAYA";
    case 215:
      return "IEEE802_15_4_NONASK_PHY";
    case 216:
      return "LINUX_EVDEV";
    case 217:
      return "GSMTAP_UM";
    case 218:
      return "GSMTAP_ABIS";
    case 219:
      return "MPLS";
    case 220:
      return "USB_LINUX_MMAPPED";
    case 221:
      return "DECT";
    case 222:
      return "AOS";
    case 223:
      return "WIHART";
    case 224:
      return "FC_2";
    case 225:
      return "FC_2_WITH_FRAME_DELIMS";
    case 226:
      return "IPNET";
    case 227:
      return "CAN_SOCKETCAN";
    case 228:
      return "IPV4";
    case 229:
      return "IPV6";
    case 230:
      return "IEEE802_15_4_NOFCS";
    case 231:
      return "DBUS";
    case 232:
      return "JUNIPER_VS";
    case 233:
      return "JUNIPER_SRX_E2E";
    case 234:
      return "JUNIPER_FIBRECHANNEL";
    case 235:
      return "DVB_CI";
    case 236:
      return "MUX27010";
    case 237:
      return "STANAG_5066_D_PDU";
    case 238:
      return "JUNIPER_ATM_CEMIC";
    case 239:
      return "NFLOG";
    case 240:
      return "NETANALYZER";
    case 241:
      return "NETANALYZER_TRANSPARENT";
    case 242:
      return "IPOIB";
    case 243:
      return "MPEG_2_TS";
    case 244:
      return "NG40";
    case 245:
      return "NFC_LLCP";
    case 246:
      return "PFSYNC";
    case 247:
      return "INFINIBAND";
    case 248:
      return "SCTP";
    case 249:
      return "USBPCAP";
    case 250:
      return "RTAC_SERIAL";
    case 251:
      return "BLUETOOTH_LE_LL";
    case 252:
      return "WIRESHARK_UPPER_PDU";
    case 253:
      return "NETLINK";
    case 254:
      return "BLUETOOTH_LINUX_MONITOR";
    case 255:
      return "BLUETOOTH_BREDR_BB";
    case 256:
      return "BLUETOOTH_LE_LL_WITH_PHDR";
    case 257:
      return "PROFIBUS_DL";
    case 258:
      return "PKTAP";
    case 259:
      return "EPON";
    case 260:
      return "IPMI_HPM_2";
    case 261:
      return "ZWAVE_R1_R2";
    case 262:
      return "ZWAVE_R3";
    case 263:
      return "WATTSTOPPER_DLM";
    case 264:
      return "ISO_14443";
    case 265:
      return "RDS";
    case 266:
      return "USB_DARWIN";
    case 267:
      return "OPENFLOW";
    case 268:
      return "SDLC";
    case 269:
      return "TI_LLN_SNIFFER";
    case 270:
      return "LORATAP";
    case 271:
      return "VSOCK";
    case 272:
      return "NORDIC_BLE";
    case 273:
      return "DOCSIS31_XRA31";
    case 274:
      return "ETHERNET_MPACKET";
    case 275:
      return "DISPLAYPORT_AUX";
    case 276:
      return "LINUX_SLL2";
    case 277:
      return "SERCOS_MONITOR";
    case 278:
      return "OPENVIZSLA";
    case 279:
      return "EBHSCR";
    case 280:
      return "VPP_DISPATCH";
    case 281:
      return "DSA_TAG_BRCM";
    case 282:
      return "DSA_TAG_BRCM_PREPEND";
    case 283:
      return "IEEE802_15_4_TAP";
    case 284:
      return "DSA_TAG_DSA";
    case 285:
      return "DSA_TAG_EDSA";
    case 286:
      return "ELEE";
    case 287:
      return "Z_WAVE_SERIAL";
    case 288:
      return "USB_2_0";
    case 289:
      return "ATSC_ALP";
    case 290:
      return "ETW";
    case 291:
      return "NETANALYZER_NG";
    case 292:
      return "ZBOSS_NCP";
    case 293:
      return "USB_2_0_LOW_SPEED";
    case 294:
      return "USB_2_0_FULL_SPEED";
    case 295:
      return "USB_2_0_HIGH_SPEED";
    case 296:
      return "AUERSWALD_LOG";
    case 297:
      return "ZWAVE_TAP";
    case 298:
      return "SILABS_DEBUG_CHANNEL";
    case 299:
      return "FIRA_UCI";
    case 300:
      return "MDB";
    case 301:
      return "DECT_NR";
    default:
      return {};
  }
}

// libpcap's max_snaplen_for_dlt(): the largest packet it accepts for a link type. A captured
// length above it means the record header is garbage, not a big packet.
inline uint32_t max_caplen_for_linktype(uint32_t linktype) noexcept {
  switch (linktype) {
    case 231:
      return 128U * 1024 * 1024;  // DBUS
    case 279:
      return 8U * 1024 * 1024;  // EBHSCR
    case 249:
      return 1024U * 1024;  // USBPCAP
    default:
      return 262144;  // MAXIMUM_SNAPLEN
  }
}

// Number of decimal digits of `value` (1 for 0).
inline unsigned decimal_width(uint64_t value) noexcept {
  unsigned width = 1;
  while (value >= 10) {
    value /= 10;
    ++width;
  }
  return width;
}

// Digits of the largest index of `count` records: names are padded to it (like RecordTable).
inline unsigned index_width(uint64_t count) noexcept {
  return decimal_width(count == 0 ? 0 : count - 1);
}

// "prefix" + `index` zero-padded to `width` digits, so `ls` sorts records in order.
inline std::string numbered(std::string_view prefix, uint64_t index, unsigned width) {
  char digits[24];
  unsigned n = 0;
  do {
    digits[n++] = static_cast<char>('0' + index % 10);
    index /= 10;
  } while (index != 0);
  std::string out(prefix);
  out.reserve(prefix.size() + (width > n ? width : n));
  for (unsigned i = n; i < width; ++i) out.push_back('0');
  while (n > 0) out.push_back(digits[--n]);
  return out;
}

// "YYYY-MM-DDTHH:MM:SS[.fraction]Z" in UTC, `fraction` printed with exactly `digits` digits
// (0..19). Hand-rolled (days-from-civil, H. Hinnant) because it runs once per packet.
inline std::string utc_timestamp(int64_t seconds, uint64_t fraction, unsigned digits) {
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

}  // namespace payloadfs::formats::capture
