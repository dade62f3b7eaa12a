#include "memlock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"

static bool enabled;
static bool refused;

void memlock_enable(bool on)
{
    enabled = on;
}

int memlock_region(const void *addr, size_t len)
{
    if (!enabled || !addr || len == 0)
        return 0;
    /* The system call itself: the sanitizers' mlock() interceptor does
     * nothing and reports success. */
    if (syscall(SYS_mlock, addr, len) == 0)
        return 0;
    int err = errno;
    if (!refused) {
        struct rlimit rl = { 0 };
        getrlimit(RLIMIT_MEMLOCK, &rl);
        char limit[32] = "unlimited";
        if (rl.rlim_cur != RLIM_INFINITY)
            snprintf(limit, sizeof(limit), "%llu KiB", (unsigned long long)rl.rlim_cur / 1024);
        log_warn("cannot lock audio memory in RAM (mlock: %s; RLIMIT_MEMLOCK %s): it may be paged "
                 "out under memory pressure; raise LimitMEMLOCK (ulimit -l)",
                 strerror(err), limit);
    }
    refused = true;
    return -err;
}

bool memlock_complete(void)
{
    return enabled && !refused;
}
