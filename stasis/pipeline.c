// SPDX-License-Identifier: GPL-2.0
/* Starting the programs of a pipeline and waiting for them. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/util.h"

#include "pipeline.h"

void args_add(struct args *a, const char *s)
{
	if (a->n + 2 > a->cap) {
		a->cap = a->cap ? 2 * a->cap : 16;
		a->v = xrealloc(a->v, a->cap * sizeof(*a->v));
	}
	a->v[a->n++] = xstrdup(s);
	a->v[a->n] = NULL;
}

void args_addf(struct args *a, const char *fmt, ...)
{
	char buf[PATH_MAX + 64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	args_add(a, buf);
}

void args_free(struct args *a)
{
	int i;

	for (i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	a->v = NULL;
	a->n = a->cap = 0;
}

static bool is_executable(const char *path)
{
	struct stat st;

	return !stat(path, &st) && S_ISREG(st.st_mode) && !access(path, X_OK);
}

static char *join(const char *dir, size_t dirlen, const char *sub, const char *name)
{
	size_t n = dirlen + (sub ? strlen(sub) + 5 : 0) + strlen(name) + 2;
	char *p = xmalloc(n);

	if (sub)
		snprintf(p, n, "%.*s/../%s/%s", (int)dirlen, dir, sub, name);
	else
		snprintf(p, n, "%.*s/%s", (int)dirlen, dir, name);
	return p;
}

char *find_program(const char *name)
{
	char self[PATH_MAX], *p;
	const char *path, *end;
	ssize_t n;

	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		char *slash;

		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			size_t dirlen = slash - self;

			p = join(self, dirlen, NULL, name);
			if (is_executable(p))
				return p;
			free(p);
			/* running from the build tree: build/stasis/stasis */
			if (!strncmp(name, "stasis-", 7)) {
				p = join(self, dirlen, name + 7, name);
				if (is_executable(p))
					return p;
				free(p);
			}
		}
	}

	path = getenv("PATH");
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (; *path; path = *end ? end + 1 : end) {
		end = strchrnul(path, ':');
		p = end == path ? join(".", 1, NULL, name) : join(path, end - path, NULL, name);
		if (is_executable(p))
			return p;
		free(p);
	}
	return NULL;
}

int make_pipe(int fds[2])
{
	if (pipe2(fds, O_CLOEXEC)) {
		pr_perror("cannot create a pipe");
		return -1;
	}
	return 0;
}

void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static bool log_pid;

void stages_log_pid(bool on)
{
	log_pid = on;
}

/* In the child: the PID is known only now. A program that execs the next
 * one (freeze) keeps its PID, so both write the same FILE.PID. */
static void add_pid_to_logs(struct args *a)
{
	for (int i = 1; i + 1 < a->n; i++) {
		if (strcmp(a->v[i], "-o"))
			continue;
		i++;
		size_t n = strlen(a->v[i]) + 16;
		char *p = xmalloc(n);

		snprintf(p, n, "%s.%d", a->v[i], getpid());
		a->v[i] = p;
	}
}

int stage_start(struct stage *s)
{
	int i;

	if (log_get_level() >= LOG_DEBUG) {
		char line[4096];
		int n = 0;

		for (i = 0; i < s->argv.n && n < (int)sizeof(line); i++)
			n += snprintf(line + n, sizeof(line) - n, " %s", s->argv.v[i]);
		pr_debug("starting%s", line);
	}

	s->pid = fork();
	if (s->pid < 0) {
		pr_perror("cannot fork for %s", s->name);
		return -1;
	}
	if (s->pid)
		return 0;

	/* child: the stages decide for themselves what to do about SIGPIPE */
	signal(SIGPIPE, SIG_DFL);
	if ((s->in >= 0 && dup2(s->in, STDIN_FILENO) < 0) ||
	    (s->out >= 0 && dup2(s->out, STDOUT_FILENO) < 0)) {
		pr_perror("cannot set up the standard streams of %s", s->name);
		_exit(127);
	}
	for (i = 0; i < s->nkeep; i++) {
		if (fcntl(s->keep[i], F_SETFD, 0)) {
			pr_perror("cannot pass descriptor %d to %s", s->keep[i], s->name);
			_exit(127);
		}
	}
	if (log_pid)
		add_pid_to_logs(&s->argv);
	execv(s->argv.v[0], s->argv.v);
	pr_perror("cannot execute %s", s->argv.v[0]);
	_exit(127);
}

/* Does the (possibly zombie) task pid run the program name? */
static bool runs(pid_t pid, const char *name)
{
	char path[64], comm[32];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, comm, sizeof(comm) - 1);
	close(fd);
	if (n <= 0)
		return false;
	comm[n] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
	/* the kernel keeps the first 15 characters */
	return !strncmp(comm, name, 15) && strlen(comm) == (strlen(name) < 15 ? strlen(name) : 15);
}

int stage_wait(struct stage *s, bool quiet)
{
	const char *name = s->name;
	siginfo_t si;
	int status;

	if (s->pid <= 0)
		return 127;
	/* look at the zombie before reaping it: which program did it run last? */
	while (waitid(P_PID, s->pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
		;
	if (s->exec_name && runs(s->pid, s->exec_name))
		name = s->exec_name;
	while (waitpid(s->pid, &status, 0) < 0) {
		if (errno != EINTR) {
			pr_perror("cannot wait for %s", name);
			s->pid = 0;
			return 127;
		}
	}
	s->pid = 0;
	if (WIFSIGNALED(status)) {
		pr_err("%s killed by signal %d", name, WTERMSIG(status));
		return 128 + WTERMSIG(status);
	}
	if (WEXITSTATUS(status) && !quiet)
		pr_err("%s exited with status %d", name, WEXITSTATUS(status));
	return WEXITSTATUS(status);
}
