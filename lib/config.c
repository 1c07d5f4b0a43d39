// SPDX-License-Identifier: GPL-2.0
/*
 * Configuration files, read as criu(8) reads its own: every line is an
 * option name (given "--" in front) and its arguments, separated by white
 * space; an argument in double quotes may hold spaces and \" for a quote
 * (every other backslash is kept as it is); a word that starts with '#'
 * starts a comment that runs to the end of the line.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stasis/config.h"
#include "stasis/log.h"
#include "stasis/util.h"

static void add_arg(struct config_args *ca, char *arg, int line)
{
	/* argv holds argc + 1 pointers (the NULL last); when that is a power
	 * of two it is full and its room doubles (growing it by one a word
	 * would copy it once a word) */
	size_t used = (size_t)ca->argc + 1;

	if (!(used & (used - 1))) {
		ca->argv = xrealloc(ca->argv, 2 * used * sizeof(*ca->argv));
		ca->line = xrealloc(ca->line, 2 * used * sizeof(*ca->line));
	}
	ca->argv[ca->argc] = arg;
	ca->line[ca->argc] = line;
	ca->argc++;
	ca->argv[ca->argc] = NULL;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* The bytes of the word at s, its quotes included. */
static size_t word_span(const char *s)
{
	const char *p = s;

	if (*p == '"') {
		for (p++; *p && *p != '"'; p++)
			if (p[0] == '\\' && p[1] == '"')
				p++;
		return p - s + (*p == '"');
	}
	while (*p && !blank(*p))
		p++;
	return p - s;
}

/* Splits one line into words; -1 on an unterminated quote. */
static int parse_line(struct config_args *ca, const char *s, int line)
{
	bool first = true;

	for (;;) {
		size_t cap, n = 0;
		char *w;

		while (blank(*s))
			s++;
		if (!*s || *s == '#')
			return 0;
		/* room for this word only: a line of many words must not
		 * cost the square of its length */
		cap = word_span(s) + 3;
		w = xmalloc(cap);
		/* the option name: "--" in front, unless it has dashes already */
		if (first && *s != '-') {
			w[n++] = '-';
			w[n++] = '-';
		}
		if (*s == '"') {
			for (s++; *s && *s != '"'; s++) {
				if (s[0] == '\\' && s[1] == '"')
					s++;
				w[n++] = *s;
			}
			if (*s != '"') {
				free(w);
				return -1;
			}
			s++;
		} else {
			while (*s && !blank(*s))
				w[n++] = *s++;
		}
		w[n] = '\0';
		add_arg(ca, w, line);
		first = false;
	}
}

int config_read(const char *path, int missing_ok, struct config_args *ca)
{
	char *buf = NULL;
	size_t cap = 0;
	int line = 0, ret = 0;
	FILE *f;

	memset(ca, 0, sizeof(*ca));
	ca->path = xstrdup(path);
	add_arg(ca, xstrdup(path), 0);
	f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT && missing_ok)
			return 1;
		pr_perror("cannot read configuration file %s", path);
		return -1;
	}
	while (getline(&buf, &cap, f) >= 0) {
		line++;
		if (parse_line(ca, buf, line)) {
			pr_err("%s:%d: a quoted argument has no closing quote", path, line);
			ret = -1;
			break;
		}
	}
	if (!ret && ferror(f)) {
		pr_perror("cannot read configuration file %s", path);
		ret = -1;
	}
	free(buf);
	fclose(f);
	return ret;
}

void config_free(struct config_args *ca)
{
	for (int i = 0; i < ca->argc; i++)
		free(ca->argv[i]);
	free(ca->argv);
	free(ca->line);
	free(ca->path);
	memset(ca, 0, sizeof(*ca));
}
