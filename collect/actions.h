/* SPDX-License-Identifier: GPL-2.0 */
/* The action scripts of a dump that run while stasis-collect holds the tree. */
#ifndef STASIS_COLLECT_ACTIONS_H
#define STASIS_COLLECT_ACTIONS_H

#include <sys/types.h>

/* network-lock, once the tree is frozen; non-zero: abort the dump. */
int actions_frozen(pid_t root);
/* post-dump, once the checkpoint is stored and before the tree is killed;
 * non-zero: resume the tree instead (criu(8): the script vetoes the kill). */
int actions_stored(pid_t root);
/* network-unlock, before the tree runs again (a failure, or -R); only if
 * network-lock ran. */
void actions_resume(pid_t root);

#endif
