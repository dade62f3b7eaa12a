/* The card thread takes no page fault.
 *
 * A page fault on the RT path is a blocking system call in disguise: the
 * kernel allocates a page, and may wait for the mmap lock that the loop
 * thread holds while it maps or unmaps a stream's shared memory.  So
 * everything the card thread touches is in RAM before it does: the
 * engine's tables, every stream's memory, the tap's ring, the capture
 * source's samples.
 *
 * soundcardd runs the dummy card with a tap and the loopback capture
 * source (both hold memory the card thread writes).  One duplex stream
 * runs throughout; beside it a second stream is opened, started and closed
 * again and again, so the loop thread maps, locks and unmaps memory while
 * the card runs.  The card thread ("sc-card") must take no fault, minor or
 * major, from the first stream's start to the end.  Before the tap's ring
 * was locked it took one per 512 frames (94 a second). */
#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <soundcard/soundcard.h>

#include "harness.h"

#define WINDOW 3.0           /* seconds: well inside the tap ring's first 5.4 s */
#define SKIP 77              /* CTest's SKIP_RETURN_CODE */

/* The faults (minor + major) of the thread called `name` in process pid so
 * far, or -1 when there is no such thread. */
static long thread_faults(pid_t pid, const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *dir = opendir(path);
    long faults = -1;
    struct dirent *e;
    while (dir && faults < 0 && (e = readdir(dir))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/%d/task/%.16s/comm", (int)pid, e->d_name);
        if (strncmp(slurp(path), name, strlen(name)) != 0)   /* comm ends in a newline */
            continue;
        snprintf(path, sizeof path, "/proc/%d/task/%.16s/stat", (int)pid, e->d_name);
        /* After the name's ')': state ppid pgrp session tty tpgid flags
         * minflt cminflt majflt. */
        const char *after = strrchr(slurp(path), ')');
        long minflt, majflt;
        if (after && sscanf(after + 1, " %*c %*d %*d %*d %*d %*d %*u %ld %*u %ld", &minflt, &majflt) == 2)
            faults = minflt + majflt;
    }
    if (dir)
        closedir(dir);
    return faults;
}

static _Atomic long duplex_calls;

static int copy_through(const void *input, void *output, unsigned long frames, const sc_time_info *time,
                        unsigned status, void *userdata)
{
    (void)time, (void)status, (void)userdata;
    memcpy(output, input, frames * 2 * sizeof(float));
    atomic_fetch_add(&duplex_calls, 1);
    return SC_CONTINUE;
}

static sc_stream *open_stream(sc_client *c, const char *name, int inputs, sc_callback cb)
{
    sc_stream_params p;
    sc_stream_params_init(&p);
    p.name = name;
    p.input_channels = inputs;
    p.output_channels = 2;
    p.callback = cb;
    sc_stream *s = NULL;
    int err = sc_stream_open(c, &p, &s);
    CHECK(err == 0, "open %s: %s", name, err ? sc_last_error() : "ok");
    return err == 0 ? s : NULL;
}

int main(void)
{
    /* ThreadSanitizer's own memory comes in at the card thread's touches:
     * `perf record -e page-faults -t` on it had them in TSan's sync map
     * (MetaMap::GetSync) and vector clocks, none in soundcard's code. */
    const char *sanitized = getenv("SC_SANITIZED");
    if (sanitized && strstr(sanitized, "thread")) {
        printf("skipped: under ThreadSanitizer, whose own bookkeeping faults pages in on the card thread\n");
        return SKIP;
    }
    struct daemon d;
    daemon_start(&d, (const char *const[]){ "--tap", "@/tap.wav", "--capture", "loopback", NULL }, 10);
    cJSON *info = request_once(d.socket_path, "{\"op\":\"server.info\"}");
    bool locked = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(info, "memory_locked"));
    cJSON_Delete(info);
    if (!locked) {
        /* Without realtime rights soundcardd locks nothing (--realtime 0
         * or RLIMIT_MEMLOCK): nothing here to check. */
        printf("skipped: soundcardd could not lock its memory (memory_locked false)\n");
        daemon_stop(&d, 10);
        return SKIP;
    }
    long start = thread_faults(d.pid, "sc-card");
    CHECK(start >= 0, "soundcardd has no thread named sc-card");

    sc_client *c;
    if (sc_client_open(&c, d.socket_path, "rt-memory") < 0) {
        CHECK(0, "connect: %s", sc_last_error());
        daemon_stop(&d, 10);
        return harness_finish("rt_memory");
    }
    sc_stream *duplex = open_stream(c, "duplex", 2, copy_through);
    CHECK(duplex && sc_stream_start(duplex) == 0, "start duplex: %s", sc_last_error());
    const double until_running = now_seconds() + 5;
    while (atomic_load(&duplex_calls) < 10 && now_seconds() < until_running) {
        struct timespec ms = { 0, 1000000 };
        nanosleep(&ms, NULL);   /* the callback has no event to wait on here */
    }
    CHECK(atomic_load(&duplex_calls) >= 10, "the duplex stream's callback ran %ld times in 5 s",
          atomic_load(&duplex_calls));

    long before = thread_faults(d.pid, "sc-card");
    const double t0 = now_seconds();
    int cycles = 0;
    while (now_seconds() - t0 < WINDOW) {
        sc_stream *s = open_stream(c, "churn", 0, NULL);
        if (!s)
            break;
        static float block[2 * 256];
        CHECK(sc_stream_start(s) == 0 && sc_stream_write(s, block, 256) == 256, "churn: %s", sc_last_error());
        CHECK(sc_stream_close(s) == 0, "close churn: %s", sc_last_error());
        cycles++;
    }
    long after = thread_faults(d.pid, "sc-card");
    printf("info: the card thread took %ld faults before the first stream ran, %ld while it warmed up, and "
           "%ld in %.1f s beside %d stream opens and closes\n",
           start, before - start, after - before, now_seconds() - t0, cycles);
    CHECK(cycles >= 10, "only %d streams opened and closed in %.0f s", cycles, WINDOW);
    CHECK(after == before, "the card thread took %ld page faults in %.1f s: something it touches is not in RAM",
          after - before, WINDOW);

    if (duplex)
        sc_stream_close(duplex);
    sc_client_close(c);
    CHECK(daemon_stop(&d, 10) == 0, "soundcardd did not stop cleanly");
    return harness_finish("rt_memory");
}
