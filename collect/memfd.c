// SPDX-License-Identifier: GPL-2.0
/*
 * memfd objects. A descriptor of a memfd and a mapping of one (shared or
 * private) name the same object, by inode: each object is written once, to
 * memfds (name, size, seals, mode), and its contents to memfd-data, read
 * at the end of the dump (the tree is still frozen) through the /proc path
 * it was first met by. Mappings carry no pages of their own for it (only a
 * private mapping's copied-on-write pages), so open-and-mapped stays one
 * object on restore. A hugetlb memfd (MFD_HUGETLB) is read the same way:
 * hugetlbfs reads a missing page as zeros, and zero pieces are left out.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "collect.h"
#include "files.h"
#include "memfd.h"
#include "stasis/log.h"
#include "stasis/proc.h"
#include "stasis/util.h"

#define CHUNK (1u << 20)

struct memfd_obj {
	Stasis__MemfdInode mi;
	dev_t dev;
	char src[96]; /* /proc path the contents are read through */
};

static struct memfd_obj *objs;
static size_t nr_objs;

bool memfd_path(const char *path)
{
	size_t len = strlen(path);

	return !strncmp(path, "/memfd:", 7) && len >= 17 && !strcmp(path + len - 10, " (deleted)");
}

/* The object behind src (a /proc path of task pid, shown as link),
 * registered the first time; what names it in messages. */
static int memfd_get(pid_t pid, const char *what, const char *link, const char *src,
		     uint32_t *id)
{
	size_t nlen = strlen(link) - 17;
	struct memfd_obj *o;
	struct statfs sfs;
	struct stat sb;
	int fd, seals;

	fd = open(src, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) || fstatfs(fd, &sfs)) {
		pr_perror("%s of task %d: cannot open memfd %s", what, pid, link);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	for (size_t i = 0; i < nr_objs; i++)
		if (objs[i].dev == sb.st_dev && objs[i].mi.ino == sb.st_ino) {
			close(fd);
			*id = objs[i].mi.id;
			return 0;
		}
	if (sfs.f_type != TMPFS_MAGIC && sfs.f_type != HUGETLBFS_MAGIC) {
		pr_err("%s of task %d: %s is not a shmem or hugetlb memfd; not supported", what,
		       pid, link);
		close(fd);
		return -1;
	}
	seals = fcntl(fd, F_GET_SEALS);
	close(fd);
	if (seals < 0) {
		pr_perror("%s of task %d: cannot read the seals of %s", what, pid, link);
		return -1;
	}
	objs = xrealloc(objs, (nr_objs + 1) * sizeof(*objs));
	o = &objs[nr_objs];
	memset(o, 0, sizeof(*o));
	stasis__memfd_inode__init(&o->mi);
	o->mi.id = nr_objs + 1;
	o->mi.ino = sb.st_ino;
	o->mi.name = xmalloc(nlen + 1);
	memcpy(o->mi.name, link + 7, nlen);
	o->mi.name[nlen] = 0;
	o->mi.size = sb.st_size;
	o->mi.seals = seals;
	o->mi.has_mode = true;
	o->mi.mode = sb.st_mode & 07777;
	/* MFD_HUGETLB: hugetlbfs gives its huge page size as the block size */
	if (sfs.f_type == HUGETLBFS_MAGIC) {
		o->mi.has_hugetlb_page_size = true;
		o->mi.hugetlb_page_size = sfs.f_bsize;
	}
	o->dev = sb.st_dev;
	snprintf(o->src, sizeof(o->src), "%s", src);
	nr_objs++;
	*id = o->mi.id;
	pr_debug("%s of task %d: memfd %u '%s', %lld bytes, seals %#x", what, pid, o->mi.id,
		 o->mi.name, (long long)sb.st_size, seals);
	return 0;
}

static bool memfd_match(const struct fd_src *src)
{
	return S_ISREG(src->st.st_mode) && memfd_path(src->link);
}

static int memfd_dump(const struct fd_src *src, Stasis__FileEntry *fe)
{
	char path[64], what[32];

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", src->pid, src->fd);
	snprintf(what, sizeof(what), "fd %d", src->fd);
	if (memfd_get(src->pid, what, src->link, path, &fe->memfd))
		return -1;
	fe->type = STASIS__FD_TYPE__MEMFD;
	fe->has_memfd = true;
	fe->has_pos = fe->has_size = true;
	fe->pos = src->pos;
	fe->size = src->st.st_size;
	return 0;
}

const struct fd_dump_ops memfd_dump_ops = { "memfd", memfd_match, memfd_dump };

int memfd_collect_vma(struct ctask *ct, const struct proc_vma *v)
{
	char path[96], what[64];
	uint32_t id;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%lx-%lx", ct->pid, v->start, v->end);
	snprintf(what, sizeof(what), "mapping %lx-%lx", v->start, v->end);
	return memfd_get(ct->pid, what, v->path, path, &id);
}

static bool all_zero(const char *p, size_t len)
{
	return !len || (!p[0] && !memcmp(p, p + 1, len - 1));
}

/* The contents of one object, holes (and zero pieces) left out. */
static int write_data(struct img_writer *w, struct memfd_obj *o, char *buf)
{
	off_t off = 0, end = o->mi.size;
	int fd = open(o->src, O_RDONLY | O_CLOEXEC), ret = -1;

	if (fd < 0) {
		pr_perror("cannot open memfd %s through %s", o->mi.name, o->src);
		return -1;
	}
	while (off < end) {
		off_t data = lseek(fd, off, SEEK_DATA), hole;

		if (data < 0 || data >= end)
			break;
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || hole > end)
			hole = end;
		for (off = data; off < hole;) {
			Stasis__DataChunk c = STASIS__DATA_CHUNK__INIT;
			size_t len = hole - off < CHUNK ? hole - off : CHUNK;
			ssize_t n = pread(fd, buf, len, off);

			if (n <= 0) {
				pr_perror("cannot read memfd %s at %lld", o->mi.name,
					  (long long)off);
				goto out;
			}
			if (!all_zero(buf, n)) {
				c.id = o->mi.id;
				c.offset = off;
				c.data.data = (uint8_t *)buf;
				c.data.len = n;
				if (imgw_record(w, "memfd-data", &c.base))
					goto out;
			}
			off += n;
		}
	}
	ret = 0;
out:
	close(fd);
	return ret;
}

int memfd_write(struct img_writer *w)
{
	char *buf = nr_objs ? xmalloc(CHUNK) : NULL;
	int ret = 0;

	for (size_t i = 0; i < nr_objs && !ret; i++)
		if (imgw_record(w, "memfds", &objs[i].mi.base) || write_data(w, &objs[i], buf))
			ret = -1;
	free(buf);
	return ret;
}
