/* source/file.c - local file byte source (read-only). */
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scimg-int.h"

struct file_source {
	int fd;
	int no_seek_data;
};

static int file_pread(struct scimg_source *src, void *buf, size_t len,
		      uint64_t off)
{
	struct file_source *f = src->priv;
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(f->fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return scimg_int_err(src->ctx, -errno,
					     "'%s': read error at offset %llu: %s",
					     src->name, (unsigned long long)off,
					     strerror(errno));
		}
		if (n == 0)
			return scimg_int_err(src->ctx, -EIO,
					     "'%s': unexpected end of file at offset %llu",
					     src->name, (unsigned long long)off);
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int file_block_status(struct scimg_source *src, uint64_t off,
			     uint64_t len, struct scimg_extent *ext)
{
	struct file_source *f = src->priv;
	off_t d, h;

	ext->offset = off;
	ext->length = len;
	ext->type = SCIMG_EXTENT_DATA;
	if (f->no_seek_data)
		return 0;
	d = lseek(f->fd, (off_t)off, SEEK_DATA);
	if (d < 0) {
		if (errno == ENXIO) /* nothing but hole after off */
			ext->type = SCIMG_EXTENT_HOLE;
		else
			f->no_seek_data = 1; /* filesystem without SEEK_DATA */
		return 0;
	}
	if ((uint64_t)d > off) {
		ext->type = SCIMG_EXTENT_HOLE;
		if ((uint64_t)d - off < len)
			ext->length = (uint64_t)d - off;
		return 0;
	}
	h = lseek(f->fd, (off_t)off, SEEK_HOLE);
	if (h < 0) {
		f->no_seek_data = 1;
		return 0;
	}
	if ((uint64_t)h > off && (uint64_t)h - off < len)
		ext->length = (uint64_t)h - off;
	return 0;
}

static void file_close(struct scimg_source *src)
{
	struct file_source *f = src->priv;

	if (f) {
		close(f->fd);
		free(f);
	}
}

static const struct scimg_source_ops file_ops = {
	.name = "file",
	.pread = file_pread,
	.block_status = file_block_status,
	.close = file_close,
	.thread_safe = 1, /* pread(2) and lseek(SEEK_DATA) on a shared fd */
};

int scimg_int_source_from_fd(struct scimg_ctx *ctx, int fd, const char *name,
			     const struct stat *st, struct scimg_source **out)
{
	struct scimg_source *src = NULL;
	struct file_source *f = NULL;
	char *slash;
	int ret;

	*out = NULL;
	src = calloc(1, sizeof(*src));
	f = calloc(1, sizeof(*f));
	if (!src || !f)
		goto nomem;
	src->name = strdup(name);
	src->dir = strdup(name);
	if (!src->name || !src->dir)
		goto nomem;
	slash = strrchr(src->dir, '/');
	if (!slash)
		strcpy(src->dir, ".");
	else if (slash == src->dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (S_ISBLK(st->st_mode)) {
		off_t end = lseek(fd, 0, SEEK_END);
		if (end < 0) {
			ret = scimg_int_err(ctx, -errno, "'%s': %s", name, strerror(errno));
			goto fail;
		}
		src->size = (uint64_t)end;
	} else {
		src->size = (uint64_t)st->st_size;
	}
	src->dev = st->st_dev;
	src->ino = st->st_ino;
	f->fd = fd;
	src->ops = &file_ops;
	src->ctx = ctx;
	src->priv = f;
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	*out = src;
	return 0;
nomem:
	ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
fail:
	if (src) {
		free(src->name);
		free(src->dir);
		free(src);
	}
	free(f);
	close(fd);
	return ret;
}

int scimg_int_source_open(struct scimg_ctx *ctx, const char *name,
			  struct scimg_source **out)
{
	struct stat st;
	const char *base;
	int pfd, fd, ret;

	*out = NULL;
	if (scimg_int_name_is_url(name))
		return scimg_int_http_source_open(ctx, name, out);
	/* look before opening: a FIFO or device is never opened for reading */
	pfd = open(name, O_PATH | O_CLOEXEC);
	if (pfd < 0)
		return scimg_int_err(ctx, -errno, "could not open '%s': %s",
				     name, strerror(errno));
	if (fstat(pfd, &st) < 0) {
		ret = scimg_int_err(ctx, -errno, "'%s': %s", name, strerror(errno));
		close(pfd);
		return ret;
	}
	if (S_ISDIR(st.st_mode)) {
		close(pfd);
		return scimg_int_err(ctx, -EISDIR, "'%s' is a directory, expected an image file", name);
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		close(pfd);
		return scimg_int_err(ctx, -ESPIPE,
				     "'%s' is %s: images are read from regular files, block devices and http(s) URLs (save a stream to a file first)",
				     name, scimg_int_file_type_name(st.st_mode));
	}
	fd = scimg_int_fd_reopen(pfd, &st);
	close(pfd);
	if (fd < 0)
		return scimg_int_err(ctx, fd, "could not open '%s': %s", name, strerror(-fd));
	ret = scimg_int_source_from_fd(ctx, fd, name, &st, out);
	if (ret < 0)
		return ret;
	base = strrchr(name, '/');
	(*out)->rel = strdup(base ? base + 1 : name);
	if (!(*out)->rel) {
		scimg_int_source_close(*out);
		*out = NULL;
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	}
	return 0;
}

int scimg_int_source_read(struct scimg_source *src, void *buf, size_t len,
			  uint64_t off, const char *what)
{
	uint64_t end;

	if (!scimg_add_ok(off, len, &end) || end > src->size)
		return scimg_int_err(src->ctx, -EINVAL,
				     "'%s': %s at offset %llu (%zu bytes) lies past the end of the file (%llu bytes)",
				     src->name, what ? what : "data",
				     (unsigned long long)off, len,
				     (unsigned long long)src->size);
	return src->ops->pread(src, buf, len, off);
}

void scimg_int_source_close(struct scimg_source *src)
{
	if (!src)
		return;
	src->ops->close(src);
	free(src->name);
	free(src->dir);
	free(src->rel);
	free(src);
}
