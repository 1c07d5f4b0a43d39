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
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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

/* A bind of a member of a peer group is in that group already: a slave
 * leaves it for its own, shared again if it is in a group of its own too. */
static int set_propagation(const Stasis__MntEntry *m)
{
	if (m->slave && mount(NULL, m->mountpoint, NULL, MS_SLAVE, NULL)) {
		pr_perror("cannot make mount %s a slave", m->mountpoint);
		return -1;
	}
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

	if (m->pidns_proc)
		return 0; /* the tree's init mounts it (mntns_mount_procs) */
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
		/* its own flags, whatever the source's */
		else if (mount(NULL, m->mountpoint, NULL, MS_REMOUNT | MS_BIND | flags, NULL))
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

/*
 * Every name is made and changed beneath the tmpfs's root, none followed
 * through a symlink or out of the mount: a checkpoint whose files name
 * "link/x" after a symlink "link" to /etc changes nothing outside.
 */
#define BENEATH (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)

struct mfile {
	Stasis__MntFile *mf;
	const char *base; /* its last component, in path ("" : the root) */
	int dir;	  /* its directory, opened beneath the root for a while */
};

static int open_beneath(int root, const char *rel, uint64_t flags)
{
	struct open_how how = {.flags = flags | O_CLOEXEC | O_NOFOLLOW, .resolve = BENEATH};

	return syscall(SYS_openat2, root, rel, &how, sizeof(how));
}

/* A relative name of plain components: no "", ".", ".." nor leading '/'. */
static bool plain_path(const char *p)
{
	if (!*p || *p == '/')
		return false;
	for (const char *c = p; c; c = strchr(c, '/') ? strchr(c, '/') + 1 : NULL) {
		size_t n = strcspn(c, "/");

		if (!n || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
	}
	return true;
}

/* f's directory beneath root, and its last name. */
static int open_dir(int root, struct mfile *f)
{
	const char *path = f->mf->path, *slash = strrchr(path, '/');
	char *dir;

	if (!slash) {
		f->base = path;
		f->dir = fcntl(root, F_DUPFD_CLOEXEC, 0);
		return f->dir;
	}
	f->base = slash + 1;
	dir = xstrdup(path);
	dir[slash - path] = 0;
	f->dir = open_beneath(root, dir, O_PATH | O_DIRECTORY);
	free(dir);
	return f->dir;
}

static void close_dir(struct mfile *f)
{
	if (f->dir >= 0)
		close(f->dir);
	f->dir = -1;
}

static int make_node(const Stasis__MntEntry *m, int root, struct mfile *f)
{
	Stasis__MntFile *mf = f->mf;
	mode_t perm = mf->mode & 07777;
	int fd;

	if (mf->link) {
		struct mfile old = {.mf = &(Stasis__MntFile){.path = mf->link}, .dir = -1};
		int r =
		    open_dir(root, &old) < 0 ? -1 : linkat(old.dir, old.base, f->dir, f->base, 0);

		if (r)
			pr_perror("tmpfs %s: cannot link %s to %s", m->mountpoint, mf->path,
				  mf->link);
		if (old.dir >= 0)
			close(old.dir);
		return r;
	}
	switch (mf->mode & S_IFMT) {
	case S_IFDIR:
		if (mkdirat(f->dir, f->base, 0700))
			break;
		return 0;
	case S_IFREG:
		fd = openat(f->dir, f->base, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW,
			    0600);
		if (fd < 0)
			break;
		if (mf->has_size && ftruncate(fd, mf->size)) {
			close(fd);
			break;
		}
		close(fd);
		return 0;
	case S_IFLNK:
		if (!mf->symlink || symlinkat(mf->symlink, f->dir, f->base))
			break;
		return 0;
	case S_IFIFO:
	case S_IFCHR:
	case S_IFBLK:
		if (mknodat(f->dir, f->base, (mf->mode & S_IFMT) | perm,
			    mf->has_rdev ? mf->rdev : 0))
			break;
		return 0;
	default:
		pr_err("tmpfs %s: %s has a file type (%#o) stasis cannot make", m->mountpoint,
		       mf->path, mf->mode & S_IFMT);
		return -1;
	}
	pr_perror("tmpfs %s: cannot make %s (mode %#o) again", m->mountpoint, mf->path, mf->mode);
	return -1;
}

static int make_file(const Stasis__NsEntry *e, const Stasis__MntEntry *m, int root, struct mfile *f)
{
	Stasis__MntFile *mf = f->mf;
	int r;

	if (!*mf->path)
		return 0; /* the root: attributes only */
	if (!plain_path(mf->path) || (mf->link && !plain_path(mf->link))) {
		pr_err("mount namespace %u: file %u (%s) of %s is malformed in the checkpoint",
		       e->id, mf->id, mf->path, m->mountpoint);
		return -1;
	}
	if (open_dir(root, f) < 0) {
		pr_perror("tmpfs %s: cannot open the directory of %s", m->mountpoint, mf->path);
		return -1;
	}
	r = make_node(m, root, f);
	close_dir(f);
	return r;
}

static int fill_data(const Stasis__MntEntry *m, int root, struct mfile *files, size_t nr)
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
			/* another tmpfs's */
		} else if (!S_ISREG(f->mf->mode) || f->mf->link || !f->mf->has_size ||
			   c->offset > f->mf->size || c->data.len > f->mf->size - c->offset) {
			pr_err("tmpfs %s: data beyond the size of %s in the checkpoint",
			       m->mountpoint, f->mf->path);
			ret = -1;
		} else {
			if (f != open_f) {
				if (fd >= 0)
					close(fd);
				fd = open_beneath(root, f->mf->path, O_WRONLY);
				open_f = f;
			}
			if (fd < 0 || pwrite(fd, c->data.data, c->data.len, c->offset) !=
					  (ssize_t)c->data.len) {
				pr_perror("tmpfs %s: cannot write %s", m->mountpoint, f->mf->path);
				ret = -1;
			}
		}
		protobuf_c_message_free_unpacked(&c->base, NULL);
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

static int set_attr(const Stasis__MntEntry *m, int root, struct mfile *f)
{
	Stasis__MntFile *mf = f->mf;
	struct timespec ts[2] = {
	    {mf->atime_ns / 1000000000, mf->atime_ns % 1000000000},
	    {mf->mtime_ns / 1000000000, mf->mtime_ns % 1000000000},
	};
	char self[64];
	int fd, ret = -1;

	if (mf->link)
		return 0;
	if (!*mf->path) {
		f->base = ".";
		f->dir = fcntl(root, F_DUPFD_CLOEXEC, 0);
	} else {
		open_dir(root, f);
	}
	if (f->dir < 0) {
		pr_perror("tmpfs %s: cannot open the directory of %s", m->mountpoint, mf->path);
		return -1;
	}
	/* chown first: it clears set-user-ID bits that chmod then sets */
	if (fchownat(f->dir, f->base, mf->uid, mf->gid, AT_SYMLINK_NOFOLLOW)) {
		pr_perror("tmpfs %s: cannot give %s its owner %u:%u", m->mountpoint, mf->path,
			  mf->uid, mf->gid);
		goto out;
	}
	/* a symlink has no mode of its own; the others by an O_PATH descriptor
	 * of the file itself, no name followed */
	if (!S_ISLNK(mf->mode)) {
		fd = openat(f->dir, f->base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
		if (fd < 0 || chmod(self, mf->mode & 07777)) {
			pr_perror("tmpfs %s: cannot set the mode of %s", m->mountpoint, mf->path);
			if (fd >= 0)
				close(fd);
			goto out;
		}
		close(fd);
	}
	if (utimensat(f->dir, f->base, ts, AT_SYMLINK_NOFOLLOW))
		pr_warn("tmpfs %s: cannot set the times of %s: %s", m->mountpoint, mf->path,
			strerror(errno));
	ret = 0;
out:
	close_dir(f);
	return ret;
}

/* Owner, mode, times: the deepest first, so that filling a directory
 * does not change its times again. */
static int set_attrs(const Stasis__MntEntry *m, int root, struct mfile *files, size_t nr)
{
	for (size_t i = nr; i-- > 0;) {
		int ret = set_attr(m, root, &files[i]);

		if (ret)
			return ret;
	}
	return 0;
}

/* The files of tmpfs m, mounted just now (before the mounts under it). */
static int fill_files(const Stasis__NsEntry *e, const Stasis__MntEntry *m, size_t *nr_made)
{
	unsigned n = records_count("mnt-files");
	struct mfile *files = xzalloc((n + 1) * sizeof(*files));
	int root = open(m->mountpoint, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	size_t nr = 0;
	int ret = -1;

	if (root < 0) {
		pr_perror("cannot open tmpfs %s", m->mountpoint);
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		Stasis__MntFile *mf = records_get("mnt-files", i, &stasis__mnt_file__descriptor);

		if (!mf)
			goto out;
		if (mf->ns != e->id || mf->mount != m->id) {
			protobuf_c_message_free_unpacked(&mf->base, NULL);
			continue;
		}
		files[nr].mf = mf;
		files[nr].dir = -1;
		if (make_file(e, m, root, &files[nr++]))
			goto out;
	}
	if (fill_data(m, root, files, nr) || set_attrs(m, root, files, nr))
		goto out;
	*nr_made += nr;
	ret = 0;
out:
	for (size_t i = 0; i < nr; i++)
		protobuf_c_message_free_unpacked(&files[i].mf->base, NULL);
	free(files);
	if (root >= 0)
		close(root);
	return ret;
}

/* In the holder, just after unshare(CLONE_NEWNS). */
int mntns_fill(const Stasis__NsEntry *e)
{
	size_t nr_removed = 0, nr_files = 0, nr_added = 0;

	/* a copy of ours still shares propagation with it: cut it first (a
	 * copy of another of the tree's keeps what that one shares) */
	if (!e->mnt_base && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
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

/*
 * A proc of the tree's PID namespace, mounted by t, the first task of the
 * tree in its mount namespace (a mount takes the PID namespace of the task
 * that makes it), over the one of ours there where it had replaced it:
 * once the files are open, since stasis-inject reads /proc in there.
 */
int mntns_mount_procs(struct itree *tr, struct itask *t)
{
	const Stasis__NsEntry *e;

	if (!t->pe->mnt_ns || ns_joined(STASIS__NS_KIND__NS_MNT, t->pe->mnt_ns) ||
	    !(e = ns_entry(t->pe->mnt_ns)))
		return 0;
	/* by the first task in it */
	for (struct itask *o = tr->tasks; o < t; o++)
		if (task_alive(o) && o->pe->mnt_ns == t->pe->mnt_ns)
			return 0;
	for (size_t i = 0; i < e->n_mounts; i++) {
		const Stasis__MntEntry *m = e->mounts[i];
		size_t mp_len = strlen(m->mountpoint) + 1;
		const char *data = m->options && *m->options ? m->options : NULL;
		unsigned long mp, type, opts = 0;
		long r;

		if (!m->pidns_proc)
			continue;
		mp = scratch_put(t, 0, m->mountpoint, mp_len);
		type = scratch_put(t, mp_len, "proc", 5);
		if (data)
			opts = scratch_put(t, mp_len + 5, data, strlen(data) + 1);
		if (!mp || !type || (data && !opts)) {
			pr_err("task %d: no room for the mount of %s", t->pid, m->mountpoint);
			return -1;
		}
		r = m->replaces_ours ? ISYS(t, SYS_umount2, mp, MNT_DETACH) : 0;
		if (r && r != -EINVAL && r != -ENOENT) {
			pr_err("task %d: cannot unmount the /proc of ours at %s: %s", t->pid,
			       m->mountpoint, strerror(-r));
			return -1;
		}
		r = ISYS(t, SYS_mount, type, mp, type, m->flags & MOUNT_ATTRS, opts);
		if (r) {
			pr_err("task %d: cannot mount the /proc of its PID namespace at %s: %s",
			       t->pid, m->mountpoint, strerror(-r));
			return -1;
		}
		pr_info("mount namespace %u: the /proc of the tree's PID namespace mounted at %s",
			e->id, m->mountpoint);
	}
	return 0;
}
