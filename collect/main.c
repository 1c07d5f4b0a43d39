// SPDX-License-Identifier: GPL-2.0
/*
 * stasis-collect: read the state of the tree that stasis-freeze seized and
 * write it as an image stream on stdout. It decides the tree's fate: killed
 * (default) once the sink acknowledged a durable checkpoint, left running
 * (-R) or left stopped (-s); on any failure the tree is resumed untouched.
 */
#include <getopt.h>
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
#include "stasis/opts.h"
#include "stasis/proc.h"
#include "stasis/scripts.h"
#include "stasis/util.h"
#include "stats.h"
#include "track.h"

struct collect_opts opts = { .ack_fd = -1, .stats_fd = -1, .ghost_limit = 1 << 20,
			     .network_lock = NETLOCK_IPTABLES, .lazy_req_fd = -1,
			     .lazy_resp_fd = -1 };

/* long options without a letter: values past any character */
enum {
	OPT_LAZY_PAGES = 0x100,
	OPT_LAZY_REQ_FD,
	OPT_LAZY_RESP_FD,
	OPT_LAZY_STATS_FILE,
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: stasis-freeze -t PID stasis-collect [OPTIONS] > STREAM\n"
		"Write the state of the tree frozen by stasis-freeze as an image stream.\n\n"
		"Options:\n"
		"  -R, --leave-running     leave the tree running after the dump\n"
		"  -s, --leave-stopped     leave the tree stopped after the dump\n"
		"  -j, --shell-job         allow a session or terminal outside the tree\n"
		"      --ack-fd FD         kill the tree only after reading \"OK\" on FD\n"
		"  -l, --file-locks        dump the file locks the tree holds\n"
		"      --ghost-limit SIZE  carry deleted files up to SIZE (K, M, G; 1M)\n"
		"      --link-remap        link back files unlinked but still linked elsewhere\n"
		"      --external unix[ID] allow unix socket ID a peer outside the tree\n"
		"      --force-irmap       find watched inodes whose name is gone by inode\n"
		"      --irmap-scan-path DIR  where --force-irmap looks first (repeatable)\n"
		"      --tcp-established   carry established TCP connections\n"
		"      --tcp-close         dump established TCP connections as closed\n"
		"      --skip-in-flight    drop connections a listener has not accepted yet\n"
		"      --network-lock METHOD  iptables (default), nftables or skip: drop the\n"
		"                          packets of the tree's connections until it runs\n"
		"      --action-script PATH  run PATH at network-lock, post-dump, network-unlock\n"
		"      --stats-fd FD       also write the stats-dump record (protobuf) to FD\n"
		"      --pre-dump          write memory only and leave the tree running\n"
		"      --track-mem         track the memory the tree writes from now on\n"
		"      --prev-track-id ID  leave pages unchanged since that link to it\n"
		"                          (current: the link the running tracker belongs to)\n"
		"      --lazy-pages        leave private anonymous pages out of the stream; once\n"
		"                          it is stored, keep the tree frozen and serve them\n"
		"      --lazy-req-fd FD    read the destination's page requests on FD\n"
		"      --lazy-resp-fd FD   write the lazy page stream to FD\n"
		"      --lazy-stats-file FILE  write the lazy page statistics (DumpStats) to FILE\n"
		"      --background-snapshot  with -R or --pre-dump: let the tree run while its\n"
		"                          memory is copied (write-protected until copied)\n"
		"  -v, --verbosity[=N]     raise or set the log level (0-4)\n"
		"  -o, --log-file FILE     write log messages to FILE\n"
		"  -h, --help              show this help and exit\n"
		"  -V, --version           show the version and exit\n");
}

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
	inv.root_pid = root;
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
	 * leader is reported only after its other threads. */
	for (int i = 0; i < tree.nr; i++)
		for (int j = tree.tasks[i].nr_tids; j-- > 0;) {
			int status;

			while (waitpid(tree.tasks[i].tids[j], &status, __WALL) > 0 &&
			       !WIFEXITED(status) && !WIFSIGNALED(status))
				;
		}
}

static int parse_opts(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "leave-running", no_argument, NULL, 'R' },
		{ "leave-stopped", no_argument, NULL, 's' },
		{ "shell-job", no_argument, NULL, 'j' },
		{ "ack-fd", required_argument, NULL, 'A' },
		{ "stats-fd", required_argument, NULL, 'Z' },
		{ "file-locks", no_argument, NULL, 'l' },
		{ "ghost-limit", required_argument, NULL, 'G' },
		{ "link-remap", no_argument, NULL, 'L' },
		{ "external", required_argument, NULL, 'E' },
		{ "force-irmap", no_argument, NULL, 'Q' },
		{ "irmap-scan-path", required_argument, NULL, 'q' },
		{ "action-script", required_argument, NULL, 'S' },
		{ "tcp-established", no_argument, NULL, 'T' },
		{ "tcp-close", no_argument, NULL, 'C' },
		{ "skip-in-flight", no_argument, NULL, 'F' },
		{ "pre-dump", no_argument, NULL, 'P' },
		{ "track-mem", no_argument, NULL, 'M' },
		{ "prev-track-id", required_argument, NULL, 'I' },
		{ "network-lock", required_argument, NULL, 'N' },
		{ "lazy-pages", no_argument, NULL, OPT_LAZY_PAGES },
		{ "lazy-req-fd", required_argument, NULL, OPT_LAZY_REQ_FD },
		{ "lazy-resp-fd", required_argument, NULL, OPT_LAZY_RESP_FD },
		{ "lazy-stats-file", required_argument, NULL, OPT_LAZY_STATS_FILE },
		{ "background-snapshot", no_argument, NULL, 'B' },
		COMMON_LONG_OPTS,
		{}
	};
	int c;

	while ((c = getopt_long(argc, argv, "Rsjl" COMMON_SHORT_OPTS, lopts, NULL)) != -1) {
		switch (c) {
		case 'R':
			opts.leave_running = true;
			break;
		case 's':
			opts.leave_stopped = true;
			break;
		case 'j':
			opts.shell_job = true;
			break;
		case 'A':
			if (opt_fd("--ack-fd", optarg, &opts.ack_fd))
				return -1;
			break;
		case 'Z':
			if (opt_fd("--stats-fd", optarg, &opts.stats_fd))
				return -1;
			break;
		case 'l':
			opts.file_locks = true;
			break;
		case 'G': {
			long long v;

			if (opt_size("--ghost-limit", optarg, 0, &v))
				return -1;
			opts.ghost_limit = v;
			break;
		}
		case 'L':
			opts.link_remap = true;
			break;
		case 'E':
			if (strncmp(optarg, "unix[", 5) || optarg[strlen(optarg) - 1] != ']') {
				pr_err("--external %s: only unix[ID] is supported", optarg);
				return -1;
			}
			opts.external = xrealloc(opts.external, (opts.nr_external + 1) * sizeof(char *));
			opts.external[opts.nr_external++] = optarg;
			break;
		case 'S':
			scripts_add(optarg);
			break;
		case 'Q':
			opts.force_irmap = true;
			break;
		case 'q':
			opts.irmap_paths = xrealloc(opts.irmap_paths,
						    (opts.nr_irmap_paths + 1) * sizeof(char *));
			opts.irmap_paths[opts.nr_irmap_paths++] = optarg;
			break;
		case 'T':
			opts.tcp_established = true;
			break;
		case 'C':
			opts.tcp_close = true;
			break;
		case 'F':
			opts.skip_in_flight = true;
			break;
		case 'P':
			opts.pre_dump = true;
			break;
		case 'M':
			opts.track_mem = true;
			break;
		case 'I':
			/* current: the parent link is elsewhere (a page server's
			 * host); whoever restores checks the id against it */
			if (!strcmp(optarg, "current"))
				opts.prev_track_current = true;
			else if (hex_decode(optarg, opts.prev_track_id, sizeof(opts.prev_track_id))) {
				pr_err("invalid --prev-track-id '%s' (32 hexadecimal digits, or current)",
				       optarg);
				return -1;
			}
			opts.has_prev_track_id = true;
			break;
		case 'B':
			opts.background_snapshot = true;
			break;
		case 'N':
			opts.network_lock = netlock_parse(optarg);
			if (opts.network_lock < 0) {
				pr_err("--network-lock %s: expected iptables, nftables or skip", optarg);
				return -1;
			}
			break;
		case OPT_LAZY_PAGES:
			opts.lazy_pages = true;
			break;
		case OPT_LAZY_REQ_FD:
			if (opt_fd("--lazy-req-fd", optarg, &opts.lazy_req_fd))
				return -1;
			break;
		case OPT_LAZY_RESP_FD:
			if (opt_fd("--lazy-resp-fd", optarg, &opts.lazy_resp_fd))
				return -1;
			break;
		case OPT_LAZY_STATS_FILE:
			opts.lazy_stats_file = optarg;
			break;
		default:
			switch (common_option(c, optarg, "stasis-collect", usage)) {
			case 1:
				break;
			case 0:
				usage(stderr);
				/* fall through */
			default:
				return -1;
			}
		}
	}
	if (optind < argc) {
		usage(stderr);
		return -1;
	}
	if (opts.lazy_pages != (opts.lazy_req_fd >= 0) ||
	    opts.lazy_pages != (opts.lazy_resp_fd >= 0)) {
		pr_err("--lazy-pages needs --lazy-req-fd and --lazy-resp-fd, and they need it");
		return -1;
	}
	if (opts.lazy_pages && (opts.pre_dump || opts.track_mem || opts.has_prev_track_id)) {
		pr_err("--lazy-pages with --pre-dump, --track-mem or --prev-track-id is not "
		       "supported yet");
		return -1;
	}
	return 0;
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
	if (parse_opts(argc, argv)) {
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
	if (fault_hit("collect-seized") || inet_lock(root) || actions_frozen(root))
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
	if (!opts.pre_dump && (files_write(w) || inet_write(w) || pipes_write(w) || ghost_write(w) ||
			       memfd_write(w)))
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
