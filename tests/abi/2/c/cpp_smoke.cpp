// The header from C++17: extern "C" linkage, and RAII over the handle.
#include <cstring>
#include <iostream>
#include <memory>
#include <string>

#include "xeroguard.h"

struct LimiterDeleter {
    void operator()(xg_limiter *l) const { xg_limiter_free(l); }
};

int main() {
    const std::string raw = "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\n\r\n";
    xg_classification c{};
    c.struct_size = sizeof c;
    if (xg_classify_raw(reinterpret_cast<const uint8_t *>(raw.data()), raw.size(), 0, &c, nullptr) != XG_STATUS_OK) return 1;
    std::cout << xg_category_name(c.category) << " " << c.recommended_wait_ms << "\n";

    xg_limiter *raw_handle = nullptr;
    if (xg_limiter_new(nullptr, XG_CLOCK_MANUAL, &raw_handle) != XG_STATUS_OK) return 1;
    std::unique_ptr<xg_limiter, LimiterDeleter> limiter(raw_handle);
    xg_decision d{};
    d.struct_size = sizeof d;
    const std::string tenant = "cpp-tenant";
    if (xg_limiter_acquire(limiter.get(), tenant.data(), tenant.size(), &d) != XG_STATUS_OK || !d.granted) return 1;
    return xg_limiter_release(limiter.get(), d.permit) == XG_STATUS_OK && c.category == XG_CATEGORY_RATE_LIMITED ? 0 : 1;
}
