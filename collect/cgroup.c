// SPDX-License-Identifier: GPL-2.0
/*
 * The cgroups of each thread, as /proc/PID/task/TID/cgroup shows them: one
 * "ID:CONTROLLERS:PATH" line per hierarchy. Recorded always (one read);
 * restored only with --manage-cgroups (inject/cgroup.c).
 *
 * Then the cgroups image: every directory at or below a cgroup some thread
 * is in, in each hierarchy mounted here, with the mode and owner of the
 * directory and of its tasks/cgroup.procs-like files (criu's soft mode
 * makes the empty sub-cgroups again and gives the cgroups it makes their
 * permissions). A hierarchy's root is not walked: below it lies every
 * cgroup of the host, not the tree's.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collect.h"
#include "stasis/cgmount.h"
#include "stasis/log.h"
#include "stasis/util.h"

/* More directories than this below the tree's cgroups are left out. */
#define CG_DIRS_MAX 65536

/* A cgroup some thread is in: where the walks start. */
struct cgstart {
	char *ctrl, *path;
};

static struct cgstart *starts;
static size_t nr_starts;

/* The interface files whose modes and owners are carried (those of criu's
 * global properties that a directory has, and v2's delegation files). */
static const char *const v1_files[] = { "tasks", "cgroup.procs", "notify_on_release",
					"cgroup.clone_children", NULL };
static const char *const v2_files[] = {
	"cgroup.procs",	    "cgroup.threads", "cgroup.subtree_control", "cgroup.max.descendants",
	"cgroup.max.depth", "cgroup.freeze",  "cgroup.type",		NULL
};

static char *join(const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
	char *s = xmalloc(la + lb + lc + 1);

	memcpy(s, a, la);
	memcpy(s + la, b, lb);
	memcpy(s + la + lb, c, lc + 1);
	return s;
}

static void note_start(const char *line)
{
	const char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

	/* a bad line is the restore's to refuse; the root is not walked */
	if (!c2 || c2[1] != '/' || !c2[2])
		return;
	for (size_t i = 0; i < nr_starts; i++)
		if (strlen(starts[i].ctrl) == (size_t)(c2 - c1 - 1) &&
		    !strncmp(starts[i].ctrl, c1 + 1, c2 - c1 - 1) &&
		    !strcmp(starts[i].path, c2 + 1))
			return;
	starts = xrealloc(starts, (nr_starts + 1) * sizeof(*starts));
	starts[nr_starts].ctrl = xstrdup(c1 + 1);
	starts[nr_starts].ctrl[c2 - c1 - 1] = 0;
	starts[nr_starts].path = xstrdup(c2 + 1);
	nr_starts++;
}

int cgroup_collect_thread(struct ctask *ct, int thread, Stasis__ThreadCore *th)
{
	char path[64], *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/cgroup", ct->pid, ct->threads[thread].tid);
	f = fopen(path, "re");
	if (!f) {
		pr_perror("cannot open %s", path);
		return -1;
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] == '\n')
			line[--n] = 0;
		if (!n)
			continue;
		th->cgroups = xrealloc(th->cgroups, (th->n_cgroups + 1) * sizeof(char *));
		th->cgroups[th->n_cgroups++] = xstrdup(line);
		note_start(line);
	}
	free(line);
	fclose(f);
	return 0;
}

/* path (of the hierarchy) is at or below the cgroup anc */
static bool below(const char *path, const char *anc)
{
	size_t l = strlen(anc);

	return !strncmp(path, anc, l) && (path[l] == '/' || !path[l]);
}

static void perms_of(const struct stat *st, Stasis__CgroupPerms *p)
{
	stasis__cgroup_perms__init(p);
	p->mode = st->st_mode & 07777;
	p->uid = st->st_uid;
	p->gid = st->st_gid;
}

struct walk {
	struct img_writer *w;
	const char *ctrl;
	const char *const *files;
	size_t nr;
	bool full;
};

/* Record the directory dir (cgroup path in the hierarchy) and the ones
 * below it, parents first. */
static int walk_dir(struct walk *wk, const char *dir, const char *path)
{
	Stasis__CgroupDir cd = STASIS__CGROUP_DIR__INIT;
	Stasis__CgroupPerms dp;
	Stasis__CgroupFilePerms fps[8], *fpp[8];
	Stasis__CgroupPerms fpperms[8];
	struct stat st;
	struct dirent *de;
	DIR *d;
	int fd, ret = 0;

	if (wk->nr >= CG_DIRS_MAX) {
		if (!wk->full)
			pr_warn("more than %d cgroup directories below the tree's cgroups: the "
				"rest (from %s) is not recorded",
				CG_DIRS_MAX, path);
		wk->full = true;
		return 0;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		/* removed while we walk: a cgroup is not the frozen tree's */
		if (errno == ENOENT) {
			if (fd >= 0)
				close(fd);
			return 0;
		}
		pr_perror("cannot open cgroup directory %s", dir);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	perms_of(&st, &dp);
	cd.controllers = (char *)wk->ctrl;
	cd.path = (char *)path;
	cd.perms = &dp;
	for (size_t i = 0; wk->files[i] && cd.n_files < ARRAY_SIZE(fps); i++) {
		struct stat fst;

		if (fstatat(fd, wk->files[i], &fst, AT_SYMLINK_NOFOLLOW))
			continue;
		stasis__cgroup_file_perms__init(&fps[cd.n_files]);
		fps[cd.n_files].name = (char *)wk->files[i];
		perms_of(&fst, &fpperms[cd.n_files]);
		fps[cd.n_files].perms = &fpperms[cd.n_files];
		fpp[cd.n_files] = &fps[cd.n_files];
		cd.n_files++;
	}
	cd.files = fpp;
	if (imgw_record(wk->w, "cgroups", &cd.base)) {
		close(fd);
		return -1;
	}
	wk->nr++;
	pr_debug("cgroup %s:%s: mode %o, owner %u:%u, %zu file(s)", *wk->ctrl ? wk->ctrl : "v2",
		 path, dp.mode, dp.uid, dp.gid, cd.n_files);
	d = fdopendir(fd);
	if (!d) {
		pr_perror("cannot read cgroup directory %s", dir);
		close(fd);
		return -1;
	}
	while (!ret && (de = readdir(d))) {
		char *sub, *subpath;
		struct stat sst;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (de->d_type != DT_DIR &&
		    (de->d_type != DT_UNKNOWN ||
		     fstatat(dirfd(d), de->d_name, &sst, AT_SYMLINK_NOFOLLOW) ||
		     !S_ISDIR(sst.st_mode)))
			continue;
		if (strlen(dir) + strlen(de->d_name) + 2 > PATH_MAX) {
			pr_err("cgroup directory %s/%s: path too long", dir, de->d_name);
			ret = -1;
			break;
		}
		sub = join(dir, "/", de->d_name);
		subpath = join(path, "/", de->d_name);
		ret = walk_dir(wk, sub, subpath);
		free(sub);
		free(subpath);
	}
	closedir(d);
	return ret;
}

int cgroup_write(struct img_writer *w)
{
	struct walk wk = { .w = w };

	if (!nr_starts)
		return 0;
	if (cgmounts_read())
		return -1;
	for (size_t i = 0; i < nr_starts; i++) {
		const struct cgstart *s = &starts[i];
		const struct cgmount *m;
		const char *rel;
		bool covered = false;
		char *dir;
		int ret;

		/* walked from a cgroup above it */
		for (size_t j = 0; j < nr_starts && !covered; j++)
			covered = j != i && !strcmp(starts[j].ctrl, s->ctrl) &&
				  below(s->path, starts[j].path) &&
				  (strcmp(s->path, starts[j].path) || j < i);
		if (covered)
			continue;
		m = cgmount_find(s->ctrl, s->path, &rel);
		if (!m) {
			/* the restore wants it mounted; it makes the cgroup
			 * itself then, not what is below it */
			pr_debug("cgroup %s:%s: hierarchy not mounted here, not walked",
				 *s->ctrl ? s->ctrl : "v2", s->path);
			continue;
		}
		wk.ctrl = s->ctrl;
		wk.files = m->v2 ? v2_files : v1_files;
		dir = join(m->dir, rel, "");
		ret = walk_dir(&wk, dir, s->path);
		free(dir);
		if (ret)
			return -1;
	}
	pr_info("%zu cgroup directories recorded", wk.nr);
	return 0;
}
