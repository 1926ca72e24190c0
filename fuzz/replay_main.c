/* Replays fuzz corpora without libFuzzer: feeds every regular file in the
 * given directories (or the target's seed corpus when none are given) to
 * LLVMFuzzerTestOneInput. A crash or sanitizer report fails the run. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Reads a whole file into a malloc'd buffer (the fuzz target must see
 * exactly the file's bytes, so no pool slack); the caller frees it. */
static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long size;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)size + 1);
        if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)size;
    }
    fclose(f);
    return buf;
}

static int replay_directory(const char *dir, int *count)
{
    DIR *d = opendir(dir);
    struct dirent *entry;
    int failed = 0;

    if (!d) {
        fprintf(stderr, "cannot open corpus directory %s\n", dir);
        return 1;
    }
    while ((entry = readdir(d)) != NULL) {
        char path[4096];
        struct stat st;
        unsigned char *data;
        size_t len = 0;

        if (entry->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        data = read_file(path, &len);
        if (!data) {
            fprintf(stderr, "cannot read %s\n", path);
            failed = 1;
            continue;
        }
        LLVMFuzzerTestOneInput(data, len);
        free(data);
        (*count)++;
    }
    closedir(d);
    return failed;
}

int main(int argc, char **argv)
{
    static const char *const default_dirs[] = {BL_FUZZ_DEFAULT_CORPUS, NULL};
    const char *const *dirs = argc > 1 ? (const char *const *)argv + 1 : default_dirs;
    int failed = 0, count = 0;

    for (; *dirs; dirs++)
        failed |= replay_directory(*dirs, &count);
    printf("replayed %d inputs%s\n", count, failed ? " (with errors)" : "");
    return failed || count == 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
