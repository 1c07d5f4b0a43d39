/* SPDX-License-Identifier: GPL-2.0 */
/* Unix sockets: what sockets.c and unix-queue.c share. */
#ifndef STASIS_COLLECT_UNIX_H
#define STASIS_COLLECT_UNIX_H

#include <stdbool.h>
#include <stdint.h>

#include "files.h"
#include "stasis/sockdiag.h"

/* sockets.c: the namespace's socket ino (sock_diag), or NULL */
const struct unix_diag_sk *unix_diag_sk(uint32_t ino);
/* sockets.c: whether socket ino is the tree's (held by a task, or in flight) */
bool unix_in_tree(uint32_t ino);
void unix_tree_add(uint32_t ino);
int unix_getint(int fd, int opt, int *val);
/* "fd N of task P" for messages, or that the socket is one in flight */
const char *unix_holder(pid_t pid, int fd);
void unix_set_bytes(ProtobufCBinaryData *b, const void *data, size_t len);

/* unix-queue.c: reads the queue of the socket at fd tfd of pid (once) */
int unix_queue_read_task(pid_t pid, int tfd);
/* unix-queue.c: the queue of socket d into sk, its files in flight described */
int unix_queue_dump(const struct fd_src *src, int fd, const struct unix_diag_sk *d,
		    Stasis__UnixSk *sk);

#endif
