// SPDX-License-Identifier: GPL-2.0
/*
 * Pseudo-terminals inside the tree. A master is reopened with its old
 * index: /dev/ptmx hands out the lowest free index, so we open until ours
 * comes up and close the others. A slave needs its master first, wherever
 * the descriptors come in the checkpoint. The session leader whose
 * controlling terminal it was gets it back, with its foreground group.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "files.h"
#include "stasis/log.h"
#include "stasis/pty.h"
#include "stasis/util.h"

#define PTMX_TRIES 256

/* Masters opened for a slave before their own entry was staged. */
struct early_master {
	unsigned index;
	int fd;
};

static struct early_master *early;
static size_t nr_early;
static unsigned *opened;
static size_t nr_opened;

static bool index_opened(unsigned idx)
{
	for (size_t i = 0; i < nr_opened; i++)
		if (opened[i] == idx)
			return true;
	return false;
}

static int apply_settings(int master, Stasis__TtyEntry *te)
{
	char path[64];
	int unlock = 0, slave;

	if ((!te->has_locked || !te->locked) && ioctl(master, TIOCSPTLCK, &unlock)) {
		pr_perror("cannot unlock pty %u", te->index);
		return -1;
	}
	if (te->has_rows) {
		struct winsize ws = { te->rows, te->cols, te->xpixel, te->ypixel };

		ioctl(master, TIOCSWINSZ, &ws);
	}
	if (!te->has_termios || te->termios.len != sizeof(struct termios))
		return 0;
	/* the settings belong to the slave side */
	snprintf(path, sizeof(path), "/dev/pts/%u", te->index);
	if (te->has_locked && te->locked)
		ioctl(master, TIOCSPTLCK, &unlock); /* opened unlocked, locked again below */
	slave = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0) {
		pr_perror("cannot open %s to set it up", path);
		return -1;
	}
	if (te->has_uid && (fchown(slave, te->uid, te->gid) || fchmod(slave, te->mode & 07777))) {
		pr_perror("cannot give %s its owner %u:%u and mode %o", path, te->uid, te->gid,
			  te->mode);
		close(slave);
		return -1;
	}
	if (tcsetattr(slave, TCSANOW, (struct termios *)te->termios.data))
		pr_warn("cannot restore the settings of %s", path);
	/* what was queued in the pair at the dump, queued again */
	if (pty_refill(master, slave, te->in_data.data, te->has_in_data ? te->in_data.len : 0,
		       te->out_data.data, te->has_out_data ? te->out_data.len : 0)) {
		pr_err("cannot queue the data of pty %u again", te->index);
		close(slave);
		return -1;
	}
	close(slave);
	if (te->has_locked && te->locked) {
		int lock = 1;

		ioctl(master, TIOCSPTLCK, &lock);
	}
	return 0;
}

static int open_master(Stasis__FileEntry *fe, Stasis__TtyEntry *te)
{
	int fds[PTMX_TRIES], n = 0, fd = -1;
	int flags = (fe->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_CLOEXEC)) | O_NOCTTY;

	while (n < PTMX_TRIES) {
		unsigned idx;
		int m = open("/dev/ptmx", flags);

		if (m < 0) {
			pr_perror("cannot open /dev/ptmx");
			break;
		}
		if (ioctl(m, TIOCGPTN, &idx) || idx > te->index) {
			close(m);
			break;
		}
		if (idx == te->index) {
			fd = m;
			break;
		}
		fds[n++] = m;
	}
	while (n)
		close(fds[--n]);
	if (fd < 0) {
		pr_err("cannot recreate pty %u: its index is taken", te->index);
		return -1;
	}
	if (apply_settings(fd, te)) {
		close(fd);
		return -1;
	}
	opened = xrealloc(opened, (nr_opened + 1) * sizeof(*opened));
	opened[nr_opened++] = te->index;
	return fd;
}

static int ptmx_open(Stasis__FileEntry *fe)
{
	if (!fe->tty) {
		pr_err("pty master %u has no terminal state in the checkpoint", fe->id);
		return -1;
	}
	for (size_t i = 0; i < nr_early; i++)
		if (early[i].index == fe->tty->index) {
			int fd = early[i].fd;

			early[i] = early[--nr_early];
			return fd;
		}
	return open_master(fe, fe->tty);
}

const struct fd_restore_ops ptmx_restore_ops = { STASIS__FD_TYPE__PTMX, ptmx_open, NULL };

/* The master of a slave that comes first in the checkpoint. */
static int open_master_early(unsigned index)
{
	unsigned n = records_count("files");

	for (unsigned i = 0; i < n; i++) {
		Stasis__FileEntry *fe = records_get("files", i, &stasis__file_entry__descriptor);
		int fd;

		if (!fe)
			return -1;
		if (fe->type != STASIS__FD_TYPE__PTMX || !fe->tty || fe->tty->index != index) {
			protobuf_c_message_free_unpacked(&fe->base, NULL);
			continue;
		}
		fd = open_master(fe, fe->tty);
		protobuf_c_message_free_unpacked(&fe->base, NULL);
		if (fd < 0)
			return -1;
		early = xrealloc(early, (nr_early + 1) * sizeof(*early));
		early[nr_early++] = (struct early_master){ index, fd };
		return 0;
	}
	pr_err("pty %u: its master is not in the checkpoint", index);
	return -1;
}

/*
 * Hung-up slaves of an index: a master with that index is opened, every
 * one of them opened on it, then the master is closed, which hangs them
 * up as they were. It stays open until the last of them is made.
 */
struct hung_master {
	unsigned index;
	int fd;
	unsigned left;
};

static struct hung_master *hung;
static size_t nr_hung;

static unsigned count_hungup(unsigned index)
{
	unsigned n = records_count("files"), count = 0;

	for (unsigned i = 0; i < n; i++) {
		Stasis__FileEntry *fe = records_get("files", i, &stasis__file_entry__descriptor);

		if (!fe)
			break;
		if (fe->type == STASIS__FD_TYPE__PTS && fe->tty && fe->tty->index == index &&
		    fe->tty->hungup)
			count++;
		protobuf_c_message_free_unpacked(&fe->base, NULL);
	}
	return count;
}

static int hungup_open(Stasis__FileEntry *fe)
{
	int flags = (fe->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_CLOEXEC)) | O_NOCTTY;
	Stasis__TtyEntry te = STASIS__TTY_ENTRY__INIT;
	struct hung_master *h = NULL;
	char path[64];
	int fd;

	for (size_t i = 0; i < nr_hung; i++)
		if (hung[i].index == fe->tty->index && hung[i].fd >= 0)
			h = &hung[i];
	if (!h) {
		te.index = fe->tty->index;
		fd = open_master(fe, &te);
		if (fd < 0)
			return -1;
		hung = xrealloc(hung, (nr_hung + 1) * sizeof(*hung));
		h = &hung[nr_hung++];
		*h = (struct hung_master){ fe->tty->index, fd, count_hungup(fe->tty->index) };
	}
	snprintf(path, sizeof(path), "/dev/pts/%u", fe->tty->index);
	fd = open(path, flags);
	if (fd < 0)
		pr_perror("cannot open %s", path);
	if (!h->left || !--h->left) {
		close(h->fd);
		h->fd = -1;
	}
	return fd;
}

static int pts_open(Stasis__FileEntry *fe)
{
	int flags = (fe->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_CLOEXEC)) | O_NOCTTY;
	char path[64];
	int fd;

	if (!fe->tty) {
		pr_err("pty slave %u has no terminal state in the checkpoint", fe->id);
		return -1;
	}
	if (fe->tty->hungup)
		return hungup_open(fe);
	if (!index_opened(fe->tty->index) && open_master_early(fe->tty->index))
		return -1;
	snprintf(path, sizeof(path), "/dev/pts/%u", fe->tty->index);
	fd = open(path, flags);
	if (fd < 0)
		pr_perror("cannot open %s", path);
	return fd;
}

/* The controlling terminal of a session leader, and its foreground group. */
static int pts_post(struct itask *t, Stasis__FdinfoEntry *fi, Stasis__FileEntry *fe)
{
	unsigned long at;
	uint32_t pgrp;
	long r;

	if (t->pe->sid != (uint32_t)t->pid || !t->pe->has_tty_nr || !fe->has_rdev ||
	    t->pe->tty_nr != (uint32_t)fe->rdev)
		return 0;
	r = ISYS(t, SYS_ioctl, fi->fd, TIOCSCTTY, 0);
	if (r && r != -EPERM) {
		pr_err("task %d: cannot take pty %u as its terminal: %s", t->pid, fe->tty->index,
		       strerror(-r));
		return -1;
	}
	if (!fe->tty->has_fg_pgrp || !fe->tty->fg_pgrp)
		return 0;
	pgrp = fe->tty->fg_pgrp;
	at = scratch_put(t, 0, &pgrp, sizeof(pgrp));
	if (!at)
		return -1;
	r = ISYS(t, SYS_ioctl, fi->fd, TIOCSPGRP, at);
	if (r)
		pr_warn("task %d: cannot give pty %u to group %u: %s", t->pid, fe->tty->index, pgrp,
			strerror(-r));
	return 0;
}

const struct fd_restore_ops pts_restore_ops = { STASIS__FD_TYPE__PTS, pts_open, pts_post };

#define PTS_MAJOR_FIRST 136
#define PTS_MAJOR_LAST 143

/* The pty index of a controlling terminal (/proc/PID/stat tty_nr) that
 * this restore recreated. */
static bool ctty_index(struct itask *t, unsigned *idx)
{
	unsigned maj, min;

	if (!t->pe->has_tty_nr || !t->pe->tty_nr)
		return false;
	maj = major(t->pe->tty_nr);
	min = minor(t->pe->tty_nr);
	if (maj < PTS_MAJOR_FIRST || maj > PTS_MAJOR_LAST)
		return false;
	*idx = (maj - PTS_MAJOR_FIRST) * 256 + min;
	return index_opened(*idx);
}

static long remote_open(struct itask *t, const char *path, int flags)
{
	unsigned long at = scratch_put(t, 0, path, strlen(path) + 1);

	return at ? ISYS(t, SYS_open, at, flags, 0) : -EFAULT;
}

int tty_set_ctty(struct itask *t)
{
	char path[64];
	unsigned idx;
	long fd, r;

	if (t->pe->sid == (uint32_t)t->pid) {
		if (!ctty_index(t, &idx))
			return 0;
		snprintf(path, sizeof(path), "/dev/pts/%u", idx);
		fd = remote_open(t, path, O_RDWR | O_NOCTTY);
		if (fd < 0) {
			pr_err("task %d: cannot open %s: %s", t->pid, path, strerror(-fd));
			return -1;
		}
		r = ISYS(t, SYS_ioctl, fd, TIOCSCTTY, 0);
		ISYS(t, SYS_close, fd);
		if (r) {
			pr_err("task %d: cannot take %s as its controlling terminal: %s", t->pid, path,
			       strerror(-r));
			return -1;
		}
		return 0;
	}
	if (t->pe->has_tty_nr && t->pe->tty_nr)
		return 0;
	/* it had none (TIOCNOTTY, or a session without one): drop the
	 * one it inherited */
	fd = remote_open(t, "/dev/tty", O_RDWR | O_NOCTTY);
	if (fd < 0)
		return 0;
	r = ISYS(t, SYS_ioctl, fd, TIOCNOTTY, 0);
	ISYS(t, SYS_close, fd);
	if (r) {
		pr_err("task %d: cannot give up the controlling terminal it inherited: %s", t->pid,
		       strerror(-r));
		return -1;
	}
	return 0;
}

/* The foreground group of pty idx, from any of its entries. */
static uint32_t fg_pgrp_of(unsigned idx)
{
	unsigned n = records_count("files");
	uint32_t pgrp = 0;

	for (unsigned i = 0; i < n && !pgrp; i++) {
		Stasis__FileEntry *fe = records_get("files", i, &stasis__file_entry__descriptor);

		if (!fe)
			break;
		if ((fe->type == STASIS__FD_TYPE__PTMX || fe->type == STASIS__FD_TYPE__PTS) &&
		    fe->tty && fe->tty->index == idx && fe->tty->has_fg_pgrp)
			pgrp = fe->tty->fg_pgrp;
		protobuf_c_message_free_unpacked(&fe->base, NULL);
	}
	return pgrp;
}

int tty_restore_fg(struct itask *t)
{
	unsigned long at;
	uint32_t pgrp;
	unsigned idx;
	long fd, r;

	if (t->pe->sid != (uint32_t)t->pid || !ctty_index(t, &idx) || !(pgrp = fg_pgrp_of(idx)))
		return 0;
	fd = remote_open(t, "/dev/tty", O_RDWR | O_NOCTTY);
	if (fd < 0) {
		pr_err("task %d: cannot open its controlling terminal pty %u: %s", t->pid, idx,
		       strerror(-fd));
		return -1;
	}
	at = scratch_put(t, 64, &pgrp, sizeof(pgrp));
	r = at ? ISYS(t, SYS_ioctl, fd, TIOCSPGRP, at) : -EFAULT;
	ISYS(t, SYS_close, fd);
	if (r)
		pr_warn("task %d: cannot give pty %u to group %u: %s", t->pid, idx, pgrp,
			strerror(-r));
	return 0;
}

/*
 * /dev/tty resolves to the opener's controlling terminal: stasis-inject
 * stages a stand-in, and the task, which has its terminal by now
 * (tty_set_ctty), opens /dev/tty itself over it.
 */
static int ctty_open(Stasis__FileEntry *fe)
{
	int fd;

	if (!fe->tty) {
		pr_err("/dev/tty entry %u has no terminal in the checkpoint", fe->id);
		return -1;
	}
	fd = open("/dev/null", O_RDONLY);
	if (fd < 0)
		pr_perror("cannot open /dev/null");
	return fd;
}

static int ctty_post(struct itask *t, Stasis__FdinfoEntry *fi, Stasis__FileEntry *fe)
{
	int flags = (fe->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_CLOEXEC)) | O_NOCTTY;
	long fd, r;

	fd = remote_open(t, "/dev/tty", flags);
	if (fd < 0) {
		pr_err("task %d: cannot open /dev/tty (pty %u) for fd %u: %s", t->pid,
		       fe->tty->index, fi->fd, strerror(-fd));
		return -1;
	}
	r = ISYS(t, SYS_dup3, fd, fi->fd, fi->cloexec ? O_CLOEXEC : 0);
	ISYS(t, SYS_close, fd);
	if (r != (long)fi->fd) {
		pr_err("task %d: cannot put /dev/tty at fd %u: %s", t->pid, fi->fd,
		       strerror(r < 0 ? -r : EBADF));
		return -1;
	}
	return 0;
}

const struct fd_restore_ops ctty_restore_ops = { STASIS__FD_TYPE__CTTY, ctty_open, ctty_post };
