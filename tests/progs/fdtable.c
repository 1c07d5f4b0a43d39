/* fdtable GOFILE [siblings]
 *
 * One descriptor table shared by processes (clone with CLONE_FILES and no
 * CLONE_THREAD, issue 10):
 *
 *   R      holds a pipe at 100/101 with "hello" queued
 *   +-A    clone(CLONE_FILES): R's table
 *   | +-B  clone(CLONE_FILES) by A: the same table
 *   | +-C  fork by A: a copy of it, with its own fd 102
 *   +-D    fork by R: a copy, with its fd 102 closed
 *
 * After GO: R opens /dev/null at 200: A and B must see it, C and D not;
 * B reads "hello" from 100; then A closes 100: R and B must see it
 * closed, C and D still have theirs. C's 102 is still there, D has none.
 *
 * With "siblings": R forks X, X clones Y with CLONE_PARENT | CLONE_FILES:
 * two children of R share a table R does not (a shape stasis refuses at
 * dump); after GO, Y must still see an fd X opens, then both exit.
 *
 * STASIS_SABOTAGE=unshare: A unshares its table after GO (it then misses
 * R's fd 200 and R still has 100).
 */
#include "testprog.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define STACK_SIZE (64 << 10)

enum { P_A, P_B, P_C, P_D, P_NR };
static const char *pname[P_NR] = { "A", "B", "C", "D" };

struct shared {
	volatile int go, a_ready;
	volatile int stage;	/* 1: R opened 200; 2: B read; 3: A closed 100 */
	volatile int done[P_NR];
	char fail[P_NR][200];
};
static struct shared *sh;

static int fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static void wait_stage(int s)
{
	while (sh->stage < s)
		usleep(5000);
}

static void report(int who, const char *what)
{
	if (!sh->fail[who][0])
		snprintf(sh->fail[who], sizeof(sh->fail[who]), "%s: %s", pname[who], what);
}

static int child_b(void *arg)
{
	char buf[8] = "";

	(void)arg;
	wait_stage(1);
	if (!fd_open(200))
		report(P_B, "does not see R's new fd 200");
	if (read(100, buf, 5) != 5 || memcmp(buf, "hello", 5))
		report(P_B, "cannot read hello from fd 100");
	sh->stage = 2;
	wait_stage(3);
	if (fd_open(100))
		report(P_B, "still sees fd 100 that A closed");
	sh->done[P_B] = 1;
	return 0;
}

/* C and D: copies of the table. */
static void copy_check(int who, int has102)
{
	wait_stage(3);
	if (fd_open(200))
		report(who, "sees R's fd 200 in its own table");
	if (!fd_open(100) || !fd_open(101))
		report(who, "lost its own fds 100/101");
	if (fd_open(102) != has102)
		report(who, has102 ? "lost its fd 102" : "has an fd 102");
	sh->done[who] = 1;
}

static char stack_a[STACK_SIZE], stack_b[STACK_SIZE];
static pid_t pid_b, pid_c;

static int child_a(void *arg)
{
	(void)arg;
	pid_b = clone(child_b, stack_b + STACK_SIZE, CLONE_FILES | SIGCHLD, NULL);
	if (pid_b < 0)
		_exit(2);
	pid_c = fork();
	if (pid_c == 0) {
		if (dup2(0, 102) != 102)
			_exit(2);
		copy_check(P_C, 1);
		_exit(0);
	}
	sh->done[P_A] = -1; /* children made */
	while (!sh->go)
		usleep(5000);
	if (tp_sabotaged("unshare"))
		unshare(CLONE_FILES);
	sh->a_ready = 1;
	wait_stage(1);
	if (!fd_open(200))
		report(P_A, "does not see R's new fd 200");
	wait_stage(2);
	close(100);
	sh->stage = 3;
	while (!sh->done[P_B] || !sh->done[P_C])
		usleep(5000);
	waitpid(pid_b, NULL, __WALL);
	waitpid(pid_c, NULL, 0);
	sh->done[P_A] = 1;
	return 0;
}

static int sibling_y(void *arg)
{
	(void)arg;
	wait_stage(1);
	if (!fd_open(200))
		report(P_B, "Y does not see X's fd 200");
	sh->done[P_B] = 1;
	return 0;
}

static int siblings(void)
{
	pid_t x, y;
	int st;

	x = fork();
	if (x < 0)
		tp_die("fork");
	if (x == 0) {
		y = clone(sibling_y, stack_b + STACK_SIZE, CLONE_PARENT | CLONE_FILES | SIGCHLD,
			  NULL);
		if (y < 0)
			_exit(2);
		sh->done[P_A] = y;
		while (!sh->go)
			usleep(5000);
		if (dup2(open("/dev/null", O_RDONLY), 200) != 200)
			_exit(3);
		sh->stage = 1;
		while (!sh->done[P_B])
			usleep(5000);
		_exit(0);
	}
	while (sh->done[P_A] <= 0)
		usleep(5000);
	y = sh->done[P_A];
	tp_ready();
	tp_wait_go();
	sh->go = 1;
	if (waitpid(x, &st, 0) != x || !WIFEXITED(st) || WEXITSTATUS(st))
		tp_fail("X: status %#x", st);
	if (waitpid(y, &st, 0) != y || !WIFEXITED(st) || WEXITSTATUS(st))
		tp_fail("Y: status %#x", st);
	if (sh->fail[P_B][0])
		tp_fail("%s", sh->fail[P_B]);
	return tp_finish();
}

int main(int argc, char **argv)
{
	int p[2], st;
	pid_t pid_a, pid_d;

	tp_init(argc, argv, 1, "GOFILE [siblings]");
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		tp_die("mmap");
	if (argc > 2 && !strcmp(argv[2], "siblings"))
		return siblings();
	if (pipe(p) || dup2(p[0], 100) != 100 || dup2(p[1], 101) != 101)
		tp_die("pipe");
	close(p[0]);
	close(p[1]);
	if (write(101, "hello", 5) != 5)
		tp_die("write");
	pid_d = fork();
	if (pid_d < 0)
		tp_die("fork");
	if (pid_d == 0) {
		copy_check(P_D, 0);
		_exit(0);
	}
	pid_a = clone(child_a, stack_a + STACK_SIZE, CLONE_FILES | SIGCHLD, NULL);
	if (pid_a < 0)
		tp_die("clone");
	while (sh->done[P_A] != -1)
		usleep(5000);
	tp_ready();
	tp_wait_go();

	sh->go = 1;
	while (!sh->a_ready)
		usleep(5000);
	if (dup2(open("/dev/null", O_RDONLY), 200) != 200)
		tp_fail("cannot open fd 200");
	sh->stage = 1;
	wait_stage(3);
	if (fd_open(100))
		tp_fail("R still has fd 100 that A closed");
	if (!fd_open(101))
		tp_fail("R lost fd 101");
	while (!sh->done[P_A] || !sh->done[P_D] || sh->done[P_A] < 0)
		usleep(5000);
	if (waitpid(pid_a, &st, 0) != pid_a || !WIFEXITED(st) || WEXITSTATUS(st))
		tp_fail("A: status %#x", st);
	if (waitpid(pid_d, &st, 0) != pid_d || !WIFEXITED(st) || WEXITSTATUS(st))
		tp_fail("D: status %#x", st);
	for (int i = 0; i < P_NR; i++)
		if (sh->fail[i][0])
			tp_fail("%s", sh->fail[i]);
	return tp_finish();
}
