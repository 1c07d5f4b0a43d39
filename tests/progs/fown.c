/* fown GOFILE
 *
 * SIGIO owners (F_SETOWN, F_SETOWN_EX, F_SETSIG) with O_ASYNC on three
 * kinds of descriptors:
 *   a pipe's read end, owned by the process (F_SETOWN pid), plain SIGIO;
 *   a unix stream socket, owned by the process group (F_SETOWN -pgrp),
 *     SIGRTMIN+1 (queued with siginfo: si_fd names the socket);
 *   a pty master, owned by one thread (F_SETOWN_EX F_OWNER_TID),
 *     SIGRTMIN+2, which must reach that very thread.
 * After GO: F_GETOWN_EX, F_GETSIG and F_GETFL (O_ASYNC; no O_LARGEFILE on
 * the pipe, which pipe() does not set) read back as set, and data
 * arriving on each descriptor raises its signal in its owner.
 * fown GOFILE outside: the pipe is owned by the parent (outside the
 * dumped tree) with SIGWINCH, which the dump must refuse; only the owners
 * are checked.
 */
#include "testprog.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>

static int pfd[2], sk[2], ptm, pts;
static pid_t worker_tid, pipe_owner;
static int pipe_sig;
static volatile sig_atomic_t got_io, got_sk_fd = -1, got_pty_tid;
static volatile sig_atomic_t worker_up;

static void on_sigio(int sig)
{
	(void)sig;
	got_io++;
}

static void on_sk(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	got_sk_fd = si->si_fd;
}

static void on_pty(int sig)
{
	(void)sig;
	got_pty_tid = syscall(SYS_gettid);
}

static void *worker(void *arg)
{
	(void)arg;
	worker_tid = syscall(SYS_gettid);
	worker_up = 1;
	for (;;)
		pause();
	return NULL;
}

static void set_async(int fd)
{
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC | O_NONBLOCK))
		tp_die("F_SETFL O_ASYNC on %d", fd);
}

/* F_GETFL of the pipe's read end, the socket and the master at the set-up */
static int fl_pipe, fl_sk, fl_ptm;

static void check_owner(const char *what, int fd, int type, pid_t pid, int sig, int fl)
{
	struct f_owner_ex o = { 0 };
	int s = fcntl(fd, F_GETSIG);

	if (fcntl(fd, F_GETOWN_EX, &o))
		tp_fail("%s: F_GETOWN_EX: %s", what, strerror(errno));
	else if ((int)o.type != type || o.pid != pid)
		tp_fail("%s: owner is type %d pid %d, was type %d pid %d", what, o.type, o.pid,
			type, pid);
	if (s != sig)
		tp_fail("%s: F_GETSIG is %d, was %d", what, s, sig);
	if (fcntl(fd, F_GETFL) != fl)
		tp_fail("%s: F_GETFL is %#o, was %#o", what, fcntl(fd, F_GETFL), fl);
}

/* Wait up to 2 s for cond to hold. */
#define WAIT_FOR(cond)                                                                          \
	do {                                                                                   \
		struct timespec ts_ = { 0, 10 * 1000 * 1000 };                                 \
		for (int i_ = 0; i_ < 200 && !(cond); i_++)                                    \
			nanosleep(&ts_, NULL);                                                 \
	} while (0)

int main(int argc, char **argv)
{
	struct sigaction sa = { 0 };
	struct f_owner_ex o;
	pthread_t th;
	sigset_t ss;
	char buf[16];

	tp_init(argc, argv, 1, "GOFILE");
	/* a group of its own, inside the dumped tree */
	if (getpgrp() != getpid() && setpgid(0, 0))
		tp_die("setpgid");
	sa.sa_handler = on_sigio;
	sigaction(SIGIO, &sa, NULL);
	sa.sa_handler = on_pty;
	sigaction(SIGRTMIN + 2, &sa, NULL);
	sa.sa_sigaction = on_sk;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGRTMIN + 1, &sa, NULL);
	if (pipe(pfd) || socketpair(AF_UNIX, SOCK_STREAM, 0, sk))
		tp_die("pipe/socketpair");
	ptm = posix_openpt(O_RDWR | O_NOCTTY);
	if (ptm < 0 || grantpt(ptm) || unlockpt(ptm))
		tp_die("posix_openpt");
	pts = open(ptsname(ptm), O_RDWR | O_NOCTTY);
	if (pts < 0)
		tp_die("open %s", ptsname(ptm));
	/* the main thread leaves SIGRTMIN+2 to the worker */
	sigemptyset(&ss);
	sigaddset(&ss, SIGRTMIN + 2);
	if (pthread_create(&th, NULL, worker, NULL))
		tp_die("pthread_create");
	pthread_sigmask(SIG_BLOCK, &ss, NULL);
	WAIT_FOR(worker_up);

	pipe_owner = argc > 2 && !strcmp(argv[2], "outside") ? getppid() : getpid();
	/* the parent must not die of it: SIGWINCH is ignored by default */
	pipe_sig = pipe_owner != getpid() ? SIGWINCH : 0;
	if (fcntl(pfd[0], F_SETOWN, pipe_owner) || fcntl(pfd[0], F_SETSIG, pipe_sig))
		tp_die("F_SETOWN pipe");
	set_async(pfd[0]);
	if (fcntl(sk[0], F_SETOWN, -getpgrp()) || fcntl(sk[0], F_SETSIG, SIGRTMIN + 1))
		tp_die("F_SETOWN socket");
	set_async(sk[0]);
	o.type = F_OWNER_TID;
	o.pid = worker_tid;
	if (fcntl(ptm, F_SETOWN_EX, &o) || fcntl(ptm, F_SETSIG, SIGRTMIN + 2))
		tp_die("F_SETOWN_EX pty");
	set_async(ptm);
	fl_pipe = fcntl(pfd[0], F_GETFL);
	fl_sk = fcntl(sk[0], F_GETFL);
	fl_ptm = fcntl(ptm, F_GETFL);
	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("fown"))
		fcntl(pfd[0], F_SETOWN, 0);
	check_owner("pipe", pfd[0], F_OWNER_PID, pipe_owner, pipe_sig, fl_pipe);
	check_owner("socket", sk[0], F_OWNER_PGRP, getpgrp(), SIGRTMIN + 1, fl_sk);
	check_owner("pty master", ptm, F_OWNER_TID, worker_tid, SIGRTMIN + 2, fl_ptm);
	if (pipe_owner != getpid())
		return tp_finish();

	if (write(pfd[1], "x", 1) != 1 || write(sk[1], "y", 1) != 1 || write(pts, "z", 1) != 1)
		tp_fail("write: %s", strerror(errno));
	WAIT_FOR(got_io && got_sk_fd >= 0 && got_pty_tid);
	if (!got_io)
		tp_fail("no SIGIO for the pipe");
	if (got_sk_fd != sk[0])
		tp_fail("SIGRTMIN+1 for the socket: si_fd %d, expected %d", (int)got_sk_fd, sk[0]);
	if (got_pty_tid != worker_tid)
		tp_fail("SIGRTMIN+2 for the pty reached thread %d, expected %d", (int)got_pty_tid,
			(int)worker_tid);
	if (read(pfd[0], buf, sizeof(buf)) != 1 || read(sk[0], buf, sizeof(buf)) != 1)
		tp_fail("read: %s", strerror(errno));
	return tp_finish();
}
