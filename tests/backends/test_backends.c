/* The same integration checks on each backend, and what happens when the
 * card fails.
 *
 *   test_backends dummy|portaudio|jack
 *       two clients play 440 Hz and 1000 Hz at once: the card's output holds
 *       both at their level with no gap and neither underruns; a recorder
 *       gets the card's 700 Hz input at its level; a client that stops
 *       writing underruns alone; server.info names the backend and the rate
 *       and period really in use; `soundcard devices` lists the card.
 *   test_backends errors
 *       a PortAudio device that does not exist, and JACK with no server:
 *       soundcardd exits non-zero with one clear line.
 *   test_backends jack_loss|portaudio_loss
 *       with a stream playing and a subscriber listening, jackd is killed
 *       (for portaudio: the jackd behind the ALSA `jack` PCM): soundcardd
 *       stays up, says "lost" (event, server.info, stats) and keeps the
 *       stream; jackd comes back under the same name: "running" again, and
 *       the stream is heard again.
 *
 * Each backend gets a "rig": a private temp dir; for jack and portaudio a
 * jackd of its own (dummy driver, 48000 Hz, 256 frames, a unique name) that
 * this test starts and stops by PID; for portaudio an ~/.asoundrc (HOME is
 * the rig dir) whose `sctest` PCM plays into out.raw and captures from
 * in.raw through the ALSA file plugin, paced by that jackd through the ALSA
 * jack plugin (the null PCM is not paced).  What the card played comes from
 * --tap (dummy), out.raw (portaudio) or a JACK client recording
 * soundcard:playback_* (jack); what it captures from --capture sine:700
 * (dummy), in.raw (portaudio) or a JACK client playing into
 * soundcard:capture_* (jack). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <soundcard/soundcard.h>

#include "harness.h"
#include "wavfile.h"

#define RATE 48000
#define PERIOD 256

enum kind { DUMMY, PORTAUDIO, JACK };

struct rig {
    enum kind kind;
    const char *backend;
    char dir[64];          /* ours: asoundrc, raw files, recordings, logs */
    char server[64];       /* the JACK server's name */
    pid_t jackd;
    pid_t feeder;          /* jack: plays 700 Hz into soundcard:capture_* */
    pid_t recorder;        /* jack: records soundcard:playback_* */
    char played[256];      /* a WAV of what the card played */
    char args[8][160];
    const char *argv[16];
};

/* ------------------------------------------------------------------ */
/* processes                                                          */

static const char *rig_path(struct rig *r, const char *name)
{
    static char path[4][256];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, 256, "%s/%s", r->dir, name);
    return p;
}

/* fork+execvp, tied to this test by PR_SET_PDEATHSIG like the harness's
 * children; stdout to out_path or a pipe (*out_pipe), stderr to err_path. */
static pid_t start(const char *const *argv, const char *out_path, const char *err_path, int *out_pipe)
{
    int fds[2] = { -1, -1 };
    if (out_pipe && pipe2(fds, O_CLOEXEC) < 0) {
        perror("pipe");
        exit(1);
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        if (out_pipe)
            dup2(fds[1], 1);
        else if (out_path)
            dup2(open(out_path, O_WRONLY | O_CREAT | O_APPEND, 0644), 1);
        if (err_path)
            dup2(open(err_path, O_WRONLY | O_CREAT | O_APPEND, 0644), 2);
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (out_pipe) {
        close(fds[1]);
        *out_pipe = fds[0];
    }
    return pid;
}

/* Wait for the line "ready" on fd, at most `timeout` s; closes fd. */
static bool wait_ready(int fd, double timeout)
{
    char buf[256];
    size_t len = 0;
    double deadline = now_seconds() + timeout;
    bool ready = false;
    while (!ready) {
        double left = deadline - now_seconds();
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (left <= 0 || poll(&p, 1, (int)(left * 1000) + 1) <= 0)
            break;
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        ready = strstr(buf, "ready\n") != NULL;
        if (len == sizeof(buf) - 1)
            len = 0;
    }
    close(fd);
    return ready;
}

static bool process_alive(pid_t pid)
{
    return pid > 0 && waitpid(pid, NULL, WNOHANG) == 0;
}

/* ------------------------------------------------------------------ */
/* jackd                                                              */

static void jackd_spawn(struct rig *r)
{
    const char *argv[] = { "jackd", "-n", r->server, "-d", "dummy", "-r", "48000", "-p", "256", NULL };
    r->jackd = start(argv, rig_path(r, "jackd.log"), rig_path(r, "jackd.log"), NULL);
}

/* Start jackd and wait until it is up: it cannot tell us when it is ready,
 * so the helper polls for its system ports, with a deadline.  Only while no
 * other client is opening: libjack (jackd2 1.9.21) has a race where a
 * client that closes while another one is inside jack_client_open leaves
 * that one's process with a stale wakeup for its slot, and the next client
 * given the same slot never runs (jackd logs "client = ... was not
 * finished, state = Triggered" every cycle). */
static void jackd_start(struct rig *r)
{
    jackd_spawn(r);
    const char *wait[] = { harness_bin("sc_jack_helper"), "wait", r->server, "15", NULL };
    pid_t w = start(wait, NULL, rig_path(r, "jackd.log"), NULL);
    if (wait_child(w, 20) != 0 || !process_alive(r->jackd)) {
        fprintf(stderr, "FAIL: jackd '%s' did not come up; its log:\n%s\n", r->server,
                slurp(rig_path(r, "jackd.log")));
        exit(1);
    }
}

static void jackd_stop(struct rig *r, int sig)
{
    if (r->jackd <= 0)
        return;
    kill(r->jackd, sig);
    int rc = wait_child(r->jackd, 10);
    CHECK(sig != SIGTERM || rc == 0, "jackd exited with %d", rc);
    r->jackd = 0;
}

/* SIGKILLed servers leave their semaphores and socket in /dev/shm; ours
 * have the unique server name in theirs. */
static void jack_cleanup_shm(struct rig *r)
{
    char needle[80];
    snprintf(needle, sizeof(needle), "_%s_", r->server);
    DIR *dir = opendir("/dev/shm");
    struct dirent *e;
    while (dir && (e = readdir(dir)))
        if (strstr(e->d_name, needle)) {
            char path[512];
            snprintf(path, sizeof(path), "/dev/shm/%s", e->d_name);
            unlink(path);
        }
    if (dir)
        closedir(dir);
}

static pid_t jack_helper(struct rig *r, const char *const *args, const char *what)
{
    const char *argv[16] = { harness_bin("sc_jack_helper") };
    int n = 1;
    for (; args[n - 1] && n < 15; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    int fd;
    pid_t pid = start(argv, NULL, rig_path(r, "helper.log"), &fd);
    if (!wait_ready(fd, 15)) {
        fprintf(stderr, "FAIL: the JACK %s did not start; helper log:\n%s\n", what,
                slurp(rig_path(r, "helper.log")));
        kill(pid, SIGKILL);
        wait_child(pid, 5);
        return -1;
    }
    return pid;
}

/* ------------------------------------------------------------------ */
/* raw float32 stereo files (the ALSA file plugin's)                  */

/* in.raw: `seconds` of a stereo sine. */
static void write_sine_raw(const char *path, double hz, float amp, double seconds)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    static float buf[2 * RATE];
    long total = (long)(seconds * RATE);
    for (long done = 0; done < total;) {
        long n = total - done < RATE ? total - done : RATE;
        for (long i = 0; i < n; i++)
            buf[2 * i] = buf[2 * i + 1] = amp * (float)sin(2 * M_PI * hz * (double)(done + i) / RATE);
        fwrite(buf, sizeof(float) * 2, (size_t)n, f);
        done += n;
    }
    fclose(f);
}

/* Frames [from, to) of a raw float32 stereo file to a float WAV; to < 0:
 * the end.  Returns the frames written, or -1. */
static long raw_to_wav(const char *raw, const char *wav, long from, long to)
{
    FILE *in = fopen(raw, "rb");
    if (!in)
        return -1;
    SF_INFO info = { .samplerate = RATE, .channels = 2, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT };
    SNDFILE *out = sf_open(wav, SFM_WRITE, &info);
    if (!out) {
        fclose(in);
        return -1;
    }
    fseek(in, from * 8, SEEK_SET);
    static float buf[2 * 4096];
    long done = 0;
    size_t n;
    while ((to < 0 || from + done < to) &&
           (n = fread(buf, 8, to < 0 || to - from - done > 4096 ? 4096 : (size_t)(to - from - done), in)) > 0) {
        sf_writef_float(out, buf, (sf_count_t)n);
        done += (long)n;
    }
    sf_close(out);
    fclose(in);
    return done;
}

static long file_frames(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)(st.st_size / 8) : -1;
}

/* ------------------------------------------------------------------ */
/* rigs                                                               */

static void rig_init(struct rig *r, const char *backend)
{
    memset(r, 0, sizeof(*r));
    r->backend = backend;
    r->kind = strcmp(backend, "jack") == 0 ? JACK : strcmp(backend, "portaudio") == 0 ? PORTAUDIO : DUMMY;
    snprintf(r->dir, sizeof(r->dir), "/tmp/sc-backend-XXXXXX");
    if (!mkdtemp(r->dir)) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(r->server, sizeof(r->server), "sc-test-%d-%s", (int)getpid(), backend);
    /* Our clients of the JACK server (the daemon, PortAudio's JACK host
     * API, the ALSA jack PCM, the helper) find it by name and never start
     * one themselves. */
    setenv("JACK_DEFAULT_SERVER", r->server, 1);
    setenv("JACK_NO_START_SERVER", "1", 1);
    setenv("JACK_NO_AUDIO_RESERVATION", "1", 1);
    if (r->kind == PORTAUDIO) {
        FILE *f = fopen(rig_path(r, ".asoundrc"), "w");
        if (!f) {
            perror("asoundrc");
            exit(1);
        }
        /* Two file PCMs: one per direction, else both write one file. */
        fprintf(f,
                "pcm.sctest { type asym  playback.pcm \"scplay\"  capture.pcm \"sccap\" }\n"
                "pcm.scplay { type file  slave.pcm \"scjack\"  file \"%s/out.raw\"  format \"raw\" }\n"
                "pcm.sccap  { type file  slave.pcm \"scjack\"  file \"%s/cap.raw\"  infile \"%s/in.raw\""
                "  format \"raw\" }\n"
                "pcm.scjack { type jack  playback_ports { 0 system:playback_1 1 system:playback_2 }"
                "  capture_ports { 0 system:capture_1 1 system:capture_2 } }\n",
                r->dir, r->dir, r->dir);
        fclose(f);
        setenv("HOME", r->dir, 1);
        write_sine_raw(rig_path(r, "in.raw"), 700, 0.5f, 40);
    }
    if (r->kind != DUMMY)
        jackd_start(r);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rig_teardown(struct rig *r)
{
    if (r->feeder > 0) {
        kill(r->feeder, SIGTERM);
        wait_child(r->feeder, 5);
        r->feeder = 0;
    }
    jackd_stop(r, SIGTERM);
    if (r->kind != DUMMY)
        jack_cleanup_shm(r);
    if (harness_failures == 0)
        nftw(r->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    else
        fprintf(stderr, "%s: files kept in %s\n", r->backend, r->dir);
}

/* The daemon's arguments for this rig.  The card's input is always the
 * 700 Hz test signal (dummy: --capture; portaudio: in.raw; jack: the
 * helper, once input_begin ran); `tap`: dummy records its output. */
static const char *const *daemon_args(struct rig *r, bool tap)
{
    int n = 0;
    r->argv[n++] = "--backend";
    r->argv[n++] = r->backend;
    switch (r->kind) {
    case DUMMY:
        r->argv[n++] = "--capture";
        r->argv[n++] = "sine:700";
        if (tap) {
            r->argv[n++] = "--tap";
            r->argv[n++] = "@/tap.wav";
        }
        break;
    case PORTAUDIO:
        r->argv[n++] = "--device";
        r->argv[n++] = "sctest";
        break;
    case JACK:
        r->argv[n++] = "--device";
        r->argv[n++] = r->server;
        break;
    }
    if (r->kind == JACK) {
        /* Asked for, and ignored: JACK's rate and period rule. */
        r->argv[n++] = "--rate";
        r->argv[n++] = "44100";
        r->argv[n++] = "--period";
        r->argv[n++] = "1024";
    } else {
        r->argv[n++] = "--rate";
        r->argv[n++] = "48000";
        r->argv[n++] = "--period";
        r->argv[n++] = "256";
    }
    r->argv[n] = NULL;
    return r->argv;
}

/* env (NULL-terminated NAME=VALUE, or NULL): the daemon's extra environment;
 * with one, its sd_notify messages are watched (harness.h). */
static void daemon_up(struct rig *r, struct daemon *d, bool tap, const char *const *env)
{
    if (r->kind == PORTAUDIO) {
        unlink(rig_path(r, "out.raw"));
        unlink(rig_path(r, "cap.raw"));
    }
    if (env)
        daemon_start_watched(d, daemon_args(r, tap), env, 20);
    else
        daemon_start(d, daemon_args(r, tap), 20);
}

/* Before the clients play: start whatever records the card's output. */
static void output_begin(struct rig *r, double seconds)
{
    if (r->kind != JACK)
        return;
    snprintf(r->played, sizeof(r->played), "%s", rig_path(r, "played.wav"));
    char secs[32];
    snprintf(secs, sizeof(secs), "%.1f", seconds);
    r->recorder = jack_helper(r, (const char *const[]){ "rec", r->server, r->played, secs,
                                                         "soundcard:playback_1", "soundcard:playback_2",
                                                         NULL },
                              "recorder");
    CHECK(r->recorder > 0, "no recorder on soundcard:playback_*");
}

/* After the clients played (dummy, portaudio: after the daemon stopped, so
 * the tap and out.raw are complete): r->played is what the card played. */
static void output_end(struct rig *r, struct daemon *d)
{
    switch (r->kind) {
    case DUMMY:
        snprintf(r->played, sizeof(r->played), "%s", daemon_path(d, "tap.wav"));
        break;
    case PORTAUDIO: {
        snprintf(r->played, sizeof(r->played), "%s", rig_path(r, "played.wav"));
        long n = raw_to_wav(rig_path(r, "out.raw"), r->played, 0, -1);
        CHECK(n > 0, "out.raw: %ld frames", n);
        break;
    }
    case JACK:
        if (r->recorder > 0)
            CHECK(wait_child(r->recorder, 20) == 0, "the JACK recorder failed: %s",
                  slurp(rig_path(r, "helper.log")));
        r->recorder = 0;
        break;
    }
}

/* Start feeding the card's input with 700 Hz at 0.5 (dummy and portaudio
 * do it from the daemon's start). */
static void input_begin(struct rig *r)
{
    if (r->kind != JACK)
        return;
    r->feeder = jack_helper(r, (const char *const[]){ "play", r->server, "700", "0.5",
                                                       "soundcard:capture_1", "soundcard:capture_2", NULL },
                            "700 Hz source");
    CHECK(r->feeder > 0, "nothing plays into soundcard:capture_*");
}

static void input_end(struct rig *r)
{
    if (r->feeder > 0) {
        kill(r->feeder, SIGTERM);
        wait_child(r->feeder, 5);
        r->feeder = 0;
    }
}

/* ------------------------------------------------------------------ */
/* checks shared by every backend                                     */

static int run(struct daemon *d, const char *const *argv, const char *out, double timeout)
{
    return wait_child(spawn_client(d, argv, out), timeout);
}

static bool wavcheck(const char *wav, const char *const *checks)
{
    const char *argv[40] = { harness_bin("wavcheck"), wav };
    int n = 2;
    for (const char *const *c = checks; *c && n < 39; c++)
        argv[n++] = *c;
    argv[n] = NULL;
    fflush(stdout);
    return wait_child(spawn_process(argv, NULL, NULL, NULL), 30) == 0;
}

/* Two clients, 440 Hz and 1000 Hz at 0.25 each, played once on a fresh
 * daemon; returns how many times the card xran while they played. */
static double play_two_tones(struct rig *r)
{
    struct daemon d;
    daemon_up(r, &d, true, NULL);
    if (r->kind == JACK) {
        const char *linked[] = { harness_bin("sc_jack_helper"), "connected", r->server,
                                 "soundcard:playback_1", "system:playback_1", NULL };
        CHECK(run(&d, linked, NULL, 10) == 0, "soundcard:playback_1 is not connected to system:playback_1");
    }
    output_begin(r, 8);  /* the tones: 3 s, after the clients start */
    const char *tone_a[] = { harness_bin("soundcard"), "tone", "--freq", "440", "--seconds", "3",
                             "--gain", "0.25", "--latency", "0.1", "--name", "tone440", NULL };
    const char *tone_b[] = { harness_bin("soundcard"), "tone", "--freq", "1000", "--seconds", "3",
                             "--gain", "0.25", "--latency", "0.1", "--name", "tone1000", NULL };
    char out_a[256], out_b[256];
    snprintf(out_a, sizeof(out_a), "%s", rig_path(r, "a.out"));
    snprintf(out_b, sizeof(out_b), "%s", rig_path(r, "b.out"));
    double xruns_before = card_xruns(&d);
    pid_t a = spawn_client(&d, tone_a, out_a);
    pid_t b = spawn_client(&d, tone_b, out_b);
    CHECK(wait_child(a, 30) == 0, "tone 440 failed: %s", slurp(out_a));
    CHECK(wait_child(b, 30) == 0, "tone 1000 failed: %s", slurp(out_b));
    double xruns = card_xruns(&d) - xruns_before;
    CHECK(strstr(slurp(out_a), "underruns=0 "), "tone 440 underran: %s", slurp(out_a));
    CHECK(strstr(slurp(out_b), "underruns=0 "), "tone 1000 underran: %s", slurp(out_b));
    if (r->kind == JACK)
        output_end(r, &d);  /* the recorder ends on its own, before the daemon goes */
    CHECK(daemon_stop(&d, 15) == 0, "soundcardd did not stop cleanly");
    if (r->kind != JACK)
        output_end(r, &d);
    return xruns;
}

/* What the card played holds both tones, clean, in every 50 ms on both
 * channels; `report`: a wrong channel is a failure (else only said). */
static bool played_two_tones(struct rig *r, bool report)
{
    int rate;
    long frames;
    double first, last;
    if (wav_extent(r->played, 0.01, &rate, &frames, &first, &last) != 0) {
        CHECK(false, "cannot read what the card played (%s)", r->played);
        return true;  /* failed already; playing again would not help */
    }
    printf("%s: the card played %.3f s of sound, from %.3f s to %.3f s of %s\n", r->backend,
           last - first, first, last, r->played);
    CHECK(rate == RATE, "played at %d Hz", rate);
    CHECK(last - first > 2.9 && last - first < 3.5, "sound lasted %.3f s, expected 3 s plus start skew",
          last - first);
    char from[32], to[32];
    snprintf(from, sizeof(from), "%.3f", first + 0.5);
    snprintf(to, sizeof(to), "%.3f", last - 0.5);
    bool clean = true;
    for (int ch = 0; ch < 2; ch++) {
        char channel[8];
        snprintf(channel, sizeof(channel), "%d", ch);
        bool ok = wavcheck(r->played,
                           (const char *const[]){ "--from", from, "--to", to, "--block-ms", "50", "--channel",
                                                  channel, "--expect", "440:0.25", "--expect", "1000:0.25",
                                                  "--tolerance", "0.05", "--absent", "700", NULL });
        if (report)
            CHECK(ok, "%s: wavcheck found the played sound wrong on channel %d", r->backend, ch);
        clean = clean && ok;
    }
    return clean;
}

/* The two tones, played again (up to three times) while a card xrun
 * explains a gap in them: a card thread woken too late (ALSA, PortAudio
 * and the dummy card then skip or fill what was lost) is this machine's
 * stall, not soundcard's mixing.  With no card xrun, one wrong block fails. */
static void check_two_tones(struct rig *r)
{
    for (int attempt = 1;; attempt++) {
        double xruns = play_two_tones(r);
        if (xruns > 0)
            printf("info %s: the card xran %.0f times while the tones played\n", r->backend, xruns);
        bool last = attempt == 3 || xruns == 0;
        if (played_two_tones(r, last) || last)
            return;
        printf("info %s: the sound has a gap where the card xran: playing again\n", r->backend);
    }
}

/* A recorder gets the card's 700 Hz input at 0.5, as many frames as asked.
 * Recorded again (up to three times) while a card xrun explains a wrong
 * block, as the tones are played again: a period the card lost is a jump
 * in the input tone's phase (CI, ASan: one block at 0.4896 with 0.0036 of
 * 440 Hz). */
static void check_record(struct rig *r, struct daemon *d)
{
    char wav[256], out[256];
    snprintf(wav, sizeof(wav), "%s", rig_path(r, "rec.wav"));
    snprintf(out, sizeof(out), "%s", rig_path(r, "rec.out"));
    const char *rec[] = { harness_bin("soundcard"), "rec", wav, "--seconds", "1.5", "--float", NULL };
    for (int attempt = 1;; attempt++) {
        double xruns_before = card_xruns(d);
        CHECK(run(d, rec, out, 30) == 0, "rec failed: %s", slurp(out));
        double xruns = card_xruns(d) - xruns_before;
        CHECK(strstr(slurp(out), "overruns=0 "), "the recorder overran: %s", slurp(out));
        int rate;
        long frames;
        double first, last;
        CHECK(wav_extent(wav, 0.01, &rate, &frames, &first, &last) == 0, "cannot read %s", wav);
        CHECK(rate == RATE && frames == 72000, "recorded %ld frames at %d Hz, expected 72000 at 48000", frames,
              rate);
        CHECK(first >= 0 && first < 0.01, "the recording starts with %.3f s of silence", first);
        bool clean = wavcheck(wav, (const char *const[]){ "--block-ms", "50", "--expect", "700:0.5", "--tolerance",
                                                          "0.02", "--absent", "440", "--absent", "1000", NULL });
        if (clean || xruns == 0 || attempt == 3) {
            CHECK(clean, "%s: the recording is not a clean 700 Hz at 0.5 (%.0f card xruns while it ran)",
                  r->backend, xruns);
            return;
        }
        printf("info %s: the recording has a wrong block, and the card xran %.0f times while it ran: "
               "recording again\n", r->backend, xruns);
    }
}

struct observed {
    double staller_underruns, steady_underruns, steady_frames;
};

static bool staller_underran(cJSON *stats, void *ctx)
{
    struct observed *o = ctx;
    cJSON *st = stats_find_stream(stats, "staller"), *good = stats_find_stream(stats, "steady");
    o->staller_underruns = json_number(st, "underruns");
    o->steady_underruns = json_number(good, "underruns");
    o->steady_frames = json_number(good, "frames");
    return o->staller_underruns >= 10 && o->steady_frames > RATE;
}

/* A client that stops writing underruns alone. */
static void check_underrun_isolation(struct rig *r, struct daemon *d)
{
    char out[256];
    snprintf(out, sizeof(out), "%s", rig_path(r, "steady.out"));
    const char *steady[] = { harness_bin("soundcard"), "tone", "--freq", "1000", "--seconds", "4",
                             "--latency", "0.1", "--name", "steady", NULL };
    pid_t p = spawn_client(d, steady, out);

    sc_client *c;
    if (sc_client_open(&c, d->socket_path, "staller") != 0) {
        CHECK(false, "connect: %s", sc_last_error());
        wait_child(p, 30);
        return;
    }
    sc_stream_params params;
    sc_stream_params_init(&params);
    params.name = "staller";
    params.output_channels = 2;
    params.latency = 0.05;
    sc_stream *s = NULL;
    CHECK(sc_stream_open(c, &params, &s) == 0, "open: %s", sc_last_error());
    if (s) {
        CHECK(sc_stream_start(s) == 0, "start: %s", sc_last_error());
        static float block[2 * 480];
        for (int i = 0; i < 480; i++)
            block[2 * i] = block[2 * i + 1] = 0.1f * sinf(2 * (float)M_PI * 300 * i / RATE);
        for (int i = 0; i < 20; i++)  /* 0.2 s, then nothing */
            CHECK(sc_stream_write(s, block, 480) == 480, "write: %s", sc_last_error());
        struct observed o = { 0 };
        wait_for_stats(d->socket_path, staller_underran, &o, 10);
        CHECK(o.staller_underruns >= 10, "%s: the staller's underruns: %.0f", r->backend, o.staller_underruns);
        CHECK(o.steady_frames > RATE, "%s: the steady stream played %.0f frames", r->backend, o.steady_frames);
        CHECK(o.steady_underruns == 0, "%s: the steady stream underran %.0f times", r->backend,
              o.steady_underruns);
        CHECK(sc_stream_close(s) == 0, "close: %s", sc_last_error());
    }
    sc_client_close(c);
    CHECK(wait_child(p, 30) == 0, "the steady tone failed: %s", slurp(out));
    CHECK(strstr(slurp(out), "underruns=0 "), "%s: the steady tone underran: %s", r->backend, slurp(out));
}

/* `soundcard status --json`, parsed; NULL on failure. */
static cJSON *status_json(struct rig *r, struct daemon *d)
{
    char out[256];
    snprintf(out, sizeof(out), "%s", rig_path(r, "status.json"));
    const char *status[] = { harness_bin("soundcard"), "status", "--json", NULL };
    int rc = run(d, status, out, 15);
    CHECK(rc == 0, "soundcard status --json exited with %d", rc);
    return rc == 0 ? cJSON_Parse(slurp(out)) : NULL;
}

static const char *json_string(cJSON *obj, const char *key)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, key));
    return s ? s : "";
}

/* server.info: the backend's name, the rate and period really in use. */
static void check_server_info(struct rig *r, struct daemon *d)
{
    cJSON *all = status_json(r, d);
    cJSON *info = cJSON_GetObjectItemCaseSensitive(all, "server");
    cJSON *srv = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(all, "stats"), "server");
    CHECK(info != NULL, "no server.info in %s", slurp(rig_path(r, "status.json")));
    printf("%s: server.info backend=%s device='%s' rate=%.0f period=%.0f channels=%.0f state=%s\n",
           r->backend, json_string(info, "backend"), json_string(info, "device"), json_number(info, "rate"),
           json_number(info, "period"), json_number(info, "channels"), json_string(info, "state"));
    CHECK(strcmp(json_string(info, "backend"), r->backend) == 0, "backend '%s'", json_string(info, "backend"));
    /* For jack the daemon was asked for 44100 Hz / 1024 frames: JACK's
     * 48000 / 256 must win. */
    CHECK(json_number(info, "rate") == RATE, "rate %.0f", json_number(info, "rate"));
    CHECK(json_number(info, "period") == PERIOD, "period %.0f", json_number(info, "period"));
    CHECK(json_number(info, "channels") == 2, "channels %.0f", json_number(info, "channels"));
    CHECK(strcmp(json_string(info, "state"), "running") == 0, "state '%s'", json_string(info, "state"));
    CHECK(strcmp(json_string(srv, "state"), "running") == 0, "stats state '%s'", json_string(srv, "state"));
    if (r->kind == PORTAUDIO)
        CHECK(strcmp(json_string(info, "device"), "sctest") == 0, "device '%s'", json_string(info, "device"));
    if (r->kind == JACK)
        CHECK(strstr(json_string(info, "device"), r->server), "device '%s'", json_string(info, "device"));
    cJSON_Delete(all);
}

/* `soundcard devices` lists the card, and so does the library. */
static void check_devices(struct rig *r, struct daemon *d)
{
    char out[256];
    snprintf(out, sizeof(out), "%s", rig_path(r, "devices.out"));
    const char *devices[] = { harness_bin("soundcard"), "devices", NULL };
    CHECK(run(d, devices, out, 15) == 0, "soundcard devices failed: %s", slurp(out));
    const char *text = slurp(out);
    printf("%s: soundcard devices:\n%s", r->backend, text);
    CHECK(strstr(text, "NAME") && strstr(text, "API") && strstr(text, "RATE"), "no table header");
    const char *want_name = r->kind == DUMMY ? "dummy" : r->kind == PORTAUDIO ? "sctest" : r->server;
    const char *want_api = r->kind == DUMMY ? "dummy" : r->kind == PORTAUDIO ? "ALSA" : "JACK";
    bool row = false;
    for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        size_t len = strcspn(line, "\n");
        char copy[512];
        snprintf(copy, sizeof(copy), "%.*s", (int)(len < 511 ? len : 511), line);
        if (strstr(copy, want_name) && strstr(copy, want_api) && strstr(copy, "48000.0"))
            row = true;
    }
    CHECK(row, "%s: no row naming %s, %s, 48000 Hz in:\n%s", r->backend, want_name, want_api, text);

    sc_client *c;
    if (sc_client_open(&c, d->socket_path, "devices-probe") != 0) {
        CHECK(false, "connect: %s", sc_last_error());
        return;
    }
    int n = sc_device_count(c);
    CHECK(n >= 1, "%d devices", n);
    bool found = false;
    for (int i = 0; i < n; i++) {
        sc_device_info di;
        CHECK(sc_get_device_info(c, i, &di) == 0, "device %d: %s", i, sc_last_error());
        CHECK(di.name[0] && di.api[0], "device %d has no name or api", i);
        if (!strstr(di.name, want_name) || strcmp(di.api, want_api) != 0)
            continue;
        found = true;
        CHECK(di.index == i, "device %d says index %d", i, di.index);
        CHECK(di.max_input_channels >= 2 && di.max_output_channels >= 2, "%s: %d in, %d out", di.name,
              di.max_input_channels, di.max_output_channels);
        CHECK(di.default_samplerate == RATE, "%s: %.0f Hz", di.name, di.default_samplerate);
        CHECK(di.default_low_output_latency > 0 && di.default_high_output_latency >= di.default_low_output_latency,
              "%s: output latency %.4f..%.4f", di.name, di.default_low_output_latency,
              di.default_high_output_latency);
        CHECK(di.default_low_input_latency > 0 && di.default_high_input_latency >= di.default_low_input_latency,
              "%s: input latency %.4f..%.4f", di.name, di.default_low_input_latency,
              di.default_high_input_latency);
    }
    CHECK(found, "%s: the library lists no device '%s' with api %s", r->backend, want_name, want_api);
    sc_client_close(c);
}

static int test_backend(const char *backend)
{
    struct rig r;
    rig_init(&r, backend);
    check_two_tones(&r);

    struct daemon d;
    daemon_up(&r, &d, false, NULL);
    input_begin(&r);
    check_record(&r, &d);
    check_underrun_isolation(&r, &d);
    check_server_info(&r, &d);
    check_devices(&r, &d);
    input_end(&r);
    CHECK(daemon_stop(&d, 15) == 0, "soundcardd did not stop cleanly");
    rig_teardown(&r);
    char name[64];
    snprintf(name, sizeof(name), "backends.%s", backend);
    return harness_finish(name);
}

/* ------------------------------------------------------------------ */
/* soundcardd cannot start                                            */

/* Run soundcardd with `args`; it must exit non-zero within the deadline
 * and say why in exactly one line of its own ("soundcardd: ..."), the last
 * one, which contains every one of `words`.  Unless `only_line`, lines from
 * the libraries under it may come before (PortAudio and libasound print
 * theirs to stderr and the daemon does not link libasound to stop that). */
static void check_start_failure(struct rig *r, const char *what, const char *const *args, const char *const *words,
                                bool only_line)
{
    char sock[128], err[128];
    snprintf(sock, sizeof(sock), "%s/%s.sock", r->dir, what);
    snprintf(err, sizeof(err), "%s/%s.err", r->dir, what);
    const char *argv[16] = { harness_bin("soundcardd"), "--socket", sock };
    int n = 3;
    for (; *args && n < 15; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    double t0 = now_seconds();
    int rc = wait_child(start(argv, NULL, err, NULL), 30);
    const char *text = slurp(err);
    CHECK(rc > 0 && rc < 128, "%s: soundcardd exited with %d; stderr:\n%s", what, rc, text);
    int ours = 0, lines = 0;
    char line[512] = "", last[512] = "";
    for (const char *p = text; *p;) {
        size_t len = strcspn(p, "\n");
        snprintf(last, sizeof(last), "%.*s", (int)(len < 511 ? len : 511), p);
        if (len > 0)
            lines++;
        if (strncmp(last, "soundcardd:", 11) == 0) {
            ours++;
            snprintf(line, sizeof(line), "%s", last);
        }
        p += len + (p[len] == '\n');
    }
    printf("%s: exit %d after %.2f s, %d line(s) on stderr, ours: %s\n", what, rc, now_seconds() - t0, lines,
           line);
    CHECK(ours == 1, "%s: %d lines from soundcardd in:\n%s", what, ours, text);
    CHECK(strcmp(line, last) == 0, "%s: soundcardd's line is not the last one:\n%s", what, text);
    CHECK(!only_line || lines == 1, "%s: more than soundcardd's line on stderr:\n%s", what, text);
    for (const char *const *w = words; *w; w++)
        CHECK(strstr(line, *w), "%s: '%s' does not say '%s'", what, line, *w);
    CHECK(access(sock, F_OK) != 0, "%s: the socket %s was left behind", what, sock);
}

static int test_errors(void)
{
    struct rig r;
    rig_init(&r, "errors");  /* no jackd, no asoundrc */
    setenv("HOME", r.dir, 1);
    check_start_failure(&r, "portaudio-no-device",
                        (const char *const[]){ "--backend", "portaudio", "--device", "no-such-device", NULL },
                        (const char *const[]){ "no-such-device", NULL }, false);
    check_start_failure(&r, "jack-no-server",
                        (const char *const[]){ "--backend", "jack", "--device", r.server, NULL },
                        (const char *const[]){ "JACK", r.server, NULL }, true);
    /* The default server: JACK_DEFAULT_SERVER names one that is not up. */
    check_start_failure(&r, "jack-no-default-server", (const char *const[]){ "--backend", "jack", NULL },
                        (const char *const[]){ "JACK", r.server, NULL }, true);
    rig_teardown(&r);
    return harness_finish("backends.errors");
}

/* ------------------------------------------------------------------ */
/* the card going away and coming back                                */

/* A connection that did hello and subscribe, reading events. */
struct subscriber {
    int fd;
    char buf[65536];
    size_t len;
};

/* The next line as JSON, waiting until `deadline`; NULL on timeout/EOF. */
static cJSON *sub_next(struct subscriber *s, double deadline)
{
    for (;;) {
        char *nl = memchr(s->buf, '\n', s->len);
        if (nl) {
            *nl = '\0';
            cJSON *json = cJSON_Parse(s->buf);
            size_t used = (size_t)(nl + 1 - s->buf);
            memmove(s->buf, nl + 1, s->len - used);
            s->len -= used;
            return json;
        }
        double left = deadline - now_seconds();
        struct pollfd p = { .fd = s->fd, .events = POLLIN };
        if (left <= 0 || poll(&p, 1, (int)(left * 1000) + 1) <= 0)
            return NULL;
        ssize_t n = read(s->fd, s->buf + s->len, sizeof(s->buf) - 1 - s->len);
        if (n <= 0)
            return NULL;
        s->len += (size_t)n;
    }
}

static bool sub_open(struct subscriber *s, const char *socket_path)
{
    memset(s, 0, sizeof(*s));
    s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", socket_path);
    if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
        return false;
    const char *hello = "{\"id\":1,\"op\":\"hello\",\"protocol\":1,\"name\":\"subscriber\"}\n"
                        /* Only the server set: with all three, every stats probe's
                         * client.added/removed would queue up unread meanwhile. */
                        "{\"id\":2,\"op\":\"subscribe\",\"events\":[\"server\"]}\n";
    if (write(s->fd, hello, strlen(hello)) != (ssize_t)strlen(hello))
        return false;
    double deadline = now_seconds() + 10;
    cJSON *reply;
    while ((reply = sub_next(s, deadline))) {
        bool done = json_number(reply, "id") == 2;
        cJSON *sets = cJSON_GetObjectItemCaseSensitive(reply, "events"), *set;
        bool server = false;
        cJSON_ArrayForEach(set, sets)
            server = server || strcmp(cJSON_GetStringValue(set) ? cJSON_GetStringValue(set) : "", "server") == 0;
        bool ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "ok")) && server;
        cJSON_Delete(reply);
        if (done)
            return ok;
    }
    return false;
}

/* Wait for {"event":"server.state","state":STATE}; its message into msg. */
static bool sub_wait_state(struct subscriber *s, const char *state, double timeout, char *msg, size_t msg_len)
{
    double t0 = now_seconds(), deadline = t0 + timeout;
    cJSON *ev;
    while ((ev = sub_next(s, deadline))) {
        bool match = strcmp(json_string(ev, "event"), "server.state") == 0 &&
                     strcmp(json_string(ev, "state"), state) == 0;
        if (match)
            snprintf(msg, msg_len, "%s", json_string(ev, "message"));
        cJSON_Delete(ev);
        if (match) {
            printf("event server.state '%s' after %.2f s: %s\n", state, now_seconds() - t0, msg);
            return true;
        }
    }
    return false;
}

struct frames_goal {
    double at_least, seen;
};

static bool survivor_played(cJSON *stats, void *ctx)
{
    struct frames_goal *g = ctx;
    g->seen = json_number(stats_find_stream(stats, "survivor"), "frames");
    return g->seen >= g->at_least;
}

static double survivor_frames(const char *socket_path)
{
    cJSON *stats = stats_snapshot(socket_path);
    double f = json_number(stats_find_stream(stats, "survivor"), "frames");
    cJSON_Delete(stats);
    return f;
}

/* What the card plays now, 1 s of it, as a WAV: jack: a JACK client on
 * soundcard:playback_*; portaudio: the newest second of out.raw. */
static bool hear_now(struct rig *r, struct daemon *d, const char *wav)
{
    if (r->kind == JACK) {
        pid_t rec = jack_helper(r, (const char *const[]){ "rec", r->server, wav, "1.0", "soundcard:playback_1",
                                                          "soundcard:playback_2", NULL },
                                "recorder");
        return rec > 0 && wait_child(rec, 15) == 0;
    }
    /* out.raw grows as the card plays; wait until it holds 1.5 s more than
     * now (the file plugin writes in chunks), then take the last second. */
    const char *raw = rig_path(r, "out.raw");
    struct frames_goal g = { survivor_frames(d->socket_path) + 1.5 * RATE, 0 };
    if (!wait_for_stats(d->socket_path, survivor_played, &g, 10))
        return false;
    long end = file_frames(raw);
    return end > RATE && raw_to_wav(raw, wav, end - RATE, end) == RATE;
}

static int test_loss(const char *backend)
{
    struct rig r;
    rig_init(&r, backend);
    struct daemon d;
    /* As under systemd with WatchdogSec=0.4s: WATCHDOG=1 every 200 ms, but
     * only while the RT cycle runs. */
    daemon_up(&r, &d, false, (const char *const[]){ "WATCHDOG_USEC=400000", NULL });

    char out[256];
    snprintf(out, sizeof(out), "%s", rig_path(&r, "survivor.out"));
    const char *tone[] = { harness_bin("soundcard"), "tone", "--freq", "440", "--seconds", "60",
                           "--gain", "0.25", "--latency", "0.1", "--name", "survivor", NULL };
    pid_t player = spawn_client(&d, tone, out);
    struct subscriber sub;
    CHECK(sub_open(&sub, d.socket_path), "cannot subscribe to server events");
    struct frames_goal g = { RATE / 2, 0 };
    CHECK(wait_for_stats(d.socket_path, survivor_played, &g, 10), "the survivor stream played %.0f frames",
          g.seen);
    CHECK(daemon_wait_notify(&d, "WATCHDOG=1", 3, 5), "%d WATCHDOG=1 while the card ran (want 3)",
          daemon_notify_count(&d, "WATCHDOG=1"));

    /* The card goes away. */
    printf("%s: killing jackd (pid %d)\n", backend, (int)r.jackd);
    jackd_stop(&r, SIGKILL);
    char msg[256] = "";
    bool lost = sub_wait_state(&sub, "lost", 15, msg, sizeof(msg));
    CHECK(lost, "%s: no server.state 'lost' event within 15 s", backend);
    int pings_when_lost = daemon_notify_count(&d, "WATCHDOG=1");
    CHECK(process_alive(d.pid), "soundcardd died with its card; log:\n%s", slurp(d.log_path));
    cJSON *all = status_json(&r, &d);
    cJSON *info = cJSON_GetObjectItemCaseSensitive(all, "server");
    cJSON *stats = cJSON_GetObjectItemCaseSensitive(all, "stats");
    CHECK(strcmp(json_string(info, "state"), "lost") == 0, "server.info state '%s'", json_string(info, "state"));
    CHECK(strcmp(json_string(cJSON_GetObjectItemCaseSensitive(stats, "server"), "state"), "lost") == 0,
          "stats state is not 'lost'");
    CHECK(json_string(info, "state_message")[0], "server.info has no state_message");
    cJSON *survivor = stats_find_stream(stats, "survivor");
    CHECK(survivor != NULL, "the survivor stream is gone from stats");
    CHECK(strcmp(json_string(survivor, "state"), "running") == 0, "the survivor stream is '%s'",
          json_string(survivor, "state"));
    double frames_lost = json_number(survivor, "frames");
    cJSON_Delete(all);
    /* Nothing plays while the card is away: the counter stands still. */
    struct timespec pause = { 0, 300 * 1000 * 1000 };
    nanosleep(&pause, NULL);
    CHECK(survivor_frames(d.socket_path) == frames_lost, "frames moved while the card was lost");
    CHECK(daemon_notify_count(&d, "WATCHDOG=1") == pings_when_lost,
          "WATCHDOG=1 went on while no RT cycle ran (%d, then %d): systemd would never restart a hung daemon",
          pings_when_lost, daemon_notify_count(&d, "WATCHDOG=1"));
    CHECK(process_alive(player), "the playing client died while the card was lost: %s", slurp(out));

    /* It comes back, under the same name.  soundcardd retries every second
     * and its "running" event says when jackd is up: no readiness poll with
     * a client of our own, which could close while soundcardd's client is
     * opening (the libjack race described at jackd_start). */
    jackd_spawn(&r);
    printf("%s: jackd is back (pid %d)\n", backend, (int)r.jackd);
    CHECK(sub_wait_state(&sub, "running", 20, msg, sizeof(msg)), "%s: no server.state 'running' within 20 s",
          backend);
    all = status_json(&r, &d);
    info = cJSON_GetObjectItemCaseSensitive(all, "server");
    CHECK(strcmp(json_string(info, "state"), "running") == 0, "server.info state '%s' after the card came back",
          json_string(info, "state"));
    CHECK(json_number(info, "rate") == RATE && json_number(info, "period") == PERIOD,
          "back at %.0f Hz, %.0f frames", json_number(info, "rate"), json_number(info, "period"));
    cJSON_Delete(all);
    g = (struct frames_goal){ frames_lost + RATE, 0 };
    CHECK(wait_for_stats(d.socket_path, survivor_played, &g, 10),
          "the survivor's frames went from %.0f (lost) to only %.0f", frames_lost, g.seen);
    CHECK(daemon_wait_notify(&d, "WATCHDOG=1", pings_when_lost + 2, 5), "WATCHDOG=1 did not resume with the card");
    printf("%s: WATCHDOG=1 %d before the card was lost, none while lost, %d after it came back\n", backend,
           pings_when_lost, daemon_notify_count(&d, "WATCHDOG=1") - pings_when_lost);

    const char *wav = rig_path(&r, "after.wav");
    char wav_copy[256];
    snprintf(wav_copy, sizeof(wav_copy), "%s", wav);
    CHECK(hear_now(&r, &d, wav_copy), "%s: cannot capture what the card plays after it came back", backend);
    /* Under a sanitizer the JACK recorder and the daemon run several times
     * slower and a 50 ms block may catch a dropout: there the tone must be
     * back, within 25 %, in every block. */
    const char *tolerance = getenv("SC_SANITIZED") ? "0.25" : "0.05";
    for (int ch = 0; ch < 2; ch++) {
        char channel[8];
        snprintf(channel, sizeof(channel), "%d", ch);
        CHECK(wavcheck(wav_copy,
                       (const char *const[]){ "--block-ms", "50", "--channel", channel, "--expect", "440:0.25",
                                              "--tolerance", tolerance, NULL }),
              "%s: after the card came back it does not play the survivor's 440 Hz (channel %d)", backend, ch);
    }

    kill(player, SIGTERM);
    wait_child(player, 10);
    close(sub.fd);
    CHECK(daemon_stop(&d, 15) == 0, "soundcardd did not stop cleanly after the card came back");
    rig_teardown(&r);
    char name[64];
    snprintf(name, sizeof(name), "backends.%s_loss", backend);
    return harness_finish(name);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);  /* in order with the children's output */
    /* Under ThreadSanitizer the daemon loads uninstrumented audio libraries
     * (tsan.supp says which and why): add the suppressions to whatever
     * TSAN_OPTIONS the run has, for the processes started from here. */
    const char *supp = getenv("SC_TSAN_SUPPRESSIONS"), *tsan = getenv("TSAN_OPTIONS");
    if (supp && *supp) {
        static char options[1024];
        snprintf(options, sizeof(options), "%s%ssuppressions=%s", tsan ? tsan : "", tsan && *tsan ? ":" : "",
                 supp);
        setenv("TSAN_OPTIONS", options, 1);
    }
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "dummy") == 0 || strcmp(mode, "portaudio") == 0 || strcmp(mode, "jack") == 0)
        return test_backend(mode);
    if (strcmp(mode, "errors") == 0)
        return test_errors();
    if (strcmp(mode, "jack_loss") == 0)
        return test_loss("jack");
    if (strcmp(mode, "portaudio_loss") == 0)
        return test_loss("portaudio");
    fprintf(stderr, "usage: test_backends dummy|portaudio|jack|errors|jack_loss|portaudio_loss\n");
    return 2;
}
