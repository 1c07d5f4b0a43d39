/*
 * Netlink sockets across a checkpoint.
 *
 *   netlinksk GOFILE all      every kind below, checked and used after GO
 *   netlinksk GOFILE queued   a message left unread (the dump must refuse it)
 *
 * all: a NETLINK_ROUTE socket autobound, in (quiet) groups below and above 32, with
 * NETLINK_PKTINFO, NO_ENOBUFS, EXT_ACK, GET_STRICT_CHK, SO_PASSCRED, a receive
 * timeout, a receive buffer and
 * a classic BPF filter; a NETLINK_KOBJECT_UEVENT socket bound to a chosen
 * port id and group; one connect()ed to it; an unbound NETLINK_GENERIC one.
 * After GO: the port ids, groups, destination, options and filter are as
 * they were, the route socket answers an RTM_GETLINK dump, a message sent
 * from the connected socket reaches the bound one from the connected one's
 * port id, and the unbound one can still autobind.
 *
 * Sabotage: "groups" leaves group 33 before the check.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "testprog.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

#define UEVENT_GROUP 5
#define HIGH_GROUP   33 /* RTNLGRP_BRVLAN: above 32, only setsockopt reaches it */
#define HIGHER_GROUP 35 /* RTNLGRP_TUNNEL */

static struct sock_filter accept_all[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
    BPF_STMT(BPF_RET | BPF_A, 0),
};

struct nlsk {
	int fd;
	uint32_t portid;
	uint32_t groups[4];
};

static int xsocket(int proto)
{
	int fd = socket(AF_NETLINK, SOCK_RAW, proto);

	if (fd < 0)
		tp_die("netlink socket of protocol %d", proto);
	return fd;
}

static uint32_t portid_of(int fd, uint32_t *groups)
{
	struct sockaddr_nl a = {};
	socklen_t len = sizeof(a);

	if (getsockname(fd, (struct sockaddr *)&a, &len))
		return ~0u;
	if (groups)
		*groups = a.nl_groups;
	return a.nl_pid;
}

static void memberships(int fd, uint32_t map[4])
{
	socklen_t len = 4 * sizeof(uint32_t);

	memset(map, 0, 4 * sizeof(uint32_t));
	if (getsockopt(fd, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, map, &len))
		map[0] = ~0u;
}

static int getopt_nl(int fd, int opt)
{
	int v = -1;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, SOL_NETLINK, opt, &v, &len))
		return -1;
	return v;
}

static void on(int fd, int level, int opt, int v)
{
	if (setsockopt(fd, level, opt, &v, sizeof(v)))
		tp_die("setsockopt %d/%d", level, opt);
}

/* An RTM_GETLINK dump: the route socket answers with at least one link. */
static void check_route(int fd)
{
	struct {
		struct nlmsghdr h;
		struct ifinfomsg i;
	} req = {
	    .h = {.nlmsg_len = sizeof(req),
		  .nlmsg_type = RTM_GETLINK,
		  .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
		  .nlmsg_seq = 77},
	    .i = {.ifi_family = AF_UNSPEC},
	};
	struct sockaddr_nl from;
	socklen_t flen = sizeof(from);
	static char buf[65536];
	struct nlmsghdr *h;
	ssize_t n;

	if (send(fd, &req, sizeof(req), 0) != (ssize_t)sizeof(req)) {
		tp_fail("route socket: cannot send RTM_GETLINK: %s", strerror(errno));
		return;
	}
	n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
	h = (struct nlmsghdr *)buf;
	if (n < (ssize_t)sizeof(*h) || h->nlmsg_seq != 77 || from.nl_pid != 0 ||
	    (h->nlmsg_type != RTM_NEWLINK && h->nlmsg_type != NLMSG_DONE))
		tp_fail("route socket: no RTM_NEWLINK answer (%zd bytes, type %u)", n,
			n >= (ssize_t)sizeof(*h) ? h->nlmsg_type : 0);
	/* drain the rest of the dump */
	while (n > 0 && h->nlmsg_type != NLMSG_DONE) {
		for (; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n))
			if (h->nlmsg_type == NLMSG_DONE)
				return;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		h = (struct nlmsghdr *)buf;
	}
}

static int all_mode(void)
{
	struct nlsk route, bound, conn, unbound;
	struct sockaddr_nl a = {.nl_family = AF_NETLINK};
	struct sock_fprog prog = {2, accept_all};
	struct sock_filter got[8];
	socklen_t len;
	uint32_t map[4], conn_dst, g;
	int v, rcvbuf, rcvbuf_now;

	/* route: autobound, groups 6 (RTMGRP_IPV4_MROUTE), 33 and 35, options;
	 * quiet groups, so that nothing is queued when the dump comes */
	route.fd = xsocket(NETLINK_ROUTE);
	a.nl_groups = RTMGRP_IPV4_MROUTE;
	if (bind(route.fd, (struct sockaddr *)&a, sizeof(a)))
		tp_die("bind route");
	g = HIGH_GROUP;
	if (setsockopt(route.fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof(g)))
		tp_die("join group %u", g);
	g = HIGHER_GROUP;
	if (setsockopt(route.fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof(g)))
		tp_die("join group %u", g);
	on(route.fd, SOL_NETLINK, NETLINK_PKTINFO, 1);
	on(route.fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, 1);
	on(route.fd, SOL_NETLINK, NETLINK_EXT_ACK, 1);
	on(route.fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1);
	on(route.fd, SOL_SOCKET, SO_RCVBUF, 300000);
	on(route.fd, SOL_SOCKET, SO_PASSCRED, 1);
	{
		struct timeval tv = {2, 500000};

		if (setsockopt(route.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
			tp_die("SO_RCVTIMEO");
	}
	if (setsockopt(route.fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)))
		tp_die("attach filter");
	route.portid = portid_of(route.fd, NULL);
	memberships(route.fd, route.groups);
	len = sizeof(rcvbuf);
	getsockopt(route.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &len);

	/* uevent: bound to a chosen port id, in one group; another connected to it */
	bound.fd = xsocket(NETLINK_KOBJECT_UEVENT);
	a.nl_pid = getpid() + 0x40000000u;
	a.nl_groups = 1u << (UEVENT_GROUP - 1);
	if (bind(bound.fd, (struct sockaddr *)&a, sizeof(a)))
		tp_die("bind uevent");
	bound.portid = a.nl_pid;
	conn.fd = xsocket(NETLINK_KOBJECT_UEVENT);
	a.nl_groups = 0;
	if (connect(conn.fd, (struct sockaddr *)&a, sizeof(a)))
		tp_die("connect uevent");
	conn.portid = portid_of(conn.fd, NULL);
	conn_dst = a.nl_pid;
	unbound.fd = xsocket(NETLINK_GENERIC);

	tp_ready();
	tp_wait_go();
	if (tp_sabotaged("groups")) {
		g = HIGH_GROUP;
		setsockopt(route.fd, SOL_NETLINK, NETLINK_DROP_MEMBERSHIP, &g, sizeof(g));
	}

	if (portid_of(route.fd, NULL) != route.portid)
		tp_fail("route socket: port id %u, was %u", portid_of(route.fd, NULL),
			route.portid);
	memberships(route.fd, map);
	if (memcmp(map, route.groups, sizeof(map)))
		tp_fail("route socket: groups %08x %08x, were %08x %08x", map[0], map[1],
			route.groups[0], route.groups[1]);
	if (getopt_nl(route.fd, NETLINK_PKTINFO) != 1 ||
	    getopt_nl(route.fd, NETLINK_NO_ENOBUFS) != 1 ||
	    getopt_nl(route.fd, NETLINK_EXT_ACK) != 1 ||
	    getopt_nl(route.fd, NETLINK_GET_STRICT_CHK) != 1 ||
	    getopt_nl(route.fd, NETLINK_BROADCAST_ERROR) != 0 ||
	    getopt_nl(route.fd, NETLINK_CAP_ACK) != 0)
		tp_fail("route socket: NETLINK_* options changed");
	{
		struct timeval tv = {};
		socklen_t tlen = sizeof(tv);

		len = sizeof(v);
		if (getsockopt(route.fd, SOL_SOCKET, SO_PASSCRED, &v, &len) || v != 1)
			tp_fail("route socket: SO_PASSCRED is off");
		if (getsockopt(route.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &tlen) || tv.tv_sec != 2 ||
		    tv.tv_usec != 500000)
			tp_fail("route socket: SO_RCVTIMEO %ld.%06ld, was 2.500000",
				(long)tv.tv_sec, (long)tv.tv_usec);
	}
	len = sizeof(rcvbuf_now);
	getsockopt(route.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf_now, &len);
	if (rcvbuf_now != rcvbuf)
		tp_fail("route socket: SO_RCVBUF %d, was %d", rcvbuf_now, rcvbuf);
	len = 8;
	if (getsockopt(route.fd, SOL_SOCKET, SO_GET_FILTER, got, &len) || len != 2 ||
	    memcmp(got, accept_all, sizeof(accept_all)))
		tp_fail("route socket: the filter is not the one attached (%u instructions)", len);
	check_route(route.fd);

	if (portid_of(bound.fd, &g) != bound.portid || g != 1u << (UEVENT_GROUP - 1))
		tp_fail("uevent socket: port id %u groups %#x, was %u %#x",
			portid_of(bound.fd, NULL), g, bound.portid, 1u << (UEVENT_GROUP - 1));
	if (portid_of(conn.fd, NULL) != conn.portid)
		tp_fail("connected socket: port id %u, was %u", portid_of(conn.fd, NULL),
			conn.portid);
	{
		struct sockaddr_nl peer = {};
		struct sockaddr_nl from = {};
		socklen_t plen = sizeof(peer), flen = sizeof(from);
		struct nlmsghdr msg = {
		    .nlmsg_len = sizeof(msg), .nlmsg_type = 0x1234, .nlmsg_seq = 9};
		struct nlmsghdr in;

		if (getpeername(conn.fd, (struct sockaddr *)&peer, &plen) ||
		    peer.nl_pid != conn_dst)
			tp_fail("connected socket: peer %u, was %u", peer.nl_pid, conn_dst);
		if (send(conn.fd, &msg, sizeof(msg), 0) != (ssize_t)sizeof(msg))
			tp_fail("connected socket: cannot send: %s", strerror(errno));
		else if (recvfrom(bound.fd, &in, sizeof(in), MSG_DONTWAIT, (struct sockaddr *)&from,
				  &flen) != (ssize_t)sizeof(in) ||
			 in.nlmsg_type != 0x1234 || from.nl_pid != conn.portid)
			tp_fail("bound socket: the message from the connected one did not arrive");
	}

	if (portid_of(unbound.fd, NULL) != 0)
		tp_fail("unbound socket: port id %u", portid_of(unbound.fd, NULL));
	len = sizeof(v);
	if (getsockopt(unbound.fd, SOL_SOCKET, SO_PROTOCOL, &v, &len) || v != NETLINK_GENERIC)
		tp_fail("unbound socket: protocol %d", v);
	a.nl_pid = 0;
	a.nl_groups = 0;
	if (bind(unbound.fd, (struct sockaddr *)&a, sizeof(a)) || portid_of(unbound.fd, NULL) == 0)
		tp_fail("unbound socket: cannot autobind");
	return tp_finish();
}

static int queued_mode(void)
{
	struct sockaddr_nl a = {.nl_family = AF_NETLINK};
	struct nlmsghdr msg = {.nlmsg_len = sizeof(msg), .nlmsg_type = 0x4321};
	int r = xsocket(NETLINK_KOBJECT_UEVENT), s = xsocket(NETLINK_KOBJECT_UEVENT);
	struct nlmsghdr in;

	if (bind(r, (struct sockaddr *)&a, sizeof(a)))
		tp_die("bind");
	a.nl_pid = portid_of(r, NULL);
	if (sendto(s, &msg, sizeof(msg), 0, (struct sockaddr *)&a, sizeof(a)) !=
	    (ssize_t)sizeof(msg))
		tp_die("send");
	tp_ready();
	tp_wait_go();
	if (recv(r, &in, sizeof(in), MSG_DONTWAIT) != (ssize_t)sizeof(in) ||
	    in.nlmsg_type != 0x4321)
		tp_fail("the queued message is gone");
	return tp_finish();
}

int main(int argc, char **argv)
{
	tp_init(argc, argv, 2, "GOFILE all|queued");
	if (!strcmp(argv[2], "all"))
		return all_mode();
	if (!strcmp(argv[2], "queued"))
		return queued_mode();
	fprintf(stderr, "unknown mode %s\n", argv[2]);
	return 2;
}
