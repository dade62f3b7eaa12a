#!/usr/bin/env bash
# make demo: one soundcardd on the dummy card, three client processes sharing
# it at once (two tones and a recorder), then an analysis of what the card
# played and what the recorder got.
#
#   ./scripts/demo.sh BUILD_DIR        (make demo passes build/)
#
# No sleep-and-hope: every wait is for a fact, with a deadline: READY=1 from
# the daemon's sd_notify (read from our own datagram socket), a condition in
# `soundcard status`, a child's exit.  Only the processes this script started
# are ever signalled, by PID.  The WAV files stay in the temp dir it prints;
# exit status 0 means every check passed.
# shellcheck disable=SC2001  # sed reads better than ${var//...} for these rewrites
set -uo pipefail

die() { echo "demo: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: $0 BUILD_DIR"
BIN=$(cd "$1/bin" 2>/dev/null && pwd) || die "$1/bin: no such directory (run make build)"
for tool in soundcardd soundcard wavcheck; do
    [ -x "$BIN/$tool" ] || die "$BIN/$tool is missing (run make build)"
done
command -v socat >/dev/null || die "socat is needed to receive the daemon's sd_notify (run make deps)"

DIR=$(mktemp -d "${TMPDIR:-/tmp}/soundcard-demo.XXXXXX") || die "cannot make a temp dir"
pids=()          # every child this script started and has not reaped yet
failures=0

alive() { kill -0 "$1" 2>/dev/null; }
now_ms() { local t=${EPOCHREALTIME//[^0-9]/}; echo $((t / 1000)); }
forget() { local p keep=(); for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done; pids=("${keep[@]}"); }

# Reap the given children, waiting at most $1 seconds in all; their exit codes
# land in status[PID].  Returns 1 on timeout (the rest keep running).  Checks
# every 20 ms: bash 5.2's `wait -n` loses track of children now and then.
declare -A status
reap() {
    local end=$(( $(now_ms) + $1 * 1000 )) p running; shift
    while :; do
        running=0
        for p in "$@"; do
            [ -n "${status[$p]:-}" ] && continue
            if alive "$p"; then running=1; else wait "$p"; status[$p]=$?; forget "$p"; fi
        done
        [ $running -eq 0 ] && return 0
        [ "$(now_ms)" -lt "$end" ] || return 1
        sleep 0.02
    done
}

# On any exit: SIGTERM whatever we started that still runs, give it 5 s, then
# SIGKILL.
cleanup() {
    local rc=$? p
    [ "$BASHPID" = "$$" ] || return 0      # never from a subshell
    trap - EXIT INT TERM
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    [ ${#pids[@]} -eq 0 ] || reap 5 "${pids[@]}" || for p in "${pids[@]}"; do kill -KILL "$p"; wait "$p"; done
    exec 3<&- 2>/dev/null
    rm -f "$DIR/notify" "$DIR/notify.fifo"
    exit "$rc"
}
trap cleanup EXIT
trap '[ "$BASHPID" = "$$" ] && { echo; echo "demo: interrupted" >&2; exit 130; }' INT
trap '[ "$BASHPID" = "$$" ] && exit 143' TERM

# Run "$@" every 50 ms until it succeeds, for at most $1 seconds; stop early if
# process $2 (the one that has to make it true) has exited.
poll() {
    local end=$(( $(now_ms) + $1 * 1000 )) watch=$2; shift 2
    until "$@"; do
        { alive "$watch" && [ "$(now_ms)" -lt "$end" ]; } || return 1
        sleep 0.05
    done
}

echo "== soundcard demo: one daemon, three clients, one card =="
# ---- the daemon, and its READY=1 -----------------------------------------
mkfifo "$DIR/notify.fifo"
exec 3<>"$DIR/notify.fifo"
socat -u UNIX-RECV:"$DIR/notify" STDOUT >"$DIR/notify.fifo" 2>"$DIR/socat.log" & notifier=$!
pids+=("$notifier")
poll 5 "$notifier" test -S "$DIR/notify" || die "socat could not listen on $DIR/notify: $(cat "$DIR/socat.log")"

NOTIFY_SOCKET="$DIR/notify" "$BIN/soundcardd" --backend dummy --socket "$DIR/socket" \
    --tap "$DIR/tap.wav" --capture sine:700 2>"$DIR/soundcardd.log" & daemon=$!
pids+=("$daemon")
ready='' card=''
end=$(( $(now_ms) + 10000 ))
while [ -z "$ready" ] && [ "$(now_ms)" -lt "$end" ] && alive "$daemon"; do
    line=
    IFS= read -r -t 0.2 line <&3        # a datagram without a final \n comes back on timeout
    case $line in
        READY=1) ready=1 ;;
        STATUS=*) card=${line#STATUS=} ;;
    esac
done
line=; IFS= read -r -t 0.1 line <&3    # STATUS= follows READY=1 in the same datagram
case $line in STATUS=*) card=${line#STATUS=} ;; esac
kill "$notifier"; reap 5 "$notifier"; exec 3<&-; rm -f "$DIR/notify" "$DIR/notify.fifo"
if [ -z "$ready" ]; then
    sed 's/^/  | /' "$DIR/soundcardd.log" >&2
    alive "$daemon" && die "soundcardd did not say READY=1 within 10 s"
    reap 5 "$daemon"; die "soundcardd exited (status ${status[$daemon]:-?}) before it was ready"
fi
echo "soundcardd ready (pid $daemon): ${card:-dummy card}"
rate=$(sed -n 's/^[a-z]* \([0-9]*\) Hz.*/\1/p' <<<"$card")
rate=${rate:-48000}     # the card's rate; the daemon's default
echo "  --tap: everything the card plays goes to tap.wav; --capture sine:700: the card's input"

# ---- three clients at once -----------------------------------------------
export SOUNDCARD_SOCKET="$DIR/socket"
SC="$BIN/soundcard"
"$SC" tone --freq 440 --seconds 4 --gain 0.2 --name left-tone >"$DIR/left-tone.out" 2>&1 & left=$!
"$SC" rec "$DIR/recording.wav" --seconds 3 >"$DIR/rec.out" 2>&1 & rec=$!
pids+=("$left" "$rec")

# The left tone's frame counter in `soundcard status --json` (0 if not there yet).
frames_of() { "$SC" status --json | grep -o "\"name\":\"$1\",[^}]*" | grep -o '"frames":[0-9]*' | cut -d: -f2; }
played_a_second() { [ "$(frames_of left-tone)" -ge "$rate" ] 2>/dev/null; }
poll 10 "$left" played_a_second ||
    { echo "demo: FAIL: left-tone did not get to 1 s in 10 s" >&2; failures=$((failures + 1)); }
"$SC" tone --freq 660 --seconds 4 --gain 0.15 --name right-tone >"$DIR/right-tone.out" 2>&1 & right=$!
pids+=("$right")
echo "== three clients: left-tone and rec at once, right-tone when left-tone has played 1 s =="

three_running() { "$SC" status >"$DIR/status.txt" 2>&1 && [ "$(grep -c ' running ' "$DIR/status.txt")" -ge 3 ]; }
if poll 10 "$right" three_running; then
    echo "== soundcard status, while all three play/record =="
    cat "$DIR/status.txt"
else
    echo "demo: FAIL: status never showed 3 running streams:" >&2; cat "$DIR/status.txt" >&2
    failures=$((failures + 1))
fi

reap 30 "$left" "$right" "$rec" || { echo "demo: FAIL: clients still running after 30 s" >&2; failures=$((failures + 1)); }
kill -TERM "$daemon"
reap 10 "$daemon" || { echo "demo: FAIL: soundcardd ignored SIGTERM for 10 s" >&2; failures=$((failures + 1)); }

# ---- what each client said -----------------------------------------------
echo "== what each client reported (frames played/recorded, underruns, overruns) =="
client() {  # NAME PID OUTFILE: its last line is its stats line
    local line; line=$(tail -n 1 "$3")
    printf '%-11s %s\n' "$1:" "$line"
    if [ "${status[$2]:-x}" != 0 ] || [[ $line != *" underruns=0 overruns=0 "* ]]; then
        echo "demo: FAIL: $1 exited with ${status[$2]:-nothing} or had underruns/overruns:" >&2
        sed 's/^/  | /' "$3" >&2
        failures=$((failures + 1))
    fi
}
# A tone's counter is exactly what it wrote; a recorder's counts whole periods
# put into its ring, so it may be a little more than the file (checked below).
client left-tone "$left" "$DIR/left-tone.out"
client right-tone "$right" "$DIR/right-tone.out"
client rec "$rec" "$DIR/rec.out"
for out in left-tone right-tone; do
    grep -q "frames=$((4 * rate)) " "$DIR/$out.out" ||
        { echo "demo: FAIL: $out did not play exactly 4 s" >&2; failures=$((failures + 1)); }
done
if [ "${status[$daemon]:-x}" = 0 ]; then
    echo "soundcardd:  stopped by SIGTERM, exit 0"
else
    echo "demo: FAIL: soundcardd exited with ${status[$daemon]:-nothing}; its log:" >&2
    sed 's/^/  | /' "$DIR/soundcardd.log" >&2
    failures=$((failures + 1))
fi

echo "== files (in $DIR) =="
describe() {    # FILE WHAT EXPECTED_FRAMES (or "")
    local info; info=$("$BIN/wavcheck" "$DIR/$1" --info 2>&1) || { echo "demo: FAIL: $1: $info" >&2; failures=$((failures + 1)); return; }
    printf '%-14s %s\n' "$1" "$(sed 's/rate=\([0-9]*\) channels=\([0-9]*\) frames=\([0-9]*\) duration=\([0-9.]*\) peak=\([0-9.]*\)/\1 Hz, \2 ch, \3 frames (\4 s), peak \5/' <<<"$info"): $2"
    if [ -n "$3" ] && [[ $info != *" frames=$3 "* ]]; then
        echo "demo: FAIL: $1 should hold exactly $3 frames" >&2; failures=$((failures + 1))
    fi
}
describe tap.wav "what the card played" ""
describe recording.wav "what rec captured" $((3 * rate))

# ---- analysis --------------------------------------------------------------
echo "== analysis (wavcheck: tone levels in every 50 ms block of the window) =="
check() {   # LABEL WAVCHECK-ARGS...: one line, PASS or FAIL with wavcheck's words
    local label=$1 out rc; shift
    out=$("$BIN/wavcheck" "$@" 2>&1); rc=$?
    local levels; levels=$(sed -n 's/^\([0-9.]*\) Hz: min=.* mean=\([0-9.]*\) .*/\1 Hz at \2/p;
                                   s/^\([0-9.]*\) Hz: max=.*/no \1 Hz/p' <<<"$out" | paste -sd, - | sed 's/,/, /g')
    if [ $rc -eq 0 ]; then
        echo "PASS  $label: $levels"
    else
        echo "FAIL  $label"; sed 's/^/  | /' <<<"$out"
        failures=$((failures + 1))
    fi
}
onset=$("$BIN/wavcheck" "$DIR/tap.wav" --onset 2>&1)
first=$(sed -n 's/^first=\([0-9.]*\) .*/\1/p' <<<"$onset")
last=$(sed -n 's/.* last=\([0-9.]*\)$/\1/p' <<<"$onset")
if [ -n "$first" ] && [ -n "$last" ]; then
    # left-tone sounds [first, first+4], right-tone [last-4, last]; 0.1-0.25 s margins.
    w() { awk -v f="$first" -v l="$last" "BEGIN { printf \"%.3f\", $1 }"; }
    lo=$(w 'l - 4 + 0.25') hi=$(w 'f + 4 - 0.25')
    check "tap $(w 'f + 0.1')-$(w 'l - 4.1') s, left-tone alone" "$DIR/tap.wav" --from "$(w 'f + 0.1')" \
        --to "$(w 'l - 4.1')" --expect 440:0.2 --absent 660 --tolerance 0.05
    for ch in 0 1; do
        check "tap $lo-$hi s, both, channel $ch" "$DIR/tap.wav" --from "$lo" --to "$hi" --channel "$ch" \
            --expect 440:0.2 --expect 660:0.15 --absent 700 --tolerance 0.05
    done
    check "tap $(w 'f + 4.1')-$(w 'l - 0.1') s, right-tone alone" "$DIR/tap.wav" --from "$(w 'f + 4.1')" \
        --to "$(w 'l - 0.1')" --expect 660:0.15 --absent 440 --tolerance 0.05
else
    echo "FAIL  tap.wav: no sound found ($onset)"; failures=$((failures + 1))
fi
check "recording, all of it: the card's input" "$DIR/recording.wav" --expect 700:0.5 \
    --absent 440 --absent 660 --tolerance 0.02

echo
if [ "$failures" -eq 0 ]; then
    echo "demo passed.  Listen: play $DIR/tap.wav  (sox's play; clean up: rm -r $DIR)"
else
    echo "demo FAILED: $failures check(s) failed; everything is in $DIR" >&2
    exit 1
fi
