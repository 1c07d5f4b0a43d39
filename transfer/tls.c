// SPDX-License-Identifier: GPL-2.0
/*
 * TLS with GnuTLS, as CRIU does it: both sides present a certificate, each
 * checks the other's against the CA (and the CRL), and the client checks
 * that the server's certificate names the address it dialled.
 *
 * The check runs inside the handshake (a verify callback), so a refused
 * peer gets a TLS alert rather than a connection that just closes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gnutls/x509.h>

#include "stasis/log.h"
#include "stasis/util.h"

#include "transfer.h"

static gnutls_certificate_credentials_t cred;

/* What the verify callback found, for the message after the handshake. */
struct verify_ctx {
	const char *name; /* expected server name, NULL: not checked */
	bool server;
	bool checked;
	unsigned int status;
	int error;
};

static void gnutls_log(int level, const char *msg)
{
	/* GnuTLS's lines end with a newline */
	fprintf(stderr, "%s: gnutls[%d]: %s", log_prog(), level, msg);
}

static int verify_cb(gnutls_session_t s)
{
	struct verify_ctx *v = gnutls_session_get_ptr(s);
	unsigned int status = 0;
	int ret;

	ret = gnutls_certificate_verify_peers3(s, v->name, &status);
	if (ret < 0) {
		v->error = ret;
		return GNUTLS_E_CERTIFICATE_ERROR;
	}
	v->checked = true;
	v->status = status;
	return status ? GNUTLS_E_CERTIFICATE_ERROR : 0;
}

static bool readable(const char *path)
{
	return !access(path, R_OK);
}

static int load_file_error(const char *what, const char *path, int ret)
{
	if (!readable(path))
		pr_err("cannot read the %s %s: %s", what, path, strerror(errno));
	else
		pr_err("cannot load the %s %s: %s", what, path, gnutls_strerror(ret));
	return -1;
}

int tls_setup(bool server)
{
	const char *cacert = xopts.tls_cacert, *cacrl = xopts.tls_cacrl;
	const char *cert = xopts.tls_cert ? xopts.tls_cert : TLS_DEFAULT_CERT;
	const char *key = xopts.tls_key ? xopts.tls_key : TLS_DEFAULT_KEY;
	const char *env = getenv("GNUTLS_DEBUG_LEVEL");
	int ret;

	if (env && *env) {
		gnutls_global_set_log_function(gnutls_log);
		gnutls_global_set_log_level(atoi(env));
	}
	ret = gnutls_certificate_allocate_credentials(&cred);
	if (ret < 0) {
		pr_err("cannot allocate TLS credentials: %s", gnutls_strerror(ret));
		return -1;
	}

	/* trusted CAs: the one given, else the default file, else the system's */
	if (!cacert && readable(TLS_DEFAULT_CACERT))
		cacert = TLS_DEFAULT_CACERT;
	if (cacert) {
		ret = gnutls_certificate_set_x509_trust_file(cred, cacert, GNUTLS_X509_FMT_PEM);
		if (ret <= 0)
			return load_file_error("CA certificate", cacert,
					       ret ? ret : GNUTLS_E_NO_CERTIFICATE_FOUND);
		pr_info("trusting the CA certificates in %s", cacert);
	} else {
		ret = gnutls_certificate_set_x509_system_trust(cred);
		if (ret <= 0) {
			pr_err("no CA certificate to check the peer with: neither --tls-cacert, "
			       "nor %s, nor a system trust store",
			       TLS_DEFAULT_CACERT);
			return -1;
		}
		pr_info("trusting the system's %d CA certificates", ret);
	}

	/* the CRL after the CAs: GnuTLS keeps only CRLs a trusted CA signed */
	if (!cacrl && readable(TLS_DEFAULT_CACRL))
		cacrl = TLS_DEFAULT_CACRL;
	if (cacrl) {
		ret = gnutls_certificate_set_x509_crl_file(cred, cacrl, GNUTLS_X509_FMT_PEM);
		if (ret < 0)
			return load_file_error("certificate revocation list", cacrl, ret);
		if (ret == 0) {
			pr_err("the certificate revocation list %s is not signed by a trusted CA",
			       cacrl);
			return -1;
		}
		pr_info("using the certificate revocation list %s", cacrl);
	}

	if (!readable(cert))
		return load_file_error("certificate", cert, 0);
	if (!readable(key))
		return load_file_error("private key", key, 0);
	ret = gnutls_certificate_set_x509_key_file(cred, cert, key, GNUTLS_X509_FMT_PEM);
	if (ret < 0) {
		pr_err("cannot load the certificate %s with the private key %s: %s", cert, key,
		       gnutls_strerror(ret));
		return -1;
	}
	gnutls_certificate_set_verify_function(cred, verify_cb);
	(void)server;
	return 0;
}

void tls_cleanup(void)
{
	if (cred)
		gnutls_certificate_free_credentials(cred);
	cred = NULL;
}

static bool is_ip(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* "CN=..., names: IP 10.0.0.2, DNS host" of the peer's certificate. */
static void peer_cert_desc(gnutls_session_t s, char *buf, size_t len)
{
	const gnutls_datum_t *list;
	unsigned int n = 0;
	gnutls_x509_crt_t crt;
	gnutls_datum_t dn = {0};
	size_t off = 0;

	buf[0] = '\0';
	list = gnutls_certificate_get_peers(s, &n);
	if (!list || !n || gnutls_x509_crt_init(&crt) < 0)
		return;
	if (gnutls_x509_crt_import(crt, &list[0], GNUTLS_X509_FMT_DER) < 0)
		goto out;
	if (!gnutls_x509_crt_get_dn3(crt, &dn, 0)) {
		off += snprintf(buf + off, len - off, "subject %s", (char *)dn.data);
		gnutls_free(dn.data);
	}
	for (unsigned int i = 0; off < len; i++) {
		char name[256], ip[INET6_ADDRSTRLEN];
		size_t nlen = sizeof(name) - 1;
		int type = gnutls_x509_crt_get_subject_alt_name(crt, i, name, &nlen, NULL);

		if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (type == GNUTLS_SAN_IPADDRESS && (nlen == 4 || nlen == 16)) {
			inet_ntop(nlen == 4 ? AF_INET : AF_INET6, name, ip, sizeof(ip));
			off += snprintf(buf + off, len - off, "%s IP %s", i ? "," : "; names:", ip);
		} else if (type == GNUTLS_SAN_DNSNAME) {
			name[nlen] = '\0';
			off +=
			    snprintf(buf + off, len - off, "%s DNS %s", i ? "," : "; names:", name);
		}
	}
out:
	gnutls_x509_crt_deinit(crt);
}

static void refusal(struct conn *c, const struct verify_ctx *v)
{
	gnutls_datum_t out = {0};
	char desc[400];

	peer_cert_desc(c->tls, desc, sizeof(desc));
	if (v->error) {
		snprintf(c->err, sizeof(c->err), "cannot check the certificate of %s (%s): %s",
			 c->peer, v->server ? "the sender" : "the receiver",
			 gnutls_strerror(v->error));
		return;
	}
	gnutls_certificate_verification_status_print(v->status, GNUTLS_CRT_X509, &out, 0);
	/* GnuTLS ends its sentences with a space */
	while (out.data && out.size && out.data[out.size - 1] == ' ')
		out.data[--out.size] = '\0';
	snprintf(c->err, sizeof(c->err), "refused the certificate of %s %s%s%s%s: %s%s%s",
		 v->server ? "the sender" : "the receiver", c->peer, desc[0] ? " (" : "", desc,
		 desc[0] ? ")" : "", out.data ? (char *)out.data : "not trusted",
		 (v->status & GNUTLS_CERT_UNEXPECTED_OWNER) ? " It does not name " : "",
		 (v->status & GNUTLS_CERT_UNEXPECTED_OWNER) ? v->name : "");
	gnutls_free(out.data);
}

int tls_handshake(struct conn *c, bool server, const char *expected_name)
{
	struct verify_ctx *v = xzalloc(sizeof(*v));
	gnutls_session_t s;
	int ret;

	v->server = server;
	v->name = server || xopts.tls_no_cn_verify ? NULL : expected_name;
	ret = gnutls_init(&s, (server ? GNUTLS_SERVER : GNUTLS_CLIENT));
	if (ret < 0) {
		snprintf(c->err, sizeof(c->err), "cannot start a TLS session: %s",
			 gnutls_strerror(ret));
		free(v);
		return -1;
	}
	c->tls = s;
	gnutls_session_set_ptr(s, v);
	ret = gnutls_set_default_priority(s);
	if (ret >= 0)
		ret = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred);
	if (ret < 0) {
		snprintf(c->err, sizeof(c->err), "cannot set up the TLS session: %s",
			 gnutls_strerror(ret));
		goto fail;
	}
	if (server) {
		gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
		/* without the list of our CAs a client sends its certificate
		 * whoever signed it, and we can say what is wrong with it */
		gnutls_certificate_send_x509_rdn_sequence(s, 1);
	} else if (expected_name && !is_ip(expected_name))
		gnutls_server_name_set(s, GNUTLS_NAME_DNS, expected_name, strlen(expected_name));
	conn_tls_transport(c);
	gnutls_handshake_set_timeout(s, 30 * 1000);

	do
		ret = gnutls_handshake(s);
	while (ret == GNUTLS_E_INTERRUPTED);
	if (ret < 0) {
		/* tell the peer why, unless it is the one who gave up */
		if (ret != GNUTLS_E_FATAL_ALERT_RECEIVED && ret != GNUTLS_E_PUSH_ERROR &&
		    ret != GNUTLS_E_PULL_ERROR && ret != GNUTLS_E_PREMATURE_TERMINATION)
			gnutls_alert_send_appropriate(s, ret);
		if ((v->checked && v->status) || v->error)
			refusal(c, v);
		else if (ret == GNUTLS_E_FATAL_ALERT_RECEIVED)
			snprintf(c->err, sizeof(c->err),
				 "%s refused the TLS handshake with the alert '%s'%s", c->peer,
				 gnutls_alert_get_name(gnutls_alert_get(s)),
				 server ? " (does it trust our certificate?)" : "");
		else if (ret == GNUTLS_E_NO_CERTIFICATE_FOUND ||
			 ret == GNUTLS_E_CERTIFICATE_REQUIRED)
			snprintf(c->err, sizeof(c->err), "%s presented no certificate", c->peer);
		else
			snprintf(c->err, sizeof(c->err), "TLS handshake with %s failed: %s%s",
				 c->peer, gnutls_strerror(ret),
				 server ? "" : " (does the receiver use --tls?)");
		goto fail;
	}
	if (!v->checked) {
		/* the callback runs whenever a certificate arrives; none did */
		snprintf(c->err, sizeof(c->err), "%s presented no certificate", c->peer);
		goto fail;
	}
	if (log_get_level() >= LOG_INFO) {
		char desc[400], *d = gnutls_session_get_desc(s);

		peer_cert_desc(s, desc, sizeof(desc));
		pr_info("TLS with %s: %s; its certificate: %s%s", c->peer, d ? d : "?", desc,
			v->name	 ? ""
			: server ? ""
				 : " (name not checked: --tls-no-cn-verify)");
		gnutls_free(d);
	}
	gnutls_session_set_ptr(s, NULL);
	free(v);
	return 0;
fail:
	gnutls_session_set_ptr(s, NULL);
	free(v);
	gnutls_deinit(s);
	c->tls = NULL;
	return -1;
}
