// SPDX-License-Identifier: GPL-2.0
/*
 * stasis-collect: read the state of the tree that stasis-freeze seized and
 * write it as an image stream on stdout. It decides the tree's fate: killed
 * (default) once the sink acknowledged a durable checkpoint, left running
 * (-R) or left stopped (-s); on any failure the tree is resumed untouched.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "actions.h"
#include "bgsnap.h"
#include "collect.h"
#include "memfd.h"
#include "stasis/fault.h"
#include "stasis/log.h"
#include "stasis/netlock.h"
#include "stasis/proc.h"
#include "stasis/util.h"
#include "stats.h"
#include "track.h"

static struct tree tree;
static struct ctask *ctasks;
static bool resumed; /* the tree runs again (background snapshot) */

const struct tree *collect_tree(void)
{
	return &tree;
}

/* Put every task back as it was (parasites out, registers, masks). */
static void resume_all(void)
{
	if (resumed)
		return;
	for (int i = 0; ctasks && i < tree.nr; i++)
		if (ctasks[i].threads)
			parasite_stop(&ctasks[i]);
	tree_detach(&tree, 0);
}

static int write_head(struct img_writer *w, pid_t root)
{
	Stasis__Inventory inv = STASIS__INVENTORY__INIT;
	struct utsname un;
	struct timespec ts;
	char host[256] = "";

	uname(&un);
	gethostname(host, sizeof(host) - 1);
	clock_gettime(CLOCK_REALTIME, &ts);
	inv.version = STASIS_STREAM_VERSION;
	inv.root_pid = pidns_vpid(root);
	inv.has_shell_job = true;
	inv.shell_job = opts.shell_job;
	inv.kernel = un.release;
	inv.hostname = host;
	inv.has_dump_time_ns = true;
	inv.dump_time_ns = ts.tv_sec * 1000000000ull + ts.tv_nsec;
	inv.has_page_size = true;
	inv.page_size = PAGE_SIZE;
	inv.has_pages_images = true;
	inv.pages_images = tree.nr;
	inv.has_pre_dump = inv.pre_dump = opts.pre_dump;
	inv.has_lazy_pages = inv.lazy_pages = opts.lazy_pages;
	inv.has_background_snapshot = inv.background_snapshot = bgsnap_wanted();
	if (opts.track_mem) {
		inv.has_track_id = true;
		inv.track_id.data = (uint8_t *)track_new_id();
		inv.track_id.len = TRACK_ID_LEN;
	}
	if (track_has_parent()) {
		inv.has_parent_track_id = true;
		inv.parent_track_id.data = (uint8_t *)track_parent_id();
		inv.parent_track_id.len = TRACK_ID_LEN;
	}
	if (inet_locked())
		inv.network_lock = (char *)netlock_name(opts.network_lock);
	if (imgw_record(w, "inventory", &inv.base))
		return -1;
	return pstree_collect(&tree, w);
}

/* Which tasks the restorer forks from their restored parent, sharing the
 * pages that are still copy-on-write shared (img_forks_from_parent). */
static int link_parents(void)
{
	for (int i = 1; i < tree.nr; i++) {
		Stasis__PstreeEntry te = STASIS__PSTREE_ENTRY__INIT, pe = STASIS__PSTREE_ENTRY__INIT;
		struct proc_stat st, pst;

		if (tree.tasks[i].zombie)
			continue;
		if (proc_read_stat(tree.tasks[i].pid, 0, &st))
			return -1;
		for (int j = 0; j < i; j++) {
			if (tree.tasks[j].pid != st.ppid || tree.tasks[j].zombie)
				continue;
			if (proc_read_stat(st.ppid, 0, &pst))
				return -1;
			te.pid = st.pid;
			te.sid = st.sid;
			pe.pid = pst.pid;
			pe.sid = pst.sid;
			if (img_forks_from_parent(&te, &pe))
				ctasks[i].parent = &ctasks[j];
		}
	}
	return 0;
}

static int collect_task(struct ctask *ct, struct img_writer *w)
{
	/* what was written since the parent link, before the pages are read */
	if (parasite_start(ct) || fault_hit("collect-parasite") || track_scan(ct, opts.track_mem))
		return -1;
	if (opts.pre_dump) {
		if (stats_mm_collect(ct, w))
			return -1;
	} else if (core_collect(ct, w) || stats_mm_collect(ct, w) || fs_collect(ct, w) ||
		   files_collect(ct, w) || locks_collect(ct, w)) {
		return -1;
	}
	/* from here on the tree's writes count for the next link */
	if (opts.track_mem && track_arm(ct))
		return -1;
	/* from here on its writes wait for the copy of the page */
	if (bgsnap_wanted() && bgsnap_arm(ct))
		return -1;
	return parasite_stop(ct);
}

static int wait_ack(void)
{
	char buf[4] = "";

	if (opts.ack_fd < 0)
		return 0;
	ssize_t n = read_full(opts.ack_fd, buf, 3);
	if (n != 3 || memcmp(buf, "OK\n", 3)) {
		pr_err("the checkpoint was not confirmed stored; resuming the tree");
		return -1;
	}
	return 0;
}

static void kill_tree(void)
{
	for (int i = 0; i < tree.nr; i++)
		if (!tree.tasks[i].zombie)
			kill(tree.tasks[i].pid, SIGKILL);
	/* Reap the trace links so the parents see the exits at once; a
	 * leader is reported only after its other threads. Without blocking
	 * on any one: a PID namespace's init (any of its threads) exits only
	 * once every other task and thread of the namespace is reaped. */
	bool *reaped;
	int nr = 0, k;

	for (int i = 0; i < tree.nr; i++)
		nr += tree.tasks[i].nr_tids;
	reaped = xzalloc((nr + 1) * sizeof(*reaped));

	for (bool left = true; left;) {
		left = false;
		k = 0;
		for (int i = 0; i < tree.nr; i++)
			for (int j = 0; j < tree.tasks[i].nr_tids; j++, k++) {
				pid_t tid = tree.tasks[i].tids[j];
				int status;
				pid_t r;

				if (reaped[k])
					continue;
				r = waitpid(tid, &status, __WALL | WNOHANG);
				/* gone, or not ours to wait for */
				if (r < 0 ||
				    (r == tid && (WIFEXITED(status) || WIFSIGNALED(status))))
					reaped[k] = true;
				else
					left = true;
			}
		if (left)
			usleep(1000);
	}
	free(reaped);
}

int main(int argc, char **argv)
{
	const char *env = getenv(STASIS_FREEZE_ENV);
	struct img_writer *w = NULL;
	sigset_t block;
	pid_t root;
	int ret = 1;

	stats_start();
	log_init(argv[0]);
	if (collect_parse_opts(argc, argv)) {
		/* Still release a tree freeze handed us. */
		if (env && tree_walk(atoi(env), &tree, NULL) == 0)
			tree_detach(&tree, 0);
		return 1;
	}
	if (!env) {
		pr_err("no frozen tree: run me as 'stasis-freeze -t PID stasis-collect'");
		return 1;
	}
	root = atoi(env);
	/* Termination requests wait until the tree is back in a safe state. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGQUIT);
	sigprocmask(SIG_BLOCK, &block, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (tree_walk(root, &tree, NULL)) {
		tree_detach(&tree, 0);
		return 1;
	}
	if (pidns_prepare(&tree) || fault_hit("collect-seized") || inet_lock(root) ||
	    actions_frozen(root))
		goto fail;
	ctasks = xzalloc(tree.nr * sizeof(*ctasks));
	for (int i = 0; i < tree.nr; i++) {
		struct ctask *ct = &ctasks[i];

		if (tree.tasks[i].zombie)
			continue;
		ct->pid = tree.tasks[i].pid;
		ct->tt = &tree.tasks[i];
		ct->pages_id = i + 1;
		ct->saved_sigmask = xzalloc(ct->tt->nr_tids * sizeof(uint64_t));
		ct->threads = xzalloc(ct->tt->nr_tids * sizeof(*ct->threads));
		for (int j = 0; j < ct->tt->nr_tids; j++)
			ct->threads[j].mem_fd = -1;
		for (int j = 0; j < ct->tt->nr_tids; j++)
			if (rtask_init(&ct->threads[j], ct->tt->tids[j]))
				goto fail;
	}

	if (link_parents())
		goto fail;
	if ((opts.track_mem || opts.has_prev_track_id) &&
	    track_take(root, !opts.has_prev_track_id ? NULL
			     : opts.prev_track_current ? TRACK_ID_CURRENT
						       : opts.prev_track_id))
		goto fail;
	if (bgsnap_prepare(tree.nr))
		goto fail;
	pipe_grow(STDOUT_FILENO);
	w = imgw_open(STDOUT_FILENO);
	if (opts.reader_copies)
		imgw_reader_copies(w);
	if (write_head(w, root))
		goto fail;
	for (int i = 0; i < tree.nr; i++) {
		sigset_t pending;

		if (tree.tasks[i].zombie)
			continue;
		if (collect_task(&ctasks[i], w))
			goto fail;
		sigpending(&pending);
		if (sigismember(&pending, SIGINT) || sigismember(&pending, SIGTERM) ||
		    sigismember(&pending, SIGHUP)) {
			pr_err("interrupted; resuming the tree");
			goto fail;
		}
	}
	if (!opts.pre_dump && (ns_write(w) || files_write(w) || inet_write(w) || pipes_write(w) ||
			       ghost_write(w) || memfd_write(w) || cgroup_write(w)))
		goto fail;
	if (bgsnap_start())
		goto fail;
	if (bgsnap_running()) {
		/* every state but the memory's is read: the tree runs while the
		 * pages are copied, a write waiting for its page's copy */
		inet_resume();
		inet_unlock(root);
		actions_resume(root);
		tree_detach(&tree, 0);
		resumed = true;
	}
	for (int i = 0; i < tree.nr; i++)
		if (!tree.tasks[i].zombie && stats_mm_write_pages(&ctasks[i], w))
			goto fail;
	if (bgsnap_finish())
		goto fail;
	if (stats_write(w, ctasks, tree.nr) || imgw_finish(w))
		goto fail;
	/* The sink sees end of stream before we wait for its verdict. */
	close(STDOUT_FILENO);
	if (fault_hit("collect-ack") || wait_ack() || actions_stored(root))
		goto fail;
	/* the images are stored; the memory they lack is still only here */
	if (opts.lazy_pages && lazy_serve(ctasks, tree.nr)) {
		pr_err("not every lazy page reached the destination: its copy cannot run; "
		       "resuming the tree here");
		goto fail;
	}
	if (fault_hit("collect-kill"))
		goto fail;
	if (opts.track_mem && (opts.pre_dump || opts.leave_running || opts.leave_stopped)) {
		/* the link is stored: the next one starts from it */
		if (track_hold(root))
			pr_warn("memory tracking of tree %d stopped: the next dump is a full one",
				root);
	} else {
		track_forget();
	}

	if (resumed) {
		/* running since its memory was protected */
	} else if (opts.leave_running || opts.pre_dump) {
		inet_resume();
		inet_unlock(root);
		actions_resume(root);
		tree_detach(&tree, 0);
	} else if (opts.leave_stopped) {
		inet_resume();
		inet_unlock(root);
		tree_detach(&tree, SIGSTOP);
	} else {
		kill_tree();
		inet_release();
	}
	pr_info("dumped tree %d (%llu bytes)", root, (unsigned long long)imgw_bytes(w));
	ret = 0;
	goto out;
fail:
	bgsnap_abort();
	track_abort();
	ghost_abort();
	if (!resumed) {
		inet_resume();
		inet_unlock(root);
		actions_resume(root);
	}
	resume_all();
	pr_err("dump of tree %d failed; the tree was left running", root);
out:
	imgw_free(w);
	return ret;
}
