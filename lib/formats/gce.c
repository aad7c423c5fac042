/* formats/gce.c - "gce-tar": the file Google Compute Engine imports as an
 * image, a gzip-compressed GNU tar holding one member named exactly
 * "disk.raw" - what `tar --format=oldgnu -Sczf image.tar.gz disk.raw`
 * makes (https://cloud.google.com/compute/docs/import/import-existing-image).
 *
 * Writing: the member is a GNU sparse file (old GNU format, typeflag 'S':
 * a sparse map of up to 4 entries in the header, 21 per extension header),
 * so holes are not stored.  The sparse map has to precede the data, and the
 * convert engine hands data over only once, so the guest data goes to an
 * anonymous temporary file in the output's directory first (O_TMPFILE, or
 * a name unlinked at once: it vanishes on every path, even a crash); at
 * finish its data extents (SEEK_DATA/SEEK_HOLE) become the map, and the tar
 * is compressed into the output with zlib.  The map is kept to
 * GCE_MAX_EXTENTS entries (small holes are then stored as data), so memory
 * stays bounded.  Numeric fields too large for octal use base-256.
 *
 * Reading goes through libarchive (gzip, GNU sparse): only "disk.raw" as
 * first member, a regular file, is accepted; the sparse map is validated
 * (sorted, inside the disk) and answers block_status.  Reads are
 * sequential in the compressed stream: reading backwards starts again from
 * the beginning, which suits `scimg convert`, `compare` and `check`.
 */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "scimg-int.h"
#include "formats.h"
#include "package/package.h"

#define GCE_MEMBER "disk.raw"
#define GCE_MAX_EXTENTS (1u << 20)   /* 16 MiB of map */
#define GCE_READ_BLOCK (1u << 20)

struct gce_ext {
	uint64_t off, len;
};

/* ---- probe ------------------------------------------------------------ */

/* A gzip stream whose first 512 decompressed bytes are a tar header of a
 * file named disk.raw. */
static int gce_probe(const struct scimg_probe *p)
{
	uint8_t h[512];
	z_stream z;
	int zr;

	if (p->head_len < 18 || p->head[0] != 0x1f || p->head[1] != 0x8b || p->head[2] != 8)
		return 0;
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 31) != Z_OK)
		return 0;
	z.next_in = (Bytef *)p->head;
	z.avail_in = (uInt)p->head_len;
	z.next_out = h;
	z.avail_out = sizeof(h);
	zr = inflate(&z, Z_SYNC_FLUSH);
	inflateEnd(&z);
	if ((zr != Z_OK && zr != Z_STREAM_END) || z.avail_out != 0)
		return 0;
	if (!scimg_int_ustar_ok(h) || memcmp(h, GCE_MEMBER, sizeof(GCE_MEMBER)) != 0)
		return 0;
	return 80;
}

/* ---- reading ------------------------------------------------------------ */

struct gce_r {
	struct scimg_arc_feed feed; /* compressed bytes into libarchive */
	struct archive *a;
	/* the current data block libarchive returned */
	const uint8_t *blk;
	uint64_t boff, blen;
	uint64_t hole_start;     /* [hole_start, boff) is a hole */
	int eof;
	struct gce_ext *map;     /* NULL: not sparse, all data */
	size_t nmap;
};

/* (Re)start reading at the beginning: positioned on disk.raw's data. */
static int restart(struct scimg_image *img, struct gce_r *r, struct archive_entry **ep)
{
	struct scimg_ctx *ctx = img->ctx;
	struct archive_entry *e;
	const char *name;

	if (r->a)
		archive_read_free(r->a);
	r->feed.pos = 0;
	r->feed.err = 0;
	r->blk = NULL;
	r->boff = r->blen = r->hole_start = 0;
	r->eof = 0;
	r->a = archive_read_new();
	if (!r->a)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	archive_read_support_filter_gzip(r->a);
	archive_read_support_format_gnutar(r->a);
	archive_read_support_format_tar(r->a);
	archive_read_set_read_callback(r->a, scimg_int_arc_feed_read);
	archive_read_set_callback_data(r->a, &r->feed);
	if (archive_read_open1(r->a) != ARCHIVE_OK)
		return r->feed.err ? r->feed.err : scimg_int_err(ctx, -EINVAL, "'%s': not a gzip'd tar: %s",
						       img->path, archive_error_string(r->a));
	if (archive_read_next_header(r->a, &e) != ARCHIVE_OK)
		return r->feed.err ? r->feed.err : scimg_int_err(ctx, -EINVAL, "'%s': first tar header: %s",
						       img->path, archive_error_string(r->a) ?
						       archive_error_string(r->a) : "unreadable");
	if (archive_filter_code(r->a, 0) != ARCHIVE_FILTER_GZIP)
		return scimg_int_err(ctx, -EINVAL, "'%s': the tar is not gzip-compressed (GCE imports a .tar.gz)",
				     img->path);
	name = archive_entry_pathname(e);
	if (!name || strcmp(name, GCE_MEMBER) != 0)
		return scimg_int_err(ctx, -EINVAL, "'%s': first tar member is '%s', expected '%s'",
				     img->path, name ? name : "", GCE_MEMBER);
	if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e) ||
	    archive_entry_symlink(e))
		return scimg_int_err(ctx, -EINVAL, "'%s': member '%s' is not a regular file",
				     img->path, GCE_MEMBER);
	if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0)
		return scimg_int_err(ctx, -EINVAL, "'%s': member '%s' has no size", img->path, GCE_MEMBER);
	if (ep)
		*ep = e;
	return 0;
}

static void gce_close(struct scimg_image *img);

static int gce_open(struct scimg_image *img)
{
	struct scimg_ctx *ctx = img->ctx;
	struct archive_entry *e = NULL;
	struct gce_r *r;
	la_int64_t so, sl;
	uint64_t end = 0;
	int n, ret;

	r = calloc(1, sizeof(*r));
	if (!r)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	img->priv = r;
	r->feed.src = img->src;
	r->feed.block = GCE_READ_BLOCK;
	r->feed.what = "gzip data";
	r->feed.buf = malloc(GCE_READ_BLOCK);
	if (!r->feed.buf) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto fail;
	}
	if ((ret = restart(img, r, &e)) < 0)
		goto fail;
	img->size = (uint64_t)archive_entry_size(e);
	n = archive_entry_sparse_reset(e);
	if (n < 0 || (unsigned)n > GCE_MAX_EXTENTS) {
		ret = scimg_int_err(ctx, -EINVAL, "'%s': sparse map of %d entries (at most %u accepted)",
				    img->path, n, GCE_MAX_EXTENTS);
		goto fail;
	}
	if (n > 0) {
		r->map = calloc((size_t)n, sizeof(*r->map));
		if (!r->map) {
			ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
			goto fail;
		}
		while (archive_entry_sparse_next(e, &so, &sl) == ARCHIVE_OK && r->nmap < (size_t)n) {
			if (so < 0 || sl < 0 || (uint64_t)so < end ||
			    (uint64_t)sl > img->size || (uint64_t)so > img->size - (uint64_t)sl) {
				ret = scimg_int_err(ctx, -EINVAL, "'%s': sparse map entry %zu (offset %lld, length %lld) is out of order or outside the %llu-byte disk",
						    img->path, r->nmap, (long long)so, (long long)sl,
						    (unsigned long long)img->size);
				goto fail;
			}
			end = (uint64_t)so + (uint64_t)sl;
			if (sl)
				r->map[r->nmap++] = (struct gce_ext){ (uint64_t)so, (uint64_t)sl };
		}
	}
	return 0;
fail:
	gce_close(img);
	return ret;
}

/* Next data block from libarchive (r->eof at the end). */
static int next_block(struct scimg_image *img, struct gce_r *r)
{
	const void *b;
	size_t len;
	la_int64_t off;
	int ar = archive_read_data_block(r->a, &b, &len, &off);

	if (ar == ARCHIVE_EOF) {
		r->hole_start = r->boff + r->blen;
		r->boff = img->size;
		r->eof = 1;
		r->blk = NULL;
		r->blen = 0;
		return 0;
	}
	if (ar != ARCHIVE_OK && ar != ARCHIVE_WARN)
		return r->feed.err ? r->feed.err : scimg_int_err(img->ctx, -EIO, "'%s': reading '%s' at offset %llu: %s",
						       img->path, GCE_MEMBER, (unsigned long long)(r->boff + r->blen),
						       archive_error_string(r->a));
	if (off < 0 || (uint64_t)off < r->boff + r->blen || len > img->size ||
	    (uint64_t)off > img->size - len)
		return scimg_int_err(img->ctx, -EINVAL, "'%s': data block at offset %lld (%zu bytes) is out of order or past the disk",
				     img->path, (long long)off, len);
	r->hole_start = r->boff + r->blen;
	r->blk = b;
	r->boff = (uint64_t)off;
	r->blen = len;
	return scimg_int_check_cancel(img->ctx);
}

static int gce_pread(struct scimg_image *img, void *buf, size_t len, uint64_t off)
{
	struct gce_r *r = img->priv;
	uint8_t *p = buf;
	int ret;

	memset(buf, 0, len);
	/* data before the current block that is not a known hole was
	 * passed already: start again */
	if (off < r->hole_start && (ret = restart(img, r, NULL)) < 0)
		return ret;
	while (!r->eof && off + len > r->boff) {
		uint64_t bend = r->boff + r->blen;
		if (r->blen && off < bend && off + len > r->boff) {
			uint64_t s = off > r->boff ? off : r->boff;
			uint64_t e = off + len < bend ? off + len : bend;
			memcpy(p + (s - off), r->blk + (s - r->boff), (size_t)(e - s));
		}
		if (bend >= off + len)
			break;
		if ((ret = next_block(img, r)) < 0)
			return ret;
	}
	return 0;
}

static int gce_block_status(struct scimg_image *img, uint64_t off, uint64_t len,
			    struct scimg_extent *ext)
{
	struct gce_r *r = img->priv;
	size_t lo = 0, hi = r->nmap;

	ext->offset = off;
	ext->length = len;
	ext->type = SCIMG_EXTENT_DATA;
	if (!r->map)
		return 0;
	/* first entry ending after OFF */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->map[mid].off + r->map[mid].len <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == r->nmap || r->map[lo].off >= off + len) {
		ext->type = SCIMG_EXTENT_HOLE;
	} else if (r->map[lo].off > off) {
		ext->type = SCIMG_EXTENT_HOLE;
		ext->length = r->map[lo].off - off;
	} else if (r->map[lo].off + r->map[lo].len - off < len) {
		ext->length = r->map[lo].off + r->map[lo].len - off;
	}
	return 0;
}

static int gce_info(struct scimg_image *img, json_object *info)
{
	json_object *obj = scimg_int_info_details(info);
	struct gce_r *r = img->priv;

	if (!obj)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	json_object_object_add(obj, "member", json_object_new_string(GCE_MEMBER));
	json_object_object_add(obj, "sparse", json_object_new_boolean(r->map != NULL));
	json_object_object_add(obj, "data-extents", json_object_new_uint64(r->map ? r->nmap : 1));
	return 0;
}

/* ---- writing ------------------------------------------------------------ */

struct gce_w {
	int tmp_fd;
	int level;
	z_stream z;
	int z_init;
	uint8_t *zbuf;
	uint64_t out_off;
	struct gce_ext *map;
	size_t nmap, cap;
};

#define ZBUF (1u << 20)

static const char *const gce_create_opts[] = { "compression_level", NULL };

static int gce_create(struct scimg_image *img, const struct scimg_opts *opts)
{
	struct scimg_ctx *ctx = img->ctx;
	const char *lv = scimg_int_opts_get(opts, "compression_level");
	char *dir;
	struct gce_w *w;
	int ret;

	w = calloc(1, sizeof(*w));
	if (!w)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	img->priv = w;
	w->tmp_fd = -1;
	w->level = 6;
	if (lv) {
		if (lv[0] < '1' || lv[0] > '9' || lv[1])
			return scimg_int_err(ctx, -EINVAL, "gce-tar option 'compression_level' is '%s', expected 1 to 9", lv);
		w->level = lv[0] - '0';
	}
	/* the data waits in an anonymous file beside the output */
	dir = scimg_int_dirname(img->tmp_path ? img->tmp_path : img->path);
	if (!dir)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	ret = scimg_int_tmp_scratch(ctx, dir, img->path, &w->tmp_fd);
	free(dir);
	if (ret < 0)
		return ret;
	if (ftruncate(w->tmp_fd, (off_t)img->size) < 0)
		return scimg_int_err(ctx, -errno, "'%s': temporary file of %llu bytes: %s",
				     img->path, (unsigned long long)img->size, strerror(errno));
	return 0;
}

static int gce_pwrite(struct scimg_image *img, const void *buf, size_t len, uint64_t off)
{
	struct gce_w *w = img->priv;
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(w->tmp_fd, p, len, (off_t)off);
		if (n <= 0)
			return scimg_int_err(img->ctx, n < 0 ? -errno : -EIO,
					     "'%s': temporary file at offset %llu: %s", img->path,
					     (unsigned long long)off, n < 0 ? strerror(errno) : "short write");
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Compress LEN bytes into the output (FLUSH: Z_NO_FLUSH or Z_FINISH). */
static int zput(struct scimg_image *img, struct gce_w *w, const void *buf, size_t len, int flush)
{
	int zr, ret;

	w->z.next_in = (Bytef *)buf;
	w->z.avail_in = (uInt)len;
	do {
		w->z.next_out = w->zbuf;
		w->z.avail_out = ZBUF;
		zr = deflate(&w->z, flush);
		if (zr == Z_STREAM_ERROR)
			return scimg_int_err(img->ctx, -EIO, "'%s': gzip compression failed", img->path);
		if (ZBUF - w->z.avail_out) {
			if ((ret = scimg_int_out_pwrite(img, w->zbuf, ZBUF - w->z.avail_out, w->out_off)) < 0)
				return ret;
			w->out_off += ZBUF - w->z.avail_out;
		}
	} while (w->z.avail_out == 0 || (flush == Z_FINISH && zr != Z_STREAM_END));
	return 0;
}

static int add_ext(struct gce_w *w, uint64_t off, uint64_t len)
{
	if (w->nmap && w->map[w->nmap - 1].off + w->map[w->nmap - 1].len == off) {
		w->map[w->nmap - 1].len += len;
		return 0;
	}
	if (w->nmap == GCE_MAX_EXTENTS) {
		/* bounded map: the hole before this extent is stored as data */
		w->map[w->nmap - 1].len = off + len - w->map[w->nmap - 1].off;
		return 0;
	}
	if (w->nmap == w->cap) {
		size_t nc = w->cap ? w->cap * 2 : 256;
		struct gce_ext *m = realloc(w->map, nc * sizeof(*m));
		if (!m)
			return -ENOMEM;
		w->map = m;
		w->cap = nc;
	}
	w->map[w->nmap++] = (struct gce_ext){ off, len };
	return 0;
}

/* The data extents of the temporary file. */
static int scan_map(struct scimg_image *img, struct gce_w *w)
{
	uint64_t off = 0;

	while (off < img->size) {
		off_t d = lseek(w->tmp_fd, (off_t)off, SEEK_DATA), h;
		if (d < 0) {
			if (errno == ENXIO)
				break;
			if (errno == EINVAL) /* no SEEK_DATA here: all data */
				return add_ext(w, 0, img->size) < 0 ?
				       scimg_int_err(img->ctx, -ENOMEM, "out of memory") : 0;
			return scimg_int_err(img->ctx, -errno, "'%s': SEEK_DATA in the temporary file: %s",
					     img->path, strerror(errno));
		}
		h = lseek(w->tmp_fd, d, SEEK_HOLE);
		if (h < 0 || (uint64_t)h > img->size)
			h = (off_t)img->size;
		if (h <= d)
			break;
		if (add_ext(w, (uint64_t)d, (uint64_t)(h - d)) < 0)
			return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		off = (uint64_t)h;
	}
	return 0;
}

static int copy_data(struct scimg_image *img, struct gce_w *w, uint64_t off, uint64_t len,
		     uint8_t *buf)
{
	int ret;

	while (len) {
		size_t n = len < ZBUF ? (size_t)len : ZBUF;
		ssize_t r = pread(w->tmp_fd, buf, n, (off_t)off);
		if (r <= 0)
			return scimg_int_err(img->ctx, r < 0 ? -errno : -EIO,
					     "'%s': temporary file at offset %llu: %s", img->path,
					     (unsigned long long)off, r < 0 ? strerror(errno) : "end of file");
		if ((ret = zput(img, w, buf, (size_t)r, Z_NO_FLUSH)) < 0)
			return ret;
		off += (uint64_t)r;
		len -= (uint64_t)r;
		if ((ret = scimg_int_check_cancel(img->ctx)) < 0)
			return ret;
	}
	return 0;
}

static int gce_finish(struct scimg_image *img)
{
	struct gce_w *w = img->priv;
	uint8_t h[512], *buf = NULL;
	uint64_t stored = 0;
	size_t i, nent, k;
	int ret;

	if ((ret = scan_map(img, w)) < 0)
		return ret;
	for (i = 0; i < w->nmap; i++)
		stored += w->map[i].len;
	nent = w->nmap;
	/* GNU tar ends the map with an empty entry at the end of the file
	 * when the file ends in a hole */
	if (!w->nmap || w->map[w->nmap - 1].off + w->map[w->nmap - 1].len < img->size)
		nent++;
	w->zbuf = malloc(ZBUF);
	buf = malloc(ZBUF);
	if (!w->zbuf || !buf) {
		ret = scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		goto out;
	}
	if (deflateInit2(&w->z, w->level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		ret = scimg_int_err(img->ctx, -ENOMEM, "out of memory (zlib)");
		goto out;
	}
	w->z_init = 1;
	/* the old GNU sparse header */
	scimg_int_ustar_header(h, GCE_MEMBER, 'S', stored, (uint64_t)time(NULL), 1);
	k = 0;
	for (i = 0; i < 4 && k < nent; i++, k++) {
		uint64_t o = k < w->nmap ? w->map[k].off : img->size;
		uint64_t l = k < w->nmap ? w->map[k].len : 0;
		scimg_int_ustar_num(h + 386 + i * 24, 12, o);
		scimg_int_ustar_num(h + 386 + i * 24 + 12, 12, l);
	}
	h[482] = k < nent;
	scimg_int_ustar_num(h + 483, 12, img->size);
	scimg_int_ustar_checksum(h);
	if ((ret = zput(img, w, h, 512, Z_NO_FLUSH)) < 0)
		goto out;
	while (k < nent) {
		memset(h, 0, sizeof(h));
		for (i = 0; i < 21 && k < nent; i++, k++) {
			uint64_t o = k < w->nmap ? w->map[k].off : img->size;
			uint64_t l = k < w->nmap ? w->map[k].len : 0;
			scimg_int_ustar_num(h + i * 24, 12, o);
			scimg_int_ustar_num(h + i * 24 + 12, 12, l);
		}
		h[504] = k < nent;
		if ((ret = zput(img, w, h, 512, Z_NO_FLUSH)) < 0)
			goto out;
	}
	for (i = 0; i < w->nmap; i++)
		if ((ret = copy_data(img, w, w->map[i].off, w->map[i].len, buf)) < 0)
			goto out;
	/* pad the member, then the end of archive and the 10 KiB record */
	memset(buf, 0, 10240);
	{
		uint64_t total = 512 * (1 + (nent > 4 ? (nent - 4 + 20) / 21 : 0)) +
				 (stored + 511) / 512 * 512 + 1024;
		size_t pad = (size_t)((stored + 511) / 512 * 512 - stored) + 1024;
		pad += (size_t)((10240 - total % 10240) % 10240);
		if ((ret = zput(img, w, buf, pad, Z_FINISH)) < 0)
			goto out;
	}
	ret = scimg_int_out_truncate(img, w->out_off);
out:
	free(buf);
	return ret;
}

/* ---- close ------------------------------------------------------------- */

static void gce_close(struct scimg_image *img)
{
	if (!img->priv)
		return;
	if (img->writing) {
		struct gce_w *w = img->priv;
		if (w->tmp_fd >= 0)
			close(w->tmp_fd);
		if (w->z_init)
			deflateEnd(&w->z);
		free(w->zbuf);
		free(w->map);
		free(w);
	} else {
		struct gce_r *r = img->priv;
		if (r->a)
			archive_read_free(r->a);
		free(r->feed.buf);
		free(r->map);
		free(r);
	}
	img->priv = NULL;
}

const struct scimg_format scimg_format_gce = {
	.name = "gce-tar",
	.description = "GCE image import file: disk.raw in a gzip'd GNU tar (sparse)",
	SCIMG_FORMAT_READER(gce),
	.info = gce_info,
	.create_opts = gce_create_opts,
	SCIMG_FORMAT_WRITER(gce),
};
