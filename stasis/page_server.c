// SPDX-License-Identifier: GPL-2.0
/*
 * stasis page-server: stasis-transfer --listen [ADDR:]PORT --sink-ack-fd A
 *	| stasis-serialize unpack -D DIR --ack-fd B
 * with B the write end of a pipe whose read end is A: the sender hears
 * "OK" only once the images are fsynced here.
 */
#include <stdlib.h>
#include <unistd.h>

#include "stasis/log.h"

#include "commands.h"
#include "ops.h"

static int build(struct pipeline *p, const struct fe_opts *o, const char *log, const char *dir,
		 const char *pidfile, int ps_fd, int status_fd)
{
	struct stage *transfer, *unpack;
	int ack[2];

	if (pipeline_pipe(p, ack))
		return -1;
	transfer = pipeline_add(p, "stasis-transfer");
	if (!transfer)
		return -1;
	fe_transfer_args(transfer, o, true, ps_fd);
	/* a connection refused: it listens on for the next */
	transfer->live_errors = true;
	stage_pass_fd(transfer, "--sink-ack-fd", ack[0]);
	if (status_fd >= 0)
		stage_pass_fd(transfer, "--status-fd", status_fd);
	if (pidfile) {
		args_add(&transfer->argv, "--pidfile");
		args_add(&transfer->argv, pidfile);
	}
	add_common(&transfer->argv, o, log);

	unpack = pipeline_add(p, "stasis-serialize");
	if (!unpack)
		return -1;
	args_add(&unpack->argv, "unpack");
	args_add(&unpack->argv, "-D");
	args_add(&unpack->argv, dir);
	stage_pass_fd(unpack, "--ack-fd", ack[1]);
	add_common(&unpack->argv, o, log);
	return pipeline_connect(p, transfer, unpack);
}

/* --daemon: the parent returns once the server listens (1, with *ret),
 * the child goes on (0). */
static int daemonize(struct pipeline *p, int status_r, int *ret)
{
	pid_t pid = fork();
	char c;

	if (pid < 0) {
		pr_perror("cannot fork the page server");
		return -1;
	}
	if (pid > 0) {
		/* the child's end of the status pipe, and its stages' pipes */
		pipeline_free(p);
		*ret = read(status_r, &c, 1) == 1 ? 0 : 1;
		if (*ret)
			pr_err("the page server did not start");
		return 1;
	}
	setsid();
	return 0;
}

int cmd_page_server(const struct fe_opts *o)
{
	const char *dir = o->str[S_IMAGES_DIR] ? o->str[S_IMAGES_DIR] : ".";
	struct fe_files f = {};
	int ret = 1, ps_fd = -1, status_fd = -1, status[2] = { -1, -1 }, r;
	char prev_id[2 * 16 + 1];
	struct pipeline p;

	pipeline_init(&p, "page server");
	if (fe_net_endpoint(o, true, &ps_fd))
		return 1;
	pipeline_own_fd(&p, ps_fd);
	if (o->str[S_STATUS_FD] && (status_fd = fe_user_fd("status-fd", o->str[S_STATUS_FD])) < 0)
		goto out;
	pipeline_own_fd(&p, status_fd);
	if (o->flag[F_DAEMON] && status_fd >= 0) {
		pr_err("--daemon and --status-fd exclude each other");
		goto out;
	}
	if (fe_prepare_images_dir(dir))
		goto out;
	/* one link of a chain sent by pre-dump --page-server: its parent is
	 * here, and DIR/parent must lead to it */
	if (fe_prev_link(o, dir, prev_id) < 0)
		goto out;
	if (fe_files_open(o, dir, &f))
		goto out;
	if (o->flag[F_DAEMON]) {
		if (make_pipe(status))
			goto out;
		status_fd = status[1];
		pipeline_own_fd(&p, status_fd);
	}
	/* the programs are found, and the pipes made, before going away */
	if (build(&p, o, f.log, dir, f.pidfile, ps_fd, status_fd))
		goto out;
	if (o->flag[F_DAEMON]) {
		r = daemonize(&p, status[0], &ret);
		if (r)
			goto out;
		close_fd(&status[0]);
	}

	pr_info("page server: receiving a checkpoint into %s", dir);
	ret = pipeline_run(&p);
	if (!ret)
		pr_info("page server: checkpoint stored in %s", dir);
out:
	close_fd(&status[0]);
	pipeline_free(&p);
	fe_files_free(&f);
	return ret;
}
