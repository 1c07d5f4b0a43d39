/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The memory of a task as a checkpoint directory holds it, page by page,
 * with what an iterative link leaves to its parents read from them
 * (serialize/chain.c): the local page source of lazy restore reads it.
 */
#ifndef STASIS_MEMREAD_H
#define STASIS_MEMREAD_H

#include <stddef.h>
#include <stdint.h>

struct chain;

/* The links of dir's chain it needs; NULL logged. */
struct chain *chain_open(const char *dir);
void chain_free(struct chain *c);

enum chain_page {
	CHAIN_PAGE_NONE,   /* no page: reads as zeros */
	CHAIN_PAGE_DATA,   /* chain_read_memory has it */
	CHAIN_PAGE_PARENT, /* shared copy-on-write with the task's parent */
	CHAIN_PAGE_LAZY,   /* at the page source of a dump --lazy-pages */
};

/* What dir's checkpoint holds of task pid at vaddr; the answer holds up
 * to *end. */
enum chain_page chain_page(struct chain *c, uint32_t pid, uint64_t vaddr, uint64_t *end);
/* The tasks of dir's checkpoint and their parents (pstree.img), read once;
 * 0 or -1 (logged). Then the parent of pid, 0 if it has none there. */
int chain_load_tree(struct chain *c);
uint32_t chain_parent_of(const struct chain *c, uint32_t pid);
/* len bytes of task pid's memory at vaddr, all CHAIN_PAGE_DATA. */
int chain_read_memory(struct chain *c, uint32_t pid, uint64_t vaddr, void *buf, size_t len);

#endif
