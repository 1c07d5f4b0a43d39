/* stopped GOFILE
 *
 * Tasks stopped by job-control signals in several tree shapes (issue 10):
 *
 *   R
 *   +-T    stopped by SIGTSTP (own group, so the group is not orphaned)
 *   +-U    3 threads, stopped by SIGSTOP: every thread is stopped
 *   +-P    stopped by SIGSTOP, the parent of
 *     +-C  stopped by SIGTTIN (own group)
 *
 * After GO, R checks, without consuming the reports (WNOWAIT), that each is
 * stopped by its own signal (waitid WSTOPPED: CLD_STOPPED and the signal),
 * that every thread of U is in state T, then sends SIGCONT to all: each
 * must carry on and exit with 0 (C's status travels through P's).
 *
 * STASIS_SABOTAGE: stopsig (R continues T and stops it with SIGSTOP before
 * the checks).
 */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "testprog.h"

static void *spin(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

/* Stops itself with sig, and exits 0 once continued. */
static void stop_self(int sig)
{
	signal(sig, SIG_DFL);
	raise(sig);
	_exit(0);
}

static char state_of(pid_t pid, pid_t tid)
{
	char path[64], buf[1024], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] ? p[2] : 0;
}

static int wait_stopped(pid_t pid, int *sig)
{
	siginfo_t si = { 0 };

	if (waitid(P_PID, pid, &si, WSTOPPED | WNOWAIT | WNOHANG) || si.si_pid != pid ||
	    si.si_code != CLD_STOPPED)
		return -1;
	*sig = si.si_status;
	return 0;
}

static void wait_until_stopped(pid_t pid)
{
	int sig;

	for (int i = 0; i < 500; i++) {
		if (!wait_stopped(pid, &sig))
			return;
		usleep(10000);
	}
	tp_die("task %d did not stop", pid);
}

static pid_t child_c;

static void parent_p(void)
{
	int st;

	child_c = fork();
	if (child_c < 0)
		tp_die("fork");
	if (child_c == 0) {
		setpgid(0, 0);
		stop_self(SIGTTIN);
	}
	setpgid(child_c, child_c);
	wait_until_stopped(child_c);
	raise(SIGSTOP);
	/* continued: C must still be stopped by SIGTTIN, then carry on */
	{
		int sig = 0;

		if (wait_stopped(child_c, &sig) || sig != SIGTTIN)
			_exit(10);
	}
	kill(child_c, SIGCONT);
	if (waitpid(child_c, &st, 0) != child_c || !WIFEXITED(st) || WEXITSTATUS(st))
		_exit(11);
	_exit(0);
}

static void threaded_u(void)
{
	pthread_t th;

	for (int i = 0; i < 2; i++)
		if (pthread_create(&th, NULL, spin, NULL))
			_exit(20);
	raise(SIGSTOP);
	_exit(0);
}

static int threads_stopped(pid_t pid, int *nr)
{
	char path[64];
	struct dirent *d;
	DIR *dir;
	int bad = 0;

	*nr = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((d = readdir(dir)))
		if (d->d_name[0] != '.') {
			(*nr)++;
			if (state_of(pid, atoi(d->d_name)) != 'T')
				bad++;
		}
	closedir(dir);
	return bad;
}

int main(int argc, char **argv)
{
	pid_t t, u, p;
	int sig, st, nr;

	tp_init(argc, argv, 1, "GOFILE");
	t = fork();
	if (t < 0)
		tp_die("fork");
	if (t == 0) {
		setpgid(0, 0);
		stop_self(SIGTSTP);
	}
	setpgid(t, t);
	u = fork();
	if (u < 0)
		tp_die("fork");
	if (u == 0)
		threaded_u();
	p = fork();
	if (p < 0)
		tp_die("fork");
	if (p == 0)
		parent_p();
	wait_until_stopped(t);
	wait_until_stopped(u);
	wait_until_stopped(p);
	for (int i = 0; i < 500 && threads_stopped(u, &nr); i++)
		usleep(10000);
	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("stopsig")) {
		kill(t, SIGCONT);
		kill(t, SIGSTOP);
		usleep(100000);
	}
	if (wait_stopped(t, &sig) || sig != SIGTSTP)
		tp_fail("T is not stopped by SIGTSTP (%d)", sig);
	if (wait_stopped(u, &sig) || sig != SIGSTOP)
		tp_fail("U is not stopped by SIGSTOP (%d)", sig);
	if (threads_stopped(u, &nr) || nr != 3)
		tp_fail("not all 3 threads of U are stopped (%d threads)", nr);
	if (wait_stopped(p, &sig) || sig != SIGSTOP)
		tp_fail("P is not stopped by SIGSTOP (%d)", sig);
	kill(t, SIGCONT);
	kill(u, SIGCONT);
	kill(p, SIGCONT);
	/* U's threads spin: end it once it is seen running again */
	for (int i = 0; i < 500 && state_of(u, u) == 'T'; i++)
		usleep(10000);
	if (waitpid(t, &st, 0) != t || !WIFEXITED(st) || WEXITSTATUS(st))
		tp_fail("T: status %#x after SIGCONT", st);
	if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st))
		tp_fail("P: status %#x after SIGCONT (10: C not stopped by SIGTTIN)", st);
	if (waitpid(u, &st, 0) != u || !WIFEXITED(st) || WEXITSTATUS(st))
		tp_fail("U: status %#x after SIGCONT", st);
	return tp_finish();
}
