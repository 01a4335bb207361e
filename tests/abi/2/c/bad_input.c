/* Every export with hostile arguments: NULLs, mismatched lengths, bad UTF-8, unknown enum codes, undersized
 * structs and buffers, absurd sizes. Each must return its documented status with a readable message, write no
 * out-parameter, and change no state. */
#include <stdint.h>

#include "check.h"

static xg_classification fresh_classification(void) {
    xg_classification c;
    memset(&c, 0xAB, sizeof c);
    c.struct_size = sizeof c;
    /* Changed from the ABI-2 suite, which left 0xAB in the flags and passed the struct back as input: a bool byte
     * other than 0 or 1 is undefined behaviour in C and in Rust, and since ABI 3 every flag is 0 or 1 (another
     * value is refused with XG_STATUS_INVALID_ARGUMENT, naming the field). */
    c.retryable = false;
    c.has_error_number = false;
    c.may_have_been_processed = 0;
    return c;
}

static void classify_inputs(void) {
    xg_classification c = fresh_classification(), untouched;
    xg_header headers[2];
    xg_response r;
    char *json = (char *)"sentinel";
    const char bad_utf8[] = "X-\xff\xfe";
    const char body[] = "\xff\xfe\x00 not utf-8 {\"ErrorNumber\": ";

    memset(&r, 0, sizeof r);
    r.status = 400;
    untouched = c;

    CHECK_STATUS(xg_classify(NULL, &c, &json), XG_STATUS_NULL_POINTER);
    CHECK_STATUS(xg_classify(&r, NULL, NULL), XG_STATUS_NULL_POINTER);
    r.header_count = 2;
    CHECK_STATUS(xg_classify(&r, &c, NULL), XG_STATUS_NULL_POINTER);
    r.header_count = 5000;
    r.headers = headers;
    CHECK_STATUS(xg_classify(&r, &c, NULL), XG_STATUS_TOO_LARGE);
    headers[0].name = NULL;
    headers[0].name_len = 5;
    headers[0].value = "1";
    headers[0].value_len = 1;
    r.header_count = 1;
    CHECK_STATUS(xg_classify(&r, &c, NULL), XG_STATUS_NULL_POINTER);
    headers[0].name = bad_utf8;
    headers[0].name_len = sizeof bad_utf8 - 1;
    CHECK_STATUS(xg_classify(&r, &c, NULL), XG_STATUS_INVALID_UTF8);
    headers[0].name = "Retry-After";
    headers[0].name_len = 11;
    headers[0].value = bad_utf8;
    headers[0].value_len = sizeof bad_utf8 - 1;
    CHECK_STATUS(xg_classify(&r, &c, NULL), XG_STATUS_INVALID_UTF8);
    headers[0].value_len = 100000;
    CHECK_STATUS(xg_classify(&r, &c, NULL), XG_STATUS_TOO_LARGE);
    r.header_count = 0;
    r.body = NULL;
    r.body_len = 10;
    CHECK_STATUS(xg_classify(&r, &c, NULL), XG_STATUS_NULL_POINTER);
    r.body_len = SIZE_MAX;
    r.body = (const uint8_t *)body;
    CHECK_STATUS(xg_classify(&r, &c, NULL), XG_STATUS_INVALID_ARGUMENT);
    CHECK(memcmp(&c, &untouched, sizeof c) == 0, "a refused call wrote its out struct");
    CHECK(strcmp(json, "sentinel") == 0, "a refused call wrote json_out");

    c.struct_size = 8;
    r.body_len = sizeof body - 1;
    CHECK_STATUS(xg_classify(&r, &c, NULL), XG_STATUS_INVALID_ARGUMENT);
    c.struct_size = sizeof c;

    /* Bodies are bytes: any bytes classify. A NULL body with length 0 is fine. */
    CHECK_STATUS(xg_classify(&r, &c, NULL), XG_STATUS_OK);
    CHECK(c.category == XG_CATEGORY_BAD_REQUEST, "got %s", xg_category_name(c.category));
    r.body = NULL;
    r.body_len = 0;
    CHECK_STATUS(xg_classify(&r, &c, NULL), XG_STATUS_OK);

    CHECK_STATUS(xg_classify_raw(NULL, 5, 0, &c, NULL), XG_STATUS_NULL_POINTER);
    CHECK_STATUS(xg_classify_raw((const uint8_t *)"", 0, 0, &c, NULL), XG_STATUS_MALFORMED_RESPONSE);
    CHECK_STATUS(xg_classify_raw((const uint8_t *)"garbage", 7, 0, &c, NULL), XG_STATUS_MALFORMED_RESPONSE);
    CHECK_STATUS(xg_classify_raw((const uint8_t *)"HTTP/1.1 abc\r\n", 14, 0, &c, NULL), XG_STATUS_MALFORMED_RESPONSE);
    CHECK_STATUS(xg_classify_raw((const uint8_t *)"HTTP/1.1 503\r\n\r\nx", 17, 0, NULL, NULL), XG_STATUS_NULL_POINTER);
    CHECK_STATUS(xg_classify_raw((const uint8_t *)"HTTP/1.1 503\r\n\r\nx", 17, 0, &c, NULL), XG_STATUS_OK);

    /* The flat form: headers as "Name\0value\0..." in one buffer (sizeof - 1: without the literal's own NUL). */
    {
        static const char flat[] = "Retry-After\0" "9";
        static const char odd[] = "Retry-After\0" "9\0X-A";
        static const char bad[] = "Retry-After\0\xff";
        c = fresh_classification(); /* every byte set: the library's own writes leave padding undefined */
        untouched = c;
        CHECK_STATUS(xg_classify_flat(429, NULL, 4, NULL, 0, 0, &c, NULL), XG_STATUS_NULL_POINTER);
        CHECK_STATUS(xg_classify_flat(429, (const uint8_t *)flat, sizeof flat - 1, NULL, 0, 0, NULL, NULL),
                     XG_STATUS_NULL_POINTER);
        CHECK_STATUS(xg_classify_flat(429, (const uint8_t *)odd, sizeof odd - 1, NULL, 0, 0, &c, NULL),
                     XG_STATUS_INVALID_ARGUMENT);
        CHECK_STATUS(xg_classify_flat(429, (const uint8_t *)bad, sizeof bad - 1, NULL, 0, 0, &c, NULL),
                     XG_STATUS_INVALID_UTF8);
        CHECK_STATUS(xg_classify_flat(400, NULL, 0, NULL, 10, 0, &c, NULL), XG_STATUS_NULL_POINTER);
        CHECK(memcmp(&c, &untouched, sizeof c) == 0, "a refused call wrote its out struct");
        CHECK_STATUS(xg_classify_flat(429, (const uint8_t *)flat, sizeof flat - 1, NULL, 0, 0, &c, NULL), XG_STATUS_OK);
        CHECK(c.recommended_wait_ms == 9000, "got %lld", (long long)c.recommended_wait_ms);
    }
}

static void error_buffers_and_names(void) {
    char small[4];
    size_t needed = 0;
    xg_classify(NULL, NULL, NULL);
    CHECK(xg_last_error_message(NULL, 0, &needed) == XG_STATUS_BUFFER_TOO_SMALL, "size query");
    CHECK(needed > 10, "needed %zu", needed);
    CHECK(xg_last_error_message(small, sizeof small, NULL) == XG_STATUS_BUFFER_TOO_SMALL, "small buffer");
    CHECK(strlen(small) == 3, "truncated and terminated: %s", small);
    CHECK(xg_last_error_message(NULL, 10, &needed) == XG_STATUS_NULL_POINTER, "NULL buffer with a length");
    CHECK(strcmp(xg_status_name(12345), "unknown_status") == 0, "unknown status name");
    CHECK(strcmp(xg_status_name(XG_STATUS_PANIC), "panic") == 0, "panic name");
    CHECK(xg_category_name(999) == NULL && xg_action_name(5) == NULL && xg_reason_name(0) == NULL, "unknown codes");
    CHECK(xg_rate_limit_problem_name(0) == NULL && xg_auth_problem_name(13) == NULL, "none and unknown");
    CHECK(strcmp(xg_category_name(XG_CATEGORY_ORGANISATION_OFFLINE), "organisation_offline") == 0, "name");
    /* The one line changed from the ABI-2 suite, which asked for equality: from ABI 3 on a library serves every older
     * caller whose ABI it still supports (README "Versions and compatibility"), so an older caller asks for at least. */
    CHECK(xg_abi_version() >= XG_ABI_VERSION, "abi");
    CHECK(strlen(xg_version()) >= 5, "version");
    xg_string_free(NULL);
    xg_limiter_free(NULL);
}

static void backoff_inputs(void) {
    xg_classification c = fresh_classification();
    xg_backoff_decision d;
    xg_retry_policy p = xg_retry_policy_default();
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    c.action = XG_ACTION_RETRY;
    c.recommended_wait_ms = 1000;
    CHECK_STATUS(xg_backoff(NULL, 1, NULL, &d), XG_STATUS_NULL_POINTER);
    CHECK_STATUS(xg_backoff(&c, 1, NULL, NULL), XG_STATUS_NULL_POINTER);
    c.action = 77;
    CHECK_STATUS(xg_backoff(&c, 1, NULL, &d), XG_STATUS_INVALID_ARGUMENT);
    c.action = XG_ACTION_RETRY;
    p.struct_size = 3;
    CHECK_STATUS(xg_backoff(&c, 1, &p, &d), XG_STATUS_INVALID_ARGUMENT);
    p = xg_retry_policy_default();
    p.jitter_ms = 0;
    CHECK_STATUS(xg_backoff(&c, 1, &p, &d), XG_STATUS_OK);
    CHECK(d.retry && d.wait_ms == 1000, "retry after the recommended wait: %d %llu", d.retry, (unsigned long long)d.wait_ms);
    c.recommended_wait_ms = 3600000;
    CHECK_STATUS(xg_backoff(&c, 1, &p, &d), XG_STATUS_OK);
    CHECK(!d.retry && d.give_up == XG_GIVE_UP_WAIT_TOO_LONG, "a day limit is not slept through");
}

static void limiter_inputs(void) {
    xg_limiter *lim = NULL, *mono = NULL;
    xg_limits limits = xg_limits_exact();
    xg_decision d;
    xg_reservation r;
    xg_classification c = fresh_classification();
    xg_tenant_limits tl;
    char *json = NULL;
    char long_id[300];
    memset(long_id, 'a', sizeof long_id);
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;

    CHECK_STATUS(xg_limiter_new(&limits, 7, &lim), XG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(xg_limiter_new(&limits, XG_CLOCK_MANUAL, NULL), XG_STATUS_NULL_POINTER);
    limits.struct_size = 0;
    CHECK_STATUS(xg_limiter_new(&limits, XG_CLOCK_MANUAL, &lim), XG_STATUS_INVALID_ARGUMENT);
    limits = xg_limits_exact();
    limits.tenant_minute.window_ms = 0;
    CHECK_STATUS(xg_limiter_new(&limits, XG_CLOCK_MANUAL, &lim), XG_STATUS_INVALID_ARGUMENT);
    CHECK(lim == NULL, "no handle on failure");
    limits = xg_limits_exact();
    CHECK_STATUS(xg_limiter_new(&limits, XG_CLOCK_MANUAL, &lim), XG_STATUS_OK);
    CHECK_STATUS(xg_limiter_new(NULL, XG_CLOCK_MONOTONIC, &mono), XG_STATUS_OK);

    CHECK_STATUS(xg_limiter_acquire(NULL, "t", 1, &d), XG_STATUS_NULL_POINTER);
    CHECK_STATUS(xg_limiter_acquire(lim, NULL, 3, &d), XG_STATUS_NULL_POINTER);
    CHECK_STATUS(xg_limiter_acquire(lim, "t\xff", 2, &d), XG_STATUS_INVALID_UTF8);
    CHECK_STATUS(xg_limiter_acquire(lim, long_id, sizeof long_id, &d), XG_STATUS_TOO_LARGE);
    CHECK_STATUS(xg_limiter_acquire(lim, "t", 1, NULL), XG_STATUS_NULL_POINTER);
    d.struct_size = 1;
    CHECK_STATUS(xg_limiter_acquire(lim, "t", 1, &d), XG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(xg_limiter_peek(lim, "t", 1, &d), XG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(xg_limiter_acquire_wait(lim, "t", 1, 10, &d), XG_STATUS_INVALID_ARGUMENT);
    d.struct_size = sizeof d;
    CHECK_STATUS(xg_limiter_record(lim, "t\xff", 2), XG_STATUS_INVALID_UTF8);
    r.struct_size = 0;
    CHECK_STATUS(xg_limiter_reserve(lim, "t", 1, &r), XG_STATUS_INVALID_ARGUMENT);
    r.struct_size = sizeof r;
    CHECK_STATUS(xg_limiter_reserve(NULL, "t", 1, &r), XG_STATUS_NULL_POINTER);
    CHECK_STATUS(xg_limiter_release(lim, 12345), XG_STATUS_UNKNOWN_PERMIT);
    CHECK_STATUS(xg_limiter_cancel(lim, 999), XG_STATUS_UNKNOWN_RESERVATION);
    CHECK_STATUS(xg_limiter_advance_ms(mono, 10), XG_STATUS_WRONG_CLOCK);
    CHECK_STATUS(xg_limiter_set_now_ms(mono, 10), XG_STATUS_WRONG_CLOCK);
    CHECK_STATUS(xg_limiter_advance_ms(lim, 100), XG_STATUS_OK);
    CHECK_STATUS(xg_limiter_set_now_ms(lim, 50), XG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(xg_limiter_now_ms(lim, NULL), XG_STATUS_NULL_POINTER);
    c.category = 999;
    CHECK_STATUS(xg_limiter_observe(lim, "t", 1, &c), XG_STATUS_INVALID_ARGUMENT);
    c.category = XG_CATEGORY_RATE_LIMITED;
    c.rate_limit_problem = 42;
    CHECK_STATUS(xg_limiter_observe(lim, "t", 1, &c), XG_STATUS_INVALID_ARGUMENT);
    c.struct_size = 2;
    CHECK_STATUS(xg_limiter_observe(lim, "t", 1, &c), XG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(xg_limiter_observe(lim, "t", 1, NULL), XG_STATUS_NULL_POINTER);
    CHECK_STATUS(xg_limiter_observe_raw(lim, "t", 1, (const uint8_t *)"nope", 4), XG_STATUS_MALFORMED_RESPONSE);
    CHECK_STATUS(xg_limiter_observe_raw(lim, "t", 1, NULL, 4), XG_STATUS_NULL_POINTER);
    CHECK_STATUS(xg_limiter_snapshot_json(lim, "t", 1, NULL), XG_STATUS_NULL_POINTER);
    tl.struct_size = 1;
    CHECK_STATUS(xg_limiter_set_tenant_limits(lim, "t", 1, &tl), XG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(xg_limiter_set_tenant_limits(lim, NULL, 0, NULL), XG_STATUS_INVALID_ARGUMENT);

    /* None of the refused calls changed anything: the tenant has no calls, no blocks. */
    CHECK_STATUS(xg_limiter_snapshot_json(lim, "t", 1, &json), XG_STATUS_OK);
    CHECK(json && strstr(json, "\"count\":0") && strstr(json, "\"blocked_until_ms\":null") && strstr(json, "\"in_flight\":0"), "%s", json);
    xg_string_free(json);
    CHECK_STATUS(xg_limiter_peek(lim, "t", 1, &d), XG_STATUS_OK);
    CHECK(d.granted, "still grantable");

    xg_limiter_free(lim);
    xg_limiter_free(mono);
}

int main(void) {
    classify_inputs();
    error_buffers_and_names();
    backoff_inputs();
    limiter_inputs();
    return finish();
}
