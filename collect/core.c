// SPDX-License-Identifier: GPL-2.0
/* core-PID: process attributes (TaskCore) and one ThreadCore per thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <linux/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "collect.h"
#include "stasis/log.h"
#include "stasis/proc.h"
#include "stasis/util.h"

#define XSAVE_MAX (64 << 10)

static Stasis__UserRegs *regs_to_pb(const struct user_regs_struct *r)
{
	Stasis__UserRegs *u = xmalloc(sizeof(*u));

	stasis__user_regs__init(u);
#define R(x) u->x = r->x
	R(r15); R(r14); R(r13); R(r12); R(rbp); R(rbx); R(r11); R(r10); R(r9); R(r8);
	R(rax); R(rcx); R(rdx); R(rsi); R(rdi); R(orig_rax); R(rip); R(cs); R(eflags);
	R(rsp); R(ss); R(fs_base); R(gs_base); R(ds); R(es); R(fs); R(gs);
#undef R
	return u;
}

static char *read_comm(pid_t pid, pid_t tid)
{
	char path[64], buf[64];

	snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", pid, tid);
	if (proc_read_file(path, buf, sizeof(buf)) < 0)
		return xstrdup("");
	buf[strcspn(buf, "\n")] = 0;
	return xstrdup(buf);
}

/* A prctl that stores an int or pointer at the scratch page. */
static int prctl_get(struct ctask *ct, int thread, int option, uint64_t *val, size_t size)
{
	long r = parasite_call(ct, thread, SYS_prctl, option, ct->scratch, 0, 0);

	*val = 0;
	if (r) {
		pr_err("task %d: prctl(%d) failed: %s", ct->threads[thread].tid, option, strerror(-r));
		return -1;
	}
	return rmem_read(&ct->threads[thread], ct->scratch, val, size);
}

static int collect_thread(struct ctask *ct, int i, Stasis__TaskCore *tc, Stasis__ThreadCore *th)
{
	pid_t tid = ct->threads[i].tid;
	struct ptrace_rseq_configuration rseq;
	static uint8_t xsave[XSAVE_MAX];
	size_t xlen = sizeof(xsave);
	uint64_t head, len;
	long r;

	stasis__thread_core__init(th);
	th->tid = pidns_vpid(tid);
	th->regs = regs_to_pb(&ct->threads[i].regs);
	if (ptrace_get_xstate(tid, xsave, &xlen))
		return -1;
	th->has_xsave = true;
	th->xsave.len = xlen;
	th->xsave.data = xmalloc(xlen);
	memcpy(th->xsave.data, xsave, xlen);
	th->comm = read_comm(ct->pid, tid);

	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, tid, sizeof(rseq), &rseq) == sizeof(rseq) &&
	    rseq.rseq_abi_pointer) {
		th->rseq = xmalloc(sizeof(*th->rseq));
		stasis__rseq_config__init(th->rseq);
		th->rseq->ptr = rseq.rseq_abi_pointer;
		th->rseq->len = rseq.rseq_abi_size;
		th->rseq->flags = rseq.flags;
		th->rseq->signature = rseq.signature;
	}
	if (syscall(SYS_get_robust_list, tid, &head, &len)) {
		pr_perror("cannot read the robust futex list of task %d", tid);
		return -1;
	}
	th->has_robust_list = th->has_robust_list_len = true;
	th->robust_list = head;
	th->robust_list_len = len;
	th->has_clear_child_tid = true;
	if (prctl_get(ct, i, PR_GET_TID_ADDRESS, &th->clear_child_tid, 8))
		return -1;
	r = parasite_call(ct, i, SYS_prctl, PR_MCE_KILL_GET, 0, 0, 0);
	if (r >= 0) {
		th->has_mce_kill = true;
		th->mce_kill = r;
	}
	if (creds_collect_thread(ct, i, tc, th) || sched_collect_thread(ct, i, th) ||
	    cgroup_collect_thread(ct, i, th) ||
	    timers_collect_thread(ct, i, th))
		return -1;
	return signals_collect_thread(ct, i, th);
}

int core_collect(struct ctask *ct, struct img_writer *w)
{
	Stasis__TaskCore tc = STASIS__TASK_CORE__INIT;
	Stasis__ThreadCore *th = NULL;
	char name[32], path[64], buf[64];
	uint64_t v;
	int ret = -1;
	long r;

	tc.pid = pidns_vpid(ct->pid);
	snprintf(path, sizeof(path), "/proc/%d/personality", ct->pid);
	if (proc_read_file(path, buf, sizeof(buf)) > 0) {
		tc.has_personality = true;
		tc.personality = strtoul(buf, NULL, 16);
	}
	tc.rlimits = xmalloc(RLIM_NLIMITS * sizeof(*tc.rlimits));
	for (int res = 0; res < RLIM_NLIMITS; res++) {
		struct rlimit rl;
		Stasis__Rlimit *l;

		/* from inside: prlimit on another process needs the same
		 * uids or CAP_SYS_RESOURCE, which these machines do not grant */
		long e = parasite_call(ct, 0, SYS_prlimit64, 0, res, 0, ct->scratch);

		if (e || rmem_read(&ct->threads[0], ct->scratch, &rl, sizeof(rl))) {
			pr_err("cannot read rlimit %d of task %d: %s", res, ct->pid,
			       e ? strerror(-e) : "memory");
			return -1;
		}
		l = xmalloc(sizeof(*l));
		stasis__rlimit__init(l);
		l->resource = res;
		l->cur = rl.rlim_cur;
		l->max = rl.rlim_max;
		tc.rlimits[tc.n_rlimits++] = l;
	}
	tc.comm = read_comm(ct->pid, ct->pid);
	if (signals_collect_task(ct, &tc))
		return -1;

	r = parasite_call(ct, 0, SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0);
	if (r < 0) {
		pr_err("task %d: cannot read dumpable: %s", ct->pid, strerror(-r));
		return -1;
	}
	tc.has_dumpable = true;
	tc.dumpable = r;
	r = parasite_call(ct, 0, SYS_prctl, PR_GET_NO_NEW_PRIVS, 0, 0, 0);
	tc.has_no_new_privs = r >= 0;
	tc.no_new_privs = r == 1;
	if (prctl_get(ct, 0, PR_GET_PDEATHSIG, &v, 4))
		return -1;
	tc.has_pdeath_sig = true;
	tc.pdeath_sig = v;
	if (prctl_get(ct, 0, PR_GET_CHILD_SUBREAPER, &v, 4))
		return -1;
	tc.has_child_subreaper = true;
	tc.child_subreaper = v;
	r = parasite_call(ct, 0, SYS_prctl, PR_GET_THP_DISABLE, 0, 0, 0);
	if (r >= 0) {
		tc.has_thp_disable = true;
		tc.thp_disable = r;
	}
	if (timers_collect(ct, &tc))
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", ct->pid);
	if (proc_read_file(path, buf, sizeof(buf)) <= 0) {
		pr_perror("task %d: cannot read oom_score_adj", ct->pid);
		return -1;
	}
	tc.has_oom_score_adj = true;
	tc.oom_score_adj = strtol(buf, NULL, 10);
	/* absent without CONFIG_AUDIT: nothing to carry then */
	snprintf(path, sizeof(path), "/proc/%d/loginuid", ct->pid);
	if (proc_read_file(path, buf, sizeof(buf)) > 0) {
		tc.has_loginuid = true;
		tc.loginuid = strtoul(buf, NULL, 10);
	}

	/* The threads first: they fill the task's table of seccomp filters. */
	th = xzalloc(ct->tt->nr_tids * sizeof(*th));
	for (int i = 0; i < ct->tt->nr_tids; i++)
		if (collect_thread(ct, i, &tc, &th[i]))
			goto out;
	snprintf(name, sizeof(name), "core-%d", pidns_vpid(ct->pid));
	if (imgw_record(w, name, &tc.base))
		goto out;
	for (int i = 0; i < ct->tt->nr_tids; i++)
		if (imgw_record(w, name, &th[i].base))
			goto out;
	ret = 0;
out:
	free(th);
	return ret;
}
