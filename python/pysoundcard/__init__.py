"""pysoundcard: PySoundCard's API on soundcardd, through libsoundcard.

Scripts written for PySoundCard (PortAudio + CFFI + NumPy) run unchanged;
their streams share the card with every other soundcardd client.  Streams
are NumPy-based, in read/write mode or callback mode:

    from pysoundcard import Stream

    s = Stream(samplerate=44100, blocksize=16)
    s.start()
    for n in range(int(44100 * 5 / 16)):
        s.write(s.read(16))
    s.stop()

The library is loaded from $SOUNDCARD_LIBRARY, else as libsoundcard.so.0;
the daemon is found at $SOUNDCARD_SOCKET, else the per-user socket, else
/run/soundcard/socket (or pass socket= to a stream).
"""

from ._devices import (apis, default_api, default_hostapi, default_input_device,
                       default_output_device, device_info, devices, hostapi_info)
from ._lib import ffi as _ffi, lib as _lib
from ._stream import (InputStream, OutputStream, Stream, abort_flag, complete_flag,
                      continue_flag)

__version__ = "0.5.2"  # the PySoundCard API version this follows


def library_version():
    """libsoundcard's version string."""
    return _ffi.string(_lib.sc_version()).decode()


__all__ = ["Stream", "InputStream", "OutputStream", "continue_flag", "complete_flag",
           "abort_flag", "devices", "device_info", "apis", "hostapi_info", "default_api",
           "default_hostapi", "default_input_device", "default_output_device",
           "library_version"]
