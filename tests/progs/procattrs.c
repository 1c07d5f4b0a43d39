/* procattrs GOFILE
 *
 * Per-process attributes kept in /proc (issue 10):
 *
 *   main     oom_score_adj 400, audit loginuid 4242, and a second thread
 *            (which inherits the loginuid: it is per thread)
 *   child    oom_score_adj 123, loginuid 77
 *
 * After GO each reads its own values again from /proc/self (the thread
 * from /proc/thread-self); the child reports through its exit status.
 *
 * STASIS_SABOTAGE=oom sets the main oom_score_adj to 0 after GO;
 * =loginuid sets the main loginuid to 1.
 */
#include "testprog.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/wait.h>

static int write_file(const char *path, long v)
{
	char buf[32];
	int fd = open(path, O_WRONLY | O_CLOEXEC), len = snprintf(buf, sizeof(buf), "%ld", v), ok;

	if (fd < 0)
		return -1;
	ok = write(fd, buf, len) == len;
	close(fd);
	return ok ? 0 : -1;
}

static long read_file(const char *path)
{
	char buf[32] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -99999;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strtol(buf, NULL, 10) : -99999;
}

static volatile int go, thread_loginuid = -1, thread_done;

static void *second(void *arg)
{
	(void)arg;
	while (!go)
		usleep(10000);
	thread_loginuid = read_file("/proc/thread-self/loginuid");
	thread_done = 1;
	return NULL;
}

static int child(void)
{
	int bad = 0;

	tp_wait_go();
	if (read_file("/proc/self/oom_score_adj") != 123)
		bad |= 1;
	if (read_file("/proc/self/loginuid") != 77)
		bad |= 2;
	return bad;
}

int main(int argc, char **argv)
{
	pthread_t th;
	pid_t pid;
	int pipefd[2], st;
	char c;

	tp_init(argc, argv, 1, "GOFILE");
	if (write_file("/proc/self/oom_score_adj", 400))
		tp_die("oom_score_adj 400");
	if (write_file("/proc/self/loginuid", 4242))
		tp_die("loginuid 4242");
	if (pthread_create(&th, NULL, second, NULL))
		tp_die("pthread_create");
	if (pipe(pipefd))
		tp_die("pipe");
	pid = fork();
	if (pid < 0)
		tp_die("fork");
	if (pid == 0) {
		if (write_file("/proc/self/oom_score_adj", 123) ||
		    write_file("/proc/self/loginuid", 77))
			_exit(100);
		close(pipefd[0]);
		if (write(pipefd[1], "", 1) != 1)
			_exit(100);
		_exit(child());
	}
	close(pipefd[1]);
	if (read(pipefd[0], &c, 1) != 1)
		tp_die("child set-up");
	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("oom"))
		write_file("/proc/self/oom_score_adj", 0);
	if (tp_sabotaged("loginuid"))
		write_file("/proc/self/loginuid", 1);
	go = 1;
	if (read_file("/proc/self/oom_score_adj") != 400)
		tp_fail("oom_score_adj is %ld, expected 400", read_file("/proc/self/oom_score_adj"));
	if (read_file("/proc/self/loginuid") != 4242)
		tp_fail("loginuid is %ld, expected 4242", read_file("/proc/self/loginuid"));
	pthread_join(th, NULL);
	if (thread_loginuid != 4242)
		tp_fail("the second thread's loginuid is %d, expected 4242", thread_loginuid);
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		tp_fail("child: status %#x", st);
	else if (WEXITSTATUS(st))
		tp_fail("child: %s%s wrong", WEXITSTATUS(st) & 1 ? "oom_score_adj " : "",
			WEXITSTATUS(st) & 2 ? "loginuid " : "");
	return tp_finish();
}
