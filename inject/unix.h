/* SPDX-License-Identifier: GPL-2.0 */
/* Unix sockets on restore: what sockets.c and unix-queue.c share. */
#ifndef STASIS_INJECT_UNIX_H
#define STASIS_INJECT_UNIX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "files.h"

/* A socket of the checkpoint while it is being made. */
struct usk {
	Stasis__FileEntry *fe;
	Stasis__UnixSk *sk;
	int fd;		/* the socket; -1 until made */
	struct usk *twin; /* the other end of its socketpair (or accepted twin) */
	int tmp;	/* a temporary end to close once fed (peer closed or outside) */
	int hold;	/* a copy kept for the queues, once the socket is handed out */
	int reach;	/* O_PATH descriptor of its socket file, to reach it by name */
	char *file;	/* the socket file it made, removed if the restore fails */
	bool inherited; /* given by --inherit-fd */
	bool accepted;	/* made by accept() on its restored listener */
	bool taken;	/* handed to the framework */
};

/* sockets.c: every unix socket of the checkpoint */
extern struct usk *usks;
extern size_t nr_usks;
/* sockets.c: where u's peer sends from, the other end of its pair, or -1 */
int unix_pair_fd(struct usk *u);
/* sockets.c: the address that reaches u (0: none) */
socklen_t unix_addr_of(struct usk *u, struct sockaddr_un *sa);

/* unix-queue.c: the files in flight in the queues, opened while staging */
int unix_open_flights(void);
/* unix-queue.c: every socket's queue sent again, with files and credentials */
int unix_queue_fill(void);
/* unix-queue.c: closes the files in flight and the helper sender */
void unix_queue_cleanup(void);

#endif
