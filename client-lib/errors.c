#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static _Thread_local char last_error[512];

int sc__fail(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof(last_error), fmt, ap);
    va_end(ap);
    return err;
}

const char *sc_last_error(void)
{
    return last_error;
}

const char *sc_version(void)
{
    return SOUNDCARD_VERSION;
}

static const struct {
    const char *code;
    int err;
    const char *text;
} daemon_errors[] = {
    { "bad_request", SC_EBADREQUEST, "the daemon rejected the request as malformed" },
    { "unsupported_version", SC_EVERSION, "the daemon does not speak this protocol version" },
    { "unknown_op", SC_EUNKNOWNOP, "the daemon does not know this operation" },
    { "not_found", SC_ENOTFOUND, "no such stream or device" },
    { "invalid_state", SC_EINVALSTATE, "not possible in the current state" },
    { "limit", SC_ELIMIT, "a daemon limit was reached" },
    { "denied", SC_EDENIED, "permission denied by the daemon" },
    { "backend", SC_EBACKEND, "the sound card reported an error" },
    { "internal", SC_EINTERNAL, "internal daemon error" },
};

int sc__error_from_code(const char *code)
{
    for (size_t i = 0; i < sizeof(daemon_errors) / sizeof(daemon_errors[0]); i++)
        if (code && strcmp(code, daemon_errors[i].code) == 0)
            return daemon_errors[i].err;
    return SC_EPROTOCOL;
}

const char *sc_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case SC_ENOSERVER:
        return "no soundcard daemon answers at the socket";
    case SC_EDISCONNECTED:
        return "the connection to the soundcard daemon was lost";
    case SC_EPROTOCOL:
        return "the daemon's reply could not be understood";
    case SC_EUNSUPPORTED:
        return "not supported";
    case SC_ESTOPPED:
        return "the stream is not running";
    default:
        break;
    }
    for (size_t i = 0; i < sizeof(daemon_errors) / sizeof(daemon_errors[0]); i++)
        if (err == daemon_errors[i].err)
            return daemon_errors[i].text;
    if (err < 0 && err > -4096)
        return strerror(-err);
    return "unknown error";
}
