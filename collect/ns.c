// SPDX-License-Identifier: GPL-2.0
/*
 * Namespaces. Each namespace a task of the tree is in, other than the one
 * stasis-collect runs in, gets an id and an NsEntry record in image ns;
 * the task's PstreeEntry names it by that id, and stasis-inject makes it
 * again (inject/ns.c). Sockets name theirs the same way (ns_register_fd).
 * Carried: UTS (host and domain name), time (the clocks as the namespace
 * saw them), cgroup (its root), IPC (its sysctls and SysV objects:
 * ipcns.c), PID (a tree rooted at its init: pidns.c), network (links,
 * addresses, routes, sysctls: netns.c; its sockets are asked for with
 * sock_diag inside it). Refused before anything is touched: user
 * namespaces, a time or PID namespace made for children to come,
 * and the kinds with no support here yet. A mount namespace is carried
 * as a difference from ours or from the one of the tree it was made
 * from (mntns.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "collect.h"
#include "stasis/log.h"
#include "stasis/sockdiag.h"
#include "stasis/util.h"

static const struct ns_kind {
	const char *file, *name;
	int flag;	     /* CLONE_NEW* */
	Stasis__NsKind kind; /* 0: not carried */
} kinds[] = {
    {"net", "network", CLONE_NEWNET, STASIS__NS_KIND__NS_NET},
    {"uts", "UTS", CLONE_NEWUTS, STASIS__NS_KIND__NS_UTS},
    {"ipc", "IPC", CLONE_NEWIPC, STASIS__NS_KIND__NS_IPC},
    {"pid", "PID", CLONE_NEWPID, STASIS__NS_KIND__NS_PID},
    {"user", "user", CLONE_NEWUSER, 0},
    {"time", "time", CLONE_NEWTIME, STASIS__NS_KIND__NS_TIME},
    {"cgroup", "cgroup", CLONE_NEWCGROUP, STASIS__NS_KIND__NS_CGROUP},
    {"mnt", "mount", CLONE_NEWNS, STASIS__NS_KIND__NS_MNT},
};

/* The kinds a task can name in its PstreeEntry, and where. */
static uint32_t *pe_field(Stasis__PstreeEntry *pe, Stasis__NsKind kind, protobuf_c_boolean **has)
{
	switch (kind) {
	case STASIS__NS_KIND__NS_NET:
		*has = &pe->has_net_ns;
		return &pe->net_ns;
	case STASIS__NS_KIND__NS_UTS:
		*has = &pe->has_uts_ns;
		return &pe->uts_ns;
	case STASIS__NS_KIND__NS_IPC:
		*has = &pe->has_ipc_ns;
		return &pe->ipc_ns;
	case STASIS__NS_KIND__NS_TIME:
		*has = &pe->has_time_ns;
		return &pe->time_ns;
	case STASIS__NS_KIND__NS_CGROUP:
		*has = &pe->has_cgroup_ns;
		return &pe->cgroup_ns;
	case STASIS__NS_KIND__NS_PID:
		*has = &pe->has_pid_ns;
		return &pe->pid_ns;
	case STASIS__NS_KIND__NS_MNT:
		*has = &pe->has_mnt_ns;
		return &pe->mnt_ns;
	default:
		return NULL;
	}
}

static const struct ns_kind *kind_of(Stasis__NsKind kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (kinds[i].kind == kind)
			return &kinds[i];
	return NULL;
}

struct ns {
	uint32_t id;
	const struct ns_kind *k;
	dev_t dev;
	ino_t ino;
	int fd;	   /* to enter it */
	pid_t pid; /* a task in it, 0 if only a socket's */
};

static struct ns *nss;
static size_t nr_nss;
static int own_fds[ARRAY_SIZE(kinds)]; /* ours, to come back: fd + 1 */

static int own_ns(const struct ns_kind *k, struct stat *st)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/ns/%s", k->file);
	return stat(path, st);
}

static int register_ns(const struct ns_kind *k, int fd, pid_t pid)
{
	struct stat own, st;

	if (fstat(fd, &st) || own_ns(k, &own)) {
		pr_perror("cannot read a %s namespace", k->name);
		return -1;
	}
	if (st.st_ino == own.st_ino && st.st_dev == own.st_dev)
		return 0;
	for (size_t i = 0; i < nr_nss; i++)
		if (nss[i].k == k && nss[i].ino == st.st_ino && nss[i].dev == st.st_dev) {
			if (!nss[i].pid)
				nss[i].pid = pid;
			return nss[i].id;
		}
	nss = xrealloc(nss, (nr_nss + 1) * sizeof(*nss));
	nss[nr_nss] = (struct ns){.id = nr_nss + 1,
				  .k = k,
				  .dev = st.st_dev,
				  .ino = st.st_ino,
				  .fd = fcntl(fd, F_DUPFD_CLOEXEC, 0),
				  .pid = pid};
	if (nss[nr_nss].fd < 0) {
		pr_perror("cannot keep a %s namespace", k->name);
		return -1;
	}
	nr_nss++;
	/* read now, while nothing is touched: a link that cannot be carried
	 * refuses the dump here */
	if (k->kind == STASIS__NS_KIND__NS_NET &&
	    (sockdiag_add_netns(nss[nr_nss - 1].fd) || netns_check(nr_nss)))
		return -1;
	if (k->kind == STASIS__NS_KIND__NS_MNT && mntns_check(nr_nss, pid, nss[nr_nss - 1].fd))
		return -1;
	return nr_nss;
}

int ns_register_fd(Stasis__NsKind kind, int nsfd)
{
	const struct ns_kind *k = kind_of(kind);

	if (!k) {
		pr_err("namespace kind %d is not carried", kind);
		return -1;
	}
	return register_ns(k, nsfd, 0);
}

static bool same_ns(pid_t pid, const char *a, const char *b)
{
	char pa[64], pb[64];
	struct stat sa, sb;

	snprintf(pa, sizeof(pa), "/proc/%d/ns/%s", pid, a);
	snprintf(pb, sizeof(pb), "/proc/%d/ns/%s", pid, b);
	if (stat(pa, &sa) || stat(pb, &sb))
		return true; /* not in this kernel */
	return sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}

uint32_t ns_mnt_id(pid_t pid)
{
	const struct ns_kind *k = kind_of(STASIS__NS_KIND__NS_MNT);
	struct stat own, st;
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", pid);
	if (stat(path, &st) || own_ns(k, &own) ||
	    (st.st_ino == own.st_ino && st.st_dev == own.st_dev))
		return 0;
	for (size_t i = 0; i < nr_nss; i++)
		if (nss[i].k == k && nss[i].ino == st.st_ino && nss[i].dev == st.st_dev)
			return nss[i].id;
	return 0;
}

int ns_task_ids(pid_t pid, Stasis__PstreeEntry *pe)
{
	if (!same_ns(pid, "pid", "pid_for_children")) {
		pr_err("task %d made a PID namespace for its children to come, which stasis does "
		       "not support",
		       pid);
		return -1;
	}
	if (!same_ns(pid, "time", "time_for_children")) {
		pr_err("task %d made a time namespace for its children to come, which stasis does "
		       "not support",
		       pid);
		return -1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		const struct ns_kind *k = &kinds[i];
		protobuf_c_boolean *has;
		struct stat own, st;
		char path[64];
		uint32_t *field;
		int fd, id;

		if (own_ns(k, &own))
			continue; /* not in this kernel */
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, k->file);
		if (stat(path, &st)) {
			pr_perror("cannot read the %s namespace of task %d", k->name, pid);
			return -1;
		}
		if (st.st_ino == own.st_ino && st.st_dev == own.st_dev)
			continue;
		if (!k->kind) {
			pr_err("task %d is in another %s namespace, which stasis does not support",
			       pid, k->name);
			return -1;
		}
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			pr_perror("cannot open the %s namespace of task %d", k->name, pid);
			return -1;
		}
		id = register_ns(k, fd, pid);
		close(fd);
		if (id < 0 || (k->kind == STASIS__NS_KIND__NS_MNT && mntns_check_task(pid)))
			return -1;
		field = pe_field(pe, k->kind, &has);
		*field = id;
		*has = true;
	}
	return 0;
}

int ns_enter(uint32_t id)
{
	size_t k;

	if (!id || id > nr_nss) {
		pr_err("no namespace %u to enter", id);
		return -1;
	}
	k = nss[id - 1].k - kinds;
	if (!own_fds[k]) {
		char path[64];
		int fd;

		snprintf(path, sizeof(path), "/proc/self/ns/%s", kinds[k].file);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			pr_perror("cannot open our own %s namespace", kinds[k].name);
			return -1;
		}
		own_fds[k] = fd + 1;
	}
	if (setns(nss[id - 1].fd, kinds[k].flag)) {
		pr_perror("cannot enter %s namespace %u", kinds[k].name, id);
		return -1;
	}
	return 0;
}

void ns_leave(Stasis__NsKind kind)
{
	const struct ns_kind *k = kind_of(kind);

	/* failing to come back would take every later step to the wrong
	 * namespace: nothing can go on */
	if (k && own_fds[k - kinds] && setns(own_fds[k - kinds] - 1, k->flag)) {
		pr_perror("cannot come back to our own %s namespace", k->name);
		abort();
	}
}

/* ---- what each kind holds ---- */

static int uts_collect(struct ns *ns, Stasis__NsEntry *e)
{
	static Stasis__UtsNs uts = STASIS__UTS_NS__INIT;
	static struct utsname un;

	if (ns_enter(ns->id))
		return -1;
	if (uname(&un)) {
		pr_perror("cannot read the names of UTS namespace %u", ns->id);
		ns_leave(ns->k->kind);
		return -1;
	}
	ns_leave(ns->k->kind);
	uts.hostname = un.nodename;
	uts.domainname = un.domainname;
	e->uts = &uts;
	pr_debug("UTS namespace %u: host name \"%s\", domain name \"%s\"", ns->id, un.nodename,
		 un.domainname);
	return 0;
}

static int64_t ts_ns(const struct timespec *ts)
{
	return ts->tv_sec * 1000000000ll + ts->tv_nsec;
}

static int time_collect(struct ns *ns, Stasis__NsEntry *e)
{
	static Stasis__TimeNs tn = STASIS__TIME_NS__INIT;
	struct timespec mono, boot;
	char path[64], name[32];
	long long sec, nsec;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/timens_offsets", ns->pid);
	f = fopen(path, "re");
	if (!f) {
		pr_perror("cannot open %s", path);
		return -1;
	}
	while (fscanf(f, "%31s %lld %lld", name, &sec, &nsec) == 3) {
		if (!strcmp(name, "monotonic")) {
			tn.monotonic_sec = sec;
			tn.monotonic_nsec = nsec;
		} else if (!strcmp(name, "boottime")) {
			tn.boottime_sec = sec;
			tn.boottime_nsec = nsec;
		}
	}
	fclose(f);
	/* the clocks as the namespace sees them now, while the tree is
	 * frozen: the restore sets its offsets so that they go on from here */
	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_BOOTTIME, &boot);
	tn.has_monotonic_at_dump_ns = tn.has_boottime_at_dump_ns = true;
	tn.monotonic_at_dump_ns =
	    ts_ns(&mono) + tn.monotonic_sec * 1000000000ll + tn.monotonic_nsec;
	tn.boottime_at_dump_ns = ts_ns(&boot) + tn.boottime_sec * 1000000000ll + tn.boottime_nsec;
	e->time = &tn;
	return 0;
}

/* The lines of /proc/PID/cgroup ("ID:CONTROLLERS:PATH"), as we see them
 * where we are; NULL-terminated, or NULL. */
static char **cgroup_lines(pid_t pid)
{
	char path[64], *line = NULL, **lines = NULL;
	size_t cap = 0, n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	f = fopen(path, "re");
	if (!f)
		return NULL;
	lines = xzalloc(sizeof(*lines));
	while (getline(&line, &cap, f) > 0) {
		line[strcspn(line, "\n")] = 0;
		lines = xrealloc(lines, (n + 2) * sizeof(*lines));
		lines[n++] = xstrdup(line);
		lines[n] = NULL;
	}
	free(line);
	fclose(f);
	return lines;
}

static void free_lines(char **lines)
{
	for (size_t i = 0; lines && lines[i]; i++)
		free(lines[i]);
	free(lines);
}

/* The root of hierarchy line out (as we see the task's cgroup in it):
 * that path less the one the namespace shows (relative to the root). */
static char *hierarchy_root(pid_t pid, const char *out, char **inside)
{
	const char *c2 = strchr(strchr(out, ':') + 1, ':') + 1, *in = NULL;
	size_t pl = c2 - out, ol = strlen(c2), il;
	char *root;

	for (size_t i = 0; inside[i] && !in; i++)
		if (!strncmp(inside[i], out, pl))
			in = inside[i] + pl;
	if (!in) {
		pr_err("task %d: its cgroup namespace does not show hierarchy %.*s", pid,
		       (int)pl - 1, out);
		return NULL;
	}
	il = strcmp(in, "/") ? strlen(in) : 0;
	if (!strncmp(in, "/..", 3) || il > ol || (il && strcmp(c2 + ol - il, in))) {
		pr_err("task %d is outside the root of its cgroup namespace (it sees its cgroup "
		       "%.*s%s as %s): not supported",
		       pid, (int)pl, out, c2, in);
		return NULL;
	}
	root = xzalloc(pl + ol - il + 2);
	memcpy(root, out, pl + ol - il);
	if (ol == il)
		strcat(root, "/");
	return root;
}

/* The root of a cgroup namespace in each hierarchy: "ID:CONTROLLERS:ROOT". */
static int cgroup_collect(struct ns *ns, Stasis__NsEntry *e)
{
	static char **roots;
	char **outside = cgroup_lines(ns->pid), **inside = NULL;
	int ret = -1;

	free_lines(roots);
	roots = NULL;
	if (!outside || ns_enter(ns->id))
		goto out;
	inside = cgroup_lines(ns->pid);
	ns_leave(ns->k->kind);
	if (!inside) {
		pr_err("cannot read the cgroups of task %d in its cgroup namespace", ns->pid);
		goto out;
	}
	roots = xzalloc(sizeof(*roots));
	for (size_t i = 0; outside[i]; i++) {
		char *c1 = strchr(outside[i], ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

		if (!c2) {
			pr_err("task %d: bad cgroup line \"%s\"", ns->pid, outside[i]);
			goto out;
		}
		roots = xrealloc(roots, (i + 2) * sizeof(*roots));
		roots[i + 1] = NULL;
		if (!(roots[i] = hierarchy_root(ns->pid, outside[i], inside)))
			goto out;
		pr_debug("cgroup namespace %u: root %s", ns->id, roots[i]);
		e->n_cgroup_roots = i + 1;
	}
	e->cgroup_roots = roots;
	ret = 0;
out:
	if (!outside)
		pr_err("cannot read the cgroups of task %d", ns->pid);
	free_lines(outside);
	free_lines(inside);
	return ret;
}

int ns_write(struct img_writer *w)
{
	for (size_t i = 0; i < nr_nss; i++) {
		Stasis__NsEntry e = STASIS__NS_ENTRY__INIT;
		struct ns *ns = &nss[i];
		int r = -1;

		e.id = ns->id;
		e.kind = ns->k->kind;
		e.has_inode = true;
		e.inode = ns->ino;
		if (!ns->pid && ns->k->kind != STASIS__NS_KIND__NS_NET) {
			pr_err("%s namespace %u has no task of the tree", ns->k->name, ns->id);
			return -1;
		}
		switch (ns->k->kind) {
		case STASIS__NS_KIND__NS_UTS:
			r = uts_collect(ns, &e);
			break;
		case STASIS__NS_KIND__NS_TIME:
			r = time_collect(ns, &e);
			break;
		case STASIS__NS_KIND__NS_CGROUP:
			r = cgroup_collect(ns, &e);
			break;
		case STASIS__NS_KIND__NS_IPC:
			r = ipcns_collect(ns->id, &e, w);
			break;
		case STASIS__NS_KIND__NS_PID:
			/* nothing but its tasks' PIDs (collect/pidns.c) */
			r = 0;
			break;
		case STASIS__NS_KIND__NS_NET:
			r = netns_collect(ns->id, &e);
			break;
		case STASIS__NS_KIND__NS_MNT:
			r = mntns_collect(ns->id, &e, w);
			break;
		default:
			pr_err("%s namespace %u: not carried", ns->k->name, ns->id);
			break;
		}
		if (r || imgw_record(w, "ns", &e.base))
			return -1;
	}
	return 0;
}
