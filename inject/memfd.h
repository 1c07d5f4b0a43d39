/* SPDX-License-Identifier: GPL-2.0 */
/* memfd objects on restore (memfd.c): shared by descriptors and mappings. */
#ifndef STASIS_INJECT_MEMFD_H
#define STASIS_INJECT_MEMFD_H

#include <stdbool.h>

#include "inject.h"

/* A mapping of a memfd (kind SHMEM, path "/memfd:NAME (deleted)"). */
bool memfd_vma(const Stasis__Vma *v);
/* A descriptor of the memfd v maps, opened in t for the mmap; -1 logged. */
long memfd_map_open(struct itask *t, Stasis__Vma *v);
/* Once every mapping of the tree is made: seals on, holders closed. */
int memfd_seal_all(struct itask *t);

#endif
