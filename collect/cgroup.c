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
 *
 * Each directory's record also holds its settings: the files of criu's
 * property list for each controller of the hierarchy (cpu, memory,
 * cpuset, blkio, net_cls, net_prio, pids, devices) and the global ones
 * (v1: cgroup.clone_children, notify_on_release; v2: cgroup.subtree_control,
 * cgroup.max.descendants, cgroup.max.depth, cgroup.freeze, cgroup.type),
 * those the directory has, read as criu reads them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
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
	bool dump_root; /* path is the hierarchy's --cgroup-root */
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

/* The settings recorded per controller (criu v4.2's predefined lists). */
static const char *const cpu_props[] = {"cpu.shares",	    "cpu.cfs_period_us", "cpu.cfs_quota_us",
					"cpu.rt_period_us", "cpu.rt_runtime_us", NULL};
static const char *const memory_props[] = {"memory.limit_in_bytes",
					   "memory.memsw.limit_in_bytes",
					   "memory.swappiness",
					   "memory.soft_limit_in_bytes",
					   "memory.move_charge_at_immigrate",
					   "memory.oom_control",
					   "memory.use_hierarchy",
					   "memory.kmem.limit_in_bytes",
					   "memory.kmem.tcp.limit_in_bytes",
					   NULL};
static const char *const cpuset_props[] = {"cpuset.cpus",
					   "cpuset.mems",
					   "cpuset.memory_migrate",
					   "cpuset.cpu_exclusive",
					   "cpuset.mem_exclusive",
					   "cpuset.mem_hardwall",
					   "cpuset.memory_spread_page",
					   "cpuset.memory_spread_slab",
					   "cpuset.sched_load_balance",
					   "cpuset.sched_relax_domain_level",
					   NULL};
static const char *const blkio_props[] = {"blkio.weight", NULL};
static const char *const net_cls_props[] = {"net_cls.classid", NULL};
static const char *const net_prio_props[] = {"net_prio.ifpriomap", NULL};
static const char *const pids_props[] = {"pids.max", NULL};
static const char *const devices_props[] = {"devices.list", NULL};
static const char *const v1_global_props[] = {"cgroup.clone_children", "notify_on_release", NULL};
static const char *const v2_global_props[] = {"cgroup.subtree_control",
					      "cgroup.max.descendants",
					      "cgroup.max.depth",
					      "cgroup.freeze",
					      "cgroup.type",
					      NULL};

/* A controller's property list: the built-in one, or as --cgroup-props
 * made it. */
struct cgprops {
	char *name;
	char **props;
	size_t nr;
};

static struct cgprops *cgps;
static size_t nr_cgps;

static void cgp_add(const char *name, const char *const *props)
{
	struct cgprops *c;

	cgps = xrealloc(cgps, (nr_cgps + 1) * sizeof(*cgps));
	c = &cgps[nr_cgps++];
	c->name = xstrdup(name);
	c->props = NULL;
	c->nr = 0;
	for (; props && *props; props++) {
		c->props = xrealloc(c->props, (c->nr + 1) * sizeof(*c->props));
		c->props[c->nr++] = xstrdup(*props);
	}
}

static void cgp_builtins(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	cgp_add("cpu", cpu_props);
	cgp_add("memory", memory_props);
	cgp_add("cpuset", cpuset_props);
	cgp_add("blkio", blkio_props);
	cgp_add("freezer", NULL);
	cgp_add("perf_event", NULL);
	cgp_add("net_cls", net_cls_props);
	cgp_add("net_prio", net_prio_props);
	cgp_add("pids", pids_props);
	cgp_add("devices", devices_props);
}

static struct cgprops *cgp_find(const char *name, size_t len)
{
	for (size_t i = 0; i < nr_cgps; i++)
		if (strlen(cgps[i].name) == len && !strncmp(cgps[i].name, name, len))
			return &cgps[i];
	return NULL;
}

/* --cgroup-props: criu's simplified YAML, a list of
 *	"CONTROLLER":
 *	 - "strategy": "merge"|"replace"
 *	 - "properties": ["NAME", ...]
 * read as tokens (quoted strings and the characters :-[],), blanks, new
 * lines and a typed \n between them skipped. */
struct cgp_lexer {
	const char *p, *what;
	char tok[256];
	bool quoted;
};

static int cgp_next(struct cgp_lexer *lx)
{
	for (;;) {
		if (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\n' || *lx->p == '\r')
			lx->p++;
		else if (lx->p[0] == '\\' && lx->p[1] == 'n')
			lx->p += 2;
		else
			break;
	}
	lx->quoted = false;
	if (!*lx->p) {
		lx->tok[0] = 0;
		return 0;
	}
	if (*lx->p == '"') {
		size_t n = strcspn(lx->p + 1, "\"\n");

		if (lx->p[1 + n] != '"' || n >= sizeof(lx->tok) || !n) {
			pr_err("%s: an unterminated, empty or too long quoted string", lx->what);
			return -1;
		}
		memcpy(lx->tok, lx->p + 1, n);
		lx->tok[n] = 0;
		lx->p += n + 2;
		lx->quoted = true;
		return 1;
	}
	if (!strchr(":-[],", *lx->p)) {
		pr_err("%s: unexpected \"%.16s\" (names are quoted)", lx->what, lx->p);
		return -1;
	}
	lx->tok[0] = *lx->p++;
	lx->tok[1] = 0;
	return 1;
}

/* the next token must be the character c, or the quoted word w */
static int cgp_expect(struct cgp_lexer *lx, const char *want, bool quoted)
{
	if (cgp_next(lx) <= 0 || lx->quoted != quoted || strcmp(lx->tok, want)) {
		pr_err("%s: expected %s%s%s before \"%.16s\"", lx->what, quoted ? "\"" : "'", want,
		       quoted ? "\"" : "'", lx->p);
		return -1;
	}
	return 0;
}

int cgroup_props_parse(const char *spec, const char *what)
{
	struct cgp_lexer lx = { .p = spec, .what = what };
	int r;

	cgp_builtins();
	while ((r = cgp_next(&lx)) > 0) {
		char name[256];
		bool replace;
		struct cgprops *cp;

		if (!lx.quoted) {
			pr_err("%s: expected a quoted controller name, not '%s'", what, lx.tok);
			return -1;
		}
		snprintf(name, sizeof(name), "%s", lx.tok);
		if (cgp_expect(&lx, ":", false) || cgp_expect(&lx, "-", false) ||
		    cgp_expect(&lx, "strategy", true) || cgp_expect(&lx, ":", false))
			return -1;
		if (cgp_next(&lx) <= 0 || !lx.quoted ||
		    (strcmp(lx.tok, "merge") && strcmp(lx.tok, "replace"))) {
			pr_err("%s: controller %s: the strategy is \"merge\" or \"replace\"", what,
			       name);
			return -1;
		}
		replace = !strcmp(lx.tok, "replace");
		if (cgp_expect(&lx, "-", false) || cgp_expect(&lx, "properties", true) ||
		    cgp_expect(&lx, ":", false) || cgp_expect(&lx, "[", false))
			return -1;
		cp = cgp_find(name, strlen(name));
		if (!cp) {
			cgp_add(name, NULL);
			cp = &cgps[nr_cgps - 1];
		} else if (replace) {
			for (size_t i = 0; i < cp->nr; i++)
				free((char *)cp->props[i]);
			cp->nr = 0;
		}
		for (;;) {
			bool dup = false;

			if (cgp_next(&lx) <= 0) {
				pr_err("%s: controller %s: the property list has no ']'", what,
				       name);
				return -1;
			}
			if (!lx.quoted && !strcmp(lx.tok, "]"))
				break;
			if (!lx.quoted && !strcmp(lx.tok, ","))
				continue;
			if (!lx.quoted || strchr(lx.tok, '/') || !strcmp(lx.tok, "..") ||
			    !strcmp(lx.tok, ".")) {
				pr_err("%s: controller %s: bad property \"%s\"", what, name,
				       lx.tok);
				return -1;
			}
			for (size_t i = 0; i < cp->nr && !dup; i++)
				dup = !strcmp(cp->props[i], lx.tok);
			if (dup)
				continue;
			cp->props = xrealloc(cp->props, (cp->nr + 1) * sizeof(*cp->props));
			cp->props[cp->nr++] = xstrdup(lx.tok);
		}
		pr_debug("%s: controller %s: %zu propert%s (%s)", what, name, cp->nr,
			 cp->nr == 1 ? "y" : "ies", replace ? "replaced" : "merged");
	}
	return r;
}

int cgroup_props_file(const char *path)
{
	char *buf = NULL, what[PATH_MAX + 32];
	size_t len = 0, cap = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0) {
		pr_perror("--cgroup-props-file: cannot open %s", path);
		return -1;
	}
	do {
		if (len + 4096 + 1 > cap) {
			cap = cap ? 2 * cap : 8192;
			if (cap > (1 << 20)) {
				pr_err("--cgroup-props-file %s: larger than 1 MiB", path);
				goto fail;
			}
			buf = xrealloc(buf, cap);
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			pr_perror("--cgroup-props-file: cannot read %s", path);
			goto fail;
		}
		len += n;
	} while (n > 0);
	close(fd);
	buf[len] = 0;
	if (strlen(buf) != len) {
		pr_err("--cgroup-props-file %s: not text", path);
		free(buf);
		return -1;
	}
	snprintf(what, sizeof(what), "--cgroup-props-file %s", path);
	r = cgroup_props_parse(buf, what);
	free(buf);
	return r;
fail:
	close(fd);
	free(buf);
	return -1;
}

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
	starts[nr_starts].dump_root = false;
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

/* The value of setting name of the directory dfd as criu records it: 1
 * when the directory has no such file. */
static int read_prop(int dfd, const char *dir, const char *name, char **value)
{
	size_t len = 0, cap = 4096;
	char *buf;
	ssize_t n;
	int fd;

	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 1;
		pr_perror("cannot open cgroup setting %s/%s", dir, name);
		return -1;
	}
	buf = xmalloc(cap);
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += n;
		if (len + 1 == cap) {
			if (cap >= (1 << 20))
				break;
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
	}
	if (n < 0) {
		pr_perror("cannot read cgroup setting %s/%s", dir, name);
		close(fd);
		free(buf);
		return -1;
	}
	close(fd);
	buf[len] = 0;
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		buf[--len] = 0;
	if (!strcmp(name, "memory.oom_control")) {
		int disable;

		if (sscanf(buf, "oom_kill_disable %d", &disable) != 1) {
			pr_err("cgroup setting %s/%s: unexpected \"%s\"", dir, name, buf);
			free(buf);
			return -1;
		}
		snprintf(buf, cap, "%d", disable);
	} else if (strtoll(buf, NULL, 10) == LLONG_MAX) {
		snprintf(buf, cap, "-1");
	}
	*value = buf;
	return 0;
}

struct dirprops {
	Stasis__CgroupProp *v, **pv;
	size_t n;
};

static int add_props(int dfd, const char *dir, const char *const *names, size_t nr,
		     struct dirprops *dp)
{
	for (size_t i = 0; i < nr; i++) {
		char *value;
		int r = read_prop(dfd, dir, names[i], &value);

		if (r < 0)
			return -1;
		if (r)
			continue;
		dp->v = xrealloc(dp->v, (dp->n + 1) * sizeof(*dp->v));
		stasis__cgroup_prop__init(&dp->v[dp->n]);
		dp->v[dp->n].name = (char *)names[i];
		dp->v[dp->n].value = value;
		dp->n++;
	}
	return 0;
}

/* The settings of the directory dfd of a hierarchy of controllers ctrl. */
static int collect_props(int dfd, const char *dir, const char *ctrl, struct dirprops *dp)
{
	const char *const *global = *ctrl ? v1_global_props : v2_global_props;
	size_t nr = 0;

	for (const char *c = ctrl; *c;) {
		size_t l = strcspn(c, ",");
		const struct cgprops *cp = cgp_find(c, l);

		if (cp && add_props(dfd, dir, (const char *const *)cp->props, cp->nr, dp))
			return -1;
		c += l;
		if (*c)
			c++;
	}
	while (global[nr])
		nr++;
	if (add_props(dfd, dir, global, nr, dp))
		return -1;
	dp->pv = xmalloc((dp->n + 1) * sizeof(*dp->pv));
	for (size_t i = 0; i < dp->n; i++)
		dp->pv[i] = &dp->v[i];
	return 0;
}

static void free_props(struct dirprops *dp)
{
	for (size_t i = 0; i < dp->n; i++)
		free(dp->v[i].value);
	free(dp->v);
	free(dp->pv);
}

struct walk {
	struct img_writer *w;
	const char *ctrl;
	const char *const *files;
	size_t nr;
	bool full;
	bool dump_root; /* the next record is the one of --cgroup-root */
};

/* Record the directory dir (cgroup path in the hierarchy) and the ones
 * below it, parents first. */
static int walk_dir(struct walk *wk, const char *dir, const char *path)
{
	Stasis__CgroupDir cd = STASIS__CGROUP_DIR__INIT;
	Stasis__CgroupPerms dp;
	Stasis__CgroupFilePerms fps[8], *fpp[8];
	Stasis__CgroupPerms fpperms[8];
	struct dirprops props = {0};
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
	cd.has_dump_root = cd.dump_root = wk->dump_root;
	wk->dump_root = false;
	ret = collect_props(fd, dir, wk->ctrl, &props);
	cd.props = props.pv;
	cd.n_props = props.n;
	if (ret || imgw_record(wk->w, "cgroups", &cd.base)) {
		free_props(&props);
		close(fd);
		return -1;
	}
	wk->nr++;
	pr_debug("cgroup %s:%s: mode %o, owner %u:%u, %zu file(s), %zu setting(s)",
		 *wk->ctrl ? wk->ctrl : "v2", path, dp.mode, dp.uid, dp.gid, cd.n_files,
		 cd.n_props);
	for (size_t i = 0; i < cd.n_props; i++)
		pr_debug("cgroup %s:%s: %s = \"%s\"", *wk->ctrl ? wk->ctrl : "v2", path,
			 props.v[i].name, props.v[i].value);
	free_props(&props);
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

/*
 * --cgroup-root: the walk of a hierarchy starts from the cgroup named, so
 * that the directories between it and the tree's cgroups (and all below
 * it, as criu does) are recorded, and restore --cgroup-root moves that one.
 */
static int apply_dump_roots(void)
{
	for (size_t i = 0; i < nr_starts; i++) {
		struct cgstart *s = &starts[i];
		const char *r = cg_root_of(opts.cgroup_roots, opts.nr_cgroup_roots, s->ctrl);
		size_t l = r ? strlen(r) : 0;

		while (l > 1 && r[l - 1] == '/')
			l--;
		if (!r)
			continue;
		if (l <= 1) {
			pr_err("--cgroup-root %s: a hierarchy's root is never recorded", r);
			return -1;
		}
		if (strncmp(s->path, r, l) || (s->path[l] && s->path[l] != '/')) {
			pr_err("--cgroup-root %s: cgroup %s:%s of the tree is not at or below it", r,
			       *s->ctrl ? s->ctrl : "v2", s->path);
			return -1;
		}
		s->path[l] = 0;
		s->dump_root = true;
	}
	return 0;
}

int cgroup_write(struct img_writer *w)
{
	struct walk wk = { .w = w };

	if (!nr_starts)
		return 0;
	cgp_builtins();
	if (cgmounts_read() || apply_dump_roots())
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
		wk.dump_root = s->dump_root;
		dir = join(m->dir, rel, "");
		ret = walk_dir(&wk, dir, s->path);
		free(dir);
		if (ret)
			return -1;
	}
	pr_info("%zu cgroup directories recorded", wk.nr);
	return 0;
}
