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

#include "stasis/config.h"
#include "stasis/log.h"
#include "stasis/opts.h"
#include "stasis/util.h"

#include "options.h"
#include "pipeline.h"

enum opt_kind {
	K_FLAG,	     /* boolean, sets flag[target]; "--no-NAME" clears it */
	K_STR,	     /* string argument, goes to str[target] */
	K_PID,	     /* -t PID */
	K_VERBOSITY, /* -v, -vv, -vN, --verbosity[=N] */
	K_HELP,
	K_VERSION,
	K_SCRIPT,	     /* --action-script: repeatable, in order */
	K_LIST,		     /* repeatable string argument, goes to list[target] */
	K_CONFIG,	     /* --config FILE: found before parsing (pre_scan) */
	K_NO_DEFAULT_CONFIG, /* likewise */
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
	unsigned int to; /* enum fe_prog mask: the programs it is passed on to, as --NAME */
};

/* clang-format off */
#define FLAG(n, s, c, f, x, h) { n, s, no_argument, K_FLAG, c, f, x, NULL, h }
#define STR(n, s, c, t, a, h) { n, s, required_argument, K_STR, c, t, 0, a, h }
#define TODO(n, s, a) { n, s, a, K_TODO, CMD_ALL, 0, 0, NULL, NULL }
/* the same, passed on to the programs of mask t */
#define FLAG_TO(n, s, c, f, x, t, h) { n, s, no_argument, K_FLAG, c, f, x, NULL, h, t }
#define STR_TO(n, s, c, t, a, p, h) { n, s, required_argument, K_STR, c, t, 0, a, h, p }
/* the commands that talk to another host (stasis-transfer) */
#define CMD_NET (CMD_ALL | CMD_PAGE_SERVER)

/* .to is left out where an option goes to no program */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
static const struct fe_option options[] = {
	{ "tree", 't', required_argument, K_PID, CMD_DUMP | CMD_PRE_DUMP, 0, 0, "PID",
	  "checkpoint the process tree rooted at PID" },
	STR("images-dir", 'D', CMD_ALL | CMD_PAGE_SERVER | CMD_DEDUP, S_IMAGES_DIR, "DIR",
	    "directory of the image files (default: the current directory)"),
	FLAG_TO("leave-running", 'R', CMD_DUMP, F_LEAVE_RUNNING, F_LEAVE_STOPPED, TO_COLLECT,
	     "leave the tree running after the dump instead of killing it"),
	FLAG_TO("leave-stopped", 's', CMD_ALL, F_LEAVE_STOPPED, F_LEAVE_RUNNING, TO_COLLECT | TO_INJECT,
	     "leave the tasks stopped after the dump or the restore"),
	FLAG_TO("shell-job", 'j', CMD_ALL, F_SHELL_JOB, F_NONE, TO_COLLECT | TO_INJECT,
	     "allow a shell job (a tree in the session of a terminal)"),
	FLAG_TO("restore-detached", 'd', CMD_RESTORE, F_RESTORE_DETACHED, F_NONE, TO_INJECT,
	     "exit once the tree is restored, do not wait for it"),
	STR("pidfile", 0, CMD_ALL | CMD_PAGE_SERVER, S_PIDFILE, "FILE",
	    "write the PID of the root task (page-server: of the server) to FILE"),
	FLAG_TO("file-locks", 'l', CMD_ALL, F_FILE_LOCKS, F_NONE, TO_COLLECT | TO_INJECT,
	     "dump the file locks the tree holds (flock, POSIX, OFD); restore them"),
	FLAG_TO("link-remap", 0, CMD_DUMP | CMD_RESTORE, F_LINK_REMAP, F_NONE, TO_COLLECT,
	     "link unlinked files that have other links back under a temporary name "
	     "(restore: accepted, the links are removed either way)"),
	STR_TO("ghost-limit", 0, CMD_DUMP, S_GHOST_LIMIT, "SIZE", TO_COLLECT,
	    "most data a deleted file carried in the checkpoint may hold (K, M, G "
	    "suffixes; default 1M; holes do not count)"),
	FLAG("ghost-fiemap", 0, CMD_DUMP, F_GHOST_FIEMAP, F_NONE,
	     "accepted as criu(8) does: the data of deleted files is always found with "
	     "SEEK_DATA/SEEK_HOLE, holes left out"),
	STR_TO("file-validation", 0, CMD_ALL, S_FILE_VALIDATION, "MODE", TO_INJECT,
	    "how files are checked on restore: filesize (the default; buildid is not "
	    "supported)"),
	STR("log-file", 'o', CMD_ANY, S_LOG_FILE, "FILE",
	    "write the log to FILE (relative to the work directory)"),
	STR("work-dir", 'W', CMD_ANY, S_WORK_DIR, "DIR",
	    "directory for the log, the pidfile and the statistics (default: the images "
	    "directory)"),
	FLAG("log-pid", 0, CMD_ALL, F_LOG_PID, F_NONE,
	     "one log file per program of the pipeline: FILE.PID"),
	FLAG("display-stats", 0, CMD_ALL, F_DISPLAY_STATS, F_NONE,
	     "print the statistics of the dump or the restore at the end"),
	FLAG_TO("tcp-established", 0, CMD_ALL, F_TCP_ESTABLISHED, F_NONE, TO_COLLECT,
	     "checkpoint established TCP connections (TCP_REPAIR); restore: accepted, "
	     "the checkpoint says what to restore"),
	/* dump: not forwarded, collect gets its page server's descriptors too */
	FLAG_TO("lazy-pages", 0, CMD_DUMP | CMD_RESTORE, F_LAZY_PAGES, F_NONE, TO_INJECT,
	     "dump: everything but the private anonymous memory into -D, then keep the "
	     "tree frozen and serve that memory on --port to stasis lazy-pages "
	     "--page-server; restore: private anonymous memory lazily, filled by the stasis "
	     "lazy-pages daemon started first with the same -D (or -W) as the tree touches it"),
	FLAG_TO("tcp-close", 0, CMD_ALL, F_TCP_CLOSE, F_NONE, TO_COLLECT | TO_INJECT,
	     "dump: established TCP connections as closed; restore: restore them closed"),
	STR_TO("network-lock", 0, CMD_ALL, S_NETWORK_LOCK, "METHOD", TO_COLLECT,
	    "how the packets of the tree's TCP connections are dropped from the freeze until "
	    "the restore lets it run: iptables (the default), nftables or skip; restore: "
	    "accepted, the checkpoint says which lock to remove"),
	FLAG_TO("skip-in-flight", 0, CMD_ALL, F_SKIP_IN_FLIGHT, F_NONE, TO_COLLECT,
	     "drop the connections a TCP listener has not accepted yet instead of failing "
	     "(restore: accepted, nothing to do)"),
	{ "external", 0, required_argument, K_LIST, CMD_DUMP, L_EXTERNAL, 0, "unix[ID]",
	  "allow unix socket ID (its inode) a peer outside the tree (may be repeated)", TO_COLLECT },
	FLAG_TO("ext-unix-sk", 0, CMD_ALL, F_EXT_UNIX_SK, F_NONE, TO_COLLECT,
	     "allow every unix socket of the tree a peer outside it, as --external "
	     "unix[ID] does for one (restore: accepted, the checkpoint says which)"),
	FLAG_TO("force-irmap", 0, CMD_ALL, F_FORCE_IRMAP, F_NONE, TO_COLLECT,
	     "find the path of an inotify or fanotify watch whose own name is gone by its "
	     "inode, under --irmap-scan-path (default: its mount)"),
	{ "irmap-scan-path", 0, required_argument, K_LIST, CMD_ALL, L_IRMAP_SCAN_PATH, 0, "DIR",
	  "with --force-irmap, look there first (may be repeated)", TO_COLLECT },
	{ "inherit-fd", 0, required_argument, K_LIST, CMD_RESTORE, L_INHERIT_FD, 0,
	  "fd[N]:socket:[ID]",
	  "restore unix socket ID as descriptor N of the caller (may be repeated)", TO_INJECT },
	{ "action-script", 0, required_argument, K_SCRIPT, CMD_ALL, 0, 0, "PATH",
	  "run PATH at every stage of the dump or the restore (may be repeated)" },
	{ "config", 0, required_argument, K_CONFIG, CMD_ANY, 0, 0, "FILE",
	  "read options from FILE instead of the default configuration files" },
	{ "no-default-config", 0, no_argument, K_NO_DEFAULT_CONFIG, CMD_ANY, 0, 0, NULL,
	  "do not read /etc/stasis/default.conf and $HOME/.stasis/default.conf" },
	FLAG("extra", 0, CMD_CHECK, F_CHECK_EXTRA, F_NONE,
	     "also check the features needed only for some trees or options"),
	FLAG("experimental", 0, CMD_CHECK, F_CHECK_EXPERIMENTAL, F_NONE,
	     "also check the features of experimental uses"),
	FLAG("all", 0, CMD_CHECK, F_CHECK_ALL, F_NONE, "check every feature (--extra --experimental)"),
	STR("feature", 0, CMD_CHECK, S_FEATURE, "NAME",
	    "check only the feature NAME; \"list\" lists them"),
	FLAG("page-server", 0, CMD_DUMP | CMD_PRE_DUMP, F_PAGE_SERVER, F_NONE,
	     "send the checkpoint to a stasis page-server at --address and --port instead "
	     "of writing it to -D"),
	FLAG("remote", 0, CMD_ALL, F_REMOTE, F_NONE,
	     "migrate without images: dump sends the checkpoint to --address and --port, "
	     "where restore --remote restores it as it arrives"),
	STR("address", 0, CMD_NET, S_ADDRESS, "ADDR",
	    "the receiver to send to (dump); the address to listen on (default: all)"),
	STR("port", 0, CMD_NET, S_PORT, "PORT", "TCP port of the receiver"),
	STR("ps-socket", 0, CMD_NET, S_PS_SOCKET, "FD",
	    "use the connected socket FD instead of --address and --port"),
	FLAG("daemon", 0, CMD_PAGE_SERVER, F_DAEMON, F_NONE,
	     "return once listening; receive in the background"),
	STR("status-fd", 0, CMD_RESTORE | CMD_PAGE_SERVER, S_STATUS_FD, "FD",
	    "write a zero byte to FD and close it once listening (page-server, "
	    "restore --remote)"),
	FLAG("encrypt", 'e', CMD_DUMP | CMD_PRE_DUMP | CMD_RESTORE, F_ENCRYPT, F_NONE,
	     "dump: seal the checkpoint (stasis-seal) for the holder of --tls-cert; restore "
	     "--remote: the stream must be sealed (a sealed -D is noticed without it)"),
	FLAG("tls", 0, CMD_NET, F_TLS, F_NONE,
	     "use TLS, both sides authenticated by X.509 certificates"),
	STR("tls-cacert", 0, CMD_NET, S_TLS_CACERT, "FILE",
	    "trust only this CA certificate (default: /etc/pki/CA/cacert.pem if present, "
	    "else the system's)"),
	STR("tls-cacrl", 0, CMD_NET, S_TLS_CACRL, "FILE",
	    "certificate revocation list (default: /etc/pki/CA/cacrl.pem if present)"),
	{ "tls-cert", 0, required_argument, K_LIST, CMD_NET, L_TLS_CERT, 0, "FILE",
	  "our certificate (the last one given), and with --encrypt a recipient's "
	  "(may be repeated; default: /etc/pki/stasis/cert.pem)" },
	STR("tls-key", 0, CMD_NET, S_TLS_KEY, "FILE",
	    "its private key, which also opens a sealed checkpoint (default: "
	    "/etc/pki/stasis/private/key.pem)"),
	FLAG("tls-no-cn-verify", 0, CMD_DUMP, F_TLS_NO_CN_VERIFY, F_NONE,
	     "do not check that the receiver's certificate names --address"),
	FLAG("track-mem", 0, CMD_DUMP | CMD_PRE_DUMP, F_TRACK_MEM, F_NONE,
	     "track the pages the tree writes, so that a later dump with "
	     "--prev-images-dir copies only those (pre-dump always does)"),
	STR("prev-images-dir", 0, CMD_DUMP | CMD_PRE_DUMP | CMD_PAGE_SERVER, S_PREV_IMAGES_DIR, "DIR",
	    "the previous pre-dump (relative to -D): pages not written since it stay "
	    "there (with --page-server, give it to the page server too)"),
	FLAG("auto-dedup", 0, CMD_DUMP | CMD_PRE_DUMP, F_AUTO_DEDUP, F_NONE,
	     "with --prev-images-dir: once stored, punch out of the parent links the pages "
	     "this one holds again (as stasis dedup)"),
	FLAG("no-background-snapshot", 0, CMD_DUMP | CMD_PRE_DUMP, F_NO_BACKGROUND_SNAPSHOT, F_NONE,
	     "keep the tree frozen while its memory is copied (by default dump -R and "
	     "pre-dump let it run, its memory write-protected until copied)"),
	STR("pre-dump-mode", 0, CMD_PRE_DUMP, S_PRE_DUMP_MODE, "MODE",
	    "read or splice: how pre-dump copies pages (both copy while frozen)"),
	{ "verbosity", 'v', optional_argument, K_VERBOSITY, CMD_ANY, 0, 0, "N",
	  "more messages (-v, -vv, ...), or level N: 0 none, 1 errors, "
	  "2 warnings (default), 3 information, 4 debug" },
	{ "help", 'h', no_argument, K_HELP, CMD_ANY, 0, 0, NULL, "print this help and exit" },
	{ "version", 'V', no_argument, K_VERSION, CMD_ANY, 0, 0, NULL,
	  "print the version and exit" },

	/* criu(8) options that are refused until they are implemented */
	TODO("stream", 0, no_argument),
	TODO("close", 0, required_argument),
	TODO("libdir", 'L', required_argument),
	TODO("enable-fs", 0, required_argument),
	TODO("unprivileged", 0, no_argument),
	TODO("freeze-cgroup", 0, required_argument),
	{ "manage-cgroups", 0, optional_argument, K_STR, CMD_DUMP | CMD_RESTORE, S_MANAGE_CGROUPS, 0,
	  "MODE", "restore: puts every task back in the cgroups it was in; none: into existing "
	  "cgroups; props: existing ones, their settings restored; soft (the default MODE): "
	  "missing ones made with their settings, existing ones kept; full: also the "
	  "settings of existing ones; strict: every cgroup made, an existing one fails; "
	  "ignore (what a restore without the option does) leaves them in the restorer's; "
	  "dump: accepted, the cgroups and their settings are always recorded", TO_INJECT },
	STR_TO("cgroup-props", 0, CMD_DUMP, S_CGROUP_PROPS, "SPEC", TO_COLLECT,
	       "dump: the cgroup settings recorded per controller, merged into or replacing "
	       "the built-in lists, in criu's simplified YAML (\"CTRL\": - \"strategy\": "
	       "\"merge\" - \"properties\": [\"NAME\", ...])"),
	STR_TO("cgroup-props-file", 0, CMD_DUMP, S_CGROUP_PROPS_FILE, "FILE", TO_COLLECT,
	       "dump: as --cgroup-props, the specification read from FILE"),
	TODO("cgroup-dump-controller", 0, required_argument),
	TODO("cgroup-yard", 0, required_argument),
	{ "cgroup-root", 0, required_argument, K_LIST, CMD_DUMP | CMD_RESTORE, L_CGROUP_ROOT, 0,
	  "[CTRL:]/PATH", "dump: the cgroups of the hierarchy of controller CTRL (of every other "
	  "hierarchy without CTRL) are recorded from PATH, at or above the tree's, instead of "
	  "from the tree's own; restore with --manage-cgroups: they go below PATH instead of "
	  "the dump's --cgroup-root or else the root task's cgroup (may be repeated)",
	  TO_COLLECT | TO_INJECT },
	TODO("evasive-devices", 0, no_argument),
	TODO("timeout", 0, required_argument),
	TODO("cpu-cap", 0, optional_argument),
	TODO("restore-sibling", 'S', no_argument),
	TODO("root", 'r', required_argument),
	{ "join-ns", 'J', required_argument, K_LIST, CMD_RESTORE, L_JOIN_NS, 0, "NS:PID|FILE",
	  "restore the tree into an existing namespace instead of the root task's own (its "
	  "recorded contents left out): NS is net, uts, ipc, time, cgroup or mnt; the namespace of "
	  "process PID or the namespace file FILE (may be repeated)", TO_INJECT },
	{ "veth-pair", 0, required_argument, K_LIST, CMD_RESTORE, L_VETH_PAIR, 0, "IN=OUT",
	  "the veth IN of the tree's network namespace, whose peer was outside it, gets its new "
	  "peer named OUT in the restorer's namespace (default: a name the kernel chooses; may be "
	  "repeated)", TO_INJECT },
	TODO("lsm-profile", 0, required_argument),
	TODO("lsm-mount-context", 0, required_argument),
	TODO("weak-sysctls", 0, no_argument),
	TODO("skip-file-rwx-check", 0, no_argument),
};
#pragma GCC diagnostic pop
/* clang-format on */

#define NR_OPTIONS ((int)ARRAY_SIZE(options))

/* getopt_long's val for long options: OPT_BASE + 2 * index (+ 1: "no-" form). */
#define OPT_BASE 0x100

static const struct {
	const char *name;
	enum fe_cmd cmd;
} commands[] = {
    {"dump", CMD_DUMP},
    {"pre-dump", CMD_PRE_DUMP},
    {"dedup", CMD_DEDUP},
    {"restore", CMD_RESTORE},
    {"check", CMD_CHECK},
    {"page-server", CMD_PAGE_SERVER},
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

/* in_order: stop at the first word that is not an option (getopt's '+'). */
static char *build_short_options(bool in_order)
{
	char *s = xmalloc(3 * NR_OPTIONS + 3), *p = s;
	int i;

	if (in_order)
		*p++ = '+';
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
	/* -vvv: getopt takes the "vv" for the argument of the first v */
	return opt_verbosity(arg, o->verbosity < 0 ? LOG_WARN : o->verbosity, &o->verbosity);
}

static int parse_pid(const char *arg, pid_t *pid)
{
	int v;

	if (opt_int("-t", arg, 1, INT_MAX, "a PID", &v))
		return -1;
	*pid = v;
	return 0;
}

/* Room for one more string after n in v: the room doubles when full (a
 * file may repeat an option many thousand times). */
static const char **grow_vector(const char **v, int n)
{
	if (n & (n - 1))
		return v;
	return xrealloc(v, (n ? 2 * (size_t)n : 1) * sizeof(*v));
}

/* Where an option came from: the command line (ca NULL) or a file. */
static int apply(struct fe_opts *o, int idx, bool neg, bool is_short, int argc, char **argv,
		 const struct config_args *ca)
{
	const struct fe_option *opt = &options[idx];

	switch (opt->kind) {
	case K_FLAG:
		o->flag[opt->target] = !neg;
		if (!neg && opt->clears)
			o->flag[opt->clears] = false;
		return 0;
	case K_STR:
		if (opt->target == S_MANAGE_CGROUPS) {
			if (!optarg)
				optarg = "soft";
			if (strcmp(optarg, "soft") && strcmp(optarg, "ignore") &&
			    strcmp(optarg, "none") && strcmp(optarg, "props") &&
			    strcmp(optarg, "full") && strcmp(optarg, "strict")) {
				pr_err(
				    "option --manage-cgroups=%s: expected none, props, soft, full, "
				    "strict or ignore",
				    optarg);
				return -1;
			}
		}
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
	case K_SCRIPT:
		o->scripts = grow_vector(o->scripts, o->nr_scripts);
		o->scripts[o->nr_scripts++] = optarg;
		return 0;
	case K_LIST:
		o->list[opt->target].v = grow_vector(o->list[opt->target].v, o->list[opt->target].n);
		o->list[opt->target].v[o->list[opt->target].n++] = optarg;
		return 0;
	case K_CONFIG:
	case K_NO_DEFAULT_CONFIG:
		/* criu(8) ignores them in a file: the files are chosen by then */
		if (ca)
			pr_warn("%s:%d: --%s has no effect in a configuration file", ca->path,
				ca->line[optind - 1], opt->name);
		else if (opt->kind == K_CONFIG && (!o->config || strcmp(o->config, optarg))) {
			pr_err("option --config must be spelled out in full");
			return -1;
		}
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

/* The options of one vector: a configuration file (ca) or the command line
 * (then seen[] records which options it gave). getopt is reset for each. */
static int parse_vector(int argc, char **argv, struct fe_opts *o, const struct config_args *ca,
			bool *seen)
{
	struct option *lo = build_long_options();
	/* A file's words stay in place: its line numbers (ca->line) are of
	 * the words as they were, which getopt would otherwise permute. */
	char *so = build_short_options(ca != NULL);
	int c, ret = -1;

	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, so, lo, NULL)) != -1) {
		bool is_short = c < OPT_BASE;
		int idx;

		if (c == '?' || c == ':') {
			report_getopt_error(c, argc, argv);
			goto out;
		}
		idx = is_short ? find_short(c) : (c - OPT_BASE) / 2;
		if (idx < 0 ||
		    apply(o, idx, !is_short && ((c - OPT_BASE) & 1), is_short, argc, argv, ca))
			goto out;
		if (seen)
			seen[idx] = true;
	}
	if (ca && optind < argc) {
		pr_err("%s:%d: '%s' is not an option (a configuration file holds no command)",
		       ca->path, ca->line[optind], argv[optind]);
		optind++;
		goto out;
	}
	ret = 0;
out:
	if (ret && ca && optind > 0)
		pr_err("in configuration file %s, line %d", ca->path,
		       ca->line[optind - 1 < argc ? optind - 1 : argc - 1]);
	free(so);
	free_long_options(lo);
	return ret;
}

/*
 * What must be known before any file is read (as criu(8)'s pre_parse):
 * --config FILE, which also turns the default files off, and
 * --no-default-config; with --help, no file is read at all, so that a
 * broken one cannot hide the help.
 */
static bool pre_scan(int argc, char **argv, struct fe_opts *o)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return true;
		if (!strcmp(argv[i], "--no-default-config")) {
			o->no_default_config = true;
		} else if (!strcmp(argv[i], "--config") && i + 1 < argc) {
			o->config = argv[++i];
			o->no_default_config = true;
		} else if (!strncmp(argv[i], "--config=", 9)) {
			o->config = argv[i] + 9;
			o->no_default_config = true;
		}
	}
	return false;
}

/* Reads one configuration file and applies it; the file stays in memory
 * (the options point into it). 0 or -1. */
static int apply_config(const char *path, bool missing_ok, struct fe_opts *o)
{
	struct config_args *ca = xzalloc(sizeof(*ca));
	int r = config_read(path, missing_ok, ca);

	o->files = xrealloc(o->files, (o->nr_files + 1) * sizeof(*o->files));
	o->files[o->nr_files++] = ca;
	if (r)
		return r < 0 ? -1 : 0;
	pr_debug("reading configuration file %s", path);
	return parse_vector(ca->argc, ca->argv, o, ca, NULL);
}

static int apply_configs(struct fe_opts *o)
{
	const char *home = getenv("HOME"), *env = getenv("STASIS_CONFIG_FILE");

	if (!o->no_default_config) {
		if (apply_config("/etc/stasis/default.conf", true, o))
			return -1;
		if (home && *home) {
			size_t n = strlen(home) + 32;
			char *p = xmalloc(n);
			int r;

			snprintf(p, n, "%s/.stasis/default.conf", home);
			r = apply_config(p, true, o);
			free(p);
			if (r)
				return -1;
		}
	}
	if (env && *env && apply_config(env, false, o))
		return -1;
	if (o->config && apply_config(o->config, false, o))
		return -1;
	return 0;
}

int fe_parse(int argc, char **argv, struct fe_opts *o)
{
	bool *seen = xzalloc(NR_OPTIONS * sizeof(*seen));
	int i, ret = -1;

	memset(o, 0, sizeof(*o));
	o->verbosity = -1;

	if (!pre_scan(argc, argv, o) && apply_configs(o))
		goto out;
	if (parse_vector(argc, argv, o, NULL, seen))
		goto out;

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
	/* only the command line is held to this: a file serves every command */
	for (i = 0; o->cmd && i < NR_OPTIONS; i++) {
		if (seen[i] && !(options[i].cmds & o->cmd)) {
			pr_err("option --%s does not apply to %s", options[i].name, o->cmd_name);
			goto out;
		}
	}
	ret = 0;
out:
	free(seen);
	return ret;
}

void fe_free(struct fe_opts *o)
{
	for (int i = 0; i < o->nr_files; i++) {
		config_free(o->files[i]);
		free(o->files[i]);
	}
	free(o->files);
	for (int i = 0; i < L_NR; i++)
		free(o->list[i].v);
	free(o->scripts);
	memset(o, 0, sizeof(*o));
}

void fe_forward(struct args *a, const struct fe_opts *o, enum fe_prog prog)
{
	for (int i = 0; i < NR_OPTIONS; i++) {
		const struct fe_option *opt = &options[i];

		if (!(opt->to & prog))
			continue;
		if (opt->kind == K_FLAG && o->flag[opt->target]) {
			args_addf(a, "--%s", opt->name);
		} else if (opt->kind == K_STR && o->str[opt->target]) {
			args_addf(a, "--%s", opt->name);
			args_add(a, o->str[opt->target]);
		} else if (opt->kind == K_LIST) {
			for (int k = 0; k < o->list[opt->target].n; k++) {
				args_addf(a, "--%s", opt->name);
				args_add(a, o->list[opt->target].v[k]);
			}
		}
	}
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

	/* in the help of all commands, name the one an option belongs to */
	snprintf(help, sizeof(help), "%s%s", opt->help,
		 cmd != CMD_NONE	      ? ""
		 : opt->cmds == CMD_DUMP    ? " (dump)"
		 : opt->cmds == CMD_RESTORE ? " (restore)"
		 : opt->cmds == CMD_CHECK   ? " (check)"
		 : opt->cmds == CMD_PAGE_SERVER ? " (page-server)"
					    : "");
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
			"or, with --page-server or --remote, to another host:\n"
			"  stasis-freeze -t PID stasis-collect | stasis-transfer --to ADDR:PORT\n"
			"The tree is killed once the images are safely on disk (or confirmed by\n"
			"the receiver), unless -R or -s is given; if anything fails, it is left\n"
			"running as it was.\n");
		break;
	case CMD_PRE_DUMP:
		fprintf(f,
			"Usage: stasis pre-dump -t PID [-D DIR] [--prev-images-dir DIR] [OPTIONS]\n\n"
			"Copy the memory of the process tree rooted at PID into DIR and leave it\n"
			"running, tracking what it writes from then on: the next pre-dump or\n"
			"dump --track-mem with --prev-images-dir DIR copies only the pages written\n"
			"since (docs/predump.md):\n"
			"  stasis-freeze -t PID stasis-collect --pre-dump | stasis-serialize unpack\n"
			"With --remote, the link goes to a stasis restore --remote instead, and\n"
			"continues the tree's running tracker: no --prev-images-dir.\n");
		break;
	case CMD_DEDUP:
		fprintf(f,
			"Usage: stasis dedup [-D DIR]\n\n"
			"Punch out of the parent links of the iterative checkpoint in DIR the\n"
			"pages that DIR holds again (stasis-serialize dedup -D DIR): they take\n"
			"no space any more; DIR restores whole, its parents no longer do alone.\n");
		break;
	case CMD_RESTORE:
		fprintf(f,
			"Usage: stasis restore [-D DIR] [OPTIONS]\n\n"
			"Restore the process tree checkpointed in the directory DIR:\n"
			"  stasis-serialize pack -D DIR | stasis-inject\n"
			"or, with --remote, what pre-dump --remote (any number) and dump --remote\n"
			"send to PORT, the links kept in memory until the dump arrives:\n"
			"  stasis-transfer --listen [ADDR:]PORT --chain-fd A |\n"
			"      stasis-serialize chain --chain-fd B | stasis-inject\n"
			"Without -d, wait for the restored root task and exit with its status.\n");
		break;
	case CMD_CHECK:
		fprintf(f, "Usage: stasis check [--extra | --experimental | --all | --feature NAME]\n\n"
			   "Check that the kernel has the features stasis needs. Prints \"Looks good.\"\n"
			   "(exit status 0), \"Looks good but ...\" (2: an --extra or --experimental\n"
			   "feature is missing) or \"Does not look good.\" (1), and each missing\n"
			   "feature with what it costs. --feature list lists the features.\n");
		break;
	case CMD_PAGE_SERVER:
		fprintf(f, "Usage: stasis page-server [-D DIR] --port PORT [OPTIONS]\n\n"
			   "Receive one checkpoint from stasis dump --page-server and store it in\n"
			   "the directory DIR:\n"
			   "  stasis-transfer --listen [ADDR:]PORT | stasis-serialize unpack -D DIR\n"
			   "The sender is told once the images are safely on disk.\n");
		break;
	default:
		fprintf(f,
			"Usage: stasis dump -t PID [-D DIR] [OPTIONS]\n"
			"       stasis pre-dump -t PID [-D DIR] [--prev-images-dir DIR] [OPTIONS]\n"
			"       stasis restore [-D DIR] [OPTIONS]\n"
			"       stasis dedup [-D DIR]\n"
			"       stasis page-server [-D DIR] --port PORT [OPTIONS]\n"
			"       stasis check [--extra | --experimental | --all | --feature NAME]\n"
			"       stasis TOOL [ARGS...]\n\n"
			"Checkpoint a process tree and restore it, with a pipeline of the stasis\n"
			"programs.\n\n"
			"Commands:\n"
			"  dump      checkpoint the process tree rooted at PID into DIR\n"
			"  pre-dump  copy its memory into DIR and leave it running (iterative)\n"
			"  dedup     punch the pages a link holds again out of its parents\n"
			"  restore   restore the process tree checkpointed in DIR\n"
			"  page-server  receive a checkpoint from another host into DIR\n"
			"  check     check that the kernel has what stasis needs\n"
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
		   "Options are read from /etc/stasis/default.conf, $HOME/.stasis/default.conf,\n"
		   "$STASIS_CONFIG_FILE and --config FILE first, in that order.\n"
		   "Options of criu(8) that stasis does not implement yet are refused.\n"
		   "See stasis(8).\n");
}
