"""How small a callback block pysoundcard sustains on this machine.

    PYTHONPATH=python /usr/bin/python3 python/benchmarks/blocksizes.py [SECONDS] [BLOCKSIZE...]

Against the soundcardd at $SOUNDCARD_SOCKET: for each blocksize, a
full-duplex loopback callback stream (out_data[:] = in_data) at 44100 Hz
runs SECONDS; prints the callbacks made against those expected, the daemon's
underrun count for the stream, the blocks whose status said output
underflow, the share of time spent in the Python callback, and whether the
library's callback thread got SCHED_FIFO.
"""

import sys
import time

from pysoundcard import Stream, continue_flag

RATE = 44100
UNDERFLOW = 4


def run(blocksize, seconds):
    seen = {"calls": 0, "underflows": 0}

    def callback(in_data, out_data, time_info, status):
        out_data[:] = in_data
        seen["calls"] += 1
        if status & UNDERFLOW:
            seen["underflows"] += 1
        return continue_flag

    stream = Stream(samplerate=RATE, blocksize=blocksize, callback=callback,
                    name="blocksize-%d" % blocksize)
    stream.start()
    time.sleep(seconds)
    load = stream.cpu_load()
    stats = stream.stats()
    stream.stop()
    stream.close()
    expected = RATE * seconds / blocksize
    print("blocksize %3d: %7d callbacks (%.1f%% of %d), underruns %d, underflow blocks %d, "
          "callback load %.0f%%, callback thread %s"
          % (blocksize, seen["calls"], 100.0 * seen["calls"] / expected, expected,
             stats["underruns"], seen["underflows"], 100 * load,
             "SCHED_FIFO" if stats["callback_realtime"] == 1 else "normal"))
    sys.stdout.flush()


if __name__ == "__main__":
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10
    for blocksize in [int(b) for b in sys.argv[2:]] or [16, 4, 2]:
        run(blocksize, seconds)
