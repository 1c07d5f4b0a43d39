// SPDX-License-Identifier: GPL-2.0
/*
 * --manage-cgroups (soft, criu's default mode): each restored thread goes
 * back into the cgroups collect/cgroup.c recorded, in every hierarchy
 * mounted here (v1 by its controllers or name=, v2), the directories made
 * when missing. The cgroups' own settings are not carried.
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
#include "stasis/log.h"
#include "stasis/util.h"

struct cgmount {
	char *root; /* of the mount, inside the hierarchy */
	char *dir;  /* where it is mounted */
	char *opts; /* super options: the controllers, name= */
	bool v2;
};

static struct cgmount *mounts;
static size_t nr_mounts;
static bool mounts_read;

/* mountinfo escapes space, tab, newline and backslash as \ooo */
static char *unescape(const char *s)
{
	char *out = xstrdup(s), *o = out;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			*o++ = *s++;
		}
	}
	*o = 0;
	return out;
}

static int read_mounts(void)
{
	char *line = NULL, *f[12], *sep, *save;
	size_t cap = 0;
	FILE *mi;

	if (mounts_read)
		return 0;
	mi = fopen("/proc/self/mountinfo", "re");
	if (!mi) {
		pr_perror("cannot open /proc/self/mountinfo");
		return -1;
	}
	while (getline(&line, &cap, mi) > 0) {
		int n = 0;

		line[strcspn(line, "\n")] = 0;
		/* ID PARENT MAJ:MIN ROOT DIR OPTS [TAGS...] - FSTYPE SOURCE SUPER */
		sep = strstr(line, " - ");
		if (!sep)
			continue;
		*sep = 0;
		for (char *tok = strtok_r(line, " ", &save); tok && n < 5;
		     tok = strtok_r(NULL, " ", &save))
			f[n++] = tok;
		if (n < 5)
			continue;
		for (char *tok = strtok_r(sep + 3, " ", &save); tok && n < 8;
		     tok = strtok_r(NULL, " ", &save))
			f[n++] = tok;
		if (n < 8 || (strcmp(f[5], "cgroup") && strcmp(f[5], "cgroup2")))
			continue;
		mounts = xrealloc(mounts, (nr_mounts + 1) * sizeof(*mounts));
		mounts[nr_mounts++] = (struct cgmount){
			.root = unescape(f[3]),
			.dir = unescape(f[4]),
			.opts = xstrdup(f[7]),
			.v2 = !strcmp(f[5], "cgroup2"),
		};
	}
	free(line);
	fclose(mi);
	mounts_read = true;
	return 0;
}

static bool has_opt(const char *opts, const char *want, size_t len)
{
	for (const char *p = opts; *p;) {
		size_t l = strcspn(p, ",");

		if (l == len && !strncmp(p, want, len))
			return true;
		p += l;
		if (*p)
			p++;
	}
	return false;
}

/* The mount of the hierarchy of controllers ctrl ("" for v2) whose root
 * holds path; rel is set to path inside that mount. */
static const struct cgmount *find_mount(const char *ctrl, const char *path, const char **rel)
{
	for (size_t i = 0; i < nr_mounts; i++) {
		const struct cgmount *m = &mounts[i];
		size_t rl = strlen(m->root);
		bool all = true;

		if (m->v2 != !*ctrl)
			continue;
		for (const char *c = ctrl; *c && all;) {
			size_t l = strcspn(c, ",");

			all = has_opt(m->opts, c, l);
			c += l;
			if (*c)
				c++;
		}
		if (!all)
			continue;
		if (!strcmp(m->root, "/"))
			rl = 0;
		else if (strncmp(path, m->root, rl) || (path[rl] && path[rl] != '/'))
			continue;
		*rel = path + rl;
		return m;
	}
	return NULL;
}

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
	m = find_mount(ctrl, path, &rel);
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

int cgroup_restore(struct itask *t)
{
	if (!opts.manage_cgroups)
		return 0;
	if (read_mounts())
		return -1;
	for (size_t i = 0; i < t->nr_threads; i++) {
		struct ithread *it = &t->threads[i];

		for (size_t k = 0; k < it->th->n_cgroups; k++)
			if (move_thread(t, it->rt->tid, i == 0, it->th->cgroups[k]))
				return -1;
	}
	return 0;
}
