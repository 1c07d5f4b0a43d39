/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small streaming JSON writer for stasis-serialize show: values are
 * written as they come, indented two spaces per level, and protobuf-c
 * messages are turned into objects through their descriptors.
 */
#ifndef STASIS_SERIALIZE_JSON_H
#define STASIS_SERIALIZE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <protobuf-c/protobuf-c.h>

#define JSON_MAX_DEPTH 32

struct json {
	FILE *f;
	int depth;
	/* per level: nothing written yet / values on one line */
	bool first[JSON_MAX_DEPTH];
	bool inline_[JSON_MAX_DEPTH];
	bool after_key;
	bool overflow;
};

void json_init(struct json *j, FILE *f);
void json_obj_begin(struct json *j);
void json_obj_end(struct json *j);
/* inline: the elements go on one line (for arrays of scalars) */
void json_arr_begin(struct json *j, bool inline_);
void json_arr_end(struct json *j);
void json_key(struct json *j, const char *key);
void json_str(struct json *j, const char *s);
void json_strn(struct json *j, const char *s, size_t len);
void json_hex(struct json *j, const void *buf, size_t len);
void json_u64(struct json *j, uint64_t v);
void json_i64(struct json *j, int64_t v);
void json_double(struct json *j, double v);
void json_bool(struct json *j, bool v);
/* Every field of msg that is set, by name; enums as their names, bytes
 * as hex strings, repeated fields as arrays. */
void json_message(struct json *j, const ProtobufCMessage *msg);
/* Ends the document with a newline; -1 if the output could not be written. */
int json_finish(struct json *j);

#endif
