// SPDX-License-Identifier: GPL-2.0
/* The options of stasis-inject, with their defaults, which every part of
 * the restore reads (inject.h). Apart from main.c so that
 * tests/fuzz/inject.c links them as they are. */
#include <errno.h>
#include <net/if.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inject.h"
#include "stasis/log.h"
#include "stasis/opts.h"
#include "stasis/scripts.h"
#include "stasis/util.h"
#include "stats.h"

struct inject_opts opts = { .file_validation = FILE_VALIDATION_FILESIZE };

static void usage(FILE *f)
{
	fprintf(f, "Usage: stasis-inject [OPTIONS] < STREAM\n"
		   "Restore the process tree of a plaintext image stream.\n\n"
		   "Options:\n"
		   "  -d, --restore-detached  exit once the tree runs, do not wait for it\n"
		   "  -s, --leave-stopped     leave the restored tree stopped\n"
		   "  -j, --shell-job         give the tree the caller's terminal\n"
		   "      --pidfile FILE      write the restored root's PID to FILE\n"
		   "  -l, --file-locks        take back the file locks of the checkpoint\n"
		   "      --manage-cgroups MODE  put every thread back in its cgroups: none\n"
		   "                          (existing cgroups), props (existing ones, their\n"
		   "                          settings restored), soft (missing ones made with\n"
		   "                          their settings), full (and the settings of existing\n"
		   "                          ones), strict (all made, none may exist); ignore\n"
		   "                          (the default): leave them in ours\n"
		   "      --cgroup-root [CTRL:]/PATH  with --manage-cgroups: the tree's cgroups of\n"
		   "                          the hierarchy of CTRL (of every other one without\n"
		   "                          CTRL) go below PATH, not the root task's cgroup\n"
		   "  -J, --join-ns NS:PID|FILE  restore the tree into an existing namespace\n"
		   "                          instead of the root task's own: NS is net, uts,\n"
		   "                          ipc, time, cgroup or mnt; the namespace of process\n"
		   "                          PID, or the namespace file FILE (may be repeated)\n"
		   "      --veth-pair IN=OUT  the veth IN of the tree's network namespace, whose\n"
		   "                          peer was outside it, gets its new peer named OUT\n"
		   "                          in ours (default: a name the kernel chooses)\n"
		   "      --file-validation MODE  check regular files by MODE: filesize\n"
		   "                          (the default; buildid is not supported)\n"
		   "      --inherit-fd fd[N]:socket:[ID]  restore unix socket ID as our fd N\n"
		   "      --tcp-close         restore established TCP connections closed\n"
		   "      --action-script PATH  run PATH at setup-namespaces, post-restore,\n"
		   "                          network-unlock, pre-resume and post-resume\n"
		   "      --stats-file FILE   write the stats-restore image to FILE\n"
		   "      --display-stats     print the restore statistics on stdout\n"
		   "      --wait-pids-free SECONDS  first wait up to SECONDS until the PIDs of\n"
		   "                          the tree are free (migration within one host)\n"
		   "      --lazy-pages        leave private anonymous memory to the lazy-pages\n"
		   "                          daemon (stasis-lazy-pages), which fills it on demand\n"
		   "  -W, --work-dir DIR      where the daemon's lazy-pages.socket is (default .)\n"
		   "  -v, --verbosity[=N]     raise or set the log level (0-4)\n"
		   "  -o, --log-file FILE     write log messages to FILE\n"
		   "  -h, --help              show this help and exit\n"
		   "  -V, --version           show the version and exit\n");
}

int inject_parse_opts(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "restore-detached", no_argument, NULL, 'd' },
		{ "leave-stopped", no_argument, NULL, 's' },
		{ "shell-job", no_argument, NULL, 'j' },
		{ "file-locks", no_argument, NULL, 'l' },
		{ "file-validation", required_argument, NULL, 'F' },
		{ "action-script", required_argument, NULL, 'S' },
		{ "stats-file", required_argument, NULL, 'T' },
		{ "display-stats", no_argument, NULL, 'Y' },
		{ "wait-pids-free", required_argument, NULL, 'X' },
		{ "pidfile", required_argument, NULL, 'P' },
		{ "inherit-fd", required_argument, NULL, 'I' },
		{ "tcp-close", no_argument, NULL, 'C' },
		{ "lazy-pages", no_argument, NULL, 'L' },
		{ "work-dir", required_argument, NULL, 'W' },
		{ "manage-cgroups", required_argument, NULL, 'M' },
		{ "cgroup-root", required_argument, NULL, 'G' },
		{ "join-ns", required_argument, NULL, 'J' },
		{ "veth-pair", required_argument, NULL, 'E' },
		COMMON_LONG_OPTS,
		{}
	};
	int c;

	while ((c = getopt_long(argc, argv, "dsjlW:J:" COMMON_SHORT_OPTS, lopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			opts.detached = true;
			break;
		case 's':
			opts.leave_stopped = true;
			break;
		case 'j':
			opts.shell_job = true;
			break;
		case 'P':
			opts.pidfile = optarg;
			break;
		case 'l':
			opts.file_locks = true;
			break;
		case 'C':
			opts.tcp_close = true;
			break;
		case 'L':
			opts.lazy_pages = true;
			break;
		case 'W':
			opts.lazy_dir = optarg;
			break;
		case 'M':
			opts.manage_cgroups = cg_mode_parse(optarg);
			if (opts.manage_cgroups < 0) {
				pr_err("--manage-cgroups %s: expected none, props, soft, full, strict "
				       "or ignore",
				       optarg);
				return -1;
			}
			break;
		case 'G': {
			struct cg_root cr;

			if (cg_root_parse(optarg, &cr))
				return -1;
			opts.cgroup_roots = xrealloc(opts.cgroup_roots, (opts.nr_cgroup_roots + 1) *
									 sizeof(*opts.cgroup_roots));
			opts.cgroup_roots[opts.nr_cgroup_roots++] = cr;
			break;
		}
		case 'J':
			opts.join_ns = xrealloc(opts.join_ns, (opts.nr_join_ns + 1) * sizeof(char *));
			opts.join_ns[opts.nr_join_ns++] = optarg;
			break;
		case 'E': {
			const char *eq = strchr(optarg, '=');

			if (!eq || eq == optarg || !eq[1] || strlen(eq + 1) >= IFNAMSIZ ||
			    (size_t)(eq - optarg) >= IFNAMSIZ) {
				pr_err("--veth-pair %s: expected IN=OUT, two link names", optarg);
				return -1;
			}
			opts.veth_pairs =
			    xrealloc(opts.veth_pairs, (opts.nr_veth_pairs + 1) * sizeof(char *));
			opts.veth_pairs[opts.nr_veth_pairs++] = optarg;
			break;
		}
		case 'I': {
			char *end = optarg;
			long fd = -1;

			/* fd[N]:RESOURCE, N digits only */
			if (!strncmp(optarg, "fd[", 3) && optarg[3] >= '0' && optarg[3] <= '9') {
				errno = 0;
				fd = strtol(optarg + 3, &end, 10);
				if (errno || fd > INT_MAX)
					fd = -1;
			}
			if (fd < 0 || strncmp(end, "]:", 2) || !end[2] || fcntl(fd, F_GETFD) < 0) {
				pr_err("--inherit-fd %s: expected fd[N]:RESOURCE, N an open descriptor",
				       optarg);
				return -1;
			}
			opts.inherit_fds = xrealloc(opts.inherit_fds, (opts.nr_inherit_fds + 1) *
									 sizeof(*opts.inherit_fds));
			opts.inherit_fds[opts.nr_inherit_fds++] = (struct inherit_fd){ fd, end + 2 };
			break;
		}
		case 'F':
			if (!strcmp(optarg, "filesize")) {
				opts.file_validation = FILE_VALIDATION_FILESIZE;
			} else if (!strcmp(optarg, "buildid")) {
				pr_err("--file-validation buildid is not supported: stasis checks "
				       "files by their size only (filesize)");
				return -1;
			} else {
				pr_err("unknown --file-validation mode '%s' (filesize)", optarg);
				return -1;
			}
			break;
		case 'S':
			scripts_add(optarg);
			break;
		case 'T':
			stats_set_file(optarg);
			break;
		case 'Y':
			stats_set_display(true);
			break;
		case 'X':
			if (opt_int("--wait-pids-free", optarg, 0, 86400, "seconds, 0 to 86400",
				    &opts.wait_pids_free))
				return -1;
			break;
		default:
			switch (common_option(c, optarg, "stasis-inject", usage)) {
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
	return 0;
}
