/* sigtrap GOFILE
 *
 * SIGTRAP state, which a tracer's own traps can destroy (issue 10): the
 * process has a SA_SIGINFO handler for SIGTRAP, blocks it, and has one
 * SIGTRAP pending, sent by itself with kill(); a second thread blocks it
 * too and has its own pending, sent with tgkill().
 *
 * After GO: both are still pending with their senders (the second thread
 * takes both with sigtimedwait, in the order the kernel gives them, each
 * with si_pid ours), nothing else is; the handler is
 * still ours, and once unblocked a raise(SIGTRAP) runs it once.
 *
 * STASIS_SABOTAGE=trap consumes the process's pending SIGTRAP after GO;
 * =handler sets SIGTRAP's action to SIG_IGN.
 */
#include "testprog.h"

#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>

static volatile sig_atomic_t handled;
static volatile int stage;
static pid_t second_tid;
static char second_result[256];

static void on_trap(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if ((si->si_code == SI_TKILL || si->si_code == SI_USER) && si->si_pid == getpid())
		handled++;
}

/* One pending SIGTRAP: 0 when sent by us with kill or tgkill, 1 when none
 * is pending, 2 when from another sender. */
static int take_pending(void)
{
	struct timespec zero = { 0, 0 };
	sigset_t set;
	siginfo_t si;

	sigemptyset(&set);
	sigaddset(&set, SIGTRAP);
	if (sigtimedwait(&set, &si, &zero) != SIGTRAP)
		return 1;
	return si.si_pid == getpid() && (si.si_code == SI_USER || si.si_code == SI_TKILL) ? 0 : 2;
}

static void *second(void *arg)
{
	(void)arg;
	second_tid = syscall(SYS_gettid);
	stage = 1;
	while (stage < 2)
		usleep(10000);
	{
		int a = take_pending(), b = take_pending();

		if (a || b)
			snprintf(second_result, sizeof(second_result),
				 "pending SIGTRAPs: %d and %d, expected two of ours (0; 1: none, 2: "
				 "another sender)",
				 a, b);
	}
	stage = 3;
	return NULL;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_sigaction = on_trap, .sa_flags = SA_SIGINFO };
	pthread_t th;
	sigset_t set, pend;

	tp_init(argc, argv, 1, "GOFILE");
	sigemptyset(&set);
	sigaddset(&set, SIGTRAP);
	if (sigaction(SIGTRAP, &sa, NULL) || sigprocmask(SIG_BLOCK, &set, NULL))
		tp_die("sigaction");
	if (pthread_create(&th, NULL, second, NULL))
		tp_die("pthread_create");
	while (stage < 1)
		usleep(10000);
	if (kill(getpid(), SIGTRAP) || syscall(SYS_tgkill, getpid(), second_tid, SIGTRAP))
		tp_die("kill");
	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("trap"))
		take_pending();
	if (tp_sabotaged("handler")) {
		struct sigaction ign = { .sa_handler = SIG_IGN };

		sigaction(SIGTRAP, &ign, NULL);
	}
	sigpending(&pend);
	if (!sigismember(&pend, SIGTRAP))
		tp_fail("SIGTRAP is not pending");
	stage = 2;
	while (stage < 3)
		usleep(10000);
	if (second_result[0])
		tp_fail("%s", second_result);
	sigpending(&pend);
	if (sigismember(&pend, SIGTRAP))
		tp_fail("a SIGTRAP is still pending after both were taken");
	if (sigaction(SIGTRAP, NULL, &sa) || !(sa.sa_flags & SA_SIGINFO) ||
	    sa.sa_sigaction != on_trap)
		tp_fail("the SIGTRAP handler is gone (%p, flags %#x)", (void *)sa.sa_sigaction,
			sa.sa_flags);
	if (pthread_sigmask(SIG_UNBLOCK, &set, NULL))
		tp_fail("unblock");
	raise(SIGTRAP);
	if (handled != 1)
		tp_fail("the SIGTRAP handler ran %d times after raise, expected 1", (int)handled);
	return tp_finish();
}
