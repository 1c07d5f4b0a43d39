// SPDX-License-Identifier: GPL-2.0
/*
 * stasis restore: stasis-serialize pack -D DIR | stasis-inject [opts];
 * a sealed DIR is read by stasis-seal --open instead of pack; with
 * --remote, stasis-transfer --listen [ADDR:]PORT gives the links of a
 * chain, which stasis-serialize chain resolves (and opens, sealed). With
 * --remote --lazy-pages, stasis-lazy-pages runs beside them: the chain
 * stage, which holds the links in memory, is its page source.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stasis/log.h"

#include "commands.h"
#include "ops.h"

/*
 * restore --remote --lazy-pages: there is no directory for a daemon started
 * apart to read, so the daemon is a stage of ours, its socket in the work
 * directory, and its page source stasis-serialize chain (lazy[0] and
 * lazy[1] are chain's ends of the request and response pipes).
 */
static int add_lazy_daemon(struct pipeline *p, const struct fe_opts *o, const char *log,
			   const char *wdir, int lazy[2])
{
	int req[2], resp[2];
	struct stage *st;

	if (pipeline_pipe(p, req) || pipeline_pipe(p, resp))
		return -1;
	st = pipeline_add(p, "stasis-lazy-pages");
	if (!st)
		return -1;
	/* with -d it fills the memory after we returned: stopped by us
	 * only if the restore failed */
	st->serves = true;
	p->leave_servers = o->flag[F_RESTORE_DETACHED];
	/* absolute: it says where the daemon of this restore works (ps) */
	char *abs = realpath(wdir, NULL);

	args_add(&st->argv, "-W");
	args_add(&st->argv, abs ? abs : wdir);
	free(abs);
	stage_pass_fd(st, "--request-fd", req[1]);
	stage_pass_fd(st, "--response-fd", resp[0]);
	/* chain answers what it is asked, and pushes nothing */
	args_add(&st->argv, "--request-all");
	if (p->leave_servers) {
		/* its figures go to stats-restore.img; nothing to our stdout */
		st->out = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (st->out < 0) {
			pr_perror("cannot open /dev/null");
			return -1;
		}
		pipeline_own_fd(p, st->out);
	} else if (o->flag[F_DISPLAY_STATS]) {
		args_add(&st->argv, "--display-stats");
	}
	add_common(&st->argv, o, log);
	lazy[0] = req[0];
	lazy[1] = resp[1];
	return 0;
}

/* Where the stream comes from: the network, stasis-seal or stasis-serialize pack. */
static struct stage *add_source(struct pipeline *p, const struct fe_opts *o, const char *log,
				const char *dir, bool remote, bool sealed, int ps_fd,
				int status_fd, int chain_fd, bool to_inject)
{
	struct stage *st = pipeline_add(p, remote   ? "stasis-transfer"
					   : sealed ? "stasis-seal"
						    : "stasis-serialize");

	if (!st)
		return NULL;
	if (!remote && sealed) {
		/* stasis-seal reads the sealed directory itself, in pack's order */
		fe_seal_open_args(&st->argv, o);
		args_add(&st->argv, "-D");
		args_add(&st->argv, dir);
		if (to_inject)
			args_add(&st->argv, "--reader-copies");
	} else if (remote) {
		fe_transfer_args(st, o, true, ps_fd);
		/* a connection refused: it listens on for the next */
		st->live_errors = true;
		stage_pass_fd(st, "--chain-fd", chain_fd);
		if (status_fd >= 0)
			stage_pass_fd(st, "--status-fd", status_fd);
	} else {
		args_add(&st->argv, "pack");
		args_add(&st->argv, "-D");
		args_add(&st->argv, dir);
		if (to_inject)
			args_add(&st->argv, "--reader-copies");
		/* the daemon reads the pages it fills from dir itself */
		if (o->flag[F_LAZY_PAGES])
			args_add(&st->argv, "--lazy-pages");
	}
	add_common(&st->argv, o, log);
	return st;
}

static struct stage *add_inject(struct pipeline *p, const struct fe_opts *o, const char *log,
				const char *wdir, const char *pidfile, bool remote, bool local_dir)
{
	struct stage *st = pipeline_add(p, "stasis-inject");

	if (!st)
		return NULL;
	/* without -d, inject's status is the restored root task's: not an error of ours */
	st->quiet = !o->flag[F_RESTORE_DETACHED];
	/* the descriptors of --inherit-fd are inherited by fork and exec */
	fe_forward(&st->argv, o, TO_INJECT);
	/* the daemon's socket is in the work directory, as criu(8) has it */
	if (o->flag[F_LAZY_PAGES]) {
		args_add(&st->argv, "--work-dir");
		args_add(&st->argv, wdir);
	}
	if (pidfile) {
		args_add(&st->argv, "--pidfile");
		args_add(&st->argv, pidfile);
	}
	/* A migration within one host: the source holds the PIDs until the
	 * receiver has confirmed the whole stream and the sender killed it. */
	if (remote) {
		args_add(&st->argv, "--wait-pids-free");
		args_add(&st->argv, "300");
	}
	fe_scripts_args(&st->argv, o);
	/* kept in the work directory, as criu(8) keeps stats-restore (not
	 * in the current directory by surprise when restoring from afar) */
	if (local_dir || o->str[S_WORK_DIR]) {
		args_add(&st->argv, "--stats-file");
		args_addf(&st->argv, "%s/stats-restore.img", wdir);
	}
	if (o->flag[F_DISPLAY_STATS])
		args_add(&st->argv, "--display-stats");
	add_common(&st->argv, o, log);
	return st;
}

int cmd_restore(const struct fe_opts *o)
{
	const char *dir = o->str[S_IMAGES_DIR] ? o->str[S_IMAGES_DIR] : ".", *images_dir = dir;
	char *cipher, *chain_tmp = NULL;
	struct fe_files f = {};
	struct stage *chain[4], *inject = NULL, *st;
	int ret = 1, n = 0, ps_fd = -1, status_fd = -1, chain_sk[2] = { -1, -1 };
	int lazy[2] = { -1, -1 };
	/* the checkpoint comes from the network, not from -D */
	bool remote = o->flag[F_REMOTE], local_dir = !remote || o->str[S_IMAGES_DIR];
	/* a sealed directory is opened without being asked; a sealed stream
	 * from the network when -e says it is one */
	bool sealed = remote ? o->flag[F_ENCRYPT] : false;
	struct pipeline p;
	struct stat s;

	pipeline_init(&p, "restore");
	if (fe_check_file_validation(o))
		return 1;
	if (remote && fe_net_endpoint(o, true, &ps_fd))
		return 1;
	pipeline_own_fd(&p, ps_fd);
	if (remote && o->str[S_STATUS_FD] &&
	    (status_fd = fe_user_fd("status-fd", o->str[S_STATUS_FD])) < 0)
		goto out;
	pipeline_own_fd(&p, status_fd);
	if (local_dir && stat(dir, &s)) {
		pr_err("cannot open images directory %s: %s", dir, strerror(errno));
		goto out;
	}
	if (local_dir && !S_ISDIR(s.st_mode)) {
		pr_err("images directory %s is not a directory", dir);
		goto out;
	}
	if (!remote) {
		cipher = fe_in_dir(dir, "cipher.img");
		sealed = !access(cipher, F_OK);
		free(cipher);
	}
	if (fe_files_open(o, dir, &f))
		goto out;
	/* a sealed link of a chain: every link is opened into memory first,
	 * and the plaintext chain is packed as an unsealed one */
	if (!remote && sealed) {
		int r = fe_open_sealed_chain(o, dir, f.log, &chain_tmp);

		if (r < 0)
			goto out;
		if (r) {
			sealed = false;
			dir = chain_tmp;
		}
	}

	/* the source | [the progress line] | [seal --open] | inject */
	/* from the network come the links of a chain, or a whole dump (a
	 * chain of one): stasis-serialize chain takes them as they come and
	 * opens the sealed ones */
	if (remote) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, chain_sk)) {
			pr_perror("cannot create a socket pair");
			goto out;
		}
		pipeline_own_fd(&p, chain_sk[0]);
		pipeline_own_fd(&p, chain_sk[1]);
		/* first: its socket is there before inject looks for it */
		if (o->flag[F_LAZY_PAGES] && add_lazy_daemon(&p, o, f.log, f.wdir, lazy))
			goto out;
	}
	/* straight into inject, which reads its pipe with read(2): the source
	 * reads its page chunks into the buffers inject has taken */
	chain[n] = add_source(&p, o, f.log, dir, remote, sealed, ps_fd, status_fd, chain_sk[0],
			      !remote && !fe_progress_wanted(o));
	if (!chain[n++])
		goto out;
	if (fe_progress_wanted(o))
		chain[n++] = fe_progress_add(&p, "restore", remote ? 0 : fe_dir_bytes(dir), false);
	if (remote) {
		st = chain[n++] = pipeline_add(&p, "stasis-serialize");
		if (!st)
			goto out;
		args_add(&st->argv, "chain");
		stage_pass_fd(st, "--chain-fd", chain_sk[1]);
		if (sealed)
			args_add(&st->argv, "--require-sealed");
		if (lazy[0] >= 0) {
			st->serves = true; /* the page source, once the stream is out */
			args_add(&st->argv, "--lazy-pages");
			stage_pass_fd(st, "--lazy-req-fd", lazy[0]);
			stage_pass_fd(st, "--lazy-resp-fd", lazy[1]);
		}
		if (o->str[S_TLS_KEY]) {
			args_add(&st->argv, "--tls-key");
			args_add(&st->argv, o->str[S_TLS_KEY]);
		}
		add_common(&st->argv, o, f.log);
	}
	inject = chain[n++] = add_inject(&p, o, f.log, f.wdir, f.pidfile, remote, local_dir);
	if (!inject)
		goto out;
	for (int i = 0; i + 1 < n; i++)
		if (!chain[i] || pipeline_connect(&p, chain[i], chain[i + 1]))
			goto out;
	if (fe_scripts_setup(o, images_dir))
		goto out;
	if (fe_scripts_run("pre-restore", remote ? 0 : fe_checkpoint_root(dir))) {
		pr_err("restore aborted by the pre-restore action script");
		goto out;
	}

	pr_info("restoring from %s%s", remote ? "the network" : dir, sealed ? " (sealed)" : "");
	ret = pipeline_run(&p);
	/* without -d, the status of the restored root task */
	if (inject->status)
		ret = inject->status;
out:
	pipeline_free(&p);
	fe_files_free(&f);
	fe_close_sealed_chain(chain_tmp);
	return ret;
}
