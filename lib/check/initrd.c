/* check/initrd.c - list the kernel modules inside an initramfs file.
 *
 * An initramfs is a concatenation of cpio "newc" archives (an uncompressed
 * early one with CPU microcode is common), each possibly compressed, with
 * zero padding between them.  The archives are parsed as a stream, so
 * memory stays bounded whatever the (decompressed) size; only names are
 * kept.  gzip, zstd, xz and lzma are decoded here; lz4 (Ubuntu's default),
 * bzip2 and lzo through libarchive's filters.
 */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "check-int.h"
#include "guest/guest.h"

#define IBUF (256u << 10)
#define OBUF (256u << 10)
#define CPIO_HDR 110
#define CPIO_MAXNAME 4096

static int is_module(const char *name)
{
	size_t n = strlen(name);
	static const char *const sfx[] = { ".ko.zst", ".ko.xz", ".ko.gz", ".ko" };
	size_t i;

	for (i = 0; i < SCIMG_ARRAY_SIZE(sfx); i++) {
		size_t l = strlen(sfx[i]);
		if (n > l && strcmp(name + n - l, sfx[i]) == 0)
			return 1;
	}
	return 0;
}

/* ---- streaming cpio newc parser ---------------------------------------- */

enum cst { C_START, C_HDR, C_NAME, C_SKIP };

struct cpio {
	struct scimg_ctx *ctx;
	const char *path;
	enum cst st;
	uint8_t hdr[CPIO_HDR];
	size_t hlen;
	char name[CPIO_MAXNAME + 1];
	size_t namesize, nlen;
	uint64_t filesize;
	uint64_t skip;
	uint64_t pos;     /* position in the (decompressed) stream, messages */
	size_t archives;  /* trailers seen */
	json_object *seen; /* set of module names */
	json_object *mods;
};

static int hex8(const uint8_t *p, uint64_t *v)
{
	uint64_t r = 0;
	int i;

	for (i = 0; i < 8; i++) {
		int c = p[i], d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		r = r * 16 + (uint64_t)d;
	}
	*v = r;
	return 0;
}

static void entry_done(struct cpio *c)
{
	char m[256];

	if (strcmp(c->name, "TRAILER!!!") == 0) {
		c->archives++;
		return;
	}
	if (!is_module(c->name))
		return;
	scimg_int_sg_modname(c->name, m, sizeof(m));
	if (json_object_object_get_ex(c->seen, m, NULL))
		return;
	json_object_object_add(c->seen, m, NULL);
	json_object_array_add(c->mods, json_object_new_string(m));
}

/* Feed N bytes.  Returns 0 (all used), 1 when foreign (non-cpio) data starts
 * at an archive boundary (*USED = bytes consumed before it), or -errno. */
static int cpio_feed(struct cpio *c, const uint8_t *p, size_t n, size_t *used)
{
	size_t i = 0;

	while (i < n) {
		switch (c->st) {
		case C_START:
			if (p[i] == 0) { /* padding between archives */
				i++;
				c->pos++;
				continue;
			}
			if (p[i] != '0') {
				*used = i;
				return 1;
			}
			c->st = C_HDR;
			c->hlen = 0;
			/* fall through */
		case C_HDR: {
			size_t k = CPIO_HDR - c->hlen;
			uint64_t ns;
			if (k > n - i)
				k = n - i;
			memcpy(c->hdr + c->hlen, p + i, k);
			c->hlen += k;
			i += k;
			c->pos += k;
			if (c->hlen < CPIO_HDR)
				continue;
			if (memcmp(c->hdr, "070701", 6) != 0 && memcmp(c->hdr, "070702", 6) != 0)
				return scimg_int_err(c->ctx, -EINVAL,
						     "'%s': cpio header at stream offset %llu has magic '%.6s', expected '070701'",
						     c->path, (unsigned long long)(c->pos - CPIO_HDR), c->hdr);
			if (hex8(c->hdr + 54, &c->filesize) < 0 || hex8(c->hdr + 94, &ns) < 0 ||
			    ns == 0 || ns > CPIO_MAXNAME)
				return scimg_int_err(c->ctx, -EINVAL,
						     "'%s': cpio header at stream offset %llu has a bad file or name size",
						     c->path, (unsigned long long)(c->pos - CPIO_HDR));
			c->namesize = (size_t)ns;
			c->nlen = 0;
			c->st = C_NAME;
			continue;
		}
		case C_NAME: {
			/* name, then padding to a multiple of 4 counting the header */
			size_t total = (CPIO_HDR + c->namesize + 3) / 4 * 4 - CPIO_HDR;
			size_t k = total - c->nlen;
			if (k > n - i)
				k = n - i;
			for (size_t j = 0; j < k; j++) {
				size_t at = c->nlen + j;
				if (at < c->namesize)
					c->name[at] = (char)p[i + j];
			}
			c->nlen += k;
			i += k;
			c->pos += k;
			if (c->nlen < total)
				continue;
			c->name[c->namesize - 1] = '\0';
			entry_done(c);
			c->skip = (c->filesize + 3) / 4 * 4;
			c->st = strcmp(c->name, "TRAILER!!!") == 0 ? C_START : C_SKIP;
			if (c->st == C_SKIP && c->skip == 0)
				c->st = C_HDR, c->hlen = 0;
			continue;
		}
		case C_SKIP: {
			uint64_t k = c->skip;
			if (k > n - i)
				k = n - i;
			i += (size_t)k;
			c->pos += k;
			c->skip -= k;
			if (c->skip == 0) {
				c->st = C_HDR;
				c->hlen = 0;
			}
			continue;
		}
		}
	}
	*used = n;
	return 0;
}

/* ---- decompression ------------------------------------------------------ */

enum comp { Z_NONE_, Z_GZIP, Z_ZSTD, Z_XZ, Z_LZMA, Z_ARCHIVE, Z_UNSUPPORTED };

static enum comp comp_of(const uint8_t *p, size_t n, const char **name)
{
	*name = "unknown";
	if (n >= 2 && p[0] == 0x1f && (p[1] == 0x8b || p[1] == 0x9e))
		return *name = "gzip", Z_GZIP;
	if (n >= 4 && !memcmp(p, "\x28\xb5\x2f\xfd", 4))
		return *name = "zstd", Z_ZSTD;
	if (n >= 6 && !memcmp(p, "\xfd" "7zXZ\0", 6))
		return *name = "xz", Z_XZ;
	if (n >= 3 && p[0] == 0x5d && p[1] == 0 && p[2] == 0)
		return *name = "lzma", Z_LZMA;
	if (n >= 4 && !memcmp(p, "\x02\x21\x4c\x18", 4))
		return *name = "lz4", Z_ARCHIVE;
	if (n >= 3 && !memcmp(p, "BZh", 3))
		return *name = "bzip2", Z_ARCHIVE;
	if (n >= 4 && !memcmp(p, "\x89LZO", 4))
		return *name = "lzo", Z_ARCHIVE;
	return Z_UNSUPPORTED;
}

struct in {
	int fd;
	uint64_t size;
	uint64_t pos; /* next file offset to read */
	uint8_t *buf;
	size_t len, off; /* valid bytes, consumed bytes in buf */
};

static int in_fill(struct scimg_ctx *ctx, const char *path, struct in *in)
{
	ssize_t r;

	if (in->off < in->len)
		return 0;
	in->off = in->len = 0;
	if (in->pos >= in->size)
		return 0;
	do
		r = pread(in->fd, in->buf, IBUF, (off_t)in->pos);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return scimg_int_err(ctx, -errno, "'%s': read error at offset %llu: %s", path,
				     (unsigned long long)in->pos, strerror(errno));
	in->len = (size_t)r;
	in->pos += (uint64_t)r;
	return 0;
}

/* file offset of the next unconsumed byte */
static uint64_t in_tell(const struct in *in)
{
	return in->pos - (in->len - in->off);
}

static int feed_out(struct cpio *c, const uint8_t *p, size_t n, uint64_t seg)
{
	size_t used;
	int r = cpio_feed(c, p, n, &used);

	if (r == 1)
		return scimg_int_err(c->ctx, -EINVAL,
				     "'%s': data after the cpio archive in the compressed segment at offset %llu is not cpio",
				     c->path, (unsigned long long)seg);
	return r;
}

/* lz4 (Ubuntu's default), bzip2, lzo: through libarchive's filters (raw
 * format: the decompressed stream as one entry).  The segment runs to the
 * end of the file, as the kernel reads it. */
struct arc_in {
	struct in *in;
	struct scimg_ctx *ctx;
	const char *path;
	int failed;
};

static la_ssize_t arc_read(struct archive *a, void *opaque, const void **buf)
{
	struct arc_in *ai = opaque;
	const uint8_t *p;
	size_t n;

	(void)a;
	if (in_fill(ai->ctx, ai->path, ai->in) < 0) {
		ai->failed = 1;
		return -1;
	}
	p = ai->in->buf + ai->in->off;
	n = ai->in->len - ai->in->off;
	ai->in->off = ai->in->len;
	*buf = p;
	return (la_ssize_t)n;
}

static int archive_segment(struct scimg_ctx *ctx, const char *path, struct in *in,
			   const char *cname, struct cpio *c, uint8_t *out)
{
	uint64_t seg = in_tell(in);
	struct arc_in ai = { in, ctx, path, 0 };
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	int ret = 0;

	if (!a)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	if (archive_read_open(a, &ai, NULL, arc_read, NULL) != ARCHIVE_OK ||
	    archive_read_next_header(a, &e) != ARCHIVE_OK) {
		if (ai.failed)
			ret = -EIO;
		else
			ret = scimg_int_err(ctx, -EINVAL, "'%s': %s segment at offset %llu: %s", path,
					    cname, (unsigned long long)seg, archive_error_string(a));
		goto out;
	}
	for (;;) {
		la_ssize_t n = archive_read_data(a, out, OBUF);
		if (n == 0)
			break;
		if (n < 0) {
			ret = ai.failed ? -EIO
					: scimg_int_err(ctx, -EINVAL, "'%s': %s segment at offset %llu is corrupt "
							"or truncated: %s", path, cname,
							(unsigned long long)seg, archive_error_string(a));
			goto out;
		}
		if ((ret = feed_out(c, out, (size_t)n, seg)) < 0)
			goto out;
		if ((ret = scimg_int_check_cancel(ctx)) < 0)
			goto out;
	}
	if (c->st != C_START)
		ret = scimg_int_err(ctx, -EINVAL,
				    "'%s': the cpio archive in the segment at offset %llu is truncated",
				    path, (unsigned long long)seg);
out:
	archive_read_free(a);
	/* the filter read to the end of the file */
	in->off = in->len;
	in->pos = in->size;
	return ret;
}

static int decompress_segment(struct scimg_ctx *ctx, const char *path,
			      struct in *in, enum comp kind, struct cpio *c,
			      uint8_t *out)
{
	uint64_t seg = in_tell(in);
	int ret = 0, end = 0;

	if (kind == Z_GZIP) {
		z_stream z;
		memset(&z, 0, sizeof(z));
		if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
			return scimg_int_err(ctx, -ENOMEM, "out of memory");
		while (!end) {
			int zr;
			if ((ret = in_fill(ctx, path, in)) < 0)
				break;
			if (in->off == in->len) {
				ret = scimg_int_err(ctx, -EINVAL, "'%s': gzip segment at offset %llu is truncated",
						    path, (unsigned long long)seg);
				break;
			}
			z.next_in = in->buf + in->off;
			z.avail_in = (uInt)(in->len - in->off);
			z.next_out = out;
			z.avail_out = OBUF;
			zr = inflate(&z, Z_NO_FLUSH);
			in->off = in->len - z.avail_in;
			if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
				ret = scimg_int_err(ctx, -EINVAL, "'%s': gzip segment at offset %llu: %s",
						    path, (unsigned long long)seg, z.msg ? z.msg : "corrupt");
				break;
			}
			if ((ret = feed_out(c, out, OBUF - z.avail_out, seg)) < 0)
				break;
			end = zr == Z_STREAM_END;
			if ((ret = scimg_int_check_cancel(ctx)) < 0)
				break;
		}
		inflateEnd(&z);
	} else if (kind == Z_ZSTD) {
		ZSTD_DStream *zs = ZSTD_createDStream();
		if (!zs)
			return scimg_int_err(ctx, -ENOMEM, "out of memory");
		/* bounded window: refuse frames that want more than 128 MiB */
		ZSTD_DCtx_setParameter(zs, ZSTD_d_windowLogMax, 27);
		while (!end) {
			ZSTD_inBuffer ib;
			ZSTD_outBuffer ob = { out, OBUF, 0 };
			size_t zr;
			if ((ret = in_fill(ctx, path, in)) < 0)
				break;
			if (in->off == in->len) {
				ret = scimg_int_err(ctx, -EINVAL, "'%s': zstd segment at offset %llu is truncated",
						    path, (unsigned long long)seg);
				break;
			}
			ib.src = in->buf + in->off;
			ib.size = in->len - in->off;
			ib.pos = 0;
			zr = ZSTD_decompressStream(zs, &ob, &ib);
			in->off += ib.pos;
			if (ZSTD_isError(zr)) {
				ret = scimg_int_err(ctx, -EINVAL, "'%s': zstd segment at offset %llu: %s",
						    path, (unsigned long long)seg, ZSTD_getErrorName(zr));
				break;
			}
			if ((ret = feed_out(c, out, ob.pos, seg)) < 0)
				break;
			end = zr == 0;
			if ((ret = scimg_int_check_cancel(ctx)) < 0)
				break;
		}
		ZSTD_freeDStream(zs);
	} else {
		lzma_stream ls = LZMA_STREAM_INIT;
		lzma_ret lr = kind == Z_XZ ? lzma_stream_decoder(&ls, 256u << 20, 0)
					  : lzma_alone_decoder(&ls, 256u << 20);
		if (lr != LZMA_OK)
			return scimg_int_err(ctx, -ENOMEM, "out of memory");
		while (!end) {
			if ((ret = in_fill(ctx, path, in)) < 0)
				break;
			ls.next_in = in->buf + in->off;
			ls.avail_in = in->len - in->off;
			ls.next_out = out;
			ls.avail_out = OBUF;
			lr = lzma_code(&ls, in->off == in->len ? LZMA_FINISH : LZMA_RUN);
			in->off = in->len - ls.avail_in;
			if (lr != LZMA_OK && lr != LZMA_STREAM_END) {
				ret = scimg_int_err(ctx, -EINVAL, "'%s': %s segment at offset %llu is corrupt or truncated (liblzma error %d)",
						    path, kind == Z_XZ ? "xz" : "lzma",
						    (unsigned long long)seg, (int)lr);
				break;
			}
			if ((ret = feed_out(c, out, OBUF - ls.avail_out, seg)) < 0)
				break;
			end = lr == LZMA_STREAM_END;
			if ((ret = scimg_int_check_cancel(ctx)) < 0)
				break;
		}
		lzma_end(&ls);
	}
	if (ret == 0 && c->st != C_START)
		ret = scimg_int_err(ctx, -EINVAL,
				    "'%s': the cpio archive in the segment at offset %llu is truncated",
				    path, (unsigned long long)seg);
	return ret;
}

int scimg_int_initrd_modules(struct scimg_ctx *ctx, const char *path,
			     json_object **mods)
{
	struct cpio c;
	struct in in;
	struct stat st;
	uint8_t *out = NULL;
	int ret = 0;

	*mods = NULL;
	memset(&c, 0, sizeof(c));
	memset(&in, 0, sizeof(in));
	c.ctx = ctx;
	c.path = path;
	in.fd = open(path, O_RDONLY | O_CLOEXEC);
	if (in.fd < 0)
		return scimg_int_err(ctx, -errno, "could not open '%s': %s", path, strerror(errno));
	if (fstat(in.fd, &st) < 0) {
		ret = scimg_int_err(ctx, -errno, "'%s': %s", path, strerror(errno));
		goto out;
	}
	in.size = (uint64_t)st.st_size;
	in.buf = malloc(IBUF);
	out = malloc(OBUF);
	c.seen = json_object_new_object();
	c.mods = json_object_new_array();
	if (!in.buf || !out || !c.seen || !c.mods) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		size_t used;
		int r;

		if ((ret = in_fill(ctx, path, &in)) < 0)
			goto out;
		if (in.off == in.len)
			break; /* end of file */
		/* uncompressed cpio (or padding) */
		r = cpio_feed(&c, in.buf + in.off, in.len - in.off, &used);
		if (r < 0) {
			ret = r;
			goto out;
		}
		in.off += used;
		if (r == 1) {
			const char *cname;
			enum comp k;
			uint8_t peek[8];
			size_t avail = in.len - in.off;

			if (avail < sizeof(peek)) {
				ssize_t pr = pread(in.fd, peek, sizeof(peek), (off_t)in_tell(&in));
				avail = pr > 0 ? (size_t)pr : 0;
			} else {
				memcpy(peek, in.buf + in.off, sizeof(peek));
			}
			k = comp_of(peek, avail, &cname);
			if (k == Z_UNSUPPORTED) {
				ret = scimg_int_err(ctx, -ENOTSUP,
						    "'%s': segment at offset %llu is compressed with %s, which scimg cannot read",
						    path, (unsigned long long)in_tell(&in), cname);
				goto out;
			}
			if (k == Z_ARCHIVE)
				ret = archive_segment(ctx, path, &in, cname, &c, out);
			else
				ret = decompress_segment(ctx, path, &in, k, &c, out);
			if (ret < 0)
				goto out;
		}
	}
	if (c.st != C_START) {
		ret = scimg_int_err(ctx, -EINVAL, "'%s': the cpio archive is truncated", path);
		goto out;
	}
	if (c.archives == 0) {
		ret = scimg_int_err(ctx, -EINVAL, "'%s': no cpio archive found", path);
		goto out;
	}
	*mods = c.mods;
	c.mods = NULL;
out:
	json_object_put(c.seen);
	json_object_put(c.mods);
	free(in.buf);
	free(out);
	close(in.fd);
	return ret;
}
