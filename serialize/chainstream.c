// SPDX-License-Identifier: GPL-2.0
/*
 * stasis-serialize chain: an iterative chain that travels as one stream
 * (docs/predump.md): its links, oldest first, each a whole image stream
 * (plain or sealed with its own keys), one after the other. The links are
 * kept in memory only, in a private directory of /dev/shm removed when
 * this program ends however it ends; each is checked as it arrives (its
 * trailer, and that it continues the link before it: track ids). The last
 * link is resolved against the others and written to stdout as one whole
 * stream for stasis-inject.
 *
 * A whole last link (a dump that needs no parent, as every one-shot
 * migration is) is not stored: it goes through as it arrives, and only its
 * trailer waits for the verdict, so a one-shot restore is not slowed.
 *
 * With --chain-fd FD (stasis-transfer --chain-fd at the other end, one
 * sender a link), after each link this program says on FD "MORE" (a
 * pre-dump stored, more to come) or "LAST" (the dump is in hand) and, for
 * the last, waits for "SENT" (the sender was told) before anything is
 * restorable. Without it, the links end with the input.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/util.h"
#include "stasis-image/image.h"
#include "stasis-image/imgfile.h"
#include "stasis-image/lazysource.h"
#include "stasis-seal/seal.h"

#include "chain.h"
#include "chainstream.h"

#define CHAIN_STREAM_MAX_LINKS 64
#define TRACK_ID_LEN	       16

/* ---- the output queue: frames of a link that goes through ---- */

struct out_item {
	struct out_item *next;
	size_t len;
	char data[];
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t more;
	struct out_item *head, *tail;
	bool closed, failed;
	int err;
	bool started;
	pthread_t thread;
} outq = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .more = PTHREAD_COND_INITIALIZER,
};

/*
 * Unbounded on purpose: stasis-inject on the same host reads nothing until
 * the source tree is gone, which is only once the last link was confirmed,
 * which needs its trailer read here.
 */
static int out_sink(void *arg, const struct img_frame *f)
{
	struct out_item *it = xmalloc(sizeof(*it) + sizeof(f->hdr) + f->hdr.len);
	int ret = 0;

	(void)arg;
	it->next = NULL;
	it->len = sizeof(f->hdr) + f->hdr.len;
	memcpy(it->data, &f->hdr, sizeof(f->hdr));
	if (f->hdr.len)
		memcpy(it->data + sizeof(f->hdr), f->data, f->hdr.len);
	pthread_mutex_lock(&outq.lock);
	if (outq.failed) {
		ret = -1;
		free(it);
	} else {
		if (outq.tail)
			outq.tail->next = it;
		else
			outq.head = it;
		outq.tail = it;
		pthread_cond_signal(&outq.more);
	}
	pthread_mutex_unlock(&outq.lock);
	if (ret)
		pr_err("cannot write the restored stream: %s", strerror(outq.err));
	return ret;
}

static void *out_writer(void *arg)
{
	(void)arg;
	for (;;) {
		struct out_item *it;

		pthread_mutex_lock(&outq.lock);
		while (!outq.head && !outq.closed)
			pthread_cond_wait(&outq.more, &outq.lock);
		it = outq.head;
		if (it) {
			outq.head = it->next;
			if (!outq.head)
				outq.tail = NULL;
		}
		pthread_mutex_unlock(&outq.lock);
		if (!it)
			return NULL;
		if (!outq.failed && write_full(STDOUT_FILENO, it->data, it->len)) {
			pthread_mutex_lock(&outq.lock);
			outq.failed = true;
			outq.err = errno ? errno : EIO;
			pthread_mutex_unlock(&outq.lock);
		}
		free(it);
	}
}

static void out_start(void)
{
	if (!outq.started)
		pthread_create(&outq.thread, NULL, out_writer, NULL);
	outq.started = true;
}

/* Everything queued written; 0 or -1. */
static int out_finish(void)
{
	if (!outq.started)
		return 0;
	pthread_mutex_lock(&outq.lock);
	outq.closed = true;
	pthread_cond_signal(&outq.more);
	pthread_mutex_unlock(&outq.lock);
	pthread_join(outq.thread, NULL);
	outq.started = false;
	if (outq.failed) {
		pr_err("cannot write the restored stream: %s", strerror(outq.err));
		return -1;
	}
	return 0;
}

/*
 * On a failure: what is queued is dropped, not written (stasis-inject may
 * read nothing while it waits for the source's PIDs, and must see its
 * input end, a stream without a trailer, at once). The writer is left to
 * die with the process.
 */
static void out_abort(void)
{
	pthread_mutex_lock(&outq.lock);
	outq.failed = true;
	outq.err = ECANCELED;
	while (outq.head) {
		struct out_item *it = outq.head;

		outq.head = it->next;
		free(it);
	}
	outq.tail = NULL;
	pthread_mutex_unlock(&outq.lock);
}

/* ---- the links ---- */

enum link_mode {
	LINK_UNDECIDED, /* before its inventory */
	LINK_STORE,	/* kept in memory, as a directory */
	LINK_PASS,	/* a whole dump: goes through */
};

struct held_frame {
	struct img_frame f;
	struct held_frame *next;
};

struct chain_stream {
	const struct chain_stream_opts *o;
	char *tmp; /* the private directory, links in tmp/1, tmp/2, ... */
	int nr;	   /* links read so far */
	/* the link being read */
	enum link_mode mode;
	struct held_frame *held, **held_tail;
	struct img_unpack *u;
	struct img_writer *w;
	char dir[PATH_MAX]; /* where it is stored (the unpack keeps a pointer) */
	bool has_inventory, pre_dump, has_parent;
	uint8_t track_id[TRACK_ID_LEN];
	bool has_track_id;
	/* the link before it */
	uint8_t prev_id[TRACK_ID_LEN];
	bool has_prev_id, prev_pre_dump;
	enum link_mode prev_mode;
};

static void link_dir(const struct chain_stream *cs, int k, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%d", cs->tmp, k);
}

static void held_free(struct chain_stream *cs)
{
	while (cs->held) {
		struct held_frame *h = cs->held;

		cs->held = h->next;
		free(h->f.data);
		free((char *)h->f.image);
		free(h);
	}
	cs->held_tail = &cs->held;
}

static int put_frame(struct chain_stream *cs, const struct img_frame *f)
{
	if (cs->mode == LINK_STORE)
		return imgunpack_put(cs->u, f);
	return imgw_frame(cs->w, f);
}

/* The link's inventory: is it the link the chain needs next, and how is
 * it kept. */
static int take_inventory(struct chain_stream *cs, const struct img_frame *f)
{
	Stasis__Inventory *inv = stasis__inventory__unpack(NULL, f->hdr.len, f->data);
	int ret = -1;

	if (!inv) {
		pr_err("link %d of the chain: its inventory does not decode", cs->nr);
		return -1;
	}
	cs->has_inventory = true;
	cs->pre_dump = inv->has_pre_dump && inv->pre_dump;
	cs->has_parent = inv->has_parent_track_id;
	cs->has_track_id = inv->has_track_id && inv->track_id.len == TRACK_ID_LEN;
	if (cs->has_track_id)
		memcpy(cs->track_id, inv->track_id.data, TRACK_ID_LEN);
	if (cs->nr > 1 && !cs->prev_pre_dump) {
		/* nothing of it has gone out: the dump before it was held */
		pr_err("link %d of the chain follows a dump, which ends a chain", cs->nr);
		goto out;
	}
	if (cs->has_parent) {
		if (cs->nr == 1) {
			pr_err(
			    "link 1 of the chain continues a parent link that the stream does not "
			    "carry");
			goto out;
		}
		if (!cs->has_prev_id || inv->parent_track_id.len != TRACK_ID_LEN ||
		    memcmp(inv->parent_track_id.data, cs->prev_id, TRACK_ID_LEN)) {
			pr_err("link %d of the chain belongs to another chain: it was not taken "
			       "against link %d (track ids differ)",
			       cs->nr, cs->nr - 1);
			goto out;
		}
	}
	if (cs->pre_dump && cs->o->chain_fd >= 0 && !cs->has_track_id) {
		pr_err("link %d of the chain is a pre-dump without a track id", cs->nr);
		goto out;
	}
	if (!cs->pre_dump && !cs->has_parent && !cs->o->lazy) {
		/* a whole dump: the last link, and it needs no other (kept,
		 * for a lazy restore: its pages are served from memory) */
		cs->mode = LINK_PASS;
		out_start();
		cs->w = imgw_open_sink(out_sink, NULL);
	} else {
		cs->mode = LINK_STORE;
		link_dir(cs, cs->nr, cs->dir, sizeof(cs->dir));
		cs->u = imgunpack_open(cs->dir);
		if (!cs->u)
			goto out;
	}
	ret = 0;
	/* what came before the inventory (declarations), in order */
	for (struct held_frame *h = cs->held; h && !ret; h = h->next)
		ret = put_frame(cs, &h->f);
	held_free(cs);
out:
	stasis__inventory__free_unpacked(inv, NULL);
	return ret;
}

/* One plaintext frame of the link being read (a seal_out_fn). */
static int link_frame(void *arg, const struct img_frame *f)
{
	struct chain_stream *cs = arg;
	struct held_frame *h;

	if (cs->mode != LINK_UNDECIDED)
		return put_frame(cs, f);
	if (f->hdr.kind == FRAME_RECORD && f->image && !strcmp(f->image, "inventory")) {
		if (take_inventory(cs, f))
			return -1;
		return put_frame(cs, f);
	}
	if (f->hdr.kind == FRAME_RECORD || f->hdr.kind == FRAME_PAGES) {
		pr_err("link %d of the chain does not start with its inventory (image %s first)",
		       cs->nr, f->image ? f->image : "?");
		return -1;
	}
	if (f->hdr.len > 4096) {
		pr_err("link %d of the chain: frame %llu before the inventory is too long", cs->nr,
		       (unsigned long long)f->hdr.seq);
		return -1;
	}
	h = xzalloc(sizeof(*h));
	h->f = *f;
	h->f.data = xmalloc(f->hdr.len + 1);
	h->f.stable = false;
	memcpy(h->f.data, f->data, f->hdr.len);
	h->f.image = f->image ? xstrdup(f->image) : NULL;
	*cs->held_tail = h;
	cs->held_tail = &h->next;
	return 0;
}

/* Reads link cs->nr from stdin: 1 read and checked, 0 no more links, -1. */
static int read_link(struct chain_stream *cs)
{
	char what[64];
	struct img_reader *r;
	struct seal_open *so = NULL;
	struct img_frame f;
	int n, ret = -1;
	bool first = true;

	snprintf(what, sizeof(what), "link %d of the chain", cs->nr + 1);
	r = imgr_open_link(STDIN_FILENO, what);
	cs->nr++;
	cs->mode = LINK_UNDECIDED;
	cs->has_inventory = false;
	cs->held_tail = &cs->held;
	while ((n = imgr_next(r, &f)) == 1) {
		if (f.hdr.kind == FRAME_HEAD) {
			if (link_frame(cs, &f))
				goto out;
			continue;
		}
		if (first) {
			first = false;
			if (f.hdr.kind == FRAME_IMAGE && !strcmp(f.image, "cipher")) {
				so = seal_open_create(cs->o->tls_key ? cs->o->tls_key
								     : SEAL_DEFAULT_KEY,
						      0, link_frame, cs);
				if (!so)
					goto out;
				pr_info("%s is sealed: opening it with its own keys", what);
			} else if (cs->o->require_sealed) {
				pr_err("%s is not sealed, and a sealed chain was expected (-e)",
				       what);
				goto out;
			}
		}
		if (so ? seal_open_put(so, &f) : link_frame(cs, &f))
			goto out;
	}
	if (n < 0)
		goto out;
	if (imgr_empty(r)) {
		cs->nr--;
		ret = 0;
		goto out;
	}
	if (so && seal_open_finish(so))
		goto out;
	if (!cs->has_inventory) {
		pr_err("%s has no inventory", what);
		goto out;
	}
	ret = 1;
out:
	seal_open_free(so);
	imgr_free(r);
	held_free(cs);
	return ret;
}

/* The link just read is stored: DIR/parent leads to the one before. */
static int store_link(struct chain_stream *cs)
{
	char path[PATH_MAX], target[32];

	if (imgunpack_commit(cs->u))
		return -1;
	imgunpack_free(cs->u);
	cs->u = NULL;
	if (cs->has_parent) {
		snprintf(path, sizeof(path), "%s/%d/parent", cs->tmp, cs->nr);
		snprintf(target, sizeof(target), "../%d", cs->nr - 1);
		if (symlink(target, path)) {
			pr_perror("cannot link %s", path);
			return -1;
		}
	}
	return 0;
}

/* The chain fd: our word about the link just read, and for the last the
 * transfer's that the sender was told. */
static int tell_transfer(struct chain_stream *cs, bool last)
{
	char buf[5];

	if (write_full(cs->o->chain_fd, last ? "LAST\n" : "MORE\n", 5)) {
		pr_perror("cannot tell stasis-transfer about link %d", cs->nr);
		return -1;
	}
	if (!last)
		return 0;
	if (read_full(cs->o->chain_fd, buf, 5) != 5 || memcmp(buf, "SENT\n", 5)) {
		pr_err("the sender was not told that the chain arrived: nothing is restored");
		return -1;
	}
	return 0;
}

/* The last link read resolves: every page it leaves to the others is in
 * them. */
static int check_last(struct chain_stream *cs)
{
	char dir[PATH_MAX];
	struct chain *c;

	link_dir(cs, cs->nr, dir, sizeof(dir));
	c = chain_open(dir);
	chain_free(c);
	return c ? 0 : -1;
}

/* The last link read, resolved against the others, to stdout. */
static int emit_last(struct chain_stream *cs)
{
	char dir[PATH_MAX];
	struct img_writer *w;
	int ret;

	if (cs->mode == LINK_PASS) {
		ret = imgw_finish(cs->w);
		ret = out_finish() || ret ? -1 : 0;
	} else {
		link_dir(cs, cs->nr, dir, sizeof(dir));
		w = imgw_open(STDOUT_FILENO);
		ret = (cs->o->lazy ? imgdir_pack_lazy(dir, w) : imgdir_pack(dir, w)) ||
			      imgw_finish(w)
			  ? -1
			  : 0;
		imgw_free(w);
	}
	/* a complete stream: stasis-inject may still wait for the source's
	 * PIDs before it reads, and must not see our end close first */
	if (!ret)
		pipe_wait_drained(STDOUT_FILENO);
	return ret;
}

/* A link the chain goes on from: its id for the next. */
static void link_done(struct chain_stream *cs)
{
	cs->has_prev_id = cs->has_track_id;
	memcpy(cs->prev_id, cs->track_id, TRACK_ID_LEN);
	cs->prev_pre_dump = cs->pre_dump;
	cs->prev_mode = cs->mode;
}

/*
 * Removes the private directory when this program ends, by any means (a
 * SIGKILL included): a child that waits for the end of a pipe only we hold.
 */
static int start_janitor(const char *tmp)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC)) {
		pr_perror("cannot create a pipe");
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		pr_perror("cannot fork");
		return -1;
	}
	if (pid == 0) {
		int keep = p[0];
		char c;

		/* hold none of the pipeline's descriptors */
		for (int fd = 0; fd < 1024; fd++)
			if (fd != keep)
				close(fd);
		/* out of our session and our tree: what kills us (a ^C to the
		 * foreground group, SIGKILL to our descendants) spares it */
		setsid();
		if (fork())
			_exit(0);
		while (read(keep, &c, 1) < 0 && errno == EINTR)
			;
		_exit(chain_stream_remove(tmp) ? 1 : 0);
	}
	waitpid(pid, NULL, 0);
	close(p[0]);
	/* p[1] stays open in us until we end */
	return 0;
}

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path) && errno != ENOENT ? -1 : 0;
}

int chain_stream_remove(const char *dir)
{
	return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int chain_stream_run(const struct chain_stream_opts *o)
{
	struct chain_stream cs = {.o = o};
	const char *shm = "/dev/shm";
	struct statfs sfs;
	char base[64];
	int ret = -1, n;

	if (isatty(STDIN_FILENO) || isatty(STDOUT_FILENO)) {
		pr_err("chain reads a chain stream on stdin and writes an image stream to stdout; "
		       "neither may be a terminal");
		return -1;
	}
	pipe_grow(STDIN_FILENO);
	pipe_grow(STDOUT_FILENO);
	/* the plaintext of the tree's memory: in memory, for root only;
	 * never on a disk */
	if (statfs(shm, &sfs) || (sfs.f_type != TMPFS_MAGIC && sfs.f_type != RAMFS_MAGIC) ||
	    access(shm, W_OK)) {
		pr_err("cannot keep the links of the chain in memory: %s is not a writable tmpfs",
		       shm);
		return -1;
	}
	snprintf(base, sizeof(base), "%s/stasis-chain.XXXXXX", shm);
	cs.tmp = mkdtemp(xstrdup(base));
	if (!cs.tmp) {
		pr_perror("cannot make a directory in %s for the links", shm);
		return -1;
	}
	pr_info("the links are kept in %s", cs.tmp);
	if (start_janitor(cs.tmp)) {
		chain_stream_remove(cs.tmp);
		free(cs.tmp);
		return -1;
	}
	for (;;) {
		if (cs.nr == CHAIN_STREAM_MAX_LINKS) {
			pr_err("more than %d links in the chain", CHAIN_STREAM_MAX_LINKS);
			goto out;
		}
		n = read_link(&cs);
		if (n < 0)
			goto out;
		if (n == 0) {
			/* the input ended: the last link read is restored */
			if (!cs.nr) {
				pr_err("empty input: no link of a chain");
				goto out;
			}
			if (o->chain_fd >= 0) {
				pr_err("the connection ended before the chain's dump arrived");
				goto out;
			}
			/* resolved now that it is known to be the last */
			cs.mode = cs.prev_mode;
			break;
		}
		if (cs.mode == LINK_STORE && store_link(&cs))
			goto out;
		/* the dump must restore before the sender hears it arrived */
		if (o->chain_fd >= 0 && !cs.pre_dump && cs.mode == LINK_STORE && check_last(&cs))
			goto out;
		pr_info("link %d of the chain received (%s, %s)", cs.nr,
			cs.pre_dump ? "pre-dump" : "dump",
			cs.mode == LINK_PASS ? "whole, passed through" : "kept in memory");
		if (o->chain_fd >= 0) {
			if (tell_transfer(&cs, !cs.pre_dump))
				goto out;
			if (!cs.pre_dump)
				break;
		}
		link_done(&cs);
	}
	ret = emit_last(&cs);
	if (!ret)
		pr_info("chain of %d link%s restored as one stream", cs.nr, cs.nr == 1 ? "" : "s");
	if (!ret && o->lazy) {
		char dir[PATH_MAX];
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

		/* the stream has ended for stasis-inject; the links stay until
		 * the daemon has every page (or gives up) */
		if (null >= 0) {
			dup2(null, STDOUT_FILENO);
			close(null);
		}
		link_dir(&cs, cs.nr, dir, sizeof(dir));
		pr_info("serving the lazy pages of %s", dir);
		ret = lazy_source_serve(dir, o->lazy_req_fd, o->lazy_resp_fd) ? -1 : 0;
	}
out:
	if (ret && outq.started)
		out_abort(); /* without the trailer: a truncated stream */
	imgw_free(cs.w);
	imgunpack_free(cs.u);
	held_free(&cs);
	if (chain_stream_remove(cs.tmp))
		pr_warn("cannot remove the links kept in %s", cs.tmp);
	free(cs.tmp);
	return ret;
}
