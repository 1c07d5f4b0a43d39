// SPDX-License-Identifier: GPL-2.0
/*
 * Streaming JSON output for stasis-serialize show, with a protobuf-c
 * reflection walker. Strings from an image are not trusted to be UTF-8:
 * invalid bytes come out as U+FFFD so that the output is always valid JSON.
 */
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "json.h"

static int level(const struct json *j)
{
	return j->depth < JSON_MAX_DEPTH ? j->depth : JSON_MAX_DEPTH - 1;
}

static void indent(struct json *j)
{
	fputc('\n', j->f);
	for (int i = 0; i < j->depth; i++)
		fputs("  ", j->f);
}

/* Separator before a value or key at the current level. */
static void sep(struct json *j)
{
	int l = level(j);

	if (j->after_key) {
		j->after_key = false;
		return;
	}
	if (j->depth == 0)
		return;
	if (!j->first[l])
		fputc(',', j->f);
	if (j->inline_[l]) {
		if (!j->first[l])
			fputc(' ', j->f);
	} else {
		indent(j);
	}
	j->first[l] = false;
}

void json_init(struct json *j, FILE *f)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
}

static void open_level(struct json *j, char c, bool inline_)
{
	sep(j);
	fputc(c, j->f);
	j->depth++;
	j->first[level(j)] = true;
	j->inline_[level(j)] = inline_;
}

static void close_level(struct json *j, char c)
{
	bool empty = j->first[level(j)], inline_ = j->inline_[level(j)];

	j->depth--;
	if (!empty && !inline_)
		indent(j);
	fputc(c, j->f);
}

void json_obj_begin(struct json *j)
{
	open_level(j, '{', false);
}

void json_obj_end(struct json *j)
{
	close_level(j, '}');
}

void json_arr_begin(struct json *j, bool inline_)
{
	open_level(j, '[', inline_);
}

void json_arr_end(struct json *j)
{
	close_level(j, ']');
}

static void put_escaped(struct json *j, const unsigned char *s, size_t len)
{
	size_t i = 0;

	fputc('"', j->f);
	while (i < len) {
		unsigned char c = s[i];
		size_t n = 0;

		if (c < 0x80) {
			if (c == '"' || c == '\\')
				fprintf(j->f, "\\%c", c);
			else if (c == '\n')
				fputs("\\n", j->f);
			else if (c == '\t')
				fputs("\\t", j->f);
			else if (c == '\r')
				fputs("\\r", j->f);
			else if (c < 0x20)
				fprintf(j->f, "\\u%04x", c);
			else
				fputc(c, j->f);
			i++;
			continue;
		}
		/* Well-formed UTF-8 (RFC 3629) passes through unchanged. */
		unsigned char lo = 0x80, hi = 0xbf;

		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			if (c == 0xe0)
				lo = 0xa0;
			if (c == 0xed)
				hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			if (c == 0xf0)
				lo = 0x90;
			if (c == 0xf4)
				hi = 0x8f;
		}
		bool ok = n && i + n < len;

		for (size_t k = 1; ok && k <= n; k++) {
			unsigned char cc = s[i + k];

			if (k == 1 ? (cc < lo || cc > hi) : (cc < 0x80 || cc > 0xbf))
				ok = false;
		}
		if (ok) {
			fwrite(s + i, 1, n + 1, j->f);
			i += n + 1;
		} else {
			fputs("\\ufffd", j->f);
			i++;
		}
	}
	fputc('"', j->f);
}

void json_key(struct json *j, const char *key)
{
	sep(j);
	put_escaped(j, (const unsigned char *)key, strlen(key));
	fputs(": ", j->f);
	j->after_key = true;
}

void json_strn(struct json *j, const char *s, size_t len)
{
	sep(j);
	put_escaped(j, (const unsigned char *)s, len);
}

void json_str(struct json *j, const char *s)
{
	if (!s) {
		sep(j);
		fputs("null", j->f);
		return;
	}
	json_strn(j, s, strlen(s));
}

void json_hex(struct json *j, const void *buf, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *p = buf;

	sep(j);
	fputc('"', j->f);
	for (size_t i = 0; i < len; i++) {
		fputc(digits[p[i] >> 4], j->f);
		fputc(digits[p[i] & 15], j->f);
	}
	fputc('"', j->f);
}

void json_u64(struct json *j, uint64_t v)
{
	sep(j);
	fprintf(j->f, "%llu", (unsigned long long)v);
}

void json_i64(struct json *j, int64_t v)
{
	sep(j);
	fprintf(j->f, "%lld", (long long)v);
}

static void real(struct json *j, double v, int digits)
{
	sep(j);
	/* JSON has no NaN or infinity: say what it was, as a string */
	if (isnan(v))
		fputs("\"nan\"", j->f);
	else if (isinf(v))
		fputs(v > 0 ? "\"inf\"" : "\"-inf\"", j->f);
	else
		fprintf(j->f, "%.*g", digits, v);
}

void json_double(struct json *j, double v)
{
	real(j, v, 17);
}

void json_bool(struct json *j, bool v)
{
	sep(j);
	fputs(v ? "true" : "false", j->f);
}

int json_finish(struct json *j)
{
	fputc('\n', j->f);
	if (fflush(j->f) || ferror(j->f))
		return -1;
	return 0;
}

/* ---- protobuf-c reflection ---- */

static size_t elem_size(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_ENUM:
		return 4;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	}
	return 0;
}

static void field_value(struct json *j, const ProtobufCFieldDescriptor *fd, const void *p)
{
	switch (fd->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		json_i64(j, *(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		json_u64(j, *(const uint32_t *)p);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		json_i64(j, *(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		json_u64(j, *(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		real(j, *(const float *)p, 9);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		json_double(j, *(const double *)p);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		json_bool(j, *(const protobuf_c_boolean *)p);
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		int v = *(const int *)p;
		const ProtobufCEnumValue *ev =
			protobuf_c_enum_descriptor_get_value(fd->descriptor, v);

		/* a value this schema does not know stays a number */
		if (ev)
			json_str(j, ev->name);
		else
			json_i64(j, v);
		break;
	}
	case PROTOBUF_C_TYPE_STRING:
		json_str(j, *(char *const *)p);
		break;
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = p;

		json_hex(j, b->data, b->len);
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *m = *(const ProtobufCMessage *const *)p;

		if (m) {
			json_message(j, m);
		} else {
			sep(j);
			fputs("null", j->f);
		}
		break;
	}
	}
}

/* The same presence rules protobuf-c applies when it packs a message. */
static bool field_present(const ProtobufCFieldDescriptor *fd, const void *member,
			  const void *qmember)
{
	bool pointer = fd->type == PROTOBUF_C_TYPE_MESSAGE || fd->type == PROTOBUF_C_TYPE_STRING;

	if (fd->label == PROTOBUF_C_LABEL_REQUIRED)
		return true;
	if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		if (*(const uint32_t *)qmember != fd->id)
			return false;
	} else if (fd->label == PROTOBUF_C_LABEL_OPTIONAL && !pointer) {
		return *(const protobuf_c_boolean *)qmember;
	}
	if (pointer) {
		const void *ptr = *(const void *const *)member;

		return ptr && (fd->label == PROTOBUF_C_LABEL_NONE || ptr != fd->default_value);
	}
	return true;
}

static bool scalar(ProtobufCType type)
{
	return type != PROTOBUF_C_TYPE_MESSAGE && type != PROTOBUF_C_TYPE_STRING &&
	       type != PROTOBUF_C_TYPE_BYTES;
}

void json_message(struct json *j, const ProtobufCMessage *msg)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;
	const char *base = (const char *)msg;

	json_obj_begin(j);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[i];
		const void *member = base + fd->offset;
		const void *qmember = base + fd->quantifier_offset;

		if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)qmember, sz = elem_size(fd->type);
			const char *arr = *(const char *const *)member;

			if (!n || !arr)
				continue;
			json_key(j, fd->name);
			json_arr_begin(j, scalar(fd->type));
			for (size_t k = 0; k < n; k++)
				field_value(j, fd, arr + k * sz);
			json_arr_end(j);
			continue;
		}
		if (!field_present(fd, member, qmember))
			continue;
		json_key(j, fd->name);
		field_value(j, fd, member);
	}
	json_obj_end(j);
}
