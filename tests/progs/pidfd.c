/* pidfd GOFILE [outside|reaped]
 *
 * pidfds of tasks of the tree:
 *   of a child (PIDFD_NONBLOCK), watched by an epoll;
 *   of itself, dup'ed to a second number and inherited by the child (one
 *     description in two tasks);
 *   of one of its threads (PIDFD_THREAD);
 *   of a child that exited with status 7 and was not reaped (a zombie);
 *   and a descriptor of the child obtained with pidfd_getfd (the child's
 *     end of a pipe).
 * After GO: fdinfo (flags, Pid) reads as before for each; the child still
 * shares the description of the self pidfd (kcmp); a signal sent through
 * the thread's pidfd (PIDFD_SIGNAL_THREAD) reaches that thread; the epoll
 * reports nothing until the child is killed through its pidfd, then the
 * pidfd's event; waitid(P_PIDFD) gives the child's SIGKILL and the
 * zombie's status 7; data written to the pipe reads from the fetched fd.
 * outside: a pidfd of the parent (outside the tree), which the dump must
 * refuse; only the pidfd's fdinfo is checked then.
 * reaped: pidfds of two children that exited (5, SIGTERM) and were reaped:
 * fdinfo, exit statuses (PIDFD_INFO_EXIT), one inode for the pidfds of one
 * task and two for two tasks, ESRCH from pidfd_send_signal.
 */
#include "testprog.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/kcmp.h>

#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif
#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif
#ifndef PIDFD_SIGNAL_THREAD
#define PIDFD_SIGNAL_THREAD (1UL << 0)
#endif

static int pidfd_open(pid_t pid, unsigned flags)
{
	return syscall(SYS_pidfd_open, pid, flags);
}

static volatile pid_t worker_tid, hit_tid;

static void on_usr1(int sig)
{
	(void)sig;
	hit_tid = syscall(SYS_gettid);
}

static void *worker(void *arg)
{
	(void)arg;
	worker_tid = syscall(SYS_gettid);
	for (;;)
		pause();
	return NULL;
}

/* The "flags:" and "Pid:" lines of fd's fdinfo, as one string. */
static void fdinfo_of(int fd, char *out, size_t n)
{
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	out[0] = 0;
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "flags:", 6) || !strncmp(line, "Pid:", 4))
			strncat(out, line, n - strlen(out) - 1);
	fclose(f);
}

#define NFDS 6

#ifndef PIDFD_GET_INFO
struct pidfd_info {
	uint64_t mask;
	uint64_t cgroupid;
	uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
	int32_t exit_code;
};
#define PIDFD_GET_INFO _IOWR(0xFF, 11, struct pidfd_info)
#define PIDFD_INFO_EXIT (1UL << 3)
#endif

static ino_t ino_of(int fd)
{
	struct stat st;

	return fstat(fd, &st) ? 0 : st.st_ino;
}

/* The wait status the kernel kept for the reaped task of pidfd fd, or -1. */
static int exit_of(int fd)
{
	struct pidfd_info info = { .mask = PIDFD_INFO_EXIT };

	if (ioctl(fd, PIDFD_GET_INFO, &info) || !(info.mask & PIDFD_INFO_EXIT))
		return -1;
	return info.exit_code;
}

/*
 * reaped: two pidfds (one PIDFD_NONBLOCK) of a child that exited with 5,
 * one of a child killed by SIGTERM, both reaped.
 */
static int reaped(int argc, char **argv)
{
	int fds[3], st[3], status, hold[2];
	char before[3][256], now[256];
	ino_t ino[3];
	pid_t a, b;

	(void)argc;
	(void)argv;
	if (pipe(hold))
		tp_die("pipe");
	a = fork();
	if (a == 0) {
		char c;

		close(hold[1]);
		/* until the parent holds its pidfds */
		while (read(hold[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(5);
	}
	close(hold[0]);
	b = fork();
	if (b == 0)
		for (;;)
			pause();
	fds[0] = pidfd_open(a, 0);
	fds[1] = pidfd_open(a, PIDFD_NONBLOCK);
	fds[2] = pidfd_open(b, 0);
	if (fds[0] < 0 || fds[1] < 0 || fds[2] < 0)
		tp_die("pidfd_open");
	close(hold[1]);
	kill(b, SIGTERM);
	if (waitpid(a, &status, 0) != a || waitpid(b, &status, 0) != b)
		tp_die("waitpid");
	for (int i = 0; i < 3; i++) {
		fdinfo_of(fds[i], before[i], sizeof(before[i]));
		ino[i] = ino_of(fds[i]);
		st[i] = exit_of(fds[i]);
	}
	tp_ready();
	tp_wait_go();
	if (tp_sabotaged("pidfd-reaped"))
		dup2(fds[2], fds[1]);
	for (int i = 0; i < 3; i++) {
		fdinfo_of(fds[i], now, sizeof(now));
		if (strcmp(now, before[i]))
			tp_fail("fdinfo of reaped pidfd %d is '%s', was '%s'", i, now, before[i]);
		if (exit_of(fds[i]) != st[i])
			tp_fail("reaped pidfd %d: exit status %#x, was %#x", i, exit_of(fds[i]),
				st[i]);
		if (syscall(SYS_pidfd_send_signal, fds[i], 0, NULL, 0) != -1 || errno != ESRCH)
			tp_fail("reaped pidfd %d: pidfd_send_signal did not say ESRCH", i);
	}
	if (ino[0] != ino[1] || ino_of(fds[0]) != ino_of(fds[1]))
		tp_fail("the two pidfds of one reaped task are not one inode");
	if (ino_of(fds[0]) == ino_of(fds[2]))
		tp_fail("the pidfds of two reaped tasks are one inode");
	if (st[0] != 5 << 8 || st[2] != SIGTERM)
		tp_fail("exit statuses at the dump were %#x and %#x", st[0], st[2]);
	return tp_finish();
}

int main(int argc, char **argv)
{
	const char *mode = argc > 2 ? argv[2] : "";
	int fds[NFDS], ep, pfd[2], fetched, self2;
	char before[NFDS][256], now[256];
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0x71d };
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	pid_t child, zombie;
	pthread_t th;
	siginfo_t si;
	uint64_t v = 0;
	int n = 0;

	tp_init(argc, argv, 1, "GOFILE [outside|reaped]");
	signal(SIGUSR1, on_usr1);
	if (!strcmp(mode, "reaped"))
		return reaped(argc, argv);
	if (!strcmp(mode, "outside")) {
		pid_t c = getppid();

		fds[0] = pidfd_open(c, 0);
		if (fds[0] < 0)
			tp_die("pidfd_open %d", c);
		fdinfo_of(fds[0], before[0], sizeof(before[0]));
		tp_ready();
		tp_wait_go();
		fdinfo_of(fds[0], now, sizeof(now));
		if (strcmp(now, before[0]))
			tp_fail("fdinfo of the pidfd is '%s', was '%s'", now, before[0]);
		return tp_finish();
	}

	if (pthread_create(&th, NULL, worker, NULL))
		tp_die("pthread_create");
	while (!worker_tid)
		nanosleep(&ts, NULL);
	/* the epoll's number below the pidfd's: restored first */
	ep = epoll_create1(0);
	if (pipe(pfd))
		tp_die("pipe");
	fds[1] = pidfd_open(getpid(), 0);
	self2 = dup(fds[1]);
	child = fork();
	if (child < 0)
		tp_die("fork");
	if (child == 0) {
		close(pfd[1]);
		for (;;)
			pause();
	}
	close(pfd[0]);
	zombie = fork();
	if (zombie == 0)
		_exit(7);
	fds[0] = pidfd_open(child, PIDFD_NONBLOCK);
	fds[2] = pidfd_open(worker_tid, PIDFD_THREAD);
	fds[3] = pidfd_open(zombie, 0);
	fds[4] = self2;
	fds[5] = fds[0] < 0 ? -1 : syscall(SYS_pidfd_getfd, fds[0], pfd[0], 0);
	fetched = fds[5];
	for (int i = 0; i < NFDS; i++)
		if (fds[i] < 0)
			tp_die("pidfd %d", i);
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fds[0], &ev))
		tp_die("epoll");
	/* the zombie exists once it has exited */
	if (waitid(P_PID, zombie, &si, WEXITED | WNOWAIT))
		tp_die("waitid");
	for (int i = 0; i < NFDS; i++)
		fdinfo_of(fds[i], before[i], sizeof(before[i]));
	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("pidfd")) {
		/* the self pidfd now names the child */
		int c = pidfd_open(child, 0);

		dup2(c, fds[1]);
		close(c);
	}
	for (int i = 0; i < NFDS; i++) {
		fdinfo_of(fds[i], now, sizeof(now));
		if (strcmp(now, before[i]))
			tp_fail("fdinfo of pidfd %d (fd %d) is '%s', was '%s'", i, fds[i], now,
				before[i]);
	}
	if (syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, fds[1], self2))
		tp_fail("the dup of the self pidfd is another description");
	if (syscall(SYS_kcmp, getpid(), child, KCMP_FILE, fds[1], fds[1]))
		tp_fail("the child does not share the self pidfd any more");
	if (syscall(SYS_pidfd_send_signal, fds[1], 0, NULL, 0))
		tp_fail("pidfd_send_signal to itself: %s", strerror(errno));
	if (syscall(SYS_pidfd_send_signal, fds[2], SIGUSR1, NULL, PIDFD_SIGNAL_THREAD))
		tp_fail("pidfd_send_signal to the thread: %s", strerror(errno));
	for (int i = 0; i < 200 && !hit_tid; i++)
		nanosleep(&ts, NULL);
	if (hit_tid != worker_tid)
		tp_fail("the signal through the thread's pidfd reached %d, not %d", (int)hit_tid,
			(int)worker_tid);
	if (write(pfd[1], "p", 1) != 1 || read(fetched, &v, 1) != 1 || (char)v != 'p')
		tp_fail("the fd got with pidfd_getfd does not read the child's pipe");
	n = epoll_wait(ep, &ev, 1, 0);
	if (n != 0)
		tp_fail("the epoll reports the live child's pidfd (%d events)", n);
	if (syscall(SYS_pidfd_send_signal, fds[0], SIGKILL, NULL, 0))
		tp_fail("pidfd_send_signal SIGKILL to the child: %s", strerror(errno));
	n = epoll_wait(ep, &ev, 1, 3000);
	if (n != 1 || ev.data.u64 != 0x71d)
		tp_fail("the epoll does not report the child's exit (%d events)", n);
	memset(&si, 0, sizeof(si));
	if (waitid(P_PIDFD, fds[0], &si, WEXITED) || si.si_pid != child ||
	    si.si_code != CLD_KILLED || si.si_status != SIGKILL)
		tp_fail("waitid on the child's pidfd: pid %d code %d status %d (%s)", si.si_pid,
			si.si_code, si.si_status, strerror(errno));
	memset(&si, 0, sizeof(si));
	if (waitid(P_PIDFD, fds[3], &si, WEXITED | WNOHANG) || si.si_pid != zombie ||
	    si.si_code != CLD_EXITED || si.si_status != 7)
		tp_fail("waitid on the zombie's pidfd: pid %d code %d status %d (%s)", si.si_pid,
			si.si_code, si.si_status, strerror(errno));
	return tp_finish();
}
