// SPDX-License-Identifier: GPL-2.0
/*
 * The tree: every task is cloned with its own PID (clone3 set_tid) by its
 * own parent while that parent is still a stopped copy of stasis-inject,
 * so parents, sessions and inherited descriptors come out right. Session
 * leaders call setsid before they clone their children; process groups are
 * joined once all exist, a group whose leader is dead through a short-lived
 * helper with the leader's PID; zombies exit with their old status.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/sched.h>

#include "inject.h"
#include "stasis/log.h"
#include "stasis/util.h"

#define NEED(var, image, idx, type)                                                            \
	do {                                                                                   \
		var = records_get(image, idx, &type);                                          \
		if (!var) {                                                                    \
			pr_err("the checkpoint lacks %s (record %u)", image, (unsigned)(idx));  \
			return -1;                                                             \
		}                                                                              \
	} while (0)

static struct itask *find_task(struct itree *tr, pid_t pid)
{
	for (size_t i = 0; i < tr->nr; i++)
		if (tr->tasks[i].pid == pid)
			return &tr->tasks[i];
	return NULL;
}

static int load_task(struct itask *t)
{
	char name[32];

	if (!t->pe->n_threads || t->pe->threads[0] != (uint32_t)t->pid ||
	    t->pe->n_threads > 65536) {
		pr_err("task %d: malformed thread list in the checkpoint", t->pid);
		return -1;
	}
	snprintf(name, sizeof(name), "core-%d", t->pid);
	NEED(t->tc, name, 0, stasis__task_core__descriptor);
	t->nr_threads = t->pe->n_threads;
	t->threads = xzalloc(t->nr_threads * sizeof(*t->threads));
	for (size_t i = 0; i < t->nr_threads; i++) {
		NEED(t->threads[i].th, name, i + 1, stasis__thread_core__descriptor);
		if (t->threads[i].th->tid != t->pe->threads[i]) {
			pr_err("task %d: thread %zu of the checkpoint is out of order", t->pid, i);
			return -1;
		}
	}
	t->th = t->threads[0].th;
	t->threads[0].rt = &t->rt;
	snprintf(name, sizeof(name), "mm-%d", t->pid);
	NEED(t->mm, name, 0, stasis__mm_entry__descriptor);
	snprintf(name, sizeof(name), "fs-%d", t->pid);
	NEED(t->fs, name, 0, stasis__fs_entry__descriptor);
	return 0;
}

static const struct itree *loaded;

bool pstree_in_pidns(void)
{
	return loaded && pstree_namespaced(loaded);
}

pid_t pstree_host_pid(pid_t pid)
{
	if (!pstree_in_pidns())
		return pid;
	for (size_t i = 0; i < loaded->nr; i++) {
		const struct itask *t = &loaded->tasks[i];

		if (t->pid == pid)
			return t->created ? t->hpid : 0;
		for (size_t j = 1; task_alive(t) && j < t->nr_threads; j++)
			if (t->threads[j].th->tid == (uint32_t)pid)
				return t->threads[j].rt ? t->threads[j].rt->tid : 0;
	}
	return 0;
}

int pstree_load(struct itree *tr)
{
	Stasis__Inventory *inv;
	unsigned n = records_count("pstree");
	uint32_t root_pid;

	NEED(inv, "inventory", 0, stasis__inventory__descriptor);
	if (inv->version != STASIS_STREAM_VERSION) {
		pr_err("checkpoint version %u is not supported", inv->version);
		goto fail_inv;
	}
	if (inv->pre_dump) {
		pr_err("the checkpoint is a pre-dump (memory only): restore the dump taken after it");
		goto fail_inv;
	}
	if (inv->lazy_pages && !opts.lazy_pages) {
		pr_err("the checkpoint was dumped with --lazy-pages; restore it with --lazy-pages");
		return -1;
	}
	if (inv->shell_job && !opts.shell_job) {
		pr_err("the tree was dumped with --shell-job; restore it with --shell-job");
		goto fail_inv;
	}
	if (!n || n > 32768) {
		pr_err("the checkpoint holds %u tasks", n);
		goto fail_inv;
	}
	root_pid = inv->root_pid;
	protobuf_c_message_free_unpacked(&inv->base, NULL);
	tr->tasks = xzalloc(n * sizeof(*tr->tasks));
	for (unsigned i = 0; i < n; i++) {
		struct itask *t = &tr->tasks[i];

		NEED(t->pe, "pstree", i, stasis__pstree_entry__descriptor);
		t->pid = t->hpid = t->pe->pid;
		/* in a namespace of its own the root is its init, PID 1 */
		if (t->pid < 1 || (t->pid == 1) != (i == 0 && pstree_namespaced(tr)) ||
		    find_task(tr, t->pid)) {
			pr_err("the checkpoint's process tree is inconsistent at task %d", t->pid);
			protobuf_c_message_free_unpacked(&t->pe->base, NULL);
			t->pe = NULL;
			return -1;
		}
		tr->nr++;
		if (i == 0 ? (t->pid != (pid_t)root_pid || t->pe->zombie)
			   : !(t->parent = find_task(tr, t->pe->ppid)) || !task_alive(t->parent)) {
			pr_err("the checkpoint's process tree is inconsistent at task %d", t->pid);
			return -1;
		}
		if (task_alive(t) && load_task(t))
			return -1;
	}
	loaded = tr;
	return 0;
fail_inv:
	protobuf_c_message_free_unpacked(&inv->base, NULL);
	return -1;
}

static void free_msg(void *m)
{
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
}

void pstree_free(struct itree *tr)
{
	for (size_t i = 0; i < tr->nr; i++) {
		struct itask *t = &tr->tasks[i];

		for (size_t j = 0; t->threads && j < t->nr_threads; j++)
			free_msg(t->threads[j].th);
		free(t->threads);
		free_msg(t->pe);
		free_msg(t->tc);
		free_msg(t->mm);
		free_msg(t->fs);
		for (size_t j = 0; t->fdinfo && j < t->nr_fdinfo; j++)
			free_msg(t->fdinfo[j]);
		free(t->fdinfo);
	}
	free(tr->tasks);
	tr->tasks = NULL;
	tr->nr = 0;
}

/* ---- creation ---- */

static void child_stub(void)
{
	ptrace(PTRACE_TRACEME, 0, NULL, NULL);
	raise(SIGSTOP);
	_exit(127);
}

/* pid: the new task as we see it */
static int attach_new(struct itask *t, pid_t pid)
{
	int status;

	t->rt.tid = t->hpid = pid;
	t->created = true;
	if (waitpid(pid, &status, __WALL) != pid || !WIFSTOPPED(status)) {
		pr_err("task %d did not stop after its creation", pid);
		return -1;
	}
	return rtask_init(&t->rt, pid);
}

/* ours, inherited by the stubs of a namespaced tree (until their files
 * are restored) */
static int inject_pidfd = -1;

long pstree_remote_inject_pidfd(struct itask *t)
{
	if (inject_pidfd < 0)
		return ISYS(t, SYS_pidfd_open, getpid(), 0);
	return ISYS(t, SYS_fcntl, inject_pidfd, F_DUPFD_CLOEXEC, 0);
}

bool pstree_namespaced(const struct itree *tr)
{
	return tr->tasks && tr->tasks[0].pe && tr->tasks[0].pe->has_pid_ns &&
	       tr->tasks[0].pe->pid_ns;
}

/* The root: a child of stasis-inject; the init (PID 1) of a new PID
 * namespace when it was one, where its descendants get their PIDs. */
static int create_root(struct itree *tr, struct itask *t)
{
	pid_t tid = t->pid;
	struct clone_args args = {
		.exit_signal = SIGCHLD,
		.set_tid = (uint64_t)(unsigned long)&tid,
		.set_tid_size = 1,
	};
	long pid;

	if (pstree_namespaced(tr)) {
		args.flags = CLONE_NEWPID;
		args.set_tid = 0;
		args.set_tid_size = 0;
		/* the tasks cannot see us to pidfd_open us: they inherit one */
		inject_pidfd = syscall(SYS_pidfd_open, getpid(), 0);
		if (inject_pidfd < 0) {
			pr_perror("cannot open a pidfd of our own");
			return -1;
		}
	}
	pid = syscall(SYS_clone3, &args, sizeof(args));

	if (pid == 0)
		child_stub();
	if (pid < 0) {
		if (errno == EEXIST)
			pr_err("cannot restore task %d: its PID is in use", t->pid);
		else
			pr_perror("cannot create task %d", t->pid);
		return -1;
	}
	if (attach_new(t, pid))
		return -1;
	/* if stasis-inject dies now, the half-made tree must die too */
	if (ptrace(PTRACE_SETOPTIONS, pid, NULL,
		   (void *)(PTRACE_O_EXITKILL | PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK))) {
		pr_perror("cannot set ptrace options on task %d", t->pid);
		return -1;
	}
	return 0;
}

/* A remote clone3 in parent: a copy of its stub, stopped, with pid. */
static int clone_from(struct itask *parent, struct itask *t, pid_t pid, uint64_t flags)
{
	struct clone_args args = { .flags = flags, .set_tid_size = 1 };
	uint64_t tid = pid;
	unsigned long at;
	long r;

	args.exit_signal = (flags & CLONE_PARENT) ? 0 : SIGCHLD;
	args.set_tid = parent->scratch + 512;
	if (!scratch_put(parent, 512, &tid, sizeof(tid)) ||
	    !(at = scratch_put(parent, 0, &args, sizeof(args))))
		return -1;
	parent->rt.event_child = 0;
	r = ISYS(parent, SYS_clone3, at, sizeof(args));
	if (r != pid || parent->rt.event_child <= 0) {
		pr_err("task %d: cannot create task %d: %s", parent->pid, pid,
		       r == -EEXIST ? "its PID is in use" : r < 0 ? strerror(-r) : "wrong PID");
		return -1;
	}
	/* the clone returned pid as the parent sees it; ours is the event's */
	if (attach_new(t, parent->rt.event_child))
		return -1;
	t->rt.syscall_ip = parent->rt.syscall_ip;
	t->gadget = parent->gadget;
	t->scratch = parent->scratch;
	return 0;
}

/*
 * Ends a stub task from inside, for helpers and zombies: it runs exit_group
 * (or kills itself with the signal it died of) and we follow it to the end,
 * delivering that signal, then reap the trace. A zombie stays for its
 * parent.
 */
static int remote_exit(struct itask *t, int status)
{
	struct user_regs_struct r = t->rt.regs;
	int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0, st;
	uint64_t mask = sig ? ~0ull & ~(1ull << (sig - 1)) : ~0ull;

	/* SIGKILL has no action to reset */
	if (sig && sig != SIGKILL) {
		uint64_t dfl[4] = { 0 };
		unsigned long at = scratch_put(t, 0, dfl, sizeof(dfl));

		if (!at || ISYS(t, SYS_rt_sigaction, sig, at, 0, 8)) {
			pr_err("task %d: cannot reset the action of signal %d", t->pid, sig);
			return -1;
		}
	}
	/* a stub killed by a core-dumping signal writes no core file (its
	 * status then has no core flag, which a stub cannot earn honestly) */
	if (sig && ISYS(t, SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0)) {
		pr_err("task %d: cannot make it non-dumpable", t->pid);
		return -1;
	}
	if (sig && WCOREDUMP(status))
		pr_warn("zombie %d: its status loses the core-dump flag", t->pid);
	if (ptrace(PTRACE_SETSIGMASK, t->hpid, (void *)8, &mask))
		return -1;
	r.rax = sig ? SYS_kill : SYS_exit_group;
	r.rdi = sig ? (unsigned long)t->pid : (unsigned long)WEXITSTATUS(status);
	r.rsi = sig;
	r.rip = t->rt.syscall_ip;
	r.orig_rax = -1;
	if (ptrace(PTRACE_SETREGS, t->hpid, NULL, &r) || ptrace(PTRACE_CONT, t->hpid, NULL, NULL)) {
		pr_perror("cannot end task %d", t->pid);
		return -1;
	}
	rtask_fini(&t->rt);
	while (waitpid(t->hpid, &st, __WALL) == t->hpid) {
		if (WIFEXITED(st) || WIFSIGNALED(st))
			return 0;
		ptrace(PTRACE_CONT, t->hpid, NULL, (void *)(long)(WSTOPSIG(st) == sig ? sig : 0));
	}
	pr_perror("task %d did not exit", t->pid);
	return -1;
}

/* 1 while pid has not ended (*left set), 0 once reaped or not ours */
static int reap_now(pid_t pid, bool *left)
{
	int status;
	pid_t r = waitpid(pid, &status, __WALL | WNOHANG);

	if (r < 0 || (r == pid && (WIFEXITED(status) || WIFSIGNALED(status))))
		return 0;
	*left = true;
	return 1;
}

/* A created task of the given session, to clone from: a zombie too, which
 * is still a stub until pstree_finish (a session whose leader is a zombie). */
static struct itask *session_member(struct itree *tr, uint32_t sid, struct itask *parent)
{
	for (size_t i = 0; i < tr->nr; i++) {
		struct itask *x = &tr->tasks[i];

		if (x->created && x->pe->sid == sid &&
		    (!parent || x->parent == parent))
			return x;
	}
	return NULL;
}

/*
 * Sessions whose leader is dead: a helper with the leader's PID, forked by
 * the members' parent, starts the session; the members are forked from it
 * with CLONE_PARENT (their parent stays theirs), and it exits at the end.
 */
struct session_helper {
	struct itask task;
	struct itask *parent;
};

static struct session_helper *helpers[64];
static int nr_helpers;

static struct itask *find_helper(pid_t pid)
{
	for (int i = 0; i < nr_helpers; i++)
		if (helpers[i]->task.pid == pid)
			return &helpers[i]->task;
	return NULL;
}

static struct itask *session_helper(struct itree *tr, struct itask *t)
{
	struct session_helper *h;
	pid_t sid = t->pe->sid;
	long r;

	for (int i = 0; i < nr_helpers; i++)
		if (helpers[i]->task.pid == sid)
			return helpers[i]->parent == t->parent ? &helpers[i]->task : NULL;
	if (find_task(tr, sid) || nr_helpers == (int)ARRAY_SIZE(helpers))
		return NULL;
	h = xzalloc(sizeof(*h));
	h->task.pid = sid;
	h->task.pe = t->parent->pe;
	h->parent = t->parent;
	if (clone_from(t->parent, &h->task, sid, 0)) {
		free(h);
		return NULL;
	}
	helpers[nr_helpers++] = h;
	r = ISYS(&h->task, SYS_setsid);
	if (r < 0) {
		pr_err("cannot start session %d again: %s", sid, strerror(-r));
		return NULL;
	}
	return &h->task;
}

static int end_session_helpers(void)
{
	for (int i = 0; i < nr_helpers; i++) {
		struct session_helper *h = helpers[i];

		if (remote_exit(&h->task, 0) ||
		    ISYS(h->parent, SYS_wait4, h->task.pid, 0, __WALL, 0) != h->task.pid) {
			pr_err("task %d: cannot reap the helper of session %d", h->parent->pid,
			       h->task.pid);
			return -1;
		}
		h->task.created = false;
	}
	return 0;
}

static void kill_session_helpers(void)
{
	for (int i = 0; i < nr_helpers; i++)
		if (helpers[i]->task.created)
			kill(helpers[i]->task.hpid, SIGKILL);
}

static int join_group(struct itree *tr, struct itask *t)
{
	struct itask *root = &tr->tasks[0], helper = { 0 }, *x;
	pid_t pgid = t->pe->pgid;
	long r;

	/* a session helper leads the group of the same number */
	if (pgid == t->pid || find_task(tr, pgid) || find_helper(pgid))
		goto join;
	/* a group from outside the tree, kept with --shell-job: ours */
	if (opts.shell_job && pgid == (pid_t)root->pe->pgid)
		return 0;
	/* A helper with the dead leader's PID founds the group in the
	 * member's session, and is reaped by its parent right after. */
	x = session_member(tr, t->pe->sid, NULL);
	if (!x) {
		pr_err("task %d: no task to found its process group %d from", t->pid, pgid);
		return -1;
	}
	helper.pid = pgid;
	helper.pe = x->pe;
	if (clone_from(x, &helper, pgid, 0))
		return -1;
	r = ISYS(&helper, SYS_setpgid, 0, 0);
	if (!r)
		r = ISYS(t, SYS_setpgid, 0, pgid);
	if (remote_exit(&helper, 0) || ISYS(x, SYS_wait4, pgid, 0, __WALL, 0) != pgid) {
		pr_err("task %d: cannot reap the helper of group %d", x->pid, pgid);
		return -1;
	}
	if (r) {
		pr_err("task %d: cannot join process group %d: %s", t->pid, pgid, strerror(-r));
		return -1;
	}
	return 0;
join:
	r = ISYS(t, SYS_setpgid, 0, pgid);
	if (r) {
		pr_err("task %d: cannot join process group %d: %s", t->pid, pgid, strerror(-r));
		return -1;
	}
	return 0;
}

/*
 * Clones t so that it has its parent and session: from the parent when it
 * starts its own session or shares the parent's; else from a sibling in
 * its session with CLONE_PARENT (a task whose session was inherited from
 * an ancestor that is gone, like an orphan adopted by a subreaper).
 */
static struct itask *create_task(struct itree *tr, struct itask *t)
{
	struct itask *x = t->parent;

	/* a zombie too: it may lead a session of its own */
	if (t->pe->sid != (uint32_t)t->pid && t->pe->sid != t->parent->pe->sid) {
		x = session_member(tr, t->pe->sid, t->parent);
		if (!x)
			x = session_helper(tr, t);
		if (!x) {
			pr_err("task %d: its session %u cannot be recreated under parent %d: not "
			       "supported yet",
			       t->pid, t->pe->sid, t->parent->pid);
			return NULL;
		}
	}
	/* a sharer of its parent's descriptor table shares the stub's, which
	 * the parent's restore then fills */
	if (t->pe->files_shared && x != t->parent) {
		pr_err("task %d: it shares the descriptor table of parent %d but cannot be "
		       "forked from it",
		       t->pid, t->parent->pid);
		return NULL;
	}
	if (clone_from(x, t, t->pid,
		       (x == t->parent ? 0 : CLONE_PARENT) | (t->pe->files_shared ? CLONE_FILES : 0)))
		return NULL;
	return x;
}
struct itask *pstree_create_task(struct itree *tr, struct itask *t)
{
	struct itask *src = NULL;
	uint64_t all = ~0ull;
	long r;

	if (t == &tr->tasks[0]) {
		if (create_root(tr, t) || parasite_place(tr, t) || ns_join(t, NULL))
			return NULL;
		/* every catchable signal stays blocked until the end; children
		 * inherit the mask */
		if (ptrace(PTRACE_SETSIGMASK, t->hpid, (void *)8, &all)) {
			pr_perror("cannot block signals of task %d", t->pid);
			return NULL;
		}
		src = t;
	} else if (!(src = create_task(tr, t)) || ns_join(t, src)) {
		return NULL;
	}
	if (t->pe->sid == (uint32_t)t->pid) {
		r = ISYS(t, SYS_setsid);
		if (r < 0) {
			pr_err("task %d: cannot start its session: %s", t->pid, strerror(-r));
			return NULL;
		}
	}
	if (task_alive(t) && tty_set_ctty(t))
		return NULL;
	return src;
}

/* SIGCHLDs the stubs got from zombies and helpers are not the tasks' own. */
static int flush_sigchld(struct itask *t)
{
	uint64_t set = 1ull << (SIGCHLD - 1);
	struct timespec zero = { 0, 0 };
	unsigned long aset = scratch_put(t, 0, &set, sizeof(set));
	unsigned long ats = scratch_put(t, 64, &zero, sizeof(zero));

	if (!aset || !ats)
		return -1;
	while (ISYS(t, SYS_rt_sigtimedwait, aset, 0, ats, 8) == SIGCHLD)
		;
	return 0;
}

int pstree_finish(struct itree *tr)
{
	/* leaders first, so that members find their groups */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < tr->nr; i++) {
			struct itask *t = &tr->tasks[i];
			bool leader = t->pe->pgid == (uint32_t)t->pid;

			if (leader != (pass == 0) || t->pe->sid == (uint32_t)t->pid)
				continue;
			if (join_group(tr, t))
				return -1;
		}
	if (end_session_helpers())
		return -1;
	for (size_t i = 0; i < tr->nr; i++) {
		struct itask *t = &tr->tasks[i];

		if (task_alive(t))
			continue;
		if (t->pe->comm) {
			char comm[16] = "";
			unsigned long at;

			strncpy(comm, t->pe->comm, sizeof(comm) - 1);
			at = scratch_put(t, 0, comm, sizeof(comm));
			if (!at || ISYS(t, SYS_prctl, PR_SET_NAME, at))
				pr_warn("zombie %d: cannot restore its name", t->pid);
		}
		if (remote_exit(t, t->pe->exit_code))
			return -1;
		t->created = false;
	}
	for (size_t i = 0; i < tr->nr; i++)
		if (tr->tasks[i].created && flush_sigchld(&tr->tasks[i]))
			return -1;
	return 0;
}

int pstree_release(struct itree *tr)
{
	int sig = opts.leave_stopped ? SIGSTOP : 0;

	/* children first (tasks[] has parents before children): a task that
	 * runs again finds its whole subtree running, as it left it, not
	 * still held here (a parent looking at its children saw them in a
	 * tracing stop) */
	for (size_t k = tr->nr; k-- > 0;) {
		struct itask *t = &tr->tasks[k];

		int stop = !t->pe->stopped ? sig : t->pe->has_stop_signo ? (int)t->pe->stop_signo : SIGSTOP;

		if (stop < 0 || stop >= 64) {
			pr_err("task %d: stop signal %d in the checkpoint is not a signal", t->pid, stop);
			return -1;
		}
		for (size_t i = t->nr_threads; task_alive(t) && i-- > 0;) {
			struct rtask *rt = t->threads[i].rt;

			if (!rt)
				continue;
			rtask_fini(rt);
			/* a task stopped at the dump stops again as it is released */
			if (ptrace(PTRACE_DETACH, rt->tid, NULL,
				   (void *)(long)(i ? 0 : stop))) {
				pr_perror("cannot release task %d", rt->tid);
				return -1;
			}
		}
	}
	return 0;
}

void pstree_kill(struct itree *tr)
{
	kill_session_helpers();
	for (size_t i = tr->nr; i-- > 0;)
		if (tr->tasks[i].created)
			kill(tr->tasks[i].hpid, SIGKILL);
	/* reaped without blocking on any one: a PID namespace's init (any of
	 * its threads) exits only once the rest of the namespace is reaped */
	for (bool left = true; left;) {
		left = false;
		for (size_t i = tr->nr; i-- > 0;) {
			struct itask *t = &tr->tasks[i];

			for (size_t j = t->nr_threads; t->created && j-- > 1;)
				if (t->threads[j].rt && !reap_now(t->threads[j].rt->tid, &left))
					t->threads[j].rt = NULL;
			if (t->created && !reap_now(t->hpid, &left))
				t->created = false;
		}
		if (left)
			usleep(1000);
	}
}
