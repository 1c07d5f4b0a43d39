// SPDX-License-Identifier: GPL-2.0
/* Signal state: handlers and alternate stacks (from inside), pending queues. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <linux/ptrace.h>

#include "collect.h"
#include "stasis/log.h"
#include "stasis/util.h"

#define NSIG_KERNEL 64
#define SIGINFO_SIZE 128

/* struct sigaction as the rt_sigaction system call sees it */
struct ksigaction {
	uint64_t handler, flags, restorer, mask;
};

/* Reads the queue of pending signals (the thread's own or, with
 * PTRACE_PEEKSIGINFO_SHARED, the process's) as raw siginfo blobs. */
static int peek_pending(pid_t tid, uint32_t flags, ProtobufCBinaryData **out, size_t *nr)
{
	uint8_t buf[32 * SIGINFO_SIZE];

	*out = NULL;
	*nr = 0;
	for (;;) {
		struct ptrace_peeksiginfo_args a = { .off = *nr, .flags = flags, .nr = 32 };
		long n = ptrace(PTRACE_PEEKSIGINFO, tid, &a, buf);

		if (n < 0) {
			pr_perror("cannot read pending signals of task %d", tid);
			return -1;
		}
		if (n == 0)
			return 0;
		*out = xrealloc(*out, (*nr + n) * sizeof(**out));
		for (long i = 0; i < n; i++) {
			ProtobufCBinaryData *b = &(*out)[*nr + i];

			b->len = SIGINFO_SIZE;
			b->data = xmalloc(SIGINFO_SIZE);
			memcpy(b->data, buf + i * SIGINFO_SIZE, SIGINFO_SIZE);
		}
		*nr += n;
		if (*nr > 1 << 20) {
			pr_err("task %d has an impossibly long signal queue", tid);
			return -1;
		}
	}
}

int signals_collect_task(struct ctask *ct, Stasis__TaskCore *tc)
{
	tc->sigactions = xzalloc(NSIG_KERNEL * sizeof(*tc->sigactions));
	for (int sig = 1; sig <= NSIG_KERNEL; sig++) {
		struct ksigaction ka;
		Stasis__SigAction *sa;
		long r;

		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		r = parasite_call(ct, 0, SYS_rt_sigaction, sig, 0, ct->scratch, 8);
		if (r) {
			pr_err("task %d: cannot read the action of signal %d: %s", ct->pid, sig,
			       strerror(-r));
			return -1;
		}
		if (rmem_read(&ct->threads[0], ct->scratch, &ka, sizeof(ka)))
			return -1;
		if (ka.handler == (uint64_t)SIG_DFL && !ka.flags && !ka.mask)
			continue;
		sa = xmalloc(sizeof(*sa));
		stasis__sig_action__init(sa);
		sa->sig = sig;
		sa->handler = ka.handler;
		sa->flags = ka.flags;
		sa->restorer = ka.restorer;
		sa->mask = ka.mask;
		tc->sigactions[tc->n_sigactions++] = sa;
	}
	return peek_pending(ct->pid, PTRACE_PEEKSIGINFO_SHARED, &tc->shared_pending,
			    &tc->n_shared_pending);
}

int signals_collect_thread(struct ctask *ct, int thread, Stasis__ThreadCore *th)
{
	stack_t ss;
	long r;

	th->sigmask = ct->saved_sigmask[thread];
	if (peek_pending(ct->threads[thread].tid, 0, &th->pending, &th->n_pending))
		return -1;
	r = parasite_call(ct, thread, SYS_sigaltstack, 0, ct->scratch, 0, 0);
	if (r) {
		pr_err("task %d: cannot read the alternate signal stack: %s", th->tid, strerror(-r));
		return -1;
	}
	if (rmem_read(&ct->threads[thread], ct->scratch, &ss, sizeof(ss)))
		return -1;
	if (!(ss.ss_flags & SS_DISABLE)) {
		th->sigaltstack = xmalloc(sizeof(*th->sigaltstack));
		stasis__sig_alt_stack__init(th->sigaltstack);
		th->sigaltstack->sp = (uint64_t)ss.ss_sp;
		th->sigaltstack->flags = ss.ss_flags & ~SS_ONSTACK;
		th->sigaltstack->size = ss.ss_size;
	}
	return 0;
}
