/* Many threads classifying at once, and many threads pacing through one limiter handle. */
#include <pthread.h>
#include <stdint.h>

#include "check.h"

#define THREADS 8
#define ROUNDS 1500
#define TENANTS 4

static const char *RAW[] = {
    "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 17\r\nX-Rate-Limit-Problem: minute\r\n\r\n",
    "HTTP/1.1 400 Bad Request\r\n\r\n{\"ErrorNumber\":10,\"Type\":\"ValidationException\",\"Elements\":[{\"ValidationErrors\":[{\"Message\":\"m\"}]}]}",
    "HTTP/1.1 503 Service Unavailable\r\n\r\nThe Organisation is offline",
    "HTTP/1.1 200 OK\r\n\r\n{\"Invoices\":[{\"HasErrors\":false}]}",
};
static const uint32_t WANT[] = {XG_CATEGORY_RATE_LIMITED, XG_CATEGORY_VALIDATION_ERROR, XG_CATEGORY_ORGANISATION_OFFLINE, XG_CATEGORY_SUCCESS};

static void *classify_worker(void *arg) {
    long wrong = 0, i;
    (void)arg;
    for (i = 0; i < ROUNDS; i++) {
        size_t k = (size_t)i % 4;
        xg_classification c;
        char *json = NULL;
        memset(&c, 0, sizeof c);
        c.struct_size = sizeof c;
        if (xg_classify_raw((const uint8_t *)RAW[k], strlen(RAW[k]), 0, &c, &json) != XG_STATUS_OK || c.category != WANT[k]) wrong++;
        xg_string_free(json);
    }
    return (void *)wrong;
}

static xg_limiter *shared;
static long granted[THREADS][TENANTS];

static void *pacing_worker(void *arg) {
    long id = (long)(intptr_t)arg, i;
    char tenant[8];
    xg_decision d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    for (i = 0; i < 400; i++) {
        int t = (int)((i + id) % TENANTS);
        snprintf(tenant, sizeof tenant, "t%d", t);
        if (xg_limiter_acquire(shared, tenant, strlen(tenant), &d) == XG_STATUS_OK && d.granted) {
            granted[id][t]++;
            xg_limiter_release(shared, d.permit);
        }
    }
    return NULL;
}

int main(void) {
    pthread_t threads[THREADS];
    long i, t, total_wrong = 0;
    xg_limits limits = xg_limits_exact();
    char *json = NULL;

    for (i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, classify_worker, NULL);
    for (i = 0; i < THREADS; i++) {
        void *wrong;
        pthread_join(threads[i], &wrong);
        total_wrong += (long)wrong;
    }
    CHECK(total_wrong == 0, "%ld wrong classifications under contention", total_wrong);

    /* A manual clock that never moves: each tenant gets exactly its minute limit, whoever asks. */
    limits.app_minute.limit = 200;
    CHECK_STATUS(xg_limiter_new(&limits, XG_CLOCK_MANUAL, &shared), XG_STATUS_OK);
    for (i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, pacing_worker, (void *)(intptr_t)i);
    for (i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    {
        long all = 0;
        for (t = 0; t < TENANTS; t++) {
            long per = 0;
            for (i = 0; i < THREADS; i++) per += granted[i][t];
            all += per;
            CHECK(per <= 60, "tenant t%ld got %ld > 60 in one minute", t, per);
        }
        CHECK(all == 200, "the app window admits exactly 200, got %ld", all);
    }
    CHECK_STATUS(xg_limiter_snapshot_json(shared, "", 0, &json), XG_STATUS_OK);
    CHECK(json && strstr(json, "\"app_minute\":{\"limit\":200,\"window_ms\":60000,\"count\":200"), "%s", json);
    xg_string_free(json);
    xg_limiter_free(shared);
    return finish();
}
