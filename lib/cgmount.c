// SPDX-License-Identifier: GPL-2.0
/* The cgroup mounts of our mount namespace (include/stasis/cgmount.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stasis/cgmount.h"
#include "stasis/log.h"
#include "stasis/proc.h"
#include "stasis/util.h"

static struct cgmount *mounts;
static size_t nr_mounts;
static bool mounts_read;

int cgmounts_read(void)
{
	char *line = NULL;
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
		struct proc_mount m;

		if (proc_parse_mountinfo(line, &m))
			continue;
		if (strcmp(m.fstype, "cgroup") && strcmp(m.fstype, "cgroup2")) {
			proc_mount_free(&m);
			continue;
		}
		mounts = xrealloc(mounts, (nr_mounts + 1) * sizeof(*mounts));
		mounts[nr_mounts++] = (struct cgmount){
		    .root = m.root,
		    .dir = m.mp,
		    .opts = m.super,
		    .v2 = !strcmp(m.fstype, "cgroup2"),
		};
		free(m.opts);
		free(m.fstype);
		free(m.source);
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

const struct cgmount *cgmount_find(const char *ctrl, const char *path, const char **rel)
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

int cg_root_parse(char *arg, struct cg_root *r)
{
	char *slash = strchr(arg, '/'), *colon = strchr(arg, ':');

	*r = (struct cg_root){ NULL, arg };
	if (colon && slash && colon < slash) {
		*colon = 0;
		*r = (struct cg_root){ arg, colon + 1 };
	}
	if (*r->root != '/' || (r->ctrl && !*r->ctrl)) {
		if (r->ctrl)
			*colon = ':';
		pr_err("--cgroup-root %s: expected [CONTROLLER:]/PATH", arg);
		return -1;
	}
	return 0;
}

/* want is one of the comma-separated controllers of ctrl */
static bool has_ctrl(const char *ctrl, const char *want)
{
	size_t wl = strlen(want);

	for (const char *c = ctrl; *c;) {
		size_t l = strcspn(c, ",");

		if (l == wl && !strncmp(c, want, l))
			return true;
		c += l;
		if (*c)
			c++;
	}
	return false;
}

const char *cg_root_of(const struct cg_root *roots, int n, const char *ctrl)
{
	const char *global = NULL;

	for (int i = 0; i < n; i++) {
		if (!roots[i].ctrl)
			global = roots[i].root;
		else if (has_ctrl(ctrl, roots[i].ctrl))
			return roots[i].root;
	}
	return global;
}
