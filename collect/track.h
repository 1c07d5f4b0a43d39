/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Memory tracking between the links of an iterative checkpoint (track.c):
 *
 *	track_take	before anything is collected: take over the tracker a
 *			previous link left running for the tree
 *	track_scan	per task, before its pages are scanned: what was written
 *	track_unchanged	per page: the parent link holds it as it is now
 *	track_arm	per task, if tracking goes on: protect what is not yet
 *	track_hold	once the link is stored: leave a holder running
 *	track_abort	on failure: stop tracking (the next link is a full one)
 */
#ifndef STASIS_COLLECT_TRACK_H
#define STASIS_COLLECT_TRACK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "collect.h"

#define TRACK_ID_LEN 16

/* The id of the tracker this link arms (random, made once). */
const uint8_t *track_new_id(void);
/* want_id: the parent link's track id, TRACK_ID_CURRENT for the running
 * tracker's whatever it is, or NULL; 0 unless broken. */
extern const uint8_t track_id_current[1]; /* a sentinel: only its address counts */
#define TRACK_ID_CURRENT track_id_current
int track_take(pid_t root, const uint8_t *want_id);
/* The parent link's id, once track_has_parent(). */
const uint8_t *track_parent_id(void);
/* The tracker found is the parent link's: unchanged pages may be left to it. */
bool track_has_parent(void);
int track_scan(struct ctask *ct, bool rearm);
bool track_unchanged(const struct ctask *ct, unsigned long addr);
/* track_unchanged can be true for some page of ct (pages are asked one by one). */
bool track_follows(const struct ctask *ct);
/* A pagemap entry that is the tracker's write-protected hole, not a page. */
bool track_is_marker(uint64_t pme);
int track_arm(struct ctask *ct);
int track_hold(pid_t root);
void track_abort(void);
/* Closes what track_take took, when tracking ends with this link. */
void track_forget(void);

#endif
