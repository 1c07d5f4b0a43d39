/* SPDX-License-Identifier: GPL-2.0 */
/* Inside stasis-seal-core: the keys and how they are wrapped. */
#ifndef STASIS_SEAL_INT_H
#define STASIS_SEAL_INT_H

#include <stdint.h>

#include "stasis/image.h"

#define SEAL_VERSION	   1
#define SEAL_RECORD_CIPHER "CHACHA20-POLY1305"
#define SEAL_PAGE_CIPHER   "AES-256-XTS"
#define SEAL_PAGE_TAG	   "AES-256-GMAC"
#define SEAL_KDF	   "HKDF-SHA256"
#define SEAL_WRAP_RSA	   "RSA-PKCS1-V1.5"
#define SEAL_WRAP_ECDH	   "ECDH-P256"

#define SEAL_TAG_LEN	16
#define SEAL_ID_LEN	16
#define SEAL_DIGEST_LEN 32

/* The keys of one checkpoint: 128 bytes, wrapped as one blob. */
struct seal_keys {
	uint8_t rec[32]; /* ChaCha20-Poly1305 master key of the records */
	uint8_t xts[64]; /* AES-256-XTS key of the pages */
	uint8_t mac[32]; /* AES-256-GMAC master key of the page tags */
};
_Static_assert(sizeof(struct seal_keys) == 128, "the key blob is 128 bytes");

int seal_keys_new(struct seal_keys *k);

/* Adds a recipient for the certificate in cert_path to c (logs errors). */
int seal_wrap(Stasis__SealCipher *c, const char *cert_path, const struct seal_keys *k);
void seal_cipher_free_recipients(Stasis__SealCipher *c);

struct seal_privkey;
struct seal_privkey *seal_privkey_load(const char *path);
void seal_privkey_free(struct seal_privkey *pk);
/* The keys of c that pk opens; logs why not (no matching recipient: the
 * fingerprints it is sealed for). */
int seal_unwrap(struct seal_privkey *pk, const Stasis__SealCipher *c, struct seal_keys *k);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void seal_hex(char *out, const uint8_t *in, size_t n);

#endif
