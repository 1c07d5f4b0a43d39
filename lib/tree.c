// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/proc.h"
#include "stasis/ptrace.h"
#include "stasis/tree.h"
#include "stasis/util.h"

bool tree_has(const struct tree *t, pid_t pid)
{
	for (int i = 0; i < t->nr; i++)
		if (t->tasks[i].pid == pid)
			return true;
	return false;
}

static bool task_has_tid(const struct tree_task *tk, pid_t tid)
{
	for (int i = 0; i < tk->nr_tids; i++)
		if (tk->tids[i] == tid)
			return true;
	return false;
}

bool tree_has_thread(const struct tree *t, pid_t tid)
{
	for (int i = 0; i < t->nr; i++)
		if (task_has_tid(&t->tasks[i], tid))
			return true;
	return false;
}

/* 'Z' for a zombie thread, 0 if gone, else its state letter. */
static char thread_state(pid_t pid, pid_t tid)
{
	struct proc_stat st;

	return proc_read_stat(pid, tid, &st) ? 0 : st.state;
}

#define WALK_VANISHED (-2)

/*
 * One pass over the threads of tk; returns how many new ones it found, or
 * WALK_VANISHED when the task exited while we looked (a task of a tree that
 * keeps forking and reaping): it is then dropped, or kept as a zombie.
 */
static int walk_threads(pid_t pid, struct tree_task *tk, int (*seize)(pid_t))
{
	pid_t *tids;
	int nr = proc_list_threads(pid, &tids), found = 0;

	if (nr < 0) {
		pr_perror("cannot list threads of task %d", pid);
		return -1;
	}
	/* the leader first, then the others in /proc order */
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < nr; i++) {
			if ((pass == 0) != (tids[i] == pid) || task_has_tid(tk, tids[i]))
				continue;
			if (seize && seize(tids[i])) {
				char state = thread_state(pid, tids[i]);

				if (state && state != 'Z' && state != 'X') {
					free(tids);
					return -1;
				}
				if (tids[i] == pid && !tk->nr_tids) {
					free(tids);
					tk->zombie = state == 'Z';
					return WALK_VANISHED;
				}
				continue; /* a thread that exited */
			}
			tk->tids = xrealloc(tk->tids, (tk->nr_tids + 1) * sizeof(pid_t));
			tk->tids[tk->nr_tids++] = tids[i];
			found++;
		}
	free(tids);
	return found;
}

int tree_walk(pid_t root, struct tree *t, int (*seize)(pid_t tid))
{
	int changed;

	memset(t, 0, sizeof(*t));
	t->tasks = xzalloc(sizeof(*t->tasks));
	t->tasks[0].pid = root;
	t->nr = 1;
	do {
		changed = 0;
		for (int i = 0; i < t->nr; i++) {
			struct proc_stat st;
			int n;

			if (t->tasks[i].zombie)
				continue;
			/* a zombie has nothing to seize; it is dumped as such */
			if (!t->tasks[i].nr_tids && i &&
			    !proc_read_stat(t->tasks[i].pid, 0, &st) && st.state == 'Z') {
				t->tasks[i].zombie = true;
				continue;
			}
			n = walk_threads(t->tasks[i].pid, &t->tasks[i], seize);
			if (n == WALK_VANISHED && i == 0) {
				pr_err("task %d exited", root);
				return -1;
			}
			if (n == WALK_VANISHED) {
				changed++;
				if (t->tasks[i].zombie)
					continue;
				/* reaped meanwhile: forget it */
				memmove(&t->tasks[i], &t->tasks[i + 1],
					(t->nr - i - 1) * sizeof(t->tasks[0]));
				t->nr--;
				i--;
				continue;
			}
			if (n < 0)
				return -1;
			changed += n;
			for (int j = 0; j < t->tasks[i].nr_tids; j++) {
				pid_t *kids;
				int nk = proc_list_children(t->tasks[i].pid, t->tasks[i].tids[j], &kids);

				if (nk < 0) {
					pr_perror("cannot list children of task %d", t->tasks[i].tids[j]);
					return -1;
				}
				for (int k = 0; k < nk; k++) {
					if (tree_has(t, kids[k]))
						continue;
					t->tasks = xrealloc(t->tasks, (t->nr + 1) * sizeof(*t->tasks));
					memset(&t->tasks[t->nr], 0, sizeof(t->tasks[0]));
					t->tasks[t->nr++].pid = kids[k];
					changed++;
				}
				free(kids);
			}
		}
	} while (changed && seize);
	return 0;
}

/*
 * PTRACE_DETACH passes its signal on only from a signal-delivery stop, and
 * the tasks wait in event stops (seized, or parked after remote calls):
 * queue SIG to the first thread and let it reach the delivery stop.
 */
static int signal_delivery_stop(pid_t tgid, pid_t tid, int sig)
{
	int status, pass = 0;

	if (syscall(SYS_tgkill, tgid, tid, sig))
		return -1;
	for (;;) {
		if (ptrace(PTRACE_CONT, tid, NULL, (void *)(long)pass) ||
		    ptrace_wait_stop(tid, &status) || !WIFSTOPPED(status))
			return -1;
		if (!(status >> 16) && WSTOPSIG(status) == sig)
			return 0;
		/* another signal first: delivered as it would have been */
		pass = (status >> 16) ? 0 : WSTOPSIG(status);
	}
}

void tree_detach(const struct tree *t, int sig)
{
	for (int i = 0; i < t->nr; i++) {
		const struct tree_task *tk = &t->tasks[i];

		if (sig && !tk->zombie && tk->nr_tids &&
		    signal_delivery_stop(tk->pid, tk->tids[0], sig))
			pr_perror("cannot send signal %d to task %d", sig, tk->pid);
		for (int j = 0; j < tk->nr_tids; j++)
			if (ptrace(PTRACE_DETACH, tk->tids[j], NULL, (void *)(long)(j ? 0 : sig)) &&
			    errno != ESRCH)
				pr_perror("cannot detach task %d", tk->tids[j]);
	}
}

void tree_free(struct tree *t)
{
	for (int i = 0; i < t->nr; i++)
		free(t->tasks[i].tids);
	free(t->tasks);
	memset(t, 0, sizeof(*t));
}
