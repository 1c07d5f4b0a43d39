/* daemon GOFILE
 *
 * A double-forked daemon under a subreaper (issue 3: every task keeps its
 * session, also one whose leader is gone):
 *
 *   R    the program: session leader (started with setsid), child subreaper
 *   +-G  the daemon: session S, group S, adopted by R once S exited
 *     +-W  its worker: session S, group S
 *
 * S was a child of R that called setsid(), forked G and exited (R reaped
 * it): session S and group S have no leader, PID S is free. G and W count
 * in a MAP_SHARED|MAP_ANONYMOUS page.
 *
 * After GO: from /proc, G and W have the same parent, group, session and
 * name as at READY; PID S does not exist but group S does; R raises a flag
 * in the shared page, and G and W check their own getppid, getsid, getpgrp
 * and name; both keep counting. Then R kills G (W is adopted by R) and W,
 * and reaps them.
 *
 * STASIS_SABOTAGE: session (W starts a session of its own before its check).
 */
#include "testprog.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

enum { T_G, T_W, NT };
static const char *const tname[NT] = { "G", "W" };
static const char *const comm[NT] = { "daemon-G", "daemon-W" };

struct slot {
	pid_t pid, ppid, pgid, sid;
	volatile long count;
	volatile int done;
	char msg[512];
};

struct shared {
	volatile int go;
	pid_t s;
	struct slot t[NT];
};

static struct shared *sh;

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* state, ppid, pgrp and session of PID from /proc; 0 when found */
static int read_stat(pid_t pid, char *state, pid_t *ppid, pid_t *pgid, pid_t *sid)
{
	char path[64], buf[1024], *p;
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!(f = fopen(path, "re")))
		return -1;
	n = fgets(buf, sizeof(buf), f) != NULL;
	fclose(f);
	if (!n || !(p = strrchr(buf, ')')))
		return -1;
	return sscanf(p + 1, " %c %d %d %d", state, ppid, pgid, sid) == 4 ? 0 : -1;
}

static void self_check(int t)
{
	struct slot *s = &sh->t[t];
	char name[17] = "";
	size_t o = 0, len = sizeof(s->msg);

	if (t == T_W && tp_sabotaged("session"))
		setsid();
	prctl(PR_GET_NAME, name, 0, 0, 0);
#define CHK(cond, ...)                                                                             \
	do {                                                                                       \
		if (!(cond) && o < len)                                                            \
			o += snprintf(s->msg + o, len - o, __VA_ARGS__);                           \
	} while (0)
	CHK(getppid() == s->ppid, " getppid() %d, was %d", (int)getppid(), (int)s->ppid);
	CHK(getpgrp() == s->pgid, " getpgrp() %d, was %d", (int)getpgrp(), (int)s->pgid);
	CHK(getsid(0) == s->sid, " getsid() %d, was %d", (int)getsid(0), (int)s->sid);
	CHK(!strcmp(name, comm[t]), " name '%s', was '%s'", name, comm[t]);
#undef CHK
	__atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
}

static void __attribute__((noreturn)) count_loop(int t)
{
	int checked = 0;

	prctl(PR_SET_NAME, comm[t], 0, 0, 0);
	__atomic_store_n(&sh->t[t].pid, getpid(), __ATOMIC_RELEASE);
	for (;;) {
		__atomic_fetch_add(&sh->t[t].count, 1, __ATOMIC_RELAXED);
		if (!checked && __atomic_load_n(&sh->go, __ATOMIC_ACQUIRE)) {
			self_check(t);
			checked = 1;
		}
		nap_ms(2);
	}
}

int main(int argc, char **argv)
{
	pid_t s, r = getpid();
	char st;
	int i;

	tp_init(argc, argv, 1, "GOFILE");
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		tp_die("mmap");
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
		tp_die("PR_SET_CHILD_SUBREAPER");
	if (getsid(0) != r)
		tp_die("not a session leader (start it with setsid)");

	s = fork();
	if (s < 0)
		tp_die("fork");
	if (s == 0) {
		if (setsid() < 0)
			tp_die("setsid");
		pid_t g = fork();
		if (g < 0)
			tp_die("fork G");
		if (g == 0) {
			pid_t w = fork();
			if (w < 0)
				tp_die("fork W");
			if (w == 0)
				count_loop(T_W);
			count_loop(T_G);
		}
		_exit(0);
	}
	sh->s = s;
	if (waitpid(s, NULL, 0) != s)
		tp_die("waitpid S");
	for (i = 0; i < 5000; i++) {
		pid_t pp = 0, pg, sd;
		if (sh->t[T_G].pid && sh->t[T_W].pid &&
		    !read_stat(sh->t[T_G].pid, &st, &pp, &pg, &sd) && pp == r)
			break;
		nap_ms(1);
	}
	for (int t = 0; t < NT; t++) {
		struct slot *x = &sh->t[t];
		if (!x->pid || read_stat(x->pid, &st, &x->ppid, &x->pgid, &x->sid))
			tp_die("%s did not start", tname[t]);
	}
	if (sh->t[T_G].ppid != r || sh->t[T_G].sid != s || sh->t[T_G].pgid != s ||
	    sh->t[T_W].ppid != sh->t[T_G].pid || sh->t[T_W].sid != s || sh->t[T_W].pgid != s)
		tp_die("the daemon is not set up as described");
	nap_ms(50);
	tp_ready();
	tp_wait_go();

	/* from outside */
	for (int t = 0; t < NT; t++) {
		struct slot *x = &sh->t[t];
		pid_t pp, pg, sd;
		if (read_stat(x->pid, &st, &pp, &pg, &sd)) {
			tp_fail("%s (%d) is gone", tname[t], (int)x->pid);
			continue;
		}
		if (st == 'Z' || st == 'T' || st == 't')
			tp_fail("%s (%d) is in state %c", tname[t], (int)x->pid, st);
		if (pp != x->ppid || pg != x->pgid || sd != x->sid)
			tp_fail("%s (%d): parent %d group %d session %d, were %d %d %d", tname[t],
				(int)x->pid, (int)pp, (int)pg, (int)sd, (int)x->ppid, (int)x->pgid,
				(int)x->sid);
	}
	if (kill(s, 0) == 0 || errno != ESRCH)
		tp_fail("PID %d (the dead session leader S) exists", (int)s);
	if (kill(-s, 0) != 0)
		tp_fail("process group %d does not exist: %s", (int)s, strerror(errno));

	/* from inside, and counting */
	long before[NT];
	for (int t = 0; t < NT; t++)
		before[t] = sh->t[t].count;
	__atomic_store_n(&sh->go, 1, __ATOMIC_RELEASE);
	for (i = 0; i < 10000; i++) {
		if (sh->t[T_G].done && sh->t[T_W].done && sh->t[T_G].count > before[T_G] + 5 &&
		    sh->t[T_W].count > before[T_W] + 5)
			break;
		nap_ms(1);
	}
	for (int t = 0; t < NT; t++) {
		struct slot *x = &sh->t[t];
		if (!x->done)
			tp_fail("%s (%d) did not see the go flag within 10 s", tname[t],
				(int)x->pid);
		else if (x->msg[0])
			tp_fail("%s (%d) says:%s", tname[t], (int)x->pid, x->msg);
		if (x->count <= before[t] + 5)
			tp_fail("%s (%d): counter %ld -> %ld (stuck, or no longer shared)",
				tname[t], (int)x->pid, before[t], x->count);
	}

	kill(sh->t[T_G].pid, SIGKILL);
	kill(sh->t[T_W].pid, SIGKILL);
	alarm(20);
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
	alarm(0);
	return tp_finish();
}
