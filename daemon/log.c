#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static enum log_level current_level = LOG_LEVEL_INFO;

void log_set_level(enum log_level level)
{
    current_level = level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    /* The <N> prefixes are sd-daemon(3) priorities: journald maps them. */
    static const char *const prefix[] = { "<3>error: ", "<4>warning: ", "<6>", "<7>debug: " };
    if (level > current_level)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%ssoundcardd: %s\n", prefix[level], line);
}
