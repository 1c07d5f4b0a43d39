// SPDX-License-Identifier: GPL-2.0
/*
 * stats-restore: criu(8) keeps the figures of a restore in the images
 * directory. stasis-inject reads a stream and knows no directory, so the
 * front-end names the file (--stats-file DIR/stats-restore.img).
 */
#include <stdio.h>

#include "stasis/log.h"
#include "stasis/util.h"
#include "stasis-image/imgfile.h"
#include "stasis-image/stats.h"

#include "stats.h"

static const char *stats_file;
static bool display;

void stats_set_file(const char *path)
{
	stats_file = path;
}

void stats_set_display(bool on)
{
	display = on;
}

/* Pages of t written from the stream, and those inherited from its parent. */
static void count_pages(const struct itask *t, Stasis__RestoreStats *s)
{
	char name[32];
	unsigned n;

	snprintf(name, sizeof(name), "pagemap-%d", t->pid);
	n = records_count(name);
	for (unsigned i = 1; i < n; i++) {
		Stasis__PagemapEntry *pe =
		    records_get(name, i, &stasis__pagemap_entry__descriptor);

		if (!pe)
			continue;
		if (pe->in_parent)
			s->pages_skipped_cow += pe->nr_pages;
		else
			s->pages_restored += pe->nr_pages;
		protobuf_c_message_free_unpacked(&pe->base, NULL);
	}
}

void stats_restored(const struct itree *tr, uint64_t start_ns)
{
	Stasis__RestoreStats s = STASIS__RESTORE_STATS__INIT;

	if (!stats_file && !display)
		return;
	s.restore_time = (now_ns() - start_ns) / 1000;
	s.has_tasks = s.has_threads = true;
	for (size_t i = 0; i < tr->nr; i++) {
		const struct itask *t = &tr->tasks[i];

		if (!task_alive(t))
			continue;
		s.tasks++;
		s.threads += t->nr_threads;
		count_pages(t, &s);
		/* left to the lazy-pages daemon, not written here */
		s.lazy_pages += t->nr_lazy_pages[0] + t->nr_lazy_pages[1];
		s.pages_restored -= t->nr_lazy_pages[0];
		s.pages_skipped_cow -= t->nr_lazy_pages[1];
	}
	s.has_lazy_pages = s.lazy_pages > 0;
	if (stats_file && imgfile_write_record(stats_file, &s.base))
		pr_warn("the restore statistics were not saved");
	if (display) {
		stats_print_restore(stdout, &s);
		fflush(stdout);
	}
}
