#pragma once

namespace payloadfs {

// `payloadfs --inspect [--slices] [--pretty|--compact] FILE|DIR...`: header.json (or
// slices.json) of each file, without mounting. Directories are walked recursively in sorted
// order (regular files only, symlinks not followed). One JSON object per file, one per line
// unless pretty. Exit status 0, or 1 when some file could not be read (each said on stderr),
// 2 for a bad command line; malformed payloads are not failures (header.json has `errors`).
int run_inspect(int argc, char** argv);

}  // namespace payloadfs
