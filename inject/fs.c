// SPDX-License-Identifier: GPL-2.0
/* fs-PID: working directory, root and umask. */
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>

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

int fs_restore(struct itask *t)
{
	/* cwd first: its path is seen from our root, not the task's */
	if (remote_path_call(t, SYS_chdir, "working directory", t->fs->cwd))
		return -1;
	if (strcmp(t->fs->root, "/") &&
	    remote_path_call(t, SYS_chroot, "root directory", t->fs->root))
		return -1;
	ISYS(t, SYS_umask, t->fs->umask & 0777);
	return 0;
}
