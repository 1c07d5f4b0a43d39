/* SPDX-License-Identifier: GPL-2.0 */
#ifndef STASIS_UTIL_H
#define STASIS_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#ifndef PAGE_SIZE
#define PAGE_SIZE 4096UL
#endif
#define PAGE_ALIGN(x) (((x) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1))

/* Full reads and writes, retrying on EINTR and short transfers.
 * read_full returns bytes read (< len only at EOF) or -1. */
ssize_t read_full(int fd, void *buf, size_t len);
int write_full(int fd, const void *buf, size_t len);
int writev_full(int fd, struct iovec *iov, int cnt);

void *xmalloc(size_t n);
void *xzalloc(size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* asprintf that cannot fail (exits on no memory, as the others) */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

uint64_t now_ns(void);

/* --version text shared by all programs. */
void print_version(const char *prog);
/* Parse "123", "4K", "1M", "2G"; -1 on error. */
long long parse_size(const char *s);
/* Enlarge a pipe to the largest size allowed (ignored for non-pipes). */
void pipe_grow(int fd);
/* Returns once the reader of the pipe fd has read everything written to it
 * (or closed its end): a consumer that waits before reading (stasis-inject
 * --wait-pids-free) takes our end closing early for a failed transfer. */
void pipe_wait_drained(int fd);
/* Exactly 2 * len hexadecimal digits into len bytes: 0, or -1. */
int hex_decode(const char *hex, uint8_t *out, size_t len);
/* len bytes as 2 * len lowercase digits and a NUL into out. */
void hex_encode(const uint8_t *in, size_t len, char *out);

#endif
