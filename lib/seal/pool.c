// SPDX-License-Identifier: GPL-2.0
/*
 * Page frames spread over threads: sealed (XTS, then the tag) or opened
 * (the tag checked, then XTS) by workers, handed out in order.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "stasis/log.h"
#include "stasis/util.h"

#include "seal-int.h"

struct worker {
	struct pool *p;
	pthread_t th;
	gnutls_cipher_hd_t xts;
	const struct simg *img; /* whose tag key aead holds */
	gnutls_aead_cipher_hd_t aead;
};

struct pool {
	struct seal_ctx *c;
	bool open;
	job_emit_fn emit;
	void *owner;
	int nth;
	struct worker *w;
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	struct job *ring;
	uint64_t size, submitted, taken, emitted;
	bool stop;
};

int seal_job_run(const struct seal_ctx *c, gnutls_cipher_hd_t xts, gnutls_aead_cipher_hd_t aead,
		 struct job *j, bool open)
{
	if (open)
		return seal_page_tag(c, aead, j->img, j->hdr.offset, j->data, j->hdr.len, j->tag,
				     true) ||
			       seal_pages_xts(xts, j->img, j->hdr.offset, j->data, j->hdr.len, true)
			   ? -1
			   : 0;
	return seal_pages_xts(xts, j->img, j->hdr.offset, j->data, j->hdr.len, false) ||
		       seal_page_tag(c, aead, j->img, j->hdr.offset, j->data, j->hdr.len, j->tag,
				     false)
		   ? -1
		   : 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct pool *p = w->p;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct job *j;

		while (!p->stop && p->taken == p->submitted)
			pthread_cond_wait(&p->work, &p->mu);
		if (p->stop)
			break;
		j = &p->ring[p->taken++ % p->size];
		pthread_mutex_unlock(&p->mu);
		j->ret = -1;
		if (w->img != j->img) {
			gnutls_datum_t key = {j->img->subkey, 32};

			if (w->aead)
				gnutls_aead_cipher_deinit(w->aead);
			w->aead = NULL;
			w->img = NULL;
			if (gnutls_aead_cipher_init(&w->aead, GNUTLS_CIPHER_AES_256_GCM, &key) >= 0)
				w->img = j->img;
			else
				w->aead = NULL;
		}
		if (w->aead)
			j->ret = seal_job_run(p->c, w->xts, w->aead, j, p->open);
		pthread_mutex_lock(&p->mu);
		j->done = true;
		pthread_cond_broadcast(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

void seal_pool_free(struct pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->nth; i++) {
		if (p->w[i].th)
			pthread_join(p->w[i].th, NULL);
		if (p->w[i].xts)
			gnutls_cipher_deinit(p->w[i].xts);
		if (p->w[i].aead)
			gnutls_aead_cipher_deinit(p->w[i].aead);
	}
	for (uint64_t i = 0; i < p->size; i++)
		free(p->ring[i].data);
	free(p->ring);
	free(p->w);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	free(p);
}

/* nth worker threads; 0: the caller does the work. */
struct pool *seal_pool_new(struct seal_ctx *c, int nth, bool open, job_emit_fn emit, void *owner)
{
	struct pool *p = xzalloc(sizeof(*p));
	gnutls_datum_t key = {c->keys.xts, sizeof(c->keys.xts)};

	p->c = c;
	p->open = open;
	p->emit = emit;
	p->owner = owner;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	if (nth <= 0)
		return p;
	p->size = 2 * nth + 2;
	p->ring = xzalloc(p->size * sizeof(*p->ring));
	for (uint64_t i = 0; i < p->size; i++)
		p->ring[i].data = xmalloc(STASIS_PAGE_FRAME_SPAN);
	p->w = xzalloc(nth * sizeof(*p->w));
	for (int i = 0; i < nth; i++) {
		struct worker *w = &p->w[i];

		w->p = p;
		if (gnutls_cipher_init(&w->xts, GNUTLS_CIPHER_AES_256_XTS, &key, NULL) < 0) {
			w->xts = NULL;
			pr_err("cannot set up AES-256-XTS");
			goto fail;
		}
		p->nth = i + 1;
		if (pthread_create(&w->th, NULL, worker_main, w)) {
			w->th = 0;
			pr_err("cannot start a thread");
			goto fail;
		}
	}
	return p;
fail:
	seal_pool_free(p);
	return NULL;
}

/* Hands out the oldest job once it is done. */
static int pool_emit_one(struct pool *p)
{
	struct job *j = &p->ring[p->emitted % p->size];
	int ret;

	pthread_mutex_lock(&p->mu);
	while (!j->done)
		pthread_cond_wait(&p->done, &p->mu);
	pthread_mutex_unlock(&p->mu);
	ret = p->emit(p->owner, j);
	p->emitted++;
	return ret;
}

/* Hands out the jobs that are done (all: every job, waiting for them). */
int seal_pool_flush(struct pool *p, bool all)
{
	while (p->emitted < p->submitted) {
		struct job *j = &p->ring[p->emitted % p->size];
		bool done;

		pthread_mutex_lock(&p->mu);
		done = j->done;
		pthread_mutex_unlock(&p->mu);
		if (!done && !all)
			return 0;
		if (pool_emit_one(p))
			return -1;
	}
	return 0;
}

/* One page frame of img (whose keys are set up); data may be overwritten. */
int seal_pool_submit(struct pool *p, struct simg *img, const struct stasis_frame_hdr *h,
		     uint8_t *data, const uint8_t *tag, bool stable)
{
	struct job *j;

	if (!p->nth) {
		struct job one = {.img = img, .hdr = *h, .data = data, .stable = stable};

		if (tag)
			memcpy(one.tag, tag, SEAL_TAG_LEN);
		one.ret = seal_job_run(p->c, p->c->xts, img->aead, &one, p->open);
		one.done = true;
		return p->emit(p->owner, &one);
	}
	while (p->submitted - p->emitted == p->size)
		if (pool_emit_one(p))
			return -1;
	j = &p->ring[p->submitted % p->size];
	j->img = img;
	j->hdr = *h;
	memcpy(j->data, data, h->len); /* the ring's: written again */
	j->stable = false;
	if (tag)
		memcpy(j->tag, tag, SEAL_TAG_LEN);
	pthread_mutex_lock(&p->mu);
	j->done = false;
	p->submitted++;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->mu);
	return seal_pool_flush(p, false);
}
