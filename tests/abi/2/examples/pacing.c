/* Pace calls for one tenant: ask before each call, release when the response arrives, feed the response back. */
#include <stdio.h>
#include <string.h>

#include "xeroguard.h"

int main(void) {
    xg_limiter *limiter = NULL;
    xg_limits limits = xg_limits_default(); /* Xero's limits; change any field */
    const char *tenant = "4f8a2a1e-0000-4000-8000-000000000001";
    const char *response = "HTTP/1.1 200 OK\r\nX-MinLimit-Remaining: 59\r\nX-DayLimit-Remaining: 4999\r\n\r\n{}";
    xg_decision d;
    int i, granted = 0;

    /* XG_CLOCK_MANUAL makes this example deterministic; real code uses XG_CLOCK_MONOTONIC. */
    if (xg_limiter_new(&limits, XG_CLOCK_MANUAL, &limiter) != XG_STATUS_OK) return 1;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    for (i = 0; i < 70; i++) {
        xg_limiter_acquire(limiter, tenant, strlen(tenant), &d);
        if (!d.granted) {
            printf("call %d: wait %llu ms (%s)\n", i + 1, (unsigned long long)d.wait_ms, xg_reason_name(d.reason));
            continue; /* real code sleeps d.wait_ms, or calls xg_limiter_acquire_wait */
        }
        granted++;
        /* ... send the request ... */
        xg_limiter_observe_raw(limiter, tenant, strlen(tenant), (const uint8_t *)response, strlen(response));
        xg_limiter_release(limiter, d.permit);
    }
    printf("granted %d of 70 calls in the first minute\n", granted);
    xg_limiter_free(limiter);
    return 0;
}
