/*
 * Packet sockets across a checkpoint.
 *
 *   packetsk GOFILE all       the sockets below, checked and used after GO
 *   packetsk GOFILE tree      a ring shared by a parent and its child
 *   packetsk GOFILE bound IF  a socket bound to interface IF (which the
 *                             suite removes before the dump: refused)
 *
 * all:
 *   A  SOCK_RAW, ETH_P_ALL, bound to lo, TPACKET_V3 receive ring mapped,
 *      PACKET_AUXDATA, PACKET_TIMESTAMP, a classic BPF filter that takes only
 *      frames of ethertype 0x88b5
 *   B  SOCK_DGRAM, ethertype 0x88b6, bound to lo, TPACKET_V2 receive and
 *      send rings mapped as one, PACKET_RESERVE, PACKET_ORIGDEV,
 *      PACKET_COPY_THRESH, a fanout group, memberships (unicast twice,
 *      promiscuous twice)
 *   C  SOCK_PACKET, ethertype 0x88b7, bound to lo
 *   D  SOCK_RAW, protocol 0 (not receiving), unbound, TPACKET_V1 receive
 *      ring not mapped, PACKET_LOSS, QDISC_BYPASS, IGNORE_OUTGOING, SO_MARK,
 *      SO_PRIORITY, SO_TIMESTAMPNS, a send timeout
 * After GO: names, options, memberships and filters are as they were, the
 * rings are mapped at their addresses from the sockets that own them, and a
 * frame sent through B's send ring arrives in A's receive ring.
 *
 * Sabotage: "ring" replaces A's ring mapping by anonymous memory (all);
 * "child-ring" kills the child before it looks at its mappings (tree).
 */
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/net_tstamp.h>

#include "testprog.h"

#define ETH_TEST_A 0x88b5
#define ETH_TEST_B 0x88b6
#define ETH_TEST_C 0x88b7
#define FANOUT_ID  0x1234
#define FANOUT_VAL (FANOUT_ID | ((PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_ROLLOVER) << 16))
#define PAYLOAD	   "stasis packet ring"

/* frames of ethertype ETH_TEST_A only */
static struct sock_filter only_a[] = {
    BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_TEST_A, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, 0xffff),
    BPF_STMT(BPF_RET | BPF_K, 0),
};

static int lo;

static int xsocket(int type, int proto)
{
	int fd = socket(AF_PACKET, type, htons(proto));

	if (fd < 0)
		tp_die("packet socket type %d", type);
	return fd;
}

static void setint(int fd, int level, int opt, int v)
{
	if (setsockopt(fd, level, opt, &v, sizeof(v)))
		tp_die("setsockopt %d/%d = %d", level, opt, v);
}

static int getint(int fd, int level, int opt)
{
	int v = -1;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, level, opt, &v, &len))
		return -1;
	return v;
}

static void bind_ll(int fd, int proto, int ifindex)
{
	struct sockaddr_ll ll = {
	    .sll_family = AF_PACKET, .sll_protocol = htons(proto), .sll_ifindex = ifindex};

	if (bind(fd, (struct sockaddr *)&ll, sizeof(ll)))
		tp_die("bind to interface %d", ifindex);
}

static void membership(int fd, int type, int alen)
{
	struct packet_mreq mr = {.mr_ifindex = lo, .mr_type = type, .mr_alen = alen};

	if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)))
		tp_die("membership type %d", type);
}

static int drop_membership(int fd, int type, int alen)
{
	struct packet_mreq mr = {.mr_ifindex = lo, .mr_type = type, .mr_alen = alen};

	return setsockopt(fd, SOL_PACKET, PACKET_DROP_MEMBERSHIP, &mr, sizeof(mr));
}

/* IFF_PROMISC as the device has it (SIOCGIFFLAGS shows only the user's) */
static int lo_promisc(void)
{
	FILE *f = fopen("/sys/class/net/lo/flags", "re");
	unsigned flags = 0;

	if (f) {
		if (fscanf(f, "%x", &flags) != 1)
			flags = 0;
		fclose(f);
	}
	return !!(flags & IFF_PROMISC);
}

static void *map_ring(int fd, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		tp_die("mmap ring");
	return p;
}

/* The mapping at p is fd's socket, len bytes, shared. */
static void check_mapping(const char *what, void *p, size_t len, int fd)
{
	char perms[5], path[256], want[64];
	struct stat st;
	unsigned long off;

	fstat(fd, &st);
	snprintf(want, sizeof(want), "socket:[%lu]", (unsigned long)st.st_ino);
	if (tp_maps_entry(p, perms, &off, path, sizeof(path)))
		tp_fail("%s: nothing mapped at %p", what, p);
	else if (strcmp(path, want) || perms[3] != 's' || off)
		tp_fail("%s: %p maps %s (%s, offset %lu), not its socket %s", what, p, path, perms,
			off, want);
	else if (tp_maps_entry((char *)p + len - 1, perms, &off, path, sizeof(path)) ||
		 strcmp(path, want) || off != len - 1)
		tp_fail("%s: the mapping at %p is not %zu bytes long", what, p, len);
}

static void check_filter(int fd, const char *what, struct sock_filter *want, unsigned n)
{
	struct sock_filter got[16];
	socklen_t len = 16;

	if (getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, got, &len) || len != n ||
	    memcmp(got, want, n * sizeof(*got)))
		tp_fail("%s: the filter is not the one attached (%u instructions)", what, len);
}

static void check_name(int fd, const char *what, int proto, int ifindex)
{
	struct sockaddr_ll ll = {};
	socklen_t len = sizeof(ll);

	if (getsockname(fd, (struct sockaddr *)&ll, &len) || ll.sll_family != AF_PACKET ||
	    ntohs(ll.sll_protocol) != proto || ll.sll_ifindex != ifindex)
		tp_fail("%s: bound to protocol %#x interface %d, was %#x %d", what,
			ntohs(ll.sll_protocol), ll.sll_ifindex, proto, ifindex);
}

/* Sends one frame of ETH_TEST_A through B's send ring (TPACKET_V2). */
static void send_through_ring(int b, char *tx, unsigned frame_size)
{
	struct tpacket2_hdr *h = (struct tpacket2_hdr *)tx;
	struct sockaddr_ll to = {.sll_family = AF_PACKET,
				 .sll_protocol = htons(ETH_TEST_A),
				 .sll_ifindex = lo,
				 .sll_halen = ETH_ALEN};
	char *data = tx + TPACKET_ALIGN(sizeof(struct tpacket2_hdr));

	(void)frame_size;
	if (h->tp_status != TP_STATUS_AVAILABLE) {
		tp_fail("B: the first frame of the send ring is not free (status %#x)",
			h->tp_status);
		return;
	}
	memcpy(data, PAYLOAD, sizeof(PAYLOAD));
	h->tp_len = sizeof(PAYLOAD);
	__atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
	if (sendto(b, NULL, 0, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		tp_fail("B: cannot send from the ring: %s", strerror(errno));
}

/* Whether A's TPACKET_V3 ring got the frame; blocks go back to the kernel. */
static int ring_has_payload(char *rx, unsigned block_size, unsigned block_nr)
{
	int found = 0;

	for (unsigned i = 0; i < block_nr; i++) {
		struct tpacket_block_desc *bd = (void *)(rx + (size_t)i * block_size);
		struct tpacket3_hdr *h;

		if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) &
		      TP_STATUS_USER))
			continue;
		h = (void *)((char *)bd + bd->hdr.bh1.offset_to_first_pkt);
		for (unsigned n = 0; n < bd->hdr.bh1.num_pkts; n++) {
			char *frame = (char *)h + h->tp_mac;

			if (h->tp_snaplen >= ETH_HLEN + sizeof(PAYLOAD) &&
			    !memcmp(frame + ETH_HLEN, PAYLOAD, sizeof(PAYLOAD)))
				found = 1;
			h = (void *)((char *)h + h->tp_next_offset);
		}
		__atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
	}
	return found;
}

static int all_mode(void)
{
	struct tpacket_req3 ra = {.tp_block_size = 16384,
				  .tp_block_nr = 4,
				  .tp_frame_size = 2048,
				  .tp_frame_nr = 32,
				  .tp_retire_blk_tov = 10};
	struct tpacket_req rb = {
	    .tp_block_size = 4096, .tp_block_nr = 2, .tp_frame_size = 1024, .tp_frame_nr = 8};
	struct tpacket_req rd = {
	    .tp_block_size = 4096, .tp_block_nr = 1, .tp_frame_size = 2048, .tp_frame_nr = 2};
	struct sock_fprog prog = {4, only_a};
	size_t alen = (size_t)ra.tp_block_size * ra.tp_block_nr;
	size_t blen = 2 * (size_t)rb.tp_block_size * rb.tp_block_nr;
	int a, b, c, d, found = 0;
	char *ring_a, *ring_b;

	lo = if_nametoindex("lo");
	if (!lo)
		tp_die("no lo");

	a = xsocket(SOCK_RAW, ETH_P_ALL);
	setint(a, SOL_PACKET, PACKET_VERSION, TPACKET_V3);
	if (setsockopt(a, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)))
		tp_die("attach filter");
	if (setsockopt(a, SOL_PACKET, PACKET_RX_RING, &ra, sizeof(ra)))
		tp_die("ring of A");
	ring_a = map_ring(a, alen);
	setint(a, SOL_PACKET, PACKET_AUXDATA, 1);
	setint(a, SOL_PACKET, PACKET_TIMESTAMP, SOF_TIMESTAMPING_RAW_HARDWARE);
	bind_ll(a, ETH_P_ALL, lo);

	b = xsocket(SOCK_DGRAM, ETH_TEST_B);
	setint(b, SOL_PACKET, PACKET_VERSION, TPACKET_V2);
	setint(b, SOL_PACKET, PACKET_RESERVE, 8);
	if (setsockopt(b, SOL_PACKET, PACKET_RX_RING, &rb, sizeof(rb)) ||
	    setsockopt(b, SOL_PACKET, PACKET_TX_RING, &rb, sizeof(rb)))
		tp_die("rings of B");
	ring_b = map_ring(b, blen);
	setint(b, SOL_PACKET, PACKET_ORIGDEV, 1);
	setint(b, SOL_PACKET, PACKET_COPY_THRESH, 3);
	bind_ll(b, ETH_TEST_B, lo);
	setint(b, SOL_PACKET, PACKET_FANOUT, FANOUT_VAL);
	membership(b, PACKET_MR_UNICAST, ETH_ALEN);
	membership(b, PACKET_MR_UNICAST, ETH_ALEN);
	membership(b, PACKET_MR_PROMISC, 0);
	membership(b, PACKET_MR_PROMISC, 0);

	c = socket(AF_PACKET, SOCK_PACKET, htons(ETH_TEST_C));
	if (c < 0)
		tp_die("SOCK_PACKET socket");
	{
		struct sockaddr_pkt sp = {.spkt_family = AF_PACKET,
					  .spkt_device = "lo",
					  .spkt_protocol = htons(ETH_TEST_C)};

		if (bind(c, (struct sockaddr *)&sp, sizeof(struct sockaddr)))
			tp_die("bind SOCK_PACKET");
	}

	d = xsocket(SOCK_RAW, 0);
	setint(d, SOL_PACKET, PACKET_LOSS, 1);
	if (setsockopt(d, SOL_PACKET, PACKET_RX_RING, &rd, sizeof(rd)))
		tp_die("ring of D");
	setint(d, SOL_PACKET, PACKET_QDISC_BYPASS, 1);
	setint(d, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1);
	setint(d, SOL_SOCKET, SO_MARK, 7);
	setint(d, SOL_SOCKET, SO_PRIORITY, 3);
	setint(d, SOL_SOCKET, SO_TIMESTAMPNS, 1);
	{
		struct timeval tv = {1, 500000};

		if (setsockopt(d, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
			tp_die("SO_SNDTIMEO");
	}

	tp_ready();
	tp_wait_go();
	if (tp_sabotaged("ring") &&
	    mmap(ring_a, alen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1,
		 0) == MAP_FAILED)
		tp_die("sabotage");

	/* A */
	check_name(a, "A", ETH_P_ALL, lo);
	check_mapping("A's ring", ring_a, alen, a);
	check_filter(a, "A", only_a, 4);
	if (getint(a, SOL_PACKET, PACKET_VERSION) != TPACKET_V3 ||
	    getint(a, SOL_PACKET, PACKET_AUXDATA) != 1 ||
	    getint(a, SOL_PACKET, PACKET_TIMESTAMP) != SOF_TIMESTAMPING_RAW_HARDWARE ||
	    getint(a, SOL_PACKET, PACKET_ORIGDEV) != 0)
		tp_fail(
		    "A: version %d auxdata %d timestamp %d origdev %d",
		    getint(a, SOL_PACKET, PACKET_VERSION), getint(a, SOL_PACKET, PACKET_AUXDATA),
		    getint(a, SOL_PACKET, PACKET_TIMESTAMP), getint(a, SOL_PACKET, PACKET_ORIGDEV));
	/* B */
	check_name(b, "B", ETH_TEST_B, lo);
	check_mapping("B's rings", ring_b, blen, b);
	if (getint(b, SOL_PACKET, PACKET_VERSION) != TPACKET_V2 ||
	    getint(b, SOL_PACKET, PACKET_RESERVE) != 8 ||
	    getint(b, SOL_PACKET, PACKET_ORIGDEV) != 1 ||
	    getint(b, SOL_PACKET, PACKET_AUXDATA) != 0)
		tp_fail(
		    "B: version %d reserve %d origdev %d", getint(b, SOL_PACKET, PACKET_VERSION),
		    getint(b, SOL_PACKET, PACKET_RESERVE), getint(b, SOL_PACKET, PACKET_ORIGDEV));
	if ((unsigned)getint(b, SOL_PACKET, PACKET_FANOUT) != FANOUT_VAL)
		tp_fail("B: fanout %#x, was %#x", getint(b, SOL_PACKET, PACKET_FANOUT), FANOUT_VAL);
	/* unicast memberships cannot be read back; the promiscuous one shows
	 * in lo's flags, and it was added twice */
	if (!lo_promisc())
		tp_fail("B: lo is not promiscuous any more");
	else if (drop_membership(b, PACKET_MR_PROMISC, 0) || !lo_promisc())
		tp_fail("B: the promiscuous membership was not there twice");
	/* C */
	{
		struct sockaddr_pkt sp = {};
		socklen_t len = sizeof(sp);

		if (getsockname(c, (struct sockaddr *)&sp, &len) ||
		    strcmp((char *)sp.spkt_device, "lo") ||
		    getint(c, SOL_SOCKET, SO_TYPE) != SOCK_PACKET)
			tp_fail("C: SOCK_PACKET bound to '%.14s', type %d", sp.spkt_device,
				getint(c, SOL_SOCKET, SO_TYPE));
	}
	/* D */
	check_name(d, "D", 0, 0);
	if (getint(d, SOL_PACKET, PACKET_VERSION) != TPACKET_V1 ||
	    getint(d, SOL_PACKET, PACKET_QDISC_BYPASS) != 1 ||
	    getint(d, SOL_PACKET, PACKET_IGNORE_OUTGOING) != 1 ||
	    getint(d, SOL_SOCKET, SO_MARK) != 7 || getint(d, SOL_SOCKET, SO_PRIORITY) != 3)
		tp_fail("D: version %d qdisc bypass %d ignore outgoing %d mark %d priority %d",
			getint(d, SOL_PACKET, PACKET_VERSION),
			getint(d, SOL_PACKET, PACKET_QDISC_BYPASS),
			getint(d, SOL_PACKET, PACKET_IGNORE_OUTGOING),
			getint(d, SOL_SOCKET, SO_MARK), getint(d, SOL_SOCKET, SO_PRIORITY));
	{
		struct timeval tv = {};
		socklen_t tlen = sizeof(tv);

		if (getint(d, SOL_SOCKET, SO_TIMESTAMPNS) != 1 ||
		    getint(d, SOL_PACKET, PACKET_LOSS) != 1 ||
		    getsockopt(d, SOL_SOCKET, SO_SNDTIMEO, &tv, &tlen) || tv.tv_sec != 1 ||
		    tv.tv_usec != 500000)
			tp_fail("D: SO_TIMESTAMPNS %d, PACKET_LOSS %d, SO_SNDTIMEO %ld.%06ld",
				getint(d, SOL_SOCKET, SO_TIMESTAMPNS),
				getint(d, SOL_PACKET, PACKET_LOSS), (long)tv.tv_sec,
				(long)tv.tv_usec);
	}
	{
		int v = TPACKET_V2;

		/* a socket with a ring keeps its version */
		if (!setsockopt(d, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) || errno != EBUSY)
			tp_fail("D: its receive ring is gone");
	}

	/* traffic: B's send ring to A's receive ring, through lo */
	if (!tp_nfail) {
		send_through_ring(b, ring_b + (size_t)rb.tp_block_size * rb.tp_block_nr,
				  rb.tp_frame_size);
		for (int i = 0; i < 100 && !found; i++) {
			struct pollfd p = {.fd = a, .events = POLLIN};

			poll(&p, 1, 50);
			found = ring_has_payload(ring_a, ra.tp_block_size, ra.tp_block_nr);
		}
		if (!found)
			tp_fail("A: the frame sent through B's ring did not arrive in A's ring");
	}
	return tp_finish();
}

/* Waits (up to 5 s) for a TPACKET_V2 frame carrying PAYLOAD in ring. */
static int v2_ring_gets_payload(int fd, char *ring, struct tpacket_req *r)
{
	for (int round = 0; round < 100; round++) {
		struct pollfd p = {.fd = fd, .events = POLLIN};

		if (fd >= 0)
			poll(&p, 1, 50);
		else
			usleep(50000);
		for (unsigned i = 0; i < r->tp_frame_nr; i++) {
			struct tpacket2_hdr *h = (void *)(ring + (size_t)i * r->tp_frame_size);

			if (!(__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER))
				continue;
			if (h->tp_snaplen >= sizeof(PAYLOAD) &&
			    !memcmp((char *)h + h->tp_net, PAYLOAD, sizeof(PAYLOAD)))
				return 1;
		}
	}
	return 0;
}

/*
 * tree: the parent maps a TPACKET_V2 receive ring and forks; the child
 * keeps the mapping it inherited, a second mapping of its own, and closes
 * its copy of the socket. After GO the parent sends a frame and both see it
 * in their mappings: the child's are the ring of the parent's socket.
 */
static int tree_mode(void)
{
	struct tpacket_req r = {
	    .tp_block_size = 4096, .tp_block_nr = 2, .tp_frame_size = 2048, .tp_frame_nr = 4};
	size_t len = (size_t)r.tp_block_size * r.tp_block_nr;
	int fd, pipefd[2], status;
	char *ring, c;
	pid_t child;

	lo = if_nametoindex("lo");
	fd = xsocket(SOCK_DGRAM, ETH_TEST_C);
	setint(fd, SOL_PACKET, PACKET_VERSION, TPACKET_V2);
	if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &r, sizeof(r)))
		tp_die("ring");
	ring = map_ring(fd, len);
	bind_ll(fd, ETH_TEST_C, lo);
	if (pipe(pipefd))
		tp_die("pipe");
	child = fork();
	if (child < 0)
		tp_die("fork");
	if (child == 0) {
		char *own = map_ring(fd, len);
		int ok;

		close(fd);
		close(pipefd[0]);
		if (write(pipefd[1], "r", 1) != 1)
			_exit(2);
		close(pipefd[1]);
		tp_wait_go();
		ok = v2_ring_gets_payload(-1, ring, &r) && v2_ring_gets_payload(-1, own, &r);
		_exit(ok ? 0 : 1);
	}
	close(pipefd[1]);
	if (read(pipefd[0], &c, 1) != 1)
		tp_die("child");
	close(pipefd[0]);
	tp_ready();
	tp_wait_go();
	if (tp_sabotaged("child-ring"))
		kill(child, SIGKILL);
	check_mapping("the parent's ring", ring, len, fd);
	{
		int tx = xsocket(SOCK_DGRAM, ETH_TEST_C);
		struct sockaddr_ll to = {.sll_family = AF_PACKET,
					 .sll_protocol = htons(ETH_TEST_C),
					 .sll_ifindex = lo,
					 .sll_halen = ETH_ALEN};

		if (sendto(tx, PAYLOAD, sizeof(PAYLOAD), 0, (struct sockaddr *)&to, sizeof(to)) < 0)
			tp_fail("cannot send a frame: %s", strerror(errno));
		close(tx);
	}
	if (!v2_ring_gets_payload(fd, ring, &r))
		tp_fail("the parent's ring did not get the frame");
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status))
		tp_fail("the child's mappings did not show the frame in the parent's ring");
	return tp_finish();
}

static int bound_mode(const char *ifname)
{
	int idx = if_nametoindex(ifname), fd;

	if (!idx)
		tp_die("no interface %s", ifname);
	fd = xsocket(SOCK_RAW, ETH_TEST_A);
	bind_ll(fd, ETH_TEST_A, idx);
	tp_ready();
	tp_wait_go();
	return tp_finish();
}

int main(int argc, char **argv)
{
	tp_init(argc, argv, 2, "GOFILE all|tree|bound IF");
	if (!strcmp(argv[2], "all"))
		return all_mode();
	if (!strcmp(argv[2], "tree"))
		return tree_mode();
	if (!strcmp(argv[2], "bound") && argc > 3)
		return bound_mode(argv[3]);
	fprintf(stderr, "unknown mode %s\n", argv[2]);
	return 2;
}
