/* sleeper GOFILE [nanosleep|pause]
 *
 * A task caught inside a blocking system call.
 *
 * nanosleep (default): after READY, nanosleep(2 s) in a loop, checking
 * GOFILE between sleeps, so the dump finds it inside nanosleep. Every call
 * must either return 0 after at least the requested time, or -1 with errno
 * EINTR and a sane remaining time (0 <= rem <= 2 s); anything else (another
 * errno, another return value, a garbage rem) is a failure.
 *
 * pause: an interval timer (ITIMER_REAL, 100 ms) with a SIGALRM handler
 * without SA_RESTART; the loop blocks in pause(), which must always return
 * -1/EINTR. After GO the timer still has its 100 ms interval and keeps
 * firing (the handler runs again).
 *
 * blocked: the same timer with SIGALRM blocked, dumped once it has fired:
 * the signal waits in the queue and the kernel re-arms the timer only when
 * it is taken, so the dump reads 0 time left. After GO the signal is
 * unblocked; the timer must still have its interval and keep firing.
 */
#include "testprog.h"

#include <signal.h>
#include <stdbool.h>
#include <sys/time.h>

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static int run_nanosleep(void)
{
	long calls = 0, completed = 0, interrupted = 0;

	tp_ready();
	for (;;) {
		struct timespec req = { 2, 0 }, rem = { -1, -1 };
		double t0 = now(), t1;
		int r, e;

		errno = 0;
		r = nanosleep(&req, &rem);
		e = errno;
		t1 = now();
		calls++;
		if (tp_sabotaged("errno") && calls == 1)
			r = -1, e = EFAULT;
		if (r == 0) {
			completed++;
			if (t1 - t0 < 2.0 - 0.001)
				tp_fail("nanosleep(2 s) returned 0 after only %.3f s", t1 - t0);
		} else if (r == -1 && e == EINTR) {
			interrupted++;
			if (rem.tv_sec < 0 || rem.tv_nsec < 0 || rem.tv_nsec >= 1000000000L ||
			    rem.tv_sec > 2 || (rem.tv_sec == 2 && rem.tv_nsec > 0))
				tp_fail("nanosleep returned EINTR with a bad remaining time {%lld, %ld}",
					(long long)rem.tv_sec, rem.tv_nsec);
		} else {
			tp_fail("nanosleep returned %d, errno %d (%s)", r, e, strerror(e));
		}
		if (access(tp_gofile, F_OK) == 0)
			break;
	}
	printf("nanosleep: %ld calls, %ld completed, %ld interrupted\n", calls, completed,
	       interrupted);
	return tp_finish();
}

static int run_pause(bool blocked)
{
	struct sigaction sa;
	struct itimerval it = { { 0, 100000 }, { 0, 100000 } }, got;
	long calls = 0;
	sigset_t alrm, pending;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	if (blocked && sigprocmask(SIG_BLOCK, &alrm, NULL))
		tp_die("sigprocmask");
	if (sigaction(SIGALRM, &sa, NULL) || setitimer(ITIMER_REAL, &it, NULL))
		tp_die("SIGALRM timer");
	if (blocked) {
		do {
			struct timespec ts = { 0, 20 * 1000 * 1000 };

			nanosleep(&ts, NULL);
			if (sigpending(&pending))
				tp_die("sigpending");
		} while (!sigismember(&pending, SIGALRM));
		tp_ready();
		tp_wait_go();
		if (sigprocmask(SIG_UNBLOCK, &alrm, NULL))
			tp_die("sigprocmask");
	} else {
		tp_ready();
	}
	for (; !blocked;) {
		int r, e;

		errno = 0;
		r = pause();
		e = errno;
		calls++;
		if (r != -1 || e != EINTR)
			tp_fail("pause returned %d, errno %d (%s)", r, e, strerror(e));
		if (access(tp_gofile, F_OK) == 0)
			break;
	}
	if (tp_sabotaged("timer"))
		setitimer(ITIMER_REAL, &(struct itimerval){ { 0, 0 }, { 0, 300000 } }, NULL);
	if (getitimer(ITIMER_REAL, &got))
		tp_fail("getitimer: %s", strerror(errno));
	else if (got.it_interval.tv_sec != 0 || got.it_interval.tv_usec != 100000)
		tp_fail("ITIMER_REAL interval is %lld.%06ld s, expected 0.100000",
			(long long)got.it_interval.tv_sec, (long)got.it_interval.tv_usec);
	else if (got.it_value.tv_sec != 0 || got.it_value.tv_usec > 100000 ||
		 (got.it_value.tv_sec == 0 && got.it_value.tv_usec == 0))
		tp_fail("ITIMER_REAL value is %lld.%06ld s, expected within (0, 0.1]",
			(long long)got.it_value.tv_sec, (long)got.it_value.tv_usec);
	{
		sig_atomic_t before = alarms;
		double t0 = now();
		while (alarms < before + 3 && now() - t0 < 2.0) {
			struct timespec ts = { 0, 10 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
		if (alarms < before + 3)
			tp_fail("the interval timer no longer fires (%d SIGALRM in 2 s)",
				(int)(alarms - before));
	}
	printf("pause: %ld calls, %d alarms\n", calls, (int)alarms);
	return tp_finish();
}

int main(int argc, char **argv)
{
	tp_init(argc, argv, 1, "GOFILE [nanosleep|pause|blocked]");
	if (argc > 2 && !strcmp(argv[2], "pause"))
		return run_pause(false);
	if (argc > 2 && !strcmp(argv[2], "blocked"))
		return run_pause(true);
	if (argc > 2 && strcmp(argv[2], "nanosleep"))
		tp_die("unknown mode %s", argv[2]);
	return run_nanosleep();
}
