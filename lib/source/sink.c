/* sink.c - output sinks: where a writer's bytes go (struct scimg_sink in
 * scimg-int.h), the counterpart of the byte sources below the readers.
 * A file, an offset window inside another sink (a container's member), or
 * a directory the writer makes its files in.  The writes themselves: a
 * short write is continued, EINTR retried, every error names the file and
 * the offset. */
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "scimg-int.h"

void scimg_int_sink_file(struct scimg_sink *s, int fd, const char *path, int isblk, int isdir)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->path = path;
	s->isblk = isblk;
	s->isdir = isdir;
}

void scimg_int_sink_window(struct scimg_sink *win, const struct scimg_sink *outer,
			   uint64_t base, const char *name)
{
	*win = *outer;
	win->base = outer->base + base;
	win->name = name;
}

const char *scimg_int_sink_name(const struct scimg_sink *s)
{
	const char *slash;

	if (s->name)
		return s->name;
	slash = strrchr(s->path, '/');
	return slash ? slash + 1 : s->path;
}

int scimg_int_sink_span(struct scimg_ctx *ctx, const struct scimg_sink *s,
			uint64_t off, uint64_t len, uint64_t *start)
{
	uint64_t end;

	if (!scimg_add_ok(off, s->base, &off) || !scimg_add_ok(off, len, &end))
		return scimg_int_err(ctx, -EFBIG, "'%s': write offset overflows", s->path);
	*start = off;
	return 0;
}

/* [OFF, OFF+LEN) of the file itself (absolute offsets). */
static int file_pwrite(struct scimg_ctx *ctx, const struct scimg_sink *s,
		       const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(s->fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return scimg_int_err(ctx, -errno,
					     "'%s': write error at offset %llu: %s",
					     s->path, (unsigned long long)off,
					     strerror(errno));
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int scimg_int_sink_pwrite(struct scimg_ctx *ctx, const struct scimg_sink *s,
			  const void *buf, size_t len, uint64_t off)
{
	int ret = scimg_int_sink_span(ctx, s, off, len, &off);

	return ret < 0 ? ret : file_pwrite(ctx, s, buf, len, off);
}

int scimg_int_sink_truncate(struct scimg_ctx *ctx, const struct scimg_sink *s,
			    uint64_t size)
{
	if (!scimg_add_ok(size, s->base, &size))
		return scimg_int_err(ctx, -EFBIG, "'%s': file size overflows", s->path);
	if (ftruncate(s->fd, (off_t)size) < 0)
		return scimg_int_err(ctx, -errno, "'%s': could not set size to %llu: %s",
				     s->path, (unsigned long long)size, strerror(errno));
	return 0;
}

/* BLKZEROOUT on a block device, a punched hole in a regular file, else
 * written zeros. */
int scimg_int_sink_zero(struct scimg_ctx *ctx, const struct scimg_sink *s,
			uint64_t off, uint64_t len)
{
	static const uint8_t zeros[65536];
	int ret;

	if (!len)
		return 0;
	if ((ret = scimg_int_sink_span(ctx, s, off, len, &off)) < 0)
		return ret;
	if (s->isblk) {
		uint64_t r[2] = { off, len };
		if (off % 512 == 0 && len % 512 == 0 && ioctl(s->fd, BLKZEROOUT, r) == 0)
			return 0;
	} else {
		if (fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)off, (off_t)len) == 0)
			return 0;
		if (fallocate(s->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
			      (off_t)off, (off_t)len) == 0)
			return 0;
	}
	while (len) {
		size_t n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
		if ((ret = file_pwrite(ctx, s, zeros, n, off)) < 0)
			return ret;
		off += n;
		len -= n;
	}
	return 0;
}
