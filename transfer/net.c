// SPDX-License-Identifier: GPL-2.0
/* Addresses, sockets and their options. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/util.h"

#include "transfer.h"

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static bool valid_port(const char *p)
{
	return all_digits(p) && strlen(p) <= 5 && atoi(p) <= 65535;
}

int net_split(const char *arg, bool host_optional, bool port_optional, char **host, char **port)
{
	const char *colon;
	char *h = NULL, *p = NULL;

	*host = *port = NULL;
	if (host_optional && all_digits(arg)) {
		p = xstrdup(arg);
	} else if (arg[0] == '[') {
		const char *end = strchr(arg, ']');

		if (!end || end == arg + 1 || (end[1] && end[1] != ':'))
			goto bad;
		h = strndup(arg + 1, end - arg - 1);
		if (end[1] == ':')
			p = xstrdup(end + 2);
	} else {
		colon = strrchr(arg, ':');
		/* a bare IPv6 address has several colons: no port then */
		if (colon && strchr(arg, ':') != colon)
			colon = NULL;
		h = colon ? strndup(arg, colon - arg) : xstrdup(arg);
		if (colon)
			p = xstrdup(colon + 1);
	}
	if ((h && !*h) || (!p && !port_optional) || (p && !valid_port(p)))
		goto bad;
	*host = h;
	*port = p;
	return 0;
bad:
	free(h);
	free(p);
	pr_err("invalid address '%s': expected %s%sPORT", arg,
	       host_optional ? "[ADDR:]" : "HOST:", port_optional ? "[" : "");
	return -1;
}

void net_tune(int fd)
{
	int one = 1, idle = 10, intvl = 5, cnt = 3;
	unsigned int user_timeout = 60 * 1000;

	/* small control lines (READY, OK, the end of stream) go out at once */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* a peer that vanished (host down, cable cut) is noticed within a
	 * minute instead of leaving the frozen tree waiting for ever */
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
}

static void addr_name(const struct sockaddr *sa, socklen_t len, char *buf, size_t buflen)
{
	char h[NI_MAXHOST], s[NI_MAXSERV];

	if (getnameinfo(sa, len, h, sizeof(h), s, sizeof(s), NI_NUMERICHOST | NI_NUMERICSERV)) {
		snprintf(buf, buflen, "?");
		return;
	}
	snprintf(buf, buflen, strchr(h, ':') ? "[%s]:%s" : "%s:%s", h, s);
}

void net_peer_name(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) ||
	    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)) {
		snprintf(buf, len, "socket %d", fd);
		return;
	}
	addr_name((struct sockaddr *)&ss, sl, buf, len);
}

int net_connect(const char *host, const char *port)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
	int fd = -1, err, saved = 0;

	err = getaddrinfo(host, port, &hints, &res);
	if (err) {
		pr_err("cannot resolve %s: %s", host, gai_strerror(err));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		if (!connect(fd, ai->ai_addr, ai->ai_addrlen))
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		pr_err("cannot connect to %s port %s: %s", host, port, strerror(saved));
		return -1;
	}
	net_tune(fd);
	return fd;
}

int net_listen(const char *host, const char *port, char *desc, size_t desclen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res, *ai;
	int fd = -1, err, saved = 0, one = 1, zero = 0;

	err = getaddrinfo(host, port, &hints, &res);
	if (err) {
		pr_err("cannot resolve %s: %s", host ? host : "the listening address",
		       gai_strerror(err));
		return -1;
	}
	/* without an address: the IPv6 wildcard takes IPv4 too; the IPv4 one
	 * is the fallback where IPv6 is off */
	for (int pass = 0; pass < 2 && fd < 0; pass++) {
		for (ai = res; ai; ai = ai->ai_next) {
			if (!host && (ai->ai_family == AF_INET6) != (pass == 0))
				continue;
			if (host && pass)
				break;
			fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
			if (fd < 0) {
				saved = errno;
				continue;
			}
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			if (ai->ai_family == AF_INET6 && !host)
				setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
			if (!bind(fd, ai->ai_addr, ai->ai_addrlen) && !listen(fd, 8)) {
				struct sockaddr_storage ss;
				socklen_t sl = sizeof(ss);

				if (!getsockname(fd, (struct sockaddr *)&ss, &sl))
					addr_name((struct sockaddr *)&ss, sl, desc, desclen);
				break;
			}
			saved = errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		pr_err("cannot listen on %s%s%s: %s", host ? host : "", host ? " port " : "port ",
		       port, strerror(saved));
	return fd;
}
