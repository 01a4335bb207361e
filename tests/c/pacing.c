/* The limiter's functions from C on a manual clock, including a blocking acquire woken by another thread. */
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "check.h"

static xg_decision decision(void) {
    xg_decision d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    return d;
}

static void windows_and_waits(xg_limiter *lim) {
    xg_decision d = decision();
    int i, granted = 0;
    for (i = 0; i < 61; i++) {
        CHECK_STATUS(xg_limiter_acquire(lim, "acme", 4, &d), XG_STATUS_OK);
        if (d.granted) {
            granted++;
            CHECK_STATUS(xg_limiter_release(lim, d.permit), XG_STATUS_OK);
        }
    }
    CHECK(granted == 60, "granted %d", granted);
    CHECK(!d.granted && d.wait_ms == 60000 && d.reason == XG_REASON_MINUTE, "61st: wait %llu reason %s",
          (unsigned long long)d.wait_ms, xg_reason_name(d.reason));
    CHECK_STATUS(xg_limiter_advance_ms(lim, 59999), XG_STATUS_OK);
    CHECK_STATUS(xg_limiter_peek(lim, "acme", 4, &d), XG_STATUS_OK);
    CHECK(!d.granted && d.wait_ms == 1, "1 ms before: wait %llu", (unsigned long long)d.wait_ms);
    CHECK_STATUS(xg_limiter_advance_ms(lim, 1), XG_STATUS_OK);
    CHECK_STATUS(xg_limiter_peek(lim, "acme", 4, &d), XG_STATUS_OK);
    CHECK(d.granted && d.permit == 0, "peek takes nothing");
}

static void concurrency_and_release(xg_limiter *lim) {
    xg_decision d = decision();
    uint64_t permits[5];
    int i;
    for (i = 0; i < 5; i++) {
        CHECK_STATUS(xg_limiter_acquire(lim, "busy", 4, &d), XG_STATUS_OK);
        CHECK(d.granted, "permit %d", i);
        permits[i] = d.permit;
    }
    CHECK_STATUS(xg_limiter_acquire(lim, "busy", 4, &d), XG_STATUS_OK);
    CHECK(!d.granted && d.reason == XG_REASON_CONCURRENCY, "6th in flight: %s", xg_reason_name(d.reason));
    CHECK_STATUS(xg_limiter_release(lim, permits[0]), XG_STATUS_OK);
    CHECK_STATUS(xg_limiter_release(lim, permits[0]), XG_STATUS_UNKNOWN_PERMIT);
    CHECK_STATUS(xg_limiter_acquire(lim, "busy", 4, &d), XG_STATUS_OK);
    CHECK(d.granted, "a released slot is reused");
    permits[0] = d.permit;
    for (i = 0; i < 5; i++) CHECK_STATUS(xg_limiter_release(lim, permits[i]), XG_STATUS_OK);
}

static void reservations(xg_limiter *lim) {
    xg_reservation a, b, c;
    xg_decision d = decision();
    uint64_t now = 0;
    int i;
    memset(&a, 0, sizeof a);
    a.struct_size = sizeof a;
    b = a;
    c = a;
    xg_limiter_now_ms(lim, &now);
    for (i = 0; i < 60; i++) xg_limiter_record(lim, "fifo", 4);
    CHECK_STATUS(xg_limiter_reserve(lim, "fifo", 4, &a), XG_STATUS_OK);
    CHECK_STATUS(xg_limiter_reserve(lim, "fifo", 4, &b), XG_STATUS_OK);
    CHECK(a.at_ms == now + 60000 && b.at_ms >= a.at_ms, "FIFO slots: %llu then %llu", (unsigned long long)a.at_ms, (unsigned long long)b.at_ms);
    CHECK_STATUS(xg_limiter_cancel(lim, a.id), XG_STATUS_OK);
    CHECK_STATUS(xg_limiter_cancel(lim, a.id), XG_STATUS_UNKNOWN_RESERVATION);
    CHECK_STATUS(xg_limiter_reserve(lim, "fifo", 4, &c), XG_STATUS_OK);
    CHECK(c.at_ms == a.at_ms, "the cancelled slot is free again: %llu", (unsigned long long)c.at_ms);
    CHECK_STATUS(xg_limiter_peek(lim, "fifo", 4, &d), XG_STATUS_OK);
    CHECK(!d.granted, "still full now");
}

static void feedback(xg_limiter *lim) {
    const char *raw = "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 17\r\nX-Rate-Limit-Problem: minute\r\n\r\n";
    const char *offline = "HTTP/1.1 503 Service Unavailable\r\n\r\nThe Organisation is offline";
    xg_classification c;
    xg_decision d = decision();
    xg_tenant_limits small;
    char *json = NULL;
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    CHECK_STATUS(xg_classify_raw((const uint8_t *)raw, strlen(raw), 0, &c, NULL), XG_STATUS_OK);
    CHECK_STATUS(xg_limiter_observe(lim, "limited", 7, &c), XG_STATUS_OK);
    CHECK_STATUS(xg_limiter_acquire(lim, "limited", 7, &d), XG_STATUS_OK);
    CHECK(!d.granted && d.reason == XG_REASON_RETRY_AFTER && d.wait_ms == 17000, "429 blocks: %s %llu",
          xg_reason_name(d.reason), (unsigned long long)d.wait_ms);
    CHECK_STATUS(xg_limiter_observe_raw(lim, "gone", 4, (const uint8_t *)offline, strlen(offline)), XG_STATUS_OK);
    CHECK_STATUS(xg_limiter_peek(lim, "gone", 4, &d), XG_STATUS_OK);
    CHECK(!d.granted && d.reason == XG_REASON_ORGANISATION_OFFLINE && d.wait_ms == 300000, "offline blocks 5 minutes");
    CHECK_STATUS(xg_limiter_snapshot_json(lim, "gone", 4, &json), XG_STATUS_OK);
    CHECK(json && strstr(json, "\"block_reason\":\"organisation_offline\""), "%s", json);
    xg_string_free(json);

    small.struct_size = sizeof small;
    small.minute_limit = 60;
    small.day_limit = 2;
    small.concurrency = 5;
    CHECK_STATUS(xg_limiter_set_tenant_limits(lim, "starter", 7, &small), XG_STATUS_OK);
    xg_limiter_record(lim, "starter", 7);
    xg_limiter_record(lim, "starter", 7);
    CHECK_STATUS(xg_limiter_acquire(lim, "starter", 7, &d), XG_STATUS_OK);
    CHECK(!d.granted && d.reason == XG_REASON_DAY, "the plan's day limit: %s", xg_reason_name(d.reason));
    CHECK_STATUS(xg_limiter_set_tenant_limits(lim, "starter", 7, NULL), XG_STATUS_OK);
    CHECK_STATUS(xg_limiter_acquire(lim, "starter", 7, &d), XG_STATUS_OK);
    CHECK(d.granted, "cleared override restores the default");
    xg_limiter_release(lim, d.permit);
}

static void *advance_later(void *arg) {
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
    xg_limiter_advance_ms((xg_limiter *)arg, 60000);
    return NULL;
}

static void blocking_wait(xg_limiter *lim) {
    xg_decision d = decision();
    pthread_t mover;
    int i;
    for (i = 0; i < 60; i++) xg_limiter_record(lim, "waiter", 6);
    CHECK_STATUS(xg_limiter_acquire_wait(lim, "waiter", 6, 1000, &d), XG_STATUS_OK);
    CHECK(!d.granted && d.reason == XG_REASON_MINUTE, "the wait ends after the timeout: fails at once");
    pthread_create(&mover, NULL, advance_later, lim);
    CHECK_STATUS(xg_limiter_acquire_wait(lim, "waiter", 6, 120000, &d), XG_STATUS_OK);
    pthread_join(mover, NULL);
    CHECK(d.granted, "woken by the clock moving on another thread");
    xg_limiter_release(lim, d.permit);
}

static void stepped_wait(xg_limiter *lim) {
    xg_wait_step step;
    uint64_t deadline = 0;
    int i;
    memset(&step, 0, sizeof step);
    step.struct_size = sizeof step;
    for (i = 0; i < 60; i++) xg_limiter_record(lim, "stepper", 7);
    CHECK_STATUS(xg_limiter_deadline_ms(lim, 30000, &deadline), XG_STATUS_OK);
    CHECK_STATUS(xg_limiter_acquire_until(lim, "stepper", 7, deadline, 0, &step), XG_STATUS_OK);
    CHECK(step.outcome == XG_WAIT_OUTCOME_GIVE_UP && step.reason == XG_REASON_MINUTE && step.wait_ms == 60000,
          "a minute wait beyond a 30 s deadline gives up at once (outcome %u)", (unsigned)step.outcome);
    CHECK_STATUS(xg_limiter_deadline_ms(lim, 120000, &deadline), XG_STATUS_OK);
    CHECK_STATUS(xg_limiter_acquire_until(lim, "stepper", 7, deadline, 0, &step), XG_STATUS_OK);
    CHECK(step.outcome == XG_WAIT_OUTCOME_ASK_AGAIN && step.sleep_ms > 0, "within the deadline: ask again");
    xg_limiter_advance_ms(lim, 60000);
    CHECK_STATUS(xg_limiter_acquire_until(lim, "stepper", 7, deadline, 0, &step), XG_STATUS_OK);
    CHECK(step.outcome == XG_WAIT_OUTCOME_GRANTED && step.permit != 0, "granted once the minute has passed");
    xg_limiter_release(lim, step.permit);
}

/* An async caller (max_block_ms 0) refused for a concurrency slot polls soon: nothing would wake it before the held
 * permit's expiry (120 s), which it used to be told to sleep until. */
static void non_blocking_concurrency_step(void) {
    xg_limiter *lim = NULL;
    xg_limits limits = xg_limits_exact();
    xg_decision held = decision();
    xg_wait_step step;
    memset(&step, 0, sizeof step);
    step.struct_size = sizeof step;
    limits.tenant_concurrency = 1;
    CHECK_STATUS(xg_limiter_new(&limits, XG_CLOCK_MONOTONIC, &lim), XG_STATUS_OK);
    CHECK_STATUS(xg_limiter_acquire(lim, "async", 5, &held), XG_STATUS_OK);
    CHECK(held.granted, "the one slot");
    CHECK_STATUS(xg_limiter_acquire_until(lim, "async", 5, XG_NO_DEADLINE, 0, &step), XG_STATUS_OK);
    CHECK(step.outcome == XG_WAIT_OUTCOME_ASK_AGAIN && step.reason == XG_REASON_CONCURRENCY, "ask again (outcome %u)",
          (unsigned)step.outcome);
    CHECK(step.wait_ms > 100000, "the slot frees by expiry in %llu ms", (unsigned long long)step.wait_ms);
    CHECK(step.sleep_ms >= 1 && step.sleep_ms < 100, "a short poll, not the expiry: sleep %llu ms",
          (unsigned long long)step.sleep_ms);
    CHECK_STATUS(xg_limiter_release(lim, held.permit), XG_STATUS_OK);
    CHECK_STATUS(xg_limiter_acquire_until(lim, "async", 5, XG_NO_DEADLINE, 0, &step), XG_STATUS_OK);
    CHECK(step.outcome == XG_WAIT_OUTCOME_GRANTED, "the poll finds the released slot");
    CHECK_STATUS(xg_limiter_release(lim, step.permit), XG_STATUS_OK);
    xg_limiter_free(lim);
}

struct waiter {
    xg_limiter *lim;
    xg_status status;
};

static void *wait_forever(void *arg) {
    struct waiter *w = (struct waiter *)arg;
    xg_decision d = decision();
    w->status = xg_limiter_acquire_wait(w->lim, "busy", 4, UINT64_MAX, &d);
    return NULL;
}

/* The documented shutdown order: interrupt the limiter, join the threads waiting on it, then free it. */
static void shutdown_while_threads_wait(void) {
    xg_limiter *lim = NULL;
    xg_limits limits = xg_limits_exact();
    xg_decision held = decision();
    struct waiter waiters[4];
    pthread_t threads[4];
    struct timespec pause = {0, 20 * 1000 * 1000};
    int i;
    limits.tenant_concurrency = 1;
    CHECK_STATUS(xg_limiter_new(&limits, XG_CLOCK_MONOTONIC, &lim), XG_STATUS_OK);
    CHECK_STATUS(xg_limiter_acquire(lim, "busy", 4, &held), XG_STATUS_OK);
    for (i = 0; i < 4; i++) {
        waiters[i].lim = lim;
        waiters[i].status = -1;
        pthread_create(&threads[i], NULL, wait_forever, &waiters[i]);
    }
    nanosleep(&pause, NULL); /* let them block on the held slot; one arriving later ends at once too */
    CHECK_STATUS(xg_limiter_interrupt(lim), XG_STATUS_OK);
    for (i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        CHECK(waiters[i].status == XG_STATUS_INTERRUPTED, "waiter %d: %s", i, xg_status_name(waiters[i].status));
    }
    xg_limiter_free(lim);
}

int main(void) {
    xg_limiter *lim = NULL;
    xg_limits limits = xg_limits_exact();
    CHECK_STATUS(xg_limiter_new(&limits, XG_CLOCK_MANUAL, &lim), XG_STATUS_OK);
    windows_and_waits(lim);
    concurrency_and_release(lim);
    reservations(lim);
    feedback(lim);
    blocking_wait(lim);
    stepped_wait(lim);
    xg_limiter_free(lim);
    non_blocking_concurrency_step();
    shutdown_while_threads_wait();
    return finish();
}
