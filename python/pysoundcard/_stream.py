"""Streams: PySoundCard's Stream, InputStream and OutputStream on a
libsoundcard stream, each with a connection of its own to soundcardd.

Read/write mode calls sc_stream_read/sc_stream_write (cffi lets go of the
GIL while they wait).  Callback mode runs the user's function on
libsoundcard's callback thread with NumPy arrays that view the library's
buffers: nothing is copied per block.  An exception in the callback aborts
the stream; the next call on it raises that exception.
"""

import os
import sys
import time as _time

import numpy as np

from ._lib import check, ffi, lib, open_client

continue_flag = 0
complete_flag = 1
abort_flag = 2

_FORMATS = {
    np.dtype("float32"): lib.SC_FLOAT32,
    np.dtype("int32"): lib.SC_INT32,
    np.dtype("int16"): lib.SC_INT16,
    np.dtype("int8"): lib.SC_INT8,
    np.dtype("uint8"): lib.SC_UINT8,
}

_UNSET = object()  # input_device/output_device not given


def _split(value):
    """A value for both directions, or an (input, output) pair."""
    if isinstance(value, (str, dict)):
        return value, value
    try:
        invalue, outvalue = value
    except TypeError:
        invalue = outvalue = value
    except ValueError:
        raise ValueError("Only single values and pairs are allowed")
    return invalue, outvalue


def _sample_dtype(dtype):
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise ValueError("Invalid sample format %r" % (dtype,))
    if dtype not in _FORMATS:
        raise ValueError("Invalid sample format %s: use one of %s" %
                         (dtype, ", ".join(str(d) for d in _FORMATS)))
    return dtype


def _device_index(device):
    """An index from None (the default), an int or a device dict."""
    if device is None or device is True:
        return -1
    if isinstance(device, dict):
        return int(device.get("device_index", device.get("index", -1)))
    return int(device)


class _Direction(object):
    """What one direction (input or output) of a stream was asked to be."""

    def __init__(self, kind, device, channels, dtype, latency):
        self.kind = kind
        self.enabled = device is not False and device is not None or device is _UNSET
        if device is _UNSET:
            device = None
        self.device = _device_index(device) if self.enabled else -1
        if isinstance(device, dict):  # PySoundCard 0.4 device dicts carry these
            channels = channels if channels is not None else device.get(kind + "_channels")
            dtype = device.get("sample_format", dtype) if dtype is None else dtype
            latency = latency if latency else device.get(kind + "_latency", 0)
        self.channels = channels
        self.dtype = _sample_dtype("float32" if dtype is None else dtype)
        self.latency = float(latency or 0)


class _StreamBase(object):
    """What Stream, InputStream and OutputStream share."""

    _stream = ffi.NULL
    _client = ffi.NULL

    def _open(self, idir, odir, samplerate, blocksize, callback_wrapper, finished_callback,
              name, socket):
        if idir.enabled and odir.enabled and idir.dtype != odir.dtype:
            raise ValueError("soundcard streams use one sample format for input and output "
                             "(got %s and %s)" % (idir.dtype, odir.dtype))
        if idir.enabled and odir.enabled and idir.device != odir.device:
            raise ValueError("input and output must be the same device (got %d and %d)" %
                             (idir.device, odir.device))
        self._callback_error = None
        self._started = False
        self._callback_seconds = 0.0
        self._callback_load = 0.0
        label = name or os.path.basename(sys.argv[0] or "") or "python"
        self._client = open_client(socket, label)
        card = ffi.new("sc_server_info *")
        check(lib.sc_get_server_info(self._client, card), "server.info")
        for d in (idir, odir):
            if d.enabled and d.channels is None:
                d.channels = card.channels  # the device's maximum: the card's count
        params = ffi.new("sc_stream_params *")
        lib.sc_stream_params_init(params)
        self._name = ffi.new("char[]", label.encode()[:63])
        params.name = self._name
        params.device = idir.device if idir.enabled else odir.device
        params.input_channels = idir.channels if idir.enabled else 0
        params.output_channels = odir.channels if odir.enabled else 0
        params.format = _FORMATS[idir.dtype if idir.enabled else odir.dtype]
        params.samplerate = float(samplerate) if samplerate else 0.0
        params.blocksize = int(blocksize or 0)
        params.latency = max(idir.latency if idir.enabled else 0, odir.latency if odir.enabled else 0)
        self._keepalive = []
        if callback_wrapper is not None:
            handle = ffi.callback("sc_callback", callback_wrapper, error=abort_flag)
            params.callback = handle
            self._keepalive.append(handle)
        if finished_callback is not None:
            def finished(_userdata):
                try:
                    finished_callback()
                except BaseException as error:  # reported by the next call
                    self._callback_error = error
            handle = ffi.callback("void(void *)", finished)
            params.finished = handle
            self._keepalive.append(handle)
        out = ffi.new("sc_stream **")
        try:
            check(lib.sc_stream_open(self._client, params, out), "cannot open the stream")
        except BaseException:
            lib.sc_client_close(self._client)
            self._client = ffi.NULL
            raise
        self._stream = out[0]
        self.blocksize = params.blocksize
        self.samplerate = params.samplerate if params.samplerate else card.samplerate
        # Until it runs, what was asked for (at least a card period); then
        # what the timing record says (see the latency property).
        period = card.period / card.samplerate
        self._nominal_latency = (max(idir.latency, period) if idir.enabled else 0.0,
                                 max(odir.latency, period) if odir.enabled else 0.0)
        self._directions = (idir.enabled, odir.enabled)

    @property
    def latency(self):
        """Seconds from the ADC to read() (input) and from write() to the DAC
        (output): measured while the stream runs, else the nominal value; a
        pair for a full-duplex stream."""
        latency_in, latency_out = self._nominal_latency
        if self._stream != ffi.NULL and lib.sc_stream_is_active(self._stream) == 1:
            measured_in, measured_out = ffi.new("double *"), ffi.new("double *")
            lib.sc_stream_latency(self._stream, measured_in, measured_out)
            latency_in = measured_in[0] or latency_in
            latency_out = measured_out[0] or latency_out
        has_in, has_out = self._directions
        if has_in and has_out:
            return latency_in, latency_out
        return latency_in if has_in else latency_out

    def _direction_latency(self, index):
        latency = self.latency
        if isinstance(latency, tuple):
            return latency[index]
        return latency if self._directions[index] else 0.0

    @property
    def input_latency(self):
        """PySoundCard 0.4: the input direction's latency (0.0 without input)."""
        return self._direction_latency(0)

    @property
    def output_latency(self):
        """PySoundCard 0.4: the output direction's latency (0.0 without output)."""
        return self._direction_latency(1)

    def _open_half(self, idir, odir, samplerate, blocksize, callback, finished_callback, name,
                   socket):
        """Open a half-duplex stream: its callback gets the one direction's
        array, callback(data, time_info, status)."""
        playing = odir.enabled
        d = odir if playing else idir
        self.channels, self.dtype, self.device = d.channels, d.dtype, d.device
        wrapper = None
        if callback is not None:
            def wrapper(iptr, optr, frames, t, status, _userdata):
                try:
                    data = _view(optr if playing else iptr, frames, self.channels, self.dtype)
                    return self._timed_call(callback, data, _time_dict(t), status)
                except BaseException as error:
                    return self._callback_failed(error)
        self._open(idir, odir, samplerate, blocksize, wrapper, finished_callback, name, socket)
        self.channels = d.channels

    def _check_callback_error(self):
        error, self._callback_error = self._callback_error, None
        if error is not None:
            raise error

    def _handle(self):
        if self._stream == ffi.NULL:
            raise RuntimeError("the stream is closed")
        self._check_callback_error()
        return self._stream

    def _timed_call(self, callback, *args):
        """Run the user's callback; its share of the block's time is cpu_load()."""
        started = _time.perf_counter()
        flag = callback(*args)
        spent = _time.perf_counter() - started
        self._callback_seconds += spent
        if flag not in (continue_flag, complete_flag, abort_flag):
            raise TypeError("the callback returned %r; it must return continue_flag, "
                            "complete_flag or abort_flag" % (flag,))
        return flag

    def _callback_failed(self, error):
        self._callback_error = error
        return abort_flag

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, type, value, tb):
        try:
            self.stop()
        finally:
            self.close()

    def start(self):
        """Commence audio processing; the stream is then active."""
        stream = self._handle()
        if lib.sc_stream_is_active(stream) == 1:
            return
        self._callback_seconds = 0.0
        self._started_at = _time.perf_counter()
        check(lib.sc_stream_start(stream), "start")
        self._started = True

    def stop(self):
        """Play what was written, then stop; the stream is then inactive."""
        stream = self._handle()
        if self._started:
            self._started = False
            check(lib.sc_stream_stop(stream), "stop")
        self._check_callback_error()

    def abort(self):
        """Stop at once, dropping what was not played yet."""
        stream = self._handle()
        if self._started:
            self._started = False
            check(lib.sc_stream_abort(stream), "abort")
        self._check_callback_error()

    def close(self):
        """Close the stream (aborting it if active).  May be called again."""
        if self._stream != ffi.NULL:
            lib.sc_stream_close(self._stream)
            self._stream = ffi.NULL
        if self._client != ffi.NULL:
            lib.sc_client_close(self._client)
            self._client = ffi.NULL
        self._check_callback_error()

    def is_active(self):
        """True from start() until stop(), abort() or the callback ending it."""
        return lib.sc_stream_is_active(self._handle()) == 1

    def is_stopped(self):
        """True before start() and after stop() or abort(); not after the
        callback ended the stream on its own."""
        self._handle()
        return not self._started

    def time(self):
        """The stream's clock in seconds: CLOCK_MONOTONIC, the clock of the
        callback's time_info."""
        return lib.sc_stream_time(self._handle())

    def cpu_load(self):
        """The share of real time spent in the callback since start() (0.0
        in read/write mode)."""
        self._handle()
        elapsed = _time.perf_counter() - getattr(self, "_started_at", _time.perf_counter())
        return self._callback_seconds / elapsed if elapsed > 0 else 0.0

    def stats(self):
        """The daemon's counters for this stream (soundcard extension)."""
        out = ffi.new("sc_stream_stats *")
        check(lib.sc_stream_get_stats(self._handle(), out), "stats")
        return {"frames": out.frames, "underruns": out.underruns, "overruns": out.overruns,
                "clipped": out.clipped, "peak": out.peak, "id": out.id,
                "callback_realtime": out.callback_realtime}


def _view(ptr, frames, channels, dtype):
    """A (frames, channels) array over the library's buffer: no copy."""
    data = np.frombuffer(ffi.buffer(ptr, frames * channels * dtype.itemsize), dtype=dtype)
    return data.reshape(frames, channels)


def _time_dict(t):
    return {"input_adc_time": t.input_adc_time, "current_time": t.current_time,
            "output_dac_time": t.output_dac_time}


class InputStream(_StreamBase):
    """A stream that records.  See :class:`Stream`; its callback is
    callback(in_data, time_info, status) -> flag."""

    def __init__(self, samplerate=None, blocksize=0, device=None, channels=None,
                 dtype="float32", latency=0, callback=None, finished_callback=None,
                 name=None, socket=None, **flags):
        idir = _Direction("input", _UNSET if device is None else device, channels, dtype, latency)
        odir = _Direction("output", False, None, None, 0)
        self._open_half(idir, odir, samplerate, blocksize, callback, finished_callback, name, socket)

    def read_length(self):
        """Frames that can be read without waiting."""
        return check(lib.sc_stream_read_available(self._handle()))

    @property
    def read_available(self):
        return self.read_length()

    def read(self, frames, raw=False):
        """Read `frames` frames: a (frames, channels) array of the stream's
        dtype (the raw cffi buffer with raw=True).  Waits for the data while
        the stream runs; a stopped stream gives what it still holds."""
        stream = self._handle()
        channels = self.channels[0] if isinstance(self.channels, tuple) else self.channels
        dtype = self.dtype[0] if isinstance(self.dtype, tuple) else self.dtype
        data = np.empty((int(frames), channels), dtype=dtype)
        got = check(lib.sc_stream_read(stream, ffi.from_buffer(data), int(frames)), "read")
        if raw:
            return ffi.buffer(ffi.from_buffer(data))[:got * channels * dtype.itemsize]
        return data[:got]


class OutputStream(_StreamBase):
    """A stream that plays.  See :class:`Stream`; its callback is
    callback(out_data, time_info, status) -> flag."""

    def __init__(self, samplerate=None, blocksize=0, device=None, channels=None,
                 dtype="float32", latency=0, callback=None, finished_callback=None,
                 name=None, socket=None, **flags):
        idir = _Direction("input", False, None, None, 0)
        odir = _Direction("output", _UNSET if device is None else device, channels, dtype, latency)
        self._open_half(idir, odir, samplerate, blocksize, callback, finished_callback, name, socket)

    def write_length(self):
        """Frames that can be written without waiting."""
        return check(lib.sc_stream_write_available(self._handle()))

    @property
    def write_available(self):
        return self.write_length()

    def write(self, data):
        """Write audio: a (frames, channels) array, or 1-D data played on
        every channel.  Fewer columns than channels play silence on the
        rest; more are dropped.  Waits while the stream runs until all but
        the stream's latency has been taken."""
        stream = self._handle()
        channels = self.channels[1] if isinstance(self.channels, tuple) else self.channels
        dtype = self.dtype[1] if isinstance(self.dtype, tuple) else self.dtype
        if not isinstance(data, np.ndarray) or data.dtype != dtype:
            data = np.array(data, dtype=dtype)
        if data.ndim == 1:
            data = np.tile(data, (channels, 1)).T
        elif data.ndim != 2:
            raise ValueError("write() takes (frames,) or (frames, channels) data, not shape %s" %
                             (data.shape,))
        frames = data.shape[0]
        if data.shape[1] > channels:
            data = data[:, :channels]
        if data.shape[1] < channels:
            padded = np.zeros((frames, channels), dtype=dtype)
            padded[:, :data.shape[1]] = data
            data = padded
        data = np.ascontiguousarray(data)
        check(lib.sc_stream_write(stream, ffi.from_buffer(data), frames), "write")


class Stream(InputStream, OutputStream):
    """A stream that records and plays (full duplex; half duplex with
    input_device=False or output_device=False).

    samplerate: any rate (None: the card's); libsoundcard converts.
    blocksize: frames per callback (0: whatever suits the card).
    device, channels, dtype, latency: one value or an (input, output) pair;
    device is an index or a dict from devices() (None: the default);
    channels None means the device's maximum; latency in seconds (0: the
    lowest the card allows).  input_device/output_device (PySoundCard 0.4)
    name each direction's device; False leaves that direction out.

    callback(in_data, out_data, time_info, status) -> flag runs once per
    block on the library's thread; in_data and out_data are NumPy arrays
    over the library's buffers (out_data starts as silence); time_info has
    input_adc_time, current_time and output_dac_time; return continue_flag,
    complete_flag (end after this block plays) or abort_flag (end now).
    finished_callback() runs once when a callback stream ends.
    """

    def __init__(self, samplerate=None, blocksize=0, device=None, channels=None,
                 dtype="float32", latency=0, callback=None, finished_callback=None,
                 input_device=_UNSET, output_device=_UNSET, sample_rate=None, block_length=None,
                 name=None, socket=None, **flags):
        samplerate = samplerate if samplerate is not None else sample_rate
        blocksize = blocksize if blocksize else (block_length or 0)
        idevice, odevice = _split(device)
        if input_device is not _UNSET:
            idevice = input_device
        elif idevice is None:
            idevice = _UNSET
        if output_device is not _UNSET:
            odevice = output_device
        elif odevice is None:
            odevice = _UNSET
        ichannels, ochannels = _split(channels)
        idtype, odtype = _split(dtype)
        ilatency, olatency = _split(latency)
        idir = _Direction("input", idevice, ichannels, idtype, ilatency)
        odir = _Direction("output", odevice, ochannels, odtype, olatency)
        if not idir.enabled and not odir.enabled:
            raise ValueError("a stream needs an input or an output device")
        if not odir.enabled:
            self._open_half(idir, odir, samplerate, blocksize, callback and
                            (lambda i, t, s: callback(i, None, t, s)),
                            finished_callback, name, socket)
            return
        if not idir.enabled:
            self._open_half(idir, odir, samplerate, blocksize, callback and
                            (lambda o, t, s: callback(None, o, t, s)),
                            finished_callback, name, socket)
            return
        self.channels = idir.channels, odir.channels
        self.dtype = idir.dtype, odir.dtype
        self.device = idir.device, odir.device
        wrapper = None
        if callback is not None:
            def wrapper(iptr, optr, frames, t, status, _userdata):
                try:
                    ichannels, ochannels = self.channels
                    idata = _view(iptr, frames, ichannels, self.dtype[0])
                    odata = _view(optr, frames, ochannels, self.dtype[1])
                    return self._timed_call(callback, idata, odata, _time_dict(t), status)
                except BaseException as error:
                    return self._callback_failed(error)
        self._open(idir, odir, samplerate, blocksize, wrapper, finished_callback, name, socket)
        self.channels = idir.channels, odir.channels
