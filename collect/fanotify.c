// SPDX-License-Identifier: GPL-2.0
/*
 * fanotify groups. fdinfo holds the group's init flags and every mark: an
 * inode mark names its inode by file handle (resolved to a path as for
 * inotify), a mount mark by mount ID, a filesystem mark by device; the
 * last two are recorded as the path of that mount. Queued events and
 * pending permission requests are not carried.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "collect.h"
#include "files.h"
#include "stasis/log.h"
#include "stasis/util.h"

static bool fanotify_match(const struct fd_src *src)
{
	return !strcmp(src->link, "anon_inode:[fanotify]");
}

/* The mount point of mount mnt_id, as the task sees it. */
static char *mount_point(pid_t pid, unsigned mnt_id)
{
	char path[64], line[8192], *found = NULL;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/mountinfo", pid);
	f = fopen(path, "re");
	if (!f) {
		pr_perror("cannot open %s", path);
		return NULL;
	}
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned id;
		char mnt[4096];

		if (sscanf(line, "%u %*d %*u:%*u %*s %4095s", &id, mnt) == 2 && id == mnt_id)
			found = xstrdup(mnt);
	}
	fclose(f);
	if (!found)
		pr_err("task %d: no mount %u for a fanotify mark", pid, mnt_id);
	return found;
}

/* A path of the filesystem of device sdev, from the task's root. */
static char *sb_path(pid_t pid, unsigned sdev)
{
	char full[4200], prefix[32];
	size_t len = snprintf(prefix, sizeof(prefix), "/proc/%d/root", pid);

	if (fsnotify_mount_path(pid, sdev, full, sizeof(full)))
		return NULL;
	return xstrdup(full[len] ? full + len : "/");
}

static Stasis__FanotifyMark *parse_mark(const struct fd_src *src, const char *p)
{
	Stasis__FanotifyMark *m = xmalloc(sizeof(*m));
	unsigned sdev, mnt_id, mflags, mask, ignored, hbytes, htype;
	unsigned long ino;
	struct stat sb;
	int off = 0;

	stasis__fanotify_mark__init(m);
	if (sscanf(p,
		   "fanotify ino:%lx sdev:%x mflags:%x mask:%x ignored_mask:%x fhandle-bytes:%x "
		   "fhandle-type:%x f_handle:%n",
		   &ino, &sdev, &mflags, &mask, &ignored, &hbytes, &htype, &off) == 7 &&
	    off) {
		m->kind = STASIS__FANOTIFY_MARK_KIND__FAN_INODE;
		m->path = fsnotify_inode_path(src, sdev, ino, NULL, hbytes, htype, p + off, &sb);
		if (m->path) {
			m->has_dev = m->has_ino = true;
			m->dev = sb.st_dev;
			m->ino = sb.st_ino;
		}
	} else if (sscanf(p, "fanotify mnt_id:%x mflags:%x mask:%x ignored_mask:%x", &mnt_id,
			  &mflags, &mask, &ignored) == 4) {
		m->kind = STASIS__FANOTIFY_MARK_KIND__FAN_MOUNT;
		m->path = mount_point(src->pid, mnt_id);
	} else if (sscanf(p, "fanotify sdev:%x mflags:%x mask:%x ignored_mask:%x", &sdev, &mflags,
			  &mask, &ignored) == 4) {
		m->kind = STASIS__FANOTIFY_MARK_KIND__FAN_SB;
		m->path = sb_path(src->pid, sdev);
	} else {
		pr_err("fd %d of task %d: cannot parse fanotify fdinfo line '%.80s'", src->fd,
		       src->pid, p);
	}
	if (!m->path) {
		free(m);
		return NULL;
	}
	m->mflags = mflags;
	m->mask = mask;
	m->ignored_mask = ignored;
	pr_debug("fanotify fd %d of task %d: mark kind %d on %s mflags %#x mask %#x ignored %#x",
		 src->fd, src->pid, m->kind, m->path, mflags, mask, ignored);
	return m;
}

static int fanotify_dump(const struct fd_src *src, Stasis__FileEntry *fe)
{
	const char *init = strstr(src->fdinfo, "fanotify flags:");
	Stasis__FanotifyEntry *e;
	unsigned flags, event_flags;
	size_t cap = 0;

	if (!init || sscanf(init, "fanotify flags:%x event-flags:%x", &flags, &event_flags) != 2) {
		pr_err("fd %d of task %d: no fanotify flags in its fdinfo", src->fd, src->pid);
		return -1;
	}
	e = xmalloc(sizeof(*e));
	stasis__fanotify_entry__init(e);
	e->flags = flags;
	e->event_flags = event_flags;
	fe->type = STASIS__FD_TYPE__FANOTIFY;
	fe->fanotify = e;
	for (const char *p = src->fdinfo; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		Stasis__FanotifyMark *m;

		if (strncmp(p, "fanotify ", 9) || !strncmp(p, "fanotify flags:", 15))
			continue;
		m = parse_mark(src, p);
		if (!m)
			return -1;
		if (e->n_marks == cap) {
			cap = cap ? cap * 2 : 8;
			e->marks = xrealloc(e->marks, cap * sizeof(*e->marks));
		}
		e->marks[e->n_marks++] = m;
	}
	return 0;
}

const struct fd_dump_ops fanotify_dump_ops = { "fanotify", fanotify_match, fanotify_dump };
