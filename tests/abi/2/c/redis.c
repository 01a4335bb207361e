/* The shared (Redis) limiter from C: argv[1] is the URL of a server the test started. Two handles on one key
 * prefix are two processes of one app: they share every window, permit and block. A store that cannot be reached
 * answers by the failure policy within the deadline. */
#include <stdint.h>
#include <time.h>

#include "check.h"

static xg_decision decision(void) {
    xg_decision d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    return d;
}

static xg_limiter *open_shared(const char *url, const char *prefix, uint32_t policy, xg_status want) {
    xg_limiter *lim = NULL;
    xg_limits limits = xg_limits_exact();
    xg_redis_options o = xg_redis_options_default();
    o.url = url;
    o.url_len = strlen(url);
    o.key_prefix = prefix;
    o.key_prefix_len = strlen(prefix);
    o.on_store_error = policy;
    o.deadline_ms = 200;
    CHECK_STATUS(xg_limiter_new_redis(&limits, &o, XG_CLOCK_MANUAL, &lim), want);
    return lim;
}

static double seconds_since(const struct timespec *start) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

int main(int argc, char **argv) {
    char prefix[64];
    xg_limiter *a, *b;
    xg_decision d = decision();
    xg_redis_options bad = xg_redis_options_default();
    xg_limiter *none = NULL;
    struct timespec start;
    int i, granted = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: redis URL\n");
        return 2;
    }
    snprintf(prefix, sizeof prefix, "c-test-%ld", (long)time(NULL));
    a = open_shared(argv[1], prefix, XG_FAILURE_POLICY_CLOSED, XG_STATUS_OK);
    b = open_shared(argv[1], prefix, XG_FAILURE_POLICY_CLOSED, XG_STATUS_OK);
    if (!a || !b) return finish();

    /* 60 calls a minute between both handles, exactly. */
    for (i = 0; i < 70; i++) {
        xg_limiter *which = (i % 2) ? a : b;
        CHECK_STATUS(xg_limiter_acquire(which, "tenant", 6, &d), XG_STATUS_OK);
        if (d.granted) {
            granted++;
            CHECK_STATUS(xg_limiter_release(which, d.permit), XG_STATUS_OK);
        }
    }
    CHECK(granted == 60, "the two handles share one minute window: %d granted", granted);
    CHECK(!d.granted && d.reason == XG_REASON_MINUTE && d.wait_ms == 60000 && d.fallback == 0,
          "the 70th waits a minute (%s, %llu)", xg_reason_name(d.reason), (unsigned long long)d.wait_ms);
    xg_limiter_advance_ms(a, 60000);
    xg_limiter_advance_ms(b, 60000);
    CHECK_STATUS(xg_limiter_acquire(b, "tenant", 6, &d), XG_STATUS_OK);
    CHECK(d.granted, "a minute later");
    CHECK_STATUS(xg_limiter_release(b, d.permit), XG_STATUS_OK);
    xg_limiter_free(a);
    xg_limiter_free(b);

    /* Nobody listens on port 1: creating fails within the deadline; a bad URL or prefix is refused at once. */
    clock_gettime(CLOCK_MONOTONIC, &start);
    none = open_shared("redis://127.0.0.1:1", "unreachable", XG_FAILURE_POLICY_CLOSED, XG_STATUS_STORE_UNAVAILABLE);
    CHECK(none == NULL && seconds_since(&start) < 1.0, "unreachable store: %.3f s", seconds_since(&start));
    bad.struct_size = sizeof bad;
    bad.url = "nonsense://x";
    bad.url_len = strlen(bad.url);
    bad.key_prefix = "p{1}";
    bad.key_prefix_len = 4;
    CHECK_STATUS(xg_limiter_new_redis(NULL, &bad, XG_CLOCK_MANUAL, &none), XG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(xg_limiter_new_redis(NULL, NULL, XG_CLOCK_MANUAL, &none), XG_STATUS_NULL_POINTER);
    CHECK(strcmp(xg_failure_policy_name(XG_FAILURE_POLICY_LOCAL), "local") == 0, "named");
    return finish();
}
