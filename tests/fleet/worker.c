/* A fleet worker in C (tests/fleet/test_fleet.py runs several, beside C# and Python ones): threads per tenant
 * call the Xero-like server through one shared (Redis) limiter: xg_limiter_acquire_wait, a request over a
 * keep-alive HTTP/1.1 connection of the thread's own, xg_limiter_observe_raw, xg_limiter_release.
 *
 * Protocol (the same for every language's worker): after setup (limiter made, connections open and warmed) it
 * prints "READY <unix time, s> <CLOCK_MONOTONIC, ms>" and waits for "GO <run ms>" on stdin; its threads then call
 * until run ms have passed on its monotonic clock, and it prints one JSON line:
 *   {"id", "language", "calls": [[seq, sent_ms, status], ...], "errors": [...]}
 * where sent_ms is CLOCK_MONOTONIC just before the request is written. Each call's path ends in "<id>-<seq>", so
 * the harness finds its arrival in the server's log.
 *
 * Usage: worker --id ID --redis URL --prefix P --port PORT --tenants a,b,c --threads-per-tenant K
 *               --minute L/W/M --day L/W/M --concurrency N --app L/W/M --permit-timeout-ms MS
 *               [--breaker-cooldown-ms MS]
 * (L/W/M: limit / window ms / margin ms; without --breaker-cooldown-ms the library's default). */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "xeroguard.h"

#define MAX_TENANTS 16
#define MAX_THREADS 64
#define MAX_CALLS_PER_THREAD 20000
#define RESPONSE_CAP 65536
/* The guards' default (the retry policy's max_wait, 300 s): beyond the run. Forty callers race for 20 calls a second
 * here, so one thread can lose many windows in a row (seen: 10 s); the test measures the fleet's throughput and its
 * violations, not one thread's luck, and a refusal is still reported as an error. */
#define PERMIT_WAIT_MS 300000

typedef struct {
    uint32_t seq;
    double sent_ms;
    int status;
} call_record;

typedef struct {
    const char *tenant;
    int fd;
    call_record *calls;
    size_t call_count;
    char *response;
    char error[512];
} worker_thread;

static const char *worker_id;
static int server_port;
static xg_limiter *limiter;
static double run_until_ms;
static uint32_t next_seq;
static pthread_mutex_t seq_lock = PTHREAD_MUTEX_INITIALIZER;

static double monotonic_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void fail(const char *what) {
    char message[512];
    xg_last_error_message(message, sizeof message, NULL);
    fprintf(stderr, "worker: %s: %s\n", what, message);
    exit(1);
}

/* Text inside a JSON string: quotes, backslashes and control bytes escaped (messages may quote a tenant id). */
static void print_json_text(const char *text) {
    for (; *text; text++) {
        unsigned char c = (unsigned char)*text;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
}

static int parse_window(const char *text, xg_window_limit *out) {
    unsigned limit;
    unsigned long long window_ms, margin_ms;
    if (sscanf(text, "%u/%llu/%llu", &limit, &window_ms, &margin_ms) != 3) return 0;
    out->limit = limit;
    out->window_ms = window_ms;
    out->margin_ms = margin_ms;
    return 1;
}

static int connect_server(void) {
    struct sockaddr_in addr;
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)server_port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Small requests must leave at once, not wait for an ACK (Nagle). */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int write_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return 0;
        data += n;
        len -= (size_t)n;
    }
    return 1;
}

/* Reads one response (the server always sends Content-Length) into buf; its length, or 0 on failure. */
static size_t read_response(int fd, char *buf, size_t cap, int *status) {
    size_t have = 0, header_end = 0, content_length = 0;
    while (1) {
        ssize_t n;
        if (header_end == 0) {
            char *end;
            buf[have] = '\0';
            end = strstr(buf, "\r\n\r\n");
            if (end != NULL) {
                const char *header = strstr(buf, "\r\n");
                header_end = (size_t)(end - buf) + 4;
                if (sscanf(buf, "HTTP/1.%*d %d", status) != 1) return 0;
                for (; header != NULL && header < end; header = strstr(header + 2, "\r\n")) {
                    if (strncasecmp(header + 2, "Content-Length:", 15) == 0)
                        content_length = strtoul(header + 17, NULL, 10);
                }
            }
        }
        if (header_end != 0 && have >= header_end + content_length) return have;
        if (have + 1 >= cap) return 0;
        n = read(fd, buf + have, cap - 1 - have);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return 0;
        have += (size_t)n;
    }
}

/* One request on the thread's connection; the response's length in buf, or 0 (the error is in t->error). */
static size_t exchange(worker_thread *t, const char *path, const char *tenant, char *buf, int *status) {
    char request[1024];
    size_t len;
    int n = snprintf(request, sizeof request,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nXero-Tenant-Id: %s\r\n"
                     "Authorization: Bearer fleet\r\nAccept: application/json\r\n\r\n",
                     path, server_port, tenant);
    if (n <= 0 || (size_t)n >= sizeof request || !write_all(t->fd, request, (size_t)n)) {
        snprintf(t->error, sizeof t->error, "writing %s failed", path);
        return 0;
    }
    len = read_response(t->fd, buf, RESPONSE_CAP, status);
    if (len == 0) snprintf(t->error, sizeof t->error, "reading the response to %s failed", path);
    return len;
}

/* The thread's error: `what` and the library's message for this thread's last failed call. */
static void library_error(worker_thread *t, const char *what) {
    char message[256];
    xg_last_error_message(message, sizeof message, NULL);
    snprintf(t->error, sizeof t->error, "%s: %s", what, message);
}

static void *run_thread(void *arg) {
    worker_thread *t = arg;
    char *response = t->response;
    xg_decision d;
    size_t tenant_len = strlen(t->tenant);
    while (monotonic_ms() < run_until_ms && t->call_count < MAX_CALLS_PER_THREAD) {
        char path[128];
        int status = 0;
        size_t len;
        uint32_t seq;
        double sent;
        memset(&d, 0, sizeof d);
        d.struct_size = sizeof d;
        if (xg_limiter_acquire_wait(limiter, t->tenant, tenant_len, PERMIT_WAIT_MS, &d) != XG_STATUS_OK) {
            library_error(t, "acquire_wait failed");
            break;
        }
        if (!d.granted) {
            snprintf(t->error, sizeof t->error, "no permit within %d ms (%s, wait %llu ms)", PERMIT_WAIT_MS,
                     xg_reason_name(d.reason), (unsigned long long)d.wait_ms);
            break;
        }
        pthread_mutex_lock(&seq_lock);
        seq = next_seq++;
        pthread_mutex_unlock(&seq_lock);
        snprintf(path, sizeof path, "/api.xro/2.0/Invoices/%s-%u", worker_id, seq);
        sent = monotonic_ms();
        len = exchange(t, path, t->tenant, response, &status);
        /* Best-effort: a store out of reach may fail an observe, but never a release (it is deferred). */
        if (len > 0) xg_limiter_observe_raw(limiter, t->tenant, tenant_len, (const uint8_t *)response, len);
        if (xg_limiter_release(limiter, d.permit) != XG_STATUS_OK) {
            library_error(t, "release failed");
            break;
        }
        if (len == 0) break;
        t->calls[t->call_count].seq = seq;
        t->calls[t->call_count].sent_ms = sent;
        t->calls[t->call_count].status = status;
        t->call_count++;
    }
    return NULL;
}

int main(int argc, char **argv) {
    const char *redis_url = NULL, *prefix = NULL, *tenant_list = NULL;
    char *tenants_copy, *save = NULL, *tok;
    const char *tenants[MAX_TENANTS];
    int tenant_count = 0, per_tenant = 1, thread_count, i, go_ms = 0;
    xg_limits limits = xg_limits_exact();
    xg_redis_options options = xg_redis_options_default();
    worker_thread threads[MAX_THREADS];
    pthread_t handles[MAX_THREADS];
    char line[128], warmup[RESPONSE_CAP];
    int first = 1;

    for (i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        int ok = 1;
        if (!strcmp(k, "--id")) worker_id = v;
        else if (!strcmp(k, "--redis")) redis_url = v;
        else if (!strcmp(k, "--prefix")) prefix = v;
        else if (!strcmp(k, "--port")) server_port = atoi(v);
        else if (!strcmp(k, "--tenants")) tenant_list = v;
        else if (!strcmp(k, "--threads-per-tenant")) per_tenant = atoi(v);
        else if (!strcmp(k, "--minute")) ok = parse_window(v, &limits.tenant_minute);
        else if (!strcmp(k, "--day")) ok = parse_window(v, &limits.tenant_day);
        else if (!strcmp(k, "--app")) ok = parse_window(v, &limits.app_minute);
        else if (!strcmp(k, "--concurrency")) limits.tenant_concurrency = (uint32_t)atoi(v);
        else if (!strcmp(k, "--permit-timeout-ms")) limits.permit_timeout_ms = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--breaker-cooldown-ms")) options.breaker_cooldown_ms = strtoull(v, NULL, 10);
        else ok = 0;
        if (!ok) {
            fprintf(stderr, "worker: bad argument %s %s\n", k, v);
            return 2;
        }
    }
    if (!worker_id || !redis_url || !prefix || !tenant_list || server_port <= 0 || per_tenant <= 0) {
        fprintf(stderr, "worker: --id, --redis, --prefix, --port and --tenants are required\n");
        return 2;
    }
    tenants_copy = strdup(tenant_list);
    for (tok = strtok_r(tenants_copy, ",", &save); tok && tenant_count < MAX_TENANTS; tok = strtok_r(NULL, ",", &save))
        tenants[tenant_count++] = tok;
    thread_count = tenant_count * per_tenant;
    if (thread_count == 0 || thread_count > MAX_THREADS) {
        fprintf(stderr, "worker: between 1 and %d threads (tenants x threads per tenant)\n", MAX_THREADS);
        return 2;
    }

    options.url = redis_url;
    options.url_len = strlen(redis_url);
    options.key_prefix = prefix;
    options.key_prefix_len = strlen(prefix);
    if (xg_limiter_new_redis(&limits, &options, XG_CLOCK_MONOTONIC, &limiter) != XG_STATUS_OK)
        fail("xg_limiter_new_redis");

    for (i = 0; i < thread_count; i++) {
        int status = 0;
        char request[256];
        worker_thread *t = &threads[i];
        memset(t, 0, sizeof *t);
        t->tenant = tenants[i % tenant_count];
        t->calls = calloc(MAX_CALLS_PER_THREAD, sizeof *t->calls);
        t->response = malloc(RESPONSE_CAP);
        t->fd = connect_server();
        if (t->fd < 0 || t->calls == NULL || t->response == NULL) {
            fprintf(stderr, "worker: cannot connect to 127.0.0.1:%d\n", server_port);
            return 1;
        }
        /* A first request on a new connection makes the server start its handler thread: done now, outside the
         * limits (/__stats is not an API call), so the run's first calls arrive as promptly as the others. */
        snprintf(request, sizeof request, "GET /__stats HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", server_port);
        if (!write_all(t->fd, request, strlen(request)) || read_response(t->fd, warmup, sizeof warmup, &status) == 0 ||
            status != 200) {
            fprintf(stderr, "worker: the warm-up request failed (status %d)\n", status);
            return 1;
        }
    }

    printf("READY %.3f %.3f\n", (double)time(NULL), monotonic_ms());
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin) || sscanf(line, "GO %d", &go_ms) != 1 || go_ms <= 0) {
        fprintf(stderr, "worker: expected 'GO <run ms>' on stdin\n");
        return 2;
    }
    run_until_ms = monotonic_ms() + go_ms;
    for (i = 0; i < thread_count; i++) {
        if (pthread_create(&handles[i], NULL, run_thread, &threads[i]) != 0) {
            fprintf(stderr, "worker: pthread_create failed\n");
            return 1;
        }
    }
    for (i = 0; i < thread_count; i++) pthread_join(handles[i], NULL);

    printf("{\"id\": \"%s\", \"language\": \"c\", \"calls\": [", worker_id);
    for (i = 0; i < thread_count; i++) {
        size_t c;
        for (c = 0; c < threads[i].call_count; c++) {
            const call_record *r = &threads[i].calls[c];
            printf("%s[%u, %.3f, %d]", first ? "" : ", ", r->seq, r->sent_ms, r->status);
            first = 0;
        }
    }
    printf("], \"errors\": [");
    first = 1;
    for (i = 0; i < thread_count; i++) {
        if (threads[i].error[0] == '\0') continue;
        printf("%s\"thread %d (%s): ", first ? "" : ", ", i, threads[i].tenant);
        print_json_text(threads[i].error);
        putchar('"');
        first = 0;
    }
    printf("]}\n");
    fflush(stdout);
    for (i = 0; i < thread_count; i++) {
        close(threads[i].fd);
        free(threads[i].calls);
        free(threads[i].response);
    }
    xg_limiter_free(limiter);
    free(tenants_copy);
    return 0;
}
