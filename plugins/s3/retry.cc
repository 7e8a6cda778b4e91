#include "retry.h"

#include <algorithm>

namespace popvault::s3 {

bool IsRetryable(int http_status, std::string_view error_code) {
  if (http_status == 0 || http_status == 429 || http_status >= 500) return true;
  return http_status == 400 && error_code == "RequestTimeout";
}

std::chrono::milliseconds BackoffDelay(const RetryPolicy& policy, int attempt, double uniform) {
  // Doubling stops once past the cap, so the shift cannot overflow.
  double ceiling = static_cast<double>(policy.base_delay.count());
  const double cap = static_cast<double>(policy.max_delay.count());
  for (int i = 1; i < attempt && ceiling < cap; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, cap);
  const double u = std::clamp(uniform, 0.0, 1.0);
  return std::chrono::milliseconds(static_cast<long long>(u * ceiling));
}

}  // namespace popvault::s3
