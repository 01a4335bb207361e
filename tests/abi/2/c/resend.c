/* Safe resends from C (xero-reference §8): classify a raw response, then ask xg_resend whether the request may go
 * again. A write the server may have carried out is resent only with an Idempotency-Key. */
#include "check.h"

static xg_classification classify(const char *raw) {
    xg_classification c;
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    CHECK_STATUS(xg_classify_raw((const uint8_t *)raw, strlen(raw), 0, &c, NULL), XG_STATUS_OK);
    return c;
}

static xg_request request(const char *method, bool has_key) {
    xg_request r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    r.method = method;
    r.method_len = strlen(method);
    r.has_idempotency_key = has_key;
    return r;
}

static xg_backoff_decision decide(const char *method, bool has_key, const xg_classification *c, uint32_t failure) {
    xg_request r = request(method, has_key);
    xg_retry_policy policy = xg_retry_policy_default();
    xg_backoff_decision d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    policy.jitter_ms = 0;
    CHECK_STATUS(xg_resend(&r, c, failure, 1, &policy, &d), XG_STATUS_OK);
    return d;
}

int main(void) {
    xg_classification server_error = classify("HTTP/1.1 500 Internal Server Error\r\n\r\n");
    xg_classification limited = classify("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\n\r\n");
    xg_backoff_decision d;
    xg_request bad;
    xg_backoff_decision out;

    CHECK(server_error.may_have_been_processed == 1 && limited.may_have_been_processed == 0, "classified");

    d = decide("PUT", false, &server_error, 0);
    CHECK(!d.retry && d.give_up == XG_GIVE_UP_UNSAFE_TO_RESEND, "a PUT answered 500 without a key: not resent");
    CHECK(strcmp(xg_give_up_name(d.give_up), "unsafe_to_resend") == 0, "named");
    d = decide("PUT", true, &server_error, 0);
    CHECK(d.retry && d.wait_ms > 0, "with an Idempotency-Key it may go again");
    d = decide("GET", false, &server_error, 0);
    CHECK(d.retry, "a GET may always go again");
    d = decide("POST", false, &limited, 0);
    CHECK(d.retry && d.wait_ms == 2000, "a 429 was not processed: resent after Retry-After");
    d = decide("POST", false, NULL, XG_TRANSPORT_FAILURE_NOT_SENT);
    CHECK(d.retry, "nothing was sent: resent");
    d = decide("POST", false, NULL, XG_TRANSPORT_FAILURE_NO_RESPONSE);
    CHECK(!d.retry && d.give_up == XG_GIVE_UP_UNSAFE_TO_RESEND, "a reset after sending: a write without a key waits");
    d = decide("DELETE", false, NULL, XG_TRANSPORT_FAILURE_NO_RESPONSE);
    CHECK(d.retry, "DELETE is idempotent");

    /* Which requests a guard gives an Idempotency-Key before the first send: exactly those xg_resend would hold. */
    {
        static const char *const methods[] = {"POST", "put", "PATCH", "PURGE", "GET", "head", "OPTIONS", "DELETE"};
        size_t i;
        for (i = 0; i < sizeof methods / sizeof methods[0]; i++) {
            bool write = false;
            CHECK_STATUS(xg_method_is_write(methods[i], strlen(methods[i]), &write), XG_STATUS_OK);
            d = decide(methods[i], false, NULL, XG_TRANSPORT_FAILURE_NO_RESPONSE);
            CHECK(write == (d.give_up == XG_GIVE_UP_UNSAFE_TO_RESEND), "%s: is_write %d", methods[i], (int)write);
        }
        CHECK_STATUS(xg_method_is_write(NULL, 4, NULL), XG_STATUS_NULL_POINTER);
    }

    /* Bad input is refused with a status and a message, and writes nothing. */
    memset(&out, 0xAB, sizeof out);
    out.struct_size = sizeof out;
    bad = request("POST", false);
    CHECK_STATUS(xg_resend(&bad, NULL, 0, 1, NULL, &out), XG_STATUS_NULL_POINTER);
    CHECK_STATUS(xg_resend(&bad, &limited, XG_TRANSPORT_FAILURE_NOT_SENT, 1, NULL, &out), XG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(xg_resend(&bad, NULL, 7, 1, NULL, &out), XG_STATUS_INVALID_ARGUMENT);
    bad.method_len = 0;
    CHECK_STATUS(xg_resend(&bad, &limited, 0, 1, NULL, &out), XG_STATUS_INVALID_ARGUMENT);
    bad = request("P\xffST", false);
    CHECK_STATUS(xg_resend(&bad, &limited, 0, 1, NULL, &out), XG_STATUS_INVALID_UTF8);
    CHECK_STATUS(xg_resend(NULL, &limited, 0, 1, NULL, &out), XG_STATUS_NULL_POINTER);
    CHECK(out.wait_ms == 0xABABABABABABABABull, "no output on failure");
    return finish();
}
