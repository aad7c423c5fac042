/* plugin-api.c - the functions libscimg exports to plugins
 * (lib/scimg-plugin.h): thin, stable wrappers around the internal API, so
 * that the internal structs can change without breaking built plugins. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scimg-int.h"
#include "scimg-plugin.h"

int scimg_plugin_err(struct scimg_image *img, int err, const char *fmt, ...)
{
	char msg[sizeof(img->ctx->errmsg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return scimg_int_err(img->ctx, err >= 0 ? -EIO : err, "%s", msg);
}

void scimg_plugin_err_prefix(struct scimg_image *img, const char *fmt, ...)
{
	char pre[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	scimg_int_err_prefix(img->ctx, "%s", pre);
}

int scimg_plugin_check_cancel(struct scimg_image *img)
{
	return scimg_int_check_cancel(img->ctx);
}

struct scimg_ctx *scimg_plugin_ctx(struct scimg_image *img)
{
	return img->ctx;
}

void *scimg_plugin_priv(struct scimg_image *img)
{
	return img->priv;
}

void scimg_plugin_set_priv(struct scimg_image *img, void *priv)
{
	img->priv = priv;
}

void scimg_plugin_set_size(struct scimg_image *img, uint64_t size)
{
	img->size = size;
}

int scimg_plugin_read(struct scimg_image *img, void *buf, size_t len,
		      uint64_t off, const char *what)
{
	if (!img->src)
		return scimg_int_err(img->ctx, -EBADF, "'%s' is not open for reading", img->path);
	return scimg_int_source_read(img->src, buf, len, off, what ? what : "data");
}

uint64_t scimg_plugin_file_size(struct scimg_image *img)
{
	return img->src ? img->src->size : 0;
}

int scimg_plugin_file_block_status(struct scimg_image *img, uint64_t off,
				   uint64_t len, struct scimg_extent *ext)
{
	struct scimg_source *src = img->src;
	uint64_t end;

	if (!src)
		return scimg_int_err(img->ctx, -EBADF, "'%s' is not open for reading", img->path);
	if (!len || !scimg_add_ok(off, len, &end) || end > src->size)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': allocation query at offset %llu length %llu is outside the file (%llu bytes)",
				     img->path, (unsigned long long)off,
				     (unsigned long long)len, (unsigned long long)src->size);
	if (src->ops->block_status)
		return src->ops->block_status(src, off, len, ext);
	ext->offset = off;
	ext->length = len;
	ext->type = SCIMG_EXTENT_DATA;
	return 0;
}

const char *scimg_plugin_file_dir(struct scimg_image *img)
{
	return img->src && img->src->dir ? img->src->dir : ".";
}

int scimg_plugin_open_child(struct scimg_image *img, const char *name,
			    const char *format, struct scimg_image **out)
{
	*out = NULL;
	if (!img->src)
		return scimg_int_err(img->ctx, -EBADF, "'%s' is not open for reading", img->path);
	return scimg_int_open_child(img, name, format, format == NULL, out);
}

int scimg_plugin_out_pwrite(struct scimg_image *img, const void *buf,
			    size_t len, uint64_t off)
{
	if (!img->writing)
		return scimg_int_err(img->ctx, -EBADF, "'%s' is not open for writing", img->path);
	return scimg_int_out_pwrite(img, buf, len, off);
}

int scimg_plugin_out_truncate(struct scimg_image *img, uint64_t size)
{
	if (!img->writing)
		return scimg_int_err(img->ctx, -EBADF, "'%s' is not open for writing", img->path);
	return scimg_int_out_truncate(img, size);
}

const char *scimg_plugin_opt(struct scimg_image *img, const char *key)
{
	return scimg_int_opts_get(&img->opts, key);
}

unsigned scimg_plugin_create_flags(struct scimg_image *img)
{
	return img->create_flags;
}

int scimg_plugin_parse_size(const char *s, uint64_t *out)
{
	return scimg_int_parse_size(s, out);
}
