"""python/examples/, the PySoundCard README's examples, each run as its own
process (/usr/bin/python3, PYTHONPATH and SOUNDCARD_LIBRARY set) against a
soundcardd whose input is a 440 Hz sine at 0.5, and judged by what the card
played (its --tap), not by what the example says."""
import os
import wave

import numpy as np
import pytest

from sc_support import CAPTURE_AMP, expect_tones, onset, run_example

SECONDS = 5.0       # each loopback example runs five seconds
MARGIN = 0.1        # the tap is checked this far inside the sound's ends


@pytest.mark.parametrize('name', ['loopback_blocking.py', 'loopback_callback.py', 'context_manager.py'])
def test_loopback(soundcardd, name):
    """Five seconds of the card's input come back out, whole, on both channels
    (44100 Hz and 16-frame blocks: the library converts both ways)."""
    d = soundcardd('sine:440')
    r = run_example(d, name)
    assert r.returncode == 0, '%s: exit %d\nstdout: %s\nstderr: %s' % (name, r.returncode, r.stdout, r.stderr)
    d.stop()
    first, last = onset(d.tap)
    assert SECONDS - 0.1 < last - first < SECONDS + 0.3, \
        'the tap has sound from %.3f to %.3f s: not the %g s the example loops back' % (first, last, SECONDS)
    expect_tones(d.tap, first + MARGIN, last - MARGIN, expect=[(440, CAPTURE_AMP)])


def write_wav(path, rate, seconds, hz, amps):
    """16-bit WAV: a sine of hz on each channel at the amplitude amps[channel]."""
    t = np.arange(int(rate * seconds)) / rate
    x = np.stack([a * np.sin(2 * np.pi * hz * t) for a in amps], axis=1)
    with wave.open(path, 'wb') as w:
        w.setnchannels(len(amps))
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.round(x * 32767).astype('<i2').tobytes())


@pytest.mark.parametrize('amps', [(0.25,), (0.25, 0.125)], ids=['mono', 'stereo'])
def test_play_file(soundcardd, amps):
    """A 44100 Hz WAV plays whole (stop() drains) at its own level on the
    48000 Hz card: a mono file on both channels, a stereo file channel by
    channel.  The card's input, which the example never reads, stays out."""
    d = soundcardd('sine:440')
    path = os.path.join(d.dir, 'in.wav')
    seconds = 2.0
    write_wav(path, 44100, seconds, 1000, amps)
    r = run_example(d, 'play_file.py', path)
    assert r.returncode == 0, 'play_file.py: exit %d\nstdout: %s\nstderr: %s' % (r.returncode, r.stdout, r.stderr)
    d.stop()
    first, last = onset(d.tap)
    assert abs((last - first) - seconds) < 0.02, \
        'the tap has %.4f s of sound, the file %.4f s' % (last - first, seconds)
    levels = {0: [(1000, amps[0])], 1: [(1000, amps[-1])]}
    expect_tones(d.tap, first + MARGIN, last - MARGIN, expect=levels, absent=[440])
