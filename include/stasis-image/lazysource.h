/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The page source of lazy restore that reads a checkpoint directory and
 * the links of its chain (serialize/lazysource.c; the protocol is
 * include/stasis/lazy.h): stasis-lazy-pages runs it for -D DIR,
 * stasis-serialize chain --lazy-pages for the links it keeps in memory.
 */
#ifndef STASIS_IMAGE_LAZYSOURCE_H
#define STASIS_IMAGE_LAZYSOURCE_H

#include <sys/types.h>

/* The source in a child process: its PID, and the ends of its request
 * and response pipes. */
pid_t lazy_source_start(const char *dir, int *req_fd, int *resp_fd);
/* The source itself: requests on req_fd, answers on resp_fd, until
 * LAZY_REQ_DONE (then the trailer) or the end of req_fd; exit status. */
int lazy_source_serve(const char *dir, int req_fd, int resp_fd);

#endif
