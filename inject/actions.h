/* SPDX-License-Identifier: GPL-2.0 */
/* The action scripts of a restore that run while stasis-inject holds the tree. */
#ifndef STASIS_INJECT_ACTIONS_H
#define STASIS_INJECT_ACTIONS_H

#include <sys/types.h>

/* setup-namespaces, once the root task exists; non-zero: abort. */
int actions_created(pid_t root);
/* Everything is restored, the tasks are still stopped: post-restore (its
 * failure aborts the restore), network-unlock and pre-resume (theirs is
 * only logged: criu(8) says pre-resume must not fail). */
int actions_restored(pid_t root);
/* post-resume, once the tree runs. */
void actions_resumed(pid_t root);

#endif
