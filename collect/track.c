// SPDX-License-Identifier: GPL-2.0
/*
 * Memory tracking for iterative checkpoints (stasis pre-dump, dump
 * --track-mem --prev-images-dir; docs/predump.md), without soft-dirty bits.
 *
 * Each task gets a userfaultfd in asynchronous write-protect mode: its
 * private mappings are registered and write-protected while it is frozen,
 * and a write later only clears the protection of that page, with no fault
 * delivered anywhere. PAGEMAP_SCAN, run on /proc/PID/pagemap from here,
 * then lists the pages written since and protects them again.
 *
 * The userfaultfd is made inside the task (a remote call) and moved out of
 * its descriptor table at once, so the program never sees it. Between two
 * links of a chain a small holder process keeps the descriptors open (the
 * registration lives as long as the file), answers the mremap events (a
 * moved page keeps its protection, so its new place is marked dirty), and
 * hands everything to the next stasis-collect over a unix socket named
 * after the root PID. Anything the tracker cannot vouch for is dumped
 * whole: a task or mapping it did not arm, a moved range, a lost holder.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "collect.h"
#include "track.h"
#include "stasis/log.h"
#include "stasis/proc.h"
#include "stasis/uffd.h"
#include "stasis/util.h"

#define TRACK_MAGIC 0x4b525453u /* "STRK" */
#define TRACK_VERSION 1
#define TRACK_MAX_RANGES 65536	/* per task, from the holder */
#define SCAN_VEC 1024

/* Without WP_UNPOPULATED: a page that appears in an anonymous hole comes
 * unprotected, so it counts as written, and no page tables are spent on
 * holes. File-backed holes get markers anyway (see track_is_marker). */
#define UFFD_FEATURES (UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_EVENT_REMAP)

struct range {
	unsigned long start, end;
};

struct range_set {
	struct range *r;
	size_t nr, cap;
};

/* What the tracker knows of one task. */
struct track_task {
	pid_t pid;
	int uffd;  /* -1: not tracked */
	int pidfd; /* the task, to tell it from a later one with its PID */
	bool from_prev;		 /* armed by the previous link, whose pages we may use */
	struct range_set moved;	 /* mremap destinations since the last scan */
	struct range_set tracked; /* registered mappings, found armed at this dump */
	struct range_set written; /* pages written since the last scan */
};

struct track_hdr {
	uint32_t magic, version;
	uint8_t id[TRACK_ID_LEN];
	uint32_t nr_tasks, pad;
};

struct track_task_msg {
	int32_t pid;
	uint32_t nr_moved;
};

static struct track_task *tasks;
static size_t nr_tasks;
static uint8_t prev_id[TRACK_ID_LEN], new_id[TRACK_ID_LEN];
static bool have_prev; /* the holder found belongs to the parent link */
static pid_t holder_pid;

static void range_add(struct range_set *s, unsigned long start, unsigned long end)
{
	if (s->nr && s->r[s->nr - 1].end == start) {
		s->r[s->nr - 1].end = end;
		return;
	}
	if (s->nr == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 16;
		s->r = xrealloc(s->r, s->cap * sizeof(*s->r));
	}
	s->r[s->nr++] = (struct range){ start, end };
}

static int range_cmp(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Whether addr is in s, sorted and without overlaps (binary search). */
static bool range_has(const struct range_set *s, unsigned long addr)
{
	size_t lo = 0, hi = s->nr;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (addr < s->r[mid].start)
			hi = mid;
		else if (addr >= s->r[mid].end)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

static void range_free(struct range_set *s)
{
	free(s->r);
	*s = (struct range_set){};
}

static struct track_task *task_of(pid_t pid)
{
	for (size_t i = 0; i < nr_tasks; i++)
		if (tasks[i].pid == pid && tasks[i].uffd >= 0)
			return &tasks[i];
	return NULL;
}

static struct track_task *task_new(pid_t pid)
{
	tasks = xrealloc(tasks, (nr_tasks + 1) * sizeof(*tasks));
	tasks[nr_tasks] = (struct track_task){ .pid = pid, .uffd = -1, .pidfd = -1 };
	return &tasks[nr_tasks++];
}

static void task_drop(struct track_task *t)
{
	if (t->uffd >= 0)
		close(t->uffd);
	if (t->pidfd >= 0)
		close(t->pidfd);
	t->uffd = t->pidfd = -1;
	range_free(&t->moved);
	range_free(&t->tracked);
	range_free(&t->written);
}

static void sock_name(pid_t root, struct sockaddr_un *sa, socklen_t *len)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	/* abstract: nothing to clean up, gone with the holder */
	*len = offsetof(struct sockaddr_un, sun_path) + 1 +
	       snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "stasis-track-%d", root);
}

const uint8_t *track_new_id(void)
{
	static bool made;

	if (!made) {
		if (getrandom(new_id, sizeof(new_id), 0) != sizeof(new_id)) {
			/* unique enough to tell chains apart; not a secret */
			uint64_t t = now_ns() ^ ((uint64_t)getpid() << 32);

			memcpy(new_id, &t, sizeof(t));
		}
		made = true;
	}
	return new_id;
}

/* ---------------------------------------------------------------- holder */

/* Reads what the kernel queued on t's userfaultfd: mremap moves. */
static void holder_drain(struct track_task *t)
{
	struct uffd_msg msg;

	while (read(t->uffd, &msg, sizeof(msg)) == sizeof(msg)) {
		if (msg.event != UFFD_EVENT_REMAP)
			continue;
		if (t->moved.nr >= TRACK_MAX_RANGES) {
			/* too many to list: the task is dumped whole */
			t->from_prev = false;
			continue;
		}
		range_add(&t->moved, msg.arg.remap.to, msg.arg.remap.to + msg.arg.remap.len);
	}
}

static int send_fds(int sk, const void *data, size_t len, const int *fds, int nfds)
{
	char cbuf[CMSG_SPACE(2 * sizeof(int))] = {};
	struct iovec iov = { (void *)data, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;

	if (nfds) {
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	return sendmsg(sk, &mh, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/* Hands everything to the stasis-collect on sk, then the holder is done. */
static void holder_give(int sk)
{
	struct track_hdr h = { TRACK_MAGIC, TRACK_VERSION, {}, 0, 0 };
	size_t live = 0;

	memcpy(h.id, new_id, sizeof(h.id));
	for (size_t i = 0; i < nr_tasks; i++)
		if (tasks[i].uffd >= 0) {
			holder_drain(&tasks[i]);
			live++;
		}
	h.nr_tasks = live;
	if (send_fds(sk, &h, sizeof(h), NULL, 0))
		return;
	for (size_t i = 0; i < nr_tasks; i++) {
		struct track_task *t = &tasks[i];
		struct track_task_msg m = { t->pid, t->from_prev ? t->moved.nr : UINT32_MAX };
		int fds[2] = { t->uffd, t->pidfd };

		if (t->uffd < 0)
			continue;
		if (send_fds(sk, &m, sizeof(m), fds, 2))
			return;
		if (t->from_prev && t->moved.nr &&
		    write_full(sk, t->moved.r, t->moved.nr * sizeof(*t->moved.r)))
			return;
	}
}

static void holder_loop(int lsk)
{
	struct pollfd *p = xzalloc((2 * nr_tasks + 1) * sizeof(*p));

	for (;;) {
		size_t n = 0, alive = 0;

		p[n++] = (struct pollfd){ lsk, POLLIN, 0 };
		for (size_t i = 0; i < nr_tasks; i++) {
			if (tasks[i].uffd < 0)
				continue;
			p[n++] = (struct pollfd){ tasks[i].uffd, POLLIN, 0 };
			p[n++] = (struct pollfd){ tasks[i].pidfd, POLLIN, 0 };
			alive++;
		}
		if (!alive)
			return; /* the whole tree is gone: nothing left to track */
		if (poll(p, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		n = 1;
		for (size_t i = 0; i < nr_tasks; i++) {
			if (tasks[i].uffd < 0)
				continue;
			if (p[n].revents)
				holder_drain(&tasks[i]);
			if (p[n + 1].revents) /* the task exited */
				task_drop(&tasks[i]);
			n += 2;
		}
		if (p[0].revents & POLLIN) {
			int sk = accept4(lsk, NULL, NULL, SOCK_CLOEXEC);
			struct ucred cr;
			socklen_t len = sizeof(cr);

			if (sk < 0) {
				if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED)
					continue;
				return; /* the socket is broken: nobody can take over */
			}
			/* only a stasis-collect of our user takes the tree over */
			if (getsockopt(sk, SOL_SOCKET, SO_PEERCRED, &cr, &len) ||
			    cr.uid != geteuid()) {
				close(sk);
				continue;
			}
			holder_give(sk);
			close(sk);
			return;
		}
	}
}

/* Keeps only the descriptors the holder needs; everything else (the
 * stream, the ack channel, the log) is the pipeline's, not ours. */
static int above_stdio(int fd)
{
	int moved;

	if (fd < 0 || fd > 2)
		return fd;
	moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close(fd);
	return moved;
}

static void holder_close_others(int *lsk)
{
	int null;

	/* collect's stdout is closed by now: a kept descriptor may sit there */
	*lsk = above_stdio(*lsk);
	for (size_t i = 0; i < nr_tasks; i++) {
		tasks[i].uffd = above_stdio(tasks[i].uffd);
		tasks[i].pidfd = above_stdio(tasks[i].pidfd);
	}
	null = open("/dev/null", O_RDWR);
	for (int fd = 0; fd < 3; fd++)
		dup2(null, fd);
	/* every descriptor, however high: collect raises its limit and may
	 * hold files in flight far above 1024, which must not stay open here */
	int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC), *fds = NULL;
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	struct dirent *de;
	size_t nr = 0;

	if (!d) { /* no /proc: every number up to the limit */
		for (long fd = 3, max = sysconf(_SC_OPEN_MAX); fd < max; fd++) {
			bool keep = fd == *lsk;

			for (size_t i = 0; i < nr_tasks && !keep; i++)
				keep = fd == tasks[i].uffd || fd == tasks[i].pidfd;
			if (!keep)
				close(fd);
		}
		return;
	}
	while ((de = readdir(d))) {
		int n = atoi(de->d_name);
		bool keep = de->d_name[0] == '.' || n < 3 || n == *lsk || n == dfd;

		for (size_t i = 0; i < nr_tasks && !keep; i++)
			keep = n == tasks[i].uffd || n == tasks[i].pidfd;
		if (!keep) {
			fds = xrealloc(fds, (nr + 1) * sizeof(*fds));
			fds[nr++] = n;
		}
	}
	closedir(d);
	for (size_t i = 0; i < nr; i++)
		close(fds[i]);
	free(fds);
}

int track_hold(pid_t root)
{
	struct sockaddr_un sa;
	socklen_t len;
	int lsk, sync[2], status;
	pid_t pid;

	sock_name(root, &sa, &len);
	lsk = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (lsk < 0 || bind(lsk, (struct sockaddr *)&sa, len) || listen(lsk, 4)) {
		pr_perror("cannot start the memory tracker of tree %d", root);
		if (lsk >= 0)
			close(lsk);
		return -1;
	}
	if (pipe2(sync, O_CLOEXEC)) {
		close(lsk);
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		pr_perror("cannot fork the memory tracker");
		close(lsk);
		return -1;
	}
	if (pid == 0) {
		pid_t h;

		setsid();
		h = fork();
		if (h) {
			(void)!write(sync[1], &h, sizeof(h));
			_exit(h < 0);
		}
		signal(SIGHUP, SIG_IGN);
		signal(SIGPIPE, SIG_IGN);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* the tracked tasks are ours no longer to trace: the holder only
		 * keeps their userfaultfds, so it must not die of their signals */
		for (size_t i = 0; i < nr_tasks; i++)
			tasks[i].from_prev = true;
		holder_close_others(&lsk);
		holder_loop(lsk);
		_exit(0);
	}
	close(sync[1]);
	if (read(sync[0], &holder_pid, sizeof(holder_pid)) != sizeof(holder_pid))
		holder_pid = 0;
	close(sync[0]);
	waitpid(pid, &status, 0);
	close(lsk);
	if (holder_pid <= 0) {
		pr_err("the memory tracker of tree %d did not start", root);
		return -1;
	}
	pr_info("memory tracker of tree %d: process %d", root, holder_pid);
	/* ours are copies: the holder's keep the registrations */
	for (size_t i = 0; i < nr_tasks; i++)
		task_drop(&tasks[i]);
	return 0;
}

void track_abort(void)
{
	/* A failed link gives up tracking: with the descriptors closed the
	 * kernel drops the registrations, and the next link is a full one. */
	if (holder_pid > 0) {
		kill(holder_pid, SIGKILL);
		holder_pid = 0;
	}
	for (size_t i = 0; i < nr_tasks; i++)
		task_drop(&tasks[i]);
}

/* ---------------------------------------------------------------- taking over */

static int recv_fds(int sk, void *data, size_t len, int *fds, int nfds)
{
	char cbuf[CMSG_SPACE(2 * sizeof(int))];
	struct iovec iov = { data, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	ssize_t n = recvmsg(sk, &mh, MSG_CMSG_CLOEXEC);

	for (int i = 0; i < nfds; i++)
		fds[i] = -1;
	if (n != (ssize_t)len)
		return -1;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int got = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			for (int i = 0; i < got; i++) {
				int fd;

				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				if (i < nfds)
					fds[i] = fd;
				else
					close(fd);
			}
		}
	return 0;
}

/* Whether the task behind pidfd is still the one tracked (not exited). */
static bool pidfd_alive(int pidfd)
{
	struct pollfd p = { pidfd, POLLIN, 0 };

	return poll(&p, 1, 0) == 0;
}

int track_take(pid_t root, const uint8_t *want_id)
{
	struct sockaddr_un sa;
	struct track_hdr h;
	socklen_t len;
	int sk;

	if (want_id && want_id != TRACK_ID_CURRENT)
		memcpy(prev_id, want_id, TRACK_ID_LEN);
	sock_name(root, &sa, &len);
	sk = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (sk < 0)
		return -1;
	if (connect(sk, (struct sockaddr *)&sa, len)) {
		close(sk);
		if (want_id)
			pr_warn("no memory tracker runs for tree %d (it exited or was never "
				"started): every page is dumped",
				root);
		return 0;
	}
	if (read(sk, &h, sizeof(h)) != sizeof(h) || h.magic != TRACK_MAGIC ||
	    h.version != TRACK_VERSION || h.nr_tasks > 1u << 20) {
		pr_warn("the memory tracker of tree %d answered nonsense: every page is dumped",
			root);
		close(sk);
		return 0;
	}
	if (want_id == TRACK_ID_CURRENT)
		memcpy(prev_id, h.id, TRACK_ID_LEN);
	have_prev = want_id && !memcmp(h.id, prev_id, TRACK_ID_LEN);
	if (want_id && !have_prev)
		pr_warn("the memory tracker of tree %d belongs to another chain than the parent "
			"images: every page is dumped",
			root);
	for (uint32_t i = 0; i < h.nr_tasks; i++) {
		struct track_task_msg m;
		int fds[2];
		struct track_task *t;

		if (recv_fds(sk, &m, sizeof(m), fds, 2) || fds[0] < 0 || fds[1] < 0) {
			pr_warn("the memory tracker of tree %d broke off: every page is dumped",
				root);
			for (int j = 0; j < 2; j++)
				if (fds[j] >= 0)
					close(fds[j]);
			have_prev = false;
			break;
		}
		t = task_new(m.pid);
		t->uffd = fds[0];
		t->pidfd = fds[1];
		t->from_prev = have_prev && m.nr_moved != UINT32_MAX && pidfd_alive(t->pidfd);
		if (m.nr_moved != UINT32_MAX && m.nr_moved) {
			if (m.nr_moved > TRACK_MAX_RANGES) {
				have_prev = false;
				break;
			}
			t->moved.r = xmalloc(m.nr_moved * sizeof(*t->moved.r));
			if (read_full(sk, t->moved.r, m.nr_moved * sizeof(*t->moved.r)) !=
			    (ssize_t)(m.nr_moved * sizeof(*t->moved.r))) {
				have_prev = false;
				break;
			}
			t->moved.nr = t->moved.cap = m.nr_moved;
		}
		if (!pidfd_alive(t->pidfd))
			task_drop(t);
	}
	close(sk);
	if (!have_prev)
		for (size_t i = 0; i < nr_tasks; i++)
			tasks[i].from_prev = false;
	for (size_t i = 0; i < nr_tasks; i++)
		if (tasks[i].moved.nr)
			qsort(tasks[i].moved.r, tasks[i].moved.nr, sizeof(*tasks[i].moved.r),
			      range_cmp);
	pr_info("took over the memory tracker of tree %d: %zu tasks, %s", root, nr_tasks,
		have_prev ? "the parent's" : "not the parent's");
	return 0;
}

bool track_has_parent(void)
{
	return have_prev;
}

const uint8_t *track_parent_id(void)
{
	return prev_id;
}

/* ---------------------------------------------------------------- markers */

#define PME_SWAP (1ull << 62)
#define PME_FRAME_MASK ((1ull << 55) - 1)

static uint64_t marker_frame = ~0ull;

/*
 * A write-protected hole (a PTE marker) reads in pagemap as a swapped page,
 * with the marker's own swap type and offset. Which value that is depends
 * on the kernel's configuration, so make one here and read it.
 */
static void find_marker_frame(void)
{
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC };
	void *p = mmap(NULL, PAGE_SIZE, PROT_READ, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int u = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK), pm;
	uint64_t pme;

	marker_frame = 0; /* tried: no second attempt */
	if (p == MAP_FAILED || u < 0)
		goto out;
	/* shmem is file-backed: its holes always get a marker */
	struct uffdio_register reg = { { (unsigned long)p, PAGE_SIZE }, UFFDIO_REGISTER_MODE_WP, 0 };
	struct uffdio_writeprotect wp = { { (unsigned long)p, PAGE_SIZE },
					  UFFDIO_WRITEPROTECT_MODE_WP };

	if (ioctl(u, UFFDIO_API, &api) || ioctl(u, UFFDIO_REGISTER, &reg) ||
	    ioctl(u, UFFDIO_WRITEPROTECT, &wp))
		goto out;
	pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pm >= 0) {
		if (pread(pm, &pme, 8, (unsigned long)p / PAGE_SIZE * 8) == 8 && (pme & PME_SWAP))
			marker_frame = pme & PME_FRAME_MASK;
		close(pm);
	}
	pr_debug("write-protect marker in pagemap: %#llx", (unsigned long long)marker_frame);
out:
	if (u >= 0)
		close(u);
	if (p != MAP_FAILED)
		munmap(p, PAGE_SIZE);
}

bool track_is_marker(uint64_t pme)
{
	if (!nr_tasks || !(pme & PME_SWAP))
		return false;
	if (marker_frame == ~0ull)
		find_marker_frame();
	return marker_frame && (pme & PME_FRAME_MASK) == marker_frame;
}

/* ---------------------------------------------------------------- per task */

/* A mapping whose pages the tracker follows. */
static bool trackable(const struct proc_vma *v)
{
	/* hugetlb pages are dumped whole each time (mm.c scan_hugetlb) */
	if (v->shared || (v->vmflags & VMF_HUGETLB))
		return false;
	if (v->path[0] == '[')
		return !strcmp(v->path, "[heap]") || !strcmp(v->path, "[stack]");
	return true; /* anonymous, or a private file mapping */
}

/* Pages of [start, end) written since the last scan, into t->written;
 * with rearm, protected again in the same step. */
static int scan_written(struct track_task *t, int pm_fd, unsigned long start, unsigned long end,
			bool rearm)
{
	static struct page_region vec[SCAN_VEC];

	while (start < end) {
		struct pm_scan_arg a = {
			.size = sizeof(a),
			.flags = PM_SCAN_CHECK_WPASYNC | (rearm ? PM_SCAN_WP_MATCHING : 0),
			.start = start,
			.end = end,
			.vec = (unsigned long)vec,
			.vec_len = SCAN_VEC,
			.category_mask = PAGE_IS_WRITTEN,
			.return_mask = PAGE_IS_WRITTEN,
		};
		long n = ioctl(pm_fd, PAGEMAP_SCAN, &a);

		if (n < 0) {
			pr_perror("task %d: PAGEMAP_SCAN of %#lx-%#lx failed", t->pid, start, end);
			return -1;
		}
		for (long i = 0; i < n; i++)
			range_add(&t->written, vec[i].start, vec[i].end);
		if (a.walk_end <= start)
			break;
		start = a.walk_end;
	}
	return 0;
}

int track_scan(struct ctask *ct, bool rearm)
{
	struct track_task *t = task_of(ct->pid);
	struct proc_vma *vmas;
	char path[64];
	int nr, pm_fd, ret = 0;

	if (!t || !t->from_prev)
		return 0;
	nr = proc_read_vmas(ct->pid, &vmas);
	if (nr < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/pagemap", ct->pid);
	pm_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (pm_fd < 0) {
		pr_perror("cannot open %s", path);
		free(vmas);
		return -1;
	}
	for (int i = 0; i < nr && !ret; i++) {
		const struct proc_vma *v = &vmas[i];

		if (!(v->vmflags & VMF_UFFD_WP) || !trackable(v))
			continue;
		range_add(&t->tracked, v->start, v->end);
		ret = scan_written(t, pm_fd, v->start, v->end, rearm);
	}
	close(pm_fd);
	free(vmas);
	return ret;
}

const uint8_t track_id_current[1];

bool track_follows(const struct ctask *ct)
{
	const struct track_task *t = have_prev ? task_of(ct->pid) : NULL;

	return t && t->from_prev;
}

bool track_unchanged(const struct ctask *ct, unsigned long addr)
{
	const struct track_task *t;

	if (!have_prev)
		return false;
	t = task_of(ct->pid);
	return t && t->from_prev && range_has(&t->tracked, addr) && !range_has(&t->written, addr) &&
	       !range_has(&t->moved, addr);
}

/* A userfaultfd of the task's own, moved out of its descriptor table. */
static int make_uffd(struct ctask *ct)
{
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURES };
	long fd = parasite_call(ct, 0, SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY,
				0, 0, 0);
	int pidfd, ours;

	if (fd < 0) {
		pr_err("task %d: userfaultfd failed: %s; --track-mem needs it", ct->pid,
		       strerror(-fd));
		return -1;
	}
	pidfd = syscall(SYS_pidfd_open, ct->pid, 0);
	ours = pidfd >= 0 ? syscall(SYS_pidfd_getfd, pidfd, (int)fd, 0) : -1;
	if (ours < 0)
		pr_perror("task %d: cannot take its userfaultfd", ct->pid);
	parasite_call(ct, 0, SYS_close, fd, 0, 0, 0);
	if (ours < 0) {
		if (pidfd >= 0)
			close(pidfd);
		return -1;
	}
	if (ioctl(ours, UFFDIO_API, &api) || (api.features & UFFD_FEATURES) != UFFD_FEATURES) {
		pr_err("task %d: asynchronous write-protect tracking is not available (%s)",
		       ct->pid, strerror(errno));
		close(ours);
		close(pidfd);
		return -1;
	}
	struct track_task *t = task_new(ct->pid);

	t->uffd = ours;
	t->pidfd = pidfd;
	return 0;
}

int track_arm(struct ctask *ct)
{
	struct track_task *t = task_of(ct->pid);
	struct proc_vma *vmas;
	int nr, ret = 0;

	nr = proc_read_vmas(ct->pid, &vmas);
	if (nr < 0)
		return -1;
	if (!t) {
		/* not tracked yet: a userfaultfd of the program's own would
		 * share the mappings' registration, which the kernel refuses */
		for (int i = 0; i < nr; i++)
			if (vmas[i].vmflags & (VMF_UFFD_WP | VMF_UFFD_MISSING | VMF_UFFD_MINOR)) {
				pr_err("task %d uses userfaultfd itself (mapping %lx-%lx): its "
				       "memory cannot be tracked",
				       ct->pid, vmas[i].start, vmas[i].end);
				free(vmas);
				return -1;
			}
		if (make_uffd(ct)) {
			free(vmas);
			return -1;
		}
		t = task_of(ct->pid);
	}
	for (int i = 0; i < nr && !ret; i++) {
		const struct proc_vma *v = &vmas[i];
		struct uffdio_register reg = { { v->start, v->end - v->start },
					       UFFDIO_REGISTER_MODE_WP, 0 };
		struct uffdio_writeprotect wp = { { v->start, v->end - v->start },
						  UFFDIO_WRITEPROTECT_MODE_WP };

		if (!trackable(v) || v->start == ct->scratch)
			continue;
		if (v->vmflags & VMF_UFFD_WP) {
			/* armed by an earlier link: scanned and protected again
			 * already, unless that link is not our parent */
			if (!t->from_prev && ioctl(t->uffd, UFFDIO_WRITEPROTECT, &wp)) {
				pr_perror("task %d: cannot write-protect %lx-%lx", ct->pid,
					  v->start, v->end);
				ret = -1;
			}
			continue;
		}
		/* some mappings cannot be registered (VM_PFNMAP, ...): their
		 * pages are simply dumped every time */
		if (ioctl(t->uffd, UFFDIO_REGISTER, &reg)) {
			pr_debug("task %d: mapping %lx-%lx not tracked: %s", ct->pid, v->start,
				 v->end, strerror(errno));
			continue;
		}
		if (ioctl(t->uffd, UFFDIO_WRITEPROTECT, &wp)) {
			pr_perror("task %d: cannot write-protect %lx-%lx", ct->pid, v->start,
				  v->end);
			ret = -1;
		}
	}
	free(vmas);
	/* the next link starts from here: what moved is behind us */
	range_free(&t->moved);
	return ret;
}

void track_forget(void)
{
	for (size_t i = 0; i < nr_tasks; i++)
		task_drop(&tasks[i]);
}
