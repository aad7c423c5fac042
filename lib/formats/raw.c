/* formats/raw.c - raw disk images: the file is the disk.
 *
 * Raw never probes: it is chosen when the user names it, or as the announced
 * last resort when nothing else matches.  Holes in the file (SEEK_DATA /
 * SEEK_HOLE) are reported as holes so conversion cost follows allocation.
 */
#include <stdlib.h>
#include <string.h>

#include "scimg-int.h"
#include "formats.h"

static int raw_open(struct scimg_image *img)
{
	img->size = img->src->size;
	return 0;
}

static void raw_close(struct scimg_image *img)
{
	(void)img;
}

static int raw_pread(struct scimg_image *img, void *buf, size_t len,
		     uint64_t off)
{
	return img->src->ops->pread(img->src, buf, len, off);
}

static int raw_block_status(struct scimg_image *img, uint64_t off,
			    uint64_t len, struct scimg_extent *ext)
{
	struct scimg_source *src = img->src;

	if (src->ops->block_status)
		return src->ops->block_status(src, off, len, ext);
	ext->offset = off;
	ext->length = len;
	ext->type = SCIMG_EXTENT_DATA;
	return 0;
}

/* The file is the disk: every byte is present at its own offset; holes
 * read as zeros (as QEMU's map shows a raw file). */
static int raw_map(struct scimg_image *img, uint64_t off, uint64_t len,
		   struct scimg_map_extent *ext)
{
	struct scimg_extent e;
	int ret = raw_block_status(img, off, len, &e);

	if (ret < 0)
		return ret;
	memset(ext, 0, sizeof(*ext));
	ext->offset = off;
	ext->length = e.length;
	ext->present = 1;
	ext->data = e.type == SCIMG_EXTENT_DATA;
	ext->zero = !ext->data;
	ext->host_offset = off;
	ext->file = img->path;
	return 0;
}

static int raw_create(struct scimg_image *img, const struct scimg_opts *opts)
{
	(void)opts;
	/* an existing target written in place keeps its size (and what lies
	 * past the virtual size); raw_write_zeroes zeroes what must read as
	 * zeros */
	if (img->out_mode == SCIMG_OUT_INPLACE)
		return scimg_int_out_inplace_claim(img, img->size);
	return scimg_int_out_truncate(img, img->size);
}

static int raw_pwrite(struct scimg_image *img, const void *buf, size_t len,
		      uint64_t off)
{
	return scimg_int_out_pwrite(img, buf, len, off);
}

static int raw_write_zeroes(struct scimg_image *img, uint64_t off, uint64_t len)
{
	/* a new file was created sparse at its full size; an existing target
	 * written in place shows its old content until zeroed */
	return scimg_int_out_zero(img, off, len);
}

static const char *const raw_create_opts[] = { NULL };

const struct scimg_format scimg_format_raw = {
	.name = "raw",
	.description = "raw disk image (the file is the disk)",
	.probe = NULL,
	.open = raw_open,
	.close = raw_close,
	.pread = raw_pread,
	.block_status = raw_block_status,
	.create_opts = raw_create_opts,
	.create = raw_create,
	.pwrite = raw_pwrite,
	.write_zeroes = raw_write_zeroes,
	.flags = SCIMG_FMT_PARALLEL_READ,
	.map = raw_map,
};
