// SPDX-License-Identifier: GPL-2.0
/* The terminal progress line: see include/stasis/progress.h. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/progress.h"
#include "stasis/util.h"

#define REDRAW_NS (200 * 1000 * 1000ull)

const char *progress_size(char *buf, size_t len, uint64_t bytes)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = bytes;
	size_t u = 0;

	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

void progress_init(struct progress *p, const char *what, uint64_t total, bool estimate,
		   bool force_off)
{
	memset(p, 0, sizeof(*p));
	p->what = what;
	p->total = total;
	p->estimate = estimate;
	p->start_ns = p->last_ns = now_ns();
	p->on = !force_off && isatty(STDERR_FILENO);
}

void progress_update(struct progress *p, uint64_t done)
{
	char line[160], a[32], b[32], r[32];
	uint64_t now = now_ns(), el;
	double rate;
	int n;

	if (!p->on || now - p->last_ns < REDRAW_NS)
		return;
	p->last_ns = now;
	el = now - p->start_ns;
	rate = el ? done * 1e9 / el : 0;
	n = snprintf(line, sizeof(line), "\r%s: %s: %s", log_prog(), p->what,
		     progress_size(a, sizeof(a), done));
	if (p->total && done <= p->total)
		n += snprintf(line + n, sizeof(line) - n, " of %s%s", p->estimate ? "~" : "",
			      progress_size(b, sizeof(b), p->total));
	n += snprintf(line + n, sizeof(line) - n, ", %s/s",
		      progress_size(r, sizeof(r), (uint64_t)rate));
	if (p->total && done <= p->total && rate > 0) {
		double left = (p->total - done) / rate;

		if (left >= 60)
			n += snprintf(line + n, sizeof(line) - n, ", %dm%02ds left", (int)left / 60,
				      (int)left % 60);
		else
			n += snprintf(line + n, sizeof(line) - n, ", %d s left", (int)(left + 0.5));
	}
	/* rub out what a longer line left behind */
	n += snprintf(line + n, sizeof(line) - n, "\033[K");
	(void)!write(STDERR_FILENO, line, n < (int)sizeof(line) ? n : (int)sizeof(line) - 1);
	p->shown = true;
}

void progress_end(struct progress *p)
{
	if (p->on && p->shown)
		(void)!write(STDERR_FILENO, "\r\033[K", 4);
	p->shown = false;
}
