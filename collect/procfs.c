// SPDX-License-Identifier: GPL-2.0
/*
 * Files of /proc and namespace files. A file under /proc/PID of a task or
 * thread of the tree can only be opened again once that task exists: it
 * is a PROCFS description, made at restore after the tree is built. A
 * directory /proc/PID of a process that has exited (a working directory
 * or descriptor kept on it) is a ghost made again from a short-lived
 * process (ghost.c). A namespace file (/proc/PID/ns/TYPE, which reads as
 * "TYPE:[INODE]") is carried when it names the namespace stasis runs in,
 * the only one a restore on this host can open again.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>

#include "collect.h"
#include "files.h"
#include "stasis/log.h"
#include "stasis/tree.h"

/* The PID in a path /proc/PID or /proc/PID/..., 0 if it is none. */
static pid_t proc_path_pid(const char *path, const char **rest)
{
	const char *p = path + 6;
	char *end;
	long pid;

	if (strncmp(path, "/proc/", 6) || !isdigit((unsigned char)*p))
		return 0;
	pid = strtol(p, &end, 10);
	if (pid <= 0 || (*end && *end != '/' && *end != ' '))
		return 0;
	if (rest)
		*rest = end;
	return pid;
}

static bool on_fs(const char *path, long magic)
{
	struct statfs sfs;

	return !statfs(path, &sfs) && sfs.f_type == magic;
}

bool procfs_dead_dir(const char *link, const char *src, pid_t *pid)
{
	const char *rest;
	pid_t n = proc_path_pid(link, &rest);

	if (!n || strcmp(rest, " (deleted)") || !on_fs(src, PROC_SUPER_MAGIC))
		return false;
	*pid = n;
	return true;
}

static bool procfs_match(const struct fd_src *src)
{
	char path[64];
	pid_t pid = proc_path_pid(src->link, NULL);
	size_t len = strlen(src->link);

	if (!pid || (len > 10 && !strcmp(src->link + len - 10, " (deleted)")))
		return false;
	if (!tree_has(collect_tree(), pid) && !tree_has_thread(collect_tree(), pid))
		return false;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", src->pid, src->fd);
	return on_fs(path, PROC_SUPER_MAGIC);
}

static int procfs_dump(const struct fd_src *src, Stasis__FileEntry *fe)
{
	fe->type = STASIS__FD_TYPE__PROCFS;
	fe->has_pos = true;
	fe->pos = src->pos;
	return 0;
}

/* Before O_PATH and the others: none of them can open it before the tree exists. */
const struct fd_dump_ops procfs_dump_ops = { "file of /proc", procfs_match, procfs_dump };

/* The TYPE of a link "TYPE:[INODE]" (at most len - 1 characters), or false. */
static bool nsfs_type(const char *link, char *type, size_t len)
{
	size_t n = strcspn(link, ":");
	unsigned long long ino;
	char end;

	if (!n || n >= len || sscanf(link + n, ":[%llu%c", &ino, &end) != 2 || end != ']')
		return false;
	memcpy(type, link, n);
	type[n] = 0;
	return true;
}

static bool nsfs_match(const struct fd_src *src)
{
	char type[32], path[64];

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", src->pid, src->fd);
	return nsfs_type(src->link, type, sizeof(type)) && on_fs(path, NSFS_MAGIC);
}

static int nsfs_dump(const struct fd_src *src, Stasis__FileEntry *fe)
{
	char type[32], path[64];
	struct stat own;

	nsfs_type(src->link, type, sizeof(type));
	snprintf(path, sizeof(path), "/proc/self/ns/%s", type);
	if (stat(path, &own) || own.st_ino != src->st.st_ino || own.st_dev != src->st.st_dev) {
		pr_err("fd %d of task %d: the namespace file %s is of a %s namespace other than "
		       "the one stasis runs in; not supported",
		       src->fd, src->pid, src->link, type);
		return -1;
	}
	fe->type = STASIS__FD_TYPE__NSFS;
	return 0;
}

const struct fd_dump_ops nsfs_dump_ops = { "namespace file", nsfs_match, nsfs_dump };
