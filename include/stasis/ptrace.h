/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The ptrace engine: remote system calls and memory access in a stopped
 * tracee. A remote call sets the registers to a `syscall` instruction in the
 * task and single-steps it; the caller puts the task's own registers back.
 */
#ifndef STASIS_PTRACE_H
#define STASIS_PTRACE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

struct rtask {
	pid_t tid;
	int mem_fd;		      /* /proc/TID/mem, O_RDWR */
	unsigned long syscall_ip;     /* address of a `syscall` instruction */
	struct user_regs_struct regs; /* the task's own registers, as seized */
	bool regs_dirty;	      /* remote calls ran: regs must be put back */
	/* the new task of the last clone event a remote call reported, as
	 * the tracer sees it (a clone in another PID namespace returns the
	 * PID inside) */
	pid_t event_child;
};

/* Wait until tid reports a ptrace stop; returns the stop status or -1. */
int ptrace_wait_stop(pid_t tid, int *status);
/* Seize and interrupt one thread; waits for the stop. *stopped is set
 * when the thread was already in a group stop (SIGSTOP and the like). */
int ptrace_seize_stop(pid_t tid, unsigned long options, int *stop_sig);

/* Opens /proc/TID/mem and saves the registers. 0 or -1 (logged). */
int rtask_init(struct rtask *t, pid_t tid);
/* Finds a syscall instruction in the task's vDSO (collect side). */
int rtask_find_syscall(struct rtask *t);
/* Runs one system call in the task; returns its result (-errno on error).
 * *failed is set when the call could not be run at all (task gone). */
long rtask_syscall(struct rtask *t, bool *failed, long nr, unsigned long a1, unsigned long a2,
		   unsigned long a3, unsigned long a4, unsigned long a5, unsigned long a6);
#define rsys(t, nr, ...) rtask_syscall_args(t, nr, ##__VA_ARGS__, 0, 0, 0, 0, 0, 0)
#define rtask_syscall_args(t, nr, a1, a2, a3, a4, a5, a6, ...)                                    \
	rtask_syscall(t, NULL, nr, (unsigned long)(a1), (unsigned long)(a2), (unsigned long)(a3), \
		      (unsigned long)(a4), (unsigned long)(a5), (unsigned long)(a6))
/* Puts the saved registers back (after remote calls) and leaves the task
 * in an event stop, where the tracer's death does not harm it. */
int rtask_restore_regs(struct rtask *t);
void rtask_fini(struct rtask *t);

/* Memory of the task through /proc/TID/mem (works on PROT_NONE too). */
int rmem_read(struct rtask *t, unsigned long addr, void *buf, size_t len);
int rmem_write(struct rtask *t, unsigned long addr, const void *buf, size_t len);

/* Reading and writing the FPU/XSAVE area (NT_X86_XSTATE); *len in/out. */
int ptrace_get_xstate(pid_t tid, void *buf, size_t *len);
int ptrace_set_xstate(pid_t tid, void *buf, size_t len);

#endif
