// SPDX-License-Identifier: GPL-2.0
/* Action scripts: see include/stasis/scripts.h. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/scripts.h"
#include "stasis/util.h"

static char **scripts;
static int nr_scripts;

void scripts_add(const char *path)
{
	scripts = xrealloc(scripts, (nr_scripts + 1) * sizeof(*scripts));
	scripts[nr_scripts++] = xstrdup(path);
}

int scripts_count(void)
{
	return nr_scripts;
}

/* In the child: a clean process for the script, whatever state the
 * program that runs it is in (signals blocked or ignored, pipes open). */
static void exec_script(const char *path, const char *action, pid_t init_pid)
{
	static const int sigs[] = {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD};
	char pid[16];
	sigset_t none;
	int fd;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		signal(sigs[i], SIG_DFL);
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || dup2(fd, STDIN_FILENO) < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
		pr_perror("action script %s: cannot set up its standard streams", path);
		_exit(127);
	}
	syscall(SYS_close_range, 3, ~0U, 0);
	if (setenv("CRTOOLS_SCRIPT_ACTION", action, 1)) {
		pr_perror("action script %s: cannot set CRTOOLS_SCRIPT_ACTION", path);
		_exit(127);
	}
	if (init_pid > 0) {
		snprintf(pid, sizeof(pid), "%d", init_pid);
		setenv("CRTOOLS_INIT_PID", pid, 1);
	}
	execl(path, path, (char *)NULL);
	pr_perror("cannot run action script %s (%s)", path, action);
	_exit(errno == ENOENT ? 127 : 126);
}

static int run_one(const char *path, const char *action, pid_t init_pid)
{
	int status;
	pid_t pid;

	pr_info("running action script %s (%s)", path, action);
	pid = fork();
	if (pid < 0) {
		pr_perror("cannot fork for action script %s (%s)", path, action);
		return 1;
	}
	if (pid == 0)
		exec_script(path, action, init_pid);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			pr_perror("cannot wait for action script %s (%s)", path, action);
			return 1;
		}
	}
	if (WIFSIGNALED(status)) {
		pr_err("action script %s (%s) was killed by signal %d", path, action,
		       WTERMSIG(status));
		return 128 + WTERMSIG(status);
	}
	if (WEXITSTATUS(status))
		pr_err("action script %s (%s) exited with status %d", path, action,
		       WEXITSTATUS(status));
	return WEXITSTATUS(status);
}

int scripts_run(const char *action, pid_t init_pid)
{
	int ret = 0;

	for (int i = 0; i < nr_scripts; i++) {
		int r = run_one(scripts[i], action, init_pid);

		if (r && !ret)
			ret = r;
	}
	return ret;
}
