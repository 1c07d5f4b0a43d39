/* Shared protocol of the stasis test programs in tests/progs.
 *
 *   prog GOFILE [args]
 *
 * set up the state, print "READY", wait until GOFILE exists, then check that
 * everything set up is still exactly as it was and print "PASS" (exit 0) or
 * "FAIL: <what differed>" (exit 1). A set-up error prints "SETUP: ..." on
 * stderr and exits 2 without printing READY.
 *
 * Checker self-test: with STASIS_SABOTAGE=WHAT in the environment, a program
 * damages the named piece of its own state after GO and before checking, so
 * one can see that the check notices (it must then print FAIL).
 */
#ifndef STASIS_TESTPROG_H
#define STASIS_TESTPROG_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *tp_gofile;
static pid_t tp_pid;
static const char *tp_sabotage;
static char tp_fails[8192];
static size_t tp_faillen;
static int tp_nfail;

/* Record one difference; all of them are reported on the FAIL line. */
__attribute__((format(printf, 1, 2))) static inline void tp_fail(const char *fmt, ...)
{
	va_list ap;
	size_t room = sizeof(tp_fails) - tp_faillen;

	tp_nfail++;
	if (room < 2)
		return;
	if (tp_faillen) {
		int n = snprintf(tp_fails + tp_faillen, room, "; ");
		tp_faillen += (size_t)n < room ? (size_t)n : room - 1;
		room = sizeof(tp_fails) - tp_faillen;
	}
	va_start(ap, fmt);
	int n = vsnprintf(tp_fails + tp_faillen, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		tp_faillen += (size_t)n < room ? (size_t)n : room - 1;
}

__attribute__((format(printf, 1, 2), noreturn)) static inline void tp_die(const char *fmt, ...)
{
	va_list ap;
	int e = errno;

	fprintf(stderr, "SETUP: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (errno %d: %s)\n", e, strerror(e));
	exit(2);
}

static inline void tp_init(int argc, char **argv, int nargs, const char *usage)
{
	if (argc < 1 + nargs) {
		fprintf(stderr, "usage: %s %s\n", argv[0], usage);
		exit(2);
	}
	tp_gofile = argv[1];
	tp_pid = getpid();
	tp_sabotage = getenv("STASIS_SABOTAGE");
}

static inline void tp_ready(void)
{
	printf("READY\n");
	fflush(stdout);
}

static inline void tp_wait_go(void)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };

	while (access(tp_gofile, F_OK) != 0)
		nanosleep(&ts, NULL);
}

/* True when the checker self-test asks to damage WHAT. */
static inline int tp_sabotaged(const char *what)
{
	return tp_sabotage && (strcmp(tp_sabotage, what) == 0 || strcmp(tp_sabotage, "all") == 0);
}

static inline int tp_finish(void)
{
	pid_t now = getpid();

	if (now != tp_pid)
		tp_fail("getpid() is %d, was %d", (int)now, (int)tp_pid);
	if (tp_nfail) {
		printf("FAIL: %s\n", tp_fails);
		fflush(stdout);
		return 1;
	}
	printf("PASS\n");
	fflush(stdout);
	return 0;
}

/* Permissions ("rw-p"), file offset and path of the mapping that contains
 * ADDR, from /proc/self/maps; 0 when found. */
static inline int tp_maps_entry(const void *addr, char perms[5], unsigned long *offset, char *path,
				size_t pathlen)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[4096];
	int ret = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e, off;
		char p[5];
		int n = 0;

		if (sscanf(line, "%lx-%lx %4s %lx %*s %*s%n", &s, &e, p, &off, &n) < 4)
			continue;
		if ((unsigned long)addr < s || (unsigned long)addr >= e)
			continue;
		memcpy(perms, p, 5);
		if (offset)
			*offset = off + ((unsigned long)addr - s);
		if (path && pathlen) {
			char *q = line + n;
			while (*q == ' ')
				q++;
			q[strcspn(q, "\n")] = 0;
			snprintf(path, pathlen, "%s", q);
		}
		ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

/* A 64-bit pattern value for word I under SEED (splitmix64). */
static inline unsigned long long tp_pattern(unsigned long long i, unsigned long long seed)
{
	unsigned long long x = i * 0x9E3779B97F4A7C15ULL + seed;

	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

#endif
