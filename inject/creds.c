// SPDX-License-Identifier: GPL-2.0
/*
 * Credentials and seccomp: the last remote calls before the gadget goes.
 *
 * A task sets its own credentials only (capset and the PR_CAPBSET_DROP,
 * PR_CAP_AMBIENT and PR_SET_SECUREBITS prctls act on the caller), so each
 * thread runs them itself through the gadget; libcap serves stasis-inject
 * only for what concerns itself (how many capabilities this kernel has)
 * and for messages. The restored threads start as copies of stasis-inject,
 * root with every capability, and go down in an order where each step
 * still holds the privilege it needs:
 *
 *   seccomp filters (need CAP_SYS_ADMIN or no_new_privs) -> no_new_privs
 *   -> SECBIT_NO_SETUID_FIXUP (keep capabilities across the uid change)
 *   -> groups, gids, uids -> inheritable -> ambient -> bounding set drops
 *   -> securebits -> permitted and effective -> strict seccomp
 *
 * Filters are installed with PTRACE_O_SUSPEND_SECCOMP set on the tracee, so
 * that the remote calls after them are not filtered. A change of uid or
 * capabilities resets dumpable and the parent-death signal: they are set
 * again afterwards.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/securebits.h>

#include "inject.h"
#include "stasis/log.h"

/* The options inject/pstree.c seizes with, plus the suspension. */
#define PTRACE_OPTIONS_SECCOMP                                                  \
	(PTRACE_O_EXITKILL | PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | \
	 PTRACE_O_SUSPEND_SECCOMP)

#define SCRATCH_PROG 4096

struct capdata {
	struct __user_cap_header_struct hdr;
	struct __user_cap_data_struct d[2];
};

static int check_filter(struct itask *t, uint32_t idx)
{
	Stasis__SeccompFilter *f;

	if (idx >= t->tc->n_seccomp_filters)
		goto bad;
	f = t->tc->seccomp_filters[idx];
	if (!f->prog.len || f->prog.len % sizeof(struct sock_filter) ||
	    f->prog.len > BPF_MAXINSNS * sizeof(struct sock_filter))
		goto bad;
	return 0;
bad:
	pr_err("task %d: malformed seccomp filter %u in the checkpoint", t->pid, idx);
	return -1;
}

static int install_filter(struct itask *t, struct rtask *rt, uint32_t idx, unsigned long flags)
{
	Stasis__SeccompFilter *f = t->tc->seccomp_filters[idx];
	struct sock_fprog fp = { .len = f->prog.len / sizeof(struct sock_filter) };
	unsigned long at;
	long r;

	fp.filter = (struct sock_filter *)scratch_put(t, SCRATCH_PROG, f->prog.data, f->prog.len);
	if (!fp.filter || !(at = scratch_put(t, 0, &fp, sizeof(fp))))
		return -1;
	/* LOG is the only flag PTRACE_SECCOMP_GET_METADATA reports */
	flags |= f->flags & SECCOMP_FILTER_FLAG_LOG;
	r = rsys(rt, SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, at);
	if (r) {
		pr_err("task %d: cannot install seccomp filter %u: %s", rt->tid, idx,
		       r > 0 ? "another thread cannot follow" : strerror(-r));
		return -1;
	}
	return 0;
}

/*
 * What all threads share (their common oldest filters) is installed once
 * with TSYNC from the leader, so they share it as before; what a thread has
 * beyond that, it installs alone.
 */
static int restore_seccomp(struct itask *t)
{
	size_t common = SIZE_MAX;
	bool any = false;

	for (size_t i = 0; i < t->nr_threads; i++) {
		Stasis__ThreadCore *th = t->threads[i].th;

		any |= th->seccomp_mode != SECCOMP_MODE_DISABLED;
		if (th->seccomp_mode != SECCOMP_MODE_FILTER && th->n_seccomp_chain) {
			pr_err("task %u: seccomp filters without filter mode", th->tid);
			return -1;
		}
		for (size_t k = 0; k < th->n_seccomp_chain; k++)
			if (check_filter(t, th->seccomp_chain[k]))
				return -1;
		if (common > th->n_seccomp_chain)
			common = th->n_seccomp_chain;
		for (size_t k = 0; k < common; k++)
			if (th->seccomp_chain[k] != t->threads[0].th->seccomp_chain[k])
				common = k;
	}
	if (!any)
		return 0;
	for (size_t i = 0; i < t->nr_threads; i++) {
		pid_t tid = t->threads[i].rt->tid;

		if (ptrace(PTRACE_SETOPTIONS, tid, NULL, (void *)PTRACE_OPTIONS_SECCOMP)) {
			pr_perror("task %d: cannot suspend seccomp while restoring it", tid);
			return -1;
		}
	}
	for (size_t k = 0; k < common; k++)
		if (install_filter(t, &t->rt, t->threads[0].th->seccomp_chain[k],
				   t->nr_threads > 1 ? SECCOMP_FILTER_FLAG_TSYNC : 0))
			return -1;
	for (size_t i = 0; i < t->nr_threads; i++) {
		Stasis__ThreadCore *th = t->threads[i].th;

		for (size_t k = common; k < th->n_seccomp_chain; k++)
			if (install_filter(t, t->threads[i].rt, th->seccomp_chain[k], 0))
				return -1;
	}
	return 0;
}

/* The verdict of one remote call: 0, or -1 and a message. */
static int step(struct rtask *rt, const char *what, long r)
{
	if (r < 0)
		pr_err("task %d: cannot restore %s: %s", rt->tid, what, strerror(-r));
	return r < 0 ? -1 : 0;
}

static int set_caps(struct itask *t, struct rtask *rt, uint64_t eff, uint64_t prm, uint64_t inh)
{
	struct capdata c = { .hdr = { .version = _LINUX_CAPABILITY_VERSION_3 } };
	unsigned long at;

	for (int i = 0; i < 2; i++) {
		c.d[i].effective = eff >> (32 * i);
		c.d[i].permitted = prm >> (32 * i);
		c.d[i].inheritable = inh >> (32 * i);
	}
	at = scratch_put(t, 0, &c, sizeof(c));
	if (!at)
		return -1;
	return step(rt, "capabilities", rsys(rt, SYS_capset, at, at + sizeof(c.hdr)));
}

static int get_caps(struct itask *t, struct rtask *rt, uint64_t *eff, uint64_t *prm)
{
	struct capdata c = { .hdr = { .version = _LINUX_CAPABILITY_VERSION_3 } };
	unsigned long at = scratch_put(t, 0, &c, sizeof(c));

	if (!at ||
	    step(rt, "capabilities (capget)", rsys(rt, SYS_capget, at, at + sizeof(c.hdr))) ||
	    rmem_read(&t->rt, at, &c, sizeof(c)))
		return -1;
	*eff = c.d[0].effective | (uint64_t)c.d[1].effective << 32;
	*prm = c.d[0].permitted | (uint64_t)c.d[1].permitted << 32;
	return 0;
}

static void log_caps(pid_t tid, const Stasis__Creds *c)
{
	cap_t caps;
	char *txt;

	if (log_get_level() < LOG_DEBUG || !(caps = cap_init()))
		return;
	for (cap_value_t v = 0; v < 64 && v < cap_max_bits(); v++) {
		cap_value_t one[1] = { v };

		if (c->cap_eff >> v & 1)
			cap_set_flag(caps, CAP_EFFECTIVE, 1, one, CAP_SET);
		if (c->cap_prm >> v & 1)
			cap_set_flag(caps, CAP_PERMITTED, 1, one, CAP_SET);
		if (c->cap_inh >> v & 1)
			cap_set_flag(caps, CAP_INHERITABLE, 1, one, CAP_SET);
	}
	txt = cap_to_text(caps, NULL);
	pr_debug("task %d: uid %u/%u/%u/%u gid %u/%u/%u/%u, %zu groups, caps %s, bounding %#llx, "
		 "ambient %#llx, securebits %#x",
		 tid, c->uid, c->euid, c->suid, c->fsuid, c->gid, c->egid, c->sgid, c->fsgid,
		 c->n_groups, txt ? txt : "?", (unsigned long long)c->cap_bnd,
		 (unsigned long long)c->cap_amb, c->securebits);
	cap_free(txt);
	cap_free(caps);
}

static int restore_thread_creds(struct itask *t, struct rtask *rt, const Stasis__Creds *c)
{
	cap_value_t ncaps = cap_max_bits();
	uint64_t eff, prm;
	unsigned long at;
	long r;

	log_caps(rt->tid, c);
	if (c->n_groups > 65536) {
		pr_err("task %d: too many supplementary groups in the checkpoint", rt->tid);
		return -1;
	}
	if (step(rt, "securebits (no setuid fixup)",
		 rsys(rt, SYS_prctl, PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP, 0, 0, 0)))
		return -1;
	at = t->scratch;
	if (c->n_groups && !(at = scratch_put(t, 0, c->groups, c->n_groups * sizeof(uint32_t))))
		return -1;
	if (step(rt, "supplementary groups", rsys(rt, SYS_setgroups, c->n_groups, at)) ||
	    step(rt, "gids", rsys(rt, SYS_setresgid, c->gid, c->egid, c->sgid)))
		return -1;
	rsys(rt, SYS_setfsgid, c->fsgid);
	if (rsys(rt, SYS_setfsgid, -1) != (long)c->fsgid) {
		pr_err("task %d: cannot restore fsgid %u", rt->tid, c->fsgid);
		return -1;
	}
	if (step(rt, "uids", rsys(rt, SYS_setresuid, c->uid, c->euid, c->suid)))
		return -1;
	rsys(rt, SYS_setfsuid, c->fsuid);
	if (rsys(rt, SYS_setfsuid, -1) != (long)c->fsuid) {
		pr_err("task %d: cannot restore fsuid %u", rt->tid, c->fsuid);
		return -1;
	}

	/* inheritable first: an ambient capability must be inheritable */
	if (get_caps(t, rt, &eff, &prm) || set_caps(t, rt, eff, prm, c->cap_inh))
		return -1;
	if (step(rt, "ambient capabilities",
		 rsys(rt, SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)))
		return -1;
	for (cap_value_t v = 0; v < 64; v++) {
		if (!(c->cap_amb >> v & 1))
			continue;
		r = rsys(rt, SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, v, 0, 0);
		if (r) {
			char *name = cap_to_name(v);

			pr_err("task %d: cannot raise ambient capability %s: %s", rt->tid, name,
			       strerror(-r));
			cap_free(name);
			return -1;
		}
	}
	for (cap_value_t v = 0; v < ncaps && v < 64; v++) {
		if (c->cap_bnd >> v & 1)
			continue;
		r = rsys(rt, SYS_prctl, PR_CAPBSET_DROP, v, 0, 0, 0);
		if (r) {
			char *name = cap_to_name(v);

			pr_err("task %d: cannot drop %s from the bounding set: %s", rt->tid, name,
			       strerror(-r));
			cap_free(name);
			return -1;
		}
	}
	if (step(rt, "securebits",
		 rsys(rt, SYS_prctl, PR_SET_SECUREBITS, c->securebits, 0, 0, 0)))
		return -1;
	return set_caps(t, rt, c->cap_eff, c->cap_prm, c->cap_inh);
}

int creds_restore(struct itask *t)
{
	Stasis__TaskCore *tc = t->tc;
	long r;

	if (restore_seccomp(t))
		return -1;
	for (size_t i = 0; i < t->nr_threads; i++) {
		Stasis__ThreadCore *th = t->threads[i].th;
		struct rtask *rt = t->threads[i].rt;
		bool nnp = th->has_no_new_privs ? th->no_new_privs : (i == 0 && tc->no_new_privs);

		if (nnp && step(rt, "no_new_privs",
				rsys(rt, SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)))
			return -1;
		if (th->creds && restore_thread_creds(t, rt, th->creds))
			return -1;
	}
	/* reset by a change of credentials */
	if (tc->has_pdeath_sig) {
		r = ISYS(t, SYS_prctl, PR_SET_PDEATHSIG, tc->pdeath_sig, 0, 0, 0);
		if (step(&t->rt, "pdeath signal", r))
			return -1;
	}
	if (tc->has_dumpable && (tc->dumpable == 0 || tc->dumpable == 1) &&
	    step(&t->rt, "dumpable", ISYS(t, SYS_prctl, PR_SET_DUMPABLE, tc->dumpable, 0, 0, 0)))
		return -1;
	for (size_t i = 0; i < t->nr_threads; i++) {
		struct rtask *rt = t->threads[i].rt;

		/* allows read, write and exit only: seccomp stays suspended
		 * for our last calls */
		if (t->threads[i].th->seccomp_mode == SECCOMP_MODE_STRICT &&
		    step(rt, "strict seccomp",
			 rsys(rt, SYS_seccomp, SECCOMP_SET_MODE_STRICT, 0, 0)))
			return -1;
	}
	return 0;
}
