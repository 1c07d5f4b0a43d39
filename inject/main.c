// SPDX-License-Identifier: GPL-2.0
/*
 * stasis-inject: read a plaintext image stream on stdin and recreate the
 * tree from the outside with ptrace: the task is cloned with its old PID,
 * emptied, refilled with remote system calls, and released with its own
 * registers. Any failure kills what was made; nothing half-restored runs.
 */
#include <errno.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actions.h"
#include "files.h"
#include "inject.h"
#include "stasis/fault.h"
#include "stasis/log.h"
#include "stasis/util.h"
#include "stats.h"

/* Everything a live task needs once the tree exists and pages are in:
 * first its descriptors and threads... */
static int restore_task_files(struct itree *tr, struct itask *t)
{
	if (mm_finish(t) || fs_restore(t) || files_restore(tr, t) || fault_hit("inject-files") ||
	    locks_restore(t) || core_create_threads(t))
		return -1;
	return 0;
}

/* ...then, once every thread of the tree exists, the rest. */
static int restore_task(struct itask *t)
{
	if (files_restore_late(t) || tty_restore_fg(t) || core_restore_attrs(t) || signals_restore(t))
		return -1;
	for (size_t i = 0; i < t->nr_threads; i++)
		if (core_restore_thread(t, &t->threads[i]))
			return -1;
	/* Timers as late as possible; credentials last, while the task still
	 * holds the privileges the other calls need. */
	if (timers_restore(t) || creds_restore(t) || parasite_remove(t))
		return -1;
	return core_restore_regs(t) || sched_restore(t) || cgroup_restore(t) ? -1 : 0;
}

/*
 * Tasks are made parents first; each gets its memory before its children
 * are forked from it, so that what they still share copy-on-write (pages
 * marked in_parent) is inherited rather than copied.
 */
static int restore_tree(struct itree *tr, struct img_reader *r, struct img_frame *f, int more)
{
	for (size_t i = 0; i < tr->nr; i++) {
		struct itask *t = &tr->tasks[i], *src;
		bool adopt;
		int ret;

		src = pstree_create_task(tr, t);
		if (!src || fault_hit("inject-forked"))
			return -1;
		if (i == 0)
			files_release_staged();
		if (i == 0 && actions_created(t->hpid))
			return -1;
		if (!task_alive(t))
			continue;
		if (mm_load_pagemap(t))
			return -1;
		adopt = src != t && src == t->parent;
		ret = adopt ? mm_adopt(tr, t, src) : mm_prepare(t) || mm_restore_vmas(tr, t);
		/* the task emptied, its pages not yet in */
		if (!ret)
			ret = fault_hit("inject-mm") || mm_fill_pages(t, r, f, &more);
		mm_free_pagemap(t);
		if (ret)
			return -1;
	}
	if (mm_end_of_stream(r, f, more))
		return -1;
	/* every task exists, none forks any more: their lazy memory goes to
	 * the daemon, which serves the faults of the rest of the restore */
	for (size_t i = 0; opts.lazy_pages && i < tr->nr; i++)
		if (task_alive(&tr->tasks[i]) && lazy_register(&tr->tasks[i]))
			return -1;
	/* queued messages name their senders, which exist now */
	if (pstree_finish(tr) || unixsk_restore_queues())
		return -1;
	for (size_t i = 0; i < tr->nr; i++)
		if (task_alive(&tr->tasks[i]) && restore_task_files(tr, &tr->tasks[i]))
			return -1;
	ghost_end_helpers();
	/* every file is open: each mount namespace gets its PID namespace's /proc */
	for (size_t i = 0; i < tr->nr; i++)
		if (task_alive(&tr->tasks[i]) && mntns_mount_procs(tr, &tr->tasks[i]))
			return -1;
	for (size_t i = 0; i < tr->nr; i++)
		if (task_alive(&tr->tasks[i]) && restore_task(&tr->tasks[i]))
			return -1;
	/* the cgroups' settings once every task is in, as criu does
	 * (cgroup.freeze, or a memory limit that moves charges along,
	 * would act on the tasks moving in) */
	return cgroup_finish();
}

static int write_pidfile(pid_t pid)
{
	FILE *f;

	if (!opts.pidfile)
		return 0;
	f = fopen(opts.pidfile, "we");
	if (!f || fprintf(f, "%d", pid) < 0 || fclose(f)) {
		pr_perror("cannot write pidfile %s", opts.pidfile);
		return -1;
	}
	return 0;
}

/* A PID is busy while a task or a process group has it. */
static bool pid_busy(pid_t p)
{
	return !kill(p, 0) || errno != ESRCH || !kill(-p, 0) || errno != ESRCH;
}

/*
 * kill() saying a PID is gone is not proof that its number can be taken
 * (a restore once found it "in use" right after the wait): take it for a
 * moment to be sure, with a child that exits at once. Another error than
 * EEXIST is the restore's to report.
 */
static bool pid_takeable(pid_t p)
{
	pid_t tid = p;
	struct clone_args args = {
		.exit_signal = SIGCHLD,
		.set_tid = (uint64_t)(unsigned long)&tid,
		.set_tid_size = 1,
	};
	long r = syscall(SYS_clone3, &args, sizeof(args));

	if (r == 0)
		_exit(0);
	if (r < 0)
		return errno != EEXIST;
	waitpid(r, NULL, 0);
	return true;
}

/*
 * --wait-pids-free: in a migration within one host (one PID namespace) the
 * source tree holds the PIDs until the sender learns that the checkpoint
 * arrived and kills it. Wait for that before taking anything (files,
 * locks) the source may still hold. stasis-transfer keeps the stream open
 * until it is read when it is complete; closed earlier, the transfer
 * failed and the source runs on: no use waiting.
 */
static int wait_pids_free(const struct itree *tr)
{
	uint64_t end = now_ns() + opts.wait_pids_free * 1000000000ull;
	bool said = false;

	/* a tree in a PID namespace of its own gets a new one: its PIDs are
	 * free there whatever runs here */
	if (pstree_namespaced(tr))
		return 0;
	for (size_t i = 0; opts.wait_pids_free && i < tr->nr; i++) {
		const Stasis__PstreeEntry *pe = tr->tasks[i].pe;
		pid_t ids[2] = { pe->pgid, pe->sid };

		for (size_t j = 0; j < pe->n_threads + 2; j++) {
			pid_t p = j < 2 ? ids[j] : (pid_t)pe->threads[j - 2];

			/* the caller's own group and session (--shell-job) stay */
			if (j < 2 && (p == getpgrp() || p == getsid(0)))
				continue;
			while (pid_busy(p) || !pid_takeable(p)) {
				struct pollfd in = { .fd = STDIN_FILENO };

				if (poll(&in, 1, 0) > 0 && (in.revents & (POLLHUP | POLLERR))) {
					pr_err("the stream was closed while PID %d is in use: the "
					       "transfer failed",
					       p);
					return -1;
				}
				if (now_ns() > end) {
					pr_err("PID %d is still in use after %d s (--wait-pids-free)",
					       p, opts.wait_pids_free);
					return -1;
				}
				if (!said)
					pr_info("waiting for PID %d and the others of the tree to be free",
						p);
				said = true;
				usleep(5000);
			}
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct itree tree = { 0 };
	struct img_reader *r;
	struct img_frame f;
	int more, status;
	uint64_t start = now_ns();
	pid_t root;

	log_init(argv[0]);
	if (inject_parse_opts(argc, argv))
		return 1;
	signal(SIGPIPE, SIG_IGN);
	r = imgr_open(STDIN_FILENO, "checkpoint stream");
	more = records_load(r, &f);
	if (more < 0 || pstree_load(&tree) || wait_pids_free(&tree) || ns_prepare(&tree) ||
	    (opts.lazy_pages && lazy_connect_daemon(&tree)) || cgroup_prepare(&tree) ||
	    files_prepare(&tree))
		return 1;
	/* the pipe's pages copied in beside UFFDIO_COPY into the tasks; only
	 * now: while waiting for PIDs, a hang-up of the pipe means a sender gone */
	imgr_readahead(r);
	if (restore_tree(&tree, r, &f, more))
		goto fail;
	/* as we see it: a namespace's init is 1 only inside */
	root = tree.tasks[0].hpid;
	/*
	 * Every task has its files: the link remaps and the ghosts' temporary
	 * names go before the tree runs, so that it never sees them.
	 */
	ghost_finish();
	if (ipcns_finish() || write_pidfile(root) || actions_restored(root) || inet_finish())
		goto fail;
	if (fault_hit("inject-release") || pstree_release(&tree))
		goto fail;
	stats_restored(&tree, start);
	/* the daemon may finish once it has every page */
	if (opts.lazy_pages && lazy_tree_done())
		goto fail;
	actions_resumed(root);
	pr_info("restored tree %d (%zu tasks) in %llu ms", root, tree.nr,
		(unsigned long long)(now_ns() - start) / 1000000);
	imgr_free(r);
	if (opts.detached) {
		if (opts.lazy_pages && lazy_watch_detached(&tree))
			goto fail;
		lazy_detach();
		return 0;
	}
	if (opts.lazy_pages) {
		if (lazy_wait(&tree, root, &status))
			return 1;
	} else {
		while (waitpid(root, &status, 0) < 0)
			if (errno != EINTR) {
				pr_perror("cannot wait for task %d", root);
				return 1;
			}
	}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
fail:
	if (opts.lazy_pages && lazy_daemon_lost())
		pr_err("the lazy-pages daemon went away during the restore");
	pstree_kill(&tree);
	pr_err("restore failed; nothing was left running");
	return 1;
}
