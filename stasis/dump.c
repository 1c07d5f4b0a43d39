// SPDX-License-Identifier: GPL-2.0
/*
 * stasis dump (and the pipeline of pre-dump):
 *	stasis-freeze -t PID stasis-collect [opts] --ack-fd A
 *	| stasis-serialize unpack -D DIR --ack-fd B
 * with B the write end of a pipe whose read end is A. Sealed, stasis-seal
 * --encrypt -D DIR --ack-fd B takes unpack's place (a program and a pipe
 * fewer); sent sealed, it goes between collect and stasis-transfer.
 *
 * --lazy-pages adds the page server, on two more pipes of collect's:
 *	collect --lazy-resp-fd R [| stasis-seal --encrypt --lazy-pages]
 *	| stasis-transfer --lazy-pages --listen [ADDR:]PORT > collect's --lazy-req-fd Q
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/opts.h"

#include "commands.h"
#include "ops.h"

static void add_seal_args(struct args *a, const struct fe_opts *o)
{
	args_add(a, "--encrypt");
	for (int i = 0; i < o->list[L_TLS_CERT].n; i++) {
		args_add(a, "--tls-cert");
		args_add(a, o->list[L_TLS_CERT].v[i]);
	}
}

/* stasis-freeze -t PID stasis-collect ARGS: collect is exec'd by freeze
 * once the tree is frozen, under freeze's PID. */
/* The page server's descriptors of collect (--lazy-pages), -1 without. */
struct lazy_fds {
	int req, resp;
	const char *stats_file;
};

static struct stage *add_collect(struct pipeline *p, const struct fe_opts *o, const char *log,
				 int prev, const char *prev_id, int ack_fd, int stats_fd,
				 const struct lazy_fds *lazy)
{
	bool pre_dump = o->cmd == CMD_PRE_DUMP;
	struct stage *st = pipeline_add(p, "stasis-freeze");
	char *collect = need_program("stasis-collect");

	if (!st || !collect) {
		free(collect);
		return NULL;
	}
	st->exec_name = "stasis-collect";
	add_common(&st->argv, o, log);
	args_add(&st->argv, "-t");
	args_addf(&st->argv, "%d", o->tree);
	args_add(&st->argv, collect);
	free(collect);
	if (pre_dump)
		args_add(&st->argv, "--pre-dump");
	if (pre_dump || o->flag[F_TRACK_MEM])
		args_add(&st->argv, "--track-mem");
	/* the tree runs on: it need not wait for its pages (docs/memory.md) */
	if ((o->flag[F_LEAVE_RUNNING] || pre_dump) && !o->flag[F_NO_BACKGROUND_SNAPSHOT])
		args_add(&st->argv, "--background-snapshot");
	if (prev) {
		args_add(&st->argv, "--prev-track-id");
		args_add(&st->argv, prev_id);
	}
	fe_forward(&st->argv, o, TO_COLLECT);
	/* unpack, seal and transfer read(2) what they take; only the
	 * progress relay splices */
	if (!fe_progress_wanted(o))
		args_add(&st->argv, "--reader-copies");
	fe_scripts_args(&st->argv, o);
	stage_pass_fd(st, "--ack-fd", ack_fd);
	/* the statistics go with the stream: collect gives us a copy */
	if (stats_fd >= 0)
		stage_pass_fd(st, "--stats-fd", stats_fd);
	if (lazy->req >= 0) {
		args_add(&st->argv, "--lazy-pages");
		stage_pass_fd(st, "--lazy-req-fd", lazy->req);
		stage_pass_fd(st, "--lazy-resp-fd", lazy->resp);
		if (lazy->stats_file) {
			args_add(&st->argv, "--lazy-stats-file");
			args_add(&st->argv, lazy->stats_file);
		}
	}
	add_common(&st->argv, o, log);
	return st;
}

/* The page server of a lazy dump: collect's page stream [sealed] to the
 * destination, its requests back to collect. */
static int add_page_server(struct pipeline *p, const struct fe_opts *o, const char *log,
			   int ps_fd, int req_w, int resp_r)
{
	struct stage *seal = NULL, *xfer;

	if (o->flag[F_ENCRYPT]) {
		/* every page sealed on its own, for the holder of --tls-cert */
		seal = pipeline_add(p, "stasis-seal");
		if (!seal)
			return -1;
		add_seal_args(&seal->argv, o);
		args_add(&seal->argv, "--lazy-pages");
		add_common(&seal->argv, o, log);
		seal->in = resp_r;
	}
	xfer = pipeline_add(p, "stasis-transfer");
	if (!xfer)
		return -1;
	args_add(&xfer->argv, "--lazy-pages");
	fe_transfer_args(xfer, o, true, ps_fd);
	add_common(&xfer->argv, o, log);
	/* its errors say why a destination was refused while it waits */
	xfer->live_errors = true;
	xfer->out = req_w;
	if (!seal) {
		xfer->in = resp_r;
		return 0;
	}
	return pipeline_connect(p, seal, xfer);
}

/* Where the stream goes: the other host, stasis-seal into dir, or
 * stasis-serialize unpack into dir. */
static struct stage *add_sink(struct pipeline *p, const struct fe_opts *o, const char *log,
			      const char *dir, bool remote, int ps_fd, int ack_fd)
{
	bool encrypt = o->flag[F_ENCRYPT];
	struct stage *st = pipeline_add(p, remote	 ? "stasis-transfer"
					   : encrypt ? "stasis-seal"
						     : "stasis-serialize");

	if (!st)
		return NULL;
	if (remote) {
		fe_transfer_args(st, o, false, ps_fd);
	} else if (encrypt) {
		/* sealed from the moment it leaves collect */
		add_seal_args(&st->argv, o);
		args_add(&st->argv, "-D");
		args_add(&st->argv, dir);
	} else {
		args_add(&st->argv, "unpack");
		args_add(&st->argv, "-D");
		args_add(&st->argv, dir);
	}
	stage_pass_fd(st, "--ack-fd", ack_fd);
	add_common(&st->argv, o, log);
	return st;
}

/* collect | [the progress line] | [seal, when sent sealed] | the sink */
static int build(struct pipeline *p, const struct fe_opts *o, const char *log, const char *dir,
		 int prev, const char *prev_id, int ps_fd, int stats_fd, const char *lazy_stats)
{
	bool remote = o->flag[F_PAGE_SERVER] || o->flag[F_REMOTE];
	struct lazy_fds lazy = { -1, -1, lazy_stats };
	int ack[2], req[2], resp[2], n = 0;
	struct stage *chain[4], *st;

	if (pipeline_pipe(p, ack))
		return -1;
	if (o->flag[F_LAZY_PAGES]) {
		if (pipeline_pipe(p, req) || pipeline_pipe(p, resp))
			return -1;
		lazy.req = req[0];
		lazy.resp = resp[1];
	}
	chain[n] = add_collect(p, o, log, prev, prev_id, ack[0], stats_fd, &lazy);
	if (!chain[n++])
		return -1;
	if (fe_progress_wanted(o))
		chain[n++] = fe_progress_add(p, "dump", fe_tree_memory(o->tree), true);
	if (o->flag[F_ENCRYPT] && remote) {
		st = chain[n++] = pipeline_add(p, "stasis-seal");
		if (!st)
			return -1;
		add_seal_args(&st->argv, o);
		add_common(&st->argv, o, log);
	}
	chain[n] = add_sink(p, o, log, dir, remote, ps_fd, ack[1]);
	if (!chain[n++])
		return -1;
	for (int i = 0; i + 1 < n; i++)
		if (!chain[i] || pipeline_connect(p, chain[i], chain[i + 1]))
			return -1;
	if (o->flag[F_LAZY_PAGES])
		return add_page_server(p, o, log, ps_fd, req[1], resp[0]);
	return 0;
}

/* What the dump checks before anything is frozen. 0 or -1 (logged). */
static int check_args(const struct fe_opts *o)
{
	long long limit;

	if (!o->tree) {
		pr_err("%s: the tree to checkpoint is missing: -t PID", o->cmd_name);
		return -1;
	}
	if (o->str[S_PRE_DUMP_MODE] && strcmp(o->str[S_PRE_DUMP_MODE], "read") &&
	    strcmp(o->str[S_PRE_DUMP_MODE], "splice")) {
		pr_err("invalid --pre-dump-mode '%s' (read or splice)", o->str[S_PRE_DUMP_MODE]);
		return -1;
	}
	if (fe_check_file_validation(o))
		return -1;
	if (o->str[S_GHOST_LIMIT] && opt_size("--ghost-limit", o->str[S_GHOST_LIMIT], 0, &limit))
		return -1;
	if (o->flag[F_LAZY_PAGES] &&
	    (o->flag[F_PAGE_SERVER] || o->flag[F_REMOTE] || o->cmd == CMD_PRE_DUMP ||
	     o->str[S_PREV_IMAGES_DIR] || o->flag[F_TRACK_MEM])) {
		pr_err("--lazy-pages with %s is not supported yet",
		       o->flag[F_PAGE_SERVER] || o->flag[F_REMOTE] ? "--page-server or --remote"
								   : "an iterative dump");
		return -1;
	}
	return 0;
}

int cmd_dump(const struct fe_opts *o)
{
	const char *dir = o->str[S_IMAGES_DIR] ? o->str[S_IMAGES_DIR] : ".";
	struct fe_files f = {};
	int pidfd = -1, ret = 1, ps_fd = -1, stats[2] = { -1, -1 };
	/* the whole stream goes to the other host: records and pages alike */
	bool remote = o->flag[F_PAGE_SERVER] || o->flag[F_REMOTE];
	bool pre_dump = o->cmd == CMD_PRE_DUMP;
	char prev_id[2 * 16 + 1], *lazy_stats = NULL;
	struct pipeline p;
	int prev;

	pipeline_init(&p, o->cmd == CMD_PRE_DUMP ? "pre-dump" : "dump");
	if (check_args(o))
		return 1;
	if (remote && fe_net_endpoint(o, false, &ps_fd))
		return 1;
	/* the page server listens on --address (default: all) and --port */
	if (o->flag[F_LAZY_PAGES] && fe_net_endpoint(o, true, &ps_fd))
		return 1;
	pipeline_own_fd(&p, ps_fd);
	/* sending, -D only holds what -o and --pidfile name */
	if ((!remote || o->str[S_IMAGES_DIR]) && fe_prepare_images_dir(dir))
		goto out;
	if (remote) {
		/* the parent is on the other host, which checks it when the
		 * chain is restored: continue whatever link is tracked. Image-
		 * less (--remote), there is no directory to name: a link
		 * continues the tree's running tracker, if it has one. */
		prev = o->str[S_PREV_IMAGES_DIR] != NULL ||
		       (o->flag[F_REMOTE] && (pre_dump || o->flag[F_TRACK_MEM]) &&
			fe_tracker_runs(o->tree));
		snprintf(prev_id, sizeof(prev_id), "current");
	} else {
		prev = fe_prev_link(o, dir, prev_id);
	}
	if (prev < 0)
		goto out;
	if (fe_files_open(o, dir, &f))
		goto out;
	if (f.pidfile) {
		pidfd = open(f.pidfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (pidfd < 0) {
			pr_perror("cannot create pidfile %s", f.pidfile);
			goto out;
		}
	}
	if (remote && o->flag[F_DISPLAY_STATS]) {
		if (make_pipe(stats))
			goto out;
		/* the read end stays ours after the start */
		pipeline_own_fd(&p, stats[1]);
	}
	if (o->flag[F_LAZY_PAGES] && o->flag[F_DISPLAY_STATS])
		lazy_stats = fe_in_dir(dir, "stats-lazy.img");
	if (build(&p, o, f.log, dir, prev, prev_id, ps_fd, stats[1], lazy_stats))
		goto out;
	if (fe_scripts_setup(o, dir))
		goto out;
	if (fe_scripts_run("pre-dump", o->tree)) {
		pr_err("dump aborted by the pre-dump action script; the tree of %d was not touched",
		       o->tree);
		goto out;
	}

	pr_info("dumping the tree of %d %s %s", o->tree, remote ? "to" : "into",
		remote ? (o->str[S_ADDRESS] ? o->str[S_ADDRESS] : "the --ps-socket peer") : dir);
	if (o->flag[F_LAZY_PAGES])
		pr_info("serving the lazy pages on port %s", o->str[S_PORT] ? o->str[S_PORT] : "-");
	if (pipeline_run(&p))
		goto out;
	if (pidfd >= 0) {
		if (dprintf(pidfd, "%d", o->tree) < 0 || close(pidfd)) {
			pidfd = -1;
			pr_perror("cannot write pidfile %s", f.pidfile);
			goto out;
		}
		pidfd = -1;
	}
	ret = 0;
	pr_info("dump complete");
	/* the dump is stored whatever dedup does: its failure is a warning */
	if (o->flag[F_AUTO_DEDUP] && prev && fe_run_dedup(o, dir, f.log))
		pr_warn("--auto-dedup failed; the checkpoint in %s is complete", dir);
	if (o->flag[F_DISPLAY_STATS] && remote) {
		fe_display_dump_stats_fd(stats[0]);
		stats[0] = -1;
	} else if (o->flag[F_DISPLAY_STATS]) {
		fe_display_dump_stats(dir);
	}
	if (lazy_stats)
		fe_display_lazy_stats(lazy_stats);
out:
	free(lazy_stats);
	close_fd(&stats[0]);
	if (pidfd >= 0) {
		close(pidfd);
		unlink(f.pidfile);
	}
	pipeline_free(&p);
	fe_files_free(&f);
	return ret;
}
