"""pytest fixtures for pysoundcard: a real soundcardd on the dummy card.

Each test that asks for `soundcardd` gets its own daemon(s) in a private temp
dir: `--backend dummy --capture ... --tap TMP/tap.wav` on TMP/socket, ready
when its sd_notify READY=1 arrives on a datagram socket bound here
(NOTIFY_SOCKET).  SOUNDCARD_SOCKET points at it for the code under test.
Stopping is SIGTERM to its PID and a wait, so the tap is complete; a daemon
that does not exit 0 fails the test.
"""
import os
import shutil
import tempfile

import pytest

from sc_support import Daemon

# Every stream of the suite (in this process and in the examples it runs)
# gets at least 50 ms of latency: this machine stalls realtime threads by up
# to 9-15 ms a few times a minute, and the seed's examples at the device's
# low latency (about 11 ms here) then lose a block now and then, which the
# block-by-block tap checks hear (docs/timing.md).  SOUNDCARD_LATENCY=0 in
# the environment runs the suite at the low latency.
os.environ.setdefault('SOUNDCARD_LATENCY', '0.05')


@pytest.fixture
def soundcardd(monkeypatch):
    """start(capture='sine:440', *more_args) -> Daemon; SOUNDCARD_SOCKET is set to it."""
    started = []

    def start(capture='sine:440', *args):
        d = Daemon(['--capture', capture] + list(args))
        started.append(d)
        monkeypatch.setenv('SOUNDCARD_SOCKET', d.socket)
        return d

    yield start
    try:
        for d in started:
            d.stop()
    finally:
        for d in started:
            print('--- %s\n%s' % (' '.join(d.argv), d.log()))
            d.cleanup()


@pytest.fixture
def daemon(soundcardd):
    """One daemon whose input is a 440 Hz sine at 0.5."""
    return soundcardd('sine:440')


@pytest.fixture
def scratch():
    """A private temp dir (short path)."""
    d = tempfile.mkdtemp(prefix='sc-py.')
    yield d
    shutil.rmtree(d, ignore_errors=True)
