/* sharedfd GOFILE DIR
 *
 * Open file descriptions shared between descriptors and processes, and the
 * status flags a description carries:
 *  - fd 4 and its dup fd 5: one description of DIR/shared.dat at offset 100,
 *    inherited by a child; after GO the parent reads 10 bytes through fd 4,
 *    and the child must then see offset 110 on its fds 4 and 5 (one offset
 *    for all four descriptors, as before the dump);
 *  - fd 6: a second, separate description of the same file at offset 3000,
 *    which must not move;
 *  - fd 7: O_RDONLY|O_DIRECT, fd 8: /dev/null with O_NONBLOCK: F_GETFL keeps
 *    them.
 * The child reports through its exit status, the parent prints the verdict.
 */
#include "testprog.h"

#include <fcntl.h>
#include <sys/wait.h>

static char path[4096], child_go[4200];

static int check_fds(const char *who, off_t want)
{
	int bad = 0;

	for (int fd = 4; fd <= 5; fd++)
		if (lseek(fd, 0, SEEK_CUR) != want) {
			tp_fail("%s: fd %d is at %lld, not %lld", who, fd,
				(long long)lseek(fd, 0, SEEK_CUR), (long long)want);
			bad = 1;
		}
	if (lseek(6, 0, SEEK_CUR) != 3000) {
		tp_fail("%s: fd 6 is at %lld, not 3000", who, (long long)lseek(6, 0, SEEK_CUR));
		bad = 1;
	}
	if (!(fcntl(7, F_GETFL) & O_DIRECT)) {
		tp_fail("%s: fd 7 lost O_DIRECT", who);
		bad = 1;
	}
	if (!(fcntl(8, F_GETFL) & O_NONBLOCK)) {
		tp_fail("%s: fd 8 lost O_NONBLOCK", who);
		bad = 1;
	}
	return bad;
}

int main(int argc, char **argv)
{
	static char buf[8192] __attribute__((aligned(4096)));
	int fd, status;
	pid_t child;

	tp_init(argc, argv, 1, "DIR");
	snprintf(path, sizeof(path), "%s/shared.dat", argv[2]);
	snprintf(child_go, sizeof(child_go), "%s.child", tp_gofile);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(i * 7);
	if (fd < 0 || write(fd, buf, sizeof(buf)) != sizeof(buf) || dup2(fd, 4) != 4 || close(fd))
		tp_die("cannot create %s", path);
	if (dup2(4, 5) != 5 || lseek(4, 100, SEEK_SET) != 100)
		tp_die("dup");
	fd = open(path, O_RDONLY);
	if (fd < 0 || dup2(fd, 6) != 6 || close(fd) || lseek(6, 3000, SEEK_SET) != 3000)
		tp_die("second description");
	fd = open(path, O_RDONLY | O_DIRECT);
	if (fd < 0 || dup2(fd, 7) != 7 || close(fd))
		tp_die("O_DIRECT");
	fd = open("/dev/null", O_RDWR | O_NONBLOCK);
	if (fd < 0 || dup2(fd, 8) != 8 || close(fd))
		tp_die("/dev/null");

	child = fork();
	if (child == 0) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		while (access(child_go, F_OK))
			nanosleep(&ts, NULL);
		_exit(check_fds("child", 110) ? 1 : 0);
	}
	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("offset"))
		lseek(6, 1, SEEK_SET);
	if (read(4, buf, 10) != 10 || buf[0] != (char)(100 * 7))
		tp_fail("parent: fd 4 does not read the bytes at offset 100");
	check_fds("parent", 110);
	fd = open(child_go, O_WRONLY | O_CREAT, 0644);
	if (fd >= 0)
		close(fd);
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status))
		tp_fail("the child found its descriptors changed (status %#x)", status);
	return tp_finish();
}
