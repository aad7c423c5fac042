/* source/window.c - a byte range of another source, as a source of its own.
 *
 * Used to open a member of a container in place (the qcow2 disk inside a
 * Supercloud image's tar).  Reads and allocation queries are translated and
 * clamped to the window; nothing outside it is ever read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scimg-int.h"

struct window {
	struct scimg_source *parent;
	uint64_t off;
};

static int window_pread(struct scimg_source *src, void *buf, size_t len,
			uint64_t off)
{
	struct window *w = src->priv;
	uint64_t end;

	if (!scimg_add_ok(off, len, &end) || end > src->size)
		return scimg_int_err(src->ctx, -EINVAL,
				     "'%s': read at offset %llu (%zu bytes) lies past the end of the member (%llu bytes)",
				     src->name, (unsigned long long)off, len,
				     (unsigned long long)src->size);
	return scimg_int_source_read(w->parent, buf, len, w->off + off, src->name);
}

static int window_block_status(struct scimg_source *src, uint64_t off,
			       uint64_t len, struct scimg_extent *ext)
{
	struct window *w = src->priv;
	int ret;

	if (len > src->size - off)
		len = src->size - off;
	if (!w->parent->ops->block_status) {
		ext->offset = off;
		ext->length = len;
		ext->type = SCIMG_EXTENT_DATA;
		return 0;
	}
	ret = w->parent->ops->block_status(w->parent, w->off + off, len, ext);
	if (ret < 0)
		return ret;
	ext->offset = off;
	if (ext->length > len || ext->length == 0)
		ext->length = len;
	return 0;
}

static void window_close(struct scimg_source *src)
{
	free(src->priv);
}

static const struct scimg_source_ops window_ops = {
	.name = "window",
	.pread = window_pread,
	.block_status = window_block_status,
	.close = window_close,
};

int scimg_int_source_window(struct scimg_source *parent, uint64_t off,
			    uint64_t len, const char *name,
			    struct scimg_source **out)
{
	struct scimg_ctx *ctx = parent->ctx;
	struct scimg_source *src;
	struct window *w;
	uint64_t end;

	*out = NULL;
	if (!scimg_add_ok(off, len, &end) || end > parent->size)
		return scimg_int_err(ctx, -EINVAL,
				     "'%s': range at offset %llu (%llu bytes) lies past the end of the file (%llu bytes)",
				     name, (unsigned long long)off,
				     (unsigned long long)len,
				     (unsigned long long)parent->size);
	src = calloc(1, sizeof(*src));
	w = calloc(1, sizeof(*w));
	if (!src || !w)
		goto nomem;
	src->name = strdup(name);
	src->dir = strdup(parent->dir);
	if (!src->name || !src->dir)
		goto nomem;
	if (parent->rel && !(src->rel = strdup(parent->rel)))
		goto nomem;
	w->parent = parent;
	w->off = off;
	src->ops = &window_ops;
	src->ctx = ctx;
	src->size = len;
	/* same identity as the container, so a member naming its container
	 * is a loop */
	src->dev = parent->dev;
	src->ino = parent->ino;
	src->priv = w;
	*out = src;
	return 0;
nomem:
	if (src) {
		free(src->name);
		free(src->dir);
		free(src->rel);
	}
	free(src);
	free(w);
	return scimg_int_err(ctx, -ENOMEM, "out of memory");
}
