// SPDX-License-Identifier: GPL-2.0
/*
 * fanotify groups on restore: the group made with its init flags (so its
 * fdinfo reads the same), its marks added again by path in stasis-inject,
 * each with its mask, then its ignored mask (with the ignore flags the mark
 * had).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "stasis/log.h"
#include "stasis/util.h"

#ifndef FAN_MARK_EVICTABLE
#define FAN_MARK_EVICTABLE 0x00000200
#endif
#ifndef FAN_MARK_IGNORE
#define FAN_MARK_IGNORE 0x00000400
#endif

static int add_mark(int fd, Stasis__FileEntry *fe, Stasis__FanotifyMark *m)
{
	unsigned kind = m->kind == STASIS__FANOTIFY_MARK_KIND__FAN_MOUNT ? FAN_MARK_MOUNT :
			m->kind == STASIS__FANOTIFY_MARK_KIND__FAN_SB	 ? FAN_MARK_FILESYSTEM :
									   0;
	unsigned keep = m->mflags & FAN_MARK_EVICTABLE;
	unsigned ignore = m->mflags & FAN_MARK_IGNORE ? FAN_MARK_IGNORE : FAN_MARK_IGNORED_MASK;
	struct stat sb;

	if (m->kind < STASIS__FANOTIFY_MARK_KIND__FAN_INODE ||
	    m->kind > STASIS__FANOTIFY_MARK_KIND__FAN_SB) {
		pr_err("fanotify (file %u): malformed mark", fe->id);
		return -1;
	}
	if (lstat(m->path, &sb)) {
		pr_perror("fanotify (file %u): cannot find the marked %s", fe->id, m->path);
		return -1;
	}
	if (!kind && S_ISLNK(sb.st_mode))
		keep |= FAN_MARK_DONT_FOLLOW; /* the mark was on the link itself */
	if (m->has_ino && (sb.st_ino != m->ino || sb.st_dev != m->dev))
		pr_warn("fanotify (file %u): %s is not the file it was at the dump; marking it "
			"anyway",
			fe->id, m->path);
	if (m->mask && fanotify_mark(fd, FAN_MARK_ADD | kind | keep, m->mask, AT_FDCWD, m->path)) {
		pr_perror("fanotify (file %u): cannot mark %s (mask %#x)", fe->id, m->path, m->mask);
		return -1;
	}
	if ((m->ignored_mask || (m->mflags & FAN_MARK_IGNORED_SURV_MODIFY)) &&
	    fanotify_mark(fd,
			  FAN_MARK_ADD | kind | keep | ignore |
				  (m->mflags & FAN_MARK_IGNORED_SURV_MODIFY),
			  m->ignored_mask, AT_FDCWD, m->path)) {
		pr_perror("fanotify (file %u): cannot set the ignored mask %#x of %s", fe->id,
			  m->ignored_mask, m->path);
		return -1;
	}
	return 0;
}

static int fanotify_open(Stasis__FileEntry *fe)
{
	Stasis__FanotifyEntry *e = fe->fanotify;
	int fd, fl;

	if (!e) {
		pr_err("file %u: malformed fanotify record", fe->id);
		return -1;
	}
	fd = fanotify_init(e->flags, e->event_flags);
	if (fd < 0) {
		pr_perror("cannot create a fanotify group (flags %#x, event flags %#x)", e->flags,
			  e->event_flags);
		return -1;
	}
	/* fdinfo lists the newest mark first: added in the reverse order, they
	 * are listed as they were */
	for (size_t i = e->n_marks; i-- > 0;)
		if (add_mark(fd, fe, e->marks[i])) {
			close(fd);
			return -1;
		}
	/* O_NONBLOCK may have changed since fanotify_init */
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || ((fl & O_NONBLOCK) != (int)(fe->flags & O_NONBLOCK) &&
		       fcntl(fd, F_SETFL, (fl & ~O_NONBLOCK) | (fe->flags & O_NONBLOCK)))) {
		pr_perror("cannot set the flags of fanotify file %u", fe->id);
		close(fd);
		return -1;
	}
	return fd;
}

const struct fd_restore_ops fanotify_restore_ops = { STASIS__FD_TYPE__FANOTIFY, fanotify_open,
						     NULL };
