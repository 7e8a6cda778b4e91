// Crash points: a test hook for crash-safety tests.
//
// With POPVAULT_CRASH_AT=<name>:<n> in the environment, the n-th call of
// CrashPoint("<name>") kills the process with SIGKILL, exactly as `kill -9`
// would at that moment (no destructors, no buffered writes flushed). Without
// the variable a call costs one load and branch.
//
// Thread-safe.
#pragma once

namespace popvault {

void CrashPoint(const char* name);

}  // namespace popvault
