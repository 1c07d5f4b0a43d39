/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Configuration files with criu(8)'s syntax: one option a line, without its
 * leading "--", its argument after white space, "double quotes" around an
 * argument with spaces (\" inside them for a quote), '#' starts a comment.
 */
#ifndef STASIS_CONFIG_H
#define STASIS_CONFIG_H

/* A file turned into an argument vector, as if typed on a command line. */
struct config_args {
	char *path;
	int argc;
	char **argv; /* argv[0] is the path; NULL-terminated */
	int *line;   /* line of argv[i] in the file */
};

/*
 * Reads path into *ca. Returns 0, 1 when the file does not exist and
 * missing_ok is set (*ca is then empty), or -1 after logging an error
 * naming the file (and the line, for a syntax error).
 */
int config_read(const char *path, int missing_ok, struct config_args *ca);
void config_free(struct config_args *ca);

#endif
