// SPDX-License-Identifier: GPL-2.0
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/proc.h"
#include "stasis/ptrace.h"
#include "stasis/util.h"

int ptrace_wait_stop(pid_t tid, int *status)
{
	for (;;) {
		pid_t r = waitpid(tid, status, __WALL);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			pr_perror("waitpid(%d)", tid);
			return -1;
		}
		if (WIFEXITED(*status) || WIFSIGNALED(*status)) {
			pr_err("task %d is gone (%s %d)", tid,
			       WIFEXITED(*status) ? "exit status" : "killed by signal",
			       WIFEXITED(*status) ? WEXITSTATUS(*status) : WTERMSIG(*status));
			return -1;
		}
		return 0;
	}
}

int ptrace_seize_stop(pid_t tid, unsigned long options, int *stop_sig)
{
	int status;

	if (ptrace(PTRACE_SEIZE, tid, NULL, (void *)options)) {
		pr_perror("cannot seize task %d", tid);
		return -1;
	}
	if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL)) {
		pr_perror("cannot interrupt task %d", tid);
		return -1;
	}
	for (;;) {
		if (ptrace_wait_stop(tid, &status))
			return -1;
		/* the interrupt reports SIGTRAP; a group stop its own signal */
		if (WIFSTOPPED(status) && (status >> 16) == PTRACE_EVENT_STOP) {
			if (stop_sig)
				*stop_sig = WSTOPSIG(status) != SIGTRAP ? WSTOPSIG(status) : 0;
			return 0;
		}
		/* A signal arrived first: let it be delivered as it would have
		 * been; the interrupt stays pending and stops the task after. */
		if (ptrace(PTRACE_CONT, tid, NULL, (void *)(long)WSTOPSIG(status))) {
			pr_perror("cannot resume task %d", tid);
			return -1;
		}
	}
}

int rtask_init(struct rtask *t, pid_t tid)
{
	char path[64];

	memset(t, 0, sizeof(*t));
	t->tid = tid;
	snprintf(path, sizeof(path), "/proc/%d/mem", tid);
	t->mem_fd = open(path, O_RDWR | O_CLOEXEC);
	if (t->mem_fd < 0) {
		pr_perror("cannot open %s", path);
		return -1;
	}
	if (ptrace(PTRACE_GETREGS, tid, NULL, &t->regs)) {
		pr_perror("cannot read registers of task %d", tid);
		close(t->mem_fd);
		t->mem_fd = -1;
		return -1;
	}
	return 0;
}

void rtask_fini(struct rtask *t)
{
	if (t->mem_fd >= 0)
		close(t->mem_fd);
	t->mem_fd = -1;
}

int rmem_read(struct rtask *t, unsigned long addr, void *buf, size_t len)
{
	while (len) {
		ssize_t n = pread(t->mem_fd, buf, len, addr);

		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			pr_err("cannot read memory of task %d at %#lx: %s", t->tid, addr,
			       n < 0 ? strerror(errno) : "end of memory");
			return -1;
		}
		buf = (char *)buf + n;
		addr += n;
		len -= n;
	}
	return 0;
}

int rmem_write(struct rtask *t, unsigned long addr, const void *buf, size_t len)
{
	while (len) {
		ssize_t n = pwrite(t->mem_fd, buf, len, addr);

		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			pr_err("cannot write memory of task %d at %#lx: %s", t->tid, addr,
			       n < 0 ? strerror(errno) : "end of memory");
			return -1;
		}
		buf = (const char *)buf + n;
		addr += n;
		len -= n;
	}
	return 0;
}

/* A `syscall` instruction in one executable mapping, read in pieces. */
static bool find_syscall_in(struct rtask *t, const struct proc_vma *v)
{
	static unsigned char code[1 << 16];
	unsigned long at = v->start;

	while (at < v->end) {
		size_t len = v->end - at < sizeof(code) ? v->end - at : sizeof(code);

		if (rmem_read(t, at, code, len))
			return false;
		for (size_t off = 0; off + 1 < len; off++)
			if (code[off] == 0x0f && code[off + 1] == 0x05) {
				t->syscall_ip = at + off;
				return true;
			}
		/* an instruction may straddle two pieces */
		at += at + len < v->end ? len - 1 : len;
	}
	return false;
}

/*
 * The vDSO first (there unless the task unmapped or replaced it), then
 * any other executable mapping of the task (its libc, its program).
 */
int rtask_find_syscall(struct rtask *t)
{
	struct proc_vma *vmas;
	int nr = proc_read_maps(t->tid, &vmas);

	if (nr < 0)
		return -1;
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < nr; i++) {
			bool vdso = !strcmp(vmas[i].path, "[vdso]");

			if (pass == 0 ? !vdso :
					vdso || !(vmas[i].prot & PROT_EXEC) ||
						!strcmp(vmas[i].path, "[vsyscall]"))
				continue;
			if (find_syscall_in(t, &vmas[i])) {
				free(vmas);
				return 0;
			}
		}
	free(vmas);
	pr_err("task %d: no syscall instruction found in its vDSO or executable mappings", t->tid);
	return -1;
}

long rtask_syscall(struct rtask *t, bool *failed, long nr, unsigned long a1, unsigned long a2,
		   unsigned long a3, unsigned long a4, unsigned long a5, unsigned long a6)
{
	struct user_regs_struct r = t->regs;
	int status;

	if (failed)
		*failed = true;
	r.rax = nr;
	r.rdi = a1;
	r.rsi = a2;
	r.rdx = a3;
	r.r10 = a4;
	r.r8 = a5;
	r.r9 = a6;
	r.rip = t->syscall_ip;
	/* Not in a system call: the kernel must not apply restart logic to ours. */
	r.orig_rax = -1;
	t->regs_dirty = true;
	if (ptrace(PTRACE_SETREGS, t->tid, NULL, &r)) {
		pr_perror("cannot set registers of task %d", t->tid);
		return -ESRCH;
	}
	/*
	 * Run to the syscall-entry stop, then to the syscall-exit stop. These
	 * are ptrace reports, not signals: a single-step would force a SIGTRAP
	 * on the task, which resets its SIGTRAP action when blocked and eats a
	 * SIGTRAP it has pending.
	 */
	for (bool entered = false;;) {
		siginfo_t si;

		if (ptrace(PTRACE_SYSCALL, t->tid, NULL, NULL)) {
			pr_perror("cannot resume task %d to a system call", t->tid);
			return -ESRCH;
		}
		if (ptrace_wait_stop(t->tid, &status))
			return -ESRCH;
		if (!WIFSTOPPED(status))
			return -ESRCH;
		/* An event stop inside the call (a clone reported to us):
		 * the call has not returned yet. */
		if (status >> 16) {
			unsigned long msg;
			int ev = status >> 16;

			if ((ev == PTRACE_EVENT_FORK || ev == PTRACE_EVENT_VFORK ||
			     ev == PTRACE_EVENT_CLONE) &&
			    !ptrace(PTRACE_GETEVENTMSG, t->tid, NULL, &msg))
				t->event_child = msg;
			continue;
		}
		if (ptrace(PTRACE_GETREGS, t->tid, NULL, &r)) {
			pr_perror("cannot read registers of task %d", t->tid);
			return -ESRCH;
		}
		/* a syscall stop reports SIGTRAP (| 0x80 with TRACESYSGOOD),
		 * with si_code the same */
		if ((WSTOPSIG(status) & 0x7f) == SIGTRAP && r.rip == t->syscall_ip + 2 &&
		    !ptrace(PTRACE_GETSIGINFO, t->tid, NULL, &si) && si.si_signo == SIGTRAP &&
		    (si.si_code == SIGTRAP || si.si_code == (SIGTRAP | 0x80))) {
			if (entered)
				break;
			entered = true;
			continue;
		}
		/* A signal-delivery stop before the instruction ran (a signal
		 * arriving): go on, dropping it -- every catchable signal is
		 * blocked while stasis works on a task. */
		if (r.rip != t->syscall_ip || entered) {
			pr_err("task %d: remote syscall %ld stopped at %#llx (signal %d)", t->tid, nr,
			       r.rip, WSTOPSIG(status));
			return -EFAULT;
		}
	}
	if (failed)
		*failed = false;
	pr_debug("task %d: syscall %ld(%#lx, %#lx, %#lx, %#lx, %#lx, %#lx) = %lld", t->tid, nr, a1,
		 a2, a3, a4, a5, a6, (long long)r.rax);
	return (long)r.rax;
}

/*
 * Back from the signal-delivery stop that a remote call's single-step ends
 * in to an event stop, as seizing left the task: should the tracer die in
 * the first (SIGKILL), the kernel delivers the stop's SIGTRAP and the task
 * dies of it; from the second it just runs on. With every catchable signal
 * blocked no user code runs in between.
 */
static int ptrace_park(pid_t tid)
{
	int status, sig = 0;

	if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL)) {
		pr_perror("cannot interrupt task %d", tid);
		return -1;
	}
	for (;;) {
		if (ptrace(PTRACE_CONT, tid, NULL, (void *)(long)sig)) {
			pr_perror("cannot resume task %d", tid);
			return -1;
		}
		if (ptrace_wait_stop(tid, &status))
			return -1;
		if ((status >> 16) == PTRACE_EVENT_STOP)
			return 0;
		/* SIGSTOP on the way: it stops the task as it would have */
		sig = WIFSTOPPED(status) && WSTOPSIG(status) != SIGTRAP && !(status >> 16) ?
			      WSTOPSIG(status) :
			      0;
	}
}

int rtask_restore_regs(struct rtask *t)
{
	if (!t->regs_dirty)
		return 0;
	if (ptrace(PTRACE_SETREGS, t->tid, NULL, &t->regs)) {
		pr_perror("cannot restore registers of task %d", t->tid);
		return -1;
	}
	t->regs_dirty = false;
	return ptrace_park(t->tid);
}

int ptrace_get_xstate(pid_t tid, void *buf, size_t *len)
{
	struct iovec iov = { buf, *len };

	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &iov)) {
		pr_perror("cannot read XSAVE state of task %d", tid);
		return -1;
	}
	*len = iov.iov_len;
	return 0;
}

int ptrace_set_xstate(pid_t tid, void *buf, size_t len)
{
	struct iovec iov = { buf, len };

	if (ptrace(PTRACE_SETREGSET, tid, (void *)NT_X86_XSTATE, &iov)) {
		pr_perror("cannot set XSAVE state of task %d", tid);
		return -1;
	}
	return 0;
}
