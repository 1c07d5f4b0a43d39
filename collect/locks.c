// SPDX-License-Identifier: GPL-2.0
/*
 * file-locks: the flock, POSIX and OFD locks the tree holds. The "lock:"
 * lines of /proc/PID/fdinfo/FD list exactly the locks held through that
 * descriptor: POSIX locks of this process taken through it, and flock and
 * OFD locks and leases of its open file description (seen from every
 * descriptor of it, so they are recorded once per description). Without --file-locks a
 * task holding a lock makes the dump fail, as in CRIU: the locks would be
 * lost silently otherwise.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "collect.h"
#include "files.h"
#include "stasis/log.h"
#include "stasis/proc.h"
#include "stasis/util.h"

/* Descriptions whose flock/OFD locks are recorded: one holder each. */
struct holder {
	pid_t pid;
	int fd;
};

static struct holder *seen;
static size_t nr_seen;

static bool seen_before(pid_t pid, int fd)
{
	for (size_t i = 0; i < nr_seen; i++)
		if (syscall(SYS_kcmp, pid, seen[i].pid, KCMP_FILE, fd, seen[i].fd) == 0)
			return true;
	return false;
}

/*
 * A lease: "ACTIVE" with its type, or "BREAKING" with the type it is being
 * broken to. That target does not say which lease it was when it is
 * F_UNLCK: a read lease is what an O_RDONLY description can hold (and the
 * only one it can hold with other readers), a write lease any other.
 */
static int parse_lease(struct ctask *ct, int fd, const char *mode, const char *type,
		       int accmode, Stasis__FileLock *fl)
{
	int t = !strcmp(type, "READ") ? F_RDLCK : !strcmp(type, "WRITE") ? F_WRLCK :
		!strcmp(type, "UNLCK") ? F_UNLCK : -1;

	fl->kind = STASIS__LOCK_KIND__LOCK_LEASE;
	if (!strcmp(mode, "ACTIVE") && t != F_UNLCK && t != -1) {
		fl->type = t;
		return 0;
	}
	if (!strcmp(mode, "BREAKING") && (t == F_RDLCK || t == F_UNLCK)) {
		fl->has_break_to = true;
		fl->break_to = t;
		fl->type = t == F_UNLCK && accmode == O_RDONLY ? F_RDLCK : F_WRLCK;
		return 0;
	}
	pr_err("task %d holds a %s %s lease on fd %d, which stasis cannot dump", ct->pid, mode,
	       type, fd);
	return -1;
}

/* One "lock:" line; 1 when it is to be recorded in *fl, 0 to skip it. */
static int parse_lock(struct ctask *ct, int fd, const char *line, int accmode,
		      Stasis__FileLock *fl)
{
	char kind[16], mode[16], type[16], end[32];
	unsigned long long start;
	int pid;

	if (sscanf(line, "%*d: %15s %15s %15s %d %*x:%*x:%*u %llu %31s", kind, mode, type, &pid,
		   &start, end) != 6) {
		pr_err("task %d: cannot parse the lock of fd %d: %.80s", ct->pid, fd, line);
		return -1;
	}
	if (!strcmp(kind, "FLOCK"))
		fl->kind = STASIS__LOCK_KIND__LOCK_FLOCK;
	else if (!strcmp(kind, "POSIX"))
		fl->kind = STASIS__LOCK_KIND__LOCK_POSIX;
	else if (!strcmp(kind, "OFDLCK"))
		fl->kind = STASIS__LOCK_KIND__LOCK_OFD;
	else if (!strcmp(kind, "LEASE")) {
		if (parse_lease(ct, fd, mode, type, accmode, fl))
			return -1;
	} else {
		pr_err("task %d holds a %s on fd %d, which stasis cannot dump yet", ct->pid, kind,
		       fd);
		return -1;
	}
	if (fl->kind == STASIS__LOCK_KIND__LOCK_LEASE) {
		/* no range */
	} else if (strcmp(mode, "ADVISORY") || (strcmp(type, "READ") && strcmp(type, "WRITE"))) {
		pr_err("task %d holds a %s %s %s lock on fd %d, which stasis cannot dump yet",
		       ct->pid, mode, type, kind, fd);
		return -1;
	}
	if (!opts.file_locks) {
		pr_err("task %d holds a %s lock on fd %d; dump with --file-locks (-l) to carry the "
		       "tree's file locks",
		       ct->pid, kind, fd);
		return -1;
	}
	/* a POSIX lock belongs to the process: shown to whoever shares its
	 * descriptor table, taken back by its owner */
	if (fl->kind == STASIS__LOCK_KIND__LOCK_POSIX && pid != ct->pid)
		return 0;
	if (fl->kind != STASIS__LOCK_KIND__LOCK_LEASE)
		fl->type = !strcmp(type, "READ") ? F_RDLCK : F_WRLCK;
	fl->pid = pidns_vpid(ct->pid);
	fl->fd = fd;
	fl->start = start;
	if (!strcmp(end, "EOF")) {
		fl->len = 0;
	} else {
		unsigned long long last = strtoull(end, NULL, 10);

		if (last < start) {
			pr_err("task %d: lock on fd %d ends before it starts: %.80s", ct->pid, fd,
			       line);
			return -1;
		}
		fl->len = last - start + 1;
	}
	return 1;
}

static int fd_locks(struct ctask *ct, struct img_writer *w, int fd, char *buf)
{
	char path[64];
	bool shared_seen = false, recorded_shared = false;
	const char *flags;
	int accmode;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", ct->pid, fd);
	if (proc_read_file(path, buf, 65536) < 0) {
		pr_perror("cannot read %s", path);
		return -1;
	}
	flags = fdinfo_field(buf, "flags");
	accmode = flags ? strtoul(flags, NULL, 8) & O_ACCMODE : O_RDWR;
	for (char *p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		Stasis__FileLock fl = STASIS__FILE_LOCK__INIT;
		int r;

		if (strncmp(p, "lock:", 5))
			continue;
		r = parse_lock(ct, fd, p + 5, accmode, &fl);
		if (r < 0)
			return -1;
		if (!r)
			continue;
		if (fl.kind != STASIS__LOCK_KIND__LOCK_POSIX) {
			/* the description's locks: with its first holder only */
			if (!recorded_shared && !shared_seen) {
				shared_seen = true;
				if (seen_before(ct->pid, fd))
					recorded_shared = true; /* skip them all */
			}
			if (recorded_shared)
				continue;
		}
		if (imgw_record(w, "file-locks", &fl.base))
			return -1;
	}
	if (shared_seen && !recorded_shared) {
		seen = xrealloc(seen, (nr_seen + 1) * sizeof(*seen));
		seen[nr_seen].pid = ct->pid;
		seen[nr_seen].fd = fd;
		nr_seen++;
	}
	return 0;
}

int locks_collect(struct ctask *ct, struct img_writer *w)
{
	char path[64], *buf = xmalloc(65536);
	struct dirent *de;
	DIR *d;
	int ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo", ct->pid);
	d = opendir(path);
	if (!d) {
		pr_perror("cannot open %s", path);
		free(buf);
		return -1;
	}
	while (!ret && (de = readdir(d)))
		if (de->d_name[0] >= '0' && de->d_name[0] <= '9')
			ret = fd_locks(ct, w, atoi(de->d_name), buf);
	closedir(d);
	free(buf);
	return ret;
}
