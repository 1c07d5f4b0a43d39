// SPDX-License-Identifier: GPL-2.0
/*
 * Event objects on restore. eventfd, signalfd and inotify are made whole in
 * stasis-inject. An epoll registers its targets inside the task, by the
 * task's own descriptor numbers (the kernel keys a registration by file and
 * number), once they are all in place; a timerfd is armed as late as the
 * descriptor framework allows, in post(), so its time left is not spent
 * while memory is restored.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "files.h"
#include "stasis/log.h"
#include "stasis/util.h"

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

/* Open-file flags the creation calls cannot take, set afterwards. */
static int set_status_flags(int fd, Stasis__FileEntry *fe)
{
	int want = fe->flags & (O_NONBLOCK | O_APPEND);
	int now = fcntl(fd, F_GETFL);

	if (now < 0 || ((now & (O_NONBLOCK | O_APPEND)) != want &&
			fcntl(fd, F_SETFL, (now & ~(O_NONBLOCK | O_APPEND)) | want))) {
		pr_perror("cannot set the flags of %s (file %u)", fe->path, fe->id);
		return -1;
	}
	return 0;
}

/* Descriptions whose post() already ran (in the first task holding them). */
static uint32_t *posted;
static size_t nr_posted;

static bool first_post(uint32_t id)
{
	for (size_t i = 0; i < nr_posted; i++)
		if (posted[i] == id)
			return false;
	posted = xrealloc(posted, (nr_posted + 1) * sizeof(*posted));
	posted[nr_posted++] = id;
	return true;
}

/* ---- eventfd ---- */

static int eventfd_open(Stasis__FileEntry *fe)
{
	Stasis__EventfdEntry *e = fe->eventfd;
	int flags = EFD_CLOEXEC, fd;

	if (!e || e->count == UINT64_MAX) {
		pr_err("file %u: malformed eventfd record", fe->id);
		return -1;
	}
	if (e->semaphore)
		flags |= EFD_SEMAPHORE;
	fd = eventfd(0, flags);
	if (fd < 0) {
		pr_perror("cannot create an eventfd");
		return -1;
	}
	/* eventfd() takes 32 bits only: the counter is written in */
	if ((e->count && write(fd, &e->count, 8) != 8) || set_status_flags(fd, fe)) {
		pr_perror("cannot restore the counter (%llu) of an eventfd",
			  (unsigned long long)e->count);
		close(fd);
		return -1;
	}
	return fd;
}

const struct fd_restore_ops eventfd_restore_ops = { STASIS__FD_TYPE__EVENTFD, eventfd_open, NULL };

/* ---- epoll ---- */

static int epoll_open(Stasis__FileEntry *fe)
{
	int fd = epoll_create1(EPOLL_CLOEXEC);

	if (fd < 0) {
		pr_perror("cannot create an epoll");
		return -1;
	}
	if (!fe->epoll || set_status_flags(fd, fe)) {
		if (!fe->epoll)
			pr_err("file %u: malformed epoll record", fe->id);
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Registers tfd's target with the number it was made with. A target whose
 * number was closed or reused since is put at that number for the call
 * (the kernel keys a registration by file and number), and whatever the
 * number holds now is moved aside and back.
 */
static int epoll_add_tfd(struct itask *t, Stasis__FdinfoEntry *fi, Stasis__EpollTfd *tfd)
{
	struct epoll_event ev = { .events = tfd->events, .data.u64 = tfd->data };
	unsigned long at = scratch_put(t, 0, &ev, sizeof(ev));
	long r, held = -1, saved = -1;

	if (!at)
		return -1;
	if (tfd->has_src_fd) {
		if (tfd->src_fd == tfd->tfd || tfd->tfd == fi->fd) {
			pr_err("task %d: epoll fd %u: malformed registration of fd %u", t->pid,
			       fi->fd, tfd->tfd);
			return -1;
		}
		held = ISYS(t, SYS_fcntl, tfd->tfd, F_GETFD);
		if (held >= 0) {
			saved = ISYS(t, SYS_fcntl, tfd->tfd, F_DUPFD_CLOEXEC, 0);
			if (saved < 0) {
				pr_err("task %d: cannot move fd %u aside: %s", t->pid, tfd->tfd,
				       strerror(-saved));
				return -1;
			}
		}
		r = ISYS(t, SYS_dup3, tfd->src_fd, tfd->tfd, 0);
		if (r != (long)tfd->tfd) {
			pr_err("task %d: epoll fd %u: cannot put fd %u at %u: %s", t->pid, fi->fd,
			       tfd->src_fd, tfd->tfd, strerror(-r));
			return -1;
		}
	}
	r = ISYS(t, SYS_epoll_ctl, fi->fd, EPOLL_CTL_ADD, tfd->tfd, at);
	if (r)
		pr_err("task %d: epoll fd %u: cannot register fd %u (events %#x): %s", t->pid,
		       fi->fd, tfd->tfd, tfd->events, strerror(-r));
	if (!tfd->has_src_fd)
		return r ? -1 : 0;
	if (saved >= 0) {
		long back = ISYS(t, SYS_dup3, saved, tfd->tfd, held & FD_CLOEXEC ? O_CLOEXEC : 0);

		ISYS(t, SYS_close, saved);
		if (back != (long)tfd->tfd) {
			pr_err("task %d: cannot put fd %u back: %s", t->pid, tfd->tfd,
			       strerror(-back));
			return -1;
		}
	} else {
		ISYS(t, SYS_close, tfd->tfd);
	}
	return r ? -1 : 0;
}

/* In the task that dumped the epoll: every target is at its number now.
 * One dumped in flight names its targets by file: registered with the
 * flight (epoll_register_flight). */
static int epoll_post(struct itask *t, Stasis__FdinfoEntry *fi, Stasis__FileEntry *fe)
{
	if (!first_post(fe->id))
		return 0; /* the registrations belong to the description: made once */
	for (size_t i = 0; i < fe->epoll->n_tfds; i++)
		if (!fe->epoll->tfds[i]->has_file_id && epoll_add_tfd(t, fi, fe->epoll->tfds[i]))
			return -1;
	return 0;
}

/*
 * An epoll in flight: each target (a description of the checkpoint) is
 * registered under the number it was registered with, in a child of
 * stasis-inject that puts it there (the other threads keep their numbers;
 * a registration outlives the number, as long as its file is open).
 */
int epoll_register_flight(int epfd, uint32_t id, int (*open_target)(uint32_t id))
{
	Stasis__FileEntry *fe = file_by_id(id);
	int *targets = NULL, status, ret = -1;
	size_t n = 0;
	pid_t child;

	if (!fe)
		return -1;
	if (fe->type != STASIS__FD_TYPE__EPOLL || !fe->epoll) {
		ret = 0;
		goto out;
	}
	targets = xmalloc((fe->epoll->n_tfds + 1) * sizeof(*targets));
	for (; n < fe->epoll->n_tfds; n++) {
		Stasis__EpollTfd *t = fe->epoll->tfds[n];

		targets[n] = t->has_file_id ? open_target(t->file_id) : -1;
		if (t->has_file_id && targets[n] < 0) {
			pr_err("epoll %u in flight: cannot open the file it watches as fd %u", id,
			       t->tfd);
			goto out;
		}
	}
	child = fork();
	if (child < 0) {
		pr_perror("epoll %u in flight: cannot fork", id);
		goto out;
	}
	if (!child) {
		/* the epoll and the targets out of the way of the numbers taken */
		int above = 0, ep;

		for (size_t i = 0; i < n; i++)
			if ((int)fe->epoll->tfds[i]->tfd >= above)
				above = (int)fe->epoll->tfds[i]->tfd + 1;
		ep = fcntl(epfd, F_DUPFD_CLOEXEC, above);
		for (size_t i = 0; ep >= 0 && i < n; i++)
			if (targets[i] >= 0 && (targets[i] = fcntl(targets[i], F_DUPFD_CLOEXEC, above)) < 0)
				_exit(1);
		for (size_t i = 0; ep >= 0 && i < n; i++) {
			Stasis__EpollTfd *t = fe->epoll->tfds[i];
			struct epoll_event ev = { .events = t->events, .data.u64 = t->data };

			if (targets[i] < 0)
				continue;
			if (dup2(targets[i], (int)t->tfd) != (int)t->tfd ||
			    epoll_ctl(ep, EPOLL_CTL_ADD, (int)t->tfd, &ev))
				_exit(1);
		}
		_exit(ep < 0);
	}
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status)) {
		pr_err("epoll %u in flight: cannot register the files it watches", id);
		goto out;
	}
	ret = 0;
out:
	for (size_t i = 0; i < n; i++)
		if (targets[i] >= 0)
			close(targets[i]);
	free(targets);
	protobuf_c_message_free_unpacked(&fe->base, NULL);
	return ret;
}

const struct fd_restore_ops epoll_restore_ops = { STASIS__FD_TYPE__EPOLL, epoll_open, epoll_post };

/* ---- signalfd ---- */

static int signalfd_open(Stasis__FileEntry *fe)
{
	uint64_t mask;
	int fd;

	if (!fe->signalfd) {
		pr_err("file %u: malformed signalfd record", fe->id);
		return -1;
	}
	mask = fe->signalfd->sigmask;
	/* the raw call: the kernel's sigset is 8 bytes, glibc's 128 */
	fd = syscall(SYS_signalfd4, -1, &mask, sizeof(mask), SFD_CLOEXEC);
	if (fd < 0) {
		pr_perror("cannot create a signalfd for mask %#llx", (unsigned long long)mask);
		return -1;
	}
	if (set_status_flags(fd, fe)) {
		close(fd);
		return -1;
	}
	return fd;
}

const struct fd_restore_ops signalfd_restore_ops = { STASIS__FD_TYPE__SIGNALFD, signalfd_open,
						     NULL };

/* ---- timerfd ---- */

static int timerfd_open(Stasis__FileEntry *fe)
{
	int fd;

	if (!fe->timerfd) {
		pr_err("file %u: malformed timerfd record", fe->id);
		return -1;
	}
	fd = timerfd_create(fe->timerfd->clockid, TFD_CLOEXEC);
	if (fd < 0) {
		pr_perror("cannot create a timerfd on clock %d", fe->timerfd->clockid);
		return -1;
	}
	if (set_status_flags(fd, fe)) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Armed here, not when it was opened: a relative timer is given the time it
 * had left at the dump, counted from now (the tree did not run meanwhile,
 * as in CRIU); an absolute one (TFD_TIMER_ABSTIME) keeps its expiry on its
 * clock. Expirations not read at the dump are put back with
 * TFD_IOC_SET_TICKS after the settime, which clears them.
 */
static int timerfd_post(struct itask *t, Stasis__FdinfoEntry *fi, Stasis__FileEntry *fe)
{
	Stasis__TimerfdEntry *e = fe->timerfd;
	struct itimerspec its = {
		.it_value = { e->value_ns / 1000000000, e->value_ns % 1000000000 },
		.it_interval = { e->interval_ns / 1000000000, e->interval_ns % 1000000000 },
	};
	int fd, ret = -1;

	if (!first_post(fe->id))
		return 0;
	fd = task_fd(t->hpid, fi->fd);
	if (fd < 0)
		return -1;
	if (e->value_ns &&
	    timerfd_settime(fd, e->settime_flags & (TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET),
			    &its, NULL)) {
		pr_perror("task %d: cannot arm timerfd %u (clock %d, %llu ns, every %llu ns)",
			  t->pid, fi->fd, e->clockid, (unsigned long long)e->value_ns,
			  (unsigned long long)e->interval_ns);
		goto out;
	}
	if (e->ticks && ioctl(fd, TFD_IOC_SET_TICKS, &e->ticks)) {
		if (errno != ENOTTY && errno != EINVAL) {
			pr_perror("task %d: cannot set the ticks of timerfd %u", t->pid, fi->fd);
			goto out;
		}
		pr_warn("task %d: timerfd %u: this kernel cannot set a timer's ticks; the %llu "
			"expiration(s) not read at the dump are lost",
			t->pid, fi->fd, (unsigned long long)e->ticks);
	}
	ret = 0;
out:
	close(fd);
	return ret;
}

const struct fd_restore_ops timerfd_restore_ops = { STASIS__FD_TYPE__TIMERFD, timerfd_open,
						    timerfd_post };

/* ---- inotify ---- */

/* More watch descriptors than this between two watches, or in all, are
 * not skipped: the wds then change (with a warning). */
#define WD_GAP_MAX 65536
#define WD_SKIP_TOTAL (1 << 20)

/*
 * Watch descriptors come from a cyclic allocator (the next one after the
 * last given, from 1), so the watches are added in ascending wd order and
 * a gap is skipped by adding and removing a watch on a private inode (a
 * memfd). Each removal queues an IN_IGNORED event, read away at the end.
 */
static int skip_wds(int ifd, int *next, int upto, int *dummy)
{
	char path[64];

	if (*dummy < 0) {
		*dummy = memfd_create("stasis-inotify-gap", MFD_CLOEXEC);
		if (*dummy < 0) {
			pr_perror("cannot make an inode to skip inotify watch descriptors");
			return -1;
		}
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", *dummy);
	while (*next < upto) {
		int wd = inotify_add_watch(ifd, path, IN_ATTRIB);

		if (wd < 0) {
			pr_perror("cannot add an inotify watch to skip wd %d", *next);
			return -1;
		}
		inotify_rm_watch(ifd, wd);
		*next = wd + 1;
	}
	return 0;
}

/* Reads away the IN_IGNORED events of the skipped descriptors. */
static void drain_gaps(int ifd, Stasis__FileEntry *fe)
{
	char buf[4096] __attribute__((aligned(8)));
	int fl = fcntl(ifd, F_GETFL);
	ssize_t n;

	fcntl(ifd, F_SETFL, fl | O_NONBLOCK);
	while ((n = read(ifd, buf, sizeof(buf))) > 0)
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			bool real = false;

			for (size_t i = 0; i < fe->inotify->n_watches; i++)
				real |= ev->wd == (int)fe->inotify->watches[i]->wd;
			if (real || !(ev->mask & IN_IGNORED))
				pr_warn("inotify %s (file %u): an event (wd %d, mask %#x) that "
					"came during the restore is lost",
					fe->path, fe->id, ev->wd, ev->mask);
			p += sizeof(*ev) + ev->len;
		}
	fcntl(ifd, F_SETFL, fl);
}

static int add_watch(int ifd, Stasis__FileEntry *fe, Stasis__InotifyWatch *w)
{
	uint32_t mask = w->mask;
	const char *path = w->path;
	char ghost[64];
	struct stat sb;
	int wd;

	/* a deleted inode: watched through the ghost file made for it */
	if (w->has_ghost) {
		if (ghost_proc_path(w->ghost, ghost, sizeof(ghost)))
			return -1;
		wd = inotify_add_watch(ifd, ghost, mask);
		if (wd < 0) {
			pr_perror("inotify (file %u): cannot watch the deleted %s (mask %#x)",
				  fe->id, w->path, mask);
			return -1;
		}
		if (wd != (int)w->wd)
			pr_warn("inotify (file %u): the watch on the deleted %s is wd %d now, was %u",
				fe->id, w->path, wd, w->wd);
		return wd;
	}
	if (lstat(path, &sb)) {
		pr_perror("inotify (file %u): cannot find the watched %s", fe->id, w->path);
		return -1;
	}
	if (S_ISLNK(sb.st_mode))
		mask |= IN_DONT_FOLLOW; /* the watch was on the link itself */
	if (w->has_ino && (sb.st_ino != w->ino || sb.st_dev != w->dev))
		pr_warn("inotify (file %u): %s is not the file it was at the dump; watching it "
			"anyway",
			fe->id, w->path);
	wd = inotify_add_watch(ifd, w->path, mask);
	if (wd < 0) {
		pr_perror("inotify (file %u): cannot watch %s (mask %#x)", fe->id, w->path, mask);
		return -1;
	}
	if (wd != (int)w->wd)
		pr_warn("inotify (file %u): the watch on %s is wd %d now, was %u", fe->id, w->path,
			wd, w->wd);
	return wd;
}

static int inotify_open(Stasis__FileEntry *fe)
{
	int ifd, next = 1, dummy = -1, budget = WD_SKIP_TOTAL;
	bool skipped = false;

	if (!fe->inotify) {
		pr_err("file %u: malformed inotify record", fe->id);
		return -1;
	}
	ifd = inotify_init1(IN_CLOEXEC);
	if (ifd < 0) {
		pr_perror("cannot create an inotify instance");
		return -1;
	}
	for (size_t i = 0; i < fe->inotify->n_watches; i++) {
		Stasis__InotifyWatch *w = fe->inotify->watches[i];
		int wd;

		if ((int)w->wd > next && (int)w->wd - next <= WD_GAP_MAX &&
		    (int)w->wd - next <= budget) {
			budget -= w->wd - next;
			if (skip_wds(ifd, &next, w->wd, &dummy))
				goto err;
			skipped = true;
		}
		wd = add_watch(ifd, fe, w);
		if (wd < 0)
			goto err;
		if (wd >= next)
			next = wd + 1;
	}
	if (dummy >= 0)
		close(dummy);
	if (skipped)
		drain_gaps(ifd, fe);
	if (set_status_flags(ifd, fe)) {
		close(ifd);
		return -1;
	}
	return ifd;
err:
	if (dummy >= 0)
		close(dummy);
	close(ifd);
	return -1;
}

const struct fd_restore_ops inotify_restore_ops = { STASIS__FD_TYPE__INOTIFY, inotify_open, NULL };
