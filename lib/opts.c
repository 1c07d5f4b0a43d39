// SPDX-License-Identifier: GPL-2.0
#include <stdlib.h>
#include <string.h>

#include "stasis/log.h"
#include "stasis/opts.h"
#include "stasis/util.h"

int common_option(int c, const char *arg, const char *prog, void (*usage)(FILE *))
{
	switch (c) {
	case 'v':
		if (!arg)
			log_set_level(log_get_level() + 1);
		else if (arg[0] == 'v')
			log_set_level(log_get_level() + 1 + strspn(arg, "v"));
		else
			log_set_level(atoi(arg));
		return 1;
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
