// SPDX-License-Identifier: GPL-2.0
/*
 * fdinfo-PID and files: every descriptor names an open file description;
 * descriptors sharing one (dup, inheritance) share its id, found with kcmp.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "collect.h"
#include "stasis/log.h"
#include "stasis/proc.h"
#include "stasis/util.h"

struct file_desc {
	pid_t pid; /* one holder, for kcmp */
	int fd;
	Stasis__FileEntry *fe;
};

static struct file_desc *descs;
static size_t nr_descs;

static bool is_tty(dev_t rdev)
{
	unsigned maj = major(rdev);

	return maj == 136 || maj == 4 || maj == 5 || (maj >= 137 && maj <= 143);
}

static int fdinfo_fields(pid_t pid, int fd, uint64_t *pos, uint32_t *flags)
{
	char path[64], buf[4096], *p;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	if (proc_read_file(path, buf, sizeof(buf)) < 0) {
		pr_perror("cannot read %s", path);
		return -1;
	}
	p = strstr(buf, "pos:");
	*pos = p ? strtoull(p + 4, NULL, 10) : 0;
	p = strstr(buf, "flags:");
	*flags = p ? strtoul(p + 6, NULL, 8) : 0;
	return 0;
}

/* The id of the description behind pid's fd, adding it when new. */
static int describe(pid_t pid, int fd, uint32_t flags, uint64_t pos, uint32_t *id)
{
	char path[64], target[4096];
	struct stat sb;
	Stasis__FileEntry *fe;
	ssize_t n;

	for (size_t i = 0; i < nr_descs; i++)
		if (syscall(SYS_kcmp, pid, descs[i].pid, KCMP_FILE, fd, descs[i].fd) == 0) {
			*id = descs[i].fe->id;
			return 0;
		}
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0 || stat(path, &sb)) {
		pr_perror("cannot inspect fd %d of task %d", fd, pid);
		return -1;
	}
	target[n] = 0;
	fe = xmalloc(sizeof(*fe));
	stasis__file_entry__init(fe);
	fe->id = nr_descs + 1;
	fe->path = xstrdup(target);
	fe->flags = flags & ~O_CLOEXEC;
	fe->has_mode = true;
	fe->mode = sb.st_mode;
	if (S_ISREG(sb.st_mode) || S_ISDIR(sb.st_mode)) {
		size_t len = strlen(target);

		if (target[0] != '/' || (len > 10 && !strcmp(target + len - 10, " (deleted)"))) {
			pr_err("fd %d of task %d: %s is deleted or unreachable; not supported yet",
			       fd, pid, target);
			return -1;
		}
		fe->type = S_ISREG(sb.st_mode) ? STASIS__FD_TYPE__REG : STASIS__FD_TYPE__DIR;
		fe->has_pos = fe->has_size = true;
		fe->pos = pos;
		fe->size = sb.st_size;
	} else if (S_ISCHR(sb.st_mode)) {
		fe->has_rdev = true;
		fe->rdev = sb.st_rdev;
		fe->type = STASIS__FD_TYPE__CHR;
		if (is_tty(sb.st_rdev)) {
			if (!opts.shell_job) {
				pr_err("fd %d of task %d is the terminal %s; use --shell-job", fd, pid,
				       target);
				return -1;
			}
			fe->type = STASIS__FD_TYPE__TTY;
		}
	} else {
		pr_err("fd %d of task %d: %s is not supported yet", fd, pid, target);
		return -1;
	}
	descs = xrealloc(descs, (nr_descs + 1) * sizeof(*descs));
	descs[nr_descs++] = (struct file_desc){ pid, fd, fe };
	*id = fe->id;
	return 0;
}

int files_collect(struct ctask *ct, struct img_writer *w)
{
	char path[64], name[32];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", ct->pid);
	snprintf(name, sizeof(name), "fdinfo-%d", ct->pid);
	d = opendir(path);
	if (!d) {
		pr_perror("cannot open %s", path);
		return -1;
	}
	while ((de = readdir(d))) {
		Stasis__FdinfoEntry fi = STASIS__FDINFO_ENTRY__INIT;
		uint32_t flags;
		uint64_t pos;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		fi.fd = atoi(de->d_name);
		if (fdinfo_fields(ct->pid, fi.fd, &pos, &flags) ||
		    describe(ct->pid, fi.fd, flags, pos, &fi.id))
			goto err;
		fi.cloexec = !!(flags & O_CLOEXEC);
		if (imgw_record(w, name, &fi.base))
			goto err;
	}
	closedir(d);
	return 0;
err:
	closedir(d);
	return -1;
}

int files_write(struct img_writer *w)
{
	for (size_t i = 0; i < nr_descs; i++)
		if (imgw_record(w, "files", &descs[i].fe->base))
			return -1;
	return 0;
}
