// SPDX-License-Identifier: GPL-2.0
/*
 * Network namespaces (docs/netns.md). Read from inside the namespace, by
 * this thread entering it (ns_enter), through rtnetlink (libnl-route):
 * its links, addresses and the routes the kernel did not make itself,
 * and a list of its sysctls. Read as soon as the namespace is met
 * (netns_check), before any task is touched, so that a link kind stasis
 * cannot make again refuses the dump while the tree is still as it was.
 * Carried links: loopback, and veth with its peer in the same namespace
 * or in stasis-collect's own (the peer's name is kept for the restore to
 * make it again outside).
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>
#include <netlink/route/rtnl.h>

#include "collect.h"
#include "stasis/log.h"
#include "stasis/util.h"

/* The sysctls of a network namespace, relative to /proc/sys, in the order
 * they are written back (ip_forward resets the conf "forwarding" values,
 * "all" is propagated to every device). Per-device ones are read for
 * all, default and each link; absent ones are left out. */
static const char *const global_sysctls[] = {
    "net/ipv4/ip_forward",
    "net/ipv4/ip_local_port_range",
    "net/ipv4/ip_local_reserved_ports",
    "net/ipv4/ping_group_range",
    "net/ipv4/ip_default_ttl",
    "net/ipv4/ip_no_pmtu_disc",
    "net/ipv4/tcp_keepalive_time",
    "net/ipv4/tcp_keepalive_intvl",
    "net/ipv4/tcp_keepalive_probes",
    "net/ipv4/tcp_fin_timeout",
    "net/ipv4/tcp_syncookies",
    "net/ipv4/tcp_timestamps",
    "net/ipv4/tcp_sack",
    "net/ipv4/tcp_window_scaling",
    "net/ipv4/tcp_ecn",
    "net/ipv6/conf/all/forwarding",
    "net/core/somaxconn",
    "net/unix/max_dgram_qlen",
};

static const char *const ipv4_conf[] = {
    "forwarding",	   "accept_redirects", "send_redirects", "secure_redirects",
    "accept_source_route", "rp_filter",	       "proxy_arp",	 "arp_ignore",
    "arp_announce",	   "arp_filter",       "log_martians",	 "disable_policy",
    "disable_xfrm",	   "route_localnet",   "bootp_relay",	 "shared_media",
};

static const char *const ipv6_conf[] = {
    "disable_ipv6",
    "forwarding",
    "accept_ra",
    "accept_redirects",
    "accept_source_route",
    "autoconf",
    "hop_limit",
    "mtu",
    "dad_transmits",
    "use_tempaddr",
    "router_solicitations",
    "proxy_ndp",
};

struct netns {
	uint32_t id;
	Stasis__NetLink **links;
	size_t nr_links;
	Stasis__NetAddr **addrs;
	size_t nr_addrs;
	Stasis__NetRoute **routes;
	size_t nr_routes;
	Stasis__NetSysctl **sysctls;
	size_t nr_sysctls;
};

static struct netns *netnss;
static size_t nr_netnss;

static ProtobufCBinaryData bytes_of(struct nl_addr *a)
{
	ProtobufCBinaryData b = {0, NULL};

	if (a && nl_addr_get_len(a)) {
		b.len = nl_addr_get_len(a);
		b.data = xmalloc(b.len);
		memcpy(b.data, nl_addr_get_binary_addr(a), b.len);
	}
	return b;
}

static char *read_sysctl(const char *name)
{
	char path[256], buf[4096];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/sys/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return NULL;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return xstrdup(buf);
}

static void add_sysctl(struct netns *ns, const char *name)
{
	Stasis__NetSysctl *s;
	char *v = read_sysctl(name);

	if (!v)
		return;
	s = xmalloc(sizeof(*s));
	stasis__net_sysctl__init(s);
	s->name = xstrdup(name);
	s->value = v;
	ns->sysctls = xrealloc(ns->sysctls, (ns->nr_sysctls + 1) * sizeof(*ns->sysctls));
	ns->sysctls[ns->nr_sysctls++] = s;
}

static void conf_sysctls(struct netns *ns, const char *dev)
{
	char name[256];

	for (size_t i = 0; i < ARRAY_SIZE(ipv4_conf); i++) {
		snprintf(name, sizeof(name), "net/ipv4/conf/%s/%s", dev, ipv4_conf[i]);
		add_sysctl(ns, name);
	}
	for (size_t i = 0; i < ARRAY_SIZE(ipv6_conf); i++) {
		/* set once for all of them, first */
		if (!strcmp(dev, "all") && !strcmp(ipv6_conf[i], "forwarding"))
			continue;
		snprintf(name, sizeof(name), "net/ipv6/conf/%s/%s", dev, ipv6_conf[i]);
		add_sysctl(ns, name);
	}
}

/* A link, or -1 (logged) for a kind that is not carried. */
static int read_link(struct netns *ns, struct rtnl_link *l)
{
	const char *type = rtnl_link_get_type(l), *name = rtnl_link_get_name(l);
	Stasis__NetLink *nl;
	const char *kind;

	if (rtnl_link_get_arptype(l) == ARPHRD_LOOPBACK && !type) {
		kind = "loopback";
	} else if (type && !strcmp(type, "veth")) {
		kind = "veth";
	} else {
		pr_err("network namespace %u: link %s (%s) is of a kind stasis does not carry "
		       "(loopback and veth only)",
		       ns->id, name, type ? type : "no kind");
		return -1;
	}
	nl = xmalloc(sizeof(*nl));
	stasis__net_link__init(nl);
	nl->ifindex = rtnl_link_get_ifindex(l);
	nl->name = xstrdup(name);
	nl->kind = xstrdup(kind);
	nl->flags = rtnl_link_get_flags(l);
	nl->mtu = rtnl_link_get_mtu(l);
	nl->address = bytes_of(rtnl_link_get_addr(l));
	nl->has_address = nl->address.len > 0;
	if (!strcmp(kind, "veth")) {
		int32_t nsid;

		nl->has_peer_ifindex = true;
		nl->peer_ifindex = rtnl_link_get_link(l);
		/* a peer in another namespace: found by netns_resolve */
		nl->has_peer_ns = rtnl_link_get_link_netnsid(l, &nsid) == 0;
	}
	ns->links = xrealloc(ns->links, (ns->nr_links + 1) * sizeof(*ns->links));
	ns->links[ns->nr_links++] = nl;
	return 0;
}

static void read_addr(struct netns *ns, struct rtnl_addr *a)
{
	Stasis__NetAddr *na = xmalloc(sizeof(*na));

	stasis__net_addr__init(na);
	na->ifindex = rtnl_addr_get_ifindex(a);
	na->family = rtnl_addr_get_family(a);
	na->local = bytes_of(rtnl_addr_get_local(a));
	na->prefixlen = rtnl_addr_get_prefixlen(a);
	na->peer = bytes_of(rtnl_addr_get_peer(a));
	na->has_peer = na->peer.len > 0;
	na->broadcast = bytes_of(rtnl_addr_get_broadcast(a));
	na->has_broadcast = na->broadcast.len > 0;
	na->has_flags = na->has_scope = true;
	na->flags = rtnl_addr_get_flags(a);
	na->scope = rtnl_addr_get_scope(a);
	if (rtnl_addr_get_label(a))
		na->label = xstrdup(rtnl_addr_get_label(a));
	ns->addrs = xrealloc(ns->addrs, (ns->nr_addrs + 1) * sizeof(*ns->addrs));
	ns->addrs[ns->nr_addrs++] = na;
}

/* Routes of the main table the kernel did not make from an address or a
 * link (those come back with them). */
static int read_route(struct netns *ns, struct rtnl_route *r)
{
	Stasis__NetRoute *nr;
	struct rtnl_nexthop *nh;

	if (rtnl_route_get_table(r) != RT_TABLE_MAIN || rtnl_route_get_protocol(r) == RTPROT_KERNEL)
		return 0;
	if (rtnl_route_get_nnexthops(r) > 1) {
		pr_err("network namespace %u: a route with several next hops is not carried",
		       ns->id);
		return -1;
	}
	nr = xmalloc(sizeof(*nr));
	stasis__net_route__init(nr);
	nr->family = rtnl_route_get_family(r);
	nr->table = rtnl_route_get_table(r);
	nr->dst = bytes_of(rtnl_route_get_dst(r));
	nr->has_dst = nr->dst.len > 0;
	nr->dst_len = rtnl_route_get_dst(r) ? nl_addr_get_prefixlen(rtnl_route_get_dst(r)) : 0;
	nr->has_priority = true;
	nr->priority = rtnl_route_get_priority(r);
	nr->protocol = rtnl_route_get_protocol(r);
	nr->scope = rtnl_route_get_scope(r);
	nr->type = rtnl_route_get_type(r);
	nr->prefsrc = bytes_of(rtnl_route_get_pref_src(r));
	nr->has_prefsrc = nr->prefsrc.len > 0;
	nh = rtnl_route_get_nnexthops(r) ? rtnl_route_nexthop_n(r, 0) : NULL;
	if (nh) {
		nr->has_oif = true;
		nr->oif = rtnl_route_nh_get_ifindex(nh);
		nr->gateway = bytes_of(rtnl_route_nh_get_gateway(nh));
		nr->has_gateway = nr->gateway.len > 0;
	}
	ns->routes = xrealloc(ns->routes, (ns->nr_routes + 1) * sizeof(*ns->routes));
	ns->routes[ns->nr_routes++] = nr;
	return 0;
}

/* Everything of namespace ns, from inside it. */
static int read_netns(struct netns *ns)
{
	struct nl_cache *links = NULL, *addrs = NULL, *routes = NULL;
	struct nl_sock *sk = nl_socket_alloc();
	struct nl_object *o;
	int err, ret = -1;

	if (!sk) {
		pr_err("cannot allocate a netlink socket");
		return -1;
	}
	err = nl_connect(sk, NETLINK_ROUTE);
	if (!err)
		err = rtnl_link_alloc_cache(sk, AF_UNSPEC, &links);
	if (!err)
		err = rtnl_addr_alloc_cache(sk, &addrs);
	if (!err)
		err = rtnl_route_alloc_cache(sk, AF_UNSPEC, 0, &routes);
	if (err) {
		pr_err("network namespace %u: cannot read it: %s", ns->id, nl_geterror(err));
		goto out;
	}
	for (o = nl_cache_get_first(links); o; o = nl_cache_get_next(o))
		if (read_link(ns, (struct rtnl_link *)o))
			goto out;
	for (o = nl_cache_get_first(addrs); o; o = nl_cache_get_next(o))
		read_addr(ns, (struct rtnl_addr *)o);
	for (o = nl_cache_get_first(routes); o; o = nl_cache_get_next(o))
		if (read_route(ns, (struct rtnl_route *)o))
			goto out;
	for (size_t i = 0; i < ARRAY_SIZE(global_sysctls); i++)
		add_sysctl(ns, global_sysctls[i]);
	conf_sysctls(ns, "all");
	conf_sysctls(ns, "default");
	for (size_t i = 0; i < ns->nr_links; i++)
		conf_sysctls(ns, ns->links[i]->name);
	pr_debug("network namespace %u: %zu links, %zu addresses, %zu routes, %zu sysctls", ns->id,
		 ns->nr_links, ns->nr_addrs, ns->nr_routes, ns->nr_sysctls);
	ret = 0;
out:
	nl_cache_free(links);
	nl_cache_free(addrs);
	nl_cache_free(routes);
	nl_socket_free(sk);
	return ret;
}

int netns_check(uint32_t nsid)
{
	struct netns *ns;
	int ret;

	for (size_t i = 0; i < nr_netnss; i++)
		if (netnss[i].id == nsid)
			return 0;
	netnss = xrealloc(netnss, (nr_netnss + 1) * sizeof(*netnss));
	ns = &netnss[nr_netnss++];
	memset(ns, 0, sizeof(*ns));
	ns->id = nsid;
	if (ns_enter(nsid))
		return -1;
	ret = read_netns(ns);
	ns_leave(STASIS__NS_KIND__NS_NET);
	return ret;
}

/* Is a veth of ifindex peer_ifindex, whose peer is ifindex, in our own
 * namespace? Its name then. */
static char *outside_peer(uint32_t peer_ifindex, uint32_t ifindex)
{
	struct nl_sock *sk = nl_socket_alloc();
	struct rtnl_link *l = NULL;
	char *name = NULL;

	if (sk && !nl_connect(sk, NETLINK_ROUTE) &&
	    !rtnl_link_get_kernel(sk, peer_ifindex, NULL, &l) && rtnl_link_get_type(l) &&
	    !strcmp(rtnl_link_get_type(l), "veth") && (uint32_t)rtnl_link_get_link(l) == ifindex)
		name = xstrdup(rtnl_link_get_name(l));
	rtnl_link_put(l);
	nl_socket_free(sk);
	return name;
}

/* The peers of the veths, now that every namespace of the tree is known:
 * in the same namespace, or in ours; one in another namespace of the
 * tree, or anywhere else, is refused. */
static int resolve_peers(struct netns *ns)
{
	for (size_t i = 0; i < ns->nr_links; i++) {
		Stasis__NetLink *l = ns->links[i];
		bool found = false;

		if (!l->has_peer_ifindex)
			continue;
		if (!l->has_peer_ns) {
			for (size_t j = 0; j < ns->nr_links; j++)
				found |= ns->links[j]->ifindex == l->peer_ifindex;
			if (!found) {
				pr_err("network namespace %u: veth %s has no peer", ns->id,
				       l->name);
				return -1;
			}
			continue;
		}
		l->peer_ns = 0;
		l->peer_name = outside_peer(l->peer_ifindex, l->ifindex);
		if (!l->peer_name) {
			pr_err("network namespace %u: the peer of veth %s is neither in the same "
			       "namespace nor in stasis's own, which stasis does not support",
			       ns->id, l->name);
			return -1;
		}
		pr_debug("network namespace %u: veth %s has its peer %s outside", ns->id, l->name,
			 l->peer_name);
	}
	return 0;
}

int netns_collect(uint32_t nsid, Stasis__NsEntry *e)
{
	struct netns *ns = NULL;

	for (size_t i = 0; i < nr_netnss; i++)
		if (netnss[i].id == nsid)
			ns = &netnss[i];
	if (!ns && netns_check(nsid))
		return -1;
	for (size_t i = 0; !ns && i < nr_netnss; i++)
		if (netnss[i].id == nsid)
			ns = &netnss[i];
	if (resolve_peers(ns))
		return -1;
	e->n_net_links = ns->nr_links;
	e->net_links = ns->links;
	e->n_net_addrs = ns->nr_addrs;
	e->net_addrs = ns->addrs;
	e->n_net_routes = ns->nr_routes;
	e->net_routes = ns->routes;
	e->n_net_sysctls = ns->nr_sysctls;
	e->net_sysctls = ns->sysctls;
	return 0;
}
