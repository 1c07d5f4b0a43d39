/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Classic BPF socket filters (SO_ATTACH_FILTER), for any socket family:
 * SO_GET_FILTER gives the program back as it was attached.
 */
#ifndef STASIS_SKFILTER_H
#define STASIS_SKFILTER_H

#include <stddef.h>
#include <linux/filter.h>

/*
 * The filter attached to fd: *prog (malloc'ed, NULL when there is none)
 * and its number of instructions in *len. 0, or -1 with errno set (an
 * eBPF program, attached with SO_ATTACH_BPF, reads back as EINVAL).
 */
int skfilter_get(int fd, struct sock_filter **prog, size_t *len);
/* Attaches prog (len instructions) to fd, locked with SO_LOCK_FILTER if
 * lock. 0, or -1 with errno set. */
int skfilter_set(int fd, const struct sock_filter *prog, size_t len, int lock);

#endif
