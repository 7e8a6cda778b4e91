# Install layout and the Debian package (`cpack -G DEB` in the build tree).
#
#   bin/popvault                        the agent
#   lib/popvault/popvault_store_*.so    plugins (DefaultPluginDir(): <bin>/../lib/popvault)
#   lib/systemd/system/popvault.service the unit (config/popvault.service)
#   share/popvault/schemas/             the JSON schemas
#   share/doc/popvault/                 README, ARCHITECTURE, example config
# The package installs under /usr, so the unit's /usr/bin/popvault is right.
install(FILES ${PROJECT_SOURCE_DIR}/config/popvault.service DESTINATION lib/systemd/system)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/schemas/ DESTINATION share/popvault/schemas
        FILES_MATCHING PATTERN "*.json" PATTERN "*.md")
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/docs/ARCHITECTURE.md
              ${PROJECT_SOURCE_DIR}/config/popvault.example.ini
        DESTINATION share/doc/popvault)

set(CPACK_PACKAGE_NAME popvault)
set(CPACK_PACKAGE_VENDOR popvault)
set(CPACK_PACKAGE_CONTACT "popvault maintainers <popvault@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "POP3 mail archiver that never loses a message")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION mail)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # Poco, RocksDB, zstd, OpenSSL from dpkg-shlibdeps
set(CPACK_DEBIAN_PACKAGE_DEPENDS adduser)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/cmake/debian/postinst)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
