/* files GOFILE DIR
 *
 * Open file descriptions and descriptor numbers:
 *  - fd 7:  DIR/files-data.dat, O_RDONLY, positioned at offset 1234 (the next
 *           read must return the bytes at 1234), close-on-exec clear;
 *  - fd 42: DIR/files-append.dat, O_WRONLY|O_APPEND, close-on-exec set (the
 *           position stays at the end; a write after lseek(0) still appends);
 *  - fd 10: /dev/null, O_RDWR;
 *  - the set of open descriptors is the same as at READY (nothing leaked or
 *    lost), and fds 1 and 2 still name the same files.
 */
#include "testprog.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#define DATA_FD 7
#define APPEND_FD 42
#define NULL_FD 10
#define DATA_LEN 8192
#define DATA_POS 1234

static char data_path[4096], append_path[4096];
static off_t append_size;
static char fd1_path[4096], fd2_path[4096];

static unsigned char pat(long off) { return (unsigned char)(off * 13 + (off >> 8) + 0x21); }

/* Bitmap of open fds below 1024, not counting the directory stream's own. */
static int list_fds(unsigned char set[1024])
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	memset(set, 0, 1024);
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		int fd = atoi(e->d_name);
		if (fd == dirfd(d) || fd < 0 || fd >= 1024)
			continue;
		set[fd] = 1;
		n++;
	}
	closedir(d);
	return n;
}

static void fd_path(int fd, char *buf, size_t len)
{
	char l[64];
	ssize_t n;

	snprintf(l, sizeof(l), "/proc/self/fd/%d", fd);
	n = readlink(l, buf, len - 1);
	buf[n < 0 ? 0 : n] = 0;
}

static void check_path(int fd, const char *want)
{
	char p[4096];

	fd_path(fd, p, sizeof(p));
	if (strcmp(p, want))
		tp_fail("fd %d is '%s', expected '%s'", fd, p, want);
}

static void check_flags(int fd, int fdflags, int flmask, int flags)
{
	int f = fcntl(fd, F_GETFD);
	int fl = fcntl(fd, F_GETFL);

	if (f < 0 || fl < 0) {
		tp_fail("fd %d is not open (%s)", fd, strerror(errno));
		return;
	}
	if ((f & FD_CLOEXEC) != fdflags)
		tp_fail("fd %d: FD_CLOEXEC is %s, expected %s", fd, f & FD_CLOEXEC ? "set" : "clear",
			fdflags ? "set" : "clear");
	if ((fl & flmask) != flags)
		tp_fail("fd %d: F_GETFL %#o, expected %#o under mask %#o", fd, fl & flmask, flags, flmask);
}

int main(int argc, char **argv)
{
	unsigned char fds_ready[1024], fds_now[1024];
	unsigned char buf[DATA_LEN];
	int fd;

	tp_init(argc, argv, 2, "GOFILE DIR");
	snprintf(data_path, sizeof(data_path), "%s/files-data.dat", argv[2]);
	snprintf(append_path, sizeof(append_path), "%s/files-append.dat", argv[2]);

	for (int i = 0; i < DATA_LEN; i++)
		buf[i] = pat(i);
	fd = open(data_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, buf, DATA_LEN) != DATA_LEN || close(fd))
		tp_die("create %s", data_path);
	fd = open(data_path, O_RDONLY);
	if (fd < 0 || dup2(fd, DATA_FD) != DATA_FD || close(fd))
		tp_die("open %s as fd %d", data_path, DATA_FD);
	if (lseek(DATA_FD, DATA_POS, SEEK_SET) != DATA_POS)
		tp_die("lseek");

	fd = open(append_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, "first line\n", 11) != 11 || close(fd))
		tp_die("create %s", append_path);
	fd = open(append_path, O_WRONLY | O_APPEND);
	if (fd < 0 || dup3(fd, APPEND_FD, O_CLOEXEC) != APPEND_FD || close(fd))
		tp_die("open %s as fd %d", append_path, APPEND_FD);
	if (write(APPEND_FD, "second line\n", 12) != 12)
		tp_die("write %s", append_path);
	append_size = lseek(APPEND_FD, 0, SEEK_CUR);

	fd = open("/dev/null", O_RDWR);
	if (fd < 0 || dup2(fd, NULL_FD) != NULL_FD || close(fd))
		tp_die("open /dev/null as fd %d", NULL_FD);

	fd_path(1, fd1_path, sizeof(fd1_path));
	fd_path(2, fd2_path, sizeof(fd2_path));
	if (list_fds(fds_ready) < 0)
		tp_die("list /proc/self/fd");

	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("offset"))
		lseek(DATA_FD, 0, SEEK_SET);
	if (tp_sabotaged("append"))
		fcntl(APPEND_FD, F_SETFL, 0);
	if (tp_sabotaged("cloexec"))
		fcntl(APPEND_FD, F_SETFD, 0);
	if (tp_sabotaged("fdnum"))
		dup2(DATA_FD, DATA_FD + 1), close(DATA_FD);
	if (tp_sabotaged("devnull"))
		dup2(open(data_path, O_RDWR), NULL_FD);
	if (tp_sabotaged("leak"))
		(void)open("/", O_RDONLY);

	/* fd 7: read-only data file at offset 1234. */
	check_path(DATA_FD, data_path);
	check_flags(DATA_FD, 0, O_ACCMODE | O_APPEND, O_RDONLY);
	{
		off_t pos = lseek(DATA_FD, 0, SEEK_CUR);
		unsigned char b[100];
		if (pos != DATA_POS)
			tp_fail("fd %d: offset %lld, expected %d", DATA_FD, (long long)pos, DATA_POS);
		ssize_t n = read(DATA_FD, b, sizeof(b));
		if (n != (ssize_t)sizeof(b)) {
			tp_fail("fd %d: read returned %zd", DATA_FD, n);
		} else {
			for (int i = 0; i < (int)sizeof(b); i++)
				if (b[i] != pat(pos + i)) {
					tp_fail("fd %d: read at offset %lld gave wrong data (byte %d "
						"is %#x, file has %#x at offset %d)",
						DATA_FD, (long long)pos, i, b[i], pat(DATA_POS + i),
						DATA_POS + i);
					break;
				}
			if (lseek(DATA_FD, 0, SEEK_CUR) != pos + (off_t)sizeof(b))
				tp_fail("fd %d: offset did not advance by the read", DATA_FD);
		}
	}

	/* fd 42: append-only, close-on-exec. */
	check_path(APPEND_FD, append_path);
	check_flags(APPEND_FD, FD_CLOEXEC, O_ACCMODE | O_APPEND, O_WRONLY | O_APPEND);
	{
		off_t pos = lseek(APPEND_FD, 0, SEEK_CUR);
		struct stat st;
		char tail[64] = "";
		static const char want[] = "first line\nsecond line\nthird line\n";
		if (pos != append_size)
			tp_fail("fd %d: offset %lld, expected %lld", APPEND_FD, (long long)pos,
				(long long)append_size);
		lseek(APPEND_FD, 0, SEEK_SET);
		if (write(APPEND_FD, "third line\n", 11) != 11)
			tp_fail("fd %d: write: %s", APPEND_FD, strerror(errno));
		fd = open(append_path, O_RDONLY);
		if (fd < 0 || fstat(fd, &st) || pread(fd, tail, sizeof(tail) - 1, 0) < 0 ||
		    strcmp(tail, want)) {
			for (char *q = tail; *q; q++)
				if (*q == '\n')
					*q = '|';
			tp_fail("append file holds '%s' (size %lld), expected 'first line|second "
				"line|third line|': the write did not go to the end",
				tail, fd < 0 ? -1LL : (long long)st.st_size);
		}
		if (fd >= 0)
			close(fd);
	}

	/* fd 10: /dev/null. */
	{
		struct stat st;
		char c;
		check_path(NULL_FD, "/dev/null");
		check_flags(NULL_FD, 0, O_ACCMODE, O_RDWR);
		if (fstat(NULL_FD, &st) || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))
			tp_fail("fd %d is not the /dev/null character device", NULL_FD);
		if (write(NULL_FD, "x", 1) != 1 || read(NULL_FD, &c, 1) != 0)
			tp_fail("fd %d does not behave as /dev/null", NULL_FD);
	}

	/* stdout and stderr name the same files as before. */
	{
		char p[4096];
		fd_path(1, p, sizeof(p));
		if (fd1_path[0] == '/' && strcmp(p, fd1_path))
			tp_fail("fd 1 is '%s', was '%s'", p, fd1_path);
		fd_path(2, p, sizeof(p));
		if (fd2_path[0] == '/' && strcmp(p, fd2_path))
			tp_fail("fd 2 is '%s', was '%s'", p, fd2_path);
	}

	/* Same set of descriptors. */
	if (list_fds(fds_now) < 0)
		tp_fail("cannot list /proc/self/fd");
	else
		for (int i = 0; i < 1024; i++)
			if (fds_now[i] != fds_ready[i])
				tp_fail("fd %d is %s", i, fds_now[i] ? "open but was not" : "closed but was open");

	return tp_finish();
}
