// SPDX-License-Identifier: GPL-2.0
/*
 * pidfds on restore. A pidfd can only be opened once its task exists,
 * after the descriptors are staged: a pidfd of stasis-inject holds the
 * number until post() puts the real one there, made in the task (remote
 * pidfd_open). Descriptors sharing one description get it, in another
 * task, with pidfd_getfd from the first holder. A thread's pidfd waits
 * for its thread, created after the descriptors (pidfd_restore_late).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "files.h"
#include "stasis/log.h"
#include "stasis/util.h"

/* Where each pidfd description is, once made. */
struct pidfd_made {
	uint32_t id;
	pid_t holder;
	int fd;
};

static struct pidfd_made *made;
static size_t nr_made;

/* Thread pidfds whose thread does not exist yet. */
struct pidfd_wait {
	pid_t holder;
	uint32_t fd, id, flags;
	pid_t pid;
	bool cloexec;
};

static struct pidfd_wait *waiting;
static size_t nr_waiting;

static int pidfd_placeholder(Stasis__FileEntry *fe)
{
	int fd;

	if (!fe->pidfd) {
		pr_err("file %u: malformed pidfd record", fe->id);
		return -1;
	}
	fd = syscall(SYS_pidfd_open, getpid(), 0);
	if (fd < 0)
		pr_perror("cannot open a pidfd");
	return fd;
}

/* The description of id at fd in t, made or fetched from its first holder. */
static int install(struct itask *t, uint32_t fd, uint32_t id, pid_t pid, uint32_t flags,
		   bool cloexec)
{
	struct pidfd_made *m = NULL;
	long got, r, p = -1;

	for (size_t i = 0; i < nr_made && !m; i++)
		if (made[i].id == id)
			m = &made[i];
	if (m && m->holder == t->pid) {
		got = m->fd;
	} else if (m) {
		p = ISYS(t, SYS_pidfd_open, m->holder, 0);
		got = p < 0 ? p : ISYS(t, SYS_pidfd_getfd, p, m->fd, 0);
	} else {
		got = ISYS(t, SYS_pidfd_open, pid, flags & (O_NONBLOCK | O_EXCL));
	}
	if (p >= 0)
		ISYS(t, SYS_close, p);
	if (got < 0) {
		pr_err("task %d: cannot open the pidfd of %d for fd %u: %s", t->pid, pid, fd,
		       strerror(-got));
		return -1;
	}
	if (got == fd)
		return 0;
	r = ISYS(t, SYS_dup3, got, fd, cloexec ? O_CLOEXEC : 0);
	if (!m || m->holder != t->pid)
		ISYS(t, SYS_close, got);
	if (r != fd) {
		pr_err("task %d: cannot put the pidfd of %d at fd %u: %s", t->pid, pid, fd,
		       strerror(-r));
		return -1;
	}
	if (!m) {
		made = xrealloc(made, (nr_made + 1) * sizeof(*made));
		made[nr_made++] = (struct pidfd_made){ id, t->pid, fd };
	}
	pr_debug("task %d: fd %u is the pidfd of %d", t->pid, fd, pid);
	return 0;
}

static int pidfd_post(struct itask *t, Stasis__FdinfoEntry *fi, Stasis__FileEntry *fe)
{
	pid_t pid = fe->pidfd->pid;

	if (kill(pid, 0) && errno == ESRCH && (fe->flags & O_EXCL)) {
		/* a thread not created yet (threads come after descriptors) */
		waiting = xrealloc(waiting, (nr_waiting + 1) * sizeof(*waiting));
		waiting[nr_waiting++] = (struct pidfd_wait){ t->pid, fi->fd, fe->id, fe->flags,
							     pid, fi->cloexec };
		return 0;
	}
	return install(t, fi->fd, fe->id, pid, fe->flags, fi->cloexec);
}

int pidfd_restore_late(struct itask *t)
{
	for (size_t i = 0; i < nr_waiting; i++) {
		struct pidfd_wait *w = &waiting[i];

		if (w->holder == t->pid && install(t, w->fd, w->id, w->pid, w->flags, w->cloexec))
			return -1;
	}
	return 0;
}

const struct fd_restore_ops pidfd_restore_ops = { STASIS__FD_TYPE__PIDFD, pidfd_placeholder,
						  pidfd_post };
