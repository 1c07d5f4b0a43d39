// SPDX-License-Identifier: GPL-2.0
/*
 * file-locks on restore (--file-locks): each task takes its locks and
 * leases back itself, with remote flock/fcntl calls through the descriptor
 * it held them by, once its descriptors are at their numbers. Non-blocking:
 * a lock someone else took meanwhile fails the restore rather than hang it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "files.h"
#include "stasis/log.h"

static const char *kind_name(Stasis__LockKind k)
{
	switch (k) {
	case STASIS__LOCK_KIND__LOCK_FLOCK:
		return "flock";
	case STASIS__LOCK_KIND__LOCK_POSIX:
		return "POSIX";
	case STASIS__LOCK_KIND__LOCK_OFD:
		return "OFD";
	case STASIS__LOCK_KIND__LOCK_LEASE:
		return "lease";
	default:
		return "unknown";
	}
}

/*
 * A lease is set by the task itself: the kernel registers it for the break
 * signal under the descriptor number of the call (its si_fd) and makes the
 * task the file's owner if it has none. A lease that was being broken is
 * broken again the same way, by an open that conflicts with it (refused,
 * non-blocking) while the file has no owner, so no second break signal is
 * sent: the owner comes back with the descriptors' (files_restore_late).
 */
static long take_lease(struct itask *t, Stasis__FileLock *fl)
{
	char path[64];
	long r = ISYS(t, SYS_fcntl, fl->fd, F_SETLEASE, fl->type);
	int copy, fd;

	if (r || !fl->has_break_to)
		return r;
	if (fl->break_to != F_RDLCK && fl->break_to != F_UNLCK)
		return -EINVAL;
	copy = task_fd(t->hpid, fl->fd);
	if (copy < 0)
		return -EBADF;
	r = fcntl(copy, F_SETOWN, 0) ? -errno : 0;
	close(copy);
	if (r)
		return r;
	snprintf(path, sizeof(path), "/proc/%d/fd/%u", t->hpid, fl->fd);
	fd = open(path, (fl->break_to == F_RDLCK ? O_RDONLY : O_WRONLY) | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		pr_err("task %d: the lease on fd %u did not stop an open of its file", t->pid,
		       fl->fd);
		return -EINVAL;
	}
	return errno == EWOULDBLOCK ? 0 : -errno;
}

static long take(struct itask *t, Stasis__FileLock *fl)
{
	struct flock f = {0};
	unsigned long at;

	if (fl->type != F_RDLCK && fl->type != F_WRLCK)
		return -EINVAL;
	if (fl->kind == STASIS__LOCK_KIND__LOCK_LEASE)
		return take_lease(t, fl);
	if (fl->kind == STASIS__LOCK_KIND__LOCK_FLOCK)
		return ISYS(t, SYS_flock, fl->fd,
			    (fl->type == F_WRLCK ? LOCK_EX : LOCK_SH) | LOCK_NB);
	if (fl->kind != STASIS__LOCK_KIND__LOCK_POSIX && fl->kind != STASIS__LOCK_KIND__LOCK_OFD)
		return -EINVAL;
	f.l_type = fl->type;
	f.l_whence = SEEK_SET;
	f.l_start = fl->start;
	f.l_len = fl->len;
	at = scratch_put(t, 0, &f, sizeof(f));
	if (!at)
		return -EFAULT;
	return ISYS(t, SYS_fcntl, fl->fd,
		    fl->kind == STASIS__LOCK_KIND__LOCK_OFD ? F_OFD_SETLK : F_SETLK, at);
}

int locks_restore(struct itask *t)
{
	static bool warned;
	unsigned n = records_count("file-locks");

	if (n && !opts.file_locks) {
		if (!warned)
			pr_warn("the checkpoint holds %u file lock(s), left out: restore with "
				"--file-locks to take them back",
				n);
		warned = true;
		return 0;
	}
	for (unsigned i = 0; i < n; i++) {
		Stasis__FileLock *fl = records_get("file-locks", i, &stasis__file_lock__descriptor);
		long r;

		if (!fl)
			return -1;
		if (fl->pid != (uint32_t)t->pid) {
			protobuf_c_message_free_unpacked(&fl->base, NULL);
			continue;
		}
		r = take(t, fl);
		if (r)
			pr_err("task %d: cannot take back its %s %s lock on fd %u (%llu+%llu): %s",
			       t->pid, kind_name(fl->kind), fl->type == F_WRLCK ? "write" : "read",
			       fl->fd, (unsigned long long)fl->start, (unsigned long long)fl->len,
			       strerror(-r));
		else
			pr_debug("task %d: %s lock on fd %u taken back", t->pid,
				 kind_name(fl->kind), fl->fd);
		protobuf_c_message_free_unpacked(&fl->base, NULL);
		if (r)
			return -1;
	}
	return 0;
}
