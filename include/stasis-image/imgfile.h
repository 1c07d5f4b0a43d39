/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One record image file on its own, in the directory form of
 * docs/format.md (STASIS_IMG_MAGIC, then a u32 length and the message):
 * for images a program writes straight into a checkpoint directory, such
 * as stats-restore, and for reading one back.
 */
#ifndef STASIS_IMGFILE_H
#define STASIS_IMGFILE_H

#include <protobuf-c/protobuf-c.h>

/* Writes msg as the only record of path (through path.tmp, fsynced, then
 * renamed over it). 0 or -1 (logged). */
int imgfile_write_record(const char *path, const ProtobufCMessage *msg);

/* The first record of the record image file path, unpacked as desc; NULL
 * (logged, unless the file does not exist and missing_ok) on error.
 * Free with protobuf_c_message_free_unpacked. */
ProtobufCMessage *imgfile_read_record(const char *path, const ProtobufCMessageDescriptor *desc,
				      int missing_ok);

#endif
