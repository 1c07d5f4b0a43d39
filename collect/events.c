// SPDX-License-Identifier: GPL-2.0
/*
 * Event objects: eventfd, epoll, signalfd, timerfd and inotify. Their
 * whole state is in fdinfo; what it only names (the targets of an epoll,
 * the inodes inotify watches) is resolved here, while the tree is frozen.
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "collect.h"
#include "files.h"
#include "stasis/log.h"
#include "stasis/proc.h"
#include "stasis/util.h"

static bool anon_is(const struct fd_src *src, const char *name)
{
	return !strncmp(src->link, "anon_inode:", 11) && !strcmp(src->link + 11, name);
}

/* The whole fdinfo text: an epoll or inotify can outgrow what files.c
 * reads (64 KiB). Freed by the caller. */
static char *read_fdinfo_all(const struct fd_src *src)
{
	char path[64];
	size_t size = 65536, len = 0;
	char *buf = xmalloc(size);
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", src->pid, src->fd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("cannot open %s", path);
		free(buf);
		return NULL;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, size - len - 1);

		if (n < 0) {
			pr_perror("cannot read %s", path);
			close(fd);
			free(buf);
			return NULL;
		}
		if (!n)
			break;
		len += n;
		if (size - len < 4096) {
			if (size >= (64u << 20)) {
				pr_err("%s is too long", path);
				close(fd);
				free(buf);
				return NULL;
			}
			size *= 2;
			buf = xrealloc(buf, size);
		}
	}
	close(fd);
	buf[len] = 0;
	return buf;
}

/* ---- eventfd ---- */

static bool eventfd_match(const struct fd_src *src)
{
	return anon_is(src, "[eventfd]");
}

static int eventfd_dump(const struct fd_src *src, Stasis__FileEntry *fe)
{
	const char *count = fdinfo_field(src->fdinfo, "eventfd-count");
	const char *sem = fdinfo_field(src->fdinfo, "eventfd-semaphore");
	Stasis__EventfdEntry *e = xmalloc(sizeof(*e));

	if (!count) {
		pr_err("fd %d of task %d: no eventfd-count in its fdinfo", src->fd, src->pid);
		free(e);
		return -1;
	}
	stasis__eventfd_entry__init(e);
	e->count = strtoull(count, NULL, 16); /* the kernel prints it in hex */
	if (sem) {
		e->has_semaphore = true;
		e->semaphore = atoi(sem) != 0;
	} else {
		/* kernels before 6.4 do not show EFD_SEMAPHORE */
		pr_warn("fd %d of task %d: this kernel does not tell whether the eventfd is a "
			"semaphore; restoring it as a plain counter",
			src->fd, src->pid);
	}
	fe->type = STASIS__FD_TYPE__EVENTFD;
	fe->eventfd = e;
	pr_debug("fd %d of task %d: eventfd count %llu%s", src->fd, src->pid,
		 (unsigned long long)e->count, e->semaphore ? " (semaphore)" : "");
	return 0;
}

const struct fd_dump_ops eventfd_dump_ops = { "eventfd", eventfd_match, eventfd_dump };

/* ---- epoll ---- */

static bool epoll_match(const struct fd_src *src)
{
	return anon_is(src, "[eventpoll]");
}

/*
 * The fd number a registration was made with names the target only while
 * that descriptor still refers to it: kcmp(KCMP_EPOLL_TFD) compares the
 * task's descriptor fd with the toff-th registration under number tfd.
 */
static bool tfd_is(const struct fd_src *src, int fd, int tfd, int toff)
{
	struct kcmp_epoll_slot slot = { .efd = src->fd, .tfd = tfd, .toff = toff };

	return syscall(SYS_kcmp, src->pid, src->pid, KCMP_EPOLL_TFD, fd, &slot) == 0;
}

/* The first descriptor of task pid that is found by fn, or -1 (-2: failed). */
static int find_task_fd(pid_t pid, bool (*fn)(pid_t pid, int fd, void *arg), void *arg)
{
	char path[64];
	struct dirent *de;
	int found = -1;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	if (!d) {
		pr_perror("cannot open %s", path);
		return -2;
	}
	while (found < 0 && (de = readdir(d))) {
		int fd = atoi(de->d_name);

		if (de->d_name[0] >= '0' && de->d_name[0] <= '9' && fn(pid, fd, arg))
			found = fd;
	}
	closedir(d);
	return found;
}

struct slot_of {
	pid_t epoll_pid; /* whose descriptor slot.efd is */
	struct kcmp_epoll_slot slot;
};

/* fd of pid is the file registered in the slot (kcmp KCMP_EPOLL_TFD) */
static bool in_slot(pid_t pid, int fd, void *arg)
{
	const struct slot_of *s = arg;

	return (s->epoll_pid != pid || fd != (int)s->slot.tfd) &&
	       syscall(SYS_kcmp, pid, s->epoll_pid, KCMP_EPOLL_TFD, fd, &s->slot) == 0;
}

/*
 * A registration outlives the number it was made with (closed, or dup2'ed
 * over) as long as its file is open: a descriptor of the task that holds
 * that file, or -1.
 */
static int tfd_holder(const struct fd_src *src, int tfd, int toff)
{
	struct slot_of s = { src->pid, { .efd = src->fd, .tfd = tfd, .toff = toff } };
	int fd = find_task_fd(src->pid, in_slot, &s);

	return fd < 0 ? -1 : fd;
}

/*
 * An epoll in flight (src is stasis-collect's own descriptor): its numbers
 * are those of a task of the tree at the registration. The target is the
 * file a task's descriptor holds that kcmp(KCMP_EPOLL_TFD) finds in that
 * registration: its description's id. 0 found, 1 none, -1 failed.
 */
static int flight_target(const struct fd_src *src, int tfd, int toff, uint32_t *id)
{
	const struct tree *tr = collect_tree();
	struct slot_of s = { getpid(), { .efd = src->fd, .tfd = tfd, .toff = toff } };

	for (int i = 0; i < tr->nr; i++) {
		int fd;

		if (tr->tasks[i].zombie)
			continue;
		fd = find_task_fd(tr->tasks[i].pid, in_slot, &s);
		if (fd == -2)
			return -1;
		if (fd >= 0)
			return files_describe_task_fd(tr->tasks[i].pid, fd, id) ? -1 : 0;
	}
	return 1;
}

static int epoll_dump(const struct fd_src *src, Stasis__FileEntry *fe)
{
	bool in_flight = src->pid == getpid();
	Stasis__EpollEntry *e = xmalloc(sizeof(*e));
	char *text = read_fdinfo_all(src);
	size_t cap = 0;

	if (!text) {
		free(e);
		return -1;
	}
	stasis__epoll_entry__init(e);
	fe->type = STASIS__FD_TYPE__EPOLL;
	fe->epoll = e;
	for (char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		unsigned events;
		unsigned long long data;
		int tfd, toff = 0, src_fd = -1;
		uint32_t file_id = 0; /* in flight: the target's file */
		Stasis__EpollTfd *t;

		if (strncmp(p, "tfd:", 4))
			continue;
		if (sscanf(p, "tfd: %d events: %x data: %llx", &tfd, &events, &data) != 3) {
			pr_err("fd %d of task %d: cannot parse epoll fdinfo line '%.60s'", src->fd,
			       src->pid, p);
			free(text);
			return -1;
		}
		/* registrations under the same number (the first one's descriptor
		 * was closed and the number reused) count in fdinfo order */
		for (size_t i = 0; i < e->n_tfds; i++)
			toff += (int)e->tfds[i]->tfd == tfd;
		if (in_flight) {
			int r = flight_target(src, tfd, toff, &file_id);

			if (r > 0)
				pr_err("an epoll instance in flight watches a file (registered as "
				       "fd %d, events %#x) that no task of the tree holds; not "
				       "supported",
				       tfd, events);
			if (r) {
				free(text);
				return -1;
			}
		} else if (!tfd_is(src, tfd, tfd, toff)) {
			src_fd = tfd_holder(src, tfd, toff);
			if (src_fd < 0) {
				pr_err("epoll fd %d of task %d: the file registered as fd %d "
				       "(events %#x, data %#llx) is no longer open in task %d; "
				       "not supported",
				       src->fd, src->pid, tfd, events, data, src->pid);
				free(text);
				return -1;
			}
			pr_debug("epoll fd %d of task %d: fd %d was closed or replaced since it "
				 "was registered; its file is fd %d now",
				 src->fd, src->pid, tfd, src_fd);
		}
		if (e->n_tfds == cap) {
			cap = cap ? cap * 2 : 8;
			e->tfds = xrealloc(e->tfds, cap * sizeof(*e->tfds));
		}
		t = xmalloc(sizeof(*t));
		stasis__epoll_tfd__init(t);
		t->tfd = tfd;
		t->events = events;
		t->data = data;
		if (src_fd >= 0) {
			t->has_src_fd = true;
			t->src_fd = src_fd;
		} else if (in_flight) {
			t->has_file_id = true;
			t->file_id = file_id;
		}
		e->tfds[e->n_tfds++] = t;
		pr_debug("epoll fd %d of task %d: tfd %d events %#x data %#llx", src->fd, src->pid,
			 tfd, events, data);
	}
	free(text);
	return 0;
}

const struct fd_dump_ops epoll_dump_ops = { "epoll", epoll_match, epoll_dump };

/* ---- signalfd ---- */

static bool signalfd_match(const struct fd_src *src)
{
	return anon_is(src, "[signalfd]");
}

static int signalfd_dump(const struct fd_src *src, Stasis__FileEntry *fe)
{
	const char *mask = fdinfo_field(src->fdinfo, "sigmask");
	Stasis__SignalfdEntry *e;

	if (!mask) {
		pr_err("fd %d of task %d: no sigmask in its fdinfo", src->fd, src->pid);
		return -1;
	}
	e = xmalloc(sizeof(*e));
	stasis__signalfd_entry__init(e);
	e->sigmask = strtoull(mask, NULL, 16);
	fe->type = STASIS__FD_TYPE__SIGNALFD;
	fe->signalfd = e;
	return 0;
}

const struct fd_dump_ops signalfd_dump_ops = { "signalfd", signalfd_match, signalfd_dump };

/* ---- timerfd ---- */

static bool timerfd_match(const struct fd_src *src)
{
	return anon_is(src, "[timerfd]");
}

static uint64_t ts_ns(unsigned long long sec, unsigned long long nsec)
{
	return sec * 1000000000ull + nsec;
}

static int timerfd_dump(const struct fd_src *src, Stasis__FileEntry *fe)
{
	Stasis__TimerfdEntry *e;
	unsigned long long vs, vn, is, in, ticks;
	unsigned flags;
	int clockid, fd, tries = 0, n = 0;
	char *text = NULL;
	const char *p;

	fd = fd_src_dup(src);
	if (fd < 0)
		return -1;
	/*
	 * A periodic timer that expired and was not read is only pushed
	 * forward (its ticks counted, the next expiry set) by a read or by
	 * timerfd_gettime; fdinfo alone would show it disarmed with one tick.
	 * Loop until fdinfo shows a timer that is not expiring right now.
	 */
	do {
		struct itimerspec its;

		free(text);
		text = NULL;
		if (timerfd_gettime(fd, &its)) {
			pr_perror("fd %d of task %d: timerfd_gettime", src->fd, src->pid);
			break;
		}
		text = read_fdinfo_all(src);
		if (!text)
			break;
		p = strstr(text, "clockid:");
		n = p ? sscanf(p,
			       "clockid: %d ticks: %llu settime flags: %o it_value: (%llu, %llu) "
			       "it_interval: (%llu, %llu)",
			       &clockid, &ticks, &flags, &vs, &vn, &is, &in) :
			0;
	} while (n == 7 && !vs && !vn && (is || in) && ++tries < 100);
	close(fd);
	if (!text) {
		return -1;
	} else if (n != 7) {
		pr_err("fd %d of task %d: cannot parse the timerfd fdinfo", src->fd, src->pid);
		free(text);
		return -1;
	}
	free(text);
	e = xmalloc(sizeof(*e));
	stasis__timerfd_entry__init(e);
	e->clockid = clockid;
	e->settime_flags = flags;
	e->value_ns = ts_ns(vs, vn);
	e->interval_ns = ts_ns(is, in);
	e->has_ticks = true;
	e->ticks = ticks;
	if (!e->value_ns && e->interval_ns)
		e->value_ns = 1; /* still expiring after 100 tries: due now */
	if (e->value_ns && (flags & TFD_TIMER_ABSTIME)) {
		struct timespec now;

		/* fdinfo shows the time left: make it absolute again */
		if (clock_gettime(clockid, &now)) {
			pr_perror("fd %d of task %d: cannot read clock %d", src->fd, src->pid,
				  clockid);
			free(e);
			return -1;
		}
		e->value_ns += ts_ns(now.tv_sec, now.tv_nsec);
	}
	fe->type = STASIS__FD_TYPE__TIMERFD;
	fe->timerfd = e;
	pr_debug("fd %d of task %d: timerfd clock %d flags %#o value %llu ns interval %llu ns "
		 "ticks %llu",
		 src->fd, src->pid, clockid, flags, (unsigned long long)e->value_ns,
		 (unsigned long long)e->interval_ns, ticks);
	return 0;
}

const struct fd_dump_ops timerfd_dump_ops = { "timerfd", timerfd_match, timerfd_dump };

/* ---- inotify ---- */

static bool inotify_match(const struct fd_src *src)
{
	return anon_is(src, "inotify");
}

/* Where the mount that holds device sdev (the kernel's own encoding:
 * major << 20 | minor) is, seen through the task's root (its mount
 * namespace may differ from ours); 0 when found. */
int fsnotify_mount_path(pid_t pid, unsigned sdev, char *full, size_t size)
{
	unsigned maj = sdev >> 20, min = sdev & 0xfffff;
	char path[64], line[8192];
	int ret = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/mountinfo", pid);
	f = fopen(path, "re");
	if (!f) {
		pr_perror("cannot open %s", path);
		return -1;
	}
	while (ret && fgets(line, sizeof(line), f)) {
		unsigned a, b;
		char mnt[4096];

		if (sscanf(line, "%*d %*d %u:%u %*s %4095s", &a, &b, mnt) != 3 || a != maj ||
		    b != min)
			continue;
		snprintf(full, size, "/proc/%d/root%s", pid, mnt);
		ret = access(full, F_OK);
	}
	fclose(f);
	if (ret)
		pr_err("task %d: no mount of device %u:%u to find a watched inode on", pid, maj,
		       min);
	return ret;
}

/* A directory of that mount, for open_by_handle_at. */
static int mount_fd(pid_t pid, unsigned sdev)
{
	char full[4200];
	int fd;

	if (fsnotify_mount_path(pid, sdev, full, sizeof(full)))
		return -1;
	fd = open(full, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		pr_perror("cannot open %s", full);
	return fd;
}

/* ---- irmap: a name of an inode, found by walking directories ---- */

static dev_t irmap_dev;
static ino_t irmap_ino;
static char *irmap_found;

static int irmap_visit(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)type;
	(void)ftw;
	if (sb->st_dev != irmap_dev || sb->st_ino != irmap_ino)
		return 0;
	irmap_found = xstrdup(path);
	return 1;
}

/*
 * --force-irmap: the name the inode was watched by is gone (renamed over,
 * unlinked, or its dentry not connected) but it has others: look for one
 * under --irmap-scan-path, then on its whole mount.
 */
static char *irmap_find(pid_t pid, unsigned sdev, const struct stat *sb)
{
	char mnt[4200];

	irmap_dev = sb->st_dev;
	irmap_ino = sb->st_ino;
	irmap_found = NULL;
	for (int i = 0; i < opts.nr_irmap_paths && !irmap_found; i++)
		nftw(opts.irmap_paths[i], irmap_visit, 16, FTW_PHYS);
	if (!irmap_found && !fsnotify_mount_path(pid, sdev, mnt, sizeof(mnt)))
		nftw(mnt, irmap_visit, 16, FTW_PHYS | FTW_MOUNT);
	if (irmap_found) {
		char prefix[32];
		size_t len = snprintf(prefix, sizeof(prefix), "/proc/%d/root", pid);
		char *p = irmap_found;

		/* the task's root is the restored task's too: a path from it */
		if (!strncmp(p, prefix, len) && p[len] == '/') {
			p += len;
			while (p[1] == '/')
				p++;
			memmove(irmap_found, p, strlen(p) + 1);
		}
	}
	if (irmap_found)
		pr_info("irmap: inode %lu of device %#lx is %s", (unsigned long)sb->st_ino,
			(unsigned long)sb->st_dev, irmap_found);
	return irmap_found;
}

static int hexbytes(const char *hex, unsigned char *out, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned v;

		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = v;
	}
	return 0;
}

char *fsnotify_inode_path(const struct fd_src *src, unsigned sdev, unsigned long ino, uint32_t *ghost,
			  unsigned hbytes, unsigned htype, const char *hex, struct stat *sb)
{
	struct file_handle *fh;
	char link[64], path[4096], tpath[4096 + 32];
	struct stat named;
	int mfd, fd;
	ssize_t n;

	if (hbytes > MAX_HANDLE_SZ || strspn(hex, "0123456789abcdef") < 2 * hbytes) {
		pr_err("fd %d of task %d: malformed file handle in its fdinfo", src->fd, src->pid);
		return NULL;
	}
	fh = xmalloc(sizeof(*fh) + hbytes);
	fh->handle_bytes = hbytes;
	fh->handle_type = htype;
	hexbytes(hex, fh->f_handle, hbytes);
	mfd = mount_fd(src->pid, sdev);
	if (mfd < 0) {
		free(fh);
		return NULL;
	}
	fd = open_by_handle_at(mfd, fh, O_PATH | O_CLOEXEC);
	close(mfd);
	free(fh);
	if (fd < 0) {
		pr_perror("fd %d of task %d: cannot open the inode %lu it watches",
			  src->fd, src->pid, ino);
		return NULL;
	}
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n > 0)
		path[n] = 0;
	if (n <= 0 || fstat(fd, sb)) {
		pr_perror("fd %d of task %d: cannot find the path of watched inode %lu", src->fd,
			  src->pid, ino);
		close(fd);
		return NULL;
	}
	/* A deleted inode only the watch (or the tree) still holds travels as a
	 * ghost file, read through our own O_PATH descriptor, which therefore
	 * stays open until collect exits. */
	if (ghost && !sb->st_nlink && path[0] == '/' && n > 10 &&
	    !strcmp(path + n - 10, " (deleted)") && (S_ISREG(sb->st_mode) || S_ISDIR(sb->st_mode))) {
		char what[64], via[64];

		snprintf(what, sizeof(what), "inotify fd %d", src->fd);
		snprintf(via, sizeof(via), "/proc/self/fd/%d", fd);
		if (ghost_collect_path(src->pid, what, path, via, ghost)) {
			close(fd);
			return NULL;
		}
		path[n - 10] = 0;
		return xstrdup(path);
	}
	close(fd);
	if (path[0] == '/' && !(n > 10 && !strcmp(path + n - 10, " (deleted)")) &&
	    !lstat(mntns_path(src->pid, path, tpath, sizeof(tpath)), &named) &&
	    named.st_dev == sb->st_dev && named.st_ino == sb->st_ino)
		return xstrdup(path);
	if (sb->st_nlink && opts.force_irmap) {
		char *found = irmap_find(src->pid, sdev, sb);

		if (found)
			return found;
	}
	pr_err("fd %d of task %d: %s watches inode %lu, which has no path (%s)%s; "
	       "not supported",
	       src->fd, src->pid, strstr(src->link, "fanotify") ? "fanotify" : "inotify", ino,
	       path, !sb->st_nlink	   ? "" :
	       opts.force_irmap ? ", and --force-irmap found no other name" :
				  " but other names (--force-irmap looks for them)");
	return NULL;
}

static int inotify_dump(const struct fd_src *src, Stasis__FileEntry *fe)
{
	Stasis__InotifyEntry *e = xmalloc(sizeof(*e));
	char *text = read_fdinfo_all(src);
	size_t cap = 0;

	if (!text) {
		free(e);
		return -1;
	}
	stasis__inotify_entry__init(e);
	fe->type = STASIS__FD_TYPE__INOTIFY;
	fe->inotify = e;
	for (char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		unsigned wd, sdev, mask, ignored, hbytes;
		unsigned htype;
		int off = 0;
		unsigned long ino;
		Stasis__InotifyWatch *w;
		struct stat sb;
		size_t at;

		if (strncmp(p, "inotify wd:", 11))
			continue;
		if (sscanf(p,
			   "inotify wd:%x ino:%lx sdev:%x mask:%x ignored_mask:%x fhandle-bytes:%x "
			   "fhandle-type:%x f_handle:%n",
			   &wd, &ino, &sdev, &mask, &ignored, &hbytes, &htype, &off) != 7 ||
		    !off) {
			pr_err("fd %d of task %d: cannot parse inotify fdinfo line '%.80s'",
			       src->fd, src->pid, p);
			goto err;
		}
		w = xmalloc(sizeof(*w));
		stasis__inotify_watch__init(w);
		w->wd = wd;
		w->mask = mask;
		w->path = fsnotify_inode_path(src, sdev, ino, &w->ghost, hbytes, htype, p + off, &sb);
		if (!w->path) {
			free(w);
			goto err;
		}
		w->has_ghost = w->ghost != 0;
		if (sb.st_ino != ino) {
			pr_err("fd %d of task %d: the inotify watch %u resolves to %s, another "
			       "inode",
			       src->fd, src->pid, wd, w->path);
			free(w->path);
			free(w);
			goto err;
		}
		w->has_dev = w->has_ino = true;
		w->dev = sb.st_dev;
		w->ino = sb.st_ino;
		if (e->n_watches == cap) {
			cap = cap ? cap * 2 : 8;
			e->watches = xrealloc(e->watches, cap * sizeof(*e->watches));
		}
		/* ascending wd, the order the restore adds them in */
		for (at = e->n_watches; at > 0 && e->watches[at - 1]->wd > wd; at--)
			e->watches[at] = e->watches[at - 1];
		e->watches[at] = w;
		e->n_watches++;
		pr_debug("inotify fd %d of task %d: wd %u mask %#x on %s", src->fd, src->pid, wd,
			 mask, w->path);
	}
	free(text);
	return 0;
err:
	free(text);
	return -1;
}

const struct fd_dump_ops inotify_dump_ops = { "inotify", inotify_match, inotify_dump };
