/* Classify a raw Xero response and print what to do next. */
#include <stdio.h>
#include <string.h>

#include "xeroguard.h"

int main(void) {
    const char *raw =
        "HTTP/1.1 429 Too Many Requests\r\n"
        "Retry-After: 17\r\n"
        "X-Rate-Limit-Problem: minute\r\n"
        "X-MinLimit-Remaining: 0\r\n"
        "\r\n";
    xg_classification c;
    char *json = NULL;
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c; /* always set struct_size first */

    if (xg_classify_raw((const uint8_t *)raw, strlen(raw), 0, &c, &json) != XG_STATUS_OK) {
        char message[256];
        xg_last_error_message(message, sizeof message, NULL);
        fprintf(stderr, "classify failed: %s\n", message);
        return 1;
    }
    printf("category=%s action=%s retry in %lld ms\n", xg_category_name(c.category), xg_action_name(c.action),
           (long long)c.recommended_wait_ms);
    printf("%s\n", json); /* every key of the result, lists included */
    xg_string_free(json);
    return 0;
}
