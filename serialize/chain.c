// SPDX-License-Identifier: GPL-2.0
/*
 * Iterative checkpoints in the directory form (docs/predump.md): a link
 * whose inventory names a parent_track_id leaves the pages that were not
 * written since its parent to the parent (PagemapEntry.in_prev), found
 * through the symlink DIR/parent. Packing such a directory resolves the
 * chain, so the stream is whole and stasis-inject never sees a parent:
 * pagemap records lose in_prev, and each pages image gets its parent's data
 * put back in run order. A parent that is missing, belongs to another
 * chain, or lacks a page is an error, never a silently wrong page.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/util.h"
#include "stasis-image/image.h"
#include "stasis-image/imgfile.h"

#include "chain.h"
#include "stasis-image/memread.h"

#define CHAIN_MAX_LINKS 64

struct chain_run {
	uint64_t vaddr, nr_pages;
	bool in_parent, in_prev, lazy;
	bool omit;    /* pack --lazy-pages: left to the daemon, not streamed */
	uint64_t off; /* of its data in the pages image (when it has data) */
};

struct chain_task {
	uint32_t pid, pages_id;
	struct chain_run *runs;
	size_t nr_runs;
};

struct chain_link {
	char *dir;
	struct chain_task *tasks;
	size_t nr_tasks;
	int *pages_fds; /* by pages_id, opened when first read */
	size_t nr_pages_fds;
};

struct chain {
	struct chain_link links[CHAIN_MAX_LINKS]; /* [0] is the directory packed */
	size_t nr;
	bool needed; /* some run of links[0] is in_prev */
	/* the tree of links[0] (chain_load_tree): pid and ppid of each task */
	struct chain_tree_task {
		uint32_t pid, ppid;
	} *tree;
	size_t nr_tree;
	bool tree_loaded;
};

static void link_free(struct chain_link *l)
{
	for (size_t i = 0; i < l->nr_tasks; i++)
		free(l->tasks[i].runs);
	for (size_t i = 0; i < l->nr_pages_fds; i++)
		if (l->pages_fds[i] >= 0)
			close(l->pages_fds[i]);
	free(l->pages_fds);
	free(l->tasks);
	free(l->dir);
}

void chain_free(struct chain *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nr; i++)
		link_free(&c->links[i]);
	free(c->tree);
	free(c);
}

/* Every record of the record image file path, as raw bytes, to cb. */
static int for_each_record(const char *path, int (*cb)(void *arg, const uint8_t *buf, size_t len),
			   void *arg)
{
	char magic[8];
	uint8_t *buf = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK), ret = -1;

	if (fd < 0) {
		pr_perror("cannot open %s", path);
		return -1;
	}
	if (read_full(fd, magic, 8) != 8 || memcmp(magic, STASIS_IMG_MAGIC, 8)) {
		pr_err("%s: not a stasis image file", path);
		goto out;
	}
	buf = xmalloc(STASIS_FRAME_MAX);
	for (unsigned idx = 0;; idx++) {
		uint32_t len;
		ssize_t n = read_full(fd, &len, 4);

		if (n == 0)
			break;
		if (n != 4 || len > STASIS_FRAME_MAX || read_full(fd, buf, len) != (ssize_t)len) {
			pr_err("%s: record %u is truncated or too long", path, idx);
			goto out;
		}
		if (cb(arg, buf, len))
			goto out;
	}
	ret = 0;
out:
	free(buf);
	close(fd);
	return ret;
}

struct pagemap_load {
	const char *path;
	struct chain_task *t;
	unsigned idx;
	uint64_t off;
};

static int load_pagemap_record(void *arg, const uint8_t *buf, size_t len)
{
	struct pagemap_load *pl = arg;
	struct chain_task *t = pl->t;

	if (pl->idx++ == 0) {
		Stasis__PagemapHead *h = stasis__pagemap_head__unpack(NULL, len, buf);

		if (!h) {
			pr_err("%s: its head is not a PagemapHead", pl->path);
			return -1;
		}
		t->pages_id = h->pages_id;
		stasis__pagemap_head__free_unpacked(h, NULL);
		return 0;
	}
	Stasis__PagemapEntry *pe = stasis__pagemap_entry__unpack(NULL, len, buf);

	if (!pe || pe->nr_pages == 0 || pe->nr_pages > (1u << 30) || pe->vaddr % PAGE_SIZE) {
		pr_err("%s: record %u is not a valid PagemapEntry", pl->path, pl->idx - 1);
		if (pe)
			stasis__pagemap_entry__free_unpacked(pe, NULL);
		return -1;
	}
	if ((t->nr_runs & (t->nr_runs - 1)) == 0)
		t->runs = xrealloc(t->runs, (t->nr_runs ? 2 * t->nr_runs : 1) * sizeof(*t->runs));
	t->runs[t->nr_runs++] = (struct chain_run){ pe->vaddr, pe->nr_pages, pe->in_parent,
						    pe->in_prev, pe->lazy, false, pl->off };
	/* lazy runs (dump --lazy-pages) have their data at the page source */
	if (!pe->in_parent && !pe->in_prev && !pe->lazy)
		pl->off += pe->nr_pages * PAGE_SIZE;
	stasis__pagemap_entry__free_unpacked(pe, NULL);
	return 0;
}

static int load_link(struct chain_link *l, const char *dir, bool *needed)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	int ret = 0;

	if (!dp) {
		pr_perror("cannot open images directory %s", dir);
		return -1;
	}
	l->dir = xstrdup(dir);
	while (!ret && (de = readdir(dp))) {
		char name[STASIS_IMAGE_NAME_MAX], path[PATH_MAX];
		struct pagemap_load pl = { path, NULL, 0, 0 };

		if (!img_file_name(de->d_name, name) || strncmp(name, "pagemap-", 8))
			continue;
		l->tasks = xrealloc(l->tasks, (l->nr_tasks + 1) * sizeof(*l->tasks));
		pl.t = &l->tasks[l->nr_tasks++];
		*pl.t = (struct chain_task){ .pid = strtoul(name + 8, NULL, 10) };
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		ret = for_each_record(path, load_pagemap_record, &pl);
		for (size_t i = 0; !ret && i < pl.t->nr_runs; i++)
			if (pl.t->runs[i].in_prev)
				*needed = true;
	}
	closedir(dp);
	return ret;
}

static Stasis__Inventory *read_inventory(const char *dir)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/inventory.img", dir);
	return (Stasis__Inventory *)imgfile_read_record(path, &stasis__inventory__descriptor, 0);
}

bool chain_has_parent(const char *dir)
{
	char path[PATH_MAX], magic[8];
	uint8_t *buf = NULL;
	uint32_t len;
	bool ret = false;
	int fd;

	snprintf(path, sizeof(path), "%s/inventory.img", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return false;
	if (read_full(fd, magic, 8) == 8 && !memcmp(magic, STASIS_IMG_MAGIC, 8) &&
	    read_full(fd, &len, 4) == 4 && len <= STASIS_FRAME_MAX) {
		buf = xmalloc(len);
		if (read_full(fd, buf, len) == (ssize_t)len) {
			Stasis__Inventory *inv = stasis__inventory__unpack(NULL, len, buf);

			if (inv) {
				ret = inv->has_parent_track_id;
				stasis__inventory__free_unpacked(inv, NULL);
			}
		}
		free(buf);
	}
	close(fd);
	return ret;
}

/*
 * The links from dir up: while a link leaves pages to its parent (the
 * restore needs no more), or with all while its inventory names a parent
 * at all (dedup looks at every older copy).
 */
static struct chain *chain_walk(const char *dir, bool all)
{
	struct chain *c = xzalloc(sizeof(*c));
	Stasis__Inventory *inv = read_inventory(dir);
	char *cur = xstrdup(dir);

	if (!inv)
		goto err;
	for (;;) {
		bool needed = false;
		Stasis__Inventory *pinv;
		char *parent;

		if (load_link(&c->links[c->nr++], cur, &needed))
			goto err;
		if (c->nr == 1)
			c->needed = needed;
		if (all ? !inv->has_parent_track_id : !needed)
			break;
		if (!inv->has_parent_track_id) {
			pr_err("%s: pages are left to a parent, but the inventory names none", cur);
			goto err;
		}
		if (c->nr == CHAIN_MAX_LINKS) {
			pr_err("%s: more than %d links in the chain of parents", dir,
			       CHAIN_MAX_LINKS);
			goto err;
		}
		parent = xmalloc(strlen(cur) + 8);
		sprintf(parent, "%s/parent", cur);
		pinv = read_inventory(parent);
		if (!pinv) {
			pr_err("%s: the parent checkpoint (%s) it needs is missing", cur, parent);
			free(parent);
			goto err;
		}
		if (!pinv->has_track_id || pinv->track_id.len != inv->parent_track_id.len ||
		    memcmp(pinv->track_id.data, inv->parent_track_id.data, pinv->track_id.len)) {
			pr_err("%s: the parent checkpoint %s is not the one it was taken against", cur,
			       parent);
			stasis__inventory__free_unpacked(pinv, NULL);
			free(parent);
			goto err;
		}
		stasis__inventory__free_unpacked(inv, NULL);
		inv = pinv;
		free(cur);
		cur = parent;
	}
	stasis__inventory__free_unpacked(inv, NULL);
	free(cur);
	return c;
err:
	if (inv)
		stasis__inventory__free_unpacked(inv, NULL);
	free(cur);
	chain_free(c);
	return NULL;
}

static int chain_read(struct chain *c, size_t k, uint32_t pid, uint64_t vaddr, uint8_t *buf,
		      size_t len);

/* Every page the top link leaves to its parents is found in one, so that
 * nothing is streamed out of a chain that cannot be restored whole. */
static int chain_verify(struct chain *c)
{
	struct chain_link *top = &c->links[0];

	for (size_t i = 0; i < top->nr_tasks; i++) {
		struct chain_task *t = &top->tasks[i];

		for (size_t j = 0; j < t->nr_runs; j++)
			if (t->runs[j].in_prev &&
			    chain_read(c, 1, t->pid, t->runs[j].vaddr, NULL,
				       t->runs[j].nr_pages * PAGE_SIZE))
				return -1;
	}
	return 0;
}

struct chain *chain_open(const char *dir)
{
	struct chain *c = chain_walk(dir, false);

	if (c && c->needed && chain_verify(c)) {
		chain_free(c);
		return NULL;
	}
	return c;
}

bool chain_needed(const struct chain *c)
{
	return c && c->needed;
}

static struct chain_task *link_task(struct chain_link *l, uint32_t pid)
{
	for (size_t i = 0; i < l->nr_tasks; i++)
		if (l->tasks[i].pid == pid)
			return &l->tasks[i];
	return NULL;
}

static struct chain_task *link_task_by_pages(struct chain_link *l, uint32_t pages_id)
{
	for (size_t i = 0; i < l->nr_tasks; i++)
		if (l->tasks[i].pages_id == pages_id)
			return &l->tasks[i];
	return NULL;
}

static int link_pages_fd(struct chain_link *l, uint32_t pages_id)
{
	char path[PATH_MAX];

	if (pages_id >= l->nr_pages_fds) {
		l->pages_fds = xrealloc(l->pages_fds, (pages_id + 1) * sizeof(int));
		for (size_t i = l->nr_pages_fds; i <= pages_id; i++)
			l->pages_fds[i] = -1;
		l->nr_pages_fds = pages_id + 1;
	}
	if (l->pages_fds[pages_id] < 0) {
		snprintf(path, sizeof(path), "%s/pages-%u.img", l->dir, pages_id);
		l->pages_fds[pages_id] = open(path, O_RDONLY | O_CLOEXEC);
		if (l->pages_fds[pages_id] < 0)
			pr_perror("cannot open %s", path);
	}
	return l->pages_fds[pages_id];
}

/* len bytes of task pid's memory at vaddr as link k of the chain holds them
 * (with buf NULL: only checks that it holds them). */
static int chain_read(struct chain *c, size_t k, uint32_t pid, uint64_t vaddr, uint8_t *buf,
		      size_t len)
{
	while (len) {
		struct chain_task *t;
		struct chain_run *r = NULL;
		size_t lo = 0, hi, chunk;

		if (k >= c->nr) {
			pr_err("%s: no parent checkpoint holds page %#llx of task %u",
			       c->links[0].dir, (unsigned long long)vaddr, pid);
			return -1;
		}
		t = link_task(&c->links[k], pid);
		if (!t) {
			pr_err("%s: holds no pages of task %u, which its child link needs",
			       c->links[k].dir, pid);
			return -1;
		}
		/* runs are in address order: binary search */
		hi = t->nr_runs;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			struct chain_run *m = &t->runs[mid];

			if (vaddr < m->vaddr)
				hi = mid;
			else if (vaddr >= m->vaddr + m->nr_pages * PAGE_SIZE)
				lo = mid + 1;
			else {
				r = m;
				break;
			}
		}
		if (!r || r->in_parent || r->lazy) {
			pr_err("%s: lacks page %#llx of task %u, which its child link needs",
			       c->links[k].dir, (unsigned long long)vaddr, pid);
			return -1;
		}
		chunk = r->vaddr + r->nr_pages * PAGE_SIZE - vaddr;
		if (chunk > len)
			chunk = len;
		if (r->in_prev) {
			if (chain_read(c, k + 1, pid, vaddr, buf, chunk))
				return -1;
		} else {
			int fd = link_pages_fd(&c->links[k], t->pages_id);
			off_t off = r->off + (vaddr - r->vaddr);
			ssize_t n;

			if (fd < 0)
				return -1;
			if (!buf) {
				/* checking only: the data must be there */
				struct stat st;

				n = fstat(fd, &st) ? -1
				    : st.st_size >= off + (off_t)chunk ? (ssize_t)chunk : 0;
			} else {
				n = pread(fd, buf, chunk, off);
			}
			if (n != (ssize_t)chunk) {
				pr_err("%s/pages-%u.img: the data of page %#llx of task %u is missing",
				       c->links[k].dir, t->pages_id, (unsigned long long)vaddr, pid);
				return -1;
			}
		}
		vaddr += chunk;
		if (buf)
			buf += chunk;
		len -= chunk;
	}
	return 0;
}

int chain_pack_pagemap(struct chain *c, const char *name, const uint8_t *buf, size_t len,
		       unsigned idx, struct img_writer *w)
{
	struct chain_task *t = link_task(&c->links[0], strtoul(name + 8, NULL, 10));
	Stasis__PagemapEntry *pe;
	int ret;

	if (idx == 0)
		return imgw_record_raw(w, name, buf, len);
	pe = stasis__pagemap_entry__unpack(NULL, len, buf);
	if (!pe) {
		pr_err("%s: record %u is not a valid PagemapEntry", name, idx);
		return -1;
	}
	/* the data is put back into the pages image: a whole checkpoint */
	pe->has_in_prev = pe->in_prev = false;
	/* or left to the lazy-pages daemon, which reads it from here */
	if (t && idx - 1 < t->nr_runs && t->runs[idx - 1].omit)
		pe->has_lazy = pe->lazy = true;
	ret = imgw_record(w, name, &pe->base);
	stasis__pagemap_entry__free_unpacked(pe, NULL);
	return ret;
}

int chain_pack_pages(struct chain *c, const char *name, int fd, struct img_writer *w)
{
	struct chain_link *top = &c->links[0];
	uint32_t pages_id = strtoul(name + 6, NULL, 10);
	struct chain_task *t = link_task_by_pages(top, pages_id);
	uint8_t *buf = xmalloc(STASIS_PAGE_FRAME_SPAN);
	int ret = -1;

	if (!t) {
		pr_err("%s/%s.img: no pagemap names it", top->dir, name);
		goto out;
	}
	for (size_t i = 0; i < t->nr_runs; i++) {
		struct chain_run *r = &t->runs[i];
		uint64_t done = 0, total = r->nr_pages * PAGE_SIZE;

		if (r->in_parent || r->lazy || r->omit)
			continue;
		while (done < total) {
			size_t chunk = total - done < STASIS_PAGE_FRAME_SPAN ? total - done
									    : STASIS_PAGE_FRAME_SPAN;

			if (r->in_prev) {
				if (chain_read(c, 1, t->pid, r->vaddr + done, buf, chunk))
					goto out;
			} else if (pread(fd, buf, chunk, r->off + done) != (ssize_t)chunk) {
				pr_err("%s/%s.img: shorter than its pagemap says", top->dir, name);
				goto out;
			}
			if (imgw_pages(w, name, buf, chunk))
				goto out;
			done += chunk;
		}
	}
	ret = 0;
out:
	free(buf);
	return ret;
}

/* ------------------------------------------- pack --lazy-pages */

static int load_tree_record(void *arg, const uint8_t *buf, size_t len)
{
	struct chain *c = arg;
	Stasis__PstreeEntry *pe = stasis__pstree_entry__unpack(NULL, len, buf);

	if (!pe) {
		pr_err("%s/pstree.img: a record is not a PstreeEntry", c->links[0].dir);
		return -1;
	}
	c->tree = xrealloc(c->tree, (c->nr_tree + 1) * sizeof(*c->tree));
	c->tree[c->nr_tree++] = (struct chain_tree_task){ pe->pid, pe->ppid };
	stasis__pstree_entry__free_unpacked(pe, NULL);
	return 0;
}

int chain_load_tree(struct chain *c)
{
	char path[PATH_MAX];

	if (c->tree_loaded)
		return 0;
	snprintf(path, sizeof(path), "%s/pstree.img", c->links[0].dir);
	if (for_each_record(path, load_tree_record, c))
		return -1;
	c->tree_loaded = true;
	return 0;
}

uint32_t chain_parent_of(const struct chain *c, uint32_t pid)
{
	for (size_t i = 0; i < c->nr_tree; i++)
		if (c->tree[i].pid == pid)
			return c->tree[i].ppid;
	return 0;
}

static bool has_children(const struct chain *c, uint32_t pid)
{
	for (size_t i = 0; i < c->nr_tree; i++)
		if (c->tree[i].ppid == pid)
			return true;
	return false;
}

int chain_omit_lazy(struct chain *c, uint64_t *pages)
{
	struct chain_link *top = &c->links[0];
	char path[PATH_MAX];

	*pages = 0;
	if (chain_load_tree(c))
		return -1;
	for (size_t i = 0; i < top->nr_tasks; i++) {
		struct chain_task *t = &top->tasks[i];
		Stasis__MmEntry *mm;

		/* a parent's pages its children share are written eagerly, to
		 * stay shared (docs/lazy.md): its runs are all streamed */
		if (has_children(c, t->pid))
			continue;
		snprintf(path, sizeof(path), "%s/mm-%u.img", top->dir, t->pid);
		mm = (Stasis__MmEntry *)imgfile_read_record(path, &stasis__mm_entry__descriptor, 0);
		if (!mm)
			return -1;
		for (size_t j = 0; j < t->nr_runs; j++) {
			struct chain_run *r = &t->runs[j];

			if (!r->in_parent && !r->lazy &&
			    img_run_lazy(mm, r->vaddr, r->nr_pages * PAGE_SIZE)) {
				r->omit = true;
				*pages += r->nr_pages;
			}
		}
		stasis__mm_entry__free_unpacked(mm, NULL);
	}
	return 0;
}

/* ---------------------------------------------------------------- dedup */

/* The run of task t holding vaddr, or NULL. */
static struct chain_run *task_run(struct chain_task *t, uint64_t vaddr)
{
	size_t lo = 0, hi = t ? t->nr_runs : 0;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		struct chain_run *m = &t->runs[mid];

		if (vaddr < m->vaddr)
			hi = mid;
		else if (vaddr >= m->vaddr + m->nr_pages * PAGE_SIZE)
			lo = mid + 1;
		else
			return m;
	}
	return NULL;
}

/* Punches one page out of link l's pages of t (opened read-write once). */
static int punch(struct chain_link *l, struct chain_task *t, struct chain_run *r, uint64_t vaddr,
		 uint64_t *bytes)
{
	char path[PATH_MAX];
	int fd;

	if (t->pages_id >= l->nr_pages_fds || l->pages_fds[t->pages_id] < 0) {
		if (link_pages_fd(l, t->pages_id) < 0)
			return -1;
		close(l->pages_fds[t->pages_id]);
		snprintf(path, sizeof(path), "%s/pages-%u.img", l->dir, t->pages_id);
		l->pages_fds[t->pages_id] = open(path, O_RDWR | O_CLOEXEC);
		if (l->pages_fds[t->pages_id] < 0) {
			pr_perror("cannot open %s", path);
			return -1;
		}
	}
	fd = l->pages_fds[t->pages_id];
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, r->off + (vaddr - r->vaddr),
		      PAGE_SIZE)) {
		pr_perror("%s/pages-%u.img: cannot punch a hole", l->dir, t->pages_id);
		return -1;
	}
	*bytes += PAGE_SIZE;
	return 0;
}

int chain_dedup(const char *dir, uint64_t *bytes)
{
	struct chain *c = chain_walk(dir, true);
	int ret = -1;

	*bytes = 0;
	if (!c)
		return -1;
	/* for each page of the newest link: the first link holding its data
	 * is the live copy; every copy in an older link is dead */
	for (size_t i = 0; i < c->links[0].nr_tasks; i++) {
		struct chain_task *top = &c->links[0].tasks[i];

		for (size_t j = 0; j < top->nr_runs; j++) {
			struct chain_run *r = &top->runs[j];

			if (r->in_parent || r->lazy)
				continue;
			for (uint64_t p = 0; p < r->nr_pages; p++) {
				uint64_t vaddr = r->vaddr + p * PAGE_SIZE;
				bool live = !r->in_prev;

				for (size_t k = 1; k < c->nr; k++) {
					struct chain_link *l = &c->links[k];
					struct chain_task *t = link_task(l, top->pid);
					struct chain_run *o = task_run(t, vaddr);

					if (!o || o->in_parent)
						break; /* nothing older of this page */
					if (o->in_prev)
						continue;
					if (!live) {
						live = true; /* the copy the chain reads */
						continue;
					}
					if (punch(l, t, o, vaddr, bytes))
						goto out;
				}
			}
		}
	}
	ret = 0;
out:
	for (size_t k = 1; k < c->nr; k++)
		for (size_t i = 0; i < c->links[k].nr_pages_fds; i++)
			if (c->links[k].pages_fds[i] >= 0 && fsync(c->links[k].pages_fds[i]) && !ret) {
				pr_perror("%s: cannot sync the deduplicated pages", c->links[k].dir);
				ret = -1;
			}
	chain_free(c);
	return ret;
}

/* ------------------------------------------------- lazy restore reads */

enum chain_page chain_page(struct chain *c, uint32_t pid, uint64_t vaddr, uint64_t *end)
{
	struct chain_task *t = link_task(&c->links[0], pid);
	size_t lo = 0, hi = t ? t->nr_runs : 0;

	/* the first run ending after vaddr */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (t->runs[mid].vaddr + t->runs[mid].nr_pages * PAGE_SIZE <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!t || lo == t->nr_runs) {
		*end = UINT64_MAX & ~(PAGE_SIZE - 1);
		return CHAIN_PAGE_NONE;
	}
	if (t->runs[lo].vaddr > vaddr) {
		*end = t->runs[lo].vaddr;
		return CHAIN_PAGE_NONE;
	}
	*end = t->runs[lo].vaddr + t->runs[lo].nr_pages * PAGE_SIZE;
	if (t->runs[lo].in_parent)
		return CHAIN_PAGE_PARENT;
	return t->runs[lo].lazy ? CHAIN_PAGE_LAZY : CHAIN_PAGE_DATA;
}

int chain_read_memory(struct chain *c, uint32_t pid, uint64_t vaddr, void *buf, size_t len)
{
	return chain_read(c, 0, pid, vaddr, buf, len);
}
