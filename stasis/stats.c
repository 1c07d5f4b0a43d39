// SPDX-License-Identifier: GPL-2.0
/*
 * --display-stats: stasis-collect puts stats-dump into the checkpoint and
 * stasis-inject writes stats-restore (and prints it itself, since the
 * front-end may wait long for the restored tree); the front-end prints
 * the dump's once the images are stored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/util.h"
#include "stasis-image/imgfile.h"
#include "stasis-image/stats.h"

#include "ops.h"

int fe_display_dump_stats(const char *images_dir)
{
	size_t n = strlen(images_dir) + 32;
	char *p = xmalloc(n);
	Stasis__DumpStats *s;

	snprintf(p, n, "%s/stats-dump.img", images_dir);
	s = (Stasis__DumpStats *)imgfile_read_record(p, &stasis__dump_stats__descriptor, false);
	free(p);
	if (!s)
		return -1;
	stats_print_dump(stdout, s);
	fflush(stdout);
	protobuf_c_message_free_unpacked(&s->base, NULL);
	return 0;
}

int fe_display_dump_stats_fd(int fd)
{
	size_t cap = 4096, len = 0;
	uint8_t *buf = xmalloc(cap);
	Stasis__DumpStats *s = NULL;
	ssize_t n;

	while ((n = read_full(fd, buf + len, cap - len)) > 0) {
		len += n;
		if (len < cap)
			break;
		if (cap >= (1u << 20))
			break;
		cap *= 2;
		buf = xrealloc(buf, cap);
	}
	close(fd);
	if (len)
		s = stasis__dump_stats__unpack(NULL, len, buf);
	free(buf);
	if (!s) {
		pr_warn("--display-stats: stasis-collect gave no statistics");
		return -1;
	}
	stats_print_dump(stdout, s);
	fflush(stdout);
	stasis__dump_stats__free_unpacked(s, NULL);
	return 0;
}

int fe_display_lazy_stats(const char *path)
{
	Stasis__DumpStats *s;

	s = (Stasis__DumpStats *)imgfile_read_record(path, &stasis__dump_stats__descriptor, false);
	if (!s)
		return -1;
	printf("Lazy pages: %llu\n", (unsigned long long)s->pages_lazy);
	printf("Lazy pages served on request: %llu\n", (unsigned long long)s->pages_lazy_served);
	printf("Lazy pages pushed: %llu\n", (unsigned long long)s->pages_lazy_pushed);
	if (s->has_lazy_first_request)
		printf("Lazy first request after: %llu us\n",
		       (unsigned long long)s->lazy_first_request);
	printf("Lazy serving time: %llu us\n", (unsigned long long)s->lazy_time);
	fflush(stdout);
	protobuf_c_message_free_unpacked(&s->base, NULL);
	return 0;
}
