/* shmcount GOFILE
 *
 * Shared anonymous memory between processes (issue 3). The parent P and
 * two children C1 and C2 share three kinds of MAP_SHARED|MAP_ANONYMOUS
 * pages:
 *  - X, mapped before any fork: shared by P, C1 and C2. Each task adds 1
 *    to the common total (atomically) then 1 to its own counter, every
 *    millisecond or so;
 *  - Y, mapped by P after C1 was forked and before C2: shared by P and C2
 *    only (C1 does not have it); P and C2 count in it;
 *  - V, a POSIX shared memory object (shm_open, /dev/shm/stasis-shmcount.PID)
 *    mapped MAP_SHARED before any fork: shared by the three tasks, who
 *    count in it too; removed at the end;
 *  - W, at one address A in every task but two different objects: P maps
 *    its own W at A after forking C1 (C2 inherits it, so P and C2 share it),
 *    and C1 maps its own W at the same address A. P and C2 count in theirs,
 *    C1 in its own: a restore that merged mappings by address would show
 *    C1's writes to P and the other way round.
 * After GO (P raises a flag in X):
 *  - every task sees the others' counters in X and V advance, C2 and P see each
 *    other's in Y and W, and nobody sees C1's W counter but C1 (and C1 sees
 *    nothing of P's W);
 *  - C1 has no mapping at Y; /proc/self/maps gives the same inode for X in
 *    the three tasks, for Y and W in P and C2, another for W in C1, all
 *    rw-s; V is the /dev/shm file in every task;
 *  - a child forked by P after the restore adds 1000 to the total through
 *    X, and P sees it;
 *  - once everyone stops: total == P's + C1's + C2's counters + 1000 (the
 *    counting was consistent across the checkpoint); C1 and C2 exit 0 and
 *    P reaps them.
 *
 * STASIS_SABOTAGE: unshare (C1 swaps X for a private copy), overshare (C1
 * writes into P's counter of its own W).
 */
#include "testprog.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

enum { P, C1, C2, NT };
static const char *const tname[NT] = { "P", "C1", "C2" };

struct xpage {
	volatile int go, stop;
	volatile long total;
	volatile long mine[NT];
	volatile long extra;	       /* from the child forked after GO */
	volatile unsigned long y_addr; /* where P mapped Y, for C1 */
	unsigned long ino_x[NT], ino_y[NT], ino_w[NT], ino_v[NT];
	char perms_x[NT][5], perms_y[NT][5], perms_w[NT][5], perms_v[NT][5];
	volatile int done[NT];
	char msg[NT][1024];
};

struct ypage {
	volatile long p, c2;
};

struct wpage {
	volatile long p, c1, c2;
};

struct vpage {
	volatile long n[NT];
};

static struct xpage *x;
static struct ypage *y;
static struct wpage *w;
static struct vpage *v;
static char shm_name[64];
static long pg;

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* The inode and permissions of the mapping at ADDR; 0 if unmapped. */
static unsigned long map_inode(const void *addr, char perms[5])
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	unsigned long ino = 0;

	strcpy(perms, "----");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e, in;
		char p[5];
		if (sscanf(line, "%lx-%lx %4s %*s %*s %lu", &s, &e, p, &in) != 4)
			continue;
		if ((unsigned long)addr >= s && (unsigned long)addr < e) {
			ino = in ? in : 1; /* mapped, no inode */
			memcpy(perms, p, 5);
			break;
		}
	}
	fclose(f);
	return ino;
}

/* One counting step of task T. */
static void count(int t)
{
	__atomic_fetch_add(&x->total, 1, __ATOMIC_SEQ_CST);
	x->mine[t]++;
	v->n[t]++;
	if (t == P) {
		y->p++;
		w->p++;
	} else if (t == C1) {
		w->c1++;
	} else {
		y->c2++;
		w->c2++;
	}
}

struct watch {
	const char *what;
	volatile long *v;
	long before;
};

/* Wait (at most 5 s) until every watched counter went up by 3 or more;
 * report the others. */
static void expect_progress(char *m, size_t len, struct watch *ws, int n, int self)
{
	size_t o = strlen(m);

	for (int i = 0; i < n; i++)
		ws[i].before = *ws[i].v;
	for (int k = 0; k < 5000; k++) {
		int all = 1;
		count(self);
		for (int i = 0; i < n; i++)
			all &= *ws[i].v >= ws[i].before + 3;
		if (all)
			return;
		nap_ms(1);
	}
	for (int i = 0; i < n; i++)
		if (*ws[i].v < ws[i].before + 3 && o < len)
			o += snprintf(m + o, len - o, " %s stuck at %ld (from %ld);", ws[i].what,
				      *ws[i].v, ws[i].before);
}

static void record_maps(int t)
{
	x->ino_x[t] = map_inode(x, x->perms_x[t]);
	x->ino_y[t] = map_inode(y, x->perms_y[t]);
	x->ino_w[t] = map_inode(w, x->perms_w[t]);
	x->ino_v[t] = map_inode(v, x->perms_v[t]);
}

/* What each task checks of its own view after GO. */
static void self_check(int t)
{
	char *m = x->msg[t];
	size_t len = sizeof(x->msg[t]);
	long wc1 = w->c1, wp = w->p, wc2 = w->c2;

	m[0] = 0;
	if (t == P) {
		struct watch ws[] = { { "X C1", &x->mine[C1], 0 }, { "X C2", &x->mine[C2], 0 },
				      { "Y C2", &y->c2, 0 },	   { "W C2", &w->c2, 0 },
				      { "V C1", &v->n[C1], 0 },	   { "V C2", &v->n[C2], 0 } };
		expect_progress(m, len, ws, 6, t);
		if (w->c1 != wc1 || wc1)
			snprintf(m + strlen(m), len - strlen(m), " sees C1's W counter (%ld);",
				 w->c1);
	} else if (t == C1) {
		struct watch ws[] = { { "X P", &x->mine[P], 0 },
				      { "X C2", &x->mine[C2], 0 },
				      { "V P", &v->n[P], 0 },
				      { "V C2", &v->n[C2], 0 } };
		expect_progress(m, len, ws, 4, t);
		if (w->p != wp || w->c2 != wc2 || wp || wc2)
			snprintf(m + strlen(m), len - strlen(m),
				 " sees P's or C2's W counters (%ld, %ld);", w->p, w->c2);
	} else {
		struct watch ws[] = { { "X P", &x->mine[P], 0 }, { "X C1", &x->mine[C1], 0 },
				      { "Y P", &y->p, 0 },	 { "W P", &w->p, 0 },
				      { "V P", &v->n[P], 0 },	 { "V C1", &v->n[C1], 0 } };
		expect_progress(m, len, ws, 6, t);
		if (w->c1 != wc1 || wc1)
			snprintf(m + strlen(m), len - strlen(m), " sees C1's W counter (%ld);",
				 w->c1);
	}
	record_maps(t);
}

static void __attribute__((noreturn)) child(int t)
{
	int checked = 0;

	while (!__atomic_load_n(&x->stop, __ATOMIC_ACQUIRE)) {
		count(t);
		if (!checked && __atomic_load_n(&x->go, __ATOMIC_ACQUIRE)) {
			if (t == C1 && tp_sabotaged("unshare")) {
				void *copy = malloc(pg);
				memcpy(copy, x, pg);
				mmap(x, pg, PROT_READ | PROT_WRITE,
				     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
				memcpy(x, copy, pg);
			}
			if (t == C1 && tp_sabotaged("overshare"))
				w->p++;
			self_check(t);
			__atomic_store_n(&x->done[t], 1, __ATOMIC_RELEASE);
			checked = 1;
		}
		nap_ms(1);
	}
	__atomic_store_n(&x->done[t], 2, __ATOMIC_RELEASE);
	_exit(0);
}

static void *map_shared(void *at)
{
	void *p = mmap(at, pg, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS | (at ? MAP_FIXED : 0), -1, 0);

	if (p == MAP_FAILED || (at && p != at))
		tp_die("mmap shared anonymous");
	memset(p, 0, pg);
	return p;
}

/* P waits for child T to reach LEVEL, counting meanwhile. */
static int wait_done(int t, int level, int seconds)
{
	for (int i = 0; i < seconds * 1000; i++) {
		if (__atomic_load_n(&x->done[t], __ATOMIC_ACQUIRE) >= level)
			return 1;
		if (!x->stop)
			count(P);
		nap_ms(1);
	}
	return 0;
}

int main(int argc, char **argv)
{
	pid_t kid[NT] = { 0 }, p;
	void *at;
	int st;

	tp_init(argc, argv, 1, "GOFILE");
	pg = sysconf(_SC_PAGESIZE);
	if ((long)sizeof(struct xpage) > pg)
		tp_die("struct xpage is larger than a page");
	x = map_shared(NULL);
	{
		int fd;
		snprintf(shm_name, sizeof(shm_name), "/stasis-shmcount.%d", (int)getpid());
		fd = shm_open(shm_name, O_RDWR | O_CREAT | O_EXCL, 0600);
		if (fd < 0 || ftruncate(fd, pg))
			tp_die("shm_open %s", shm_name);
		v = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (v == MAP_FAILED)
			tp_die("mmap %s", shm_name);
		close(fd);
	}
	/* reserve W's address in every task */
	at = mmap(NULL, pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (at == MAP_FAILED)
		tp_die("mmap reservation");

	if ((kid[C1] = fork()) < 0)
		tp_die("fork C1");
	if (kid[C1] == 0) {
		w = map_shared(at); /* C1's own W */
		/* Y is where P maps it after this fork: C1 has nothing
		 * there, it only looks at that address */
		while (!x->y_addr)
			nap_ms(1);
		y = (struct ypage *)x->y_addr;
		x->done[C1] = -1; /* set up */
		child(C1);
	}
	y = map_shared(NULL);
	w = map_shared(at); /* P's W, inherited by C2 */
	x->y_addr = (unsigned long)y;
	for (int i = 0; i < 5000 && x->done[C1] != -1; i++)
		nap_ms(1);
	if (x->done[C1] != -1)
		tp_die("C1 did not start");
	x->done[C1] = 0;
	if ((kid[C2] = fork()) < 0)
		tp_die("fork C2");
	if (kid[C2] == 0)
		child(C2);

	for (int i = 0; i < 1000; i++) {
		count(P);
		nap_ms(1);
		if (x->mine[C1] > 20 && x->mine[C2] > 20)
			break;
	}
	if (x->mine[C1] <= 20 || x->mine[C2] <= 20)
		tp_die("the children do not count");

	tp_ready();
	while (access(tp_gofile, F_OK) != 0) {
		count(P);
		nap_ms(1);
	}

	__atomic_store_n(&x->go, 1, __ATOMIC_RELEASE);
	self_check(P);
	for (int t = C1; t < NT; t++)
		if (!wait_done(t, 1, 15))
			tp_fail("%s (%d) did not see the go flag P wrote in X within 15 s",
				tname[t], (int)kid[t]);

	/* a child forked now shares X too */
	long before = x->total;
	if ((p = fork()) == 0) {
		x->extra += 1000;
		__atomic_fetch_add(&x->total, 1000, __ATOMIC_SEQ_CST);
		_exit(0);
	}
	if (p < 0 || waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st))
		tp_fail("fork/wait of a new child failed");
	else if (x->total < before + 1000 || x->extra != 1000)
		tp_fail(
		    "a child forked after the restore added 1000 to X, P sees total %ld -> %ld, "
		    "extra %ld",
		    before, x->total, x->extra);

	__atomic_store_n(&x->stop, 1, __ATOMIC_RELEASE);
	for (int t = C1; t < NT; t++) {
		st = 0;
		if (!wait_done(t, 2, 10)) {
			tp_fail("%s (%d) did not stop", tname[t], (int)kid[t]);
			kill(kid[t], SIGKILL);
		}
		if (waitpid(kid[t], &st, 0) != kid[t] || !WIFEXITED(st) || WEXITSTATUS(st))
			tp_fail("%s (%d): wait status %#x, expected exit 0", tname[t], (int)kid[t],
				st);
	}

	for (int t = 0; t < NT; t++) {
		size_t n = strlen(x->msg[t]);
		if (n && x->msg[t][n - 1] == ';')
			x->msg[t][n - 1] = 0;
		if (n)
			tp_fail("%s (%d) says:%s", tname[t], t ? (int)kid[t] : (int)getpid(),
				x->msg[t]);
	}
	if (x->total != x->mine[P] + x->mine[C1] + x->mine[C2] + x->extra)
		tp_fail("total %ld != %ld (P) + %ld (C1) + %ld (C2) + %ld", x->total, x->mine[P],
			x->mine[C1], x->mine[C2], x->extra);

	/* The mappings as /proc/self/maps shows them. */
	for (int t = 0; t < NT; t++) {
		if (strcmp(x->perms_x[t], "rw-s"))
			tp_fail("%s: X is %s, expected rw-s", tname[t], x->perms_x[t]);
		if (x->ino_x[t] != x->ino_x[P])
			tp_fail("%s: X has inode %lu, P's is %lu (not the same object)", tname[t],
				x->ino_x[t], x->ino_x[P]);
		if (strcmp(x->perms_w[t], "rw-s"))
			tp_fail("%s: W is %s, expected rw-s", tname[t], x->perms_w[t]);
	}
	if (strcmp(x->perms_y[P], "rw-s") || strcmp(x->perms_y[C2], "rw-s"))
		tp_fail("Y is %s in P and %s in C2, expected rw-s", x->perms_y[P], x->perms_y[C2]);
	if (x->ino_y[C1])
		tp_fail("C1 has a mapping (%s, inode %lu) where P mapped Y after forking it",
			x->perms_y[C1], x->ino_y[C1]);
	if (x->ino_y[C2] != x->ino_y[P])
		tp_fail("Y: inode %lu in C2, %lu in P", x->ino_y[C2], x->ino_y[P]);
	if (x->ino_w[C2] != x->ino_w[P])
		tp_fail("W: inode %lu in C2, %lu in P (should be the same object)", x->ino_w[C2],
			x->ino_w[P]);
	if (x->ino_w[C1] == x->ino_w[P])
		tp_fail("W: C1's and P's are the same object (inode %lu)", x->ino_w[P]);
	{
		struct stat sb;
		char path[96];
		snprintf(path, sizeof(path), "/dev/shm%s", shm_name);
		if (stat(path, &sb))
			tp_fail("%s: %s", path, strerror(errno));
		for (int t = 0; t < NT; t++)
			if (strcmp(x->perms_v[t], "rw-s") ||
			    x->ino_v[t] != (unsigned long)sb.st_ino)
				tp_fail(
				    "%s: V is %s with inode %lu, expected rw-s and %s's inode %lu",
				    tname[t], x->perms_v[t], x->ino_v[t], path,
				    (unsigned long)sb.st_ino);
		shm_unlink(shm_name);
	}
	if (x->ino_x[P] == x->ino_w[P] || x->ino_x[P] == x->ino_y[P] || x->ino_y[P] == x->ino_w[P])
		tp_fail("X, Y and W of P are not three objects (inodes %lu %lu %lu)", x->ino_x[P],
			x->ino_y[P], x->ino_w[P]);
	return tp_finish();
}
