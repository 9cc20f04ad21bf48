# Where `cmake --install` (and so the .deb) puts kvctl on Debian, and how
# CPack packages it: `cpack --config build/CPackConfig.cmake` makes
# kvctl_<version>_<arch>.deb.
include(GNUInstallDirs)
# Installing (and so cpack) packages what is built and builds nothing: the
# package test runs cpack in the middle of the test suite, which must not
# relink the binaries other tests are running. Build first, then install.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

install(TARGETS kvctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# Man pages, compressed as Debian policy asks (gzip -9n: no name or time
# stamp, so the package is reproducible).
file(GLOB MAN_PAGES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/man/*.[1-8])
set(MAN_GZ)
foreach(page ${MAN_PAGES})
  get_filename_component(name ${page} NAME)
  string(REGEX MATCH "[1-8]$" section ${name})
  set(gz ${CMAKE_CURRENT_BINARY_DIR}/man/${name}.gz)
  add_custom_command(OUTPUT ${gz}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/man
    COMMAND gzip -9n -c ${page} > ${gz}
    DEPENDS ${page} VERBATIM)
  list(APPEND MAN_GZ ${gz})
  install(FILES ${gz} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()
add_custom_target(kvctl_man ALL DEPENDS ${MAN_GZ})

# Completions, where each shell looks for vendor completions on Debian.
install(FILES completions/kvctl.bash DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        RENAME kvctl)
install(FILES completions/_kvctl DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)
install(FILES completions/kvctl.fish DESTINATION ${CMAKE_INSTALL_DATADIR}/fish/vendor_completions.d)

# The service: Debian 12 packages put units in /lib/systemd/system.
set(KVCTL_SYSTEMD_UNIT_DIR /lib/systemd/system CACHE PATH "where the systemd unit is installed")
install(FILES packaging/systemd/kvctl.service DESTINATION ${KVCTL_SYSTEMD_UNIT_DIR})
# /etc/kvctl whatever the prefix: it is where kvctl looks for its config
# (lib/config/config.cpp) and what the unit passes to --config.
install(FILES packaging/config.toml DESTINATION /etc/kvctl)
# The README links to docs/ and the changelog: they go with it.
install(FILES README.md CHANGELOG.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs FILES_MATCHING PATTERN "*.md")
install(FILES packaging/config.toml packaging/cron/kvctl-compact packaging/docker/Dockerfile
              packaging/kubernetes/kvctl-file-statefulset.yaml
              packaging/kubernetes/kvctl-postgres-deployment.yaml
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME kvctl)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "kvctl maintainers <kvctl-maintainers@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "durable key-value store with an HTTP API, its client and tools")
set(CPACK_PACKAGE_DESCRIPTION
    "kvctl is a key-value store in one binary. `kvctl serve` keeps every key in memory "
    "and makes every acknowledged write durable in a checksummed, segmented log. "
    "The same binary is the client (put, get, del) and the operator's tools.")
string(JOIN "" CPACK_PACKAGE_DESCRIPTION ${CPACK_PACKAGE_DESCRIPTION})
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION database)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies come from dpkg-shlibdeps on the binary; adduser is
# for the postinst, which creates the kvctl system user.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/postinst
    ${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/prerm
    ${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/postrm
    ${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
include(CPack)
