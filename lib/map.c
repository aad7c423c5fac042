/* map.c - scimg_image_map(): where the guest bytes of an image come from
 * (scimg map).  Formats with a map() slot answer with the depth in the
 * chain and the host offset; the others from block_status. */
#include <string.h>

#include "scimg-int.h"

int scimg_image_map(struct scimg_image *img, uint64_t off, uint64_t len,
		    struct scimg_map_extent *ext)
{
	struct scimg_extent e;
	uint64_t end;
	int ret;

	if (img->writing)
		return scimg_int_err(img->ctx, -EBADF, "'%s' is open for writing", img->path);
	if (!len || !scimg_add_ok(off, len, &end) || end > img->size)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': map of offset %llu length %llu: expected a non-empty range within the virtual size %llu",
				     img->path, (unsigned long long)off,
				     (unsigned long long)len, (unsigned long long)img->size);
	if (img->fmt->map) {
		ret = img->fmt->map(img, off, len, ext);
		if (ret < 0)
			return ret;
		if (ext->offset != off || ext->length == 0 || ext->length > len)
			return scimg_int_err(img->ctx, -EIO,
					     "'%s': internal error: format '%s' returned a bad map extent",
					     img->path, img->fmt->name);
		return 0;
	}
	ret = scimg_image_block_status(img, off, len, &e);
	if (ret < 0)
		return ret;
	memset(ext, 0, sizeof(*ext));
	ext->offset = off;
	ext->length = e.length;
	ext->host_offset = UINT64_MAX;
	ext->file = img->path;
	ext->present = e.type != SCIMG_EXTENT_HOLE;
	ext->data = e.type == SCIMG_EXTENT_DATA;
	ext->zero = !ext->data;
	return 0;
}
