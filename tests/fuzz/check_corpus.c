/* fuzz.corpus: the seed corpus still says what its file names say, so it
 * cannot rot as the protocol changes.
 *
 *   valid-OP[-variant]      one line that msg_parse_request accepts as OP
 *   invalid-CODE[-variant]  one line that it rejects with error CODE
 *   session-NAME            a conversation: every line is accepted
 *   raw-NAME                any bytes (not checked)
 *
 * Every op of the protocol has a valid- seed and is in the dictionary.
 * Usage: fuzz_check_corpus CORPUS_DIR DICT_FILE */
#include "message.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define EXPECT(cond, ...)                                  \
    do {                                                   \
        if (!(cond)) {                                     \
            fprintf(stderr, "FAIL %s: ", #cond);           \
            fprintf(stderr, __VA_ARGS__);                  \
            fputc('\n', stderr);                           \
            failures++;                                    \
        }                                                  \
    } while (0)

/* The whole file, NUL-terminated (binary seeds may hold NULs too). */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            buf = realloc(buf, (cap *= 2) + 1);
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    *len = n;
    return buf;
}

/* The word of `name` after `prefix` and before the next '-'. */
static void word_after(const char *name, const char *prefix, char *out, size_t size)
{
    const char *w = name + strlen(prefix);
    size_t n = strcspn(w, "-");
    snprintf(out, size, "%.*s", (int)(n < size ? n : size - 1), w);
}

/* One seed that must be a single '\n'-terminated line: its outcome. */
static enum msg_error_code parse_single(const char *name, const char *data, size_t len,
                                        struct msg_request *req, struct msg_error *err)
{
    const char *nl = memchr(data, '\n', len);
    if (!nl || (size_t)(nl - data) != len - 1) {
        EXPECT(0, "%s: must be exactly one line ending in '\\n'", name);
        return MSG_ERR_COUNT;
    }
    return msg_parse_request(data, len - 1, req, err);
}

static void check_seed(const char *name, const char *data, size_t len, int *op_seeds)
{
    struct msg_request req;
    struct msg_error err;
    char word[64];
    if (strncmp(name, "valid-", 6) == 0) {
        word_after(name, "valid-", word, sizeof word);
        enum msg_error_code code = parse_single(name, data, len, &req, &err);
        if (code == MSG_ERR_COUNT)
            return;
        EXPECT(code == MSG_OK, "%s: rejected with %s: %s", name, msg_error_code_name(code), err.message);
        EXPECT(code != MSG_OK || strcmp(msg_op_name(req.op), word) == 0, "%s: parsed as op %s", name,
               msg_op_name(req.op));
        if (code == MSG_OK && strcmp(msg_op_name(req.op), word) == 0)
            op_seeds[req.op]++;
    } else if (strncmp(name, "invalid-", 8) == 0) {
        word_after(name, "invalid-", word, sizeof word);
        enum msg_error_code code = parse_single(name, data, len, &req, &err);
        if (code == MSG_ERR_COUNT)
            return;
        EXPECT(code != MSG_OK && strcmp(msg_error_code_name(code), word) == 0,
               "%s: got %s (%s), expected %s", name, msg_error_code_name(code), err.message, word);
    } else if (strncmp(name, "session-", 8) == 0) {
        EXPECT(len > 0 && data[len - 1] == '\n', "%s: must end with '\\n'", name);
        int lineno = 1;
        for (const char *line = data, *nl; (nl = memchr(line, '\n', (size_t)(data + len - line)));
             line = nl + 1, lineno++) {
            enum msg_error_code code = msg_parse_request(line, (size_t)(nl - line), &req, &err);
            EXPECT(code == MSG_OK, "%s line %d: rejected with %s: %s", name, lineno,
                   msg_error_code_name(code), err.message);
        }
    } else {
        EXPECT(strncmp(name, "raw-", 4) == 0,
               "%s: a seed's name starts with valid-, invalid-, session- or raw-", name);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s CORPUS_DIR DICT_FILE\n", argv[0]);
        return 2;
    }
    DIR *dir = opendir(argv[1]);
    if (!dir) {
        perror(argv[1]);
        return 1;
    }
    int op_seeds[MSG_OP_COUNT] = {0};
    int seeds = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[1], e->d_name);
        size_t len;
        char *data = read_file(path, &len);
        EXPECT(data, "%s: cannot read it", path);
        if (data)
            check_seed(e->d_name, data, len, op_seeds);
        free(data);
        seeds++;
    }
    closedir(dir);

    size_t dict_len;
    char *dict = read_file(argv[2], &dict_len);
    EXPECT(dict, "%s: cannot read the dictionary", argv[2]);
    for (int op = 0; op < MSG_OP_COUNT; op++) {
        EXPECT(op_seeds[op] > 0, "op %s has no valid-%s seed", msg_op_name(op), msg_op_name(op));
        char quoted[64];
        snprintf(quoted, sizeof quoted, "\"\\\"%s\\\"\"", msg_op_name(op));
        EXPECT(dict && strstr(dict, quoted), "op %s is not in the dictionary (as %s)", msg_op_name(op),
               quoted);
    }
    free(dict);
    printf("fuzz.corpus: %d seeds, every one of the %d ops with a valid seed: %s\n", seeds,
           MSG_OP_COUNT, failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
