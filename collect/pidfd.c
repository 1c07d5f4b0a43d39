// SPDX-License-Identifier: GPL-2.0
/*
 * pidfds. fdinfo names the task ("Pid:", -1 once it was reaped); the
 * flags say whether it is a thread's pidfd (PIDFD_THREAD, which is
 * O_EXCL). Only a task of the tree, or one that is gone for good, can be
 * the same task after a restore.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "collect.h"
#include "files.h"
#include "stasis/log.h"
#include "stasis/util.h"

static bool pidfd_match(const struct fd_src *src)
{
	return !strcmp(src->link, "anon_inode:[pidfd]");
}

#ifndef PIDFD_GET_INFO
/* linux/pidfd.h of 6.13 and later (the part of it used here) */
struct pidfd_info {
	uint64_t mask;
	uint64_t cgroupid;
	uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
	int32_t exit_code;
};
#define PIDFD_GET_INFO _IOWR(0xFF, 11, struct pidfd_info)
#define PIDFD_INFO_EXIT (1UL << 3)
#endif

/*
 * A reaped task: its PID is gone (nothing shows it any more), so any task
 * that exits and is reaped stands for it on restore. The pidfs inode
 * tells the pidfds of one such task from those of another; the exit status
 * is kept by kernels that have PIDFD_INFO_EXIT.
 */
static int dead_dump(const struct fd_src *src, Stasis__FileEntry *fe)
{
	Stasis__PidfdEntry *e = xmalloc(sizeof(*e));
	struct pidfd_info info = { .mask = PIDFD_INFO_EXIT };
	int fd = fd_src_dup(src);

	if (fd < 0) {
		free(e);
		return -1;
	}
	stasis__pidfd_entry__init(e);
	e->has_dead = e->has_ino = true;
	e->dead = true;
	e->ino = src->st.st_ino;
	if (!ioctl(fd, PIDFD_GET_INFO, &info) && (info.mask & PIDFD_INFO_EXIT)) {
		e->has_exit_status = true;
		e->exit_status = info.exit_code;
	}
	close(fd);
	fe->type = STASIS__FD_TYPE__PIDFD;
	fe->pidfd = e;
	pr_debug("fd %d of task %d: pidfd of a reaped task (inode %llu, status %#x)", src->fd,
		 src->pid, (unsigned long long)e->ino, e->exit_status);
	return 0;
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
	if (pid == -1)
		return dead_dump(src, fe);
	if (pid <= 0 || !(thread ? tree_has_thread(collect_tree(), pid) ||
					   tree_has(collect_tree(), pid) :
				   tree_has(collect_tree(), pid))) {
		pr_err("fd %d of task %d: pidfd of %s %ld, which is outside the tree; not supported",
		       src->fd, src->pid, thread ? "thread" : "task", pid);
		return -1;
	}
	e = xmalloc(sizeof(*e));
	stasis__pidfd_entry__init(e);
	e->pid = pidns_vpid(pid);
	fe->type = STASIS__FD_TYPE__PIDFD;
	fe->pidfd = e;
	pr_debug("fd %d of task %d: pidfd of %s %ld", src->fd, src->pid,
		 thread ? "thread" : "task", pid);
	return 0;
}

const struct fd_dump_ops pidfd_dump_ops = { "pidfd", pidfd_match, pidfd_dump };
