/* Tiny assertion helpers shared by the C tests. Each test program ends with "N passed, M failed". */
#ifndef XG_TEST_CHECK_H
#define XG_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

#include "xeroguard.h"

static int checks_passed = 0;
static int checks_failed = 0;

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (cond) {                                                           \
            checks_passed++;                                                  \
        } else {                                                              \
            checks_failed++;                                                  \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
        }                                                                     \
    } while (0)

/* The calling thread's last error message (static buffer: single-threaded use only). */
static const char *last_error(void) {
    static char buf[1024];
    size_t needed = 0;
    buf[0] = '\0';
    xg_last_error_message(buf, sizeof buf, &needed);
    return buf;
}

/* Checks a call's status and that a failure left a readable message. */
#define CHECK_STATUS(call, want)                                                          \
    do {                                                                                  \
        xg_status got_ = (call);                                                          \
        CHECK(got_ == (want), "%s: got %s, want %s (%s)", #call, xg_status_name(got_),   \
              xg_status_name(want), last_error());                                       \
        if ((want) != XG_STATUS_OK) {                                                     \
            CHECK(strlen(last_error()) > 10, "%s: no readable message", #call);          \
        }                                                                                 \
    } while (0)

static int finish(void) {
    printf("%d passed, %d failed\n", checks_passed, checks_failed);
    return checks_failed == 0 ? 0 : 1;
}

#endif
