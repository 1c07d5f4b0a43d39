/* zombies GOFILE
 *
 * Zombies in the tree shapes the kernel allows (issue 10). R is a child
 * subreaper, so orphans of its children stay in the tree:
 *
 *   R  (subreaper)
 *   +-Z3   zombie: _exit(3)
 *   +-ZK   zombie: killed by SIGKILL
 *   +-ZS   zombie: killed by SIGSEGV (no core: RLIMIT_CORE 0)
 *   +-L    zombie session leader (setsid, forked M, exited)
 *   +-G    zombie group leader (setpgid, forked N, exited)
 *   +-S    session leader, alive, with its own zombie child Z5 (_exit(5))
 *   | +-Z5
 *   +-M    alive, adopted by R, in session L (whose leader is a zombie)
 *   +-N    alive, adopted by R, in group G (whose leader is a zombie)
 *
 * After GO, R checks without reaping (waitid WNOWAIT) that its zombies are
 * zombies with their statuses, that M, N and Z5 have their parent, group and
 * session, that Z5 is a zombie with status 5, then reaps everything.
 *
 * STASIS_SABOTAGE: zombie (R reaps Z3 before the checks).
 */
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "testprog.h"

enum { T_Z3, T_ZK, T_ZS, T_L, T_G, T_S, T_M, T_N, T_Z5, T_NR };
static const char *tname[T_NR] = { "Z3", "ZK", "ZS", "L", "G", "S", "M", "N", "Z5" };
static pid_t tpid[T_NR];

static void sleep_forever(void)
{
	for (;;)
		pause();
}

/* Forks a child that runs fn; its PID goes to the parent. */
static pid_t fork_run(void (*fn)(int), int arg)
{
	pid_t pid = fork();

	if (pid < 0)
		tp_die("fork");
	if (pid == 0) {
		fn(arg);
		_exit(0);
	}
	return pid;
}

static void die_by(int how)
{
	struct rlimit zero = { 0, 0 };

	switch (how) {
	case T_Z3:
		_exit(3);
	case T_ZK:
		raise(SIGKILL);
		break;
	case T_ZS:
		setrlimit(RLIMIT_CORE, &zero);
		signal(SIGSEGV, SIG_DFL);
		raise(SIGSEGV);
		break;
	}
	_exit(99);
}

static void member(int unused)
{
	(void)unused;
	sleep_forever();
}

/* L and G: lead a session or group, fork a member, report it, exit. */
static int report_fd;

static void leader(int session)
{
	pid_t m;

	if (session ? setsid() < 0 : setpgid(0, 0) < 0)
		tp_die("setsid/setpgid");
	m = fork_run(member, 0);
	if (write(report_fd, &m, sizeof(m)) != sizeof(m))
		tp_die("write");
	_exit(0);
}

static void session_with_zombie(int unused)
{
	pid_t z;

	(void)unused;
	if (setsid() < 0)
		tp_die("setsid");
	z = fork();
	if (z == 0)
		_exit(5);
	if (write(report_fd, &z, sizeof(z)) != sizeof(z))
		tp_die("write");
	sleep_forever();
}

static int read_stat(pid_t pid, char *state, pid_t *ppid, pid_t *pgid, pid_t *sid, int *exit_code)
{
	char path[64], buf[2048], *p;
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n > 0 ? n : 0] = 0;
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%c %d %d %d", state, ppid, pgid, sid) != 4)
		return -1;
	/* field 52, exit_code: the last one */
	p = strrchr(buf, ' ');
	*exit_code = p ? atoi(p + 1) : -1;
	return 0;
}

static void wait_zombie(pid_t pid)
{
	siginfo_t si;

	if (waitid(P_PID, pid, &si, WEXITED | WNOWAIT))
		tp_die("waitid %d", pid);
}

static void check_own_zombie(int t, int code, int status)
{
	siginfo_t si = { 0 };

	if (waitid(P_PID, tpid[t], &si, WEXITED | WNOWAIT | WNOHANG) || si.si_pid != tpid[t]) {
		tp_fail("%s (%d) is not a zombie of R", tname[t], tpid[t]);
		return;
	}
	if (si.si_code != code || si.si_status != status)
		tp_fail("%s: waitid code %d status %d, expected %d %d", tname[t], si.si_code,
			si.si_status, code, status);
}

static void check_task(int t, char state, pid_t ppid, pid_t pgid, pid_t sid)
{
	char st;
	pid_t pp, pg, s;
	int code;

	if (read_stat(tpid[t], &st, &pp, &pg, &s, &code)) {
		tp_fail("%s (%d) is gone", tname[t], tpid[t]);
		return;
	}
	if ((state == 'Z') != (st == 'Z') || pp != ppid || pg != pgid || s != sid)
		tp_fail("%s: state %c ppid %d pgid %d sid %d, expected %s, %d %d %d", tname[t], st,
			pp, pg, s, state == 'Z' ? "a zombie" : "alive", ppid, pgid, sid);
	if (t == T_Z5 && code != 5 << 8)
		tp_fail("Z5: exit code %#x, expected %#x", code, 5 << 8);
}

int main(int argc, char **argv)
{
	pid_t r, rsid, rpgid;
	int fds[2];

	tp_init(argc, argv, 1, "GOFILE");
	r = getpid();
	rsid = getsid(0);
	rpgid = getpgid(0);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1))
		tp_die("PR_SET_CHILD_SUBREAPER");
	if (pipe(fds))
		tp_die("pipe");
	report_fd = fds[1];
	for (int t = T_Z3; t <= T_ZS; t++)
		tpid[t] = fork_run(die_by, t);
	tpid[T_L] = fork_run(leader, 1);
	if (read(fds[0], &tpid[T_M], sizeof(pid_t)) != sizeof(pid_t))
		tp_die("read M");
	tpid[T_G] = fork_run(leader, 0);
	if (read(fds[0], &tpid[T_N], sizeof(pid_t)) != sizeof(pid_t))
		tp_die("read N");
	tpid[T_S] = fork_run(session_with_zombie, 0);
	if (read(fds[0], &tpid[T_Z5], sizeof(pid_t)) != sizeof(pid_t))
		tp_die("read Z5");
	for (int t = T_Z3; t <= T_G; t++)
		wait_zombie(tpid[t]);
	/* M and N adopted by R; Z5 exited */
	for (int t = T_M; t <= T_Z5; t++) {
		char st = 0;
		pid_t pp = 0, pg, s;
		int code;

		for (int i = 0; i < 500; i++) {
			if (read_stat(tpid[t], &st, &pp, &pg, &s, &code))
				tp_die("stat %s", tname[t]);
			if ((t == T_Z5) ? st == 'Z' : pp == r)
				break;
			usleep(10000);
		}
	}
	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("zombie"))
		waitpid(tpid[T_Z3], NULL, 0);
	check_own_zombie(T_Z3, CLD_EXITED, 3);
	check_own_zombie(T_ZK, CLD_KILLED, SIGKILL);
	check_own_zombie(T_ZS, CLD_KILLED, SIGSEGV);
	check_own_zombie(T_L, CLD_EXITED, 0);
	check_own_zombie(T_G, CLD_EXITED, 0);
	check_task(T_L, 'Z', r, tpid[T_L], tpid[T_L]);
	check_task(T_G, 'Z', r, tpid[T_G], rsid);
	check_task(T_S, 'S', r, tpid[T_S], tpid[T_S]);
	check_task(T_M, 'S', r, tpid[T_L], tpid[T_L]);
	check_task(T_N, 'S', r, tpid[T_G], rsid);
	check_task(T_Z5, 'Z', tpid[T_S], tpid[T_S], tpid[T_S]);
	if (getpgid(0) != rpgid || getsid(0) != rsid)
		tp_fail("R: pgid %d sid %d, expected %d %d", getpgid(0), getsid(0), rpgid, rsid);

	kill(tpid[T_S], SIGKILL);
	kill(tpid[T_M], SIGKILL);
	kill(tpid[T_N], SIGKILL);
	while (wait(NULL) > 0)
		;
	return tp_finish();
}
