/* The ALSA control plugin `soundcard`: ctl.soundcard exists, so programs
 * that open the mixer of the device they play on (`-D soundcard`) find one.
 * It has no elements yet: soundcardd's volume is per stream
 * (`soundcard gain STREAM G`).  It checks that soundcardd answers, so a
 * mixer opened on a machine without it fails the way the PCM does.
 *
 *   ctl.soundcard { type soundcard  [socket PATH] }
 */
#include <alsa/asoundlib.h>
#include <alsa/control_external.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <soundcard/soundcard.h>

struct sc_ctl {
    snd_ctl_ext_t ext;
};

static void sc_ctl_close(snd_ctl_ext_t *ext)
{
    free(ext->private_data);
}

static int sc_ctl_elem_count(snd_ctl_ext_t *ext)
{
    (void)ext;
    return 0;
}

static int sc_ctl_elem_list(snd_ctl_ext_t *ext, unsigned int offset, snd_ctl_elem_id_t *id)
{
    (void)ext, (void)offset, (void)id;
    return -EINVAL;
}

static snd_ctl_ext_key_t sc_ctl_find_elem(snd_ctl_ext_t *ext, const snd_ctl_elem_id_t *id)
{
    (void)ext, (void)id;
    return SND_CTL_EXT_KEY_NOT_FOUND;
}

static int sc_ctl_get_attribute(snd_ctl_ext_t *ext, snd_ctl_ext_key_t key, int *type,
                                unsigned int *acc, unsigned int *count)
{
    (void)ext, (void)key, (void)type, (void)acc, (void)count;
    return -EINVAL;
}

static int sc_ctl_read_event(snd_ctl_ext_t *ext, snd_ctl_elem_id_t *id, unsigned int *event_mask)
{
    (void)ext, (void)id, (void)event_mask;
    return -EAGAIN;
}

static const snd_ctl_ext_callback_t sc_ctl_callbacks = {
    .close = sc_ctl_close,
    .elem_count = sc_ctl_elem_count,
    .elem_list = sc_ctl_elem_list,
    .find_elem = sc_ctl_find_elem,
    .get_attribute = sc_ctl_get_attribute,
    .read_event = sc_ctl_read_event,
};

SND_CTL_PLUGIN_DEFINE_FUNC(soundcard)
{
    (void)root;
    const char *socket_path = NULL;
    snd_config_iterator_t i, next;
    snd_config_for_each(i, next, conf) {
        snd_config_t *n = snd_config_iterator_entry(i);
        const char *id;
        if (snd_config_get_id(n, &id) < 0 || !strcmp(id, "comment") || !strcmp(id, "type") ||
            !strcmp(id, "hint"))
            continue;
        if (!strcmp(id, "socket") && snd_config_get_string(n, &socket_path) == 0)
            continue;
        SNDERR("soundcard: unknown or bad field %s (known: socket)", id);
        return -EINVAL;
    }
    sc_client *client;
    if (sc_client_open(&client, socket_path, "alsa-ctl") < 0) {
        SNDERR("soundcard: %s", sc_last_error());
        return -ECONNREFUSED;
    }
    sc_client_close(client);

    struct sc_ctl *ctl = calloc(1, sizeof(*ctl));
    if (!ctl)
        return -ENOMEM;
    ctl->ext.version = SND_CTL_EXT_VERSION;
    ctl->ext.card_idx = 0;
    snprintf(ctl->ext.id, sizeof(ctl->ext.id), "soundcard");
    snprintf(ctl->ext.driver, sizeof(ctl->ext.driver), "soundcard");
    snprintf(ctl->ext.name, sizeof(ctl->ext.name), "soundcardd");
    snprintf(ctl->ext.longname, sizeof(ctl->ext.longname), "soundcardd, the shared sound card daemon");
    snprintf(ctl->ext.mixername, sizeof(ctl->ext.mixername), "soundcard");
    ctl->ext.poll_fd = -1;
    ctl->ext.callback = &sc_ctl_callbacks;
    ctl->ext.private_data = ctl;
    int err = snd_ctl_ext_create(&ctl->ext, name, mode);
    if (err < 0) {
        free(ctl);
        return err;
    }
    *handlep = ctl->ext.handle;
    return 0;
}

SND_CTL_PLUGIN_SYMBOL(soundcard);
