"""scipy.io.wavfile.read for the examples, on the standard library's wave module.

The PySoundCard README reads its WAV file with scipy, which is not installed
here; play_file.py imports this instead (`from wavread import read as
wavread`) and is otherwise the README's example unchanged.

read(path) -> (rate, data) like scipy: data is a NumPy array of shape
(frames,) for a mono file and (frames, channels) otherwise, in the file's
own integer type: uint8 for 8-bit, int16 for 16-bit, int32 for 24-bit
(left-justified, as scipy does) and 32-bit PCM.  The wave module reads
integer PCM only (no float or compressed WAV).
"""
import wave

import numpy as np

__all__ = ['read']


def read(path):
    with wave.open(str(path), 'rb') as w:
        rate = w.getframerate()
        channels = w.getnchannels()
        width = w.getsampwidth()
        raw = w.readframes(w.getnframes())
    if width == 1:
        data = np.frombuffer(raw, dtype=np.uint8)
    elif width == 2:
        data = np.frombuffer(raw, dtype='<i2')
    elif width == 3:
        # Each 3-byte little-endian sample goes into the top of an int32.
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        data = np.zeros((len(b), 4), dtype=np.uint8)
        data[:, 1:] = b
        data = data.view('<i4').reshape(-1)
    elif width == 4:
        data = np.frombuffer(raw, dtype='<i4')
    else:
        raise ValueError('%s: %d-byte samples are not supported' % (path, width))
    data = data.astype(data.dtype.newbyteorder('='))    # native order, writable copy
    if channels > 1:
        data = data.reshape(-1, channels)
    return rate, data
