/* xeroguard's shared (Redis) limiter from C, for bench/redis_ops.py: what a decision costs without a binding.
 *
 *   redis_acquire latency URL PREFIX OPS   acquire + release OPS times for one tenant, limits so high that every
 *                                          call is granted (monotonic clock, the store's time), after an
 *                                          untimed tenth as many; prints JSON:
 *                                          {"version", "ops", "p50_us", "p99_us", "ops_per_s"}
 *   redis_acquire fill URL PREFIX TENANT N fills TENANT's day window with N calls (Xero's limits, exactly; a manual
 *                                          clock moved 1 s per call, so no minute window refuses), each acquired,
 *                                          observed and released, but the last 5 still held and a call recorded
 *                                          (a busy tenant's bookkeeping); prints {"version", "calls"}
 *   redis_acquire reserve URL|- PREFIX N [STEP_MS]
 *                                          books N slots for one tenant (Xero's limits, manual clock from 0, moved
 *                                          STEP_MS (default 0) after each reserve: each reserve passes the bookings
 *                                          before it; those past the booking cap are refused and counted), URL "-"
 *                                          for the in-process backend; prints
 *                                          {"version", "backend", "last_at_ms", "refused", "latency_us": [each]}
 *   redis_acquire waiters URL PREFIX THREADS SECONDS HOLD_MS
 *                                          THREADS threads wait for one tenant's 5 slots with acquire_wait and
 *                                          hold each HOLD_MS; prints {"grants", "seconds"}
 *   redis_acquire pollers URL PREFIX THREADS SECONDS HOLD_MS
 *                                          the same, each thread asking again every 25 ms on its own (the wait
 *                                          policy before: a fixed poll per waiter)
 *
 * Built and run by bench/redis_ops.py against the library of this checkout. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
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
    xg_classification ok;
    /* Xero's answer to one call of many: the remaining counts (a real observe, which adds nothing here). */
    static const char headers[] = "X-MinLimit-Remaining\0" "59\0" "X-DayLimit-Remaining\0" "4999\0"
                                  "X-AppMinLimit-Remaining\0" "9999";
    long i;
    if (limiter == NULL) return fail("xg_limiter_new_redis");
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    memset(&ok, 0, sizeof ok);
    ok.struct_size = sizeof ok;
    if (xg_classify_flat(200, (const uint8_t *)headers, sizeof headers - 1, NULL, 0, 0, &ok, NULL) != XG_STATUS_OK)
        return fail("classify");
    /* The last 6 calls are a busy tenant's bookkeeping at any moment: 5 permits in flight, and a recorded call's
     * result kept for a retry. */
    for (i = 0; i < calls; i++) {
        if (i == calls - 1) {
            if (xg_limiter_record(limiter, tenant, strlen(tenant)) != XG_STATUS_OK) return fail("record");
            break;
        }
        if (xg_limiter_acquire(limiter, tenant, strlen(tenant), &d) != XG_STATUS_OK) return fail("acquire");
        if (!d.granted) {
            fprintf(stderr, "redis_acquire: call %ld refused (%s)\n", i, xg_reason_name(d.reason));
            return 1;
        }
        if (xg_limiter_observe(limiter, tenant, strlen(tenant), &ok) != XG_STATUS_OK) return fail("observe");
        if (i < calls - 6 && xg_limiter_release(limiter, d.permit) != XG_STATUS_OK) return fail("release");
        if (xg_limiter_advance_ms(limiter, 1000) != XG_STATUS_OK) return fail("advance");
    }
    printf("{\"version\": \"%s\", \"calls\": %ld}\n", xg_version(), calls);
    xg_limiter_free(limiter);
    return 0;
}

static int reserve(const char *url, const char *prefix, long n, uint64_t step_ms) {
    xg_limits limits = xg_limits_default();
    xg_limiter *limiter = NULL;
    xg_reservation r;
    uint64_t *took = calloc((size_t)n, sizeof *took);
    long i, refused = 0;
    unsigned long long last_at_ms = 0;
    int memory = strcmp(url, "-") == 0;
    if (took == NULL) return 1;
    if (memory) {
        if (xg_limiter_new(&limits, XG_CLOCK_MANUAL, &limiter) != XG_STATUS_OK) return fail("xg_limiter_new");
    } else {
        limiter = open_limiter(url, prefix, &limits, XG_CLOCK_MANUAL);
        if (limiter == NULL) return fail("xg_limiter_new_redis");
    }
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    for (i = 0; i < n; i++) {
        uint64_t t0 = now_ns();
        xg_status status = xg_limiter_reserve(limiter, "bench-tenant", 12, &r);
        took[i] = now_ns() - t0;
        if (status == XG_STATUS_BOOKING_TOO_FAR) refused++; /* past the booking cap */
        else if (status != XG_STATUS_OK) return fail("reserve");
        else last_at_ms = (unsigned long long)r.at_ms;
        if (step_ms > 0 && xg_limiter_advance_ms(limiter, step_ms) != XG_STATUS_OK) return fail("advance");
    }
    printf("{\"version\": \"%s\", \"backend\": \"%s\", \"last_at_ms\": %llu, \"refused\": %ld, \"latency_us\": [",
           xg_version(), memory ? "in-process" : "redis", last_at_ms, refused);
    for (i = 0; i < n; i++) printf("%s%.1f", i ? ", " : "", (double)took[i] / 1000.0);
    printf("]}\n");
    free(took);
    xg_limiter_free(limiter);
    return 0;
}

struct waiter {
    xg_limiter *limiter;
    uint64_t until_ns;
    long hold_ms;
    int poll_on_own; /* 1: ask every 25 ms (the policy before); 0: acquire_wait */
    long grants;
};

static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

static void *wait_loop(void *arg) {
    struct waiter *w = (struct waiter *)arg;
    xg_decision d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    while (now_ns() < w->until_ns) {
        xg_status status = w->poll_on_own ? xg_limiter_acquire(w->limiter, "busy", 4, &d)
                                          : xg_limiter_acquire_wait(w->limiter, "busy", 4, 1000, &d);
        if (status != XG_STATUS_OK) break;
        if (!d.granted) {
            if (w->poll_on_own) sleep_ms(25);
            continue;
        }
        w->grants++;
        sleep_ms(w->hold_ms);
        xg_limiter_release(w->limiter, d.permit);
    }
    return NULL;
}

static int waiters(const char *url, const char *prefix, long threads, long seconds, long hold_ms, int poll_on_own) {
    xg_limits limits = xg_limits_default();
    xg_limiter *limiter;
    pthread_t *ids = calloc((size_t)threads, sizeof *ids);
    struct waiter *ws = calloc((size_t)threads, sizeof *ws);
    long i, grants = 0;
    if (ids == NULL || ws == NULL) return 1;
    limits.tenant_minute.limit = BIG_LIMIT;
    limits.tenant_day.limit = BIG_LIMIT;
    limits.app_minute.limit = BIG_LIMIT;
    limiter = open_limiter(url, prefix, &limits, XG_CLOCK_MONOTONIC);
    if (limiter == NULL) return fail("xg_limiter_new_redis");
    for (i = 0; i < threads; i++) {
        ws[i].limiter = limiter;
        ws[i].until_ns = now_ns() + (uint64_t)seconds * 1000000000u;
        ws[i].hold_ms = hold_ms;
        ws[i].poll_on_own = poll_on_own;
        pthread_create(&ids[i], NULL, wait_loop, &ws[i]);
    }
    for (i = 0; i < threads; i++) {
        pthread_join(ids[i], NULL);
        grants += ws[i].grants;
    }
    printf("{\"grants\": %ld, \"seconds\": %ld}\n", grants, seconds);
    free(ids);
    free(ws);
    xg_limiter_free(limiter);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "latency") == 0 && atol(argv[4]) > 0)
        return latency(argv[2], argv[3], atol(argv[4]));
    if (argc == 6 && strcmp(argv[1], "fill") == 0 && atol(argv[5]) > 0)
        return fill(argv[2], argv[3], argv[4], atol(argv[5]));
    if ((argc == 5 || argc == 6) && strcmp(argv[1], "reserve") == 0 && atol(argv[4]) > 0)
        return reserve(argv[2], argv[3], atol(argv[4]), argc == 6 ? (uint64_t)atol(argv[5]) : 0);
    if (argc == 7 && (strcmp(argv[1], "waiters") == 0 || strcmp(argv[1], "pollers") == 0) && atol(argv[4]) > 0)
        return waiters(argv[2], argv[3], atol(argv[4]), atol(argv[5]), atol(argv[6]), strcmp(argv[1], "pollers") == 0);
    fprintf(stderr, "usage: redis_acquire latency URL PREFIX OPS | fill URL PREFIX TENANT CALLS | reserve URL|- PREFIX N [STEP_MS]"
                    " | waiters|pollers URL PREFIX THREADS SECONDS HOLD_MS\n");
    return 2;
}
