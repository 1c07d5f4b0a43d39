// SPDX-License-Identifier: GPL-2.0
/*
 * Mount namespaces. The tree's mount namespace is recorded as a difference
 * from the one stasis-collect runs in, which is what the restore starts
 * from (a private copy of stasis-inject's): the mounts of /proc/PID/
 * mountinfo that ours lacks (added), the ones of ours it lacks
 * (unmounted there), and the ones whose flags alone differ (remounted).
 * Mounts are compared by what they show (mount point, root, type, source,
 * options), not by device, so that a namespace that only remounted /sys or
 * /proc for its network or PID namespace (`ip netns exec`, `unshare
 * --mount-proc`) differs in nothing.
 *
 * An added mount is a bind of a path of ours when its device is one of
 * our mounts', a bind of a part of another added mount when its device is
 * that one's, and otherwise a new file system: a tmpfs, whose files travel
 * in mnt-files and mnt-data, or proc, sysfs, devpts, mqueue, cgroup,
 * cgroup2 (nothing to carry). Refused before anything is touched: other
 * file systems, a tmpfs covered by another mount, a slave of a peer group
 * outside the added mounts, a root that is not ours (pivot_root), a task's
 * root directory of its own.
 *
 * A namespace made by a task of the tree from its parent's (the parent in
 * another one of the tree) is a difference from that one, its base: the
 * restore makes it from a copy of that one, so that the mounts they share
 * stay shared.
 *
 * The paths of the tasks' files and mappings are looked up as their task
 * sees them, through /proc/PID/root (mntns_path): its root is the
 * namespace's own, and this process keeps its /proc, which a tree in a
 * PID namespace has replaced with its own.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "collect.h"
#include "stasis/log.h"
#include "stasis/proc.h"
#include "stasis/util.h"

#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256
#endif

struct mnt {
	uint32_t id, parent;
	unsigned major, minor;
	char *root, *mp, *opts, *fstype, *source, *super;
	uint32_t shared, master;
	bool unbindable;
	bool matched, remount;
	bool pidns_proc;     /* a proc of the tree's PID namespace */
	bool replaces;	     /* ... where the namespace lacks our proc */
	struct mnt *bind_of; /* added: a bind of a part of this added mount */
	char *bind_path;
};

struct mnt_table {
	struct mnt *m;
	size_t nr;
};

/* A mount namespace of the tree: its mounts and those of its base. */
struct mntns {
	uint32_t nsid, base; /* base: the namespace of the tree it came from, 0: ours */
	pid_t pid;	     /* the first task of the tree in it */
	dev_t dev;
	ino_t ino;
	struct mnt_table own, task; /* own: its base's */
};

static struct mntns *nss;
static size_t nr_nss;
static struct mntns *cur; /* the one being checked or written */

static int parse_line(char *line, struct mnt *m)
{
	struct proc_mount pm;

	memset(m, 0, sizeof(*m));
	if (proc_parse_mountinfo(line, &pm))
		return -1;
	m->id = pm.id;
	m->parent = pm.parent;
	m->major = pm.major;
	m->minor = pm.minor;
	m->root = pm.root;
	m->mp = pm.mp;
	m->opts = pm.opts;
	m->fstype = pm.fstype;
	m->source = pm.source;
	m->super = pm.super;
	m->shared = pm.shared;
	m->master = pm.master;
	m->unbindable = pm.unbindable;
	return 0;
}

static int read_mountinfo(const char *path, struct mnt_table *t)
{
	char *line = NULL;
	size_t cap = 0;
	FILE *f = fopen(path, "re");

	if (!f) {
		pr_perror("cannot open %s", path);
		return -1;
	}
	while (getline(&line, &cap, f) > 0) {
		t->m = xrealloc(t->m, (t->nr + 1) * sizeof(*t->m));
		if (parse_line(line, &t->m[t->nr])) {
			pr_err("%s: a line we cannot read", path);
			free(line);
			fclose(f);
			return -1;
		}
		t->nr++;
	}
	free(line);
	fclose(f);
	return 0;
}

static struct mnt *by_id(struct mnt_table *t, uint32_t id)
{
	for (size_t i = 0; i < t->nr; i++)
		if (t->m[i].id == id)
			return &t->m[i];
	return NULL;
}

static bool shows_same(const struct mnt *a, const struct mnt *b, bool options)
{
	return !strcmp(a->mp, b->mp) && !strcmp(a->root, b->root) &&
	       !strcmp(a->fstype, b->fstype) && !strcmp(a->source, b->source) &&
	       (!options || (!strcmp(a->opts, b->opts) && !strcmp(a->super, b->super)));
}

static bool added(const struct mnt *m)
{
	return !m->matched;
}

/* MS_* of a mount's own options ("rw,nosuid,relatime"). */
static uint32_t mount_flags(const char *opts)
{
	static const struct {
		const char *name;
		uint32_t flag;
	} names[] = {
	    {"ro", MS_RDONLY},	       {"nosuid", MS_NOSUID},
	    {"nodev", MS_NODEV},       {"noexec", MS_NOEXEC},
	    {"noatime", MS_NOATIME},   {"nodiratime", MS_NODIRATIME},
	    {"relatime", MS_RELATIME}, {"nosymfollow", MS_NOSYMFOLLOW},
	};
	char *copy = xstrdup(opts), *save = NULL;
	uint32_t flags = 0;

	for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save))
		for (size_t i = 0; i < ARRAY_SIZE(names); i++)
			if (!strcmp(o, names[i].name))
				flags |= names[i].flag;
	free(copy);
	if (!(flags & (MS_NOATIME | MS_RELATIME)))
		flags |= MS_STRICTATIME;
	return flags;
}

/* The file system's options less rw / ro, for mount(2)'s data. */
static char *fs_options(const char *super)
{
	char *copy = xstrdup(super), *save = NULL, *out = xzalloc(strlen(super) + 1);

	for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		if (!strcmp(o, "rw") || !strcmp(o, "ro"))
			continue;
		if (*out)
			strcat(out, ",");
		strcat(out, o);
	}
	free(copy);
	return out;
}

/* root lies in dir (both as mountinfo shows them): what is below it. */
static const char *below(const char *root, const char *dir)
{
	size_t n = strlen(dir);

	if (!strcmp(dir, "/"))
		return root;
	if (strncmp(root, dir, n) || (root[n] && root[n] != '/'))
		return NULL;
	return root[n] ? root + n : "/";
}

static const char *const new_fs[] = {"tmpfs",  "proc",	 "sysfs",  "devpts",
				     "mqueue", "cgroup", "cgroup2"};

static bool carried_fs(const char *type)
{
	for (size_t i = 0; i < ARRAY_SIZE(new_fs); i++)
		if (!strcmp(type, new_fs[i]))
			return true;
	return false;
}

/* What an added mount is made from; -1 (logged) when it cannot be. */
static int classify(struct mnt *a)
{
	struct mnt_table *own = &cur->own, *task = &cur->task;
	uint32_t group = a->master ? a->master : a->shared;

	/* a peer or a slave of a peer group of the namespace's: a bind of a
	 * member mounted before it, which puts it in that group (and then
	 * makes it a slave of it) */
	for (size_t i = 0; group && i < task->nr; i++) {
		struct mnt *b = &task->m[i];
		const char *rest;

		if (b == a || !added(b) || b->remount || b->id > a->id || b->shared != group ||
		    b->major != a->major || b->minor != a->minor ||
		    !(rest = below(a->root, b->root)))
			continue;
		a->bind_of = b;
		a->bind_path = xstrdup(rest);
		return 0;
	}
	if (a->master) {
		pr_err("mount %s of task %d's mount namespace is a slave of a peer group "
		       "(master:%u) outside the mounts it added, which stasis does not support",
		       a->mp, cur->pid, a->master);
		return -1;
	}
	/* a device of ours: a bind of the path that shows that directory */
	for (size_t i = 0; i < own->nr; i++) {
		struct mnt *o = &own->m[i];
		const char *rest;

		if (o->major != a->major || o->minor != a->minor ||
		    !(rest = below(a->root, o->root)))
			continue;
		if (!strcmp(o->mp, "/"))
			a->bind_path = xstrdup(rest);
		else if (!strcmp(rest, "/"))
			a->bind_path = xstrdup(o->mp);
		else
			a->bind_path = xasprintf("%s%s", o->mp, rest);
		return 0;
	}
	/* a device of a new file system of the namespace's: a bind of a part of it */
	for (size_t i = 0; i < task->nr; i++) {
		struct mnt *b = &task->m[i];
		const char *rest;

		if (b == a || !added(b) || b->major != a->major || b->minor != a->minor ||
		    strcmp(b->root, "/") || !(rest = below(a->root, "/")))
			continue;
		if (b->bind_of || b->bind_path)
			continue;
		/* the first one mounted is the file system itself */
		if (b->id > a->id && !strcmp(a->root, "/"))
			continue;
		a->bind_of = b;
		a->bind_path = xstrdup(rest);
		return 0;
	}
	if (!carried_fs(a->fstype)) {
		pr_err("mount %s (%s from %s) of task %d's mount namespace cannot be carried: "
		       "stasis makes tmpfs, proc, sysfs, devpts, mqueue and cgroup mounts, and "
		       "binds of paths it sees",
		       a->mp, a->fstype, a->source, cur->pid);
		return -1;
	}
	if (strcmp(a->root, "/")) {
		pr_err("mount %s of task %d's mount namespace shows %s of a %s nobody mounts "
		       "whole: not supported",
		       a->mp, cur->pid, a->root, a->fstype);
		return -1;
	}
	if (!strcmp(a->fstype, "tmpfs"))
		for (size_t i = 0; i < task->nr; i++)
			if (task->m[i].parent == a->id && !strcmp(task->m[i].mp, a->mp)) {
				pr_err(
				    "tmpfs %s of task %d's mount namespace is covered by another "
				    "mount: its files cannot be read",
				    a->mp, cur->pid);
				return -1;
			}
	return 0;
}

static bool is_tmpfs_with_files(const struct mnt *m)
{
	return added(m) && !m->remount && !m->bind_path && !m->pidns_proc &&
	       !strcmp(m->fstype, "tmpfs");
}

/*
 * A proc of the tree's PID namespace (`unshare --pid --mount-proc`) shows
 * the same as ours but is not: it is told by its PID 1, the tree's init.
 * No mount may sit on it (the restored init mounts it last). Where the
 * namespace no longer has our proc under it, it replaces ours, which stays
 * until then: stasis-inject reads /proc in the namespace meanwhile.
 */
static int find_pidns_procs(void)
{
	struct mnt_table *task = &cur->task;
	struct stat tree_pidns, st;
	char path[PATH_MAX + 64];

	if (!pidns_active())
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", cur->pid);
	if (stat(path, &tree_pidns)) {
		pr_perror("cannot read the PID namespace of task %d", cur->pid);
		return -1;
	}
	for (size_t i = 0; i < task->nr; i++) {
		struct mnt *t = &task->m[i];

		if (strcmp(t->fstype, "proc"))
			continue;
		/* the path leads to the top of a stack of mounts only */
		snprintf(path, sizeof(path), "/proc/%d/root%s", cur->pid, t->mp);
		if (stat(path, &st) || major(st.st_dev) != t->major || minor(st.st_dev) != t->minor)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/root%s/1/ns/pid", cur->pid, t->mp);
		if (stat(path, &st) || st.st_ino != tree_pidns.st_ino ||
		    st.st_dev != tree_pidns.st_dev)
			continue;
		t->pidns_proc = true;
	}
	for (size_t i = 0; i < task->nr; i++) {
		struct mnt *p = by_id(task, task->m[i].parent);

		if (p && p->pidns_proc) {
			pr_err("mount %s of task %d's mount namespace is on the /proc of its PID "
			       "namespace: not supported",
			       task->m[i].mp, cur->pid);
			return -1;
		}
	}
	return 0;
}

int mntns_check_task(pid_t pid)
{
	char path[64], root[8];
	ssize_t n;

	/* its paths are looked up from its root: the namespace's */
	snprintf(path, sizeof(path), "/proc/%d/root", pid);
	n = readlink(path, root, sizeof(root) - 1);
	if (n != 1 || root[0] != '/') {
		pr_err("task %d has a root directory of its own in its mount namespace (chroot): "
		       "not supported",
		       pid);
		return -1;
	}
	return 0;
}

int mntns_check(uint32_t nsid, pid_t pid, int nsfd)
{
	size_t nr_added = 0, nr_removed = 0, nr_remount = 0;
	struct proc_stat ps;
	char path[64];
	struct stat st, pst;
	struct mntns *base;
	size_t b = SIZE_MAX;

	if (fstat(nsfd, &st) || proc_read_stat(pid, 0, &ps)) {
		pr_perror("cannot read the mount namespace of task %d", pid);
		return -1;
	}
	/* made from its parent's, if that is one of the tree's */
	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", ps.ppid);
	for (size_t i = 0; !stat(path, &pst) && i < nr_nss; i++)
		if (nss[i].dev == pst.st_dev && nss[i].ino == pst.st_ino)
			b = i;
	nss = xrealloc(nss, (nr_nss + 1) * sizeof(*nss));
	base = b == SIZE_MAX ? NULL : &nss[b];
	cur = &nss[nr_nss++];
	*cur = (struct mntns){.nsid = nsid, .pid = pid, .dev = st.st_dev, .ino = st.st_ino};
	if (mntns_check_task(pid))
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/mountinfo", pid);
	if (read_mountinfo(path, &cur->task))
		return -1;
	if (base) {
		/* its mounts as they are when this one is made from it: the
		 * proc of a PID namespace comes later */
		cur->base = base->nsid;
		cur->own.m = xzalloc((base->task.nr + 1) * sizeof(*cur->own.m));
		for (size_t i = 0; i < base->task.nr; i++)
			if (!base->task.m[i].pidns_proc) {
				cur->own.m[cur->own.nr] = base->task.m[i];
				cur->own.m[cur->own.nr++].matched = false;
			}
	} else if (read_mountinfo("/proc/self/mountinfo", &cur->own)) {
		return -1;
	}
	if (find_pidns_procs())
		return -1;
	/* the same mounts, then the same but for their flags */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < cur->task.nr; i++) {
			struct mnt *t = &cur->task.m[i];

			for (size_t j = 0; j < cur->own.nr && !t->matched && !t->pidns_proc; j++) {
				struct mnt *o = &cur->own.m[j];

				if (!o->matched && shows_same(t, o, pass == 0)) {
					t->matched = o->matched = true;
					t->remount = pass == 1 &&
						     mount_flags(t->opts) != mount_flags(o->opts);
				}
			}
		}
	for (size_t i = 0; i < cur->task.nr; i++) {
		struct mnt *t = &cur->task.m[i];

		for (size_t j = 0; t->pidns_proc && j < cur->own.nr && !t->replaces; j++) {
			struct mnt *o = &cur->own.m[j];

			if (!o->matched && !strcmp(o->fstype, "proc") && !strcmp(o->mp, t->mp))
				o->matched = t->replaces = true;
		}
	}
	for (size_t i = 0; i < cur->task.nr; i++) {
		struct mnt *t = &cur->task.m[i];

		if (!strcmp(t->mp, "/") && !by_id(&cur->task, t->parent) && !t->matched) {
			pr_err("task %d's mount namespace has a root of its own (%s from %s): "
			       "not supported",
			       pid, t->fstype, t->source);
			return -1;
		}
		if (t->remount)
			nr_remount++;
		if (!added(t))
			continue;
		if (!t->pidns_proc && classify(t))
			return -1;
		nr_added++;
	}
	for (size_t j = 0; j < cur->own.nr; j++)
		nr_removed += !cur->own.m[j].matched;
	pr_info("task %d's mount namespace: %zu mounts added, %zu removed, %zu remounted", pid,
		nr_added, nr_removed, nr_remount);
	return 0;
}

/* ---- the files of a tmpfs ---- */

struct walk {
	struct img_writer *w;
	const struct mnt *m;
	dev_t dev;
	char *buf;
	uint32_t *next_id;
	size_t nr_files;
	struct {
		ino_t ino;
		char *path;
	} * links;
	size_t nr_links;
};

static uint64_t ts_ns(const struct timespec *ts)
{
	return ts->tv_sec * 1000000000ull + ts->tv_nsec;
}

static const char *hard_link(struct walk *wk, const struct stat *st, const char *rel)
{
	if (S_ISDIR(st->st_mode) || st->st_nlink < 2)
		return NULL;
	for (size_t i = 0; i < wk->nr_links; i++)
		if (wk->links[i].ino == st->st_ino)
			return wk->links[i].path;
	wk->links = xrealloc(wk->links, (wk->nr_links + 1) * sizeof(*wk->links));
	wk->links[wk->nr_links].ino = st->st_ino;
	wk->links[wk->nr_links++].path = xstrdup(rel);
	return NULL;
}

static int walk_dir(struct walk *wk, int dfd, const char *rel);

/* One entry name of directory dfd (rel: its path in the mount, "" for
 * the root itself, then dfd is the root and name "."). */
static int walk_entry(struct walk *wk, int dfd, const char *name, const char *rel)
{
	Stasis__MntFile mf = STASIS__MNT_FILE__INIT;
	char target[PATH_MAX], what[PATH_MAX * 2];
	struct stat st;
	const char *link;
	int fd = -1, ret = 0;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW)) {
		pr_perror("tmpfs %s: cannot read %s", wk->m->mp, rel);
		return -1;
	}
	mf.id = ++*wk->next_id;
	mf.ns = cur->nsid;
	mf.mount = wk->m->id;
	mf.path = (char *)rel;
	mf.mode = st.st_mode;
	mf.uid = st.st_uid;
	mf.gid = st.st_gid;
	mf.atime_ns = ts_ns(&st.st_atim);
	mf.mtime_ns = ts_ns(&st.st_mtim);
	if (st.st_dev != wk->dev) {
		/* the mount point of another mount: what is under it is hidden */
		mf.mode = (st.st_mode & S_IFMT) | (S_ISDIR(st.st_mode) ? 0755 : 0644);
		mf.uid = mf.gid = 0;
		if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
			mf.mode = S_IFREG | 0644;
		wk->nr_files++;
		return imgw_record(wk->w, "mnt-files", &mf.base);
	}
	if ((link = hard_link(wk, &st, rel))) {
		mf.link = (char *)link;
		wk->nr_files++;
		return imgw_record(wk->w, "mnt-files", &mf.base);
	}
	switch (st.st_mode & S_IFMT) {
	case S_IFLNK: {
		ssize_t n = readlinkat(dfd, name, target, sizeof(target) - 1);

		if (n < 0) {
			pr_perror("tmpfs %s: cannot read the symlink %s", wk->m->mp, rel);
			return -1;
		}
		target[n] = 0;
		mf.symlink = target;
		break;
	}
	case S_IFCHR:
	case S_IFBLK:
		mf.has_rdev = true;
		mf.rdev = st.st_rdev;
		break;
	case S_IFREG:
		mf.has_size = true;
		mf.size = st.st_size;
		break;
	case S_IFSOCK:
		/* made again by the bind of the socket it names, if any */
		return 0;
	default:
		break;
	}
	wk->nr_files++;
	if (imgw_record(wk->w, "mnt-files", &mf.base))
		return -1;
	if (S_ISREG(st.st_mode) && st.st_size) {
		fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOATIME);
		if (fd < 0)
			fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			pr_perror("tmpfs %s: cannot open %s", wk->m->mp, rel);
			return -1;
		}
		snprintf(what, sizeof(what), "%s/%s", wk->m->mp, rel);
		ret = file_data_write(wk->w, "mnt-data", mf.id, fd, st.st_size, what, wk->buf);
		close(fd);
	} else if (S_ISDIR(st.st_mode)) {
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			pr_perror("tmpfs %s: cannot open the directory %s", wk->m->mp, rel);
			return -1;
		}
		ret = walk_dir(wk, fd, rel);
		close(fd);
	}
	return ret;
}

static int walk_dir(struct walk *wk, int dfd, const char *rel)
{
	DIR *d = fdopendir(fcntl(dfd, F_DUPFD_CLOEXEC, 0));
	struct dirent *de;
	int ret = 0;

	if (!d) {
		pr_perror("tmpfs %s: cannot list %s", wk->m->mp, *rel ? rel : "/");
		return -1;
	}
	while (!ret && (errno = 0, de = readdir(d))) {
		char *sub;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		sub = *rel ? xasprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
		ret = walk_entry(wk, dirfd(d), de->d_name, sub);
		free(sub);
	}
	if (!ret && errno) {
		pr_perror("tmpfs %s: cannot list %s", wk->m->mp, *rel ? rel : "/");
		ret = -1;
	}
	closedir(d);
	return ret;
}

static int tmpfs_files(struct img_writer *w, const struct mnt *m, char *buf, uint32_t *next_id,
		       size_t *nr_files)
{
	struct walk wk = {.w = w, .m = m, .buf = buf, .next_id = next_id};
	char *path = xasprintf("/proc/%d/root%s", cur->pid, m->mp);
	struct stat st;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), ret = -1;

	if (fd < 0 || fstat(fd, &st)) {
		pr_perror("cannot open tmpfs %s of task %d", m->mp, cur->pid);
		goto out;
	}
	if (major(st.st_dev) != m->major || minor(st.st_dev) != m->minor) {
		pr_err("tmpfs %s of task %d is not what its path leads to", m->mp, cur->pid);
		goto out;
	}
	wk.dev = st.st_dev;
	ret = walk_entry(&wk, fd, ".", "");
	*nr_files += wk.nr_files;
out:
	for (size_t i = 0; i < wk.nr_links; i++)
		free(wk.links[i].path);
	free(wk.links);
	if (fd >= 0)
		close(fd);
	free(path);
	return ret;
}

/* Parents before children, and a bind after the mount it binds from. */
static bool ready_to_list(const struct mnt *t, const bool *listed)
{
	struct mnt_table *task = &cur->task;
	const struct mnt *p = by_id(task, t->parent);

	if (p && added(p) && !listed[p - task->m])
		return false;
	return !t->bind_of || listed[t->bind_of - task->m];
}

static size_t depth(struct mnt_table *t, const struct mnt *m)
{
	size_t d = 0;

	for (const struct mnt *p = by_id(t, m->parent); p && d < t->nr; p = by_id(t, p->parent))
		d++;
	return d;
}

int mntns_collect(uint32_t nsid, Stasis__NsEntry *e, struct img_writer *w)
{
	struct mnt_table *task = NULL, *own = NULL;
	bool *listed = NULL;
	size_t nr_files = 0, nr_added = 0, left = 0;
	static uint32_t next_id; /* file ids, unique in the checkpoint */
	char *buf = NULL;
	int ret = -1;

	cur = NULL;
	for (size_t i = 0; i < nr_nss; i++)
		if (nss[i].nsid == nsid)
			cur = &nss[i];
	if (!cur) {
		pr_err("mount namespace %u was not checked", nsid);
		goto out;
	}
	task = &cur->task;
	own = &cur->own;
	if (cur->base) {
		e->has_mnt_base = true;
		e->mnt_base = cur->base;
	}
	listed = xzalloc(task->nr + 1);
	e->mounts = xzalloc((task->nr + 1) * sizeof(*e->mounts));
	for (size_t i = 0; i < task->nr; i++)
		left += added(&task->m[i]) || task->m[i].remount;
	while (left) {
		size_t before = left;

		for (size_t i = 0; i < task->nr; i++) {
			struct mnt *t = &task->m[i];
			struct mnt *p = by_id(task, t->parent);
			Stasis__MntEntry *me;

			if (listed[i] || !(added(t) || t->remount) || !ready_to_list(t, listed))
				continue;
			listed[i] = true;
			left--;
			me = xzalloc(sizeof(*me));
			stasis__mnt_entry__init(me);
			me->id = t->id;
			me->parent_id = p && added(p) ? p->id : 0;
			me->mountpoint = t->mp;
			me->fstype = t->fstype;
			me->source = t->source;
			me->root = t->root;
			me->flags = mount_flags(t->opts);
			me->options = fs_options(t->super);
			me->has_shared = me->has_unbindable = true;
			me->shared = t->shared;
			me->has_slave = me->slave = t->master != 0;
			me->unbindable = t->unbindable;
			me->has_remount = t->remount;
			me->remount = t->remount;
			if (t->bind_path)
				me->bind_path = t->bind_path;
			if (t->bind_of) {
				me->has_bind_mount = true;
				me->bind_mount = t->bind_of->id;
			}
			me->has_has_files = me->has_files = is_tmpfs_with_files(t);
			me->has_pidns_proc = me->pidns_proc = t->pidns_proc;
			me->has_replaces_ours = me->replaces_ours = t->replaces;
			e->mounts[e->n_mounts++] = me;
			nr_added += added(t);
		}
		if (left == before) {
			pr_err("the mounts of task %d's mount namespace form a loop", cur->pid);
			goto out;
		}
	}
	/* unmounted there: the deepest first, so that a stack comes off whole */
	e->umounts = xzalloc((own->nr + 1) * sizeof(*e->umounts));
	for (size_t d = own->nr + 1; d-- > 0;)
		for (size_t j = 0; j < own->nr; j++)
			if (!own->m[j].matched && depth(own, &own->m[j]) == d)
				e->umounts[e->n_umounts++] = own->m[j].mp;
	for (size_t i = 0; i < e->n_mounts; i++) {
		if (!e->mounts[i]->has_files)
			continue;
		if (!buf)
			buf = xmalloc(DATA_CHUNK_MAX);
		if (tmpfs_files(w, by_id(task, e->mounts[i]->id), buf, &next_id, &nr_files))
			goto out;
	}
	pr_info("mount namespace %u: %zu mounts added, %zu removed, %zu files", nsid, nr_added,
		e->n_umounts, nr_files);
	ret = 0;
out:
	free(buf);
	free(listed);
	return ret;
}

/* ---- the tree's paths ---- */

const char *mntns_path(pid_t pid, const char *path, char *buf, size_t size)
{
	if (path[0] != '/' || !ns_mnt_id(pid))
		return path;
	snprintf(buf, size, "/proc/%d/root%s", pid, path);
	return buf;
}
