// SPDX-License-Identifier: GPL-2.0
/*
 * Lazy restore, the restorer's part (docs/lazy.md): the pages of private
 * anonymous mappings are left out, and each task gets a userfaultfd,
 * registered in MISSING mode on those mappings, that the lazy-pages daemon
 * receives and fills them through. The userfaultfd is made inside the task
 * (a remote call: it belongs to the task's mm), moved out with
 * pidfd_getfd, closed in the task and handed to the daemon with the task's
 * lazy ranges.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "inject.h"
#include "memfd.h"
#include "stasis/lazy.h"
#include "stasis/log.h"
#include "stasis/proc.h"
#include "stasis/uffd.h"
#include "stasis/util.h"

#define LAZY_FEATURES                                                                          \
	(UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE |      \
	 UFFD_FEATURE_EVENT_UNMAP)

static int daemon_sk = -1;
/* Copies of the userfaultfds, held until the daemon says every page is
 * in: if it dies first, faults wait (and the tree is killed) instead of
 * being filled with zeros by the kernel. */
static int *uffds;
static size_t nr_uffds;

void lazy_add_range(struct itask *t, uint64_t vaddr, uint64_t nr_pages)
{
	if ((t->nr_lazy & (t->nr_lazy - 1)) == 0)
		t->lazy = xrealloc(t->lazy, (t->nr_lazy ? 2 * t->nr_lazy : 1) * sizeof(*t->lazy));
	t->lazy[t->nr_lazy++] = (struct lazy_range){ vaddr, nr_pages };
}

static struct itree *lazy_tree;
static volatile sig_atomic_t daemon_lost, released;

/*
 * SIGIO on the daemon's socket. Until every page is in, the daemon sends
 * nothing but LAZY_DONE_BYTE: the socket readable with anything else (its
 * end, an error) means that the daemon died. The tree, whose faults now
 * wait on userfaultfds that nobody reads (ours keep them open), is killed
 * at once: the remote call the restore waits for returns with the task's
 * death instead of never.
 */
static void daemon_sigio(int sig)
{
	int e = errno;
	char c;
	ssize_t n = recv(daemon_sk, &c, 1, MSG_PEEK | MSG_DONTWAIT);

	(void)sig;
	/* released: lazy_wait watches the daemon (and kills forks too) */
	if (released || (n == 1 && c == LAZY_DONE_BYTE)) {
		errno = e;
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		errno = e;
		return;
	}
	daemon_lost = 1;
	for (size_t i = 0; lazy_tree && i < lazy_tree->nr; i++)
		if (lazy_tree->tasks[i].created)
			kill(lazy_tree->tasks[i].hpid, SIGKILL);
	errno = e;
}

bool lazy_overlaps(const struct itask *t, uint64_t vaddr, uint64_t len)
{
	for (size_t i = 0; i < t->nr_lazy; i++)
		if (t->lazy[i].start < vaddr + len &&
		    t->lazy[i].start + t->lazy[i].nr_pages * PAGE_SIZE > vaddr)
			return true;
	return false;
}

/* The pages t's children share with it (their in_parent runs), loaded
 * once per task. */
static void load_shared(struct itask *t)
{
	t->shared_loaded = true;
	for (size_t i = 0; lazy_tree && i < lazy_tree->nr; i++) {
		struct itask *c = &lazy_tree->tasks[i];
		char name[32];
		unsigned n;

		if (c->parent != t || !task_alive(c))
			continue;
		snprintf(name, sizeof(name), "pagemap-%d", c->pid);
		n = records_count(name);
		for (unsigned j = 1; j < n; j++) {
			Stasis__PagemapEntry *pe =
			    records_get(name, j, &stasis__pagemap_entry__descriptor);

			if (!pe)
				continue;
			if (pe->in_parent) {
				if ((t->nr_shared & (t->nr_shared - 1)) == 0)
					t->shared = xrealloc(t->shared, (t->nr_shared ? 2 * t->nr_shared : 1) *
										   sizeof(*t->shared));
				t->shared[t->nr_shared++] =
				    (struct lazy_range){ pe->vaddr, pe->nr_pages };
			}
			protobuf_c_message_free_unpacked(&pe->base, NULL);
		}
	}
}

bool lazy_shared_with_child(struct itask *t, uint64_t vaddr, uint64_t len)
{
	if (!t->shared_loaded)
		load_shared(t);
	for (size_t i = 0; i < t->nr_shared; i++)
		if (t->shared[i].start < vaddr + len &&
		    t->shared[i].start + t->shared[i].nr_pages * PAGE_SIZE > vaddr)
			return true;
	return false;
}

int lazy_connect_daemon(struct itree *tr)
{
	struct sigaction sa = { .sa_handler = daemon_sigio, .sa_flags = SA_RESTART };

	daemon_sk = lazy_connect(opts.lazy_dir ? opts.lazy_dir : ".");
	if (daemon_sk < 0)
		return -1;
	lazy_tree = tr;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGIO, &sa, NULL) || fcntl(daemon_sk, F_SETOWN, getpid()) ||
	    fcntl(daemon_sk, F_SETFL, fcntl(daemon_sk, F_GETFL) | O_ASYNC)) {
		pr_perror("cannot watch the lazy-pages daemon's socket");
		return -1;
	}
	return 0;
}

bool lazy_daemon_lost(void)
{
	return daemon_lost;
}

/* A userfaultfd of t's mm, in stasis-inject. */
static int task_uffd(struct itask *t)
{
	int fd = mm_task_uffd(t, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		pr_err("task %d: no userfaultfd: %s; --lazy-pages needs it", t->pid, strerror(-fd));
	return fd < 0 ? -1 : fd;
}

/* Registers the lazy mappings of t (those its lazy ranges fall in). */
static int register_vmas(struct itask *t, int uffd)
{
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		Stasis__Vma *v = t->mm->vmas[i];
		struct uffdio_register reg = { { v->start, v->end - v->start },
					       UFFDIO_REGISTER_MODE_MISSING, 0 };
		bool used = false;

		for (size_t j = 0; !used && j < t->nr_lazy; j++)
			used = t->lazy[j].start < v->end &&
			       t->lazy[j].start + t->lazy[j].nr_pages * PAGE_SIZE > v->start;
		if (!used)
			continue;
		if (ioctl(uffd, UFFDIO_REGISTER, &reg)) {
			pr_perror("task %d: cannot register %#llx-%#llx for lazy restore", t->pid,
				  (unsigned long long)v->start, (unsigned long long)v->end);
			return -1;
		}
		if ((reg.ioctls & ((1ull << _UFFDIO_COPY) | (1ull << _UFFDIO_ZEROPAGE))) !=
		    ((1ull << _UFFDIO_COPY) | (1ull << _UFFDIO_ZEROPAGE))) {
			pr_err("task %d: the kernel cannot fill %#llx lazily (no UFFDIO_COPY)",
			       t->pid, (unsigned long long)v->start);
			return -1;
		}
	}
	return 0;
}

int lazy_register(struct itask *t)
{
	struct uffdio_api api = { .api = UFFD_API, .features = LAZY_FEATURES };
	int uffd, pidfd, ret = -1;

	if (!t->nr_lazy)
		return 0; /* nothing to fill: no userfaultfd */
	uffd = task_uffd(t);
	if (uffd < 0)
		return -1;
	if (ioctl(uffd, UFFDIO_API, &api) || (api.features & LAZY_FEATURES) != LAZY_FEATURES) {
		pr_err("task %d: this kernel's userfaultfd lacks the events lazy restore needs",
		       t->pid);
		goto out;
	}
	if (register_vmas(t, uffd))
		goto out;
	pidfd = syscall(SYS_pidfd_open, t->hpid, 0);
	if (pidfd < 0) {
		pr_perror("task %d: no pidfd for the lazy-pages daemon", t->pid);
		goto out;
	}
	ret = lazy_send_task(daemon_sk, t->pid, uffd, pidfd, t->lazy, t->nr_lazy);
	close(pidfd);
	if (!ret) {
		uffds = xrealloc(uffds, (nr_uffds + 1) * sizeof(*uffds));
		uffds[nr_uffds++] = uffd;
		return 0;
	}
out:
	close(uffd);
	return ret;
}

int lazy_tree_done(void)
{
	released = 1;
	return lazy_send_task(daemon_sk, 0, -1, -1, NULL, 0);
}

/* The released tree and what it forked since: found first, then killed. */
static void kill_tree(struct itree *tr)
{
	pid_t *set = xmalloc((tr->nr + 1) * sizeof(*set));
	size_t nr = 0;

	for (size_t i = 0; i < tr->nr; i++)
		if (tr->tasks[i].created)
			set[nr++] = tr->tasks[i].pid;
	proc_kill_with_descendants(set, nr);
}

static void drop_uffds(void)
{
	for (size_t i = 0; i < nr_uffds; i++)
		close(uffds[i]);
	nr_uffds = 0;
}

void lazy_detach(void)
{
	signal(SIGIO, SIG_IGN);
	drop_uffds();
	if (daemon_sk >= 0)
		close(daemon_sk);
	daemon_sk = -1;
}

/*
 * -d: we return once the tree runs, but the tree still needs its daemon.
 * The watcher holds what lazy_wait holds (the daemon's socket, the copies
 * of the userfaultfds, so that faults wait instead of reading zeros if the
 * daemon dies) and kills the tree if the daemon goes before every page is
 * in. It is detached from our session and standard streams, so that
 * nobody waits for it; its errors go to the log file.
 */
int lazy_watch_detached(struct itree *tr)
{
	pid_t w = fork();

	if (w < 0) {
		pr_perror("cannot start the watcher of the lazy-pages daemon");
		return -1;
	}
	if (w > 0)
		return 0;
	signal(SIGIO, SIG_IGN);
	setsid();
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		close(null);
	}
	for (;;) {
		char c;
		ssize_t n = read(daemon_sk, &c, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n == 1 && c == LAZY_DONE_BYTE) {
			pr_info("every page is in: the watcher of the detached tree ends");
			_exit(0);
		}
		break;
	}
	pr_err("the lazy-pages daemon went away before every page was in; the restored tree "
	       "(detached) was killed");
	kill_tree(tr);
	_exit(1);
}

/*
 * Waits for the restored root as waitpid does, and meanwhile for the
 * daemon's word that every page is in. The daemon gone before that: the
 * tree cannot run without its memory and is killed (-1, logged).
 */
int lazy_wait(struct itree *tr, pid_t root, int *status)
{
	int pidfd = syscall(SYS_pidfd_open, root, 0);

	while (daemon_sk >= 0 && pidfd >= 0) {
		struct pollfd p[2] = { { daemon_sk, POLLIN, 0 }, { pidfd, POLLIN, 0 } };
		char c;
		ssize_t n;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		n = read(daemon_sk, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 1 && c == LAZY_DONE_BYTE) {
			lazy_detach();
			break;
		}
		pr_err("the lazy-pages daemon went away before every page was in; the restored "
		       "tree was killed");
		kill_tree(tr);
		lazy_detach();
		if (pidfd >= 0)
			close(pidfd);
		waitpid(root, status, 0);
		return -1;
	}
	if (pidfd >= 0)
		close(pidfd);
	while (waitpid(root, status, 0) < 0)
		if (errno != EINTR) {
			pr_perror("cannot wait for task %d", root);
			return -1;
		}
	lazy_detach();
	return 0;
}
