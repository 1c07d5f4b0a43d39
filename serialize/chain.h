/* SPDX-License-Identifier: GPL-2.0 */
/* The chain of parent links of an iterative checkpoint, for pack (chain.c). */
#ifndef STASIS_SERIALIZE_CHAIN_H
#define STASIS_SERIALIZE_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stasis-image/image.h"

struct chain;

/* The inventory of dir names a parent link (read quietly: a broken
 * inventory is reported by whoever reads it for real). */
bool chain_has_parent(const char *dir);

/* The links from dir up to the first whole one; NULL (logged) when a
 * parent is missing, foreign or unreadable. */
struct chain *chain_open(const char *dir);
void chain_free(struct chain *c);
/* dir leaves pages to its parent: pack must resolve them. */
bool chain_needed(const struct chain *c);
/* Record idx of a pagemap image, without in_prev. */
int chain_pack_pagemap(struct chain *c, const char *name, const uint8_t *buf, size_t len,
		       unsigned idx, struct img_writer *w);
/*
 * pack --lazy-pages: the runs a lazy restore leaves to the lazy-pages daemon
 * (img_run_lazy, in tasks without children) are marked lazy in the pagemap
 * records packed, and their data is not streamed: the daemon reads it from
 * the directory. Their number of pages in *pages.
 */
int chain_omit_lazy(struct chain *c, uint64_t *pages);
/* A pages image of dir with its parents' data put back, in run order. */
int chain_pack_pages(struct chain *c, const char *name, int fd, struct img_writer *w);

/*
 * stasis dedup, --auto-dedup: punches out of the older links of dir's chain
 * the page data that a newer link holds again (a hole reads as zeros and
 * takes no space). The newest link still restores whole; the older ones no
 * longer do, as with criu(8). Bytes punched in *bytes.
 */
int chain_dedup(const char *dir, uint64_t *bytes);

#endif
