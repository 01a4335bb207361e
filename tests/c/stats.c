/* The statistics from C: the figures xg_limiter_stats reads after known operations on a manual clock. */
#include <stdint.h>

#include "check.h"

static xg_stats read_stats(const xg_limiter *lim) {
    xg_stats s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    CHECK_STATUS(xg_limiter_stats(lim, &s), XG_STATUS_OK);
    CHECK(s.struct_size == sizeof s, "struct_size: the layout filled (%u)", (unsigned)s.struct_size);
    return s;
}

static uint64_t sum(const uint64_t *values, int n) {
    uint64_t total = 0;
    int i;
    for (i = 0; i < n; i++) total += values[i];
    return total;
}

int main(void) {
    const char *limited = "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 17\r\nX-Rate-Limit-Problem: minute\r\n\r\n";
    const char *ok = "HTTP/1.1 200 OK\r\nX-MinLimit-Remaining: 50\r\n\r\n{}";
    xg_limits limits = xg_limits_exact();
    xg_limiter *lim = NULL;
    xg_decision d;
    xg_wait_step step;
    xg_stats s;
    uint64_t deadline = 0;
    int i;
    CHECK_STATUS(xg_limiter_new(&limits, XG_CLOCK_MANUAL, &lim), XG_STATUS_OK);

    s = read_stats(lim);
    CHECK(s.granted == 0 && sum(s.refused, XG_STATS_REASONS) == 0 && s.waits_started == 0, "a new limiter: zeros");
    CHECK(s.shared == 0 && s.breaker_open == 0 && s.store_operations == 0, "no store");
    CHECK(s.wait_bucket_le_ms[0] == 10 && s.wait_bucket_le_ms[4] == 65000 &&
              s.wait_bucket_le_ms[XG_STATS_WAIT_BUCKETS - 1] == UINT64_MAX,
          "the buckets' bounds");

    /* 60 calls granted (and released), the 61st refused for the minute. */
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    for (i = 0; i < 61; i++) {
        CHECK_STATUS(xg_limiter_acquire(lim, "acme", 4, &d), XG_STATUS_OK);
        if (d.granted) xg_limiter_release(lim, d.permit);
    }
    CHECK_STATUS(xg_limiter_peek(lim, "acme", 4, &d), XG_STATUS_OK); /* not counted */
    s = read_stats(lim);
    CHECK(s.granted == 60 && s.refused[XG_REASON_MINUTE] == 1 && sum(s.refused, XG_STATS_REASONS) == 1,
          "granted %llu, refused for the minute %llu", (unsigned long long)s.granted,
          (unsigned long long)s.refused[XG_REASON_MINUTE]);
    CHECK(sum(s.fallbacks, XG_STATS_FAILURE_POLICIES) == 0, "no fallbacks without a store");

    /* One stepped wait: the same struct through every step, zeroed first. It starts at the first refusal and ends
     * granted 60 s later; the re-asks between are not counted. */
    memset(&step, 0, sizeof step);
    step.struct_size = sizeof step;
    CHECK_STATUS(xg_limiter_deadline_ms(lim, 120000, &deadline), XG_STATUS_OK);
    for (i = 0; i < 3; i++) {
        CHECK_STATUS(xg_limiter_acquire_until(lim, "acme", 4, deadline, 0, &step), XG_STATUS_OK);
        CHECK(step.outcome == XG_WAIT_OUTCOME_ASK_AGAIN && step.waiting == 1 && step.wait_started_ms == 0,
              "waiting since 0 (outcome %u)", (unsigned)step.outcome);
        xg_limiter_advance_ms(lim, 20000);
    }
    CHECK_STATUS(xg_limiter_acquire_until(lim, "acme", 4, deadline, 0, &step), XG_STATUS_OK);
    CHECK(step.outcome == XG_WAIT_OUTCOME_GRANTED && step.waiting == 0 && step.waited_ms == 60000,
          "granted after %llu ms", (unsigned long long)step.waited_ms);
    xg_limiter_release(lim, step.permit);
    s = read_stats(lim);
    CHECK(s.waits_started == 1 && s.waits_granted == 1 && s.wait_ms_total == 60000, "one wait of 60 s");
    CHECK(s.wait_buckets[4] == 1 && sum(s.wait_buckets, XG_STATS_WAIT_BUCKETS) == 1, "in the <= 65 s bucket");
    CHECK(s.granted == 61 && s.refused[XG_REASON_MINUTE] == 2, "the wait's first refusal and its grant");

    /* A blocking wait that cannot end in time gives up at once: a wait of no length. */
    for (i = 0; i < 59; i++) xg_limiter_record(lim, "acme", 4);
    CHECK_STATUS(xg_limiter_acquire_wait(lim, "acme", 4, 1000, &d), XG_STATUS_OK);
    CHECK(!d.granted, "refused");
    s = read_stats(lim);
    CHECK(s.waits_started == 2 && s.waits_given_up == 1 && s.wait_buckets[0] == 1, "given up at once");

    /* Responses observed, by category, and 429s by problem. */
    CHECK_STATUS(xg_limiter_observe_raw(lim, "acme", 4, (const uint8_t *)limited, strlen(limited)), XG_STATUS_OK);
    CHECK_STATUS(xg_limiter_observe_raw(lim, "beta", 4, (const uint8_t *)ok, strlen(ok)), XG_STATUS_OK);
    CHECK_STATUS(xg_limiter_observe_raw(lim, "beta", 4, (const uint8_t *)ok, strlen(ok)), XG_STATUS_OK);
    s = read_stats(lim);
    CHECK(s.responses[XG_CATEGORY_RATE_LIMITED] == 1 && s.responses[XG_CATEGORY_SUCCESS] == 2, "by category");
    CHECK(s.rate_limited[XG_RATE_LIMIT_PROBLEM_MINUTE] == 1 && sum(s.rate_limited, XG_STATS_RATE_LIMIT_PROBLEMS) == 1,
          "429s by problem");
    CHECK(strcmp(xg_store_failure_kind_name(XG_STORE_FAILURE_KIND_TIMEOUT), "timeout") == 0, "kinds have names");

    xg_limiter_free(lim);
    return finish();
}
