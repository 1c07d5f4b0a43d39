// SPDX-License-Identifier: GPL-2.0
/*
 * pidfds on restore. A pidfd can only be opened once its task exists,
 * after the descriptors are staged: a pidfd of stasis-inject holds the
 * number until post() puts the real one there, made in the task (remote
 * pidfd_open). Descriptors sharing one description get it, in another
 * task, with pidfd_getfd from the first holder. A thread's pidfd waits
 * for its thread, created after the descriptors (pidfd_restore_late).
 * A pidfd of a task that was reaped is opened in stasis-inject on a helper
 * that exits the same way and is reaped.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
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

/*
 * pidfds of reaped tasks, by pidfs inode at the dump: a helper child that
 * exits with the same status and is reaped stands for each. All the
 * descriptions naming it are opened while it lives (a reaped PID cannot be
 * opened), then handed out one per open().
 */
struct dead_pool {
	uint64_t ino;
	int *fds;
	size_t nr, next;
};

static struct dead_pool *pools;
static size_t nr_pools;

static void helper_exit(Stasis__PidfdEntry *e, int hold)
{
	char c;
	int st = e->has_exit_status ? e->exit_status : 0;

	/* wait until the parent holds its pidfds */
	while (read(hold, &c, 1) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(st)) {
		struct rlimit no_core = { 0, 0 };
		sigset_t all;

		setrlimit(RLIMIT_CORE, &no_core);
		signal(WTERMSIG(st), SIG_DFL);
		sigfillset(&all);
		sigprocmask(SIG_UNBLOCK, &all, NULL);
		raise(WTERMSIG(st));
	}
	_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 0);
}

static struct dead_pool *dead_pool_make(Stasis__FileEntry *fe)
{
	unsigned n = records_count("files");
	struct dead_pool *p;
	int hold[2], status;
	pid_t pid;

	pools = xrealloc(pools, (nr_pools + 1) * sizeof(*pools));
	p = &pools[nr_pools++];
	*p = (struct dead_pool){ .ino = fe->pidfd->ino };
	for (unsigned i = 0; i < n; i++) {
		Stasis__FileEntry *o = records_get("files", i, &stasis__file_entry__descriptor);

		if (o && o->type == STASIS__FD_TYPE__PIDFD && o->pidfd && o->pidfd->dead &&
		    o->pidfd->ino == p->ino)
			p->nr++;
		if (o)
			protobuf_c_message_free_unpacked(&o->base, NULL);
	}
	p->fds = xmalloc(p->nr * sizeof(*p->fds));
	if (pipe2(hold, O_CLOEXEC)) {
		pr_perror("cannot make a pipe for a pidfd helper");
		return NULL;
	}
	pid = fork();
	if (pid < 0) {
		pr_perror("cannot fork a helper for the pidfd of a reaped task");
		return NULL;
	}
	if (pid == 0) {
		close(hold[1]);
		helper_exit(fe->pidfd, hold[0]);
	}
	close(hold[0]);
	for (size_t i = 0; i < p->nr; i++) {
		p->fds[i] = syscall(SYS_pidfd_open, pid, 0);
		if (p->fds[i] < 0)
			pr_perror("cannot open a pidfd of helper %d", pid);
	}
	close(hold[1]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	for (size_t i = 0; i < p->nr; i++)
		if (p->fds[i] < 0)
			return NULL;
	pr_debug("pidfd of a reaped task (inode %llu): helper %d, status %#x, %zu descriptions",
		 (unsigned long long)p->ino, pid, status, p->nr);
	return p;
}

static int dead_open(Stasis__FileEntry *fe)
{
	struct dead_pool *p = NULL;
	int fd;

	for (size_t i = 0; i < nr_pools && !p; i++)
		if (pools[i].ino == fe->pidfd->ino)
			p = &pools[i];
	if (!p)
		p = dead_pool_make(fe);
	if (!p)
		return -1;
	if (p->next >= p->nr) {
		pr_err("file %u: more pidfds of a reaped task than the checkpoint counts", fe->id);
		return -1;
	}
	fd = p->fds[p->next++];
	if ((fe->flags & O_NONBLOCK) && fcntl(fd, F_SETFL, O_NONBLOCK)) {
		pr_perror("cannot make pidfd file %u non-blocking", fe->id);
		close(fd);
		return -1;
	}
	return fd;
}

static int pidfd_placeholder(Stasis__FileEntry *fe)
{
	int fd;

	if (!fe->pidfd) {
		pr_err("file %u: malformed pidfd record", fe->id);
		return -1;
	}
	if (fe->pidfd->dead)
		return dead_open(fe);
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

	if (fe->pidfd->dead)
		return 0; /* opened whole, in stasis-inject */
	pid_t host = pstree_host_pid(pid);

	if ((!host || (kill(host, 0) && errno == ESRCH)) && (fe->flags & O_EXCL)) {
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
