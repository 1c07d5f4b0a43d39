/* netns GOFILE [MODE [VETH]]
 *
 * A network namespace of its own (the program unshares it first, as
 * root), set up with iproute2:
 *  - lo up, 10.77.0.1/24 on it besides 127.0.0.1;
 *  - a veth pair stv0/stv1 inside, both up, stv0 MTU 1400 and a chosen
 *    MAC, 10.78.0.1/24 and fd00:78::1/64 (nodad) on stv0, 10.78.0.2/24 on
 *    stv1; routes 10.50.0.0/16 via 10.78.0.2 and fd00:50::/64 dev stv0;
 *  - sysctls: net.core.somaxconn 1234, net.ipv4.ip_forward 1,
 *    net.unix.max_dgram_qlen 77, net.ipv4.conf.stv0.rp_filter 2,
 *    net.ipv6.conf.stv0.hop_limit 33;
 *  - a listener on 127.0.0.1, a child that connects to it; the parent
 *    sends "hello" that the child reads only after the restore;
 *  - a UDP socket bound to 10.77.0.1 (127.0.0.1 with join), and a unix datagram socket bound to
 *    an abstract name (abstract names belong to a network namespace).
 * After GO, from inside: links (flags, MTU, MAC), addresses and routes as
 * `ip -o` shows them (indexes left out: the kernel may give others), the
 * sysctls; the child reads "hello" and answers, the parent reads the
 * answer; the listener accepts a new connection; a datagram sent from a
 * new socket reaches the UDP socket, and one to the abstract name the
 * unix socket.
 *
 * MODE outside: instead of the inner pair, a veth stv0 whose peer VETH
 * is in the namespace of PID 1 (stv0 alone gets the address). join: the
 * namespace is checked for its sockets only (the restore puts the tree
 * into another one, --join-ns). bridge: a bridge stvd besides, which
 * the dump must refuse.
 *
 * Sabotage (STASIS_SABOTAGE): "net-link" changes the MTU of lo, "net-addr"
 * removes 10.77.0.1, "net-route" removes the route to 10.50.0.0/16,
 * "net-sysctl" writes net.core.somaxconn, "net-tcp" puts an unconnected
 * socket at the parent's end of the connection, "net-listen" one at the
 * listener's number, "net-udp" and "net-unix" an unbound socket at the
 * UDP or unix socket's.
 */
#include "testprog.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <stddef.h>
#include <sys/wait.h>

static const char *mode = "";

static void sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd))
		tp_die("%s failed", cmd);
}

static int by_text(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A datagram from a new socket of family/type to addr reaches sk. */
static void check_dgram(int sk, int family, const struct sockaddr *addr, socklen_t len,
			const char *what)
{
	int s = socket(family, SOCK_DGRAM, 0);
	char buf[8] = "";

	if (s < 0 || sendto(s, "dgram", 5, 0, addr, len) != 5)
		tp_fail("cannot send to the %s socket (%s)", what, strerror(errno));
	else if (recv(sk, buf, sizeof(buf), MSG_DONTWAIT) != 5 || memcmp(buf, "dgram", 5))
		tp_fail("the %s socket did not get the datagram (%s)", what, strerror(errno));
	if (s >= 0)
		close(s);
}

/* What `ip -o` shows, sorted, less what may differ on a new namespace:
 * link indexes, peer indexes, netns ids, DAD in progress, the route to
 * ::1 (the kernel adds it when it gets to it). */
static char *snapshot(void)
{
	char *lines[256];
	size_t n = 0;
	static const char *const drop[] = {" tentative", " link-netnsid 0", " link-netnsid 1"};
	FILE *f = popen("ip -o link; ip -o addr; ip route; ip -6 route", "r");
	char line[1024], *out = NULL;
	size_t len = 0;

	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		char *p = line, *at;

		/* "N: name..." */
		if (*p >= '0' && *p <= '9' && (at = strstr(p, ": ")))
			p = at + 2;
		/* "stv0@if12:" */
		if ((at = strstr(p, "@if"))) {
			char *end = at + 3;

			while (*end >= '0' && *end <= '9')
				end++;
			memmove(at, end, strlen(end) + 1);
		}
		for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
			while ((at = strstr(p, drop[i])))
				memmove(at, at + strlen(drop[i]), strlen(at + strlen(drop[i])) + 1);
		if (strncmp(p, "::1 dev lo", 10) && n < sizeof(lines) / sizeof(lines[0]))
			lines[n++] = strdup(p);
	}
	pclose(f);
	qsort(lines, n, sizeof(lines[0]), by_text);
	for (size_t i = 0; i < n; i++) {
		out = realloc(out, len + strlen(lines[i]) + 1);
		memcpy(out + len, lines[i], strlen(lines[i]) + 1);
		len += strlen(lines[i]);
		free(lines[i]);
	}
	return out ? out : strdup("");
}

static const char *const sysctls[][2] = {
    {"net/core/somaxconn", "1234"},	    {"net/ipv4/ip_forward", "1"},
    {"net/unix/max_dgram_qlen", "77"},	    {"net/ipv4/conf/stv0/rp_filter", "2"},
    {"net/ipv6/conf/stv0/hop_limit", "33"},
};

static void write_file(const char *path, const char *value)
{
	char full[256];
	int fd;

	snprintf(full, sizeof(full), "/proc/sys/%s", path);
	fd = open(full, O_WRONLY);
	if (fd < 0 || write(fd, value, strlen(value)) != (ssize_t)strlen(value))
		tp_die("cannot write %s", full);
	close(fd);
}

static void check_sysctls(void)
{
	for (size_t i = 0; i < sizeof(sysctls) / sizeof(sysctls[0]); i++) {
		char full[256], buf[64] = "";
		int fd;
		ssize_t n;

		snprintf(full, sizeof(full), "/proc/sys/%s", sysctls[i][0]);
		fd = open(full, O_RDONLY);
		n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
		if (fd >= 0)
			close(fd);
		buf[n > 0 ? n : 0] = 0;
		buf[strcspn(buf, "\n")] = 0;
		if (strcmp(buf, sysctls[i][1]))
			tp_fail("sysctl %s is \"%s\", was %s", sysctls[i][0], buf, sysctls[i][1]);
	}
}

static void setup_links(const char *veth)
{
	sh("ip link set lo up && ip addr add 10.77.0.1/24 dev lo");
	if (!strcmp(mode, "outside")) {
		sh("ip link add stv0 type veth peer name %s netns 1", veth);
		sh("ip link set stv0 mtu 1400 address 02:00:5e:10:00:01 up");
		sh("ip addr add 10.78.0.1/24 dev stv0 && ip link set stv0 up");
		return;
	}
	sh("ip link add stv0 type veth peer name stv1");
	sh("ip link set stv0 mtu 1400 address 02:00:5e:10:00:01");
	sh("ip addr add 10.78.0.1/24 dev stv0 && ip addr add fd00:78::1/64 dev stv0 nodad");
	sh("ip addr add 10.78.0.2/24 dev stv1");
	sh("ip link set stv0 up && ip link set stv1 up");
	sh("ip route add 10.50.0.0/16 via 10.78.0.2 && ip -6 route add fd00:50::/64 dev stv0");
	if (!strcmp(mode, "bridge"))
		sh("ip link add stvd type bridge");
	for (size_t i = 0; i < sizeof(sysctls) / sizeof(sysctls[0]); i++)
		write_file(sysctls[i][0], sysctls[i][1]);
}

static int child_main(int sk)
{
	char buf[8] = "";

	tp_wait_go();
	if (recv(sk, buf, 5, MSG_WAITALL) != 5 || memcmp(buf, "hello", 5))
		return 1;
	if (send(sk, "world", 5, 0) != 5)
		return 2;
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t salen = sizeof(sa);
	struct sockaddr_in ua = {.sin_family = AF_INET};
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	socklen_t ualen = sizeof(ua), unlen;
	int lsk, csk, ask, usk, xsk, one = 1, status;
	char *before = NULL, *after, buf[8] = "";
	pid_t child;

	tp_init(argc, argv, 1, "GOFILE [outside VETH|join|bridge]");
	if (argc > 2)
		mode = argv[2];
	if (!strcmp(mode, "outside") && argc < 4)
		tp_die("outside needs the name of the peer");
	if (unshare(CLONE_NEWNET))
		tp_die("unshare(CLONE_NEWNET)");
	setup_links(argc > 3 ? argv[3] : NULL);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lsk = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lsk, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lsk < 0 || bind(lsk, (struct sockaddr *)&sa, sizeof(sa)) || listen(lsk, 8) ||
	    getsockname(lsk, (struct sockaddr *)&sa, &salen))
		tp_die("listener");
	csk = socket(AF_INET, SOCK_STREAM, 0);
	if (csk < 0 || connect(csk, (struct sockaddr *)&sa, sizeof(sa)))
		tp_die("connect");
	ask = accept(lsk, NULL, NULL);
	if (ask < 0)
		tp_die("accept");
	/* 10.77.0.1; a joined namespace has only 127.0.0.1 */
	ua.sin_addr.s_addr = htonl(strcmp(mode, "join") ? 0x0a4d0001 : INADDR_LOOPBACK);
	usk = socket(AF_INET, SOCK_DGRAM, 0);
	if (usk < 0 || bind(usk, (struct sockaddr *)&ua, sizeof(ua)) ||
	    getsockname(usk, (struct sockaddr *)&ua, &ualen))
		tp_die("UDP socket");
	unlen = offsetof(struct sockaddr_un, sun_path) + 1 +
		snprintf(un.sun_path + 1, sizeof(un.sun_path) - 1, "stasis-netns-%d", getpid());
	xsk = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (xsk < 0 || bind(xsk, (struct sockaddr *)&un, unlen))
		tp_die("unix socket");
	child = fork();
	if (child < 0)
		tp_die("fork");
	if (child == 0) {
		close(ask);
		close(lsk);
		_exit(child_main(csk));
	}
	close(csk);
	if (send(ask, "hello", 5, 0) != 5)
		tp_die("send");
	if (strcmp(mode, "join"))
		before = snapshot();
	tp_ready();
	tp_wait_go();

	if (tp_sabotaged("net-link"))
		sh("ip link set lo mtu 1300");
	if (tp_sabotaged("net-addr"))
		sh("ip addr del 10.77.0.1/24 dev lo");
	if (tp_sabotaged("net-route"))
		sh("ip route del 10.50.0.0/16");
	if (tp_sabotaged("net-sysctl"))
		write_file("net/core/somaxconn", "99");
	if (tp_sabotaged("net-tcp"))
		dup2(socket(AF_INET, SOCK_STREAM, 0), ask);
	if (tp_sabotaged("net-listen"))
		dup2(socket(AF_INET, SOCK_STREAM, 0), lsk);
	if (tp_sabotaged("net-udp"))
		dup2(socket(AF_INET, SOCK_DGRAM, 0), usk);
	if (tp_sabotaged("net-unix"))
		dup2(socket(AF_UNIX, SOCK_DGRAM, 0), xsk);

	if (before) {
		after = snapshot();
		if (!after || strcmp(before, after))
			tp_fail("links, addresses or routes differ: before\n%safter\n%s", before,
				after ? after : "(none)\n");
		if (strcmp(mode, "outside"))
			check_sysctls();
	}
	alarm(20);
	if (recv(ask, buf, 5, MSG_WAITALL) != 5 || memcmp(buf, "world", 5))
		tp_fail("the TCP connection to the child did not carry \"world\" back (%s)",
			strerror(errno));
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status))
		tp_fail("the child's end of the TCP connection failed (status %#x)", status);
	csk = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	connect(csk, (struct sockaddr *)&sa, sizeof(sa));
	{
		int fl = fcntl(lsk, F_GETFL);

		usleep(100000);
		fcntl(lsk, F_SETFL, fl | O_NONBLOCK);
		if (accept(lsk, NULL, NULL) < 0)
			tp_fail("the listener on 127.0.0.1:%u did not accept (%s)",
				ntohs(sa.sin_port), strerror(errno));
	}
	check_dgram(usk, AF_INET, (struct sockaddr *)&ua, sizeof(ua), "UDP");
	check_dgram(xsk, AF_UNIX, (struct sockaddr *)&un, unlen, "abstract unix");
	return tp_finish();
}
