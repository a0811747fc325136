# Install rules for everything besides the two binaries (systemd units,
# sysusers.d and tmpfiles.d entries, man pages, example config and roles),
# the Debian package built by CPack, and the CTest entries that check both.
#
#   cmake --install BUILD --prefix /usr/local    # never writes to /etc
#   cpack --config BUILD/CPackConfig.cmake -B OUT  # OUT/jead_VERSION_amd64.deb
#
# The package's /etc/jead/jead.toml is a conffile. It is installed only by
# the EXCLUDE_FROM_ALL component "deb-conffiles", which CPack adds to the
# package and a plain `cmake --install` skips. Maintainer scripts are in
# etc/debian/.

include(GNUInstallDirs)

set(JEAD_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING
    "Directory for jead.service, relative to the install prefix unless absolute")
set(JEAD_SYSUSERS_DIR "lib/sysusers.d" CACHE STRING
    "Directory for the sysusers.d entry, relative to the install prefix unless absolute")
set(JEAD_TMPFILES_DIR "lib/tmpfiles.d" CACHE STRING
    "Directory for the tmpfiles.d entry, relative to the install prefix unless absolute")

set(JEAD_PACKAGING_DIR ${CMAKE_CURRENT_LIST_DIR}/..)

install(FILES ${JEAD_PACKAGING_DIR}/systemd/jead.service DESTINATION ${JEAD_SYSTEMD_UNIT_DIR})
install(FILES ${JEAD_PACKAGING_DIR}/systemd/jead.sysusers DESTINATION ${JEAD_SYSUSERS_DIR} RENAME jead.conf)
install(FILES ${JEAD_PACKAGING_DIR}/systemd/jead.tmpfiles DESTINATION ${JEAD_TMPFILES_DIR} RENAME jead.conf)

install(FILES ${JEAD_PACKAGING_DIR}/man/jead.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES ${JEAD_PACKAGING_DIR}/man/jead.toml.5 ${JEAD_PACKAGING_DIR}/man/jead-roles.5
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
install(FILES ${JEAD_PACKAGING_DIR}/man/jea-replay.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

# Examples go to the documentation directory, never to /etc/jead: an
# example role placed in roles_dir would become a live role.
set(JEAD_EXAMPLES_DIR ${CMAKE_INSTALL_DOCDIR}/examples)
file(GLOB JEAD_EXAMPLE_ROLES CONFIGURE_DEPENDS ${JEAD_PACKAGING_DIR}/roles/examples/*.toml)
file(GLOB JEAD_EXAMPLE_DROPINS CONFIGURE_DEPENDS ${JEAD_PACKAGING_DIR}/systemd/examples/*.conf)
install(FILES ${JEAD_PACKAGING_DIR}/etc/jead.toml DESTINATION ${JEAD_EXAMPLES_DIR})
install(FILES ${JEAD_EXAMPLE_ROLES} DESTINATION ${JEAD_EXAMPLES_DIR}/roles)
install(FILES ${JEAD_EXAMPLE_DROPINS} DESTINATION ${JEAD_EXAMPLES_DIR}/systemd)
install(FILES ${JEAD_PACKAGING_DIR}/docs/deployment.md ${JEAD_PACKAGING_DIR}/docs/threat-model.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

install(FILES ${JEAD_PACKAGING_DIR}/etc/jead.toml DESTINATION /etc/jead
        COMPONENT deb-conffiles EXCLUDE_FROM_ALL)

# --- Debian package -------------------------------------------------------

set(JEAD_PACKAGE_MAINTAINER "jead developers <root@localhost>" CACHE STRING
    "Maintainer field of the Debian package")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME jead)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT ${JEAD_PACKAGE_MAINTAINER})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "restricted remote administration over SSH")
set(CPACK_PACKAGE_DESCRIPTION
    "jead is an SSH server that accepts only short-lived OpenSSH user\n"
    "certificates from trusted CAs. The login name selects a role, a role\n"
    "offers a fixed set of verbs (a program and argv template with typed\n"
    "arguments), and every session is recorded in a hash-chained transcript.")
string(JOIN "" CPACK_PACKAGE_DESCRIPTION ${CPACK_PACKAGE_DESCRIPTION})

# CPack stages the absolute /etc/jead destination inside the package
# tree; it never writes to the build host's /etc.
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_CMAKE_PROJECTS
    "${CMAKE_BINARY_DIR};${PROJECT_NAME};ALL;/"
    "${CMAKE_BINARY_DIR};${PROJECT_NAME};deb-conffiles;/")
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# dpkg-shlibdeps adds a dependency for each shared library the binaries
# link (libssh-4, libssl3, libspdlog1.10-fmt9, libfmt9, Boost.Filesystem,
# libtomlplusplus3, libre2-9, libstdc++6, libc6...); tests/packaging_test.sh checks
# that every NEEDED entry is covered. The entries below are what the
# symbols cannot show:
#   libssh-4 (>= 0.10.6): strict key exchange; jead refuses older libssh.
#   openssh-client: ssh-keygen, which postinst runs for the host key.
#   init-system-helpers: deb-systemd-helper and deb-systemd-invoke.
#   systemd-sysusers, systemd-tmpfiles: run by postinst; systemd provides
#     both, and the standalone packages serve hosts without it.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "libssh-4 (>= 0.10.6), openssh-client, init-system-helpers (>= 1.52), systemd | systemd-standalone-sysusers | systemd-sysusers, systemd | systemd-standalone-tmpfiles | systemd-tmpfiles")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${JEAD_PACKAGING_DIR}/etc/debian/conffiles
    ${JEAD_PACKAGING_DIR}/etc/debian/postinst
    ${JEAD_PACKAGING_DIR}/etc/debian/prerm
    ${JEAD_PACKAGING_DIR}/etc/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)

# --- Tests ----------------------------------------------------------------

if(BUILD_TESTING)
  # Builds the .deb, installs it with apt-get, runs the installed jead and
  # purges it. It needs root and exits 77 (skipped) without it.
  add_test(NAME packaging
           COMMAND ${JEAD_PACKAGING_DIR}/tests/packaging_test.sh ${CMAKE_BINARY_DIR})
  set_tests_properties(packaging PROPERTIES TIMEOUT 900 SKIP_RETURN_CODE 77 RUN_SERIAL ON)

  # systemd-analyze verify and the security exposure of jead.service;
  # skipped (77) when systemd-analyze is missing.
  add_test(NAME systemd-units
           COMMAND ${JEAD_PACKAGING_DIR}/scripts/check-systemd --jead $<TARGET_FILE:jead>)
  set_tests_properties(systemd-units PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77)
endif()
