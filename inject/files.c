// SPDX-License-Identifier: GPL-2.0
/*
 * Descriptors: each open file description of the checkpoint is opened once
 * by stasis-inject before the task is cloned, at a staging number above
 * every restored one; the task inherits them, and remote dup3 calls put
 * them at their numbers, so dup'ed descriptors share one description.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "files.h"
#include "stasis/log.h"
#include "stasis/util.h"

/* lowest staging number when RLIMIT_NOFILE allows twice as much */
#define STAGE_FLOOR 4096

struct staged {
	uint32_t id;
	int stage_fd;
};

static struct staged *staged;
static size_t nr_staged;

Stasis__FileEntry *file_by_id(uint32_t id)
{
	unsigned n = records_count("files");

	for (unsigned i = 0; i < n; i++) {
		Stasis__FileEntry *fe = records_get("files", i, &stasis__file_entry__descriptor);

		if (fe && fe->id == id)
			return fe;
		if (fe)
			protobuf_c_message_free_unpacked(&fe->base, NULL);
	}
	return NULL;
}

int files_staged_fd(uint32_t id)
{
	for (size_t i = 0; i < nr_staged; i++)
		if (staged[i].id == id)
			return staged[i].stage_fd;
	return -1;
}

/* The caller's terminal, for --shell-job. */
static int caller_tty(void)
{
	for (int fd = 0; fd <= 2; fd++)
		if (isatty(fd))
			return dup(fd);
	return open("/dev/tty", O_RDWR | O_NOCTTY);
}

static int open_path(Stasis__FileEntry *fe, int extra)
{
	int flags = fe->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_NOCTTY | O_CLOEXEC);

	/* made by O_TMPFILE and linked since: opened by its name now */
	if ((flags & O_TMPFILE) == O_TMPFILE)
		flags &= ~O_TMPFILE;
	int fd = open(fe->path, flags | extra | O_NOCTTY);

	if (fd < 0)
		pr_perror("cannot open %s", fe->path);
	return fd;
}

static int regfile_open(Stasis__FileEntry *fe)
{
	struct stat sb;
	int fd;

	if (fe->has_ghost)
		return ghost_open(fe);
	fd = open_path(fe, 0);
	if (fd < 0)
		return -1;
	if (opts.file_validation == FILE_VALIDATION_FILESIZE && fstat(fd, &sb) == 0 &&
	    fe->has_size && (uint64_t)sb.st_size != fe->size) {
		pr_err("file %s changed size since the dump (was %llu, now %lld bytes; "
		       "--file-validation filesize)",
		       fe->path, (unsigned long long)fe->size, (long long)sb.st_size);
		close(fd);
		return -1;
	}
	if (lseek(fd, fe->pos, SEEK_SET) != (off_t)fe->pos) {
		pr_perror("cannot seek %s to %llu", fe->path, (unsigned long long)fe->pos);
		close(fd);
		return -1;
	}
	return fd;
}

const struct fd_restore_ops regfile_restore_ops = { STASIS__FD_TYPE__REG, regfile_open, NULL };

static int dir_open(Stasis__FileEntry *fe)
{
	int fd;

	if (fe->has_ghost)
		return ghost_open(fe);
	fd = open_path(fe, O_DIRECTORY);

	if (fd >= 0 && fe->has_pos && fe->pos && lseek(fd, fe->pos, SEEK_SET) < 0)
		pr_warn("cannot seek directory %s", fe->path);
	return fd;
}

const struct fd_restore_ops dir_restore_ops = { STASIS__FD_TYPE__DIR, dir_open, NULL };

static int chr_open(Stasis__FileEntry *fe)
{
	return fe->has_ghost ? ghost_open(fe) : open_path(fe, 0);
}

/* A console, virtual console or serial line that was the controlling
 * terminal of its session leader is so again. */
static int chr_post(struct itask *t, Stasis__FdinfoEntry *fi, Stasis__FileEntry *fe)
{
	long r;

	if (t->pe->sid != (uint32_t)t->pid || !t->pe->has_tty_nr || !fe->has_rdev ||
	    t->pe->tty_nr != (uint32_t)fe->rdev ||
	    (major(fe->rdev) != 4 && fe->rdev != makedev(5, 1)))
		return 0;
	r = ISYS(t, SYS_ioctl, fi->fd, TIOCSCTTY, 0);
	if (r) {
		pr_err("task %d: cannot take %s as its controlling terminal: %s", t->pid, fe->path,
		       strerror(-r));
		return -1;
	}
	return 0;
}

const struct fd_restore_ops chr_restore_ops = { STASIS__FD_TYPE__CHR, chr_open, chr_post };

static int tty_open(Stasis__FileEntry *fe)
{
	int fd;

	if (!opts.shell_job) {
		pr_err("the checkpoint holds the terminal %s; restore with --shell-job", fe->path);
		return -1;
	}
	fd = caller_tty();
	if (fd < 0)
		pr_err("--shell-job: stasis-inject has no terminal to give the task");
	return fd;
}

const struct fd_restore_ops tty_restore_ops = { STASIS__FD_TYPE__TTY, tty_open, NULL };

/* O_PATH: opened by path again, or the deleted file made again (ghost.c). */
static int opath_open(Stasis__FileEntry *fe)
{
	int fd;

	if (fe->has_ghost)
		return ghost_open(fe);
	fd = open(fe->path, (fe->flags & ~O_CLOEXEC) | O_CLOEXEC);
	if (fd < 0)
		pr_perror("cannot open %s with O_PATH", fe->path);
	return fd;
}

const struct fd_restore_ops opath_restore_ops = { STASIS__FD_TYPE__PATH, opath_open, NULL };

/* Every type stasis can restore. */
static const struct fd_restore_ops *const fd_types[] = {
	&regfile_restore_ops,
	&opath_restore_ops,
	&dir_restore_ops,
	&chr_restore_ops,
	&tty_restore_ops,
	&ptmx_restore_ops,
	&pts_restore_ops,
	&ctty_restore_ops,
	&pipe_restore_ops,
	&fifo_restore_ops,
	&eventfd_restore_ops,
	&epoll_restore_ops,
	&signalfd_restore_ops,
	&timerfd_restore_ops,
	&inotify_restore_ops,
	&unixsk_restore_ops,
	&inetsk_restore_ops,
	&packetsk_restore_ops,
	&netlinksk_restore_ops,
	&memfd_restore_ops,
	&pidfd_restore_ops,
	&fanotify_restore_ops,
	&procfs_restore_ops,
	&nsfs_restore_ops,
};

static const struct fd_restore_ops *fd_type(Stasis__FdType type)
{
	for (size_t i = 0; i < ARRAY_SIZE(fd_types); i++)
		if (fd_types[i]->type == type)
			return fd_types[i];
	return NULL;
}

int task_fd(pid_t pid, int fd)
{
	int pidfd = syscall(SYS_pidfd_open, pid, 0), copy = -1;

	if (pidfd >= 0) {
		copy = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
		close(pidfd);
	}
	if (copy < 0)
		pr_perror("cannot get fd %d of task %d", fd, pid);
	return copy;
}

static int open_description(Stasis__FileEntry *fe)
{
	const struct fd_restore_ops *ops = fd_type(fe->type);
	int fd;

	if (!ops) {
		pr_err("file %u (%s) has a type this stasis cannot restore", fe->id, fe->path);
		return -1;
	}
	/* a file opened with O_ASYNC keeps the flag but is registered for
	 * SIGIO nowhere, and F_SETFL cannot fix it then: set in the task,
	 * at its number, by files_restore_late */
	fe->flags &= ~O_ASYNC;
	/* opened by its path in its mount namespace; a socket is made in its
	 * network namespace, bound, connected and repaired there whatever
	 * namespace we are in */
	if (ns_enter(STASIS__NS_KIND__NS_MNT, fe->has_mnt_ns ? fe->mnt_ns : 0))
		return -1;
	if (!fe->has_net_ns) {
		fd = ops->open(fe);
	} else if (ns_enter(STASIS__NS_KIND__NS_NET, fe->net_ns)) {
		fd = -1;
	} else {
		fd = ops->open(fe);
		ns_leave(STASIS__NS_KIND__NS_NET);
	}
	ns_leave(STASIS__NS_KIND__NS_MNT);
	return fd;
}

static int load_fdinfo(struct itask *t, int *max_fd)
{
	char name[32];

	snprintf(name, sizeof(name), "fdinfo-%d", t->pid);
	t->nr_fdinfo = records_count(name);
	t->fdinfo = xmalloc((t->nr_fdinfo + 1) * sizeof(*t->fdinfo));
	for (size_t i = 0; i < t->nr_fdinfo; i++) {
		t->fdinfo[i] = records_get(name, i, &stasis__fdinfo_entry__descriptor);
		if (!t->fdinfo[i])
			return -1;
		if ((int)t->fdinfo[i]->fd > *max_fd)
			*max_fd = t->fdinfo[i]->fd;
	}
	return 0;
}

static struct itree *stage_tree;

/* The staged descriptor of description id, opened now if it is not yet. */
static int stage_id(uint32_t id, int *stage_fd)
{
	Stasis__FileEntry *fe;
	int fd, at;

	for (size_t j = 0; j < nr_staged; j++)
		if (staged[j].id == id) {
			*stage_fd = staged[j].stage_fd;
			return 0;
		}
	fe = file_by_id(id);
	if (!fe) {
		pr_err("the checkpoint lacks file %u", id);
		return -1;
	}
	fd = open_description(fe);
	protobuf_c_message_free_unpacked(&fe->base, NULL);
	if (fd < 0)
		return -1;
	/* after the open, which may have staged the files it carries */
	at = stage_tree->stage_base + (int)nr_staged;
	staged = xrealloc(staged, (nr_staged + 1) * sizeof(*staged));
	staged[nr_staged].id = id;
	/* open() may already have landed on the staging number itself */
	staged[nr_staged].stage_fd = fd == at ? fd : fcntl(fd, F_DUPFD, at);
	if (fd != at)
		close(fd);
	if (staged[nr_staged].stage_fd != at) {
		pr_perror("cannot place a descriptor at %d", at);
		return -1;
	}
	*stage_fd = staged[nr_staged++].stage_fd;
	return 0;
}

static int stage(struct itask *t, Stasis__FdinfoEntry *fi)
{
	int fd;

	if (stage_id(fi->id, &fd)) {
		pr_err("task %d: cannot open the file of fd %u", t->pid, fi->fd);
		return -1;
	}
	return 0;
}

int files_open_flight(uint32_t id)
{
	int staged_fd, fd;

	if (!stage_tree) {
		pr_err("file %u: a file in flight is opened before the others", id);
		return -1;
	}
	if (stage_id(id, &staged_fd))
		return -1;
	fd = fcntl(staged_fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		pr_perror("file %u: cannot duplicate its descriptor", id);
	return fd;
}

int files_prepare(struct itree *tr)
{
	int max_fd = 2;
	DIR *d;
	struct dirent *de;
	struct rlimit rl;

	for (size_t i = 0; i < tr->nr; i++)
		if (task_alive(&tr->tasks[i]) && load_fdinfo(&tr->tasks[i], &max_fd))
			return -1;
	/* Staging numbers: above every restored descriptor and all of ours. */
	d = opendir("/proc/self/fd");
	while (d && (de = readdir(d)))
		if (atoi(de->d_name) > max_fd)
			max_fd = atoi(de->d_name);
	if (d)
		closedir(d);
	tr->stage_base = max_fd + 1;
	/*
	 * Types that hold descriptors of their own while staging (pipe and
	 * ghost holders) take the lowest free numbers: keep the staging range
	 * well above them when the limit allows.
	 */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_max >= STAGE_FLOOR * 2) {
		if (rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		if (tr->stage_base < STAGE_FLOOR)
			tr->stage_base = STAGE_FLOOR;
	}
	stage_tree = tr;
	for (size_t i = 0; i < tr->nr; i++)
		for (size_t j = 0; j < tr->tasks[i].nr_fdinfo; j++)
			if (stage(&tr->tasks[i], tr->tasks[i].fdinfo[j])) {
				ghost_drop_names();
				return -1;
			}
	ghost_drop_names();
	return 0;
}

/* In stasis-inject, after the clone: the task holds its own copies. */
void files_release_staged(void)
{
	for (size_t i = 0; i < nr_staged; i++)
		close(staged[i].stage_fd);
}

static bool restored_fd(struct itask *t, int fd)
{
	for (size_t i = 0; i < t->nr_fdinfo; i++)
		if ((int)t->fdinfo[i]->fd == fd)
			return true;
	return false;
}

int files_restore(struct itree *tr, struct itask *t)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	long r;

	/* one table, restored once, by the parent (before this task) */
	if (t->pe->files_shared)
		return 0;

	for (size_t i = 0; i < t->nr_fdinfo; i++) {
		Stasis__FdinfoEntry *fi = t->fdinfo[i];
		int stage = -1;

		for (size_t j = 0; j < nr_staged; j++)
			if (staged[j].id == fi->id)
				stage = staged[j].stage_fd;
		r = ISYS(t, SYS_dup3, stage, fi->fd, fi->cloexec ? O_CLOEXEC : 0);
		if (r != (long)fi->fd) {
			pr_err("task %d: cannot restore fd %u: %s", t->pid, fi->fd, strerror(-r));
			return -1;
		}
	}
	r = ISYS(t, SYS_close_range, tr->stage_base, ~0U, 0);
	if (r) {
		pr_err("task %d: cannot close staging descriptors: %s", t->pid, strerror(-r));
		return -1;
	}
	/* whatever else the task inherited from stasis-inject goes */
	snprintf(path, sizeof(path), "/proc/%d/fd", t->hpid);
	d = opendir(path);
	if (!d) {
		pr_perror("cannot open %s", path);
		return -1;
	}
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);

		if (de->d_name[0] >= '0' && de->d_name[0] <= '9' && !restored_fd(t, fd))
			ISYS(t, SYS_close, fd);
	}
	closedir(d);
	/* pidfds and /proc files first: they replace placeholders that another
	 * post() could take for the real thing (an epoll registering them) */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < t->nr_fdinfo; i++) {
			Stasis__FileEntry *fe = file_by_id(t->fdinfo[i]->id);
			const struct fd_restore_ops *ops = fe ? fd_type(fe->type) : NULL;
			bool early = fe && (fe->type == STASIS__FD_TYPE__PIDFD ||
					    fe->type == STASIS__FD_TYPE__PROCFS);
			int ret = 0;

			if (ops && ops->post && (pass == 0) == early)
				ret = ops->post(t, t->fdinfo[i], fe);
			if (fe)
				protobuf_c_message_free_unpacked(&fe->base, NULL);
			if (ret)
				return -1;
		}
	return 0;
}

/* Descriptions whose SIGIO state is set (through the first task holding them). */
static uint32_t *owned;
static size_t nr_owned;

/*
 * O_ASYNC takes effect only through F_SETFL, which registers the file with
 * the object that sends SIGIO, under the descriptor number the call names
 * (it is the si_fd of the signal): made in the task, at its number. Then
 * the owner, which a tty sets itself when O_ASYNC is turned on.
 */
static int fown_restore(struct itask *t, Stasis__FdinfoEntry *fi, Stasis__FileEntry *fe)
{
	Stasis__FileOwner none = STASIS__FILE_OWNER__INIT, *fo = fe->fown ? fe->fown : &none;
	struct f_owner_ex owner = { .type = fo->type, .pid = fo->pid };
	int fd;

	/* set from here: the owner as we see it (a group's is its leader's) */
	if (fo->pid && !(owner.pid = pstree_host_pid(fo->pid))) {
		pr_err("task %d: the owner %u of fd %u is not a task of the tree", t->pid, fo->pid,
		       fi->fd);
		return -1;
	}

	for (size_t i = 0; i < nr_owned; i++)
		if (owned[i] == fi->id)
			return 0;
	owned = xrealloc(owned, (nr_owned + 1) * sizeof(*owned));
	owned[nr_owned++] = fi->id;
	if (fe->flags & O_ASYNC) {
		long fl = ISYS(t, SYS_fcntl, fi->fd, F_GETFL), r = fl;

		if (fl >= 0)
			r = ISYS(t, SYS_fcntl, fi->fd, F_SETFL, fl | O_ASYNC);
		if (r < 0) {
			pr_err("task %d: cannot set O_ASYNC on fd %u: %s", t->pid, fi->fd,
			       strerror(-r));
			return -1;
		}
	}
	fd = task_fd(t->hpid, fi->fd);
	if (fd < 0)
		return -1;
	if (fcntl(fd, F_SETOWN_EX, &owner) || fcntl(fd, F_SETSIG, fo->sig)) {
		pr_perror("task %d: cannot give fd %u its owner (type %u, %u) and signal %u",
			  t->pid, fi->fd, fo->type, fo->pid, fo->sig);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int files_restore_late(struct itask *t)
{
	if (pidfd_restore_late(t))
		return -1;
	for (size_t i = 0; i < t->nr_fdinfo; i++) {
		Stasis__FileEntry *fe = file_by_id(t->fdinfo[i]->id);
		int ret = 0;

		if (fe && (fe->fown || (fe->flags & O_ASYNC)))
			ret = fown_restore(t, t->fdinfo[i], fe);
		if (fe)
			protobuf_c_message_free_unpacked(&fe->base, NULL);
		if (ret)
			return -1;
	}
	return 0;
}
