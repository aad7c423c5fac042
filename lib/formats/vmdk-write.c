/* vmdk-write.c - writing VMDK images.
 *
 * subformat=monolithicSparse (default, as qemu-img): version 1 hosted
 *   sparse file, embedded descriptor, redundant grain directory; every
 *   grain table has a fixed place, written once when the writer moves past
 *   it (so only one table is ever in memory).
 * subformat=streamOptimized: the layout of VMware's own stream exports
 *   (version 3, flags 0x30001): header with the grain directory "at end",
 *   embedded descriptor, deflate-compressed grains (zlib format) each
 *   behind a grain marker, each grain table behind a metadata marker as
 *   soon as the writer moves past it (empty ones omitted), then the grain
 *   directory, the footer and the end-of-stream marker.  Grains are always
 *   compressed: the convert engine does it on its worker threads
 *   (compress/pwrite_compressed; SCIMG_FMT_ALWAYS_COMPRESSED, with or
 *   without -c), pwrite deflates inline for other callers.
 * subformat=monolithicFlat: a descriptor file and "<name>-flat.<ext>", a
 *   companion file of the output's sink (scimg_int_out_file()), renamed
 *   into place just before the descriptor.
 *
 * The convert engine writes in increasing offset order and never twice;
 * a grain is stored once its last byte arrived or the writer moved past
 * it, and grains nobody wrote stay unallocated (they read as zeros).
 */
#include <fcntl.h>
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "deflate.h"
#include "vmdk-int.h"

#define W_GRAIN_SECTORS 128u            /* 64 KiB grains */
#define W_GRAIN (W_GRAIN_SECTORS * VMDK_SECTOR)
#define W_GTES 512u                     /* 2 KiB (4-sector) grain tables */
#define W_DESC_SECTORS 20u
#define W_MAX_SPARSE (UINT64_C(64) << 40) /* 64 TiB: VMware's own ceiling */
#define W_MAX_FILE_SECTORS (UINT64_C(1) << 32) /* GTEs are 32-bit sectors */

enum sub { SUB_SPARSE, SUB_STREAM, SUB_FLAT };

struct vmdk_writer {
	enum sub sub;
	uint64_t sectors;        /* capacity */
	uint64_t n_grains;
	uint32_t n_gts, gd_sectors, gt_sectors;
	uint8_t hdr[VMDK_SECTOR];
	/* grain being assembled from partial writes */
	uint64_t cur;
	int pending;
	uint8_t *gbuf;
	uint64_t next_grain;     /* lowest grain index still writable */
	/* grain table being filled */
	uint64_t cur_gt;
	int gt_used;
	uint32_t *gt;
	uint32_t *gd;            /* stream: the whole directory */
	uint64_t next;           /* next free sector of the file */
	uint64_t rgt_base, gt_base; /* sparse: sectors of table 0 */
	uint8_t *cbuf;           /* stream: marker + compressed grain */
	size_t ccap;
	struct scimg_sink *flat; /* flat: the extent, a file of the output's sink */
};

const char *const scimg_int_vmdk_create_opts[] = {
	"subformat", "adapter_type", "hwversion", "toolsversion", NULL
};

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

static void random_words(uint32_t *w, size_t n)
{
	size_t got = 0;

	while (got < n * sizeof(*w)) {
		ssize_t r = getrandom((uint8_t *)w + got, n * sizeof(*w) - got, GRND_NONBLOCK);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (got < n * sizeof(*w)) {
		/* no entropy source: still distinct between runs */
		uint64_t x = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)w;
		for (size_t i = 0; i < n; i++) {
			x ^= x << 13; x ^= x >> 7; x ^= x << 17;
			w[i] = (uint32_t)(x >> 16);
		}
	}
}

static void put_header(uint8_t *h, uint32_t version, uint32_t flags,
		       uint64_t capacity, uint64_t desc_off, uint64_t desc_size,
		       uint64_t rgd, uint64_t gd, uint64_t overhead, uint16_t alg)
{
	memset(h, 0, VMDK_SECTOR);
	memcpy(h, "KDMV", 4);
	scimg_put_le32(h + 4, version);
	scimg_put_le32(h + 8, flags);
	scimg_put_le64(h + 12, capacity);
	scimg_put_le64(h + 20, W_GRAIN_SECTORS);
	scimg_put_le64(h + 28, desc_off);
	scimg_put_le64(h + 36, desc_size);
	scimg_put_le32(h + 44, W_GTES);
	scimg_put_le64(h + 48, rgd);
	scimg_put_le64(h + 56, gd);
	scimg_put_le64(h + 64, overhead);
	h[72] = 0; /* clean shutdown */
	h[73] = '\n';
	h[74] = ' ';
	h[75] = '\r';
	h[76] = '\n';
	scimg_put_le16(h + 77, alg);
}

static int wr(struct scimg_image *img, const void *buf, size_t len, uint64_t sector)
{
	return scimg_int_out_pwrite(img, buf, len, sector * VMDK_SECTOR);
}

/* A metadata marker sector: VAL sectors of TYPE follow. */
static int write_marker(struct scimg_image *img, uint64_t sector, uint64_t val,
			uint32_t type)
{
	uint8_t m[VMDK_SECTOR];

	memset(m, 0, sizeof(m));
	scimg_put_le64(m, val);
	scimg_put_le32(m + 12, type);
	return wr(img, m, sizeof(m), sector);
}

/* Write N u32 entries (host order) little-endian at SECTOR, in pieces. */
static int write_table(struct scimg_image *img, const uint32_t *t, uint64_t n,
		       uint64_t sector)
{
	uint8_t buf[64 * 1024];
	uint64_t done = 0;
	int ret;

	while (done < n) {
		size_t k = n - done < sizeof(buf) / 4 ? (size_t)(n - done) : sizeof(buf) / 4;
		for (size_t i = 0; i < k; i++)
			scimg_put_le32(buf + 4 * i, t[done + i]);
		if ((ret = scimg_int_out_pwrite(img, buf, k * 4, sector * VMDK_SECTOR + done * 4)) < 0)
			return ret;
		done += k;
	}
	return 0;
}

/* A directory whose entry i is BASE + i * gt_sectors, at SECTOR. */
static int write_fixed_gd(struct scimg_image *img, struct vmdk_writer *w,
			  uint64_t sector, uint64_t base)
{
	uint8_t buf[64 * 1024];
	uint64_t done = 0;
	int ret;

	while (done < w->n_gts) {
		size_t k = w->n_gts - done < sizeof(buf) / 4 ? (size_t)(w->n_gts - done) : sizeof(buf) / 4;
		for (size_t i = 0; i < k; i++)
			scimg_put_le32(buf + 4 * i, (uint32_t)(base + (done + i) * w->gt_sectors));
		if ((ret = scimg_int_out_pwrite(img, buf, k * 4, sector * VMDK_SECTOR + done * 4)) < 0)
			return ret;
		done += k;
	}
	return 0;
}

static int too_big(struct scimg_image *img)
{
	return scimg_int_err(img->ctx, -EFBIG,
			     "'%s': VMDK sparse file would grow past 2 TiB (grain offsets are 32-bit sector numbers); use subformat=monolithicFlat",
			     img->path);
}

/* Store the grain table being filled, if it has entries. */
static int flush_gt(struct scimg_image *img, struct vmdk_writer *w)
{
	int ret;

	if (w->cur_gt == UINT64_MAX || !w->gt_used)
		goto done;
	if (w->sub == SUB_SPARSE) {
		if ((ret = write_table(img, w->gt, W_GTES, w->gt_base + w->cur_gt * w->gt_sectors)) < 0 ||
		    (ret = write_table(img, w->gt, W_GTES, w->rgt_base + w->cur_gt * w->gt_sectors)) < 0)
			return ret;
	} else {
		if (w->next + 1 + w->gt_sectors >= W_MAX_FILE_SECTORS)
			return too_big(img);
		if ((ret = write_marker(img, w->next, w->gt_sectors, VMDK_MARKER_GT)) < 0 ||
		    (ret = write_table(img, w->gt, W_GTES, w->next + 1)) < 0)
			return ret;
		w->gd[w->cur_gt] = (uint32_t)(w->next + 1);
		w->next += 1 + w->gt_sectors;
	}
done:
	w->cur_gt = UINT64_MAX;
	w->gt_used = 0;
	return 0;
}

/* Record that grain G starts at the next free sector of the file.  When G
 * belongs to a new grain table, the finished one is stored first (a stream
 * writes it right here, so this comes before placing the grain). */
static int set_gte(struct scimg_image *img, struct vmdk_writer *w, uint64_t g)
{
	uint64_t t = g / W_GTES;
	int ret;

	if (t != w->cur_gt) {
		if ((ret = flush_gt(img, w)) < 0)
			return ret;
		memset(w->gt, 0, W_GTES * sizeof(*w->gt));
		w->cur_gt = t;
	}
	w->gt[g % W_GTES] = (uint32_t)w->next;
	w->gt_used = 1;
	return 0;
}

/* Bytes of grain G: a whole grain but for the last one, which ends with
 * the capacity (the virtual size rounded up to a sector). */
static size_t grain_len(const struct vmdk_writer *w, uint64_t g)
{
	uint64_t left = w->sectors * VMDK_SECTOR - g * W_GRAIN;
	return left < W_GRAIN ? (size_t)left : W_GRAIN;
}

/* zlib-format deflate of IN (LEN bytes) followed by zeros up to the next
 * sector boundary into OUT (*OUTLEN capacity).  Thread-safe.  Whole
 * grains go through libdeflate at level 6 (same size as zlib's level 6
 * within 0.1 %, 4-10x faster: bench/RESULTS.md); a grain cut short by the
 * end of the disk, or no compressor, through zlib. */
static int deflate_grain(const void *in, size_t len, void *out, size_t *outlen)
{
	static const uint8_t zeros[VMDK_SECTOR];
	size_t pad = (VMDK_SECTOR - len % VMDK_SECTOR) % VMDK_SECTOR;
	struct libdeflate_compressor *c;
	z_stream zs;
	int zr;

	if (!pad && (c = scimg_int_thread_deflater(6)) != NULL) {
		size_t n = libdeflate_zlib_compress(c, in, len, out, *outlen);
		if (n) {
			*outlen = n;
			return 0;
		}
		/* did not fit in *OUTLEN: zlib's bound is the one callers use */
	}
	if (!pad) {
		uLongf dl = (uLongf)*outlen;
		if (compress2(out, &dl, in, (uLong)len, Z_DEFAULT_COMPRESSION) != Z_OK)
			return -EIO;
		*outlen = (size_t)dl;
		return 0;
	}
	memset(&zs, 0, sizeof(zs));
	if (deflateInit(&zs, Z_DEFAULT_COMPRESSION) != Z_OK)
		return -ENOMEM;
	zs.next_in = (Bytef *)(uintptr_t)in;
	zs.avail_in = (uInt)len;
	zs.next_out = out;
	zs.avail_out = (uInt)*outlen;
	zr = deflate(&zs, Z_NO_FLUSH);
	if (zr == Z_OK && zs.avail_in == 0) {
		zs.next_in = (Bytef *)(uintptr_t)zeros;
		zs.avail_in = (uInt)pad;
		zr = deflate(&zs, Z_FINISH);
	}
	*outlen = zs.total_out;
	deflateEnd(&zs);
	return zr == Z_STREAM_END ? 0 : -EIO;
}

/* Write a compressed grain record (marker + CLEN bytes at w->cbuf + 12). */
static int put_record(struct scimg_image *img, struct vmdk_writer *w, uint64_t g,
		      size_t clen)
{
	size_t rec = 12 + clen, padded = (rec + VMDK_SECTOR - 1) / VMDK_SECTOR * VMDK_SECTOR;
	int ret;

	scimg_put_le64(w->cbuf, g * W_GRAIN_SECTORS);
	scimg_put_le32(w->cbuf + 8, (uint32_t)clen);
	memset(w->cbuf + rec, 0, padded - rec);
	if ((ret = set_gte(img, w, g)) < 0)
		return ret;
	if (w->next + padded / VMDK_SECTOR >= W_MAX_FILE_SECTORS)
		return too_big(img);
	if ((ret = wr(img, w->cbuf, padded, w->next)) < 0)
		return ret;
	w->next += padded / VMDK_SECTOR;
	return 0;
}

/* Store grain G whose bytes are DATA (grain_len(g) of them; for sparse,
 * DATA holds a whole grain). */
static int put_grain(struct scimg_image *img, struct vmdk_writer *w, uint64_t g,
		     const uint8_t *data)
{
	size_t len = grain_len(w, g);
	int ret;

	if (g < w->next_grain)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': VMDK grain %llu written twice or out of order (the writer is sequential)",
				     img->path, (unsigned long long)g);
	w->next_grain = g + 1;
	if (w->sub == SUB_STREAM) {
		size_t clen = w->ccap - 12;
		if (deflate_grain(data, len, w->cbuf + 12, &clen) < 0)
			return scimg_int_err(img->ctx, -EIO, "'%s': deflate failed", img->path);
		return put_record(img, w, g, clen);
	}
	if (w->next + W_GRAIN_SECTORS > W_MAX_FILE_SECTORS)
		return too_big(img);
	if ((ret = set_gte(img, w, g)) < 0)
		return ret;
	if ((ret = wr(img, data, W_GRAIN, w->next)) < 0)
		return ret;
	w->next += W_GRAIN_SECTORS;
	return 0;
}

static int flush_pending(struct scimg_image *img, struct vmdk_writer *w)
{
	if (!w->pending)
		return 0;
	w->pending = 0;
	return put_grain(img, w, w->cur, w->gbuf);
}

int scimg_int_vmdk_pwrite(struct scimg_image *img, const void *buf, size_t len,
			  uint64_t off)
{
	struct vmdk_writer *w = img->priv;
	const uint8_t *p = buf;
	int ret;

	if (w->sub == SUB_FLAT)
		return scimg_int_sink_pwrite(img->ctx, w->flat, buf, len, off);
	while (len) {
		uint64_t g = off / W_GRAIN;
		size_t in = (size_t)(off % W_GRAIN), glen = grain_len(w, g);
		size_t n = glen - in < len ? glen - in : len;

		if (w->pending && w->cur != g) {
			if (g < w->cur)
				return scimg_int_err(img->ctx, -EINVAL,
						     "'%s': VMDK write at offset %llu goes backwards (the writer is sequential)",
						     img->path, (unsigned long long)off);
			if ((ret = flush_pending(img, w)) < 0)
				return ret;
		}
		if (!w->pending && in == 0 && n == glen &&
		    (w->sub == SUB_STREAM || glen == W_GRAIN)) {
			ret = put_grain(img, w, g, p); /* whole grain: no copy */
		} else {
			if (!w->pending) {
				memset(w->gbuf, 0, W_GRAIN);
				w->cur = g;
				w->pending = 1;
			}
			memcpy(w->gbuf + in, p, n);
			ret = in + n == glen ? flush_pending(img, w) : 0;
		}
		if (ret < 0)
			return ret;
		p += n;
		len -= n;
		off += n;
	}
	return 0;
}

uint32_t scimg_int_vmdk_compress_unit(struct scimg_image *img)
{
	struct vmdk_writer *w = img->priv;

	return w->sub == SUB_STREAM ? W_GRAIN : 0;
}

int scimg_int_vmdk_compress(struct scimg_image *img, const void *in, size_t len,
			    void *out, size_t *outlen)
{
	(void)img;
	/* never "store plain" (1): stream grains are always compressed */
	return deflate_grain(in, len, out, outlen);
}

int scimg_int_vmdk_pwrite_compressed(struct scimg_image *img, uint64_t off,
				     const void *data, size_t clen, size_t len)
{
	struct vmdk_writer *w = img->priv;
	uint64_t g = off / W_GRAIN;
	int ret;

	if (w->sub != SUB_STREAM || off % W_GRAIN || g >= w->n_grains ||
	    (len + VMDK_SECTOR - 1) / VMDK_SECTOR * VMDK_SECTOR != grain_len(w, g))
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': compressed write at offset %llu length %zu is not one whole grain of a streamOptimized VMDK",
				     img->path, (unsigned long long)off, len);
	if (clen > w->ccap - 12)
		return scimg_int_err(img->ctx, -EINVAL, "'%s': compressed grain of %zu bytes is too large",
				     img->path, clen);
	if (w->pending && (ret = flush_pending(img, w)) < 0)
		return ret;
	if (g < w->next_grain)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': VMDK grain %llu written twice or out of order (the writer is sequential)",
				     img->path, (unsigned long long)g);
	w->next_grain = g + 1;
	memcpy(w->cbuf + 12, data, clen);
	return put_record(img, w, g, clen);
}

/* ---- create / finish ------------------------------------------------------ */

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static int has_control_char(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* "disk.vmdk" -> "disk-flat.vmdk" (qemu-img's naming). */
static char *flat_name(const char *path)
{
	const char *b = base_name(path), *dot = strrchr(b, '.');
	size_t n = strlen(b) + 6;
	char *r = malloc(n);

	if (!r)
		return NULL;
	if (dot && dot != b)
		snprintf(r, n, "%.*s-flat%s", (int)(dot - b), b, dot);
	else
		snprintf(r, n, "%s-flat", b);
	return r;
}

static int parse_small_uint(const char *s, unsigned long max, unsigned long *v)
{
	char *end;

	if (!s || !*s || *s == '-' || *s == '+')
		return 0;
	errno = 0;
	*v = strtoul(s, &end, 10);
	return !*end && errno == 0 && *v <= max;
}

/* The options of a VMDK writer, validated: *SUB and D's create type,
 * adapter type, hardware and tools versions. */
static int parse_vmdk_opts(struct scimg_ctx *ctx, const struct scimg_opts *opts,
			   enum sub *subp, struct vmdk_desc_out *d)
{
	static const struct { const char *opt, *ddb; } adapters[] = {
		{ "ide", "ide" }, { "lsilogic", "lsilogic" }, { "buslogic", "buslogic" },
		{ "lsisas", "lsisas1068" }, { "lsisas1068", "lsisas1068" },
		{ "pvscsi", "pvscsi" }, { "legacyESX", "legacyESX" },
	};
	const char *sub = scimg_int_opts_get(opts, "subformat");
	const char *ad = scimg_int_opts_get(opts, "adapter_type");
	const char *hw = scimg_int_opts_get(opts, "hwversion");
	const char *tv = scimg_int_opts_get(opts, "toolsversion");
	unsigned long v;
	size_t i;

	if (!sub || !strcasecmp(sub, "monolithicSparse")) {
		*subp = SUB_SPARSE;
		d->create_type = "monolithicSparse";
	} else if (!strcasecmp(sub, "streamOptimized")) {
		*subp = SUB_STREAM;
		d->create_type = "streamOptimized";
	} else if (!strcasecmp(sub, "monolithicFlat")) {
		*subp = SUB_FLAT;
		d->create_type = "monolithicFlat";
	} else {
		return scimg_int_err(ctx, -EINVAL,
				     "vmdk: subformat '%s' is not supported, expected streamOptimized, monolithicSparse or monolithicFlat",
				     sub);
	}
	d->adapter_type = "lsilogic";
	if (ad) {
		for (i = 0; i < SCIMG_ARRAY_SIZE(adapters); i++)
			if (!strcasecmp(ad, adapters[i].opt))
				break;
		if (i == SCIMG_ARRAY_SIZE(adapters))
			return scimg_int_err(ctx, -EINVAL,
					     "vmdk: adapter_type '%s' is not supported, expected ide, lsilogic, buslogic, lsisas, pvscsi or legacyESX",
					     ad);
		d->adapter_type = adapters[i].ddb;
	}
	d->hw_version = hw ? hw : "4";
	if (!parse_small_uint(d->hw_version, 99, &v) || v < 1)
		return scimg_int_err(ctx, -EINVAL, "vmdk: hwversion '%s' is not a number from 1 to 99",
				     d->hw_version);
	d->tools_version = tv ? tv : "2147483647";
	if (!parse_small_uint(d->tools_version, 2147483647ul, &v))
		return scimg_int_err(ctx, -EINVAL,
				     "vmdk: toolsversion '%s' is not a number from 0 to 2147483647",
				     d->tools_version);
	return 0;
}

/* The sizes of a VMDK disk of CAPACITY sectors (sparse and stream). */
struct vmdk_geom {
	uint64_t n_grains;
	uint32_t n_gts, gd_sectors, gt_sectors;
	uint64_t rgd, rgt_base, gd, gt_base, overhead; /* sparse, in sectors */
};

static void vmdk_geometry(uint64_t sectors, struct vmdk_geom *g)
{
	g->n_grains = div_up(sectors, W_GRAIN_SECTORS);
	g->n_gts = (uint32_t)div_up(g->n_grains, W_GTES);
	g->gd_sectors = (uint32_t)div_up((uint64_t)g->n_gts * 4, VMDK_SECTOR);
	g->gt_sectors = W_GTES * 4 / VMDK_SECTOR;
	g->rgd = 1 + W_DESC_SECTORS;
	g->rgt_base = g->rgd + g->gd_sectors;
	g->gd = g->rgt_base + (uint64_t)g->n_gts * g->gt_sectors;
	g->gt_base = g->gd + g->gd_sectors;
	g->overhead = div_up(g->gt_base + (uint64_t)g->n_gts * g->gt_sectors,
			     W_GRAIN_SECTORS) * W_GRAIN_SECTORS;
}

/* scimg measure -O vmdk: the layout create() and finish() make.
 * monolithicSparse: the fixed metadata (header, descriptor, both grain
 * directories and every grain table, rounded to a grain) and a whole grain
 * per grain holding data.  streamOptimized: an upper bound, every grain
 * record at deflate's worst case (zlib's compressBound), a table with its
 * marker per table holding a grain, the directory, footer and end marker;
 * real data compresses, so the file is usually much smaller.
 * monolithicFlat: the descriptor file (at most its 10 KiB) plus the
 * extent's whole size, as raw counts it. */
int scimg_int_vmdk_measure(struct scimg_ctx *ctx, struct scimg_image *src, uint64_t size,
			   const struct scimg_opts *opts, struct scimg_measure *out)
{
	struct vmdk_desc_out d;
	struct vmdk_geom g;
	enum sub sub;
	uint64_t sectors = div_up(size, VMDK_SECTOR), data = 0, tables = 0, rec, fixed;
	int ret;

	memset(&d, 0, sizeof(d));
	if ((ret = parse_vmdk_opts(ctx, opts, &sub, &d)) < 0)
		return ret;
	if (sectors == 0)
		return scimg_int_err(ctx, -EINVAL, "a VMDK disk holds at least one sector; the size is 0");
	if (sub == SUB_FLAT) {
		out->required = out->fully_allocated =
			(uint64_t)W_DESC_SECTORS * VMDK_SECTOR + sectors * VMDK_SECTOR;
		return 0;
	}
	if (size > W_MAX_SPARSE)
		return scimg_int_err(ctx, -EFBIG,
				     "%llu bytes is larger than the %llu bytes a sparse VMDK may hold; use subformat=monolithicFlat",
				     (unsigned long long)size, (unsigned long long)W_MAX_SPARSE);
	vmdk_geometry(sectors, &g);
	if (src && (ret = scimg_int_measure_data(src, W_GRAIN, &data)) < 0)
		return ret;
	data /= W_GRAIN; /* grains holding data */
	if (sub == SUB_SPARSE) {
		out->required = g.overhead * VMDK_SECTOR + data * W_GRAIN;
		out->fully_allocated = g.overhead * VMDK_SECTOR + g.n_grains * W_GRAIN;
		return 0;
	}
	if (src && (ret = scimg_int_measure_data(src, (uint64_t)W_GRAIN * W_GTES, &tables)) < 0)
		return ret;
	tables /= (uint64_t)W_GRAIN * W_GTES; /* grain tables holding a grain */
	rec = div_up(12 + compressBound(W_GRAIN), VMDK_SECTOR) * VMDK_SECTOR;
	/* header grain; directory with its marker; footer marker, footer, end */
	fixed = (uint64_t)W_GRAIN + (1 + (uint64_t)g.gd_sectors + 3) * VMDK_SECTOR;
	out->required = fixed + data * rec + tables * (1 + g.gt_sectors) * VMDK_SECTOR;
	out->fully_allocated = fixed + g.n_grains * rec +
			       (uint64_t)g.n_gts * (1 + g.gt_sectors) * VMDK_SECTOR;
	return 0;
}

int scimg_int_vmdk_create(struct scimg_image *img, const struct scimg_opts *opts)
{
	struct vmdk_desc_out d;
	struct vmdk_writer *w;
	char desc[W_DESC_SECTORS * VMDK_SECTOR], *extname = NULL;
	struct vmdk_geom g;
	size_t dl;
	int ret;

	memset(&d, 0, sizeof(d));
	w = calloc(1, sizeof(*w));
	if (!w)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	w->cur_gt = UINT64_MAX;
	if ((ret = parse_vmdk_opts(img->ctx, opts, &w->sub, &d)) < 0)
		goto fail;
	w->sectors = div_up(img->size, VMDK_SECTOR);
	if (w->sectors == 0) {
		ret = scimg_int_err(img->ctx, -EINVAL,
				    "'%s': a VMDK disk holds at least one sector; the input is empty",
				    img->path);
		goto fail;
	}
	if (w->sub != SUB_FLAT && img->size > W_MAX_SPARSE) {
		ret = scimg_int_err(img->ctx, -EFBIG,
				    "'%s': %llu bytes is larger than the %llu bytes a sparse VMDK may hold; use subformat=monolithicFlat",
				    img->path, (unsigned long long)img->size,
				    (unsigned long long)W_MAX_SPARSE);
		goto fail;
	}
	do {
		random_words(&d.cid, 1);
	} while (d.cid == 0xffffffffu || d.cid == 0xfffffffeu);
	random_words(d.rand, 3);
	d.sectors = w->sectors;
	if (w->sub == SUB_FLAT) {
		extname = flat_name(scimg_int_sink_name(img->out));
		if (!extname) {
			ret = scimg_int_err(img->ctx, -ENOMEM, "out of memory");
			goto fail;
		}
		d.extent_type = "FLAT";
		d.extent_file = extname;
	} else {
		d.extent_type = "SPARSE";
		d.extent_file = scimg_int_sink_name(img->out);
	}
	/* The descriptor names the extent file in double quotes on one line
	 * and VMware's format has no escape for '"' or a line break in it:
	 * such a name cannot be written so that a reader finds the extent. */
	if (strpbrk(d.extent_file, "\"\n\r") || has_control_char(d.extent_file)) {
		ret = scimg_int_err(img->ctx, -EINVAL,
				    "'%s': a VMDK descriptor cannot name this extent file: its name contains a double quote, a line break or a control character; choose another output name",
				    img->path);
		goto fail;
	}
	memset(desc, 0, sizeof(desc));
	dl = scimg_int_vmdk_desc_build(&d, desc, sizeof(desc));
	if (!dl) {
		ret = scimg_int_err(img->ctx, -ENAMETOOLONG, "'%s': VMDK descriptor does not fit in %u bytes",
				    img->path, W_DESC_SECTORS * VMDK_SECTOR);
		goto fail;
	}
	img->priv = w;

	if (w->sub == SUB_FLAT) {
		if ((ret = scimg_int_out_file(img, extname, &w->flat)) < 0 ||
		    (ret = scimg_int_sink_truncate(img->ctx, w->flat, w->sectors * VMDK_SECTOR)) < 0 ||
		    (ret = scimg_int_out_pwrite(img, desc, dl, 0)) < 0)
			goto fail;
		free(extname);
		return 0;
	}

	vmdk_geometry(w->sectors, &g);
	w->n_grains = g.n_grains;
	w->n_gts = g.n_gts;
	w->gd_sectors = g.gd_sectors;
	w->gt_sectors = g.gt_sectors;
	w->gbuf = malloc(W_GRAIN);
	w->gt = calloc(W_GTES, sizeof(*w->gt));
	if (!w->gbuf || !w->gt) {
		ret = scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		goto fail;
	}
	if (w->sub == SUB_SPARSE) {
		uint64_t rgd = g.rgd, gd = g.gd, overhead = g.overhead;

		w->rgt_base = g.rgt_base;
		w->gt_base = g.gt_base;
		put_header(w->hdr, 1, VMDK_FLAG_NL_DETECT | VMDK_FLAG_RGD, w->sectors,
			   1, W_DESC_SECTORS, rgd, gd, overhead, 0);
		if ((ret = wr(img, w->hdr, VMDK_SECTOR, 0)) < 0 ||
		    (ret = wr(img, desc, sizeof(desc), 1)) < 0 ||
		    (ret = write_fixed_gd(img, w, rgd, w->rgt_base)) < 0 ||
		    (ret = write_fixed_gd(img, w, gd, w->gt_base)) < 0 ||
		    (ret = scimg_int_out_truncate(img, overhead * VMDK_SECTOR)) < 0)
			goto fail;
		w->next = overhead;
	} else {
		w->gd = calloc(w->n_gts ? w->n_gts : 1, sizeof(*w->gd));
		w->ccap = (12 + (size_t)compressBound(W_GRAIN) + VMDK_SECTOR - 1) /
			  VMDK_SECTOR * VMDK_SECTOR + VMDK_SECTOR;
		w->cbuf = malloc(w->ccap);
		if (!w->gd || !w->cbuf) {
			ret = scimg_int_err(img->ctx, -ENOMEM, "out of memory");
			goto fail;
		}
		put_header(w->hdr, 3, VMDK_FLAG_NL_DETECT | VMDK_FLAG_COMPRESSED | VMDK_FLAG_MARKERS,
			   w->sectors, 1, W_DESC_SECTORS, 0, VMDK_GD_AT_END, W_GRAIN_SECTORS,
			   VMDK_COMPRESS_DEFLATE);
		if ((ret = wr(img, w->hdr, VMDK_SECTOR, 0)) < 0 ||
		    (ret = wr(img, desc, sizeof(desc), 1)) < 0)
			goto fail;
		w->next = W_GRAIN_SECTORS;
	}
	return 0;
fail:
	free(extname);
	img->priv = w;
	scimg_int_vmdk_writer_close(img);
	return ret;
}

int scimg_int_vmdk_finish(struct scimg_image *img)
{
	struct vmdk_writer *w = img->priv;
	uint64_t gd;
	int ret;

	if (w->sub == SUB_FLAT)
		return 0;
	if ((ret = flush_pending(img, w)) < 0 || (ret = flush_gt(img, w)) < 0)
		return ret;
	if (w->sub == SUB_SPARSE) {
		/* grains end on a sector boundary already; nothing else pends */
		return 0;
	}
	if (w->next + 1 + w->gd_sectors + 4 >= W_MAX_FILE_SECTORS)
		return too_big(img);
	if ((ret = write_marker(img, w->next, w->gd_sectors, VMDK_MARKER_GD)) < 0)
		return ret;
	gd = w->next + 1;
	if ((ret = write_table(img, w->gd, w->n_gts, gd)) < 0)
		return ret;
	w->next = gd + w->gd_sectors;
	/* the footer: the header again, with the directory's real place */
	scimg_put_le64(w->hdr + 56, gd);
	if ((ret = write_marker(img, w->next, 1, VMDK_MARKER_FOOTER)) < 0 ||
	    (ret = wr(img, w->hdr, VMDK_SECTOR, w->next + 1)) < 0 ||
	    (ret = write_marker(img, w->next + 2, 0, VMDK_MARKER_EOS)) < 0)
		return ret;
	w->next += 3;
	/* a GD that ends mid-sector leaves the last sector short: pad */
	return scimg_int_out_truncate(img, w->next * VMDK_SECTOR);
}

void scimg_int_vmdk_writer_close(struct scimg_image *img)
{
	struct vmdk_writer *w = img->priv;

	if (!w)
		return;
	free(w->gbuf);
	free(w->gt);
	free(w->gd);
	free(w->cbuf);
	free(w);
	img->priv = NULL;
}
