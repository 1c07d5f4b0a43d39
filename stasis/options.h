/* SPDX-License-Identifier: GPL-2.0 */
#ifndef STASIS_FRONTEND_OPTIONS_H
#define STASIS_FRONTEND_OPTIONS_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

/* Commands the options apply to (a bit mask). */
enum fe_cmd {
	CMD_NONE = 0,
	CMD_DUMP = 1 << 0,
	CMD_RESTORE = 1 << 1,
	CMD_PRE_DUMP = 1 << 4, /* a dump of memory only; the tree runs on */
	CMD_ALL = CMD_DUMP | CMD_RESTORE | CMD_PRE_DUMP,
	CMD_CHECK = 1 << 2,
	CMD_PAGE_SERVER = 1 << 3,
	CMD_DEDUP = 1 << 5,
	CMD_ANY = CMD_ALL | CMD_CHECK | CMD_PAGE_SERVER | CMD_DEDUP,
};

/* Boolean options: index into fe_opts.flag[]. */
enum fe_flag {
	F_NONE,
	F_LEAVE_RUNNING,
	F_LEAVE_STOPPED,
	F_SHELL_JOB,
	F_RESTORE_DETACHED,
	F_FILE_LOCKS,
	F_LINK_REMAP,
	F_GHOST_FIEMAP, /* accepted; holes are always skipped */
	F_DISPLAY_STATS,
	F_LOG_PID,
	F_CHECK_EXTRA,
	F_CHECK_EXPERIMENTAL,
	F_CHECK_ALL,
	F_PAGE_SERVER, /* dump: to a page server */
	F_REMOTE,      /* dump, restore: image-less migration */
	F_DAEMON,
	F_TLS,
	F_TLS_NO_CN_VERIFY,
	F_ENCRYPT, /* dump: seal with stasis-seal; restore --remote: expect it sealed */
	F_TCP_ESTABLISHED,
	F_TCP_CLOSE,
	F_SKIP_IN_FLIGHT,
	F_TRACK_MEM, /* dump: keep tracking memory for a next link */
	F_FORCE_IRMAP, /* dump: look for the paths of fsnotify watches by inode */
	F_EXT_UNIX_SK, /* dump: every unix socket may have its peer outside the tree */
	F_AUTO_DEDUP, /* dump, pre-dump: punch the parents' superseded pages */
	F_LAZY_PAGES, /* dump: serve private anonymous memory to a lazy restore;
		       * restore: memory filled by stasis lazy-pages (docs/lazy.md) */
	F_NO_BACKGROUND_SNAPSHOT, /* dump -R, pre-dump: copy the memory frozen */
	F_NR,
};

/* Repeatable options with a string argument: index into fe_opts.list[]. */
enum fe_list {
	L_NONE,
	L_EXTERNAL,   /* dump: --external unix[ID] */
	L_INHERIT_FD, /* restore: --inherit-fd fd[N]:RES */
	L_IRMAP_SCAN_PATH, /* dump: --irmap-scan-path DIR */
	L_CGROUP_ROOT, /* dump, restore: --cgroup-root [CONTROLLER:]/PATH */
	L_JOIN_NS,     /* restore: --join-ns NS:PID|FILE */
	L_VETH_PAIR,   /* restore: --veth-pair IN=OUT */
	L_TLS_CERT,   /* --tls-cert: the last one is ours for TLS; with
		       * --encrypt, every one is a recipient */
	L_NR,
};

/* Options with a string argument: index into fe_opts.str[]. */
enum fe_str {
	S_NONE,
	S_IMAGES_DIR,
	S_LOG_FILE,
	S_PIDFILE,
	S_GHOST_LIMIT,
	S_FILE_VALIDATION,
	S_WORK_DIR,
	S_FEATURE,
	S_ADDRESS,
	S_PORT,
	S_PS_SOCKET,
	S_STATUS_FD,
	S_TLS_CACERT,
	S_TLS_CACRL,
	S_TLS_KEY,
	S_PREV_IMAGES_DIR, /* the parent link of an iterative chain */
	S_PRE_DUMP_MODE,
	S_NETWORK_LOCK,
	S_MANAGE_CGROUPS, /* none, props, soft, full, strict or ignore */
	S_CGROUP_PROPS,	     /* dump: the cgroup settings recorded */
	S_CGROUP_PROPS_FILE, /* the same, from a file */
	S_NR,
};

struct fe_opts {
	enum fe_cmd cmd;
	const char *cmd_name; /* as typed; NULL when there was none */
	bool flag[F_NR];
	const char *str[S_NR];
	pid_t tree;    /* -t; 0 when not given */
	int verbosity; /* -1 when not given */
	bool help, version;
	struct {
		const char **v;
		int n;
	} list[L_NR]; /* repeatable options, in order */
	const char **scripts; /* --action-script, in order (config files first) */
	int nr_scripts;
	const char *config;	/* --config FILE */
	bool no_default_config; /* --no-default-config (or --config) */
	struct config_args **files; /* the configuration files read: their */
	int nr_files;		    /* options point into them */
};

/*
 * Parse the front-end's command line (argv[0] is "stasis"): options in any
 * order around one command word, as criu(8) does, after the configuration
 * files in criu(8)'s order: /etc/stasis/default.conf and
 * $HOME/.stasis/default.conf (unless --no-default-config or --config),
 * $STASIS_CONFIG_FILE, --config FILE. Returns 0 or -1 after printing an
 * error.
 */
int fe_parse(int argc, char **argv, struct fe_opts *o);
/* Frees what fe_parse kept (the option strings from files go with it). */
void fe_free(struct fe_opts *o);

/* The programs options are passed on to (a bit mask). */
enum fe_prog {
	TO_COLLECT = 1 << 0,
	TO_INJECT = 1 << 1,
};

struct args;
/* The options of o that go to prog, "--NAME [VALUE]" each, in the order of
 * the options table. */
void fe_forward(struct args *a, const struct fe_opts *o, enum fe_prog prog);

/* Print the help of one command, or of all of them for CMD_NONE. */
void fe_usage(FILE *f, enum fe_cmd cmd);

#endif
