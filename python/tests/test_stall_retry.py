"""sc_support.measure_again_after_stall, the Python side of
tests/support/attempt.h: a failure is measured again only when the stall
probe saw the machine stall, and never after the third attempt.  The stall
is made by stopping the probe's process for 60 ms (SIGSTOP), as a stalled
virtual CPU stops its threads; nothing else is disturbed."""
import os
import signal
import subprocess
import time

import pytest

from sc_support import ATTEMPTS, bin_path, measure_again_after_stall


def stall_the_probe():
    """SIGSTOP, 60 ms, SIGCONT to this process's stall_probe child."""
    me = str(os.getpid())
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open('/proc/%s/stat' % pid) as f:
                fields = f.read().rsplit(')', 1)[1].split()
            with open('/proc/%s/comm' % pid) as f:
                comm = f.read().strip()
        except OSError:
            continue
        if fields[1] == me and comm == 'stall_probe':
            os.kill(int(pid), signal.SIGSTOP)
            time.sleep(0.06)
            os.kill(int(pid), signal.SIGCONT)
            return
    pytest.fail('no stall_probe child of this process')


def failing(calls, stall):
    def run():
        calls.append(time.monotonic())
        time.sleep(0.2)             # the probe is running by then
        if stall:
            stall_the_probe()
        assert False, 'a check failed'
    return run


def test_a_failure_without_a_stall_stands():
    calls = []
    with pytest.raises(AssertionError, match='a check failed'):
        measure_again_after_stall('no stall', 2.0, failing(calls, stall=False))
    assert len(calls) == 1


def test_a_failure_in_a_stall_is_measured_again_up_to_three_times():
    if subprocess.run([bin_path('stall_probe')], input='', capture_output=True).returncode != 0:
        pytest.skip('realtime scheduling refused: no stall probe, no evidence')
    calls = []
    with pytest.raises(AssertionError, match='a check failed'):
        measure_again_after_stall('stalled', 0.02, failing(calls, stall=True))
    assert len(calls) == ATTEMPTS


def test_what_passes_is_returned():
    assert measure_again_after_stall('passes', 0.02, lambda: 42) == 42
