#include <stddef.h>
#include <string.h>

#include "backend.h"

extern const struct backend_ops backend_dummy;
extern const struct backend_ops backend_portaudio;
extern const struct backend_ops backend_jack;

static const struct backend_ops *const backends[] = {
    &backend_dummy,
    &backend_portaudio,
    &backend_jack,
};

const struct backend_ops *backend_find(const char *name)
{
    for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
        if (strcmp(backends[i]->name, name) == 0)
            return backends[i];
    return NULL;
}

const char *backend_names(void)
{
    return "dummy, portaudio, jack";
}
