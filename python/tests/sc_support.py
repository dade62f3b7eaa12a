"""What the pysoundcard tests share: paths, a soundcardd on the dummy card, the
example runner and the tap checks (conftest.py turns them into fixtures).

Environment (CTest sets all three: python/CMakeLists.txt):
  SC_BIN_DIR          soundcardd, soundcard and wavcheck (default: build/bin)
  SOUNDCARD_LIBRARY   the libsoundcard pysoundcard loads (default:
                      build/lib/libsoundcard.so.0 when it exists)
  PYTHONPATH          where pysoundcard is (default: python/ of this checkout)
"""
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
PYTHON_DIR = os.path.join(ROOT, 'python')
EXAMPLES_DIR = os.path.join(PYTHON_DIR, 'examples')
PYTHON = '/usr/bin/python3'
BIN_DIR = os.environ.get('SC_BIN_DIR') or os.path.join(ROOT, 'build', 'bin')

# The card soundcardd gives us: the dummy backend's defaults.
CARD_RATE = 48000
CARD_CHANNELS = 2
CAPTURE_AMP = 0.5           # the dummy card's --capture sine:HZ level (daemon/capture_source.h)

# Local runs without CTest: the build's library and this checkout's package.
if not os.environ.get('SOUNDCARD_LIBRARY'):
    _lib = os.path.join(ROOT, 'build', 'lib', 'libsoundcard.so.0')
    if os.path.exists(_lib):
        os.environ['SOUNDCARD_LIBRARY'] = _lib
if PYTHON_DIR not in sys.path and not os.environ.get('PYTHONPATH'):
    sys.path.insert(0, PYTHON_DIR)


def bin_path(name):
    return os.path.join(BIN_DIR, name)


def _die_with_parent():
    """In the child before exec: SIGTERM it when pytest dies (PR_SET_PDEATHSIG),
    so a killed test run leaves no daemon or client behind."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def spawn(argv, **kw):
    """Popen a long-lived child that dies with us.  Only call it while no
    audio thread of ours runs (preexec_fn runs Python between fork and exec)."""
    return subprocess.Popen(argv, preexec_fn=_die_with_parent, **kw)


def wait_until(predicate, timeout, interval=0.01):
    """Poll predicate() until it is true or timeout seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


class Daemon:
    """One soundcardd on the dummy card, in its own temp dir."""

    def __init__(self, args, ready_timeout=10.0):
        self.dir = tempfile.mkdtemp(prefix='sc-py.')     # short: socket paths are limited to 108 bytes
        self.socket = os.path.join(self.dir, 'socket')
        self.tap = os.path.join(self.dir, 'tap.wav')
        self.log_path = os.path.join(self.dir, 'soundcardd.log')
        self.returncode = None
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._notify.bind(os.path.join(self.dir, 'notify'))
        env = dict(os.environ, NOTIFY_SOCKET=os.path.join(self.dir, 'notify'))
        env.pop('WATCHDOG_USEC', None)
        env.pop('LISTEN_FDS', None)
        self.argv = [bin_path('soundcardd'), '--backend', 'dummy', '--socket', self.socket,
                     '--tap', self.tap] + list(args)
        with open(self.log_path, 'wb') as log:
            self.proc = spawn(self.argv, env=env, stdin=subprocess.DEVNULL, stdout=log,
                              stderr=subprocess.STDOUT)
        self.ready_time = self._wait_ready(ready_timeout)

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if self.proc.poll() is not None:
                raise RuntimeError('soundcardd exited with %d before READY=1:\n%s'
                                   % (self.proc.returncode, self.log()))
            if left <= 0:
                raise RuntimeError('soundcardd sent no READY=1 in %.0f s:\n%s' % (timeout, self.log()))
            self._notify.settimeout(min(left, 0.2))
            try:
                message = self._notify.recv(4096)
            except socket.timeout:
                continue
            if b'READY=1' in message.split(b'\n'):
                return time.monotonic()

    def log(self):
        try:
            with open(self.log_path, errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    def stop(self, timeout=10.0):
        """SIGTERM, wait; the exit code (0: the tap is complete)."""
        if self.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.returncode = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.returncode = 'still running %.0f s after SIGTERM' % timeout
            self._notify.close()
        assert self.returncode == 0, 'soundcardd: exit %s:\n%s' % (self.returncode, self.log())
        return self.returncode

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._notify.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def client_env(d):
    """The environment a client process of daemon d runs with."""
    path = [PYTHON_DIR] + [p for p in os.environ.get('PYTHONPATH', '').split(':') if p]
    return dict(os.environ, SOUNDCARD_SOCKET=d.socket, PYTHONPATH=':'.join(path))


def run_example(d, name, *args, timeout=60):
    """/usr/bin/python3 python/examples/NAME ARGS against daemon d: CompletedProcess."""
    argv = [PYTHON, os.path.join(EXAMPLES_DIR, name)] + [str(a) for a in args]
    try:
        return subprocess.run(argv, env=client_env(d), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout,
                              preexec_fn=_die_with_parent)
    except subprocess.TimeoutExpired as e:
        pytest.fail('%s hung: killed after %d s\nstdout: %s\nstderr: %s'
                    % (name, timeout, e.stdout, e.stderr))


def wavcheck(path, *args):
    """build/bin/wavcheck PATH ARGS: (exit code, its output)."""
    r = subprocess.run([bin_path('wavcheck'), path] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


def onset(path):
    """(first, last): seconds of the first and last sample above 0.01 in the WAV."""
    rc, out = wavcheck(path, '--onset')
    m = re.search(r'first=([0-9.]+) last=([0-9.]+)', out)
    assert rc == 0 and m, 'wavcheck --onset %s: exit %d: %s' % (path, rc, out)
    return float(m.group(1)), float(m.group(2))


def expect_tones(path, start, end, expect=(), absent=(), channels=(0, 1), tolerance=0.05,
                 block_ms=50):
    """Every 50 ms block of [start, end] s on each channel holds each HZ:AMP
    of expect (within tolerance) and nothing (< 0.01) at each HZ of absent."""
    for ch in channels:
        args = ['--from', '%.6f' % start, '--to', '%.6f' % end, '--channel', ch,
                '--block-ms', block_ms, '--tolerance', tolerance]
        for hz, amp in (expect[ch] if isinstance(expect, dict) else expect):
            args += ['--expect', '%g:%g' % (hz, amp)]
        for hz in absent:
            args += ['--absent', hz]
        rc, out = wavcheck(path, *args)
        assert rc == 0, 'wavcheck %s %s: exit %d\n%s' % (path, ' '.join(map(str, args)), rc, out)


# ---- measuring again after a stall of the machine (tests/support/attempt.h) ----

ATTEMPTS = 3


class StallProbe:
    """tests/support/stall_probe.h in its own process: one SCHED_FIFO 1 thread
    per CPU, below every realtime thread of ours (which it must not preempt:
    stall_probe.c), keeping its worst lateness.  A stalled virtual CPU delays
    it; ours only by the microseconds they run."""

    def __init__(self):
        self.proc = subprocess.Popen([bin_path('stall_probe')], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def worst(self):
        """Ends it: the worst lateness in seconds, or None without realtime scheduling."""
        out, _ = self.proc.communicate(timeout=10)
        m = re.search(r'worst_ms=([0-9.]+)', out)
        return float(m.group(1)) / 1000 if self.proc.returncode == 0 and m else None


def wait_quiet(late, deadline=10):
    """Wait, at most `deadline` s, for a second with no probe thread `late` s
    late: stalls come in episodes.  Returns whether one came."""
    r = subprocess.run([bin_path('stall_probe'), '--quiet', '%g' % (1000 * late), '%g' % deadline],
                       capture_output=True, text=True, timeout=deadline + 10)
    return r.returncode == 0


def measure_again_after_stall(what, budget, run):
    """run() up to ATTEMPTS times: again only when its checks failed (an
    AssertionError) while the stall probe was late by half of `budget`, the
    streams' latency in seconds.  Without that evidence, or the third time,
    the failure stands.  Returns what run() returned."""
    for attempt in range(1, ATTEMPTS + 1):
        probe = StallProbe()
        try:
            return run()
        except AssertionError as failure:
            late = probe.worst()
            print('info %s: attempt %d of %d failed: %s; stall probe %s (budget %.1f ms: a stall is half '
                  'of it)' % (what, attempt, ATTEMPTS, failure,
                              'not running' if late is None else '%.1f ms late' % (1000 * late),
                              1000 * budget))
            if late is None or late < budget / 2 or attempt == ATTEMPTS:
                print('info %s: %s: the failure stands' % (
                    what, 'the machine stalled in every attempt' if attempt == ATTEMPTS and late
                    and late >= budget / 2 else 'the machine did not stall'))
                raise
            print('info %s: the machine stalled: that failure is forgotten; %s; measuring again' % (
                what, 'a quiet second came' if wait_quiet(budget / 2) else 'no quiet second in 10 s'))
        finally:
            if probe.proc.poll() is None:
                probe.worst()
