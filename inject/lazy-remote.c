// SPDX-License-Identifier: GPL-2.0
/*
 * stasis lazy-pages --page-server: the daemon's page source is the lazy
 * page server of the source host.
 *
 *   daemon --requests--> stasis-transfer --lazy-pages --to ADDRESS:PORT
 *   daemon <--pages----- stasis-seal --open --lazy-pages <--------'
 *
 * A broken connection or a tampered page ends the page stream without its
 * trailer: the daemon then kills the restored tree, and the source,
 * without the daemon's final word, resumes its own.
 */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lazy-remote.h"
#include "stasis/log.h"
#include "stasis/util.h"

/* stasis-NAME beside our executable, in the build tree (../NAME/), or in
 * PATH (execvp). */
static char *program(const char *name)
{
	char self[PATH_MAX], path[PATH_MAX + 64];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n > 0) {
		self[n] = 0;
		slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			snprintf(path, sizeof(path), "%s/%s", self, name);
			if (!access(path, X_OK))
				return xstrdup(path);
			snprintf(path, sizeof(path), "%s/../%s/%s", self, name + 7, name);
			if (!access(path, X_OK))
				return xstrdup(path);
		}
	}
	return xstrdup(name);
}

static pid_t spawn(char **argv, int in, int out)
{
	pid_t pid = fork();

	if (pid < 0) {
		pr_perror("cannot start %s", argv[0]);
		return -1;
	}
	if (pid == 0) {
		if (dup2(in, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0)
			_exit(127);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], argv);
		pr_perror("cannot run %s", argv[0]);
		_exit(127);
	}
	return pid;
}

int lazy_remote_start(const struct lazy_remote *r, int *req_fd, int *resp_fd, pid_t pids[2])
{
	char *xargv[32], *sargv[16], to[600], verb[16];
	int req[2] = { -1, -1 }, mid[2] = { -1, -1 }, resp[2] = { -1, -1 }, x = 0, s = 0;
	char *xfer = program("stasis-transfer"), *seal = program("stasis-seal");
	int ret = -1;

	pids[0] = pids[1] = -1;
	snprintf(to, sizeof(to), strchr(r->address, ':') ? "[%s]:%s" : "%s:%s", r->address,
		 r->port);
	snprintf(verb, sizeof(verb), "-v%d", log_get_level());
	xargv[x++] = xfer;
	xargv[x++] = "--lazy-pages";
	xargv[x++] = "--to";
	xargv[x++] = to;
	if (r->tls)
		xargv[x++] = "--tls";
	if (r->tls_cacert) {
		xargv[x++] = "--tls-cacert";
		xargv[x++] = (char *)r->tls_cacert;
	}
	if (r->tls_cacrl) {
		xargv[x++] = "--tls-cacrl";
		xargv[x++] = (char *)r->tls_cacrl;
	}
	if (r->tls_cert) {
		xargv[x++] = "--tls-cert";
		xargv[x++] = (char *)r->tls_cert;
	}
	if (r->tls_key) {
		xargv[x++] = "--tls-key";
		xargv[x++] = (char *)r->tls_key;
	}
	if (r->tls_no_cn_verify)
		xargv[x++] = "--tls-no-cn-verify";
	xargv[x++] = verb;
	if (r->log_file) {
		xargv[x++] = "-o";
		xargv[x++] = (char *)r->log_file;
	}
	xargv[x] = NULL;

	/* the checkpoint's recipient key is our TLS key, as in criu(8) */
	sargv[s++] = seal;
	sargv[s++] = "--open";
	sargv[s++] = "--lazy-pages";
	if (r->tls_key) {
		sargv[s++] = "--tls-key";
		sargv[s++] = (char *)r->tls_key;
	}
	sargv[s++] = verb;
	if (r->log_file) {
		sargv[s++] = "-o";
		sargv[s++] = (char *)r->log_file;
	}
	sargv[s] = NULL;

	if (pipe2(req, O_CLOEXEC) || pipe2(mid, O_CLOEXEC) || pipe2(resp, O_CLOEXEC)) {
		pr_perror("cannot make the page source's pipes");
		goto out;
	}
	pipe_grow(mid[1]);
	pipe_grow(resp[1]);
	pids[0] = spawn(xargv, req[0], mid[1]);
	if (pids[0] < 0)
		goto out;
	pids[1] = spawn(sargv, mid[0], resp[1]);
	if (pids[1] < 0) {
		kill(pids[0], SIGKILL);
		waitpid(pids[0], NULL, 0);
		pids[0] = -1;
		goto out;
	}
	pr_info("page source: the lazy page server at %s%s", to, r->tls ? " (TLS)" : "");
	*req_fd = req[1];
	*resp_fd = resp[0];
	req[1] = resp[0] = -1;
	ret = 0;
out:
	for (int i = 0; i < 2; i++) {
		if (req[i] >= 0)
			close(req[i]);
		if (mid[i] >= 0)
			close(mid[i]);
		if (resp[i] >= 0)
			close(resp[i]);
	}
	free(xfer);
	free(seal);
	return ret;
}
