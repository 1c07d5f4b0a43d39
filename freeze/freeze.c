// SPDX-License-Identifier: GPL-2.0
/*
 * stasis-freeze: seize every thread of the tree rooted at -t PID, then exec
 * the next program of the pipeline, which inherits the tracees.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <unistd.h>

#include "stasis/fault.h"
#include "stasis/log.h"
#include "stasis/opts.h"
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

/* TID:SIGNAL of the threads found in a group stop, for collect
 * (STASIS_FREEZE_STOPPED_ENV) */
static char stopped_list[65536];

static int seize_one(pid_t tid)
{
	/* EXITKILL is not set: if we die the tasks must live on. A seccomp
	 * filter must not see (and kill the task for) the parasite's calls. */
	int stop_sig = 0;

	if (ptrace_seize_stop(tid, PTRACE_O_SUSPEND_SECCOMP, &stop_sig))
		return -1;
	/* a task stopped by a signal before the dump is stopped after it,
	 * by the same signal (its parent's waitid sees which) */
	if (stop_sig) {
		char buf[32];
		size_t len = strlen(stopped_list);

		snprintf(buf, sizeof(buf), "%s%d:%d", len ? "," : "", tid, stop_sig);
		if (len + strlen(buf) < sizeof(stopped_list))
			strcat(stopped_list, buf);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tree", required_argument, NULL, 't' },
		COMMON_LONG_OPTS,
		{}
	};
	pid_t root = 0;
	int c;
	char buf[32];

	log_init(argv[0]);
	while ((c = getopt_long(argc, argv, "+t:" COMMON_SHORT_OPTS, opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (opt_int("-t", optarg, 1, INT_MAX, "a PID", &root))
				return 1;
			break;
		default:
			switch (common_option(c, optarg, "stasis-freeze", usage)) {
			case 1:
				break;
			case 0:
				usage(stderr);
				/* fall through */
			default:
				return 1;
			}
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
	if (fault_hit("freeze-seized")) {
		tree_detach(&frozen, 0);
		return 1;
	}
	snprintf(buf, sizeof(buf), "%d", root);
	setenv(STASIS_FREEZE_ENV, buf, 1);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)start);
	setenv("STASIS_FREEZE_START_NS", buf, 1);
	setenv(STASIS_FREEZE_STOPPED_ENV, stopped_list, 1);
	execvp(argv[optind], argv + optind);
	pr_perror("cannot run %s; tree %d left running", argv[optind], root);
	tree_detach(&frozen, 0);
	return 1;
}
