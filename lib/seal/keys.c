// SPDX-License-Identifier: GPL-2.0
/*
 * The keys of a sealed checkpoint and their wrapping to X.509 certificates.
 *
 * Each recipient gets a 32-byte secret shared with its private key: for an
 * RSA certificate a random secret encrypted with PKCS#1 v1.5 (GnuTLS 3.7
 * offers nothing else for RSA encryption), for an ECDSA P-256 certificate
 * the x coordinate of an ephemeral-static ECDH (GnuTLS 3.7 has no ECDH
 * call, gnutls_privkey_derive_secret came in 3.8.2: the point arithmetic is
 * Nettle's, GnuTLS's own crypto back end, on keys exported from GnuTLS).
 * From it, HKDF-SHA256 derives a wrapping key under which the 128-byte key
 * blob is sealed with AES-256-GCM; docs/seal.md has the exact inputs.
 */
#include <errno.h>
#include <fcntl.h>
#include <gmp.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <nettle/ecc-curve.h>
#include <nettle/ecc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/util.h"

#include "seal-int.h"

#define KEYFILE_MAX (1u << 20)
#define P256_LEN    32

void seal_hex(char *out, const uint8_t *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = 0;
}

int seal_keys_new(struct seal_keys *k)
{
	int ret = gnutls_rnd(GNUTLS_RND_KEY, k, sizeof(*k));

	if (ret < 0) {
		pr_err("cannot generate keys: %s", gnutls_strerror(ret));
		return -1;
	}
	/* XTS needs two different halves */
	while (!memcmp(k->xts, k->xts + 32, 32))
		if (gnutls_rnd(GNUTLS_RND_KEY, k->xts + 32, 32) < 0)
			return -1;
	return 0;
}

/* The whole file, at most KEYFILE_MAX bytes; errno set on failure. */
static int read_file(const char *path, gnutls_datum_t *d)
{
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st)) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		return -1;
	}
	if (st.st_size > KEYFILE_MAX) {
		close(fd);
		errno = EFBIG;
		return -1;
	}
	d->data = gnutls_malloc(st.st_size + 1);
	n = read_full(fd, d->data, st.st_size);
	close(fd);
	if (n != st.st_size) {
		gnutls_free(d->data);
		d->data = NULL;
		errno = n < 0 ? errno : EIO;
		return -1;
	}
	d->data[n] = 0;
	d->size = n;
	return 0;
}

static void free_datum(gnutls_datum_t *d, bool secret)
{
	if (d->data && secret)
		gnutls_memset(d->data, 0, d->size);
	gnutls_free(d->data);
	d->data = NULL;
	d->size = 0;
}

/* ---- ECDH on P-256 (Nettle) ---- */

/* Big-endian n into exactly len bytes (left-padded); -1 if it is longer. */
static int be_fixed(uint8_t *out, size_t len, const gnutls_datum_t *n)
{
	size_t skip = 0;

	while (skip < n->size && !n->data[skip])
		skip++;
	if (n->size - skip > len)
		return -1;
	memset(out, 0, len - (n->size - skip));
	memcpy(out + len - (n->size - skip), n->data + skip, n->size - skip);
	return 0;
}

/* x coordinate of scalar * point; point is 0x04 || X || Y. Rejects points
 * off the curve and out-of-range scalars. */
static int ecdh_p256(const uint8_t *scalar, size_t scalar_len, const uint8_t point[65],
		     uint8_t z[P256_LEN])
{
	const struct ecc_curve *curve = nettle_get_secp_256r1();
	struct ecc_scalar s;
	struct ecc_point p, r;
	mpz_t x, y, n;
	size_t count;
	int ret = -1;

	if (point[0] != 4)
		return -1;
	mpz_inits(x, y, n, NULL);
	ecc_scalar_init(&s, curve);
	ecc_point_init(&p, curve);
	ecc_point_init(&r, curve);
	mpz_import(n, scalar_len, 1, 1, 1, 0, scalar);
	mpz_import(x, P256_LEN, 1, 1, 1, 0, point + 1);
	mpz_import(y, P256_LEN, 1, 1, 1, 0, point + 1 + P256_LEN);
	if (!ecc_scalar_set(&s, n) || !ecc_point_set(&p, x, y))
		goto out;
	ecc_point_mul(&r, &s, &p);
	ecc_point_get(&r, x, y);
	count = (mpz_sizeinbase(x, 2) + 7) / 8;
	if (count > P256_LEN)
		goto out;
	memset(z, 0, P256_LEN);
	mpz_export(z + P256_LEN - count, NULL, 1, 1, 1, 0, x);
	ret = 0;
out:
	ecc_point_clear(&r);
	ecc_point_clear(&p);
	ecc_scalar_clear(&s);
	mpz_set_ui(n, 0);
	mpz_clears(x, y, n, NULL);
	return ret;
}

/* ---- the wrapping key ---- */

/*
 * KEK = HKDF-Expand(HKDF-Extract(salt = checkpoint_id, IKM = secret),
 *                   "stasis-seal kek v1" 0 method 0 fingerprint kem, 32)
 */
static int derive_kek(const Stasis__SealCipher *c, const Stasis__SealRecipient *r,
		      const uint8_t secret[32], uint8_t kek[32])
{
	static const char label[] = "stasis-seal kek v1";
	size_t mlen = strlen(r->method);
	size_t len = sizeof(label) + mlen + 1 + r->fingerprint.len + r->kem.len;
	uint8_t prk[32], *info = xmalloc(len), *p = info;
	gnutls_datum_t ikm = { (uint8_t *)secret, 32 };
	gnutls_datum_t salt = { c->checkpoint_id.data, c->checkpoint_id.len };
	gnutls_datum_t key = { prk, sizeof(prk) }, inf = { info, len };
	int ret;

	memcpy(p, label, sizeof(label));
	p += sizeof(label);
	memcpy(p, r->method, mlen + 1);
	p += mlen + 1;
	memcpy(p, r->fingerprint.data, r->fingerprint.len);
	p += r->fingerprint.len;
	memcpy(p, r->kem.data, r->kem.len);
	ret = gnutls_hkdf_extract(GNUTLS_MAC_SHA256, &ikm, &salt, prk);
	if (!ret)
		ret = gnutls_hkdf_expand(GNUTLS_MAC_SHA256, &key, &inf, kek, 32);
	gnutls_memset(prk, 0, sizeof(prk));
	free(info);
	if (ret < 0) {
		pr_err("key derivation failed: %s", gnutls_strerror(ret));
		return -1;
	}
	return 0;
}

/* AES-256-GCM of the key blob; nonce 0 (each KEK is used once), associated
 * data "stasis-seal wrap v1" 0 fingerprint checkpoint_id. */
static int kek_seal(const Stasis__SealCipher *c, const Stasis__SealRecipient *r,
		    const uint8_t kek[32], const void *in, size_t in_len, void *out,
		    size_t *out_len, bool decrypt)
{
	static const char label[] = "stasis-seal wrap v1";
	uint8_t nonce[12] = { 0 }, ad[sizeof(label) + 64 + 64];
	size_t ad_len = sizeof(label);
	gnutls_datum_t key = { (uint8_t *)kek, 32 };
	gnutls_aead_cipher_hd_t h;
	int ret;

	if (r->fingerprint.len > 64 || c->checkpoint_id.len > 64)
		return -1;
	memcpy(ad, label, sizeof(label));
	memcpy(ad + ad_len, r->fingerprint.data, r->fingerprint.len);
	ad_len += r->fingerprint.len;
	memcpy(ad + ad_len, c->checkpoint_id.data, c->checkpoint_id.len);
	ad_len += c->checkpoint_id.len;
	ret = gnutls_aead_cipher_init(&h, GNUTLS_CIPHER_AES_256_GCM, &key);
	if (ret < 0)
		return -1;
	if (decrypt)
		ret = gnutls_aead_cipher_decrypt(h, nonce, sizeof(nonce), ad, ad_len, 16, in,
						 in_len, out, out_len);
	else
		ret = gnutls_aead_cipher_encrypt(h, nonce, sizeof(nonce), ad, ad_len, 16, in,
						 in_len, out, out_len);
	gnutls_aead_cipher_deinit(h);
	return ret < 0 ? -1 : 0;
}

/* ---- encrypt side ---- */

static int load_cert(const char *path, gnutls_x509_crt_t *crt)
{
	gnutls_datum_t d = { NULL, 0 };
	int ret;

	if (read_file(path, &d)) {
		pr_err("cannot load certificate %s: %s", path, strerror(errno));
		return -1;
	}
	gnutls_x509_crt_init(crt);
	ret = gnutls_x509_crt_import(*crt, &d, GNUTLS_X509_FMT_PEM);
	if (ret < 0)
		ret = gnutls_x509_crt_import(*crt, &d, GNUTLS_X509_FMT_DER);
	free_datum(&d, false);
	if (ret < 0) {
		pr_err("cannot load certificate %s: %s", path, gnutls_strerror(ret));
		gnutls_x509_crt_deinit(*crt);
		return -1;
	}
	return 0;
}

static void set_bytes(ProtobufCBinaryData *b, const void *data, size_t len)
{
	b->data = xmalloc(len ? len : 1);
	memcpy(b->data, data, len);
	b->len = len;
}

static int wrap_rsa(const char *path, gnutls_pubkey_t pub, unsigned bits, Stasis__SealRecipient *r,
		    uint8_t secret[32])
{
	gnutls_datum_t in = { secret, 32 }, out = { NULL, 0 };
	int ret;

	if (bits < 2048) {
		pr_err("certificate %s: its RSA key has %u bits; at least 2048 are needed", path,
		       bits);
		return -1;
	}
	if (gnutls_rnd(GNUTLS_RND_KEY, secret, 32) < 0)
		return -1;
	ret = gnutls_pubkey_encrypt_data(pub, 0, &in, &out);
	if (ret < 0) {
		pr_err("certificate %s: cannot encrypt to its RSA key: %s", path,
		       gnutls_strerror(ret));
		return -1;
	}
	r->method = xstrdup(SEAL_WRAP_RSA);
	set_bytes(&r->kem, out.data, out.size);
	gnutls_free(out.data);
	return 0;
}

static int wrap_ecdh(const char *path, gnutls_pubkey_t pub, Stasis__SealRecipient *r,
		     uint8_t secret[32])
{
	gnutls_datum_t x = { 0 }, y = { 0 }, ex = { 0 }, ey = { 0 }, ek = { 0 };
	gnutls_ecc_curve_t curve;
	gnutls_privkey_t eph = NULL;
	uint8_t point[65], epoint[65], k[P256_LEN];
	int ret = -1, err;

	err = gnutls_pubkey_export_ecc_raw2(pub, &curve, &x, &y, GNUTLS_EXPORT_FLAG_NO_LZ);
	if (err < 0 || curve != GNUTLS_ECC_CURVE_SECP256R1) {
		pr_err(
		    "certificate %s: only P-256 elliptic-curve keys are supported (this one is %s)",
		    path, err < 0 ? gnutls_strerror(err) : gnutls_ecc_curve_get_name(curve));
		goto out;
	}
	point[0] = 4;
	if (be_fixed(point + 1, P256_LEN, &x) || be_fixed(point + 1 + P256_LEN, P256_LEN, &y))
		goto bad;
	gnutls_privkey_init(&eph);
	err = gnutls_privkey_generate(eph, GNUTLS_PK_ECDSA,
				      GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
	if (err >= 0)
		err = gnutls_privkey_export_ecc_raw2(eph, &curve, &ex, &ey, &ek,
						     GNUTLS_EXPORT_FLAG_NO_LZ);
	if (err < 0) {
		pr_err("cannot make an ephemeral P-256 key: %s", gnutls_strerror(err));
		goto out;
	}
	epoint[0] = 4;
	if (be_fixed(epoint + 1, P256_LEN, &ex) || be_fixed(epoint + 1 + P256_LEN, P256_LEN, &ey) ||
	    be_fixed(k, P256_LEN, &ek) || ecdh_p256(k, P256_LEN, point, secret))
		goto bad;
	r->method = xstrdup(SEAL_WRAP_ECDH);
	set_bytes(&r->kem, epoint, sizeof(epoint));
	ret = 0;
	goto out;
bad:
	pr_err("certificate %s: ECDH with its key failed", path);
out:
	gnutls_memset(k, 0, sizeof(k));
	free_datum(&x, false);
	free_datum(&y, false);
	free_datum(&ex, false);
	free_datum(&ey, false);
	free_datum(&ek, true);
	if (eph)
		gnutls_privkey_deinit(eph);
	return ret;
}

int seal_wrap(Stasis__SealCipher *c, const char *cert_path, const struct seal_keys *k)
{
	Stasis__SealRecipient *r = xmalloc(sizeof(*r));
	gnutls_x509_crt_t crt;
	gnutls_pubkey_t pub = NULL;
	gnutls_datum_t dn = { 0 };
	uint8_t buf[64], secret[32], kek[32], wrapped[sizeof(*k) + 16];
	size_t size, wlen = sizeof(wrapped);
	unsigned bits = 0;
	int ret = -1, algo, err;

	stasis__seal_recipient__init(r);
	if (load_cert(cert_path, &crt)) {
		free(r);
		return -1;
	}
	size = sizeof(buf);
	if (gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, buf, &size) < 0)
		goto bad_cert;
	set_bytes(&r->fingerprint, buf, size);
	for (size_t i = 0; i < c->n_recipients; i++)
		if (c->recipients[i]->fingerprint.len == size &&
		    !memcmp(c->recipients[i]->fingerprint.data, buf, size)) {
			pr_err("certificate %s is given twice", cert_path);
			goto out;
		}
	if (gnutls_x509_crt_get_dn3(crt, &dn, 0) >= 0) {
		r->subject = xstrdup((char *)dn.data);
		gnutls_free(dn.data);
	}
	gnutls_pubkey_init(&pub);
	err = gnutls_pubkey_import_x509(pub, crt, 0);
	size = sizeof(buf);
	if (err >= 0)
		err = gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA256, buf, &size);
	if (err < 0) {
		pr_err("certificate %s: cannot read its public key: %s", cert_path,
		       gnutls_strerror(err));
		goto out;
	}
	set_bytes(&r->key_id, buf, size);
	algo = gnutls_pubkey_get_pk_algorithm(pub, &bits);
	if (algo == GNUTLS_PK_RSA) {
		if (wrap_rsa(cert_path, pub, bits, r, secret))
			goto out;
	} else if (algo == GNUTLS_PK_ECDSA) {
		if (wrap_ecdh(cert_path, pub, r, secret))
			goto out;
	} else {
		pr_err("certificate %s: its %s key cannot receive a sealed checkpoint (RSA or "
		       "ECDSA P-256 only)",
		       cert_path, gnutls_pk_get_name(algo));
		goto out;
	}
	if (derive_kek(c, r, secret, kek) ||
	    kek_seal(c, r, kek, k, sizeof(*k), wrapped, &wlen, false)) {
		pr_err("certificate %s: cannot wrap the keys", cert_path);
		goto out;
	}
	set_bytes(&r->wrapped, wrapped, wlen);
	c->recipients = xrealloc(c->recipients, (c->n_recipients + 1) * sizeof(*c->recipients));
	c->recipients[c->n_recipients++] = r;
	r = NULL;
	ret = 0;
	goto out;
bad_cert:
	pr_err("cannot load certificate %s: cannot compute its fingerprint", cert_path);
out:
	gnutls_memset(secret, 0, sizeof(secret));
	gnutls_memset(kek, 0, sizeof(kek));
	gnutls_memset(wrapped, 0, sizeof(wrapped));
	if (r)
		stasis__seal_recipient__free_unpacked(r, NULL);
	if (pub)
		gnutls_pubkey_deinit(pub);
	gnutls_x509_crt_deinit(crt);
	return ret;
}

void seal_cipher_free_recipients(Stasis__SealCipher *c)
{
	for (size_t i = 0; i < c->n_recipients; i++)
		stasis__seal_recipient__free_unpacked(c->recipients[i], NULL);
	free(c->recipients);
	c->recipients = NULL;
	c->n_recipients = 0;
}

/* ---- open side ---- */

struct seal_privkey {
	char *path;
	gnutls_privkey_t key;
	int algo;
	uint8_t key_id[64];
	size_t key_id_len;
};

struct seal_privkey *seal_privkey_load(const char *path)
{
	struct seal_privkey *pk;
	gnutls_datum_t d = { NULL, 0 };
	gnutls_pubkey_t pub;
	int ret;

	if (read_file(path, &d)) {
		pr_err("cannot load private key %s: %s", path, strerror(errno));
		return NULL;
	}
	pk = xzalloc(sizeof(*pk));
	pk->path = xstrdup(path);
	gnutls_privkey_init(&pk->key);
	ret = gnutls_privkey_import_x509_raw(pk->key, &d, GNUTLS_X509_FMT_PEM, NULL, 0);
	if (ret < 0)
		ret = gnutls_privkey_import_x509_raw(pk->key, &d, GNUTLS_X509_FMT_DER, NULL, 0);
	free_datum(&d, true);
	if (ret < 0) {
		pr_err("cannot load private key %s: %s", path, gnutls_strerror(ret));
		seal_privkey_free(pk);
		return NULL;
	}
	pk->algo = gnutls_privkey_get_pk_algorithm(pk->key, NULL);
	gnutls_pubkey_init(&pub);
	ret = gnutls_pubkey_import_privkey(pub, pk->key, 0, 0);
	pk->key_id_len = sizeof(pk->key_id);
	if (ret >= 0)
		ret = gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA256, pk->key_id,
					       &pk->key_id_len);
	gnutls_pubkey_deinit(pub);
	if (ret < 0) {
		pr_err("cannot load private key %s: %s", path, gnutls_strerror(ret));
		seal_privkey_free(pk);
		return NULL;
	}
	return pk;
}

void seal_privkey_free(struct seal_privkey *pk)
{
	if (!pk)
		return;
	gnutls_privkey_deinit(pk->key);
	free(pk->path);
	free(pk);
}

static int secret_rsa(struct seal_privkey *pk, const Stasis__SealRecipient *r, uint8_t secret[32])
{
	gnutls_datum_t ct = { r->kem.data, r->kem.len };

	if (pk->algo != GNUTLS_PK_RSA)
		return -1;
	/* constant time, fixed size: no padding oracle */
	return gnutls_privkey_decrypt_data2(pk->key, 0, &ct, secret, 32) < 0 ? -1 : 0;
}

static int secret_ecdh(struct seal_privkey *pk, const Stasis__SealRecipient *r, uint8_t secret[32])
{
	gnutls_datum_t x = { 0 }, y = { 0 }, k = { 0 };
	gnutls_ecc_curve_t curve;
	uint8_t scalar[P256_LEN];
	int ret = -1;

	if (pk->algo != GNUTLS_PK_ECDSA || r->kem.len != 65)
		return -1;
	if (gnutls_privkey_export_ecc_raw2(pk->key, &curve, &x, &y, &k, GNUTLS_EXPORT_FLAG_NO_LZ) <
	    0)
		return -1;
	if (curve == GNUTLS_ECC_CURVE_SECP256R1 && !be_fixed(scalar, P256_LEN, &k))
		ret = ecdh_p256(scalar, P256_LEN, r->kem.data, secret);
	gnutls_memset(scalar, 0, sizeof(scalar));
	free_datum(&x, false);
	free_datum(&y, false);
	free_datum(&k, true);
	return ret;
}

int seal_unwrap(struct seal_privkey *pk, const Stasis__SealCipher *c, struct seal_keys *k)
{
	char fp[2 * 64 + 1], *list;
	size_t len = 0, cap;

	for (size_t i = 0; i < c->n_recipients; i++) {
		const Stasis__SealRecipient *r = c->recipients[i];
		uint8_t secret[32], kek[32];
		size_t klen = sizeof(*k);
		int ret = -1;

		if (r->key_id.len != pk->key_id_len ||
		    memcmp(r->key_id.data, pk->key_id, pk->key_id_len))
			continue;
		if (!strcmp(r->method, SEAL_WRAP_RSA))
			ret = secret_rsa(pk, r, secret);
		else if (!strcmp(r->method, SEAL_WRAP_ECDH))
			ret = secret_ecdh(pk, r, secret);
		if (!ret)
			ret = derive_kek(c, r, secret, kek);
		if (!ret)
			ret = kek_seal(c, r, kek, r->wrapped.data, r->wrapped.len, k, &klen, true);
		gnutls_memset(secret, 0, sizeof(secret));
		gnutls_memset(kek, 0, sizeof(kek));
		if (!ret && klen == sizeof(*k))
			return 0;
		gnutls_memset(k, 0, sizeof(*k));
		seal_hex(fp, r->fingerprint.data,
			 r->fingerprint.len < 64 ? r->fingerprint.len : 64);
		pr_err("cipher image: the keys wrapped for certificate %s (the one of private key "
		       "%s) do not unwrap: the checkpoint is damaged or was altered",
		       fp, pk->path);
		return -1;
	}
	/* one line: the fingerprints (and subjects) it is sealed for */
	cap = 256 + c->n_recipients * 512;
	list = xmalloc(cap);
	list[0] = 0;
	for (size_t i = 0; i < c->n_recipients && len < cap - 300; i++) {
		const Stasis__SealRecipient *r = c->recipients[i];

		seal_hex(fp, r->fingerprint.data,
			 r->fingerprint.len < 64 ? r->fingerprint.len : 64);
		len += snprintf(list + len, cap - len, "%ssha256:%s", i ? ", " : "", fp);
		if (r->subject)
			len += snprintf(list + len, cap - len, " (%.200s)", r->subject);
	}
	pr_err("private key %s opens none of the %zu recipients this checkpoint is sealed for: %s",
	       pk->path, c->n_recipients, c->n_recipients ? list : "(none)");
	free(list);
	return -1;
}
