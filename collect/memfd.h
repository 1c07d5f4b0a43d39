/* SPDX-License-Identifier: GPL-2.0 */
/* memfd objects (memfd.c): shared by descriptors and mappings. */
#ifndef STASIS_COLLECT_MEMFD_H
#define STASIS_COLLECT_MEMFD_H

#include <stdbool.h>

#include "collect.h"

struct proc_vma;

/* A /proc link or maps path naming a memfd: "/memfd:NAME (deleted)". */
bool memfd_path(const char *path);
/* A mapping of a memfd: registers its object (by inode, as Vma.shmid). */
int memfd_collect_vma(struct ctask *ct, const struct proc_vma *v);
/* memfds and memfd-data, read while the tree is still frozen. */
int memfd_write(struct img_writer *w);

#endif
