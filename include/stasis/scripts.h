/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Action scripts (--action-script), run at the stages criu(8) names with
 * the environment it gives them. The front-end runs pre-dump and
 * pre-restore; stasis-collect and stasis-inject the stages that happen
 * while they hold the tree (they take --action-script too).
 */
#ifndef STASIS_SCRIPTS_H
#define STASIS_SCRIPTS_H

#include <sys/types.h>

/* Adds a script; they run in the order they were added. */
void scripts_add(const char *path);
int scripts_count(void);

/*
 * Runs every script for action (CRTOOLS_SCRIPT_ACTION) with
 * CRTOOLS_INIT_PID=init_pid when init_pid > 0; CRTOOLS_IMAGE_DIR is
 * inherited from the caller's environment. A script's stdout goes to
 * stderr (stdout may carry the image stream), its stdin is /dev/null and
 * it gets no other descriptor. Every script runs; returns 0 when all exited
 * with 0, else the status of the first that did not (128 + N when killed
 * by signal N), which is logged with the script's name.
 */
int scripts_run(const char *action, pid_t init_pid);

#endif
