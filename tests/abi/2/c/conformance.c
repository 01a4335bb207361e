/* Runs conformance cases (the shared file's, or the project's own) through xg_classify and xg_classify_raw. The
 * cases come from tests/c_suite.rs as a flat file (the JSON file has no C parser here), with how many it holds:
 *   CASE <name> / STATUS <n> / HEADER <nlen> <vlen>\n<name><value> / BODY <len>\n<bytes> /
 *   EXPECT <key> <len>\n<compact JSON value> / END
 * Scalar expectations are checked against the struct; every expectation against the JSON form. */
#include <stdlib.h>

#include "check.h"

#define MAX_HEADERS 32
#define MAX_EXPECT 32

typedef struct {
    char name[128];
    unsigned status;
    xg_header headers[MAX_HEADERS];
    size_t header_count;
    char *body;
    size_t body_len;
    char *expect_key[MAX_EXPECT];
    char *expect_value[MAX_EXPECT];
    size_t expect_count;
} test_case;

static char *read_exact(FILE *f, size_t len) {
    char *buf = malloc(len + 1);
    if (buf == NULL || fread(buf, 1, len, f) != len) {
        fprintf(stderr, "truncated case file\n");
        exit(2);
    }
    buf[len] = '\0';
    fgetc(f); /* the newline after the payload */
    return buf;
}

static void free_case(test_case *c) {
    size_t i;
    for (i = 0; i < c->header_count; i++) {
        free((void *)c->headers[i].name);
        free((void *)c->headers[i].value);
    }
    for (i = 0; i < c->expect_count; i++) {
        free(c->expect_key[i]);
        free(c->expect_value[i]);
    }
    free(c->body);
}

/* The JSON text of a scalar struct field, or 0 when `key` is not carried by the struct. */
static int scalar_json(const char *key, const xg_classification *c, char *out, size_t n) {
    const char *word = NULL;
    long long number = 0;
    int is_number = 0, is_null = 0;
    if (strcmp(key, "category") == 0) word = xg_category_name(c->category);
    else if (strcmp(key, "action") == 0) word = xg_action_name(c->action);
    else if (strcmp(key, "rate_limit_problem") == 0) { word = xg_rate_limit_problem_name(c->rate_limit_problem); is_null = word == NULL; }
    else if (strcmp(key, "auth_problem") == 0) { word = xg_auth_problem_name(c->auth_problem); is_null = word == NULL; }
    else if (strcmp(key, "retryable") == 0) { snprintf(out, n, "%s", c->retryable ? "true" : "false"); return 1; }
    else if (strcmp(key, "status") == 0) { number = c->status; is_number = 1; }
    else if (strcmp(key, "error_number") == 0) { number = c->error_number; is_number = 1; is_null = !c->has_error_number; }
    else {
        const int64_t *field = NULL;
        if (strcmp(key, "retry_after_ms") == 0) field = &c->retry_after_ms;
        else if (strcmp(key, "recommended_wait_ms") == 0) field = &c->recommended_wait_ms;
        else if (strcmp(key, "minute_remaining") == 0) field = &c->minute_remaining;
        else if (strcmp(key, "day_remaining") == 0) field = &c->day_remaining;
        else if (strcmp(key, "app_minute_remaining") == 0) field = &c->app_minute_remaining;
        else return 0;
        number = (long long)*field;
        is_number = 1;
        is_null = *field == XG_UNKNOWN;
    }
    if (is_null) snprintf(out, n, "null");
    else if (is_number) snprintf(out, n, "%lld", number);
    else snprintf(out, n, "\"%s\"", word ? word : "?");
    return 1;
}

/* Whether the compact JSON object holds "key":value exactly. */
static int json_has(const char *json, const char *key, const char *value) {
    size_t need = strlen(key) + strlen(value) + 4;
    char *pattern = malloc(need);
    const char *at = json;
    int found = 0;
    snprintf(pattern, need, "\"%s\":%s", key, value);
    while (!found && (at = strstr(at, pattern)) != NULL) {
        char next = at[strlen(pattern)];
        found = (next == ',' || next == '}') && (at[-1] == '{' || at[-1] == ',');
        at++;
    }
    free(pattern);
    return found;
}

static void check_case(const test_case *tc, const xg_classification *c, const char *json, const char *via) {
    size_t i;
    char repr[128];
    for (i = 0; i < tc->expect_count; i++) {
        const char *key = tc->expect_key[i], *want = tc->expect_value[i];
        if (scalar_json(key, c, repr, sizeof repr)) {
            CHECK(strcmp(repr, want) == 0, "%s via %s: struct %s = %s, want %s", tc->name, via, key, repr, want);
        }
        CHECK(json_has(json, key, want), "%s via %s: JSON lacks \"%s\":%s in %s", tc->name, via, key, want, json);
    }
}

static void run_case(const test_case *tc) {
    xg_response response;
    xg_classification c;
    char *json = NULL, *raw;
    size_t i, raw_len = 0, cap;

    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    response.status = (uint16_t)tc->status;
    response.headers = tc->headers;
    response.header_count = tc->header_count;
    response.body = (const uint8_t *)tc->body;
    response.body_len = tc->body_len;
    response.now_unix_ms = 0;
    CHECK_STATUS(xg_classify(&response, &c, &json), XG_STATUS_OK);
    if (json != NULL) check_case(tc, &c, json, "xg_classify");
    xg_string_free(json);

    /* The same case as a raw response. */
    cap = 64 + tc->body_len;
    for (i = 0; i < tc->header_count; i++) cap += tc->headers[i].name_len + tc->headers[i].value_len + 4;
    raw = malloc(cap);
    raw_len += (size_t)sprintf(raw, "HTTP/1.1 %u Xero\r\n", tc->status);
    for (i = 0; i < tc->header_count; i++) {
        memcpy(raw + raw_len, tc->headers[i].name, tc->headers[i].name_len);
        raw_len += tc->headers[i].name_len;
        memcpy(raw + raw_len, ": ", 2);
        raw_len += 2;
        memcpy(raw + raw_len, tc->headers[i].value, tc->headers[i].value_len);
        raw_len += tc->headers[i].value_len;
        memcpy(raw + raw_len, "\r\n", 2);
        raw_len += 2;
    }
    memcpy(raw + raw_len, "\r\n", 2);
    raw_len += 2;
    memcpy(raw + raw_len, tc->body, tc->body_len);
    raw_len += tc->body_len;
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    json = NULL;
    CHECK_STATUS(xg_classify_raw((const uint8_t *)raw, raw_len, 0, &c, &json), XG_STATUS_OK);
    if (json != NULL) check_case(tc, &c, json, "xg_classify_raw");
    xg_string_free(json);
    free(raw);
}

int main(int argc, char **argv) {
    FILE *f;
    char line[512];
    test_case tc;
    int cases = 0, expected;
    if (argc != 3 || (expected = atoi(argv[2])) <= 0 || (f = fopen(argv[1], "rb")) == NULL) {
        fprintf(stderr, "usage: conformance CASES_FILE CASE_COUNT\n");
        return 2;
    }
    memset(&tc, 0, sizeof tc);
    while (fgets(line, sizeof line, f) != NULL) {
        size_t a, b;
        char key[128];
        if (sscanf(line, "CASE %127s", tc.name) == 1) {
            continue;
        } else if (sscanf(line, "STATUS %u", &tc.status) == 1) {
            continue;
        } else if (sscanf(line, "HEADER %zu %zu", &a, &b) == 2) {
            char *both = read_exact(f, a + b);
            char *name = malloc(a + 1), *value = malloc(b + 1);
            memcpy(name, both, a);
            memcpy(value, both + a, b);
            free(both);
            tc.headers[tc.header_count].name = name;
            tc.headers[tc.header_count].name_len = a;
            tc.headers[tc.header_count].value = value;
            tc.headers[tc.header_count].value_len = b;
            tc.header_count++;
        } else if (sscanf(line, "BODY %zu", &a) == 1) {
            tc.body = read_exact(f, a);
            tc.body_len = a;
        } else if (sscanf(line, "EXPECT %127s %zu", key, &a) == 2) {
            tc.expect_key[tc.expect_count] = malloc(strlen(key) + 1);
            strcpy(tc.expect_key[tc.expect_count], key);
            tc.expect_value[tc.expect_count] = read_exact(f, a);
            tc.expect_count++;
        } else if (strncmp(line, "END", 3) == 0) {
            run_case(&tc);
            free_case(&tc);
            memset(&tc, 0, sizeof tc);
            cases++;
        }
    }
    fclose(f);
    CHECK(cases == expected, "read %d cases, want %d", cases, expected);
    return finish();
}
