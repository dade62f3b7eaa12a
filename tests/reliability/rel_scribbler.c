/* rel_scribbler: a hostile client that scribbles over its own stream's
 * shared memory, to show that it can hurt nobody but itself.
 *
 *   rel_scribbler --name N --layout duplex|mono [--seconds S] [--gain G] [--seed X]
 *   rel_scribbler --name N --attack wakefd|futex [--seconds S]
 *
 * Opens one stream through libsoundcard (duplex: 2 channels in and out;
 * mono: 1 channel out), primes and starts it, sets its gain (stream.set,
 * 0..16), then finds the stream's memfd among its descriptors
 * (/memfd:soundcard-stream-ID, protocol/shm.c names it) and its mapping in
 * /proc/self/maps, and:
 *   1. checks the seals hold: ftruncate (shrink and grow), fallocate beyond
 *      the end and F_ADD_SEALS all fail with EPERM;
 *   2. for S seconds (default 5), round after round with a random pause of
 *      0..1 ms, scribbles one of: random bytes over the whole header and
 *      both rings; ring indices set to huge, negative (0x80000000+), wrapped
 *      and just-off values around the daemon's; rings full of NaN, Inf,
 *      FLT_MAX, denormals and out-of-range samples with the write index a
 *      whole ring ahead; the header's geometry, timing and counters; holes
 *      punched in the memfd (allowed: the seals do not forbid them).
 * Prints "seal: ..." lines, then "N: stream ID rounds=R ..." and exits 0; 1
 * when a seal did not hold (named on stderr); 2 on a usage or setup error.
 * It never calls into the library while it scribbles, only to close at the
 * end.
 *
 * --attack wakefd does no scribbling: it goes for the stream's wake-up
 * descriptor instead.  When that was an eventfd (one open file description
 * shared with the daemon's RT thread), clearing O_NONBLOCK and saturating the
 * counter made the daemon's next write block forever.  Now it is the read end
 * of a pipe: the attack clears O_NONBLOCK on it, shrinks the pipe to one page,
 * tries to write into it (a read end: refused), and then never reads, so the
 * pipe fills within S seconds while the daemon goes on writing its own
 * non-blocking end.  (It asks for the pipe: SOUNDCARD_WAKEUP=pipe.)
 *
 * --attack futex goes for the futex wake-up words in the header instead:
 * FUTEX_THREADS threads wait on `wake.seq` (each goes back to sleep when
 * woken), while the main thread, for S seconds, keeps `wake.waiting` set and
 * writes random values into `wake.seq`, so the daemon calls FUTEX_WAKE every
 * period on a word with hundreds of waiters.  Prints "futex attack: ..."
 * once the threads wait, and exits 0 after S seconds, 4 if the daemon woke
 * more than 2 of them per period. */
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <soundcard/soundcard.h>

#include "../../protocol/shm.h"

struct target {
    int fd;
    struct shm_header *h;     /* the library's own mapping of the stream */
    size_t size;
    uint32_t capacity, in_channels, out_channels;
    float *play, *capture;    /* rings, as the header said before scribbling */
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static void random_bytes(void *dst, size_t len)
{
    unsigned char *p = dst;
    for (size_t i = 0; i < len; i += 8) {
        uint64_t r = rng();
        memcpy(p + i, &r, len - i < 8 ? len - i : 8);
    }
}

/* ---- finding the stream's memory ---- */

static int find_memfd(uint32_t id)
{
    char want[64], path[64], link[256];
    snprintf(want, sizeof(want), "/memfd:soundcard-stream-%u ", id);
    for (int fd = 0; fd < 1024; fd++) {
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(path, link, sizeof(link) - 2);
        if (n <= 0)
            continue;
        link[n] = ' ';    /* "...-1 (deleted)" and "...-1" both end the id */
        link[n + 1] = '\0';
        if (strstr(link, want))
            return fd;
    }
    return -1;
}

static void *find_mapping(uint32_t id, size_t *size)
{
    char want[64], line[512];
    snprintf(want, sizeof(want), "/memfd:soundcard-stream-%u ", id);
    FILE *f = fopen("/proc/self/maps", "r");
    void *found = NULL;
    while (f && !found && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = ' ';
        unsigned long start, end;
        if (strstr(line, want) && sscanf(line, "%lx-%lx", &start, &end) == 2) {
            found = (void *)start;
            *size = end - start;
        }
    }
    if (f)
        fclose(f);
    return found;
}

/* ---- 1. the seals ---- */

static int seal_failures;

static void expect_eperm(const char *what, int rc)
{
    bool held = rc < 0 && errno == EPERM;
    printf("seal: %s: %s\n", what, held ? "refused (EPERM)" : rc < 0 ? strerror(errno) : "ALLOWED");
    if (!held) {
        fprintf(stderr, "rel_scribbler: the seal did not hold: %s %s\n", what,
                rc < 0 ? strerror(errno) : "succeeded");
        seal_failures++;
    }
}

static void check_seals(const struct target *t)
{
    int seals = fcntl(t->fd, F_GET_SEALS);
    int want = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
    printf("seal: F_GET_SEALS: 0x%x (want shrink, grow and seal: 0x%x)\n", seals, want);
    if (seals < 0 || (seals & want) != want) {
        fprintf(stderr, "rel_scribbler: memfd seals 0x%x lack 0x%x\n", seals, want);
        seal_failures++;
    }
    expect_eperm("ftruncate to half the size", ftruncate(t->fd, (off_t)t->size / 2));
    expect_eperm("ftruncate to 0", ftruncate(t->fd, 0));
    expect_eperm("ftruncate to twice the size", ftruncate(t->fd, (off_t)t->size * 2));
    expect_eperm("fallocate a page beyond the end", fallocate(t->fd, 0, (off_t)t->size, 4096));
    expect_eperm("F_ADD_SEALS F_SEAL_WRITE", fcntl(t->fd, F_ADD_SEALS, F_SEAL_WRITE));
    expect_eperm("F_ADD_SEALS F_SEAL_SHRINK again", fcntl(t->fd, F_ADD_SEALS, F_SEAL_SHRINK));
}

/* ---- 2. the scribbling ---- */

/* Values around `base` (the other side's index) and absolute ones that sit
 * at the edges of uint32_t arithmetic. */
static uint32_t hostile_index(uint32_t base, uint32_t capacity)
{
    const uint32_t relative[] = { 0, 1, capacity - 1, capacity, capacity + 1, 2 * capacity, -1u,
                                  -capacity, -capacity - 1, 0x7fffffffu, 0x80000000u, 0x80000001u,
                                  0xfffffff0u, 0x40000000u };
    const uint32_t absolute[] = { 0, 1, 0x7fffffffu, 0x80000000u, 0xffffffffu, 0xfffffffeu };
    switch (rng() % 3) {
    case 0: return base + relative[rng() % (sizeof(relative) / sizeof(*relative))];
    case 1: return absolute[rng() % (sizeof(absolute) / sizeof(*absolute))];
    default: return (uint32_t)rng();
    }
}

static float hostile_float(void)
{
    const float special[] = { NAN, -NAN, INFINITY, -INFINITY, FLT_MAX, -FLT_MAX, 1e30f, -1e30f,
                              FLT_MIN / 2, -FLT_MIN / 4, 2.0f, -2.0f, 1.0000001f, 16.0f, -0.0f };
    uint64_t r = rng();
    if (r % 4 == 0) {   /* any bit pattern, signalling NaNs included */
        float f;
        uint32_t bits = (uint32_t)(r >> 32);
        memcpy(&f, &bits, sizeof(f));
        return f;
    }
    return special[(r >> 8) % (sizeof(special) / sizeof(*special))];
}

static void fill_hostile(float *ring, size_t samples)
{
    for (size_t i = 0; i < samples; i++)
        ring[i] = hostile_float();
}

enum scribble { RANDOM_ALL, PLAY_INDICES, CAPTURE_INDICES, HOSTILE_RING, GEOMETRY, TIMING_COUNTERS, PUNCH_HOLE,
                SCRIBBLE_KINDS };
static const char *const scribble_names[] = { "random", "play_index", "capture_index", "floats", "geometry",
                                              "timing", "punched" };

static void scribble(const struct target *t, enum scribble kind)
{
    struct shm_header *h = t->h;
    switch (kind) {
    case RANDOM_ALL:
        random_bytes(h, t->size);
        break;
    case PLAY_INDICES:
        atomic_store(&h->play.write_index, hostile_index(atomic_load(&h->play.read_index), t->capacity));
        if (rng() % 4 == 0)
            atomic_store(&h->play.read_index, (uint32_t)rng());
        break;
    case CAPTURE_INDICES:
        atomic_store(&h->capture.read_index, hostile_index(atomic_load(&h->capture.write_index), t->capacity));
        if (rng() % 4 == 0)
            atomic_store(&h->capture.write_index, (uint32_t)rng());
        break;
    case HOSTILE_RING:
        /* A whole ring of poison, and the daemon told it is all there. */
        if (t->play) {
            fill_hostile(t->play, (size_t)t->capacity * t->out_channels);
            atomic_store(&h->play.write_index, atomic_load(&h->play.read_index) + t->capacity);
        }
        if (t->capture)
            fill_hostile(t->capture, (size_t)t->capacity * t->in_channels);
        break;
    case GEOMETRY:
        random_bytes(h, offsetof(struct shm_header, play));
        break;
    case TIMING_COUNTERS:
        random_bytes(&h->timing, sizeof(h->timing));
        random_bytes(&h->counters, sizeof(h->counters));
        break;
    case PUNCH_HOLE: {
        size_t pages = t->size / 4096, first = rng() % pages, count = 1 + rng() % (pages - first);
        fallocate(t->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(first * 4096),
                  (off_t)(count * 4096));
        break;
    }
    default:
        break;
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- the wake-up descriptor attack ---- */

/* The stream's wake-up descriptor: the one pipe (or, from an old daemon, the
 * one eventfd) this process holds beyond stdin, stdout and stderr (which may
 * be pipes of whoever started it). */
static int find_wake_fd(void)
{
    char path[64], link[256];
    for (int fd = 3; fd < 1024; fd++) {
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(path, link, sizeof(link) - 1);
        if (n > 0 && (link[n] = '\0', strncmp(link, "pipe:", 5) == 0 || strcmp(link, "anon_inode:[eventfd]") == 0))
            return fd;
    }
    return -1;
}

/* Keep the playback ring full (of the silence it holds) behind the
 * library's back, so the daemon makes progress and wakes us every period. */
static void keep_ring_full(struct target *t)
{
    uint32_t read = atomic_load(&t->h->play.read_index);
    atomic_store(&t->h->play.write_index, read + t->capacity);
}

/* Block the descriptor, try to write it, then never read it: 0 once the
 * pipe was full for a while with the write refused. */
static int attack_wake_fd(struct target *t, double seconds)
{
    int fd = find_wake_fd();
    int flags = fd >= 0 ? fcntl(fd, F_GETFL) : -1;
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        fprintf(stderr, "rel_scribbler: wake-up descriptor %d: cannot make it blocking: %s\n", fd, strerror(errno));
        return 2;
    }
    uint64_t max = 0xfffffffffffffffeull;
    bool written = write(fd, &max, sizeof(max)) == sizeof(max);  /* saturates an eventfd */
    bool shrunk = fcntl(fd, F_SETPIPE_SZ, 4096) >= 0;
    printf("wake-up descriptor %d: O_NONBLOCK cleared, write %s, pipe %s; not reading it\n", fd,
           written ? "ACCEPTED" : "refused", shrunk ? "shrunk to one page" : "not shrunk");
    fflush(stdout);
    if (written)
        return 1;  /* a descriptor we can write into is one the daemon shares */
    int size = fcntl(fd, F_GETPIPE_SZ), queued = 0;
    double start = now();
    while (now() - start < seconds && (ioctl(fd, FIONREAD, &queued) < 0 || queued < size)) {
        keep_ring_full(t);
        struct timespec step = { 0, 10 * 1000000 };
        nanosleep(&step, NULL);
    }
    if (queued < size)
        return 3;
    printf("pipe full (%d bytes) after %.2f s; holding it 2 s more\n", queued, now() - start);
    fflush(stdout);
    for (double until = now() + 2; now() < until;) {
        keep_ring_full(t);
        struct timespec step = { 0, 10 * 1000000 };
        nanosleep(&step, NULL);
    }
    return 0;
}

/* ---- the futex attack ---- */

#define FUTEX_THREADS 256

static _Atomic bool futex_attack_over;
static _Atomic long futex_woken;

static void *futex_waiter(void *arg)
{
    _Atomic uint32_t *seq = arg;
    while (!atomic_load(&futex_attack_over)) {
        struct timespec limit = { 0, 200 * 1000000 };
        if (syscall(SYS_futex, seq, FUTEX_WAIT, atomic_load(seq), &limit, NULL, 0) == 0)
            atomic_fetch_add(&futex_woken, 1);
    }
    return NULL;
}

static int attack_futex(struct target *t, double seconds)
{
    struct shm_wake *w = &t->h->wake;
    pthread_t threads[FUTEX_THREADS];
    int started = 0;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    while (started < FUTEX_THREADS && pthread_create(&threads[started], &attr, futex_waiter, &w->seq) == 0)
        started++;
    pthread_attr_destroy(&attr);
    printf("futex attack: %d threads wait on wake.seq; wake.waiting kept set, wake.seq scribbled\n", started);
    fflush(stdout);
    long rounds = 0;
    double start = now();
    for (double end = start + seconds; now() < end; rounds++) {
        keep_ring_full(t);
        atomic_store(&w->waiting, 1);
        if (rounds % 4 == 0)
            atomic_store(&w->seq, (uint32_t)rng());
        struct timespec step = { 0, 100 * 1000 };
        nanosleep(&step, NULL);
    }
    atomic_store(&futex_attack_over, true);
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    /* The RT thread wakes at most SHM_WAKE_MAX_WAITERS of them per wake-up,
     * one wake-up per period here (a period of slack for the edges). */
    double periods = (now() - start) * t->h->rate / t->h->period_frames + 1;
    long woken = atomic_load(&futex_woken), most = (long)(SHM_WAKE_MAX_WAITERS * periods);
    printf("futex attack over: %ld rounds, %ld wake-ups of the waiting threads (at most %ld: %d per period)\n",
           rounds, woken, most, SHM_WAKE_MAX_WAITERS);
    return started != FUTEX_THREADS ? 3 : woken > most ? 4 : 0;
}

/* ---- setting up ---- */

static int setup_error(const char *what, int err)
{
    fprintf(stderr, "rel_scribbler: %s: %s (%s)\n", what, sc_strerror(err), sc_last_error());
    return 2;
}

/* blocksize: how often the daemon wakes us (0: the library's choice). */
static int open_stream(sc_client *c, const char *name, bool duplex, float gain, unsigned long blocksize,
                       sc_stream **s)
{
    sc_stream_params p;
    sc_stream_params_init(&p);
    p.name = name;
    p.blocksize = blocksize;
    p.input_channels = duplex ? 2 : 0;
    p.output_channels = duplex ? 2 : 1;
    p.latency = 0.02;
    int err = sc_stream_open(c, &p, s);
    if (err < 0)
        return setup_error("stream.open", err);
    float silence[2 * 512] = { 0 };
    sc_stream_write(*s, silence, 512);   /* a period queued: it starts running */
    if ((err = sc_stream_start(*s)) < 0)
        return setup_error("stream.start", err);
    if ((err = sc_stream_set_gain(*s, gain)) < 0)
        return setup_error("stream.set gain", err);
    return 0;
}

static int find_target(sc_stream *s, struct target *t)
{
    sc_stream_stats st;
    if (sc_stream_get_stats(s, &st) < 0)
        return setup_error("stats", -1);
    t->fd = find_memfd(st.id);
    t->h = find_mapping(st.id, &t->size);
    if (t->fd < 0 || !t->h || t->h->magic != SHM_MAGIC) {
        fprintf(stderr, "rel_scribbler: stream %u: memfd %d, mapping %p: not found in /proc/self\n", st.id, t->fd,
                (void *)t->h);
        return 2;
    }
    t->capacity = t->h->capacity;
    t->in_channels = t->h->input_channels;
    t->out_channels = t->h->output_channels;
    t->play = t->h->play_offset ? (float *)((char *)t->h + t->h->play_offset) : NULL;
    t->capture = t->h->capture_offset ? (float *)((char *)t->h + t->h->capture_offset) : NULL;
    printf("stream %u: memfd %d mapped at %p, %zu bytes, capacity %u, %u in, %u out\n", st.id, t->fd,
           (void *)t->h, t->size, t->capacity, t->in_channels, t->out_channels);
    return 0;
}

int main(int argc, char **argv)
{
    const char *name = NULL, *layout = "duplex", *attack = NULL;
    double seconds = 5, gain = 1;
    static const struct option opts[] = {
        { "name", required_argument, 0, 'n' }, { "layout", required_argument, 0, 'l' },
        { "seconds", required_argument, 0, 's' }, { "gain", required_argument, 0, 'g' },
        { "seed", required_argument, 0, 'r' }, { "attack", required_argument, 0, 'a' }, { 0, 0, 0, 0 },
    };
    for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (o) {
        case 'n': name = optarg; break;
        case 'l': layout = optarg; break;
        case 's': seconds = atof(optarg); break;
        case 'g': gain = atof(optarg); break;
        case 'r': rng_state = strtoull(optarg, NULL, 0) | 1; break;
        case 'a': attack = optarg; break;
        default: name = NULL; optind = argc + 1; break;
        }
    }
    bool duplex = strcmp(layout, "duplex") == 0;
    if (!name || optind != argc || (!duplex && strcmp(layout, "mono") != 0) || !(seconds > 0) ||
        (attack && strcmp(attack, "wakefd") != 0 && strcmp(attack, "futex") != 0)) {
        fprintf(stderr, "usage: rel_scribbler --name N --layout duplex|mono [--seconds S] [--gain G] [--seed X]\n"
                        "       rel_scribbler --name N --attack wakefd|futex [--seconds S]\n");
        return 2;
    }
    bool futex_attack = attack && strcmp(attack, "futex") == 0;
    if (attack && !futex_attack)
        setenv("SOUNDCARD_WAKEUP", "pipe", 1);  /* the wake-up pipe is what it attacks */
    sc_client *c;
    sc_stream *s;
    struct target t = { .fd = -1 };
    int err = sc_client_open(&c, NULL, name);
    if (err < 0)
        return setup_error("connect", err);
    if ((err = open_stream(c, name, duplex, (float)gain, attack ? 64 : 0, &s)) || (err = find_target(s, &t)))
        return err;
    if (attack) {
        if ((err = futex_attack ? attack_futex(&t, seconds) : attack_wake_fd(&t, seconds)))
            return err;
        sc_stream_close(s);
        sc_client_close(c);
        return 0;
    }
    check_seals(&t);
    fflush(stdout);

    long rounds = 0, count[SCRIBBLE_KINDS] = { 0 };
    for (double end = now() + seconds; now() < end; rounds++) {
        enum scribble kind = (enum scribble)(rng() % SCRIBBLE_KINDS);
        scribble(&t, kind);
        count[kind]++;
        struct timespec pause = { 0, (long)(rng() % 1000) * 1000 };
        nanosleep(&pause, NULL);
    }
    printf("%s: stream rounds=%ld", name, rounds);
    for (int k = 0; k < SCRIBBLE_KINDS; k++)
        printf(" %s=%ld", scribble_names[k], count[k]);
    printf("\n");
    sc_stream_close(s);
    sc_client_close(c);
    return seal_failures ? 1 : 0;
}
