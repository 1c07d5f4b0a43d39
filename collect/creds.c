// SPDX-License-Identifier: GPL-2.0
/*
 * Credentials and seccomp, per thread: the kernel keeps both in each
 * thread's own cred and seccomp state (a raw setresuid or a filter
 * installed without TSYNC changes one thread only).
 *
 * ids, groups and no_new_privs come from /proc/PID/task/TID/status, the
 * capability sets through libcap (cap_get_pid, cap_iab_get_pid: they read
 * the same status file), securebits from inside (PR_GET_SECUREBITS has no
 * outside view) and the filters with PTRACE_SECCOMP_GET_FILTER.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "collect.h"
#include "stasis/log.h"
#include "stasis/util.h"

#define MAX_GROUPS 65536

struct status {
	unsigned ids[2][4]; /* Uid, Gid: real, effective, saved, fs */
	uint32_t *groups;
	size_t nr_groups;
	int nnp;
	int seccomp;
};

static int parse_status(pid_t pid, pid_t tid, struct status *st)
{
	char path[64], *line = NULL;
	size_t cap = 0;
	int seen = 0;
	FILE *f;

	memset(st, 0, sizeof(*st));
	st->nnp = st->seccomp = -1;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tid);
	f = fopen(path, "re");
	if (!f) {
		pr_perror("cannot open %s", path);
		return -1;
	}
	while (getline(&line, &cap, f) > 0) {
		unsigned *id = NULL;

		if (!strncmp(line, "Uid:", 4))
			id = st->ids[0];
		else if (!strncmp(line, "Gid:", 4))
			id = st->ids[1];
		if (id) {
			if (sscanf(line + 4, "%u %u %u %u", &id[0], &id[1], &id[2], &id[3]) != 4)
				break;
			seen++;
		} else if (!strncmp(line, "Groups:", 7)) {
			char *p = line + 7, *end;

			for (;;) {
				unsigned long g = strtoul(p, &end, 10);

				if (end == p)
					break;
				if (st->nr_groups >= MAX_GROUPS)
					goto bad;
				st->groups = xrealloc(st->groups,
						      (st->nr_groups + 1) * sizeof(uint32_t));
				st->groups[st->nr_groups++] = g;
				p = end;
			}
			seen++;
		} else if (!strncmp(line, "NoNewPrivs:", 11)) {
			st->nnp = atoi(line + 11);
		} else if (!strncmp(line, "Seccomp:", 8)) {
			st->seccomp = atoi(line + 8);
		}
	}
	free(line);
	fclose(f);
	if (seen == 3 && st->nnp >= 0 && st->seccomp >= 0)
		return 0;
	pr_err("%s: no Uid, Gid, Groups, NoNewPrivs or Seccomp line", path);
	return -1;
bad:
	free(line);
	fclose(f);
	pr_err("%s: too many supplementary groups", path);
	return -1;
}

/* libcap's view of one thread as bit masks (bit N = capability N). */
static int read_caps(pid_t tid, Stasis__Creds *c)
{
	cap_value_t max = cap_max_bits();
	cap_iab_t iab;
	cap_t caps;

	if (max > 64) {
		pr_err("this kernel has %d capabilities; stasis stores 64", (int)max);
		return -1;
	}
	caps = cap_get_pid(tid);
	iab = cap_iab_get_pid(tid);
	if (!caps || !iab) {
		pr_perror("cannot read the capabilities of task %d", tid);
		cap_free(caps);
		cap_free(iab);
		return -1;
	}
	c->cap_bnd = 0;
	for (cap_value_t v = 0; v < max; v++) {
		cap_flag_value_t e = 0, p = 0, i = 0;
		uint64_t bit = 1ull << v;

		cap_get_flag(caps, v, CAP_EFFECTIVE, &e);
		cap_get_flag(caps, v, CAP_PERMITTED, &p);
		cap_get_flag(caps, v, CAP_INHERITABLE, &i);
		c->cap_eff |= e ? bit : 0;
		c->cap_prm |= p ? bit : 0;
		c->cap_inh |= i ? bit : 0;
		c->cap_amb |= cap_iab_get_vector(iab, CAP_IAB_AMB, v) ? bit : 0;
		/* libcap's IAB holds the bounding set as what is dropped */
		c->cap_bnd |= cap_iab_get_vector(iab, CAP_IAB_BOUND, v) ? 0 : bit;
	}
	if (log_get_level() >= LOG_DEBUG) {
		char *txt = cap_to_text(caps, NULL), *itxt = cap_iab_to_text(iab);

		pr_debug("task %d: capabilities %s, IAB %s", tid, txt ? txt : "?",
			 itxt ? itxt : "?");
		cap_free(txt);
		cap_free(itxt);
	}
	cap_free(caps);
	cap_free(iab);
	return 0;
}

/* The index of filter (parent, prog, flags) in the task's table, added if new. */
static uint32_t filter_index(Stasis__TaskCore *tc, int parent, void *prog, size_t len,
			     uint64_t flags)
{
	Stasis__SeccompFilter *f;

	for (size_t i = 0; i < tc->n_seccomp_filters; i++) {
		f = tc->seccomp_filters[i];
		if (f->has_parent != (parent >= 0) ||
		    (parent >= 0 && f->parent != (uint32_t)parent))
			continue;
		if (f->flags == flags && f->prog.len == len && !memcmp(f->prog.data, prog, len))
			return i;
	}
	f = xmalloc(sizeof(*f));
	stasis__seccomp_filter__init(f);
	f->prog.len = len;
	f->prog.data = xmalloc(len);
	memcpy(f->prog.data, prog, len);
	f->has_flags = true;
	f->flags = flags;
	if (parent >= 0) {
		f->has_parent = true;
		f->parent = parent;
	}
	tc->seccomp_filters = xrealloc(tc->seccomp_filters,
				       (tc->n_seccomp_filters + 1) * sizeof(*tc->seccomp_filters));
	tc->seccomp_filters[tc->n_seccomp_filters] = f;
	return tc->n_seccomp_filters++;
}

/* A filter that hands system calls to a supervisor (user notification):
 * its listener cannot be recreated, and without it those calls would fail
 * with ENOSYS after the restore. Returns computed in A are not seen. */
static bool notifies_user(const struct sock_filter *prog, long n)
{
	for (long i = 0; i < n; i++)
		if (prog[i].code == (BPF_RET | BPF_K) &&
		    (prog[i].k & SECCOMP_RET_ACTION_FULL) == SECCOMP_RET_USER_NOTIF)
			return true;
	return false;
}

/* The thread's filter chain, oldest first (as the kernel numbers them:
 * get_nth_filter counts from the first installed); identical chains of
 * several threads share their entries. */
static int collect_seccomp(pid_t tid, Stasis__TaskCore *tc, Stasis__ThreadCore *th)
{
	struct sock_filter *prog = xmalloc(BPF_MAXINSNS * sizeof(*prog));
	long n, nr;
	int parent = -1;

	for (nr = 0;; nr++) {
		n = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, (void *)nr, NULL);
		if (n < 0 && errno == ENOENT)
			break;
		if (n < 0) {
			pr_perror("cannot read seccomp filter %ld of task %d", nr, tid);
			goto err;
		}
		if (nr > 1 << 16) {
			pr_err("task %d: too many seccomp filters", tid);
			goto err;
		}
	}
	th->seccomp_chain = xmalloc((nr + 1) * sizeof(*th->seccomp_chain));
	for (long i = 0; i < nr; i++) {
		struct __ptrace_seccomp_metadata md = { .filter_off = i };

		n = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, (void *)i, prog);
		if (n <= 0 || n > BPF_MAXINSNS) {
			pr_perror("cannot read seccomp filter %ld of task %d", i, tid);
			goto err;
		}
		if (notifies_user(prog, n)) {
			pr_err("task %d: seccomp filter %ld notifies a supervisor "
			       "(SECCOMP_RET_USER_NOTIF): not supported",
			       tid, i);
			goto err;
		}
		if (ptrace(PTRACE_SECCOMP_GET_METADATA, tid, (void *)sizeof(md), &md) < 0) {
			pr_perror("cannot read the flags of seccomp filter %ld of task %d", i, tid);
			goto err;
		}
		parent = filter_index(tc, parent, prog, n * sizeof(*prog), md.flags);
		th->seccomp_chain[th->n_seccomp_chain++] = parent;
	}
	free(prog);
	pr_debug("task %d: %ld seccomp filters", tid, nr);
	return 0;
err:
	free(prog);
	return -1;
}

int creds_collect_thread(struct ctask *ct, int thread, Stasis__TaskCore *tc,
			 Stasis__ThreadCore *th)
{
	pid_t tid = ct->threads[thread].tid;
	Stasis__Creds *c = xmalloc(sizeof(*c));
	struct status st;
	long r;

	stasis__creds__init(c);
	if (parse_status(ct->pid, tid, &st))
		return -1;
	c->uid = st.ids[0][0];
	c->euid = st.ids[0][1];
	c->suid = st.ids[0][2];
	c->fsuid = st.ids[0][3];
	c->gid = st.ids[1][0];
	c->egid = st.ids[1][1];
	c->sgid = st.ids[1][2];
	c->fsgid = st.ids[1][3];
	c->groups = st.groups;
	c->n_groups = st.nr_groups;
	if (read_caps(tid, c))
		return -1;
	r = parasite_call(ct, thread, SYS_prctl, PR_GET_SECUREBITS, 0, 0, 0);
	if (r < 0) {
		pr_err("task %d: cannot read securebits: %s", tid, strerror(-r));
		return -1;
	}
	c->securebits = r;
	th->creds = c;
	th->has_no_new_privs = true;
	th->no_new_privs = st.nnp;
	th->has_seccomp_mode = true;
	th->seccomp_mode = st.seccomp;
	if (st.seccomp == SECCOMP_MODE_FILTER)
		return collect_seccomp(tid, tc, th);
	if (st.seccomp != SECCOMP_MODE_DISABLED && st.seccomp != SECCOMP_MODE_STRICT) {
		pr_err("task %d: unknown seccomp mode %d", tid, st.seccomp);
		return -1;
	}
	return 0;
}
