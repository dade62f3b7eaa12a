#include "fault.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

static uv_signal_t fault_signal;
static bool fault_armed;

int64_t fault_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int fault_parse(struct backend_fault *f, const char *spec, char *err, size_t err_len)
{
    f->kind = FAULT_NONE;
    if (!spec[0])
        return 0;
    const char *colon = strchr(spec, ':');
    char *end = NULL;
    unsigned long ms = colon ? strtoul(colon + 1, &end, 10) : 0;
    size_t kind_len = colon ? (size_t)(colon - spec) : 0;
    if (kind_len == 5 && strncmp(spec, "stall", 5) == 0)
        f->kind = FAULT_STALL;
    else if (kind_len == 4 && strncmp(spec, "hang", 4) == 0)
        f->kind = FAULT_HANG;
    else if (kind_len == 4 && strncmp(spec, "fail", 4) == 0)
        f->kind = FAULT_FAIL;
    if (f->kind == FAULT_NONE || !end || end == colon + 1 || *end || ms < 1 || ms > 60000) {
        f->kind = FAULT_NONE;
        snprintf(err, err_len, "dummy-fault: '%s' is not stall:MS, hang:MS or fail:MS with MS in 1..60000", spec);
        return -1;
    }
    f->ms = (uint32_t)ms;
    return 0;
}

static void on_sigusr1(uv_signal_t *handle, int signum)
{
    (void)signum;
    struct backend_fault *f = handle->data;
    if (f->kind == FAULT_FAIL)
        atomic_store(&f->unavailable_until_ns, fault_now_ns() + (int64_t)f->ms * 1000000);
    atomic_fetch_add(&f->triggered, 1);
    static const char *const names[] = { [FAULT_STALL] = "stall", [FAULT_HANG] = "hang", [FAULT_FAIL] = "failure" };
    log_warn("dummy-fault: injecting a %s of %u ms (SIGUSR1)", names[f->kind], f->ms);
}

void fault_arm(struct backend_fault *f, uv_loop_t *loop)
{
    if (f->kind == FAULT_NONE || fault_armed)
        return;
    uv_signal_init(loop, &fault_signal);
    fault_signal.data = f;
    uv_signal_start(&fault_signal, on_sigusr1, SIGUSR1);
    fault_armed = true;
}

void fault_disarm(void)
{
    if (!fault_armed)
        return;
    uv_close((uv_handle_t *)&fault_signal, NULL);
    fault_armed = false;
}
