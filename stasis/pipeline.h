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
	/* its exit status is not a failure of the pipeline (inject's without
	 * -d is the restored root task's; the progress line's) */
	bool quiet;
	/* started by this instead of fork and exec of argv (the progress
	 * line, which runs in the front-end's code); 0 or -1 */
	int (*start)(struct stage *s);
	pid_t pid;
	int pidfd;
	int status;	  /* once ended: its exit status, or 128 + the signal */
	int signal;	  /* the signal that killed it, or 0 */
	long long ended; /* when it was seen ended (ms, monotonic) */
	/* its stderr is the front-end's, not held: it goes on after an
	 * error (a listener that refused a connection waits for the next),
	 * and what it says is seen at once */
	bool live_errors;
	/* it serves the others (the lazy-pages daemon and its page source):
	 * stopped (SIGTERM) when they ended and one of them failed; with
	 * pipeline.leave_servers, not waited for when they ended well */
	bool serves;
	bool stopped; /* so stopped: its end is not a failure */
};

#define PIPELINE_MAX_STAGES 6
#define PIPELINE_MAX_FDS 16

/*
 * A pipeline owns its stages, the pipes between them and the descriptors
 * it passes on: all are closed in the front-end once the stages started.
 * The stages' stderr is one pipe read by the front-end, so that a failure
 * is told in ONE line, its first cause, instead of the cascade of the
 * stages that saw the failed one go ("broken pipe", "truncated stream"):
 * an error line is held until its writer ends, or is passed on when its
 * writer goes on for a while after it (it was not fatal) and nothing has
 * failed meanwhile.
 */
struct pipeline {
	const char *what; /* "dump": the error line says what failed */
	struct stage st[PIPELINE_MAX_STAGES];
	int n;
	int fds[PIPELINE_MAX_FDS]; /* the front-end's copies */
	int nfds;
	int err[2];	/* the stages' stderr */
	struct stage_error {
		char *line;
		int stage;	/* which wrote it; -1: unknown */
		long long when; /* ms, monotonic */
		bool shown;	/* passed on: its writer went on after it */
		bool echoed;	/* on the terminal already (-v4) */
	} *errors;	/* the error lines of the stages, in the order written */
	int nerrors;
	char line[4096]; /* a line being read from err[0] */
	size_t len;
	/* restore -d: the serving stages go on filling the restored tree's
	 * memory after the front-end has returned */
	bool leave_servers;
};

void pipeline_init(struct pipeline *p, const char *what);
/* A stage running the program NAME (found with need_program); NULL
 * (logged) when it is not found. */
struct stage *pipeline_add(struct pipeline *p, const char *name);
/* A stage started by start(), not exec'd. */
struct stage *pipeline_add_fn(struct pipeline *p, const char *name, int (*start)(struct stage *s));
/* A pipe from the stdout of one stage to the stdin of another. 0 or -1. */
int pipeline_connect(struct pipeline *p, struct stage *from, struct stage *to);
/* A pipe of the pipeline, for the caller to pass on (an acknowledgement
 * channel); closed in the front-end with the others. 0 or -1. */
int pipeline_pipe(struct pipeline *p, int fds[2]);
/* A descriptor of the front-end's (given by the user) that a stage gets:
 * closed in the front-end once the stages started. */
void pipeline_own_fd(struct pipeline *p, int fd);
/* "OPT FD" on the command line of s, and FD passed on to it. */
void stage_pass_fd(struct stage *s, const char *opt, int fd);
/*
 * Starts the stages in order (the first that cannot start stops it: the
 * ones started see their pipes closed), closes the front-end's
 * descriptors and waits for every stage. 0 when none failed; else 1,
 * the failure told in one line.
 */
int pipeline_run(struct pipeline *p);
void pipeline_free(struct pipeline *p);

/*
 * Full path of the program stasis-TOOL: next to the running stasis binary
 * (/proc/self/exe), then in the build tree beside it (../TOOL/), then in
 * PATH. NULL when not found. The result is malloc'ed.
 */
char *find_program(const char *name);
/* find_program, and an error when it is not found. */
char *need_program(const char *name);

/* --log-pid: stages started from now on get "-o FILE.PID" for "-o FILE",
 * PID being their own. */
void stages_log_pid(bool on);

/* Pipe with both ends close-on-exec, never on fds 0..2. */
int make_pipe(int fds[2]);

void close_fd(int *fd);

#endif
