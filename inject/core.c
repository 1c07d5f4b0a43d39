// SPDX-License-Identifier: GPL-2.0
/* core-PID: process attributes, then the thread's registers, last. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <linux/rseq.h>
#include <linux/sched.h>
#include <sys/wait.h>

#include "inject.h"
#include "stasis/log.h"
#include "stasis/proc.h"

/* Kernel-internal restart codes a task stopped in a system call shows. */
#define ERESTARTSYS 512
#define ERESTARTNOINTR 513
#define ERESTARTNOHAND 514
#define ERESTART_RESTARTBLOCK 516

static int prctl_set(struct itask *t, int option, unsigned long arg, const char *what)
{
	long r = ISYS(t, SYS_prctl, option, arg, 0, 0, 0);

	if (r) {
		pr_err("task %d: cannot restore %s: %s", t->pid, what, strerror(-r));
		return -1;
	}
	return 0;
}

static int restore_rlimits(struct itask *t)
{
	for (size_t i = 0; i < t->tc->n_rlimits; i++) {
		Stasis__Rlimit *l = t->tc->rlimits[i];
		struct rlimit rl = { l->cur, l->max }, now;

		if (l->resource >= RLIM_NLIMITS)
			continue;
		if (!prlimit(t->hpid, l->resource, &rl, NULL))
			continue;
		/* Raising a hard limit needs CAP_SYS_RESOURCE; keep what we
		 * can and say so. */
		if (errno == EPERM && !prlimit(t->hpid, l->resource, NULL, &now)) {
			rl.rlim_max = now.rlim_max;
			if (rl.rlim_cur > rl.rlim_max)
				rl.rlim_cur = rl.rlim_max;
			if (!prlimit(t->hpid, l->resource, &rl, NULL)) {
				pr_warn("task %d: rlimit %u hard limit stays %llu (wanted %llu)", t->pid,
					l->resource, (unsigned long long)now.rlim_max,
					(unsigned long long)l->max);
				continue;
			}
		}
		pr_perror("task %d: cannot restore rlimit %u", t->pid, l->resource);
		return -1;
	}
	return 0;
}

/* Lowering it below what the task inherited needs CAP_SYS_RESOURCE. */
static int restore_oom_score_adj(struct itask *t)
{
	char path[64], buf[16];
	int fd, len, ok;

	if (!t->tc->has_oom_score_adj)
		return 0;
	if (t->tc->oom_score_adj < -1000 || t->tc->oom_score_adj > 1000) {
		pr_err("task %d: oom_score_adj %d in the checkpoint is out of range", t->pid,
		       t->tc->oom_score_adj);
		return -1;
	}
	snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", t->hpid);
	len = snprintf(buf, sizeof(buf), "%d", t->tc->oom_score_adj);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	ok = fd >= 0 && write(fd, buf, len) == len;
	if (!ok)
		pr_perror("task %d: cannot restore oom_score_adj %d", t->pid, t->tc->oom_score_adj);
	if (fd >= 0)
		close(fd);
	return ok ? 0 : -1;
}

/*
 * The audit login UID is per thread and only the thread itself may write
 * it (with CAP_AUDIT_CONTROL once it is set): the leader writes it before
 * its threads are cloned, so they inherit it. Left alone when the stub
 * already has it (no new audit session for nothing).
 */
static int restore_loginuid(struct itask *t)
{
	char path[64], buf[16];
	unsigned long at;
	long fd, r;
	int len;

	if (!t->tc->has_loginuid)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/loginuid", t->hpid);
	if (proc_read_file(path, buf, sizeof(buf)) > 0 && strtoul(buf, NULL, 10) == t->tc->loginuid)
		return 0;
	len = snprintf(buf, sizeof(buf), "%u", t->tc->loginuid);
	at = scratch_put(t, 0, "/proc/self/loginuid", sizeof("/proc/self/loginuid"));
	if (!at || !scratch_put(t, 64, buf, len))
		return -1;
	fd = ISYS(t, SYS_open, at, O_WRONLY | O_CLOEXEC, 0);
	if (fd < 0) {
		pr_err("task %d: cannot open its loginuid: %s", t->pid, strerror(-fd));
		return -1;
	}
	r = ISYS(t, SYS_write, fd, at + 64, len);
	ISYS(t, SYS_close, fd);
	if (r != len) {
		pr_err("task %d: cannot restore loginuid %u: %s", t->pid, t->tc->loginuid,
		       r < 0 ? strerror(-r) : "short write");
		return -1;
	}
	return 0;
}

int core_restore_attrs(struct itask *t)
{
	Stasis__TaskCore *tc = t->tc;
	long r;

	if (tc->has_personality) {
		r = ISYS(t, SYS_personality, tc->personality);
		if (r < 0) {
			pr_err("task %d: cannot restore personality: %s", t->pid, strerror(-r));
			return -1;
		}
	}
	if (restore_rlimits(t) || restore_oom_score_adj(t))
		return -1;
	if (tc->has_child_subreaper &&
	    prctl_set(t, PR_SET_CHILD_SUBREAPER, tc->child_subreaper, "child subreaper"))
		return -1;
	/* bit 0: disabled; the bits above: PR_SET_THP_DISABLE's flags */
	if (tc->has_thp_disable && (tc->thp_disable & 1)) {
		r = ISYS(t, SYS_prctl, PR_SET_THP_DISABLE, 1, tc->thp_disable & ~1u, 0, 0);
		if (r) {
			pr_err("task %d: cannot restore THP disable: %s", t->pid, strerror(-r));
			return -1;
		}
	}
	/* no_new_privs, the parent-death signal and dumpable are per thread
	 * or reset by a change of credentials: inject/creds.c sets them. */
	return 0;
}

int core_create_threads(struct itask *t)
{
	struct clone_args args = {
		.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
			 CLONE_SYSVSEM,
		.set_tid_size = 1,
	};

	if (restore_loginuid(t))
		return -1;

	for (size_t i = 1; i < t->nr_threads; i++) {
		struct ithread *it = &t->threads[i];
		uint32_t tid = it->th->tid;
		uint64_t tid64 = tid;
		unsigned long at;
		int status;
		pid_t host;
		long r;

		args.set_tid = t->scratch + 512;
		if (!scratch_put(t, 512, &tid64, sizeof(tid64)) ||
		    !(at = scratch_put(t, 0, &args, sizeof(args))))
			return -1;
		t->rt.event_child = 0;
		r = ISYS(t, SYS_clone3, at, sizeof(args));
		if (r != (long)tid || t->rt.event_child <= 0) {
			pr_err("task %d: cannot create thread %u: %s", t->pid, tid,
			       r < 0 ? strerror(-r) : "wrong TID");
			return -1;
		}
		/* auto-attached (PTRACE_O_TRACECLONE), stopped before it runs;
		 * tid is as the task sees it, the event says ours */
		host = t->rt.event_child;
		if (waitpid(host, &status, __WALL) != host || !WIFSTOPPED(status)) {
			pr_err("thread %u of task %d did not stop after its creation", tid, t->pid);
			return -1;
		}
		if (rtask_init(&it->own, host))
			return -1;
		it->rt = &it->own;
		it->rt->syscall_ip = t->rt.syscall_ip;
	}
	return 0;
}

/* What each thread holds for itself. */
int core_restore_thread(struct itask *t, struct ithread *it)
{
	Stasis__ThreadCore *th = it->th;
	char comm[16] = "";
	unsigned long at;
	long r;

	strncpy(comm, th->comm ? th->comm : "", sizeof(comm) - 1);
	at = scratch_put(t, 0, comm, sizeof(comm));
	if (!at)
		return -1;
	r = rsys(it->rt, SYS_prctl, PR_SET_NAME, at, 0, 0, 0);
	if (r)
		pr_warn("task %u: cannot restore its name: %s", th->tid, strerror(-r));
	rsys(it->rt, SYS_set_tid_address, th->clear_child_tid);
	if (th->has_robust_list) {
		r = rsys(it->rt, SYS_set_robust_list, th->robust_list, th->robust_list_len);
		if (r) {
			pr_err("task %u: cannot restore its robust futex list: %s", th->tid,
			       strerror(-r));
			return -1;
		}
	}
	if (th->has_mce_kill && th->mce_kill != PR_MCE_KILL_DEFAULT) {
		r = rsys(it->rt, SYS_prctl, PR_MCE_KILL, PR_MCE_KILL_SET, th->mce_kill, 0, 0);
		if (r)
			pr_warn("task %u: cannot restore its MCE kill policy: %s", th->tid,
				strerror(-r));
	}
	if (th->rseq) {
		r = rsys(it->rt, SYS_rseq, th->rseq->ptr, th->rseq->len, 0, th->rseq->signature);
		if (r) {
			pr_err("task %u: cannot register rseq at %#llx: %s", th->tid,
			       (unsigned long long)th->rseq->ptr, strerror(-r));
			return -1;
		}
	}
	return signals_restore_thread(t, it);
}

static int thread_set_regs(struct ithread *it)
{
	Stasis__UserRegs *u = it->th->regs;
	struct user_regs_struct r;
	uint64_t mask = it->th->sigmask;
	pid_t tid = it->rt->tid;

#define R(x) r.x = u->x
	R(r15); R(r14); R(r13); R(r12); R(rbp); R(rbx); R(r11); R(r10); R(r9); R(r8);
	R(rax); R(rcx); R(rdx); R(rsi); R(rdi); R(orig_rax); R(rip); R(cs); R(eflags);
	R(rsp); R(ss); R(fs_base); R(gs_base); R(ds); R(es); R(fs); R(gs);
#undef R
	/*
	 * Stopped inside a system call that the kernel would restart: run it
	 * again ourselves. Its restart block (nanosleep, poll) lived in the
	 * old kernel task, so those restart with their original arguments.
	 */
	if ((long)r.orig_rax >= 0) {
		switch ((long)r.rax) {
		case -ERESTARTSYS:
		case -ERESTARTNOINTR:
		case -ERESTARTNOHAND:
		case -ERESTART_RESTARTBLOCK:
			r.rax = r.orig_rax;
			r.rip -= 2;
			break;
		}
	}
	r.orig_rax = -1;
	if (ptrace(PTRACE_SETREGS, tid, NULL, &r)) {
		pr_perror("cannot set the registers of task %d", tid);
		return -1;
	}
	if (it->th->has_xsave && ptrace_set_xstate(tid, it->th->xsave.data, it->th->xsave.len))
		return -1;
	if (ptrace(PTRACE_SETSIGMASK, tid, (void *)8, &mask)) {
		pr_perror("cannot set the signal mask of task %d", tid);
		return -1;
	}
	return 0;
}

int core_restore_regs(struct itask *t)
{
	for (size_t i = 0; i < t->nr_threads; i++)
		if (thread_set_regs(&t->threads[i]))
			return -1;
	return 0;
}
