/* image.c - format-neutral image handle: probe, open, read, create. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "scimg-int.h"

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
		free(c);
	}
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
	img->out_fd = -1;
	img->path = strdup(path);
	img->chain = parent ? parent->chain : calloc(1, sizeof(*img->chain));
	if (!img->path || !img->chain) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto fail;
	}
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
	if (!parent)
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

/* Percent-encode NAME (a relative file name inside a remote image) for use
 * in a URL path: everything but unreserved characters and '/'. */
static char *url_escape_path(const char *name)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(name), i;
	char *p = malloc(n * 3 + 1), *w = p;

	if (!p)
		return NULL;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~' || c == '/') {
			*w++ = (char)c;
		} else {
			*w++ = '%';
			*w++ = hex[c >> 4];
			*w++ = hex[c & 15];
		}
	}
	*w = '\0';
	return p;
}

int scimg_int_resolve_path(struct scimg_ctx *ctx, const struct scimg_source *src,
			   const char *name, int confine, char **out)
{
	char *p;
	size_t n;

	*out = NULL;
	if (!*name)
		return scimg_int_err(ctx, -EINVAL, "'%s': names an empty file name", src->name);
	if (confine) {
		const char *s = name;
		if (scimg_int_name_is_url(name))
			return scimg_int_err(ctx, -EPERM,
					     "'%s': refusing URL '%s' (must be a file inside '%s')",
					     src->name, name, src->dir);
		if (*name == '/')
			return scimg_int_err(ctx, -EPERM,
					     "'%s': refusing absolute file name '%s' (must stay inside '%s')",
					     src->name, name, src->dir);
		/* refuse any ".." path component */
		while (*s) {
			const char *e = strchr(s, '/');
			size_t l = e ? (size_t)(e - s) : strlen(s);
			if (l == 2 && s[0] == '.' && s[1] == '.')
				return scimg_int_err(ctx, -EPERM,
						     "'%s': refusing file name '%s' that leaves '%s'",
						     src->name, name, src->dir);
			s += l;
			while (*s == '/')
				s++;
		}
	}
	if (scimg_int_name_is_url(name)) {
		p = strdup(name);
	} else if (scimg_int_name_is_url(src->dir)) {
		/* never a local file: "/x" is relative to the server root */
		char *esc = url_escape_path(name);
		const char *base = src->dir;
		size_t bl = strlen(base);

		if (!esc)
			return scimg_int_err(ctx, -ENOMEM, "out of memory");
		if (*name == '/') {
			const char *hs = strstr(base, "://") + 3;
			const char *sl = strchr(hs, '/');
			bl = sl ? (size_t)(sl - base) : bl;
		}
		n = bl + 1 + strlen(esc) + 1;
		p = malloc(n);
		if (p)
			snprintf(p, n, "%.*s%s%s", (int)bl, base,
				 *esc == '/' ? "" : "/", esc);
		free(esc);
	} else if (*name == '/') {
		p = strdup(name);
	} else {
		n = strlen(src->dir) + 1 + strlen(name) + 1;
		p = malloc(n);
		if (p)
			snprintf(p, n, "%s/%s", src->dir, name);
	}
	if (!p)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	*out = p;
	return 0;
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
	if (!(ctx->flags & SCIMG_CTX_ALLOW_BACKING))
		return scimg_int_err(ctx, -EPERM,
				     "'%s' refers to '%s', and opening referenced files is not allowed",
				     parent->path, name);
	if (parent->depth + 1 >= SCIMG_MAX_CHAIN_DEPTH)
		return scimg_int_err(ctx, -ELOOP,
				     "'%s': chain of referenced images is deeper than %d",
				     parent->path, SCIMG_MAX_CHAIN_DEPTH);
	ret = scimg_int_resolve_path(ctx, parent->src, name, 0, &path);
	if (ret < 0)
		return ret;
	ret = scimg_int_source_open(ctx, path, &src);
	if (ret < 0)
		goto out;
	for (a = parent; a; a = a->parent) {
		if (a->src && scimg_int_source_same(a->src, src)) {
			scimg_int_source_close(src);
			ret = scimg_int_err(ctx, -ELOOP,
					    "'%s': referenced file '%s' is already in the chain (loop)",
					    parent->path, path);
			goto out;
		}
	}
	/* A referenced file is never guessed as raw. */
	ret = image_open_src(ctx, src, path, format, NULL, 0, parent->depth + 1,
			     parent, out);
	(void)probe_ok;
out:
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
	if (img->depth == 0 && !img->parent)
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

static int check_range(struct scimg_image *img, uint64_t off, uint64_t len)
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

int scimg_image_pread(struct scimg_image *img, void *buf, size_t len,
		      uint64_t off)
{
	int ret;

	if (img->writing)
		return scimg_int_err(img->ctx, -EBADF, "'%s' is open for writing", img->path);
	if ((ret = check_range(img, off, len)) < 0)
		return ret;
	if (!len)
		return 0;
	return img->fmt->pread(img, buf, len, off);
}

int scimg_image_block_status(struct scimg_image *img, uint64_t off,
			     uint64_t len, struct scimg_extent *ext)
{
	int ret;

	if ((ret = check_range(img, off, len)) < 0)
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

/* ---- writing ---------------------------------------------------------- */

static int fd_pwrite(struct scimg_ctx *ctx, int fd, const char *name,
		     const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return scimg_int_err(ctx, -errno,
					     "'%s': write error at offset %llu: %s",
					     name, (unsigned long long)off,
					     strerror(errno));
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int fd_truncate(struct scimg_ctx *ctx, int fd, const char *name,
		       uint64_t size)
{
	if (ftruncate(fd, (off_t)size) < 0)
		return scimg_int_err(ctx, -errno, "'%s': could not set size to %llu: %s",
				     name, (unsigned long long)size, strerror(errno));
	return 0;
}

int scimg_int_out_pwrite(struct scimg_image *img, const void *buf, size_t len,
			 uint64_t off)
{
	if (!scimg_add_ok(off, img->out_base, &off))
		return scimg_int_err(img->ctx, -EFBIG, "'%s': write offset overflows", img->path);
	return fd_pwrite(img->ctx, img->out_fd, img->path, buf, len, off);
}

int scimg_int_out_truncate(struct scimg_image *img, uint64_t size)
{
	if (!scimg_add_ok(size, img->out_base, &size))
		return scimg_int_err(img->ctx, -EFBIG, "'%s': file size overflows", img->path);
	return fd_truncate(img->ctx, img->out_fd, img->path, size);
}

void scimg_int_out_writeback(struct scimg_image *img)
{
	if (!img->writing)
		return;
	if (img->out_fd >= 0 && !(img->fmt->flags & SCIMG_FMT_OUTPUT_DIR))
		(void)sync_file_range(img->out_fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	for (size_t i = 0; i < img->nsib; i++)
		if (img->sib[i].fd >= 0)
			(void)sync_file_range(img->sib[i].fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

int scimg_int_sibling_pwrite(struct scimg_image *img, size_t idx, const void *buf,
			     size_t len, uint64_t off)
{
	struct scimg_out_sibling *s = &img->sib[idx];
	return fd_pwrite(img->ctx, s->fd, s->path, buf, len, off);
}

int scimg_int_sibling_truncate(struct scimg_image *img, size_t idx, uint64_t size)
{
	struct scimg_out_sibling *s = &img->sib[idx];
	return fd_truncate(img->ctx, s->fd, s->path, size);
}

static int make_temp(struct scimg_ctx *ctx, const char *path, char **tmp_out,
		     int *fd_out)
{
	const char *slash = strrchr(path, '/');
	size_t dlen = slash ? (size_t)(slash - path) + 1 : 0;
	const char *base = slash ? slash + 1 : path;
	static unsigned counter;
	char *tmp;
	size_t n;
	int i;

	if (!*base)
		return scimg_int_err(ctx, -EISDIR, "'%s': output must be a file name", path);
	n = dlen + strlen(base) + 40;
	tmp = malloc(n);
	if (!tmp)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	for (i = 0; i < 100; i++) {
		int fd;
		snprintf(tmp, n, "%.*s.%s.scimg-%ld-%u", (int)dlen, path, base,
			 (long)getpid(),
			 __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) ^
				 (unsigned)time(NULL));
		fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (fd >= 0) {
			*tmp_out = tmp;
			*fd_out = fd;
			return 0;
		}
		if (errno != EEXIST) {
			int e = errno;
			free(tmp);
			return scimg_int_err(ctx, -e, "could not create a temporary file beside '%s': %s",
					     path, strerror(e));
		}
	}
	free(tmp);
	return scimg_int_err(ctx, -EEXIST, "could not create a temporary file beside '%s'", path);
}

/* Remove the files in directory DIR (flat: writers make no
 * subdirectories), then DIR itself.  Best effort. */
static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d) {
		while ((e = readdir(d)) != NULL) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			unlinkat(dirfd(d), e->d_name, 0);
		}
		closedir(d);
	}
	rmdir(dir);
}

static int dir_is_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int empty = 1;

	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			empty = 0;
			break;
		}
	closedir(d);
	return empty;
}

/* Temporary directory for a SCIMG_FMT_OUTPUT_DIR writer: beside PATH when
 * PATH does not exist or is an empty directory (renamed over it at the
 * end), inside PATH when it is a directory with files in it. */
static int make_temp_dir(struct scimg_ctx *ctx, const char *path,
			 char **tmp_out, int *fd_out, int *inside)
{
	static unsigned counter;
	struct stat st;
	char *p, *tmp = NULL;
	const char *slash, *base;
	size_t dlen, n;
	int i, ret;

	p = strdup(path);
	if (!p)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
	*inside = 0;
	if (stat(p, &st) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			ret = scimg_int_err(ctx, -ENOTDIR,
					    "'%s' exists and is not a directory (this format writes a directory of files)",
					    path);
			goto out;
		}
		*inside = !dir_is_empty(p);
	} else if (errno != ENOENT) {
		ret = scimg_int_err(ctx, -errno, "'%s': %s", path, strerror(errno));
		goto out;
	}
	slash = strrchr(p, '/');
	dlen = slash ? (size_t)(slash - p) + 1 : 0;
	base = slash ? slash + 1 : p;
	if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) {
		if (!*inside) {
			ret = scimg_int_err(ctx, -EINVAL,
					    "'%s': name a new or existing directory for the output",
					    path);
			goto out;
		}
	}
	n = strlen(p) + strlen(base) + 48;
	tmp = malloc(n);
	if (!tmp) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < 100; i++) {
		unsigned c = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) ^
			     (unsigned)time(NULL);
		if (*inside)
			snprintf(tmp, n, "%s/.scimg-%ld-%u", p, (long)getpid(), c);
		else
			snprintf(tmp, n, "%.*s.%s.scimg-%ld-%u", (int)dlen, p, base,
				 (long)getpid(), c);
		if (mkdir(tmp, 0777) == 0)
			break;
		if (errno != EEXIST) {
			ret = scimg_int_err(ctx, -errno,
					    "could not create a temporary directory for '%s': %s",
					    path, strerror(errno));
			goto out;
		}
	}
	if (i == 100) {
		ret = scimg_int_err(ctx, -EEXIST, "could not create a temporary directory for '%s'", path);
		goto out;
	}
	*fd_out = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd_out < 0) {
		ret = scimg_int_err(ctx, -errno, "'%s': %s", tmp, strerror(errno));
		rmdir(tmp);
		goto out;
	}
	*tmp_out = tmp;
	tmp = NULL;
	ret = 0;
out:
	free(tmp);
	free(p);
	return ret;
}

/* Move the finished temporary directory of IMG into place. */
static int place_dir(struct scimg_image *img)
{
	struct scimg_ctx *ctx = img->ctx;
	DIR *d;
	struct dirent *e;
	int tfd, dfd, ret = 0;

	if (!img->out_inside) {
		if (rename(img->tmp_path, img->path) < 0)
			return scimg_int_err(ctx, -errno, "could not rename into '%s': %s",
					     img->path, strerror(errno));
		return 0;
	}
	dfd = open(img->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return scimg_int_err(ctx, -errno, "'%s': %s", img->path, strerror(errno));
	d = opendir(img->tmp_path);
	if (!d) {
		close(dfd);
		return scimg_int_err(ctx, -errno, "'%s': %s", img->tmp_path, strerror(errno));
	}
	tfd = dirfd(d);
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (img->out_last && !strcmp(e->d_name, img->out_last))
			continue;
		if (renameat(tfd, e->d_name, dfd, e->d_name) < 0) {
			ret = scimg_int_err(ctx, -errno, "could not move '%s' into '%s': %s",
					    e->d_name, img->path, strerror(errno));
			break;
		}
	}
	if (ret == 0 && img->out_last &&
	    renameat(tfd, img->out_last, dfd, img->out_last) < 0)
		ret = scimg_int_err(ctx, -errno, "could not move '%s' into '%s': %s",
				    img->out_last, img->path, strerror(errno));
	closedir(d);
	if (ret == 0)
		fsync(dfd);
	close(dfd);
	if (ret == 0)
		rmdir(img->tmp_path);
	return ret;
}

static void remove_temp(struct scimg_image *img)
{
	if (!img->tmp_path)
		return;
	if (img->fmt->flags & SCIMG_FMT_OUTPUT_DIR)
		remove_dir(img->tmp_path);
	else
		unlink(img->tmp_path);
}

int scimg_int_out_sibling(struct scimg_image *img, const char *name, size_t *idx)
{
	const char *slash = strrchr(img->path, '/');
	size_t dlen = slash ? (size_t)(slash - img->path) + 1 : 0, i;
	struct scimg_out_sibling *s;
	char *path;
	int ret;

	if (!*name || strchr(name, '/'))
		return scimg_int_err(img->ctx, -EINVAL, "'%s': bad companion file name '%s'",
				     img->path, name);
	path = malloc(dlen + strlen(name) + 1);
	if (!path)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	memcpy(path, img->path, dlen);
	strcpy(path + dlen, name);
	if (strcmp(path, img->path) == 0) {
		free(path);
		return scimg_int_err(img->ctx, -EINVAL, "'%s': companion file has the same name",
				     img->path);
	}
	for (i = 0; i < img->nsib; i++)
		if (strcmp(img->sib[i].path, path) == 0) {
			free(path);
			return scimg_int_err(img->ctx, -EINVAL, "'%s': companion file '%s' made twice",
					     img->path, name);
		}
	s = realloc(img->sib, (img->nsib + 1) * sizeof(*s));
	if (!s) {
		free(path);
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	}
	img->sib = s;
	s = &img->sib[img->nsib];
	memset(s, 0, sizeof(*s));
	s->path = path;
	s->fd = -1;
	ret = make_temp(img->ctx, path, &s->tmp_path, &s->fd);
	if (ret < 0) {
		free(path);
		return ret;
	}
	*idx = img->nsib++;
	return 0;
}

/* Close the companion files; with DISCARD remove them (temporary names,
 * and the final names of those already renamed). */
static void siblings_release(struct scimg_image *img, int discard)
{
	size_t i;

	for (i = 0; i < img->nsib; i++) {
		struct scimg_out_sibling *s = &img->sib[i];
		if (s->fd >= 0)
			close(s->fd);
		if (discard)
			unlink(s->renamed ? s->path : s->tmp_path);
		free(s->path);
		free(s->tmp_path);
	}
	free(img->sib);
	img->sib = NULL;
	img->nsib = 0;
}

int scimg_image_create(struct scimg_ctx *ctx, const char *path,
		       const char *format, uint64_t size, const char *options,
		       unsigned flags, struct scimg_image **out)
{
	const struct scimg_format *fmt;
	struct scimg_image *img;
	int ret;

	*out = NULL;
	scimg_ctx_clear_error(ctx);
	if (!format)
		return scimg_int_err(ctx, -EINVAL, "an output format is required");
	fmt = scimg_int_format_find(format);
	if (!fmt)
		return scimg_int_err_unknown_format(ctx, format);
	if (!fmt->create)
		return scimg_int_err(ctx, -ENOTSUP, "format '%s' cannot be written", format);
	if (size > SCIMG_MAX_VIRTUAL_SIZE)
		return scimg_int_err(ctx, -EFBIG, "size %llu is too large",
				     (unsigned long long)size);
	if ((flags & SCIMG_CREATE_COMPRESS) && !fmt->compress_unit)
		return scimg_int_err(ctx, -ENOTSUP,
				     "format '%s' does not support compression (-c)", format);
	img = calloc(1, sizeof(*img));
	if (!img)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	img->ctx = ctx;
	img->fmt = fmt;
	img->size = size;
	img->writing = 1;
	img->out_fd = -1;
	img->create_flags = flags;
	img->path = strdup(path);
	if (!img->path) {
		free(img);
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	}
	ret = scimg_int_opts_parse(ctx, options, fmt->create_opts, fmt->name, &img->opts);
	if (ret < 0)
		goto fail;
	if (fmt->flags & SCIMG_FMT_OUTPUT_DIR)
		ret = make_temp_dir(ctx, path, &img->tmp_path, &img->out_fd,
				    &img->out_inside);
	else
		ret = make_temp(ctx, path, &img->tmp_path, &img->out_fd);
	if (ret < 0)
		goto fail;
	ret = fmt->create(img, &img->opts);
	if (ret < 0) {
		remove_temp(img);
		siblings_release(img, 1);
		goto fail;
	}
	*out = img;
	return 0;
fail:
	if (img->out_fd >= 0)
		close(img->out_fd);
	scimg_int_opts_free(&img->opts);
	free(img->out_last);
	free(img->tmp_path);
	free(img->path);
	free(img);
	return ret;
}

int scimg_image_pwrite(struct scimg_image *img, const void *buf, size_t len,
		       uint64_t off)
{
	int ret;

	if (!img->writing)
		return scimg_int_err(img->ctx, -EBADF, "'%s' is not open for writing", img->path);
	if ((ret = check_range(img, off, len)) < 0)
		return ret;
	if (!len)
		return 0;
	return img->fmt->pwrite(img, buf, len, off);
}

int scimg_image_write_zeroes(struct scimg_image *img, uint64_t off,
			     uint64_t len)
{
	int ret;

	if (!img->writing)
		return scimg_int_err(img->ctx, -EBADF, "'%s' is not open for writing", img->path);
	if ((ret = check_range(img, off, len)) < 0)
		return ret;
	if (!len || !img->fmt->write_zeroes)
		return 0;
	return img->fmt->write_zeroes(img, off, len);
}

static void writer_free(struct scimg_image *img)
{
	if (img->fmt->close)
		img->fmt->close(img);
	if (img->out_fd >= 0)
		close(img->out_fd);
	scimg_int_opts_free(&img->opts);
	free(img->out_last);
	free(img->tmp_path);
	free(img->path);
	free(img);
}

int scimg_image_finish(struct scimg_image *img)
{
	struct scimg_ctx *ctx = img->ctx;
	int no_sync = (img->create_flags & SCIMG_CREATE_NO_SYNC) != 0;
	int ret = 0;

	if (!img->writing) {
		scimg_image_close(img);
		return scimg_int_err(ctx, -EBADF, "image is not open for writing");
	}
	if (img->fmt->finish)
		ret = img->fmt->finish(img);
	for (size_t i = 0; ret == 0 && i < img->nsib; i++) {
		struct scimg_out_sibling *s = &img->sib[i];
		if (!no_sync && fdatasync(s->fd) < 0 && errno != EINVAL)
			ret = scimg_int_err(ctx, -errno, "'%s': could not flush: %s",
					    s->path, strerror(errno));
		else if (close(s->fd) < 0)
			ret = scimg_int_err(ctx, -errno, "'%s': %s", s->path, strerror(errno));
		s->fd = -1;
	}
	for (size_t i = 0; ret == 0 && i < img->nsib; i++) {
		struct scimg_out_sibling *s = &img->sib[i];
		if (rename(s->tmp_path, s->path) < 0)
			ret = scimg_int_err(ctx, -errno, "could not rename into '%s': %s",
					    s->path, strerror(errno));
		else
			s->renamed = 1;
	}
	if (ret == 0 && !no_sync && fdatasync(img->out_fd) < 0 && errno != EINVAL)
		ret = scimg_int_err(ctx, -errno, "'%s': could not flush: %s",
				    img->path, strerror(errno));
	if (ret == 0 && close(img->out_fd) < 0)
		ret = scimg_int_err(ctx, -errno, "'%s': %s", img->path, strerror(errno));
	img->out_fd = -1;
	if (ret == 0 && (img->fmt->flags & SCIMG_FMT_OUTPUT_DIR))
		ret = place_dir(img);
	else if (ret == 0 && rename(img->tmp_path, img->path) < 0)
		ret = scimg_int_err(ctx, -errno, "could not rename into '%s': %s",
				    img->path, strerror(errno));
	if (ret < 0)
		remove_temp(img);
	siblings_release(img, ret < 0);
	writer_free(img);
	return ret;
}

void scimg_image_abort(struct scimg_image *img)
{
	if (!img)
		return;
	remove_temp(img);
	siblings_release(img, 1);
	writer_free(img);
}
