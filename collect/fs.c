// SPDX-License-Identifier: GPL-2.0
/* fs-PID: working directory, root and umask. */
#include <stdio.h>
#include <stdlib.h>
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

int fs_collect(struct ctask *ct, struct img_writer *w)
{
	Stasis__FsEntry fs = STASIS__FS_ENTRY__INIT;
	char name[32], umask[16];

	fs.cwd = read_link(ct->pid, "cwd");
	fs.root = read_link(ct->pid, "root");
	if (!fs.cwd || !fs.root)
		return -1;
	if (proc_status_field(ct->pid, "Umask", umask, sizeof(umask))) {
		pr_err("cannot read the umask of task %d", ct->pid);
		return -1;
	}
	fs.umask = strtoul(umask, NULL, 8);
	snprintf(name, sizeof(name), "fs-%d", ct->pid);
	return imgw_record(w, name, &fs.base);
}
