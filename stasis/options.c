// SPDX-License-Identifier: GPL-2.0
/*
 * The front-end's options: one table, criu(8)'s names. Adding an option is
 * one line here (plus a field in struct fe_opts and its use in the
 * pipeline): getopt's long and short option lists, the "--no-" forms of the
 * booleans and the help text are all generated from the table.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "stasis/log.h"
#include "stasis/util.h"

#include "options.h"

enum opt_kind {
	K_FLAG,	     /* boolean, sets flag[target]; "--no-NAME" clears it */
	K_STR,	     /* string argument, goes to str[target] */
	K_PID,	     /* -t PID */
	K_VERBOSITY, /* -v, -vv, -vN, --verbosity[=N] */
	K_HELP,
	K_VERSION,
	K_TODO, /* an option of criu(8) that is not implemented yet */
};

struct fe_option {
	const char *name;
	int short_opt; /* 0: long only */
	int has_arg;   /* no_argument, required_argument, optional_argument */
	enum opt_kind kind;
	unsigned int cmds; /* enum fe_cmd mask: where the option applies */
	int target;	   /* enum fe_flag or enum fe_str */
	int clears;	   /* K_FLAG: the flag this one turns off (last one wins) */
	const char *argname;
	const char *help;
};

/* clang-format off */
#define FLAG(n, s, c, f, x, h) { n, s, no_argument, K_FLAG, c, f, x, NULL, h }
#define STR(n, s, c, t, a, h) { n, s, required_argument, K_STR, c, t, 0, a, h }
#define TODO(n, s, a) { n, s, a, K_TODO, CMD_ALL, 0, 0, NULL, NULL }

static const struct fe_option options[] = {
	{ "tree", 't', required_argument, K_PID, CMD_DUMP, 0, 0, "PID",
	  "checkpoint the process tree rooted at PID" },
	STR("images-dir", 'D', CMD_ALL, S_IMAGES_DIR, "DIR",
	    "directory of the image files (default: the current directory)"),
	FLAG("leave-running", 'R', CMD_DUMP, F_LEAVE_RUNNING, F_LEAVE_STOPPED,
	     "leave the tree running after the dump instead of killing it"),
	FLAG("leave-stopped", 's', CMD_ALL, F_LEAVE_STOPPED, F_LEAVE_RUNNING,
	     "leave the tasks stopped after the dump or the restore"),
	FLAG("shell-job", 'j', CMD_ALL, F_SHELL_JOB, F_NONE,
	     "allow a shell job (a tree in the session of a terminal)"),
	FLAG("restore-detached", 'd', CMD_RESTORE, F_RESTORE_DETACHED, F_NONE,
	     "exit once the tree is restored, do not wait for it"),
	STR("pidfile", 0, CMD_ALL, S_PIDFILE, "FILE", "write the PID of the root task to FILE"),
	FLAG("file-locks", 'l', CMD_ALL, F_FILE_LOCKS, F_NONE,
	     "dump the file locks the tree holds (flock, POSIX, OFD); restore them"),
	FLAG("link-remap", 0, CMD_DUMP, F_LINK_REMAP, F_NONE,
	     "link unlinked files that have other links back under a temporary name"),
	STR("ghost-limit", 0, CMD_DUMP, S_GHOST_LIMIT, "SIZE",
	    "largest deleted file to carry in the checkpoint (K, M, G suffixes; default 1M)"),
	STR("file-validation", 0, CMD_ALL, S_FILE_VALIDATION, "MODE",
	    "how files are checked on restore: filesize (the default; buildid is not "
	    "supported)"),
	STR("log-file", 'o', CMD_ALL, S_LOG_FILE, "FILE",
	    "write the log to FILE (relative to the images directory)"),
	{ "verbosity", 'v', optional_argument, K_VERBOSITY, CMD_ALL, 0, 0, "N",
	  "more messages (-v, -vv, ...), or level N: 0 none, 1 errors, "
	  "2 warnings (default), 3 information, 4 debug" },
	{ "help", 'h', no_argument, K_HELP, CMD_ALL, 0, 0, NULL, "print this help and exit" },
	{ "version", 'V', no_argument, K_VERSION, CMD_ALL, 0, 0, NULL,
	  "print the version and exit" },

	/* criu(8) options that are refused until they are implemented */
	TODO("config", 0, required_argument),
	TODO("no-default-config", 0, no_argument),
	TODO("display-stats", 0, no_argument),
	TODO("stream", 0, no_argument),
	TODO("prev-images-dir", 0, required_argument),
	TODO("work-dir", 'W', required_argument),
	TODO("close", 0, required_argument),
	TODO("libdir", 'L', required_argument),
	TODO("enable-fs", 0, required_argument),
	TODO("action-script", 0, required_argument),
	TODO("unprivileged", 0, no_argument),
	TODO("track-mem", 0, no_argument),
	TODO("pre-dump-mode", 0, required_argument),
	TODO("external", 0, required_argument),
	TODO("freeze-cgroup", 0, required_argument),
	TODO("manage-cgroups", 0, optional_argument),
	TODO("cgroup-props", 0, required_argument),
	TODO("cgroup-props-file", 0, required_argument),
	TODO("cgroup-dump-controller", 0, required_argument),
	TODO("cgroup-yard", 0, required_argument),
	TODO("cgroup-root", 0, required_argument),
	TODO("tcp-established", 0, no_argument),
	TODO("tcp-close", 0, no_argument),
	TODO("skip-in-flight", 0, no_argument),
	TODO("evasive-devices", 0, no_argument),
	TODO("page-server", 0, no_argument),
	TODO("force-irmap", 0, no_argument),
	TODO("auto-dedup", 0, no_argument),
	TODO("timeout", 0, required_argument),
	TODO("ghost-fiemap", 0, no_argument),
	TODO("cpu-cap", 0, optional_argument),
	TODO("lazy-pages", 0, no_argument),
	TODO("network-lock", 0, required_argument),
	TODO("inherit-fd", 0, required_argument),
	TODO("restore-sibling", 'S', no_argument),
	TODO("log-pid", 0, no_argument),
	TODO("root", 'r', required_argument),
	TODO("join-ns", 'J', required_argument),
	TODO("veth-pair", 0, required_argument),
	TODO("lsm-profile", 0, required_argument),
	TODO("lsm-mount-context", 0, required_argument),
	TODO("weak-sysctls", 0, no_argument),
	TODO("skip-file-rwx-check", 0, no_argument),
	TODO("daemon", 0, no_argument),
	TODO("status-fd", 0, required_argument),
	TODO("address", 0, required_argument),
	TODO("port", 0, required_argument),
	TODO("ps-socket", 0, required_argument),
	TODO("tls", 0, no_argument),
	TODO("tls-cacert", 0, required_argument),
	TODO("tls-cacrl", 0, required_argument),
	TODO("tls-cert", 0, required_argument),
	TODO("tls-key", 0, required_argument),
	TODO("tls-no-cn-verify", 0, no_argument),
	TODO("encrypt", 0, no_argument),
	TODO("extra", 0, no_argument),
	TODO("experimental", 0, no_argument),
	TODO("all", 0, no_argument),
	TODO("feature", 0, required_argument),
};
/* clang-format on */

#define NR_OPTIONS ((int)ARRAY_SIZE(options))

/* getopt_long's val for long options: OPT_BASE + 2 * index (+ 1: "no-" form). */
#define OPT_BASE 0x100

static const struct {
	const char *name;
	enum fe_cmd cmd;
} commands[] = {
    {"dump", CMD_DUMP},
    {"restore", CMD_RESTORE},
};

static bool negatable(const struct fe_option *opt)
{
	return opt->has_arg == no_argument && (opt->kind == K_FLAG || opt->kind == K_TODO) &&
	       strncmp(opt->name, "no-", 3);
}

static struct option *build_long_options(void)
{
	struct option *lo = xzalloc((2 * NR_OPTIONS + 1) * sizeof(*lo));
	int i, n = 0;

	for (i = 0; i < NR_OPTIONS; i++) {
		const struct fe_option *opt = &options[i];
		char *neg;

		lo[n++] = (struct option){opt->name, opt->has_arg, NULL, OPT_BASE + 2 * i};
		if (!negatable(opt))
			continue;
		neg = xmalloc(strlen(opt->name) + 4);
		strcpy(neg, "no-");
		strcat(neg, opt->name);
		lo[n++] = (struct option){neg, no_argument, NULL, OPT_BASE + 2 * i + 1};
	}
	return lo;
}

static void free_long_options(struct option *lo)
{
	struct option *p;

	for (p = lo; p->name; p++)
		if (p->val & 1)
			free((char *)p->name);
	free(lo);
}

static char *build_short_options(void)
{
	char *s = xmalloc(3 * NR_OPTIONS + 2), *p = s;
	int i;

	*p++ = ':'; /* report missing arguments as ':' */
	for (i = 0; i < NR_OPTIONS; i++) {
		if (!options[i].short_opt)
			continue;
		*p++ = options[i].short_opt;
		if (options[i].has_arg != no_argument)
			*p++ = ':';
		if (options[i].has_arg == optional_argument)
			*p++ = ':';
	}
	*p = '\0';
	return s;
}

static int find_short(int c)
{
	int i;

	for (i = 0; i < NR_OPTIONS; i++)
		if (options[i].short_opt == c)
			return i;
	return -1;
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static int set_verbosity(struct fe_opts *o, const char *arg)
{
	int level = o->verbosity < 0 ? LOG_WARN : o->verbosity;

	if (!arg) {
		level++;
	} else if (strspn(arg, "v") == strlen(arg)) {
		/* -vvv: getopt takes the "vv" for the argument of the first v */
		level += 1 + strlen(arg);
	} else if (all_digits(arg) && strlen(arg) < 4) {
		level = atoi(arg);
	} else {
		pr_err("invalid verbosity level '%s'", arg);
		return -1;
	}
	o->verbosity = level > LOG_DEBUG ? LOG_DEBUG : level;
	return 0;
}

static int parse_pid(const char *arg, pid_t *pid)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v <= 0 || v > INT_MAX) {
		pr_err("invalid PID '%s'", arg);
		return -1;
	}
	*pid = v;
	return 0;
}

static int apply(struct fe_opts *o, int idx, bool neg, bool is_short, int argc, char **argv)
{
	const struct fe_option *opt = &options[idx];

	switch (opt->kind) {
	case K_FLAG:
		o->flag[opt->target] = !neg;
		if (!neg && opt->clears)
			o->flag[opt->clears] = false;
		return 0;
	case K_STR:
		o->str[opt->target] = optarg;
		return 0;
	case K_PID:
		return parse_pid(optarg, &o->tree);
	case K_VERBOSITY:
		/* "--verbosity N", as the raw programs take it */
		if (!optarg && !is_short && optind < argc && all_digits(argv[optind]))
			optarg = argv[optind++];
		return set_verbosity(o, optarg);
	case K_HELP:
		o->help = true;
		return 0;
	case K_VERSION:
		o->version = true;
		return 0;
	case K_TODO:
		if (is_short)
			pr_err("option -%c (--%s) is not supported yet", opt->short_opt, opt->name);
		else
			pr_err("option --%s%s is not supported yet", neg ? "no-" : "", opt->name);
		return -1;
	}
	return -1;
}

static void report_getopt_error(int c, int argc, char **argv)
{
	int idx = optopt >= OPT_BASE ? (optopt - OPT_BASE) / 2 : -1;
	const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "?";

	if (c == ':') {
		if (idx >= 0 && idx < NR_OPTIONS)
			pr_err("option --%s requires an argument", options[idx].name);
		else
			pr_err("option -%c requires an argument", optopt);
	} else if (optopt > 0 && optopt < OPT_BASE) {
		pr_err("unknown option -%c", optopt);
	} else {
		pr_err("unknown or ambiguous option '%s'", arg);
	}
}

int fe_parse(int argc, char **argv, struct fe_opts *o)
{
	struct option *lo = build_long_options();
	char *so = build_short_options();
	bool *seen = xzalloc(NR_OPTIONS * sizeof(*seen));
	int c, i, ret = -1;

	memset(o, 0, sizeof(*o));
	o->verbosity = -1;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, so, lo, NULL)) != -1) {
		bool is_short = c < OPT_BASE;
		int idx;

		if (c == '?' || c == ':') {
			report_getopt_error(c, argc, argv);
			goto out;
		}
		idx = is_short ? find_short(c) : (c - OPT_BASE) / 2;
		if (idx < 0 ||
		    apply(o, idx, !is_short && ((c - OPT_BASE) & 1), is_short, argc, argv))
			goto out;
		seen[idx] = true;
	}

	if (optind < argc) {
		o->cmd_name = argv[optind++];
		for (i = 0; i < (int)ARRAY_SIZE(commands); i++)
			if (!strcmp(o->cmd_name, commands[i].name))
				o->cmd = commands[i].cmd;
	}
	if (optind < argc) {
		pr_err("unexpected argument '%s'", argv[optind]);
		goto out;
	}
	for (i = 0; o->cmd && i < NR_OPTIONS; i++) {
		if (seen[i] && !(options[i].cmds & o->cmd)) {
			pr_err("option --%s does not apply to %s", options[i].name, o->cmd_name);
			goto out;
		}
	}
	ret = 0;
out:
	free(seen);
	free(so);
	free_long_options(lo);
	return ret;
}

/* Print text, the cursor being at column indent, wrapped before width. */
static void print_wrapped(FILE *f, const char *text, int indent, int width)
{
	int col = indent;

	while (*text) {
		int len = strcspn(text, " ");

		if (col > indent && col + 1 + len > width) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
		} else if (col > indent) {
			fputc(' ', f);
			col++;
		}
		fprintf(f, "%.*s", len, text);
		col += len;
		text += len;
		text += strspn(text, " ");
	}
	fputc('\n', f);
}

static void print_option(FILE *f, const struct fe_option *opt, enum fe_cmd cmd)
{
	char left[64], help[512];
	int n = 0;

	if (opt->short_opt)
		n = snprintf(left, sizeof(left), "-%c%s, ", opt->short_opt,
			     opt->has_arg == optional_argument ? "[N]" : "");
	else
		n = snprintf(left, sizeof(left), "    ");
	if (opt->has_arg == optional_argument)
		snprintf(left + n, sizeof(left) - n, "--%s[=%s]", opt->name, opt->argname);
	else if (opt->has_arg == required_argument)
		snprintf(left + n, sizeof(left) - n, "--%s %s", opt->name, opt->argname);
	else
		snprintf(left + n, sizeof(left) - n, "--%s", opt->name);

	snprintf(help, sizeof(help), "%s%s%s%s", opt->help,
		 cmd == CMD_NONE && opt->cmds != CMD_ALL ? " (" : "",
		 cmd == CMD_NONE && opt->cmds != CMD_ALL
		     ? (opt->cmds == CMD_DUMP ? "dump" : "restore")
		     : "",
		 cmd == CMD_NONE && opt->cmds != CMD_ALL ? ")" : "");
	fprintf(f, "  %-26s ", left);
	print_wrapped(f, help, 29, 79);
}

void fe_usage(FILE *f, enum fe_cmd cmd)
{
	int i;

	switch (cmd) {
	case CMD_DUMP:
		fprintf(f,
			"Usage: stasis dump -t PID [-D DIR] [OPTIONS]\n\n"
			"Checkpoint the process tree rooted at PID into the directory DIR:\n"
			"  stasis-freeze -t PID stasis-collect | stasis-serialize unpack -D DIR\n"
			"The tree is killed once the images are safely on disk, unless -R or\n"
			"-s is given; if anything fails, it is left running as it was.\n");
		break;
	case CMD_RESTORE:
		fprintf(f,
			"Usage: stasis restore [-D DIR] [OPTIONS]\n\n"
			"Restore the process tree checkpointed in the directory DIR:\n"
			"  stasis-serialize pack -D DIR | stasis-inject\n"
			"Without -d, wait for the restored root task and exit with its status.\n");
		break;
	default:
		fprintf(f,
			"Usage: stasis dump -t PID [-D DIR] [OPTIONS]\n"
			"       stasis restore [-D DIR] [OPTIONS]\n"
			"       stasis TOOL [ARGS...]\n\n"
			"Checkpoint a process tree and restore it, with a pipeline of the stasis\n"
			"programs.\n\n"
			"Commands:\n"
			"  dump      checkpoint the process tree rooted at PID into DIR\n"
			"  restore   restore the process tree checkpointed in DIR\n"
			"  TOOL      run stasis-TOOL with ARGS, for TOOL one of freeze, collect,\n"
			"            serialize, seal, transfer, inject\n");
		break;
	}
	fprintf(f, "\nOptions:\n");
	for (i = 0; i < NR_OPTIONS; i++) {
		if (options[i].kind == K_TODO)
			continue;
		if (cmd != CMD_NONE && !(options[i].cmds & cmd))
			continue;
		print_option(f, &options[i], cmd);
	}
	fprintf(f, "\nBoolean options can be negated with a no- prefix, as in --no-shell-job.\n"
		   "Options of criu(8) that stasis does not implement yet are refused.\n"
		   "See stasis(8).\n");
}
