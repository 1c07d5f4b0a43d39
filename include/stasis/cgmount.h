/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The cgroup hierarchies mounted in our mount namespace (cgroup v1 and
 * cgroup2 lines of /proc/self/mountinfo), and which mount shows a cgroup
 * that /proc/PID/cgroup names. Shared by collect (the directory tree below
 * the tree's cgroups) and inject (--manage-cgroups).
 */
#ifndef STASIS_CGMOUNT_H
#define STASIS_CGMOUNT_H

#include <stdbool.h>

struct cgmount {
	char *root; /* of the mount, inside the hierarchy */
	char *dir;  /* where it is mounted */
	char *opts; /* super options: the controllers, name= */
	bool v2;
};

/* Read once; later calls return at once. 0 or -1 (logged). */
int cgmounts_read(void);

/*
 * The mount of the hierarchy of controllers ctrl (the middle field of a
 * /proc/PID/cgroup line: "cpu,cpuacct", "name=foo", "" for v2) whose root
 * holds the cgroup path; *rel is set to path inside that mount ("" for the
 * mount's root). NULL when no such mount.
 */
const struct cgmount *cgmount_find(const char *ctrl, const char *path, const char **rel);

/* --cgroup-root [CTRL:]/PATH, of dump and of restore */
struct cg_root {
	const char *ctrl; /* NULL: every hierarchy not named */
	const char *root;
};

/* Parse arg (cut at its colon) into *r; -1 (logged) when malformed. */
int cg_root_parse(char *arg, struct cg_root *r);

/* The root of roots[0..n) for the hierarchy of controllers ctrl (one of
 * them named, else the one with no CTRL), NULL when none. */
const char *cg_root_of(const struct cg_root *roots, int n, const char *ctrl);

#endif
