// Test points: hooks that let crash-safety and fault tests stop the agent at
// an exact place in the RETR -> DELE path. Unset, a call costs one branch.
//
//   POPVAULT_CRASH_AT=<name>:<n>        the n-th TestPoint("<name>") kills the
//                                       process with SIGKILL, exactly as
//                                       `kill -9` would (no destructors, no
//                                       buffered writes flushed).
//   POPVAULT_PAUSE_AT=<name>:<n>:<file> the n-th TestPoint("<name>") creates
//                                       <file> and waits until it is deleted
//                                       (at most 10 minutes), so a test can
//                                       act (stop a server) at that moment.
//
// Thread-safe.
#pragma once

namespace popvault {

void TestPoint(const char* name);

}  // namespace popvault
