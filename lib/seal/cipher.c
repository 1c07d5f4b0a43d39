// SPDX-License-Identifier: GPL-2.0
/*
 * The cryptography of a sealed checkpoint (docs/seal.md has the format;
 * this comment the reasons).
 *
 * Only what survives stasis-serialize unpack/pack is bound into the
 * cryptography: the image name, the index of a record within its image,
 * the offset of a page frame within its image, and the frame kind. Frame
 * sequence numbers, image ids and the order of the images are not: pack
 * rewrites them. Dropped or appended records and frames at the end of an
 * image are caught by the seal summary (the last record of the stream,
 * sealed like the others), checked at the end.
 *
 * Records: ChaCha20-Poly1305 under a key derived for each image, nonce =
 * record index. Pages: AES-256-XTS page by page, tweak = page index and
 * image; every page frame has an AES-256-GMAC tag in the pagetags image,
 * written just before the frame. Opening never hands out a byte of a frame
 * before its tag (or AEAD tag) verified.
 */
#include <stdlib.h>
#include <string.h>

#include "stasis/log.h"
#include "stasis/util.h"

#include "seal-int.h"

/* ---- keys of an image ---- */

/* subkey = HKDF-Expand-SHA256(master, label 0 name, 32) */
static int derive(const uint8_t master[32], const char *label, const char *name, uint8_t out[32])
{
	size_t ll = strlen(label) + 1, nl = strlen(name);
	uint8_t info[128];
	gnutls_datum_t key = {(uint8_t *)master, 32}, inf = {info, ll + nl};

	if (ll + nl > sizeof(info))
		return -1;
	memcpy(info, label, ll);
	memcpy(info + ll, name, nl);
	return gnutls_hkdf_expand(GNUTLS_MAC_SHA256, &key, &inf, out, 32) < 0 ? -1 : 0;
}

int seal_image_keys(struct seal_ctx *c, struct simg *img)
{
	gnutls_datum_t key = {img->subkey, 32};
	int ret;

	if (img->aead)
		return 0;
	if (img->kind == IK_PAGES) {
		uint8_t h[32], buf[128];
		size_t nl = strlen(img->name);
		static const char label[] = "stasis-seal xts tweak v1";

		if (derive(c->keys.mac, "stasis-seal page tag v1", img->name, img->subkey))
			goto fail;
		memcpy(buf, label, sizeof(label));
		memcpy(buf + sizeof(label), img->name, nl);
		if (gnutls_hash_fast(GNUTLS_DIG_SHA256, buf, sizeof(label) + nl, h) < 0)
			goto fail;
		memcpy(img->tweak, h, sizeof(img->tweak));
		ret = gnutls_aead_cipher_init(&img->aead, GNUTLS_CIPHER_AES_256_GCM, &key);
	} else {
		if (derive(c->keys.rec, "stasis-seal record v1", img->name, img->subkey))
			goto fail;
		ret = gnutls_aead_cipher_init(&img->aead, GNUTLS_CIPHER_CHACHA20_POLY1305, &key);
	}
	img->has_subkey = true;
	if (ret < 0) {
		img->aead = NULL;
		goto fail;
	}
	return 0;
fail:
	pr_err("image %s: cannot set up its keys", img->name);
	return -1;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = v >> (8 * i);
}

/* kind (2) | index or offset (8) | length (4) | cipher digest (32) | name length (1) | name */
static size_t make_ad(uint8_t *ad, const struct seal_ctx *c, uint16_t kind, uint64_t where,
		      uint32_t len, const char *name)
{
	size_t nl = strlen(name);

	put_le(ad, kind, 2);
	put_le(ad + 2, where, 8);
	put_le(ad + 10, len, 4);
	memcpy(ad + 14, c->digest, SEAL_DIGEST_LEN);
	ad[14 + SEAL_DIGEST_LEN] = nl;
	memcpy(ad + 15 + SEAL_DIGEST_LEN, name, nl);
	return 15 + SEAL_DIGEST_LEN + nl;
}

#define AD_MAX (15 + SEAL_DIGEST_LEN + STASIS_IMAGE_NAME_MAX)

static void ctx_buf(struct seal_ctx *c, size_t n)
{
	if (n > c->buf_size) {
		free(c->buf);
		c->buf_size = n < 65536 ? 65536 : n;
		c->buf = xmalloc(c->buf_size);
	}
}

/* Record idx of img: in -> c->buf (len + 16 bytes). The associated data
 * holds the plaintext length only implicitly (0). */
int seal_record_seal(struct seal_ctx *c, struct simg *img, uint64_t idx, const void *in, size_t len,
		     size_t *out_len)
{
	uint8_t nonce[12] = {0}, ad[AD_MAX];
	size_t ad_len = make_ad(ad, c, FRAME_RECORD, idx, 0, img->name);

	if (seal_image_keys(c, img))
		return -1;
	put_le(nonce, idx, 8);
	ctx_buf(c, len + SEAL_TAG_LEN);
	*out_len = len + SEAL_TAG_LEN;
	if (gnutls_aead_cipher_encrypt(img->aead, nonce, sizeof(nonce), ad, ad_len, SEAL_TAG_LEN,
				       in, len, c->buf, out_len) < 0) {
		pr_err("image %s, record %llu: encryption failed", img->name,
		       (unsigned long long)idx);
		return -1;
	}
	return 0;
}

int seal_record_open(struct seal_ctx *c, struct simg *img, uint64_t idx, const void *in, size_t len,
		     size_t *out_len)
{
	uint8_t nonce[12] = {0}, ad[AD_MAX];
	size_t ad_len = make_ad(ad, c, FRAME_RECORD, idx, 0, img->name);

	if (seal_image_keys(c, img))
		return -1;
	put_le(nonce, idx, 8);
	ctx_buf(c, len);
	*out_len = len;
	if (len < SEAL_TAG_LEN ||
	    gnutls_aead_cipher_decrypt(img->aead, nonce, sizeof(nonce), ad, ad_len, SEAL_TAG_LEN,
				       in, len, c->buf, out_len) < 0)
		return -1;
	return 0;
}

/* The tag of a page frame's ciphertext: GMAC, nonce = offset (8) | length
 * (4), associated data = make_ad(FRAME_PAGES, offset, length) | ciphertext. */
int seal_page_tag(const struct seal_ctx *c, gnutls_aead_cipher_hd_t aead, const struct simg *img,
		  uint64_t offset, const void *data, uint32_t len, uint8_t tag[SEAL_TAG_LEN],
		  bool verify)
{
	uint8_t nonce[12], ad[AD_MAX];
	giovec_t iov[2] = {{ad, make_ad(ad, c, FRAME_PAGES, offset, len, img->name)},
			   {(void *)data, len}};
	size_t tag_len = SEAL_TAG_LEN;
	int ret;

	put_le(nonce, offset, 8);
	put_le(nonce + 8, len, 4);
	if (verify)
		ret = gnutls_aead_cipher_decryptv2(aead, nonce, sizeof(nonce), iov, 2, NULL, 0, tag,
						   SEAL_TAG_LEN);
	else
		ret = gnutls_aead_cipher_encryptv2(aead, nonce, sizeof(nonce), iov, 2, NULL, 0, tag,
						   &tag_len);
	return ret < 0 ? -1 : 0;
}

/* AES-256-XTS page by page, in place; tweak = page index (8, LE) | image (8). */
int seal_pages_xts(gnutls_cipher_hd_t xts, const struct simg *img, uint64_t offset, uint8_t *data,
		   uint32_t len, bool decrypt)
{
	uint8_t iv[16];

	memcpy(iv + 8, img->tweak, 8);
	for (uint32_t o = 0; o < len; o += PAGE_SIZE) {
		int ret;

		put_le(iv, (offset + o) / PAGE_SIZE, 8);
		gnutls_cipher_set_iv(xts, iv, sizeof(iv));
		ret = decrypt
			  ? gnutls_cipher_decrypt2(xts, data + o, PAGE_SIZE, data + o, PAGE_SIZE)
			  : gnutls_cipher_encrypt2(xts, data + o, PAGE_SIZE, data + o, PAGE_SIZE);
		if (ret < 0)
			return -1;
	}
	return 0;
}

int seal_ctx_start(struct seal_ctx *c)
{
	gnutls_datum_t key = {c->keys.xts, sizeof(c->keys.xts)};
	int ret = gnutls_cipher_init(&c->xts, GNUTLS_CIPHER_AES_256_XTS, &key, NULL);

	if (ret < 0) {
		c->xts = NULL;
		pr_err("cannot set up AES-256-XTS: %s", gnutls_strerror(ret));
		return -1;
	}
	return 0;
}

void seal_ctx_free(struct seal_ctx *c)
{
	if (c->xts)
		gnutls_cipher_deinit(c->xts);
	seal_images_free(&c->images);
	gnutls_memset(&c->keys, 0, sizeof(c->keys));
	free(c->buf);
}
