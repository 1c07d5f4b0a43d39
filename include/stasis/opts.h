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

#endif
