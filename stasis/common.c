// SPDX-License-Identifier: GPL-2.0
/* What the commands of the front-end share: the images and work
 * directories, the log, the options every stage gets. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stasis/log.h"
#include "stasis/util.h"

#include "commands.h"
#include "ops.h"

/* A file named on the command line: relative paths are relative to the
 * images directory, as in criu(8) (its work directory defaults to -D). */
char *fe_in_dir(const char *dir, const char *file)
{
	size_t n;
	char *p;

	if (!file)
		return NULL;
	if (file[0] == '/' || !strcmp(dir, "."))
		return xstrdup(file);
	n = strlen(dir) + strlen(file) + 2;
	p = xmalloc(n);
	snprintf(p, n, "%s/%s", dir, file);
	return p;
}

static int mkdir_p(const char *dir)
{
	char *p = xstrdup(dir), *s;
	int err = 0;

	for (s = p + 1;; s++) {
		char c = *s;

		if (c != '/' && c != '\0')
			continue;
		*s = '\0';
		err = mkdir(p, 0755) && errno != EEXIST ? errno : 0;
		*s = c;
		if (!c)
			break;
	}
	free(p);
	errno = err;
	return err ? -1 : 0;
}

/* Create the images directory if needed and check that files can be
 * created in it: all before anything is frozen. */
int fe_prepare_images_dir(const char *dir)
{
	struct stat st;
	char *probe;
	int fd;

	if (!*dir) {
		pr_err("the images directory is an empty string");
		return -1;
	}
	if (stat(dir, &st) && mkdir_p(dir)) {
		pr_err("cannot create images directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (stat(dir, &st)) {
		pr_err("cannot access images directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		pr_err("images directory %s is not a directory", dir);
		return -1;
	}
	probe = fe_in_dir(dir, ".stasis-probe-XXXXXX");
	fd = mkstemp(probe);
	if (fd < 0) {
		pr_err("cannot write to images directory %s: %s", dir, strerror(errno));
		free(probe);
		return -1;
	}
	unlink(probe);
	close(fd);
	free(probe);
	return 0;
}

/* With --log-pid, every program writes FILE.PID, the front-end too. */
int fe_open_log(const char *path, const struct fe_opts *o)
{
	char own[PATH_MAX];

	if (!path)
		return 0;
	if (o->flag[F_LOG_PID]) {
		snprintf(own, sizeof(own), "%s.%d", path, getpid());
		path = own;
		stages_log_pid(true);
	}
	if (log_set_file(path)) {
		pr_perror("cannot open log file %s", path);
		return -1;
	}
	return 0;
}

/* -W: where the log, the pidfile and the statistics go; the images
 * directory unless given (criu(8)'s work directory). Created if missing. */
char *fe_work_dir(const struct fe_opts *o, const char *images_dir)
{
	const char *w = o->str[S_WORK_DIR];

	if (!w)
		return xstrdup(images_dir);
	if (!*w || (mkdir_p(w) && errno != EEXIST)) {
		pr_err("cannot create work directory %s: %s", w, *w ? strerror(errno) : "empty name");
		return NULL;
	}
	return xstrdup(w);
}

int fe_files_open(const struct fe_opts *o, const char *dir, struct fe_files *f)
{
	f->wdir = fe_work_dir(o, dir);
	if (!f->wdir)
		return -1;
	f->log = fe_in_dir(f->wdir, o->str[S_LOG_FILE]);
	if (fe_open_log(f->log, o))
		return -1;
	f->pidfile = fe_in_dir(f->wdir, o->str[S_PIDFILE]);
	return 0;
}

void fe_files_free(struct fe_files *f)
{
	free(f->wdir);
	free(f->log);
	free(f->pidfile);
}

/* -v and -o, passed on to every stage. */
void add_common(struct args *a, const struct fe_opts *o, const char *log)
{
	if (o->verbosity >= 0)
		args_addf(a, "-v%d", o->verbosity);
	if (log) {
		args_add(a, "-o");
		args_add(a, log);
	}
}

/* --file-validation: filesize is what stasis does; CRIU's buildid is not
 * implemented, and said so before anything starts. */
int fe_check_file_validation(const struct fe_opts *o)
{
	const char *mode = o->str[S_FILE_VALIDATION];

	if (!mode || !strcmp(mode, "filesize"))
		return 0;
	if (!strcmp(mode, "buildid"))
		pr_err("--file-validation buildid is not supported: stasis checks files by their "
		       "size only (filesize)");
	else
		pr_err("unknown --file-validation mode '%s' (filesize)", mode);
	return -1;
}

/* stasis-seal --open of a sealed checkpoint, which must be one. */
void fe_seal_open_args(struct args *a, const struct fe_opts *o)
{
	args_add(a, "--open");
	args_add(a, "--require-sealed");
	if (o->str[S_TLS_KEY]) {
		args_add(a, "--tls-key");
		args_add(a, o->str[S_TLS_KEY]);
	}
}
