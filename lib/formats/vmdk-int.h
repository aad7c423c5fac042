/* vmdk-int.h - internals shared by vmdk.c (reader), vmdk-desc.c
 * (descriptor text) and vmdk-write.c (writer).  Nothing here leaves the
 * VMDK files; the only exported symbol is scimg_format_vmdk (vmdk.c).
 *
 * On-disk layouts (all little-endian, sizes and offsets in 512-byte
 * sectors unless said otherwise):
 *
 * Hosted sparse extent ("KDMV", versions 1-3), header in sector 0:
 *    0 magic "KDMV"          4 version u32           8 flags u32
 *   12 capacity u64         20 grain size u64       28 descriptor offset u64
 *   36 descriptor size u64  44 GTEs per GT u32      48 redundant GD u64
 *   56 GD u64 (~0: in the footer)                   64 overhead u64
 *   72 unclean shutdown u8  73 "\n \r\n"            77 compression u16
 * streamOptimized files end with: footer marker (sector), a copy of the
 * header with the real GD offset (sector), end-of-stream marker (sector).
 * A marker is {u64 value, u32 size, u32 type}; size != 0 makes it a
 * compressed grain {u64 lba, u32 size, data...} instead.
 *
 * ESX sparse extent ("COWD", vmfsSparse): u32 fields at 4 version,
 * 8 flags, 12 capacity, 16 grain size, 20 GD offset, 24 GD entries,
 * 28 next free sector; 4096 GTEs per GT.
 *
 * seSparse: 512-byte constant header of u64 fields (magic 0xcafebabe,
 * version 0x200000001, capacity, grain size 8, GT size 64 sectors, flags,
 * 4 reserved, volatile header, journal header, journal, GD, GTs, free
 * bitmap, backmap, grains: each an offset/size pair), padding zeros.
 */
#ifndef SCIMG_VMDK_INT_H
#define SCIMG_VMDK_INT_H

#include "scimg-int.h"

#define VMDK_SECTOR 512u

#define VMDK_FLAG_NL_DETECT  (1u << 0)
#define VMDK_FLAG_RGD        (1u << 1)
#define VMDK_FLAG_ZERO_GRAIN (1u << 2)
#define VMDK_FLAG_COMPRESSED (1u << 16)
#define VMDK_FLAG_MARKERS    (1u << 17)
#define VMDK_GD_AT_END       UINT64_C(0xffffffffffffffff)
#define VMDK_COMPRESS_DEFLATE 1

enum vmdk_marker_type {
	VMDK_MARKER_EOS = 0,
	VMDK_MARKER_GT = 1,
	VMDK_MARKER_GD = 2,
	VMDK_MARKER_FOOTER = 3,
};

/* Largest descriptor we read (files and embedded ones). */
#define VMDK_DESC_MAX (1u << 20)
/* Largest number of extents a descriptor may list. */
#define VMDK_MAX_EXTENTS 4096

/* ---- descriptor ---------------------------------------------------- */

enum vmdk_access { VMDK_ACCESS_RW, VMDK_ACCESS_RDONLY, VMDK_ACCESS_NOACCESS };

struct vmdk_desc_extent {
	enum vmdk_access access;
	uint64_t sectors;
	char type[16];     /* FLAT, SPARSE, ZERO, VMFS, VMFSSPARSE, ... */
	char *file;        /* NULL for ZERO */
	uint64_t offset;   /* sectors into the file (FLAT, VMFS) */
	int has_offset;
	unsigned line;
};

struct vmdk_desc {
	int version;
	char *create_type;
	char *encoding;
	uint32_t cid, parent_cid;
	int has_cid, has_parent_cid;
	char *parent_hint;        /* parentFileNameHint */
	char *adapter_type;       /* ddb.adapterType */
	char *hw_version;         /* ddb.virtualHWVersion */
	char *tools_version;      /* ddb.toolsVersion */
	char *long_content_id;    /* ddb.longContentID */
	char *uuid;               /* ddb.uuid */
	char *cylinders, *heads, *sectors; /* ddb.geometry.* */
	struct vmdk_desc_extent *ext;
	size_t n_ext;
};

/* Parse descriptor TEXT (LEN bytes; stops at the first NUL).  NAME is the
 * file named in messages and BASE the file offset of TEXT (for embedded
 * descriptors).  Tolerates CRLF, comments, blank lines, quoting and unknown
 * keys; refuses malformed extent lines, bad CIDs and more than
 * VMDK_MAX_EXTENTS extents.  On success *D is filled (free with
 * scimg_int_vmdk_desc_free); on failure nothing is left to free. */
int scimg_int_vmdk_desc_parse(struct scimg_ctx *ctx, const char *name,
			      uint64_t base, const char *text, size_t len,
			      struct vmdk_desc *d);
void scimg_int_vmdk_desc_free(struct vmdk_desc *d);

/* Fields of a descriptor we write. */
struct vmdk_desc_out {
	uint32_t cid;
	const char *create_type;
	const char *extent_type;   /* "SPARSE" or "FLAT" */
	const char *extent_file;
	uint64_t sectors;
	const char *adapter_type;
	const char *hw_version;
	const char *tools_version;
	uint32_t rand[3];          /* longContentID = rand[0..2] + cid */
};

/* Format a descriptor into BUF (CAP bytes); returns its length, or 0
 * when it does not fit. */
size_t scimg_int_vmdk_desc_build(const struct vmdk_desc_out *o, char *buf,
				 size_t cap);

/* ---- writer (vmdk-write.c) ----------------------------------------- */

extern const char *const scimg_int_vmdk_create_opts[];
int scimg_int_vmdk_create(struct scimg_image *img, const struct scimg_opts *opts);
int scimg_int_vmdk_measure(struct scimg_ctx *ctx, struct scimg_image *src, uint64_t size,
			   const struct scimg_opts *opts, struct scimg_measure *out);
int scimg_int_vmdk_pwrite(struct scimg_image *img, const void *buf, size_t len,
			  uint64_t off);
int scimg_int_vmdk_finish(struct scimg_image *img);
void scimg_int_vmdk_writer_close(struct scimg_image *img);
uint32_t scimg_int_vmdk_compress_unit(struct scimg_image *img);
int scimg_int_vmdk_compress(struct scimg_image *img, const void *in, size_t len,
			    void *out, size_t *outlen);
int scimg_int_vmdk_pwrite_compressed(struct scimg_image *img, uint64_t off,
				     const void *data, size_t clen, size_t len);

#endif /* SCIMG_VMDK_INT_H */
