/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Fault injection, for the tests (tests/faults.bats), compiled into every
 * build as CRIU's CRIU_FAULT is: STASIS_FAULT=NAME[,NAME...] makes each
 * named failure point fail as if its operation had, and NAME:hang makes
 * the program stop there (until it is killed), so that a test can kill a
 * stage of the pipeline at a known moment: with STASIS_FAULT_HANG_FILE=PATH
 * it appends "NAME PID" to PATH once it is there.
 */
#ifndef STASIS_FAULT_H
#define STASIS_FAULT_H

#include <stdbool.h>

#define STASIS_FAULT_ENV "STASIS_FAULT"
#define STASIS_FAULT_HANG_FILE_ENV "STASIS_FAULT_HANG_FILE"

/*
 * True (with an error logged) when the failure point NAME is to fail now;
 * never returns when it is to hang. Each point fails every time it is
 * reached, not only the first.
 */
bool fault_hit(const char *name);

#endif
