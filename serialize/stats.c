// SPDX-License-Identifier: GPL-2.0
/* --display-stats: the figures of stats-dump and stats-restore, in the
 * words criu(8) prints them with. */
#include "stasis-image/stats.h"

static void pages(FILE *f, const char *what, uint64_t n)
{
	fprintf(f, "%s: %llu (0x%llx)\n", what, (unsigned long long)n, (unsigned long long)n);
}

void stats_print_dump(FILE *f, const Stasis__DumpStats *s)
{
	fprintf(f, "Displaying dump stats:\n");
	fprintf(f, "Freezing time: %llu us\n", (unsigned long long)s->freezing_time);
	fprintf(f, "Frozen time: %llu us\n", (unsigned long long)s->frozen_time);
	fprintf(f, "Memory dump time: %llu us\n", (unsigned long long)s->memdump_time);
	fprintf(f, "Memory write time: %llu us\n", (unsigned long long)s->memwrite_time);
	pages(f, "Memory pages scanned", s->pages_scanned);
	pages(f, "Memory pages skipped", s->pages_skipped);
	pages(f, "Memory pages shared with the parent task", s->pages_skipped_parent);
	/* an iterative link: unchanged since the previous one (criu(8) words) */
	if (s->has_pages_skipped_prev)
		pages(f, "Memory pages skipped from parent", s->pages_skipped_prev);
	pages(f, "Memory pages written", s->pages_written);
	/* a lazy dump: left to its page server */
	if (s->has_pages_lazy)
		pages(f, "Memory pages left lazy", s->pages_lazy);
	if (s->has_tasks)
		fprintf(f, "Tasks: %u, threads: %u\n", s->tasks, s->threads);
	if (s->has_stream_bytes)
		fprintf(f, "Stream bytes: %llu\n", (unsigned long long)s->stream_bytes);
	/* background snapshot: the frozen time above ended when the tree ran */
	if (s->has_background_snapshot && s->background_snapshot) {
		fprintf(f, "Background copy time: %llu us\n",
			(unsigned long long)s->background_copy_time);
		pages(f, "Memory pages copied on write", s->pages_copied_on_write);
		pages(f, "Memory pages copied frozen", s->pages_copied_frozen);
		fprintf(f, "Longest write wait: %llu us\n",
			(unsigned long long)s->longest_write_wait);
	}
}

void stats_print_restore(FILE *f, const Stasis__RestoreStats *s)
{
	fprintf(f, "Displaying restore stats:\n");
	pages(f, "Pages skipped COW", s->pages_skipped_cow);
	pages(f, "Pages restored", s->pages_restored);
	fprintf(f, "Restore time: %llu us\n", (unsigned long long)s->restore_time);
	if (s->has_tasks)
		fprintf(f, "Tasks: %u, threads: %u\n", s->tasks, s->threads);
	/* lazy restore: inject leaves pages, the daemon fills them */
	if (s->has_lazy_pages)
		pages(f, "Pages left lazy", s->lazy_pages);
	if (s->has_lazy_pages_faulted)
		pages(f, "Pages served on fault", s->lazy_pages_faulted);
	if (s->has_lazy_pages_pushed)
		pages(f, "Pages pushed", s->lazy_pages_pushed);
	if (s->has_lazy_pages_zero)
		pages(f, "Zero pages served on fault", s->lazy_pages_zero);
	if (s->has_lazy_first_run_us)
		fprintf(f, "Time to first instruction: %llu us\n",
			(unsigned long long)s->lazy_first_run_us);
	if (s->has_lazy_all_pages_us)
		fprintf(f, "Time until all pages arrived: %llu us\n",
			(unsigned long long)s->lazy_all_pages_us);
}
