#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <soundcard/soundcard.h>

extern char **environ;
int harness_failures;

double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

const char *harness_bin(const char *name)
{
    static char path[4][512];
    static int next;
    const char *dir = getenv("SC_BIN_DIR");
    char *p = path[next++ % 4];
    snprintf(p, 512, "%s/%s", dir ? dir : ".", name);
    return p;
}

const char *daemon_path(struct daemon *d, const char *name)
{
    static char path[4][256];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, 256, "%s/%s", d->dir, name);
    return p;
}

const char *slurp(const char *path)
{
    static char buf[65536];
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return buf;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int pidfd_open_(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int wait_child(pid_t pid, double timeout)
{
    int status;
    int pfd = pidfd_open_(pid);
    if (pfd >= 0) {
        struct pollfd p = { .fd = pfd, .events = POLLIN };
        int n = poll(&p, 1, (int)(timeout * 1000));
        close(pfd);
        if (n == 0) {
            fprintf(stderr, "harness: pid %d still running after %.1f s; killing it\n", (int)pid, timeout);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
    }
    if (waitpid(pid, &status, 0) < 0)
        return -1;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

/* fork+exec with the child tied to this test: if the test dies (a CTest
 * timeout kills it), the kernel kills the daemon and clients it started,
 * so no test leaves processes behind. */
static pid_t spawn(const char *const *argv, char *const *envp, const char *out_path, const char *err_path)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "harness: fork: %s\n", strerror(errno));
        exit(1);
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        if (out_path) {
            int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            dup2(fd, 1);
        }
        if (err_path) {
            int fd = open(err_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
            dup2(fd, 2);
        }
        execve(argv[0], (char *const *)argv, envp);
        fprintf(stderr, "harness: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

/* environ plus NAME=VALUE entries (replacing existing ones). */
static char **env_with(const char *const *extra)
{
    static char *env[512];
    size_t n = 0;
    for (char **e = environ; *e && n < 500; e++) {
        bool replaced = false;
        for (const char *const *x = extra; *x; x++)
            if (strncmp(*e, *x, strcspn(*x, "=") + 1) == 0)
                replaced = true;
        if (!replaced)
            env[n++] = *e;
    }
    for (const char *const *x = extra; *x; x++)
        env[n++] = (char *)*x;
    env[n] = NULL;
    return env;
}

/* Every datagram the daemon sent to its NOTIFY_SOCKET, kept in order. */
#define NOTIFY_MAX_MESSAGES 8192
struct notify_watch {
    int fd;
    pthread_t thread;
    atomic_bool stop;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int count;
    char (*messages)[256];
};

static void *notify_reader(void *arg)
{
    struct notify_watch *w = arg;
    while (!atomic_load(&w->stop)) {
        struct pollfd p = { .fd = w->fd, .events = POLLIN };
        if (poll(&p, 1, 50) <= 0)
            continue;
        char msg[256];
        ssize_t n = recv(w->fd, msg, sizeof(msg) - 1, 0);
        if (n <= 0)
            continue;
        msg[n] = '\0';
        pthread_mutex_lock(&w->lock);
        if (w->count < NOTIFY_MAX_MESSAGES)
            memcpy(w->messages[w->count++], msg, (size_t)n + 1);
        pthread_cond_broadcast(&w->changed);
        pthread_mutex_unlock(&w->lock);
    }
    return NULL;
}

static int count_locked(struct notify_watch *w, const char *text)
{
    int n = 0;
    for (int i = 0; i < w->count; i++)
        n += strstr(w->messages[i], text) != NULL;
    return n;
}

int daemon_notify_count(struct daemon *d, const char *text)
{
    pthread_mutex_lock(&d->notify->lock);
    int n = count_locked(d->notify, text);
    pthread_mutex_unlock(&d->notify->lock);
    return n;
}

bool daemon_wait_notify(struct daemon *d, const char *text, int count, double timeout)
{
    struct notify_watch *w = d->notify;
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += (time_t)timeout;
    deadline.tv_nsec += (long)((timeout - (time_t)timeout) * 1e9);
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&w->lock);
    int rc = 0;
    while (count_locked(w, text) < count && rc == 0)
        rc = pthread_cond_timedwait(&w->changed, &w->lock, &deadline);
    bool ok = count_locked(w, text) >= count;
    pthread_mutex_unlock(&w->lock);
    return ok;
}

const char *daemon_notify_last(struct daemon *d, const char *text)
{
    static char copy[256];
    copy[0] = '\0';
    pthread_mutex_lock(&d->notify->lock);
    for (int i = d->notify->count - 1; i >= 0 && !copy[0]; i--)
        if (strstr(d->notify->messages[i], text))
            snprintf(copy, sizeof(copy), "%s", d->notify->messages[i]);
    pthread_mutex_unlock(&d->notify->lock);
    return copy;
}

static void notify_watch_free(struct daemon *d)
{
    struct notify_watch *w = d->notify;
    if (!w)
        return;
    atomic_store(&w->stop, true);
    pthread_join(w->thread, NULL);
    close(w->fd);
    free(w->messages);
    free(w);
    d->notify = NULL;
}

/* The daemons' temp dirs (sockets, logs, taps): removed when the test
 * passes, kept for a look when it fails. */
static char temp_dirs[256][64];
static int ntemp_dirs;

void harness_remember_temp_dir(const char *dir)
{
    if (ntemp_dirs < (int)(sizeof(temp_dirs) / sizeof(temp_dirs[0])))
        snprintf(temp_dirs[ntemp_dirs++], sizeof(temp_dirs[0]), "%s", dir);
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

static void start_daemon(struct daemon *d, const char *const *extra_args, const char *const *extra_env,
                         bool watch, double timeout)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->dir, sizeof(d->dir), "/tmp/sc-test-XXXXXX");
    if (!mkdtemp(d->dir)) {
        perror("mkdtemp");
        exit(1);
    }
    harness_remember_temp_dir(d->dir);
    snprintf(d->socket_path, sizeof(d->socket_path), "%s/socket", d->dir);
    snprintf(d->log_path, sizeof(d->log_path), "%s/soundcardd.log", d->dir);

    /* soundcardd says READY=1 through sd_notify once the card runs and the
     * socket listens: the same event systemd waits for. */
    int notify = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/notify", d->dir);
    if (notify < 0 || bind(notify, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        perror("notify socket");
        exit(1);
    }
    static char notify_env[160];
    snprintf(notify_env, sizeof(notify_env), "NOTIFY_SOCKET=%s", addr.sun_path);
    const char *env[16] = { notify_env };
    for (int i = 0; extra_env && extra_env[i] && i < 14; i++)
        env[i + 1] = extra_env[i];

    const char *argv[64] = { harness_bin("soundcardd"), "--socket", d->socket_path, "--verbose" };
    int argc = 4;
    static char expanded[16][256];
    int nexp = 0;
    for (const char *const *a = extra_args; a && *a && argc < 62; a++) {
        if ((*a)[0] == '@' && nexp < 16) {
            snprintf(expanded[nexp], sizeof(expanded[nexp]), "%s%s", d->dir, *a + 1);
            argv[argc++] = expanded[nexp++];
        } else {
            argv[argc++] = *a;
        }
    }
    argv[argc] = NULL;
    d->pid = spawn(argv, env_with(env), NULL, d->log_path);

    if (watch) {
        struct notify_watch *w = calloc(1, sizeof(*w));
        w->messages = calloc(NOTIFY_MAX_MESSAGES, sizeof(*w->messages));
        w->fd = notify;
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->changed, NULL);
        pthread_create(&w->thread, NULL, notify_reader, w);
        d->notify = w;
        if (!daemon_wait_notify(d, "READY=1", 1, timeout)) {
            fprintf(stderr, "harness: soundcardd not ready within %.1f s; log:\n%s\n", timeout,
                    slurp(d->log_path));
            kill(d->pid, SIGKILL);
            exit(1);
        }
        return;
    }
    double deadline = now_seconds() + timeout;
    for (;;) {
        double left = deadline - now_seconds();
        struct pollfd p = { .fd = notify, .events = POLLIN };
        if (left <= 0 || poll(&p, 1, (int)(left * 1000) + 1) <= 0) {
            fprintf(stderr, "harness: soundcardd not ready within %.1f s; log:\n%s\n", timeout,
                    slurp(d->log_path));
            kill(d->pid, SIGKILL);
            exit(1);
        }
        char msg[512];
        ssize_t n = recv(notify, msg, sizeof(msg) - 1, 0);
        if (n > 0) {
            msg[n] = '\0';
            if (strstr(msg, "READY=1"))
                break;
        }
    }
    close(notify);
}

void daemon_start(struct daemon *d, const char *const *extra_args, double timeout)
{
    start_daemon(d, extra_args, NULL, false, timeout);
}

void daemon_start_watched(struct daemon *d, const char *const *extra_args,
                          const char *const *extra_env, double timeout)
{
    start_daemon(d, extra_args, extra_env, true, timeout);
}

int daemon_stop(struct daemon *d, double timeout)
{
    if (d->pid <= 0)
        return -1;
    kill(d->pid, SIGTERM);
    int rc = wait_child(d->pid, timeout);
    d->pid = 0;
    notify_watch_free(d);
    if (rc != 0)
        fprintf(stderr, "harness: soundcardd exited with %d; log:\n%s\n", rc, slurp(d->log_path));
    return rc;
}

pid_t spawn_process(const char *const *argv, const char *const *extra_env, const char *out_path,
                    const char *err_path)
{
    const char *none[] = { NULL };
    return spawn(argv, env_with(extra_env ? extra_env : none), out_path, err_path);
}

pid_t spawn_client(struct daemon *d, const char *const *argv, const char *out_path)
{
    static char socket_env[160];
    snprintf(socket_env, sizeof(socket_env), "SOUNDCARD_SOCKET=%s", d->socket_path);
    const char *env_extra[] = { socket_env, NULL };
    return spawn(argv, env_with(env_extra), out_path, NULL);
}

cJSON *stats_snapshot(const char *socket_path)
{
    return request_once(socket_path, "{\"op\":\"stats\"}");
}

cJSON *request_once(const char *socket_path, const char *request)
{
    sc_client *c;
    if (sc_client_open(&c, socket_path, "stats-probe") < 0)
        return NULL;
    char *reply = NULL;
    int err = sc_client_request(c, request, &reply);
    sc_client_close(c);
    cJSON *json = err == 0 ? cJSON_Parse(reply) : NULL;
    free(reply);
    return json;
}

double json_number(cJSON *obj, const char *key)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : -1.0;
}

double card_seconds(struct daemon *d)
{
    if (d->card_rate <= 0) {
        cJSON *info = request_once(d->socket_path, "{\"op\":\"server.info\"}");
        d->card_period = json_number(info, "period");
        d->card_rate = json_number(info, "rate");
        cJSON_Delete(info);
    }
    cJSON *stats = stats_snapshot(d->socket_path);
    double cycles = json_number(cJSON_GetObjectItemCaseSensitive(stats, "server"), "cycles");
    cJSON_Delete(stats);
    return d->card_rate > 0 && cycles >= 0 ? cycles * d->card_period / d->card_rate : -1;
}

double card_xruns(struct daemon *d)
{
    cJSON *info = request_once(d->socket_path, "{\"op\":\"server.info\"}");
    double x = info ? json_number(info, "xruns") : -1;
    cJSON_Delete(info);
    return x;
}

cJSON *stats_find_stream(cJSON *stats, const char *name)
{
    cJSON *client, *stream;
    cJSON_ArrayForEach(client, cJSON_GetObjectItemCaseSensitive(stats, "clients"))
        cJSON_ArrayForEach(stream, cJSON_GetObjectItemCaseSensitive(client, "streams"))
        {
            const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(stream, "name"));
            if (n && strcmp(n, name) == 0)
                return stream;
        }
    return NULL;
}

bool wait_for_stats(const char *socket_path, bool (*done)(cJSON *stats, void *ctx), void *ctx,
                    double timeout)
{
    double deadline = now_seconds() + timeout;
    for (;;) {
        cJSON *stats = stats_snapshot(socket_path);
        bool ok = stats && done(stats, ctx);
        cJSON_Delete(stats);
        if (ok)
            return true;
        if (now_seconds() > deadline)
            return false;
        struct timespec interval = { 0, 20 * 1000 * 1000 };
        nanosleep(&interval, NULL);
    }
}

int harness_finish(const char *name)
{
    if (harness_failures) {
        printf("%s: %d check(s) failed (daemon logs and files kept in /tmp/sc-test-*)\n", name,
               harness_failures);
        return 1;
    }
    for (int i = 0; i < ntemp_dirs; i++)
        nftw(temp_dirs[i], remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    printf("%s: all checks passed\n", name);
    return 0;
}
