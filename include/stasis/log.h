/* SPDX-License-Identifier: GPL-2.0 */
#ifndef STASIS_LOG_H
#define STASIS_LOG_H

#include <errno.h>
#include <stdbool.h>
#include <string.h>

/* CRIU's levels: -v0 nothing, 1 errors, 2 +warnings (default), 3 +info, 4 +debug */
enum { LOG_ERR = 1, LOG_WARN = 2, LOG_INFO = 3, LOG_DEBUG = 4 };

void log_init(const char *prog);
void log_set_level(int level);
int log_get_level(void);
/* Append messages to path as well as stderr (errors) -- CRIU's -o. */
int log_set_file(const char *path);
/* Was a log file given (log_set_file)? */
bool log_has_file(void);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *log_prog(void);

#define pr_err(fmt, ...) log_msg(LOG_ERR, fmt "\n", ##__VA_ARGS__)
#define pr_perror(fmt, ...) log_msg(LOG_ERR, fmt ": %s\n", ##__VA_ARGS__, strerror(errno))
#define pr_warn(fmt, ...) log_msg(LOG_WARN, fmt "\n", ##__VA_ARGS__)
#define pr_info(fmt, ...) log_msg(LOG_INFO, fmt "\n", ##__VA_ARGS__)
#define pr_debug(fmt, ...) log_msg(LOG_DEBUG, fmt "\n", ##__VA_ARGS__)

#endif
