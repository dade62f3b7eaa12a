#!/usr/bin/env bash
# install.tree: what `make install` gives a user works from where it lands.
#
#   test_install.sh BUILD_DIR SOURCE_DIR LIBDIR [CC [SANITIZE]]
#
# Installs BUILD_DIR into a temp prefix, checks the files are there (the
# systemd units where the environment says: see CMakeLists.txt), takes the
# C example out of README.md (it must be examples/first_client.c verbatim),
# compiles it through pkg-config (shared and static) and through the CMake
# package, and runs those programs against the installed soundcardd.
# LIBDIR is CMake's CMAKE_INSTALL_LIBDIR (lib, or lib/x86_64-linux-gnu).
# CC and SANITIZE come from the build so an ASan build links the same runtime.
# pysoundcard: installed in SC_PYTHON_SITE under the prefix, a directory
# SC_PYTHON searches when the prefix is /usr or /usr/local, importable from
# the temp prefix (PYTHONPATH) with the installed library, and playing
# through the installed daemon (not with SANITIZE: python cannot dlopen a
# sanitized libsoundcard).
# The ALSA plugin: installed in SC_ALSA_PLUGIN_DIR (alsa-lib's plugin dir for
# the prefix, as pkg-config alsa says), its config snippet in SC_ALSA_CONF_DIR
# naming the plugin under the temp prefix, /etc left alone (a temp prefix
# gets no /etc/alsa/conf.d link); then `aplay -D soundcard` and `arecord -D
# soundcard` through the installed daemon with an ~/.asoundrc that includes
# the installed snippet (not with SANITIZE: aplay cannot dlopen a sanitized
# plugin).
set -uo pipefail

[ $# -ge 3 ] || { echo "usage: $0 BUILD_DIR SOURCE_DIR LIBDIR [CC [SANITIZE]]" >&2; exit 2; }
BUILD=$(cd "$1" && pwd) SRC=$(cd "$2" && pwd) LIBDIR=$3 CC=${4:-cc} SANITIZE=${5:-}
SANFLAGS=${SANITIZE:+-fsanitize=$SANITIZE}

passed=0 failed=0
ok()   { passed=$((passed + 1)); echo "ok   $*"; }
bad()  { failed=$((failed + 1)); echo "FAIL $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }   # WHAT CMD...
show() { sed 's/^/     | /' "$@"; }
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]; exit $?; }

T=$(mktemp -d "${TMPDIR:-/tmp}/sc-install.XXXXXX") || exit 2
P=$T/prefix
daemon='' notifier=''
# shellcheck disable=SC2317  # run by the trap
cleanup() {
    local p
    for p in $daemon $notifier; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- 1. install, and the files a user needs -------------------------------
etc_link=/etc/alsa/conf.d/50-soundcard.conf
etc_state() { if [ -e "$etc_link" ] || [ -L "$etc_link" ]; then ls -l --time-style=+%s.%N "$etc_link"; else echo absent; fi; }
etc_before=$(etc_state)
if cmake --install "$BUILD" --prefix "$P" >"$T/install.log" 2>&1; then
    ok "cmake --install $BUILD --prefix <tmp>"
else
    bad "cmake --install failed:"; show "$T/install.log"; finish
fi
for f in bin/soundcardd bin/soundcard "$LIBDIR/libsoundcard.so" "$LIBDIR/libsoundcard.a" \
         include/soundcard/soundcard.h "$LIBDIR/pkgconfig/soundcard.pc" \
         "$LIBDIR/cmake/soundcard/soundcardConfig.cmake"; do
    check "installed: $f" test -e "$P/$f"
done
# The service files: the environment says where (tests/install/CMakeLists.txt);
# a relative dir is under the prefix.
for v in SC_SYSTEMD_USER_UNIT_DIR SC_SYSTEMD_SYSTEM_UNIT_DIR SC_SYSUSERS_DIR SC_DOCDIR; do
    [ -n "${!v:-}" ] || bad "\$$v is not set (tests/install/CMakeLists.txt sets it)"
done
under() { case $1 in /*) echo "$1" ;; *) echo "$P/$1" ;; esac; }
for f in "$(under "${SC_SYSTEMD_USER_UNIT_DIR:-}")"/soundcardd.{service,socket} \
         "$(under "${SC_SYSTEMD_SYSTEM_UNIT_DIR:-}")"/soundcardd.{service,socket} \
         "$(under "${SC_SYSUSERS_DIR:-}")/soundcard.conf" \
         "$(under "${SC_DOCDIR:-}")"/{service.md,alsa.md,reliability.md,soundcardd.json.example}; do
    check "installed: ${f#"$P"/}" test -f "$f"
done
# pysoundcard, where python/CMakeLists.txt says (empty: no Python 3 there).
PYSITE=${SC_PYTHON_SITE:-} PYTHON=${SC_PYTHON:-/usr/bin/python3}
if [ -n "$PYSITE" ]; then
    check "installed: $PYSITE/pysoundcard/__init__.py" test -f "$P/$PYSITE/pysoundcard/__init__.py"
    pyfiles() { (cd "$1" && find . -name '*.py' -not -path '*/__pycache__/*' | sort); }
    check "installed: every .py of python/pysoundcard" \
        diff <(pyfiles "$SRC/python/pysoundcard") <(pyfiles "$P/$PYSITE/pysoundcard")
    check "no __pycache__ or .pyc installed" \
        test -z "$(find "$P/$PYSITE" \( -name __pycache__ -o -name '*.pyc' \) -print -quit)"
    # The directory `make install` (prefix SC_INSTALL_PREFIX) uses is one the
    # interpreter searches, for the prefixes it has site dirs for.
    case ${SC_INSTALL_PREFIX:-} in
    /usr|/usr/local)
        # shellcheck disable=SC2016
        check "$PYTHON searches $SC_INSTALL_PREFIX/$PYSITE (make install's prefix)" \
            "$PYTHON" -c 'import sys; sys.exit(sys.argv[1] not in sys.path)' "$SC_INSTALL_PREFIX/$PYSITE" ;;
    esac
else
    echo "skip pysoundcard: SC_PYTHON_SITE is empty (no $PYTHON when configured)"
fi
# The ALSA plugin and its config snippet (alsa-plugin/install.cmake).
ALSA_PLUGIN=${SC_ALSA_PLUGIN_FILE:-libasound_module_pcm_soundcard.so}
ALSA_SO=$(under "${SC_ALSA_PLUGIN_DIR:-}")/$ALSA_PLUGIN
ALSA_CONF=$(under "${SC_ALSA_CONF_DIR:-}")/50-soundcard.conf
for v in SC_ALSA_PLUGIN_DIR SC_ALSA_CONF_DIR; do
    [ -n "${!v:-}" ] || bad "\$$v is not set (tests/install/CMakeLists.txt sets it)"
done
check "installed: ${ALSA_SO#"$P"/}" test -f "$ALSA_SO"
check "installed: ${ALSA_CONF#"$P"/}" test -f "$ALSA_CONF"
alsa_libdir=$(pkg-config --define-variable=prefix="$P" --variable=libdir alsa 2>&1)
check "the plugin is in alsa-lib's plugin dir for the prefix (pkg-config alsa: $alsa_libdir/alsa-lib)" \
    test "$(realpath -m "$alsa_libdir/alsa-lib")" = "$(realpath -m "$(dirname "$ALSA_SO")")"
check "the snippet is at share/alsa/alsa.conf.d/50-soundcard.conf" test "$ALSA_CONF" = "$P/share/alsa/alsa.conf.d/50-soundcard.conf"
libs=$(grep -E '^[[:space:]]*lib[[:space:]]' "$ALSA_CONF" 2>/dev/null | awk '{ print $2 }' | tr -d '"' | sort -u)
check "the snippet's pcm_type and ctl_type lib name the installed plugin ($libs)" \
    test "$(grep -cE '^[[:space:]]*lib[[:space:]]' "$ALSA_CONF" 2>/dev/null)" -eq 2 -a "$libs" = "$ALSA_SO"
for def in 'pcm_type.soundcard' 'ctl_type.soundcard' 'pcm.soundcard' 'ctl.soundcard'; do
    check "the snippet defines $def" grep -q "^${def//./[.]}[[:space:]]*[{]" "$ALSA_CONF"
done
plugin_lib=$(ldd "$ALSA_SO" 2>/dev/null | awk '/libsoundcard/ { print $3 }')
check "the installed plugin loads the prefix's libsoundcard without LD_LIBRARY_PATH ($plugin_lib)" \
    test "$(realpath -m "$plugin_lib")" = "$(realpath "$P/$LIBDIR/libsoundcard.so.0")"
etc_after=$(etc_state)
check "/etc untouched by an install to a temp prefix ($etc_link: $etc_after)" test "$etc_before" = "$etc_after"
found=$(cd "$P" && find . -name libsoundcard.so -printf '%h\n')
check "find puts libsoundcard.so in GNUInstallDirs' libdir ($LIBDIR), and only there" \
    test "$found" = "./$LIBDIR"

# ---- 2. the README's example is examples/first_client.c -------------------
# The first ```c block after the first heading that says "first client".
awk 'tolower($0) ~ /^#+ .*first client/ { h = 1; next }
     h && !in_block && /^```c[[:space:]]*$/ { in_block = 1; next }
     in_block && /^```/ { exit }
     in_block { print }' "$SRC/README.md" >"$T/first_client.c"
check "README.md has a \`\`\`c block under a 'first client' heading" test -s "$T/first_client.c"
if diff -u "$SRC/examples/first_client.c" "$T/first_client.c" >"$T/readme.diff"; then
    ok "README.md's block is examples/first_client.c, byte for byte"
else
    bad "README.md's block differs from examples/first_client.c:"; show "$T/readme.diff"
fi

# ---- 3. build the example three ways --------------------------------------
export PKG_CONFIG_PATH="$P/$LIBDIR/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
pcdir=$(pkg-config --variable=libdir soundcard 2>&1)
check "pkg-config's libdir is the installed one (not the configure-time prefix): $pcdir" \
    test "$(realpath -m "$pcdir")" = "$(realpath "$P/$LIBDIR")"
build() {   # NAME COMMAND...: compile; log on failure
    if "${@:2}" >"$T/$1.log" 2>&1; then ok "build $1: ${*:2}"; else bad "build $1: ${*:2}"; show "$T/$1.log"; fi
}
# shellcheck disable=SC2046,SC2086  # CC, flags and pkg-config output split into words
build shared $CC $SANFLAGS -o "$T/first_shared" "$T/first_client.c" $(pkg-config --cflags --libs soundcard) -lm
# --static gives the private dependencies; -l:libsoundcard.a makes the linker
# take the archive although the .so sits next to it.
static_libs=$(pkg-config --static --libs soundcard | sed 's/-lsoundcard\b/-l:libsoundcard.a/')
# shellcheck disable=SC2046,SC2086
build static $CC $SANFLAGS -o "$T/first_static" "$T/first_client.c" $(pkg-config --cflags soundcard) $static_libs -lm
if [ -x "$T/first_static" ]; then
    check "the static build needs no libsoundcard.so" \
        bash -c "! readelf -d '$T/first_static' | grep -q 'NEEDED.*libsoundcard'"
fi
mkdir -p "$T/consumer"
cp "$T/first_client.c" "$T/consumer/"
cat >"$T/consumer/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.18)
project(consumer C)
find_package(soundcard 0.1 REQUIRED)
add_executable(x first_client.c)
target_link_libraries(x soundcard::soundcard m)
add_executable(x_static first_client.c)
target_link_libraries(x_static soundcard::soundcard_static m)
EOF
build cmake-configure cmake -S "$T/consumer" -B "$T/consumer/build" -DCMAKE_PREFIX_PATH="$P" \
    -DCMAKE_C_COMPILER="$CC" -DCMAKE_C_FLAGS="$SANFLAGS" -DCMAKE_EXE_LINKER_FLAGS="$SANFLAGS"
build cmake-build cmake --build "$T/consumer/build"

# ---- 4. run them against the installed daemon ------------------------------
# Ready means its sd_notify READY=1, read from our own datagram socket.
command -v socat >/dev/null || { bad "socat is needed (scripts/deps.sh installs it)"; finish; }
mkfifo "$T/notify.fifo"
exec 3<>"$T/notify.fifo"
socat -u UNIX-RECV:"$T/notify" STDOUT >"$T/notify.fifo" 2>"$T/socat.log" & notifier=$!
for ((i = 0; i < 250; i++)); do [ -S "$T/notify" ] && break; sleep 0.02; done   # socat is listening
NOTIFY_SOCKET=$T/notify "$P/bin/soundcardd" --backend dummy --rate 48000 --socket "$T/socket" --capture sine:700 \
    2>"$T/soundcardd.log" & daemon=$!
ready=
end=$((SECONDS + 10))
while [ -z "$ready" ] && [ $SECONDS -lt $end ] && kill -0 "$daemon" 2>/dev/null; do
    line=
    IFS= read -r -t 0.2 line <&3
    [ "$line" = READY=1 ] && ready=1
done
kill "$notifier"; wait "$notifier" 2>/dev/null; notifier=
if [ -n "$ready" ]; then
    ok "installed soundcardd is ready (sd_notify READY=1)"
else
    bad "installed soundcardd did not get ready in 10 s:"; show "$T/soundcardd.log"; finish
fi
export SOUNDCARD_SOCKET=$T/socket
# Every client here plays at 50 ms or more (SOUNDCARD_LATENCY is the
# library's floor for every stream), as the Python suite does: this test is
# about what was installed, not about latency, and at the lowest latency
# one stall of this machine is an underrun (a CI TSan run: the first
# program, 4 of them).
export SOUNDCARD_LATENCY=0.05
run() {     # NAME PROGRAM [ENV...]: exit 0 and the stats line of one clean second
    local name=$1 prog=$2 rc; shift 2
    [ -x "$prog" ] || { bad "run $name: not built"; return; }
    env "$@" timeout 30 "$prog" >"$T/$name.out" 2>&1; rc=$?
    if [ $rc -eq 0 ] && grep -qx 'first-client: frames=48000 underruns=0' "$T/$name.out"; then
        ok "run $name: $(cat "$T/$name.out")"
    else
        bad "run $name: exit $rc, expected 'first-client: frames=48000 underruns=0':"; show "$T/$name.out"
    fi
}
resolved=$(LD_LIBRARY_PATH="$P/$LIBDIR" ldd "$T/first_shared" 2>/dev/null | awk '/libsoundcard/ { print $3 }')
check "the shared build loads the installed library ($resolved)" \
    test "$(realpath -m "$resolved")" = "$(realpath "$P/$LIBDIR/libsoundcard.so.0")"
run shared "$T/first_shared" LD_LIBRARY_PATH="$P/$LIBDIR"
run static "$T/first_static"
run cmake-shared "$T/consumer/build/x"          # CMake's build RPATH finds the library
run cmake-static "$T/consumer/build/x_static"

# pysoundcard from the temp prefix: imported from there, with the installed
# library, one second through the installed daemon.
if [ -n "$PYSITE" ] && [ -z "$SANITIZE" ]; then
    pyenv=(PYTHONPATH="$P/$PYSITE" PYTHONDONTWRITEBYTECODE=1)
    # shellcheck disable=SC2016
    where=$(env "${pyenv[@]}" SOUNDCARD_LIBRARY="$P/$LIBDIR/libsoundcard.so.0" "$PYTHON" -c '
import pysoundcard
print(pysoundcard.__file__)
print(*[l.split()[-1] for l in open("/proc/self/maps") if "libsoundcard" in l][:1])' 2>&1)
    if [ "$(sed -n 1p <<<"$where")" = "$P/$PYSITE/pysoundcard/__init__.py" ] &&
       [ "$(realpath -m "$(sed -n 2p <<<"$where")")" = "$(realpath "$P/$LIBDIR/libsoundcard.so.0.1.0")" ]; then
        ok "import pysoundcard from the prefix, with its libsoundcard (SOUNDCARD_LIBRARY)"
    else
        bad "import pysoundcard from the prefix:"; show <<<"$where"
    fi
    # Without SOUNDCARD_LIBRARY, where the loader knows no libsoundcard.so.0,
    # the package finds the one installed beside it (PREFIX/LIBDIR).
    if ! ldconfig -p 2>/dev/null | grep -q 'libsoundcard\.so\.0 '; then
        # shellcheck disable=SC2016
        where=$(env -u SOUNDCARD_LIBRARY -u LD_LIBRARY_PATH "${pyenv[@]}" "$PYTHON" -c '
import pysoundcard
print(*[l.split()[-1] for l in open("/proc/self/maps") if "libsoundcard" in l][:1])' 2>&1)
        check "without SOUNDCARD_LIBRARY pysoundcard loads the prefix's libsoundcard ($where)" \
            test "$(realpath -m "$where")" = "$(realpath "$P/$LIBDIR/libsoundcard.so.0.1.0")"
    fi
    # At 50 ms (SOUNDCARD_LATENCY, above): a CI run saw underruns=1 here at
    # the device's low latency, about 11 ms (docs/timing.md).
    # shellcheck disable=SC2016
    env "${pyenv[@]}" SOUNDCARD_LIBRARY="$P/$LIBDIR/libsoundcard.so.0" timeout 30 "$PYTHON" -c '
import numpy as np
from pysoundcard import OutputStream
s = OutputStream(samplerate=48000, channels=2)
s.start()
s.write(0.2 * np.sin(2 * np.pi * 440 * np.arange(48000) / 48000))
s.stop()
st = s.stats()
s.close()
print("pysoundcard: frames=%d underruns=%d" % (st["frames"], st["underruns"]))' >"$T/python.out" 2>&1
    if grep -qx 'pysoundcard: frames=48000 underruns=0' "$T/python.out"; then
        ok "pysoundcard from the prefix plays through the installed daemon: $(cat "$T/python.out")"
    else
        bad "pysoundcard from the prefix, expected 'pysoundcard: frames=48000 underruns=0':"; show "$T/python.out"
    fi
fi

# ALSA programs through the installed plugin: an ~/.asoundrc that includes
# the installed snippet (what alsa-lib reads from /etc/alsa/conf.d after a
# real `make install`), the daemon found by the default rule
# ($SOUNDCARD_SOCKET).  LD_DEBUG=files shows which plugin and library load.
if [ -z "$SANITIZE" ] && command -v aplay >/dev/null && command -v sox >/dev/null; then
    mkdir -p "$T/home"
    printf '<%s>\n' "$ALSA_CONF" >"$T/home/.asoundrc"
    alsaenv=(-u ALSA_CONFIG_PATH -u LD_LIBRARY_PATH HOME="$T/home" XDG_CONFIG_HOME="$T/home/.config")
    if env "${alsaenv[@]}" aplay -L 2>&1 | grep -qx soundcard; then
        ok "aplay -L lists soundcard (the installed snippet's hint)"
    else
        bad "aplay -L does not list soundcard:"; env "${alsaenv[@]}" aplay -L 2>&1 | show
    fi
    sox -n -r 44100 -b 16 -c 2 "$T/tone.wav" synth 2 sine 440 vol 0.5 2>"$T/sox.log" || { bad "sox:"; show "$T/sox.log"; }
    env "${alsaenv[@]}" LD_DEBUG=files timeout 20 aplay -D soundcard "$T/tone.wav" >"$T/aplay.out" 2>&1 & aplay_pid=$!
    seen=
    end=$((SECONDS + 10))
    while [ -z "$seen" ] && [ $SECONDS -lt $end ] && kill -0 "$aplay_pid" 2>/dev/null; do
        # its stream, as the daemon lists it
        if LD_LIBRARY_PATH="$P/$LIBDIR" "$P/bin/soundcard" status 2>/dev/null | grep -qE '^ +[0-9]+ +[0-9]+ +alsa +alsa +running'; then
            seen=1
        else
            sleep 0.02
        fi
    done
    wait "$aplay_pid"; rc=$?
    if [ $rc -eq 0 ] && [ -n "$seen" ]; then
        ok "aplay -D soundcard played through the installed daemon (its stream 'alsa' ran, exit 0)"
    else
        bad "aplay -D soundcard: exit $rc, stream seen running: ${seen:-no}:"; grep -vE '^ *[0-9]+:' "$T/aplay.out" | show
    fi
    # Every object aplay initialised, by real path.
    inits=$(sed -n 's/^ *[0-9]*:[[:space:]]*calling init: //p' "$T/aplay.out" | xargs -r realpath -m)
    check "aplay loaded the installed plugin ($ALSA_SO)" grep -qxF "$(realpath "$ALSA_SO")" <<<"$inits"
    check "the plugin loaded the installed libsoundcard ($P/$LIBDIR)" \
        grep -qxF "$(realpath "$P/$LIBDIR/libsoundcard.so.0")" <<<"$inits"
    # Capture: the daemon's input is 700 Hz at 0.5 (--capture sine:700).
    if env "${alsaenv[@]}" timeout 20 arecord -q -D soundcard -f S16_LE -r 44100 -c 2 -d 1 "$T/rec.wav" >"$T/arecord.out" 2>&1 &&
       "$BUILD/bin/wavcheck" "$T/rec.wav" --from 0.05 --expect 700:0.5 >>"$T/arecord.out" 2>&1; then
        ok "arecord -D soundcard -f S16_LE -r 44100 -c 2 recorded the daemon's 700 Hz at 0.5"
    else
        bad "arecord -D soundcard:"; show "$T/arecord.out"
    fi
else
    echo "skip ALSA programs: ${SANITIZE:+sanitized build}${SANITIZE:-no aplay or sox}"
fi

kill -TERM "$daemon"
for ((i = 0; i < 500; i++)); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.02; done
if kill -0 "$daemon" 2>/dev/null; then
    bad "soundcardd still running 10 s after SIGTERM"
else
    wait "$daemon"; rc=$?; daemon=
    if [ $rc -eq 0 ]; then ok "soundcardd stopped on SIGTERM, exit 0"; else bad "soundcardd exit $rc:"; show "$T/soundcardd.log"; fi
fi
finish
