/* soundcardd: owns the sound card and shares it between client processes. */
#include <signal.h>
#include <stdio.h>

#include "log.h"
#include "options.h"
#include "server.h"

int main(int argc, char **argv)
{
    struct options opts;
    char err[512];
    int rc = options_parse(&opts, argc, argv, err, sizeof(err));
    if (rc != 0) {
        if (rc < 0)
            fprintf(stderr, "soundcardd: %s\n", err);
        return rc < 0 ? 2 : 0;
    }
    log_set_level(opts.verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
    signal(SIGPIPE, SIG_IGN);

    static struct server server;
    if (server_init(&server, &opts, argc, argv, err, sizeof(err)) < 0) {
        fprintf(stderr, "soundcardd: cannot start: %s\n", err);
        server_cleanup(&server);
        return 1;
    }
    server_run(&server);
    server_cleanup(&server);
    log_info("stopped");
    return 0;
}
