// SPDX-License-Identifier: GPL-2.0
/*
 * Pseudo-terminals inside the tree: a /dev/ptmx master and its /dev/pts/N
 * slaves, with the pair's settings. A slave whose master is outside the
 * tree is the caller's terminal: a shell job (files.c's TTY type).
 * Data queued in the pair travels with the master (dump_queued).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "files.h"
#include "stasis/log.h"
#include "stasis/proc.h"
#include "stasis/pty.h"
#include "stasis/util.h"

#define PTS_MAJOR_FIRST 136
#define PTS_MAJOR_LAST 143

static bool is_ptmx(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && major(st->st_rdev) == 5 && minor(st->st_rdev) == 2;
}

static bool is_pts(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && major(st->st_rdev) >= PTS_MAJOR_FIRST &&
	       major(st->st_rdev) <= PTS_MAJOR_LAST;
}

static unsigned pts_index(const struct stat *st)
{
	return (major(st->st_rdev) - PTS_MAJOR_FIRST) * 256 + minor(st->st_rdev);
}

/* Indexes of the masters some task of the tree holds. */
static unsigned *masters;
static int nr_masters = -1;

static void find_masters(void)
{
	const struct tree *t = collect_tree();

	nr_masters = 0;
	for (int i = 0; i < t->nr; i++) {
		char dir[64], path[96];

		if (t->tasks[i].zombie)
			continue;
		for (int fd = 0; fd < 4096; fd++) {
			struct fd_src src = { .pid = t->tasks[i].pid, .fd = fd };
			unsigned idx;
			int copy;

			snprintf(dir, sizeof(dir), "/proc/%d/fd", src.pid);
			snprintf(path, sizeof(path), "%s/%d", dir, fd);
			if (stat(path, &src.st))
				continue;
			if (!is_ptmx(&src.st))
				continue;
			copy = fd_src_dup(&src);
			if (copy < 0)
				continue;
			if (!ioctl(copy, TIOCGPTN, &idx)) {
				masters = xrealloc(masters, (nr_masters + 1) * sizeof(*masters));
				masters[nr_masters++] = idx;
			}
			close(copy);
		}
	}
}

static bool master_in_tree(unsigned idx)
{
	if (nr_masters < 0)
		find_masters();
	for (int i = 0; i < nr_masters; i++)
		if (masters[i] == idx)
			return true;
	return false;
}

/* Settings of the pair, read through any end. */
static int dump_pair(int fd, Stasis__TtyEntry *te)
{
	struct termios tio;
	struct winsize ws;
	struct stat st;
	char path[64];
	pid_t pgrp;
	int lock = 0;

	/* grantpt or a later fchown gave the slave's node its owner */
	snprintf(path, sizeof(path), "/dev/pts/%u", te->index);
	if (!stat(path, &st) && is_pts(&st) && pts_index(&st) == te->index) {
		te->has_uid = te->has_gid = te->has_mode = true;
		te->uid = st.st_uid;
		te->gid = st.st_gid;
		te->mode = st.st_mode & 07777;
	}

	if (tcgetattr(fd, &tio)) {
		pr_perror("cannot read the terminal settings of pty %u", te->index);
		return -1;
	}
	te->has_termios = true;
	te->termios.len = sizeof(tio);
	te->termios.data = xmalloc(sizeof(tio));
	memcpy(te->termios.data, &tio, sizeof(tio));
	if (!ioctl(fd, TIOCGWINSZ, &ws)) {
		te->has_rows = te->has_cols = te->has_xpixel = te->has_ypixel = true;
		te->rows = ws.ws_row;
		te->cols = ws.ws_col;
		te->xpixel = ws.ws_xpixel;
		te->ypixel = ws.ws_ypixel;
	}
	if (!ioctl(fd, TIOCGPTLCK, &lock)) {
		te->has_locked = true;
		te->locked = lock;
	}
	if (!ioctl(fd, TIOCGPGRP, &pgrp) && pgrp > 0) {
		te->has_fg_pgrp = true;
		te->fg_pgrp = pgrp;
	}
	return 0;
}

/*
 * The data queued in the pair goes with the master's entry. It is taken
 * (a tty has no peek) and put back at once, so the tree finds it again
 * whatever becomes of the dump. A partial line not yet ended is left.
 */
static int dump_queued(int master, Stasis__TtyEntry *te)
{
	char path[64];
	void *in = NULL, *out = NULL;
	size_t in_len = 0, out_len = 0;
	int slave, ret;

	snprintf(path, sizeof(path), "/dev/pts/%u", te->index);
	slave = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (slave < 0) {
		pr_perror("cannot open %s to read its queued data", path);
		return -1;
	}
	ret = pty_drain(master, slave, &in, &in_len, &out, &out_len);
	if (!ret)
		ret = pty_refill(master, slave, in, in_len, out, out_len);
	close(slave);
	if (ret) {
		free(in);
		free(out);
		return -1;
	}
	te->has_in_data = in_len != 0;
	te->in_data = (ProtobufCBinaryData){ in_len, in };
	te->has_out_data = out_len != 0;
	te->out_data = (ProtobufCBinaryData){ out_len, out };
	return 0;
}

static bool ptmx_match(const struct fd_src *src)
{
	return is_ptmx(&src->st);
}

static int ptmx_dump(const struct fd_src *src, Stasis__FileEntry *fe)
{
	int copy = fd_src_dup(src), ret = -1;
	Stasis__TtyEntry *te = xmalloc(sizeof(*te));

	if (copy < 0)
		return -1;
	stasis__tty_entry__init(te);
	if (ioctl(copy, TIOCGPTN, &te->index)) {
		pr_perror("cannot read the index of pty master fd %d of task %d", src->fd, src->pid);
		goto out;
	}
	if (dump_pair(copy, te) || dump_queued(copy, te))
		goto out;
	fe->type = STASIS__FD_TYPE__PTMX;
	fe->tty = te;
	ret = 0;
out:
	close(copy);
	return ret;
}

const struct fd_dump_ops ptmx_dump_ops = { "pty master", ptmx_match, ptmx_dump };

static bool link_deleted(const char *link)
{
	size_t len = strlen(link);

	return len > 10 && !strcmp(link + len - 10, " (deleted)");
}

/* A slave whose master was closed: hung up, its /dev/pts node gone. */
static bool pts_hungup(const struct fd_src *src)
{
	struct termios tio;
	int copy, hung;

	if (!link_deleted(src->link) || master_in_tree(pts_index(&src->st)))
		return false;
	copy = fd_src_dup(src);
	if (copy < 0)
		return false;
	hung = tcgetattr(copy, &tio) && errno == EIO;
	close(copy);
	return hung;
}

static bool pts_match(const struct fd_src *src)
{
	return is_pts(&src->st) && (master_in_tree(pts_index(&src->st)) || pts_hungup(src));
}

static int pts_dump(const struct fd_src *src, Stasis__FileEntry *fe)
{
	int copy = fd_src_dup(src), ret = -1;
	Stasis__TtyEntry *te = xmalloc(sizeof(*te));

	if (copy < 0)
		return -1;
	stasis__tty_entry__init(te);
	te->index = pts_index(&src->st);
	/* a hung-up tty has no settings left to read */
	if (!master_in_tree(te->index))
		te->has_hungup = te->hungup = true;
	else if (dump_pair(copy, te))
		goto out;
	fe->type = STASIS__FD_TYPE__PTS;
	fe->has_rdev = true;
	fe->rdev = src->st.st_rdev;
	fe->tty = te;
	ret = 0;
out:
	close(copy);
	return ret;
}

const struct fd_dump_ops pts_dump_ops = { "pty slave", pts_match, pts_dump };

/* /dev/tty of a task whose controlling terminal is a pty of the tree. */
static bool ctty_match(const struct fd_src *src)
{
	struct proc_stat st;
	struct stat pts = { .st_mode = S_IFCHR };

	if (!S_ISCHR(src->st.st_mode) || src->st.st_rdev != makedev(5, 0) ||
	    proc_read_stat(src->pid, 0, &st) || !st.tty_nr)
		return false;
	pts.st_rdev = makedev(major(st.tty_nr), minor(st.tty_nr));
	return is_pts(&pts) && master_in_tree(pts_index(&pts));
}

static int ctty_dump(const struct fd_src *src, Stasis__FileEntry *fe)
{
	Stasis__TtyEntry *te = xmalloc(sizeof(*te));
	struct proc_stat st;

	stasis__tty_entry__init(te);
	if (proc_read_stat(src->pid, 0, &st)) {
		free(te);
		return -1;
	}
	te->index = (major(st.tty_nr) - PTS_MAJOR_FIRST) * 256 + minor(st.tty_nr);
	fe->type = STASIS__FD_TYPE__CTTY;
	fe->has_rdev = true;
	fe->rdev = src->st.st_rdev;
	fe->tty = te;
	return 0;
}

const struct fd_dump_ops ctty_dump_ops = { "controlling terminal", ctty_match, ctty_dump };
