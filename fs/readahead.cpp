#include "fs/readahead.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace payloadfs {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape(const std::string& field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size()) {
      const std::string oct = field.substr(i + 1, 3);
      if (oct.size() == 3 && oct.find_first_not_of("01234567") == std::string::npos) {
        out.push_back(static_cast<char>(std::stoi(oct, nullptr, 8)));
        i += 3;
        continue;
      }
    }
    out.push_back(field[i]);
  }
  return out;
}

}  // namespace

std::string set_mount_readahead(const std::string& mountpoint, unsigned kilobytes) {
  std::ifstream mountinfo("/proc/self/mountinfo");
  std::string line, device;
  while (std::getline(mountinfo, line)) {
    std::istringstream fields(line);
    std::string id, parent, major_minor, root, point;
    if (fields >> id >> parent >> major_minor >> root >> point && unescape(point) == mountpoint)
      device = major_minor;  // the last match is the one on top
  }
  if (device.empty()) return "mount point not found in /proc/self/mountinfo";
  const std::string path = "/sys/class/bdi/" + device + "/read_ahead_kb";
  std::ofstream out(path);
  out << kilobytes << "\n";
  out.flush();
  if (!out) return path + ": " + std::strerror(errno);
  return {};
}

}  // namespace payloadfs
