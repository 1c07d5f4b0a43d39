// SPDX-License-Identifier: GPL-2.0
/* Signal state: every action (the stub's own are replaced, ignored ones
 * included), the alternate stack, and the pending queues, re-queued by the
 * task to itself so their siginfo is kept whole. */
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>

#include "inject.h"
#include "stasis/log.h"

#define NSIG_KERNEL 64
#define SIGINFO_SIZE 128

struct ksigaction {
	uint64_t handler, flags, restorer, mask;
};

/* tid: the thread as the task sees it (rt->tid is ours) */
static int queue_pending(struct itask *t, struct rtask *rt, pid_t tid, ProtobufCBinaryData *si,
			 size_t n, bool shared)
{
	for (size_t i = 0; i < n; i++) {
		unsigned long at;
		int sig;
		long r;

		if (si[i].len != SIGINFO_SIZE) {
			pr_err("task %d: malformed pending signal in the checkpoint", t->pid);
			return -1;
		}
		memcpy(&sig, si[i].data, sizeof(sig));
		at = scratch_put(t, 0, si[i].data, SIGINFO_SIZE);
		if (!at)
			return -1;
		if (shared)
			r = rsys(rt, SYS_rt_sigqueueinfo, t->pid, sig, at);
		else
			r = rsys(rt, SYS_rt_tgsigqueueinfo, t->pid, tid, sig, at);
		if (r) {
			pr_err("task %d: cannot queue pending signal %d: %s", t->pid, sig, strerror(-r));
			return -1;
		}
	}
	return 0;
}

int signals_restore(struct itask *t)
{
	Stasis__TaskCore *tc = t->tc;
	unsigned long at;
	long r;

	for (int sig = 1; sig <= NSIG_KERNEL; sig++) {
		struct ksigaction ka = { .handler = (uint64_t)SIG_DFL };

		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		for (size_t i = 0; i < tc->n_sigactions; i++)
			if (tc->sigactions[i]->sig == (uint32_t)sig) {
				ka.handler = tc->sigactions[i]->handler;
				ka.flags = tc->sigactions[i]->flags;
				ka.restorer = tc->sigactions[i]->restorer;
				ka.mask = tc->sigactions[i]->mask;
			}
		at = scratch_put(t, 0, &ka, sizeof(ka));
		if (!at)
			return -1;
		r = ISYS(t, SYS_rt_sigaction, sig, at, 0, 8);
		if (r) {
			pr_err("task %d: cannot restore the action of signal %d: %s", t->pid, sig,
			       strerror(-r));
			return -1;
		}
	}
	return queue_pending(t, &t->rt, t->pid, tc->shared_pending, tc->n_shared_pending, true);
}

int signals_restore_thread(struct itask *t, struct ithread *it)
{
	stack_t ss = { .ss_flags = SS_DISABLE };
	unsigned long at;
	long r;

	if (it->th->sigaltstack) {
		ss.ss_sp = (void *)it->th->sigaltstack->sp;
		ss.ss_size = it->th->sigaltstack->size;
		ss.ss_flags = it->th->sigaltstack->flags;
	}
	at = scratch_put(t, 0, &ss, sizeof(ss));
	if (!at)
		return -1;
	r = rsys(it->rt, SYS_sigaltstack, at, 0);
	if (r) {
		pr_err("task %d: cannot restore the alternate signal stack: %s", it->rt->tid,
		       strerror(-r));
		return -1;
	}
	return queue_pending(t, it->rt, it->th->tid, it->th->pending, it->th->n_pending, false);
}
