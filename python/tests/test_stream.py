"""pysoundcard's API against a real soundcardd on the dummy card (48000 Hz,
2 channels, input a 440 Hz sine at 0.5): read/write shapes and dtypes,
mono and narrow writes, half-duplex streams, callback flags and
finished_callback, the context manager, time info, the available counts,
devices and APIs, and the errors."""
import os
import threading
import time

import numpy as np
import pytest

import pysoundcard
from pysoundcard import (InputStream, OutputStream, Stream, abort_flag, apis, complete_flag,
                         continue_flag, default_input_device, default_output_device, devices)
from sc_support import CAPTURE_AMP, CARD_CHANNELS, CARD_RATE, expect_tones, onset, wait_until

# dtype: (zero, full scale) of its samples
DTYPES = {
    'float32': (0.0, 1.0),
    'int32': (0.0, 2.0 ** 31),
    'int16': (0.0, 2.0 ** 15),
    'int8': (0.0, 2.0 ** 7),
    'uint8': (128.0, 2.0 ** 7),
}
WAIT = 5.0          # deadline for anything that should take a few blocks


def pair(value):
    """Stream attributes may be (input, output) pairs, as in PySoundCard master."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def level(x, dtype):
    """x as floats in [-1, 1)."""
    zero, scale = DTYPES[np.dtype(dtype).name]
    return (x.astype(np.float64) - zero) / scale


def crossings(x):
    """Sign changes of a 1-D signal."""
    return int(np.count_nonzero(np.diff(np.signbit(x))))


def closing(stream):
    """stop and close, whatever state the stream is in (test cleanup)."""
    for f in (stream.stop, stream.close):
        try:
            f()
        except Exception:
            pass


# ---- the module ----------------------------------------------------------

def test_module_names():
    for name in ('Stream', 'InputStream', 'OutputStream', 'continue_flag', 'complete_flag',
                 'abort_flag', 'devices', 'apis', 'default_input_device', 'default_output_device',
                 'device_info', 'hostapi_info', 'default_api', 'default_hostapi'):
        assert hasattr(pysoundcard, name), name
    assert (continue_flag, complete_flag, abort_flag) == (0, 1, 2)
    assert isinstance(pysoundcard.__version__, str) and pysoundcard.__version__


DEVICE_KEYS = ('name', 'device_index', 'hostapi', 'host_api_index', 'input_channels',
               'max_input_channels', 'output_channels', 'max_output_channels',
               'default_samplerate', 'default_sample_rate', 'default_low_input_latency',
               'default_low_output_latency', 'default_high_input_latency',
               'default_high_output_latency', 'input_latency', 'output_latency',
               'sample_format', 'interleaved_data')


def check_device(dev):
    missing = [k for k in DEVICE_KEYS if k not in dev]
    assert not missing, 'device dict lacks %s: %r' % (missing, dev)
    assert dev['name'] == 'dummy'
    assert dev['device_index'] == 0
    assert dev['input_channels'] == dev['max_input_channels'] == CARD_CHANNELS
    assert dev['output_channels'] == dev['max_output_channels'] == CARD_CHANNELS
    assert dev['default_samplerate'] == dev['default_sample_rate'] == CARD_RATE
    assert dev['hostapi'] == dev['host_api_index']
    assert 0 < dev['default_low_input_latency'] <= dev['default_high_input_latency']
    assert 0 < dev['default_low_output_latency'] <= dev['default_high_output_latency']


def test_devices(daemon):
    devs = list(devices())
    assert len(devs) == 1, devs          # the daemon's one card
    check_device(devs[0])
    check_device(default_input_device())
    check_device(default_output_device())
    # The socket keyword reaches the same daemon.
    assert [d['name'] for d in devices(socket=daemon.socket)] == ['dummy']


def test_apis(daemon):
    found = list(apis())
    assert len(found) == 1, found
    assert found[0]['name'] == 'soundcard'


# ---- read / write --------------------------------------------------------

@pytest.mark.parametrize('dtype', sorted(DTYPES))
def test_read_write_dtype(daemon, dtype):
    """read() gives (frames, channels) of the stream's dtype holding the card's
    440 Hz input at 0.5; write() takes the same and plays it."""
    s = Stream(dtype=dtype, blocksize=256)
    try:
        assert pair(s.dtype) == (np.dtype(dtype), np.dtype(dtype))
        assert pair(s.channels) == (CARD_CHANNELS, CARD_CHANNELS)
        assert s.samplerate == CARD_RATE
        assert s.blocksize == 256
        s.start()
        x = s.read(4800)                                    # 0.1 s
        assert isinstance(x, np.ndarray)
        assert x.shape == (4800, CARD_CHANNELS) and x.dtype == np.dtype(dtype)
        y = level(x, dtype)
        for ch in range(CARD_CHANNELS):
            assert abs(np.abs(y[:, ch]).max() - CAPTURE_AMP) < 0.03, (dtype, np.abs(y[:, ch]).max())
            assert abs(crossings(y[:, ch]) - 88) <= 2      # 44 periods of 440 Hz
        assert s.write(x) is None
        assert s.write(x[:256]) is None
        s.stop()
    finally:
        closing(s)


def test_dtype_spelled_as_numpy_type(daemon):
    s = Stream(dtype=np.int16, channels=1)
    try:
        s.start()
        x = s.read(100)
        assert x.shape == (100, 1) and x.dtype == np.int16
    finally:
        closing(s)


def test_pairs(daemon):
    """(input, output) pairs as in PySoundCard master's _split: channels may
    differ; the sample format may not (libsoundcard has one per stream)."""
    s = Stream(dtype=('int16', 'int16'), channels=(1, 2))
    try:
        assert pair(s.dtype) == (np.dtype('int16'), np.dtype('int16'))
        assert pair(s.channels) == (1, 2)
        s.start()
        x = s.read(256)
        assert x.shape == (256, 1) and x.dtype == np.int16
        s.write(np.zeros((256, 2), np.int16))
    finally:
        closing(s)
    with pytest.raises(ValueError):
        Stream(dtype=('int16', 'float32'))


def test_half_duplex_stream(daemon):
    """PySoundCard 0.4: input_device=False / output_device=False."""
    s = Stream(input_device=False, blocksize=256)
    try:
        s.start()
        s.write(np.zeros((1024, CARD_CHANNELS), np.float32))
        s.stop()
    finally:
        closing(s)
    s = Stream(output_device=False, blocksize=256)
    try:
        s.start()
        x = s.read(1024)
        assert x.shape == (1024, CARD_CHANNELS)
        assert abs(np.abs(x).max() - CAPTURE_AMP) < 0.03
    finally:
        closing(s)


def test_mono_and_narrow_writes(soundcardd):
    """A 1-D array plays on every channel; a (frames, 1) array on the first
    channel, the other one silent (PySoundCard pads with silence)."""
    d = soundcardd('silence')
    t = np.arange(CARD_RATE) / CARD_RATE
    tone = (0.3 * np.sin(2 * np.pi * 660 * t)).astype(np.float32)
    s = OutputStream(channels=2)
    try:
        s.start()
        s.write(tone)                   # one second on both channels
        s.write(tone[:, np.newaxis])    # one second on channel 0 only
        s.stop()
    finally:
        closing(s)
    d.stop()
    first, last = onset(d.tap)
    assert abs(last - first - 2.0) < 0.01, (first, last)
    expect_tones(d.tap, first + 0.05, first + 0.95, expect=[(660, 0.3)])
    expect_tones(d.tap, first + 1.05, last - 0.05, expect=[(660, 0.3)], channels=[0])
    expect_tones(d.tap, first + 1.05, last - 0.05, absent=[660], channels=[1])


def test_available(daemon):
    s = Stream(blocksize=256)
    try:
        assert s.write_available >= 0
        s.start()
        # Input builds up while nobody reads.
        assert wait_until(lambda: s.read_available >= 1024, WAIT), s.read_available
        n = s.read_available
        assert isinstance(n, int) and isinstance(s.read_length(), int)
        assert s.read_length() >= n
        x = s.read(n)
        assert x.shape == (n, CARD_CHANNELS)
        w = s.write_available
        assert isinstance(w, int) and w > 0 and isinstance(s.write_length(), int)
        s.write(np.zeros((w, CARD_CHANNELS), np.float32))     # fits without waiting
    finally:
        closing(s)


def test_duplex_blocking_stream_starts_primed(daemon):
    """A full-duplex read/write stream starts with its latency's worth of
    silence queued (as PortAudio's ALSA blocking duplex streams do), so a
    loop that writes what it reads does not run a period from dry; an
    output-only stream starts empty, for the application to fill."""
    budget = int(0.1 * CARD_RATE)
    for make, primed in ((lambda: Stream(latency=0.1), True), (lambda: OutputStream(latency=0.1), False)):
        s = make()
        try:
            s.start()
            w = s.write_available
            if primed:
                assert w < budget // 2, 'duplex: %d frames free of a %d-frame budget just after start' % (w, budget)
            else:
                assert w > budget * 9 // 10, 'output only: %d frames free of %d just after start' % (w, budget)
        finally:
            closing(s)


def test_stream_state_and_stats(daemon):
    s = Stream(blocksize=256)
    try:
        assert not s.is_active()
        s.start()
        assert s.is_active() and not s.is_stopped()
        assert abs(s.time() - time.monotonic()) < 0.1     # CLOCK_MONOTONIC seconds
        assert isinstance(s.cpu_load(), float)
        for _ in range(20):
            s.write(s.read(256))
        st = s.stats()
        for key in ('frames', 'underruns', 'overruns', 'clipped', 'peak', 'id', 'callback_realtime'):
            assert key in st, (key, st)
        assert st['frames'] > 0 and st['id'] > 0 and st['callback_realtime'] == -1
        s.stop()
        assert not s.is_active() and s.is_stopped()
    finally:
        closing(s)


# ---- half duplex -------------------------------------------------------

def test_input_stream(daemon):
    s = InputStream(blocksize=128)
    try:
        assert s.channels == CARD_CHANNELS
        s.start()
        x = s.read(4800)
        assert x.shape == (4800, CARD_CHANNELS) and x.dtype == np.float32
        assert abs(np.abs(x).max() - CAPTURE_AMP) < 0.03
    finally:
        closing(s)


def test_input_stream_callback(daemon):
    """InputStream's callback gets one array: callback(data, time_info, status)."""
    blocks, enough = [], threading.Event()

    def callback(data, time_info, status):
        blocks.append(data.copy())
        if len(blocks) == 40:
            enough.set()
        return continue_flag

    s = InputStream(blocksize=128, callback=callback)
    try:
        s.start()
        assert enough.wait(WAIT), 'only %d callbacks in %g s' % (len(blocks), WAIT)
        s.stop()
    finally:
        closing(s)
    assert all(b.shape == (128, CARD_CHANNELS) and b.dtype == np.float32 for b in blocks)
    x = np.concatenate(blocks)
    assert abs(np.abs(x).max() - CAPTURE_AMP) < 0.03


def test_output_stream_callback_complete(soundcardd):
    """OutputStream's callback fills one array; complete_flag ends the stream
    once the last block has played: exactly the frames given are in the tap."""
    d = soundcardd('silence')
    blocksize, nblocks, hz, amp = 480, 50, 880.0, 0.3
    calls, finished = [0], threading.Event()
    shapes = set()

    def callback(data, time_info, status):
        n = calls[0]
        shapes.add((data.shape, data.dtype))
        t = (np.arange(blocksize) + n * blocksize) / CARD_RATE
        data[:] = (amp * np.sin(2 * np.pi * hz * t))[:, np.newaxis]
        calls[0] += 1
        return complete_flag if calls[0] == nblocks else continue_flag

    s = OutputStream(blocksize=blocksize, callback=callback, finished_callback=finished.set)
    try:
        s.start()
        assert finished.wait(WAIT), 'no finished_callback'
        assert wait_until(lambda: not s.is_active(), WAIT)
    finally:
        closing(s)
    assert calls[0] == nblocks
    assert shapes == {((blocksize, CARD_CHANNELS), np.dtype('float32'))}
    d.stop()
    first, last = onset(d.tap)
    assert abs(last - first - nblocks * blocksize / CARD_RATE) < 0.002, (first, last)
    expect_tones(d.tap, first + 0.02, last - 0.02, expect=[(hz, amp)])


# ---- callbacks ---------------------------------------------------------

@pytest.mark.parametrize('flag', ['complete', 'abort'])
def test_callback_flag_ends_stream(daemon, flag):
    """complete_flag / abort_flag end the stream: no more calls,
    is_active() becomes False, finished_callback runs once."""
    value = {'complete': complete_flag, 'abort': abort_flag}[flag]
    calls, finishes, finished = [0], [0], threading.Event()

    def callback(in_data, out_data, time_info, status):
        out_data[:] = in_data
        calls[0] += 1
        return value if calls[0] == 10 else continue_flag

    def on_finished():
        finishes[0] += 1
        finished.set()

    s = Stream(blocksize=64, callback=callback, finished_callback=on_finished)
    try:
        s.start()
        assert finished.wait(WAIT), 'no finished_callback after %d calls' % calls[0]
        assert wait_until(lambda: not s.is_active(), WAIT), 'still active after %s_flag' % flag
        assert calls[0] == 10
        s.stop()
        s.close()
    finally:
        closing(s)
    assert calls[0] == 10
    assert finishes[0] == 1


def test_callback_arrays_and_time_info(daemon):
    """in_data/out_data are (blocksize, channels) arrays of the dtype;
    time_info's times are CLOCK_MONOTONIC, adc < current < dac, and go on."""
    records, enough = [], threading.Event()

    def callback(in_data, out_data, time_info, status):
        records.append((in_data.shape, in_data.dtype, out_data.shape, out_data.dtype,
                        out_data.flags.writeable, dict(time_info), time.monotonic()))
        out_data[:] = in_data
        if len(records) == 50:
            enough.set()
        return continue_flag

    s = Stream(blocksize=128, dtype='int16', callback=callback)
    try:
        s.start()
        assert enough.wait(WAIT)
        s.stop()
    finally:
        closing(s)
    previous = 0.0
    for ishape, idtype, oshape, odtype, writeable, t, now in records[:50]:
        assert ishape == oshape == (128, CARD_CHANNELS)
        assert idtype == odtype == np.int16 and writeable
        assert {'input_adc_time', 'current_time', 'output_dac_time'} <= set(t), t
        assert t['input_adc_time'] < t['current_time'] < t['output_dac_time'], t
        assert abs(t['current_time'] - now) < 0.05, (t, now)
        assert t['current_time'] >= previous
        previous = t['current_time']


def test_context_manager(daemon):
    """with Stream(...) as s: started inside, stopped (finished_callback)
    and closed after."""
    calls, enough, finished = [0], threading.Event(), threading.Event()

    def callback(in_data, out_data, time_info, status):
        out_data[:] = in_data
        calls[0] += 1
        if calls[0] == 20:
            enough.set()
        return continue_flag

    with Stream(blocksize=64, callback=callback, finished_callback=finished.set) as s:
        assert isinstance(s, Stream)
        assert s.is_active()
        assert enough.wait(WAIT)
    assert finished.is_set(), 'leaving the with block did not stop the stream'


def test_context_manager_blocking(daemon):
    with Stream(blocksize=256) as s:
        x = s.read(256)
        s.write(x)
        assert x.shape == (256, CARD_CHANNELS)


def test_restart(daemon):
    """A stopped stream starts again."""
    s = Stream(blocksize=256)
    try:
        for _ in range(2):
            s.start()
            assert s.read(512).shape == (512, CARD_CHANNELS)
            s.stop()
            assert not s.is_active()
    finally:
        closing(s)


# ---- errors ------------------------------------------------------------

class Boom(Exception):
    pass


def raising_callback(after, raised):
    calls = [0]

    def callback(in_data, out_data, time_info, status):
        calls[0] += 1
        if calls[0] == after:
            e = Boom('callback %d' % after)
            raised.append(e)
            raise e
        return continue_flag
    return callback


@pytest.mark.parametrize('call', ['is_active', 'stop', 'close', 'start', 'read', 'write'])
def test_callback_exception_reraised(daemon, call):
    """An exception in the callback aborts the stream (finished_callback runs)
    and the next call on the stream raises that same exception."""
    raised, finished = [], threading.Event()
    s = Stream(blocksize=64, callback=raising_callback(5, raised), finished_callback=finished.set)
    try:
        s.start()
        assert finished.wait(WAIT), 'the stream did not end after the callback raised'
        args = {'read': (16,), 'write': (np.zeros((16, CARD_CHANNELS), np.float32),)}.get(call, ())
        with pytest.raises(Boom) as e:
            getattr(s, call)(*args)
        assert e.value is raised[0]
    finally:
        try:
            s.close()
        except Boom:
            pass


def test_callback_exception_context_manager(daemon):
    raised, finished = [], threading.Event()
    with pytest.raises(Boom) as e:
        with Stream(blocksize=64, callback=raising_callback(5, raised), finished_callback=finished.set):
            assert finished.wait(WAIT)
    assert e.value is raised[0]


def test_no_daemon(scratch, monkeypatch):
    """No daemon: RuntimeError that names the socket it tried."""
    path = os.path.join(scratch, 'nobody-here')
    monkeypatch.setenv('SOUNDCARD_SOCKET', path)
    for make in (Stream, InputStream, OutputStream, lambda: list(devices()), default_output_device):
        with pytest.raises(RuntimeError) as e:
            make()
        assert path in str(e.value), str(e.value)
    other = os.path.join(scratch, 'elsewhere')
    with pytest.raises(RuntimeError) as e:
        Stream(socket=other)
    assert other in str(e.value), str(e.value)


@pytest.mark.parametrize('dtype', ['int64', 'complex64', 'float16'])
def test_bad_dtype(daemon, dtype):
    with pytest.raises(ValueError):
        Stream(dtype=dtype)


def test_bad_pair(daemon):
    with pytest.raises(ValueError):
        Stream(channels=(1, 2, 3))
