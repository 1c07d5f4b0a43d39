// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "stasis/log.h"
#include "stasis/opts.h"
#include "stasis/util.h"

int common_option(int c, const char *arg, const char *prog, void (*usage)(FILE *))
{
	switch (c) {
	case 'v': {
		int level;

		if (opt_verbosity(arg, log_get_level(), &level))
			return -1;
		log_set_level(level);
		return 1;
	}
	case 'o':
		if (log_set_file(arg)) {
			pr_perror("cannot open log file %s", arg);
			return -1;
		}
		return 1;
	case 'h':
		usage(stdout);
		exit(0);
	case 'V':
		print_version(prog);
		exit(0);
	default:
		return 0;
	}
}

/* Decimal digits with at most a leading '-', then strtoll for the range. */
static int strict_ll(const char *arg, long long *val, char **end)
{
	const char *p = arg + (arg[0] == '-');

	if (*p < '0' || *p > '9')
		return -1;
	errno = 0;
	*val = strtoll(arg, end, 10);
	return errno ? -1 : 0;
}

int opt_long(const char *opt, const char *arg, long long min, long long max, const char *what,
	     long long *val)
{
	char *end;
	long long v;

	if (!arg || strict_ll(arg, &v, &end) || *end || v < min || v > max) {
		pr_err("invalid %s '%s': expected %s", opt, arg ? arg : "", what);
		return -1;
	}
	*val = v;
	return 0;
}

int opt_int(const char *opt, const char *arg, int min, int max, const char *what, int *val)
{
	long long v;

	if (opt_long(opt, arg, min, max, what, &v))
		return -1;
	*val = (int)v;
	return 0;
}

int opt_fd(const char *opt, const char *arg, int *fd)
{
	return opt_int(opt, arg, 0, INT_MAX, "a file descriptor number", fd);
}

int opt_size(const char *opt, const char *arg, long long min, long long *val)
{
	long long v = arg ? parse_size(arg) : -1;

	if (v < min && min > 0) {
		pr_err("invalid %s '%s': expected a size (N, NK, NM or NG bytes) of at least %lld",
		       opt, arg ? arg : "", min);
		return -1;
	}
	if (v < min) {
		pr_err("invalid %s '%s': expected a size (N, NK, NM or NG bytes)", opt,
		       arg ? arg : "");
		return -1;
	}
	*val = v;
	return 0;
}

int opt_verbosity(const char *arg, int level, int *out)
{
	long long v;

	if (!arg || (arg[0] == 'v' && !arg[strspn(arg, "v")])) {
		v = (long long)level + 1 + (arg ? (long long)strlen(arg) : 0);
	} else if (opt_long("verbosity", arg, 0, LOG_DEBUG, "a level from 0 to 4", &v)) {
		return -1;
	}
	*out = v > LOG_DEBUG ? LOG_DEBUG : (int)v;
	return 0;
}
