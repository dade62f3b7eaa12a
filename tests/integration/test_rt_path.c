/* What the card thread does: the RT path's rules, watched from outside.
 *
 * soundcardd runs the dummy card with a tap and the loopback capture
 * source (both hold memory the card thread writes).  Two duplex streams
 * run throughout, one woken by futex and one by pipe; beside them a third
 * stream is opened, started and closed again and again, by futex and by
 * pipe in turn, so the loop thread maps, locks and unmaps memory and the
 * engine adds and drops streams while the card runs.  Meanwhile the card
 * thread ("sc-card"):
 *
 *   - takes no page fault, minor or major.  A fault is a blocking system
 *     call in disguise: the kernel allocates a page, and may wait for the
 *     mmap lock that the loop thread holds while it maps a stream.  Before
 *     the tap's ring was locked it took one per 512 frames (94 a second).
 *   - makes no system call but clock_nanosleep (its period), FUTEX_WAKE
 *     (a client) and write to a non-blocking descriptor (a wake-up pipe,
 *     the loop's eventfd): no lock (FUTEX_WAIT), no allocation (mmap,
 *     brk), no logging, no I/O.  strace, attached to that thread alone,
 *     lists them; it slows the thread (card xruns do not matter here, and
 *     the xrun path must keep the same rules).
 *
 * The faults are counted over one window with no tracer, the calls over a
 * second one under strace.  Every step has a deadline kept by a watchdog
 * thread: a card thread that stops cycling leaves the library's requests
 * (start and abort are answered by the engine) waiting for ever, and a
 * test killed at CTest's timeout says nothing of why.  The watchdog
 * (tests/support/watchdog.h) prints what the card thread and strace were
 * doing; if the card thread sat in a tracing stop, it kills strace and lets
 * the test go on without the call count, since then strace, not
 * soundcardd, stopped it. */
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <soundcard/soundcard.h>

#include "harness.h"
#include "proc_tasks.h"
#include "watchdog.h"

#define WINDOW 3.0           /* seconds: well inside the tap ring's first 5.4 s */
#define SKIP 77              /* CTest's SKIP_RETURN_CODE */
#define STRACE "/usr/bin/strace"

/* Its faults so far, minor + major, or -1. */
static long thread_faults(pid_t pid, int tid)
{
    struct task t;
    return proc_task(pid, tid, &t) ? t.faults : -1;
}

/* Whether a tracer is attached to the thread, waiting at most 5 s. */
static bool wait_traced(pid_t pid, int tid)
{
    char path[128];
    snprintf(path, sizeof path, "/proc/%d/task/%d/status", (int)pid, tid);
    for (double until = now_seconds() + 5; now_seconds() < until;) {
        const char *tracer = strstr(slurp(path), "TracerPid:");
        if (tracer && atoi(tracer + strlen("TracerPid:")) != 0)
            return true;
        struct timespec ms = { 0, 1000000 };
        nanosleep(&ms, NULL);   /* polling /proc, which has no event to wait on */
    }
    return false;
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

/* `wakeup`: "futex" or "pipe" (SOUNDCARD_WAKEUP, read at the open). */
static sc_stream *open_stream(sc_client *c, const char *name, const char *wakeup, sc_callback cb)
{
    setenv("SOUNDCARD_WAKEUP", wakeup, 1);
    sc_stream_params p;
    sc_stream_params_init(&p);
    p.name = name;
    p.input_channels = cb ? 2 : 0;
    p.output_channels = 2;
    p.callback = cb;
    sc_stream *s = NULL;
    int err = sc_stream_open(c, &p, &s);
    CHECK(err == 0, "open %s (%s): %s", name, wakeup, err ? sc_last_error() : "ok");
    return err == 0 ? s : NULL;
}

/* Open, start, write a block, close, by futex and pipe in turn, for WINDOW
 * seconds; how many times. */
static int churn(sc_client *c)
{
    int cycles = 0;
    static float block[2 * 256];
    for (const double t0 = now_seconds(); now_seconds() - t0 < WINDOW; cycles++) {
        sc_stream *s = open_stream(c, "churn", cycles % 2 ? "pipe" : "futex", NULL);
        if (!s)
            break;
        CHECK(sc_stream_start(s) == 0 && sc_stream_write(s, block, 256) == 256, "churn: %s", sc_last_error());
        CHECK(sc_stream_close(s) == 0, "close churn: %s", sc_last_error());
    }
    return cycles;
}

/* The calls glibc makes as a thread ends (a card closed while traced). */
static bool thread_exit_call(const char *line)
{
    return strncmp(line, "rt_sigprocmask(", 15) == 0 || strncmp(line, "madvise(", 8) == 0 ||
           strncmp(line, "exit(", 5) == 0;
}

static void forbidden_call(long *other, const char *line)
{
    if ((*other)++ < 5)
        fprintf(stderr, "the card thread made a call the RT path must not: %s", line);
}

/* Every line of strace's log names a call the RT path may make; the
 * descriptors it wrote to, if still open, are non-blocking.  A thread that
 * was closed ends with glibc's exit calls: those count only as its end.
 * `complete`: strace ran the whole window, so the log must hold enough to
 * judge. */
static void check_calls(pid_t pid, const char *log, bool complete)
{
    FILE *f = fopen(log, "r");
    CHECK(f != NULL, "no strace log %s", log);
    if (!f)
        return;
    long sleeps = 0, wakes = 0, writes = 0, other = 0;
    char line[512], ending[4][512];  /* exit calls so far in a row: the thread's end, if nothing follows */
    int nending = 0;
    bool exited = false;
    while (fgets(line, sizeof line, f)) {
        int fd;
        if (line[0] == '+' || line[0] == '-' || strncmp(line, "<...", 4) == 0 || strstr(line, "resumed>"))
            continue;  /* strace's own notes, and the ends of calls already counted */
        if (thread_exit_call(line) && nending < 4 && !exited) {
            snprintf(ending[nending++], sizeof ending[0], "%s", line);
            exited = strncmp(line, "exit(", 5) == 0;
            continue;
        }
        for (int i = 0; i < nending; i++)  /* more came after them: not an ending */
            forbidden_call(&other, ending[i]);
        nending = 0;
        exited = false;
        if (strncmp(line, "clock_nanosleep(", 16) == 0) {
            sleeps++;
        } else if (strncmp(line, "futex(", 6) == 0 && strstr(line, "FUTEX_WAKE")) {
            wakes++;
        } else if (sscanf(line, "write(%d,", &fd) == 1 && fd > 2) {
            writes++;
            char path[64];
            snprintf(path, sizeof path, "/proc/%d/fdinfo/%d", (int)pid, fd);
            const char *flags = strstr(slurp(path), "flags:");
            if (flags)
                CHECK(strtol(flags + strlen("flags:"), NULL, 8) & O_NONBLOCK,
                      "the card thread wrote to descriptor %d, which blocks", fd);
        } else {
            forbidden_call(&other, line);
        }
    }
    fclose(f);
    for (int i = 0; !exited && i < nending; i++)  /* the log ended in them, but no exit */
        forbidden_call(&other, ending[i]);
    printf("info: the card thread made %ld clock_nanosleep, %ld FUTEX_WAKE and %ld write calls, and %ld "
           "others%s\n", sleeps, wakes, writes, other, exited ? "; then it ended (glibc's thread exit)" : "");
    CHECK(other == 0, "the card thread made %ld system calls that may block or allocate (above)", other);
    CHECK(!complete || (sleeps > 100 && wakes > 100 && writes > 0),
          "strace saw too little to judge: %ld sleeps, %ld wake-ups, %ld writes", sleeps, wakes, writes);
    CHECK(!complete || !exited, "the card thread ended while strace watched, with no card lost");
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
    setvbuf(stdout, NULL, _IOLBF, 0);  /* in order with the watchdog's report */
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
    const int tid = proc_find_thread(d.pid, "sc-card");
    CHECK(tid > 0, "soundcardd has no thread named sc-card");
    if (tid <= 0) {
        daemon_stop(&d, 10);
        return harness_finish("rt_path");
    }
    static struct watchdog w;
    watchdog_start(&w, d.pid, d.log_path);

    watch_phase(&w, "starting two duplex streams", 15);
    sc_client *c = NULL;
    CHECK(sc_client_open(&c, d.socket_path, "rt-path") == 0, "connect: %s", sc_last_error());
    if (!c) {
        watchdog_stop(&w);
        daemon_stop(&d, 10);
        return harness_finish("rt_path");
    }
    sc_stream *duplex[2] = { open_stream(c, "duplex-futex", "futex", copy_through),
                             open_stream(c, "duplex-pipe", "pipe", copy_through) };
    for (int i = 0; i < 2; i++)
        CHECK(duplex[i] && sc_stream_start(duplex[i]) == 0, "start duplex %d: %s", i, sc_last_error());
    const double until_running = now_seconds() + 5;
    while (atomic_load(&duplex_calls) < 20 && now_seconds() < until_running) {
        struct timespec ms = { 0, 1000000 };
        nanosleep(&ms, NULL);   /* the callbacks have no event to wait on here */
    }
    CHECK(atomic_load(&duplex_calls) >= 20, "the duplex streams' callbacks ran %ld times in 5 s",
          atomic_load(&duplex_calls));

    watch_phase(&w, "opening and closing streams (page faults)", WINDOW + 15);
    const long before = thread_faults(d.pid, tid);
    const double t0 = now_seconds();
    const int cycles = churn(c);
    const long after = thread_faults(d.pid, tid);
    printf("info: %d stream opens and closes in %.1f s; the card thread took %ld page faults\n", cycles,
           now_seconds() - t0, after - before);
    CHECK(cycles >= 10, "only %d streams opened and closed in %.0f s", cycles, WINDOW);
    CHECK(before >= 0 && after == before,
          "the card thread took %ld page faults in %.1f s: something it touches is not in RAM", after - before,
          WINDOW);

    watch_phase(&w, "attaching strace to the card thread", 15);
    char tid_arg[16];
    snprintf(tid_arg, sizeof tid_arg, "%d", tid);
    char log_path[256], err_path[256];
    snprintf(log_path, sizeof log_path, "%s", daemon_path(&d, "card-thread.strace"));
    snprintf(err_path, sizeof err_path, "%s", daemon_path(&d, "strace.err"));
    pid_t tracer = spawn_process((const char *const[]){ STRACE, "-qq", "-p", tid_arg, "-o", log_path, NULL },
                                 NULL, NULL, err_path);
    watch_tracer(&w, tracer);
    bool traced = tracer > 0 && wait_traced(d.pid, tid);
    if (!traced && strstr(slurp(err_path), "Operation not permitted"))
        /* A container without ptrace: the page faults are still counted. */
        printf("skipped the system calls: strace may not attach here: %s", slurp(err_path));
    else
        CHECK(traced, "%s did not attach to the card thread in 5 s (scripts/deps.sh installs strace): %s", STRACE,
              slurp(err_path));

    watch_phase(&w, "opening and closing streams under strace", WINDOW + 15);
    const int traced_cycles = traced ? churn(c) : 0;
    watch_phase(&w, "stopping strace", 15);
    const bool strace_hung = watch_tracer(&w, 0);
    /* Slowed past the card watchdog's second, the card is closed and opened
     * again: the traced thread is gone, and strace with it. */
    const bool card_lost = strstr(slurp(d.log_path), "stopped running its cycle") != NULL;
    if (tracer > 0) {
        kill(tracer, SIGINT);       /* it detaches and exits 128 + SIGINT */
        int rc = wait_child(tracer, 10);
        CHECK(!traced || strace_hung || card_lost || rc == 128 + SIGINT,
              "strace, interrupted, exited with %d (-1: hung)", rc);
    }
    if (strace_hung)
        printf("info: strace held the card thread stopped until the watchdog killed it (report above); "
               "the streams went on without it: the calls it logged are checked, not their number\n");
    if (card_lost)
        printf("info: under strace the card thread went a second without a cycle, and soundcardd closed the "
               "card and opened it again: the calls strace logged are checked, not their number\n");
    if (traced) {
        printf("info: %d stream opens and closes under strace\n", traced_cycles);
        check_calls(d.pid, log_path, !strace_hung && !card_lost);
    }

    watch_phase(&w, "closing", 20);
    for (int i = 0; i < 2; i++)
        if (duplex[i])
            sc_stream_close(duplex[i]);
    sc_client_close(c);
    CHECK(daemon_stop(&d, 10) == 0, "soundcardd did not stop cleanly");
    watchdog_stop(&w);
    if (harness_failures) {
        fprintf(stderr, "soundcardd's log (%s):\n", d.log_path);
        print_file(d.log_path);
    }
    return harness_finish("rt_path");
}
