// SPDX-License-Identifier: GPL-2.0
/*
 * stasis-freeze: seize every thread of the tree rooted at -t PID, then exec
 * the next program of the pipeline, which inherits the tracees.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/ptrace.h"
#include "stasis/tree.h"
#include "stasis/util.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: stasis-freeze [OPTIONS] -t PID PROGRAM [ARGS...]\n"
		   "Freeze the process tree rooted at PID with ptrace and exec PROGRAM,\n"
		   "which inherits the frozen tasks (normally stasis-collect).\n\n"
		   "Options:\n"
		   "  -t, --tree PID          root of the tree to freeze\n"
		   "  -v, --verbosity[=N]     raise or set the log level (0-4)\n"
		   "  -o, --log-file FILE     write log messages to FILE\n"
		   "  -h, --help              show this help and exit\n"
		   "  -V, --version           show the version and exit\n");
}

static struct tree frozen;

static int seize_one(pid_t tid)
{
	/* EXITKILL is not set: if we die the tasks must live on. */
	return ptrace_seize_stop(tid, 0);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tree", required_argument, NULL, 't' },
		{ "verbosity", optional_argument, NULL, 'v' },
		{ "log-file", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{}
	};
	pid_t root = 0;
	int c, verbosity = LOG_WARN;
	char buf[32];

	log_init(argv[0]);
	while ((c = getopt_long(argc, argv, "+t:v::o:hV", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			root = strtol(optarg, NULL, 10);
			break;
		case 'v':
			if (!optarg)
				verbosity++;
			else if (optarg[0] == 'v')
				verbosity += 1 + strspn(optarg, "v");
			else
				verbosity = atoi(optarg);
			log_set_level(verbosity);
			break;
		case 'o':
			if (log_set_file(optarg)) {
				pr_perror("cannot open log file %s", optarg);
				return 1;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			print_version("stasis-freeze");
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (root <= 0 || optind >= argc) {
		usage(stderr);
		return 1;
	}
	if (root == getpid() || root == getppid()) {
		pr_err("refusing to freeze the tree stasis-freeze runs in (pid %d)", root);
		return 1;
	}
	if (kill(root, 0)) {
		pr_perror("cannot freeze task %d", root);
		return 1;
	}
	uint64_t start = now_ns();
	if (tree_walk(root, &frozen, seize_one)) {
		pr_err("cannot freeze the tree of task %d; left running", root);
		tree_detach(&frozen, 0);
		return 1;
	}
	int threads = 0;
	for (int i = 0; i < frozen.nr; i++)
		threads += frozen.tasks[i].nr_tids;
	pr_info("froze %d tasks (%d threads) of tree %d in %llu us", frozen.nr, threads, root,
		(unsigned long long)(now_ns() - start) / 1000);
	snprintf(buf, sizeof(buf), "%d", root);
	setenv(STASIS_FREEZE_ENV, buf, 1);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)start);
	setenv("STASIS_FREEZE_START_NS", buf, 1);
	execvp(argv[optind], argv + optind);
	pr_perror("cannot run %s; tree %d left running", argv[optind], root);
	tree_detach(&frozen, 0);
	return 1;
}
