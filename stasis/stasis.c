// SPDX-License-Identifier: GPL-2.0
/*
 * stasis: the front-end. "stasis dump" and "stasis restore" build the
 * pipelines of the raw programs with criu(8)'s options; "stasis TOOL ARGS"
 * runs stasis-TOOL ARGS.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/opts.h"
#include "stasis/util.h"

#include "check.h"
#include "ops.h"
#include "options.h"
#include "pipeline.h"

static const char *const tools[] = {"freeze", "collect", "serialize", "seal", "transfer", "inject",
				    /* criu(8)'s lazy-pages command is the daemon itself */
				    "lazy-pages"};

/* criu(8) commands stasis does not have (yet). */
static const char *const criu_commands[] = {
    "exec", "service", "cpuinfo", "swrk",
};

static bool in_list(const char *s, const char *const *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(s, list[i]))
			return true;
	return false;
}

/* stasis TOOL ARGS...: exec stasis-TOOL ARGS... */
static int run_tool(char **argv)
{
	char name[64];
	char *path;

	snprintf(name, sizeof(name), "stasis-%s", argv[0]);
	path = find_program(name);
	if (!path) {
		pr_err("%s: program not found (next to stasis or in PATH)", name);
		return 127;
	}
	argv[0] = path;
	execv(path, argv);
	pr_perror("cannot execute %s", path);
	return errno == ENOENT ? 127 : 126;
}

/* Make sure fds 0..2 are open, so that no pipe end lands on them. */
static void sane_std_fds(void)
{
	int fd;

	for (fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		if (open("/dev/null", O_RDWR) != fd) {
			fprintf(stderr, "stasis: cannot open /dev/null\n");
			exit(1);
		}
	}
}

/* A file named on the command line: relative paths are relative to the
 * images directory, as in criu(8) (its work directory defaults to -D). */
static char *in_dir(const char *dir, const char *file)
{
	size_t n;
	char *p;

	if (!file)
		return NULL;
	if (file[0] == '/' || !strcmp(dir, "."))
		return xstrdup(file);
	n = strlen(dir) + strlen(file) + 2;
	p = xmalloc(n);
	snprintf(p, n, "%s/%s", dir, file);
	return p;
}

static int mkdir_p(const char *dir)
{
	char *p = xstrdup(dir), *s;
	int err = 0;

	for (s = p + 1;; s++) {
		char c = *s;

		if (c != '/' && c != '\0')
			continue;
		*s = '\0';
		err = mkdir(p, 0755) && errno != EEXIST ? errno : 0;
		*s = c;
		if (!c)
			break;
	}
	free(p);
	errno = err;
	return err ? -1 : 0;
}

/* Create the images directory if needed and check that files can be
 * created in it: all before anything is frozen. */
static int prepare_images_dir(const char *dir)
{
	struct stat st;
	char *probe;
	int fd;

	if (!*dir) {
		pr_err("the images directory is an empty string");
		return -1;
	}
	if (stat(dir, &st) && mkdir_p(dir)) {
		pr_err("cannot create images directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (stat(dir, &st)) {
		pr_err("cannot access images directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		pr_err("images directory %s is not a directory", dir);
		return -1;
	}
	probe = in_dir(dir, ".stasis-probe-XXXXXX");
	fd = mkstemp(probe);
	if (fd < 0) {
		pr_err("cannot write to images directory %s: %s", dir, strerror(errno));
		free(probe);
		return -1;
	}
	unlink(probe);
	close(fd);
	free(probe);
	return 0;
}

/* With --log-pid, every program writes FILE.PID, the front-end too. */
static int open_log(const char *path, const struct fe_opts *o)
{
	char own[PATH_MAX];

	if (!path)
		return 0;
	if (o->flag[F_LOG_PID]) {
		snprintf(own, sizeof(own), "%s.%d", path, getpid());
		path = own;
		stages_log_pid(true);
	}
	if (log_set_file(path)) {
		pr_perror("cannot open log file %s", path);
		return -1;
	}
	return 0;
}

/* -W: where the log, the pidfile and the statistics go; the images
 * directory unless given (criu(8)'s work directory). Created if missing. */
static char *work_dir(const struct fe_opts *o, const char *images_dir)
{
	const char *w = o->str[S_WORK_DIR];

	if (!w)
		return xstrdup(images_dir);
	if (!*w || (mkdir_p(w) && errno != EEXIST)) {
		pr_err("cannot create work directory %s: %s", w, *w ? strerror(errno) : "empty name");
		return NULL;
	}
	return xstrdup(w);
}

char *need_program(const char *name)
{
	char *p = find_program(name);

	if (!p)
		pr_err("%s not found (next to stasis or in PATH)", name);
	return p;
}

/* -v and -o, passed on to every stage. */
void add_common(struct args *a, const struct fe_opts *o, const char *log)
{
	if (o->verbosity >= 0)
		args_addf(a, "-v%d", o->verbosity);
	if (log) {
		args_add(a, "-o");
		args_add(a, log);
	}
}

/* A repeatable option, once per value, as given. */
static void add_list(struct args *a, const struct fe_opts *o, enum fe_list l, const char *name)
{
	for (int i = 0; i < o->list[l].n; i++) {
		args_add(a, name);
		args_add(a, o->list[l].v[i]);
	}
}

/* --file-validation: filesize is what stasis does; CRIU's buildid is not
 * implemented, and said so before anything starts. */
static int check_file_validation(const struct fe_opts *o)
{
	const char *mode = o->str[S_FILE_VALIDATION];

	if (!mode || !strcmp(mode, "filesize"))
		return 0;
	if (!strcmp(mode, "buildid"))
		pr_err("--file-validation buildid is not supported: stasis checks files by their "
		       "size only (filesize)");
	else
		pr_err("unknown --file-validation mode '%s' (filesize)", mode);
	return -1;
}

/* ---- to and from another host, through stasis-transfer ---- */

/* A descriptor given on the command line: open, and made close-on-exec so
 * that only the stage it is meant for inherits it. */
static int user_fd(const char *opt, const char *arg)
{
	char name[32];
	int v;

	snprintf(name, sizeof(name), "--%s", opt);
	if (opt_fd(name, arg, &v))
		return -1;
	if (fcntl(v, F_SETFD, FD_CLOEXEC)) {
		pr_err("invalid %s '%s': the descriptor is not open", name, arg);
		return -1;
	}
	return v;
}

/* The other side: --address and --port (listening: --port), or --ps-socket. */
static int net_endpoint(const struct fe_opts *o, bool listen, int *ps_fd)
{
	int port;

	*ps_fd = -1;
	if (o->str[S_PS_SOCKET]) {
		*ps_fd = user_fd("ps-socket", o->str[S_PS_SOCKET]);
		return *ps_fd < 0 ? -1 : 0;
	}
	if (!o->str[S_PORT] || (!listen && !o->str[S_ADDRESS])) {
		pr_err("%s: give %s--port PORT, or --ps-socket FD", o->cmd_name,
		       listen ? "" : "--address ADDR and ");
		return -1;
	}
	/* checked here, before anything is frozen */
	return opt_int("--port", o->str[S_PORT], 0, 65535, "a TCP port, 0 to 65535", &port);
}

/* stasis-transfer's connection (--to or --listen, --ps-socket) and TLS
 * options, from the front-end's. */
static void add_transfer_args(struct stage *st, const struct fe_opts *o, bool listen, int ps_fd)
{
	static const struct {
		int s;
		const char *opt;
	} tls[] = {
	    {S_TLS_CACERT, "--tls-cacert"},
	    {S_TLS_CACRL, "--tls-cacrl"},
	    {S_TLS_KEY, "--tls-key"},
	};
	const char *addr = o->str[S_ADDRESS], *port = o->str[S_PORT];
	bool v6 = addr && strchr(addr, ':');
	struct args *a = &st->argv;

	if (listen) {
		args_add(a, "--listen");
		if (ps_fd < 0 && addr)
			args_addf(a, v6 ? "[%s]:%s" : "%s:%s", addr, port);
		else if (ps_fd < 0)
			args_add(a, port);
	} else if (addr) {
		/* with --ps-socket, the name the receiver's certificate must bear */
		args_add(a, "--to");
		if (port)
			args_addf(a, v6 ? "[%s]:%s" : "%s:%s", addr, port);
		else
			args_addf(a, v6 ? "[%s]" : "%s", addr);
	}
	if (ps_fd >= 0) {
		args_add(a, "--ps-socket");
		args_addf(a, "%d", ps_fd);
		st->keep[st->nkeep++] = ps_fd;
	}
	if (o->flag[F_TLS])
		args_add(a, "--tls");
	for (size_t i = 0; i < ARRAY_SIZE(tls); i++) {
		if (o->str[tls[i].s]) {
			args_add(a, tls[i].opt);
			args_add(a, o->str[tls[i].s]);
		}
	}
	if (o->list[L_TLS_CERT].n) {
		args_add(a, "--tls-cert");
		args_add(a, o->list[L_TLS_CERT].v[o->list[L_TLS_CERT].n - 1]);
	}
	if (o->flag[F_TLS_NO_CN_VERIFY])
		args_add(a, "--tls-no-cn-verify");
}

static void add_seal_args(struct args *a, const struct fe_opts *o)
{
	args_add(a, "--encrypt");
	add_list(a, o, L_TLS_CERT, "--tls-cert");
}

/*
 * stasis-freeze -t PID stasis-collect [opts] --ack-fd A
 *	| stasis-serialize unpack -D DIR --ack-fd B
 * with B the write end of a pipe whose read end is A. Sealed, stasis-seal
 * --encrypt -D DIR --ack-fd B takes unpack's place (a program and a pipe
 * fewer); sent sealed, it goes between collect and stasis-transfer.
 */
/* stasis-serialize dedup -D DIR: the parents' superseded pages punched. */
static int run_dedup(const struct fe_opts *o, const char *dir, const char *log)
{
	struct stage st = { .name = "stasis-serialize", .in = -1, .out = -1 };
	char *serialize = need_program("stasis-serialize");
	int rc = 1;

	if (!serialize)
		return 1;
	args_add(&st.argv, serialize);
	args_add(&st.argv, "dedup");
	args_add(&st.argv, "-D");
	args_add(&st.argv, dir);
	add_common(&st.argv, o, log);
	if (!stage_start(&st))
		rc = stage_wait(&st, false);
	args_free(&st.argv);
	free(serialize);
	return rc ? 1 : 0;
}

static int cmd_dedup(const struct fe_opts *o)
{
	const char *dir = o->str[S_IMAGES_DIR] ? o->str[S_IMAGES_DIR] : ".";
	char *log = in_dir(dir, o->str[S_LOG_FILE]);
	int ret = open_log(log, o) ? 1 : run_dedup(o, dir, log);

	free(log);
	return ret;
}

static int cmd_dump(const struct fe_opts *o)
{
	const char *dir = o->str[S_IMAGES_DIR] ? o->str[S_IMAGES_DIR] : ".";
	char *log = NULL, *pidfile = NULL, *freeze = NULL, *collect = NULL, *serialize = NULL;
	char *wdir = NULL, *seal = NULL;
	/* freeze/collect, serialize, the progress line, seal */
	struct stage st[4] = {};
	int data[2] = {-1, -1}, ack[2] = {-1, -1}, shown[2] = {-1, -1}, sealed[2] = {-1, -1};
	int stats[2] = {-1, -1};
	int pidfd = -1, ret = 1, rc[2], i, ps_fd = -1;
	long long limit;
	bool encrypt = o->flag[F_ENCRYPT];
	bool progress = fe_progress_wanted(o);
	/* the whole stream goes to the other host: records and pages alike */
	bool remote = o->flag[F_PAGE_SERVER] || o->flag[F_REMOTE];
	bool seal_stage = encrypt && remote;
	bool pre_dump = o->cmd == CMD_PRE_DUMP;
	char prev_id[2 * 16 + 1];
	int prev;

	if (!o->tree) {
		pr_err("%s: the tree to checkpoint is missing: -t PID", o->cmd_name);
		return 1;
	}
	if (o->str[S_PRE_DUMP_MODE] && strcmp(o->str[S_PRE_DUMP_MODE], "read") &&
	    strcmp(o->str[S_PRE_DUMP_MODE], "splice")) {
		pr_err("invalid --pre-dump-mode '%s' (read or splice)", o->str[S_PRE_DUMP_MODE]);
		return 1;
	}
	if (check_file_validation(o))
		return 1;
	if (o->str[S_GHOST_LIMIT] && opt_size("--ghost-limit", o->str[S_GHOST_LIMIT], 0, &limit))
		return 1;
	if (remote && net_endpoint(o, false, &ps_fd))
		return 1;
	/* sending, -D only holds what -o and --pidfile name */
	if ((!remote || o->str[S_IMAGES_DIR]) && prepare_images_dir(dir))
		return 1;
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
		return 1;
	wdir = work_dir(o, dir);
	if (!wdir)
		return 1;
	log = in_dir(wdir, o->str[S_LOG_FILE]);
	if (open_log(log, o))
		goto out;
	pidfile = in_dir(wdir, o->str[S_PIDFILE]);
	if (pidfile) {
		pidfd = open(pidfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (pidfd < 0) {
			pr_perror("cannot create pidfile %s", pidfile);
			goto out;
		}
	}
	if (!(freeze = need_program("stasis-freeze")) ||
	    !(collect = need_program("stasis-collect")) ||
	    !(serialize = need_program(remote    ? "stasis-transfer"
					: encrypt ? "stasis-seal"
						  : "stasis-serialize")))
		goto out;
	if (seal_stage && !(seal = need_program("stasis-seal")))
		goto out;
	if (make_pipe(data) || make_pipe(ack) || (progress && make_pipe(shown)) ||
	    (seal_stage && make_pipe(sealed)) ||
	    (remote && o->flag[F_DISPLAY_STATS] && make_pipe(stats)))
		goto out;
	if (fe_scripts_setup(o, dir))
		goto out;
	if (fe_scripts_run("pre-dump", o->tree)) {
		pr_err("dump aborted by the pre-dump action script; the tree of %d was not touched",
		       o->tree);
		goto out;
	}

	st[0].name = "stasis-freeze";
	st[0].exec_name = "stasis-collect";
	args_add(&st[0].argv, freeze);
	add_common(&st[0].argv, o, log);
	args_add(&st[0].argv, "-t");
	args_addf(&st[0].argv, "%d", o->tree);
	args_add(&st[0].argv, collect);
	if (pre_dump)
		args_add(&st[0].argv, "--pre-dump");
	if (pre_dump || o->flag[F_TRACK_MEM])
		args_add(&st[0].argv, "--track-mem");
	if (prev) {
		args_add(&st[0].argv, "--prev-track-id");
		args_add(&st[0].argv, prev_id);
	}
	if (o->flag[F_LEAVE_RUNNING])
		args_add(&st[0].argv, "--leave-running");
	if (o->flag[F_LEAVE_STOPPED])
		args_add(&st[0].argv, "--leave-stopped");
	if (o->flag[F_SHELL_JOB])
		args_add(&st[0].argv, "--shell-job");
	if (o->flag[F_FILE_LOCKS])
		args_add(&st[0].argv, "--file-locks");
	if (o->flag[F_LINK_REMAP])
		args_add(&st[0].argv, "--link-remap");
	if (o->flag[F_TCP_ESTABLISHED])
		args_add(&st[0].argv, "--tcp-established");
	if (o->flag[F_TCP_CLOSE])
		args_add(&st[0].argv, "--tcp-close");
	if (o->flag[F_SKIP_IN_FLIGHT])
		args_add(&st[0].argv, "--skip-in-flight");
	if (o->str[S_NETWORK_LOCK]) {
		args_add(&st[0].argv, "--network-lock");
		args_add(&st[0].argv, o->str[S_NETWORK_LOCK]);
	}
	if (o->str[S_GHOST_LIMIT]) {
		args_add(&st[0].argv, "--ghost-limit");
		args_add(&st[0].argv, o->str[S_GHOST_LIMIT]);
	}
	add_list(&st[0].argv, o, L_EXTERNAL, "--external");
	if (o->flag[F_FORCE_IRMAP])
		args_add(&st[0].argv, "--force-irmap");
	add_list(&st[0].argv, o, L_IRMAP_SCAN_PATH, "--irmap-scan-path");
	fe_scripts_args(&st[0].argv, o);
	args_add(&st[0].argv, "--ack-fd");
	args_addf(&st[0].argv, "%d", ack[0]);
	/* the statistics go with the stream: collect gives us a copy */
	if (stats[1] >= 0) {
		args_add(&st[0].argv, "--stats-fd");
		args_addf(&st[0].argv, "%d", stats[1]);
		st[0].keep[st[0].nkeep++] = stats[1];
	}
	add_common(&st[0].argv, o, log);
	st[0].in = -1;
	st[0].out = data[1];
	st[0].keep[st[0].nkeep++] = ack[0];

	st[1].name = remote ? "stasis-transfer" : encrypt ? "stasis-seal" : "stasis-serialize";
	args_add(&st[1].argv, serialize);
	if (remote) {
		add_transfer_args(&st[1], o, false, ps_fd);
	} else if (encrypt) {
		/* sealed from the moment it leaves collect */
		add_seal_args(&st[1].argv, o);
		args_add(&st[1].argv, "-D");
		args_add(&st[1].argv, dir);
	} else {
		args_add(&st[1].argv, "unpack");
		args_add(&st[1].argv, "-D");
		args_add(&st[1].argv, dir);
	}
	args_add(&st[1].argv, "--ack-fd");
	args_addf(&st[1].argv, "%d", ack[1]);
	add_common(&st[1].argv, o, log);
	st[1].in = progress ? shown[0] : data[0];
	st[1].out = -1;
	st[1].keep[st[1].nkeep++] = ack[1];
	st[2].in = data[0];
	st[2].out = shown[1];
	/* sealed from the moment it leaves collect (and the progress line) */
	if (seal_stage) {
		st[3].name = "stasis-seal";
		args_add(&st[3].argv, seal);
		add_seal_args(&st[3].argv, o);
		add_common(&st[3].argv, o, log);
		st[3].in = st[1].in;
		st[3].out = sealed[1];
		st[1].in = sealed[0];
	}

	pr_info("dumping the tree of %d %s %s", o->tree, remote ? "to" : "into",
		remote ? (o->str[S_ADDRESS] ? o->str[S_ADDRESS] : "the --ps-socket peer") : dir);
	/* If the sink cannot start, closing our ends makes collect see EOF
	 * on its output and its ack channel: it resumes the tree. */
	if (!stage_start(&st[0]) &&
	    (!progress || !fe_progress_start(&st[2], "dump", fe_tree_memory(o->tree), true)) &&
	    (!seal_stage || !stage_start(&st[3])))
		stage_start(&st[1]);
	close_fd(&data[0]);
	close_fd(&data[1]);
	close_fd(&ack[0]);
	close_fd(&ack[1]);
	close_fd(&shown[0]);
	close_fd(&shown[1]);
	close_fd(&sealed[0]);
	close_fd(&sealed[1]);
	close_fd(&stats[1]);
	close_fd(&ps_fd);

	ret = 0;
	for (i = 0; i < 2; i++) {
		rc[i] = stage_wait(&st[i], false);
		if (rc[i])
			ret = 1;
	}
	if (seal_stage && stage_wait(&st[3], false))
		ret = 1;
	if (progress)
		stage_wait(&st[2], true);
	if (ret) {
		pr_err("dump failed");
		goto out;
	}
	if (pidfd >= 0) {
		if (dprintf(pidfd, "%d", o->tree) < 0 || close(pidfd)) {
			pidfd = -1;
			pr_perror("cannot write pidfile %s", pidfile);
			ret = 1;
			goto out;
		}
		pidfd = -1;
	}
	pr_info("dump complete");
	/* the dump is stored whatever dedup does: its failure is a warning */
	if (o->flag[F_AUTO_DEDUP] && prev && run_dedup(o, dir, log))
		pr_warn("--auto-dedup failed; the checkpoint in %s is complete", dir);
	if (o->flag[F_DISPLAY_STATS] && remote) {
		fe_display_dump_stats_fd(stats[0]);
		stats[0] = -1;
	} else if (o->flag[F_DISPLAY_STATS])
		fe_display_dump_stats(dir);
out:
	if (pidfd >= 0) {
		close(pidfd);
		unlink(pidfile);
	}
	close_fd(&data[0]);
	close_fd(&data[1]);
	close_fd(&ack[0]);
	close_fd(&ack[1]);
	close_fd(&shown[0]);
	close_fd(&shown[1]);
	close_fd(&sealed[0]);
	close_fd(&sealed[1]);
	close_fd(&stats[0]);
	close_fd(&stats[1]);
	close_fd(&ps_fd);
	for (i = 0; i < 4; i++)
		args_free(&st[i].argv);
	free(wdir);
	free(seal);
	free(freeze);
	free(collect);
	free(serialize);
	free(pidfile);
	free(log);
	return ret;
}

/* stasis-serialize pack -D DIR | stasis-inject [opts] */
static int cmd_restore(const struct fe_opts *o)
{
	const char *dir = o->str[S_IMAGES_DIR] ? o->str[S_IMAGES_DIR] : ".", *images_dir = dir;
	bool detached = o->flag[F_RESTORE_DETACHED];
	char *log = NULL, *pidfile = NULL, *serialize = NULL, *inject = NULL, *wdir = NULL;
	char *seal = NULL;
	/* serialize (or transfer), inject, the progress line, and, from the
	 * network, the chain's resolver (stasis-serialize chain) */
	struct stage st[4] = {};
	int data[2] = {-1, -1}, shown[2] = {-1, -1}, opened[2] = {-1, -1};
	int chain_sk[2] = {-1, -1};
	int ret = 1, rc_pack, rc_inject, i, ps_fd = -1, status_fd = -1;
	bool progress = fe_progress_wanted(o);
	/* the checkpoint comes from the network, not from -D */
	bool remote = o->flag[F_REMOTE], local_dir = !remote || o->str[S_IMAGES_DIR];
	/* a sealed directory is opened without being asked; a sealed stream
	 * from the network when -e says it is one */
	bool sealed = remote ? o->flag[F_ENCRYPT] : false;
	char *cipher = NULL, *chain_tmp = NULL;
	struct stat s;

	if (check_file_validation(o))
		return 1;
	if (remote && net_endpoint(o, true, &ps_fd))
		return 1;
	if (remote && o->str[S_STATUS_FD] &&
	    (status_fd = user_fd("status-fd", o->str[S_STATUS_FD])) < 0)
		return 1;
	if (local_dir && stat(dir, &s)) {
		pr_err("cannot open images directory %s: %s", dir, strerror(errno));
		return 1;
	}
	if (local_dir && !S_ISDIR(s.st_mode)) {
		pr_err("images directory %s is not a directory", dir);
		return 1;
	}
	if (!remote) {
		cipher = in_dir(dir, "cipher.img");
		sealed = !access(cipher, F_OK);
		free(cipher);
	}
	wdir = work_dir(o, dir);
	if (!wdir)
		return 1;
	log = in_dir(wdir, o->str[S_LOG_FILE]);
	if (open_log(log, o))
		goto out;
	pidfile = in_dir(wdir, o->str[S_PIDFILE]);
	/* a sealed link of a chain: every link is opened into memory first,
	 * and the plaintext chain is packed as an unsealed one */
	if (!remote && sealed) {
		int r = fe_open_sealed_chain(o, dir, log, &chain_tmp);

		if (r < 0)
			goto out;
		if (r) {
			sealed = false;
			dir = chain_tmp;
		}
	}
	if (!(serialize = need_program(remote ? "stasis-transfer" : sealed ? "stasis-seal"
									   : "stasis-serialize")) ||
	    !(inject = need_program("stasis-inject")))
		goto out;
	/* from the network come the links of a chain, or a whole dump (a
	 * chain of one): stasis-serialize chain takes them as they come and
	 * opens the sealed ones */
	if (remote && !(seal = need_program("stasis-serialize")))
		goto out;
	if (make_pipe(data) || (progress && make_pipe(shown)) ||
	    (seal && make_pipe(opened)))
		goto out;
	if (remote && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, chain_sk)) {
		pr_perror("cannot create a socket pair");
		goto out;
	}
	if (fe_scripts_setup(o, images_dir))
		goto out;
	if (fe_scripts_run("pre-restore", remote ? 0 : fe_checkpoint_root(dir))) {
		pr_err("restore aborted by the pre-restore action script");
		goto out;
	}

	st[0].name = remote ? "stasis-transfer" : sealed ? "stasis-seal" : "stasis-serialize";
	args_add(&st[0].argv, serialize);
	if (!remote && sealed) {
		/* stasis-seal reads the sealed directory itself, in pack's order */
		args_add(&st[0].argv, "--open");
		args_add(&st[0].argv, "--require-sealed");
		args_add(&st[0].argv, "-D");
		args_add(&st[0].argv, dir);
		if (o->str[S_TLS_KEY]) {
			args_add(&st[0].argv, "--tls-key");
			args_add(&st[0].argv, o->str[S_TLS_KEY]);
		}
	} else if (remote) {
		add_transfer_args(&st[0], o, true, ps_fd);
		args_add(&st[0].argv, "--chain-fd");
		args_addf(&st[0].argv, "%d", chain_sk[0]);
		st[0].keep[st[0].nkeep++] = chain_sk[0];
		if (status_fd >= 0) {
			args_add(&st[0].argv, "--status-fd");
			args_addf(&st[0].argv, "%d", status_fd);
			st[0].keep[st[0].nkeep++] = status_fd;
		}
	} else {
		args_add(&st[0].argv, "pack");
		args_add(&st[0].argv, "-D");
		args_add(&st[0].argv, dir);
	}
	add_common(&st[0].argv, o, log);
	st[0].in = -1;
	st[0].out = data[1];

	st[1].name = "stasis-inject";
	args_add(&st[1].argv, inject);
	if (detached)
		args_add(&st[1].argv, "--restore-detached");
	if (o->flag[F_LEAVE_STOPPED])
		args_add(&st[1].argv, "--leave-stopped");
	if (o->flag[F_SHELL_JOB])
		args_add(&st[1].argv, "--shell-job");
	if (o->flag[F_FILE_LOCKS])
		args_add(&st[1].argv, "--file-locks");
	if (o->flag[F_TCP_CLOSE])
		args_add(&st[1].argv, "--tcp-close");
	/* the daemon's socket is in the work directory, as criu(8) has it */
	if (o->flag[F_LAZY_PAGES]) {
		args_add(&st[1].argv, "--lazy-pages");
		args_add(&st[1].argv, "--work-dir");
		args_add(&st[1].argv, wdir);
	}
	if (o->str[S_FILE_VALIDATION]) {
		args_add(&st[1].argv, "--file-validation");
		args_add(&st[1].argv, o->str[S_FILE_VALIDATION]);
	}
	/* the descriptors themselves are inherited by fork and exec */
	add_list(&st[1].argv, o, L_INHERIT_FD, "--inherit-fd");
	if (pidfile) {
		args_add(&st[1].argv, "--pidfile");
		args_add(&st[1].argv, pidfile);
	}
	/* A migration within one host: the source holds the PIDs until the
	 * receiver has confirmed the whole stream and the sender killed it. */
	if (remote) {
		args_add(&st[1].argv, "--wait-pids-free");
		args_add(&st[1].argv, "300");
	}
	fe_scripts_args(&st[1].argv, o);
	/* kept in the work directory, as criu(8) keeps stats-restore (not
	 * in the current directory by surprise when restoring from afar) */
	if (local_dir || o->str[S_WORK_DIR]) {
		args_add(&st[1].argv, "--stats-file");
		args_addf(&st[1].argv, "%s/stats-restore.img", wdir);
	}
	if (o->flag[F_DISPLAY_STATS])
		args_add(&st[1].argv, "--display-stats");
	add_common(&st[1].argv, o, log);
	st[1].in = progress ? shown[0] : data[0];
	st[1].out = -1;
	st[2].in = data[0];
	st[2].out = shown[1];
	if (seal) {
		st[3].name = "stasis-serialize";
		args_add(&st[3].argv, seal);
		args_add(&st[3].argv, "chain");
		args_add(&st[3].argv, "--chain-fd");
		args_addf(&st[3].argv, "%d", chain_sk[1]);
		st[3].keep[st[3].nkeep++] = chain_sk[1];
		if (sealed)
			args_add(&st[3].argv, "--require-sealed");
		if (o->str[S_TLS_KEY]) {
			args_add(&st[3].argv, "--tls-key");
			args_add(&st[3].argv, o->str[S_TLS_KEY]);
		}
		add_common(&st[3].argv, o, log);
		st[3].in = st[1].in;
		st[3].out = opened[1];
		st[1].in = opened[0];
	}

	pr_info("restoring from %s%s", remote ? "the network" : dir, sealed ? " (sealed)" : "");
	if (!stage_start(&st[0]) &&
	    (!progress ||
	     !fe_progress_start(&st[2], "restore", remote ? 0 : fe_dir_bytes(dir), false)) &&
	    (!seal || !stage_start(&st[3])))
		stage_start(&st[1]);
	close_fd(&data[0]);
	close_fd(&data[1]);
	close_fd(&shown[0]);
	close_fd(&shown[1]);
	close_fd(&opened[0]);
	close_fd(&opened[1]);
	close_fd(&chain_sk[0]);
	close_fd(&chain_sk[1]);
	close_fd(&ps_fd);
	close_fd(&status_fd);

	rc_pack = stage_wait(&st[0], false);
	if (seal && stage_wait(&st[3], false))
		rc_pack = 1;
	if (progress)
		stage_wait(&st[2], true);
	/* without -d, inject's status is the restored root task's: not an error of ours */
	rc_inject = stage_wait(&st[1], !detached);
	ret = rc_inject ? rc_inject : rc_pack ? 1 : 0;
	if (rc_pack && !rc_inject)
		pr_err("restore failed");
out:
	close_fd(&data[0]);
	close_fd(&data[1]);
	close_fd(&shown[0]);
	close_fd(&shown[1]);
	close_fd(&opened[0]);
	close_fd(&opened[1]);
	close_fd(&chain_sk[0]);
	close_fd(&chain_sk[1]);
	close_fd(&ps_fd);
	close_fd(&status_fd);
	for (i = 0; i < 4; i++)
		args_free(&st[i].argv);
	free(wdir);
	fe_close_sealed_chain(chain_tmp);
	free(seal);
	free(serialize);
	free(inject);
	free(pidfile);
	free(log);
	return ret;
}

/*
 * stasis page-server: stasis-transfer --listen [ADDR:]PORT --sink-ack-fd A
 *	| stasis-serialize unpack -D DIR --ack-fd B
 * with B the write end of a pipe whose read end is A: the sender hears
 * "OK" only once the images are fsynced here.
 */
static int cmd_page_server(const struct fe_opts *o)
{
	const char *dir = o->str[S_IMAGES_DIR] ? o->str[S_IMAGES_DIR] : ".";
	char *log = NULL, *pidfile = NULL, *transfer = NULL, *serialize = NULL, *wdir = NULL;
	struct stage st[2] = {};
	int data[2] = {-1, -1}, ack[2] = {-1, -1}, status[2] = {-1, -1};
	int ret = 1, ps_fd = -1, status_fd = -1, i;
	char prev_id[2 * 16 + 1];

	if (net_endpoint(o, true, &ps_fd))
		return 1;
	if (o->str[S_STATUS_FD] && (status_fd = user_fd("status-fd", o->str[S_STATUS_FD])) < 0)
		goto out;
	if (o->flag[F_DAEMON] && status_fd >= 0) {
		pr_err("--daemon and --status-fd exclude each other");
		goto out;
	}
	if (prepare_images_dir(dir))
		goto out;
	/* one link of a chain sent by pre-dump --page-server: its parent is
	 * here, and DIR/parent must lead to it */
	if (fe_prev_link(o, dir, prev_id) < 0)
		goto out;
	wdir = work_dir(o, dir);
	if (!wdir)
		goto out;
	log = in_dir(wdir, o->str[S_LOG_FILE]);
	if (open_log(log, o))
		goto out;
	pidfile = in_dir(wdir, o->str[S_PIDFILE]);
	if (!(transfer = need_program("stasis-transfer")) ||
	    !(serialize = need_program("stasis-serialize")))
		goto out;
	if (make_pipe(data) || make_pipe(ack))
		goto out;
	/* --daemon: the parent returns once the server listens */
	if (o->flag[F_DAEMON]) {
		pid_t pid;
		char c;

		if (make_pipe(status))
			goto out;
		pid = fork();
		if (pid < 0) {
			pr_perror("cannot fork the page server");
			goto out;
		}
		if (pid > 0) {
			close_fd(&status[1]);
			ret = read(status[0], &c, 1) == 1 ? 0 : 1;
			if (ret)
				pr_err("the page server did not start");
			goto out;
		}
		setsid();
		status_fd = status[1];
		status[1] = -1;
		close_fd(&status[0]);
	}

	st[0].name = "stasis-transfer";
	args_add(&st[0].argv, transfer);
	add_transfer_args(&st[0], o, true, ps_fd);
	args_add(&st[0].argv, "--sink-ack-fd");
	args_addf(&st[0].argv, "%d", ack[0]);
	st[0].keep[st[0].nkeep++] = ack[0];
	if (status_fd >= 0) {
		args_add(&st[0].argv, "--status-fd");
		args_addf(&st[0].argv, "%d", status_fd);
		st[0].keep[st[0].nkeep++] = status_fd;
	}
	if (pidfile) {
		args_add(&st[0].argv, "--pidfile");
		args_add(&st[0].argv, pidfile);
	}
	add_common(&st[0].argv, o, log);
	st[0].in = -1;
	st[0].out = data[1];

	st[1].name = "stasis-serialize";
	args_add(&st[1].argv, serialize);
	args_add(&st[1].argv, "unpack");
	args_add(&st[1].argv, "-D");
	args_add(&st[1].argv, dir);
	args_add(&st[1].argv, "--ack-fd");
	args_addf(&st[1].argv, "%d", ack[1]);
	st[1].keep[st[1].nkeep++] = ack[1];
	add_common(&st[1].argv, o, log);
	st[1].in = data[0];
	st[1].out = -1;

	pr_info("page server: receiving a checkpoint into %s", dir);
	if (!stage_start(&st[0]))
		stage_start(&st[1]);
	close_fd(&data[0]);
	close_fd(&data[1]);
	close_fd(&ack[0]);
	close_fd(&ack[1]);
	close_fd(&ps_fd);
	close_fd(&status_fd);

	ret = 0;
	for (i = 0; i < 2; i++)
		if (stage_wait(&st[i], false))
			ret = 1;
	if (ret)
		pr_err("page server: no checkpoint was stored");
	else
		pr_info("page server: checkpoint stored in %s", dir);
out:
	close_fd(&data[0]);
	close_fd(&data[1]);
	close_fd(&ack[0]);
	close_fd(&ack[1]);
	close_fd(&status[0]);
	close_fd(&status[1]);
	close_fd(&ps_fd);
	close_fd(&status_fd);
	for (i = 0; i < 2; i++)
		args_free(&st[i].argv);
	free(wdir);
	free(transfer);
	free(serialize);
	free(pidfile);
	free(log);
	return ret;
}

/* The options of the network where nothing goes over it: refused, rather
 * than a checkpoint silently left on the local disk. */
static int check_net_use(const struct fe_opts *o)
{
	static const int strs[] = {S_ADDRESS,	S_PORT,	      S_PS_SOCKET,
				   S_STATUS_FD, S_TLS_CACERT, S_TLS_CACRL};

	if (o->cmd == CMD_PAGE_SERVER || o->flag[F_REMOTE] || o->flag[F_PAGE_SERVER])
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(strs); i++)
		if (o->str[strs[i]])
			goto bad;
	if (!o->flag[F_TLS] && !o->flag[F_TLS_NO_CN_VERIFY])
		return 0;
bad:
	pr_err("%s: --address, --port, --ps-socket, --status-fd, --tls, --tls-cacert, "
	       "--tls-cacrl and --tls-no-cn-verify need %s",
	       o->cmd_name, o->cmd == CMD_DUMP ? "--page-server or --remote" : "--remote");
	return -1;
}

/* stasis check: probes the kernel (check.c); -o is relative to -W if given. */
static int cmd_check(const struct fe_opts *o)
{
	struct check_opts c = {
	    .extra = o->flag[F_CHECK_EXTRA] || o->flag[F_CHECK_ALL],
	    .experimental = o->flag[F_CHECK_EXPERIMENTAL] || o->flag[F_CHECK_ALL],
	    .feature = o->str[S_FEATURE],
	};
	char *wdir = NULL, *log = NULL;
	int ret = 1;

	if (o->str[S_WORK_DIR] && !(wdir = work_dir(o, ".")))
		return 1;
	log = in_dir(wdir ? wdir : ".", o->str[S_LOG_FILE]);
	if (!open_log(log, o))
		ret = check_run(&c);
	free(log);
	free(wdir);
	return ret;
}

int main(int argc, char **argv)
{
	struct fe_opts o;

	log_init("stasis");
	sane_std_fds();

	if (argc > 1 && in_list(argv[1], tools, ARRAY_SIZE(tools)))
		return run_tool(argv + 1);

	/* a stage that dies must not take the front-end with it */
	signal(SIGPIPE, SIG_IGN);

	if (fe_parse(argc, argv, &o)) {
		fprintf(stderr, "Try 'stasis --help' for more information.\n");
		return 1;
	}
	if (o.verbosity >= 0)
		log_set_level(o.verbosity);

	if (o.cmd_name && o.cmd == CMD_NONE) {
		if (in_list(o.cmd_name, tools, ARRAY_SIZE(tools)))
			pr_err("options go after the tool: stasis %s [ARGS...]", o.cmd_name);
		else if (in_list(o.cmd_name, criu_commands, ARRAY_SIZE(criu_commands)))
			pr_err("command %s is not supported yet", o.cmd_name);
		else {
			pr_err("unknown command '%s'", o.cmd_name);
			fe_usage(stderr, CMD_NONE);
		}
		return 1;
	}
	if (o.help) {
		fe_usage(stdout, o.cmd);
		return 0;
	}
	if (o.version) {
		print_version("stasis");
		return 0;
	}
	if ((o.cmd == CMD_DUMP || o.cmd == CMD_RESTORE || o.cmd == CMD_PRE_DUMP) &&
	    check_net_use(&o))
		return 1;
	switch (o.cmd) {
	case CMD_DUMP:
	case CMD_PRE_DUMP:
		return cmd_dump(&o);
	case CMD_DEDUP:
		return cmd_dedup(&o);
	case CMD_RESTORE:
		return cmd_restore(&o);
	case CMD_PAGE_SERVER:
		return cmd_page_server(&o);
	case CMD_CHECK:
		return cmd_check(&o);
	default:
		fe_usage(stderr, CMD_NONE);
		return 1;
	}
}
