# Installing the ALSA plugin (include()d by alsa-plugin/CMakeLists.txt once
# the target soundcard_alsa_plugin exists):
#
#   - the plugin into alsa-lib's plugin directory for our prefix:
#     pkg-config alsa's libdir with its prefix replaced by ours, plus
#     /alsa-lib (/usr/local/lib/x86_64-linux-gnu/alsa-lib for the default
#     prefix on Debian); -DSC_ALSA_PLUGIN_DIR=... (relative: under the
#     prefix) overrides it;
#   - the config snippet into share/alsa/alsa.conf.d/50-soundcard.conf,
#     written at install time so that its `lib` lines name the plugin under
#     the prefix really installed to (`cmake --install --prefix P` included);
#   - for the prefixes /usr and /usr/local, with no DESTDIR, the symlink
#     /etc/alsa/conf.d/50-soundcard.conf -> that snippet: Debian's alsa-lib
#     reads /etc/alsa/conf.d (/usr/share/alsa/alsa.conf), not
#     /usr/local/share.  Installs to any other prefix, and staged (DESTDIR)
#     installs, never touch /etc.
#
# The plugin's `lib` path in the snippet is absolute, so alsa-lib finds the
# plugin wherever it lands, not only in alsa-lib's own plugin directory.
# CMake 3.25's pkg_get_variable() cannot redefine variables
# (DEFINE_VARIABLES came in 3.28), hence pkg-config run by hand, as in
# systemd/CMakeLists.txt.

if(NOT DEFINED SC_ALSA_PLUGIN_DIR)
  set(SC_ALSA_PLUGIN_DIR "")
  if(PKG_CONFIG_EXECUTABLE)
    execute_process(
      COMMAND ${PKG_CONFIG_EXECUTABLE} --define-variable=prefix=${CMAKE_INSTALL_PREFIX}
              --variable=libdir alsa
      OUTPUT_VARIABLE SC_ALSA_PLUGIN_DIR OUTPUT_STRIP_TRAILING_WHITESPACE
      RESULT_VARIABLE sc_alsa_rc ERROR_QUIET)
    if(NOT sc_alsa_rc EQUAL 0)
      set(SC_ALSA_PLUGIN_DIR "")
    endif()
  endif()
  if(SC_ALSA_PLUGIN_DIR STREQUAL "")
    set(SC_ALSA_PLUGIN_DIR "${CMAKE_INSTALL_LIBDIR}")
  endif()
  set(SC_ALSA_PLUGIN_DIR "${SC_ALSA_PLUGIN_DIR}/alsa-lib")
endif()
# Relative to the prefix when it is under it, so that
# `cmake --install build --prefix DIR` puts the plugin under DIR.
if(IS_ABSOLUTE "${SC_ALSA_PLUGIN_DIR}")
  file(RELATIVE_PATH sc_alsa_rel "${CMAKE_INSTALL_PREFIX}" "${SC_ALSA_PLUGIN_DIR}")
  if(NOT sc_alsa_rel MATCHES "^\\.\\.(/|$)")
    set(SC_ALSA_PLUGIN_DIR "${sc_alsa_rel}")
  endif()
endif()
set(SC_ALSA_CONF_DIR "${CMAKE_INSTALL_DATADIR}/alsa/alsa.conf.d")
message(STATUS "ALSA plugin: ${SC_ALSA_PLUGIN_DIR}, config snippet: ${SC_ALSA_CONF_DIR} "
               "(relative: under the prefix)")
# For tests/install (any directory order): where the two files go.
set_target_properties(soundcard_alsa_plugin PROPERTIES
  SC_INSTALL_DIR "${SC_ALSA_PLUGIN_DIR}" SC_CONF_DIR "${SC_ALSA_CONF_DIR}")

# The installed plugin finds the libsoundcard installed with it, in any
# prefix (ld.so would not search /opt/... or a temp prefix by itself).
if(NOT IS_ABSOLUTE "${SC_ALSA_PLUGIN_DIR}" AND NOT IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  file(RELATIVE_PATH sc_alsa_to_lib "/p/${SC_ALSA_PLUGIN_DIR}" "/p/${CMAKE_INSTALL_LIBDIR}")
  set_target_properties(soundcard_alsa_plugin PROPERTIES INSTALL_RPATH "$ORIGIN/${sc_alsa_to_lib}")
endif()
install(TARGETS soundcard_alsa_plugin LIBRARY DESTINATION ${SC_ALSA_PLUGIN_DIR})

# The snippet, at install time.  CMAKE_INSTALL_PREFIX is then the prefix
# being installed to; file(INSTALL) adds DESTDIR and records the file in
# install_manifest.txt.
set(SC_ALSA_SNIPPET_IN "${CMAKE_CURRENT_LIST_DIR}/50-soundcard.conf.in")
set(SC_ALSA_SNIPPET_TMP "${CMAKE_CURRENT_BINARY_DIR}/install/50-soundcard.conf")
install(CODE "set(SC_ALSA_PLUGIN_FILE \"$<TARGET_FILE_NAME:soundcard_alsa_plugin>\")")
file(CONFIGURE OUTPUT "${CMAKE_CURRENT_BINARY_DIR}/install_snippet.cmake" @ONLY CONTENT [[
# Generated from alsa-plugin/install.cmake: runs at install time.
set(sc_dir "@SC_ALSA_PLUGIN_DIR@")
if(NOT IS_ABSOLUTE "${sc_dir}")
  set(sc_dir "${CMAKE_INSTALL_PREFIX}/${sc_dir}")
endif()
cmake_path(SET PLUGIN_PATH NORMALIZE "${sc_dir}/${SC_ALSA_PLUGIN_FILE}")
configure_file("@SC_ALSA_SNIPPET_IN@" "@SC_ALSA_SNIPPET_TMP@" @ONLY)
cmake_path(SET sc_conf_dir NORMALIZE "${CMAKE_INSTALL_PREFIX}/@SC_ALSA_CONF_DIR@")
file(INSTALL DESTINATION "${sc_conf_dir}" TYPE FILE FILES "@SC_ALSA_SNIPPET_TMP@")

# Where Debian's alsa-lib looks: /etc/alsa/conf.d, only for the system's
# own prefixes and a real (not staged) install.
set(sc_link /etc/alsa/conf.d/50-soundcard.conf)
if("$ENV{DESTDIR}" STREQUAL "" AND CMAKE_INSTALL_PREFIX MATCHES "^/usr(/local)?/*$")
  if(EXISTS "${sc_link}" AND NOT IS_SYMLINK "${sc_link}")
    message(WARNING "${sc_link} is a file of its own; left as it is "
                    "(link it to ${sc_conf_dir}/50-soundcard.conf to use the installed one)")
  else()
    message(STATUS "Installing: ${sc_link} -> ${sc_conf_dir}/50-soundcard.conf")
    file(MAKE_DIRECTORY /etc/alsa/conf.d)
    file(REMOVE "${sc_link}")
    file(CREATE_LINK "${sc_conf_dir}/50-soundcard.conf" "${sc_link}" SYMBOLIC)
    list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${sc_link}")
  endif()
endif()
]])
install(SCRIPT "${CMAKE_CURRENT_BINARY_DIR}/install_snippet.cmake")
