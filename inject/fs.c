// SPDX-License-Identifier: GPL-2.0
/* fs-PID: working directory, root and umask. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "inject.h"
#include "stasis/log.h"

static int remote_path_call(struct itask *t, long nr, const char *what, const char *path)
{
	unsigned long at = scratch_put(t, 0, path, strlen(path) + 1);
	long r;

	if (!at)
		return -1;
	r = ISYS(t, nr, at);
	if (r) {
		pr_err("task %d: cannot restore its %s %s: %s", t->pid, what, path, strerror(-r));
		return -1;
	}
	return 0;
}

/*
 * A removed directory is entered through the holder in stasis-inject: the
 * working directory with fchdir on a copy of it (a directory /proc/PID of
 * a process gone is not reached again through a /proc link), the root by
 * its /proc path.
 */
static int remote_dir_call(struct itask *t, long nr, const char *what, const char *path,
			   bool ghost, uint32_t id)
{
	long p, fd, r;
	char proc[64];
	int holder;

	if (!ghost)
		return remote_path_call(t, nr, what, path);
	if (nr == SYS_chdir) {
		holder = ghost_holder(id);
		if (holder < 0)
			return -1;
		p = pstree_remote_inject_pidfd(t);
		fd = p < 0 ? p : ISYS(t, SYS_pidfd_getfd, p, holder, 0);
		r = fd < 0 ? fd : ISYS(t, SYS_fchdir, fd);
		if (fd >= 0)
			ISYS(t, SYS_close, fd);
		if (p >= 0)
			ISYS(t, SYS_close, p);
		if (r) {
			pr_err("task %d: cannot restore its %s %s: %s", t->pid, what, path,
			       strerror(-r));
			return -1;
		}
		return 0;
	}
	if (ghost_proc_path(id, proc, sizeof(proc)))
		return -1;
	return remote_path_call(t, nr, what, proc);
}

int fs_restore(struct itask *t)
{
	Stasis__FsEntry *fs = t->fs;

	/* cwd first: its path is seen from our root, not the task's */
	if (remote_dir_call(t, SYS_chdir, "working directory", fs->cwd, fs->has_cwd_ghost,
			    fs->cwd_ghost))
		return -1;
	if ((strcmp(fs->root, "/") || fs->has_root_ghost) &&
	    remote_dir_call(t, SYS_chroot, "root directory", fs->root, fs->has_root_ghost,
			    fs->root_ghost))
		return -1;
	ISYS(t, SYS_umask, t->fs->umask & 0777);
	return 0;
}
