/* signals GOFILE
 *
 * Signal state:
 *  - SIGUSR1: SA_SIGINFO handler with SA_RESTART and sa_mask {SIGINT,
 *    SIGTERM, SIGRTMIN+5}; SIGHUP: plain handler with SA_RESETHAND|SA_NODEFER;
 *    SIGPIPE ignored. After GO every signal's sigaction() (handler, flags,
 *    mask, restorer) is the same as at READY; raise(SIGUSR1) runs the
 *    handler once with si_signo SIGUSR1, si_code SI_TKILL, our pid, and with
 *    sa_mask in effect.
 *  - blocked: SIGUSR2, SIGRTMIN+1, SIGRTMIN+2, SIGWINCH.
 *  - pending at the dump: SIGUSR2 from kill() (process-wide), SIGRTMIN+1
 *    queued twice with values 1001 and 1002 (process-wide), SIGRTMIN+2 queued
 *    with value 2001 to the thread (thread-private). After GO sigpending()
 *    and /proc/self/status (SigPnd/ShdPnd) show exactly these; once unblocked
 *    each is delivered exactly as many times as sent, with its siginfo, and
 *    SIGWINCH stays blocked.
 */
#include "testprog.h"

#include <pthread.h>
#include <signal.h>

#define MAXSIG 65
#define RT1 (SIGRTMIN + 1)
#define RT2 (SIGRTMIN + 2)

static struct sigaction act_ready[MAXSIG];
static int act_ready_rc[MAXSIG];
static sigset_t blocked_ready;

static volatile sig_atomic_t usr1_count, usr1_signo, usr1_code, usr1_pid, usr1_masked_ok;
static volatile sig_atomic_t hup_count;

struct delivery {
	int signo, code, pid, value;
};
static struct delivery deliveries[16];
static volatile sig_atomic_t ndeliveries;

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
	sigset_t m;

	(void)uc;
	usr1_count++;
	usr1_signo = sig == si->si_signo ? si->si_signo : -1;
	usr1_code = si->si_code;
	usr1_pid = si->si_pid;
	sigprocmask(SIG_BLOCK, NULL, &m);
	usr1_masked_ok = sigismember(&m, SIGINT) == 1 && sigismember(&m, SIGTERM) == 1 &&
			 sigismember(&m, SIGRTMIN + 5) == 1 && sigismember(&m, SIGUSR1) == 1;
}

static void on_hup(int sig)
{
	(void)sig;
	hup_count++;
}

static void on_pending(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (ndeliveries < 16) {
		struct delivery *d = &deliveries[ndeliveries];
		d->signo = sig;
		d->code = si->si_code;
		d->pid = si->si_pid;
		d->value = si->si_value.sival_int;
	}
	ndeliveries++;
}

static int same_action(const struct sigaction *a, const struct sigaction *b)
{
	if (a->sa_sigaction != b->sa_sigaction || a->sa_flags != b->sa_flags ||
	    a->sa_restorer != b->sa_restorer)
		return 0;
	for (int s = 1; s < MAXSIG; s++)
		if (sigismember(&a->sa_mask, s) != sigismember(&b->sa_mask, s))
			return 0;
	return 1;
}

static void set_str(const sigset_t *set, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = 0;
	for (int s = 1; s < MAXSIG && o + 8 < len; s++)
		if (sigismember(set, s) == 1)
			o += snprintf(buf + o, len - o, "%s%d", o ? "," : "", s);
}

/* Bit mask of a "SigPnd:"/"ShdPnd:" line of /proc/self/status. */
static unsigned long long status_mask(const char *key)
{
	FILE *f = fopen("/proc/thread-self/status", "re");
	char line[256];
	unsigned long long v = ~0ULL;

	if (!f)
		return v;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			v = strtoull(line + strlen(key), NULL, 16);
	fclose(f);
	return v;
}

#define BIT(s) (1ULL << ((s)-1))

int main(int argc, char **argv)
{
	struct sigaction sa;
	sigset_t set, pend;
	union sigval v;

	tp_init(argc, argv, 1, "GOFILE");

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_usr1;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGINT);
	sigaddset(&sa.sa_mask, SIGTERM);
	sigaddset(&sa.sa_mask, SIGRTMIN + 5);
	if (sigaction(SIGUSR1, &sa, NULL))
		tp_die("sigaction SIGUSR1");

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_hup;
	sa.sa_flags = SA_RESETHAND | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGHUP, &sa, NULL))
		tp_die("sigaction SIGHUP");
	signal(SIGPIPE, SIG_IGN);

	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, RT1);
	sigaddset(&set, RT2);
	sigaddset(&set, SIGWINCH);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		tp_die("sigprocmask");

	v.sival_int = 1001;
	if (kill(getpid(), SIGUSR2) || sigqueue(getpid(), RT1, v))
		tp_die("send SIGUSR2/SIGRTMIN+1");
	v.sival_int = 1002;
	if (sigqueue(getpid(), RT1, v))
		tp_die("sigqueue");
	v.sival_int = 2001;
	if (pthread_sigqueue(pthread_self(), RT2, v))
		tp_die("pthread_sigqueue");

	for (int s = 1; s < MAXSIG; s++)
		act_ready_rc[s] = sigaction(s, NULL, &act_ready[s]);
	sigprocmask(SIG_BLOCK, NULL, &blocked_ready);

	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("flags")) {
		sigaction(SIGUSR1, NULL, &sa);
		sa.sa_flags &= ~SA_RESTART;
		sigaction(SIGUSR1, &sa, NULL);
	}
	if (tp_sabotaged("ignore"))
		signal(SIGPIPE, SIG_DFL);
	if (tp_sabotaged("blocked")) {
		sigemptyset(&set);
		sigaddset(&set, SIGWINCH);
		sigprocmask(SIG_UNBLOCK, &set, NULL);
	}
	if (tp_sabotaged("pending")) { /* lose one queued instance */
		sigemptyset(&set);
		sigaddset(&set, RT1);
		struct timespec z = { 0, 0 };
		sigtimedwait(&set, NULL, &z);
	}
	if (tp_sabotaged("private")) { /* thread-private signal became process-wide */
		sigemptyset(&set);
		sigaddset(&set, RT2);
		struct timespec z = { 0, 0 };
		sigtimedwait(&set, NULL, &z);
		v.sival_int = 2001;
		sigqueue(getpid(), RT2, v);
	}

	/* Dispositions of every signal. */
	for (int s = 1; s < MAXSIG; s++) {
		struct sigaction now;
		int rc = sigaction(s, NULL, &now);
		if (rc != act_ready_rc[s])
			tp_fail("sigaction(%d) returned %d, was %d", s, rc, act_ready_rc[s]);
		else if (rc == 0 && !same_action(&now, &act_ready[s]))
			tp_fail("signal %d: disposition differs (handler %p flags %#x, was %p flags %#x)",
				s, (void *)now.sa_sigaction, (unsigned)now.sa_flags,
				(void *)act_ready[s].sa_sigaction, (unsigned)act_ready[s].sa_flags);
	}

	/* Blocked and pending sets. */
	sigprocmask(SIG_BLOCK, NULL, &set);
	for (int s = 1; s < MAXSIG; s++)
		if (sigismember(&set, s) != sigismember(&blocked_ready, s)) {
			char a[256], b[256];
			set_str(&set, a, sizeof(a));
			set_str(&blocked_ready, b, sizeof(b));
			tp_fail("blocked signals {%s}, were {%s}", a, b);
			break;
		}
	sigpending(&pend);
	for (int s = 1; s < MAXSIG; s++) {
		int want = s == SIGUSR2 || s == RT1 || s == RT2;
		if (sigismember(&pend, s) != want) {
			char a[256];
			set_str(&pend, a, sizeof(a));
			tp_fail("pending signals {%s}, expected {%d,%d,%d}", a, SIGUSR2, RT1, RT2);
			break;
		}
	}
	{
		unsigned long long priv = status_mask("SigPnd:"), shd = status_mask("ShdPnd:");
		if (priv != BIT(RT2) || shd != (BIT(SIGUSR2) | BIT(RT1)))
			tp_fail("/proc status: SigPnd %#llx ShdPnd %#llx, expected %#llx and %#llx "
				"(SIGRTMIN+2 thread-private, SIGUSR2 and SIGRTMIN+1 process-wide)",
				priv, shd, BIT(RT2), BIT(SIGUSR2) | BIT(RT1));
	}

	/* The SIGUSR1 handler runs, with its siginfo and mask. */
	raise(SIGUSR1);
	if (usr1_count != 1)
		tp_fail("SIGUSR1 handler ran %d times, expected 1", (int)usr1_count);
	else {
		if (usr1_signo != SIGUSR1)
			tp_fail("SIGUSR1 handler saw si_signo %d", (int)usr1_signo);
		if (usr1_code != SI_TKILL || usr1_pid != getpid())
			tp_fail("SIGUSR1 handler saw si_code %d si_pid %d, expected %d and %d",
				(int)usr1_code, (int)usr1_pid, SI_TKILL, (int)getpid());
		if (!usr1_masked_ok)
			tp_fail("SIGUSR1 handler ran without its sa_mask blocked");
	}

	/* The pending signals are delivered once each, with their siginfo. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_pending;
	sa.sa_flags = SA_SIGINFO;
	sigfillset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(RT1, &sa, NULL);
	sigaction(RT2, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, RT1);
	sigaddset(&set, RT2);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	{
		int n_usr2 = 0, n_rt1 = 0, n_rt2 = 0, nd = ndeliveries > 16 ? 16 : ndeliveries;
		int rt1_values[2] = { 0, 0 };
		for (int i = 0; i < nd; i++) {
			struct delivery *d = &deliveries[i];
			if (d->pid != getpid())
				tp_fail("signal %d delivered with si_pid %d", d->signo, d->pid);
			if (d->signo == SIGUSR2) {
				n_usr2++;
				if (d->code != SI_USER)
					tp_fail("SIGUSR2 si_code %d, expected SI_USER", d->code);
			} else if (d->signo == RT1) {
				if (n_rt1 < 2)
					rt1_values[n_rt1] = d->value;
				n_rt1++;
				if (d->code != SI_QUEUE)
					tp_fail("SIGRTMIN+1 si_code %d, expected SI_QUEUE", d->code);
			} else if (d->signo == RT2) {
				n_rt2++;
				if (d->code != SI_QUEUE || d->value != 2001)
					tp_fail("SIGRTMIN+2 si_code %d value %d, expected SI_QUEUE and 2001",
						d->code, d->value);
			}
		}
		if (n_usr2 != 1 || n_rt1 != 2 || n_rt2 != 1)
			tp_fail("delivered SIGUSR2 x%d, SIGRTMIN+1 x%d, SIGRTMIN+2 x%d; expected x1, x2, x1",
				n_usr2, n_rt1, n_rt2);
		else if (rt1_values[0] != 1001 || rt1_values[1] != 1002)
			tp_fail("SIGRTMIN+1 values %d, %d; expected 1001, 1002", rt1_values[0],
				rt1_values[1]);
	}
	sigpending(&pend);
	for (int s = 1; s < MAXSIG; s++)
		if (sigismember(&pend, s) == 1)
			tp_fail("signal %d still pending after delivery", s);
	sigprocmask(SIG_BLOCK, NULL, &set);
	if (sigismember(&set, SIGWINCH) != 1)
		tp_fail("SIGWINCH is no longer blocked");
	if (hup_count)
		tp_fail("SIGHUP handler ran");

	return tp_finish();
}
