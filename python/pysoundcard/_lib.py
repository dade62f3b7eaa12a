"""libsoundcard through cffi's ABI mode: the declarations this package uses
(copied from soundcard/soundcard.h; cffi lays the structs out by the same C
rules) and the library, opened with dlopen.

The library is $SOUNDCARD_LIBRARY when set, else libsoundcard.so.0 as the
system loader finds it, else the copy installed next to this package
(PREFIX/lib or PREFIX/lib/<multiarch> for PREFIX/lib/python3/dist-packages).
"""

import os

from cffi import FFI

ffi = FFI()
ffi.cdef("""
typedef struct sc_client sc_client;
typedef struct sc_stream sc_stream;

enum { SC_ENOSERVER = -2000, SC_EDISCONNECTED, SC_EPROTOCOL, SC_EUNSUPPORTED,
       SC_ESTOPPED, SC_EBADREQUEST, SC_EVERSION, SC_EUNKNOWNOP, SC_ENOTFOUND,
       SC_EINVALSTATE, SC_ELIMIT, SC_EDENIED, SC_EBACKEND, SC_EINTERNAL };
typedef enum { SC_FLOAT32, SC_INT32, SC_INT24, SC_INT16, SC_INT8, SC_UINT8 } sc_format;

typedef struct { double input_adc_time, current_time, output_dac_time; } sc_time_info;
typedef int (*sc_callback)(const void *input, void *output, unsigned long frames,
                           const sc_time_info *time, unsigned status, void *userdata);

typedef struct {
    const char *name;
    int device;
    int input_channels;
    int output_channels;
    sc_format format;
    double samplerate;
    unsigned long blocksize;
    double latency;
    sc_callback callback;
    void *userdata;
    void (*finished)(void *userdata);
} sc_stream_params;

typedef struct {
    uint64_t frames;
    uint64_t underruns;
    uint64_t overruns;
    uint64_t clipped;
    float peak;
    uint32_t id;
    int callback_realtime;
} sc_stream_stats;

typedef struct {
    int index;
    char name[128];
    char api[32];
    int max_input_channels;
    int max_output_channels;
    double default_samplerate;
    double default_low_input_latency;
    double default_low_output_latency;
    double default_high_input_latency;
    double default_high_output_latency;
    int is_default_input;
    int is_default_output;
} sc_device_info;

typedef struct {
    char version[32];
    char backend[16];
    char device[128];
    double samplerate;
    unsigned long period;
    int channels;
    int clients;
    int streams;
    uint64_t xruns;
    double load;
    int realtime;
    int rt_priority;
    double input_latency;
    double output_latency;
    char state[16];
    int memory_locked;
} sc_server_info;

const char *sc_version(void);
const char *sc_strerror(int err);
const char *sc_last_error(void);
void sc_stream_params_init(sc_stream_params *p);
const char *sc_default_socket_path(void);

int  sc_client_open(sc_client **out, const char *socket_path, const char *name);
void sc_client_close(sc_client *c);
int  sc_device_count(sc_client *c);
int  sc_get_device_info(sc_client *c, int index, sc_device_info *out);
int  sc_get_server_info(sc_client *c, sc_server_info *out);

int  sc_stream_open(sc_client *c, const sc_stream_params *p, sc_stream **out);
int  sc_stream_start(sc_stream *s);
int  sc_stream_stop(sc_stream *s);
int  sc_stream_abort(sc_stream *s);
int  sc_stream_close(sc_stream *s);
long sc_stream_read(sc_stream *s, void *buf, unsigned long frames);
long sc_stream_write(sc_stream *s, const void *buf, unsigned long frames);
long sc_stream_read_available(sc_stream *s);
long sc_stream_write_available(sc_stream *s);
int  sc_stream_is_active(sc_stream *s);
double sc_stream_time(sc_stream *s);
int  sc_stream_latency(sc_stream *s, double *input, double *output);
int  sc_stream_get_stats(sc_stream *s, sc_stream_stats *out);
""")

SONAME = "libsoundcard.so.0"


def _candidates():
    explicit = os.environ.get("SOUNDCARD_LIBRARY")
    if explicit:
        return [explicit]
    # PREFIX/lib/python3/dist-packages/pysoundcard -> PREFIX
    here = os.path.dirname(os.path.abspath(__file__))
    prefix = os.path.normpath(os.path.join(here, "..", "..", "..", ".."))
    beside = [os.path.join(prefix, "lib", SONAME)]
    libdir = os.path.join(prefix, "lib")
    if os.path.isdir(libdir):
        beside += [os.path.join(libdir, d, SONAME) for d in sorted(os.listdir(libdir))
                   if d.endswith("-linux-gnu")]
    return [SONAME] + [path for path in beside if os.path.exists(path)]


def _open_library():
    tried = []
    for candidate in _candidates():
        try:
            return ffi.dlopen(candidate)
        except OSError as error:
            tried.append("%s (%s)" % (candidate, error))
    raise OSError("pysoundcard cannot load libsoundcard: tried " + "; ".join(tried) +
                  ". Install soundcard or set SOUNDCARD_LIBRARY to the library's path.")


lib = _open_library()


def error_text(err):
    """sc_strerror's text for err, with what went wrong in words."""
    detail = ffi.string(lib.sc_last_error()).decode(errors="replace")
    text = ffi.string(lib.sc_strerror(err)).decode(errors="replace")
    return "%s: %s" % (text, detail) if detail else text


def check(result, what=None):
    """Raise RuntimeError for a negative libsoundcard result; else return it."""
    if result < 0:
        message = error_text(result)
        raise RuntimeError("%s: %s" % (what, message) if what else message)
    return result


def open_client(socket=None, name=None):
    """A connection to soundcardd (a cdata sc_client*, closed by the caller)."""
    out = ffi.new("sc_client **")
    path = socket.encode() if socket else ffi.NULL
    label = (name or "pysoundcard").encode()[:63]
    check(lib.sc_client_open(out, path, label))
    return out[0]
