/* locks GOFILE DIR
 * locks probe flock|posix|ofd FILE START LEN r|w
 *
 * File locks of every kind, in DIR:
 *  - lock-flock: flock LOCK_EX (fd 20);
 *  - lock-posix: POSIX write lock on bytes 100-199, read lock from 300 to
 *    the end of the file (fd 21);
 *  - lock-ofd: OFD write lock on bytes 0-49 (fd 22);
 *  - lock-shared: flock LOCK_SH on fd 23, a description the child shares;
 *  - lock-child: the child's POSIX write lock on the whole file (fd 24).
 * After GO a new process (forked then, so it inherits no lock) opens every
 * file again and must find each lock held, by the right owner, over exactly
 * its range, and conflicting as before.
 *
 * The probe form is the outside view: it tries to take one lock and exits
 * 0 when that is refused because someone holds a conflicting lock, 1 when
 * it is granted, 2 on error.
 */
#include "testprog.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>

enum { FL_FD = 20, PX_FD = 21, OFD_FD = 22, SH_FD = 23, CH_FD = 24 };

static char dir[4096];
static pid_t child;

static int probe(int argc, char **argv)
{
	struct flock fl = {0};
	int fd, r;

	if (argc != 7) {
		fprintf(stderr, "usage: locks probe flock|posix|ofd FILE START LEN r|w\n");
		return 2;
	}
	fd = open(argv[3], O_RDWR);
	if (fd < 0) {
		perror(argv[3]);
		return 2;
	}
	fl.l_type = argv[6][0] == 'w' ? F_WRLCK : F_RDLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = atoll(argv[4]);
	fl.l_len = atoll(argv[5]);
	if (!strcmp(argv[2], "flock"))
		r = flock(fd, (argv[6][0] == 'w' ? LOCK_EX : LOCK_SH) | LOCK_NB);
	else if (!strcmp(argv[2], "posix"))
		r = fcntl(fd, F_SETLK, &fl);
	else if (!strcmp(argv[2], "ofd"))
		r = fcntl(fd, F_OFD_SETLK, &fl);
	else
		return 2;
	if (!r) {
		printf("granted\n");
		return 1;
	}
	if (errno == EAGAIN || errno == EACCES || errno == EWOULDBLOCK) {
		printf("refused\n");
		return 0;
	}
	perror("lock");
	return 2;
}

static int open_at(const char *name, int at)
{
	char path[4200];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CREAT, 0600);
	if (fd < 0)
		tp_die("open %s", path);
	if (at >= 0) {
		if (dup2(fd, at) != at)
			tp_die("dup2 %d", at);
		close(fd);
		fd = at;
	}
	return fd;
}

static int setlk(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};

	return fcntl(fd, cmd, &fl);
}

/* What F_GETLK (or F_OFD_GETLK) says about a lock of type over start+len. */
static void expect_getlk(int fd, int cmd, short type, off_t start, off_t len, short want_type,
			 off_t want_start, off_t want_len, pid_t want_pid, const char *what)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};

	if (fcntl(fd, cmd, &fl)) {
		tp_fail("%s: F_GETLK: %s", what, strerror(errno));
		return;
	}
	if (fl.l_type != want_type) {
		tp_fail("%s: lock type %d, expected %d", what, fl.l_type, want_type);
		return;
	}
	if (want_type == F_UNLCK)
		return;
	if (fl.l_start != want_start || fl.l_len != want_len)
		tp_fail("%s: lock over %lld+%lld, expected %lld+%lld", what, (long long)fl.l_start,
			(long long)fl.l_len, (long long)want_start, (long long)want_len);
	if (fl.l_pid != want_pid)
		tp_fail("%s: held by %d, expected %d", what, fl.l_pid, want_pid);
}

static void expect_flock(int fd, int op, int granted, const char *what)
{
	int r = flock(fd, op | LOCK_NB);

	if (granted && r)
		tp_fail("%s: refused: %s", what, strerror(errno));
	else if (!granted && !r)
		tp_fail("%s: granted, but the lock should still be held", what);
	else if (!granted && errno != EWOULDBLOCK)
		tp_fail("%s: %s", what, strerror(errno));
}

/* Runs in a process forked after GO: it holds no lock of its own. */
static int outside_check(pid_t owner)
{
	int fl = open_at("lock-flock", -1), px = open_at("lock-posix", -1);
	int ofd = open_at("lock-ofd", -1), sh = open_at("lock-shared", -1);
	int ch = open_at("lock-child", -1);

	expect_flock(fl, LOCK_SH, 0, "lock-flock LOCK_SH");
	expect_getlk(px, F_GETLK, F_WRLCK, 150, 1, F_WRLCK, 100, 100, owner, "lock-posix at 150");
	expect_getlk(px, F_GETLK, F_WRLCK, 250, 1, F_UNLCK, 0, 0, 0, "lock-posix at 250");
	expect_getlk(px, F_GETLK, F_WRLCK, 400, 1, F_RDLCK, 300, 0, owner, "lock-posix at 400");
	expect_getlk(px, F_GETLK, F_RDLCK, 400, 1, F_UNLCK, 0, 0, 0, "lock-posix read at 400");
	expect_getlk(ofd, F_OFD_GETLK, F_RDLCK, 10, 1, F_WRLCK, 0, 50, -1, "lock-ofd at 10");
	expect_getlk(ofd, F_OFD_GETLK, F_RDLCK, 60, 1, F_UNLCK, 0, 0, 0, "lock-ofd at 60");
	if (setlk(ofd, F_OFD_SETLK, F_WRLCK, 20, 1) == 0)
		tp_fail("lock-ofd: a write lock at 20 was granted");
	expect_flock(sh, LOCK_EX, 0, "lock-shared LOCK_EX");
	expect_flock(sh, LOCK_SH, 1, "lock-shared LOCK_SH");
	expect_getlk(ch, F_GETLK, F_RDLCK, 0, 1, F_WRLCK, 0, 0, child, "lock-child");
	if (tp_nfail) {
		printf("FAIL: %s\n", tp_fails);
		fflush(stdout);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int status, sh;
	pid_t checker;

	if (argc > 1 && !strcmp(argv[1], "probe"))
		return probe(argc, argv);
	tp_init(argc, argv, 2, "GOFILE DIR");
	if (!realpath(argv[2], dir))
		tp_die("realpath %s", argv[2]);
	if (flock(open_at("lock-flock", FL_FD), LOCK_EX))
		tp_die("flock");
	open_at("lock-posix", PX_FD);
	if (setlk(PX_FD, F_SETLK, F_WRLCK, 100, 100) || setlk(PX_FD, F_SETLK, F_RDLCK, 300, 0))
		tp_die("F_SETLK");
	if (setlk(open_at("lock-ofd", OFD_FD), F_OFD_SETLK, F_WRLCK, 0, 50))
		tp_die("F_OFD_SETLK");
	sh = open_at("lock-shared", SH_FD);
	if (flock(sh, LOCK_SH))
		tp_die("flock shared");
	child = fork();
	if (child < 0)
		tp_die("fork");
	if (child == 0) {
		if (setlk(open_at("lock-child", CH_FD), F_SETLK, F_WRLCK, 0, 0))
			_exit(2);
		for (;;)
			pause(); /* until the parent is done checking */
	}
	/* ready once the child's lock is there */
	for (int i = 0;; i++) {
		struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET};

		if (i > 500)
			tp_die("the child did not take its lock");
		if (fcntl(open_at("lock-child", CH_FD), F_GETLK, &fl) == 0 && fl.l_type == F_WRLCK)
			break;
		usleep(10000);
	}
	close(CH_FD);
	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("locks"))
		flock(FL_FD, LOCK_UN);
	checker = fork();
	if (checker == 0)
		_exit(outside_check(getppid()));
	if (checker < 0 || waitpid(checker, &status, 0) != checker)
		tp_fail("cannot run the check");
	else if (!WIFEXITED(status) || WEXITSTATUS(status))
		tp_fail("the locks are not held as they were (status %#x)", status);
	kill(child, SIGTERM);
	if (waitpid(child, &status, 0) != child || !WIFSIGNALED(status) ||
	    WTERMSIG(status) != SIGTERM)
		tp_fail("the child did not wait for the check (status %#x)", status);
	return tp_finish();
}
