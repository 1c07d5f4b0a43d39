// SPDX-License-Identifier: GPL-2.0
/*
 * PID namespaces. A tree whose root is the init (PID 1) of a PID namespace
 * one level below stasis-collect's, with every task of the tree in that
 * namespace, is carried: its records name tasks by the PIDs they see
 * (the last NSpid, NSpgid, NSsid of /proc/PID/status), and stasis-inject
 * makes the namespace again with the same PIDs inside. collect itself
 * keeps using the PIDs it sees (ctask->pid) for /proc and ptrace.
 * Refused: a tree in our namespace with a task in another one, a root
 * that is not its namespace's init, nested namespaces, groups or
 * sessions the namespace cannot see. A /proc of the namespace's own, in
 * a mount namespace of the tree's, is mounted again by the restored init
 * (collect/mntns.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collect.h"
#include "stasis/log.h"
#include "stasis/proc.h"
#include "stasis/util.h"

struct pid_pair {
	pid_t host, inner;
};

static struct pid_pair *pairs;
static size_t nr_pairs;
static bool namespaced;
static int own_level; /* the number of NSpid entries of our own tasks */

/* The NSpid, NSpgid or NSsid line of tid: its entries into ids, their count
 * (0: no such line, -1: no such task). */
static int ns_ids(pid_t tid, const char *key, pid_t *ids, int max)
{
	char buf[256], *p, *end;
	int n = 0;

	if (proc_status_field(tid, key, buf, sizeof(buf)))
		return -1;
	for (p = buf; n < max; p = end) {
		long v = strtol(p, &end, 10);

		if (end == p)
			break;
		ids[n++] = v;
	}
	return n;
}

static bool same_ns(pid_t a, pid_t b, const char *kind)
{
	char pa[64], pb[64];
	struct stat sa, sb;

	snprintf(pa, sizeof(pa), "/proc/%d/ns/%s", a, kind);
	snprintf(pb, sizeof(pb), "/proc/%d/ns/%s", b, kind);
	if (stat(pa, &sa) || stat(pb, &sb))
		return false;
	return sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}

static void add_pair(pid_t host, pid_t inner)
{
	pairs = xrealloc(pairs, (nr_pairs + 1) * sizeof(*pairs));
	pairs[nr_pairs++] = (struct pid_pair){host, inner};
}

/* The inner PID of a thread of the tree, checked to be one level down. */
static int add_tid(pid_t tid)
{
	pid_t ids[8];
	int n = ns_ids(tid, "NSpid", ids, ARRAY_SIZE(ids));

	if (n <= 0) {
		pr_err("cannot read the PIDs of task %d in its namespaces", tid);
		return -1;
	}
	if (n > own_level + 1) {
		pr_err(
		    "task %d is in a PID namespace nested in another one (%d levels below ours): "
		    "not supported",
		    tid, n - own_level);
		return -1;
	}
	if (n != own_level + 1) {
		pr_err(
		    "task %d is in our PID namespace while the tree's root is not: not supported",
		    tid);
		return -1;
	}
	add_pair(tid, ids[n - 1]);
	return 0;
}

int pidns_prepare(const struct tree *t)
{
	pid_t ids[8], root = t->tasks[0].pid;
	int n;

	own_level = ns_ids(getpid(), "NSpid", ids, ARRAY_SIZE(ids));
	n = ns_ids(root, "NSpid", ids, ARRAY_SIZE(ids));
	if (own_level <= 0 || n <= 0) {
		pr_err("cannot read the PIDs of task %d in its namespaces", root);
		return -1;
	}
	if (n == own_level) {
		/* in our namespace: every task must be (ns_task_ids refuses
		 * the others); PIDs are the same on both sides */
		return 0;
	}
	if (n > own_level + 1) {
		pr_err(
		    "task %d is in a PID namespace nested in another one (%d levels below ours): "
		    "not supported",
		    root, n - own_level);
		return -1;
	}
	if (ids[n - 1] != 1) {
		pr_err(
		    "task %d is PID %d of its PID namespace, not its init: only a tree rooted at "
		    "the namespace's init (PID 1) is supported",
		    root, ids[n - 1]);
		return -1;
	}
	if (t->tasks[0].zombie) {
		pr_err("task %d: the init of a PID namespace is a zombie", root);
		return -1;
	}
	namespaced = true;
	for (int i = 0; i < t->nr; i++) {
		const struct tree_task *tt = &t->tasks[i];

		if (tt->zombie ? add_tid(tt->pid) : 0)
			return -1;
		for (int j = 0; j < tt->nr_tids; j++)
			if (add_tid(tt->tids[j]))
				return -1;
		if (!tt->zombie && !same_ns(tt->pid, root, "pid")) {
			pr_err("task %d is in a PID namespace other than its root's: not supported",
			       tt->pid);
			return -1;
		}
	}
	pr_debug("the tree is in a PID namespace of its own: %zu threads", nr_pairs);
	return 0;
}

bool pidns_active(void)
{
	return namespaced;
}

pid_t pidns_vpid(pid_t host)
{
	pid_t ids[8];
	int n;

	if (!namespaced || host <= 0)
		return host;
	for (size_t i = 0; i < nr_pairs; i++)
		if (pairs[i].host == host)
			return pairs[i].inner;
	/* a task outside the tree: visible inside only if it is in the
	 * tree's namespace */
	n = ns_ids(host, "NSpid", ids, ARRAY_SIZE(ids));
	if (n != own_level + 1 || !same_ns(host, pairs[0].host, "pid"))
		return 0;
	return ids[n - 1];
}

pid_t pidns_task_id(pid_t pid, const char *key)
{
	pid_t ids[8];
	int n;

	n = ns_ids(pid, key, ids, ARRAY_SIZE(ids));
	if (n <= 0)
		return 0;
	return ids[n - 1];
}
