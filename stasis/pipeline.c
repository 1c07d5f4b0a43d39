// SPDX-License-Identifier: GPL-2.0
/* Starting the programs of a pipeline and waiting for them. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
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

char *need_program(const char *name)
{
	char *p = find_program(name);

	if (!p)
		pr_err("%s not found (next to stasis or in PATH)", name);
	return p;
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

static int stage_exec(struct pipeline *p, struct stage *s)
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
	    (s->out >= 0 && dup2(s->out, STDOUT_FILENO) < 0) ||
	    (p->err[1] >= 0 && !s->live_errors && dup2(p->err[1], STDERR_FILENO) < 0)) {
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

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* The stage has ended, or blocks until it does: its status is kept. */
static void stage_reap(struct stage *s)
{
	siginfo_t si;
	int status;

	/* look at the zombie before reaping it: which program did it run last? */
	while (waitid(P_PID, s->pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
		;
	if (s->exec_name && runs(s->pid, s->exec_name))
		s->name = s->exec_name;
	while (waitpid(s->pid, &status, 0) < 0) {
		if (errno != EINTR) {
			pr_perror("cannot wait for %s", s->name);
			status = 127 << 8;
			break;
		}
	}
	s->pid = 0;
	s->ended = now_ms();
	close_fd(&s->pidfd);
	s->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	s->status = s->signal ? 128 + s->signal : WEXITSTATUS(status);
	if (s->stopped)
		s->signal = s->status = 0;
}

void pipeline_init(struct pipeline *p, const char *what)
{
	memset(p, 0, sizeof(*p));
	p->what = what;
	p->err[0] = p->err[1] = -1;
}

static struct stage *new_stage(struct pipeline *p, const char *name)
{
	struct stage *s;

	if (p->n == PIPELINE_MAX_STAGES) {
		pr_err("a pipeline of more than %d programs", PIPELINE_MAX_STAGES);
		return NULL;
	}
	s = &p->st[p->n++];
	s->name = name;
	s->in = s->out = s->pidfd = -1;
	return s;
}

struct stage *pipeline_add(struct pipeline *p, const char *name)
{
	char *path = need_program(name);
	struct stage *s;

	if (!path)
		return NULL;
	s = new_stage(p, name);
	if (s)
		args_add(&s->argv, path);
	free(path);
	return s;
}

struct stage *pipeline_add_fn(struct pipeline *p, const char *name, int (*start)(struct stage *s))
{
	struct stage *s = new_stage(p, name);

	if (s) {
		s->start = start;
		s->quiet = true;
	}
	return s;
}

void pipeline_own_fd(struct pipeline *p, int fd)
{
	if (fd < 0)
		return;
	if (p->nfds == PIPELINE_MAX_FDS) {
		/* cannot happen with the pipelines the front-end builds */
		pr_err("too many descriptors for a pipeline");
		abort();
	}
	p->fds[p->nfds++] = fd;
}

int pipeline_pipe(struct pipeline *p, int fds[2])
{
	if (make_pipe(fds))
		return -1;
	pipeline_own_fd(p, fds[0]);
	pipeline_own_fd(p, fds[1]);
	return 0;
}

int pipeline_connect(struct pipeline *p, struct stage *from, struct stage *to)
{
	int fds[2];

	if (pipeline_pipe(p, fds))
		return -1;
	from->out = fds[1];
	to->in = fds[0];
	return 0;
}

void stage_pass_fd(struct stage *s, const char *opt, int fd)
{
	args_add(&s->argv, opt);
	args_addf(&s->argv, "%d", fd);
	if (s->nkeep < STAGE_MAX_FDS)
		s->keep[s->nkeep++] = fd;
}

/* "stasis-collect: error: ..." (after the timestamp of -v3 and more):
 * the program that wrote it, as long as the name is, or 0. */
static size_t error_line_prog(const char *line, const char **prog)
{
	const char *p = line, *colon;

	if (*p == '(') {
		p = strstr(p, ") ");
		if (!p)
			return 0;
		p += 2;
	}
	colon = strstr(p, ": error: ");
	if (!colon || colon == p || memchr(p, ' ', colon - p))
		return 0;
	*prog = p;
	return colon - p;
}

/* A whole line of the stages' stderr: an error is held, anything else
 * passed on at once. */
static void stderr_line(struct pipeline *p, char *line, size_t len)
{
	struct stage_error *e;
	const char *prog;
	size_t n;

	line[len] = '\0';
	n = error_line_prog(line, &prog);
	if (!n) {
		(void)!write(STDERR_FILENO, line, len);
		return;
	}
	p->errors = xrealloc(p->errors, (p->nerrors + 1) * sizeof(*p->errors));
	e = &p->errors[p->nerrors++];
	*e = (struct stage_error){ .line = xstrdup(line), .stage = -1, .when = now_ms() };
	for (int i = 0; i < p->n; i++) {
		struct stage *s = &p->st[i];

		if ((strlen(s->name) == n && !strncmp(s->name, prog, n)) ||
		    (s->exec_name && strlen(s->exec_name) == n && !strncmp(s->exec_name, prog, n)))
			e->stage = i;
	}
	if (log_get_level() >= LOG_DEBUG && !log_has_file()) {
		/* -v4 without a log file: all of them as they come, the
		 * cause again at the end */
		(void)!write(STDERR_FILENO, line, len);
		e->echoed = true;
	}
}

static bool stage_failed(const struct stage *s)
{
	return s->signal || (s->status && !s->quiet);
}

/* An error line whose writer still runs this long after it, nothing
 * having failed meanwhile, was not fatal: it is passed on. */
#define ERROR_HOLD_MS 3000

/* Passes on the held lines that are due; ms until the next one is, or -1.
 * (At -v4 they are on the terminal already: shown then only as not fatal.) */
static int show_errors_due(struct pipeline *p)
{
	long long now = now_ms();
	int next = -1;

	for (int i = 0; i < p->n; i++)
		if (!p->st[i].pid && stage_failed(&p->st[i]))
			return -1;
	for (int i = 0; i < p->nerrors; i++) {
		struct stage_error *e = &p->errors[i];

		if (e->shown || (e->stage >= 0 && p->st[e->stage].pid <= 0))
			continue;
		if (now - e->when >= ERROR_HOLD_MS) {
			if (!e->echoed)
				(void)!write(STDERR_FILENO, e->line, strlen(e->line));
			e->shown = true;
		} else if (next < 0 || e->when + ERROR_HOLD_MS - now < next) {
			next = e->when + ERROR_HOLD_MS - now;
		}
	}
	return next;
}

/* Reads what is in the stages' stderr now (all of it when block). */
static void read_stderr(struct pipeline *p, bool block)
{
	char buf[4096];
	ssize_t n;

	while (p->err[0] >= 0) {
		struct pollfd pfd = { .fd = p->err[0], .events = POLLIN };

		if (!block && poll(&pfd, 1, 0) <= 0)
			return;
		n = read(p->err[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (p->len)
				stderr_line(p, p->line, p->len);
			p->len = 0;
			close_fd(&p->err[0]);
			return;
		}
		for (ssize_t i = 0; i < n; i++) {
			p->line[p->len++] = buf[i];
			/* a line too long for the buffer goes in pieces */
			if (buf[i] == '\n' || p->len == sizeof(p->line) - 1) {
				stderr_line(p, p->line, p->len);
				p->len = 0;
			}
		}
	}
}

static bool error_is_cause(const struct pipeline *p, const struct stage_error *e);

/* A stage that is not a server ended failed, or said why it did. */
static bool served_failed(const struct pipeline *p)
{
	for (int i = 0; i < p->n; i++)
		if (!p->st[i].serves && stage_failed(&p->st[i]))
			return true;
	for (int i = 0; i < p->nerrors; i++)
		if (p->errors[i].stage >= 0 && !p->st[p->errors[i].stage].serves &&
		    error_is_cause(p, &p->errors[i]))
			return true;
	return false;
}

/*
 * Once every stage but the servers has ended: true when the servers are
 * left running (restore -d, nothing failed); the servers are stopped when
 * something failed (they would wait for a restore that is gone).
 */
static bool servers_alone(struct pipeline *p)
{
	bool others = false, servers = false;

	for (int i = 0; i < p->n; i++)
		if (p->st[i].pid > 0)
			*(p->st[i].serves ? &servers : &others) = true;
	if (!servers || others)
		return false;
	read_stderr(p, false);
	if (!served_failed(p))
		return p->leave_servers;
	for (int i = 0; i < p->n; i++) {
		struct stage *s = &p->st[i];

		if (s->serves && s->pid > 0 && !s->stopped) {
			kill(s->pid, SIGTERM);
			s->stopped = true;
		}
	}
	return false;
}

/* Waits for every started stage, reading their stderr meanwhile (but for
 * the servers servers_alone leaves running). */
static void wait_stages(struct pipeline *p)
{
	struct pollfd pfd[PIPELINE_MAX_STAGES + 1];
	struct stage *w[PIPELINE_MAX_STAGES];

	for (;;) {
		int n = 0, k = 0, timeout = -1, due;

		for (int i = 0; i < p->n; i++) {
			struct stage *s = &p->st[i];

			if (s->pid <= 0)
				continue;
			if (s->pidfd < 0) {
				/* no pidfd: looked at now and then */
				siginfo_t si = {};

				if (!waitid(P_PID, s->pid, &si, WEXITED | WNOHANG | WNOWAIT) &&
				    si.si_pid) {
					read_stderr(p, false);
					stage_reap(s);
				} else {
					timeout = 100;
				}
				continue;
			}
			w[k] = s;
			pfd[k++] = (struct pollfd){ .fd = s->pidfd, .events = POLLIN };
		}
		if ((!k && timeout < 0) || servers_alone(p))
			break;
		due = show_errors_due(p);
		if (due >= 0 && (timeout < 0 || due < timeout))
			timeout = due;
		n = k;
		if (p->err[0] >= 0)
			pfd[n++] = (struct pollfd){ .fd = p->err[0], .events = POLLIN };
		if (poll(pfd, n, timeout) < 0 && errno != EINTR) {
			pr_perror("cannot wait for the pipeline");
			for (int i = 0; i < k; i++)
				stage_reap(w[i]);
			break;
		}
		/* what an ended stage wrote is in the pipe before its end */
		read_stderr(p, false);
		for (int i = 0; i < k; i++)
			if (pfd[i].revents)
				stage_reap(w[i]);
	}
	/* a stage's children may hold the pipe still: what is there now */
	read_stderr(p, false);
	if (p->len)
		stderr_line(p, p->line, p->len);
	p->len = 0;
	close_fd(&p->err[0]);
}

/* May the error line be the cause of the failure? Not if it was passed on
 * as not fatal, nor if its writer did not fail. */
static bool error_is_cause(const struct pipeline *p, const struct stage_error *e)
{
	/* a quiet stage that says an error and ends non-zero failed too
	 * (inject without -d, refusing the checkpoint) */
	return !e->shown && (e->stage < 0 || p->st[e->stage].status);
}

/*
 * The error lines of the program that wrote the first one, as one line:
 * what failed first, and the context its callers gave (a program says the
 * low-level failure first, then what it was doing).
 */
static void tell_first_stage(struct pipeline *p, const struct stage_error *first)
{
	char out[4096];
	size_t len = strcspn(first->line, "\n");

	if (len >= sizeof(out) - 1)
		len = sizeof(out) - 2;
	memcpy(out, first->line, len);
	for (const struct stage_error *e = first + 1; first->stage >= 0 && e < p->errors + p->nerrors;
	     e++) {
		const char *prog = e->line, *text;
		size_t n;

		if (e->stage != first->stage || !error_is_cause(p, e))
			continue;
		n = error_line_prog(e->line, &prog);
		text = prog + n + strlen(": error: ");
		len += snprintf(out + len, sizeof(out) - 1 - len, "; %.*s", (int)strcspn(text, "\n"),
				text);
		if (len >= sizeof(out) - 2) {
			len = sizeof(out) - 2;
			break;
		}
	}
	out[len++] = '\n';
	(void)!write(STDERR_FILENO, out, len);
}

/*
 * The one line of a failure: a stage killed by a signal (other than
 * SIGPIPE, which is a stage seeing another go) killed nothing else, it is
 * the first cause; else the first error line written by a stage that
 * failed; else the first stage that failed without saying why (one killed
 * by SIGPIPE last). Of those seen ended about at once, the one further
 * down the pipeline: the stages before wait for its verdict (the
 * acknowledgement), while one that fails on what it is given says so.
 */
static void tell_failure(struct pipeline *p)
{
	const struct stage *silent = NULL, *piped = NULL;
	bool said[PIPELINE_MAX_STAGES] = {};
	const struct stage_error *first = NULL;

	for (int i = p->nerrors - 1; i >= 0; i--) {
		if (!error_is_cause(p, &p->errors[i]))
			continue;
		first = &p->errors[i];
		if (first->stage >= 0)
			said[first->stage] = true;
	}
	for (int i = 0; i < p->n; i++) {
		const struct stage *s = &p->st[i];

		if (s->signal == SIGPIPE) {
			if (!piped)
				piped = s;
		} else if (s->signal) {
			pr_err("%s failed: %s killed by signal %d", p->what, s->name, s->signal);
			return;
		} else if (stage_failed(s) && !said[i] && (!silent || s->ended <= silent->ended + 100)) {
			silent = s;
		}
	}
	if (first)
		tell_first_stage(p, first);
	else if (silent)
		pr_err("%s failed: %s exited with status %d", p->what, silent->name, silent->status);
	else if (piped)
		pr_err("%s failed: %s killed by signal %d", p->what, piped->name, SIGPIPE);
	else
		pr_err("%s failed", p->what);
}

int pipeline_run(struct pipeline *p)
{
	bool failed = false;
	int i;

	if (make_pipe(p->err))
		return 1;
	for (i = 0; i < p->n; i++) {
		struct stage *s = &p->st[i];

		/* If a stage cannot start, the ones before see their pipes
		 * closed (collect: EOF on its output and its ack channel,
		 * and it resumes the tree). */
		if (s->start ? s->start(s) : stage_exec(p, s)) {
			failed = true;
			break;
		}
		s->pidfd = syscall(SYS_pidfd_open, s->pid, 0);
	}
	for (i = 0; i < p->nfds; i++)
		close_fd(&p->fds[i]);
	p->nfds = 0;
	close_fd(&p->err[1]);
	wait_stages(p);
	for (i = 0; i < p->n; i++)
		if (stage_failed(&p->st[i]))
			failed = true;
	for (i = 0; i < p->nerrors; i++)
		if (p->errors[i].stage >= 0 && error_is_cause(p, &p->errors[i]))
			failed = true;
	if (failed) {
		tell_failure(p);
		return 1;
	}
	/* errors the stages went on after: not lost */
	for (i = 0; i < p->nerrors; i++)
		if (!p->errors[i].shown && !p->errors[i].echoed)
			(void)!write(STDERR_FILENO, p->errors[i].line, strlen(p->errors[i].line));
	return 0;
}

void pipeline_free(struct pipeline *p)
{
	int i;

	for (i = 0; i < p->nfds; i++)
		close_fd(&p->fds[i]);
	p->nfds = 0;
	close_fd(&p->err[0]);
	close_fd(&p->err[1]);
	for (i = 0; i < p->n; i++) {
		args_free(&p->st[i].argv);
		close_fd(&p->st[i].pidfd);
	}
	for (i = 0; i < p->nerrors; i++)
		free(p->errors[i].line);
	free(p->errors);
	p->errors = NULL;
	p->nerrors = 0;
}
