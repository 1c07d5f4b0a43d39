/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the front-end does around its pipelines for the operator: action
 * scripts (scripts.c), statistics (stats.c) and the progress line
 * (progress.c).
 */
#ifndef STASIS_FRONTEND_OPS_H
#define STASIS_FRONTEND_OPS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "options.h"
#include "pipeline.h"

/* scripts.c: registers --action-script and exports CRTOOLS_IMAGE_DIR (the
 * images directory, absolute) for every script and stage. 0 or -1. */
int fe_scripts_setup(const struct fe_opts *o, const char *images_dir);

/* predump.c: --prev-images-dir: 0 when not given, 1 with the parent link's
 * track id in hex (and DIR/parent made), -1 (logged) when it is no link. */
int fe_prev_link(const struct fe_opts *o, const char *dir, char hex[2 * 16 + 1]);
/* predump.c: a memory tracker (collect/track.c) keeps the tree of root
 * tracked since an earlier link: a next link can continue it. */
bool fe_tracker_runs(pid_t root);
/* predump.c: a sealed link with parents is opened link by link (stasis-seal
 * --open -D | stasis-serialize unpack) into a private directory in memory
 * (/dev/shm), parents linked as on disk: 1 with its path in *tmp, 0 when
 * dir has no parent, -1 (logged). fe_close_sealed_chain removes it. */
int fe_open_sealed_chain(const struct fe_opts *o, const char *dir, const char *log, char **tmp);
void fe_close_sealed_chain(char *tmp);

/* common.c: -v and -o, passed on to every stage. */
void add_common(struct args *a, const struct fe_opts *o, const char *log);
/* "--action-script PATH" for each script, for stasis-collect and stasis-inject. */
void fe_scripts_args(struct args *a, const struct fe_opts *o);
/* Runs the scripts of a stage the front-end owns (pre-dump, pre-restore). */
int fe_scripts_run(const char *action, pid_t init_pid);
/* The root PID of the checkpoint in dir (inventory.img), 0 if unknown. */
pid_t fe_checkpoint_root(const char *dir);

/* stats.c: --display-stats, from the images the pipeline wrote. */
int fe_display_dump_stats(const char *images_dir);
/* stats.c: the same, from the stats-dump record collect wrote to fd (read to
 * its end, then closed): for a dump whose stream went to another host. */
int fe_display_dump_stats_fd(int fd);
/* The statistics of a lazy dump's page server, in path. */
int fe_display_lazy_stats(const char *path);

/* progress.c: a progress line on the terminal for the data of a pipeline.
 * Whether to show one at all: stderr is a terminal and no log goes there. */
bool fe_progress_wanted(const struct fe_opts *o);
/* Bytes a dump of the tree of pid will carry, about (its private memory). */
uint64_t fe_tree_memory(pid_t pid);
/* Bytes of the images in dir. */
uint64_t fe_dir_bytes(const char *dir);
/* A stage that copies its stdin to its stdout and shows the progress. */
struct stage *fe_progress_add(struct pipeline *p, const char *what, uint64_t total, bool estimate);

#endif
