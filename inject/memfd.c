// SPDX-License-Identifier: GPL-2.0
/*
 * memfd objects on restore. Each object of the memfds image is made once,
 * in stasis-inject, the first time a description or a mapping needs it:
 * memfd_create with its name, its mode, its contents from memfd-data and
 * its size (a hugetlb one, MFD_HUGETLB, filled through a mapping: hugetlbfs
 * has no write()). A description is a new open of it with the dumped flags; a
 * mapping is a remote open by the task of a descriptor that holds it, so a
 * memfd that is both open and mapped stays one object.
 *
 * What holds an object: one made for a description, while the descriptors
 * are staged, is held by its staged descriptors only (stasis-inject keeps
 * no descriptor of its own among the staging numbers), which every task
 * inherits until its own descriptors are restored, after all mappings; one
 * made for a mapping is held by stasis-inject (the holder) until the seals
 * are on.
 *
 * Seals go on last (memfd_seal_all), once every mapping is made: a write
 * seal forbids writable shared mappings, but F_SEAL_FUTURE_WRITE does not
 * forbid those made before it, and the object must be filled first.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "files.h"
#include "memfd.h"
#include "stasis/log.h"
#include "stasis/util.h"

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef MFD_HUGE_SHIFT /* <linux/memfd.h>, which clashes with <sys/mman.h> */
#define MFD_HUGE_SHIFT 26
#define MFD_HUGE_MASK  0x3f
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

struct rmemfd {
	Stasis__MemfdInode *mi;
	int fd; /* the holder in stasis-inject, or -1 */
	dev_t dev; /* the object made, once made */
	ino_t ino;
	bool made;
};

static struct rmemfd *objs;
static size_t nr_objs;
static bool loaded, sealed;

static int load(void)
{
	unsigned n = records_count("memfds");

	if (loaded)
		return 0;
	objs = xzalloc((n + 1) * sizeof(*objs));
	for (unsigned i = 0; i < n; i++) {
		objs[i].mi = records_get("memfds", i, &stasis__memfd_inode__descriptor);
		objs[i].fd = -1;
		if (!objs[i].mi)
			return -1;
		nr_objs++;
	}
	loaded = true;
	return 0;
}

bool memfd_vma(const Stasis__Vma *v)
{
	return v->kind == STASIS__VMA_KIND__SHMEM && v->path && !strncmp(v->path, "/memfd:", 7);
}

/*
 * One piece of a hugetlb memfd, which has no write(): through a shared
 * mapping of the huge pages it covers, here in stasis-inject.
 */
static int write_hugetlb(int fd, Stasis__MemfdInode *mi, const void *data, size_t len, uint64_t off)
{
	uint64_t hps = mi->hugetlb_page_size;
	uint64_t from = off / hps * hps, to = (off + len + hps - 1) / hps * hps;
	char *m = mmap(NULL, to - from, PROT_READ | PROT_WRITE, MAP_SHARED, fd, from);

	if (m == MAP_FAILED)
		return -1;
	memcpy(m + (off - from), data, len);
	munmap(m, to - from);
	return 0;
}

/* The contents, holes left as holes. */
static int fill(int fd, Stasis__MemfdInode *mi)
{
	unsigned n = records_count("memfd-data");

	for (unsigned i = 0; i < n; i++) {
		Stasis__DataChunk *c =
			records_get("memfd-data", i, &stasis__data_chunk__descriptor);
		int ret = 0;

		if (!c)
			return -1;
		if (c->id == mi->id) {
			if (c->offset > mi->size || c->data.len > mi->size - c->offset) {
				pr_err("memfd-data: a piece of memfd %u lies beyond its size",
				       mi->id);
				ret = -1;
			} else if (mi->has_hugetlb_page_size
				       ? write_hugetlb(fd, mi, c->data.data, c->data.len, c->offset)
				       : pwrite(fd, c->data.data, c->data.len, c->offset) !=
					     (ssize_t)c->data.len) {
				pr_perror("cannot write the contents of memfd %s", mi->name);
				ret = -1;
			}
		}
		protobuf_c_message_free_unpacked(&c->base, NULL);
		if (ret)
			return -1;
	}
	return 0;
}

static int make(struct rmemfd *o)
{
	Stasis__MemfdInode *mi = o->mi;
	unsigned hugetlb = 0;
	struct stat sb;
	int fd;

	if (sealed) {
		pr_err("memfd %s is needed after the memfds were sealed", mi->name);
		return -1;
	}
	if (strlen(mi->name) > 249) {
		pr_err("memfds: the name of memfd %u is too long", mi->id);
		return -1;
	}
	if (mi->has_hugetlb_page_size) {
		uint64_t hps = mi->hugetlb_page_size;

		if (hps <= (uint64_t)PAGE_SIZE || (hps & (hps - 1)) ||
		    __builtin_ctzll(hps) > MFD_HUGE_MASK || mi->size % hps) {
			pr_err("memfds: memfd %u has an invalid huge page size", mi->id);
			return -1;
		}
		hugetlb = MFD_HUGETLB | (__builtin_ctzll(hps) << MFD_HUGE_SHIFT);
	}
	/* sealing is always allowed here: F_SEAL_SEAL closes it again if the
	 * original had none; MFD_EXEC (6.3+) says the mode is as given */
	fd = memfd_create(mi->name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC | hugetlb);
	/* older kernels, or vm.memfd_noexec=2 */
	if (fd < 0 && (errno == EINVAL || errno == EACCES))
		fd = memfd_create(mi->name, MFD_CLOEXEC | MFD_ALLOW_SEALING | hugetlb);
	if (fd < 0) {
		pr_perror("cannot create memfd %s", mi->name);
		return -1;
	}
	if ((mi->has_mode && fchmod(fd, mi->mode & 07777)) || ftruncate(fd, mi->size) ||
	    fill(fd, mi) || fstat(fd, &sb)) {
		pr_perror("cannot restore memfd %s (%llu bytes)", mi->name,
			  (unsigned long long)mi->size);
		close(fd);
		return -1;
	}
	o->fd = fd;
	o->dev = sb.st_dev;
	o->ino = sb.st_ino;
	o->made = true;
	pr_debug("memfd %u (%s): %llu bytes, seals %#x later", mi->id, mi->name,
		 (unsigned long long)mi->size, mi->seals);
	return 0;
}

/* The object by id (descriptors) or by dumped inode (mappings), made. */
static struct rmemfd *get(bool by_ino, uint64_t key)
{
	if (load())
		return NULL;
	for (size_t i = 0; i < nr_objs; i++) {
		struct rmemfd *o = &objs[i];

		if (by_ino ? o->mi->ino != key : o->mi->id != key)
			continue;
		if (!o->made && make(o))
			return NULL;
		return o;
	}
	pr_err("the checkpoint has no memfd %s%llu", by_ino ? "with inode " : "",
	       (unsigned long long)key);
	return NULL;
}

/* A descriptor of o in task pid (stat through /proc), or -1. */
static int find_fd(pid_t pid, struct rmemfd *o)
{
	char path[320];
	struct dirent *de;
	int found = -1;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	while (d && found < 0 && (de = readdir(d))) {
		struct stat sb;

		snprintf(path, sizeof(path), "/proc/%d/fd/%s", pid, de->d_name);
		if (de->d_name[0] != '.' && !stat(path, &sb) && sb.st_dev == o->dev &&
		    sb.st_ino == o->ino)
			found = atoi(de->d_name);
	}
	if (d)
		closedir(d);
	return found;
}

/* The number of a descriptor of o: the holder (*pid becomes stasis-inject)
 * or one in task *pid; -1 logged. */
static int holding_fd(struct rmemfd *o, pid_t *pid)
{
	int fd;

	if (o->fd >= 0) {
		*pid = getpid();
		return o->fd;
	}
	fd = find_fd(*pid, o);
	if (fd < 0)
		pr_err("memfd %s: task %d holds no descriptor of it", o->mi->name, *pid);
	return fd;
}

static int memfd_open(Stasis__FileEntry *fe)
{
	int flags = fe->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_NOCTTY | O_CLOEXEC);
	struct rmemfd *o = fe->has_memfd ? get(false, fe->memfd) : NULL;
	pid_t pid = getpid();
	char path[64];
	int fd;

	if (!o) {
		if (!fe->has_memfd)
			pr_err("file %u (%s) names no memfd", fe->id, fe->path);
		return -1;
	}
	/*
	 * A read-write description is the file memfd_create made itself, when
	 * it is still free: a new open for writing would count as a writer of
	 * the inode, and exec of the memfd would fail with ETXTBSY.
	 */
	if (o->fd >= 0 && (flags & O_ACCMODE) == O_RDWR) {
		fd = fcntl(o->fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0 ||
		    fcntl(fd, F_SETFL, flags & (O_APPEND | O_NONBLOCK | O_ASYNC | O_NOATIME))) {
			pr_perror("cannot set up memfd %s", o->mi->name);
			if (fd >= 0)
				close(fd);
			return -1;
		}
	} else {
		/* the holder, or the staged descriptor of another description */
		fd = holding_fd(o, &pid);
		if (fd < 0)
			return -1;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		fd = open(path, flags | O_CLOEXEC);
		if (fd < 0) {
			pr_perror("cannot open memfd %s", o->mi->name);
			return -1;
		}
	}
	if (fe->has_pos && lseek(fd, fe->pos, SEEK_SET) != (off_t)fe->pos) {
		pr_perror("cannot seek memfd %s to %llu", o->mi->name, (unsigned long long)fe->pos);
		close(fd);
		return -1;
	}
	/* the staged descriptor holds it from now on (see the top); the
	 * descriptor returned takes the lowest free number again, as any
	 * other open would (the staging numbers lie above) */
	if (o->fd >= 0) {
		int low;

		close(o->fd);
		o->fd = -1;
		low = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (low >= 0 && low < fd) {
			close(fd);
			fd = low;
		} else if (low >= 0) {
			close(low);
		}
	}
	return fd;
}

const struct fd_restore_ops memfd_restore_ops = { STASIS__FD_TYPE__MEMFD, memfd_open, NULL };

/*
 * A descriptor in t of a read-write file of o that is not a new open: the
 * holder in stasis-inject (pidfd_getfd), or a staged read-write descriptor
 * of t. -1 when there is none, -2 on an error (logged).
 */
static long writable_file(struct itask *t, struct rmemfd *o)
{
	char path[320];
	struct dirent *de;
	long fd = -1, pidfd;
	DIR *d;

	if (o->fd >= 0) {
		pidfd = pstree_remote_inject_pidfd(t);
		if (pidfd < 0)
			return -1;
		fd = ISYS(t, SYS_pidfd_getfd, pidfd, o->fd, 0);
		ISYS(t, SYS_close, pidfd);
		return fd < 0 ? -1 : fd;
	}
	snprintf(path, sizeof(path), "/proc/%d/fd", t->hpid);
	d = opendir(path);
	while (d && fd < 0 && (de = readdir(d))) {
		struct stat sb;
		long n, fl;

		snprintf(path, sizeof(path), "/proc/%d/fd/%s", t->hpid, de->d_name);
		if (de->d_name[0] == '.' || stat(path, &sb) || sb.st_dev != o->dev ||
		    sb.st_ino != o->ino)
			continue;
		n = atol(de->d_name);
		fl = ISYS(t, SYS_fcntl, n, F_GETFL);
		if (fl < 0 || (fl & O_ACCMODE) != O_RDWR)
			continue;
		fd = ISYS(t, SYS_fcntl, n, F_DUPFD_CLOEXEC, 0);
		if (fd < 0) {
			pr_err("task %d: cannot duplicate descriptor %ld of memfd %s: %s", t->pid,
			       n, o->mi->name, strerror(-fd));
			fd = -2;
		}
	}
	if (d)
		closedir(d);
	return fd;
}

long memfd_map_open(struct itask *t, Stasis__Vma *v)
{
	struct rmemfd *o = get(true, v->shmid);
	bool shared = v->flags & MAP_SHARED;
	int oflags = O_RDWR, n;
	pid_t pid = t->hpid;
	unsigned long at;
	char path[64];
	long fd;

	if (!o)
		return -1;
	/*
	 * A read-only shared mapping made through a writable descriptor could
	 * be made writable: the kernel would then refuse the write seal the
	 * original has. A private mapping needs reading only.
	 */
	if (!shared || (!(v->prot & PROT_WRITE) &&
			(o->mi->seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE))))
		oflags = O_RDONLY;
	/* a writable shared mapping: the very file memfd_create made, as the
	 * original has it (a new open for writing would count as a writer) */
	if (oflags == O_RDWR) {
		fd = writable_file(t, o);
		if (fd >= 0 || fd == -2)
			return fd == -2 ? -1 : fd;
	}
	n = holding_fd(o, &pid);
	if (n < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, n);
	at = scratch_put(t, 0, path, strlen(path) + 1);
	if (!at)
		return -1;
	fd = ISYS(t, SYS_openat, AT_FDCWD, at, oflags | O_CLOEXEC);
	if (fd < 0)
		pr_err("task %d: cannot open memfd %s to map it at %#llx: %s", t->pid, o->mi->name,
		       (unsigned long long)v->start, strerror(-fd));
	return fd;
}

int memfd_seal_all(struct itask *t)
{
	int ret = 0;

	if (sealed)
		return 0;
	sealed = true;
	for (size_t i = 0; i < nr_objs; i++) {
		struct rmemfd *o = &objs[i];
		pid_t pid = t->hpid;
		char path[64];
		int fd = o->fd;

		if (!o->made)
			continue;
		/* F_ADD_SEALS wants a writable descriptor */
		if (o->mi->seals && fd < 0) {
			fd = holding_fd(o, &pid);
			if (fd < 0)
				return -1;
			snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
			fd = open(path, O_RDWR | O_CLOEXEC);
			if (fd < 0) {
				pr_perror("cannot open memfd %s through %s", o->mi->name, path);
				return -1;
			}
		}
		if (o->mi->seals && fcntl(fd, F_ADD_SEALS, o->mi->seals)) {
			pr_perror("cannot seal memfd %s with %#x", o->mi->name, o->mi->seals);
			ret = -1;
		}
		if (fd >= 0)
			close(fd);
		o->fd = -1;
	}
	return ret;
}
