/* What the ALSA tests share (test_alsa.c): the ALSA programs' private HOME
 * and ~/.asoundrc, running programs with deadlines, watching a stream in
 * the daemon's stats, judging files with wavcheck.  rig.h says what each
 * function does. */
#include "rig.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audio_check.h"

const char *const rig_daemon_args[] = { "--rate", "48000", "--period", "256", "--tap", "@/tap.wav",
                                        "--capture", "sine:700", NULL };
char dir[128];
bool rig_slow;

/* ------------------------------------------------------------------ */
/* setup                                                              */

const char *path_in(const char *name)
{
    static char p[8][256];
    static int next;
    char *s = p[next++ % 8];
    snprintf(s, 256, "%s/%s", dir, name);
    return s;
}

/* A program from $PATH, as an absolute path (the harness execs). */
const char *which(const char *prog)
{
    static char found[8][512];
    static int next;
    char *out = found[next++ % 8];
    const char *path = getenv("PATH");
    for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
        size_t len = strcspn(p, ":");
        snprintf(out, 512, "%.*s/%s", (int)len, p, prog);
        if (access(out, X_OK) == 0)
            return out;
        p += len + (p[len] == ':');
    }
    snprintf(out, 512, "/usr/bin/%s", prog);
    return out;
}

/* The ALSA programs' config: HOME=dir with an ~/.asoundrc that includes
 * the build tree's snippet, then `extra`.  Nothing else reaches them: no
 * ALSA_CONFIG_PATH, no SOUNDCARD_SOCKET, XDG dirs inside dir. */
void asoundrc(const char *socket_path, const char *extra)
{
    const char *snippet = getenv("SC_ALSA_CONF");
    if (!snippet || access(snippet, R_OK) != 0) {
        fprintf(stderr, "FAIL: $SC_ALSA_CONF (%s) is not readable\n", snippet ? snippet : "unset");
        exit(1);
    }
    FILE *f = fopen(path_in(".asoundrc"), "w");
    if (!f) {
        perror("asoundrc");
        exit(1);
    }
    fprintf(f, "<%s>\n", snippet);
    if (socket_path)
        fprintf(f, "pcm.soundcard.socket \"%s\"\nctl.soundcard.socket \"%s\"\n", socket_path, socket_path);
    if (extra)
        fputs(extra, f);
    fclose(f);
    setenv("HOME", dir, 1);
    setenv("XDG_CONFIG_HOME", path_in(".config"), 1);
    setenv("XDG_RUNTIME_DIR", dir, 1);
    unsetenv("ALSA_CONFIG_PATH");
    unsetenv("SOUNDCARD_SOCKET");
    setenv("JACK_NO_START_SERVER", "1", 1);   /* PortAudio's JACK host API probes */
}

void up(struct daemon *d)
{
    daemon_start(d, rig_daemon_args, 20);
    snprintf(dir, sizeof(dir), "%s", d->dir);
    asoundrc(d->socket_path, NULL);
}

/* ------------------------------------------------------------------ */
/* running programs                                                   */

/* Run argv (stdout to NAME.out, stderr to NAME.err in dir), at most
 * `timeout` s; its exit status.  Prints the command. */
pid_t start(const char *name, const char *const *argv)
{
    printf("$");
    for (const char *const *a = argv; *a; a++)
        printf(" %s", *a);
    printf("\n");
    fflush(stdout);
    char out[256], err[256];
    snprintf(out, sizeof(out), "%s/%s.out", dir, name);
    snprintf(err, sizeof(err), "%s/%s.err", dir, name);
    unlink(err);
    /* Sanitizer builds: aplay and friends get the runtime the plugin needs
     * preloaded, and the plugin itself, so that it is never unloaded:
     * LeakSanitizer then sees what its statics hold and names its frames
     * (alsa_client and pa_client keep it loaded themselves).  PortAudio
     * probes every ALSA PCM of the configuration, and the other plugins'
     * leaks are not ours: no leak check in pa_client. */
    static char preload[1200], asan[600];
    const char *rt = getenv("SC_ALSA_PRELOAD"), *plugin = getenv("SC_ALSA_PLUGIN");
    const char *base = strrchr(argv[0], '/');
    base = base ? base + 1 : argv[0];
    const char *env[3] = { NULL }, *none[] = { NULL };
    bool sanitized = rt && *rt && plugin && *plugin;
    if (sanitized && (!strcmp(base, "aplay") || !strcmp(base, "arecord") || !strcmp(base, "amixer"))) {
        snprintf(preload, sizeof(preload), "LD_PRELOAD=%s %s", rt, plugin);
        env[0] = preload;
    }
    if (sanitized && !strcmp(base, "pa_client")) {
        const char *opts = getenv("ASAN_OPTIONS");
        snprintf(asan, sizeof(asan), "ASAN_OPTIONS=%s%sdetect_leaks=0", opts ? opts : "", opts && *opts ? ":" : "");
        env[0] = asan;
    }
    return spawn_process(argv, env[0] ? env : none, out, err);
}

const char *output_of(const char *name, const char *ext)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s.%s", dir, name, ext);
    return slurp(p);
}

int run(const char *name, const char *const *argv, double timeout)
{
    int rc = wait_child(start(name, argv), timeout);
    const char *out = output_of(name, "out");
    if (*out)
        printf("%s", out);
    if (rc != 0)
        printf("exit %d; stderr:\n%s\n", rc, output_of(name, "err"));
    fflush(stdout);
    return rc;
}

/* sox ARGS...: make a test file. */
void sox(const char *const *args)
{
    const char *argv[32] = { which("sox"), "-D" };   /* -D: no dither, exact levels */
    int n = 2;
    for (; *args && n < 31; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    if (run("sox", argv, 30) != 0) {
        fprintf(stderr, "FAIL: sox could not make a test file\n");
        exit(1);
    }
}

/* wavcheck FILE ARGS...: passes? (prints its verdict) */
bool wavcheck(const char *file, const char *const *args)
{
    const char *argv[40] = { harness_bin("wavcheck"), file };
    int n = 2;
    for (; *args && n < 39; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    return run("wavcheck", argv, 30) == 0;
}

/* The tone `hz` at `amp` on `channel` of the tap in [from, to] s, every
 * 50 ms block, with `others` (NULL-terminated "HZ:AMP" or "-HZ" for absent). */
bool tone_in(const char *file, int channel, double from, double to, const char *const *tones)
{
    char f[32], t[32], ch[16];
    snprintf(f, sizeof(f), "%.3f", from);
    snprintf(t, sizeof(t), "%.3f", to);
    snprintf(ch, sizeof(ch), "%d", channel);
    const char *args[40] = { "--from", f, "--to", t, "--block-ms", "50", "--channel", ch };
    int n = 8;
    for (; *tones && n < 38; tones++) {
        args[n++] = (*tones)[0] == '-' ? "--absent" : "--expect";
        args[n++] = (*tones)[0] == '-' ? *tones + 1 : *tones;
    }
    args[n] = NULL;
    return wavcheck(file, args);
}

/* A playback stream of ours the daemon lists while `pid` runs: the most
 * underruns it had and whether it ran; then pid's exit status. */
int watch_child(struct daemon *d, pid_t pid, const char *stream, double timeout, struct watch *w)
{
    memset(w, 0, sizeof(*w));
    double deadline = now_seconds() + timeout;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (now_seconds() > deadline) {
            fprintf(stderr, "pid %d still running after %.0f s; killing it\n", (int)pid, timeout);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        cJSON *stats = stats_snapshot(d->socket_path);
        cJSON *s = stats ? stats_find_stream(stats, stream) : NULL;
        if (s) {
            const char *state = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s, "state"));
            w->seen |= state && strcmp(state, "running") == 0;
            w->underruns = fmax(w->underruns, json_number(s, "underruns"));
            w->frames = fmax(w->frames, json_number(s, "frames"));
        }
        cJSON_Delete(stats);
        struct timespec interval = { 0, 30 * 1000 * 1000 };
        nanosleep(&interval, NULL);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* key=value from a line of a helper's output that starts with `prefix`. */
double field(const char *text, const char *prefix, const char *key)
{
    const char *line = strstr(text, prefix);
    char k[64];
    snprintf(k, sizeof(k), " %s=", key);
    const char *eol = line ? strchr(line, '\n') : NULL;
    const char *v = line ? strstr(line, k) : NULL;
    if (!v || (eol && v > eol))
        return NAN;
    return strtod(v + strlen(k), NULL);
}

/* The stretches of sound in channel `channel` of the tap. */
int segments(const char *tap, double gap_s, struct segment *seg, int max)
{
    int rate;
    int n = wav_segments(tap, 0.02, (long)(gap_s * RATE), seg, max, &rate);
    for (int i = 0; i < n; i++)
        printf("tap: sound %d from %.4f s to %.4f s (%ld frames)\n", i, (double)seg[i].start / rate,
               (double)seg[i].end / rate, seg[i].end - seg[i].start);
    return n;
}

const char *tap_of(struct daemon *d)
{
    static char p[256];
    snprintf(p, sizeof(p), "%s", daemon_path(d, "tap.wav"));
    return p;
}


void rig_sound_failed(const char *file, int line, const char *cond, const char *fmt, ...)
{
    fprintf(stderr, "FAIL %s:%d: %s: ", file, line, cond);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    harness_failures++;
    attempt_stallable_failures++;
}
