// SPDX-License-Identifier: GPL-2.0
/*
 * --manage-cgroups MODE (criu's modes; soft when the frontend is given no
 * MODE): each restored thread goes back into the cgroups
 * collect/cgroup.c recorded, in every hierarchy mounted here (v1 by its
 * controllers or name=, v2). Before the first task moves, the directories
 * of the cgroups image (the tree's cgroups and the ones below them, empty
 * ones too) are gone through, parents first:
 *
 *  - missing: none and props fail; soft, full and strict make it, give it
 *    and its interface files their recorded modes and owners, and write
 *    at once the settings that cannot change once it has tasks or
 *    children (criu's special ones: cpuset.cpus, then cpuset.mems,
 *    devices.list, memory.swappiness, memory.oom_control,
 *    memory.use_hierarchy, memory.kmem.limit_in_bytes, cgroup.type; and
 *    cgroup.subtree_control, which the children's files need);
 *  - existing: strict fails; it gets its directory's mode and owner
 *    (none excepted), its settings are kept for full and props and
 *    dropped for soft and none (the special ones are never written to an
 *    existing cgroup, as in criu).
 *
 * The other settings are written once every task is in (cgroup_finish).
 * A write that fails fails the restore, which kills the tree; a limit
 * refused with EINVAL (memory.limit_in_bytes above the current
 * memory.memsw.limit_in_bytes) is tried again after the directory's other
 * settings.
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

static const char *const cg_modes[] = {
    [CG_IGNORE] = "ignore", [CG_NONE] = "none", [CG_PROPS] = "props",
    [CG_SOFT] = "soft",	    [CG_FULL] = "full", [CG_STRICT] = "strict",
};

int cg_mode_parse(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(cg_modes); i++)
		if (!strcmp(name, cg_modes[i]))
			return (int)i;
	return -1;
}

const char *cg_mode_name(int mode)
{
	return mode >= 0 && (size_t)mode < ARRAY_SIZE(cg_modes) ? cg_modes[mode] : "?";
}

/* none and props restore into existing cgroups only */
static bool make_none(void)
{
	return opts.manage_cgroups == CG_NONE || opts.manage_cgroups == CG_PROPS;
}

/*
 * A v1 cpuset cgroup is made with no CPUs and no memory nodes, and takes
 * no task until it has some: one made without recorded settings (the
 * hierarchy's root is never recorded) gets its parent's, as
 * cgroup.clone_children would give.
 */
static void cpuset_inherit(const char *dir)
{
	static const char *const files[] = { "cpuset.cpus", "cpuset.mems" };
	char path[PATH_MAX + 16], value[4096];

	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		ssize_t n;
		int fd, pfd;

		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return; /* not a cpuset hierarchy */
		n = read(fd, value, sizeof(value));
		if (n <= 1) {
			snprintf(path, sizeof(path), "%s/../%s", dir, files[i]);
			pfd = open(path, O_RDONLY | O_CLOEXEC);
			n = pfd < 0 ? -1 : read(pfd, value, sizeof(value));
			if (pfd >= 0)
				close(pfd);
			if (n > 1 && write(fd, value, n) != n)
				pr_debug("cgroup %s: cannot take %s from its parent", dir, files[i]);
		}
		close(fd);
	}
}

static int make_dir(const char *dir)
{
	if (!mkdir(dir, 0755))
		cpuset_inherit(dir);
	else if (errno != EEXIST)
		return -1;
	return 0;
}

static int mkdirs(char *dir)
{
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (make_dir(dir))
			return -1;
		*p = '/';
	}
	return make_dir(dir);
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

/* --cgroup-root: the cgroups of the root task's leader ("ID:CTRL:PATH"),
 * the old roots. */
static char **root_lines;
static size_t nr_root_lines;

/* The cgroups dump --cgroup-root named, one per hierarchy at most. */
static struct dump_root {
	char *ctrl, *path;
} *dump_roots;
static size_t nr_dump_roots;

static int load_dump_roots(void)
{
	static bool done;
	unsigned n = records_count("cgroups");

	if (done)
		return 0;
	done = true;
	for (unsigned i = 0; i < n; i++) {
		Stasis__CgroupDir *cd = records_get("cgroups", i, &stasis__cgroup_dir__descriptor);

		if (!cd)
			return -1;
		if (cd->dump_root) {
			dump_roots = xrealloc(dump_roots, (nr_dump_roots + 1) * sizeof(*dump_roots));
			dump_roots[nr_dump_roots++] =
				(struct dump_root){ xstrdup(cd->controllers), xstrdup(cd->path) };
		}
		protobuf_c_message_free_unpacked(&cd->base, NULL);
	}
	return 0;
}

/* Where the restore puts cgroup path of hierarchy ctrl: below the new
 * root of --cgroup-root instead of the root task's cgroup. NULL on error
 * (logged). */
static const char *cg_path(const char *ctrl, const char *path, char *buf, size_t len)
{
	const char *nr = cg_root_of(opts.cgroup_roots, opts.nr_cgroup_roots, ctrl), *old = NULL;
	bool from_dump;
	size_t ol, nl;

	if (!nr)
		return path;
	if (load_dump_roots())
		return NULL;
	for (size_t i = 0; i < nr_dump_roots && !old; i++)
		if (!strcmp(dump_roots[i].ctrl, ctrl))
			old = dump_roots[i].path;
	from_dump = old != NULL;
	for (size_t i = 0; i < nr_root_lines && !old; i++) {
		const char *c1 = strchr(root_lines[i], ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

		if (c2 && (size_t)(c2 - c1 - 1) == strlen(ctrl) &&
		    !strncmp(c1 + 1, ctrl, c2 - c1 - 1))
			old = c2 + 1;
	}
	if (!old) {
		pr_err("--cgroup-root: the root task is in no cgroup of hierarchy %s",
		       *ctrl ? ctrl : "v2");
		return NULL;
	}
	ol = strcmp(old, "/") ? strlen(old) : 0;
	nl = strlen(nr);
	while (nl && nr[nl - 1] == '/')
		nl--;
	if (strncmp(path, old, ol) || (path[ol] && path[ol] != '/')) {
		pr_err("cgroup %s:%s is not below the %s %s: --cgroup-root cannot move it",
		       *ctrl ? ctrl : "v2", path,
		       from_dump ? "dump's --cgroup-root" : "root task's cgroup",
		       old);
		return NULL;
	}
	/* the hierarchy's root itself, when that is the cgroup moved */
	if (!strcmp(path + ol, "/"))
		ol++;
	if (snprintf(buf, len, "%.*s%s", (int)nl, nr, path + ol) >= (int)len) {
		pr_err("cgroup %s:%s: too long below --cgroup-root %s", *ctrl ? ctrl : "v2", path,
		       nr);
		return NULL;
	}
	if (!*buf)
		snprintf(buf, len, "/");
	if (!good_path(buf)) {
		pr_err("--cgroup-root %s: bad cgroup path %s", nr, buf);
		return NULL;
	}
	if (strcmp(buf, path))
		pr_debug("cgroup %s:%s goes to %s (--cgroup-root)", *ctrl ? ctrl : "v2", path, buf);
	return buf;
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
	char ctrl[256], file[PATH_MAX + 32], num[16], moved[PATH_MAX], want[PATH_MAX + 300];
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
	path = cg_path(ctrl, c2 + 1, moved, sizeof(moved));
	if (!path)
		return -1;
	/* v2 moves whole processes (threaded cgroups are not handled) */
	if (!*ctrl && !leader)
		return 0;
	snprintf(want, sizeof(want), "%.*s%s", (int)(c2 + 1 - line), line, path);
	if (already_in(t->hpid, tid, want))
		return 0;
	m = cgmount_find(ctrl, path, &rel);
	if (!m && !strcmp(c2 + 1, "/")) {
		/* a hierarchy nobody mounted, the thread in its root: where
		 * every task is, whatever --cgroup-root says */
		pr_debug("task %d: hierarchy %s not mounted, left in its root", tid, ctrl);
		return 0;
	}
	if (!m) {
		pr_err("task %d: cgroup %s of hierarchy %s%s is not mounted here", tid, path,
		       *ctrl ? ctrl : "v2", *ctrl ? "" : " (cgroup2)");
		return -1;
	}
	len = snprintf(file, sizeof(file), "%s%s", m->dir, rel);
	if (len < (int)sizeof(file) - 16 && make_none() && access(file, F_OK)) {
		pr_perror("task %d: cgroup %s:%s (%s) is not there (--manage-cgroups=%s does not "
			  "make cgroups)",
			  tid, *ctrl ? ctrl : "v2", path, file, cg_mode_name(opts.manage_cgroups));
		return -1;
	}
	if (len >= (int)sizeof(file) - 16 || mkdirs(file)) {
		pr_perror("task %d: cannot make cgroup directory %s", tid, file);
		return -1;
	}
	strcat(file, *ctrl ? "/tasks" : "/cgroup.procs");
	fd = open(file, O_WRONLY | O_CLOEXEC);
	len = snprintf(num, sizeof(num), "%d", *ctrl ? tid : t->hpid);
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

static int set_perms(int fd, const Stasis__CgroupPerms *p)
{
	if (fchown(fd, p->uid, p->gid) || fchmod(fd, p->mode & 07777))
		return -1;
	return 0;
}

/* Written as soon as a cgroup is made (they cannot change once it has
 * tasks or children); never to an existing cgroup. */
static const char *const early_props[] = {
    "cpuset.cpus",
    "cpuset.mems",
    "devices.list",
    "memory.kmem.limit_in_bytes",
    "memory.swappiness",
    "memory.oom_control",
    "memory.use_hierarchy",
    "cgroup.type",
    "cgroup.subtree_control",
    NULL,
};

static bool early_prop(const char *name)
{
	for (size_t i = 0; early_props[i]; i++)
		if (!strcmp(name, early_props[i]))
			return true;
	return false;
}

/* A recorded directory whose settings are written once every task is in. */
struct late_dir {
	Stasis__CgroupDir *cd;
	char *dir;
	bool made;
};

static struct late_dir *late;
static size_t nr_late;

/* Write value (len bytes) to file name of the cgroup directory dir; the
 * failing write's errno is kept. */
static int put_value(const char *dir, const char *name, const char *value, size_t len)
{
	char file[PATH_MAX];
	int fd, err;
	ssize_t n;

	if (snprintf(file, sizeof(file), "%s/%s", dir, name) >= (int)sizeof(file)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(file, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = write(fd, value, len);
	err = errno;
	close(fd);
	if (n != (ssize_t)len) {
		errno = n < 0 ? err : EIO;
		return -1;
	}
	return 0;
}

static void prop_error(const Stasis__CgroupDir *cd, const char *dir, const char *name,
		       const char *value)
{
	pr_perror("cgroup %s:%s: cannot set %s to \"%.64s\" (%s/%s)",
		  *cd->controllers ? cd->controllers : "v2", cd->path, name, value, dir, name);
}

/* One setting written back. 1: refused with EINVAL, to be tried again. */
static int write_prop(const Stasis__CgroupDir *cd, const char *dir, const Stasis__CgroupProp *p,
		      bool retry)
{
	const char *name = p->name, *v = p->value;

	if (!*name || strchr(name, '/') || !strcmp(name, "..") || !strcmp(name, ".")) {
		pr_err("cgroup %s: bad setting name \"%s\"", cd->path, name);
		return -1;
	}
	/* defaults criu leaves alone */
	if ((!strcmp(name, "memory.swappiness") && !strcmp(v, "60")) ||
	    (!strcmp(name, "memory.oom_control") && !strcmp(v, "0")) ||
	    (!strcmp(name, "cgroup.type") && strcmp(v, "threaded")))
		return 0;
	if (!strcmp(name, "devices.list")) {
		/* deny everything, then allow each line again */
		if (put_value(dir, "devices.deny", "a", 1)) {
			prop_error(cd, dir, "devices.deny", "a");
			return -1;
		}
		for (const char *l = v; *l;) {
			size_t n = strcspn(l, "\n");

			if (n && put_value(dir, "devices.allow", l, n)) {
				prop_error(cd, dir, "devices.allow", l);
				return -1;
			}
			l += n;
			if (*l)
				l++;
		}
		return 0;
	}
	if (!strcmp(name, "net_prio.ifpriomap")) {
		/* one interface a write; the host's interfaces may differ */
		for (const char *l = v; *l;) {
			size_t n = strcspn(l, "\n");

			if (n && put_value(dir, name, l, n))
				pr_debug("cgroup %s: %.*s not set again: %s", cd->path, (int)n, l,
					 strerror(errno));
			l += n;
			if (*l)
				l++;
		}
		return 0;
	}
	if (!strcmp(name, "cgroup.subtree_control")) {
		/* "cpu memory" enabled as "+cpu +memory" */
		for (const char *w = v; *w;) {
			size_t n = strcspn(w, " ");
			char buf[256];

			if (n && n < sizeof(buf) - 1) {
				snprintf(buf, sizeof(buf), "+%.*s", (int)n, w);
				if (put_value(dir, name, buf, n + 1)) {
					prop_error(cd, dir, name, buf);
					return -1;
				}
			}
			w += n;
			while (*w == ' ')
				w++;
		}
		return 0;
	}
	if (put_value(dir, name, v, strlen(v))) {
		/* gone from newer kernels (criu accepts it too) */
		if (errno == EOPNOTSUPP && !strcmp(name, "memory.kmem.limit_in_bytes"))
			return 0;
		if (errno == EINVAL && retry && strstr(name, "limit_in_bytes"))
			return 1;
		prop_error(cd, dir, name, v);
		return -1;
	}
	pr_debug("cgroup %s:%s: %s = \"%s\"", *cd->controllers ? cd->controllers : "v2", cd->path,
		 name, v);
	return 0;
}

/* The settings of one directory, early ones (of a cgroup just made) or
 * the others (and an existing cgroup's cgroup.subtree_control). */
static int write_props(const Stasis__CgroupDir *cd, const char *dir, bool early, bool made)
{
	size_t again[16], nr_again = 0;

	for (size_t i = 0; i < cd->n_props; i++) {
		const char *name = cd->props[i]->name;
		int r;

		if (early_prop(name) != early &&
		    (early || made || strcmp(name, "cgroup.subtree_control")))
			continue;
		r = write_prop(cd, dir, cd->props[i], nr_again < ARRAY_SIZE(again));
		if (r < 0)
			return -1;
		if (r)
			again[nr_again++] = i;
	}
	for (size_t i = 0; i < nr_again; i++)
		if (write_prop(cd, dir, cd->props[again[i]], false))
			return -1;
	return 0;
}

/* One directory of the cgroups image: made when missing, with its own and
 * its files' modes and owners; an existing one gets its own only. Its
 * settings as the mode says (the top of this file). 1: its settings are
 * left for cgroup_finish, cd kept. */
static int restore_dir(const Stasis__CgroupDir *cd, char **dirp, bool *madep)
{
	const char *ctrl = cd->controllers, *rel, *path;
	char dir[PATH_MAX], moved[PATH_MAX];
	const struct cgmount *m;
	bool made = false;
	int fd, len, mode = opts.manage_cgroups;

	if (!good_path(cd->path)) {
		pr_err("cgroups: bad cgroup path \"%s\"", cd->path);
		return -1;
	}
	path = cg_path(ctrl, cd->path, moved, sizeof(moved));
	if (!path)
		return -1;
	m = cgmount_find(ctrl, path, &rel);
	if (!m) {
		pr_err("cgroup %s of hierarchy %s%s is not mounted here", path, *ctrl ? ctrl : "v2",
		       *ctrl ? "" : " (cgroup2)");
		return -1;
	}
	len = snprintf(dir, sizeof(dir), "%s%s", m->dir, rel);
	if (len >= (int)sizeof(dir)) {
		pr_err("cgroup %s: path too long", cd->path);
		return -1;
	}
	if (access(dir, F_OK)) {
		if (errno == ENOENT && make_none()) {
			pr_err(
			    "cgroup %s:%s (%s) does not exist: --manage-cgroups=%s does not make "
			    "cgroups",
			    *ctrl ? ctrl : "v2", cd->path, dir, cg_mode_name(mode));
			return -1;
		}
		if (errno != ENOENT || mkdirs(dir)) {
			pr_perror("cannot make cgroup directory %s", dir);
			return -1;
		}
		made = true;
	} else if (mode == CG_STRICT) {
		pr_err("cgroup %s:%s (%s) exists: --manage-cgroups=strict restores into new "
		       "cgroups only",
		       *ctrl ? ctrl : "v2", cd->path, dir);
		return -1;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (mode != CG_NONE && set_perms(fd, cd->perms))) {
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
	if (made && write_props(cd, dir, true, true))
		return -1;
	if (!cd->n_props || (!made && (mode == CG_SOFT || mode == CG_NONE)))
		return 0;
	*dirp = xstrdup(dir);
	*madep = made;
	return 1;
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
		char *dir = NULL;
		bool made = false;
		int ret;

		if (!cd)
			return -1;
		ret = restore_dir(cd, &dir, &made);
		if (ret == 1) {
			late = xrealloc(late, (nr_late + 1) * sizeof(*late));
			late[nr_late++] = (struct late_dir){cd, dir, made};
			continue;
		}
		protobuf_c_message_free_unpacked(&cd->base, NULL);
		if (ret)
			return -1;
	}
	return 0;
}

int cgroup_finish(void)
{
	int ret = 0;

	for (size_t i = 0; i < nr_late; i++) {
		if (!ret && write_props(late[i].cd, late[i].dir, false, late[i].made))
			ret = -1;
		protobuf_c_message_free_unpacked(&late[i].cd->base, NULL);
		free(late[i].dir);
	}
	free(late);
	late = NULL;
	nr_late = 0;
	if (!ret && opts.manage_cgroups > CG_NONE)
		pr_info("cgroup settings restored (--manage-cgroups=%s)",
			cg_mode_name(opts.manage_cgroups));
	return ret;
}

/*
 * In the holder of a cgroup namespace (inject/ns.c), before it makes the
 * namespace: into the cgroups that are its roots (/proc cgroup lines),
 * moved by --cgroup-root as the tree's cgroups are. With
 * --manage-cgroups=ignore the tree stays in our cgroups, and so do the
 * namespace's roots.
 */
int cgroup_enter_ns_root(struct itask *root_task, char **lines, size_t n)
{
	if (!opts.manage_cgroups)
		return 0;
	if (!root_lines && root_task->nr_threads) {
		root_lines = root_task->threads[0].th->cgroups;
		nr_root_lines = root_task->threads[0].th->n_cgroups;
	}
	if (cgmounts_read())
		return -1;
	for (size_t i = 0; i < n; i++) {
		char ctrl[256], moved[PATH_MAX], file[PATH_MAX + 32];
		const char *c1 = strchr(lines[i], ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		const char *path, *rel, *name;
		const struct cgmount *m;
		int fd, len;

		if (!c2 || (size_t)(c2 - c1 - 1) >= sizeof(ctrl) || !good_path(c2 + 1)) {
			pr_err("bad cgroup namespace root \"%s\" in the checkpoint", lines[i]);
			return -1;
		}
		snprintf(ctrl, sizeof(ctrl), "%.*s", (int)(c2 - c1 - 1), c1 + 1);
		name = *ctrl ? ctrl : "v2";
		if (!(path = cg_path(ctrl, c2 + 1, moved, sizeof(moved))))
			return -1;
		len = snprintf(file, sizeof(file), "%.*s%s", (int)(c2 + 1 - lines[i]), lines[i], path);
		if (len < (int)sizeof(file) && already_in(getpid(), getpid(), file))
			continue; /* a hierarchy no one mounted: the root of every task */
		m = cgmount_find(ctrl, path, &rel);
		if (!m) {
			pr_err("cgroup namespace root %s:%s: the hierarchy is not mounted here", name,
			       path);
			return -1;
		}
		len = snprintf(file, sizeof(file), "%s%s", m->dir, rel);
		if (len >= (int)sizeof(file) - 16) {
			pr_err("cgroup namespace root %s:%s: path too long", name, path);
			return -1;
		}
		if (make_none() && access(file, F_OK)) {
			pr_perror("cgroup namespace root %s:%s (%s) is not there (--manage-cgroups=%s "
				  "does not make cgroups)",
				  name, path, file, cg_mode_name(opts.manage_cgroups));
			return -1;
		}
		if (mkdirs(file)) {
			pr_perror("cannot make cgroup directory %s", file);
			return -1;
		}
		strcat(file, *ctrl ? "/tasks" : "/cgroup.procs");
		fd = open(file, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0", 1) != 1) {
			pr_perror("cannot enter cgroup %s, a root of a cgroup namespace", file);
			if (fd >= 0)
				close(fd);
			return -1;
		}
		close(fd);
	}
	return 0;
}

int cgroup_prepare(struct itree *tr)
{
	struct itask *root_task = &tr->tasks[0];

	if (!opts.manage_cgroups)
		return 0;
	if (!root_lines && root_task->nr_threads) {
		root_lines = root_task->threads[0].th->cgroups;
		nr_root_lines = root_task->threads[0].th->n_cgroups;
	}
	return cgmounts_read() || restore_dirs() ? -1 : 0;
}

int cgroup_restore(struct itask *t)
{
	if (!opts.manage_cgroups)
		return 0;
	/* the first task is the root */
	if (!root_lines && t->nr_threads) {
		root_lines = t->threads[0].th->cgroups;
		nr_root_lines = t->threads[0].th->n_cgroups;
	}
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
