// SPDX-License-Identifier: GPL-2.0
/*
 * --manage-cgroups (soft, criu's default mode): each restored thread goes
 * back into the cgroups collect/cgroup.c recorded, in every hierarchy
 * mounted here (v1 by its controllers or name=, v2), the directories made
 * when missing. Before the first task moves, the directories of the
 * cgroups image (the tree's cgroups and the ones below them, empty ones
 * too) are made where missing, each given its recorded mode and owner and
 * those of its interface files; one that exists gets its directory's mode
 * and owner and keeps its files' (criu's soft mode). The cgroups' own
 * settings are not carried.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "inject.h"
#include "stasis/cgmount.h"
#include "stasis/log.h"
#include "stasis/util.h"

static int mkdirs(char *dir)
{
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(dir, 0755) && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(dir, 0755) && errno != EEXIST ? -1 : 0;
}

/* The line of tid's /proc cgroup file for hierarchy id, to skip a move to
 * where the thread already is. */
static bool already_in(pid_t pid, pid_t tid, const char *want)
{
	char path[64], *line = NULL;
	size_t cap = 0;
	bool same = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/cgroup", pid, tid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!same && getline(&line, &cap, f) > 0) {
		line[strcspn(line, "\n")] = 0;
		same = !strcmp(line, want);
	}
	free(line);
	fclose(f);
	return same;
}

static int move_thread(struct itask *t, pid_t tid, bool leader, const char *line)
{
	char ctrl[256], file[PATH_MAX + 32], num[16];
	const struct cgmount *m;
	const char *c1, *c2, *path, *rel;
	int fd, len;

	c1 = strchr(line, ':');
	c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (!c2 || (size_t)(c2 - c1 - 1) >= sizeof(ctrl)) {
		pr_err("task %d: bad cgroup record \"%s\"", tid, line);
		return -1;
	}
	snprintf(ctrl, sizeof(ctrl), "%.*s", (int)(c2 - c1 - 1), c1 + 1);
	path = c2 + 1;
	/* v2 moves whole processes (threaded cgroups are not handled) */
	if (!*ctrl && !leader)
		return 0;
	if (already_in(t->pid, tid, line))
		return 0;
	m = cgmount_find(ctrl, path, &rel);
	if (!m) {
		pr_err("task %d: cgroup %s of hierarchy %s%s is not mounted here", tid, path,
		       *ctrl ? ctrl : "v2", *ctrl ? "" : " (cgroup2)");
		return -1;
	}
	len = snprintf(file, sizeof(file), "%s%s", m->dir, rel);
	if (len >= (int)sizeof(file) - 16 || mkdirs(file)) {
		pr_perror("task %d: cannot make cgroup directory %s", tid, file);
		return -1;
	}
	strcat(file, *ctrl ? "/tasks" : "/cgroup.procs");
	fd = open(file, O_WRONLY | O_CLOEXEC);
	len = snprintf(num, sizeof(num), "%d", *ctrl ? tid : t->pid);
	if (fd < 0 || write(fd, num, len) != len) {
		pr_perror("task %d: cannot move it into cgroup %s (%s)", tid, path, file);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	pr_debug("task %d: in cgroup %s:%s again (%s)", tid, *ctrl ? ctrl : "v2", path, file);
	return 0;
}

/* An absolute cgroup path without ".", ".." or empty components. */
static bool good_path(const char *path)
{
	if (*path != '/')
		return false;
	if (!path[1])
		return true;
	for (const char *p = path + 1;;) {
		size_t l = strcspn(p, "/");

		if (!l || (l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (!p[l])
			return true;
		p += l + 1;
	}
}

static int set_perms(int fd, const Stasis__CgroupPerms *p)
{
	if (fchown(fd, p->uid, p->gid) || fchmod(fd, p->mode & 07777))
		return -1;
	return 0;
}

/* One directory of the cgroups image: made when missing, with its own and
 * its files' modes and owners; an existing one gets its own only. */
static int restore_dir(const Stasis__CgroupDir *cd)
{
	const char *ctrl = cd->controllers, *rel;
	char dir[PATH_MAX];
	const struct cgmount *m;
	bool made = false;
	int fd, len;

	if (!good_path(cd->path)) {
		pr_err("cgroups: bad cgroup path \"%s\"", cd->path);
		return -1;
	}
	m = cgmount_find(ctrl, cd->path, &rel);
	if (!m) {
		pr_err("cgroup %s of hierarchy %s%s is not mounted here", cd->path,
		       *ctrl ? ctrl : "v2", *ctrl ? "" : " (cgroup2)");
		return -1;
	}
	len = snprintf(dir, sizeof(dir), "%s%s", m->dir, rel);
	if (len >= (int)sizeof(dir)) {
		pr_err("cgroup %s: path too long", cd->path);
		return -1;
	}
	if (access(dir, F_OK)) {
		if (errno != ENOENT || mkdirs(dir)) {
			pr_perror("cannot make cgroup directory %s", dir);
			return -1;
		}
		made = true;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || set_perms(fd, cd->perms)) {
		pr_perror("cgroup %s: cannot give %s mode %o and owner %u:%u", cd->path, dir,
			  cd->perms->mode, cd->perms->uid, cd->perms->gid);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	for (size_t i = 0; made && i < cd->n_files; i++) {
		const Stasis__CgroupFilePerms *fp = cd->files[i];
		if (!*fp->name || strchr(fp->name, '/') || !strcmp(fp->name, "..")) {
			pr_err("cgroup %s: bad file name \"%s\"", cd->path, fp->name);
			close(fd);
			return -1;
		}
		int r = fchownat(fd, fp->name, fp->perms->uid, fp->perms->gid, AT_SYMLINK_NOFOLLOW);

		if (r && errno == ENOENT) {
			/* not in this kernel's or this hierarchy's cgroups */
			pr_debug("cgroup %s: no file %s here, its mode left out", cd->path,
				 fp->name);
			continue;
		}
		if (r || fchmodat(fd, fp->name, fp->perms->mode & 07777, 0)) {
			pr_perror("cgroup %s: cannot give %s mode %o and owner %u:%u", cd->path,
				  fp->name, fp->perms->mode, fp->perms->uid, fp->perms->gid);
			close(fd);
			return -1;
		}
	}
	close(fd);
	pr_debug("cgroup %s:%s %s (%s), mode %o, owner %u:%u", *ctrl ? ctrl : "v2", cd->path,
		 made ? "made again" : "exists", dir, cd->perms->mode, cd->perms->uid,
		 cd->perms->gid);
	return 0;
}

static int restore_dirs(void)
{
	static bool done;
	unsigned n = records_count("cgroups");

	if (done)
		return 0;
	done = true;
	for (unsigned i = 0; i < n; i++) {
		Stasis__CgroupDir *cd = records_get("cgroups", i, &stasis__cgroup_dir__descriptor);
		int ret;

		if (!cd)
			return -1;
		ret = restore_dir(cd);
		protobuf_c_message_free_unpacked(&cd->base, NULL);
		if (ret)
			return -1;
	}
	return 0;
}

int cgroup_restore(struct itask *t)
{
	if (!opts.manage_cgroups)
		return 0;
	if (cgmounts_read() || restore_dirs())
		return -1;
	for (size_t i = 0; i < t->nr_threads; i++) {
		struct ithread *it = &t->threads[i];

		for (size_t k = 0; k < it->th->n_cgroups; k++)
			if (move_thread(t, it->rt->tid, i == 0, it->th->cgroups[k]))
				return -1;
	}
	return 0;
}
