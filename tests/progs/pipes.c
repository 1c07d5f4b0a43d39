/* pipes GOFILE DIR
 *
 * Pipes and a FIFO with data in them:
 *  - pipe A, parent -> child: the parent holds only the write end, the
 *    child only the read end; 5000 bytes are queued, unread. After GO the
 *    child reads exactly those bytes, then the 3000 the parent writes
 *    after GO, then end of file once the parent closes its end (no one
 *    else may hold a write end);
 *  - pipe B, child -> parent: 3000 bytes the child wrote, unread;
 *  - pipe C, both ends in the parent, enlarged to 256 KiB with
 *    F_SETPIPE_SZ, holding 100000 bytes (more than a default pipe holds),
 *    its read end O_NONBLOCK: the size and flags are kept, the data reads
 *    back in order, then nothing more (EAGAIN), then new data flows;
 *  - a FIFO DIR/pipes.fifo opened for reading (O_NONBLOCK) and for
 *    writing, holding 2000 bytes: same checks;
 *  - the descriptor numbers and the access modes of every end.
 * The child reports through its exit status, and its failures on stdout.
 */
#include "testprog.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define A_OLD  5000
#define A_NEW  3000
#define B_OLD  3000
#define C_SIZE (256 * 1024)
#define C_OLD  100000
#define F_OLD  2000

static unsigned char byte(unsigned long i, unsigned long seed)
{
	return (unsigned char)tp_pattern(i, seed);
}

static void fill(unsigned char *buf, size_t n, unsigned long from, unsigned long seed)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = byte(from + i, seed);
}

/* Reads exactly n bytes (blocking, or polling a non-blocking fd, at most
 * 5 s) and compares them with the pattern; 0 when they match. */
static int expect(int fd, size_t n, unsigned long from, unsigned long seed, const char *what)
{
	unsigned char buf[4096], want[4096];
	size_t done = 0;

	while (done < n) {
		struct pollfd p = {fd, POLLIN, 0};
		size_t chunk = n - done < sizeof(buf) ? n - done : sizeof(buf);
		ssize_t r;

		if (poll(&p, 1, 5000) != 1) {
			tp_fail("%s: only %zu of %zu bytes arrived", what, done, n);
			return -1;
		}
		r = read(fd, buf, chunk);
		if (r <= 0) {
			tp_fail("%s: read after %zu of %zu bytes: %s", what, done, n,
				r ? strerror(errno) : "end of file");
			return -1;
		}
		fill(want, r, from + done, seed);
		if (memcmp(buf, want, r)) {
			tp_fail("%s: wrong data at byte %zu", what, done);
			return -1;
		}
		done += r;
	}
	return 0;
}

static int write_pattern(int fd, size_t n, unsigned long from, unsigned long seed)
{
	unsigned char buf[4096];

	for (size_t done = 0; done < n;) {
		size_t chunk = n - done < sizeof(buf) ? n - done : sizeof(buf);
		ssize_t w;

		fill(buf, chunk, from + done, seed);
		w = write(fd, buf, chunk);
		if (w <= 0)
			return -1;
		done += w;
	}
	return 0;
}

static void check_mode(int fd, int accmode, int nonblock, const char *what)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0) {
		tp_fail("%s: fd %d is not open", what, fd);
		return;
	}
	if ((fl & O_ACCMODE) != accmode)
		tp_fail("%s: fd %d has access mode %d, expected %d", what, fd, fl & O_ACCMODE,
			accmode);
	if (!!(fl & O_NONBLOCK) != nonblock)
		tp_fail("%s: fd %d O_NONBLOCK is %s", what, fd, fl & O_NONBLOCK ? "set" : "clear");
}

static void expect_empty(int fd, const char *what)
{
	char c;
	ssize_t r = read(fd, &c, 1);

	if (r != -1 || errno != EAGAIN)
		tp_fail("%s: more data than was queued (read returned %zd)", what, r);
}

/* Pipe ends at fixed numbers, so the check sees they were kept. */
enum { A_RD = 10, A_WR = 11, B_RD = 12, B_WR = 13, C_RD = 14, C_WR = 15, F_RD = 16, F_WR = 17 };

static void place(int fd, int at)
{
	if (dup2(fd, at) != at)
		tp_die("dup2 %d", at);
	close(fd);
}

static int child_main(void)
{
	/* after GO: A's old bytes, the parent's new ones, then end of file */
	tp_wait_go();
	check_mode(A_RD, O_RDONLY, 0, "child: pipe A read end");
	if (!expect(A_RD, A_OLD, 0, 1, "child: pipe A queued data") &&
	    !expect(A_RD, A_NEW, A_OLD, 1, "child: pipe A data written after the restore")) {
		struct pollfd p = {A_RD, POLLIN, 0};
		char c;

		if (poll(&p, 1, 5000) != 1)
			tp_fail(
			    "child: pipe A: no end of file once the parent closed its write end "
			    "(another write end is open)");
		else if (read(A_RD, &c, 1) != 0)
			tp_fail("child: pipe A: data after the expected bytes");
	}
	if (tp_nfail) {
		printf("FAIL: %s\n", tp_fails);
		fflush(stdout);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int a[2], b[2], c[2], rd, wr, status;
	char fifo[4096];
	pid_t child;

	tp_init(argc, argv, 2, "GOFILE DIR");
	snprintf(fifo, sizeof(fifo), "%s/pipes.fifo", argv[2]);
	unlink(fifo);
	if (mkfifo(fifo, 0600))
		tp_die("mkfifo %s", fifo);
	if (pipe(a) || pipe(b) || pipe(c))
		tp_die("pipe");
	place(a[0], A_RD);
	place(a[1], A_WR);
	place(b[0], B_RD);
	place(b[1], B_WR);
	place(c[0], C_RD);
	place(c[1], C_WR);

	child = fork();
	if (child < 0)
		tp_die("fork");
	if (child == 0) {
		close(A_WR);
		close(B_RD);
		close(C_RD);
		close(C_WR);
		if (write_pattern(B_WR, B_OLD, 0, 2))
			_exit(2);
		return child_main();
	}
	close(A_RD);
	close(B_WR);
	if (write_pattern(A_WR, A_OLD, 0, 1))
		tp_die("write to pipe A");
	if (fcntl(C_WR, F_SETPIPE_SZ, C_SIZE) != C_SIZE)
		tp_die("F_SETPIPE_SZ %d", C_SIZE);
	if (fcntl(C_RD, F_SETFL, O_NONBLOCK))
		tp_die("O_NONBLOCK");
	if (write_pattern(C_WR, C_OLD, 0, 3))
		tp_die("write to pipe C");
	rd = open(fifo, O_RDONLY | O_NONBLOCK);
	wr = open(fifo, O_WRONLY);
	if (rd < 0 || wr < 0)
		tp_die("open %s", fifo);
	place(rd, F_RD);
	place(wr, F_WR);
	if (write_pattern(F_WR, F_OLD, 0, 4))
		tp_die("write to the FIFO");
	/* the child's bytes must be in pipe B before the dump */
	for (int i = 0, n = 0; n < B_OLD; i++) {
		if (i > 500 || ioctl(B_RD, FIONREAD, &n))
			tp_die("the child did not fill pipe B");
		usleep(10000);
	}
	tp_ready();
	tp_wait_go();

	check_mode(A_WR, O_WRONLY, 0, "pipe A write end");
	check_mode(B_RD, O_RDONLY, 0, "pipe B read end");
	check_mode(C_RD, O_RDONLY, 1, "pipe C read end");
	check_mode(C_WR, O_WRONLY, 0, "pipe C write end");
	check_mode(F_RD, O_RDONLY, 1, "FIFO read end");
	check_mode(F_WR, O_WRONLY, 0, "FIFO write end");
	if (tp_sabotaged("pipes")) {
		char junk;

		if (read(C_RD, &junk, 1) != 1)
			tp_fail("sabotage: cannot read from pipe C");
	}

	/* A: new data flows to the child, then end of file */
	if (write_pattern(A_WR, A_NEW, A_OLD, 1))
		tp_fail("pipe A: cannot write after the restore: %s", strerror(errno));
	close(A_WR);

	expect(B_RD, B_OLD, 0, 2, "pipe B queued data");

	if (fcntl(C_WR, F_GETPIPE_SZ) != C_SIZE)
		tp_fail("pipe C: size %d, expected %d", fcntl(C_WR, F_GETPIPE_SZ), C_SIZE);
	if (!expect(C_RD, C_OLD, 0, 3, "pipe C queued data")) {
		expect_empty(C_RD, "pipe C");
		if (write_pattern(C_WR, 1000, C_OLD, 3))
			tp_fail("pipe C: cannot write after the restore");
		else
			expect(C_RD, 1000, C_OLD, 3, "pipe C data written after the restore");
	}

	if (!expect(F_RD, F_OLD, 0, 4, "FIFO queued data")) {
		expect_empty(F_RD, "FIFO");
		if (write_pattern(F_WR, 1000, F_OLD, 4))
			tp_fail("FIFO: cannot write after the restore");
		else
			expect(F_RD, 1000, F_OLD, 4, "FIFO data written after the restore");
	}

	if (waitpid(child, &status, 0) != child)
		tp_fail("cannot wait for the child: %s", strerror(errno));
	else if (!WIFEXITED(status) || WEXITSTATUS(status))
		tp_fail("the child failed (status %#x)", status);
	unlink(fifo);
	return tp_finish();
}
