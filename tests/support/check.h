/* The unit tests' one assertion macro and summary line. */
#ifndef SC_TEST_CHECK_H
#define SC_TEST_CHECK_H

#include <stdio.h>

static int check_failures, check_count;

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        check_count++;                                                                       \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                  \
            check_failures++;                                                                \
        }                                                                                    \
    } while (0)

/* Prints "N passed, N failed"; returns the process exit code. */
static inline int check_summary(void)
{
    printf("%d passed, %d failed\n", check_count - check_failures, check_failures);
    return check_failures != 0;
}

#endif
