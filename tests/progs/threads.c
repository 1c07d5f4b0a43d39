/* threads GOFILE
 *
 * A multi-threaded process (issue 3): the main thread, 8 workers and a
 * waiter, each with its own state:
 *  - name: "thr-main" (prctl), "worker-0".."worker-7", "waiter"
 *    (pthread_setname_np);
 *  - blocked signals: worker I blocks SIGRTMIN+I, plus SIGUSR1, SIGUSR2 and
 *    SIGWINCH according to bits 0, 1 and 2 of I; the waiter blocks SIGRTMIN+8
 *    and SIGPROF; main blocks SIGRTMIN+9;
 *  - a thread-private pending signal: SIGRTMIN+I queued to worker I with
 *    value 100+I, SIGRTMIN+8 to the waiter with value 108;
 *  - MXCSR rounding mode (I % 4: nearest, down, up, toward zero), a __thread
 *    variable (fs base), the glibc robust list and rseq registration.
 * The workers pass a token round a ring (mutex + condition variable: futex
 * hand-offs; at any time most of them wait in pthread_cond_wait) and
 * between turns run a floating-point and integer recurrence whose result is
 * fully determined by the number of steps. The waiter holds a robust mutex
 * and is blocked in pthread_cond_wait until after GO.
 *
 * After GO:
 *  - /proc/self/task lists exactly the same TIDs; each thread's name,
 *    SigBlk, SigPnd, robust list head, state (not stopped) and tracer (none)
 *    are as at READY;
 *  - each worker checks itself at its next turn: gettid(), pthread_self(),
 *    its __thread variable, name, sigmask, MXCSR, robust list, rseq still
 *    registered (rseq() answers EBUSY for the same area), and its pending
 *    signal (delivered by sigtimedwait with its value, then none pending);
 *  - the ring goes on: every worker takes more turns, the token count is
 *    the sum of the turns and no worker is more than one turn ahead;
 *  - each worker's recurrence state (x, y, h after n steps) is exactly what
 *    n steps from its start give, under its own rounding mode;
 *  - the waiter is still in a futex wait; woken, it checks itself and exits
 *    holding the robust mutex: pthread_join returns (clear_child_tid) and
 *    locking the mutex gives EOWNERDEAD (robust list);
 *  - the workers stop and are joined; a new thread can be created.
 *
 * STASIS_SABOTAGE: name (worker 3 renames itself), sigmask (worker 2 blocks
 * SIGTTOU), arith (worker 1 perturbs its state), rounding (worker 6 changes
 * its rounding mode), ring (worker 5 stops taking turns).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testprog.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <x86intrin.h>

#define N      8
#define STEPS  256
#define WAITER N /* slot index of the waiter */
#define NSLOTS (N + 1)

struct arith {
	unsigned long n;
	double x, y;
	unsigned long long h;
};

struct slot {
	pid_t tid;
	pthread_t self;
	char name[16];
	sigset_t mask;		   /* the mask the thread set itself */
	unsigned long long sigblk; /* /proc SigBlk at READY */
	unsigned long long sigpnd; /* /proc SigPnd at READY */
	void *robust_head;
	size_t robust_len;
	int rseq_len; /* length rseq() answers EBUSY for, 0 none */
	unsigned mxcsr;
	struct arith start, pub; /* pub: published at each turn, under m */
	long turns;
	volatile int done;
	char msg[1024];
};

static struct slot slots[NSLOTS];
static pthread_t threads[NSLOTS];
static __thread int tls_id = -1;

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static long token;
static volatile int go, stop, nready;

static pthread_mutex_t wm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wc = PTHREAD_COND_INITIALIZER;
static int wake;
static pthread_mutex_t robust;

static pid_t gettid_(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static __attribute__((noinline)) void advance(struct arith *a, unsigned long steps)
{
	double x = a->x, y = a->y;
	unsigned long long h = a->h;

	for (unsigned long i = 0; i < steps; i++) {
		x = x * 1.0000001 + 0.4999999;
		y = y * 0.9999997 + x * 1e-7;
		h = h * 6364136223846793005ULL + 1442695040888963407ULL;
		h ^= h >> 29;
	}
	a->x = x;
	a->y = y;
	a->h = h;
	a->n += steps;
}

static unsigned mxcsr_for(int id)
{
	return 0x1f80u | ((unsigned)(id % 4) << 13);
}

static void *rseq_area(void)
{
	char *tp;

	__asm__("mov %%fs:0, %0" : "=r"(tp));
	return tp + __rseq_offset;
}

/* The length rseq() answers EBUSY for (registered with this area), 0 when
 * registered otherwise, -1 when not registered at all. */
static int rseq_probe(void)
{
	const int lens[] = { 32, (int)__rseq_size, (int)sizeof(struct rseq) };

	if (!__rseq_size)
		return 0;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		long r = syscall(SYS_rseq, rseq_area(), lens[i], 0, RSEQ_SIG);
		if (r == 0) { /* it was not registered: undo ours */
			syscall(SYS_rseq, rseq_area(), lens[i], RSEQ_FLAG_UNREGISTER, RSEQ_SIG);
			return -1;
		}
		if (errno == EBUSY)
			return lens[i];
	}
	return 0;
}

static void set_str(const sigset_t *set, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = 0;
	for (int s = 1; s < 65 && o + 8 < len; s++)
		if (sigismember(set, s) == 1)
			o += snprintf(buf + o, len - o, "%s%d", o ? "," : "", s);
}

static int same_set(const sigset_t *a, const sigset_t *b)
{
	for (int s = 1; s < 65; s++)
		if (sigismember(a, s) != sigismember(b, s))
			return 0;
	return 1;
}

/* Set up the calling thread as slot ID; MASK is its signal mask. */
static void setup_self(int id, const char *name, const sigset_t *mask)
{
	struct slot *s = &slots[id];

	tls_id = id;
	s->tid = gettid_();
	s->self = pthread_self();
	snprintf(s->name, sizeof(s->name), "%s", name);
	if (pthread_setname_np(pthread_self(), name))
		tp_die("pthread_setname_np");
	s->mask = *mask;
	if (pthread_sigmask(SIG_SETMASK, mask, NULL))
		tp_die("pthread_sigmask");
	if (syscall(SYS_get_robust_list, 0, &s->robust_head, &s->robust_len))
		tp_die("get_robust_list");
	s->rseq_len = rseq_probe();
	s->mxcsr = mxcsr_for(id);
	_mm_setcsr(s->mxcsr);
}

#define CHK(cond, ...)                                                                             \
	do {                                                                                       \
		if (!(cond) && o < len)                                                            \
			o += snprintf(m_ + o, len - o, __VA_ARGS__);                               \
	} while (0)

/* A thread's own check after GO; its findings go to its slot. */
static void self_check(int id, int signo, int value)
{
	struct slot *s = &slots[id];
	char *m_ = s->msg, name[17] = "", a[256], b[256];
	size_t len = sizeof(s->msg), o = 0;
	sigset_t cur, pend, want;
	void *head = NULL;
	size_t hlen = 0;
	siginfo_t si;
	struct timespec zero = { 0, 0 };
	int r;

	if (id == 3 && tp_sabotaged("name"))
		pthread_setname_np(pthread_self(), "renamed");
	if (id == 2 && tp_sabotaged("sigmask")) {
		sigemptyset(&cur);
		sigaddset(&cur, SIGTTOU);
		pthread_sigmask(SIG_BLOCK, &cur, NULL);
	}
	if (id == 6 && tp_sabotaged("rounding"))
		_mm_setcsr(mxcsr_for(id + 1));

	CHK(gettid_() == s->tid, " gettid() %d, was %d;", (int)gettid_(), (int)s->tid);
	CHK(pthread_equal(pthread_self(), s->self), " pthread_self() changed;");
	CHK(tls_id == id, " __thread variable %d, expected %d;", tls_id, id);
	prctl(PR_GET_NAME, name, 0, 0, 0);
	memcpy(a, s->name, sizeof(s->name));
	CHK(!strcmp(name, a), " name '%s', was '%s';", name, a);
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	if (!same_set(&cur, &s->mask)) {
		set_str(&cur, a, sizeof(a));
		set_str(&s->mask, b, sizeof(b));
		CHK(0, " blocked {%s}, was {%s};", a, b);
	}
	/* control bits only: the exception flags (bits 0-5) are sticky */
	CHK((_mm_getcsr() & ~0x3fu) == s->mxcsr, " MXCSR %#x, was %#x;", _mm_getcsr() & ~0x3fu,
	    s->mxcsr);
	syscall(SYS_get_robust_list, 0, &head, &hlen);
	CHK(head == s->robust_head && hlen == s->robust_len, " robust list %p/%zu, was %p/%zu;",
	    head, hlen, s->robust_head, s->robust_len);
	r = rseq_probe();
	CHK(r == s->rseq_len, " rseq: %s (was registered with length %d);",
	    r < 0    ? "not registered"
	    : r == 0 ? "registered with other parameters"
		     : "other length",
	    s->rseq_len);

	/* The pending thread-private signal, delivered once with its value. */
	sigpending(&pend);
	sigemptyset(&want);
	sigaddset(&want, signo);
	if (!same_set(&pend, &want)) {
		set_str(&pend, a, sizeof(a));
		CHK(0, " pending {%s}, expected {%d};", a, signo);
	}
	memset(&si, 0, sizeof(si));
	r = sigtimedwait(&want, &si, &zero);
	CHK(r == signo && si.si_code == SI_QUEUE && si.si_value.sival_int == value &&
		si.si_pid == getpid(),
	    " sigtimedwait: %d code %d value %d pid %d, expected %d SI_QUEUE %d %d;", r, si.si_code,
	    si.si_value.sival_int, (int)si.si_pid, signo, value, (int)getpid());
	sigpending(&pend);
	sigemptyset(&want);
	if (!same_set(&pend, &want)) {
		set_str(&pend, a, sizeof(a));
		CHK(0, " still pending {%s};", a);
	}
	o = strlen(s->msg);
	if (o && s->msg[o - 1] == ';')
		s->msg[o - 1] = 0;
	__atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
}

static void *worker(void *arg)
{
	int id = (int)(long)arg, checked = 0;
	struct slot *s = &slots[id];
	struct arith a;
	char name[16];
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGRTMIN + id);
	if (id & 1)
		sigaddset(&mask, SIGUSR1);
	if (id & 2)
		sigaddset(&mask, SIGUSR2);
	if (id & 4)
		sigaddset(&mask, SIGWINCH);
	snprintf(name, sizeof(name), "worker-%d", id);
	setup_self(id, name, &mask);
	a.n = 0;
	a.x = id + 1.0;
	a.y = 1.0 / (id + 2);
	a.h = 0x1234567ULL * (unsigned)id + 1;
	s->start = a;
	s->pub = a;
	__atomic_fetch_add(&nready, 1, __ATOMIC_ACQ_REL);

	for (;;) {
		pthread_mutex_lock(&m);
		while (token % N != id && !stop)
			pthread_cond_wait(&c, &m);
		if (stop) {
			pthread_mutex_unlock(&m);
			return NULL;
		}
		if (id == 5 && checked && tp_sabotaged("ring")) {
			pthread_mutex_unlock(&m);
			while (!stop)
				nap_ms(1);
			return NULL;
		}
		token++;
		s->turns++;
		s->pub = a;
		pthread_cond_broadcast(&c);
		pthread_mutex_unlock(&m);
		if (!checked && __atomic_load_n(&go, __ATOMIC_ACQUIRE)) {
			self_check(id, SIGRTMIN + id, 100 + id);
			if (id == 1 && tp_sabotaged("arith"))
				a.x += 1;
			checked = 1;
		}
		advance(&a, STEPS);
	}
}

static void *waiter(void *arg)
{
	sigset_t mask;

	(void)arg;
	sigemptyset(&mask);
	sigaddset(&mask, SIGRTMIN + 8);
	sigaddset(&mask, SIGPROF);
	setup_self(WAITER, "waiter", &mask);
	if (pthread_mutex_lock(&robust))
		tp_die("lock the robust mutex");
	pthread_mutex_lock(&wm);
	__atomic_fetch_add(&nready, 1, __ATOMIC_ACQ_REL);
	while (!wake)
		pthread_cond_wait(&wc, &wm);
	pthread_mutex_unlock(&wm);
	self_check(WAITER, SIGRTMIN + 8, 108);
	/* exit holding the robust mutex */
	return NULL;
}

static void *trivial(void *arg)
{
	return arg;
}

/* A hexadecimal field of /proc/self/task/TID/status. */
static unsigned long long task_status_hex(pid_t tid, const char *key)
{
	char path[64], line[256];
	unsigned long long v = ~0ULL;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	if (!(f = fopen(path, "re")))
		return v;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			v = strtoull(line + strlen(key), NULL, 16);
	fclose(f);
	return v;
}

static int task_status_int(pid_t tid, const char *key)
{
	char path[64], line[256];
	int v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	if (!(f = fopen(path, "re")))
		return v;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			v = atoi(line + strlen(key));
	fclose(f);
	return v;
}

static char task_state(pid_t tid)
{
	char path[64], line[256];
	char st = '?';
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	if (!(f = fopen(path, "re")))
		return st;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "State:", 6))
			sscanf(line + 6, " %c", &st);
	fclose(f);
	return st;
}

static void task_comm(pid_t tid, char *buf, size_t len)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/comm", (int)tid);
	buf[0] = 0;
	if ((f = fopen(path, "re"))) {
		if (!fgets(buf, (int)len, f))
			buf[0] = 0;
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = 0;
}

/* The system call a thread is in (first field of /proc/.../syscall). */
static long task_syscall(pid_t tid)
{
	char path[64], buf[256];
	long nr = -2;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	if ((f = fopen(path, "re"))) {
		if (fgets(buf, sizeof(buf), f))
			nr = strtol(buf, NULL, 10);
		fclose(f);
	}
	return nr;
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* The TIDs of /proc/self/task, sorted, as text. */
static void task_list(char *out, size_t len)
{
	int v[64], n = 0, off = 0;
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	while (d && (e = readdir(d)) && n < 64)
		if (e->d_name[0] != '.')
			v[n++] = atoi(e->d_name);
	if (d)
		closedir(d);
	qsort(v, n, sizeof(int), cmp_int);
	out[0] = 0;
	for (int i = 0; i < n && off < (int)len; i++)
		off += snprintf(out + off, len - off, "%s%d", i ? " " : "", v[i]);
}

static void expected_tasks(char *out, size_t len)
{
	int v[NSLOTS + 1], n = 0, off = 0;

	v[n++] = getpid();
	for (int i = 0; i < NSLOTS; i++)
		v[n++] = slots[i].tid;
	qsort(v, n, sizeof(int), cmp_int);
	out[0] = 0;
	for (int i = 0; i < n && off < (int)len; i++)
		off += snprintf(out + off, len - off, "%s%d", i ? " " : "", v[i]);
}

static struct {
	char name[16];
	unsigned long long sigblk, sigpnd;
} main_ready;

static void record_proc(void)
{
	for (int i = 0; i < NSLOTS; i++) {
		slots[i].sigblk = task_status_hex(slots[i].tid, "SigBlk:");
		slots[i].sigpnd = task_status_hex(slots[i].tid, "SigPnd:");
	}
	task_comm(getpid(), main_ready.name, sizeof(main_ready.name));
	main_ready.sigblk = task_status_hex(getpid(), "SigBlk:");
	main_ready.sigpnd = task_status_hex(getpid(), "SigPnd:");
}

/* The view of every thread from /proc. */
static void check_outside(void)
{
	char a[1024], b[1024];

	task_list(a, sizeof(a));
	expected_tasks(b, sizeof(b));
	if (strcmp(a, b))
		tp_fail("/proc/self/task: {%s}, expected {%s}", a, b);
	for (int i = -1; i < NSLOTS; i++) {
		pid_t tid = i < 0 ? getpid() : slots[i].tid;
		const char *want = i < 0 ? main_ready.name : slots[i].name;
		unsigned long long blk = i < 0 ? main_ready.sigblk : slots[i].sigblk;
		unsigned long long pnd = i < 0 ? main_ready.sigpnd : slots[i].sigpnd;
		char st = task_state(tid);
		int tracer = task_status_int(tid, "TracerPid:");
		void *head = NULL;
		size_t hlen = 0;

		task_comm(tid, a, sizeof(a));
		if (strcmp(a, want))
			tp_fail("thread %d: name '%s', was '%s'", (int)tid, a, want);
		if (task_status_hex(tid, "SigBlk:") != blk)
			tp_fail("thread %d (%s): SigBlk %#llx, was %#llx", (int)tid, want,
				task_status_hex(tid, "SigBlk:"), blk);
		if (task_status_hex(tid, "SigPnd:") != pnd)
			tp_fail("thread %d (%s): SigPnd %#llx, was %#llx", (int)tid, want,
				task_status_hex(tid, "SigPnd:"), pnd);
		if (st == 'T' || st == 't' || st == 'Z' || st == 'X' || st == '?')
			tp_fail("thread %d (%s) is in state %c", (int)tid, want, st);
		if (tracer != 0)
			tp_fail("thread %d (%s) is traced by %d", (int)tid, want, tracer);
		if (i >= 0) {
			syscall(SYS_get_robust_list, tid, &head, &hlen);
			if (head != slots[i].robust_head || hlen != slots[i].robust_len)
				tp_fail("thread %d (%s): robust list %p/%zu, was %p/%zu", (int)tid,
					want, head, hlen, slots[i].robust_head,
					slots[i].robust_len);
		}
	}
	if (task_status_hex(getpid(), "ShdPnd:") != 0)
		tp_fail("process-wide pending signals %#llx, expected none",
			task_status_hex(getpid(), "ShdPnd:"));
	if (task_syscall(slots[WAITER].tid) != SYS_futex)
		tp_fail("the waiter (%d) is in system call %ld, expected futex (%d)",
			(int)slots[WAITER].tid, task_syscall(slots[WAITER].tid), SYS_futex);
}

static void check_workers(void)
{
	long before[N], total = 0, lo = -1, hi = 0;
	int i;

	for (i = 0; i < 10000; i++) {
		int all = 1;
		for (int k = 0; k < N; k++)
			all &= __atomic_load_n(&slots[k].done, __ATOMIC_ACQUIRE);
		if (all)
			break;
		nap_ms(1);
	}
	for (int k = 0; k < N; k++)
		if (!slots[k].done)
			tp_fail(
			    "worker %d (%d) did not check itself within 10 s (no turn: the ring "
			    "is stuck)",
			    k, (int)slots[k].tid);
		else if (slots[k].msg[0])
			tp_fail("worker %d (%d) says:%s", k, (int)slots[k].tid, slots[k].msg);

	/* The ring goes on. */
	pthread_mutex_lock(&m);
	for (int k = 0; k < N; k++)
		before[k] = slots[k].turns;
	pthread_mutex_unlock(&m);
	for (i = 0; i < 500; i++) {
		int all = 1;
		pthread_mutex_lock(&m);
		for (int k = 0; k < N; k++)
			all &= slots[k].turns >= before[k] + 20;
		pthread_mutex_unlock(&m);
		if (all)
			break;
		nap_ms(10);
	}
	pthread_mutex_lock(&m);
	for (int k = 0; k < N; k++) {
		if (slots[k].turns < before[k] + 20)
			tp_fail("worker %d: %ld turns in 5 s (from %ld)", k,
				slots[k].turns - before[k], before[k]);
		total += slots[k].turns;
		if (lo < 0 || slots[k].turns < lo)
			lo = slots[k].turns;
		if (slots[k].turns > hi)
			hi = slots[k].turns;
	}
	if (total != token)
		tp_fail("token %ld, but the workers took %ld turns", token, total);
	if (hi - lo > 1)
		tp_fail("turns range from %ld to %ld (the ring order broke)", lo, hi);

	/* The recurrences, recomputed. */
	struct arith pub[N];
	for (int k = 0; k < N; k++)
		pub[k] = slots[k].pub;
	pthread_mutex_unlock(&m);
	unsigned saved = _mm_getcsr();
	for (int k = 0; k < N; k++) {
		struct arith a = slots[k].start;
		_mm_setcsr(slots[k].mxcsr);
		advance(&a, pub[k].n);
		_mm_setcsr(saved);
		if (memcmp(&a.x, &pub[k].x, sizeof(a.x)) || memcmp(&a.y, &pub[k].y, sizeof(a.y)) ||
		    a.h != pub[k].h)
			tp_fail("worker %d: after %lu steps x=%a y=%a h=%#llx, expected x=%a y=%a "
				"h=%#llx",
				k, pub[k].n, pub[k].x, pub[k].y, pub[k].h, a.x, a.y, a.h);
		if (pub[k].n == 0)
			tp_fail("worker %d did no arithmetic", k);
	}
}

static void check_waiter(void)
{
	struct timespec ts;
	int r;

	pthread_mutex_lock(&wm);
	wake = 1;
	pthread_cond_signal(&wc);
	pthread_mutex_unlock(&wm);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	r = pthread_timedjoin_np(threads[WAITER], NULL, &ts);
	if (r) {
		tp_fail("pthread_join(waiter): %s (%s)", strerror(r),
			__atomic_load_n(&slots[WAITER].done, __ATOMIC_ACQUIRE)
			    ? "it ran to its end: clear_child_tid lost?"
			    : "it did not wake from pthread_cond_wait");
		return;
	}
	if (slots[WAITER].msg[0])
		tp_fail("the waiter (%d) says:%s", (int)slots[WAITER].tid, slots[WAITER].msg);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 3;
	r = pthread_mutex_timedlock(&robust, &ts);
	if (r != EOWNERDEAD)
		tp_fail("locking the robust mutex the waiter died holding: %s, expected EOWNERDEAD "
			"(robust list lost?)",
			strerror(r));
	else {
		pthread_mutex_consistent(&robust);
		pthread_mutex_unlock(&robust);
	}
}

static void stop_workers(void)
{
	struct timespec ts;

	pthread_mutex_lock(&m);
	stop = 1;
	pthread_cond_broadcast(&c);
	pthread_mutex_unlock(&m);
	for (int k = 0; k < N; k++) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 5;
		int r = pthread_timedjoin_np(threads[k], NULL, &ts);
		if (r)
			tp_fail("pthread_join(worker %d): %s", k, strerror(r));
	}
}

int main(int argc, char **argv)
{
	pthread_mutexattr_t ma;
	pthread_t t;
	sigset_t mask;
	union sigval v;
	void *ret = NULL;

	tp_init(argc, argv, 1, "GOFILE");
	prctl(PR_SET_NAME, "thr-main", 0, 0, 0);
	sigemptyset(&mask);
	sigaddset(&mask, SIGRTMIN + 9);
	if (pthread_sigmask(SIG_SETMASK, &mask, NULL))
		tp_die("pthread_sigmask");

	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	if (pthread_mutex_init(&robust, &ma))
		tp_die("robust mutex");

	for (long i = 0; i < N; i++)
		if (pthread_create(&threads[i], NULL, worker, (void *)i))
			tp_die("pthread_create");
	if (pthread_create(&threads[WAITER], NULL, waiter, NULL))
		tp_die("pthread_create");
	for (int i = 0; i < 10000 && __atomic_load_n(&nready, __ATOMIC_ACQUIRE) < NSLOTS; i++)
		nap_ms(1);
	if (nready < NSLOTS)
		tp_die("threads did not start");
	for (int i = 0; i < NSLOTS; i++)
		if (slots[i].rseq_len < 0)
			tp_die("thread %d is not registered with rseq", i);
	for (int i = 0; i < N; i++) {
		v.sival_int = 100 + i;
		if (pthread_sigqueue(threads[i], SIGRTMIN + i, v))
			tp_die("pthread_sigqueue");
	}
	v.sival_int = 108;
	if (pthread_sigqueue(threads[WAITER], SIGRTMIN + 8, v))
		tp_die("pthread_sigqueue");
	/* the waiter must be asleep in its condition wait */
	for (int i = 0; i < 5000 && task_syscall(slots[WAITER].tid) != SYS_futex; i++)
		nap_ms(1);
	if (task_syscall(slots[WAITER].tid) != SYS_futex)
		tp_die("the waiter is not in a futex wait");
	record_proc();
	/* let the ring run a little */
	nap_ms(200);
	if (token < N)
		tp_die("the ring does not turn");

	tp_ready();
	tp_wait_go();

	check_outside();
	__atomic_store_n(&go, 1, __ATOMIC_RELEASE);
	check_workers();
	check_waiter();
	stop_workers();
	if (pthread_create(&t, NULL, trivial, (void *)42L) || pthread_join(t, &ret) ||
	    ret != (void *)42L)
		tp_fail("cannot create and join a new thread");
	return tp_finish();
}
