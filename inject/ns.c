// SPDX-License-Identifier: GPL-2.0
/*
 * Namespaces (collect/ns.c). Each NsEntry is made again before anything
 * else by a short-lived holder: a child of stasis-inject that unshares
 * the kind, fills the new namespace (names, clock offsets, its cgroup
 * root, its SysV objects: ipcns.c, its links, addresses, routes and
 * sysctls: netns.c) and waits until we hold the namespace
 * by a descriptor. Those descriptors, and ours of every kind involved,
 * are inherited by the task stubs (copies of stasis-inject), so each
 * task enters its namespaces right after it is cloned, where they differ
 * from its creator's; its later children inherit them. The descriptors go with
 * the rest of ours when its files are restored.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "inject.h"
#include "stasis/log.h"
#include "stasis/util.h"

static const struct ns_kind {
	const char *file, *name;
	int flag;
	Stasis__NsKind kind;
	/* the file of the holder to take it by: a time namespace is the one
	 * of the holder's children to come */
	const char *held;
} kinds[] = {
    {"net", "network", CLONE_NEWNET, STASIS__NS_KIND__NS_NET, "net"},
    {"uts", "UTS", CLONE_NEWUTS, STASIS__NS_KIND__NS_UTS, "uts"},
    {"ipc", "IPC", CLONE_NEWIPC, STASIS__NS_KIND__NS_IPC, "ipc"},
    {"time", "time", CLONE_NEWTIME, STASIS__NS_KIND__NS_TIME, "time_for_children"},
    {"cgroup", "cgroup", CLONE_NEWCGROUP, STASIS__NS_KIND__NS_CGROUP, "cgroup"},
    {"mnt", "mount", CLONE_NEWNS, STASIS__NS_KIND__NS_MNT, "mnt"},
};

struct ns {
	Stasis__NsEntry *e;
	const struct ns_kind *k;
	int fd;
	bool making; /* its base is being made first */
};

static struct ns *nss;
static size_t nr_nss;
static int own_fds[ARRAY_SIZE(kinds)]; /* fd + 1, opened when a kind is used */
/* --join-ns: fd + 1 of the namespace that replaces the root task's */
static int joined_fds[ARRAY_SIZE(kinds)];
static uint32_t root_ids[ARRAY_SIZE(kinds)];

#define JOINED UINT32_MAX

/* What a task of namespace id of kind k goes into: id, JOINED for the
 * root task's under --join-ns, 0 for ours. */
static uint32_t ns_key(size_t k, uint32_t id)
{
	return joined_fds[k] && id == root_ids[k] ? JOINED : id;
}

static const struct ns_kind *kind_of(Stasis__NsKind kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (kinds[i].kind == kind)
			return &kinds[i];
	return NULL;
}

static uint32_t task_ns(const Stasis__PstreeEntry *pe, Stasis__NsKind kind)
{
	switch (kind) {
	case STASIS__NS_KIND__NS_NET:
		return pe->net_ns;
	case STASIS__NS_KIND__NS_UTS:
		return pe->uts_ns;
	case STASIS__NS_KIND__NS_IPC:
		return pe->ipc_ns;
	case STASIS__NS_KIND__NS_TIME:
		return pe->time_ns;
	case STASIS__NS_KIND__NS_CGROUP:
		return pe->cgroup_ns;
	case STASIS__NS_KIND__NS_MNT:
		return pe->mnt_ns;
	default:
		return 0;
	}
}

static struct ns *find_ns(uint32_t id)
{
	for (size_t i = 0; i < nr_nss; i++)
		if (nss[i].e->id == id)
			return &nss[i];
	return NULL;
}

const Stasis__NsEntry *ns_entry(uint32_t id)
{
	struct ns *ns = find_ns(id);

	return ns ? ns->e : NULL;
}

/* ---- filling a new namespace, in its holder ---- */

static int uts_fill(const Stasis__NsEntry *e)
{
	if (!e->uts) {
		pr_err("UTS namespace %u: the checkpoint lacks its names", e->id);
		return -1;
	}
	if (sethostname(e->uts->hostname, strlen(e->uts->hostname)) ||
	    setdomainname(e->uts->domainname, strlen(e->uts->domainname))) {
		pr_perror("UTS namespace %u: cannot set its names", e->id);
		return -1;
	}
	return 0;
}

static int64_t clock_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void split(int64_t ns, long long *sec, long *nsec)
{
	*sec = ns / 1000000000ll;
	*nsec = ns % 1000000000ll;
	if (*nsec < 0) {
		*nsec += 1000000000l;
		(*sec)--;
	}
}

/* The clocks go on from where the dump froze them (not counting the time
 * the tree spent in the checkpoint); offsets alone for an older record. */
static int time_fill(const Stasis__NsEntry *e)
{
	const Stasis__TimeNs *tn = e->time;
	int64_t mono, boot;
	long long ms, bs;
	long mn, bn;
	char buf[128];
	int fd, len;

	if (!tn) {
		pr_err("time namespace %u: the checkpoint lacks its clocks", e->id);
		return -1;
	}
	if (tn->has_monotonic_at_dump_ns && tn->has_boottime_at_dump_ns) {
		mono = tn->monotonic_at_dump_ns - clock_ns(CLOCK_MONOTONIC);
		boot = tn->boottime_at_dump_ns - clock_ns(CLOCK_BOOTTIME);
	} else {
		mono = tn->monotonic_sec * 1000000000ll + tn->monotonic_nsec;
		boot = tn->boottime_sec * 1000000000ll + tn->boottime_nsec;
	}
	split(mono, &ms, &mn);
	split(boot, &bs, &bn);
	len = snprintf(buf, sizeof(buf), "monotonic %lld %ld\nboottime %lld %ld\n", ms, mn, bs, bn);
	fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, buf, len) != len) {
		pr_perror("time namespace %u: cannot set its offsets (monotonic %lld.%09ld s, "
			  "boot time %lld.%09ld s)",
			  e->id, ms, mn, bs, bn);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int fill(const struct ns *ns)
{
	switch (ns->k->kind) {
	case STASIS__NS_KIND__NS_UTS:
		return uts_fill(ns->e);
	case STASIS__NS_KIND__NS_TIME:
		return time_fill(ns->e);
	case STASIS__NS_KIND__NS_CGROUP:
		return 0; /* the holder entered its root before it unshared */
	case STASIS__NS_KIND__NS_IPC:
		return ipcns_fill(ns->e);
	case STASIS__NS_KIND__NS_NET:
		return netns_fill(ns->e);
	case STASIS__NS_KIND__NS_MNT:
		return mntns_fill(ns->e);
	default:
		pr_err("%s namespace %u: this stasis-inject cannot make it", ns->k->name,
		       ns->e->id);
		return -1;
	}
}

/* A holder: makes the namespace, fills it, says so and waits for the end. */
static int make_ns(struct itree *tr, struct ns *ns)
{
	struct ns *base = NULL;
	char path[64], ok = 0;
	int p[2], status;
	pid_t pid;

	if (ns->k->kind == STASIS__NS_KIND__NS_MNT && ns->e->has_mnt_base && ns->e->mnt_base) {
		base = find_ns(ns->e->mnt_base);
		if (!base || base->making || base->k != ns->k) {
			pr_err("mount namespace %u: its base %u is not in the checkpoint",
			       ns->e->id, ns->e->mnt_base);
			return -1;
		}
		ns->making = true;
		if (base->fd < 0 && make_ns(tr, base)) {
			ns->making = false;
			return -1;
		}
		ns->making = false;
	}

	if (pipe2(p, O_CLOEXEC)) {
		pr_perror("cannot make a pipe");
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		pr_perror("cannot fork the holder of %s namespace %u", ns->k->name, ns->e->id);
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		close(p[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (ns->k->kind == STASIS__NS_KIND__NS_CGROUP &&
		    cgroup_enter_ns_root(&tr->tasks[0], ns->e->cgroup_roots, ns->e->n_cgroup_roots))
			_exit(1);
		if (ns->k->kind == STASIS__NS_KIND__NS_NET && netns_before_unshare())
			_exit(1);
		/* made from a copy of its base, as it was from its parent's */
		if (base && setns(base->fd, CLONE_NEWNS)) {
			pr_perror("cannot enter mount namespace %u, the base of %u", base->e->id,
				  ns->e->id);
			_exit(1);
		}
		if (unshare(ns->k->flag)) {
			pr_perror("cannot make %s namespace %u", ns->k->name, ns->e->id);
			_exit(1);
		}
		if (fill(ns) || write(p[1], "1", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(p[1]);
	if (read(p[0], &ok, 1) == 1) {
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, ns->k->held);
		ns->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (ns->fd < 0)
			pr_perror("cannot open %s", path);
	}
	close(p[0]);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	if (ns->fd < 0) {
		pr_err("%s namespace %u could not be made", ns->k->name, ns->e->id);
		return -1;
	}
	pr_debug("%s namespace %u made (was inode %llu)", ns->k->name, ns->e->id,
		 (unsigned long long)ns->e->inode);
	return 0;
}

static int own_fd(const struct ns_kind *k)
{
	size_t i = k - kinds;

	if (!own_fds[i]) {
		char path[64];
		int fd;

		snprintf(path, sizeof(path), "/proc/self/ns/%s", k->file);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			pr_perror("cannot open our own %s namespace", k->name);
			return -1;
		}
		own_fds[i] = fd + 1;
	}
	return own_fds[i] - 1;
}

/* --join-ns NS:PID|FILE, as criu takes it. */
static int join_ns(const char *arg)
{
	const char *colon = strchr(arg, ':'), *what = colon ? colon + 1 : "";
	const struct ns_kind *k = NULL;
	char path[PATH_MAX];
	int fd;

	for (size_t i = 0; colon && i < ARRAY_SIZE(kinds); i++)
		if ((size_t)(colon - arg) == strlen(kinds[i].file) &&
		    !strncmp(arg, kinds[i].file, colon - arg))
			k = &kinds[i];
	if (!k || !*what) {
		pr_err("--join-ns %s: expected NS:PID or NS:FILE, NS one of net, uts, ipc, time, "
		       "cgroup, mnt",
		       arg);
		return -1;
	}
	if (strspn(what, "0123456789") == strlen(what))
		snprintf(path, sizeof(path), "/proc/%s/ns/%s", what, k->file);
	else
		snprintf(path, sizeof(path), "%s", what);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("--join-ns %s: cannot open %s", arg, path);
		return -1;
	}
	if (ioctl(fd, NS_GET_NSTYPE) != k->flag) {
		pr_err("--join-ns %s: %s is not a %s namespace", arg, path, k->name);
		close(fd);
		return -1;
	}
	if (joined_fds[k - kinds])
		close(joined_fds[k - kinds] - 1);
	joined_fds[k - kinds] = fd + 1;
	if (own_fd(k) < 0)
		return -1;
	pr_info("the tree goes into the %s namespace of %s", k->name, path);
	return 0;
}

int ns_prepare(struct itree *tr)
{
	unsigned n = records_count("ns");

	nss = xzalloc((n + 1) * sizeof(*nss));
	for (unsigned i = 0; i < n; i++) {
		struct ns *ns = &nss[nr_nss];

		ns->fd = -1;
		ns->e = records_get("ns", i, &stasis__ns_entry__descriptor);
		if (!ns->e)
			return -1;
		/* made by the root's clone (inject/pstree.c) */
		if (ns->e->kind == STASIS__NS_KIND__NS_PID) {
			protobuf_c_message_free_unpacked(&ns->e->base, NULL);
			ns->e = NULL;
			continue;
		}
		nr_nss++;
		ns->k = kind_of(ns->e->kind);
		if (!ns->k || !ns->e->id || find_ns(ns->e->id) != ns) {
			pr_err("namespace record %u of the checkpoint is malformed", i);
			return -1;
		}
	}
	for (size_t k = 0; k < ARRAY_SIZE(kinds); k++)
		root_ids[k] = task_ns(tr->tasks[0].pe, kinds[k].kind);
	for (int i = 0; i < opts.nr_join_ns; i++)
		if (join_ns(opts.join_ns[i]))
			return -1;
	for (size_t i = 0; i < tr->nr; i++)
		for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
			uint32_t id = task_ns(tr->tasks[i].pe, kinds[k].kind);
			struct ns *ns = id && ns_key(k, id) != JOINED ? find_ns(id) : NULL;

			if (id && ns_key(k, id) != JOINED && (!ns || ns->k != &kinds[k])) {
				pr_err("task %d: its %s namespace %u is not in the checkpoint",
				       tr->tasks[i].pid, kinds[k].name, id);
				return -1;
			}
			if (ns && ns->fd < 0 && (make_ns(tr, ns) || own_fd(ns->k) < 0))
				return -1;
		}
	/* a socket's namespace no task is in */
	for (size_t i = 0; i < nr_nss; i++)
		if (nss[i].fd < 0 && ns_key(nss[i].k - kinds, nss[i].e->id) != JOINED &&
		    (make_ns(tr, &nss[i]) || own_fd(nss[i].k) < 0))
			return -1;
	return 0;
}

/*
 * A task just cloned by src (NULL: by us) into its namespaces, where they
 * differ from the ones it was born in.
 */
int ns_join(struct itask *t, struct itask *src)
{
	for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
		uint32_t id = task_alive(t) ? ns_key(k, task_ns(t->pe, kinds[k].kind)) : 0;
		uint32_t from = src ? ns_key(k, task_ns(src->pe, kinds[k].kind)) : 0;
		int fd;
		long r;

		if (id == from)
			continue;
		fd = id == JOINED ? joined_fds[k] - 1 : id ? find_ns(id)->fd : own_fd(&kinds[k]);
		if (fd < 0)
			return -1;
		r = ISYS(t, SYS_setns, fd, kinds[k].flag);
		if (r) {
			pr_err("task %d: cannot enter its %s namespace: %s", t->pid, kinds[k].name,
			       strerror(-r));
			return -1;
		}
	}
	return 0;
}

/* Where we were when we went into a mount namespace: to come back to;
 * which one we are in (0: ours), entered how many times over. */
static char *mnt_cwd;
static uint32_t mnt_in;
static unsigned mnt_depth;

/* A thread moves to another mount namespace only with a root and working
 * directory of its own (the read-ahead thread shares ours). */
static int mnt_setns(int fd, bool entering)
{
	if (!entering && !mnt_cwd)
		return 0; /* never went */
	if (unshare(CLONE_FS))
		return -1;
	if (entering && !mnt_cwd && !(mnt_cwd = getcwd(NULL, 0)))
		return -1;
	if (setns(fd, CLONE_NEWNS))
		return -1;
	/* the same directory by name, in there as back here */
	if (mnt_cwd && chdir(mnt_cwd))
		pr_debug("cannot go to %s: %s", mnt_cwd, strerror(errno));
	if (!entering) {
		free(mnt_cwd);
		mnt_cwd = NULL;
	}
	return 0;
}

int ns_enter(Stasis__NsKind kind, uint32_t id)
{
	const struct ns_kind *k = kind_of(kind);
	struct ns *ns;
	int fd;

	if (!k) {
		pr_err("no namespace kind %d", kind);
		return -1;
	}
	id = ns_key(k - kinds, id);
	/* a file's ghost is made in the file's mount namespace, already entered */
	if (k->flag == CLONE_NEWNS && mnt_depth) {
		if (id != mnt_in) {
			pr_err("mount namespace %u entered from mount namespace %u", id, mnt_in);
			return -1;
		}
		mnt_depth++;
		return 0;
	}
	if (!id) {
		if (k->flag == CLONE_NEWNS) {
			mnt_in = 0;
			mnt_depth = 1; /* ours: nothing to leave */
		}
		return 0;
	}
	ns = id == JOINED ? NULL : find_ns(id);
	if (id != JOINED && (!ns || ns->k != k)) {
		pr_err("no %s namespace %u in the checkpoint", k->name, id);
		return -1;
	}
	fd = ns ? ns->fd : joined_fds[k - kinds] - 1;
	if (own_fd(k) < 0)
		return -1;
	if (k->flag == CLONE_NEWNS ? mnt_setns(fd, true) : setns(fd, k->flag)) {
		pr_perror("cannot enter %s namespace %u", k->name, id);
		return -1;
	}
	if (k->flag == CLONE_NEWNS) {
		mnt_in = id;
		mnt_depth = 1;
	}
	return 0;
}

bool ns_joined(Stasis__NsKind kind, uint32_t id)
{
	const struct ns_kind *k = kind_of(kind);

	return k && ns_key(k - kinds, id) == JOINED;
}

void ns_leave(Stasis__NsKind kind)
{
	const struct ns_kind *k = kind_of(kind);

	if (k && k->flag == CLONE_NEWNS && mnt_depth && --mnt_depth)
		return; /* still in it for an outer caller */
	/* every later step would act in the wrong namespace */
	if (k && own_fds[k - kinds] &&
	    (k->flag == CLONE_NEWNS ? mnt_setns(own_fds[k - kinds] - 1, false)
				    : setns(own_fds[k - kinds] - 1, k->flag))) {
		pr_perror("cannot come back to our own %s namespace", k->name);
		abort();
	}
}
