/* The stall probe (stall_probe.h) for tests in other languages.
 *
 *   stall_probe                    probe until stdin closes, then print
 *                                  worst_ms=<the worst lateness>
 *   stall_probe --quiet MS [S]     wait (at most S seconds, default 10) for a
 *                                  second with no thread MS ms late; print
 *                                  waited_s=<seconds>, or exit 1 at the deadline
 *
 * Exit status 2 when realtime scheduling is refused, or the build has no
 * probe: no evidence then. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stall_probe.h"

int main(int argc, char **argv)
{
    if (stall_probe_unavailable()) {
        fprintf(stderr, "stall_probe: %s\n", stall_probe_unavailable());
        return 2;
    }
    if (argc >= 3 && !strcmp(argv[1], "--quiet")) {
        double waited = stall_probe_wait_quiet(atof(argv[2]) / 1000, argc > 3 ? atof(argv[3]) : 10);
        if (waited < 0)
            return 1;
        printf("waited_s=%.1f\n", waited);
        return 0;
    }
    struct stall_probe *p = stall_probe_start();
    if (!p) {
        fprintf(stderr, "stall_probe: realtime scheduling refused\n");
        return 2;
    }
    char buf[256];
    while (read(STDIN_FILENO, buf, sizeof(buf)) > 0)
        ;
    printf("worst_ms=%.3f\n", 1000 * stall_probe_worst(p));
    stall_probe_stop(p);
    return 0;
}
