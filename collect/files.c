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
#include <linux/sockios.h>
#include <sys/ioctl.h>

#include "collect.h"
#include "files.h"
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

const char *fdinfo_field(const char *fdinfo, const char *key)
{
	size_t klen = strlen(key);

	for (const char *p = fdinfo; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, klen) && p[klen] == ':') {
			p += klen + 1;
			while (*p == ' ' || *p == '\t')
				p++;
			return p;
		}
	return NULL;
}

int fd_src_dup(const struct fd_src *src)
{
	int pidfd = syscall(SYS_pidfd_open, src->pid, 0), fd = -1;

	if (pidfd >= 0) {
		fd = syscall(SYS_pidfd_getfd, pidfd, src->fd, 0);
		close(pidfd);
	}
	if (fd < 0)
		pr_perror("cannot get a copy of fd %d of task %d", src->fd, src->pid);
	return fd;
}

static bool deleted(const char *link)
{
	size_t len = strlen(link);

	return len > 10 && !strcmp(link + len - 10, " (deleted)");
}

static bool regfile_match(const struct fd_src *src)
{
	return S_ISREG(src->st.st_mode) && src->link[0] == '/' && !deleted(src->link);
}

static int regfile_dump(const struct fd_src *src, Stasis__FileEntry *fe)
{
	fe->type = STASIS__FD_TYPE__REG;
	fe->has_pos = fe->has_size = true;
	fe->pos = src->pos;
	fe->size = src->st.st_size;
	return 0;
}

const struct fd_dump_ops regfile_dump_ops = { "regular file", regfile_match, regfile_dump };

static bool dir_match(const struct fd_src *src)
{
	return S_ISDIR(src->st.st_mode) && src->link[0] == '/' && !deleted(src->link);
}

static int dir_dump(const struct fd_src *src, Stasis__FileEntry *fe)
{
	fe->type = STASIS__FD_TYPE__DIR;
	fe->has_pos = true;
	fe->pos = src->pos;
	return 0;
}

const struct fd_dump_ops dir_dump_ops = { "directory", dir_match, dir_dump };

static bool chr_match(const struct fd_src *src)
{
	return S_ISCHR(src->st.st_mode);
}

/*
 * A terminal that is a device of its own (the console, a virtual console,
 * a serial line), and not the controlling terminal of a session outside
 * the tree: opened again by its path like any device, without --shell-job
 * (and made the controlling terminal of its session leader again).
 */
static bool tty_by_path(const struct fd_src *src)
{
	dev_t rdev = src->st.st_rdev;
	struct proc_stat st;

	if (major(rdev) != 4 && rdev != makedev(5, 1))
		return false;
	if (proc_read_stat(src->pid, 0, &st))
		return false;
	return st.tty_nr != rdev || tree_has(collect_tree(), st.sid);
}

static int chr_dump(const struct fd_src *src, Stasis__FileEntry *fe)
{
	bool tty = is_tty(src->st.st_rdev) && !tty_by_path(src);

	fe->has_rdev = true;
	fe->rdev = src->st.st_rdev;
	fe->type = STASIS__FD_TYPE__CHR;
	if (deleted(src->link) && !tty) {
		/* an unlinked node: made again with mknod, opened, unlinked */
		fe->has_ghost = true;
		return ghost_collect_fd(src, &fe->ghost);
	}
	if (tty) {
		if (!opts.shell_job) {
			pr_err("fd %d of task %d is the terminal %s; use --shell-job", src->fd,
			       src->pid, src->link);
			return -1;
		}
		fe->type = STASIS__FD_TYPE__TTY;
	}
	return 0;
}

const struct fd_dump_ops chr_dump_ops = { "character device", chr_match, chr_dump };

/* The group pgrp has a member in the tree. */
static bool tree_has_pgrp(pid_t pgrp)
{
	const struct tree *t = collect_tree();

	for (int i = 0; i < t->nr; i++) {
		struct proc_stat st;

		if (!proc_read_stat(t->tasks[i].pid, 0, &st) && st.pgid == pgrp)
			return true;
	}
	return false;
}

/*
 * The owner that gets SIGIO (F_SETOWN, F_SETOWN_EX) and the signal sent
 * (F_SETSIG) belong to the open file description, whatever its type. An
 * owner outside the tree would not be the same process after a restore.
 */
static int fown_dump(const struct fd_src *src, Stasis__FileEntry *fe)
{
	struct f_owner_ex owner = { 0 };
	int fd, sig;
	bool inside;

	/* O_PATH: no owner, and fcntl refuses to say so (EBADF) */
	if (src->flags & O_PATH)
		return 0;
	fd = fd_src_dup(src);
	if (fd < 0)
		return -1;
	if (fcntl(fd, F_GETOWN_EX, &owner) || (sig = fcntl(fd, F_GETSIG)) < 0) {
		pr_perror("fd %d of task %d: cannot read its owner", src->fd, src->pid);
		close(fd);
		return -1;
	}
	close(fd);
	if (!owner.pid && !sig)
		return 0;
	switch (owner.type) {
	case F_OWNER_TID:
		inside = tree_has_thread(collect_tree(), owner.pid);
		break;
	case F_OWNER_PID:
		inside = tree_has(collect_tree(), owner.pid);
		break;
	case F_OWNER_PGRP:
		inside = tree_has_pgrp(owner.pid);
		break;
	default:
		pr_err("fd %d of task %d: owner of unknown type %d", src->fd, src->pid, owner.type);
		return -1;
	}
	if (owner.pid && !inside) {
		pr_err("fd %d of task %d: its SIGIO owner (F_SETOWN %s %d) is outside the tree; "
		       "not supported",
		       src->fd, src->pid,
		       owner.type == F_OWNER_TID ? "thread" :
		       owner.type == F_OWNER_PGRP ? "process group" : "process",
		       owner.pid);
		return -1;
	}
	fe->fown = xmalloc(sizeof(*fe->fown));
	stasis__file_owner__init(fe->fown);
	fe->fown->type = owner.type;
	/* as the tree sees it (its PID namespace): the restorer maps it to
	 * the restored task (inject/files.c) */
	fe->fown->pid = pidns_vpid(owner.pid);
	if (owner.pid && !fe->fown->pid) {
		pr_err("fd %d of task %d: its owner %d is not visible in the tree's PID namespace: "
		       "not supported",
		       src->fd, src->pid, owner.pid);
		return -1;
	}
	fe->fown->sig = sig;
	pr_debug("fd %d of task %d: owner type %d pid %d sig %d", src->fd, src->pid, owner.type,
		 owner.pid, sig);
	return 0;
}

static bool opath_match(const struct fd_src *src)
{
	return src->flags & O_PATH;
}

static int opath_dump(const struct fd_src *src, Stasis__FileEntry *fe)
{
	fe->type = STASIS__FD_TYPE__PATH;
	if (src->link[0] != '/' || !strncmp(src->link, "/memfd:", 7)) {
		pr_err("fd %d of task %d: %s opened with O_PATH is not supported yet", src->fd,
		       src->pid, src->link);
		return -1;
	}
	if (S_ISCHR(src->st.st_mode) || S_ISBLK(src->st.st_mode)) {
		fe->has_rdev = true;
		fe->rdev = src->st.st_rdev;
	}
	if (!deleted(src->link))
		return 0;
	fe->has_ghost = true;
	return ghost_collect_fd(src, &fe->ghost);
}

/* Before the others: the kind of file does not matter with O_PATH. */
const struct fd_dump_ops opath_dump_ops = { "O_PATH descriptor", opath_match, opath_dump };

/* Every type stasis can dump; the first match wins. */
static const struct fd_dump_ops *const fd_types[] = {
	&procfs_dump_ops,
	&nsfs_dump_ops,
	&opath_dump_ops,
	&regfile_dump_ops,
	&dir_dump_ops,
	&ptmx_dump_ops,
	&pts_dump_ops,
	&ctty_dump_ops,
	&chr_dump_ops,
	&pipe_dump_ops,
	&fifo_dump_ops,
	&memfd_dump_ops, /* before ghost: a memfd reads as a deleted file */
	&ghost_dump_ops,
	&eventfd_dump_ops,
	&epoll_dump_ops,
	&signalfd_dump_ops,
	&timerfd_dump_ops,
	&inotify_dump_ops,
	&unixsk_dump_ops,
	&inetsk_dump_ops,
	&pidfd_dump_ops,
	&fanotify_dump_ops,
	&packetsk_dump_ops,
	&netlinksk_dump_ops,
};

/* The id of the description behind pid's fd, adding it when new. */

/* The network namespace of a socket, registered (collect/ns.c) and named
 * in fe when it is not ours: sock_diag is asked there too, and the
 * restore makes the socket in it. */
static int sock_netns(const struct fd_src *src, Stasis__FileEntry *fe)
{
	int fd = fd_src_dup(src), ns, id;

	if (fd < 0)
		return -1;
	ns = ioctl(fd, SIOCGSKNS);
	close(fd);
	if (ns < 0) {
		pr_perror("fd %d of task %d: cannot find the network namespace of socket %lu",
			  src->fd, src->pid, (unsigned long)src->st.st_ino);
		return -1;
	}
	id = ns_register_fd(STASIS__NS_KIND__NS_NET, ns);
	close(ns);
	if (id < 0)
		return -1;
	fe->has_net_ns = id > 0;
	fe->net_ns = id;
	return 0;
}
static int describe(pid_t pid, int fd, uint32_t flags, uint64_t pos, const char *fdinfo,
		    uint32_t *id)
{
	char path[64], target[4096];
	struct fd_src src = { .pid = pid, .fd = fd, .link = target, .fdinfo = fdinfo,
			      .pos = pos, .flags = flags & ~O_CLOEXEC };
	Stasis__FileEntry *fe;
	ssize_t n;
	size_t i;

	for (i = 0; i < nr_descs; i++)
		if (syscall(SYS_kcmp, pid, descs[i].pid, KCMP_FILE, fd, descs[i].fd) == 0) {
			*id = descs[i].fe->id;
			return 0;
		}
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0 || stat(path, &src.st)) {
		pr_perror("cannot inspect fd %d of task %d", fd, pid);
		return -1;
	}
	target[n] = 0;
	for (i = 0; i < ARRAY_SIZE(fd_types); i++)
		if (fd_types[i]->match(&src))
			break;
	if (i == ARRAY_SIZE(fd_types)) {
		/* pid is stasis-collect's own for a file in flight: the dump of
		 * its unix socket names the task */
		if (pid == getpid())
			pr_err("a file in flight in a unix socket's queue: %s is not supported yet",
			       target);
		else
			pr_err("fd %d of task %d: %s is not supported yet", fd, pid, target);
		return -1;
	}
	fe = xmalloc(sizeof(*fe));
	stasis__file_entry__init(fe);
	fe->id = nr_descs + 1;
	fe->path = xstrdup(target);
	fe->flags = src.flags;
	fe->has_mode = true;
	fe->mode = src.st.st_mode;
	/* its path, as the task it was found in sees it */
	fe->mnt_ns = ns_mnt_id(pid);
	fe->has_mnt_ns = fe->mnt_ns != 0;
	/* known before its dump: a socket may carry itself in its own queue */
	descs = xrealloc(descs, (nr_descs + 1) * sizeof(*descs));
	descs[nr_descs++] = (struct file_desc){ pid, fd, fe };
	*id = fe->id;
	if (S_ISSOCK(src.st.st_mode) && sock_netns(&src, fe))
		return -1;
	if (fd_types[i]->dump(&src, fe) || fown_dump(&src, fe)) {
		pr_err("fd %d of task %d: cannot dump %s %s", fd, pid, fd_types[i]->name, target);
		return -1;
	}
	return 0;
}

/* fdinfo can be long (epoll, inotify): up to 64 KiB is read. */
static char *read_fdinfo(pid_t pid, int fd, uint64_t *pos, uint32_t *flags)
{
	char path[64], *buf = xmalloc(65536);
	const char *p;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	if (proc_read_file(path, buf, 65536) < 0) {
		pr_perror("cannot read %s", path);
		free(buf);
		return NULL;
	}
	p = fdinfo_field(buf, "pos");
	*pos = p ? strtoull(p, NULL, 10) : 0;
	p = fdinfo_field(buf, "flags");
	*flags = p ? strtoul(p, NULL, 8) : 0;
	return buf;
}

int files_describe_own(int fd, uint32_t *id)
{
	size_t before = nr_descs;
	uint32_t flags;
	uint64_t pos;
	char *fdinfo = read_fdinfo(getpid(), fd, &pos, &flags);
	int ret;

	if (!fdinfo) {
		close(fd);
		return -1;
	}
	ret = describe(getpid(), fd, flags, pos, fdinfo, id);
	free(fdinfo);
	/* a new description is compared (kcmp) against this descriptor later */
	if (ret || *id != before + 1)
		close(fd);
	return ret;
}

int files_describe_task_fd(pid_t pid, int fd, uint32_t *id)
{
	uint32_t flags;
	uint64_t pos;
	char *fdinfo = read_fdinfo(pid, fd, &pos, &flags);
	int ret;

	if (!fdinfo)
		return -1;
	ret = describe(pid, fd, flags, pos, fdinfo, id);
	free(fdinfo);
	return ret;
}

int files_collect(struct ctask *ct, struct img_writer *w)
{
	char path[64], name[32];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", ct->pid);
	snprintf(name, sizeof(name), "fdinfo-%d", pidns_vpid(ct->pid));
	d = opendir(path);
	if (!d) {
		pr_perror("cannot open %s", path);
		return -1;
	}
	while ((de = readdir(d))) {
		Stasis__FdinfoEntry fi = STASIS__FDINFO_ENTRY__INIT;
		uint32_t flags;
		uint64_t pos;
		char *fdinfo;
		int ret;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		fi.fd = atoi(de->d_name);
		fdinfo = read_fdinfo(ct->pid, fi.fd, &pos, &flags);
		if (!fdinfo)
			goto err;
		ret = describe(ct->pid, fi.fd, flags, pos, fdinfo, &fi.id);
		free(fdinfo);
		if (ret)
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
