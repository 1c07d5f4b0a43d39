/* SPDX-License-Identifier: GPL-2.0 */
/* stasis-serialize chain: a chain of links in one stream (chainstream.c). */
#ifndef STASIS_SERIALIZE_CHAINSTREAM_H
#define STASIS_SERIALIZE_CHAINSTREAM_H

#include <stdbool.h>

struct chain_stream_opts {
	const char *tls_key; /* opens sealed links (default SEAL_DEFAULT_KEY) */
	bool require_sealed; /* refuse a link that is not sealed */
	int chain_fd;	     /* stasis-transfer --chain-fd's other end, or -1 */
	/* for stasis-inject --lazy-pages: the last link is written without
	 * the pages the lazy-pages daemon fills, and its page source is this
	 * program (requests on lazy_req_fd, answers on lazy_resp_fd) until
	 * every page is in */
	bool lazy;
	int lazy_req_fd, lazy_resp_fd;
};

/* Reads the links on stdin, writes the last one whole on stdout. 0 or -1. */
int chain_stream_run(const struct chain_stream_opts *o);
/* Removes a directory of links and everything in it. */
int chain_stream_remove(const char *dir);

#endif
