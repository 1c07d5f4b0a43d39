/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Descriptor types on restore. Each open file description is opened once
 * in stasis-inject by its type's open() and inherited by the tasks at a
 * staging number; post() runs in each task once all its descriptors are
 * at their numbers, for state that names other descriptors (epoll).
 */
#ifndef STASIS_INJECT_FILES_H
#define STASIS_INJECT_FILES_H

#include "inject.h"

struct fd_restore_ops {
	Stasis__FdType type;
	int (*open)(Stasis__FileEntry *fe);
	int (*post)(struct itask *t, Stasis__FdinfoEntry *fi, Stasis__FileEntry *fe);
};

/* The task's descriptor fd itself, in stasis-inject (pidfd_getfd); -1 logged. */
int task_fd(pid_t pid, int fd);

/* Another description of the checkpoint, by id (freed by the caller). */
Stasis__FileEntry *file_by_id(uint32_t id);
/*
 * A new descriptor of description id, which a queued message carries
 * (SCM_RIGHTS): opened and staged once, like the ones the tasks hold (a
 * task may hold it too). Only while files are staged; -1 logged.
 */
int files_open_flight(uint32_t id);
/* events.c: the registrations of an epoll in flight (epfd), made once it
 * is opened, on the files open_target gives (a descriptor the call
 * closes, -1 logged); any other file: nothing. 0 or -1 (logged). */
int epoll_register_flight(int epfd, uint32_t id, int (*open_target)(uint32_t id));

extern const struct fd_restore_ops regfile_restore_ops, dir_restore_ops, chr_restore_ops,
	tty_restore_ops, ptmx_restore_ops, pts_restore_ops, ctty_restore_ops;
extern const struct fd_restore_ops pipe_restore_ops, fifo_restore_ops;
extern const struct fd_restore_ops eventfd_restore_ops, epoll_restore_ops, signalfd_restore_ops,
	timerfd_restore_ops, inotify_restore_ops, memfd_restore_ops;
extern const struct fd_restore_ops unixsk_restore_ops, inetsk_restore_ops;
extern const struct fd_restore_ops pidfd_restore_ops, fanotify_restore_ops;
extern const struct fd_restore_ops packetsk_restore_ops, netlinksk_restore_ops;
extern const struct fd_restore_ops procfs_restore_ops, nsfs_restore_ops;
/* procfs.c: a process (PID if free) that exits when ended, whose /proc
 * directory becomes that of a process gone. */
pid_t procfs_helper_start(pid_t pid);
void procfs_helper_end(pid_t child);

/* pidfd.c: the pidfds of threads created after the descriptors */
int pidfd_restore_late(struct itask *t);
/* inet.c: takes the restored TCP connections out of repair mode, once
 * every socket of the tree exists. 0 or -1 (logged). */
int inet_finish(void);

/* The staging number of description id (held by every task until its
 * descriptors are in place), or -1. */
int files_staged_fd(uint32_t id);
/* packet.c, for packet and netlink sockets: a classic BPF filter (f may be
 * NULL) and the buffer sizes; -1 with errno set. */
int skfilter_restore(int fd, const Stasis__SkFilter *f);
int sk_common_restore(int fd, const Stasis__SkCommon *c);
int sock_set_bufs(int fd, bool has_snd, uint32_t snd, bool has_rcv, uint32_t rcv);

#endif
