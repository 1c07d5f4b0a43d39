/* SPDX-License-Identifier: GPL-2.0 */
/*
 * stasis-transfer: carry a stream over TCP, optionally TLS with mutual
 * X.509 authentication, and relay the receiver's confirmation back to the
 * sender. The wire protocol (both directions, after the TLS handshake when
 * there is one):
 *
 *   sender -> receiver   HELLO (16 bytes, XFER_HELLO)
 *   receiver -> sender   "READY\n" or "ERROR <text>\n"
 *   sender -> receiver   chunks: u32 length (little-endian) + data, at most
 *                        XFER_CHUNK_MAX bytes; a zero length ends the stream
 *   receiver -> sender   "OK\n" once the whole stream arrived intact (and,
 *                        with --sink-ack-fd, was stored), or "ERROR <text>\n"
 *
 * The explicit end of stream tells a finished sender from one that died
 * (a killed process closes its socket as cleanly as a finished one).
 *
 * With --chain-fd, the receiver takes one sender after another (on the
 * same --ps-socket, one TLS session after another), each with one link of
 * a chain: every link goes to stdout whole, and the consumer's word on the
 * chain fd ("MORE" or "LAST") decides whether the sender is told "OK"
 * and whether another is awaited; after the last "OK" went out, "SENT"
 * tells the consumer that it may restore.
 */
#ifndef STASIS_TRANSFER_H
#define STASIS_TRANSFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <gnutls/gnutls.h>

#define XFER_HELLO     "STASIS-XFER/1.0\n"
#define XFER_HELLO_LEN 16
/* the greeting of a lazy migration's destination (--lazy-pages) */
#define XFER_LAZY_HELLO "STASIS-LAZY/1.0\n"

#define XFER_CHUNK_MAX (1u << 20)
#define XFER_LINE_MAX  512

/* Defaults of CRIU's TLS options, with stasis in place of criu. */
#define TLS_DEFAULT_CACERT "/etc/pki/CA/cacert.pem"
#define TLS_DEFAULT_CACRL  "/etc/pki/CA/cacrl.pem"
#define TLS_DEFAULT_CERT   "/etc/pki/stasis/cert.pem"
#define TLS_DEFAULT_KEY	   "/etc/pki/stasis/private/key.pem"

struct xfer_opts {
	/* client */
	const char *to_host, *to_port;
	int ack_fd;
	/* server */
	bool listen;
	const char *listen_host, *listen_port;
	int sink_ack_fd;
	int chain_fd; /* links of a chain, one sender each (stasis-serialize chain) */
	bool raw;
	size_t max_buffer;
	bool daemon;
	int status_fd;
	const char *pidfile;
	/* both */
	int ps_socket;
	bool tls;
	const char *tls_cacert, *tls_cacrl, *tls_cert, *tls_key;
	bool tls_no_cn_verify;
	/* both directions at once: page requests and the page stream */
	bool lazy;
};

extern struct xfer_opts xopts;

/* One connection, plain or TLS. */
struct conn {
	int fd;
	gnutls_session_t tls; /* NULL without --tls */
	char peer[128];	      /* "HOST:PORT" for messages */
	char err[1024];	      /* why the last call failed */
	/* TLS: what was received but not yet taken by GnuTLS (read ahead,
	 * many records a system call) */
	char *rbuf;
	size_t roff, rlen;
};

/* net.c */
/* "HOST:PORT", "[V6]:PORT"; with port_optional a bare HOST too. "PORT" alone
 * (digits) only when host_optional. Results are malloc'ed; *host may be NULL. */
int net_split(const char *arg, bool host_optional, bool port_optional, char **host, char **port);
int net_connect(const char *host, const char *port);
int net_listen(const char *host, const char *port, char *desc, size_t desclen);
/* Keepalive, no Nagle, a user timeout: a dead peer is noticed in time. */
void net_tune(int fd);
void net_peer_name(int fd, char *buf, size_t len);

/* conn.c: plain or TLS I/O; on error, c->err says why. */
/* >0 bytes, 0 clean end of stream, -1 error (c->err) */
ssize_t conn_recv(struct conn *c, void *buf, size_t len);
/* 1 all read, 0 clean end before any byte, -1 error or end in the middle */
int conn_recv_full(struct conn *c, void *buf, size_t len);
int conn_send(struct conn *c, const void *buf, size_t len);
/* One chunk of the stream into buf (XFER_CHUNK_MAX bytes): 1 with its
 * length in *len, 0 at the sender's end of stream, -1 on error (c->err). */
int conn_recv_chunk(struct conn *c, void *buf, uint32_t *len);
/* Reads one "\n"-terminated line (without it) of at most XFER_LINE_MAX. */
int conn_recv_line(struct conn *c, char *line, size_t len);
/* Tells the peer we are done (TLS close_notify) and closes. */
void conn_close(struct conn *c);
/* GnuTLS reads and writes the socket of c through these. */
void conn_tls_transport(struct conn *c);

/* tls.c */
int tls_setup(bool server);
/* Handshake and certificate check: the server's certificate must name
 * expected_name (unless --tls-no-cn-verify), the client's must chain to the
 * CA. 0 or -1 with c->err set. */
int tls_handshake(struct conn *c, bool server, const char *expected_name);
void tls_cleanup(void);

/* client.c, server.c */
int run_client(void);
int run_server(void);
/* lazy.c: stdin to the peer and the peer to stdout at once; source: the
 * side of stasis-collect. 0 when both directions ended cleanly. */
int lazy_relay(struct conn *c, bool source);

#endif
