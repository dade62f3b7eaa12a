#!/usr/bin/env bash
# service.units: the systemd units as `make install` installs them are ones
# systemd takes without a single complaint, and they say what they must.
#
#   test_units.sh UNIT_DIR BINDIR DAEMON SOURCE_DIR
#
# UNIT_DIR: the configured units (build/systemd: user/ and system/).
# BINDIR:   CMAKE_INSTALL_FULL_BINDIR, which their ExecStart= must name.
# DAEMON:   the built soundcardd; `systemd-analyze verify` insists that
#           ExecStart's program exists, so it checks copies of the units
#           whose ExecStart names this one instead (nothing else differs).
# SOURCE_DIR: for systemd/soundcard.sysusers.conf, docs/soundcardd.8 (the
#           units' Documentation=, which verify looks up with man) and
#           docs/soundcardd.json.example (which the daemon must take).
#
# verify often exits 0 while it prints "Unknown key ..." or "... ignoring",
# so every line it prints about our units fails the test.  Exit 77 (skipped)
# only when systemd-analyze is missing (scripts/deps.sh installs systemd).
set -uo pipefail

[ $# -eq 4 ] || { echo "usage: $0 UNIT_DIR BINDIR DAEMON SOURCE_DIR" >&2; exit 2; }
UNITS=$1 BINDIR=$2 DAEMON=$3 SRC=$4
SYSUSERS=$SRC/systemd/soundcard.sysusers.conf EXAMPLE=$SRC/docs/soundcardd.json.example

command -v systemd-analyze >/dev/null || { echo "SKIP: no systemd-analyze (package systemd)"; exit 77; }

passed=0 failed=0
ok()   { passed=$((passed + 1)); echo "ok   $*"; }
bad()  { failed=$((failed + 1)); echo "FAIL $*"; }
show() { sed 's/^/     | /' "$@"; }
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]; exit $?; }

T=$(mktemp -d "${TMPDIR:-/tmp}/sc-units.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT TERM

US=$UNITS/user/soundcardd.service  UK=$UNITS/user/soundcardd.socket
SS=$UNITS/system/soundcardd.service SK=$UNITS/system/soundcardd.socket
for f in "$US" "$UK" "$SS" "$SK" "$SYSUSERS" "$EXAMPLE" "$SRC/docs/soundcardd.8"; do
    [ -f "$f" ] || { bad "missing: $f"; finish; }
done
[ -x "$DAEMON" ] || { bad "not built: $DAEMON"; finish; }

# ---- 1. what the units must say --------------------------------------------
# has FILE LINE: the file has exactly this line.  lacks FILE KEY: no KEY= line.
has()   { if grep -qxF -- "$2" "$1"; then ok "${1#"$UNITS"/}: $2"; else bad "${1#"$UNITS"/}: no line '$2'"; fi; }
lacks() { if grep -q "^$2=" "$1"; then bad "${1#"$UNITS"/}: sets $2= ($(grep "^$2=" "$1"))"; else ok "${1#"$UNITS"/}: no $2="; fi; }

# The sockets: where clients look for them, and who may open them.
has "$UK" 'ListenStream=%t/soundcard/socket'
has "$UK" 'SocketMode=0600'
has "$UK" 'DirectoryMode=0700'
has "$UK" 'WantedBy=sockets.target'
has "$SK" 'ListenStream=/run/soundcard/socket'
has "$SK" 'SocketUser=soundcard'
has "$SK" 'SocketGroup=audio'
has "$SK" 'SocketMode=0660'
has "$SK" 'DirectoryMode=0755'
has "$SK" 'WantedBy=sockets.target'

# The services: the installed daemon, flags only where the config file must
# not decide (the user instance has none: flags would override the file).
has "$US" "ExecStart=$BINDIR/soundcardd"
has "$SS" "ExecStart=$BINDIR/soundcardd --socket /run/soundcard/socket --socket-group audio --allow-gid audio"
for s in "$US" "$SS"; do
    has "$s" 'Type=notify'
    # shellcheck disable=SC2016  # the unit's own $MAINPID, literally
    has "$s" 'ExecReload=/bin/kill -HUP $MAINPID'
    has "$s" 'WatchdogSec=10s'
    has "$s" 'Restart=on-failure'
    has "$s" 'Requires=soundcardd.socket'
    has "$s" 'After=soundcardd.socket'
    has "$s" 'Also=soundcardd.socket'
    # Realtime: the limit must allow the daemon's default priority (70).
    rtprio=$(sed -n 's/^LimitRTPRIO=//p' "$s")
    if [[ $rtprio =~ ^[0-9]+$ ]] && [ "$rtprio" -ge 70 ] && [ "$rtprio" -le 99 ]; then
        ok "${s#"$UNITS"/}: LimitRTPRIO=$rtprio allows --realtime 70"
    else
        bad "${s#"$UNITS"/}: LimitRTPRIO='$rtprio' (want 70..99: the default --realtime is 70)"
    fi
    if grep -q '^LimitMEMLOCK=.' "$s"; then ok "${s#"$UNITS"/}: $(grep '^LimitMEMLOCK=' "$s")"; else bad "${s#"$UNITS"/}: no LimitMEMLOCK="; fi
    # Sandboxing that would break audio.
    lacks "$s" RestrictRealtime
    lacks "$s" PrivateDevices
    lacks "$s" PrivateUsers
    lacks "$s" DynamicUser
    lacks "$s" ProcSubset
done
has "$SS" 'User=soundcard'
has "$SS" 'Group=audio'
has "$SS" 'SupplementaryGroups=audio'
has "$SS" 'RuntimeDirectory=soundcard'
has "$SS" 'RuntimeDirectoryPreserve=yes'
has "$SS" 'DevicePolicy=closed'
has "$SS" 'DeviceAllow=char-alsa rw'
has "$SS" 'CapabilityBoundingSet=CAP_SYS_NICE'
for line in ProtectSystem=strict ProtectHome=yes PrivateTmp=yes NoNewPrivileges=yes \
            RestrictAddressFamilies=AF_UNIX MemoryDenyWriteExecute=yes; do
    has "$SS" "$line"
done
lacks "$SS" PrivateIPC
lacks "$SS" RemoveIPC
if grep -q '@[A-Z_]*@' "$US" "$UK" "$SS" "$SK"; then
    bad "a @VAR@ was left unconfigured:"; grep -n '@[A-Z_]*@' "$US" "$UK" "$SS" "$SK" | show
else
    ok "every @VAR@ configured"
fi

# ---- 2. systemd-analyze verify ---------------------------------------------
# Copies whose ExecStart is the built daemon, under the same file names.
for kind in user system; do
    mkdir -p "$T/$kind"
    for u in soundcardd.service soundcardd.socket; do
        sed "s|^ExecStart=$BINDIR/soundcardd|ExecStart=$DAEMON|" "$UNITS/$kind/$u" >"$T/$kind/$u"
    done
done
# verify: KIND LABEL ARGS...: exit 0 and not one line that names our units.
verify() {
    local kind=$1 label=$2 rc; shift 2
    (cd "$T/$kind" && "$@" verify ./soundcardd.socket ./soundcardd.service) >"$T/$kind.log" 2>&1; rc=$?
    local ours; ours=$(grep -ci 'soundcard' "$T/$kind.log")
    if [ $rc -eq 0 ] && [ "$ours" -eq 0 ]; then
        ok "$label: no complaint"
    else
        bad "$label: exit $rc, $ours line(s) about our units:"
    fi
    [ -s "$T/$kind.log" ] && show "$T/$kind.log"
}
# verify runs `man` on Documentation=man:soundcardd(8): find it in the source.
mkdir -p "$T/man/man8"
ln -s "$SRC/docs/soundcardd.8" "$T/man/man8/soundcardd.8"
command -v man >/dev/null || bad "no man (package man-db): verify cannot check Documentation=man:soundcardd(8)"
verify system "systemd-analyze verify system/soundcardd.{socket,service}" \
    env MANPATH="$T/man" systemd-analyze
# A user manager needs $XDG_RUNTIME_DIR (%t); no session here, so a temp one.
mkdir -m 0700 "$T/runtime"
verify user "systemd-analyze --user verify user/soundcardd.{socket,service}" \
    env MANPATH="$T/man" XDG_RUNTIME_DIR="$T/runtime" systemd-analyze --user

# ---- 3. sysusers.d: the user, and its membership of audio ------------------
if command -v systemd-sysusers >/dev/null; then
    mkdir -p "$T/root/etc"
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$T/root/etc/passwd"
    printf 'root:x:0:\naudio:x:29:\n' >"$T/root/etc/group"
    if systemd-sysusers --root="$T/root" "$SYSUSERS" >"$T/sysusers.log" 2>&1 &&
       ! grep -q "${SYSUSERS##*/}" "$T/sysusers.log"; then
        ok "systemd-sysusers takes ${SYSUSERS##*/}"
    else
        bad "systemd-sysusers on ${SYSUSERS##*/}:"; show "$T/sysusers.log"
    fi
    if grep -q '^soundcard:x:[0-9]*:[0-9]*:[^:]*:[^:]*:[^:]*nologin$' "$T/root/etc/passwd" &&
       grep -qx 'audio:x:29:soundcard' "$T/root/etc/group"; then
        ok "it creates system user soundcard (no login) in group audio"
    else
        bad "no system user soundcard in group audio:"; show "$T/root/etc/passwd" "$T/root/etc/group"
    fi
else
    bad "no systemd-sysusers (package systemd)"
fi

# ---- 4. the daemon takes the units' command lines and the example config ----
# soundcardd parses everything (config file first, then the flags in order)
# before it acts on --help, so `... --help` exits 0 only when all of it is
# valid.  Its own config lookup is pointed at an empty dir and file, so a
# config file on this machine cannot get in the way.
printf '{}\n' >"$T/empty.json"
mkdir -p "$T/home"
takes() {   # LABEL ARGS...
    local label=$1; shift
    if env HOME="$T/home" XDG_CONFIG_HOME="$T/home" "$DAEMON" "$@" --help >"$T/takes.log" 2>&1; then
        ok "soundcardd takes $label"
    else
        bad "soundcardd refuses $label:"; show "$T/takes.log"
    fi
}
for s in "$US" "$SS"; do
    read -ra cmd <<<"$(sed -n "s|^ExecStart=$BINDIR/soundcardd||p" "$s")"
    takes "the flags of ${s#"$UNITS"/} (${cmd[*]:-none})" --config "$T/empty.json" "${cmd[@]}"
done
takes "${EXAMPLE##*/} as its config file" --config "$EXAMPLE"
keys=$(grep -o '^ *"[a-z-]*":' "$EXAMPLE" | tr -d ' ":' | tr '\n' ' ')
if [ "$(echo "$keys" | wc -w)" -ge 10 ]; then ok "${EXAMPLE##*/} sets: $keys"; else bad "${EXAMPLE##*/} sets few keys: $keys"; fi
finish
