// SPDX-License-Identifier: GPL-2.0
/*
 * Files of /proc and namespace files on restore. A PROCFS description
 * names a task of the tree, which does not exist while descriptors are
 * staged: a placeholder stands at its number until post() opens the file
 * in stasis-inject (the tree exists then) and the task takes that very
 * description with pidfd_getfd; descriptors sharing it in another task
 * fetch it from the first holder the same way. A namespace file is the
 * namespace stasis-inject runs in (collect refuses any other). A directory
 * /proc/PID of a process gone comes from a helper process, the same PID
 * when it is free, which lives while the tree takes its descriptors and
 * working directories on it (entering it needs the process alive), and is
 * killed before the tree runs (ghost.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "files.h"
#include "stasis/log.h"
#include "stasis/util.h"

/* Where each PROCFS description is, once made. */
struct procfs_made {
	uint32_t id;
	pid_t holder;
	int fd;
};

static struct procfs_made *made;
static size_t nr_made;

static int procfs_placeholder(Stasis__FileEntry *fe)
{
	int fd = open("/", O_PATH | O_CLOEXEC);

	if (fd < 0)
		pr_perror("file %u (%s): cannot open a placeholder", fe->id, fe->path);
	return fd;
}

/* A copy in t of descriptor fd of task holder (or -errno). */
static long fetch(struct itask *t, pid_t holder, int fd)
{
	long p = ISYS(t, SYS_pidfd_open, holder, 0), got;

	if (p < 0)
		return p;
	got = ISYS(t, SYS_pidfd_getfd, p, fd, 0);
	ISYS(t, SYS_close, p);
	return got;
}

/* The description, opened here with its flags and offset. */
static int procfs_open_here(Stasis__FileEntry *fe)
{
	int flags = fe->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_CLOEXEC);
	int fd = open(fe->path, flags | O_NOCTTY | O_CLOEXEC);

	if (fd < 0) {
		pr_perror("cannot open %s", fe->path);
		return -1;
	}
	if (!(flags & O_PATH) && fe->has_pos && fe->pos &&
	    lseek(fd, fe->pos, SEEK_SET) != (off_t)fe->pos)
		pr_warn("cannot seek %s to %llu: %s", fe->path, (unsigned long long)fe->pos,
			strerror(errno));
	return fd;
}

static int procfs_post(struct itask *t, Stasis__FdinfoEntry *fi, Stasis__FileEntry *fe)
{
	struct procfs_made *m = NULL;
	long got, r;
	int here = -1;

	for (size_t i = 0; i < nr_made && !m; i++)
		if (made[i].id == fe->id)
			m = &made[i];
	if (m && m->holder == t->pid) {
		got = m->fd;
	} else if (m) {
		got = fetch(t, m->holder, m->fd);
	} else {
		here = procfs_open_here(fe);
		if (here < 0)
			return -1;
		got = fetch(t, getpid(), here);
		close(here);
	}
	if (got < 0) {
		pr_err("task %d: cannot install %s at fd %u: %s", t->pid, fe->path, fi->fd,
		       strerror(-got));
		return -1;
	}
	r = ISYS(t, SYS_dup3, got, fi->fd, fi->cloexec ? O_CLOEXEC : 0);
	if (!m || m->holder != t->pid)
		ISYS(t, SYS_close, got);
	if (r != (long)fi->fd) {
		pr_err("task %d: cannot put %s at fd %u: %s", t->pid, fe->path, fi->fd,
		       strerror(-r));
		return -1;
	}
	if (!m) {
		made = xrealloc(made, (nr_made + 1) * sizeof(*made));
		made[nr_made++] = (struct procfs_made){ fe->id, t->pid, fi->fd };
	}
	return 0;
}

const struct fd_restore_ops procfs_restore_ops = { STASIS__FD_TYPE__PROCFS, procfs_placeholder,
						   procfs_post };

static int nsfs_open(Stasis__FileEntry *fe)
{
	size_t n = strcspn(fe->path, ":");
	char path[64];
	int fd;

	if (!n || n > 16 || !fe->path[n]) {
		pr_err("file %u: '%s' names no namespace", fe->id, fe->path);
		return -1;
	}
	snprintf(path, sizeof(path), "/proc/self/ns/%.*s", (int)n, fe->path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		pr_perror("cannot open %s for %s", path, fe->path);
	return fd;
}

const struct fd_restore_ops nsfs_restore_ops = { STASIS__FD_TYPE__NSFS, nsfs_open, NULL };

/* The child: waits to be killed, by us or with us. */
static int wait_killed(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;)
		pause();
	return 0;
}

pid_t procfs_helper_start(pid_t pid)
{
	struct clone_args ca = { .exit_signal = SIGCHLD };
	pid_t tid = pid, child;

	/* the same number when it is free, any other when not */
	ca.set_tid = (uint64_t)(uintptr_t)&tid;
	ca.set_tid_size = 1;
	child = syscall(SYS_clone3, &ca, sizeof(ca));
	if (child < 0)
		child = fork();
	if (child < 0) {
		pr_perror("cannot fork a process for the directory /proc/%d", pid);
		return -1;
	}
	if (!child)
		_exit(wait_killed());
	if (child != pid)
		pr_warn("the directory /proc/%d of a process gone is /proc/%d now", pid, child);
	return child;
}

void procfs_helper_end(pid_t child)
{
	kill(child, SIGKILL);
	while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
		;
}
