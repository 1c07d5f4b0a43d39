/* SPDX-License-Identifier: GPL-2.0 */
/* The frozen tree: found by freeze, re-found by collect after the exec. */
#ifndef STASIS_TREE_H
#define STASIS_TREE_H

#include <stdbool.h>
#include <sys/types.h>

/* freeze tells the next program which tree it froze through this variable */
#define STASIS_FREEZE_ENV "STASIS_FREEZE_ROOT"
/* and which of its threads were in a group stop, by which signal
 * (comma-separated TID:SIGNAL) */
#define STASIS_FREEZE_STOPPED_ENV "STASIS_FREEZE_STOPPED"

struct tree_task {
	pid_t pid;
	pid_t *tids; /* threads, the leader first; none for a zombie */
	int nr_tids;
	bool zombie;
};

struct tree {
	struct tree_task *tasks; /* parents before children; the root first */
	int nr;
};

/*
 * Walks /proc/PID/task/TID/children from root, calling seize(tid) for every
 * thread not yet known, until a full pass finds nothing new. With seize NULL
 * it only lists (the tree must already be frozen).
 */
int tree_walk(pid_t root, struct tree *t, int (*seize)(pid_t tid));
bool tree_has(const struct tree *t, pid_t pid);
/* tid is one of the threads (the leaders included) of a task of t. */
bool tree_has_thread(const struct tree *t, pid_t tid);
void tree_free(struct tree *t);
/* Detaches every thread; sig is delivered on resume (0 or SIGSTOP). */
void tree_detach(const struct tree *t, int sig);

#endif
