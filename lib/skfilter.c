// SPDX-License-Identifier: GPL-2.0
/* Classic BPF socket filters: read back and attach again. */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "stasis/skfilter.h"
#include "stasis/util.h"

#ifndef SO_GET_FILTER
#define SO_GET_FILTER SO_ATTACH_FILTER
#endif
#ifndef SO_LOCK_FILTER
#define SO_LOCK_FILTER 44
#endif

int skfilter_get(int fd, struct sock_filter **prog, size_t *len)
{
	/* SO_GET_FILTER counts in instructions, not bytes */
	socklen_t n = 0;

	*prog = NULL;
	*len = 0;
	if (getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, NULL, &n))
		return -1;
	if (!n)
		return 0;
	if (n > BPF_MAXINSNS) {
		errno = E2BIG;
		return -1;
	}
	*prog = xmalloc(n * sizeof(**prog));
	if (getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, *prog, &n)) {
		int e = errno;

		free(*prog);
		*prog = NULL;
		errno = e;
		return -1;
	}
	*len = n;
	return 0;
}

int skfilter_set(int fd, const struct sock_filter *prog, size_t len, int lock)
{
	struct sock_fprog fp = {.len = len, .filter = (struct sock_filter *)prog};
	int one = 1;

	if (len > BPF_MAXINSNS) {
		errno = E2BIG;
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof(fp)))
		return -1;
	if (lock && setsockopt(fd, SOL_SOCKET, SO_LOCK_FILTER, &one, sizeof(one)))
		return -1;
	return 0;
}
