/* image.c - format-neutral image handle: probe, open, read (the writer is
 * image-write.c). */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scimg-int.h"

/* The best-scoring reader for SRC (NULL when none matches).  A file that
 * no reader matches but that is a format scimg knows it cannot read is
 * refused here (-ENOTSUP), never left to be read as raw. */
static int probe_format(struct scimg_ctx *ctx, struct scimg_source *src,
			const struct scimg_format **out)
{
	struct scimg_probe p;
	uint8_t *head = NULL, *tail = NULL;
	size_t i, hl, tl;
	int best = 0, ret;

	*out = NULL;
	hl = src->size < SCIMG_PROBE_HEAD ? (size_t)src->size : SCIMG_PROBE_HEAD;
	tl = src->size < SCIMG_PROBE_TAIL ? (size_t)src->size : SCIMG_PROBE_TAIL;
	head = malloc(hl ? hl : 1);
	tail = malloc(tl ? tl : 1);
	if (!head || !tail) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	if (hl && (ret = scimg_int_source_read(src, head, hl, 0, "header")) < 0)
		goto out;
	if (tl && (ret = scimg_int_source_read(src, tail, tl, src->size - tl,
						"footer")) < 0)
		goto out;
	p.filename = src->name;
	p.head = head;
	p.head_len = hl;
	p.tail = tail;
	p.tail_len = tl;
	p.file_size = src->size;
	for (i = 0; i < scimg_int_format_count(); i++) {
		const struct scimg_format *f = scimg_int_format_at(i);
		int score;

		if (!f->open)
			continue;
		if (f->probe)
			score = f->probe(&p);
		else if (f->plugin)
			score = scimg_int_plugin_probe(f, &p);
		else
			continue;
		if (score > best) {
			best = score;
			*out = f;
		}
	}
	ret = 0;
	if (!*out) {
		const char *foreign = scimg_int_foreign_format(&p);
		if (foreign)
			ret = scimg_int_err(ctx, -ENOTSUP,
					    "'%s': %s: not supported (scimg cannot read it, and copying it as raw would copy the container, not the disk); convert it with a tool that reads it, or give -f raw to take its bytes as they are",
					    src->name, foreign);
	}
out:
	free(head);
	free(tail);
	return ret;
}

int scimg_int_chain_note(struct scimg_image *img, const struct scimg_source *src)
{
	struct scimg_chain *c = img->chain;

	if (!c || !src || strcmp(src->ops->name, "file") != 0)
		return 0;
	for (size_t i = 0; i < c->nids; i++)
		if (c->ids[i].dev == src->dev && c->ids[i].ino == src->ino)
			return 0;
	if (c->nids == c->capids) {
		size_t n = c->capids ? c->capids * 2 : 8;
		struct scimg_file_id *p = realloc(c->ids, n * sizeof(*p));
		if (!p)
			return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		c->ids = p;
		c->capids = n;
	}
	c->ids[c->nids].dev = src->dev;
	c->ids[c->nids].ino = src->ino;
	c->nids++;
	return 0;
}

bool scimg_int_image_uses_file(const struct scimg_image *img, dev_t dev, ino_t ino)
{
	const struct scimg_chain *c = img->chain;

	if (!c)
		return false;
	for (size_t i = 0; i < c->nids; i++)
		if (c->ids[i].dev == dev && c->ids[i].ino == ino)
			return true;
	return false;
}

static void chain_free(struct scimg_chain *c)
{
	if (c) {
		free(c->ids);
		free(c->root);
		free(c->origin);
		if (c->root_fd >= 0)
			close(c->root_fd);
		for (size_t i = 0; i < c->nunopened; i++)
			free(c->unopened[i]);
		free(c->unopened);
		free(c);
	}
}

int scimg_int_ref_unopened(struct scimg_image *img, int err)
{
	struct scimg_chain *c = img->chain;
	char **p;

	if (err >= 0 || !(img->ctx->flags & SCIMG_CTX_HEADER_ONLY) || !c ||
	    err == -ENOMEM || err == -ECANCELED)
		return err;
	p = realloc(c->unopened, (c->nunopened + 1) * sizeof(*p));
	if (!p)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	c->unopened = p;
	if (!(p[c->nunopened] = strdup(scimg_ctx_errmsg(img->ctx))))
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	c->nunopened++;
	scimg_ctx_clear_error(img->ctx);
	return 1;
}

static int image_open_src(struct scimg_ctx *ctx, struct scimg_source *src,
			  const char *path, const char *format,
			  const char *options, int probe_ok, int depth,
			  const struct scimg_image *parent,
			  struct scimg_image **out)
{
	const struct scimg_format *fmt = NULL;
	struct scimg_image *img;
	int ret, fallback = 0;

	*out = NULL;
	if (format) {
		fmt = scimg_int_format_find(format);
		if (!fmt) {
			scimg_int_source_close(src);
			return scimg_int_err_unknown_format(ctx, format);
		}
		if (!fmt->open) {
			scimg_int_source_close(src);
			return scimg_int_err(ctx, -ENOTSUP, "format '%s' cannot be read", format);
		}
	} else {
		ret = probe_format(ctx, src, &fmt);
		if (ret < 0) {
			scimg_int_source_close(src);
			return ret;
		}
		if (!fmt) {
			if (!probe_ok) {
				scimg_int_source_close(src);
				return scimg_int_err(ctx, -EINVAL,
						     "'%s': no known format matched and its format is not given; refusing to guess raw (name the format explicitly)",
						     path);
			}
			fmt = scimg_int_format_find("raw");
			fallback = 1;
		}
	}
	img = calloc(1, sizeof(*img));
	if (!img) {
		scimg_int_source_close(src);
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	}
	img->ctx = ctx;
	img->fmt = fmt;
	img->src = src;
	img->raw_fallback = fallback;
	img->depth = depth;
	img->parent = parent;
	scimg_int_sink_file(&img->file, -1, NULL, 0, 0);
	img->out = &img->file;
	img->path = strdup(path);
	/* the top of a chain (or an image opened below a parent that has
	 * none, as check.c's stand-in for an SCI) owns the chain record */
	img->owns_chain = !parent || !parent->chain;
	img->chain = img->owns_chain ? calloc(1, sizeof(*img->chain)) : parent->chain;
	if (img->owns_chain && img->chain)
		img->chain->root_fd = -1;
	if (!img->path || !img->chain) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto fail;
	}
	if (img->owns_chain && (ret = scimg_int_chain_set_root(ctx, img->chain, src)) < 0)
		goto fail;
	if ((ret = scimg_int_chain_note(img, src)) < 0)
		goto fail;
	ret = scimg_int_opts_parse(ctx, options, fmt->open_opts, fmt->name, &img->opts);
	if (ret < 0)
		goto fail;
	ret = fmt->open(img);
	if (ret < 0)
		goto fail;
	if (img->size > SCIMG_MAX_VIRTUAL_SIZE) {
		ret = scimg_int_err(ctx, -EFBIG,
				    "'%s': virtual size %llu exceeds the supported maximum %llu",
				    path, (unsigned long long)img->size,
				    (unsigned long long)SCIMG_MAX_VIRTUAL_SIZE);
		fmt->close(img);
		goto fail;
	}
	*out = img;
	return 0;
fail:
	scimg_int_source_close(img->src);
	scimg_int_opts_free(&img->opts);
	if (img->owns_chain)
		chain_free(img->chain);
	free(img->path);
	free(img);
	return ret;
}

int scimg_image_open_opts(struct scimg_ctx *ctx, const char *path,
			  const char *format, const char *options,
			  struct scimg_image **out)
{
	struct scimg_source *src;
	int ret;

	*out = NULL;
	scimg_ctx_clear_error(ctx);
	ret = scimg_int_source_open(ctx, path, &src);
	if (ret < 0)
		return ret;
	return image_open_src(ctx, src, path, format, options, 1, 0, NULL, out);
}

int scimg_image_probe(struct scimg_ctx *ctx, const char *path,
		      const char **format)
{
	const struct scimg_format *fmt = NULL;
	struct scimg_source *src;
	int ret;

	*format = NULL;
	scimg_ctx_clear_error(ctx);
	ret = scimg_int_source_open(ctx, path, &src);
	if (ret < 0)
		return ret;
	ret = probe_format(ctx, src, &fmt);
	scimg_int_source_close(src);
	if (ret < 0)
		return ret;
	*format = fmt ? fmt->name : NULL;
	return 0;
}

int scimg_image_open(struct scimg_ctx *ctx, const char *path,
		     const char *format, struct scimg_image **out)
{
	return scimg_image_open_opts(ctx, path, format, NULL, out);
}

int scimg_int_name_is_url(const char *name)
{
	return strncasecmp(name, "http://", 7) == 0 ||
	       strncasecmp(name, "https://", 8) == 0;
}

bool scimg_int_source_same(const struct scimg_source *a,
			   const struct scimg_source *b)
{
	int ra = strcmp(a->ops->name, "file") != 0;
	int rb = strcmp(b->ops->name, "file") != 0;

	if (ra || rb)
		return ra && rb && strcmp(a->name, b->name) == 0;
	return a->dev == b->dev && a->ino == b->ino;
}

int scimg_int_open_child(struct scimg_image *parent, const char *name,
			 const char *format, int probe_ok,
			 struct scimg_image **out)
{
	struct scimg_ctx *ctx = parent->ctx;
	struct scimg_source *src;
	const struct scimg_image *a;
	char *path = NULL;
	int ret;

	*out = NULL;
	if (parent->depth + 1 >= SCIMG_MAX_CHAIN_DEPTH)
		return scimg_int_err(ctx, -ELOOP,
				     "'%s': chain of referenced images is deeper than %d",
				     parent->path, SCIMG_MAX_CHAIN_DEPTH);
	ret = scimg_int_ref_open(parent, name, &src);
	if (ret < 0)
		return ret;
	for (a = parent; a; a = a->parent) {
		if (a->src && scimg_int_source_same(a->src, src)) {
			ret = scimg_int_err(ctx, -ELOOP,
					    "'%s': referenced file '%s' is already in the chain (loop)",
					    parent->path, src->name);
			scimg_int_source_close(src);
			return ret;
		}
	}
	path = strdup(src->name);
	if (!path) {
		scimg_int_source_close(src);
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	}
	/* A referenced file is never guessed as raw. */
	ret = image_open_src(ctx, src, path, format, NULL, 0, parent->depth + 1,
			     parent, out);
	(void)probe_ok;
	free(path);
	return ret;
}

int scimg_int_open_member(struct scimg_image *parent, struct scimg_source *src,
			  const char *name, const char *format,
			  struct scimg_image **out)
{
	struct scimg_ctx *ctx = parent->ctx;
	unsigned saved = ctx->flags;
	int ret;

	*out = NULL;
	if (!format) {
		scimg_int_source_close(src);
		return scimg_int_err(ctx, -EINVAL, "'%s': the format of member '%s' is not known",
				     parent->path, name);
	}
	/* a member is self-contained: it may not name other files */
	ctx->flags &= ~(unsigned)SCIMG_CTX_ALLOW_BACKING;
	ret = image_open_src(ctx, src, name, format, NULL, 0, parent->depth + 1, parent, out);
	ctx->flags = saved;
	return ret;
}

int scimg_int_open_tar_member(struct scimg_image *parent, uint64_t offset,
			      uint64_t size, const char *member,
			      const char *format, struct scimg_image **out)
{
	struct scimg_source *win;
	size_t n = strlen(parent->path) + strlen(member) + 2;
	char *name = malloc(n);
	int ret;

	*out = NULL;
	if (!name)
		return scimg_int_err(parent->ctx, -ENOMEM, "out of memory");
	snprintf(name, n, "%s:%s", parent->path, member);
	ret = scimg_int_source_window(parent->src, offset, size, name, &win);
	if (ret == 0)
		ret = scimg_int_open_member(parent, win, name, format, out);
	free(name);
	return ret;
}

void scimg_image_close(struct scimg_image *img)
{
	if (!img)
		return;
	if (img->writing) {
		scimg_image_abort(img);
		return;
	}
	img->fmt->close(img);
	scimg_int_source_close(img->src);
	scimg_int_opts_free(&img->opts);
	if (img->owns_chain)
		chain_free(img->chain);
	free(img->path);
	free(img);
}

const char *scimg_image_format(const struct scimg_image *img)
{
	return img->fmt->name;
}

const char *scimg_image_path(const struct scimg_image *img)
{
	return img->path;
}

uint64_t scimg_image_size(const struct scimg_image *img)
{
	return img->size;
}

int scimg_image_raw_fallback(const struct scimg_image *img)
{
	return img->raw_fallback;
}

int scimg_int_check_range(struct scimg_image *img, uint64_t off, uint64_t len)
{
	uint64_t end;

	if (!scimg_add_ok(off, len, &end) || end > img->size)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': access at offset %llu length %llu is beyond the virtual size %llu",
				     img->path, (unsigned long long)off,
				     (unsigned long long)len,
				     (unsigned long long)img->size);
	return 0;
}

/* An image opened with SCIMG_CTX_HEADER_ONLY that lacks a file it names
 * has no data to read. */
static int check_complete(struct scimg_image *img)
{
	if (img->chain && img->chain->nunopened)
		return scimg_int_err(img->ctx, -EPERM, "'%s': cannot read the image: %s",
				     img->path, img->chain->unopened[0]);
	return 0;
}

int scimg_image_pread(struct scimg_image *img, void *buf, size_t len,
		      uint64_t off)
{
	int ret;

	if (img->writing)
		return scimg_int_err(img->ctx, -EBADF, "'%s' is open for writing", img->path);
	if ((ret = scimg_int_check_range(img, off, len)) < 0)
		return ret;
	if ((ret = check_complete(img)) < 0)
		return ret;
	if (!len)
		return 0;
	return img->fmt->pread(img, buf, len, off);
}

int scimg_image_block_status(struct scimg_image *img, uint64_t off,
			     uint64_t len, struct scimg_extent *ext)
{
	int ret;

	if ((ret = scimg_int_check_range(img, off, len)) < 0)
		return ret;
	if ((ret = check_complete(img)) < 0)
		return ret;
	if (!len)
		return scimg_int_err(img->ctx, -EINVAL, "block status of an empty range");
	if (!img->fmt->block_status) {
		ext->offset = off;
		ext->length = len;
		ext->type = SCIMG_EXTENT_DATA;
		return 0;
	}
	ret = img->fmt->block_status(img, off, len, ext);
	if (ret < 0)
		return ret;
	if (ext->offset != off || ext->length == 0 || ext->length > len)
		return scimg_int_err(img->ctx, -EIO,
				     "'%s': internal error: format '%s' returned a bad extent",
				     img->path, img->fmt->name);
	return 0;
}
