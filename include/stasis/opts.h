/* SPDX-License-Identifier: GPL-2.0 */
/* The options every stasis program shares, in CRIU's spelling. */
#ifndef STASIS_OPTS_H
#define STASIS_OPTS_H

#include <getopt.h>
#include <stdio.h>

#define COMMON_SHORT_OPTS "v::o:hV"
#define COMMON_LONG_OPTS                                                                       \
	{ "verbosity", optional_argument, NULL, 'v' },                                         \
		{ "log-file", required_argument, NULL, 'o' },                                  \
		{ "help", no_argument, NULL, 'h' }, { "version", no_argument, NULL, 'V' }

/*
 * Handles -v, -vv, -vN, --verbosity[=N], -o/--log-file, -h/--help and
 * -V/--version (the last two print and exit 0). Returns 1 when c was one
 * of them, 0 when it is not, -1 on error (logged).
 */
int common_option(int c, const char *arg, const char *prog, void (*usage)(FILE *));

/*
 * Strict option values, the one parser every program uses. The whole of
 * ARG must be the value: no blanks, no sign but a leading '-', no trailing
 * junk, no overflow, within [MIN, MAX]. Otherwise one line is logged,
 * "invalid OPT 'ARG': expected WHAT", and -1 returned (the caller exits 1).
 */
int opt_long(const char *opt, const char *arg, long long min, long long max, const char *what,
	     long long *val);
int opt_int(const char *opt, const char *arg, int min, int max, const char *what, int *val);
/* A descriptor number, 0 to INT_MAX (whether it is open is the caller's). */
int opt_fd(const char *opt, const char *arg, int *fd);
/* A size: N, NK, NM or NG bytes, at least MIN. */
int opt_size(const char *opt, const char *arg, long long min, long long *val);
/*
 * The argument of -v: NULL (one more), "v..." (-vv...: one more per v), or
 * a level 0 to 4 (LOG_DEBUG). LEVEL is the level so far; the new one, at
 * most LOG_DEBUG, goes to *OUT.
 */
int opt_verbosity(const char *arg, int level, int *out);

#endif
