// Interposes write, fsync and rename (and their close relatives) to make the Nth call fail or kill the process,
// so tests can check that no fault leaves a half-written output behind. See hone_fault_injection.h.
#define _GNU_SOURCE
#include "hone_fault_injection.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

// MARK: - Settings

enum fault_op { FAULT_NONE, FAULT_WRITE, FAULT_FSYNC, FAULT_RENAME };

static enum fault_op configured_op = FAULT_NONE;
static long configured_at = 0;
static int configured_die = 0;
static int configured_errno = ENOSPC;
static const char *configured_match = NULL;
static atomic_long calls_seen = 0;

static void report_at_exit(void) {
    fprintf(stderr, "hone-fault-injection: %ld matching calls\n", atomic_load(&calls_seen));
}

__attribute__((constructor)) static void read_settings(void) {
    const char *op = getenv("HONE_FAULT_OP");
    if (!op) return;
    if (strcmp(op, "write") == 0) configured_op = FAULT_WRITE;
    else if (strcmp(op, "fsync") == 0) configured_op = FAULT_FSYNC;
    else if (strcmp(op, "rename") == 0) configured_op = FAULT_RENAME;
    const char *at = getenv("HONE_FAULT_AT");
    configured_at = at ? atol(at) : 0;
    const char *action = getenv("HONE_FAULT_ACTION");
    configured_die = action && strcmp(action, "die") == 0;
    const char *code = getenv("HONE_FAULT_ERRNO");
    if (code && strcmp(code, "EIO") == 0) configured_errno = EIO;
    else if (code && strcmp(code, "EDQUOT") == 0) configured_errno = EDQUOT;
    configured_match = getenv("HONE_FAULT_MATCH");
    if (getenv("HONE_FAULT_REPORT")) atexit(report_at_exit);
}

long hk_fault_calls_seen(void) { return atomic_load(&calls_seen); }

// MARK: - Deciding

static int path_matches(const char *path) {
    return !configured_match || (path && strstr(path, configured_match) != NULL);
}

static int fd_matches(int fd) {
    if (fd <= 2) return 0;
    if (!configured_match) return 1;
    char link[64];
    char target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t length = readlink(link, target, sizeof target - 1);
    if (length <= 0) return 0;
    target[length] = 0;
    return path_matches(target);
}

/// 1 when this call must break (errno set, or the process ended for `die`).
static int should_break(enum fault_op op, int matches) {
    if (configured_op != op || !matches) return 0;
    long seen = atomic_fetch_add(&calls_seen, 1) + 1;
    if (configured_at <= 0 || seen < configured_at) return 0;
    if (configured_die) _exit(137);
    errno = configured_errno;
    return 1;
}

// MARK: - Interposed calls

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef int (*fsync_fn)(int);
typedef int (*rename_fn)(const char *, const char *);
typedef int (*renameat_fn)(int, const char *, int, const char *);
typedef int (*renameat2_fn)(int, const char *, int, const char *, unsigned int);

// The real function, looked up once (a race only repeats the same lookup).
#define NEXT(name) static name##_fn next_##name; if (!next_##name) next_##name = (name##_fn)dlsym(RTLD_NEXT, #name)

ssize_t write(int fd, const void *buffer, size_t count) {
    NEXT(write);
    if (should_break(FAULT_WRITE, fd_matches(fd))) return -1;
    return next_write(fd, buffer, count);
}

ssize_t pwrite(int fd, const void *buffer, size_t count, off_t offset) {
    NEXT(pwrite);
    if (should_break(FAULT_WRITE, fd_matches(fd))) return -1;
    return next_pwrite(fd, buffer, count, offset);
}

ssize_t writev(int fd, const struct iovec *vectors, int count) {
    NEXT(writev);
    if (should_break(FAULT_WRITE, fd_matches(fd))) return -1;
    return next_writev(fd, vectors, count);
}

int fsync(int fd) {
    NEXT(fsync);
    if (should_break(FAULT_FSYNC, fd_matches(fd))) return -1;
    return next_fsync(fd);
}

int fdatasync(int fd) {
    static fsync_fn next_fdatasync;
    if (!next_fdatasync) next_fdatasync = (fsync_fn)dlsym(RTLD_NEXT, "fdatasync");
    if (should_break(FAULT_FSYNC, fd_matches(fd))) return -1;
    return next_fdatasync(fd);
}

int rename(const char *from, const char *to) {
    NEXT(rename);
    if (should_break(FAULT_RENAME, path_matches(to))) return -1;
    return next_rename(from, to);
}

int renameat(int from_directory, const char *from, int to_directory, const char *to) {
    NEXT(renameat);
    if (should_break(FAULT_RENAME, path_matches(to))) return -1;
    return next_renameat(from_directory, from, to_directory, to);
}

int renameat2(int from_directory, const char *from, int to_directory, const char *to, unsigned int flags) {
    NEXT(renameat2);
    if (should_break(FAULT_RENAME, path_matches(to))) return -1;
    return next_renameat2(from_directory, from, to_directory, to, flags);
}
