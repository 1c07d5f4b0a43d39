/* forker GOFILE
 *
 * A process that forks all the time (issue 3: a tree that forks while it is
 * frozen must be frozen consistently). It keeps a table of its unreaped
 * children, each with a sequence number that determines how it ends:
 *  - 4 long-lived children (the first four) that nap until the parent raises
 *    a flag in a MAP_SHARED|MAP_ANONYMOUS page after GO, then exit with
 *    their status;
 *  - short-lived ones: most spin for a random while and exit with
 *    status(seq); every 7th is killed by SIGUSR2; every 5th forks a
 *    grandchild that exits 3, reaps it, and exits with status(seq) (255 if
 *    the grandchild's status was wrong).
 * The parent forks without pause and reaps lazily, the oldest first, once
 * more than 24 are outstanding: there are always running children and
 * zombies. Every reaped status is checked against the sequence number.
 *
 * After GO:
 *  - the kernel's list of children (/proc/self/task/PID/children, zombies
 *    included) is exactly the table: no child lost, none unknown; an INFO
 *    line gives how many were running and how many were zombies;
 *  - every child in the table is reaped with the right status (the
 *    long-lived ones once released);
 *  - 300 more children are forked and reaped with the right status;
 *  - waitpid(-1) then says there are no children left.
 *
 * STASIS_SABOTAGE: lose (forget one child of the table), status (expect a
 * wrong status for one child).
 */
#include "testprog.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define MAXKIDS 256
#define LAZY	24
#define NLONG	4

struct kid {
	pid_t pid;
	long seq;
};

static struct kid kids[MAXKIDS];
static int nkids;
static long seq;
static volatile int *release;
static long nreaped, nbad;

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int status_of(long s)
{
	return (int)((s * 37 + 11) % 251);
}

static int is_long(long s)
{
	return s < NLONG;
}
static int is_signalled(long s)
{
	return !is_long(s) && s % 7 == 0;
}

static void __attribute__((noreturn)) child(long s)
{
	if (is_long(s)) {
		while (!__atomic_load_n(release, __ATOMIC_ACQUIRE))
			nap_ms(1);
		_exit(status_of(s));
	}
	if (is_signalled(s)) {
		signal(SIGUSR2, SIG_DFL);
		raise(SIGUSR2);
		_exit(254);
	}
	if (s % 5 == 0) {
		int st = 0;
		pid_t g = fork();
		if (g == 0)
			_exit(3);
		if (g < 0 || waitpid(g, &st, 0) != g || !WIFEXITED(st) || WEXITSTATUS(st) != 3)
			_exit(255);
		_exit(status_of(s));
	}
	for (volatile long i = 0, n = (s * 7919) % 20000; i < n; i++)
		;
	_exit(status_of(s));
}

static void spawn(void)
{
	pid_t p;

	if (nkids >= MAXKIDS)
		tp_die("the table is full");
	p = fork();
	if (p < 0)
		tp_die("fork");
	if (p == 0)
		child(seq);
	kids[nkids].pid = p;
	kids[nkids].seq = seq++;
	nkids++;
}

static void check_status(const struct kid *k, int st)
{
	int bad;

	if (is_signalled(k->seq))
		bad = !WIFSIGNALED(st) || WTERMSIG(st) != SIGUSR2;
	else
		bad = !WIFEXITED(st) || WEXITSTATUS(st) != status_of(k->seq);
	if (k->seq == 100 && tp_sabotaged("status"))
		bad = 1;
	if (bad) {
		nbad++;
		if (nbad <= 5)
			tp_fail("child %d (#%ld): wait status %#x, expected %s %d", (int)k->pid,
				k->seq, st, is_signalled(k->seq) ? "signal" : "exit",
				is_signalled(k->seq) ? SIGUSR2 : status_of(k->seq));
	}
}

/* Reap table entry I (blocking) and drop it. */
static void reap(int i)
{
	int st = 0;
	pid_t r;

	do
		r = waitpid(kids[i].pid, &st, 0);
	while (r < 0 && errno == EINTR);
	if (r != kids[i].pid) {
		nbad++;
		if (nbad <= 5)
			tp_fail("waitpid(%d) for child #%ld: %s", (int)kids[i].pid, kids[i].seq,
				r < 0 ? strerror(errno) : "wrong PID");
	} else {
		check_status(&kids[i], st);
	}
	nreaped++;
	memmove(&kids[i], &kids[i + 1], (nkids - i - 1) * sizeof(kids[0]));
	nkids--;
}

/* Reap the oldest short-lived children while more than LAZY are out. */
static void reap_some(void)
{
	int i = 0;

	while (nkids > LAZY) {
		while (i < nkids && is_long(kids[i].seq))
			i++;
		if (i >= nkids)
			break;
		reap(i);
	}
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* The table against the kernel's list of children. */
static void check_children(void)
{
	char path[64], *buf = malloc(65536), st;
	int have[MAXKIDS * 2], want[MAXKIDS], nh = 0, nw = 0, running = 0, zombies = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)getpid(), (int)getpid());
	f = fopen(path, "re");
	if (!f || !buf) {
		tp_fail("cannot read %s", path);
		return;
	}
	if (!fgets(buf, 65536, f))
		buf[0] = 0;
	fclose(f);
	for (char *p = strtok(buf, " \n"); p && nh < MAXKIDS * 2; p = strtok(NULL, " \n"))
		have[nh++] = atoi(p);
	for (int i = 0; i < nkids; i++)
		want[nw++] = kids[i].pid;
	qsort(have, nh, sizeof(int), cmp_int);
	qsort(want, nw, sizeof(int), cmp_int);
	for (int i = 0, j = 0; i < nh || j < nw;) {
		if (j >= nw || (i < nh && have[i] < want[j])) {
			tp_fail("child %d is not in the table (an unknown child)", have[i]);
			i++;
		} else if (i >= nh || want[j] < have[i]) {
			tp_fail("child %d of the table is not a child any more (lost)", want[j]);
			j++;
		} else {
			i++;
			j++;
		}
	}
	for (int i = 0; i < nh; i++) {
		snprintf(path, sizeof(path), "/proc/%d/stat", have[i]);
		if (!(f = fopen(path, "re")))
			continue;
		if (fgets(buf, 65536, f) && strrchr(buf, ')') &&
		    sscanf(strrchr(buf, ')') + 1, " %c", &st) == 1) {
			if (st == 'Z')
				zombies++;
			else
				running++;
			if (st == 'T' || st == 't')
				tp_fail("child %d is stopped (state %c)", have[i], st);
		}
		fclose(f);
	}
	printf("INFO: at GO: %d children (%d running or sleeping, %d zombies), %ld forked, %ld "
	       "reaped\n",
	       nh, running, zombies, seq, nreaped);
	fflush(stdout);
	free(buf);
}

int main(int argc, char **argv)
{
	int checked_go = 0;

	tp_init(argc, argv, 1, "GOFILE");
	release = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (release == MAP_FAILED)
		tp_die("mmap");
	*release = 0;

	for (long n = 0; !checked_go; n++) {
		spawn();
		reap_some();
		if (n == 300)
			tp_ready();
		if (n > 300 && n % 32 == 0 && access(tp_gofile, F_OK) == 0)
			checked_go = 1;
	}

	if (tp_sabotaged("lose"))
		nkids--; /* the newest child is forgotten */
	check_children();
	__atomic_store_n(release, 1, __ATOMIC_RELEASE);
	while (nkids > 0)
		reap(0);
	/* can still fork and reap */
	for (int n = 0; n < 300; n++) {
		spawn();
		reap_some();
	}
	while (nkids > 0)
		reap(0);
	{
		int st;
		pid_t r = waitpid(-1, &st, WNOHANG);
		if (r != -1 || errno != ECHILD)
			tp_fail("waitpid(-1) after reaping every known child: %d (%s)", (int)r,
				r < 0 ? strerror(errno) : "an unknown child");
		while (r > 0)
			r = waitpid(-1, &st, 0);
	}
	if (nbad > 5)
		tp_fail("%ld bad wait results in all", nbad);
	return tp_finish();
}
