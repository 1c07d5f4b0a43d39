/* fsobj GOFILE DIR MODE
 *
 * File-system objects that have lost their name, or are opened in a way
 * other than for reading and writing; everything is made in DIR/fs. MODE:
 *  cwd:   the working directory DIR/fs/cwd (mode 0751), also open as fd 20,
 *         is removed: after the restore /proc/self/cwd reads
 *         "DIR/fs/cwd (deleted)", has no link, its mode, and is fd 20's
 *         directory.
 *  root:  a child chroots into DIR/fs/root, which the parent holds as fd 21
 *         and removes; a second child chroots into DIR/fs/jail (kept) with
 *         a file outside it open as fd 22. The parent checks both roots
 *         through /proc/CHILD/root (and the cwd of the first), and the
 *         second child reads its file and cannot open it by name.
 *  rmdir: DIR/fs/a/b open as fd 23, then b and a removed: fd 23 is a
 *         directory with no link, "DIR/fs/a/b (deleted)"; DIR/fs/a does not
 *         come back.
 *  fifo:  DIR/fs/fifo, mode 0640, open read-write (fd 24), read-only
 *         non-blocking (fd 25) and write-only (fd 26), 5 bytes queued, then
 *         unlinked: one FIFO again (same inode), no link, the bytes queued,
 *         a write through 26 read from 24.
 *  dev:   DIR/fs/null, a node of /dev/null (1:3, mode 0640), open
 *         read-write as fd 27, unlinked: the same device number and mode,
 *         no link, writes swallowed, reads at end of file.
 *  gonedir: DIR/fs/d/file, 3 bytes, open read-write as fd 32 at offset 1,
 *         unlinked, then DIR/fs/d removed: fd 32 reads "DIR/fs/d/file
 *         (deleted)" with its data and offset; DIR/fs/d does not come back.
 *  tmpfile: fd 33 made with O_TMPFILE in DIR/fs (never named), fd 34 made
 *         so and then linked as DIR/fs/linked (its descriptor still reads
 *         "DIR/fs/#INO (deleted)", with a link: needs --link-remap): both
 *         keep their data, names and link counts.
 *  proc:  a child; the parent opens /proc/CHILD/stat (fd 35, read to offset
 *         10, inherited by the child: one description), /proc/CHILD (fd 36,
 *         a directory) and /proc/self/status (fd 37, which reads as
 *         /proc/PARENT/status): the same files, offset and sharing after
 *         the restore, before any of it existed again.
 *  ns:    /proc/self/ns/net (fd 38) and /proc/self/ns/mnt (fd 39): still the
 *         namespaces the program runs in.
 *  foreignns: fd 41 is the network namespace of a child that made its own
 *         and exited: stasis must refuse the dump (and the program then
 *         checks that fd 41 is still that namespace).
 *  deadproc: the working directory is /proc/CHILD of a child killed and
 *         reaped since, also open as fd 40: getcwd fails with ENOENT, the
 *         cwd and fd 40 read "/proc/N (deleted)" and are directories.
 *  console: nodes DIR/fs/console (5:1) and DIR/fs/vt (4:5, a virtual
 *         console), opened read-only as fds 42 and 43; the vt, opened by
 *         this session leader, becomes its controlling terminal: the same
 *         devices and controlling terminal after the restore, which needs
 *         no --shell-job.
 *  opath: O_PATH descriptors: fd 28 on DIR/fs/file, fd 29 on the symlink
 *         DIR/fs/link (O_NOFOLLOW), fd 30 on the symlink DIR/fs/dlink
 *         (O_NOFOLLOW) which is then unlinked, fd 31 on DIR/fs (a
 *         directory): the flags (O_PATH, O_NOFOLLOW), the types, the
 *         symlinks' targets; fd 30 has no link.
 */
#include "testprog.h"

#include <fcntl.h>
#include <linux/kcmp.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

static char dir[4096], fsdir[4200];
static pid_t child1, child2;

static void path_of(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", fsdir, name);
}

static void place(int fd, int at)
{
	if (fd < 0 || dup2(fd, at) != at)
		tp_die("dup2 %d", at);
	if (fd != at)
		close(fd);
}

/* readlink of /proc/self/fd/FD or of any /proc link, "" when unreadable. */
static void link_of(const char *proc, char *buf, size_t len)
{
	ssize_t n = readlink(proc, buf, len - 1);

	buf[n < 0 ? 0 : n] = 0;
}

static void check_link(const char *proc, const char *name, const char *suffix)
{
	char got[4200], want[4400];

	link_of(proc, got, sizeof(got));
	snprintf(want, sizeof(want), "%s/%s%s", fsdir, name, suffix);
	if (strcmp(got, want))
		tp_fail("%s is '%s', expected '%s'", proc, got, want);
}

static void check_fd_link(int fd, const char *name, const char *suffix)
{
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	check_link(proc, name, suffix);
}

static unsigned long fd_flags(int fd)
{
	char path[64], buf[4096];
	const char *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strstr(buf, "flags:");
	return p ? strtoul(p + 6, NULL, 8) : 0;
}

static void check_no_name(const char *name)
{
	char path[4400];
	struct stat st;

	path_of(path, sizeof(path), name);
	if (!lstat(path, &st))
		tp_fail("%s exists after the restore", path);
}

/* ---- cwd */

static void setup_cwd(void)
{
	char path[4400];

	path_of(path, sizeof(path), "cwd");
	if (mkdir(path, 0751) || chmod(path, 0751) || chdir(path))
		tp_die("mkdir and chdir %s", path);
	place(open(".", O_RDONLY | O_DIRECTORY), 20);
	if (rmdir(path))
		tp_die("rmdir %s", path);
}

static void check_cwd(void)
{
	struct stat a, b;

	check_link("/proc/self/cwd", "cwd", " (deleted)");
	if (stat("/proc/self/cwd", &a) || fstat(20, &b)) {
		tp_fail("cwd or fd 20 cannot be stat'ed: %s", strerror(errno));
		return;
	}
	if (!S_ISDIR(a.st_mode) || a.st_nlink != 0 || (a.st_mode & 07777) != 0751)
		tp_fail("cwd: mode %o, %lu links; expected a directory 0751 with none",
			a.st_mode, (unsigned long)a.st_nlink);
	if (a.st_ino != b.st_ino || a.st_dev != b.st_dev)
		tp_fail("cwd and fd 20 are not the same directory");
	check_no_name("cwd");
}

/* ---- root */

static void child_wait(int rfd, int wfd)
{
	char c = 'r';

	if (write(wfd, &c, 1) != 1)
		_exit(2);
	/* until the parent closes its end */
	while (read(rfd, &c, 1) > 0)
		;
	_exit(0);
}

/* The jailed child: its file read through fd 22, not reachable by name. */
static void child_jail(int rfd, int wfd, const char *file)
{
	char c = 'r', buf[16];
	int ok;

	if (write(wfd, &c, 1) != 1)
		_exit(2);
	while (read(rfd, &c, 1) > 0)
		;
	ok = pread(22, buf, 5, 0) == 5 && !memcmp(buf, "jail!", 5) &&
	     open(file, O_RDONLY) < 0 && errno == ENOENT && access("/inside", F_OK) == 0;
	_exit(ok ? 0 : 1);
}

static int go_pipe[2];

static void setup_root(void)
{
	char root[4400], jail[4400], file[4400], inside[4500];
	int ready[2], fd;
	char c;

	path_of(root, sizeof(root), "root");
	path_of(jail, sizeof(jail), "jail");
	path_of(file, sizeof(file), "outside");
	snprintf(inside, sizeof(inside), "%s/inside", jail);
	if (mkdir(root, 0700) || mkdir(jail, 0700))
		tp_die("mkdir");
	fd = open(file, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write(fd, "jail!", 5) != 5)
		tp_die("write %s", file);
	place(fd, 22);
	fd = open(inside, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		tp_die("create %s", inside);
	close(fd);
	place(open(root, O_RDONLY | O_DIRECTORY), 21);
	if (pipe(ready) || pipe(go_pipe))
		tp_die("pipe");
	child1 = fork();
	if (child1 < 0)
		tp_die("fork");
	if (!child1) {
		close(go_pipe[1]);
		if (chroot(root) || chdir("/"))
			_exit(2);
		child_wait(go_pipe[0], ready[1]);
	}
	child2 = fork();
	if (child2 < 0)
		tp_die("fork");
	if (!child2) {
		close(go_pipe[1]);
		if (chroot(jail) || chdir("/"))
			_exit(2);
		child_jail(go_pipe[0], ready[1], file);
	}
	close(22);
	close(go_pipe[0]);
	if (read(ready[0], &c, 1) != 1 || read(ready[0], &c, 1) != 1)
		tp_die("children not ready");
	close(ready[0]);
	close(ready[1]);
	if (rmdir(root))
		tp_die("rmdir %s", root);
}

static void check_root(void)
{
	char proc[64];
	struct stat a, b;
	int st1 = -1, st2 = -1;

	snprintf(proc, sizeof(proc), "/proc/%d/root", child1);
	check_link(proc, "root", " (deleted)");
	if (stat(proc, &a) || fstat(21, &b))
		tp_fail("cannot stat the removed root: %s", strerror(errno));
	else if (a.st_ino != b.st_ino || a.st_dev != b.st_dev || a.st_nlink)
		tp_fail("the first child's root is not the removed directory held as fd 21");
	snprintf(proc, sizeof(proc), "/proc/%d/cwd", child1);
	check_link(proc, "root", " (deleted)");
	snprintf(proc, sizeof(proc), "/proc/%d/root", child2);
	check_link(proc, "jail", "");
	snprintf(proc, sizeof(proc), "/proc/%d/cwd", child2);
	check_link(proc, "jail", "");
	close(go_pipe[1]); /* end of file: the children check and exit */
	waitpid(child1, &st1, 0);
	waitpid(child2, &st2, 0);
	if (!WIFEXITED(st1) || WEXITSTATUS(st1))
		tp_fail("the child in the removed root ended with status %#x", st1);
	if (!WIFEXITED(st2) || WEXITSTATUS(st2))
		tp_fail("the jailed child lost its file or its root (status %#x)", st2);
	check_no_name("root");
}

/* ---- rmdir */

static void setup_rmdir(void)
{
	char a[4400], b[4500];

	path_of(a, sizeof(a), "a");
	snprintf(b, sizeof(b), "%s/b", a);
	if (mkdir(a, 0700) || mkdir(b, 0705))
		tp_die("mkdir %s", b);
	place(open(b, O_RDONLY | O_DIRECTORY), 23);
	if (rmdir(b) || rmdir(a))
		tp_die("rmdir %s", b);
}

static void check_rmdir(void)
{
	struct stat st;

	check_fd_link(23, "a/b", " (deleted)");
	if (fstat(23, &st))
		tp_fail("fd 23 is not open");
	else if (!S_ISDIR(st.st_mode) || st.st_nlink || (st.st_mode & 07777) != 0705)
		tp_fail("fd 23: mode %o, %lu links; expected a removed directory 0705",
			st.st_mode, (unsigned long)st.st_nlink);
	check_no_name("a");
}

/* ---- fifo */

static void setup_fifo(void)
{
	char path[4400];

	path_of(path, sizeof(path), "fifo");
	if (mkfifo(path, 0640) || chmod(path, 0640))
		tp_die("mkfifo %s", path);
	place(open(path, O_RDWR), 24);
	place(open(path, O_RDONLY | O_NONBLOCK), 25);
	place(open(path, O_WRONLY), 26);
	if (write(24, "hello", 5) != 5)
		tp_die("write fifo");
	if (unlink(path))
		tp_die("unlink %s", path);
}

static void check_fifo(void)
{
	struct stat s[3];
	char buf[16];
	ssize_t n;

	for (int i = 0; i < 3; i++) {
		check_fd_link(24 + i, "fifo", " (deleted)");
		if (fstat(24 + i, &s[i])) {
			tp_fail("fd %d is not open", 24 + i);
			return;
		}
		if (!S_ISFIFO(s[i].st_mode) || s[i].st_nlink || (s[i].st_mode & 07777) != 0640)
			tp_fail("fd %d: mode %o, %lu links; expected an unlinked FIFO 0640",
				24 + i, s[i].st_mode, (unsigned long)s[i].st_nlink);
		if (s[i].st_ino != s[0].st_ino)
			tp_fail("fd %d is not the FIFO of fd 24", 24 + i);
	}
	if ((fd_flags(24) & O_ACCMODE) != O_RDWR || (fd_flags(26) & O_ACCMODE) != O_WRONLY ||
	    (fd_flags(25) & (O_ACCMODE | O_NONBLOCK)) != (O_RDONLY | O_NONBLOCK))
		tp_fail("the FIFO descriptors lost their flags");
	n = read(25, buf, sizeof(buf));
	if (n != 5 || memcmp(buf, "hello", 5))
		tp_fail("the FIFO held %zd bytes, not the 5 queued", n);
	if (write(26, "abc", 3) != 3 || read(24, buf, 3) != 3 || memcmp(buf, "abc", 3))
		tp_fail("a write to fd 26 is not read from fd 24");
	check_no_name("fifo");
}

/* ---- dev */

static void setup_dev(void)
{
	char path[4400];

	path_of(path, sizeof(path), "null");
	if (mknod(path, S_IFCHR | 0640, makedev(1, 3)) || chmod(path, 0640))
		tp_die("mknod %s", path);
	place(open(path, O_RDWR), 27);
	if (unlink(path))
		tp_die("unlink %s", path);
}

static void check_dev(void)
{
	struct stat st;
	char c;

	check_fd_link(27, "null", " (deleted)");
	if (fstat(27, &st)) {
		tp_fail("fd 27 is not open");
		return;
	}
	if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3) || st.st_nlink ||
	    (st.st_mode & 07777) != 0640)
		tp_fail("fd 27: mode %o, device %u:%u, %lu links; expected an unlinked 1:3 0640",
			st.st_mode, major(st.st_rdev), minor(st.st_rdev),
			(unsigned long)st.st_nlink);
	if ((fd_flags(27) & O_ACCMODE) != O_RDWR)
		tp_fail("fd 27 is not read-write");
	if (write(27, "x", 1) != 1 || read(27, &c, 1) != 0)
		tp_fail("fd 27 does not behave as /dev/null");
	check_no_name("null");
}

/* ---- gonedir */

static void setup_gonedir(void)
{
	char d[4400], f[4500];
	int fd;

	path_of(d, sizeof(d), "d");
	snprintf(f, sizeof(f), "%s/file", d);
	if (mkdir(d, 0700))
		tp_die("mkdir %s", d);
	fd = open(f, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write(fd, "abc", 3) != 3 || lseek(fd, 1, SEEK_SET) != 1)
		tp_die("write %s", f);
	place(fd, 32);
	if (unlink(f) || rmdir(d))
		tp_die("remove %s", f);
}

static void check_gonedir(void)
{
	char buf[4];

	check_fd_link(32, "d/file", " (deleted)");
	if (lseek(32, 0, SEEK_CUR) != 1)
		tp_fail("fd 32 lost its offset");
	if (pread(32, buf, 4, 0) != 3 || memcmp(buf, "abc", 3))
		tp_fail("fd 32 lost its data");
	check_no_name("d");
}

/* ---- tmpfile */

static char tmp_name[4200], tmp_name2[4200];

static void setup_tmpfile(void)
{
	char self[64], lnk[4400];
	int fd;

	fd = open(fsdir, O_TMPFILE | O_RDWR, 0640);
	if (fd < 0 || write(fd, "tmp33", 5) != 5)
		tp_die("O_TMPFILE in %s", fsdir);
	place(fd, 33);
	link_of("/proc/self/fd/33", tmp_name, sizeof(tmp_name));
	fd = open(fsdir, O_TMPFILE | O_RDWR, 0600);
	if (fd < 0 || write(fd, "tmp34", 5) != 5)
		tp_die("O_TMPFILE in %s", fsdir);
	place(fd, 34);
	link_of("/proc/self/fd/34", tmp_name2, sizeof(tmp_name2));
	snprintf(self, sizeof(self), "/proc/self/fd/34");
	path_of(lnk, sizeof(lnk), "linked");
	if (linkat(AT_FDCWD, self, AT_FDCWD, lnk, AT_SYMLINK_FOLLOW))
		tp_die("linkat %s", lnk);
}

static void check_tmpfile(void)
{
	char got[4200], buf[8];
	struct stat st;

	link_of("/proc/self/fd/33", got, sizeof(got));
	if (strcmp(got, tmp_name))
		tp_fail("fd 33 is '%s', expected '%s'", got, tmp_name);
	if (pread(33, buf, 8, 0) != 5 || memcmp(buf, "tmp33", 5))
		tp_fail("fd 33 lost its data");
	link_of("/proc/self/fd/34", got, sizeof(got));
	if (strcmp(got, tmp_name2))
		tp_fail("fd 34 is '%s', expected '%s'", got, tmp_name2);
	if (pread(34, buf, 8, 0) != 5 || memcmp(buf, "tmp34", 5))
		tp_fail("fd 34 lost its data");
	if (fstat(33, &st) || st.st_nlink != 0 || fstat(34, &st) || st.st_nlink != 1)
		tp_fail("fd 33 must have no link and fd 34 one");
}

/* ---- proc */

static void setup_proc(void)
{
	char path[64], buf[16];

	if (pipe(go_pipe))
		tp_die("pipe");
	child1 = fork();
	if (child1 < 0)
		tp_die("fork");
	if (!child1) {
		close(go_pipe[1]);
		while (read(go_pipe[0], buf, 1) > 0)
			;
		_exit(0);
	}
	close(go_pipe[0]);
	snprintf(path, sizeof(path), "/proc/%d/stat", child1);
	place(open(path, O_RDONLY), 35);
	if (read(35, buf, 10) != 10)
		tp_die("read %s", path);
	snprintf(path, sizeof(path), "/proc/%d", child1);
	place(open(path, O_RDONLY | O_DIRECTORY), 36);
	place(open("/proc/self/status", O_RDONLY), 37);
	/* a second child shares fd 35 */
	child2 = fork();
	if (child2 < 0)
		tp_die("fork");
	if (!child2) {
		for (;;)
			pause();
	}
}

static void check_proc(void)
{
	char path[64], want[64], buf[4096];
	ssize_t n;
	int st;

	snprintf(path, sizeof(path), "/proc/self/fd/35");
	snprintf(want, sizeof(want), "/proc/%d/stat", child1);
	link_of(path, buf, sizeof(buf));
	if (strcmp(buf, want))
		tp_fail("fd 35 is '%s', expected '%s'", buf, want);
	if (lseek(35, 0, SEEK_CUR) != 10)
		tp_fail("fd 35 is at offset %lld, not 10", (long long)lseek(35, 0, SEEK_CUR));
	n = pread(35, buf, sizeof(buf) - 1, 0);
	buf[n < 0 ? 0 : n] = 0;
	snprintf(want, sizeof(want), "%d (", child1);
	if (strncmp(buf, want, strlen(want)))
		tp_fail("fd 35 reads '%.20s', not the stat of %d", buf, child1);
	if (syscall(SYS_kcmp, getpid(), child2, KCMP_FILE, 35, 35) != 0)
		tp_fail("fd 35 of the parent and of the second child are not one description");
	snprintf(want, sizeof(want), "/proc/%d", child1);
	link_of("/proc/self/fd/36", buf, sizeof(buf));
	if (strcmp(buf, want) || faccessat(36, "stat", R_OK, 0))
		tp_fail("fd 36 is '%s', not the directory %s", buf, want);
	snprintf(want, sizeof(want), "/proc/%d/status", getpid());
	link_of("/proc/self/fd/37", buf, sizeof(buf));
	if (strcmp(buf, want))
		tp_fail("fd 37 is '%s', expected '%s'", buf, want);
	n = pread(37, buf, sizeof(buf) - 1, 0);
	buf[n < 0 ? 0 : n] = 0;
	snprintf(want, sizeof(want), "\nPid:\t%d\n", getpid());
	if (!strstr(buf, want))
		tp_fail("fd 37 is not the status of this process");
	kill(child2, SIGKILL);
	waitpid(child2, &st, 0);
	close(go_pipe[1]);
	waitpid(child1, &st, 0);
}

/* ---- ns */

static void setup_ns(void)
{
	place(open("/proc/self/ns/net", O_RDONLY), 38);
	place(open("/proc/self/ns/mnt", O_RDONLY), 39);
}

static void check_ns_fd(int fd, const char *type)
{
	char path[64], got[256], want[256];
	struct stat a, b;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	link_of(path, got, sizeof(got));
	snprintf(path, sizeof(path), "/proc/self/ns/%s", type);
	link_of(path, want, sizeof(want));
	if (strcmp(got, want) || fstat(fd, &a) || stat(path, &b) || a.st_ino != b.st_ino)
		tp_fail("fd %d is '%s', not this process's %s namespace '%s'", fd, got, type,
			want);
}

static void check_ns(void)
{
	check_ns_fd(38, "net");
	check_ns_fd(39, "mnt");
}

/* ---- foreignns */

static struct stat foreign;

static void setup_foreignns(void)
{
	char path[64];
	int ready[2], st;
	pid_t pid;
	char c;

	if (pipe(ready))
		tp_die("pipe");
	pid = fork();
	if (pid < 0)
		tp_die("fork");
	if (!pid) {
		close(ready[0]);
		if (unshare(CLONE_NEWNET) || write(ready[1], "r", 1) != 1)
			_exit(2);
		pause();
		_exit(0);
	}
	close(ready[1]);
	if (read(ready[0], &c, 1) != 1)
		tp_die("the child could not make a network namespace");
	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	place(open(path, O_RDONLY), 41);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	if (fstat(41, &foreign))
		tp_die("fstat");
}

static void check_foreignns(void)
{
	struct stat st, own;

	if (fstat(41, &st) || st.st_ino != foreign.st_ino)
		tp_fail("fd 41 is not the namespace it was");
	if (stat("/proc/self/ns/net", &own) || own.st_ino == st.st_ino)
		tp_fail("fd 41 is this process's own network namespace");
}

/* ---- deadproc */

static void setup_deadproc(void)
{
	char path[64];
	pid_t pid = fork();

	if (pid < 0)
		tp_die("fork");
	if (!pid) {
		pause();
		_exit(0);
	}
	snprintf(path, sizeof(path), "/proc/%d", pid);
	if (chdir(path))
		tp_die("chdir %s", path);
	place(open(path, O_RDONLY | O_DIRECTORY), 40);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void check_dead_link(const char *proc)
{
	char got[256];
	size_t n;
	int pid, end = 0;

	link_of(proc, got, sizeof(got));
	n = strlen(got);
	if (sscanf(got, "/proc/%d%n", &pid, &end) != 1 || strcmp(got + end, " (deleted)") ||
	    n < 10)
		tp_fail("%s is '%s', not the directory of a process gone", proc, got);
}

static void check_deadproc(void)
{
	char buf[4096];
	struct stat st;

	if (getcwd(buf, sizeof(buf)) || errno != ENOENT)
		tp_fail("getcwd did not fail with ENOENT (%s)", strerror(errno));
	check_dead_link("/proc/self/cwd");
	check_dead_link("/proc/self/fd/40");
	if (fstat(40, &st) || !S_ISDIR(st.st_mode))
		tp_fail("fd 40 is not a directory");
}

/* ---- console */

static void setup_console(void)
{
	char con[4400], vt[4400];

	path_of(con, sizeof(con), "console");
	path_of(vt, sizeof(vt), "vt");
	if (mknod(con, S_IFCHR | 0600, makedev(5, 1)) || mknod(vt, S_IFCHR | 0600, makedev(4, 5)))
		tp_die("mknod");
	place(open(con, O_RDONLY), 42);
	place(open(vt, O_RDONLY), 43);
}

static unsigned long tty_nr(void)
{
	char buf[1024], *p;
	unsigned long nr = 0;
	FILE *f = fopen("/proc/self/stat", "re");

	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')))
		sscanf(p + 2, "%*c %*d %*d %*d %lu", &nr);
	fclose(f);
	return nr;
}

static void check_console(void)
{
	struct stat a, b;

	check_fd_link(42, "console", "");
	check_fd_link(43, "vt", "");
	if (fstat(42, &a) || fstat(43, &b) || a.st_rdev != makedev(5, 1) ||
	    b.st_rdev != makedev(4, 5))
		tp_fail("fds 42 and 43 are not the console and the vt 4:5");
	if (tty_nr() != makedev(4, 5))
		tp_fail("the controlling terminal is %#lx, not the vt 4:5", tty_nr());
}

/* ---- opath */

static void setup_opath(void)
{
	char file[4400], lnk[4400], dlnk[4400];
	int fd;

	path_of(file, sizeof(file), "file");
	path_of(lnk, sizeof(lnk), "link");
	path_of(dlnk, sizeof(dlnk), "dlink");
	fd = open(file, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		tp_die("create %s", file);
	close(fd);
	if (symlink("target-text", lnk) || symlink("/gone/elsewhere", dlnk))
		tp_die("symlink");
	place(open(file, O_PATH), 28);
	place(open(lnk, O_PATH | O_NOFOLLOW), 29);
	place(open(dlnk, O_PATH | O_NOFOLLOW), 30);
	place(open(fsdir, O_PATH | O_DIRECTORY), 31);
	if (unlink(dlnk))
		tp_die("unlink %s", dlnk);
}

static void check_symlink_fd(int fd, const char *target, nlink_t nlink)
{
	char buf[4096];
	struct stat st;
	ssize_t n;

	if (fstat(fd, &st) || !S_ISLNK(st.st_mode) || st.st_nlink != nlink) {
		tp_fail("fd %d is not a symlink with %lu link(s)", fd, (unsigned long)nlink);
		return;
	}
	n = readlinkat(fd, "", buf, sizeof(buf) - 1);
	buf[n < 0 ? 0 : n] = 0;
	if (strcmp(buf, target))
		tp_fail("fd %d points to '%s', expected '%s'", fd, buf, target);
	if ((fd_flags(fd) & (O_PATH | O_NOFOLLOW)) != (O_PATH | O_NOFOLLOW))
		tp_fail("fd %d lost O_PATH or O_NOFOLLOW (flags %lo)", fd, fd_flags(fd));
}

static void check_opath(void)
{
	struct stat st;

	check_fd_link(28, "file", "");
	if (fstat(28, &st) || !S_ISREG(st.st_mode))
		tp_fail("fd 28 is not the regular file");
	if (!(fd_flags(28) & O_PATH))
		tp_fail("fd 28 lost O_PATH (flags %lo)", fd_flags(28));
	check_fd_link(29, "link", "");
	check_symlink_fd(29, "target-text", 1);
	check_fd_link(30, "dlink", " (deleted)");
	check_symlink_fd(30, "/gone/elsewhere", 0);
	if (fstat(31, &st) || !S_ISDIR(st.st_mode) || !(fd_flags(31) & O_PATH))
		tp_fail("fd 31 is not an O_PATH directory");
	check_no_name("dlink");
}

int main(int argc, char **argv)
{
	const char *mode;

	tp_init(argc, argv, 3, "GOFILE DIR cwd|root|rmdir|fifo|dev|gonedir|tmpfile|proc|ns|deadproc|foreignns|console|opath");
	if (!realpath(argv[2], dir))
		tp_die("realpath %s", argv[2]);
	mode = argv[3];
	snprintf(fsdir, sizeof(fsdir), "%s/fs", dir);
	if (mkdir(fsdir, 0700) && errno != EEXIST)
		tp_die("mkdir %s", fsdir);
	if (!strcmp(mode, "cwd"))
		setup_cwd();
	else if (!strcmp(mode, "root"))
		setup_root();
	else if (!strcmp(mode, "rmdir"))
		setup_rmdir();
	else if (!strcmp(mode, "fifo"))
		setup_fifo();
	else if (!strcmp(mode, "dev"))
		setup_dev();
	else if (!strcmp(mode, "gonedir"))
		setup_gonedir();
	else if (!strcmp(mode, "tmpfile"))
		setup_tmpfile();
	else if (!strcmp(mode, "proc"))
		setup_proc();
	else if (!strcmp(mode, "ns"))
		setup_ns();
	else if (!strcmp(mode, "deadproc"))
		setup_deadproc();
	else if (!strcmp(mode, "foreignns"))
		setup_foreignns();
	else if (!strcmp(mode, "console"))
		setup_console();
	else if (!strcmp(mode, "opath"))
		setup_opath();
	else
		tp_die("unknown mode %s", mode);
	tp_ready();
	tp_wait_go();
	/* each sabotage breaks what its mode checks */
	if (tp_sabotaged("cwd") && chdir("/"))
		tp_fail("sabotage: chdir");
	if (tp_sabotaged("root") && child1 > 0)
		kill(child2, SIGKILL);
	if (tp_sabotaged("rmdir"))
		place(open("/", O_RDONLY | O_DIRECTORY), 23);
	if (tp_sabotaged("fifo")) {
		char buf[16];

		if (read(25, buf, sizeof(buf)) < 0)
			tp_fail("sabotage: read");
	}
	if (tp_sabotaged("dev"))
		place(open("/dev/zero", O_RDWR), 27);
	if (tp_sabotaged("gonedir") && pwrite(32, "x", 1, 0) != 1)
		tp_fail("sabotage: write");
	if (tp_sabotaged("tmpfile") && pwrite(33, "x", 1, 0) != 1)
		tp_fail("sabotage: write");
	if (tp_sabotaged("proc"))
		place(open("/proc/self/stat", O_RDONLY), 35);
	if (tp_sabotaged("ns"))
		place(open("/proc/self/ns/uts", O_RDONLY), 38);
	if (tp_sabotaged("foreignns"))
		place(open("/proc/self/ns/net", O_RDONLY), 41);
	if (tp_sabotaged("deadproc") && chdir("/"))
		tp_fail("sabotage: chdir");
	if (tp_sabotaged("console"))
		place(open("/dev/null", O_RDONLY), 43);
	if (tp_sabotaged("opath"))
		place(open("/", O_RDONLY | O_DIRECTORY), 28);
	if (!strcmp(mode, "cwd"))
		check_cwd();
	else if (!strcmp(mode, "root"))
		check_root();
	else if (!strcmp(mode, "rmdir"))
		check_rmdir();
	else if (!strcmp(mode, "fifo"))
		check_fifo();
	else if (!strcmp(mode, "dev"))
		check_dev();
	else if (!strcmp(mode, "gonedir"))
		check_gonedir();
	else if (!strcmp(mode, "tmpfile"))
		check_tmpfile();
	else if (!strcmp(mode, "proc"))
		check_proc();
	else if (!strcmp(mode, "ns"))
		check_ns();
	else if (!strcmp(mode, "deadproc"))
		check_deadproc();
	else if (!strcmp(mode, "foreignns"))
		check_foreignns();
	else if (!strcmp(mode, "console"))
		check_console();
	else
		check_opath();
	return tp_finish();
}
