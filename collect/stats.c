// SPDX-License-Identifier: GPL-2.0
/*
 * stats-dump: what criu(8) keeps in its stats-dump image, measured in
 * stasis-collect and written as the last record of the stream, after the
 * pages (docs/format.md puts stats-* last), so that the frozen time covers
 * the whole dump.
 */
#include <stdlib.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/util.h"

#include "bgsnap.h"
#include "stats.h"
#include "track.h"

static uint64_t start_ns, memdump_ns, memwrite_ns;

void stats_start(void)
{
	start_ns = now_ns();
}

int stats_mm_collect(struct ctask *ct, struct img_writer *w)
{
	uint64_t t = now_ns();
	int ret = mm_collect(ct, w);

	memdump_ns += now_ns() - t;
	return ret;
}

int stats_mm_write_pages(struct ctask *ct, struct img_writer *w)
{
	uint64_t t = now_ns();
	int ret = bgsnap_write_pages(ct, w);

	memwrite_ns += now_ns() - t;
	return ret;
}

/* Mappings whose pages are never dumped (the kernel makes them). */
static bool special(const Stasis__Vma *v)
{
	return v->kind == STASIS__VMA_KIND__VDSO || v->kind == STASIS__VMA_KIND__VVAR ||
	       v->kind == STASIS__VMA_KIND__VVAR_VCLOCK || v->kind == STASIS__VMA_KIND__VSYSCALL;
}

int stats_write(struct img_writer *w, const struct ctask *cts, int nr)
{
	Stasis__DumpStats s = STASIS__DUMP_STATS__INIT;
	const char *env = getenv("STASIS_FREEZE_START_NS");
	uint64_t now = now_ns(), freeze = env ? strtoull(env, NULL, 10) : 0;

	if (!start_ns)
		start_ns = now;
	s.freezing_time = freeze && freeze <= start_ns ? (start_ns - freeze) / 1000 : 0;
	s.frozen_time = (now - start_ns) / 1000;
	const struct bgsnap_stats *bg = bgsnap_stats();

	if (bg->used) {
		/* frozen until the tree ran again; the copy went on after */
		s.frozen_time = (bg->resumed_ns - start_ns) / 1000;
		s.has_background_snapshot = s.background_snapshot = true;
		s.has_background_copy_time = s.has_pages_copied_on_write = true;
		s.has_pages_copied_frozen = s.has_longest_write_wait = true;
		s.background_copy_time = (now - bg->resumed_ns) / 1000;
		s.pages_copied_on_write = bg->pages_on_fault;
		s.pages_copied_frozen = bg->pages_frozen;
		s.longest_write_wait = bg->longest_wait_ns / 1000;
	}
	s.memdump_time = memdump_ns / 1000;
	s.memwrite_time = memwrite_ns / 1000;
	s.has_tasks = s.has_threads = true;
	for (int i = 0; i < nr; i++) {
		const struct ctask *ct = &cts[i];

		if (!ct->threads) /* a zombie */
			continue;
		s.tasks++;
		s.threads += ct->tt->nr_tids;
		for (size_t j = 0; j < ct->nr_vmas; j++)
			if (!special(ct->vmas[j]))
				s.pages_scanned += (ct->vmas[j]->end - ct->vmas[j]->start) / PAGE_SIZE;
		for (size_t j = 0; j < ct->nr_runs; j++) {
			if (ct->runs[j].in_parent)
				s.pages_skipped_parent += ct->runs[j].nr_pages;
			else if (ct->runs[j].in_prev)
				s.pages_skipped_prev += ct->runs[j].nr_pages;
			else if (ct->runs[j].lazy)
				s.pages_lazy += ct->runs[j].nr_pages;
			else
				s.pages_written += ct->runs[j].nr_pages;
		}
	}
	s.has_pages_skipped_prev = track_has_parent();
	s.has_pages_lazy = opts.lazy_pages;
	if (s.pages_scanned >
	    s.pages_written + s.pages_skipped_parent + s.pages_skipped_prev + s.pages_lazy)
		s.pages_skipped = s.pages_scanned - s.pages_written - s.pages_skipped_parent -
				  s.pages_skipped_prev - s.pages_lazy;
	s.has_stream_bytes = true;
	s.stream_bytes = imgw_bytes(w);
	pr_info("dump stats: frozen %llu us, %llu pages scanned, %llu written",
		(unsigned long long)s.frozen_time, (unsigned long long)s.pages_scanned,
		(unsigned long long)s.pages_written);
	if (opts.stats_fd >= 0) {
		size_t len = stasis__dump_stats__get_packed_size(&s);
		uint8_t *buf = xmalloc(len);

		stasis__dump_stats__pack(&s, buf);
		/* for --display-stats only: its loss fails nothing */
		if (write_full(opts.stats_fd, buf, len))
			pr_warn("cannot write the statistics to --stats-fd %d", opts.stats_fd);
		free(buf);
		close(opts.stats_fd);
		opts.stats_fd = -1;
	}
	return imgw_record(w, "stats-dump", &s.base);
}
