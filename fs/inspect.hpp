#pragma once

namespace payloadfs {

// `payloadfs --inspect FILE [--slices]`: header.json (or slices.json) of FILE, no mount.
int run_inspect(int argc, char** argv);

}  // namespace payloadfs
