// SPDX-License-Identifier: GPL-2.0
/*
 * A tree in a PID namespace of its own across a checkpoint.
 *
 *   pidns GOFILE [nested|mountproc]
 *
 * The process makes a PID namespace and forks its init (PID 1 inside),
 * prints "ROOT <init's PID as we see it>" and waits for it, exiting with
 * its status: the tree to dump is the init's. The init starts a session;
 * it forks A, which leads a process group of its own and forks G, and B,
 * which starts a session. Each task records its PID, parent, group and
 * session as it sees them; the init holds a pidfd of A. With "nested", B
 * makes a PID namespace of its own and forks a task into it (a nested
 * namespace, which a dump refuses). With "mountproc", the namespace gets a
 * mount namespace of its own too, and the init mounts its /proc there
 * over ours (as `unshare --pid --mount-proc` does): after GO every task
 * checks that /proc shows it by the PID it has inside.
 *
 * After GO each task checks that its ids are the ones recorded and the
 * init that it is PID 1; the init signals A with kill() by its PID and
 * with pidfd_send_signal() through its pidfd, and A checks both came from
 * PID 1; A reaps G and the init reaps A and B with waitpid by their PIDs,
 * each of which exits 0 when its checks passed.
 *
 * Sabotage: root (the init expects PID 2), ids (G's recorded group is
 * off by one), kill (the kill goes to B), pidfd (the signal goes through a
 * pidfd of B), reap (the init waits for a PID that is not A's), procfs
 * (the init takes the namespace's /proc off before the checks).
 */
#include <sched.h>
#include <stdbool.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "testprog.h"

enum { ROOT, A, G, B, NR_TASKS };
static const char *const names[NR_TASKS] = {"init", "A", "G", "B"};

struct ids {
	pid_t pid, ppid, pgid, sid;
};

static bool mount_proc;

static struct shared {
	struct ids rec[NR_TASKS];
	int ready[NR_TASKS];
	int go_ahead; /* the outer process printed ROOT */
} * sh;

static void record(int who)
{
	sh->rec[who] = (struct ids){getpid(), getppid(), getpgid(0), getsid(0)};
	__atomic_store_n(&sh->ready[who], 1, __ATOMIC_SEQ_CST);
}

static void wait_flag(int *flag)
{
	struct timespec ts = {0, 1000 * 1000};

	while (!__atomic_load_n(flag, __ATOMIC_SEQ_CST))
		nanosleep(&ts, NULL);
}

/* /proc shows the task by the PID it has here, and PID 1 in its namespace. */
static void check_proc(int who)
{
	struct stat self_ns, init_ns;
	char link[32] = "", want[16];
	ssize_t n = readlink("/proc/self", link, sizeof(link) - 1);

	if (!mount_proc)
		return;
	link[n > 0 ? n : 0] = 0;
	snprintf(want, sizeof(want), "%d", getpid());
	if (strcmp(link, want))
		tp_fail("%s: /proc/self is \"%s\", not %s", names[who], link, want);
	if (stat("/proc/self/ns/pid", &self_ns) || stat("/proc/1/ns/pid", &init_ns) ||
	    self_ns.st_ino != init_ns.st_ino)
		tp_fail("%s: /proc/1 is not the init of its PID namespace", names[who]);
}

static void check_ids(int who)
{
	struct ids want = sh->rec[who], now = {getpid(), getppid(), getpgid(0), getsid(0)};

	check_proc(who);
	if (who == G && tp_sabotaged("ids"))
		want.pgid++;
	if (now.pid != want.pid || now.ppid != want.ppid || now.pgid != want.pgid ||
	    now.sid != want.sid)
		tp_fail("%s: pid/ppid/pgid/sid %d/%d/%d/%d, were %d/%d/%d/%d", names[who], now.pid,
			now.ppid, now.pgid, now.sid, want.pid, want.ppid, want.pgid, want.sid);
}

/* A child's end: its failures on a line of its own, its verdict as status. */
static __attribute__((noreturn)) void child_exit(int who)
{
	if (tp_nfail) {
		printf("FAIL: %s: %s\n", names[who], tp_fails);
		fflush(stdout);
	}
	_exit(tp_nfail ? 1 : 0);
}

static void reap(pid_t pid, const char *what)
{
	int status;
	pid_t r = waitpid(pid, &status, 0);

	if (r != pid)
		tp_fail("waitpid(%d) for %s returned %d (%s)", pid, what, r, strerror(errno));
	else if (!WIFEXITED(status) || WEXITSTATUS(status))
		tp_fail("%s exited with status %#x", what, status);
}

/* A signal sig from PID 1 within 3 s. */
static void expect_signal(int sig, const char *how)
{
	struct timespec ts = {3, 0};
	siginfo_t si;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, sig);
	if (sigtimedwait(&set, &si, &ts) != sig)
		tp_fail("A: no signal %d (%s)", sig, how);
	else if (si.si_pid != 1)
		tp_fail("A: signal %d (%s) from PID %d, not 1", sig, how, si.si_pid);
}

static void task_g(void)
{
	record(G);
	tp_wait_go();
	check_ids(G);
	child_exit(G);
}

static void task_a(void)
{
	pid_t g;

	if (setpgid(0, 0))
		tp_die("setpgid");
	g = fork();
	if (g < 0)
		tp_die("fork G");
	if (!g)
		task_g();
	record(A);
	tp_wait_go();
	check_ids(A);
	expect_signal(SIGUSR1, "kill");
	expect_signal(SIGUSR2, "pidfd_send_signal");
	reap(g, "G");
	child_exit(A);
}

static void task_b(bool nested)
{
	if (setsid() < 0)
		tp_die("setsid B");
	if (nested) {
		pid_t n;

		if (unshare(CLONE_NEWPID))
			tp_die("unshare CLONE_NEWPID (nested)");
		n = fork();
		if (n < 0)
			tp_die("fork nested");
		if (!n) {
			tp_wait_go();
			_exit(0);
		}
	}
	record(B);
	tp_wait_go();
	check_ids(B);
	if (kill(1, 0))
		tp_fail("B: kill(1, 0): %s", strerror(errno));
	child_exit(B);
}

static int task_init(bool nested)
{
	pid_t a, b;
	int pidfd, pidfd_b;

	tp_pid = getpid();
	if (setsid() < 0)
		tp_die("setsid init");
	if (mount_proc && (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
			   mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)))
		tp_die("mount the namespace's /proc");
	a = fork();
	if (a < 0)
		tp_die("fork A");
	if (!a)
		task_a();
	b = fork();
	if (b < 0)
		tp_die("fork B");
	if (!b)
		task_b(nested);
	record(ROOT);
	for (int i = 0; i < NR_TASKS; i++)
		wait_flag(&sh->ready[i]);
	pidfd = syscall(SYS_pidfd_open, a, 0);
	pidfd_b = syscall(SYS_pidfd_open, b, 0);
	if (pidfd < 0 || pidfd_b < 0)
		tp_die("pidfd_open");
	wait_flag(&sh->go_ahead);
	tp_ready();
	tp_wait_go();
	if (tp_sabotaged("procfs") && umount2("/proc", MNT_DETACH))
		tp_die("umount /proc");
	check_ids(ROOT);
	if (getpid() != (tp_sabotaged("root") ? 2 : 1))
		tp_fail("init: PID %d, not 1", getpid());
	if (kill(tp_sabotaged("kill") ? b : a, SIGUSR1))
		tp_fail("init: kill(%d): %s", a, strerror(errno));
	if (syscall(SYS_pidfd_send_signal, tp_sabotaged("pidfd") ? pidfd_b : pidfd, SIGUSR2, NULL,
		    0))
		tp_fail("init: pidfd_send_signal: %s", strerror(errno));
	reap(tp_sabotaged("reap") ? a + 1000 : a, "A");
	reap(b, "B");
	return tp_finish();
}

int main(int argc, char **argv)
{
	bool nested = argc > 2 && !strcmp(argv[2], "nested");
	sigset_t set;
	pid_t init;
	int status;

	mount_proc = argc > 2 && !strcmp(argv[2], "mountproc");
	tp_init(argc, argv, 1, "GOFILE [nested|mountproc]");
	/* blocked before the forks: A waits for these with sigtimedwait */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		tp_die("mmap");
	if (unshare(CLONE_NEWPID | (mount_proc ? CLONE_NEWNS : 0)))
		tp_die("unshare CLONE_NEWPID");
	init = fork();
	if (init < 0)
		tp_die("fork init");
	if (!init)
		_exit(task_init(nested));
	printf("ROOT %d\n", init);
	fflush(stdout);
	__atomic_store_n(&sh->go_ahead, 1, __ATOMIC_SEQ_CST);
	while (waitpid(init, &status, 0) < 0)
		if (errno != EINTR)
			tp_die("waitpid init");
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
