/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Descriptor types. files.c meets every open file description once and
 * hands it to the first type whose match() accepts it; that type fills the
 * FileEntry (its own sub-message, see FileEntry in stasis.proto).
 */
#ifndef STASIS_COLLECT_FILES_H
#define STASIS_COLLECT_FILES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "collect.h"

struct fd_src {
	pid_t pid;
	int fd;
	const char *link;   /* readlink of /proc/PID/fd/FD */
	struct stat st;	    /* stat of /proc/PID/fd/FD (the file itself) */
	const char *fdinfo; /* text of /proc/PID/fdinfo/FD */
	uint64_t pos;
	uint32_t flags;	    /* fdinfo flags, O_CLOEXEC removed */
};

struct fd_dump_ops {
	const char *name;
	bool (*match)(const struct fd_src *src);
	int (*dump)(const struct fd_src *src, Stasis__FileEntry *fe);
};

/* A copy of the task's descriptor in stasis-collect (pidfd_getfd); -1 logged. */
int fd_src_dup(const struct fd_src *src);
/* ghost.c: the id of the deleted file behind src, carried in the checkpoint. */
int ghost_collect_fd(const struct fd_src *src, uint32_t *id);
/*
 * The id of the description behind fd, a descriptor of stasis-collect's own
 * (a file in flight, received by a peek): described like a task's when new.
 * Takes fd: kept open while the description is new, closed otherwise.
 */
int files_describe_own(int fd, uint32_t *id);
/* The id of the description behind fd of task pid (described when new). */
int files_describe_task_fd(pid_t pid, int fd, uint32_t *id);
/* The value after "key:" in the fdinfo text, or NULL. */
const char *fdinfo_field(const char *fdinfo, const char *key);

extern const struct fd_dump_ops regfile_dump_ops, dir_dump_ops, chr_dump_ops, ptmx_dump_ops,
	pts_dump_ops, ctty_dump_ops;
extern const struct fd_dump_ops pipe_dump_ops, fifo_dump_ops, ghost_dump_ops;
extern const struct fd_dump_ops eventfd_dump_ops, epoll_dump_ops, signalfd_dump_ops,
	timerfd_dump_ops, inotify_dump_ops, memfd_dump_ops;
extern const struct fd_dump_ops unixsk_dump_ops, inetsk_dump_ops;
extern const struct fd_dump_ops pidfd_dump_ops, fanotify_dump_ops;

/* events.c, for inotify and fanotify: the path of an inode a watch or mark
 * is on, from the file handle fdinfo shows (hex), with its stat in *sb;
 * NULL logged. A directory through which the mount of device sdev (as
 * fdinfo encodes it) is seen; 0 when found. */
char *fsnotify_inode_path(const struct fd_src *src, unsigned sdev, unsigned long ino, uint32_t *ghost,
			  unsigned hbytes, unsigned htype, const char *hex, struct stat *sb);
int fsnotify_mount_path(pid_t pid, unsigned sdev, char *full, size_t size);
extern const struct fd_dump_ops packetsk_dump_ops, netlinksk_dump_ops;

/* The family (SO_DOMAIN) of a socket, from a copy of it; -1 if not one. */
int fd_src_sock_family(const struct fd_src *src);
/* SO_PASSCRED, SO_TIMESTAMP(NS), timeouts and SO_RCVLOWAT of a socket;
 * NULL when all are off. */
Stasis__SkCommon *sk_common_collect(int fd);
/* A classic BPF filter attached to a copy fd of src's socket, if any, in
 * *out; -1 logged. */
int skfilter_collect(const struct fd_src *src, int fd, const char *what, Stasis__SkFilter **out);
extern const struct fd_dump_ops procfs_dump_ops, nsfs_dump_ops;
/* procfs.c: link (reached through src) is /proc/PID of a process gone. */
bool procfs_dead_dir(const char *link, const char *src, pid_t *pid);

#endif
