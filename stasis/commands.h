/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The front-end's commands, one file each (dump.c, restore.c,
 * page_server.c, dedup.c, check.c), and what they share: the images and
 * work directories and the log (common.c), the other host (net.c).
 */
#ifndef STASIS_FRONTEND_COMMANDS_H
#define STASIS_FRONTEND_COMMANDS_H

#include <stdbool.h>

#include "options.h"
#include "pipeline.h"

/* Each returns the exit status of stasis. */
int cmd_dump(const struct fe_opts *o); /* dump.c: dump and pre-dump (chains: predump.c) */
int cmd_restore(const struct fe_opts *o);
int cmd_page_server(const struct fe_opts *o);
int cmd_dedup(const struct fe_opts *o);
int cmd_check(const struct fe_opts *o);

/* dedup.c: stasis-serialize dedup -D DIR; 0 or 1 (logged). */
int fe_run_dedup(const struct fe_opts *o, const char *dir, const char *log);

/* common.c */
/* A file named on the command line: relative paths are relative to dir
 * (criu(8)'s work directory defaults to -D). NULL for NULL; malloc'ed. */
char *fe_in_dir(const char *dir, const char *file);
/* The images directory, made if needed and checked writable. 0 or -1. */
int fe_prepare_images_dir(const char *dir);
/* -o FILE (FILE.PID with --log-pid) for the front-end. 0 or -1. */
int fe_open_log(const char *path, const struct fe_opts *o);
/* -W, or the images directory; made if missing. NULL (logged). */
char *fe_work_dir(const struct fe_opts *o, const char *images_dir);
/* --file-validation: 0, or -1 for a mode stasis does not have (logged). */
int fe_check_file_validation(const struct fe_opts *o);
/* Where a command writes: the work directory, the log and the pidfile
 * (NULL when not asked for) named relative to it. */
struct fe_files {
	char *wdir, *log, *pidfile;
};
/* -W (made if missing, else dir), -o opened for the front-end, --pidfile
 * named. 0 or -1 (logged); fe_files_free either way. */
int fe_files_open(const struct fe_opts *o, const char *dir, struct fe_files *f);
void fe_files_free(struct fe_files *f);
/* The arguments of stasis-seal --open for the key of o. */
void fe_seal_open_args(struct args *a, const struct fe_opts *o);

/* net.c */
/* A descriptor given as --OPT ARG: open and made close-on-exec. -1 (logged). */
int fe_user_fd(const char *opt, const char *arg);
/* --address and --port (listening: --port), or --ps-socket (in *ps_fd,
 * else -1), checked before anything is frozen. 0 or -1. */
int fe_net_endpoint(const struct fe_opts *o, bool listen, int *ps_fd);
/* stasis-transfer's connection and TLS options, from the front-end's. */
void fe_transfer_args(struct stage *st, const struct fe_opts *o, bool listen, int ps_fd);
/* The network options where nothing goes over the network: -1 (logged). */
int fe_check_net_use(const struct fe_opts *o);

#endif
