// SPDX-License-Identifier: GPL-2.0
/*
 * The remote session in a frozen task: what only the task itself can see is
 * read by system calls run in its context. Every catchable signal is blocked
 * meanwhile so none is delivered in the middle, and everything is put back
 * (scratch page, registers, signal mask) before the task is released.
 */
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include "collect.h"
#include "stasis/log.h"

int parasite_start(struct ctask *ct)
{
	uint64_t all = ~0ull;
	long addr;

	for (int i = 0; i < ct->tt->nr_tids; i++) {
		pid_t tid = ct->threads[i].tid;

		if (ptrace(PTRACE_GETSIGMASK, tid, (void *)8, &ct->saved_sigmask[i])) {
			pr_perror("cannot read the signal mask of task %d", tid);
			return -1;
		}
	}
	ct->parasite = true;
	for (int i = 0; i < ct->tt->nr_tids; i++)
		if (ptrace(PTRACE_SETSIGMASK, ct->threads[i].tid, (void *)8, &all)) {
			pr_perror("cannot block signals of task %d", ct->threads[i].tid);
			return -1;
		}
	if (rtask_find_syscall(&ct->threads[0]))
		return -1;
	for (int i = 1; i < ct->tt->nr_tids; i++)
		ct->threads[i].syscall_ip = ct->threads[0].syscall_ip;
	/* Shared anonymous memory never merges with a neighbour, so the
	 * task's own mappings read the same with the scratch page present. */
	addr = rsys(&ct->threads[0], SYS_mmap, 0, PAGE_SIZE, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (addr < 0 && addr > -4096) {
		pr_err("task %d: remote mmap failed: %s", ct->pid, strerror(-addr));
		return -1;
	}
	ct->scratch = addr;
	return 0;
}

long parasite_call(struct ctask *ct, int thread, long nr, unsigned long a1, unsigned long a2,
		   unsigned long a3, unsigned long a4)
{
	return rtask_syscall(&ct->threads[thread], NULL, nr, a1, a2, a3, a4, 0, 0);
}

int parasite_stop(struct ctask *ct)
{
	int ret = 0;

	if (!ct->parasite)
		return 0;
	if (ct->scratch) {
		long r = rsys(&ct->threads[0], SYS_munmap, ct->scratch, PAGE_SIZE);

		if (r) {
			pr_err("task %d: cannot unmap the scratch page: %s", ct->pid, strerror(-r));
			ret = -1;
		}
		ct->scratch = 0;
	}
	for (int i = 0; i < ct->tt->nr_tids; i++) {
		if (rtask_restore_regs(&ct->threads[i]))
			ret = -1;
		if (ptrace(PTRACE_SETSIGMASK, ct->threads[i].tid, (void *)8, &ct->saved_sigmask[i])) {
			pr_perror("cannot restore the signal mask of task %d", ct->threads[i].tid);
			ret = -1;
		}
	}
	ct->parasite = false;
	return ret;
}
