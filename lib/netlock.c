// SPDX-License-Identifier: GPL-2.0
/*
 * The network lock, through iptables-restore (a chain STASIS-PID jumped to
 * from INPUT and OUTPUT) or nft (a table inet stasis-PID with input and
 * output chains). Each connection gets a DROP rule for each direction.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/netlock.h"
#include "stasis/util.h"

int netlock_parse(const char *name)
{
	if (!strcmp(name, "iptables"))
		return NETLOCK_IPTABLES;
	if (!strcmp(name, "nftables"))
		return NETLOCK_NFTABLES;
	if (!strcmp(name, "skip"))
		return NETLOCK_SKIP;
	return -1;
}

const char *netlock_name(enum netlock_method m)
{
	return m == NETLOCK_IPTABLES ? "iptables" : m == NETLOCK_NFTABLES ? "nftables" : "skip";
}

/* The network namespace the rules go to (-1: ours). */
static int target_netns = -1;

void netlock_set_netns(int nsfd)
{
	target_netns = nsfd;
}

/*
 * Runs argv with input on its stdin, in the target network namespace;
 * its output goes to our stderr (our stdout may carry a checkpoint).
 * Quiet: its messages are dropped. The exit status, or -1.
 */
static int run(char *const argv[], const char *input, int quiet)
{
	int in[2], status;
	size_t len = input ? strlen(input) : 0;
	pid_t pid;

	if (pipe2(in, O_CLOEXEC)) {
		pr_perror("cannot make a pipe for %s", argv[0]);
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		pr_perror("cannot fork for %s", argv[0]);
		close(in[0]);
		close(in[1]);
		return -1;
	}
	if (!pid) {
		int null = open("/dev/null", O_WRONLY);

		dup2(in[0], 0);
		dup2(quiet && null >= 0 ? null : 2, 1);
		if (quiet && null >= 0)
			dup2(null, 2);
		signal(SIGPIPE, SIG_DFL);
		if (target_netns >= 0 && setns(target_netns, CLONE_NEWNET)) {
			fprintf(stderr, "%s: cannot enter the tree's network namespace: %s\n",
				argv[0], strerror(errno));
			_exit(126);
		}
		execvp(argv[0], argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(in[0]);
	if (len && write_full(in[1], input, len))
		pr_perror("cannot write to %s", argv[0]);
	close(in[1]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			pr_perror("cannot wait for %s", argv[0]);
			return -1;
		}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Text that grows. */
struct text {
	char *s;
	size_t len, size;
};

__attribute__((format(printf, 2, 3))) static void add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->size - t->len : 0, fmt, ap);
		va_end(ap);
		if (t->s && (size_t)n < t->size - t->len)
			break;
		t->size = t->size * 2 + n + 256;
		t->s = xrealloc(t->s, t->size);
	}
	t->len += n;
}

static bool is_v4(const struct netlock_conn *c)
{
	static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	return c->family == AF_INET ||
	       (!memcmp(c->src, prefix, 12) && !memcmp(c->dst, prefix, 12));
}

/* The addresses as the packets carry them. */
static void addrs(const struct netlock_conn *c, char *s, char *d, size_t size)
{
	bool v4 = is_v4(c);
	const uint8_t *src = c->src + (v4 && c->family == AF_INET6 ? 12 : 0);
	const uint8_t *dst = c->dst + (v4 && c->family == AF_INET6 ? 12 : 0);

	inet_ntop(v4 ? AF_INET : AF_INET6, src, s, size);
	inet_ntop(v4 ? AF_INET : AF_INET6, dst, d, size);
}

static void nft_rules(struct text *t, const struct netlock_conn *conns, size_t nr)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];

	for (size_t i = 0; i < nr; i++) {
		const char *ip = is_v4(&conns[i]) ? "ip" : "ip6";

		addrs(&conns[i], s, d, sizeof(s));
		add(t, "\t\t%s saddr %s tcp sport %u %s daddr %s tcp dport %u drop\n", ip, s,
		    conns[i].sport, ip, d, conns[i].dport);
		add(t, "\t\t%s saddr %s tcp sport %u %s daddr %s tcp dport %u drop\n", ip, d,
		    conns[i].dport, ip, s, conns[i].sport);
	}
}

static int nft_lock(pid_t root, const struct netlock_conn *conns, size_t nr)
{
	char *argv[] = {"nft", "-f", "-", NULL};
	struct text t = {0};
	int r;

	/* a table left by an earlier dump of the same PID goes first */
	add(&t, "add table inet stasis-%d\ndelete table inet stasis-%d\n", root, root);
	add(&t, "table inet stasis-%d {\n", root);
	add(&t, "\tchain input {\n\t\ttype filter hook input priority -150; policy accept;\n");
	nft_rules(&t, conns, nr);
	add(&t, "\t}\n\tchain output {\n\t\ttype filter hook output priority -150; policy "
		"accept;\n");
	nft_rules(&t, conns, nr);
	add(&t, "\t}\n}\n");
	r = run(argv, t.s, 0);
	free(t.s);
	if (r)
		pr_err("network lock: nft failed (status %d)", r);
	return r ? -1 : 0;
}

static int nft_unlock(pid_t root)
{
	char *argv[] = {"nft", "-f", "-", NULL};
	char buf[128];
	int r;

	snprintf(buf, sizeof(buf), "add table inet stasis-%d\ndelete table inet stasis-%d\n", root,
		 root);
	r = run(argv, buf, 0);
	/* no nft here: no lock here either (a migration) */
	if (r == 127)
		return 0;
	if (r)
		pr_err("network unlock: nft failed (status %d)", r);
	return r ? -1 : 0;
}

static const char *ipt_restore(bool v6)
{
	return v6 ? "ip6tables-restore" : "iptables-restore";
}

static bool ipt_chain_exists(bool v6, pid_t root)
{
	char chain[32];
	char *argv[] = {v6 ? "ip6tables" : "iptables", "-w", "-n", "-L", chain, NULL};

	snprintf(chain, sizeof(chain), "STASIS-%d", root);
	return run(argv, NULL, 1) == 0;
}

static int ipt_unlock_one(bool v6, pid_t root)
{
	char *argv[] = {(char *)ipt_restore(v6), "-w", "--noflush", NULL};
	char buf[256];
	int r;

	if (!ipt_chain_exists(v6, root))
		return 0;
	snprintf(buf, sizeof(buf),
		 "*filter\n-D INPUT -j STASIS-%d\n-D OUTPUT -j STASIS-%d\n-F STASIS-%d\n"
		 "-X STASIS-%d\nCOMMIT\n",
		 root, root, root, root);
	r = run(argv, buf, 0);
	if (r)
		pr_err("network unlock: %s failed (status %d)", argv[0], r);
	return r ? -1 : 0;
}

static int ipt_lock_one(bool v6, pid_t root, const struct netlock_conn *conns, size_t nr)
{
	char *argv[] = {(char *)ipt_restore(v6), "-w", "--noflush", NULL};
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
	struct text t = {0};
	size_t n = 0;
	int r;

	add(&t, "*filter\n:STASIS-%d - [0:0]\n-I INPUT -j STASIS-%d\n-I OUTPUT -j STASIS-%d\n",
	    root, root, root);
	for (size_t i = 0; i < nr; i++) {
		if (is_v4(&conns[i]) == v6)
			continue;
		addrs(&conns[i], s, d, sizeof(s));
		add(&t, "-A STASIS-%d -p tcp -s %s --sport %u -d %s --dport %u -j DROP\n", root, s,
		    conns[i].sport, d, conns[i].dport);
		add(&t, "-A STASIS-%d -p tcp -s %s --sport %u -d %s --dport %u -j DROP\n", root, d,
		    conns[i].dport, s, conns[i].sport);
		n++;
	}
	add(&t, "COMMIT\n");
	r = n ? run(argv, t.s, 0) : 0;
	free(t.s);
	if (r)
		pr_err("network lock: %s failed (status %d)", argv[0], r);
	return r ? -1 : 0;
}

int netlock_lock(enum netlock_method m, pid_t root, const struct netlock_conn *conns, size_t nr)
{
	if (m == NETLOCK_SKIP || !nr)
		return 0;
	if (m == NETLOCK_NFTABLES)
		return nft_lock(root, conns, nr);
	/* a chain left by an earlier dump of the same PID goes first */
	if (ipt_unlock_one(false, root) || ipt_unlock_one(true, root))
		return -1;
	if (ipt_lock_one(false, root, conns, nr))
		return -1;
	if (ipt_lock_one(true, root, conns, nr)) {
		ipt_unlock_one(false, root);
		return -1;
	}
	return 0;
}

int netlock_unlock(enum netlock_method m, pid_t root)
{
	int r;

	if (m == NETLOCK_SKIP)
		return 0;
	if (m == NETLOCK_NFTABLES)
		return nft_unlock(root);
	r = ipt_unlock_one(false, root);
	return ipt_unlock_one(true, root) || r ? -1 : 0;
}
