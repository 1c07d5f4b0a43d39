// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness: a configuration file (lib/config.c, criu(8)'s syntax)
 * turned into arguments, which then go through the option parsing every
 * program shares: getopt_long with the common options (-v, --verbosity;
 * not -o, -h, -V, which open files or exit) and each strict value parser
 * of lib/opts.c (numbers, descriptors, sizes, levels) on every argument;
 * then the same file as `stasis --config FILE dump` reads it, through the
 * front-end's whole option table (stasis/options.c: fe_parse).
 *
 * STASIS_SABOTAGE=fuzz-leak leaks the arguments of every file: tests/fuzz.bats
 * shows that a leak fails the run.
 */
#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "stasis/config.h"
#include "stasis/log.h"
#include "stasis/opts.h"
#include "stasis/util.h"

#include "../../stasis/options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void usage(FILE *f)
{
	(void)f;
}

static void parse_values(const char *arg)
{
	long long ll;
	int i;

	opt_long("--fuzz", arg, LLONG_MIN, LLONG_MAX, "a number", &ll);
	opt_long("--fuzz", arg, -5, 5, "a number from -5 to 5", &ll);
	opt_int("--fuzz", arg, 0, INT_MAX, "a positive number", &i);
	opt_fd("--fuzz", arg, &i);
	opt_size("--fuzz", arg, 0, &ll);
	opt_size("--fuzz", arg, 4096, &ll);
	opt_verbosity(arg, 2, &i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct option lopts[] = {
		{ "verbosity", optional_argument, NULL, 'v' },
		{ "images-dir", required_argument, NULL, 'D' },
		{ "tree", required_argument, NULL, 't' },
		{ "leave-running", no_argument, NULL, 'R' },
		{ "ps-socket", required_argument, NULL, 1000 },
		{ NULL, 0, NULL, 0 },
	};
	static int fd = -1;
	static char path[64];
	static bool leak;
	struct config_args ca;
	struct fe_opts fe;
	char *fe_argv[] = { "stasis", "--config", path, "dump", NULL };
	int c;

	if (fd < 0) {
		log_init("fuzz-config");
		log_set_level(0);
		fd = memfd_create("fuzz-config", MFD_CLOEXEC);
		if (fd < 0)
			return 0;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		/* only the file given: no other configuration is read */
		unsetenv("STASIS_CONFIG_FILE");
		leak = getenv("STASIS_SABOTAGE") && !strcmp(getenv("STASIS_SABOTAGE"), "fuzz-leak");
	}
	if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size)
		return 0;
	if (config_read(path, 0, &ca) == 0) {
		for (int i = 1; i < ca.argc; i++)
			parse_values(ca.argv[i]);
		optind = 0;
		opterr = 0;
		/* '-': words in order (permuting them costs the square of their number) */
		while ((c = getopt_long(ca.argc, ca.argv, "-v::D:t:R", lopts, NULL)) != -1) {
			if (c == 'v')
				common_option(c, optarg, "fuzz-config", usage);
			else if (c == 't' || c == 1000)
				parse_values(optarg);
		}
		log_set_level(0);
	}
	if (!leak)
		config_free(&ca);

	fe_parse(ARRAY_SIZE(fe_argv) - 1, fe_argv, &fe);
	fe_free(&fe);
	log_set_level(0);
	return 0;
}
