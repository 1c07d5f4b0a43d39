// SPDX-License-Identifier: GPL-2.0
/* To and from another host, through stasis-transfer: the front-end's
 * network options. */
#include <fcntl.h>
#include <string.h>

#include "stasis/log.h"
#include "stasis/opts.h"
#include "stasis/util.h"

#include "commands.h"

/* A descriptor given on the command line: open, and made close-on-exec so
 * that only the stage it is meant for inherits it. */
int fe_user_fd(const char *opt, const char *arg)
{
	char name[32];
	int v;

	snprintf(name, sizeof(name), "--%s", opt);
	if (opt_fd(name, arg, &v))
		return -1;
	if (fcntl(v, F_SETFD, FD_CLOEXEC)) {
		pr_err("invalid %s '%s': the descriptor is not open", name, arg);
		return -1;
	}
	return v;
}

/* The other side: --address and --port (listening: --port), or --ps-socket. */
int fe_net_endpoint(const struct fe_opts *o, bool listen, int *ps_fd)
{
	int port;

	*ps_fd = -1;
	if (o->str[S_PS_SOCKET]) {
		*ps_fd = fe_user_fd("ps-socket", o->str[S_PS_SOCKET]);
		return *ps_fd < 0 ? -1 : 0;
	}
	if (!o->str[S_PORT] || (!listen && !o->str[S_ADDRESS])) {
		pr_err("%s: give %s--port PORT, or --ps-socket FD", o->cmd_name,
		       listen ? "" : "--address ADDR and ");
		return -1;
	}
	/* checked here, before anything is frozen */
	return opt_int("--port", o->str[S_PORT], 0, 65535, "a TCP port, 0 to 65535", &port);
}

/* stasis-transfer's connection (--to or --listen, --ps-socket) and TLS
 * options, from the front-end's. */
void fe_transfer_args(struct stage *st, const struct fe_opts *o, bool listen, int ps_fd)
{
	static const struct {
		int s;
		const char *opt;
	} tls[] = {
	    {S_TLS_CACERT, "--tls-cacert"},
	    {S_TLS_CACRL, "--tls-cacrl"},
	    {S_TLS_KEY, "--tls-key"},
	};
	const char *addr = o->str[S_ADDRESS], *port = o->str[S_PORT];
	bool v6 = addr && strchr(addr, ':');
	struct args *a = &st->argv;

	if (listen) {
		args_add(a, "--listen");
		if (ps_fd < 0 && addr)
			args_addf(a, v6 ? "[%s]:%s" : "%s:%s", addr, port);
		else if (ps_fd < 0)
			args_add(a, port);
	} else if (addr) {
		/* with --ps-socket, the name the receiver's certificate must bear */
		args_add(a, "--to");
		if (port)
			args_addf(a, v6 ? "[%s]:%s" : "%s:%s", addr, port);
		else
			args_addf(a, v6 ? "[%s]" : "%s", addr);
	}
	if (ps_fd >= 0)
		stage_pass_fd(st, "--ps-socket", ps_fd);
	if (o->flag[F_TLS])
		args_add(a, "--tls");
	for (size_t i = 0; i < ARRAY_SIZE(tls); i++) {
		if (o->str[tls[i].s]) {
			args_add(a, tls[i].opt);
			args_add(a, o->str[tls[i].s]);
		}
	}
	if (o->list[L_TLS_CERT].n) {
		args_add(a, "--tls-cert");
		args_add(a, o->list[L_TLS_CERT].v[o->list[L_TLS_CERT].n - 1]);
	}
	if (o->flag[F_TLS_NO_CN_VERIFY])
		args_add(a, "--tls-no-cn-verify");
}

/* The options of the network where nothing goes over it: refused, rather
 * than a checkpoint silently left on the local disk. */
int fe_check_net_use(const struct fe_opts *o)
{
	static const int strs[] = {S_ADDRESS,	S_PORT,	      S_PS_SOCKET,
				   S_STATUS_FD, S_TLS_CACERT, S_TLS_CACRL};

	if (o->cmd == CMD_PAGE_SERVER || o->flag[F_REMOTE] || o->flag[F_PAGE_SERVER] ||
	    (o->cmd == CMD_DUMP && o->flag[F_LAZY_PAGES]))
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(strs); i++)
		if (o->str[strs[i]])
			goto bad;
	if (!o->flag[F_TLS] && !o->flag[F_TLS_NO_CN_VERIFY])
		return 0;
bad:
	pr_err("%s: --address, --port, --ps-socket, --status-fd, --tls, --tls-cacert, "
	       "--tls-cacrl and --tls-no-cn-verify need %s",
	       o->cmd_name,
	       o->cmd == CMD_DUMP ? "--page-server, --remote or --lazy-pages" : "--remote");
	return -1;
}
