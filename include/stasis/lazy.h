/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Lazy (post-copy) restore: the contract between the restorer
 * (stasis-inject --lazy-pages), the lazy-pages daemon that fills the
 * restored tasks' memory through their userfaultfds, and the page source
 * that daemon reads pages from (docs/lazy.md).
 *
 * Page source, two descriptors:
 *  - requests, daemon -> source: fixed 24-byte little-endian struct
 *    lazy_req records. LAZY_REQ_PAGES asks for nr_pages pages of task pid
 *    at vaddr, as they were at the dump (pid and vaddr name the dumped
 *    task, whatever the restored task did since); the source sends them
 *    before anything it pushes. LAZY_REQ_DONE: every page is in the
 *    restored tasks, the source may let its tree go (the restore is
 *    complete). The request descriptor closing without LAZY_REQ_DONE means
 *    that the restore failed: the source keeps (resumes) its tree.
 *  - responses, source -> daemon: a plaintext stasis image stream. Each
 *    answer is one LazyPages record (image LAZY_PAGES_IMAGE) naming pid,
 *    vaddr and nr_pages, followed, unless it is marked zero, by page frames
 *    (any image name and offset) holding exactly nr_pages pages. The source
 *    may send pages nobody asked for (background push, in address order)
 *    and may send a page more than once; the daemon drops what no task
 *    waits for (it may not know the task yet), and asks again for what it
 *    still misses when nothing came for a while. The stream's trailer comes
 *    after LAZY_REQ_DONE, and only then: the daemon may ask for any page
 *    until it has said that every page is in.
 *
 * Restorer -> daemon, on the unix socket LAZY_SOCKET_NAME of the work
 * directory: per task one struct lazy_task (its userfaultfd attached with
 * SCM_RIGHTS, then a pidfd of the task when flags has LAZY_TASK_PIDFD),
 * then nr_ranges struct lazy_range, all native byte order
 * (same host). A struct lazy_task with pid 0 ends the list: the tree is
 * complete. The connection closing before that means the restore failed.
 * The daemon answers LAZY_DONE_BYTE once every page is in; the connection
 * closing before that means the daemon failed (the tree must be killed).
 */
#ifndef STASIS_LAZY_H
#define STASIS_LAZY_H

#include <stdint.h>
#include <sys/types.h>

#define LAZY_SOCKET_NAME "lazy-pages.socket"
#define LAZY_PAGES_IMAGE "lazy-pages"

#define LAZY_REQ_MAGIC 0x51524c53u /* "SLRQ" little-endian */
/* Largest request; the daemon asks for a few pages at a time. */
#define LAZY_REQ_MAX_PAGES 65536u

enum lazy_req_kind {
	LAZY_REQ_PAGES = 1,
	LAZY_REQ_DONE = 2,
};

struct lazy_req {
	uint32_t magic;
	uint16_t kind;
	uint16_t flags; /* 0 */
	int32_t pid;
	uint32_t nr_pages;
	uint64_t vaddr;
} __attribute__((packed));

_Static_assert(sizeof(struct lazy_req) == 24, "lazy_req is 24 bytes");

/* One request in its wire form (little endian). */
void lazy_req_encode(struct lazy_req *req, int kind, pid_t pid, uint64_t vaddr, uint32_t nr_pages);
/* Writes one request (converted to little endian): 0, or -1 logged. */
int lazy_req_write(int fd, int kind, pid_t pid, uint64_t vaddr, uint32_t nr_pages);
/* Reads and checks one request: 1 one is in *req (host order), 0 end of
 * file at a request boundary, -1 error (logged). */
int lazy_req_read(int fd, struct lazy_req *req);

/* The source side of the response stream is in include/stasis-image/lazyresp.h. */

/* Restorer -> daemon. */
#define LAZY_TASK_MAGIC 0x4b544c53u /* "SLTK" */
#define LAZY_DONE_BYTE 'D'
#define LAZY_MAX_RANGES (1u << 20)

struct lazy_task {
	uint32_t magic;
	int32_t pid; /* 0: the end of the tree */
	uint32_t nr_ranges;
	uint32_t flags; /* LAZY_TASK_* */
};

/* A pidfd of the task follows its userfaultfd: the daemon kills by it,
 * never by a number that may name another process by then. */
#define LAZY_TASK_PIDFD 1u

/* Pages of the dumped task at start, nr_pages long, that the daemon fills. */
struct lazy_range {
	uint64_t start;
	uint64_t nr_pages;
};

/* Connects to DIR/LAZY_SOCKET_NAME: the descriptor, or -1 logged. */
int lazy_connect(const char *dir);
/* Sends pid's userfaultfd, its pidfd (or -1) and its ranges (uffd and
 * pidfd < 0 and pid 0: the end). */
int lazy_send_task(int sk, pid_t pid, int uffd, int pidfd, const struct lazy_range *ranges,
		   uint32_t nr);
/* Receives one task: 1 (*ranges malloc'ed, *uffd set unless the end,
 * *pidfd set or -1), 0 connection closed, -1 error logged. */
int lazy_recv_task(int sk, pid_t *pid, int *uffd, int *pidfd, struct lazy_range **ranges,
		   uint32_t *nr);

#endif
