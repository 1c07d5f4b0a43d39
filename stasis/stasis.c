// SPDX-License-Identifier: GPL-2.0
/*
 * stasis: the front-end. "stasis dump" and "stasis restore" build the
 * pipelines of the raw programs with criu(8)'s options (one file a
 * command, commands.h); "stasis TOOL ARGS" runs stasis-TOOL ARGS.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/opts.h"
#include "stasis/util.h"

#include "commands.h"

static const char *const tools[] = {"freeze", "collect", "serialize", "seal", "transfer", "inject",
				    /* criu(8)'s lazy-pages command is the daemon itself */
				    "lazy-pages"};

/* criu(8) commands stasis does not have (yet). */
static const char *const criu_commands[] = {
    "exec", "service", "cpuinfo", "swrk",
};

static bool in_list(const char *s, const char *const *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(s, list[i]))
			return true;
	return false;
}

/* stasis TOOL ARGS...: exec stasis-TOOL ARGS... */
static int run_tool(char **argv)
{
	char name[64];
	char *path;

	snprintf(name, sizeof(name), "stasis-%s", argv[0]);
	path = find_program(name);
	if (!path) {
		pr_err("%s: program not found (next to stasis or in PATH)", name);
		return 127;
	}
	argv[0] = path;
	execv(path, argv);
	pr_perror("cannot execute %s", path);
	return errno == ENOENT ? 127 : 126;
}

/* Make sure fds 0..2 are open, so that no pipe end lands on them. */
static void sane_std_fds(void)
{
	int fd;

	for (fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		if (open("/dev/null", O_RDWR) != fd) {
			fprintf(stderr, "stasis: cannot open /dev/null\n");
			exit(1);
		}
	}
}

int main(int argc, char **argv)
{
	struct fe_opts o;

	log_init("stasis");
	sane_std_fds();

	if (argc > 1 && in_list(argv[1], tools, ARRAY_SIZE(tools)))
		return run_tool(argv + 1);

	/* a stage that dies must not take the front-end with it */
	signal(SIGPIPE, SIG_IGN);

	if (fe_parse(argc, argv, &o)) {
		fprintf(stderr, "Try 'stasis --help' for more information.\n");
		return 1;
	}
	if (o.verbosity >= 0)
		log_set_level(o.verbosity);

	if (o.cmd_name && o.cmd == CMD_NONE) {
		if (in_list(o.cmd_name, tools, ARRAY_SIZE(tools)))
			pr_err("options go after the tool: stasis %s [ARGS...]", o.cmd_name);
		else if (in_list(o.cmd_name, criu_commands, ARRAY_SIZE(criu_commands)))
			pr_err("command %s is not supported yet", o.cmd_name);
		else {
			pr_err("unknown command '%s'", o.cmd_name);
			fe_usage(stderr, CMD_NONE);
		}
		return 1;
	}
	if (o.help) {
		fe_usage(stdout, o.cmd);
		return 0;
	}
	if (o.version) {
		print_version("stasis");
		return 0;
	}
	if ((o.cmd == CMD_DUMP || o.cmd == CMD_RESTORE || o.cmd == CMD_PRE_DUMP) &&
	    fe_check_net_use(&o))
		return 1;
	switch (o.cmd) {
	case CMD_DUMP:
	case CMD_PRE_DUMP:
		return cmd_dump(&o);
	case CMD_DEDUP:
		return cmd_dedup(&o);
	case CMD_RESTORE:
		return cmd_restore(&o);
	case CMD_PAGE_SERVER:
		return cmd_page_server(&o);
	case CMD_CHECK:
		return cmd_check(&o);
	default:
		fe_usage(stderr, CMD_NONE);
		return 1;
	}
}
