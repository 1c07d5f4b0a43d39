// SPDX-License-Identifier: GPL-2.0
/*
 * The progress line of a long dump or restore. The front-end is not in
 * the data path of its pipelines; when the line is wanted (stderr is a
 * terminal), it adds a stage of its own between two programs that copies
 * the stream (splice, no copy through user memory) and counts it. Nothing
 * changes when stderr is not a terminal.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/progress.h"
#include "stasis/util.h"

#include "ops.h"

#define RELAY_CHUNK (1 << 20)

bool fe_progress_wanted(const struct fe_opts *o)
{
	if (o->verbosity == 0 || !isatty(STDERR_FILENO))
		return false;
	/* information and debug messages would break the line up */
	return o->str[S_LOG_FILE] || o->verbosity < LOG_INFO;
}

static uint64_t kb_field(const char *path, const char *key)
{
	char line[256];
	size_t n = strlen(key);
	uint64_t v = 0;
	FILE *f = fopen(path, "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n)) {
			v = strtoull(line + n, NULL, 10) * 1024;
			break;
		}
	fclose(f);
	return v;
}

/* Private memory of pid and of its descendants, roughly what a dump
 * copies: anonymous pages and shared memory. */
static uint64_t tree_memory(pid_t pid, int depth)
{
	char path[64], tpath[384];
	uint64_t total;
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
	total = kb_field(path, "Anonymous:");
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	total += kb_field(path, "RssShmem:");
	if (depth > 64)
		return total;
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return total;
	while ((de = readdir(d))) {
		FILE *f;
		int child;

		if (de->d_name[0] == '.')
			continue;
		snprintf(tpath, sizeof(tpath), "%s/%s/children", path, de->d_name);
		f = fopen(tpath, "re");
		if (!f)
			continue;
		while (fscanf(f, "%d", &child) == 1)
			total += tree_memory(child, depth + 1);
		fclose(f);
	}
	closedir(d);
	return total;
}

uint64_t fe_tree_memory(pid_t pid)
{
	return tree_memory(pid, 0);
}

uint64_t fe_dir_bytes(const char *dir)
{
	struct dirent *de;
	uint64_t total = 0;
	DIR *d = opendir(dir);

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		struct stat st;

		if (n < 5 || strcmp(de->d_name + n - 4, ".img") || de->d_name[0] == '.')
			continue;
		if (!fstatat(dirfd(d), de->d_name, &st, 0) && S_ISREG(st.st_mode))
			total += st.st_size;
	}
	closedir(d);
	return total;
}

/* The relay: stdin to stdout until EOF, splice where it can. */
static int relay(const char *what, uint64_t total, bool estimate)
{
	struct progress p;
	uint64_t done = 0;
	char *buf = NULL;
	bool use_splice = true;

	progress_init(&p, what, total, estimate, false);
	for (;;) {
		ssize_t n;

		if (use_splice) {
			n = splice(STDIN_FILENO, NULL, STDOUT_FILENO, NULL, RELAY_CHUNK, SPLICE_F_MOVE);
			if (n < 0 && errno == EINVAL) {
				use_splice = false;
				continue;
			}
		} else {
			if (!buf)
				buf = xmalloc(RELAY_CHUNK);
			n = read(STDIN_FILENO, buf, RELAY_CHUNK);
			if (n > 0 && write_full(STDOUT_FILENO, buf, n))
				n = -1;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			progress_end(&p);
			/* a sink that went away is reported by the sink */
			return n < 0 && errno != EPIPE ? 1 : 0;
		}
		done += n;
		progress_update(&p, done);
	}
}

/* what the relay shows: one progress line a front-end */
static struct {
	const char *what;
	uint64_t total;
	bool estimate;
} shown;

static int progress_start(struct stage *s)
{
	s->pid = fork();
	if (s->pid < 0) {
		pr_perror("cannot fork for the progress line");
		return -1;
	}
	if (s->pid)
		return 0;
	signal(SIGPIPE, SIG_IGN);
	if ((s->in >= 0 && dup2(s->in, STDIN_FILENO) < 0) ||
	    (s->out >= 0 && dup2(s->out, STDOUT_FILENO) < 0))
		_exit(1);
	/* the other ends of the pipes are close-on-exec, not closed: a
	 * forked relay must close them, or no one sees the end of stream */
	syscall(SYS_close_range, 3, ~0U, 0);
	_exit(relay(shown.what, shown.total, shown.estimate));
}

struct stage *fe_progress_add(struct pipeline *p, const char *what, uint64_t total, bool estimate)
{
	shown.what = what;
	shown.total = total;
	shown.estimate = estimate;
	return pipeline_add_fn(p, "the progress line", progress_start);
}
