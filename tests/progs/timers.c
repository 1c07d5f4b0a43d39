/* timers GOFILE
 *
 * Interval and POSIX timers armed at the dump fire on time after the
 * restore, with their intervals, IDs, clocks and notifications.
 *
 *   ITIMER_REAL      4 s, then every 300 ms (SIGALRM)
 *   ITIMER_VIRTUAL   100 s, interval 50 s;  ITIMER_PROF 200 s, one-shot
 *   POSIX timer 0    CLOCK_MONOTONIC, SIGUSR1, value 0xa11ce, 4.5 s then
 *                    every 250 ms
 *   POSIX timer 1    deleted: its ID stays unused
 *   POSIX timer 2    CLOCK_REALTIME, SIGRTMIN+1 to this thread (tid), value
 *                    0xc0ffee, one-shot 5 s
 *   POSIX timer 3    CLOCK_BOOTTIME, SIGEV_NONE, not armed
 *   POSIX timer 4    CLOCK_MONOTONIC, SIGUSR2, 1000 s then every 7 s
 *   timer slack      777777 ns
 *
 * After GO: the intervals are exactly the same; the time left is at most
 * what it was at READY (a CPU-time timer: plus a kernel tick, which every
 * setitimer adds) and at most 2.5 s less (the time the checkpoint
 * spent on disk does not count); /proc/self/timers reads the same; the next
 * expirations come when the time left says (+-150 ms) and then every
 * interval (+-150 ms), with the right siginfo; timer 2 fires once; ID 1 is
 * invalid; a new timer gets a new ID.
 *
 * STASIS_SABOTAGE=itimer changes the ITIMER_REAL interval after GO;
 * =posix deletes timer 2.
 */
#include "testprog.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>

#define MAXHITS 64
#define SLACK 777777
#define TOLERANCE 0.15
#define CPU_TICK 0.0101

struct hits {
	volatile int n;
	double at[MAXHITS];
	siginfo_t si[MAXHITS];
};

static struct hits alrm, usr1, rt, usr2;

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void on_signal(int sig, siginfo_t *si, void *uc)
{
	struct hits *h = sig == SIGALRM ? &alrm
			 : sig == SIGUSR1 ? &usr1
			 : sig == SIGUSR2 ? &usr2
					  : &rt;

	(void)uc;
	if (h->n < MAXHITS) {
		h->at[h->n] = now();
		h->si[h->n] = *si;
		h->n++;
	}
}

static double tv(struct timeval t)
{
	return t.tv_sec + t.tv_usec / 1e6;
}

static double ts(struct timespec t)
{
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void read_timers(char *buf, size_t size)
{
	FILE *f = fopen("/proc/self/timers", "re");
	size_t n = f ? fread(buf, 1, size - 1, f) : 0;

	buf[n] = 0;
	if (f)
		fclose(f);
}

static timer_t make_timer(clockid_t clock, int notify, int sig, unsigned long val)
{
	struct sigevent sev;
	timer_t id;

	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = notify;
	sev.sigev_signo = sig;
	sev.sigev_value.sival_ptr = (void *)val;
	if (notify & SIGEV_THREAD_ID)
		sev._sigev_un._tid = gettid();
	if (timer_create(clock, &sev, &id))
		tp_die("timer_create");
	return id;
}

static void arm(timer_t id, double value, double interval)
{
	struct itimerspec v = {
		{ (time_t)interval, (long)((interval - (time_t)interval) * 1e9) },
		{ (time_t)value, (long)((value - (time_t)value) * 1e9) },
	};

	if (timer_settime(id, 0, &v, NULL))
		tp_die("timer_settime");
}

/* Time left at GO: at most as at READY (plus slack), at most 2.5 s less. */
static void check_left(const char *what, double ready, double go, double slack)
{
	if (go > ready + slack || go < ready - 2.5 || go <= 0)
		tp_fail("%s: %.3f s left after the restore, %.3f s at READY", what, go, ready);
}

/* Expirations after GO: the first 'first' s after it, then every 'every'. */
static void check_hits(const char *what, struct hits *h, double t_go, double first, double every,
		       int want, long sival, int timerid)
{
	double expect = t_go + first;
	int k = 0;

	for (int i = 0; i < h->n; i++) {
		if (h->at[i] < t_go)
			continue;
		if (h->at[i] < expect - TOLERANCE || h->at[i] > expect + TOLERANCE)
			tp_fail("%s: expiration %d came %+.3f s from when it was due", what, k,
				h->at[i] - expect);
		if (timerid >= 0 && (h->si[i].si_code != SI_TIMER ||
				     (long)h->si[i].si_value.sival_ptr != sival ||
				     h->si[i].si_timerid != timerid))
			tp_fail("%s: siginfo code %d value %#lx timer %d", what, h->si[i].si_code,
				(long)h->si[i].si_value.sival_ptr, h->si[i].si_timerid);
		expect = h->at[i] + every;
		k++;
	}
	if (k < want || (!every && k != want))
		tp_fail("%s: %d expirations after GO, expected %s%d", what, k,
			every ? "at least " : "", want);
}

int main(int argc, char **argv)
{
	static char procs_ready[4096], procs_go[4096];
	struct itimerval real = { { 0, 300000 }, { 4, 0 } }, virt = { { 50, 0 }, { 100, 0 } },
			 prof = { { 0, 0 }, { 200, 0 } }, r0, v0, p0, r1, v1, p1;
	struct itimerspec a0, c0, d0, e0, a1, c1, d1, e1, x;
	timer_t a, b, c, d, e;
	struct sigaction sa;
	double t_go, until;

	tp_init(argc, argv, 1, "GOFILE");
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	if (sigaction(SIGALRM, &sa, NULL) || sigaction(SIGUSR1, &sa, NULL) ||
	    sigaction(SIGUSR2, &sa, NULL) || sigaction(SIGRTMIN + 1, &sa, NULL))
		tp_die("sigaction");

	a = make_timer(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGUSR1, 0xa11ce);
	b = make_timer(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGUSR1, 0xb);
	c = make_timer(CLOCK_REALTIME, SIGEV_SIGNAL | SIGEV_THREAD_ID, SIGRTMIN + 1, 0xc0ffee);
	d = make_timer(CLOCK_BOOTTIME, SIGEV_NONE, 0, 0);
	e = make_timer(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGUSR2, 0xe);
	if ((long)a != 0 || (long)b != 1 || (long)c != 2 || (long)d != 3 || (long)e != 4)
		tp_die("timer IDs are not 0..4");
	if (timer_delete(b))
		tp_die("timer_delete");
	arm(a, 4.5, 0.25);
	arm(c, 5, 0);
	arm(e, 1000, 7);
	if (setitimer(ITIMER_REAL, &real, NULL) || setitimer(ITIMER_VIRTUAL, &virt, NULL) ||
	    setitimer(ITIMER_PROF, &prof, NULL))
		tp_die("setitimer");
	if (prctl(PR_SET_TIMERSLACK, SLACK, 0, 0, 0))
		tp_die("PR_SET_TIMERSLACK");

	getitimer(ITIMER_REAL, &r0);
	getitimer(ITIMER_VIRTUAL, &v0);
	getitimer(ITIMER_PROF, &p0);
	timer_gettime(a, &a0);
	timer_gettime(c, &c0);
	timer_gettime(d, &d0);
	timer_gettime(e, &e0);
	read_timers(procs_ready, sizeof(procs_ready));
	tp_ready();
	tp_wait_go();
	if (tp_sabotaged("itimer")) {
		struct itimerval s;

		getitimer(ITIMER_REAL, &s);
		s.it_interval.tv_usec = 400000;
		setitimer(ITIMER_REAL, &s, NULL);
	}
	if (tp_sabotaged("posix"))
		timer_delete(c);

	t_go = now();
	getitimer(ITIMER_REAL, &r1);
	getitimer(ITIMER_VIRTUAL, &v1);
	getitimer(ITIMER_PROF, &p1);
	/* a timer gone reads as disarmed (and fails below), not as stack garbage */
	memset(&a1, 0, sizeof(a1));
	c1 = d1 = e1 = a1;
	if (timer_gettime(a, &a1) | timer_gettime(c, &c1) | timer_gettime(d, &d1) |
	    timer_gettime(e, &e1))
		tp_fail("a POSIX timer armed at the dump is gone: %s", strerror(errno));
	read_timers(procs_go, sizeof(procs_go));

	if (memcmp(&r1.it_interval, &real.it_interval, sizeof(real.it_interval)) ||
	    memcmp(&v1.it_interval, &virt.it_interval, sizeof(virt.it_interval)) ||
	    memcmp(&p1.it_interval, &prof.it_interval, sizeof(prof.it_interval)))
		tp_fail("an interval timer's interval changed: real %.6f virtual %.6f prof %.6f",
			tv(r1.it_interval), tv(v1.it_interval), tv(p1.it_interval));
	check_left("ITIMER_REAL", tv(r0.it_value), tv(r1.it_value), 1e-6);
	/* setitimer adds a kernel tick (up to 10 ms) to a CPU-time timer */
	check_left("ITIMER_VIRTUAL", tv(v0.it_value), tv(v1.it_value), CPU_TICK);
	check_left("ITIMER_PROF", tv(p0.it_value), tv(p1.it_value), CPU_TICK);
	if (memcmp(&a1.it_interval, &a0.it_interval, sizeof(x.it_interval)) ||
	    memcmp(&c1.it_interval, &c0.it_interval, sizeof(x.it_interval)) ||
	    memcmp(&e1.it_interval, &e0.it_interval, sizeof(x.it_interval)))
		tp_fail("a POSIX timer's interval changed: %.9f %.9f %.9f", ts(a1.it_interval),
			ts(c1.it_interval), ts(e1.it_interval));
	check_left("POSIX timer 0", ts(a0.it_value), ts(a1.it_value), 1e-6);
	check_left("POSIX timer 2", ts(c0.it_value), ts(c1.it_value), 1e-6);
	check_left("POSIX timer 4", ts(e0.it_value), ts(e1.it_value), 1e-6);
	if (ts(d1.it_value) || ts(d1.it_interval) || ts(d0.it_value))
		tp_fail("POSIX timer 3 is armed");
	if (strcmp(procs_ready, procs_go))
		tp_fail("/proc/self/timers differs: was [%s] now [%s]", procs_ready, procs_go);
	errno = 0;
	if (timer_gettime(b, &x) != -1 || errno != EINVAL)
		tp_fail("timer ID 1 exists after the restore (errno %d)", errno);
	if (prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) != SLACK)
		tp_fail("timer slack is %d, was %d", prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0), SLACK);
	/* asks for ID 0 (taken) if the restore left the kernel's ID mode on */
	struct sigevent none = { .sigev_notify = SIGEV_NONE };
	int kid = 0;
	if (syscall(SYS_timer_create, CLOCK_MONOTONIC, &none, &kid) || kid <= 4)
		tp_fail("a new timer got ID %d (%s)", kid, strerror(errno));
	else
		syscall(SYS_timer_delete, kid);

	/* Watch the expirations: the last one due, plus 1.3 s. */
	until = t_go + ts(c1.it_value);
	if (t_go + tv(r1.it_value) > until)
		until = t_go + tv(r1.it_value);
	if (t_go + ts(a1.it_value) > until)
		until = t_go + ts(a1.it_value);
	until += 1.3;
	while (now() < until) {
		struct timespec z = { 0, 10 * 1000 * 1000 };

		nanosleep(&z, NULL);
	}
	check_hits("ITIMER_REAL", &alrm, t_go, tv(r1.it_value), 0.3, 4, 0, -1);
	check_hits("POSIX timer 0", &usr1, t_go, ts(a1.it_value), 0.25, 5, 0xa11ce, 0);
	check_hits("POSIX timer 2", &rt, t_go, ts(c1.it_value), 0, 1, 0xc0ffee, 2);
	for (int i = 0; i < usr2.n; i++)
		if (usr2.at[i] >= t_go)
			tp_fail("POSIX timer 4 fired");
	return tp_finish();
}
