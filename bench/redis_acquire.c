/* xeroguard's shared (Redis) limiter from C, for bench/redis_ops.py: what a decision costs without a binding.
 *
 *   redis_acquire latency URL PREFIX OPS   acquire + release OPS times for one tenant, limits so high that every
 *                                          call is granted (monotonic clock, the store's time), after an
 *                                          untimed tenth as many; prints JSON:
 *                                          {"version", "ops", "p50_us", "p99_us", "ops_per_s"}
 *   redis_acquire fill URL PREFIX TENANT N fills TENANT's day window with N calls (Xero's limits, exactly; a manual
 *                                          clock moved 1 s per call, so no minute window refuses); prints
 *                                          {"version", "calls"}
 *
 * Built and run by bench/redis_ops.py against the library of this checkout. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xeroguard.h"

#define BIG_LIMIT 1000000
#define TENANT "bench-tenant"

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int fail(const char *what) {
    char message[512];
    xg_last_error_message(message, sizeof message, NULL);
    fprintf(stderr, "redis_acquire: %s: %s\n", what, message);
    return 1;
}

static int compare_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static xg_limiter *open_limiter(const char *url, const char *prefix, const xg_limits *limits, uint32_t clock) {
    xg_limiter *limiter = NULL;
    xg_redis_options options = xg_redis_options_default();
    options.url = url;
    options.url_len = strlen(url);
    options.key_prefix = prefix;
    options.key_prefix_len = strlen(prefix);
    if (xg_limiter_new_redis(limits, &options, clock, &limiter) != XG_STATUS_OK) return NULL;
    return limiter;
}

static int latency(const char *url, const char *prefix, long ops) {
    xg_limits limits = xg_limits_default(); /* margins and the 5 in flight as users get them; only limits raised */
    xg_limiter *limiter;
    xg_decision d;
    uint64_t *took, start = 0, total;
    long i, warm = ops / 10 + 1;
    limits.tenant_minute.limit = BIG_LIMIT;
    limits.tenant_day.limit = BIG_LIMIT;
    limits.app_minute.limit = BIG_LIMIT;
    limiter = open_limiter(url, prefix, &limits, XG_CLOCK_MONOTONIC);
    if (limiter == NULL) return fail("xg_limiter_new_redis");
    took = calloc((size_t)ops, sizeof *took);
    if (took == NULL) return 1;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    for (i = -warm; i < ops; i++) { /* the first `warm` decisions (connections, script loads) are not timed */
        uint64_t t0 = now_ns();
        if (xg_limiter_acquire(limiter, TENANT, strlen(TENANT), &d) != XG_STATUS_OK) return fail("acquire");
        if (!d.granted || d.fallback != 0) {
            fprintf(stderr, "redis_acquire: refused (%s) or decided without the store\n", xg_reason_name(d.reason));
            return 1;
        }
        if (xg_limiter_release(limiter, d.permit) != XG_STATUS_OK) return fail("release");
        if (i >= 0) took[i] = now_ns() - t0;
        if (i == -1) start = now_ns();
    }
    total = now_ns() - start;
    qsort(took, (size_t)ops, sizeof *took, compare_u64);
    printf("{\"version\": \"%s\", \"ops\": %ld, \"p50_us\": %.2f, \"p99_us\": %.2f, \"ops_per_s\": %.0f}\n",
           xg_version(), ops,
           (double)took[(ops - 1) / 2] / 1000.0, (double)took[(ops * 99 + 99) / 100 - 1] / 1000.0,
           (double)ops * 1e9 / (double)total);
    free(took);
    xg_limiter_free(limiter);
    return 0;
}

static int fill(const char *url, const char *prefix, const char *tenant, long calls) {
    xg_limits limits = xg_limits_exact();
    xg_limiter *limiter = open_limiter(url, prefix, &limits, XG_CLOCK_MANUAL);
    xg_decision d;
    long i;
    if (limiter == NULL) return fail("xg_limiter_new_redis");
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    for (i = 0; i < calls; i++) {
        if (xg_limiter_acquire(limiter, tenant, strlen(tenant), &d) != XG_STATUS_OK) return fail("acquire");
        if (!d.granted) {
            fprintf(stderr, "redis_acquire: call %ld refused (%s)\n", i, xg_reason_name(d.reason));
            return 1;
        }
        if (xg_limiter_release(limiter, d.permit) != XG_STATUS_OK) return fail("release");
        if (xg_limiter_advance_ms(limiter, 1000) != XG_STATUS_OK) return fail("advance");
    }
    printf("{\"version\": \"%s\", \"calls\": %ld}\n", xg_version(), calls);
    xg_limiter_free(limiter);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "latency") == 0 && atol(argv[4]) > 0)
        return latency(argv[2], argv[3], atol(argv[4]));
    if (argc == 6 && strcmp(argv[1], "fill") == 0 && atol(argv[5]) > 0)
        return fill(argv[2], argv[3], argv[4], atol(argv[5]));
    fprintf(stderr, "usage: redis_acquire latency URL PREFIX OPS | fill URL PREFIX TENANT CALLS\n");
    return 2;
}
