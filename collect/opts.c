// SPDX-License-Identifier: GPL-2.0
/* The options of stasis-collect, with their defaults, which every part of
 * the dump reads (collect.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collect.h"
#include "stasis/log.h"
#include "stasis/netlock.h"
#include "stasis/opts.h"
#include "stasis/scripts.h"
#include "stasis/util.h"

struct collect_opts opts = { .ack_fd = -1, .stats_fd = -1, .ghost_limit = 1 << 20,
			     .network_lock = NETLOCK_IPTABLES, .lazy_req_fd = -1,
			     .lazy_resp_fd = -1 };

/* long options without a letter: values past any character */
enum {
	OPT_LAZY_PAGES = 0x100,
	OPT_LAZY_REQ_FD,
	OPT_LAZY_RESP_FD,
	OPT_LAZY_STATS_FILE,
	OPT_READER_COPIES,
	OPT_CGROUP_PROPS,
	OPT_CGROUP_PROPS_FILE,
	OPT_CGROUP_ROOT,
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
		"      --ext-unix-sk       --external unix[ID] for every unix socket\n"
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
		"      --reader-copies     what reads stdout takes the data out of the pipe\n"
		"                          with read(2), never splice(2) or tee(2): page\n"
		"                          buffers go into the pipe by reference\n"
		"      --cgroup-props SPEC  the cgroup settings recorded per controller, merged\n"
		"                          into or replacing the built-in lists (criu's YAML)\n"
		"      --cgroup-props-file FILE  the same, SPEC read from FILE\n"
		"      --cgroup-root [CTRL:]/PATH  record the cgroups of hierarchy CTRL (of\n"
		"                          every other one without CTRL) from PATH, a cgroup\n"
		"                          at or above the tree's, instead of from the tree's\n"
		"  -v, --verbosity[=N]     raise or set the log level (0-4)\n"
		"  -o, --log-file FILE     write log messages to FILE\n"
		"  -h, --help              show this help and exit\n"
		"  -V, --version           show the version and exit\n");
}

int collect_parse_opts(int argc, char **argv)
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
		{ "ext-unix-sk", no_argument, NULL, 'X' },
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
		{ "reader-copies", no_argument, NULL, OPT_READER_COPIES },
		{ "cgroup-props", required_argument, NULL, OPT_CGROUP_PROPS },
		{ "cgroup-props-file", required_argument, NULL, OPT_CGROUP_PROPS_FILE },
		{ "cgroup-root", required_argument, NULL, OPT_CGROUP_ROOT },
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
		case 'X':
			opts.ext_unix_sk = true;
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
		case OPT_READER_COPIES:
			opts.reader_copies = true;
			break;
		case OPT_CGROUP_PROPS:
			if (cgroup_props_parse(optarg, "--cgroup-props"))
				return -1;
			break;
		case OPT_CGROUP_PROPS_FILE:
			if (cgroup_props_file(optarg))
				return -1;
			break;
		case OPT_CGROUP_ROOT: {
			struct cg_root cr;

			if (cg_root_parse(optarg, &cr))
				return -1;
			opts.cgroup_roots = xrealloc(opts.cgroup_roots, (opts.nr_cgroup_roots + 1) *
									 sizeof(*opts.cgroup_roots));
			opts.cgroup_roots[opts.nr_cgroup_roots++] = cr;
			break;
		}
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
