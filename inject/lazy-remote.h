/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The page source of a lazy migration (stasis lazy-pages --page-server):
 * the source host's lazy page server (stasis dump --lazy-pages), reached
 * through stasis-transfer --lazy-pages --to ADDRESS:PORT and opened by
 * stasis-seal --open --lazy-pages (which passes an unsealed stream as it
 * is), so that no page reaches the daemon before its tag was checked.
 */
#ifndef STASIS_INJECT_LAZY_REMOTE_H
#define STASIS_INJECT_LAZY_REMOTE_H

#include <stdbool.h>
#include <sys/types.h>

struct lazy_remote {
	const char *address, *port;
	bool tls, tls_no_cn_verify;
	const char *tls_cacert, *tls_cacrl, *tls_cert, *tls_key;
	const char *log_file; /* -o of both programs, NULL: stderr only */
};

/*
 * Starts the two programs: the daemon writes its requests to *req_fd and
 * reads the page stream on *resp_fd. Their PIDs in pids[2] (transfer,
 * seal). 0, or -1 logged (nothing left running).
 */
int lazy_remote_start(const struct lazy_remote *r, int *req_fd, int *resp_fd, pid_t pids[2]);

#endif
