// SPDX-License-Identifier: GPL-2.0
/*
 * UTS, time and cgroup namespaces across a checkpoint.
 *
 *   namespaces GOFILE [cgroup]
 *
 * The process makes a UTS namespace (host and domain names of its own)
 * and a time namespace whose clocks are 10 days (monotonic) and 20 days
 * (boot time) ahead, and enters it. Its child makes a UTS namespace of
 * its own with another host name (a task in a namespace its parent is not
 * in) and shares the time namespace. With "cgroup", the parent moves the
 * child into a cgroup2 cgroup stasis-ns-PID beside its own (printed as
 * "CGDIR dir"), the child makes a cgroup namespace rooted there and moves
 * on into its sub-cgroup inner, so that it sees its cgroup as "/inner"
 * (criu's zdtm cgroupns). Restore it with --manage-cgroups=soft (or
 * another mode that moves tasks): in the default mode the tree stays in
 * the restorer's cgroup and the namespace's root with it.
 *
 * After GO each task checks that its names are its own, that it is in a
 * UTS, time (and cgroup) namespace other than PID 1's, that the clocks
 * have gone on from where they were (never back, and by no more than the
 * wall clock) and, in the child, that /proc/self/cgroup still shows
 * "0::/inner". The parent removes the cgroups once the child is gone.
 *
 * Sabotage: hostname (the parent's host name changed), child-hostname (the
 * child's), clock (the monotonic clock read as if the task were in the
 * host's time namespace), cgroup (the child moves up to its namespace's
 * root).
 */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include "testprog.h"

#define MONO_AHEAD (10 * 86400LL)
#define BOOT_AHEAD (20 * 86400LL)

static int64_t now(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static ino_t ns_ino(const char *pid, const char *kind)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%s/ns/%s", pid, kind);
	return stat(path, &st) ? 0 : st.st_ino;
}

static void put(const char *file, const char *what)
{
	int fd = open(file, O_WRONLY | O_CLOEXEC);

	if (fd < 0 || write(fd, what, strlen(what)) != (ssize_t)strlen(what))
		tp_die("write %s to %s", what, file);
	close(fd);
}

/* The cgroup2 line of /proc/self/cgroup, the path after "0::". */
static void cgroup2_line(char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[4096];

	*buf = 0;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "0::", 3)) {
			line[strcspn(line, "\n")] = 0;
			snprintf(buf, len, "%s", line + 3);
		}
	if (f)
		fclose(f);
}

static void cgroup2_mount(char *mnt, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096], dir[1024];

	*mnt = 0;
	while (f && fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - ");

		if (sep && !strncmp(sep + 3, "cgroup2 ", 8) &&
		    sscanf(line, "%*s %*s %*s %*s %1023s", dir) == 1) {
			snprintf(mnt, len, "%s", dir);
			break;
		}
	}
	if (f)
		fclose(f);
	if (!*mnt)
		tp_die("no cgroup2 mount");
}

static void check_ns_apart(const char *who, const char *kind)
{
	ino_t own = ns_ino("self", kind), host = ns_ino("1", kind);

	if (!own || own == host)
		tp_fail("%s: its %s namespace is PID 1's (inode %lu)", who, kind,
			(unsigned long)own);
}

static void check_names(const char *who, const char *host, const char *domain)
{
	struct utsname un;

	uname(&un);
	if (strcmp(un.nodename, host))
		tp_fail("%s: host name \"%s\", was \"%s\"", who, un.nodename, host);
	if (domain && strcmp(un.domainname, domain))
		tp_fail("%s: domain name \"%s\", was \"%s\"", who, un.domainname, domain);
	check_ns_apart(who, "uts");
}

/* The clocks went on from where they were, by no more than the wall clock
 * (a restore into the host's time namespace would take them 10 days back). */
static void check_clocks(const char *who, int64_t mono0, int64_t boot0, int64_t real0)
{
	int64_t mono = now(CLOCK_MONOTONIC), boot = now(CLOCK_BOOTTIME);
	int64_t real = now(CLOCK_REALTIME), slack = 5000000000LL;

	if (tp_sabotaged("clock"))
		mono -= MONO_AHEAD * 1000000000LL;
	if (mono < mono0 || mono - mono0 > real - real0 + slack)
		tp_fail("%s: CLOCK_MONOTONIC went from %lld to %lld ns in %lld ns of wall time",
			who, (long long)mono0, (long long)mono, (long long)(real - real0));
	if (boot < boot0 || boot - boot0 > real - real0 + slack)
		tp_fail("%s: CLOCK_BOOTTIME went from %lld to %lld ns in %lld ns of wall time", who,
			(long long)boot0, (long long)boot, (long long)(real - real0));
	check_ns_apart(who, "time");
}

int main(int argc, char **argv)
{
	char host[64], child_host[64], domain[64], mnt[1024], cgdir[2048], inner[2200], buf[4096];
	bool cg;
	int64_t mono0, boot0, real0;
	int sync[2], ready[2], status, fd;
	pid_t child;

	tp_init(argc, argv, 1, "GOFILE [cgroup]");
	cg = argc > 2 && !strcmp(argv[2], "cgroup");
	snprintf(host, sizeof(host), "stasis-ns-%d", (int)getpid());
	snprintf(child_host, sizeof(child_host), "stasis-ns-child-%d", (int)getpid());
	snprintf(domain, sizeof(domain), "domain-%d.example", (int)getpid());
	if (unshare(CLONE_NEWUTS | CLONE_NEWTIME))
		tp_die("unshare(CLONE_NEWUTS | CLONE_NEWTIME)");
	if (sethostname(host, strlen(host)) || setdomainname(domain, strlen(domain)))
		tp_die("sethostname");
	snprintf(buf, sizeof(buf), "monotonic %lld 0\nboottime %lld 0\n", MONO_AHEAD, BOOT_AHEAD);
	put("/proc/self/timens_offsets", buf);
	fd = open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWTIME))
		tp_die("setns(time_for_children)");
	close(fd);
	if (cg) {
		cgroup2_mount(mnt, sizeof(mnt));
		cgroup2_line(buf, sizeof(buf));
		snprintf(cgdir, sizeof(cgdir), "%.900s%.900s/stasis-ns-%d", mnt,
			 strcmp(buf, "/") ? buf : "", (int)getpid());
		snprintf(inner, sizeof(inner), "%.2048s/inner", cgdir);
		if (mkdir(cgdir, 0755) || mkdir(inner, 0755))
			tp_die("mkdir %s", inner);
		printf("CGDIR %s\n", cgdir);
		fflush(stdout);
	}
	if (pipe(sync) || pipe(ready))
		tp_die("pipe");
	child = fork();
	if (child < 0)
		tp_die("fork");
	if (child == 0) {
		char c;

		close(sync[1]);
		close(ready[0]);
		if (unshare(CLONE_NEWUTS) || sethostname(child_host, strlen(child_host)))
			tp_die("child: unshare(CLONE_NEWUTS)");
		/* moved into cgdir by the parent, it makes its namespace there */
		if (read(sync[0], &c, 1) != 1)
			tp_die("child: no word from the parent");
		if (cg) {
			if (unshare(CLONE_NEWCGROUP))
				tp_die("child: unshare(CLONE_NEWCGROUP)");
			snprintf(buf, sizeof(buf), "%s/cgroup.procs", inner);
			put(buf, "0");
			cgroup2_line(buf, sizeof(buf));
			if (strcmp(buf, "/inner"))
				tp_die("child: sees its cgroup as %s, not /inner", buf);
		}
		mono0 = now(CLOCK_MONOTONIC);
		boot0 = now(CLOCK_BOOTTIME);
		real0 = now(CLOCK_REALTIME);
		if (write(ready[1], "r", 1) != 1)
			tp_die("child: write");
		close(ready[1]);
		tp_wait_go();
		tp_pid = getpid();
		if (tp_sabotaged("child-hostname"))
			sethostname("elsewhere", 9);
		if (cg && tp_sabotaged("cgroup")) {
			snprintf(buf, sizeof(buf), "%s/cgroup.procs", cgdir);
			put(buf, "0");
		}
		check_names("child", child_host, domain);
		check_clocks("child", mono0, boot0, real0);
		if (cg) {
			cgroup2_line(buf, sizeof(buf));
			if (strcmp(buf, "/inner"))
				tp_fail("child: sees its cgroup as %s, was /inner", buf);
			check_ns_apart("child", "cgroup");
		}
		if (tp_nfail) {
			printf("FAIL: %s\n", tp_fails);
			fflush(stdout);
		}
		_exit(tp_nfail ? 1 : 0);
	}
	close(sync[0]);
	close(ready[1]);
	if (cg) {
		char num[16];

		snprintf(buf, sizeof(buf), "%s/cgroup.procs", cgdir);
		snprintf(num, sizeof(num), "%d", (int)child);
		put(buf, num);
	}
	if (write(sync[1], "g", 1) != 1)
		tp_die("write");
	close(sync[1]);
	/* READY once the child is set up */
	if (read(ready[0], buf, 1) != 1)
		tp_die("the child did not get ready");
	close(ready[0]);
	mono0 = now(CLOCK_MONOTONIC);
	boot0 = now(CLOCK_BOOTTIME);
	real0 = now(CLOCK_REALTIME);
	tp_ready();
	tp_wait_go();
	if (tp_sabotaged("hostname"))
		sethostname("elsewhere", 9);
	check_names("parent", host, domain);
	check_clocks("parent", mono0, boot0, real0);
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status))
		tp_fail("the child failed (status 0x%x)", status);
	if (cg && (rmdir(inner) || rmdir(cgdir)))
		tp_fail("cannot remove %s: %s", cgdir, strerror(errno));
	return tp_finish();
}
