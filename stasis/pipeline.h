/* SPDX-License-Identifier: GPL-2.0 */
#ifndef STASIS_FRONTEND_PIPELINE_H
#define STASIS_FRONTEND_PIPELINE_H

#include <stdbool.h>
#include <sys/types.h>

/* A growing, NULL-terminated argument vector. */
struct args {
	char **v;
	int n, cap;
};

void args_add(struct args *a, const char *s);
void args_addf(struct args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void args_free(struct args *a);

#define STAGE_MAX_FDS 4

/* One program of a pipeline. */
struct stage {
	const char *name;	 /* "stasis-freeze", for messages */
	const char *exec_name;	 /* if the stage execs another program: its name */
	struct args argv;	 /* argv[0] is the path to run */
	int in, out;		 /* become stdin/stdout; -1: inherit */
	int keep[STAGE_MAX_FDS]; /* passed on at the same number */
	int nkeep;
	pid_t pid;
};

/*
 * Full path of the program stasis-TOOL: next to the running stasis binary
 * (/proc/self/exe), then in the build tree beside it (../TOOL/), then in
 * PATH. NULL when not found. The result is malloc'ed.
 */
char *find_program(const char *name);

/* Start a stage (fork + exec); 0 or -1. */
int stage_start(struct stage *s);
/* --log-pid: stages started from now on get "-o FILE.PID" for "-o FILE",
 * PID being their own. */
void stages_log_pid(bool on);

/*
 * Wait for a started stage. Returns its exit status, 128 + N when it was
 * killed by signal N (reported as "stasis-XYZ killed by signal N"), and
 * reports a non-zero exit status unless quiet.
 */
int stage_wait(struct stage *s, bool quiet);

/* Pipe with both ends close-on-exec, never on fds 0..2. */
int make_pipe(int fds[2]);

void close_fd(int *fd);

#endif
