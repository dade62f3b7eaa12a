#include "service.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "engine.h"
#include "log.h"
#include "server.h"

#define STATUS_INTERVAL_MS 1000

/* STATUS= when it changed; `prefix` ("READY=1\n") goes in the same datagram. */
static void send_status(struct server *s, const char *prefix)
{
    char status[sizeof(s->status)];
    snprintf(status, sizeof(status), "%s %s: %u Hz, %u frames, %u ch; %u clients, %u streams; %s",
             s->backend_ops->name, s->backend ? "running" : "lost", s->card.rate, s->card.period,
             s->card.channels, s->nsessions, s->nstreams, s->socket_path);
    if (!prefix[0] && strcmp(status, s->status) == 0)
        return;
    memcpy(s->status, status, sizeof(status));
    sd_notifyf(0, "%sSTATUS=%s", prefix, status);
}

/* WATCHDOG=1 only when the engine ran cycles since the last one: a wedged
 * RT thread (or a card that stopped) lets systemd's watchdog fire. */
static void feed_watchdog(struct server *s)
{
    struct engine_stats es;
    engine_get_stats(s->engine, &es);
    if (es.cycles == s->watchdog_cycles)
        return;
    s->watchdog_cycles = es.cycles;
    sd_notify(0, "WATCHDOG=1");
}

static void on_service_timer(uv_timer_t *timer)
{
    struct server *s = timer->data;
    if (s->watchdog_usec)
        feed_watchdog(s);
    send_status(s, "");
}

struct reload_report {
    int needs_restart;
};

static void report_change(const char *name, bool live, void *ctx)
{
    struct reload_report *r = ctx;
    if (live) {
        log_info("reload: %s changed", name);
    } else {
        log_warn("reload: %s changed; it takes effect when soundcardd restarts", name);
        r->needs_restart++;
    }
}

/* Parse the same command line again (so the flags still override the file)
 * and take what can change in a running daemon. */
static void reload(struct server *s)
{
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%lld", (long long)(server_now_ns() / 1000));
    struct options fresh;
    char err[512];
    int rc = options_parse(&fresh, s->argc, s->argv, err, sizeof(err));
    if (rc != 0) {
        log_error("reload: %s; keeping the configuration in use", rc < 0 ? err : "nothing to do");
    } else {
        struct reload_report report = { 0 };
        options_each_change(&s->opts, &fresh, report_change, &report);
        s->opts.limits = fresh.limits;
        s->opts.allow_uids = fresh.allow_uids;
        s->opts.allow_gids = fresh.allow_gids;
        s->opts.verbose = fresh.verbose;
        log_set_level(fresh.verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
        s->reloads++;
        log_info("reloaded %s%s", fresh.config_path[0] ? fresh.config_path : "(no config file)",
                 report.needs_restart ? "; some changes wait for a restart" : "");
    }
    send_status(s, "READY=1\n");
}

static void on_sighup(uv_signal_t *handle, int signum)
{
    (void)signum;
    reload(handle->data);
}

void service_ready(struct server *s)
{
    uv_signal_init(&s->loop, &s->sighup);
    s->sighup.data = s;
    uv_signal_start(&s->sighup, on_sighup, SIGHUP);

    if (sd_watchdog_enabled(0, &s->watchdog_usec) <= 0)
        s->watchdog_usec = 0;
    uint64_t interval_ms = STATUS_INTERVAL_MS;
    if (s->watchdog_usec && s->watchdog_usec / 2000 < interval_ms)
        interval_ms = s->watchdog_usec / 2000 ? s->watchdog_usec / 2000 : 1;
    uv_timer_init(&s->loop, &s->service_timer);
    s->service_timer.data = s;
    uv_timer_start(&s->service_timer, on_service_timer, interval_ms, interval_ms);
    if (s->watchdog_usec)
        log_info("systemd watchdog: WATCHDOG=1 every %llu ms while the card runs",
                 (unsigned long long)interval_ms);

    send_status(s, "READY=1\n");
}

void service_stopping(struct server *s)
{
    sd_notify(0, "STOPPING=1");
    uv_close((uv_handle_t *)&s->sighup, NULL);
    uv_close((uv_handle_t *)&s->service_timer, NULL);
}
