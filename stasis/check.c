// SPDX-License-Identifier: GPL-2.0
/*
 * stasis check: does this kernel have what stasis needs? Every feature is
 * probed for real (the call is made and its effect checked), each in a
 * forked child so that a probe that unmaps the vDSO or installs a seccomp
 * filter cannot disturb the others, with a time limit.
 *
 * As in criu(8): category 1 features are required ("Does not look good."
 * without them), categories 2 (--extra) and 3 (--experimental) are needed
 * only for some trees or options ("Looks good but ...").
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/kcmp.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/prctl.h>
#include <linux/seccomp.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <linux/netlink_diag.h>
#include <linux/packet_diag.h>
#include <linux/userfaultfd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <asm/prctl.h>

#include "stasis/log.h"
#include "stasis/uffd.h" /* PAGEMAP_SCAN, newer than the system headers */
#include "stasis/util.h"

#include "check.h"
#include "commands.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef TCP_REPAIR
#define TCP_REPAIR 19
#endif

#define PROBE_TIMEOUT 10 /* seconds */
#define PM_SOFT_DIRTY (1ull << 55)
#define PM_PRESENT (1ull << 63)

/* A probe fills why (what went wrong) and returns -1 when the feature is missing. */
typedef int probe_fn(char *why, size_t len);

struct feature {
	const char *name;
	int cat; /* 1 required, 2 extra, 3 experimental */
	const char *what;
	const char *cost; /* what stasis cannot do without it */
	probe_fn *probe;
};

#define MISSING(...)                                 \
	do {                                         \
		snprintf(why, len, __VA_ARGS__);     \
		return -1;                           \
	} while (0)
#define MISSING_ERRNO(what)                                        \
	MISSING("%s: %s", what, strerror(errno))

static void *map_pages(size_t n)
{
	void *p = mmap(NULL, n * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* ---- ptrace ---- */

/* A child to trace: ready (and with an allow-all seccomp filter if asked)
 * before it is seized, then stopped by PTRACE_INTERRUPT. */
static pid_t tracee_start(unsigned long options, bool seccomp, char *why, size_t len)
{
	int p[2], st;
	pid_t pid;
	char c;

	if (pipe(p)) {
		snprintf(why, len, "pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(why, len, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		if (seccomp) {
			struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
			struct sock_fprog prog = {1, &allow};

			if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
			    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog))
				_exit(1);
		}
		(void)!write(p[1], "R", 1);
		for (;;)
			pause();
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1) {
		close(p[0]);
		waitpid(pid, NULL, 0);
		snprintf(why, len, "the test child could not set itself up");
		return -1;
	}
	close(p[0]);
	if (ptrace(PTRACE_SEIZE, pid, NULL, (void *)options)) {
		snprintf(why, len, "PTRACE_SEIZE: %s", strerror(errno));
		goto fail;
	}
	if (ptrace(PTRACE_INTERRUPT, pid, NULL, NULL)) {
		snprintf(why, len, "PTRACE_INTERRUPT: %s", strerror(errno));
		goto fail;
	}
	if (waitpid(pid, &st, __WALL) != pid || !WIFSTOPPED(st) ||
	    (st >> 16) != PTRACE_EVENT_STOP) {
		snprintf(why, len, "PTRACE_INTERRUPT did not stop the task (status %#x)", st);
		goto fail;
	}
	return pid;
fail:
	kill(pid, SIGKILL);
	waitpid(pid, NULL, __WALL);
	return -1;
}

static void tracee_end(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, __WALL);
}

static int probe_ptrace_seize(char *why, size_t len)
{
	pid_t pid = tracee_start(PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK, false, why, len);

	if (pid < 0)
		return -1;
	tracee_end(pid);
	return 0;
}

static int probe_ptrace_sigmask(char *why, size_t len)
{
	struct __ptrace_peeksiginfo_args args = {0, 0, 1};
	uint64_t mask;
	siginfo_t si;
	pid_t pid = tracee_start(0, false, why, len);
	int ret = 0;

	if (pid < 0)
		return -1;
	if (ptrace(PTRACE_GETSIGMASK, pid, (void *)sizeof(mask), &mask)) {
		snprintf(why, len, "PTRACE_GETSIGMASK: %s", strerror(errno));
		ret = -1;
	} else if (ptrace(PTRACE_PEEKSIGINFO, pid, &args, &si) < 0) {
		snprintf(why, len, "PTRACE_PEEKSIGINFO: %s", strerror(errno));
		ret = -1;
	}
	tracee_end(pid);
	return ret;
}

static int probe_rseq_conf(char *why, size_t len)
{
	struct {
		uint64_t ptr;
		uint32_t size, sig, flags, pad;
	} conf;
	pid_t pid = tracee_start(0, false, why, len);
	long r;

	if (pid < 0)
		return -1;
	r = ptrace(PTRACE_GET_RSEQ_CONFIGURATION, pid, (void *)sizeof(conf), &conf);
	tracee_end(pid);
	if (r < 0)
		MISSING_ERRNO("PTRACE_GET_RSEQ_CONFIGURATION");
	return 0;
}

static int probe_seccomp_suspend(char *why, size_t len)
{
	pid_t pid = tracee_start(PTRACE_O_SUSPEND_SECCOMP, false, why, len);

	if (pid < 0)
		return -1;
	tracee_end(pid);
	return 0;
}

static int probe_seccomp_filters(char *why, size_t len)
{
	pid_t pid = tracee_start(0, true, why, len);
	long n;

	if (pid < 0)
		return -1;
	n = ptrace(PTRACE_SECCOMP_GET_FILTER, pid, NULL, NULL);
	tracee_end(pid);
	if (n < 0)
		MISSING_ERRNO("PTRACE_SECCOMP_GET_FILTER");
	if (n != 1)
		MISSING("PTRACE_SECCOMP_GET_FILTER gave %ld instructions for a filter of 1", n);
	return 0;
}

/* ---- creating and rebuilding tasks ---- */

static int probe_clone3_set_tid(char *why, size_t len)
{
	/* Our own PID is taken: with set_tid working and allowed, the
	 * kernel says so (EEXIST) without creating anything. */
	pid_t tid = getpid();
	struct clone_args {
		uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
		    set_tid, set_tid_size, cgroup;
	} args = {.exit_signal = SIGCHLD, .set_tid = (uintptr_t)&tid, .set_tid_size = 1};
	long r = syscall(SYS_clone3, &args, sizeof(args));

	if (r == 0)
		_exit(0);
	if (r > 0) {
		waitpid(r, NULL, 0);
		MISSING("clone3 ignored set_tid (made PID %ld instead of failing)", r);
	}
	if (errno == EEXIST)
		return 0;
	if (errno == ENOSYS)
		MISSING("no clone3 system call");
	if (errno == E2BIG)
		MISSING("clone3 has no set_tid (Linux 5.5)");
	if (errno == EPERM)
		MISSING("clone3 set_tid needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN");
	MISSING_ERRNO("clone3 with set_tid");
}

/* Field n (1-based, as in proc(5)) of /proc/self/stat. */
static int stat_fields(unsigned long long *v, const int *fields, int nr)
{
	char buf[4096], *p;
	ssize_t n;
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC), field = 3;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p)
		return -1;
	for (p += 2; *p; field++) {
		for (int i = 0; i < nr; i++)
			if (fields[i] == field)
				v[i] = strtoull(p, NULL, 10);
		p = strchr(p, ' ');
		if (!p)
			break;
		p++;
	}
	return 0;
}

static int probe_mm_map(char *why, size_t len)
{
	static const int fields[] = {26, 27, 45, 46, 47, 28, 48, 49, 50, 51};
	unsigned long long v[ARRAY_SIZE(fields)] = {0};
	uint64_t auxv[128];
	struct prctl_mm_map map;
	unsigned int size = 0;
	ssize_t n;
	int fd;

	if (prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, &size, 0, 0))
		MISSING_ERRNO("PR_SET_MM_MAP_SIZE");
	if (size != sizeof(map))
		MISSING("PR_SET_MM_MAP_SIZE says %u bytes, not %zu", size, sizeof(map));
	fd = open("/proc/self/auxv", O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, auxv, sizeof(auxv));
	if (fd >= 0)
		close(fd);
	if (n <= 0 || stat_fields(v, fields, ARRAY_SIZE(fields)))
		MISSING("cannot read /proc/self/auxv and /proc/self/stat");
	/* the current values: the call must accept them and change nothing */
	map = (struct prctl_mm_map){
	    .start_code = v[0], .end_code = v[1], .start_data = v[2], .end_data = v[3],
	    .start_brk = v[4], .brk = syscall(SYS_brk, 0), .start_stack = v[5], .arg_start = v[6],
	    .arg_end = v[7], .env_start = v[8], .env_end = v[9], .auxv = (__u64 *)auxv,
	    .auxv_size = n, .exe_fd = (__u32)-1,
	};
	if (prctl(PR_SET_MM, PR_SET_MM_MAP, &map, sizeof(map), 0))
		MISSING_ERRNO("PR_SET_MM_MAP");
	return 0;
}

/* The [vvar], [vvar_vclock] and [vdso] block of this process. */
static int vdso_block(unsigned long *start, unsigned long *end)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];

	*start = ~0ul;
	*end = 0;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;

		if (!strstr(line, "[vdso]") && !strstr(line, "[vvar]") &&
		    !strstr(line, "[vvar_vclock]"))
			continue;
		if (sscanf(line, "%lx-%lx", &s, &e) != 2)
			continue;
		if (s < *start)
			*start = s;
		if (e > *end)
			*end = e;
	}
	fclose(f);
	return *end ? 0 : -1;
}

/* Runs in the probe's own child: nothing here may use the vDSO once it is
 * gone (no clock_gettime, only system calls and string functions). */
static int probe_vdso_map(char *why, size_t len)
{
	unsigned long start, end, s2, e2;
	long r;

	if (vdso_block(&start, &end))
		MISSING("this process has no vDSO");
	if (syscall(SYS_munmap, start, end - start))
		MISSING_ERRNO("munmap of the vDSO");
	r = syscall(SYS_arch_prctl, ARCH_MAP_VDSO_64, start);
	if (r < 0)
		MISSING_ERRNO("arch_prctl(ARCH_MAP_VDSO_64)");
	if (vdso_block(&s2, &e2) || s2 != start || e2 != end)
		MISSING("ARCH_MAP_VDSO_64 mapped the vDSO elsewhere (%#lx-%#lx, asked %#lx-%#lx)",
			s2, e2, start, end);
	return 0;
}

/* ---- looking at a task from the outside ---- */

static int probe_pidfd(char *why, size_t len)
{
	int p[2], pidfd, fd;
	struct stat a, b;

	if (pipe(p))
		MISSING_ERRNO("pipe");
	pidfd = syscall(SYS_pidfd_open, getpid(), 0);
	if (pidfd < 0)
		MISSING_ERRNO("pidfd_open");
	fd = syscall(SYS_pidfd_getfd, pidfd, p[0], 0);
	if (fd < 0)
		MISSING_ERRNO("pidfd_getfd");
	if (fstat(fd, &a) || fstat(p[0], &b) || a.st_ino != b.st_ino)
		MISSING("pidfd_getfd gave another file");
	return 0;
}

static int probe_kcmp(char *why, size_t len)
{
	int p[2], d;
	pid_t me = getpid();

	if (pipe(p) || (d = dup(p[0])) < 0)
		MISSING_ERRNO("pipe");
	if (syscall(SYS_kcmp, me, me, KCMP_FILE, p[0], d) != 0)
		MISSING("kcmp(KCMP_FILE) does not see a dup as the same file%s%s",
			errno ? ": " : "", errno ? strerror(errno) : "");
	if (syscall(SYS_kcmp, me, me, KCMP_FILE, p[0], p[1]) <= 0)
		MISSING("kcmp(KCMP_FILE) sees two ends of a pipe as one file");
	return 0;
}

static int probe_kcmp_epoll(char *why, size_t len)
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct kcmp_epoll_slot slot;
	int p[2], ep;
	pid_t me = getpid();

	if (pipe(p) || (ep = epoll_create1(0)) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev))
		MISSING_ERRNO("epoll");
	slot = (struct kcmp_epoll_slot){.efd = ep, .tfd = p[0], .toff = 0};
	if (syscall(SYS_kcmp, me, me, KCMP_EPOLL_TFD, p[0], &slot) != 0)
		MISSING_ERRNO("kcmp(KCMP_EPOLL_TFD)");
	return 0;
}

static int probe_map_files(char *why, size_t len)
{
	char path[128], target[256];
	unsigned long s, e;
	FILE *f = fopen("/proc/self/maps", "re");
	int fd;

	if (!f || fscanf(f, "%lx-%lx", &s, &e) != 2) {
		if (f)
			fclose(f);
		MISSING("cannot read /proc/self/maps");
	}
	fclose(f);
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", s, e);
	if (readlink(path, target, sizeof(target)) < 0)
		MISSING_ERRNO(path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		MISSING_ERRNO(path);
	close(fd);
	return 0;
}

static uint64_t pagemap_entry(int fd, void *addr)
{
	uint64_t e = 0;

	if (pread(fd, &e, 8, (uintptr_t)addr / PAGE_SIZE * 8) != 8)
		return 0;
	return e;
}

static int probe_pagemap(char *why, size_t len)
{
	volatile char *m = map_pages(1);
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		MISSING_ERRNO("/proc/self/pagemap");
	if (!m)
		MISSING_ERRNO("mmap");
	if (pagemap_entry(fd, (void *)m) & PM_PRESENT)
		MISSING("an untouched page shows as present");
	m[0] = 1;
	if (!(pagemap_entry(fd, (void *)m) & PM_PRESENT))
		MISSING("a written page does not show as present");
	return 0;
}

static int probe_proc_mem(char *why, size_t len)
{
	static volatile long target;
	long v = 0x5eed;
	int fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		MISSING_ERRNO("/proc/self/mem");
	if (pwrite(fd, &v, sizeof(v), (uintptr_t)&target) != sizeof(v))
		MISSING_ERRNO("writing /proc/self/mem");
	if (target != v)
		MISSING("a write through /proc/self/mem did not land");
	return 0;
}

/* ---- memory tracking ---- */

static long pagemap_scan(int fd, void *start, size_t pages, uint64_t flags, uint64_t mask,
			 struct page_region *vec, size_t nvec)
{
	struct pm_scan_arg arg = {
	    .size = sizeof(arg),
	    .flags = flags,
	    .start = (uintptr_t)start,
	    .end = (uintptr_t)start + pages * PAGE_SIZE,
	    .vec = (uintptr_t)vec,
	    .vec_len = nvec,
	    .category_mask = mask,
	    .return_mask = mask,
	};

	return ioctl(fd, PAGEMAP_SCAN, &arg);
}

static int probe_pagemap_scan(char *why, size_t len)
{
	struct page_region r[4];
	char *m = map_pages(4);
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	long n;

	if (fd < 0 || !m)
		MISSING_ERRNO("pagemap");
	m[0] = m[PAGE_SIZE] = 1;
	n = pagemap_scan(fd, m, 4, 0, PAGE_IS_PRESENT, r, 4);
	if (n < 0)
		MISSING_ERRNO("ioctl(PAGEMAP_SCAN)");
	if (n != 1 || r[0].start != (uintptr_t)m || r[0].end != (uintptr_t)m + 2 * PAGE_SIZE)
		MISSING("PAGEMAP_SCAN did not report the two present pages");
	return 0;
}

static int uffd_open(uint64_t features, char *why, size_t len)
{
	struct uffdio_api api = {.api = UFFD_API, .features = features};
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0) {
		snprintf(why, len, "userfaultfd: %s", strerror(errno));
		return -1;
	}
	if (ioctl(fd, UFFDIO_API, &api)) {
		snprintf(why, len, "UFFDIO_API (features %#llx): %s", (unsigned long long)features,
			 strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int probe_uffd(char *why, size_t len)
{
	struct uffdio_register reg;
	char *m = map_pages(1);
	int fd = uffd_open(0, why, len);

	if (fd < 0)
		return -1;
	reg = (struct uffdio_register){{(uintptr_t)m, PAGE_SIZE}, UFFDIO_REGISTER_MODE_MISSING, 0};
	if (ioctl(fd, UFFDIO_REGISTER, &reg))
		MISSING_ERRNO("UFFDIO_REGISTER (missing pages)");
	return 0;
}

static int probe_uffd_noncoop(char *why, size_t len)
{
	int fd = uffd_open(UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP |
			       UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP,
			   why, len);

	return fd < 0 ? -1 : 0;
}

/* Dirty tracking as incremental dumps do it: write-protect everything
 * with PAGEMAP_SCAN, write one page, find exactly that one. */
static int probe_uffd_wp_async(char *why, size_t len)
{
	struct uffdio_register reg;
	struct page_region r[4];
	char *m = map_pages(4);
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	/* what collect/track.c asks for: async protection and mremap events */
	int fd = uffd_open(UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_EVENT_REMAP, why, len);
	long n;

	if (fd < 0)
		return -1;
	if (pm < 0 || !m)
		MISSING_ERRNO("pagemap");
	memset(m, 1, 4 * PAGE_SIZE);
	reg = (struct uffdio_register){{(uintptr_t)m, 4 * PAGE_SIZE}, UFFDIO_REGISTER_MODE_WP, 0};
	if (ioctl(fd, UFFDIO_REGISTER, &reg))
		MISSING_ERRNO("UFFDIO_REGISTER (write-protect)");
	if (pagemap_scan(pm, m, 4, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC, PAGE_IS_WRITTEN,
			 r, 4) < 0)
		MISSING_ERRNO("PAGEMAP_SCAN write-protecting");
	m[2 * PAGE_SIZE] = 2;
	n = pagemap_scan(pm, m, 4, 0, PAGE_IS_WRITTEN, r, 4);
	if (n < 0)
		MISSING_ERRNO("PAGEMAP_SCAN");
	if (n != 1 || r[0].start != (uintptr_t)m + 2 * PAGE_SIZE ||
	    r[0].end != (uintptr_t)m + 3 * PAGE_SIZE)
		MISSING("the one page written after write-protection was not the one reported");
	return 0;
}

static void *write_page(void *p)
{
	*(volatile char *)p = 2;
	return NULL;
}

/* What collect/bgsnap.c needs: a write to a protected page waits for us. */
static int probe_uffd_wp_sync(char *why, size_t len)
{
	struct uffdio_register reg;
	struct uffdio_writeprotect wp;
	struct uffd_msg msg;
	struct pollfd p;
	pthread_t writer;
	char *m = map_pages(4);
	int fd = uffd_open(UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE |
				   UFFD_FEATURE_EVENT_UNMAP,
			   why, len);

	if (fd < 0)
		return -1;
	if (!m)
		MISSING_ERRNO("mmap");
	memset(m, 1, 4 * PAGE_SIZE);
	reg = (struct uffdio_register){{(uintptr_t)m, 4 * PAGE_SIZE}, UFFDIO_REGISTER_MODE_WP, 0};
	if (ioctl(fd, UFFDIO_REGISTER, &reg))
		MISSING_ERRNO("UFFDIO_REGISTER (write-protect)");
	wp = (struct uffdio_writeprotect){{(uintptr_t)m, 4 * PAGE_SIZE}, UFFDIO_WRITEPROTECT_MODE_WP};
	if (ioctl(fd, UFFDIO_WRITEPROTECT, &wp))
		MISSING_ERRNO("UFFDIO_WRITEPROTECT");
	if (pthread_create(&writer, NULL, write_page, m + PAGE_SIZE))
		MISSING("cannot start a thread");
	p = (struct pollfd){fd, POLLIN, 0};
	if (poll(&p, 1, 2000) != 1 || read(fd, &msg, sizeof(msg)) != sizeof(msg))
		MISSING("a write to a write-protected page was not reported");
	if (msg.event != UFFD_EVENT_PAGEFAULT || !(msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) ||
	    (msg.arg.pagefault.address & ~(uint64_t)(PAGE_SIZE - 1)) != (uintptr_t)m + PAGE_SIZE)
		MISSING("the write fault reported is not the one made");
	if (m[PAGE_SIZE] != 1)
		MISSING("the write went through before it was answered");
	wp.mode = 0;
	if (ioctl(fd, UFFDIO_WRITEPROTECT, &wp))
		MISSING_ERRNO("UFFDIO_WRITEPROTECT (removing the protection)");
	pthread_join(writer, NULL);
	if (m[PAGE_SIZE] != 2)
		MISSING("the write was lost");
	return 0;
}

static int probe_soft_dirty(char *why, size_t len)
{
	char *m = map_pages(1);
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	int cr = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);

	if (pm < 0 || cr < 0 || !m)
		MISSING_ERRNO("pagemap or clear_refs");
	m[0] = 1;
	if (write(cr, "4", 1) != 1)
		MISSING_ERRNO("clearing soft-dirty bits");
	if (pagemap_entry(pm, m) & PM_SOFT_DIRTY)
		MISSING("clear_refs did not clear the soft-dirty bit");
	m[0] = 2;
	if (!(pagemap_entry(pm, m) & PM_SOFT_DIRTY))
		MISSING("no soft-dirty bit after a write (CONFIG_MEM_SOFT_DIRTY is off)");
	return 0;
}

static int probe_madv_populate(char *why, size_t len)
{
	char *m = map_pages(4);
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	if (!m || pm < 0)
		MISSING_ERRNO("mmap");
	if (madvise(m, 4 * PAGE_SIZE, MADV_POPULATE_WRITE))
		MISSING_ERRNO("madvise(MADV_POPULATE_WRITE)");
	if (!(pagemap_entry(pm, m + 3 * PAGE_SIZE) & PM_PRESENT))
		MISSING("MADV_POPULATE_WRITE left a page absent");
	return 0;
}

/* ---- files, sockets, namespaces ---- */

static int probe_memfd(char *why, size_t len)
{
	int fd = memfd_create("stasis-check", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		MISSING_ERRNO("memfd_create");
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_GROW) || fcntl(fd, F_GET_SEALS) != F_SEAL_GROW)
		MISSING_ERRNO("memfd seals");
	return 0;
}

static int probe_unix_diag(char *why, size_t len)
{
	struct {
		struct nlmsghdr nlh;
		struct unix_diag_req r;
	} req = {
	    .nlh = {.nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
		    .nlmsg_flags = NLM_F_REQUEST},
	    .r = {.sdiag_family = AF_UNIX, .udiag_states = ~0u, .udiag_show = UDIAG_SHOW_PEER,
		  .udiag_cookie = {INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE}},
	};
	long buf[1024];
	struct nlmsghdr *nlh = (void *)buf;
	struct stat a, b;
	int sk[2], nl;
	ssize_t n;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sk) || fstat(sk[0], &a) || fstat(sk[1], &b))
		MISSING_ERRNO("socketpair");
	nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
		MISSING_ERRNO("NETLINK_SOCK_DIAG socket");
	req.r.udiag_ino = a.st_ino;
	if (send(nl, &req, sizeof(req), 0) != sizeof(req))
		MISSING_ERRNO("sending a unix sock_diag request");
	n = recv(nl, buf, sizeof(buf), 0);
	if (n < 0)
		MISSING_ERRNO("reading the sock_diag answer");
	if (!NLMSG_OK(nlh, n))
		MISSING("malformed sock_diag answer");
	if (nlh->nlmsg_type == NLMSG_ERROR) {
		struct nlmsgerr *e = NLMSG_DATA(nlh);

		MISSING("unix sock_diag: %s (CONFIG_UNIX_DIAG)", strerror(-e->error));
	}
	if (nlh->nlmsg_type == SOCK_DIAG_BY_FAMILY) {
		struct unix_diag_msg *m = NLMSG_DATA(nlh);
		struct rtattr *rta = (void *)(m + 1);
		int alen = nlh->nlmsg_len - NLMSG_LENGTH(sizeof(*m));

		for (; RTA_OK(rta, alen); rta = RTA_NEXT(rta, alen))
			if (rta->rta_type == UNIX_DIAG_PEER &&
			    *(uint32_t *)RTA_DATA(rta) == (uint32_t)b.st_ino)
				return 0;
	}
	MISSING("unix sock_diag did not name the peer of a socket pair");
}

/*
 * Sends a sock_diag dump request (req, reqlen bytes) and looks for a reply
 * whose inode (a u32 at ino_off in the family's message) is ino: 1 found,
 * 0 not, -1 with errno set.
 */
static int diag_dump_finds(const void *req, size_t reqlen, size_t ino_off, uint32_t ino)
{
	struct {
		struct nlmsghdr nlh;
		char req[64];
	} msg = {.nlh = {.nlmsg_len = NLMSG_LENGTH(reqlen), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP}};
	static long buf[8192];
	int nl, found = 0;

	memcpy(msg.req, req, reqlen);
	nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0 || send(nl, &msg, msg.nlh.nlmsg_len, 0) < 0)
		return -1;
	for (;;) {
		ssize_t n = recv(nl, buf, sizeof(buf), 0);
		struct nlmsghdr *h = (void *)buf;

		if (n <= 0)
			return -1;
		for (; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE)
				return found;
			if (h->nlmsg_type == NLMSG_ERROR) {
				errno = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
				return -1;
			}
			if (h->nlmsg_len >= NLMSG_LENGTH(ino_off + 4) &&
			    *(uint32_t *)((char *)NLMSG_DATA(h) + ino_off) == ino)
				found = 1;
		}
	}
}

static int probe_packet_diag(char *why, size_t len)
{
	struct packet_diag_req r = {.sdiag_family = AF_PACKET,
				    .pdiag_show = PACKET_SHOW_INFO | PACKET_SHOW_RING_CFG};
	int s = socket(AF_PACKET, SOCK_RAW, 0), ret;
	struct stat st;

	if (s < 0 || fstat(s, &st))
		MISSING_ERRNO("AF_PACKET socket");
	ret = diag_dump_finds(&r, sizeof(r), offsetof(struct packet_diag_msg, pdiag_ino),
			      st.st_ino);
	if (ret < 0)
		MISSING("packet sock_diag: %s (CONFIG_PACKET_DIAG)", strerror(errno));
	if (!ret)
		MISSING("packet sock_diag did not list a packet socket");
	return 0;
}

static int probe_netlink_diag(char *why, size_t len)
{
	struct netlink_diag_req r = {.sdiag_family = AF_NETLINK,
				     .sdiag_protocol = NDIAG_PROTO_ALL,
				     .ndiag_show = NDIAG_SHOW_GROUPS | NDIAG_SHOW_MEMINFO};
	struct sockaddr_nl a = {.nl_family = AF_NETLINK};
	int s = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE), ret;
	struct stat st;

	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) || fstat(s, &st))
		MISSING_ERRNO("bound netlink socket");
	ret = diag_dump_finds(&r, sizeof(r), offsetof(struct netlink_diag_msg, ndiag_ino),
			      st.st_ino);
	if (ret < 0)
		MISSING("netlink sock_diag: %s (CONFIG_NETLINK_DIAG)", strerror(errno));
	if (!ret)
		MISSING("netlink sock_diag did not list a bound netlink socket");
	return 0;
}

static int probe_tcp_repair(char *why, size_t len)
{
	int one = 1, s = socket(AF_INET, SOCK_STREAM, 0);

	if (s < 0)
		MISSING_ERRNO("socket");
	if (setsockopt(s, IPPROTO_TCP, TCP_REPAIR, &one, sizeof(one)))
		MISSING_ERRNO("TCP_REPAIR");
	return 0;
}

static int probe_timens(char *why, size_t len)
{
	int fd;

	if (access("/proc/self/ns/time", F_OK))
		MISSING("no time namespaces (/proc/self/ns/time)");
	if (unshare(CLONE_NEWTIME))
		MISSING_ERRNO("unshare(CLONE_NEWTIME)");
	fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "monotonic 1 0", 13) != 13)
		MISSING_ERRNO("setting /proc/self/timens_offsets");
	return 0;
}

/* clang-format off */
static const struct feature features[] = {
	{ "ptrace_seize", 1, "PTRACE_SEIZE and PTRACE_INTERRUPT",
	  "no tree can be frozen", probe_ptrace_seize },
	{ "ptrace_sigmask", 1, "PTRACE_GETSIGMASK and PTRACE_PEEKSIGINFO",
	  "blocked and pending signals cannot be dumped", probe_ptrace_sigmask },
	{ "get_rseq_conf", 1, "PTRACE_GET_RSEQ_CONFIGURATION",
	  "threads registered with rseq (every glibc thread) cannot be dumped",
	  probe_rseq_conf },
	{ "proc_mem", 1, "writing another task's memory through /proc/PID/mem",
	  "no remote system call, no restore", probe_proc_mem },
	{ "pagemap", 1, "/proc/PID/pagemap present bits",
	  "the pages to dump cannot be found", probe_pagemap },
	{ "map_files", 1, "/proc/PID/map_files",
	  "mappings of deleted or replaced files cannot be dumped", probe_map_files },
	{ "pidfd", 1, "pidfd_open and pidfd_getfd",
	  "the dumped tree's files cannot be looked at", probe_pidfd },
	{ "kcmp", 1, "kcmp(KCMP_FILE)",
	  "descriptors sharing one open file cannot be told apart from copies", probe_kcmp },
	{ "clone3_set_tid", 1, "clone3 with set_tid",
	  "tasks cannot be restored with their PIDs", probe_clone3_set_tid },
	{ "mm_map", 1, "prctl(PR_SET_MM, PR_SET_MM_MAP)",
	  "the memory layout fields (brk, stack, arguments, auxv) cannot be restored",
	  probe_mm_map },
	{ "vdso_map", 1, "arch_prctl(ARCH_MAP_VDSO_64)",
	  "the vDSO cannot be put back where the dumped task had it", probe_vdso_map },
	{ "seccomp_suspend", 2, "PTRACE_O_SUSPEND_SECCOMP",
	  "tasks with a seccomp filter cannot be dumped or restored", probe_seccomp_suspend },
	{ "seccomp_filters", 2, "PTRACE_SECCOMP_GET_FILTER",
	  "seccomp filters cannot be dumped", probe_seccomp_filters },
	{ "soft_dirty", 2, "soft-dirty bits in /proc/PID/pagemap",
	  "dirty pages are tracked with PAGEMAP_SCAN and userfaultfd write-protection instead",
	  probe_soft_dirty },
	{ "pagemap_scan", 2, "the PAGEMAP_SCAN ioctl",
	  "the pages to dump are found one pagemap entry at a time (slower)",
	  probe_pagemap_scan },
	{ "uffd_wp_async", 2, "userfaultfd asynchronous write-protection with PAGEMAP_SCAN",
	  "no memory tracking: pre-dump and dump --track-mem are refused (every dump copies all "
	  "the memory)",
	  probe_uffd_wp_async },
	{ "uffd_wp_sync", 2, "userfaultfd write-protection with write faults, remap, remove and "
	  "unmap events",
	  "no background snapshot: dump -R and pre-dump keep the tree frozen while its memory is "
	  "copied", probe_uffd_wp_sync },
	{ "uffd", 2, "userfaultfd for missing pages",
	  "no lazy (post-copy) restore", probe_uffd },
	{ "memfd", 2, "memfd_create with seals",
	  "memfd files cannot be restored", probe_memfd },
	{ "unix_diag", 2, "NETLINK_SOCK_DIAG for unix sockets",
	  "trees with unix sockets cannot be dumped (their peers cannot be found)",
	  probe_unix_diag },
	{ "packet_diag", 2, "NETLINK_SOCK_DIAG for packet sockets",
	  "trees with packet sockets cannot be dumped", probe_packet_diag },
	{ "netlink_diag", 2, "NETLINK_SOCK_DIAG for netlink sockets",
	  "trees with netlink sockets cannot be dumped", probe_netlink_diag },
	{ "kcmp_epoll", 2, "kcmp(KCMP_EPOLL_TFD)",
	  "epoll targets cannot be matched with the tree's descriptors", probe_kcmp_epoll },
	{ "tcp_repair", 2, "TCP_REPAIR",
	  "established TCP connections cannot be dumped", probe_tcp_repair },
	{ "timens", 2, "time namespaces",
	  "restored clocks (CLOCK_MONOTONIC, CLOCK_BOOTTIME) are those of the new boot",
	  probe_timens },
	{ "uffd_noncoop", 3, "userfaultfd fork, remap, remove and unmap events",
	  "no lazy restore of trees that fork or remap memory while pages arrive",
	  probe_uffd_noncoop },
	{ "madv_populate", 3, "madvise(MADV_POPULATE_WRITE)",
	  "restored memory is populated one fault at a time", probe_madv_populate },
};
/* clang-format on */

static const char *const cat_names[] = {"", "required", "extra", "experimental"};

/* Runs one probe in a child with a time limit; why says what is missing. */
static int run_probe(const struct feature *f, char *why, size_t len)
{
	int p[2], status;
	ssize_t n = 0, r;
	pid_t pid;

	why[0] = '\0';
	if (pipe2(p, O_CLOEXEC)) {
		snprintf(why, len, "cannot run the probe: pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(why, len, "cannot run the probe: fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		char msg[256] = "";
		int ret;

		close(p[0]);
		alarm(PROBE_TIMEOUT);
		ret = f->probe(msg, sizeof(msg));
		if (ret)
			(void)!write(p[1], msg, strlen(msg));
		_exit(ret ? 1 : 0);
	}
	close(p[1]);
	while (n < (ssize_t)len - 1 && (r = read(p[0], why + n, len - 1 - n)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		n += r;
	}
	why[n] = '\0';
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			snprintf(why, len, "cannot wait for the probe: %s", strerror(errno));
			return -1;
		}
	if (WIFSIGNALED(status)) {
		snprintf(why, len, WTERMSIG(status) == SIGALRM ? "the probe took over %d s"
							      : "the probe was killed by signal %d",
			 WTERMSIG(status) == SIGALRM ? PROBE_TIMEOUT : WTERMSIG(status));
		return -1;
	}
	if (WEXITSTATUS(status) && !why[0])
		snprintf(why, len, "the probe failed");
	return WEXITSTATUS(status) ? -1 : 0;
}

static void report_missing(const struct feature *f, const char *why)
{
	printf("%s is missing (%s: %s): %s\n", f->name, f->what, why, f->cost);
}

static const struct feature *find_feature(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(features); i++)
		if (!strcmp(features[i].name, name))
			return &features[i];
	return NULL;
}

int check_run(const struct check_opts *c)
{
	bool missing[4] = {false};
	char why[256];

	if (c->feature && !strcmp(c->feature, "list")) {
		for (size_t i = 0; i < ARRAY_SIZE(features); i++)
			printf("%-16s %-12s %s\n", features[i].name, cat_names[features[i].cat],
			       features[i].what);
		return 0;
	}
	if (geteuid())
		pr_warn("not running as root: features that need privileges will look missing");
	if (c->feature) {
		const struct feature *f = find_feature(c->feature);

		if (!f) {
			pr_err("unknown feature '%s' (see: stasis check --feature list)", c->feature);
			return 1;
		}
		if (run_probe(f, why, sizeof(why))) {
			report_missing(f, why);
			return 1;
		}
		printf("%s is supported\n", f->name);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(features); i++) {
		const struct feature *f = &features[i];

		if ((f->cat == 2 && !c->extra) || (f->cat == 3 && !c->experimental))
			continue;
		if (run_probe(f, why, sizeof(why))) {
			report_missing(f, why);
			missing[f->cat] = true;
		} else {
			pr_info("%s: supported (%s)", f->name, f->what);
		}
	}
	fflush(stdout);
	if (missing[1]) {
		printf("Does not look good.\n");
		return 1;
	}
	if (missing[2] || missing[3]) {
		printf("Looks good but some kernel features are missing\n"
		       "which, depending on your process tree, may cause\n"
		       "dump or restore failure.\n");
		return 2;
	}
	printf("Looks good.\n");
	return 0;
}

/* stasis check; -o is relative to -W if given. */
int cmd_check(const struct fe_opts *o)
{
	struct check_opts c = {
	    .extra = o->flag[F_CHECK_EXTRA] || o->flag[F_CHECK_ALL],
	    .experimental = o->flag[F_CHECK_EXPERIMENTAL] || o->flag[F_CHECK_ALL],
	    .feature = o->str[S_FEATURE],
	};
	char *wdir = NULL, *log = NULL;
	int ret = 1;

	if (o->str[S_WORK_DIR] && !(wdir = fe_work_dir(o, ".")))
		return 1;
	log = fe_in_dir(wdir ? wdir : ".", o->str[S_LOG_FILE]);
	if (!fe_open_log(log, o))
		ret = check_run(&c);
	free(log);
	free(wdir);
	return ret;
}
