// SPDX-License-Identifier: GPL-2.0
/* fs-PID: working directory, root and umask. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collect.h"
#include "stasis/log.h"
#include "stasis/proc.h"
#include "stasis/util.h"

static char *read_link(pid_t pid, const char *what)
{
	char path[64], buf[4096];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, what);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n < 0) {
		pr_perror("cannot read %s", path);
		return NULL;
	}
	buf[n] = 0;
	return xstrdup(buf);
}

static bool deleted(const char *link)
{
	size_t len = strlen(link);

	return len > 10 && !strcmp(link + len - 10, " (deleted)");
}

int fs_collect(struct ctask *ct, struct img_writer *w)
{
	Stasis__FsEntry fs = STASIS__FS_ENTRY__INIT;
	char name[32], umask[16], path[64];

	fs.cwd = read_link(ct->pid, "cwd");
	fs.root = read_link(ct->pid, "root");
	if (!fs.cwd || !fs.root)
		return -1;
	/* removed: made again at restore, entered, and removed */
	if (deleted(fs.cwd)) {
		snprintf(path, sizeof(path), "/proc/%d/cwd", ct->pid);
		fs.has_cwd_ghost = true;
		if (ghost_collect_path(ct->pid, "the working directory", fs.cwd, path,
				       &fs.cwd_ghost))
			return -1;
	}
	if (deleted(fs.root)) {
		snprintf(path, sizeof(path), "/proc/%d/root", ct->pid);
		fs.has_root_ghost = true;
		if (ghost_collect_path(ct->pid, "the root directory", fs.root, path,
				       &fs.root_ghost))
			return -1;
	}
	if (proc_status_field(ct->pid, "Umask", umask, sizeof(umask))) {
		pr_err("cannot read the umask of task %d", ct->pid);
		return -1;
	}
	fs.umask = strtoul(umask, NULL, 8);
	snprintf(name, sizeof(name), "fs-%d", pidns_vpid(ct->pid));
	return imgw_record(w, name, &fs.base);
}
