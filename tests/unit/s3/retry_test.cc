#include "retry.h"

#include <catch2/catch.hpp>

namespace popvault::s3 {
namespace {

using std::chrono::milliseconds;

TEST_CASE("retried: no reply, 5xx, 429, a stalled upload") {
  CHECK(IsRetryable(0, ""));
  CHECK(IsRetryable(500, "InternalError"));
  CHECK(IsRetryable(502, ""));
  CHECK(IsRetryable(503, "SlowDown"));
  CHECK(IsRetryable(504, ""));
  CHECK(IsRetryable(429, ""));
  CHECK(IsRetryable(400, "RequestTimeout"));
}

TEST_CASE("never retried: other 4xx, including signature and digest mismatches") {
  CHECK_FALSE(IsRetryable(200, ""));
  CHECK_FALSE(IsRetryable(204, ""));
  CHECK_FALSE(IsRetryable(400, "BadDigest"));
  CHECK_FALSE(IsRetryable(400, "XAmzContentSHA256Mismatch"));
  CHECK_FALSE(IsRetryable(400, "InvalidDigest"));
  CHECK_FALSE(IsRetryable(403, "SignatureDoesNotMatch"));
  CHECK_FALSE(IsRetryable(403, "RequestTimeTooSkewed"));
  CHECK_FALSE(IsRetryable(403, "AccessDenied"));
  CHECK_FALSE(IsRetryable(404, "NoSuchKey"));
  CHECK_FALSE(IsRetryable(409, ""));
  CHECK_FALSE(IsRetryable(412, "PreconditionFailed"));
}

TEST_CASE("backoff: full jitter under an exponentially growing, capped ceiling") {
  const RetryPolicy p{
      .max_attempts = 6, .base_delay = milliseconds(200), .max_delay = milliseconds(10000)};
  const double almost_one = 0.999999;
  CHECK(BackoffDelay(p, 1, 0.0) == milliseconds(0));
  CHECK(BackoffDelay(p, 1, almost_one) == milliseconds(199));
  CHECK(BackoffDelay(p, 2, almost_one) == milliseconds(399));
  CHECK(BackoffDelay(p, 3, almost_one) == milliseconds(799));
  CHECK(BackoffDelay(p, 3, 0.5) == milliseconds(400));
  CHECK(BackoffDelay(p, 6, almost_one) == milliseconds(6399));
  CHECK(BackoffDelay(p, 7, almost_one) == milliseconds(9999));     // 12800 capped
  CHECK(BackoffDelay(p, 1000, almost_one) == milliseconds(9999));  // no overflow
  for (int attempt = 1; attempt < 40; ++attempt) {
    for (double u : {0.0, 0.25, 0.5, 0.75, almost_one}) {
      CHECK(BackoffDelay(p, attempt, u) >= milliseconds(0));
      CHECK(BackoffDelay(p, attempt, u) < milliseconds(10000));
    }
  }
}

TEST_CASE("backoff: out-of-range random input is clamped") {
  const RetryPolicy p;
  CHECK(BackoffDelay(p, 1, -1.0) == milliseconds(0));
  CHECK(BackoffDelay(p, 1, 2.0) == p.base_delay);
}

}  // namespace
}  // namespace popvault::s3
