/* qcow2.h - internals shared by the qcow2 reader (qcow2.c), its header
 * parser (qcow2-header.c) and writer (qcow2-write.c).  Not installed.
 *
 * On-disk layout reference: QEMU's docs/interop/qcow2.txt.  All numbers
 * are big endian.
 */
#ifndef SCIMG_QCOW2_H
#define SCIMG_QCOW2_H

#include "scimg-int.h"

#define Q2_MAGIC 0x514649fbu            /* "QFI\xfb" */
#define Q2_MIN_CLUSTER_BITS 9
#define Q2_MAX_CLUSTER_BITS 21
#define Q2_V2_HEADER_LEN 72
#define Q2_V3_HEADER_LEN 104
/* QEMU's implementation limits, which we share. */
#define Q2_MAX_L1_BYTES (32u << 20)
#define Q2_MAX_REFTABLE_BYTES (8u << 20)
#define Q2_MAX_SNAPSHOTS 65536
#define Q2_MAX_SNAPSHOT_EXTRA 1024
#define Q2_MAX_SNAPSHOT_TABLE (16u << 20)
#define Q2_MAX_BACKING_NAME 1023

/* header extension types */
#define Q2_EXT_END 0x00000000u
#define Q2_EXT_BACKING_FORMAT 0xe2792acau
#define Q2_EXT_FEATURE_TABLE 0x6803f857u
#define Q2_EXT_BITMAPS 0x23852875u
#define Q2_EXT_CRYPTO 0x0537be77u
#define Q2_EXT_DATA_FILE 0x44415441u

/* incompatible feature bits */
#define Q2_INCOMPAT_DIRTY (UINT64_C(1) << 0)
#define Q2_INCOMPAT_CORRUPT (UINT64_C(1) << 1)
#define Q2_INCOMPAT_DATA_FILE (UINT64_C(1) << 2)
#define Q2_INCOMPAT_COMPRESSION (UINT64_C(1) << 3)
#define Q2_INCOMPAT_EXTL2 (UINT64_C(1) << 4)
#define Q2_INCOMPAT_KNOWN (UINT64_C(0x1f))
/* compatible feature bits */
#define Q2_COMPAT_LAZY_REFCOUNTS (UINT64_C(1) << 0)
/* autoclear feature bits */
#define Q2_AUTOCLEAR_BITMAPS (UINT64_C(1) << 0)
#define Q2_AUTOCLEAR_DATA_FILE_RAW (UINT64_C(1) << 1)

#define Q2_COMPRESSION_ZLIB 0
#define Q2_COMPRESSION_ZSTD 1

/* L1 / L2 entry bits */
#define Q2_OFLAG_COPIED (UINT64_C(1) << 63)
#define Q2_OFLAG_COMPRESSED (UINT64_C(1) << 62)
#define Q2_OFLAG_ZERO (UINT64_C(1) << 0)
#define Q2_L1E_OFFSET_MASK UINT64_C(0x00fffffffffffe00)
#define Q2_L1E_RESERVED UINT64_C(0x7f000000000001ff)
#define Q2_L2E_OFFSET_MASK UINT64_C(0x00fffffffffffe00)
#define Q2_L2E_RESERVED UINT64_C(0x3f000000000001fe)
#define Q2_REFT_OFFSET_MASK UINT64_C(0xfffffffffffffe00)
#define Q2_SUBCLUSTERS 32

/* Parsed, validated header (first cluster of the file). */
struct q2_header {
	uint32_t version;
	uint64_t backing_file_offset;
	uint32_t backing_file_size;
	uint32_t cluster_bits;
	uint64_t size;
	uint32_t crypt_method;
	uint32_t l1_size;
	uint64_t l1_table_offset;
	uint64_t refcount_table_offset;
	uint32_t refcount_table_clusters;
	uint32_t nb_snapshots;
	uint64_t snapshots_offset;
	uint64_t incompat;
	uint64_t compat;
	uint64_t autoclear;
	uint32_t refcount_order;
	uint32_t header_length;
	uint32_t compression_type;

	/* derived */
	uint64_t cluster_size;
	int extended_l2;
	uint32_t l2_bits;        /* log2 of the entries in one L2 table */
	uint64_t l1_needed;      /* L1 entries needed for the virtual size */
	uint64_t ext_end;        /* end of the header extension area */

	/* from the header and its extensions; NUL-terminated, owned, or NULL */
	char *backing_file;
	char *backing_format;
	char *data_file;
	uint32_t nb_bitmaps;     /* from the bitmaps extension, 0 if none */
};

/* Parse and validate the header in BUF (the first BUFLEN bytes of the
 * file NAME, FILE_SIZE bytes long; BUFLEN is at least the smaller of the
 * cluster size and the file size).  Every field is checked against the
 * format's rules and the file size; on failure an error naming the field
 * and its offset is recorded and -EINVAL (or -ENOTSUP for encryption and
 * unknown features, -ENOMEM) is returned.  Fill *H; the caller frees it with
 * scimg_int_qcow2_header_free() (also after failure). */
int scimg_int_qcow2_parse_header(struct scimg_ctx *ctx, const char *name,
				 const uint8_t *buf, size_t buflen,
				 uint64_t file_size, struct q2_header *h);
void scimg_int_qcow2_header_free(struct q2_header *h);
/* Number of header bytes needed before the cluster size is known. */
#define Q2_PEEK_LEN 24

/* In-place changes (qcow2-edit.c) on FD, the image PATH opened for
 * reading and writing.  Resize grows to SIZE (a multiple of 512), moving
 * the L1 table to the end of the file when its clusters have no room;
 * BACKING_SIZE is the virtual size of the
 * backing file (0 when none) and must not exceed the old size.  Set_backing
 * rewrites the backing file name and backing format extension in the
 * header cluster (BACKING NULL or "": none); -ENOSPC when they do not fit. */
int scimg_int_qcow2_resize(struct scimg_ctx *ctx, int fd, const char *path,
			   uint64_t size, uint64_t backing_size, int shrink);
int scimg_int_qcow2_set_backing(struct scimg_ctx *ctx, int fd, const char *path,
				const char *backing, const char *backing_fmt);
/* Safe rebase (qemu-img rebase): copy into the image every cluster it does
 * not allocate whose content under its chain (OLD: the image opened with
 * its chain) differs from NB (the new backing file, NULL: none), then set
 * the backing name; *COPIED gets the number of clusters copied.  See
 * qcow2-edit.c for the order of the writes. */
int scimg_int_qcow2_rebase(struct scimg_ctx *ctx, int fd, const char *path,
			   struct scimg_image *old, struct scimg_image *nb,
			   const char *backing, const char *backing_fmt,
			   uint64_t *copied);

/* Writer (qcow2-write.c). */
extern const char *const scimg_int_qcow2_create_opts[];
int scimg_int_qcow2_create(struct scimg_image *img, const struct scimg_opts *opts);
int scimg_int_qcow2_pwrite(struct scimg_image *img, const void *buf, size_t len,
			   uint64_t off);
int scimg_int_qcow2_finish(struct scimg_image *img);
void scimg_int_qcow2_wclose(struct scimg_image *img);
uint32_t scimg_int_qcow2_compress_unit(struct scimg_image *img);
int scimg_int_qcow2_write_zeroes(struct scimg_image *img, uint64_t off, uint64_t len);
int scimg_int_qcow2_compress(struct scimg_image *img, const void *in, size_t len,
			     void *out, size_t *outlen);
int scimg_int_qcow2_pwrite_compressed(struct scimg_image *img, uint64_t off,
				      const void *data, size_t clen, size_t len);

#endif /* SCIMG_QCOW2_H */
