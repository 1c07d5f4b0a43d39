/* SPDX-License-Identifier: GPL-2.0 */
/* stasis-lazy-pages, the lazy restore daemon (docs/lazy.md). */
#ifndef STASIS_INJECT_LAZY_PAGES_H
#define STASIS_INJECT_LAZY_PAGES_H

#include <sys/types.h>

/* lazy-source.c: the page source reading checkpoint directory dir, in a
 * child process: its PID, and the ends of its request and response pipes. */
pid_t lazy_source_start(const char *dir, int *req_fd, int *resp_fd);
/* The source itself: requests on req_fd, answers on resp_fd; exit status. */
int lazy_source_serve(const char *dir, int req_fd, int resp_fd);

#endif
