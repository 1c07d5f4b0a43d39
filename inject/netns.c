// SPDX-License-Identifier: GPL-2.0
/*
 * Network namespaces (collect/netns.c, docs/netns.md), filled in their
 * holder (ns.c) right after it unshared, through rtnetlink (libnl-route):
 * the global sysctls, the links (loopback is there already; a veth pair
 * inside is made with both ends, a veth whose peer was outside gets a
 * new peer in stasis-inject's namespace, named by --veth-pair or by the
 * kernel), their MTU and MAC, the per-device sysctls, the addresses,
 * the up state, then the routes. Links are matched by name: the kernel
 * may give them other indexes.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/if_addr.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>
#include <netlink/route/rtnl.h>

#include "inject.h"
#include "stasis/log.h"
#include "stasis/util.h"

static int outside_fd = -1;

int netns_before_unshare(void)
{
	outside_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (outside_fd < 0)
		pr_perror("cannot open our own network namespace");
	return outside_fd < 0 ? -1 : 0;
}

/* --veth-pair IN=OUT: the name of the outside end of veth IN, or NULL. */
static const char *outside_name(const char *in)
{
	size_t len = strlen(in);

	for (int i = 0; i < opts.nr_veth_pairs; i++)
		if (!strncmp(opts.veth_pairs[i], in, len) && opts.veth_pairs[i][len] == '=')
			return opts.veth_pairs[i] + len + 1;
	return NULL;
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

/* Written only where it differs: read-only ones keep their value. */
static int write_sysctl(uint32_t id, const Stasis__NetSysctl *s)
{
	char path[256], *now = read_sysctl(s->name);
	size_t len = strlen(s->value);
	int fd, ret = 0;

	if (!now) {
		pr_warn("network namespace %u: sysctl %s is not in this kernel", id, s->name);
		return 0;
	}
	if (strcmp(now, s->value)) {
		snprintf(path, sizeof(path), "/proc/sys/%s", s->name);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, s->value, len) != (ssize_t)len) {
			pr_perror("network namespace %u: cannot set sysctl %s to %s", id, s->name,
				  s->value);
			ret = -1;
		}
		if (fd >= 0)
			close(fd);
	}
	free(now);
	return ret;
}

static bool per_device(const char *name)
{
	return !strncmp(name, "net/ipv4/conf/", 14) || !strncmp(name, "net/ipv6/conf/", 14);
}

static bool all_or_default(const char *name)
{
	const char *dev = name + 14;

	return !strncmp(dev, "all/", 4) || !strncmp(dev, "default/", 8);
}

static int set_sysctls(const Stasis__NsEntry *e, int pass)
{
	for (size_t i = 0; i < e->n_net_sysctls; i++) {
		const char *name = e->net_sysctls[i]->name;
		int p = !per_device(name) ? 0 : all_or_default(name) ? 1 : 2;

		if (p == pass && write_sysctl(e->id, e->net_sysctls[i]))
			return -1;
	}
	return 0;
}

static struct nl_addr *addr_of(const ProtobufCBinaryData *b, int family, unsigned prefixlen)
{
	struct nl_addr *a = nl_addr_build(family, b->data, b->len);

	if (a)
		nl_addr_set_prefixlen(a, prefixlen);
	return a;
}

static const Stasis__NetLink *link_by_index(const Stasis__NsEntry *e, uint32_t ifindex)
{
	for (size_t i = 0; i < e->n_net_links; i++)
		if (e->net_links[i]->ifindex == ifindex)
			return e->net_links[i];
	return NULL;
}

/* The index the link of old index ifindex has now (by its name), or 0. */
static int new_index(struct nl_sock *sk, const Stasis__NsEntry *e, uint32_t ifindex)
{
	const Stasis__NetLink *l = link_by_index(e, ifindex);
	struct rtnl_link *nl;
	int r;

	if (!l || rtnl_link_get_kernel(sk, 0, l->name, &nl))
		return 0;
	r = rtnl_link_get_ifindex(nl);
	rtnl_link_put(nl);
	return r;
}

static int make_veth(struct nl_sock *sk, const Stasis__NsEntry *e, const Stasis__NetLink *l)
{
	struct rtnl_link *veth, *peer;
	const Stasis__NetLink *inner = NULL;
	const char *peer_name;
	int err;

	if (!l->has_peer_ns) {
		inner = link_by_index(e, l->peer_ifindex);
		if (!inner) {
			pr_err("network namespace %u: veth %s has no peer", e->id, l->name);
			return -1;
		}
		if (inner->ifindex < l->ifindex)
			return 0; /* made with its peer */
	}
	veth = rtnl_link_veth_alloc();
	if (!veth) {
		pr_err("cannot allocate a veth link");
		return -1;
	}
	peer = rtnl_link_veth_get_peer(veth);
	rtnl_link_set_name(veth, l->name);
	/* the same indexes, as criu asks: the kernel takes them if free */
	rtnl_link_set_ifindex(veth, l->ifindex);
	if (inner) {
		rtnl_link_set_name(peer, inner->name);
		rtnl_link_set_ifindex(peer, inner->ifindex);
		peer_name = inner->name;
	} else {
		peer_name = outside_name(l->name);
		if (peer_name)
			rtnl_link_set_name(peer, peer_name);
		rtnl_link_set_ns_fd(peer, outside_fd);
	}
	err = rtnl_link_add(sk, veth, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_link_put(peer);
	rtnl_link_veth_release(veth);
	if (err < 0) {
		pr_err("network namespace %u: cannot make veth %s (peer %s%s): %s", e->id, l->name,
		       peer_name ? peer_name : "named by the kernel", inner ? "" : ", outside",
		       nl_geterror(err));
		return -1;
	}
	if (!inner)
		pr_info("network namespace %u: veth %s has its peer %s outside (it was %s)", e->id,
			l->name, peer_name ? peer_name : "named by the kernel",
			l->peer_name ? l->peer_name : "?");
	return 0;
}

/* MTU and MAC of a link (made or already there), or its up state. */
static int set_link(struct nl_sock *sk, const Stasis__NsEntry *e, const Stasis__NetLink *l, bool up)
{
	struct rtnl_link *old, *change = rtnl_link_alloc();
	struct nl_addr *mac = NULL;
	int err;

	err = rtnl_link_get_kernel(sk, 0, l->name, &old);
	if (err < 0) {
		pr_err("network namespace %u: link %s is not there: %s", e->id, l->name,
		       nl_geterror(err));
		rtnl_link_put(change);
		return -1;
	}
	if (up) {
		if (l->flags & IFF_UP)
			rtnl_link_set_flags(change, IFF_UP);
	} else {
		rtnl_link_set_mtu(change, l->mtu);
		if (l->has_address && strcmp(l->kind, "loopback")) {
			mac = nl_addr_build(AF_LLC, l->address.data, l->address.len);
			rtnl_link_set_addr(change, mac);
		}
	}
	err = rtnl_link_change(sk, old, change, 0);
	nl_addr_put(mac);
	rtnl_link_put(old);
	rtnl_link_put(change);
	if (err < 0) {
		pr_err("network namespace %u: cannot set %s of link %s: %s", e->id,
		       up ? "the up state" : "the MTU and address", l->name, nl_geterror(err));
		return -1;
	}
	return 0;
}

static int add_addr(struct nl_sock *sk, const Stasis__NsEntry *e, const Stasis__NetAddr *a)
{
	struct rtnl_addr *ra = rtnl_addr_alloc();
	struct nl_addr *local = addr_of(&a->local, a->family, a->prefixlen), *peer = NULL,
		       *bcast = NULL;
	int ifindex = new_index(sk, e, a->ifindex), err;

	/* link-local IPv6 ones come back with the link and its MAC */
	if (a->family == AF_INET6 && a->has_scope && a->scope == RT_SCOPE_LINK) {
		rtnl_addr_put(ra);
		nl_addr_put(local);
		return 0;
	}
	if (!ra || !local || !ifindex) {
		pr_err("network namespace %u: cannot rebuild an address of link %u", e->id,
		       a->ifindex);
		rtnl_addr_put(ra);
		nl_addr_put(local);
		return -1;
	}
	rtnl_addr_set_ifindex(ra, ifindex);
	rtnl_addr_set_family(ra, a->family);
	rtnl_addr_set_local(ra, local);
	rtnl_addr_set_prefixlen(ra, a->prefixlen);
	if (a->has_peer && (peer = addr_of(&a->peer, a->family, a->prefixlen)))
		rtnl_addr_set_peer(ra, peer);
	if (a->has_broadcast && (bcast = addr_of(&a->broadcast, a->family, 0)))
		rtnl_addr_set_broadcast(ra, bcast);
	if (a->has_scope)
		rtnl_addr_set_scope(ra, a->scope);
	if (a->label)
		rtnl_addr_set_label(ra, a->label);
	/* the flags one can ask for; others are the kernel's (an IPv6
	 * address without nodad goes through duplicate detection again) */
	rtnl_addr_set_flags(ra, a->flags & (IFA_F_NODAD | IFA_F_NOPREFIXROUTE |
					    IFA_F_MANAGETEMPADDR | IFA_F_HOMEADDRESS));
	err = rtnl_addr_add(sk, ra, NLM_F_CREATE | NLM_F_REPLACE);
	rtnl_addr_put(ra);
	nl_addr_put(local);
	nl_addr_put(peer);
	nl_addr_put(bcast);
	/* the kernel's own (127.0.0.1 on lo, link-local ones) may be back */
	if (err < 0 && err != -NLE_EXIST) {
		pr_err("network namespace %u: cannot add an address to link %u: %s", e->id, ifindex,
		       nl_geterror(err));
		return -1;
	}
	return 0;
}

static int add_route(struct nl_sock *sk, const Stasis__NsEntry *e, const Stasis__NetRoute *r)
{
	struct rtnl_route *rr = rtnl_route_alloc();
	struct nl_addr *dst = NULL, *gw = NULL, *src = NULL;
	int err = 0;

	rtnl_route_set_family(rr, r->family);
	rtnl_route_set_table(rr, r->table);
	rtnl_route_set_protocol(rr, r->protocol);
	rtnl_route_set_scope(rr, r->scope);
	rtnl_route_set_type(rr, r->type);
	if (r->has_priority)
		rtnl_route_set_priority(rr, r->priority);
	dst = r->has_dst ? addr_of(&r->dst, r->family, r->dst_len) : nl_addr_alloc(0);
	if (dst) {
		nl_addr_set_family(dst, r->family);
		nl_addr_set_prefixlen(dst, r->dst_len);
		rtnl_route_set_dst(rr, dst);
	}
	if (r->has_prefsrc && (src = addr_of(&r->prefsrc, r->family, 0)))
		rtnl_route_set_pref_src(rr, src);
	if (r->has_oif || r->has_gateway) {
		struct rtnl_nexthop *nh = rtnl_route_nh_alloc();

		if (r->has_oif)
			rtnl_route_nh_set_ifindex(nh, new_index(sk, e, r->oif));
		if (r->has_gateway && (gw = addr_of(&r->gateway, r->family, 0)))
			rtnl_route_nh_set_gateway(nh, gw);
		rtnl_route_add_nexthop(rr, nh);
	}
	if (!dst)
		err = -NLE_NOMEM;
	if (!err)
		err = rtnl_route_add(sk, rr, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_route_put(rr);
	nl_addr_put(dst);
	nl_addr_put(gw);
	nl_addr_put(src);
	if (err < 0 && err != -NLE_EXIST) {
		pr_err("network namespace %u: cannot add a route (family %u, /%u): %s", e->id,
		       r->family, r->dst_len, nl_geterror(err));
		return -1;
	}
	return 0;
}

int netns_fill(const Stasis__NsEntry *e)
{
	struct nl_sock *sk = nl_socket_alloc();
	int err, ret = -1;

	if (!sk || (err = nl_connect(sk, NETLINK_ROUTE)) < 0) {
		pr_err("network namespace %u: cannot open rtnetlink", e->id);
		goto out;
	}
	if (set_sysctls(e, 0) || set_sysctls(e, 1))
		goto out;
	for (size_t i = 0; i < e->n_net_links; i++) {
		const Stasis__NetLink *l = e->net_links[i];

		if (!strcmp(l->kind, "veth")) {
			if (make_veth(sk, e, l))
				goto out;
		} else if (strcmp(l->kind, "loopback")) {
			pr_err("network namespace %u: link %s of kind %s cannot be made", e->id,
			       l->name, l->kind);
			goto out;
		}
	}
	for (size_t i = 0; i < e->n_net_links; i++)
		if (set_link(sk, e, e->net_links[i], false))
			goto out;
	if (set_sysctls(e, 2))
		goto out;
	for (size_t i = 0; i < e->n_net_addrs; i++)
		if (add_addr(sk, e, e->net_addrs[i]))
			goto out;
	for (size_t i = 0; i < e->n_net_links; i++)
		if (set_link(sk, e, e->net_links[i], true))
			goto out;
	for (size_t i = 0; i < e->n_net_routes; i++)
		if (add_route(sk, e, e->net_routes[i]))
			goto out;
	pr_debug("network namespace %u: %zu links, %zu addresses, %zu routes", e->id,
		 e->n_net_links, e->n_net_addrs, e->n_net_routes);
	ret = 0;
out:
	nl_socket_free(sk);
	return ret;
}
