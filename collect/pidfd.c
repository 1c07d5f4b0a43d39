// SPDX-License-Identifier: GPL-2.0
/*
 * pidfds. fdinfo names the task ("Pid:", -1 once it was reaped); the
 * flags say whether it is a thread's pidfd (PIDFD_THREAD, which is
 * O_EXCL). Only a task of the tree can be the same task after a restore.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "collect.h"
#include "files.h"
#include "stasis/log.h"
#include "stasis/util.h"

static bool pidfd_match(const struct fd_src *src)
{
	return !strcmp(src->link, "anon_inode:[pidfd]");
}

static int pidfd_dump(const struct fd_src *src, Stasis__FileEntry *fe)
{
	const char *field = fdinfo_field(src->fdinfo, "Pid");
	bool thread = src->flags & O_EXCL;
	Stasis__PidfdEntry *e;
	long pid;

	if (!field) {
		pr_err("fd %d of task %d: no Pid in the fdinfo of its pidfd", src->fd, src->pid);
		return -1;
	}
	pid = strtol(field, NULL, 10);
	if (pid == -1) {
		pr_err("fd %d of task %d: pidfd of a task that has exited and was reaped; not "
		       "supported",
		       src->fd, src->pid);
		return -1;
	}
	if (pid <= 0 || !(thread ? tree_has_thread(collect_tree(), pid) ||
					   tree_has(collect_tree(), pid) :
				   tree_has(collect_tree(), pid))) {
		pr_err("fd %d of task %d: pidfd of %s %ld, which is outside the tree; not supported",
		       src->fd, src->pid, thread ? "thread" : "task", pid);
		return -1;
	}
	e = xmalloc(sizeof(*e));
	stasis__pidfd_entry__init(e);
	e->pid = pid;
	fe->type = STASIS__FD_TYPE__PIDFD;
	fe->pidfd = e;
	pr_debug("fd %d of task %d: pidfd of %s %ld", src->fd, src->pid,
		 thread ? "thread" : "task", pid);
	return 0;
}

const struct fd_dump_ops pidfd_dump_ops = { "pidfd", pidfd_match, pidfd_dump };
