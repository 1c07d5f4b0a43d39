/* tree GOFILE [zombie-names]
 *
 * A three-level process tree with two sessions, an orphaned process group
 * and zombies (issue 3):
 *
 *   R    the program: session leader (started with setsid), group R, child
 *   |    subreaper (PR_SET_CHILD_SUBREAPER)
 *   +-Z7   zombie: exited with _exit(7)
 *   +-Z15  zombie: killed by SIGTERM
 *   +-A    setsid(): leader of session A and group A
 *   | +-B  session A, group A; spins without system calls between naps
 *   +-D    session A, group C: its parent C (a child of A that made itself
 *   |      leader of group C) has exited, so D was adopted by the subreaper R;
 *   |      group C is an orphaned process group whose leader (PID C) is gone
 *   +-E    session R, leader of its own group E
 *     +-F  session R, group E
 *
 * Every living child sets its name (tree-A, ...) and increments its own
 * counter in a MAP_SHARED|MAP_ANONYMOUS page. After GO:
 *  - from outside (/proc): every task's parent, group, session and name is
 *    as at READY, the children lists of R, A and E are exact (zombies
 *    included), no task is stopped or traced, the zombies are zombies of R,
 *    PID C is free while group C still exists, R is still a subreaper;
 *  - from inside: R raises a flag in the shared page; each child sees it and
 *    checks its own getpid/getppid/getsid/getpgrp and name, and reports in
 *    the shared page; every counter keeps increasing (writes of every task
 *    are seen by R);
 *  - R reaps Z7 (WIFEXITED, status 7) and Z15 (WIFSIGNALED, SIGTERM);
 *  - the subreaper still works: R kills E, and F is adopted by R;
 *  - R can still fork and reap a new child.
 * With "zombie-names", the zombies' names (tree-z7, tree-z15) are checked
 * too.
 *
 * R kills and reaps every child before it exits.
 *
 * STASIS_SABOTAGE: zombie (reap Z7 before the checks), pgid (D moves to a
 * group of its own), counter (B stops counting), name (A renames itself).
 */
#include "testprog.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

enum { T_R, T_A, T_B, T_C, T_D, T_E, T_F, T_Z7, T_Z15, NT };
static const char *const tname[NT] = { "R", "A", "B", "C", "D", "E", "F", "Z7", "Z15" };
static const char *const comm[NT] = { "tree-R", "tree-A", "tree-B",  "tree-C",	"tree-D",
				      "tree-E", "tree-F", "tree-z7", "tree-z15" };

struct slot {
	pid_t pid;	       /* 0 until the task has set itself up */
	pid_t ppid, pgid, sid; /* as at READY, for the self-check */
	volatile long count;   /* incremented by the task */
	volatile int done;     /* the self-check after GO is in msg */
	char msg[512];
};

struct shared {
	volatile int go;
	struct slot s[NT];
};

static struct shared *sh;

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int flag(volatile int *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* Fields of /proc/PID/stat: state, ppid, pgrp, session; 0 when found. */
static int read_stat(pid_t pid, char *state, pid_t *ppid, pid_t *pgid, pid_t *sid)
{
	char path[64], buf[1024], *p;
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	n = fgets(buf, sizeof(buf), f) != NULL;
	fclose(f);
	if (!n || !(p = strrchr(buf, ')')))
		return -1;
	return sscanf(p + 1, " %c %d %d %d", state, ppid, pgid, sid) == 4 ? 0 : -1;
}

static int read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	int ok;

	if (!f)
		return -1;
	ok = fgets(buf, (int)len, f) != NULL;
	fclose(f);
	if (!ok)
		buf[0] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

/* The children of PID (its only thread) from /proc, sorted, as text. */
static void children_of(pid_t pid, char *out, size_t len)
{
	char path[96], buf[1024];
	int v[64], n = 0, off = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	if (read_line(path, buf, sizeof(buf))) {
		snprintf(out, len, "(unreadable)");
		return;
	}
	for (char *p = strtok(buf, " "); p && n < 64; p = strtok(NULL, " "))
		v[n++] = atoi(p);
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
			int t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	out[0] = 0;
	for (int i = 0; i < n && off < (int)len; i++)
		off += snprintf(out + off, len - off, "%s%d", i ? " " : "", v[i]);
}

static void sorted_pids(char *out, size_t len, int n, const int *which)
{
	int v[NT], off = 0;

	for (int i = 0; i < n; i++)
		v[i] = sh->s[which[i]].pid;
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
			int t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	out[0] = 0;
	for (int i = 0; i < n && off < (int)len; i++)
		off += snprintf(out + off, len - off, "%s%d", i ? " " : "", v[i]);
}

static void set_name(int t)
{
	prctl(PR_SET_NAME, comm[t], 0, 0, 0);
}

/* A child's own check once R has raised the go flag. */
static void self_check(int t)
{
	struct slot *s = &sh->s[t];
	char name[17] = "", *m = s->msg;
	size_t len = sizeof(s->msg), o = 0;

	if (t == T_D && tp_sabotaged("pgid"))
		setpgid(0, 0);
	if (t == T_A && tp_sabotaged("name"))
		prctl(PR_SET_NAME, "renamed", 0, 0, 0);
	prctl(PR_GET_NAME, name, 0, 0, 0);
#define CHK(cond, ...)                                                                             \
	do {                                                                                       \
		if (!(cond) && o < len)                                                            \
			o += snprintf(m + o, len - o, __VA_ARGS__);                                \
	} while (0)
	CHK(getpid() == s->pid, " getpid() %d, was %d;", (int)getpid(), (int)s->pid);
	CHK(getppid() == s->ppid, " getppid() %d, was %d;", (int)getppid(), (int)s->ppid);
	CHK(getpgrp() == s->pgid, " getpgrp() %d, was %d;", (int)getpgrp(), (int)s->pgid);
	CHK(getsid(0) == s->sid, " getsid() %d, was %d;", (int)getsid(0), (int)s->sid);
	CHK(!strcmp(name, comm[t]), " name '%s', was '%s';", name, comm[t]);
#undef CHK
	o = strlen(s->msg);
	if (o && s->msg[o - 1] == ';')
		s->msg[o - 1] = 0;
	__atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
}

/* What every living child does once set up: count, and check itself
 * after GO. B spins between naps (it is most likely caught in user mode). */
static void __attribute__((noreturn)) child_loop(int t)
{
	struct slot *s = &sh->s[t];
	int checked = 0;

	for (;;) {
		if (!(t == T_B && checked && tp_sabotaged("counter")))
			__atomic_fetch_add(&s->count, 1, __ATOMIC_RELAXED);
		if (t == T_B)
			for (volatile int i = 0; i < 20000; i++)
				;
		if (!checked && flag(&sh->go)) {
			self_check(t);
			checked = 1;
		}
		nap_ms(2);
	}
}

static void publish(int t)
{
	struct slot *s = &sh->s[t];

	s->ppid = getppid();
	s->pgid = getpgrp();
	s->sid = getsid(0);
	__atomic_store_n(&s->pid, getpid(), __ATOMIC_RELEASE);
}

static pid_t xfork(const char *what)
{
	pid_t p = fork();

	if (p < 0)
		tp_die("fork %s", what);
	return p;
}

static void wait_for(int t, double seconds)
{
	for (int i = 0; i < seconds * 1000 && !__atomic_load_n(&sh->s[t].pid, __ATOMIC_ACQUIRE);
	     i++)
		nap_ms(1);
	if (!sh->s[t].pid)
		tp_die("task %s did not start", tname[t]);
}

static void build_tree(void)
{
	pid_t p;

	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
		tp_die("PR_SET_CHILD_SUBREAPER");
	set_name(T_R);
	publish(T_R);

	/* Z7 and Z15: zombies with an exit status and a signal. */
	if ((p = xfork("Z7")) == 0) {
		set_name(T_Z7);
		_exit(7);
	}
	sh->s[T_Z7].pid = p;
	if ((p = xfork("Z15")) == 0) {
		set_name(T_Z15);
		signal(SIGTERM, SIG_DFL);
		raise(SIGTERM);
		_exit(99);
	}
	sh->s[T_Z15].pid = p;

	/* A (session A) with B, C and, through C, D. */
	if (xfork("A") == 0) {
		if (setsid() < 0)
			tp_die("setsid in A");
		set_name(T_A);
		publish(T_A);
		if (xfork("B") == 0) {
			set_name(T_B);
			publish(T_B);
			child_loop(T_B);
		}
		pid_t c = xfork("C");
		if (c == 0) {
			if (setpgid(0, 0))
				tp_die("setpgid in C");
			set_name(T_C);
			publish(T_C);
			if (xfork("D") == 0) {
				set_name(T_D);
				/* D publishes itself once adopted by R */
				while (getppid() == sh->s[T_C].pid)
					nap_ms(1);
				publish(T_D);
				child_loop(T_D);
			}
			_exit(0);
		}
		if (waitpid(c, NULL, 0) != c)
			tp_die("waitpid C in A");
		child_loop(T_A);
	}

	/* E (own group in session R) with F. */
	pid_t e = xfork("E");
	if (e == 0) {
		if (setpgid(0, 0))
			tp_die("setpgid in E");
		set_name(T_E);
		publish(T_E);
		if (xfork("F") == 0) {
			set_name(T_F);
			publish(T_F);
			child_loop(T_F);
		}
		child_loop(T_E);
	}
	setpgid(e, e); /* no race with E's own call */

	for (int t = T_A; t <= T_F; t++)
		wait_for(t, 10);
}

/* The tree must be as described above before READY. */
static void check_setup(void)
{
	struct slot *s = sh->s;
	pid_t R = s[T_R].pid;
	char st;
	pid_t pp, pg, sd;

	if (s[T_A].sid != s[T_A].pid || s[T_A].pgid != s[T_A].pid || s[T_A].ppid != R)
		tp_die("A is not a session leader child of R");
	if (s[T_B].sid != s[T_A].pid || s[T_B].pgid != s[T_A].pid || s[T_B].ppid != s[T_A].pid)
		tp_die("B is not in A's session and group");
	if (s[T_D].sid != s[T_A].pid || s[T_D].pgid != s[T_C].pid || s[T_D].ppid != R)
		tp_die("D is not in A's session, group C, adopted by R");
	if (s[T_E].sid != R || s[T_E].pgid != s[T_E].pid || s[T_E].ppid != R)
		tp_die("E is not a group leader in R's session");
	if (s[T_F].sid != R || s[T_F].pgid != s[T_E].pid || s[T_F].ppid != s[T_E].pid)
		tp_die("F is not in E's group");
	if (getsid(0) != R || getpgrp() != R)
		tp_die("R is not a session leader (start it with setsid)");
	/* C must be gone (reaped by A), the zombies must be zombies */
	for (int i = 0; i < 1000 && kill(s[T_C].pid, 0) == 0; i++)
		nap_ms(1);
	if (kill(s[T_C].pid, 0) == 0)
		tp_die("C (%d) did not go away", (int)s[T_C].pid);
	for (int t = T_Z7; t <= T_Z15; t++) {
		int i;
		for (i = 0; i < 1000; i++) {
			if (!read_stat(s[t].pid, &st, &pp, &pg, &sd) && st == 'Z')
				break;
			nap_ms(1);
		}
		if (i == 1000)
			tp_die("%s did not become a zombie", tname[t]);
		s[t].ppid = pp;
		s[t].pgid = pg;
		s[t].sid = sd;
	}
}

static const int living[] = { T_R, T_A, T_B, T_D, T_E, T_F };
#define NLIVING ((int)(sizeof(living) / sizeof(living[0])))

/* The view from /proc, before anything changes. */
static void check_outside(int zombie_names)
{
	struct slot *s = sh->s;
	char st, buf[256], want[256];
	pid_t pp, pg, sd;

	for (int t = 0; t < NT; t++) {
		int zombie = t == T_Z7 || t == T_Z15;
		char path[64];

		if (t == T_C)
			continue;
		if (read_stat(s[t].pid, &st, &pp, &pg, &sd)) {
			tp_fail("%s (%d) is gone", tname[t], (int)s[t].pid);
			continue;
		}
		if (zombie && st != 'Z')
			tp_fail("%s (%d) is in state %c, expected a zombie", tname[t],
				(int)s[t].pid, st);
		if (!zombie && (st == 'Z' || st == 'X' || st == 'T' || st == 't'))
			tp_fail("%s (%d) is in state %c", tname[t], (int)s[t].pid, st);
		if (t != T_R && pp != s[t].ppid)
			tp_fail("%s (%d): parent %d, was %d", tname[t], (int)s[t].pid, (int)pp,
				(int)s[t].ppid);
		if (pg != s[t].pgid)
			tp_fail("%s (%d): process group %d, was %d", tname[t], (int)s[t].pid,
				(int)pg, (int)s[t].pgid);
		if (sd != s[t].sid)
			tp_fail("%s (%d): session %d, was %d", tname[t], (int)s[t].pid, (int)sd,
				(int)s[t].sid);
		if (!zombie || zombie_names) {
			snprintf(path, sizeof(path), "/proc/%d/comm", (int)s[t].pid);
			if (read_line(path, buf, sizeof(buf)) || strcmp(buf, comm[t]))
				tp_fail("%s (%d): name '%s', was '%s'", tname[t], (int)s[t].pid,
					buf, comm[t]);
		}
		if (!zombie) {
			snprintf(path, sizeof(path), "/proc/%d/status", (int)s[t].pid);
			FILE *f = fopen(path, "re");
			while (f && fgets(buf, sizeof(buf), f))
				if (!strncmp(buf, "TracerPid:", 10) && atoi(buf + 10) != 0)
					tp_fail("%s (%d) is traced by %d", tname[t], (int)s[t].pid,
						atoi(buf + 10));
			if (f)
				fclose(f);
		}
	}

	/* Exact children lists, zombies included. */
	static const int of_r[] = { T_A, T_D, T_E, T_Z7, T_Z15 }, of_a[] = { T_B },
			 of_e[] = { T_F };
	static const struct {
		int parent;
		const int *kids;
		int n;
	} lists[] = { { T_R, of_r, 5 }, { T_A, of_a, 1 }, { T_E, of_e, 1 } };
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		children_of(s[lists[i].parent].pid, buf, sizeof(buf));
		sorted_pids(want, sizeof(want), lists[i].n, lists[i].kids);
		if (strcmp(buf, want))
			tp_fail("children of %s: {%s}, expected {%s}", tname[lists[i].parent], buf,
				want);
	}
	for (int t = T_B; t <= T_F; t++) {
		if (t == T_C || t == T_E)
			continue;
		children_of(s[t].pid, buf, sizeof(buf));
		if (buf[0])
			tp_fail("%s has children {%s}, expected none", tname[t], buf);
	}

	/* The orphaned group: no process C, but the group exists. */
	if (kill(s[T_C].pid, 0) == 0 || errno != ESRCH)
		tp_fail("PID %d (the dead leader C of group %d) exists", (int)s[T_C].pid,
			(int)s[T_C].pid);
	if (kill(-s[T_C].pid, 0) != 0)
		tp_fail("process group %d (D's) does not exist: %s", (int)s[T_C].pid,
			strerror(errno));
	if (getpgid(s[T_D].pid) != s[T_C].pid)
		tp_fail("getpgid(D) is %d, expected %d", (int)getpgid(s[T_D].pid), (int)s[T_C].pid);
	if (getsid(s[T_D].pid) != s[T_A].pid)
		tp_fail("getsid(D) is %d, expected %d", (int)getsid(s[T_D].pid), (int)s[T_A].pid);

	int sub = -1;
	if (prctl(PR_GET_CHILD_SUBREAPER, &sub, 0, 0, 0) || sub != 1)
		tp_fail("R is no longer a child subreaper (%d)", sub);
}

static void check_inside(void)
{
	struct slot *s = sh->s;
	long before[NT];
	int i;

	__atomic_store_n(&sh->go, 1, __ATOMIC_RELEASE);
	for (i = 0; i < 10000; i++) {
		int all = 1;
		for (int k = 1; k < NLIVING; k++)
			all &= flag(&s[living[k]].done);
		if (all)
			break;
		nap_ms(1);
	}
	for (int k = 1; k < NLIVING; k++) {
		int t = living[k];
		if (!flag(&s[t].done))
			tp_fail(
			    "%s (%d) did not see the go flag R wrote in shared memory within 10 s",
			    tname[t], (int)s[t].pid);
		else if (s[t].msg[0])
			tp_fail("%s (%d) says:%s", tname[t], (int)s[t].pid, s[t].msg);
	}

	/* Every child keeps counting, and R sees it. */
	for (int k = 1; k < NLIVING; k++)
		before[living[k]] = s[living[k]].count;
	for (i = 0; i < 200; i++) {
		int all = 1;
		for (int k = 1; k < NLIVING; k++)
			all &= s[living[k]].count > before[living[k]] + 5;
		if (all)
			break;
		nap_ms(10);
	}
	for (int k = 1; k < NLIVING; k++)
		if (s[living[k]].count <= before[living[k]] + 5)
			tp_fail("%s (%d): counter %ld -> %ld in 2 s (stuck, or no longer shared)",
				tname[living[k]], (int)s[living[k]].pid, before[living[k]],
				s[living[k]].count);
}

static void check_zombies(void)
{
	int st = 0;
	pid_t r;

	r = waitpid(sh->s[T_Z7].pid, &st, WNOHANG);
	if (r != sh->s[T_Z7].pid)
		tp_fail("waitpid(Z7 %d) returned %d (%s)", (int)sh->s[T_Z7].pid, (int)r,
			r < 0 ? strerror(errno) : "not a zombie");
	else if (!WIFEXITED(st) || WEXITSTATUS(st) != 7)
		tp_fail("Z7: wait status %#x, expected exit status 7", st);
	st = 0;
	r = waitpid(sh->s[T_Z15].pid, &st, WNOHANG);
	if (r != sh->s[T_Z15].pid)
		tp_fail("waitpid(Z15 %d) returned %d (%s)", (int)sh->s[T_Z15].pid, (int)r,
			r < 0 ? strerror(errno) : "not a zombie");
	else if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGTERM || WCOREDUMP(st))
		tp_fail("Z15: wait status %#x, expected killed by SIGTERM (%d)", st, SIGTERM);
}

/* Kill E: F must be adopted by the subreaper R. */
static void check_subreaper(void)
{
	pid_t e = sh->s[T_E].pid, f = sh->s[T_F].pid, pp = 0, pg, sd;
	int st = 0, i;
	char c;

	kill(e, SIGKILL);
	if (waitpid(e, &st, 0) != e || !WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
		tp_fail("waitpid(E) after SIGKILL: status %#x", st);
	for (i = 0; i < 2000; i++) {
		if (read_stat(f, &c, &pp, &pg, &sd) || pp == sh->s[T_R].pid)
			break;
		nap_ms(1);
	}
	if (pp != sh->s[T_R].pid)
		tp_fail("F's parent is %d after E died, expected the subreaper R (%d)", (int)pp,
			(int)sh->s[T_R].pid);
}

static void check_fork(void)
{
	int st = 0;
	pid_t p = fork();

	if (p == 0)
		_exit(42);
	if (p < 0 || waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 42)
		tp_fail("fork and reap a new child: pid %d status %#x", (int)p, st);
}

static void kill_all(void)
{
	for (int k = 1; k < NLIVING; k++)
		kill(sh->s[living[k]].pid, SIGKILL);
	/* R is a subreaper: every descendant ends up as its child. */
	alarm(20);
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
	alarm(0);
}

int main(int argc, char **argv)
{
	int zombie_names;

	tp_init(argc, argv, 1, "GOFILE [zombie-names]");
	zombie_names = argc > 2 && !strcmp(argv[2], "zombie-names");
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		tp_die("mmap");
	memset(sh, 0, sizeof(*sh));

	build_tree();
	check_setup();
	nap_ms(100);
	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("zombie"))
		waitpid(sh->s[T_Z7].pid, NULL, 0);
	check_outside(zombie_names);
	check_inside();
	check_zombies();
	check_subreaper();
	check_fork();
	kill_all();
	return tp_finish();
}
