/* ctty GOFILE
 *
 * A controlling terminal that no task holds a descriptor of (issue 10):
 *
 *   R       holds the master of a pty; its slave's node is given to
 *           13333:44444 with mode 0600
 *   +-S     setsid, opens the slave, makes it its controlling terminal,
 *     |     closes it: it keeps the terminal only as its ctty
 *     +-M   in the session, in its own group G, the foreground group,
 *     |     holding /dev/tty open
 *     +-N   in the session, gave the terminal up (TIOCNOTTY)
 *
 * R also holds, at fd 40, the slave of a second pty whose master it closed:
 * hung up, its /dev/pts node gone.
 *
 * After GO: S and M open /dev/tty and find the slave (same device), S
 * sees itself as the terminal's session and G as its foreground group, N
 * cannot open /dev/tty (ENXIO); R finds the node's owner and mode, and a
 * line R writes to the master is read by S through /dev/tty. R's hung-up
 * slave still reads end-of-file and fails writes with EIO.
 *
 * STASIS_SABOTAGE=ctty: S gives the terminal up after GO (the session
 * loses it); =owner: R gives the node back to root; =hangup: R puts
 * /dev/null at fd 40.
 */
#include "testprog.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#define UID 13333
#define GID 44444

static dev_t slave_dev;

/* 0 when /dev/tty opens and is the slave; else a reason bit. */
static int check_tty(int *fd_out)
{
	unsigned int dev;
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY);

	if (fd < 0)
		return 1;
	/* the terminal behind /dev/tty */
	if (ioctl(fd, TIOCGDEV, &dev) || dev != slave_dev) {
		close(fd);
		return 2;
	}
	if (fd_out)
		*fd_out = fd;
	else
		close(fd);
	return 0;
}

static void sleep_until_go(void)
{
	tp_wait_go();
}

/* M also holds /dev/tty open from before the dump. */
static int member_m(void)
{
	int held = open("/dev/tty", O_RDWR | O_NOCTTY), bad = 0;
	unsigned int dev = 0;
	struct stat st;

	if (held < 0)
		return 50;
	sleep_until_go();
	if (check_tty(NULL))
		bad = 10;
	if (fstat(held, &st) || st.st_rdev != makedev(5, 0) || ioctl(held, TIOCGDEV, &dev) ||
	    dev != slave_dev)
		bad |= 1;
	return bad;
}

static int member_n(void)
{
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY);

	if (fd < 0 || ioctl(fd, TIOCNOTTY))
		return 30;
	close(fd);
	if (write(3, "", 1) != 1)
		return 30;
	sleep_until_go();
	fd = open("/dev/tty", O_RDWR | O_NOCTTY);
	if (fd >= 0 || errno != ENXIO)
		return 20;
	return 0;
}

static int leader_s(const char *slave_path, int ready_fd)
{
	int fd, tty, st, bad = 0;
	pid_t m, n, pgrp, sid;
	char buf[16] = "";
	int sync[2];

	if (setsid() < 0)
		return 40;
	fd = open(slave_path, O_RDWR | O_NOCTTY);
	if (fd < 0 || ioctl(fd, TIOCSCTTY, 0))
		return 41;
	close(fd);
	if (pipe(sync))
		return 42;
	m = fork();
	if (m == 0) {
		setpgid(0, 0);
		_exit(member_m());
	}
	setpgid(m, m);
	n = fork();
	if (n == 0) {
		dup2(sync[1], 3);
		_exit(member_n());
	}
	if (read(sync[0], buf, 1) != 1)
		return 43;
	/* M's group in the foreground, through /dev/tty: S holds no slave fd */
	tty = open("/dev/tty", O_RDWR | O_NOCTTY);
	signal(SIGTTOU, SIG_IGN);
	if (tty < 0 || tcsetpgrp(tty, m))
		return 44;
	close(tty);
	if (write(ready_fd, "", 1) != 1)
		return 45;
	close(ready_fd);
	sleep_until_go();

	if (tp_sabotaged("ctty")) {
		tty = open("/dev/tty", O_RDWR | O_NOCTTY);
		signal(SIGHUP, SIG_IGN);
		if (tty >= 0)
			ioctl(tty, TIOCNOTTY);
	}
	tty = -1;
	bad |= check_tty(&tty);
	if (tty >= 0) {
		if (ioctl(tty, TIOCGSID, &sid) || sid != getpid())
			bad |= 4;
		pgrp = tcgetpgrp(tty);
		if (pgrp != m)
			bad |= 8;
	}
	if (waitpid(m, &st, 0) != m || !WIFEXITED(st))
		bad |= 32;
	else
		bad |= WEXITSTATUS(st) ? 64 : 0;
	if (waitpid(n, &st, 0) != n || !WIFEXITED(st))
		bad |= 32;
	else
		bad |= WEXITSTATUS(st) ? 128 : 0;
	/* R answers "?" with a line on the master (canonical mode); a
	 * background reader would get EIO: S takes the foreground back */
	if (tty >= 0 && tcsetpgrp(tty, getpgrp()))
		bad |= 16;
	if (tty >= 0 &&
	    (write(tty, "?", 1) != 1 || read(tty, buf, 5) != 5 || memcmp(buf, "ping\n", 5)))
		bad |= 16;
	return bad;
}

int main(int argc, char **argv)
{
	int master, st, ready[2];
	char slave_path[64], c;
	struct stat sst;
	pid_t s;

	tp_init(argc, argv, 1, "GOFILE");
	master = posix_openpt(O_RDWR | O_NOCTTY);
	if (master < 0 || grantpt(master) || unlockpt(master) || !ptsname(master))
		tp_die("posix_openpt");
	snprintf(slave_path, sizeof(slave_path), "%s", ptsname(master));
	if (chown(slave_path, UID, GID) || chmod(slave_path, 0600) || stat(slave_path, &sst))
		tp_die("chown %s", slave_path);
	slave_dev = sst.st_rdev;
	{
		int m2 = posix_openpt(O_RDWR | O_NOCTTY), s2;

		if (m2 < 0 || grantpt(m2) || unlockpt(m2) || !ptsname(m2))
			tp_die("posix_openpt 2");
		s2 = open(ptsname(m2), O_RDWR | O_NOCTTY);
		if (s2 < 0 || dup2(s2, 40) != 40)
			tp_die("open the second slave");
		close(s2);
		close(m2);
	}
	if (pipe(ready))
		tp_die("pipe");
	s = fork();
	if (s < 0)
		tp_die("fork");
	if (s == 0) {
		close(ready[0]);
		close(master);
		_exit(leader_s(slave_path, ready[1]));
	}
	close(ready[1]);
	if (read(ready[0], &c, 1) != 1) {
		waitpid(s, &st, 0);
		tp_die("S set-up failed (status %#x)", st);
	}
	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("owner") && chown(slave_path, 0, 0))
		tp_fail("sabotage: chown");
	if (tp_sabotaged("hangup") && dup2(open("/dev/null", O_RDWR), 40) != 40)
		tp_fail("sabotage: dup2");
	{
		char b;
		ssize_t r = read(40, &b, 1);

		if (r != 0)
			tp_fail("the hung-up slave reads %zd (%s), expected end-of-file", r,
				r < 0 ? strerror(errno) : "data");
		if (write(40, "x", 1) != -1 || errno != EIO)
			tp_fail("a write to the hung-up slave does not fail with EIO");
	}
	if (stat(slave_path, &sst))
		tp_fail("%s is gone", slave_path);
	else if (sst.st_uid != UID || sst.st_gid != GID || (sst.st_mode & 07777) != 0600)
		tp_fail("%s: owner %d:%d mode %o, expected %d:%d 600", slave_path, (int)sst.st_uid,
			(int)sst.st_gid, sst.st_mode & 07777, UID, GID);
	/* S writes "?" when it reads: answer it */
	for (int i = 0; i < 500; i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		int fl = fcntl(master, F_GETFL);
		ssize_t r;

		fcntl(master, F_SETFL, fl | O_NONBLOCK);
		r = read(master, &c, 1);
		fcntl(master, F_SETFL, fl);
		if (r == 1 && c == '?') {
			if (write(master, "ping\n", 5) != 5)
				tp_fail("write to the master");
			break;
		}
		if (waitpid(s, &st, WNOHANG) == s)
			goto reaped;
		nanosleep(&ts, NULL);
	}
	if (waitpid(s, &st, 0) != s)
		st = -1;
reaped:
	if (st == -1 || !WIFEXITED(st))
		tp_fail("S: status %#x", st);
	else if (WEXITSTATUS(st)) {
		int b = WEXITSTATUS(st);

		tp_fail("S reports %s%s%s%s%s%s%s(%d)", b & 3 ? "no /dev/tty or not the slave; " : "",
			b & 4 ? "not the terminal's session; " : "",
			b & 8 ? "M's group not in the foreground; " : "",
			b & 16 ? "no data through /dev/tty; " : "", b & 32 ? "a member died; " : "",
			b & 64 ? "M has no /dev/tty, or its open /dev/tty is not the slave; " : "",
			b & 128 ? "N has a terminal it gave up; " : "", b);
	}
	return tp_finish();
}
