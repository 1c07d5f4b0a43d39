// SPDX-License-Identifier: GPL-2.0
/* The rules collect and inject share about memory a child inherits. */
#include <string.h>
#include <sys/mman.h>

#include "stasis/proc.h"
#include "stasis-image/image.h"

bool img_forks_from_parent(const Stasis__PstreeEntry *task, const Stasis__PstreeEntry *parent)
{
	return !task->zombie && !parent->zombie &&
	       (task->sid == task->pid || task->sid == parent->sid);
}

bool img_vma_inherited(const Stasis__Vma *c, const Stasis__Vma *p)
{
	/* only private memory; mappings fork does not copy are excluded */
	if (c->flags & MAP_SHARED || c->madv & (VMF_DONTCOPY | VMF_WIPEONFORK))
		return false;
	switch (c->kind) {
	case STASIS__VMA_KIND__ANON:
	case STASIS__VMA_KIND__HEAP:
	case STASIS__VMA_KIND__STACK:
	case STASIS__VMA_KIND__FILE:
		break;
	default:
		return false;
	}
	return c->start == p->start && c->end == p->end && c->prot == p->prot &&
	       c->flags == p->flags && c->kind == p->kind && c->pgoff == p->pgoff &&
	       c->madv == p->madv && !strcmp(c->path ? c->path : "", p->path ? p->path : "") &&
	       c->ino == p->ino && c->dev == p->dev;
}
