/* vhdx-int.h - private interfaces of the VHDX driver (vhdx.c reader,
 * vhdx-log.c log replay, vhdx-write.c writer).
 *
 * On-disk layout (MS-VHDX, all little-endian):
 *   0       file type identifier "vhdxfile" + creator (UTF-16LE)
 *   64 KiB  header 1, 128 KiB header 2 (4 KiB each, CRC-32C, sequence)
 *   192 KiB region table 1, 256 KiB region table 2 (64 KiB, CRC-32C)
 *   log, metadata region and BAT region where the tables say (1 MiB units)
 *   payload blocks and sector bitmap blocks (1 MiB aligned)
 */
#ifndef SCIMG_VHDX_INT_H
#define SCIMG_VHDX_INT_H

#include "scimg-int.h"

#define VHDX_KiB 1024u
#define VHDX_MiB (1024u * 1024u)
#define VHDX_HEADER1 (64 * VHDX_KiB)
#define VHDX_HEADER2 (128 * VHDX_KiB)
#define VHDX_RTABLE1 (192 * VHDX_KiB)
#define VHDX_RTABLE2 (256 * VHDX_KiB)
#define VHDX_HEADER_SIZE (4 * VHDX_KiB)
#define VHDX_RTABLE_SIZE (64 * VHDX_KiB)
#define VHDX_META_TABLE_SIZE (64 * VHDX_KiB)
#define VHDX_LOG_SECTOR (4 * VHDX_KiB)
#define VHDX_MAX_ENTRIES 2047
#define VHDX_MAX_SIZE (UINT64_C(64) << 40)  /* 64 TiB */
#define VHDX_MIN_BLOCK VHDX_MiB
#define VHDX_MAX_BLOCK (256 * VHDX_MiB)
#define VHDX_SECTORS_PER_BITMAP (UINT64_C(1) << 23)

/* header field offsets */
enum {
	VH_SIG = 0, VH_CHECKSUM = 4, VH_SEQ = 8, VH_FILE_WRITE = 16,
	VH_DATA_WRITE = 32, VH_LOG_GUID = 48, VH_LOG_VERSION = 64,
	VH_VERSION = 66, VH_LOG_LENGTH = 68, VH_LOG_OFFSET = 72,
};

/* BAT entry states */
enum {
	VHDX_PB_NOT_PRESENT = 0, VHDX_PB_UNDEFINED = 1, VHDX_PB_ZERO = 2,
	VHDX_PB_UNMAPPED = 3, VHDX_PB_FULLY_PRESENT = 6,
	VHDX_PB_PARTIALLY_PRESENT = 7, VHDX_SB_PRESENT = 6,
};

/* metadata entry flags */
enum { VHDX_META_USER = 1, VHDX_META_VDISK = 2, VHDX_META_REQUIRED = 4 };

extern const uint8_t scimg_vhdx_guid_bat[16];
extern const uint8_t scimg_vhdx_guid_metadata[16];
extern const uint8_t scimg_vhdx_guid_file_params[16];
extern const uint8_t scimg_vhdx_guid_disk_size[16];
extern const uint8_t scimg_vhdx_guid_page83[16];
extern const uint8_t scimg_vhdx_guid_logical_sector[16];
extern const uint8_t scimg_vhdx_guid_physical_sector[16];
extern const uint8_t scimg_vhdx_guid_parent_locator[16];
extern const uint8_t scimg_vhdx_guid_locator_type[16];

/* CRC-32C (Castagnoli) as VHDX uses it: crc32c(0, buf, len) of a whole
 * structure; update by passing the previous result. */
uint32_t scimg_int_crc32c(uint32_t crc, const void *buf, size_t len);
/* CRC-32C of BUF with the 4-byte checksum field at SKIP taken as zero. */
uint32_t scimg_int_vhdx_checksum(const uint8_t *buf, size_t len, size_t skip);

/* The log replayed in memory: a sorted list of non-overlapping file
 * ranges whose content the log defines (zeros, or a 4 KiB data sector
 * taken from the log with its first 8 and last 4 bytes from the
 * descriptor). */
struct vhdx_olay_desc {
	uint64_t file_off;   /* target in the VHDX file */
	uint64_t len;        /* 4096 for data, ZeroLength for zero */
	uint64_t log_off;    /* absolute file offset of the data sector, 0 for zero */
	uint8_t lead[8];
	uint8_t trail[4];
	int zero;
};

struct vhdx_olay_seg {
	uint64_t start, end;
	uint32_t desc;       /* index into descs */
};

struct vhdx_overlay {
	struct vhdx_olay_desc *descs;
	size_t ndescs, cap;
	struct vhdx_olay_seg *segs;
	size_t nsegs;
	uint64_t entries;    /* log entries replayed */
	uint64_t head_seq;   /* sequence number of the head entry */
	uint64_t last_file_offset;
};

/* Reader state. */
struct vhdx {
	struct scimg_image *img;
	uint64_t file_size;          /* after log replay: at least LastFileOffset */
	char *creator;
	int cur_header;              /* 1 or 2 */
	uint8_t hdr[VHDX_HEADER_SIZE];
	int log_dirty;
	struct vhdx_overlay *olay;   /* NULL when nothing was replayed */
	uint64_t bat_off, bat_len, meta_off, meta_len;
	/* metadata */
	uint32_t block_size;
	int leave_allocated, has_parent;
	uint64_t disk_size;
	uint32_t lss, pss;
	uint8_t page83[16];
	char **pl_key, **pl_val;     /* parent locator key/value pairs */
	size_t pl_n;
	/* BAT geometry */
	uint64_t chunk_ratio, payload_blocks, sb_blocks, bat_entries;
	uint64_t counts[8];          /* payload blocks per state */
	/* BAT cache: direct-mapped pages of 512 entries */
	uint64_t *bat_cache;
	uint64_t *bat_tag;
	/* sector bitmap of one payload block */
	uint8_t *bm;
	uint64_t bm_block;
	struct scimg_image *parent;
};

/* Read LEN bytes at OFF of the VHDX file as the replayed log makes it
 * look: file content, patched by the overlay, zeros between the real end
 * of the file and x->file_size.  A read past x->file_size is an error
 * naming WHAT. */
int scimg_int_vhdx_read(struct vhdx *x, void *buf, size_t len, uint64_t off,
			const char *what);

/* Replay the log named by the current header in memory (vhdx-log.c):
 * sets x->olay (or leaves it NULL when the log holds no active sequence)
 * and may raise x->file_size.  Errors name the log field at fault. */
int scimg_int_vhdx_log_replay(struct vhdx *x);
void scimg_int_vhdx_overlay_free(struct vhdx_overlay *o);

extern const char *const scimg_vhdx_create_opts[];
int scimg_int_vhdx_create(struct scimg_image *img, const struct scimg_opts *opts);
int scimg_int_vhdx_measure(struct scimg_ctx *ctx, struct scimg_image *src, uint64_t size,
			   const struct scimg_opts *opts, struct scimg_measure *out);
int scimg_int_vhdx_pwrite(struct scimg_image *img, const void *buf, size_t len,
			  uint64_t off);
int scimg_int_vhdx_finish(struct scimg_image *img);
void scimg_int_vhdx_writer_free(struct scimg_image *img);

#endif
