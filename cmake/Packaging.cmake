# What `cmake --install` puts beside bin/payloadfs (cli/CMakeLists.txt), and the Debian package
# of it all: `cpack` in the build dir writes payloadfs_<version>_<arch>.deb
# (scripts/check-package.sh builds and checks one).
include(GNUInstallDirs)

# The man page: docs/payloadfs.1 with the project's version in its .TH line, gzipped as Debian
# wants man pages (-n: no name or time stamp inside, so the package is reproducible).
set(PAYLOADFS_MAN_SOURCE ${PROJECT_SOURCE_DIR}/docs/payloadfs.1)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PAYLOADFS_MAN_SOURCE})
file(READ ${PAYLOADFS_MAN_SOURCE} payloadfs_man_text)
string(REGEX REPLACE "(\n\\.TH [^\n]*)\"payloadfs [^\"]*\"" "\\1\"payloadfs ${PROJECT_VERSION}\""
       payloadfs_man_text "${payloadfs_man_text}")
file(WRITE ${CMAKE_BINARY_DIR}/man/payloadfs.1.in "${payloadfs_man_text}")
configure_file(${CMAKE_BINARY_DIR}/man/payloadfs.1.in ${CMAKE_BINARY_DIR}/man/payloadfs.1 COPYONLY)
find_program(GZIP_EXECUTABLE gzip)
if(GZIP_EXECUTABLE)
  add_custom_command(
    OUTPUT ${CMAKE_BINARY_DIR}/man/payloadfs.1.gz
    COMMAND ${GZIP_EXECUTABLE} -9 -n -f -k ${CMAKE_BINARY_DIR}/man/payloadfs.1
    DEPENDS ${CMAKE_BINARY_DIR}/man/payloadfs.1
    COMMENT "Compressing the man page"
    VERBATIM)
  add_custom_target(payloadfs_man ALL DEPENDS ${CMAKE_BINARY_DIR}/man/payloadfs.1.gz)
  install(FILES ${CMAKE_BINARY_DIR}/man/payloadfs.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
else()
  add_custom_target(payloadfs_man)
  install(FILES ${CMAKE_BINARY_DIR}/man/payloadfs.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endif()

# Example format descriptors, for -o formats=<datadir>/payloadfs/formats or to copy into
# /etc/payloadfs/formats (they are not loaded by default).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/examples/formats/
        DESTINATION ${CMAKE_INSTALL_DATADIR}/payloadfs/formats
        FILES_MATCHING PATTERN "*.json")

# The .deb.
set(PAYLOADFS_MAINTAINER "payloadfs maintainers <maintainers@users.noreply.r-seed-eb4d14c4.example>"
    CACHE STRING "Maintainer field of the Debian package")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME payloadfs)
set(CPACK_PACKAGE_VENDOR payloadfs)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${PAYLOADFS_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "read-only FUSE filesystem showing binary payload files as directories")
# Lines as they go into the control file (at most 80 columns); "." is an empty line.
set(CPACK_PACKAGE_DESCRIPTION "\
payloadfs mounts a directory of binary payloads read-only and shows each file
as a directory: its parsed header as JSON (header.json, slices.json), its
signature bytes, and its sections as plain files (raw/, range/) served straight
from the mapped source pages. No parser is needed in the consumer: cat, jq, dd
and numpy.memmap read it.
.
Built-in formats: NumPy npy, safetensors, GGUF, ELF, PNG, WAV, tar, zip, gzip,
pcap, pcapng, MCAP and SQLite; more are described in JSON without code.
.
Mount with 'payloadfs SRC MNT', 'mount -t fuse.payloadfs SRC MNT' or an
/etc/fstab line; see payloadfs(1).")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)  # the package gets a stripped payloadfs whatever the build type
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # payloadfs_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${PAYLOADFS_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# fuse3 brings mount.fuse3 (mount -t fuse.payloadfs, fstab) and fusermount3 (unmounting as a
# user); the shared libraries' packages are found by dpkg-shlibdeps where it is installed
# (dpkg-dev), with the minimum versions the binary needs.
find_program(DPKG_SHLIBDEPS_EXECUTABLE dpkg-shlibdeps)
find_program(FILE_EXECUTABLE file)  # CPackDeb finds the ELF files to scan with it
if(DPKG_SHLIBDEPS_EXECUTABLE AND FILE_EXECUTABLE)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "fuse3")
else()
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "fuse3, libfuse3-3, libstdc++6, libgcc-s1, libc6, zlib1g")
endif()
include(CPack)
