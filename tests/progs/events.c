/* events GOFILE MODE [DIR]
 *
 * Event objects, one MODE at a time; after GO each must behave as before.
 *
 * eventfd: a non-blocking counter at 42 (and a dup of it), a blocking one
 *   above 32 bits, a semaphore at 3: read back exactly, flags kept, the dup
 *   still shares the counter.
 * epoll: eventfds registered with their own data: a ready one, an idle one,
 *   an edge-triggered ready one, one for EPOLLOUT, a ready one registered
 *   through a number closed since, and two under one number (the first
 *   file's, which another was dup2'ed over); a second epoll watches the
 *   first; a third holds a one-shot registration that fired before the dump
 *   and an EPOLLEXCLUSIVE one. epoll_wait reports exactly the ready ones
 *   with their data, edge-triggered once, the stale ones included (as the
 *   kernel does); EPOLL_CTL_DEL works on the registered fds and says ENOENT
 *   for one never registered; the one-shot stays disarmed until MOD re-arms
 *   it; EPOLLEXCLUSIVE is kept.
 * signalfd: SIGUSR1 and SIGRTMIN (blocked), non-blocking, one SIGRTMIN
 *   queued before the dump: it is read first; SIGUSR2 (blocked, not in the
 *   mask) is not reported; SIGUSR1 and SIGRTMIN sent after restore are.
 * timerfd: a monotonic timer set to 3 s with a 0.5 s interval (the suite
 *   dumps it about 1.5 s later and waits a second before restoring), a
 *   CLOCK_REALTIME one with TFD_TIMER_ABSTIME 6 s after set-up, a boottime
 *   one that expired before the dump and was not read. After GO: the
 *   expired one reads 1; the relative one has what it had left at the
 *   dump (at most 2.3 s; 3 s if its time were reset), fires when it says,
 *   then again 0.5 s later; the absolute one fires at its wall-clock time.
 *   Firing up to 0.3 s late is tolerated, for loaded machines: what breaks
 *   is off by a second or more.
 * inotify: DIR/watched (IN_CREATE|IN_DELETE), DIR/file (IN_MODIFY) and
 *   DIR/other (IN_CLOSE_WRITE|IN_ONESHOT), with a removed watch between
 *   the first two, so wds 1, 3, 4. After GO the wds are the same (adding an
 *   existing watch returns its wd), the next new watch gets 5, and creating
 *   DIR/watched/new and writing DIR/file report events with the right wds.
 * inotify-relinked: a watch on DIR/first, hard-linked as DIR/second and
 *   unlinked as first: after GO a write through DIR/second is reported by
 *   the same wd (--force-irmap finds the name).
 * inotify-deleted: a watch on DIR/doomed, which is then unlinked (an open
 *   descriptor keeps the inode): it has no path and travels with the
 *   deleted file; after GO the watch still reports a write to the inode
 *   through that descriptor.
 */
#include "testprog.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>

static double mono(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static double fabs_(double x)
{
	return x < 0 ? -x : x;
}

static double real_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* A line of /proc/self/fdinfo/FD starting with key, or "". */
static const char *fdinfo(int fd, const char *key)
{
	static char line[256];
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	line[0] = 0;
	f = fopen(path, "re");
	if (!f)
		return line;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key))) {
			line[strcspn(line, "\n")] = 0;
			fclose(f);
			return line;
		}
	fclose(f);
	line[0] = 0;
	return line;
}

/* ---- eventfd ---- */

static int ev_nb, ev_dup, ev_big, ev_sem;

static void eventfd_setup(void)
{
	uint64_t v = 42, big = 0x100000005ULL;

	ev_nb = eventfd(0, EFD_NONBLOCK);
	ev_big = eventfd(0, 0);
	ev_sem = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK);
	if (ev_nb < 0 || ev_big < 0 || ev_sem < 0 || write(ev_nb, &v, 8) != 8 ||
	    write(ev_big, &big, 8) != 8)
		tp_die("eventfd");
	ev_dup = dup(ev_nb);
}

static void eventfd_check(void)
{
	uint64_t v = 0, one = 1;

	if (tp_sabotaged("eventfd") && read(ev_nb, &v, 8) < 0)
		tp_fail("sabotage read");
	if (!(fcntl(ev_nb, F_GETFL) & O_NONBLOCK) || (fcntl(ev_big, F_GETFL) & O_NONBLOCK))
		tp_fail("eventfd O_NONBLOCK flags changed");
	if (read(ev_nb, &v, 8) != 8 || v != 42)
		tp_fail("eventfd counter reads %llu, not 42", (unsigned long long)v);
	if (read(ev_nb, &v, 8) != -1 || errno != EAGAIN)
		tp_fail("a read eventfd is not empty (or blocks)");
	if (read(ev_big, &v, 8) != 8 || v != 0x100000005ULL)
		tp_fail("64-bit eventfd counter reads %#llx", (unsigned long long)v);
	for (int i = 0; i < 3; i++)
		if (read(ev_sem, &v, 8) != 8 || v != 1)
			tp_fail("semaphore eventfd read %d gave %llu", i, (unsigned long long)v);
	if (read(ev_sem, &v, 8) != -1 || errno != EAGAIN)
		tp_fail("semaphore eventfd has more than 3");
	if (write(ev_dup, &one, 8) != 8 || read(ev_nb, &v, 8) != 8 || v != 1)
		tp_fail("the dup of the eventfd is another counter");
}

/* ---- epoll ---- */

static int ep, ep2, ep3, e_ready, e_idle, e_et, e_out, e_stale, e_never, e_rep1, e_rep2;
static int e_reused, e_once, e_excl;

static void epoll_add(int e, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };

	if (epoll_ctl(e, EPOLL_CTL_ADD, fd, &ev))
		tp_die("epoll_ctl ADD %d", fd);
}

static void epoll_setup(void)
{
	struct epoll_event ev;
	int tmp;

	ep = epoll_create1(EPOLL_CLOEXEC);
	ep2 = epoll_create1(0);
	ep3 = epoll_create1(0);
	e_ready = eventfd(5, EFD_NONBLOCK);
	e_idle = eventfd(0, EFD_NONBLOCK);
	e_et = eventfd(1, EFD_NONBLOCK);
	e_out = eventfd(0, EFD_NONBLOCK);
	e_stale = eventfd(1, EFD_NONBLOCK);
	e_never = eventfd(1, EFD_NONBLOCK);
	e_rep1 = eventfd(1, EFD_NONBLOCK);
	e_rep2 = eventfd(0, EFD_NONBLOCK);
	e_once = eventfd(1, EFD_NONBLOCK);
	e_excl = eventfd(0, EFD_NONBLOCK);
	if (ep < 0 || ep2 < 0 || ep3 < 0 || e_ready < 0 || e_idle < 0 || e_et < 0 || e_out < 0 ||
	    e_stale < 0 || e_never < 0 || e_rep1 < 0 || e_rep2 < 0 || e_once < 0 || e_excl < 0)
		tp_die("epoll set-up");
	epoll_add(ep, e_ready, EPOLLIN, 0xA1A1A1A1A1A1A1A1ULL);
	epoll_add(ep, e_idle, EPOLLIN, 0xB2);
	epoll_add(ep, e_et, EPOLLIN | EPOLLET, 0xC3C3C3C3ULL);
	epoll_add(ep, e_out, EPOLLOUT, 0xD4);
	/* registered through a dup that is then closed: the file is still
	 * open (e_stale), the registration stays, under a dead number */
	tmp = dup(e_stale);
	epoll_add(ep, tmp, EPOLLIN, 0xEE);
	close(tmp);
	/* a number reused: e_rep1 registered as e_reused, then e_rep2 put at
	 * that number and registered under it too */
	e_reused = dup(e_rep1);
	epoll_add(ep, e_reused, EPOLLIN, 0xF1);
	if (dup2(e_rep2, e_reused) != e_reused)
		tp_die("dup2");
	epoll_add(ep, e_reused, EPOLLIN, 0xF2);
	epoll_add(ep2, ep, EPOLLIN, 0x42);
	/* a one-shot registration that fired before the dump (disarmed) and
	 * an exclusive one */
	epoll_add(ep3, e_once, EPOLLIN | EPOLLONESHOT, 0x0E);
	epoll_add(ep3, e_excl, EPOLLIN | EPOLLEXCLUSIVE, 0xEC);
	if (epoll_wait(ep3, &ev, 1, 0) != 1 || ev.data.u64 != 0x0E)
		tp_die("epoll_wait of the one-shot");
}

/* The events word fdinfo shows for the registration of fd in epoll e. */
static unsigned epoll_tfd_events(int e, int fd)
{
	char path[64], line[256];
	unsigned events = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", e);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		int tfd;
		unsigned ev;

		if (sscanf(line, "tfd: %d events: %x", &tfd, &ev) == 2 && tfd == fd)
			events = ev;
	}
	fclose(f);
	return events;
}

static void epoll_check(void)
{
	struct epoll_event evs[16];
	int seen_a = 0, seen_c = 0, seen_d = 0, seen_e = 0, seen_f = 0, n;
	uint64_t one = 1, v = 0;

	if (tp_sabotaged("epoll"))
		epoll_ctl(ep, EPOLL_CTL_DEL, e_ready, NULL);
	n = epoll_wait(ep2, evs, 16, 0);
	if (n != 1 || evs[0].data.u64 != 0x42)
		tp_fail("the outer epoll reports %d events (data %#llx), not 1 (0x42)", n,
			n > 0 ? (unsigned long long)evs[0].data.u64 : 0ULL);
	n = epoll_wait(ep, evs, 16, 0);
	for (int i = 0; i < n; i++) {
		uint64_t d = evs[i].data.u64;

		if (d == 0xA1A1A1A1A1A1A1A1ULL && evs[i].events == EPOLLIN)
			seen_a++;
		else if (d == 0xC3C3C3C3ULL && evs[i].events == EPOLLIN)
			seen_c++;
		else if (d == 0xD4 && evs[i].events == EPOLLOUT)
			seen_d++;
		else if (d == 0xEE && evs[i].events == EPOLLIN)
			seen_e++;
		else if (d == 0xF1 && evs[i].events == EPOLLIN)
			seen_f++;
		else
			tp_fail("epoll reports events %#x with data %#llx", evs[i].events,
				(unsigned long long)d);
	}
	if (n != 5 || seen_a != 1 || seen_c != 1 || seen_d != 1 || seen_e != 1 || seen_f != 1)
		tp_fail("epoll_wait gave %d events (ready %d, edge %d, out %d, closed number %d, "
			"reused number %d), expected 5",
			n, seen_a, seen_c, seen_d, seen_e, seen_f);
	/* edge-triggered: reported once */
	n = epoll_wait(ep, evs, 16, 0);
	for (int i = 0; i < n; i++)
		if (evs[i].data.u64 == 0xC3C3C3C3ULL)
			tp_fail("the edge-triggered registration fired twice");
	if (n != 4)
		tp_fail("second epoll_wait gave %d events, expected 4", n);
	/* the number now names e_rep2: its registration (0xF2) wakes up */
	if (write(e_reused, &one, 8) != 8)
		tp_fail("write to the reused number: %s", strerror(errno));
	n = epoll_wait(ep, evs, 16, 0);
	seen_f = 0;
	for (int i = 0; i < n; i++)
		seen_f += evs[i].data.u64 == 0xF2;
	if (seen_f != 1)
		tp_fail("the registration under the reused number (0xF2) did not fire");
	if (read(e_rep2, &v, 8) != 8 || v != 1)
		tp_fail("the reused number does not name the second eventfd");
	if (epoll_ctl(ep, EPOLL_CTL_DEL, e_idle, NULL))
		tp_fail("EPOLL_CTL_DEL of a registered fd: %s", strerror(errno));
	if (epoll_ctl(ep, EPOLL_CTL_DEL, e_ready, NULL))
		tp_fail("EPOLL_CTL_DEL of the ready fd: %s", strerror(errno));
	if (epoll_ctl(ep, EPOLL_CTL_DEL, e_never, NULL) != -1 || errno != ENOENT)
		tp_fail("EPOLL_CTL_DEL of an unregistered fd did not say ENOENT");
	if (epoll_ctl(ep, EPOLL_CTL_DEL, e_stale, NULL) != -1 || errno != ENOENT)
		tp_fail("the stale registration came back under fd %d", e_stale);
	n = epoll_wait(ep, evs, 16, 0);
	if (n != 3)
		tp_fail("after DEL epoll_wait gave %d events, expected 3", n);
	if (!(fcntl(ep, F_GETFD) & FD_CLOEXEC) || (fcntl(ep2, F_GETFD) & FD_CLOEXEC))
		tp_fail("epoll FD_CLOEXEC changed");
	/* the one-shot stays disarmed until re-armed; the exclusive keeps its flag */
	if (epoll_wait(ep3, evs, 16, 0) != 0)
		tp_fail("the disarmed one-shot registration fired");
	if (!(epoll_tfd_events(ep3, e_excl) & EPOLLEXCLUSIVE))
		tp_fail("EPOLLEXCLUSIVE lost (events %#x)", epoll_tfd_events(ep3, e_excl));
	evs[0].events = EPOLLIN | EPOLLONESHOT;
	evs[0].data.u64 = 0x0E;
	if (epoll_ctl(ep3, EPOLL_CTL_MOD, e_once, &evs[0]) ||
	    epoll_wait(ep3, evs, 16, 0) != 1 || evs[0].data.u64 != 0x0E)
		tp_fail("the re-armed one-shot registration did not fire");
}

/* ---- signalfd ---- */

static int sfd;

static void signalfd_setup(void)
{
	sigset_t block, mask;
	union sigval v = { .sival_int = 5 };

	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, SIGRTMIN);
	sigprocmask(SIG_BLOCK, &block, NULL);
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGRTMIN);
	sfd = signalfd(-1, &mask, SFD_NONBLOCK);
	if (sfd < 0 || sigqueue(getpid(), SIGRTMIN, v))
		tp_die("signalfd");
}

static int sfd_read(int expect_sig, int expect_val, const char *what)
{
	struct signalfd_siginfo si;
	ssize_t n = read(sfd, &si, sizeof(si));

	if (n != sizeof(si)) {
		tp_fail("%s: signalfd read: %s", what, n < 0 ? strerror(errno) : "short");
		return -1;
	}
	if ((int)si.ssi_signo != expect_sig || (expect_val >= 0 && si.ssi_int != expect_val)) {
		tp_fail("%s: signalfd gave signal %u (value %d), expected %d (%d)", what,
			si.ssi_signo, si.ssi_int, expect_sig, expect_val);
		return -1;
	}
	return 0;
}

static void signalfd_check(void)
{
	struct signalfd_siginfo si;
	union sigval v = { .sival_int = 77 };
	struct timespec zero = { 0, 0 };
	sigset_t usr2;

	if (tp_sabotaged("signalfd")) {
		sigset_t all;

		sigfillset(&all);
		signalfd(sfd, &all, 0);
	}
	if (!(fcntl(sfd, F_GETFL) & O_NONBLOCK))
		tp_fail("signalfd lost O_NONBLOCK");
	sfd_read(SIGRTMIN, 5, "signal queued before the dump");
	raise(SIGUSR2);
	if (read(sfd, &si, sizeof(si)) != -1 || errno != EAGAIN)
		tp_fail("signalfd reports a signal outside its mask (%u)", si.ssi_signo);
	kill(getpid(), SIGUSR1);
	sfd_read(SIGUSR1, -1, "SIGUSR1 sent after restore");
	sigqueue(getpid(), SIGRTMIN, v);
	sfd_read(SIGRTMIN, 77, "SIGRTMIN sent after restore");
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	if (sigtimedwait(&usr2, NULL, &zero) != SIGUSR2)
		tp_fail("SIGUSR2 was not left pending");
	if (strcmp(fdinfo(sfd, "sigmask:"), "sigmask:\t0000000200000200"))
		tp_fail("signalfd fdinfo says '%s'", fdinfo(sfd, "sigmask:"));
}

/* ---- timerfd ---- */

static int t_rel, t_abs, t_exp;
static double abs_target;

static void timerfd_setup(void)
{
	struct itimerspec rel = { { 0, 500000000 }, { 3, 0 } };
	struct itimerspec soon = { { 0, 0 }, { 0, 10000000 } };
	struct itimerspec at = { { 0, 0 }, { 0, 0 } };
	struct timespec now;

	t_rel = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	t_abs = timerfd_create(CLOCK_REALTIME, 0);
	t_exp = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK);
	if (t_rel < 0 || t_abs < 0 || t_exp < 0)
		tp_die("timerfd_create");
	clock_gettime(CLOCK_REALTIME, &now);
	at.it_value.tv_sec = now.tv_sec + 6;
	at.it_value.tv_nsec = now.tv_nsec;
	abs_target = at.it_value.tv_sec + at.it_value.tv_nsec / 1e9;
	if (timerfd_settime(t_rel, 0, &rel, NULL) ||
	    timerfd_settime(t_abs, TFD_TIMER_ABSTIME, &at, NULL) ||
	    timerfd_settime(t_exp, 0, &soon, NULL))
		tp_die("timerfd_settime");
	usleep(50000); /* t_exp expires, unread */
}

/* Waits (at most limit s) for fd to fire; the time it took, or -1. */
static double wait_fire(int fd, double limit, uint64_t *ticks)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	double t0 = mono();

	if (poll(&p, 1, (int)(limit * 1000)) != 1 || read(fd, ticks, 8) != 8)
		return -1;
	return mono() - t0;
}

static void timerfd_check(void)
{
	struct itimerspec r1, r2;
	uint64_t ticks = 0;
	double left1, left2, took, now_r;

	if (tp_sabotaged("timerfd")) {
		struct itimerspec full = { { 0, 500000000 }, { 3, 0 } };

		timerfd_settime(t_rel, 0, &full, NULL);
	}
	if (read(t_exp, &ticks, 8) != 8 || ticks != 1)
		tp_fail("the expired timer reads %llu ticks (%s), not 1",
			(unsigned long long)ticks, strerror(errno));
	if (strcmp(fdinfo(t_exp, "clockid:"), "clockid: 7") ||
	    strcmp(fdinfo(t_abs, "clockid:"), "clockid: 0"))
		tp_fail("timerfd clocks changed");
	timerfd_gettime(t_rel, &r1);
	timerfd_gettime(t_abs, &r2);
	now_r = real_now();
	left1 = r1.it_value.tv_sec + r1.it_value.tv_nsec / 1e9;
	left2 = r2.it_value.tv_sec + r2.it_value.tv_nsec / 1e9;
	if (r1.it_interval.tv_sec != 0 || r1.it_interval.tv_nsec != 500000000)
		tp_fail("the interval is %ld.%09ld s, not 0.5 s", (long)r1.it_interval.tv_sec,
			r1.it_interval.tv_nsec);
	/* dumped about 1.5 s after it was set to 3 s */
	if (left1 <= 0 || left1 > 2.3)
		tp_fail("the relative timer has %.3f s left, expected 0 < left <= 2.3", left1);
	if (fabs_(left2 - (abs_target - now_r)) > 0.2 && !(left2 == 0 && now_r >= abs_target))
		tp_fail("the absolute timer has %.3f s left, its target is %.3f s away", left2,
			abs_target - now_r);
	took = wait_fire(t_rel, left1 + 1, &ticks);
	if (took < 0 || ticks != 1 || took < left1 - 0.05 || took > left1 + 0.3)
		tp_fail("the relative timer fired after %.3f s (%llu ticks), it said %.3f s", took,
			(unsigned long long)ticks, left1);
	took = wait_fire(t_rel, 1.5, &ticks);
	if (took < 0.45 || took > 0.8 || ticks != 1)
		tp_fail("the interval fired after %.3f s (%llu ticks), not 0.5 s", took,
			(unsigned long long)ticks);
	took = wait_fire(t_abs, abs_target - real_now() + 1, &ticks);
	now_r = real_now();
	if (took < 0 || now_r < abs_target - 0.01 || now_r > abs_target + 0.4)
		tp_fail("the absolute timer fired %.3f s after its time", now_r - abs_target);
}

/* ---- inotify ---- */

static int ifd, wd_dir, wd_file, wd_other;
static char d_watched[4096], d_file[4096], d_other[4096], d_gap[4096], d_late[4096];

static void mkfile(const char *path)
{
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);

	if (fd < 0)
		tp_die("create %s", path);
	close(fd);
}

#define DIR_MASK (IN_CREATE | IN_DELETE)
#define OTHER_MASK (IN_CLOSE_WRITE | IN_ONESHOT)

static void inotify_setup(const char *dir)
{
	char buf[4096];
	int gap;

	snprintf(d_watched, sizeof(d_watched), "%s/watched", dir);
	snprintf(d_file, sizeof(d_file), "%s/file", dir);
	snprintf(d_other, sizeof(d_other), "%s/other", dir);
	snprintf(d_gap, sizeof(d_gap), "%s/gap", dir);
	snprintf(d_late, sizeof(d_late), "%s/late", dir);
	if (mkdir(d_watched, 0755) && errno != EEXIST)
		tp_die("mkdir %s", d_watched);
	mkfile(d_file);
	mkfile(d_other);
	mkfile(d_gap);
	mkfile(d_late);
	ifd = inotify_init1(IN_NONBLOCK);
	if (ifd < 0)
		tp_die("inotify_init1");
	wd_dir = inotify_add_watch(ifd, d_watched, DIR_MASK);
	gap = inotify_add_watch(ifd, d_gap, IN_ATTRIB);
	inotify_rm_watch(ifd, gap);
	wd_file = inotify_add_watch(ifd, d_file, IN_MODIFY);
	wd_other = inotify_add_watch(ifd, d_other, OTHER_MASK);
	if (wd_dir != 1 || gap != 2 || wd_file != 3 || wd_other != 4)
		tp_die("unexpected wds %d %d %d %d", wd_dir, gap, wd_file, wd_other);
	while (read(ifd, buf, sizeof(buf)) > 0) /* the IN_IGNORED of the gap */
		;
}

/* The next event; 0 when there is one. */
static int next_event(int *wd, uint32_t *mask, char *name, size_t size)
{
	static char buf[4096] __attribute__((aligned(8)));
	struct pollfd p = { .fd = ifd, .events = POLLIN };
	struct inotify_event *ev = (struct inotify_event *)buf;

	if (poll(&p, 1, 2000) != 1 || read(ifd, buf, sizeof(buf)) < (ssize_t)sizeof(*ev))
		return -1;
	*wd = ev->wd;
	*mask = ev->mask;
	snprintf(name, size, "%s", ev->len ? ev->name : "");
	return 0;
}

static void inotify_check(void)
{
	char path[4200], name[256];
	uint32_t mask;
	int wd, fd;

	if (tp_sabotaged("inotify"))
		inotify_rm_watch(ifd, wd_file);
	if (!(fcntl(ifd, F_GETFL) & O_NONBLOCK))
		tp_fail("inotify lost O_NONBLOCK");
	/* an existing watch gives its own wd back */
	if ((wd = inotify_add_watch(ifd, d_watched, DIR_MASK)) != wd_dir)
		tp_fail("the watch on %s is wd %d, was %d", d_watched, wd, wd_dir);
	if ((wd = inotify_add_watch(ifd, d_file, IN_MODIFY)) != wd_file)
		tp_fail("the watch on %s is wd %d, was %d", d_file, wd, wd_file);
	if ((wd = inotify_add_watch(ifd, d_other, OTHER_MASK)) != wd_other)
		tp_fail("the watch on %s is wd %d, was %d", d_other, wd, wd_other);
	snprintf(path, sizeof(path), "%s/new", d_watched);
	mkfile(path);
	if (next_event(&wd, &mask, name, sizeof(name)) || wd != wd_dir || mask != IN_CREATE ||
	    strcmp(name, "new"))
		tp_fail("creating %s reported wd %d mask %#x name '%s'", path, wd, mask, name);
	fd = open(d_file, O_WRONLY);
	if (fd < 0 || write(fd, "x", 1) != 1)
		tp_fail("cannot write %s", d_file);
	if (fd >= 0)
		close(fd);
	if (next_event(&wd, &mask, name, sizeof(name)) || wd != wd_file || mask != IN_MODIFY)
		tp_fail("writing %s reported wd %d mask %#x", d_file, wd, mask);
	if ((wd = inotify_add_watch(ifd, d_late, IN_ATTRIB)) != 5)
		tp_fail("a new watch got wd %d, not 5", wd);
}

static int doomed_fd, doomed_wd;

static void inotify_deleted_setup(const char *dir)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/doomed", dir);
	doomed_fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
	ifd = inotify_init1(IN_NONBLOCK);
	if (doomed_fd < 0 || ifd < 0)
		tp_die("inotify-deleted set-up");
	doomed_wd = inotify_add_watch(ifd, path, IN_MODIFY);
	if (doomed_wd < 0 || unlink(path))
		tp_die("watch and unlink %s", path);
	usleep(10000);
	while (read(ifd, path, sizeof(path)) > 0) /* IN_ATTRIB of the unlink */
		;
}

static char relinked_path[4096];

/* A watch on DIR/first, which then only has its other name DIR/second. */
static void inotify_relinked_setup(const char *dir)
{
	char first[4096];
	int fd;

	snprintf(first, sizeof(first), "%s/first", dir);
	snprintf(relinked_path, sizeof(relinked_path), "%s/second", dir);
	fd = open(first, O_CREAT | O_RDWR | O_TRUNC, 0644);
	ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0 || ifd < 0 || close(fd))
		tp_die("inotify-relinked set-up");
	doomed_wd = inotify_add_watch(ifd, first, IN_MODIFY);
	if (doomed_wd < 0 || link(first, relinked_path) || unlink(first))
		tp_die("watch, link and unlink %s", first);
	usleep(10000);
	while (read(ifd, first, sizeof(first)) > 0) /* IN_ATTRIB of link and unlink */
		;
}

static void inotify_relinked_check(void)
{
	char name[256];
	uint32_t mask;
	int wd, fd = open(relinked_path, O_WRONLY);

	if (tp_sabotaged("inotify-relinked"))
		inotify_rm_watch(ifd, doomed_wd);
	if (fd < 0 || write(fd, "x", 1) != 1 || next_event(&wd, &mask, name, sizeof(name)) ||
	    wd != doomed_wd || mask != IN_MODIFY)
		tp_fail("the watch on the file known by its other name does not report a write");
	if (fd >= 0)
		close(fd);
}

static void inotify_deleted_check(void)
{
	char name[256];
	uint32_t mask;
	int wd;

	if (tp_sabotaged("inotify-deleted"))
		inotify_rm_watch(ifd, doomed_wd);
	if (write(doomed_fd, "x", 1) != 1 || next_event(&wd, &mask, name, sizeof(name)) ||
	    wd != doomed_wd || mask != IN_MODIFY)
		tp_fail("the watch on the unlinked file does not report a write");
}

int main(int argc, char **argv)
{
	const char *mode;

	tp_init(argc, argv, 2, "GOFILE eventfd|epoll|signalfd|timerfd|inotify [DIR]");
	mode = argv[2];
	if (!strcmp(mode, "eventfd"))
		eventfd_setup();
	else if (!strcmp(mode, "epoll"))
		epoll_setup();
	else if (!strcmp(mode, "signalfd"))
		signalfd_setup();
	else if (!strcmp(mode, "timerfd"))
		timerfd_setup();
	else if (!strcmp(mode, "inotify") && argc > 3)
		inotify_setup(argv[3]);
	else if (!strcmp(mode, "inotify-deleted") && argc > 3)
		inotify_deleted_setup(argv[3]);
	else if (!strcmp(mode, "inotify-relinked") && argc > 3)
		inotify_relinked_setup(argv[3]);
	else
		tp_die("unknown mode %s (inotify needs DIR)", mode);
	tp_ready();
	tp_wait_go();
	if (!strcmp(mode, "eventfd"))
		eventfd_check();
	else if (!strcmp(mode, "epoll"))
		epoll_check();
	else if (!strcmp(mode, "signalfd"))
		signalfd_check();
	else if (!strcmp(mode, "timerfd"))
		timerfd_check();
	else if (!strcmp(mode, "inotify"))
		inotify_check();
	else if (!strcmp(mode, "inotify-relinked"))
		inotify_relinked_check();
	else
		inotify_deleted_check();
	return tp_finish();
}
