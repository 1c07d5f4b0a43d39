// SPDX-License-Identifier: GPL-2.0
/* pstree: every task of the tree with its parent, group, session, threads. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "collect.h"
#include "stasis/log.h"
#include "stasis/proc.h"
#include "stasis/util.h"

/* A session or group whose leader has died (a double-forked daemon) is
 * recreated around a helper; one whose leader lives outside is not ours. */
static bool leader_alive_outside(const struct tree *t, pid_t id)
{
	return !tree_has(t, id) && (kill(id, 0) == 0 || errno != ESRCH);
}

static int check_session(const struct tree *t, const struct proc_stat *st)
{
	if (opts.shell_job)
		return 0;
	if (leader_alive_outside(t, st->sid)) {
		pr_err("task %d: its session leader %d is outside the dumped tree; use --shell-job",
		       st->pid, st->sid);
		return -1;
	}
	/* a group whose leader died inside the tree is fine; one led from
	 * outside is not */
	if (st->pgid != st->pid && leader_alive_outside(t, st->pgid) &&
	    st->pid == t->tasks[0].pid) {
		pr_err("task %d: its process group leader %d is outside the dumped tree; use "
		       "--shell-job",
		       st->pid, st->pgid);
		return -1;
	}
	return 0;
}

/* The signal that stopped pid before the dump, 0 if it was running. */
static int stop_signal(pid_t pid)
{
	const char *list = getenv(STASIS_FREEZE_STOPPED_ENV);
	char *end;

	for (const char *p = list; p && *p; p = *end ? end + 1 : end) {
		long tid = strtol(p, &end, 10), sig;

		if (end == p || *end != ':')
			break;
		p = end + 1;
		sig = strtol(p, &end, 10);
		if (end == p)
			break;
		if (tid == pid)
			return (int)sig;
	}
	return 0;
}

static bool same_files(pid_t a, pid_t b)
{
	return syscall(SYS_kcmp, a, b, KCMP_FILES, 0, 0) == 0;
}

/* Shares its parent's descriptor table (a clone with CLONE_FILES and
 * without CLONE_THREAD)? The root's parent is not ours. */
static bool shares_parent_files(const struct tree *t, int i, pid_t ppid)
{
	return i && !t->tasks[i].zombie && same_files(t->tasks[i].pid, ppid);
}

/*
 * The restorer makes the tasks that share a descriptor table by cloning
 * each from its parent with CLONE_FILES: the sharers must form a subtree,
 * with exactly one of them not sharing with its parent. Two such tasks
 * (siblings that share a table their parent does not) are refused.
 */
static int check_files_shared(const struct tree *t, int i, const pid_t *ppids)
{
	if (t->tasks[i].zombie || shares_parent_files(t, i, ppids[i]))
		return 0;
	for (int j = 0; j < t->nr; j++) {
		if (j == i || t->tasks[j].zombie || !same_files(t->tasks[i].pid, t->tasks[j].pid) ||
		    shares_parent_files(t, j, ppids[j]))
			continue;
		pr_err("task %d: its descriptor table is shared with task %d but not with its "
		       "parent: not supported",
		       t->tasks[i].pid, t->tasks[j].pid);
		return -1;
	}
	return 0;
}

/* In a PID namespace of the tree's own: its group and session as the
 * namespace sees them, which must be in it (its init's session is one
 * it started, as a container's init does). */
static int ns_ids_inside(const struct proc_stat *st, Stasis__PstreeEntry *pe)
{
	pe->pgid = pidns_task_id(st->pid, "NSpgid");
	pe->sid = pidns_task_id(st->pid, "NSsid");
	if (!pe->pgid || !pe->sid) {
		pr_err("task %d: its %s %d is outside its PID namespace: not supported (the "
		       "namespace's init should call setsid)",
		       st->pid, pe->sid ? "process group" : "session",
		       pe->sid ? st->pgid : st->sid);
		return -1;
	}
	return 0;
}

static uint32_t *inner_tids(const struct tree_task *tt)
{
	uint32_t *tids = xzalloc((tt->nr_tids + 1) * sizeof(*tids));

	for (int j = 0; j < tt->nr_tids; j++)
		tids[j] = pidns_vpid(tt->tids[j]);
	return tids;
}

int pstree_collect(const struct tree *t, struct img_writer *w)
{
	pid_t *ppids = xzalloc(t->nr * sizeof(*ppids));
	int ret = -1;

	for (int i = 0; i < t->nr; i++) {
		struct proc_stat st;

		if (proc_read_stat(t->tasks[i].pid, 0, &st))
			goto out;
		ppids[i] = st.ppid;
	}
	if (!t->tasks[0].zombie && same_files(t->tasks[0].pid, ppids[0])) {
		pr_err("task %d: its descriptor table is shared with task %d, outside the dumped "
		       "tree: not supported",
		       t->tasks[0].pid, ppids[0]);
		goto out;
	}
	for (int i = 0; i < t->nr; i++) {
		Stasis__PstreeEntry pe = STASIS__PSTREE_ENTRY__INIT;
		struct proc_stat st, pst;
		int rec;

		if (proc_read_stat(t->tasks[i].pid, 0, &st) || check_session(t, &st) ||
		    check_files_shared(t, i, ppids) ||
		    (!t->tasks[i].zombie && ns_task_ids(t->tasks[i].pid, &pe)))
			goto out;
		if (shares_parent_files(t, i, ppids[i])) {
			/* restored by a clone from the parent: it must be
			 * able to have the task's session */
			if (proc_read_stat(ppids[i], 0, &pst))
				goto out;
			if (st.sid != st.pid && st.sid != pst.sid) {
				pr_err("task %d: it shares its parent's descriptor table but not its "
				       "session %d: not supported",
				       st.pid, st.sid);
				goto out;
			}
			pe.has_files_shared = pe.files_shared = true;
		}
		pe.pid = pidns_vpid(st.pid);
		pe.ppid = i ? pidns_vpid(st.ppid) : 0;
		pe.pgid = st.pgid;
		pe.sid = st.sid;
		if (pidns_active() && ns_ids_inside(&st, &pe))
			goto out;
		pe.has_dump_host_pid = pidns_active();
		pe.dump_host_pid = st.pid;
		pe.has_tty_nr = st.tty_nr != 0;
		pe.tty_nr = st.tty_nr;
		pe.n_threads = t->tasks[i].nr_tids;
		if (!t->tasks[i].zombie)
			pe.stop_signo = stop_signal(st.pid);
		pe.has_stopped = pe.stopped = pe.has_stop_signo = pe.stop_signo != 0;
		pe.threads =
		    pidns_active() ? inner_tids(&t->tasks[i]) : (uint32_t *)t->tasks[i].tids;
		if (t->tasks[i].zombie) {
			pe.has_zombie = pe.has_exit_code = true;
			pe.zombie = true;
			pe.exit_code = st.exit_code;
			pe.comm = st.comm;
		}
		rec = imgw_record(w, "pstree", &pe.base);
		if (pe.threads != (uint32_t *)t->tasks[i].tids)
			free(pe.threads);
		if (rec)
			goto out;
	}
	ret = 0;
out:
	free(ppids);
	return ret;
}
