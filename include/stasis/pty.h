/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Data queued in a pseudo-terminal pair. A tty cannot be read without
 * consuming it, so the dump takes the data and puts it straight back, and
 * the restore puts it into the new pair the same way.
 */
#ifndef STASIS_PTY_H
#define STASIS_PTY_H

#include <stddef.h>

/*
 * Takes what is queued: out, written by the slave and not yet read by the
 * master; in, complete lines (in canonical mode; everything otherwise)
 * typed and not yet read by the slave. Buffers are malloc'd. 0 or -1.
 */
int pty_drain(int master, int slave, void **in, size_t *in_len, void **out, size_t *out_len);
/*
 * Queues in (towards the slave's reader) and out (towards the master's)
 * with echo, signals, CR/NL mapping and output processing off meanwhile,
 * so the bytes land as they were taken. 0 or -1.
 */
int pty_refill(int master, int slave, const void *in, size_t in_len, const void *out,
	       size_t out_len);

#endif
