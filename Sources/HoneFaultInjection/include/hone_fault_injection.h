// Test-only fault injection, used as an LD_PRELOAD library (libHoneFaultInjection.so); nothing links it.
// Settings come from the environment:
//   HONE_FAULT_OP      write | fsync | rename        which call to break
//   HONE_FAULT_AT      N (1-based)                   the Nth matching call breaks (and every later one, for `fail`)
//   HONE_FAULT_ACTION  fail | die                    fail: return -1 with errno; die: _exit(137) before the call
//   HONE_FAULT_ERRNO   ENOSPC | EIO | EDQUOT         errno for `fail` (default ENOSPC)
//   HONE_FAULT_MATCH   substring                     count only calls on paths containing it (default: any file)
// Calls on standard input, output and error never count.
#pragma once

/// Matching calls seen so far (for a test that wants to know how many a clean run makes: HONE_FAULT_AT=0 counts
/// without breaking, and the count is printed to stderr at exit when HONE_FAULT_REPORT is set).
long hk_fault_calls_seen(void);
