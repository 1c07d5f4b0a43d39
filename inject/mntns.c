// SPDX-License-Identifier: GPL-2.0
/*
 * Mount namespaces (collect/mntns.c): made by their holder (inject/ns.c)
 * from a private copy of ours, the recorded difference applied: the
 * mounts the tree's namespace lacked are detached, the ones whose flags
 * changed remounted, the ones it added mounted (binds from our paths or
 * from its own new mounts, new file systems with their options, a tmpfs
 * filled with its files), parents first, each with its propagation. What
 * the holder does stays in the new namespace: nothing shows in ours.
 */
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

#include "inject.h"
#include "stasis/log.h"
#include "stasis/util.h"

#define MOUNT_ATTRS                                                                                \
	(MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME | \
	 MS_STRICTATIME | 256 /* MS_NOSYMFOLLOW */)

static const Stasis__MntEntry *find_mount(const Stasis__NsEntry *e, uint32_t id)
{
	for (size_t i = 0; i < e->n_mounts; i++)
		if (e->mounts[i]->id == id)
			return e->mounts[i];
	return NULL;
}

/* path under mount point mp ("" : mp itself) */
static char *join(const char *mp, const char *path)
{
	if (!*path || !strcmp(path, "/"))
		return xstrdup(mp);
	return xasprintf("%s%s%s", strcmp(mp, "/") ? mp : "", *path == '/' ? "" : "/", path);
}

/* The mount point, made (with its parents) if the base lacks it. */
static int make_mountpoint(const char *mp, bool file)
{
	char *copy;
	struct stat st;

	if (!stat(mp, &st))
		return 0;
	copy = xstrdup(mp);
	for (char *s = copy + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(copy, 0755) && errno != EEXIST) {
			pr_perror("cannot make %s for mount point %s", copy, mp);
			free(copy);
			return -1;
		}
		*s = '/';
	}
	free(copy);
	pr_warn("mount point %s was missing here: made", mp);
	if (file) {
		int fd = open(mp, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);

		if (fd < 0) {
			pr_perror("cannot make the mount point %s", mp);
			return -1;
		}
		close(fd);
		return 0;
	}
	if (mkdir(mp, 0755) && errno != EEXIST) {
		pr_perror("cannot make the mount point %s", mp);
		return -1;
	}
	return 0;
}

static int set_propagation(const Stasis__MntEntry *m)
{
	if (m->shared && mount(NULL, m->mountpoint, NULL, MS_SHARED, NULL)) {
		pr_perror("cannot make mount %s shared", m->mountpoint);
		return -1;
	}
	if (m->unbindable && mount(NULL, m->mountpoint, NULL, MS_UNBINDABLE, NULL)) {
		pr_perror("cannot make mount %s unbindable", m->mountpoint);
		return -1;
	}
	return 0;
}

static int make_mount(const Stasis__NsEntry *e, const Stasis__MntEntry *m)
{
	unsigned long flags = m->flags & MOUNT_ATTRS;
	const char *data = m->options && *m->options ? m->options : NULL;

	if (m->remount) {
		if (mount(NULL, m->mountpoint, NULL, MS_REMOUNT | MS_BIND | flags, NULL)) {
			pr_perror("cannot remount %s with flags %#lx", m->mountpoint, flags);
			return -1;
		}
		return 0;
	}
	if (m->bind_path) {
		const Stasis__MntEntry *from = NULL;
		struct stat st;
		char *src;
		int ret = -1;

		if (m->has_bind_mount && m->bind_mount && !(from = find_mount(e, m->bind_mount))) {
			pr_err("mount %s binds from mount %u, which the checkpoint lacks",
			       m->mountpoint, m->bind_mount);
			return -1;
		}
		src = from ? join(from->mountpoint, m->bind_path) : xstrdup(m->bind_path);
		if (stat(src, &st))
			pr_perror("mount %s: cannot find %s to bind", m->mountpoint, src);
		else if (make_mountpoint(m->mountpoint, !S_ISDIR(st.st_mode)))
			;
		else if (mount(src, m->mountpoint, NULL, MS_BIND, NULL))
			pr_perror("cannot bind %s at %s", src, m->mountpoint);
		else if ((flags & ~(MS_RELATIME | MS_STRICTATIME)) &&
			 mount(NULL, m->mountpoint, NULL, MS_REMOUNT | MS_BIND | flags, NULL))
			pr_perror("cannot give the bind mount %s flags %#lx", m->mountpoint, flags);
		else
			ret = 0;
		free(src);
		return ret ? ret : set_propagation(m);
	}
	if (make_mountpoint(m->mountpoint, false))
		return -1;
	if (mount(m->source, m->mountpoint, m->fstype, flags, data)) {
		pr_perror("cannot mount %s (%s from %s, options \"%s\") again", m->mountpoint,
			  m->fstype, m->source, data ? data : "");
		return -1;
	}
	return set_propagation(m);
}

/* ---- a tmpfs's files ---- */

struct mfile {
	Stasis__MntFile *mf;
	char *path;
};

static int make_file(const Stasis__NsEntry *e, struct mfile *f)
{
	Stasis__MntFile *mf = f->mf;
	const Stasis__MntEntry *m = find_mount(e, mf->mount);
	mode_t perm = mf->mode & 07777;
	int fd;

	if (!m || !m->has_files || strstr(mf->path, "..")) {
		pr_err("mount namespace %u: file %u (%s) is malformed in the checkpoint", e->id,
		       mf->id, mf->path);
		return -1;
	}
	f->path = join(m->mountpoint, mf->path);
	if (!*mf->path)
		return 0; /* the root: attributes only */
	if (mf->link) {
		char *old = join(m->mountpoint, mf->link);
		int r = link(old, f->path);

		if (r)
			pr_perror("cannot link %s to %s", f->path, old);
		free(old);
		return r;
	}
	switch (mf->mode & S_IFMT) {
	case S_IFDIR:
		/* a mount point under it may already be there */
		if (mkdir(f->path, 0700) && errno != EEXIST)
			break;
		return 0;
	case S_IFREG:
		fd = open(f->path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			break;
		if (mf->has_size && ftruncate(fd, mf->size)) {
			close(fd);
			break;
		}
		close(fd);
		return 0;
	case S_IFLNK:
		if (!mf->symlink || symlink(mf->symlink, f->path))
			break;
		return 0;
	case S_IFIFO:
	case S_IFCHR:
	case S_IFBLK:
		if (mknod(f->path, (mf->mode & S_IFMT) | perm, mf->has_rdev ? mf->rdev : 0))
			break;
		return 0;
	default:
		pr_err("mount namespace %u: %s has a file type (%#o) stasis cannot make", e->id,
		       f->path, mf->mode & S_IFMT);
		return -1;
	}
	pr_perror("cannot make %s (mode %#o) again", f->path, mf->mode);
	return -1;
}

static int fill_data(const Stasis__NsEntry *e, struct mfile *files, size_t nr)
{
	unsigned n = records_count("mnt-data");
	struct mfile *open_f = NULL;
	int fd = -1, ret = 0;

	for (unsigned i = 0; i < n && !ret; i++) {
		Stasis__DataChunk *c = records_get("mnt-data", i, &stasis__data_chunk__descriptor);
		struct mfile *f = NULL;

		if (!c)
			return -1;
		for (size_t j = 0; j < nr && !f; j++)
			if (files[j].mf->id == c->id)
				f = &files[j];
		if (!f) {
			/* another namespace's */
		} else if (!S_ISREG(f->mf->mode) || f->mf->link || !f->mf->has_size ||
			   c->offset > f->mf->size || c->data.len > f->mf->size - c->offset) {
			pr_err("mount namespace %u: data beyond the size of %s in the checkpoint",
			       e->id, f->path);
			ret = -1;
		} else {
			if (f != open_f) {
				if (fd >= 0)
					close(fd);
				fd = open(f->path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
				open_f = f;
			}
			if (fd < 0 || pwrite(fd, c->data.data, c->data.len, c->offset) !=
					  (ssize_t)c->data.len) {
				pr_perror("cannot write %s", f->path);
				ret = -1;
			}
		}
		protobuf_c_message_free_unpacked(&c->base, NULL);
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

/* Owner, mode, times: the deepest first, so that filling a directory
 * does not change its times again. */
static int set_attrs(struct mfile *files, size_t nr)
{
	for (size_t i = nr; i-- > 0;) {
		Stasis__MntFile *mf = files[i].mf;
		struct timespec ts[2] = {
		    {mf->atime_ns / 1000000000, mf->atime_ns % 1000000000},
		    {mf->mtime_ns / 1000000000, mf->mtime_ns % 1000000000},
		};

		if (mf->link)
			continue;
		/* chown first: it clears set-user-ID bits that chmod then sets */
		if (lchown(files[i].path, mf->uid, mf->gid)) {
			pr_perror("cannot give %s its owner %u:%u", files[i].path, mf->uid,
				  mf->gid);
			return -1;
		}
		if (!S_ISLNK(mf->mode) && chmod(files[i].path, mf->mode & 07777)) {
			pr_perror("cannot set the mode of %s", files[i].path);
			return -1;
		}
		if (utimensat(AT_FDCWD, files[i].path, ts, AT_SYMLINK_NOFOLLOW))
			pr_warn("cannot set the times of %s: %s", files[i].path, strerror(errno));
	}
	return 0;
}

/* The files of tmpfs m, mounted just now (before the mounts under it). */
static int fill_files(const Stasis__NsEntry *e, const Stasis__MntEntry *m, size_t *nr_made)
{
	unsigned n = records_count("mnt-files");
	struct mfile *files = xzalloc((n + 1) * sizeof(*files));
	size_t nr = 0;
	int ret = -1;

	for (unsigned i = 0; i < n; i++) {
		Stasis__MntFile *mf = records_get("mnt-files", i, &stasis__mnt_file__descriptor);

		if (!mf)
			goto out;
		if (mf->ns != e->id || mf->mount != m->id) {
			protobuf_c_message_free_unpacked(&mf->base, NULL);
			continue;
		}
		files[nr].mf = mf;
		if (make_file(e, &files[nr++]))
			goto out;
	}
	if (fill_data(e, files, nr) || set_attrs(files, nr))
		goto out;
	*nr_made += nr;
	ret = 0;
out:
	for (size_t i = 0; i < nr; i++) {
		protobuf_c_message_free_unpacked(&files[i].mf->base, NULL);
		free(files[i].path);
	}
	free(files);
	return ret;
}

/* In the holder, just after unshare(CLONE_NEWNS). */
int mntns_fill(const Stasis__NsEntry *e)
{
	size_t nr_removed = 0, nr_files = 0, nr_added = 0;

	/* a copy of ours still shares propagation with it: cut it first */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
		pr_perror("mount namespace %u: cannot make its mounts private", e->id);
		return -1;
	}
	for (size_t i = 0; i < e->n_umounts; i++) {
		if (!umount2(e->umounts[i], MNT_DETACH)) {
			nr_removed++;
			continue;
		}
		if (errno != EINVAL && errno != ENOENT) {
			pr_perror("mount namespace %u: cannot unmount %s", e->id, e->umounts[i]);
			return -1;
		}
		pr_debug("mount namespace %u: %s was not mounted here", e->id, e->umounts[i]);
	}
	for (size_t i = 0; i < e->n_mounts; i++) {
		const Stasis__MntEntry *m = e->mounts[i];

		if (m->parent_id && !find_mount(e, m->parent_id)) {
			pr_err("mount namespace %u: mount %s has a parent the checkpoint lacks",
			       e->id, m->mountpoint);
			return -1;
		}
		if (make_mount(e, m) || (m->has_files && fill_files(e, m, &nr_files)))
			return -1;
		nr_added += !m->remount;
		pr_debug("mount namespace %u: %s %s (%s from %s)", e->id,
			 m->remount ? "remounted" : "mounted", m->mountpoint, m->fstype, m->source);
	}
	pr_info("mount namespace %u made: %zu mounts added, %zu removed, %zu files", e->id,
		nr_added, nr_removed, nr_files);
	return 0;
}
