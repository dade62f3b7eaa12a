/* The floor under any server that wakes each of N client processes once
 * per period: for bench/compare, beside JACK and soundcard in one run.
 *
 *   wake_floor CLIENTS PERIOD RATE
 *
 * It forks CLIENTS processes that do nothing but sleep on a futex word in
 * shared memory and go back to sleep when woken.  Its own thread (SCHED_FIFO
 * 70, as both servers' card threads) wakes every one of them once per
 * PERIOD frames of a RATE clock: an atomic increment and one FUTEX_WAKE
 * each, the cheapest wake-up Linux offers (JACK's own mechanism), with no
 * audio, no mixing, no ring and no socket.  The clients wait at SCHED_FIFO
 * 60 when the system allows it, as both systems' client threads do.
 * Whatever CPU this costs, a real server with real clients costs at least
 * as much at the same wake-up rate.
 *
 * It prints "pids C1 C2 ..." (the clients, to measure them) and "ready",
 * and runs until SIGTERM, when it ends the clients it started, by PID. */
#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static long futex(_Atomic uint32_t *word, int op, uint32_t val)
{
    return syscall(SYS_futex, (uint32_t *)word, op, val, NULL, NULL, 0);
}

static void set_fifo(int priority)
{
    struct sched_param sp = { .sched_priority = priority };
    if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0)
        fprintf(stderr, "wake_floor: SCHED_FIFO %d refused, running normal\n", priority);
}

/* A client: sleep until the word moves, forever. */
static void client(_Atomic uint32_t *word)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);  /* never outlive the server that started it */
    set_fifo(60);
    uint32_t seen = atomic_load(word);
    for (;;) {
        futex(word, FUTEX_WAIT, seen);
        seen = atomic_load(word);
    }
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: wake_floor CLIENTS PERIOD RATE\n");
        return 2;
    }
    int n = atoi(argv[1]);
    long period = atol(argv[2]), rate = atol(argv[3]);
    if (n < 1 || period < 1 || rate < 1) {
        fprintf(stderr, "wake_floor: CLIENTS, PERIOD and RATE must be positive\n");
        return 2;
    }
    /* One cache line per word, so a client's wake-up touches only its own. */
    enum { STRIDE = 64 / sizeof(uint32_t) };
    _Atomic uint32_t *words = mmap(NULL, (size_t)n * 64, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                                   -1, 0);
    pid_t *pids = calloc((size_t)n, sizeof(pid_t));
    if (words == MAP_FAILED || !pids) {
        perror("wake_floor");
        return 1;
    }
    for (int i = 0; i < n; i++) {
        pids[i] = fork();
        if (pids[i] == 0)
            client(&words[i * STRIDE]);
        if (pids[i] < 0) {
            perror("wake_floor: fork");
            n = i;
            stop = 1;
            break;
        }
    }
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    printf("pids");
    for (int i = 0; i < n; i++)
        printf(" %d", (int)pids[i]);
    printf("\nready\n");
    fflush(stdout);

    set_fifo(70);
    long long period_ns = 1000000000LL * period / rate;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    while (!stop) {
        next.tv_nsec += period_ns;
        while (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR && !stop)
            ;
        for (int i = 0; i < n; i++) {
            atomic_fetch_add(&words[i * STRIDE], 1);
            futex(&words[i * STRIDE], FUTEX_WAKE, 1);
        }
    }
    for (int i = 0; i < n; i++)
        kill(pids[i], SIGKILL);
    for (int i = 0; i < n; i++)
        waitpid(pids[i], NULL, 0);
    return 0;
}
