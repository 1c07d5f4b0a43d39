// SPDX-License-Identifier: GPL-2.0
/*
 * Test helper for the source side of lazy migration (tests/lazy-remote.bats):
 * a stand-in for the lazy-pages daemon that checks what a page source sends
 * and turns the lazy checkpoint back into a whole one, restorable without
 * a lazy restore, so that the pages the source served can be proven right
 * by the restored program's own check.
 *
 *   stasis-test-lazysink -D DIR -O OUT [-s] < PAGE-STREAM > REQUESTS
 *
 * It reads the lazy runs of DIR's pagemaps and asks for the last page of
 * each run, then for the whole first run, then for pages no run holds
 * (answered as zeros); it reads the page stream (stdin), checking that
 * every lazy page arrives exactly once and nothing else does; once it has
 * them all it writes into OUT a copy of DIR whose pages-N hold every page,
 * sends LAZY_REQ_DONE and reads the stream to its trailer. -s: stop reading after the first answer (for the tests
 * that cut the connection), until killed. Any error: exit 1 without
 * LAZY_REQ_DONE, OUT not written.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stasis/lazy.h"
#include "stasis/log.h"
#include "stasis/util.h"
#include "stasis-image/image.h"

struct run {
	unsigned long vaddr, nr;
	bool lazy, skip; /* skip: in_parent / in_prev, no data anywhere */
	char *data;	 /* lazy: the pages received */
	uint8_t *got;	 /* lazy: a byte per page received */
};

struct task {
	pid_t pid;
	unsigned pages_id;
	struct run *runs;
	size_t nr_runs;
};

static struct task *tasks;
static size_t nr_tasks;
static uint64_t lazy_total;
static struct img_reader *rd;
static const char *dir, *out;

static void die(const char *msg)
{
	fprintf(stderr, "lazysink: %s\n", msg);
	exit(1);
}

/* The records of a record image file, each handed to fn. */
static void read_records(const char *path, void (*fn)(void *, size_t, unsigned, void *), void *arg)
{
	int fd = open(path, O_RDONLY);
	char magic[8];
	unsigned idx = 0;

	if (fd < 0 || read_full(fd, magic, 8) != 8 || memcmp(magic, STASIS_IMG_MAGIC, 8))
		die("cannot read a record image");
	for (;;) {
		uint32_t len;
		ssize_t n = read_full(fd, &len, 4);
		void *buf;

		if (n == 0)
			break;
		if (n != 4 || len > STASIS_FRAME_MAX)
			die("bad record image");
		buf = xmalloc(len ? len : 1);
		if (read_full(fd, buf, len) != len)
			die("bad record image");
		fn(buf, len, idx++, arg);
		free(buf);
	}
	close(fd);
}

static void pagemap_record(void *buf, size_t len, unsigned idx, void *arg)
{
	struct task *t = arg;

	if (!idx) {
		Stasis__PagemapHead *h = stasis__pagemap_head__unpack(NULL, len, buf);

		if (!h)
			die("bad pagemap head");
		t->pages_id = h->pages_id;
		stasis__pagemap_head__free_unpacked(h, NULL);
		return;
	}
	Stasis__PagemapEntry *e = stasis__pagemap_entry__unpack(NULL, len, buf);
	struct run *r;

	if (!e)
		die("bad pagemap entry");
	t->runs = xrealloc(t->runs, (t->nr_runs + 1) * sizeof(*t->runs));
	r = &t->runs[t->nr_runs++];
	memset(r, 0, sizeof(*r));
	r->vaddr = e->vaddr;
	r->nr = e->nr_pages;
	r->lazy = e->has_lazy && e->lazy;
	r->skip = (e->has_in_parent && e->in_parent) || (e->has_in_prev && e->in_prev);
	if (r->lazy) {
		lazy_total += r->nr;
		r->data = xmalloc(r->nr * PAGE_SIZE);
		r->got = xzalloc(r->nr);
	}
	stasis__pagemap_entry__free_unpacked(e, NULL);
}

static void load_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		die("cannot open -D");
	while ((de = readdir(d))) {
		char path[4096];
		int pid;

		if (sscanf(de->d_name, "pagemap-%d.img", &pid) != 1)
			continue;
		tasks = xrealloc(tasks, (nr_tasks + 1) * sizeof(*tasks));
		memset(&tasks[nr_tasks], 0, sizeof(*tasks));
		tasks[nr_tasks].pid = pid;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		read_records(path, pagemap_record, &tasks[nr_tasks]);
		nr_tasks++;
	}
	closedir(d);
}

static struct task *find_task(pid_t pid)
{
	for (size_t i = 0; i < nr_tasks; i++)
		if (tasks[i].pid == pid)
			return &tasks[i];
	return NULL;
}

/* The lazy run of t holding addr, or NULL. */
static struct run *find_run(struct task *t, unsigned long addr, unsigned long *page)
{
	for (size_t i = 0; i < t->nr_runs; i++) {
		struct run *r = &t->runs[i];

		if (r->lazy && addr >= r->vaddr && addr < r->vaddr + r->nr * PAGE_SIZE) {
			*page = (addr - r->vaddr) / PAGE_SIZE;
			return r;
		}
	}
	return NULL;
}

/* From a thread of its own, as a daemon would: answers are read while
 * requests are still being written. */
static void *send_requests(void *arg)
{
	bool first = true;

	(void)arg;
	for (size_t i = 0; i < nr_tasks; i++)
		for (size_t j = 0; j < tasks[i].nr_runs; j++) {
			struct run *r = &tasks[i].runs[j];

			if (!r->lazy)
				continue;
			if (lazy_req_write(STDOUT_FILENO, LAZY_REQ_PAGES, tasks[i].pid,
					   r->vaddr + (r->nr - 1) * PAGE_SIZE, 1))
				exit(1);
			if (first &&
			    lazy_req_write(STDOUT_FILENO, LAZY_REQ_PAGES, tasks[i].pid, r->vaddr,
					   r->nr < LAZY_REQ_MAX_PAGES ? r->nr : LAZY_REQ_MAX_PAGES))
				exit(1);
			first = false;
		}
	/* no run holds page 0, nor does task 1 */
	if (nr_tasks && (lazy_req_write(STDOUT_FILENO, LAZY_REQ_PAGES, tasks[0].pid, 0, 1) ||
			 lazy_req_write(STDOUT_FILENO, LAZY_REQ_PAGES, 1, PAGE_SIZE, 1)))
		exit(1);
	return NULL;
}

/* True when no run of t has a page in [a, a + nr pages). */
static bool in_no_run(struct task *t, uint64_t a, uint64_t nr)
{
	for (size_t i = 0; i < t->nr_runs; i++)
		if (t->runs[i].vaddr < a + nr * PAGE_SIZE &&
		    a < t->runs[i].vaddr + t->runs[i].nr * PAGE_SIZE)
			return false;
	return true;
}

/* The page stream, until every lazy page is in. */
static void receive(bool stall)
{
	struct img_frame f;
	struct task *t = NULL;
	unsigned long want = 0, next = 0; /* pages of the current answer */
	uint64_t answers = 0, pages = 0;
	int n = 1;

	rd = imgr_open(STDIN_FILENO, "the lazy page stream");
	while (pages < lazy_total && (n = imgr_next(rd, &f)) == 1) {
		if (f.hdr.kind == FRAME_RECORD && !strcmp(f.image, LAZY_PAGES_IMAGE)) {
			Stasis__LazyPages *lp = stasis__lazy_pages__unpack(NULL, f.hdr.len, f.data);

			if (!lp || want)
				die("unexpected lazy-pages record");
			t = find_task(lp->pid);
			if (!t || !lp->nr_pages)
				die("an answer for no task, or without pages");
			if (lp->has_zero && lp->zero) {
				if (!in_no_run(t, lp->vaddr, lp->nr_pages))
					die("dumped pages answered as zeros");
				stasis__lazy_pages__free_unpacked(lp, NULL);
				continue;
			}
			want = lp->nr_pages;
			next = lp->vaddr;
			stasis__lazy_pages__free_unpacked(lp, NULL);
			answers++;
			if (stall && answers == 1) {
				fprintf(stderr, "lazysink: stalling\n");
				for (;;)
					pause();
			}
			continue;
		}
		if (f.hdr.kind != FRAME_PAGES)
			continue;
		if (!want || f.hdr.len % PAGE_SIZE || f.hdr.len / PAGE_SIZE > want ||
		    f.hdr.offset != next)
			die("page frame out of place");
		for (unsigned long off = 0; off < f.hdr.len; off += PAGE_SIZE) {
			unsigned long page;
			struct run *r = find_run(t, next + off, &page);

			if (!r)
				die("a page that is not lazy");
			if (r->got[page])
				die("a page sent twice");
			r->got[page] = 1;
			memcpy(r->data + page * PAGE_SIZE, (char *)f.data + off, PAGE_SIZE);
			pages++;
		}
		next += f.hdr.len;
		want -= f.hdr.len / PAGE_SIZE;
	}
	if (n < 0 || want)
		die("the page stream broke off");
	for (size_t i = 0; i < nr_tasks; i++)
		for (size_t j = 0; j < tasks[i].nr_runs; j++)
			for (unsigned long p = 0; tasks[i].runs[j].lazy && p < tasks[i].runs[j].nr;
			     p++)
				if (!tasks[i].runs[j].got[p])
					die("the trailer came before every lazy page");
	fprintf(stderr, "lazysink: %llu answers, %llu pages\n", (unsigned long long)answers,
		(unsigned long long)pages);
}

/* After LAZY_REQ_DONE: the trailer, and no more pages. */
static void drain(void)
{
	struct img_frame f;
	int n;

	while ((n = imgr_next(rd, &f)) == 1)
		if (f.hdr.kind == FRAME_PAGES)
			die("a page after every page");
	if (n < 0)
		die("the page stream did not end with its trailer");
	imgr_free(rd);
}

static void write_file(const char *name, const void *data, size_t len)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", out, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write_full(fd, data, len) || close(fd))
		die("cannot write into -O");
}

static char *slurp(const char *name, size_t *len)
{
	char path[4096];
	struct stat st;
	char *buf;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY);
	if (fd < 0 || fstat(fd, &st))
		die("cannot read an image");
	buf = xmalloc(st.st_size + 1);
	if (read_full(fd, buf, st.st_size) != st.st_size)
		die("cannot read an image");
	close(fd);
	*len = st.st_size;
	return buf;
}

struct rewrite {
	char *buf;
	size_t len;
	bool inventory;
};

static void add_record(struct rewrite *w, const ProtobufCMessage *m)
{
	uint32_t len = protobuf_c_message_get_packed_size(m);

	w->buf = xrealloc(w->buf, w->len + 4 + len);
	memcpy(w->buf + w->len, &len, 4);
	protobuf_c_message_pack(m, (uint8_t *)w->buf + w->len + 4);
	w->len += 4 + len;
}

/* Records as they were, but not lazy. */
static void unlazy_record(void *buf, size_t len, unsigned idx, void *arg)
{
	struct rewrite *w = arg;

	if (w->inventory) {
		Stasis__Inventory *inv = stasis__inventory__unpack(NULL, len, buf);

		if (!inv)
			die("bad inventory");
		inv->has_lazy_pages = inv->lazy_pages = false;
		add_record(w, &inv->base);
		stasis__inventory__free_unpacked(inv, NULL);
	} else if (idx) {
		Stasis__PagemapEntry *e = stasis__pagemap_entry__unpack(NULL, len, buf);

		if (!e)
			die("bad pagemap entry");
		e->has_lazy = e->lazy = false;
		add_record(w, &e->base);
		stasis__pagemap_entry__free_unpacked(e, NULL);
	} else {
		uint32_t l = len;

		w->buf = xrealloc(w->buf, w->len + 4 + len);
		memcpy(w->buf + w->len, &l, 4);
		memcpy(w->buf + w->len + 4, buf, len);
		w->len += 4 + len;
	}
}

static void rewrite_records(const char *name, bool inventory)
{
	struct rewrite w = { .inventory = inventory };
	char path[4096];

	w.buf = xmalloc(8);
	memcpy(w.buf, STASIS_IMG_MAGIC, 8);
	w.len = 8;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	read_records(path, unlazy_record, &w);
	write_file(name, w.buf, w.len);
	free(w.buf);
}

/* OUT: DIR with the lazy pages put into pages-N, in pagemap order. */
static void write_whole(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (mkdir(out, 0700) && errno != EEXIST)
		die("cannot create -O");
	if (!d)
		die("cannot open -D");
	while ((de = readdir(d))) {
		size_t len;
		char *buf;
		int pid, id;

		if (!strstr(de->d_name, ".img") || de->d_name[0] == '.')
			continue;
		if (!strcmp(de->d_name, "inventory.img")) {
			rewrite_records(de->d_name, true);
			continue;
		}
		if (sscanf(de->d_name, "pagemap-%d.img", &pid) == 1) {
			rewrite_records(de->d_name, false);
			continue;
		}
		if (sscanf(de->d_name, "pages-%d.img", &id) == 1)
			continue;
		buf = slurp(de->d_name, &len);
		write_file(de->d_name, buf, len);
		free(buf);
	}
	closedir(d);
	for (size_t i = 0; i < nr_tasks; i++) {
		struct task *t = &tasks[i];
		char name[64];
		size_t old_len, old_off = 0, len = 0;
		char *old, *buf = NULL;

		snprintf(name, sizeof(name), "pages-%u.img", t->pages_id);
		old = slurp(name, &old_len);
		for (size_t j = 0; j < t->nr_runs; j++) {
			struct run *r = &t->runs[j];
			size_t bytes = r->nr * PAGE_SIZE;

			if (r->skip)
				continue;
			buf = xrealloc(buf, len + bytes);
			if (r->lazy) {
				memcpy(buf + len, r->data, bytes);
			} else {
				if (old_off + bytes > old_len)
					die("pages image shorter than its pagemap");
				memcpy(buf + len, old + old_off, bytes);
				old_off += bytes;
			}
			len += bytes;
		}
		if (old_off != old_len)
			die("pages image longer than its pagemap");
		write_file(name, buf ? buf : "", len);
		free(buf);
		free(old);
	}
}

int main(int argc, char **argv)
{
	bool stall = false;
	pthread_t th;
	int c;

	log_init("lazysink");
	while ((c = getopt(argc, argv, "D:O:s")) != -1) {
		switch (c) {
		case 'D':
			dir = optarg;
			break;
		case 'O':
			out = optarg;
			break;
		case 's':
			stall = true;
			break;
		default:
			die("usage: stasis-test-lazysink -D DIR -O OUT [-s]");
		}
	}
	if (!dir || !out)
		die("usage: stasis-test-lazysink -D DIR -O OUT [-s]");
	load_dir();
	if (pthread_create(&th, NULL, send_requests, NULL))
		die("cannot start a thread");
	receive(stall);
	pthread_join(th, NULL);
	write_whole();
	if (lazy_req_write(STDOUT_FILENO, LAZY_REQ_DONE, 0, 0, 0))
		return 1;
	drain();
	return 0;
}
