/* Prints the C layout of every xeroguard.h struct so the C# tests can compare their mirrors with it. */
#include <stddef.h>
#include <stdio.h>
#include "xeroguard.h"

#define SIZE(T) printf("%s - %zu\n", #T, sizeof(T))
#define FIELD(T, f) printf("%s %s %zu\n", #T, #f, offsetof(T, f))

int main(void) {
    SIZE(xg_header);
    FIELD(xg_header, name); FIELD(xg_header, name_len); FIELD(xg_header, value); FIELD(xg_header, value_len);

    SIZE(xg_response);
    FIELD(xg_response, status); FIELD(xg_response, headers); FIELD(xg_response, header_count);
    FIELD(xg_response, body); FIELD(xg_response, body_len); FIELD(xg_response, now_unix_ms);

    SIZE(xg_classification);
    FIELD(xg_classification, struct_size); FIELD(xg_classification, status); FIELD(xg_classification, category);
    FIELD(xg_classification, action); FIELD(xg_classification, retryable); FIELD(xg_classification, rate_limit_problem);
    FIELD(xg_classification, auth_problem); FIELD(xg_classification, retry_after_ms);
    FIELD(xg_classification, recommended_wait_ms); FIELD(xg_classification, minute_remaining);
    FIELD(xg_classification, day_remaining); FIELD(xg_classification, app_minute_remaining);
    FIELD(xg_classification, has_error_number); FIELD(xg_classification, error_number);
    FIELD(xg_classification, validation_message_count); FIELD(xg_classification, warning_count);
    FIELD(xg_classification, failed_element_count); FIELD(xg_classification, may_have_been_processed);

    SIZE(xg_retry_policy);
    FIELD(xg_retry_policy, struct_size); FIELD(xg_retry_policy, max_retries); FIELD(xg_retry_policy, base_ms);
    FIELD(xg_retry_policy, max_backoff_ms); FIELD(xg_retry_policy, jitter_ms); FIELD(xg_retry_policy, max_wait_ms);

    SIZE(xg_backoff_decision);
    FIELD(xg_backoff_decision, struct_size); FIELD(xg_backoff_decision, retry); FIELD(xg_backoff_decision, wait_ms);
    FIELD(xg_backoff_decision, give_up);

    SIZE(xg_request);
    FIELD(xg_request, struct_size); FIELD(xg_request, method); FIELD(xg_request, method_len);
    FIELD(xg_request, has_idempotency_key);

    SIZE(xg_window_limit);
    FIELD(xg_window_limit, limit); FIELD(xg_window_limit, window_ms); FIELD(xg_window_limit, margin_ms);

    SIZE(xg_limits);
    FIELD(xg_limits, struct_size); FIELD(xg_limits, tenant_minute); FIELD(xg_limits, tenant_day);
    FIELD(xg_limits, tenant_concurrency); FIELD(xg_limits, app_minute); FIELD(xg_limits, permit_timeout_ms);
    FIELD(xg_limits, max_tenants);

    SIZE(xg_redis_options);
    FIELD(xg_redis_options, struct_size); FIELD(xg_redis_options, url); FIELD(xg_redis_options, url_len);
    FIELD(xg_redis_options, key_prefix); FIELD(xg_redis_options, key_prefix_len); FIELD(xg_redis_options, deadline_ms);
    FIELD(xg_redis_options, breaker_cooldown_ms); FIELD(xg_redis_options, on_store_error);
    FIELD(xg_redis_options, workers); FIELD(xg_redis_options, replace_limits); FIELD(xg_redis_options, tls_ca_file);
    FIELD(xg_redis_options, tls_ca_file_len);

    SIZE(xg_decision);
    FIELD(xg_decision, struct_size); FIELD(xg_decision, granted); FIELD(xg_decision, permit); FIELD(xg_decision, wait_ms);
    FIELD(xg_decision, reason); FIELD(xg_decision, fallback);

    SIZE(xg_wait_step);
    FIELD(xg_wait_step, struct_size); FIELD(xg_wait_step, outcome); FIELD(xg_wait_step, permit);
    FIELD(xg_wait_step, wait_ms); FIELD(xg_wait_step, reason); FIELD(xg_wait_step, sleep_ms);
    FIELD(xg_wait_step, fallback); FIELD(xg_wait_step, waiting); FIELD(xg_wait_step, wait_started_ms);
    FIELD(xg_wait_step, waited_ms);

    SIZE(xg_reservation);
    FIELD(xg_reservation, struct_size); FIELD(xg_reservation, id); FIELD(xg_reservation, at_ms); FIELD(xg_reservation, wait_ms);

    SIZE(xg_tenant_limits);
    FIELD(xg_tenant_limits, struct_size); FIELD(xg_tenant_limits, minute_limit); FIELD(xg_tenant_limits, day_limit);
    FIELD(xg_tenant_limits, concurrency);

    SIZE(xg_stats);
    FIELD(xg_stats, struct_size); FIELD(xg_stats, shared); FIELD(xg_stats, breaker_open); FIELD(xg_stats, granted);
    FIELD(xg_stats, refused); FIELD(xg_stats, fallbacks); FIELD(xg_stats, waits_started);
    FIELD(xg_stats, waits_granted); FIELD(xg_stats, waits_given_up); FIELD(xg_stats, waits_interrupted);
    FIELD(xg_stats, wait_ms_total); FIELD(xg_stats, wait_bucket_le_ms); FIELD(xg_stats, wait_buckets);
    FIELD(xg_stats, responses); FIELD(xg_stats, rate_limited); FIELD(xg_stats, store_operations);
    FIELD(xg_stats, store_failures); FIELD(xg_stats, breaker_openings); FIELD(xg_stats, replays_pending);
    return 0;
}
