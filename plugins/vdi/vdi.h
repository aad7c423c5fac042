/* vdi.h - VirtualBox VDI: on-disk layout and state shared by the reader
 * (vdi.c) and the writer (vdi-write.c).
 *
 * A VDI file starts with a 64-byte text line ("<<< Oracle VM VirtualBox
 * Disk Image >>>\n", or qemu's "<<< QEMU VM Virtual Disk Image >>>\n"), a
 * signature and a version, then the header (all little-endian).  The disk is
 * cut into blocks (1 MiB in practice); the block map holds one 32-bit entry
 * per block: the index of the block's data in the data area, or FREE (not
 * allocated: zeros, or the parent's data in a differencing image) or ZERO
 * (reads as zeros).  Data block I lives at
 *   offData + I * (cbBlockExtra + cbBlock) + cbBlockExtra.
 * A differencing image names its parent only by UUID (uuidLinkage = the
 * parent's uuidCreate; uuidParentModify = the parent's uuidModify when the
 * child was made).  UUIDs are stored as Microsoft GUIDs (first three fields
 * little-endian).
 */
#ifndef SCIMG_VDI_H
#define SCIMG_VDI_H

#include <stdint.h>

#include "scimg-plugin.h"

/* File offsets of the fields (pre-header, then header version 1.1). */
enum {
	VDI_OFF_TEXT = 0x00,          /* char[64] */
	VDI_OFF_SIGNATURE = 0x40,     /* u32 0xbeda107f */
	VDI_OFF_VERSION = 0x44,       /* u32 major << 16 | minor */
	VDI_OFF_HEADER_SIZE = 0x48,   /* u32, counted from 0x48 */
	VDI_OFF_TYPE = 0x4c,          /* u32 */
	VDI_OFF_FLAGS = 0x50,         /* u32 */
	VDI_OFF_COMMENT = 0x54,       /* char[256] */
	VDI_OFF_BLOCKS = 0x154,       /* u32 offset of the block map */
	VDI_OFF_DATA = 0x158,         /* u32 offset of the data area */
	VDI_OFF_LEGACY_GEOMETRY = 0x15c, /* u32 cylinders, heads, sectors, sector size */
	VDI_OFF_DISK_SIZE = 0x170,    /* u64 */
	VDI_OFF_BLOCK_SIZE = 0x178,   /* u32 */
	VDI_OFF_BLOCK_EXTRA = 0x17c,  /* u32 */
	VDI_OFF_NBLOCKS = 0x180,      /* u32 */
	VDI_OFF_NALLOCATED = 0x184,   /* u32 */
	VDI_OFF_UUID_CREATE = 0x188,  /* 16 bytes */
	VDI_OFF_UUID_MODIFY = 0x198,
	VDI_OFF_UUID_LINKAGE = 0x1a8,
	VDI_OFF_UUID_PARENT_MODIFY = 0x1b8,
	VDI_OFF_LCHS_GEOMETRY = 0x1c8, /* header size >= 400 only */
	VDI_HEADER_END = 0x1d8,
};

#define VDI_SIGNATURE UINT32_C(0xbeda107f)
#define VDI_VERSION_1_1 UINT32_C(0x00010001)
#define VDI_HEADER_SIZE_V1 384u      /* without the LCHS geometry (qemu) */
#define VDI_HEADER_SIZE_V1PLUS 400u  /* VirtualBox 2.x and later */
#define VDI_TEXT_VBOX "<<< Oracle VM VirtualBox Disk Image >>>\n"
#define VDI_BLOCK_FREE UINT32_C(0xffffffff)
#define VDI_BLOCK_ZERO UINT32_C(0xfffffffe)
#define VDI_DEFAULT_BLOCK (UINT32_C(1) << 20)
#define VDI_DATA_ALIGN (UINT32_C(1) << 20)

enum vdi_type {
	VDI_TYPE_NORMAL = 1,  /* dynamic */
	VDI_TYPE_FIXED = 2,
	VDI_TYPE_UNDO = 3,
	VDI_TYPE_DIFF = 4,
};

/* Largest block map kept in memory: 8 Mi entries (32 MiB), an 8 TiB disk
 * in 1 MiB blocks. */
#define VDI_MAX_BLOCKS (UINT32_C(1) << 23)

extern const struct scimg_plugin_format vdi_format;

/* vdi-write.c */
extern const char *const vdi_create_opts[];
int vdi_create(struct scimg_image *img);
int vdi_pwrite(struct scimg_image *img, const void *buf, size_t len,
	       uint64_t off);
int vdi_finish(struct scimg_image *img);
void vdi_writer_close(struct scimg_image *img);

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" of an on-disk (GUID) UUID. */
void vdi_uuid_str(const uint8_t *u, char out[37]);

static inline uint32_t vdi_le32(const uint8_t *p)
{
	return p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}
static inline uint64_t vdi_le64(const uint8_t *p)
{
	return vdi_le32(p) | ((uint64_t)vdi_le32(p + 4) << 32);
}
static inline void vdi_put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}
static inline void vdi_put_le64(uint8_t *p, uint64_t v)
{
	vdi_put_le32(p, (uint32_t)v);
	vdi_put_le32(p + 4, (uint32_t)(v >> 32));
}

#endif
