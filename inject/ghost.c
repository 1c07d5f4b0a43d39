// SPDX-License-Identifier: GPL-2.0
/*
 * Deleted files on restore. A ghost is made again the first time a
 * description or a mapping needs it: an O_TMPFILE in its old directory,
 * filled from ghost-data, with its owner, mode and times, so it is never
 * visible. To read as "OLDPATH (deleted)" in /proc, as it did, it takes its
 * old name for an instant when that name is free: linked, opened through
 * the name, unlinked. A link-remapped file is opened through its remap
 * name, which ghost_finish removes once the tree is restored.
 *
 * Removed directories, unlinked FIFOs, device nodes and symlinks are made
 * again by name (in directories made for the moment if theirs are gone
 * too), held and removed at once.
 *
 * stasis-inject holds each one open until the end: a
 * description is a new open of /proc/self/fd/HOLDER with the dumped flags,
 * a mapping a remote open of /proc/INJECT/fd/HOLDER by the task.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "files.h"
#include "stasis/log.h"
#include "stasis/util.h"

struct rghost {
	Stasis__GhostFile *gf;
	int fd;	    /* the holder; -1 until made */
	char *name; /* a symlink: its name, until ghost_drop_names */
	pid_t helper; /* /proc/PID of a process gone: alive until ghost_end_helpers */
};

static struct rghost *ghosts;
static size_t nr_ghosts;
static bool loaded;

static int load(void)
{
	unsigned n = records_count("ghosts");

	if (loaded)
		return 0;
	ghosts = xzalloc((n + 1) * sizeof(*ghosts));
	for (unsigned i = 0; i < n; i++) {
		ghosts[i].gf = records_get("ghosts", i, &stasis__ghost_file__descriptor);
		ghosts[i].fd = -1;
		if (!ghosts[i].gf)
			return -1;
		nr_ghosts++;
	}
	loaded = true;
	return 0;
}

/* The contents, holes left as holes. */
static int fill(int fd, Stasis__GhostFile *gf)
{
	unsigned n = records_count("ghost-data");

	if (ftruncate(fd, gf->size)) {
		pr_perror("cannot size the deleted file %s", gf->path);
		return -1;
	}
	for (unsigned i = 0; i < n; i++) {
		Stasis__DataChunk *c =
		    records_get("ghost-data", i, &stasis__data_chunk__descriptor);
		int ret = 0;

		if (!c)
			return -1;
		if (c->id == gf->id) {
			if (c->offset > gf->size || c->data.len > gf->size - c->offset) {
				pr_err(
				    "the deleted file %s: data beyond its size in the checkpoint",
				    gf->path);
				ret = -1;
			} else if (pwrite(fd, c->data.data, c->data.len, c->offset) !=
				   (ssize_t)c->data.len) {
				pr_perror("cannot write the deleted file %s", gf->path);
				ret = -1;
			}
		}
		protobuf_c_message_free_unpacked(&c->base, NULL);
		if (ret)
			return -1;
	}
	return 0;
}

static int set_attrs(int fd, Stasis__GhostFile *gf)
{
	struct timespec ts[2] = {
	    {gf->atime_ns / 1000000000, gf->atime_ns % 1000000000},
	    {gf->mtime_ns / 1000000000, gf->mtime_ns % 1000000000},
	};

	/* chown first: it clears set-user-ID bits that fchmod then sets */
	if (gf->has_uid && gf->has_gid && fchown(fd, gf->uid, gf->gid))
		pr_warn("cannot give the deleted file %s its owner %u:%u: %s", gf->path, gf->uid,
			gf->gid, strerror(errno));
	if (fchmod(fd, gf->mode & 07777)) {
		pr_perror("cannot set the mode of the deleted file %s", gf->path);
		return -1;
	}
	if (gf->has_atime_ns && gf->has_mtime_ns && futimens(fd, ts))
		pr_warn("cannot set the times of the deleted file %s: %s", gf->path,
			strerror(errno));
	return 0;
}

/* An unnamed file in dir, or failing that one named and unlinked at once. */
static int create_unnamed(const char *dir, const char *path)
{
	char name[PATH_MAX];
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR))
		return fd;
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "%s.stasis-ghost.%d.%d", path, getpid(), i);
		fd = open(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0) {
			unlink(name);
			return fd;
		}
		if (errno != EEXIST)
			break;
	}
	return -1;
}

/*
 * fd again, read-only: a task may make the file its executable, which no
 * one may hold open for writing (descriptions and mappings that write
 * open it again read-write through /proc). Opened through path so that
 * it is named path in /proc, when that name is free.
 */
static int take_old_name(int fd, const char *path, int oflags)
{
	char self[64];
	struct stat a, b;
	int nfd = -1;

	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	if (!linkat(AT_FDCWD, self, AT_FDCWD, path, AT_SYMLINK_FOLLOW)) {
		nfd = open(path, oflags | O_CLOEXEC | O_NOFOLLOW);
		if (nfd >= 0 && (fstat(nfd, &a) || fstat(fd, &b) || a.st_ino != b.st_ino ||
				 a.st_dev != b.st_dev)) {
			/* someone else's file got there first: leave it alone */
			close(nfd);
			nfd = -1;
		} else {
			unlink(path);
		}
	}
	if (nfd < 0)
		nfd = open(self, oflags | O_CLOEXEC);
	if (nfd < 0)
		return fd;
	close(fd);
	return nfd;
}

/*
 * The directories missing on the way to path, made (mode 0700) so that the
 * file can take its old place; *made lists them, deepest last, for
 * remove_parents. A part that exists but is no directory stops the walk.
 */
static int make_parents(const char *path, char ***made, size_t *nr)
{
	char *p = xstrdup(path), *slash = p;
	struct stat st;
	int ret = 0;

	*made = NULL;
	*nr = 0;
	while ((slash = strchr(slash + 1, '/'))) {
		*slash = 0;
		if (stat(p, &st) && errno == ENOENT) {
			if (mkdir(p, 0700)) {
				ret = -1;
				break;
			}
			*made = xrealloc(*made, (*nr + 1) * sizeof(**made));
			(*made)[(*nr)++] = xstrdup(p);
		} else if (!S_ISDIR(st.st_mode)) {
			errno = ENOTDIR;
			ret = -1;
			break;
		}
		*slash = '/';
	}
	free(p);
	return ret;
}

static void remove_parents(char **made, size_t nr)
{
	while (nr--) {
		if (rmdir(made[nr]))
			pr_warn("cannot remove %s, made for a deleted file: %s", made[nr],
				strerror(errno));
		free(made[nr]);
	}
	free(made);
}

/* A free name for a node: the old one, or one next to it. */
static char *free_name(const char *path)
{
	char name[PATH_MAX];
	struct stat st;

	if (lstat(path, &st) && errno == ENOENT)
		return xstrdup(path);
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "%s.stasis-ghost.%d.%d", path, getpid(), i);
		if (lstat(name, &st) && errno == ENOENT)
			return xstrdup(name);
	}
	return NULL;
}

/*
 * A removed directory, an unlinked FIFO, device node or symlink: made
 * again by name with its attributes, held (O_PATH, a directory O_RDONLY)
 * and removed at once.
 */
static int make_node(struct rghost *g)
{
	Stasis__GhostFile *gf = g->gf;
	struct timespec ts[2] = {
	    {gf->atime_ns / 1000000000, gf->atime_ns % 1000000000},
	    {gf->mtime_ns / 1000000000, gf->mtime_ns % 1000000000},
	};
	mode_t type = gf->mode & S_IFMT;
	char *name = free_name(gf->path);
	int fd = -1, r;

	if (!name) {
		pr_err("no free name next to %s for the deleted file", gf->path);
		return -1;
	}
	if (type == S_IFDIR)
		r = mkdir(name, 0700);
	else if (type == S_IFLNK)
		r = gf->symlink ? symlink(gf->symlink, name) : (errno = EINVAL, -1);
	else if (type == S_IFIFO || type == S_IFCHR || type == S_IFBLK)
		r = mknod(name, type | 0600, gf->has_rdev ? gf->rdev : 0);
	else
		r = (errno = EINVAL, -1);
	if (r) {
		pr_perror("cannot make the deleted file %s (mode %o) again", gf->path, gf->mode);
		free(name);
		return -1;
	}
	if (gf->has_uid && gf->has_gid && lchown(name, gf->uid, gf->gid))
		pr_warn("cannot give the deleted file %s its owner %u:%u: %s", gf->path, gf->uid,
			gf->gid, strerror(errno));
	if (type != S_IFLNK && chmod(name, gf->mode & 07777))
		pr_warn("cannot set the mode of the deleted file %s: %s", gf->path,
			strerror(errno));
	if (gf->has_atime_ns && gf->has_mtime_ns &&
	    utimensat(AT_FDCWD, name, ts, AT_SYMLINK_NOFOLLOW))
		pr_warn("cannot set the times of the deleted file %s: %s", gf->path,
			strerror(errno));
	fd = open(name, (type == S_IFDIR ? O_RDONLY | O_DIRECTORY : O_PATH) | O_NOFOLLOW |
				O_CLOEXEC);
	if (fd < 0)
		pr_perror("cannot open the deleted file %s again", gf->path);
	/*
	 * A symlink is only opened by name (O_PATH|O_NOFOLLOW; through /proc
	 * the link would be followed, and the flag lost): every description
	 * is opened by it before ghost_drop_names removes it.
	 */
	if (type == S_IFLNK && fd >= 0) {
		g->name = name;
		return fd;
	}
	if ((type == S_IFDIR ? rmdir(name) : unlink(name)) && fd >= 0) {
		pr_perror("cannot remove %s again", name);
		close(fd);
		fd = -1;
	}
	free(name);
	return fd;
}

static int make(struct rghost *g)
{
	Stasis__GhostFile *gf = g->gf;
	bool reg = S_ISREG(gf->mode);
	char *copy, *dir, **made;
	size_t nr_made;
	int fd;

	if (gf->has_proc_pid) {
		char path[64];

		g->helper = procfs_helper_start(gf->proc_pid);
		if (g->helper < 0)
			return -1;
		snprintf(path, sizeof(path), "/proc/%d", g->helper);
		g->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (g->fd < 0)
			pr_perror("cannot open %s", path);
		return g->fd < 0 ? -1 : 0;
	}
	if (gf->link_remap) {
		fd = open(gf->link_remap, (reg ? O_RDONLY : O_PATH) | O_CLOEXEC);
		if (fd < 0) {
			pr_perror("cannot open %s, the link remap of %s", gf->link_remap, gf->path);
			return -1;
		}
		g->fd = take_old_name(fd, gf->path, reg ? O_RDONLY : O_PATH);
		return 0;
	}
	/* its directory may be gone too: made for the time it takes */
	if (make_parents(gf->path, &made, &nr_made))
		pr_warn("cannot make the directories of the deleted file %s: %s", gf->path,
			strerror(errno));
	if (!reg) {
		g->fd = make_node(g);
		remove_parents(made, nr_made);
		return g->fd < 0 ? -1 : 0;
	}
	copy = xstrdup(gf->path);
	dir = dirname(copy);
	fd = create_unnamed(dir, gf->path);
	if (fd < 0 && (errno == ENOENT || errno == ENOTDIR)) {
		pr_warn("the directory of the deleted file %s is gone; it is made in /tmp",
			gf->path);
		fd = create_unnamed("/tmp", "/tmp/stasis-ghost");
	}
	free(copy);
	if (fd < 0) {
		pr_perror("cannot make the deleted file %s again", gf->path);
		remove_parents(made, nr_made);
		return -1;
	}
	if (fill(fd, gf) || set_attrs(fd, gf)) {
		close(fd);
		remove_parents(made, nr_made);
		return -1;
	}
	g->fd = take_old_name(fd, gf->path, O_RDONLY);
	remove_parents(made, nr_made);
	return 0;
}

/* Its path is in the mount namespace of the task it was found in. */
static uint32_t mnt_ns(const struct rghost *g)
{
	return g->gf->has_mnt_ns ? g->gf->mnt_ns : 0;
}

static int make_in_ns(struct rghost *g)
{
	int ret;

	if (ns_enter(STASIS__NS_KIND__NS_MNT, mnt_ns(g)))
		return -1;
	ret = make(g);
	ns_leave(STASIS__NS_KIND__NS_MNT);
	return ret;
}

static bool matches(const Stasis__GhostFile *gf, uint32_t id, const Stasis__Vma *v, const char *exe)
{
	size_t n = strlen(gf->path);

	if (v)
		return v->has_dev && v->has_ino && gf->dev == v->dev && gf->ino == v->ino;
	if (exe)
		return !strncmp(exe, gf->path, n) && !strcmp(exe + n, " (deleted)");
	return gf->id == id;
}

/* The ghost mapped by v, named exe (PATH (deleted)), or with id. */
static struct rghost *find(uint32_t id, const Stasis__Vma *v, const char *exe)
{
	struct rghost *g = NULL;

	if (load())
		return NULL;
	for (size_t i = 0; i < nr_ghosts && !g; i++)
		if (matches(ghosts[i].gf, id, v, exe))
			g = &ghosts[i];
	if (!g) {
		if (exe)
			pr_err("the deleted executable %s is not in the checkpoint", exe);
		else if (v)
			pr_err("the deleted file %s mapped at %#llx is not in the checkpoint",
			       v->path, (unsigned long long)v->start);
		else
			pr_err("the deleted file %u is not in the checkpoint", id);
		return NULL;
	}
	if (g->fd < 0 && make_in_ns(g))
		return NULL;
	return g;
}

int ghost_reopen(uint32_t id, int flags)
{
	struct rghost *g = find(id, NULL, NULL);
	char path[64];
	int fd;

	if (!g)
		return -1;
	if (g->name) {
		fd = open(g->name, flags | O_NOFOLLOW | O_CLOEXEC);
	} else {
		/* O_NOFOLLOW would stop at the /proc link */
		snprintf(path, sizeof(path), "/proc/self/fd/%d", g->fd);
		fd = open(path, (flags & ~O_NOFOLLOW) | O_CLOEXEC);
	}
	if (fd < 0)
		pr_perror("cannot open the deleted file %s again", g->gf->path);
	return fd;
}

void ghost_drop_names(void)
{
	for (size_t i = 0; i < nr_ghosts; i++) {
		if (!ghosts[i].name)
			continue;
		if (ns_enter(STASIS__NS_KIND__NS_MNT, mnt_ns(&ghosts[i])))
			continue;
		if (unlink(ghosts[i].name))
			pr_warn("cannot remove %s again: %s", ghosts[i].name, strerror(errno));
		ns_leave(STASIS__NS_KIND__NS_MNT);
		free(ghosts[i].name);
		ghosts[i].name = NULL;
	}
}

void ghost_end_helpers(void)
{
	for (size_t i = 0; i < nr_ghosts; i++)
		if (ghosts[i].helper > 0) {
			procfs_helper_end(ghosts[i].helper);
			ghosts[i].helper = 0;
		}
}

int ghost_holder(uint32_t id)
{
	struct rghost *g = find(id, NULL, NULL);

	return g ? g->fd : -1;
}

int ghost_proc_path(uint32_t id, char *buf, size_t len)
{
	struct rghost *g = find(id, NULL, NULL);

	if (!g)
		return -1;
	snprintf(buf, len, "/proc/%d/fd/%d", getpid(), g->fd);
	return 0;
}

int ghost_open(Stasis__FileEntry *fe)
{
	int flags = fe->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_CLOEXEC);

	/* made by O_TMPFILE: a new open of it is an ordinary one */
	if ((flags & O_TMPFILE) == O_TMPFILE)
		flags &= ~O_TMPFILE;
	int fd = ghost_reopen(fe->ghost, flags | O_NOCTTY);

	/* an O_PATH descriptor has no offset */
	if (fd < 0 || !fe->has_pos || (flags & O_PATH))
		return fd;
	if (lseek(fd, fe->pos, SEEK_SET) != (off_t)fe->pos) {
		if (fe->type == STASIS__FD_TYPE__DIR) {
			pr_warn("cannot seek the removed directory %s", fe->path);
			return fd;
		}
		pr_perror("cannot seek the deleted file %s to %llu", fe->path,
			  (unsigned long long)fe->pos);
		close(fd);
		return -1;
	}
	return fd;
}

/* A remote descriptor in t on the ghost g, or -errno. */
static long open_remote(struct itask *t, struct rghost *g, int oflags)
{
	char path[64];
	unsigned long at;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", getpid(), g->fd);
	at = scratch_put(t, 0, path, strlen(path) + 1);
	if (!at)
		return -EFAULT;
	return ISYS(t, SYS_openat, AT_FDCWD, at, oflags | O_CLOEXEC);
}

long ghost_map_open(struct itask *t, Stasis__Vma *v, int oflags)
{
	struct rghost *g = find(0, v, NULL);

	return g ? open_remote(t, g, oflags) : -ENOENT;
}

long ghost_exe_open(struct itask *t, const char *exe)
{
	struct rghost *g = find(0, NULL, exe);

	return g ? open_remote(t, g, O_RDONLY) : -ENOENT;
}

void ghost_finish(void)
{
	ghost_drop_names();
	ghost_end_helpers();
	for (size_t i = 0; i < nr_ghosts; i++) {
		if (ghosts[i].fd >= 0)
			close(ghosts[i].fd);
		ghosts[i].fd = -1;
		if (!ghosts[i].gf->link_remap ||
		    ns_enter(STASIS__NS_KIND__NS_MNT, mnt_ns(&ghosts[i])))
			continue;
		if (unlink(ghosts[i].gf->link_remap) && errno != ENOENT)
			pr_warn("cannot remove the link remap %s: %s", ghosts[i].gf->link_remap,
				strerror(errno));
		ns_leave(STASIS__NS_KIND__NS_MNT);
	}
}
