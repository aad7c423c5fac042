/* vdi-write.c - the VDI writer: VDI 1.1 with VirtualBox's 400-byte header,
 * block map and data area aligned to 1 MiB as VirtualBox lays them out,
 * 1 MiB blocks, fresh random UUIDs.
 *
 * Dynamic (default): a block is allocated, at the end of the data area, the
 * first time data is written to it; blocks never written stay unallocated
 * and read as zeros.  Fixed (-o static=on): every block is allocated in
 * order up front; the file is sparse where nothing was written.  The header
 * and the block map are written by finish().  The virtual size is rounded up
 * to a multiple of 512 bytes (VirtualBox reads sizes rounded down).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "vdi.h"

struct vdi_writer {
	int is_writer;            /* 1 */
	int fixed;
	uint64_t disk_size;
	uint32_t nblocks, nallocated;
	uint32_t off_blocks, off_data;
	uint32_t *map;            /* host-endian */
	uint8_t uuid_create[16], uuid_modify[16];
};

const char *const vdi_create_opts[] = { "static", NULL };

static int random_uuid(struct scimg_image *img, uint8_t u[16])
{
	size_t got = 0;

	while (got < 16) {
		ssize_t n = getrandom(u + got, 16 - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return scimg_plugin_err(img, -errno, "'%s': no random numbers for a UUID: %s",
						scimg_image_path(img), strerror(errno));
		}
		got += (size_t)n;
	}
	/* version 4, RFC 4122 variant; stored as a GUID (time_hi LE at 6..7) */
	u[7] = (uint8_t)((u[7] & 0x0f) | 0x40);
	u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
	return 0;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

int vdi_create(struct scimg_image *img)
{
	const char *path = scimg_image_path(img), *st = scimg_plugin_opt(img, "static");
	uint64_t size = scimg_image_size(img), disk, nb, data;
	struct vdi_writer *w;
	uint32_t i;
	int ret, fixed = 0;

	if (st) {
		if (!strcmp(st, "on") || !strcmp(st, "true") || !strcmp(st, "1"))
			fixed = 1;
		else if (strcmp(st, "off") && strcmp(st, "false") && strcmp(st, "0"))
			return scimg_plugin_err(img, -EINVAL,
						"'%s': VDI option static is '%s', expected on or off",
						path, st);
	}
	if (size == 0)
		return scimg_plugin_err(img, -EINVAL,
					"'%s': a VDI cannot hold an empty disk (VirtualBox needs a size above 0)",
					path);
	disk = align_up(size, 512);
	nb = align_up(disk, VDI_DEFAULT_BLOCK) / VDI_DEFAULT_BLOCK;
	if (nb > VDI_MAX_BLOCKS)
		return scimg_plugin_err(img, -EFBIG,
					"'%s': virtual size %llu is too large for this VDI writer (at most %llu bytes: %u blocks of 1 MiB)",
					path, (unsigned long long)size,
					(unsigned long long)VDI_MAX_BLOCKS * VDI_DEFAULT_BLOCK, VDI_MAX_BLOCKS);
	w = calloc(1, sizeof(*w));
	if (!w)
		return scimg_plugin_err(img, -ENOMEM, "out of memory");
	w->is_writer = 1;
	w->fixed = fixed;
	w->disk_size = disk;
	w->nblocks = (uint32_t)nb;
	w->off_blocks = VDI_DATA_ALIGN;
	data = align_up((uint64_t)w->off_blocks + nb * 4, VDI_DATA_ALIGN);
	w->off_data = (uint32_t)data;   /* <= 1 MiB + 32 MiB */
	w->map = malloc((size_t)nb * 4);
	if (!w->map) {
		free(w);
		return scimg_plugin_err(img, -ENOMEM, "out of memory");
	}
	for (i = 0; i < w->nblocks; i++)
		w->map[i] = fixed ? i : VDI_BLOCK_FREE;
	if (fixed)
		w->nallocated = w->nblocks;
	scimg_plugin_set_priv(img, w);
	if ((ret = random_uuid(img, w->uuid_create)) < 0 ||
	    (ret = random_uuid(img, w->uuid_modify)) < 0)
		return ret;   /* close() frees w */
	/* the file reads as zeros up to the data area (and all data blocks
	 * of a fixed image) until finish() writes the metadata */
	return scimg_plugin_out_truncate(img, (uint64_t)w->off_data +
					 (uint64_t)w->nallocated * VDI_DEFAULT_BLOCK);
}

int vdi_pwrite(struct scimg_image *img, const void *buf, size_t len,
	       uint64_t off)
{
	struct vdi_writer *w = scimg_plugin_priv(img);
	const uint8_t *p = buf;
	int ret;

	while (len) {
		uint32_t blk = (uint32_t)(off / VDI_DEFAULT_BLOCK);
		uint32_t in = (uint32_t)(off % VDI_DEFAULT_BLOCK);
		size_t n = VDI_DEFAULT_BLOCK - in < len ? VDI_DEFAULT_BLOCK - in : len;

		if (w->map[blk] == VDI_BLOCK_FREE)
			w->map[blk] = w->nallocated++;
		ret = scimg_plugin_out_pwrite(img, p, n,
					      w->off_data + (uint64_t)w->map[blk] * VDI_DEFAULT_BLOCK + in);
		if (ret < 0)
			return ret;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

int vdi_finish(struct scimg_image *img)
{
	struct vdi_writer *w = scimg_plugin_priv(img);
	uint8_t h[512], chunk[65536];
	uint32_t i = 0;
	int ret;

	/* every allocated block is full length, the last one included */
	ret = scimg_plugin_out_truncate(img, (uint64_t)w->off_data +
					(uint64_t)w->nallocated * VDI_DEFAULT_BLOCK);
	if (ret < 0)
		return ret;
	while (i < w->nblocks) {
		size_t n = 0;
		uint64_t at = (uint64_t)w->off_blocks + (uint64_t)i * 4;

		while (i < w->nblocks && n < sizeof(chunk)) {
			vdi_put_le32(chunk + n, w->map[i++]);
			n += 4;
		}
		if ((ret = scimg_plugin_out_pwrite(img, chunk, n, at)) < 0)
			return ret;
	}
	memset(h, 0, sizeof(h));
	memcpy(h + VDI_OFF_TEXT, VDI_TEXT_VBOX, strlen(VDI_TEXT_VBOX));
	vdi_put_le32(h + VDI_OFF_SIGNATURE, VDI_SIGNATURE);
	vdi_put_le32(h + VDI_OFF_VERSION, VDI_VERSION_1_1);
	vdi_put_le32(h + VDI_OFF_HEADER_SIZE, VDI_HEADER_SIZE_V1PLUS);
	vdi_put_le32(h + VDI_OFF_TYPE, w->fixed ? VDI_TYPE_FIXED : VDI_TYPE_NORMAL);
	vdi_put_le32(h + VDI_OFF_FLAGS, 0);
	vdi_put_le32(h + VDI_OFF_BLOCKS, w->off_blocks);
	vdi_put_le32(h + VDI_OFF_DATA, w->off_data);
	/* legacy geometry: not computed, 512-byte sectors */
	vdi_put_le32(h + VDI_OFF_LEGACY_GEOMETRY + 12, 512);
	vdi_put_le64(h + VDI_OFF_DISK_SIZE, w->disk_size);
	vdi_put_le32(h + VDI_OFF_BLOCK_SIZE, VDI_DEFAULT_BLOCK);
	vdi_put_le32(h + VDI_OFF_BLOCK_EXTRA, 0);
	vdi_put_le32(h + VDI_OFF_NBLOCKS, w->nblocks);
	vdi_put_le32(h + VDI_OFF_NALLOCATED, w->nallocated);
	memcpy(h + VDI_OFF_UUID_CREATE, w->uuid_create, 16);
	memcpy(h + VDI_OFF_UUID_MODIFY, w->uuid_modify, 16);
	/* uuidLinkage and uuidParentModify stay null: not a differencing image */
	vdi_put_le32(h + VDI_OFF_LCHS_GEOMETRY + 12, 512);
	return scimg_plugin_out_pwrite(img, h, sizeof(h), 0);
}

void vdi_writer_close(struct scimg_image *img)
{
	struct vdi_writer *w = scimg_plugin_priv(img);

	if (w) {
		free(w->map);
		free(w);
	}
	scimg_plugin_set_priv(img, NULL);
}
