// SPDX-License-Identifier: GPL-2.0
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stasis/log.h"

static const char *log_progname = "stasis";
static int log_level = LOG_WARN;
static int log_fd = -1;

void log_init(const char *prog)
{
	const char *slash = strrchr(prog, '/');

	log_progname = slash ? slash + 1 : prog;
}

const char *log_prog(void)
{
	return log_progname;
}

void log_set_level(int level)
{
	log_level = level;
}

int log_get_level(void)
{
	return log_level;
}

int log_set_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

	if (fd < 0)
		return -1;
	if (log_fd >= 0)
		close(log_fd);
	log_fd = fd;
	return 0;
}

bool log_has_file(void)
{
	return log_fd >= 0;
}

void log_msg(int level, const char *fmt, ...)
{
	char buf[4096];
	int n = 0, saved = errno;
	va_list ap;

	if (level > log_level && (log_fd < 0 || level > LOG_DEBUG))
		return;
	if (log_level >= LOG_INFO) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		n = snprintf(buf, sizeof(buf), "(%5ld.%06ld) ", (long)ts.tv_sec % 100000,
			     ts.tv_nsec / 1000);
	}
	n += snprintf(buf + n, sizeof(buf) - n, "%s: %s", log_progname,
		      level == LOG_ERR ? "error: " : level == LOG_WARN ? "warning: " : "");
	va_start(ap, fmt);
	if (n < (int)sizeof(buf))
		n += vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(buf))
		n = sizeof(buf) - 1;
	/* The log file gets everything up to the chosen level; stderr gets
	 * the same unless a log file was given, then only errors (as CRIU). */
	if (log_fd >= 0 && level <= log_level) {
		/* nowhere left to report a failure of the log itself */
		(void)!write(log_fd, buf, n);
	}
	if (level <= log_level && (log_fd < 0 || level == LOG_ERR)) {
		(void)!write(STDERR_FILENO, buf, n);
	}
	errno = saved;
}
