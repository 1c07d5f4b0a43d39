// SPDX-License-Identifier: GPL-2.0
/*
 * Deleted files the tree has open or mapped. One that has no link left
 * (a "ghost") travels in the checkpoint, up to --ghost-limit bytes: its
 * attributes in the ghosts image, its contents in ghost-data, read at the
 * end of the dump through /proc (the tree is still frozen then). One that
 * lost the name it was opened by but is still linked elsewhere can only be
 * reached again through a new link: --link-remap makes one next to the
 * old name, as CRIU does, and the restore removes it. Removed directories,
 * unlinked FIFOs, device nodes and symlinks are ghosts too, with no data:
 * their mode, device number or target is what the restore makes again.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collect.h"
#include "files.h"
#include "stasis/log.h"
#include "stasis/proc.h"
#include "stasis/util.h"

#define CHUNK DATA_CHUNK_MAX

struct ghost {
	Stasis__GhostFile gf;
	char src[64]; /* /proc path the contents are read through */
	pid_t pid;    /* the task it was found in, whose paths it has */
};

static struct ghost *ghosts;
static size_t nr_ghosts;

static bool is_deleted(const char *link)
{
	size_t len = strlen(link);

	return len > 10 && !strcmp(link + len - 10, " (deleted)");
}

/* A link remap name next to path: DIR/link_remap.N, N from ino. */
static char *make_link_remap(pid_t pid, const char *path, const char *src, ino_t ino)
{
	const char *slash = strrchr(path, '/');
	char name[PATH_MAX], tname[PATH_MAX + 32];

	for (int i = 0; i < 100; i++) {
		int n = snprintf(name, sizeof(name), "%.*s/link_remap.%lu", (int)(slash - path),
				 path, (unsigned long)ino);

		if (i)
			snprintf(name + n, sizeof(name) - n, ".%d", i);
		if (!linkat(AT_FDCWD, src, AT_FDCWD, mntns_path(pid, name, tname, sizeof(tname)),
			    AT_SYMLINK_FOLLOW))
			return xstrdup(name);
		if (errno != EEXIST)
			break;
	}
	pr_perror("cannot link %s back as %s for --link-remap", path, name);
	return NULL;
}

/*
 * The bytes of data a file stores, holes left out: what write_data carries.
 * The whole size where the file system cannot tell (no SEEK_DATA).
 */
static uint64_t stored_bytes(const char *src, off_t size)
{
	int fd = open(src, O_RDONLY | O_CLOEXEC);
	uint64_t total = 0;
	off_t off = 0;

	if (fd < 0)
		return size;
	while (off < size) {
		off_t data = lseek(fd, off, SEEK_DATA), hole;

		if (data < 0 && errno == ENXIO)
			break;
		if (data < 0) {
			total = size;
			break;
		}
		if (data >= size)
			break;
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || hole > size)
			hole = size;
		total += hole - data;
		off = hole;
	}
	close(fd);
	return total;
}

/* What the restore must make again besides the attributes. */
static int ghost_node(Stasis__GhostFile *gf, const struct stat *st, const struct fd_src *fd)
{
	char target[PATH_MAX];
	ssize_t n;
	int cfd;

	if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
		gf->has_rdev = true;
		gf->rdev = st->st_rdev;
	}
	if (!S_ISLNK(st->st_mode))
		return 0;
	/* only a descriptor (O_PATH|O_NOFOLLOW) holds a symlink */
	cfd = fd ? fd_src_dup(fd) : -1;
	if (cfd < 0)
		return -1;
	n = readlinkat(cfd, "", target, sizeof(target) - 1);
	close(cfd);
	if (n < 0) {
		pr_perror("cannot read the deleted symlink %s", gf->path);
		return -1;
	}
	target[n] = 0;
	gf->symlink = xstrdup(target);
	return 0;
}

/*
 * The ghost for the file behind src (a /proc link of task pid, shown as
 * link), registered the first time; what names it in messages, fd is the
 * descriptor it was met through (NULL for a mapping or a working dir).
 */
static int ghost_get(pid_t pid, const char *what, const char *link, const char *src,
		     const struct stat *st, const struct fd_src *fd, uint32_t *id)
{
	size_t plen = strlen(link) - 10;
	Stasis__GhostFile *gf;
	struct ghost *g;
	uint64_t data;
	pid_t dead = 0;

	for (size_t i = 0; i < nr_ghosts; i++)
		if (ghosts[i].gf.dev == st->st_dev && ghosts[i].gf.ino == st->st_ino) {
			*id = ghosts[i].gf.id;
			return 0;
		}
	if (link[0] != '/' || !strncmp(link, "/memfd:", 7)) {
		pr_err("%s of task %d: %s is not supported yet", what, pid, link);
		return -1;
	}
	if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode) && !S_ISFIFO(st->st_mode) &&
	    !S_ISCHR(st->st_mode) && !S_ISBLK(st->st_mode) && !S_ISLNK(st->st_mode)) {
		pr_err("%s of task %d: %s (mode %o) is not supported yet", what, pid, link,
		       st->st_mode);
		return -1;
	}
	/* --ghost-limit counts what the checkpoint stores: holes are free */
	if (st->st_nlink == 0 && S_ISREG(st->st_mode) &&
	    (uint64_t)st->st_size > opts.ghost_limit &&
	    (data = stored_bytes(src, st->st_size)) > opts.ghost_limit) {
		pr_err("%s of task %d: the deleted file %.*s holds %llu bytes of data, more "
		       "than the --ghost-limit of %llu; raise the limit to carry it in the "
		       "checkpoint",
		       what, pid, (int)plen, link, (unsigned long long)data,
		       (unsigned long long)opts.ghost_limit);
		return -1;
	}
	/* /proc/PID of a process gone: nothing to carry, any exit leaves one */
	if (S_ISDIR(st->st_mode) && !procfs_dead_dir(link, src, &dead) && st->st_nlink) {
		/* a removed directory keeps no link, whatever it counts */
		pr_err("%s of task %d: the directory %s still has %lu link(s)", what, pid, link,
		       (unsigned long)st->st_nlink);
		return -1;
	}
	if (!dead && st->st_nlink && !opts.link_remap) {
		pr_err("%s of task %d: %.*s was unlinked but the file has %lu other link(s); "
		       "dump with --link-remap to give it a name the restore can open",
		       what, pid, (int)plen, link, (unsigned long)st->st_nlink);
		return -1;
	}
	ghosts = xrealloc(ghosts, (nr_ghosts + 1) * sizeof(*ghosts));
	g = &ghosts[nr_ghosts];
	memset(g, 0, sizeof(*g));
	gf = &g->gf;
	stasis__ghost_file__init(gf);
	gf->id = nr_ghosts + 1;
	gf->path = xmalloc(plen + 1);
	memcpy(gf->path, link, plen);
	gf->path[plen] = 0;
	gf->dev = st->st_dev;
	gf->ino = st->st_ino;
	gf->size = S_ISREG(st->st_mode) ? st->st_size : 0;
	gf->mode = st->st_mode;
	gf->has_uid = gf->has_gid = gf->has_atime_ns = gf->has_mtime_ns = true;
	gf->uid = st->st_uid;
	gf->gid = st->st_gid;
	gf->atime_ns = st->st_atim.tv_sec * 1000000000ull + st->st_atim.tv_nsec;
	gf->mtime_ns = st->st_mtim.tv_sec * 1000000000ull + st->st_mtim.tv_nsec;
	snprintf(g->src, sizeof(g->src), "%s", src);
	g->pid = pid;
	gf->mnt_ns = ns_mnt_id(pid);
	gf->has_mnt_ns = gf->mnt_ns != 0;
	if (ghost_node(gf, st, fd))
		return -1;
	if (dead) {
		gf->has_proc_pid = true;
		gf->proc_pid = dead;
	} else if (st->st_nlink) {
		gf->link_remap = make_link_remap(pid, gf->path, src, st->st_ino);
		if (!gf->link_remap)
			return -1;
	}
	nr_ghosts++;
	*id = gf->id;
	return 0;
}

int ghost_collect_fd(const struct fd_src *src, uint32_t *id)
{
	char what[32], path[64];

	snprintf(what, sizeof(what), "fd %d", src->fd);
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", src->pid, src->fd);
	return ghost_get(src->pid, what, src->link, path, &src->st, src, id);
}

int ghost_collect_path(pid_t pid, const char *what, const char *link, const char *src,
		       uint32_t *id)
{
	struct stat st;

	if (stat(src, &st)) {
		pr_perror("%s of task %d: cannot reach %s through %s", what, pid, link, src);
		return -1;
	}
	return ghost_get(pid, what, link, src, &st, NULL, id);
}

static bool ghost_match(const struct fd_src *src)
{
	/* memfds read as deleted files too, and have their own type */
	return (S_ISREG(src->st.st_mode) || S_ISDIR(src->st.st_mode)) && is_deleted(src->link) &&
	       strncmp(src->link, "/memfd:", 7);
}

static int ghost_dump(const struct fd_src *src, Stasis__FileEntry *fe)
{
	fe->has_pos = fe->has_ghost = true;
	fe->pos = src->pos;
	if (S_ISDIR(src->st.st_mode)) {
		fe->type = STASIS__FD_TYPE__DIR;
	} else {
		fe->type = STASIS__FD_TYPE__REG;
		fe->has_size = true;
		fe->size = src->st.st_size;
	}
	return ghost_collect_fd(src, &fe->ghost);
}

const struct fd_dump_ops ghost_dump_ops = {"deleted file", ghost_match, ghost_dump};

int ghost_collect_vma(struct ctask *ct, const struct proc_vma *v, struct stat *sb)
{
	char what[64], path[128];
	uint32_t id;

	snprintf(what, sizeof(what), "mapping %lx-%lx", v->start, v->end);
	snprintf(path, sizeof(path), "/proc/%d/map_files/%lx-%lx", ct->pid, v->start, v->end);
	if (stat(path, sb)) {
		pr_perror("task %d: cannot reach the deleted file %s mapped at %lx through %s",
			  ct->pid, v->path, v->start, path);
		return -1;
	}
	if (!S_ISREG(sb->st_mode)) {
		pr_err("%s of task %d: %s is not supported yet", what, ct->pid, v->path);
		return -1;
	}
	return ghost_get(ct->pid, what, v->path, path, sb, NULL, &id);
}

/*
 * The contents of file fd up to size into image (DataChunk records of id),
 * holes left out; what names the file in messages. buf holds CHUNK bytes.
 */
int file_data_write(struct img_writer *w, const char *image, uint32_t id, int fd, off_t end,
		    const char *what, char *buf)
{
	off_t off = 0;

	while (off < end) {
		off_t data = lseek(fd, off, SEEK_DATA), hole;

		if (data < 0 && errno == ENXIO)
			break;
		if (data < 0)
			data = off; /* no SEEK_DATA here: all of it */
		if (data >= end)
			break;
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || hole > end)
			hole = end;
		while (data < hole) {
			Stasis__DataChunk c = STASIS__DATA_CHUNK__INIT;
			size_t n = hole - data < CHUNK ? hole - data : CHUNK;
			ssize_t r = pread(fd, buf, n, data);

			if (r <= 0) {
				pr_perror("cannot read %s at %lld", what, (long long)data);
				return -1;
			}
			c.id = id;
			c.offset = data;
			c.data.len = r;
			c.data.data = (uint8_t *)buf;
			if (imgw_record(w, image, &c.base))
				return -1;
			data += r;
		}
		off = hole;
	}
	return 0;
}

/* The contents of a ghost, holes left out. */
static int write_data(struct img_writer *w, struct ghost *g, char *buf)
{
	int fd = open(g->src, O_RDONLY | O_CLOEXEC), ret;
	char what[PATH_MAX + 32];

	if (fd < 0) {
		pr_perror("cannot open the deleted file %s through %s", g->gf.path, g->src);
		return -1;
	}
	snprintf(what, sizeof(what), "the deleted file %s", g->gf.path);
	ret = file_data_write(w, "ghost-data", g->gf.id, fd, g->gf.size, what, buf);
	close(fd);
	return ret;
}

int ghost_write(struct img_writer *w)
{
	char *buf = NULL;
	int ret = 0;

	for (size_t i = 0; i < nr_ghosts && !ret; i++) {
		if (imgw_record(w, "ghosts", &ghosts[i].gf.base)) {
			ret = -1;
			break;
		}
		if (ghosts[i].gf.link_remap || !S_ISREG(ghosts[i].gf.mode))
			continue;
		if (!buf)
			buf = xmalloc(CHUNK);
		ret = write_data(w, &ghosts[i], buf);
	}
	free(buf);
	return ret;
}

void ghost_abort(void)
{
	char buf[PATH_MAX + 32];

	for (size_t i = 0; i < nr_ghosts; i++)
		if (ghosts[i].gf.link_remap &&
		    unlink(mntns_path(ghosts[i].pid, ghosts[i].gf.link_remap, buf, sizeof(buf))))
			pr_perror("cannot remove the link remap %s", ghosts[i].gf.link_remap);
}
