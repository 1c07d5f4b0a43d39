// SPDX-License-Identifier: GPL-2.0
/*
 * stasis-transfer: carry a stream from one host to another, over TLS with
 * both ends authenticated, and bring the receiver's confirmation back to
 * the sender's acknowledgement channel.
 *
 *   sender:    ... | stasis-transfer --to HOST:PORT [--ack-fd FD]
 *   receiver:  stasis-transfer --listen [ADDR:]PORT | ...
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/opts.h"
#include "stasis/util.h"

#include "transfer.h"

struct xfer_opts xopts = {
    .ack_fd = -1,
    .sink_ack_fd = -1,
    .chain_fd = -1,
    .status_fd = -1,
    .ps_socket = -1,
};

enum {
	OPT_TO = 256,
	OPT_LISTEN,
	OPT_PS_SOCKET,
	OPT_ACK_FD,
	OPT_SINK_ACK_FD,
	OPT_CHAIN_FD,
	OPT_RAW,
	OPT_MAX_BUFFER,
	OPT_DAEMON,
	OPT_STATUS_FD,
	OPT_PIDFILE,
	OPT_TLS,
	OPT_TLS_CACERT,
	OPT_TLS_CACRL,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_TLS_NO_CN_VERIFY,
	OPT_LAZY_PAGES,
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: stasis-transfer --to HOST:PORT [--ack-fd FD] [TLS OPTIONS] < STREAM\n"
		"       stasis-transfer --listen [ADDR:]PORT [--sink-ack-fd FD] [TLS OPTIONS]"
		" > STREAM\n"
		"Carry a stream (a checkpoint image stream) from one host to another, over TLS\n"
		"with both ends authenticated by X.509 certificates, and confirm its arrival.\n"
		"\n"
		"Sender:\n"
		"      --to HOST:PORT      connect to HOST (name or address; [IPv6]) and send\n"
		"                          stdin; with --ps-socket, HOST only names the peer\n"
		"                          for the certificate check\n"
		"      --ack-fd FD         write \"OK\" to FD once the receiver confirmed the\n"
		"                          whole stream, then close FD (closed without a word\n"
		"                          on any failure)\n"
		"Receiver:\n"
		"      --listen [ADDR:]PORT\n"
		"                          accept one sender on PORT (all addresses by default)\n"
		"                          and write its stream to stdout; senders refused by\n"
		"                          TLS do not count\n"
		"      --sink-ack-fd FD    confirm to the sender only after reading \"OK\" on FD\n"
		"                          from the program that stores the stream\n"
		"      --chain-fd FD       the links of a chain (stasis-serialize chain --chain-fd\n"
		"                          holds the other end of the socket FD): accept one\n"
		"                          sender after another, one link each, until the\n"
		"                          consumer says the last one arrived\n"
		"      --raw               carry any byte stream; without it the stream must be\n"
		"                          a complete checkpoint image stream (frames checked)\n"
		"      --max-buffer SIZE   memory for data received but not yet taken by the\n"
		"                          consumer (K, M, G suffixes; default: half the RAM)\n"
		"      --daemon            return once listening; serve in the background\n"
		"      --status-fd FD      write a zero byte to FD and close it once listening\n"
		"      --pidfile FILE      write the PID of the listening process to FILE\n"
		"Lazy migration (--lazy-pages), both directions at once:\n"
		"      --lazy-pages        source (--listen): stdin is the lazy page stream of\n"
		"                          stasis-collect --lazy-pages, stdout its page requests;\n"
		"                          destination (--to): stdin is the page requests of the\n"
		"                          lazy-pages daemon, stdout the page stream for it\n"
		"Both:\n"
		"      --ps-socket FD      use the connected socket FD instead of connecting\n"
		"                          or listening (alone: send)\n"
		"      --tls               use TLS; without it the stream goes in the clear\n"
		"      --tls-cacert FILE   trust the CA certificates in FILE only (default:\n"
		"                          " TLS_DEFAULT_CACERT " if present, else the system's)\n"
		"      --tls-cacrl FILE    refuse the certificates revoked in this CRL\n"
		"                          (default: " TLS_DEFAULT_CACRL " if present)\n"
		"      --tls-cert FILE     our certificate (default: " TLS_DEFAULT_CERT ")\n"
		"      --tls-key FILE      its private key\n"
		"                          (default: " TLS_DEFAULT_KEY ")\n"
		"      --tls-no-cn-verify  do not check that the receiver's certificate names\n"
		"                          the HOST of --to\n"
		"  -v, --verbosity[=N]     raise or set the log level (0-4)\n"
		"  -o, --log-file FILE     write log messages to FILE\n"
		"  -h, --help              show this help and exit\n"
		"  -V, --version           show the version and exit\n"
		"\n"
		"Environment: GNUTLS_DEBUG_LEVEL=N (0-9) logs GnuTLS's own messages.\n"
		"Exit status: 0 once the stream was confirmed, 1 on any error.\n");
}

static int parse_fd(const char *opt, const char *arg, int *fd)
{
	int v;

	if (opt_fd(opt, arg, &v))
		return -1;
	if (fcntl(v, F_GETFD) < 0) {
		pr_err("%s %d: the descriptor is not open", opt, v);
		return -1;
	}
	/* ours only, not for the programs we might start */
	fcntl(v, F_SETFD, FD_CLOEXEC);
	*fd = v;
	return 0;
}

static size_t default_buffer(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);

	if (pages <= 0 || psz <= 0)
		return (size_t)1 << 30;
	return (size_t)pages * psz / 2;
}

static int parse_opts(int argc, char **argv)
{
	static const struct option lopts[] = {
	    {"to", required_argument, NULL, OPT_TO},
	    {"listen", optional_argument, NULL, OPT_LISTEN},
	    {"ps-socket", required_argument, NULL, OPT_PS_SOCKET},
	    {"ack-fd", required_argument, NULL, OPT_ACK_FD},
	    {"sink-ack-fd", required_argument, NULL, OPT_SINK_ACK_FD},
	    {"chain-fd", required_argument, NULL, OPT_CHAIN_FD},
	    {"raw", no_argument, NULL, OPT_RAW},
	    {"max-buffer", required_argument, NULL, OPT_MAX_BUFFER},
	    {"daemon", no_argument, NULL, OPT_DAEMON},
	    {"status-fd", required_argument, NULL, OPT_STATUS_FD},
	    {"pidfile", required_argument, NULL, OPT_PIDFILE},
	    {"tls", no_argument, NULL, OPT_TLS},
	    {"tls-cacert", required_argument, NULL, OPT_TLS_CACERT},
	    {"tls-cacrl", required_argument, NULL, OPT_TLS_CACRL},
	    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
	    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
	    {"tls-no-cn-verify", no_argument, NULL, OPT_TLS_NO_CN_VERIFY},
	    {"lazy-pages", no_argument, NULL, OPT_LAZY_PAGES},
	    COMMON_LONG_OPTS,
	    {}};
	const char *to = NULL, *listen_arg = NULL;
	long long size;
	int c, r;

	while ((c = getopt_long(argc, argv, COMMON_SHORT_OPTS, lopts, NULL)) != -1) {
		r = common_option(c, optarg, "stasis-transfer", usage);
		if (r < 0)
			return -1;
		if (r)
			continue;
		switch (c) {
		case OPT_TO:
			to = optarg;
			break;
		case OPT_LISTEN:
			xopts.listen = true;
			/* "--listen PORT" as well as "--listen=PORT"; none with --ps-socket */
			if (!optarg && optind < argc && argv[optind][0] != '-')
				optarg = argv[optind++];
			listen_arg = optarg;
			break;
		case OPT_PS_SOCKET:
			if (parse_fd("--ps-socket", optarg, &xopts.ps_socket))
				return -1;
			break;
		case OPT_ACK_FD:
			if (parse_fd("--ack-fd", optarg, &xopts.ack_fd))
				return -1;
			break;
		case OPT_SINK_ACK_FD:
			if (parse_fd("--sink-ack-fd", optarg, &xopts.sink_ack_fd))
				return -1;
			break;
		case OPT_CHAIN_FD:
			if (parse_fd("--chain-fd", optarg, &xopts.chain_fd))
				return -1;
			break;
		case OPT_RAW:
			xopts.raw = true;
			break;
		case OPT_MAX_BUFFER:
			if (opt_size("--max-buffer", optarg, XFER_CHUNK_MAX, &size))
				return -1;
			xopts.max_buffer = size;
			break;
		case OPT_DAEMON:
			xopts.daemon = true;
			break;
		case OPT_STATUS_FD:
			if (parse_fd("--status-fd", optarg, &xopts.status_fd))
				return -1;
			break;
		case OPT_PIDFILE:
			xopts.pidfile = optarg;
			break;
		case OPT_TLS:
			xopts.tls = true;
			break;
		case OPT_TLS_CACERT:
			xopts.tls_cacert = optarg;
			break;
		case OPT_TLS_CACRL:
			xopts.tls_cacrl = optarg;
			break;
		case OPT_TLS_CERT:
			xopts.tls_cert = optarg;
			break;
		case OPT_TLS_KEY:
			xopts.tls_key = optarg;
			break;
		case OPT_TLS_NO_CN_VERIFY:
			xopts.tls_no_cn_verify = true;
			break;
		case OPT_LAZY_PAGES:
			xopts.lazy = true;
			break;
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		pr_err("unexpected argument '%s'", argv[optind]);
		return -1;
	}
	/* with --ps-socket, sending is the default role */
	if ((to && xopts.listen) || (!to && !xopts.listen && xopts.ps_socket < 0)) {
		pr_err("give either --to HOST:PORT (send) or --listen [ADDR:]PORT (receive)");
		usage(stderr);
		return -1;
	}
	if (!to && !xopts.listen && xopts.tls && !xopts.tls_no_cn_verify) {
		pr_err("--ps-socket with --tls: give --to HOST, the name the receiver's "
		       "certificate must bear, or --tls-no-cn-verify");
		return -1;
	}
	if (to && net_split(to, false, xopts.ps_socket >= 0, (char **)&xopts.to_host,
			    (char **)&xopts.to_port))
		return -1;
	if (xopts.listen) {
		if (!listen_arg && xopts.ps_socket < 0) {
			pr_err("--listen needs a PORT (or --ps-socket)");
			return -1;
		}
		if (listen_arg && net_split(listen_arg, true, false, (char **)&xopts.listen_host,
					    (char **)&xopts.listen_port))
			return -1;
	}
	if (xopts.chain_fd >= 0 && (xopts.sink_ack_fd >= 0 || xopts.raw || xopts.daemon)) {
		pr_err("--chain-fd excludes --sink-ack-fd, --raw and --daemon");
		return -1;
	}
	if (!xopts.listen && (xopts.sink_ack_fd >= 0 || xopts.chain_fd >= 0 || xopts.raw ||
			      xopts.max_buffer ||
			      xopts.daemon || xopts.status_fd >= 0 || xopts.pidfile)) {
		pr_err("--sink-ack-fd, --chain-fd, --raw, --max-buffer, --daemon, --status-fd and "
		       "--pidfile are options of --listen");
		return -1;
	}
	if (xopts.listen && (xopts.ack_fd >= 0 || xopts.tls_no_cn_verify)) {
		pr_err("--ack-fd and --tls-no-cn-verify are options of --to");
		return -1;
	}
	if (xopts.lazy && (xopts.ack_fd >= 0 || xopts.sink_ack_fd >= 0 || xopts.raw ||
			   xopts.chain_fd >= 0)) {
		pr_err("--lazy-pages carries its own confirmation: --ack-fd, --sink-ack-fd, "
		       "--chain-fd and --raw do not apply");
		return -1;
	}
	if (xopts.daemon && xopts.status_fd >= 0) {
		pr_err("--daemon and --status-fd exclude each other (the daemon's parent "
		       "returns once it listens)");
		return -1;
	}
	if (!xopts.tls && (xopts.tls_cacert || xopts.tls_cacrl || xopts.tls_cert || xopts.tls_key ||
			   xopts.tls_no_cn_verify))
		pr_warn("TLS options without --tls have no effect");
	if (!xopts.max_buffer)
		xopts.max_buffer = default_buffer();
	return 0;
}

int main(int argc, char **argv)
{
	int ret;

	log_init(argv[0]);
	if (parse_opts(argc, argv)) {
		/* the sender's channel closes without a word: collect resumes */
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	if (xopts.tls && tls_setup(xopts.listen)) {
		if (xopts.ack_fd >= 0)
			close(xopts.ack_fd);
		return 1;
	}
	ret = xopts.listen ? run_server() : run_client();
	tls_cleanup();
	return ret;
}
