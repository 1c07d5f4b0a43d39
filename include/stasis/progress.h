/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A progress line on the terminal for long transfers of data: bytes so
 * far, rate and, when the total is known, time left. It shows only when
 * stderr is a terminal, and is rubbed out at the end.
 */
#ifndef STASIS_PROGRESS_H
#define STASIS_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

struct progress {
	const char *what; /* "dump", "restore", ... */
	uint64_t total;	  /* expected bytes; 0 when unknown */
	bool estimate;	  /* total is a guess: shown with '~' */
	uint64_t start_ns, last_ns;
	bool on, shown;
};

/* Starts a meter; it stays off when stderr is not a terminal or force_off. */
void progress_init(struct progress *p, const char *what, uint64_t total, bool estimate,
		   bool force_off);
/* done bytes so far; redraws at most five times a second. */
void progress_update(struct progress *p, uint64_t done);
/* Rubs the line out. */
void progress_end(struct progress *p);

/* "1.5 GiB": human-readable size into buf. */
const char *progress_size(char *buf, size_t len, uint64_t bytes);

#endif
