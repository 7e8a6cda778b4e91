// When and how long to wait before retrying an S3 request: pure functions,
// so that the policy is unit-testable without a server or a clock.
//
// Retried: connection failures and timeouts (no HTTP status), 5xx, 429, and
// 400 RequestTimeout, which is S3's server-side timeout on a stalled upload
// (a timeout like ours, not a client mistake). Never retried: every other
// 4xx, including signature, clock and payload-hash errors (403
// SignatureDoesNotMatch, 403 RequestTimeTooSkewed, 400 BadDigest, 400
// XAmzContentSHA256Mismatch): resending the same bytes with the same
// credentials and clock gives the same answer, and the caller must see it.
#pragma once

#include <chrono>
#include <string_view>

namespace popvault::s3 {

struct RetryPolicy {
  int max_attempts = 6;  // 1 + max_retries
  std::chrono::milliseconds base_delay{200};
  std::chrono::milliseconds max_delay{10000};
};

// `http_status` is 0 when no response arrived (connection error, timeout);
// `error_code` is the S3 <Code> of the error body, if any.
bool IsRetryable(int http_status, std::string_view error_code);

// The wait before attempt number `attempt` + 1 (attempt counts from 1):
// "full jitter", uniform in [0, min(max_delay, base_delay * 2^(attempt-1))],
// given `uniform` in [0, 1).
std::chrono::milliseconds BackoffDelay(const RetryPolicy& policy, int attempt, double uniform);

}  // namespace popvault::s3
