/* qcow2-write.c - write qcow2 version 3 (compat 1.1) images.
 *
 * The convert engine writes in increasing guest order, never twice, and
 * leaves zero runs unwritten, so host clusters are simply appended:
 *
 *   cluster 0            header + extensions (written last, by finish)
 *   next R0 clusters     refcount blocks covering the fixed metadata
 *   next T clusters      refcount table (sized at create for the worst case)
 *   next L clusters      L1 table (written by finish)
 *   then, appended       data clusters, packed compressed data, L2 tables
 *                        (kept in memory, flushed when they pass 32 MiB
 *                        and at finish) and the other refcount blocks
 *
 * A refcount block covers E = cluster_size * 8 / refcount_bits clusters.
 * Only the block of the range being filled is in memory; when allocation
 * enters the next range the finished block is written into the first
 * cluster of the new range.  Contiguous guest writes become single
 * pwrite()s, issued by a background thread from a copy (4 slots of 4 MiB)
 * so that writing overlaps the engine's next read; packed compressed data
 * and metadata go through a small write-combining buffer.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* fallocate */
#endif
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "formats/deflate.h"
#include "formats/qcow2.h"

#define L2_MEM_CAP (32u << 20)
#define WBUF_SIZE (1u << 20)
#define HEADER_LEN 112

const char *const scimg_int_qcow2_create_opts[] = {
	"cluster_size", "compression_type", "refcount_bits", "lazy_refcounts",
	"preallocation", "compat", "backing_file", "backing_fmt", NULL
};

struct q2w {
	uint64_t cs;
	uint32_t cb;
	uint32_t l2_bits;
	uint32_t refcount_order;
	uint64_t refcount_max;
	uint32_t rb_bits;          /* log2 of clusters per refcount block */
	uint32_t compression_type;
	int lazy;
	int v2;                    /* compat=0.10: qcow2 version 2 */
	int prealloc;              /* PREALLOC_* */
	uint64_t pa_start, pa_len; /* run of preallocated data clusters (bytes) */
	const char *backing;       /* backing_file= (scimg create only), or NULL */
	const char *backing_fmt;   /* backing_fmt=, or NULL */

	uint64_t l1_size;
	uint64_t *l1;              /* L2 table offset | COPIED, host order */
	uint8_t **l2;              /* in-memory L2 tables (big endian) */
	uint64_t l1_offset;
	uint64_t l2_live;          /* tables in memory */
	uint64_t l2_lo;            /* no live table below this index */

	uint64_t reft_offset;
	uint64_t reft_clusters;
	uint64_t reft_n;           /* capacity in entries */
	uint64_t *reft;            /* host order */

	uint64_t next;             /* next free cluster index */
	uint64_t rb_range;         /* range whose block is in rb */
	uint8_t *rb;               /* refcount block being filled */

	uint64_t cbyte;            /* where packed compressed data continues; 0 = none */

	uint8_t *wbuf;             /* write combining for metadata / packed data */
	uint64_t wbuf_off;
	size_t wbuf_len;
};

enum { PREALLOC_OFF, PREALLOC_METADATA, PREALLOC_FALLOC, PREALLOC_FULL };

/* ---- refcounts ------------------------------------------------------- */

static uint64_t rc_get(const struct q2w *w, uint64_t idx)
{
	unsigned o = w->refcount_order;
	const uint8_t *b = w->rb;

	switch (o) {
	case 0: case 1: case 2: {
		unsigned bits = 1u << o, per = 8 / bits;
		return (b[idx / per] >> (bits * (idx % per))) & ((1u << bits) - 1);
	}
	case 3: return b[idx];
	case 4: return scimg_be16(b + idx * 2);
	case 5: return scimg_be32(b + idx * 4);
	default: return scimg_be64(b + idx * 8);
	}
}

static void rc_set(struct q2w *w, uint64_t idx, uint64_t v)
{
	unsigned o = w->refcount_order;
	uint8_t *b = w->rb;

	switch (o) {
	case 0: case 1: case 2: {
		unsigned bits = 1u << o, per = 8 / bits, sh = bits * (unsigned)(idx % per);
		uint8_t m = (uint8_t)(((1u << bits) - 1) << sh);
		b[idx / per] = (uint8_t)((b[idx / per] & ~m) | ((v << sh) & m));
		break;
	}
	case 3: b[idx] = (uint8_t)v; break;
	case 4: scimg_put_be16(b + idx * 2, (uint16_t)v); break;
	case 5: scimg_put_be32(b + idx * 4, (uint32_t)v); break;
	default: scimg_put_be64(b + idx * 8, v); break;
	}
}

static uint64_t rb_index(const struct q2w *w, uint64_t c)
{
	return c & ((UINT64_C(1) << w->rb_bits) - 1);
}

static uint64_t div_up_u64(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

/* ---- output ----------------------------------------------------------- */

static int wbuf_flush(struct scimg_image *img)
{
	struct q2w *w = img->priv;
	int ret = 0;

	if (w->wbuf_len)
		ret = scimg_int_out_pwrite(img, w->wbuf, w->wbuf_len, w->wbuf_off);
	w->wbuf_len = 0;
	return ret;
}

/* Write through the combining buffer (small writes at increasing offsets). */
static int wbuf_write(struct scimg_image *img, const void *buf, size_t len,
		      uint64_t off)
{
	struct q2w *w = img->priv;
	int ret;

	if (w->wbuf_len && (w->wbuf_off + w->wbuf_len != off ||
			    w->wbuf_len + len > WBUF_SIZE)) {
		if ((ret = wbuf_flush(img)) < 0)
			return ret;
	}
	if (len > WBUF_SIZE)
		return scimg_int_out_pwrite(img, buf, len, off);
	if (!w->wbuf_len)
		w->wbuf_off = off;
	memcpy(w->wbuf + w->wbuf_len, buf, len);
	w->wbuf_len += len;
	return 0;
}

/* ---- allocation ------------------------------------------------------- */

static int too_big(struct scimg_image *img)
{
	struct q2w *w = img->priv;
	return scimg_int_err(img->ctx, -EFBIG,
			     "'%s': qcow2 output outgrew its refcount table (%llu clusters of %llu bytes); use a larger cluster_size",
			     img->path, (unsigned long long)w->reft_clusters,
			     (unsigned long long)w->cs);
}

/* Cluster *C (== w->next) lies past the open refcount range: write the
 * finished block (into *C itself if it has no place yet, which then
 * belongs to the new range) and open *C's range. */
static int enter_range(struct scimg_image *img, uint64_t *c)
{
	struct q2w *w = img->priv;
	uint64_t old = w->rb_range, nr = *c >> w->rb_bits;
	int place_here = w->reft[old] == 0;
	int ret;

	if (nr >= w->reft_n)
		return too_big(img);
	if (place_here)
		w->reft[old] = *c * w->cs;
	ret = scimg_int_out_pwrite(img, w->rb, (size_t)w->cs, w->reft[old]);
	if (ret < 0)
		return ret;
	memset(w->rb, 0, (size_t)w->cs);
	w->rb_range = nr;
	if (place_here) {
		rc_set(w, rb_index(w, *c), 1);
		(*c)++;
		w->next = *c;
	}
	return 0;
}

/* Allocate the next host cluster (refcount 1) into *OUT (a cluster index).
 * Entering a new refcount range writes the finished block first. */
static int alloc_cluster(struct scimg_image *img, uint64_t *out)
{
	struct q2w *w = img->priv;
	uint64_t c = w->next;
	int ret;

	if ((c >> w->rb_bits) != w->rb_range && (ret = enter_range(img, &c)) < 0)
		return ret;
	rc_set(w, rb_index(w, c), 1);
	w->next = c + 1;
	*out = c;
	return 0;
}

/* ---- L2 tables -------------------------------------------------------- */

/* Preallocation: make the data clusters of the run [pa_start, +pa_len)
 * take space (falloc) or hold zeros (full). */
static int prealloc_run(struct scimg_image *img)
{
	struct q2w *w = img->priv;
	uint64_t off = w->pa_start, len = w->pa_len;
	uint8_t *z;
	int ret = 0;

	w->pa_len = 0;
	if (!len || w->prealloc == PREALLOC_METADATA)
		return 0;
	if (w->prealloc == PREALLOC_FALLOC) {
		uint64_t start;
		if ((ret = scimg_int_sink_span(img->ctx, img->out, off, len, &start)) < 0)
			return ret;
		if (fallocate(img->out->fd, 0, (off_t)start, (off_t)len) == 0)
			return 0;
	}
	if (w->prealloc == PREALLOC_FALLOC && errno != EOPNOTSUPP && errno != ENOSYS)
		return scimg_int_err(img->ctx, -errno, "'%s': could not preallocate %llu bytes at %llu: %s",
				     img->path, (unsigned long long)len,
				     (unsigned long long)off, strerror(errno));
	/* full, or a file system without fallocate: write zeros */
	z = calloc(1, WBUF_SIZE);
	if (!z)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	while (len && ret == 0) {
		size_t n = len < WBUF_SIZE ? (size_t)len : WBUF_SIZE;
		ret = scimg_int_out_pwrite(img, z, n, off);
		off += n;
		len -= n;
	}
	free(z);
	return ret;
}

/* Preallocation: map every guest cluster table IDX covers that nothing
 * was written to, to a new (zero) host cluster. */
static int prealloc_table(struct scimg_image *img, uint64_t idx)
{
	struct q2w *w = img->priv;
	uint64_t per = UINT64_C(1) << w->l2_bits, g0 = idx * per, nclu, j, c;
	int ret;

	nclu = div_up_u64(img->size, w->cs);
	if (!w->l2[idx]) {
		w->l2[idx] = calloc(1, (size_t)w->cs);
		if (!w->l2[idx])
			return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		w->l2_live++;
	}
	w->cbyte = 0;
	for (j = 0; j < per && g0 + j < nclu; j++) {
		uint8_t *ep = w->l2[idx] + j * 8;
		if (scimg_be64(ep))
			continue;
		if ((ret = alloc_cluster(img, &c)) < 0)
			return ret;
		scimg_put_be64(ep, (c * w->cs) | Q2_OFLAG_COPIED);
		if (w->pa_len && w->pa_start + w->pa_len == c * w->cs) {
			w->pa_len += w->cs;
		} else {
			if ((ret = prealloc_run(img)) < 0)
				return ret;
			w->pa_start = c * w->cs;
			w->pa_len = w->cs;
		}
	}
	return prealloc_run(img);
}

static int flush_l2(struct scimg_image *img, uint64_t idx)
{
	struct q2w *w = img->priv;
	uint64_t c;
	int ret;

	if (w->prealloc && !w->l1[idx] && (ret = prealloc_table(img, idx)) < 0)
		return ret;
	if (!w->l2[idx])
		return 0;
	w->cbyte = 0;
	ret = alloc_cluster(img, &c);
	if (ret < 0)
		return ret;
	ret = wbuf_write(img, w->l2[idx], (size_t)w->cs, c * w->cs);
	if (ret < 0)
		return ret;
	w->l1[idx] = (c * w->cs) | Q2_OFLAG_COPIED;
	free(w->l2[idx]);
	w->l2[idx] = NULL;
	w->l2_live--;
	return 0;
}

/* The L2 table for guest cluster G, created if needed.  When tables in
 * memory pass the cap, those before G's (which no later write touches) are
 * written out. */
static int l2_for(struct scimg_image *img, uint64_t g, uint8_t **out)
{
	struct q2w *w = img->priv;
	uint64_t idx = g >> w->l2_bits;
	int ret;

	if (!w->l2[idx]) {
		if (w->l1[idx])
			return scimg_int_err(img->ctx, -EINVAL,
					     "'%s': qcow2 writer: guest offset %llu was written out of order",
					     img->path, (unsigned long long)(g * w->cs));
		if ((w->l2_live + 1) * w->cs > L2_MEM_CAP) {
			for (; w->l2_lo < idx; w->l2_lo++)
				if ((ret = flush_l2(img, w->l2_lo)) < 0)
					return ret;
		}
		w->l2[idx] = calloc(1, (size_t)w->cs);
		if (!w->l2[idx])
			return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		w->l2_live++;
	}
	*out = w->l2[idx];
	return 0;
}

/* ---- writes ----------------------------------------------------------- */

int scimg_int_qcow2_pwrite(struct scimg_image *img, const void *buf, size_t len,
			   uint64_t off)
{
	struct q2w *w = img->priv;
	const uint8_t *p = buf;
	const uint8_t *run_buf = NULL;
	uint64_t run_host = 0, run_len = 0;
	int ret;

	while (len) {
		uint64_t g = off >> w->cb, in = off & (w->cs - 1), n = w->cs - in;
		uint8_t *tab, *ep;
		uint64_t e, host;

		if (n > len)
			n = len;
		ret = l2_for(img, g, &tab);
		if (ret < 0)
			return ret;
		ep = tab + (g & ((UINT64_C(1) << w->l2_bits) - 1)) * 8;
		e = scimg_be64(ep);
		if (e & Q2_OFLAG_COMPRESSED)
			return scimg_int_err(img->ctx, -EINVAL,
					     "'%s': qcow2 writer: guest offset %llu was written twice",
					     img->path, (unsigned long long)off);
		if (!e) {
			uint64_t c;
			w->cbyte = 0;
			ret = alloc_cluster(img, &c);
			if (ret < 0)
				return ret;
			e = (c * w->cs) | Q2_OFLAG_COPIED;
			scimg_put_be64(ep, e);
		}
		host = (e & Q2_L2E_OFFSET_MASK) + in;
		if (run_len && run_host + run_len == host) {
			run_len += n;
		} else {
			if (run_len && (ret = scimg_int_out_pwrite(img, run_buf, (size_t)run_len,
							 run_host)) < 0)
				return ret;
			run_buf = p;
			run_host = host;
			run_len = n;
		}
		p += n;
		off += n;
		len -= (size_t)n;
	}
	if (run_len)
		return scimg_int_out_pwrite(img, run_buf, (size_t)run_len, run_host);
	return 0;
}

/* Make whole clusters [OFF, OFF+LEN) read as zeros over the backing file
 * (SCIMG_CREATE_BACKING): zero clusters in version 3, allocated zeros in
 * version 2, which has no zero flag.  Without a backing file an unwritten
 * cluster already reads as zeros: nothing to do. */
int scimg_int_qcow2_write_zeroes(struct scimg_image *img, uint64_t off, uint64_t len)
{
	struct q2w *w = img->priv;
	uint8_t *tab, *ep, *z = NULL;
	uint64_t end;
	int ret = 0;

	if (!w->backing || !len)
		return 0;
	end = off + len;
	if ((off & (w->cs - 1)) || ((end & (w->cs - 1)) && end != img->size))
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': qcow2 writer: zeros over a backing file at %llu (%llu bytes) are not whole clusters",
				     img->path, (unsigned long long)off, (unsigned long long)len);
	if (w->v2 && !(z = calloc(1, (size_t)w->cs)))
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	for (; off < end && ret == 0; off += w->cs) {
		uint64_t g = off >> w->cb;
		if ((ret = l2_for(img, g, &tab)) < 0)
			break;
		ep = tab + (g & ((UINT64_C(1) << w->l2_bits) - 1)) * 8;
		if (scimg_be64(ep)) {
			ret = scimg_int_err(img->ctx, -EINVAL,
					    "'%s': qcow2 writer: guest offset %llu was written twice",
					    img->path, (unsigned long long)off);
			break;
		}
		if (w->v2)
			ret = scimg_int_qcow2_pwrite(img, z, (size_t)(end - off < w->cs ? end - off : w->cs), off);
		else
			scimg_put_be64(ep, Q2_OFLAG_ZERO);
	}
	free(z);
	return ret;
}

uint32_t scimg_int_qcow2_compress_unit(struct scimg_image *img)
{
	struct q2w *w = img->priv;
	return (uint32_t)w->cs;
}

int scimg_int_qcow2_compress(struct scimg_image *img, const void *in, size_t len,
			     void *out, size_t *outlen)
{
	const struct q2w *w = img->priv;
	size_t cs = (size_t)w->cs;
	/* worth storing compressed only when it saves a sector or so (an
	 * eighth of a small cluster) */
	size_t limit = cs - (cs / 8 < 512 ? cs / 8 : 512) - 1;
	const uint8_t *src = in;
	uint8_t *tmp = NULL;
	int ret;

	if (len > cs || *outlen < limit)
		return -EINVAL;
	if (len < cs) {
		/* the last cluster of a disk whose size is not a multiple */
		tmp = calloc(1, cs);
		if (!tmp)
			return -ENOMEM;
		memcpy(tmp, in, len);
		src = tmp;
	}
	if (w->compression_type == Q2_COMPRESSION_ZLIB) {
		z_stream *s;
		int zr;

		/* data that not even a fast pass can shrink (random, or already
		 * compressed: packages, media) is stored as it is, which is also
		 * what a full-effort pass would end in; this saves most of the
		 * CPU on such clusters */
		if (!scimg_int_deflate_shrinks(src, cs, out, *outlen)) {
			free(tmp);
			return 1;
		}
		/* raw deflate with a 4 KiB window, as QEMU writes it (QEMU
		 * inflates with that window, so no wider one may be used) */
		s = scimg_int_thread_qcow2_zstream();
		if (!s) {
			free(tmp);
			return -ENOMEM;
		}
		s->next_in = (Bytef *)(uintptr_t)src;
		s->avail_in = (uInt)cs;
		s->next_out = out;
		s->avail_out = (uInt)limit;
		zr = deflate(s, Z_FINISH);
		if (zr == Z_STREAM_END) {
			*outlen = limit - s->avail_out;
			ret = 0;
		} else if (zr == Z_OK || zr == Z_BUF_ERROR) {
			ret = 1; /* does not shrink enough */
		} else {
			ret = -EIO;
		}
	} else {
		size_t r = ZSTD_compress(out, limit, src, cs, ZSTD_CLEVEL_DEFAULT);
		if (!ZSTD_isError(r)) {
			*outlen = r;
			ret = 0;
		} else if (ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall) {
			ret = 1;
		} else {
			ret = -EIO;
		}
	}
	free(tmp);
	return ret;
}

int scimg_int_qcow2_pwrite_compressed(struct scimg_image *img, uint64_t off,
				      const void *data, size_t clen, size_t len)
{
	struct q2w *w = img->priv;
	uint64_t g = off >> w->cb, start, c, e, nsec;
	unsigned x = 62 - (w->cb - 8);
	uint8_t *tab, *ep;
	int ret;

	(void)len;
	if (off & (w->cs - 1) || clen == 0 || clen >= w->cs)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': qcow2 writer: bad compressed write at %llu (%zu bytes)",
				     img->path, (unsigned long long)off, clen);
	ret = l2_for(img, g, &tab);
	if (ret < 0)
		return ret;
	ep = tab + (g & ((UINT64_C(1) << w->l2_bits) - 1)) * 8;
	if (scimg_be64(ep))
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': qcow2 writer: guest offset %llu was written twice",
				     img->path, (unsigned long long)off);

	start = 0;
	if (w->cbyte) {
		/* continue in the partly used cluster PC (the last allocated
		 * one) if its refcount allows, spilling at most into the next
		 * cluster when that stays in the same refcount range */
		uint64_t pc = w->cbyte >> w->cb;
		uint64_t endc = (w->cbyte + clen - 1) >> w->cb;

		if (pc == w->next - 1 && rc_get(w, rb_index(w, pc)) < w->refcount_max &&
		    (endc == pc || ((w->next >> w->rb_bits) == w->rb_range))) {
			rc_set(w, rb_index(w, pc), rc_get(w, rb_index(w, pc)) + 1);
			if (endc != pc) {
				ret = alloc_cluster(img, &c);
				if (ret < 0)
					return ret;
				if (c != pc + 1)
					return scimg_int_err(img->ctx, -EIO,
							     "'%s': qcow2 writer: internal error in compressed cluster placement",
							     img->path);
			}
			start = w->cbyte;
		}
	}
	if (!start) {
		ret = alloc_cluster(img, &c);
		if (ret < 0)
			return ret;
		start = c * w->cs;
	}
	ret = wbuf_write(img, data, clen, start);
	if (ret < 0)
		return ret;
	nsec = ((start + clen - 1) >> 9) - (start >> 9);
	e = start | (nsec << x) | Q2_OFLAG_COMPRESSED;
	scimg_put_be64(ep, e);
	w->cbyte = start + clen;
	if (!(w->cbyte & (w->cs - 1)))
		w->cbyte = 0; /* exactly filled */
	return 0;
}

/* ---- create / finish ------------------------------------------------- */

static int opt_bool(struct scimg_image *img, const char *key, const char *v, int *out)
{
	if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "yes"))
		*out = 1;
	else if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "no"))
		*out = 0;
	else
		return scimg_int_err(img->ctx, -EINVAL, "qcow2 option %s=%s: expected on or off", key, v);
	return 0;
}

static int header_fits(struct scimg_image *img);

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

static int parse_opts(struct scimg_image *img, const struct scimg_opts *opts,
		      struct q2w *w)
{
	const char *v;
	uint64_t cs = 65536, rb = 16;

	if ((v = scimg_int_opts_get(opts, "cluster_size"))) {
		if (scimg_int_parse_size(v, &cs) < 0 || cs < 512 || cs > (2u << 20) ||
		    (cs & (cs - 1)))
			return scimg_int_err(img->ctx, -EINVAL,
					     "qcow2 option cluster_size=%s: expected a power of two from 512 to 2M",
					     v);
	}
	if ((v = scimg_int_opts_get(opts, "refcount_bits"))) {
		char *end;
		unsigned long long r = strtoull(v, &end, 10);
		if (*end || !*v || r < 1 || r > 64 || (r & (r - 1)))
			return scimg_int_err(img->ctx, -EINVAL,
					     "qcow2 option refcount_bits=%s: expected 1, 2, 4, 8, 16, 32 or 64",
					     v);
		rb = r;
	}
	w->compression_type = Q2_COMPRESSION_ZLIB;
	if ((v = scimg_int_opts_get(opts, "compression_type"))) {
		if (!strcmp(v, "zlib"))
			w->compression_type = Q2_COMPRESSION_ZLIB;
		else if (!strcmp(v, "zstd"))
			w->compression_type = Q2_COMPRESSION_ZSTD;
		else
			return scimg_int_err(img->ctx, -EINVAL,
					     "qcow2 option compression_type=%s: expected zlib or zstd", v);
	}
	if ((v = scimg_int_opts_get(opts, "lazy_refcounts")) &&
	    opt_bool(img, "lazy_refcounts", v, &w->lazy) < 0)
		return -EINVAL;
	if ((v = scimg_int_opts_get(opts, "preallocation"))) {
		if (!strcmp(v, "off"))
			w->prealloc = PREALLOC_OFF;
		else if (!strcmp(v, "metadata"))
			w->prealloc = PREALLOC_METADATA;
		else if (!strcmp(v, "falloc"))
			w->prealloc = PREALLOC_FALLOC;
		else if (!strcmp(v, "full"))
			w->prealloc = PREALLOC_FULL;
		else
			return scimg_int_err(img->ctx, -EINVAL,
					     "qcow2 option preallocation=%s: expected off, metadata, falloc or full", v);
		if (w->prealloc && (img->create_flags & SCIMG_CREATE_COMPRESS))
			return scimg_int_err(img->ctx, -EINVAL,
					     "qcow2 option preallocation=%s cannot be combined with compression (-c)", v);
	}
	if ((v = scimg_int_opts_get(opts, "compat"))) {
		if (!strcmp(v, "0.10") || !strcmp(v, "v2"))
			w->v2 = 1;
		else if (strcmp(v, "1.1") && strcmp(v, "v3"))
			return scimg_int_err(img->ctx, -EINVAL,
					     "qcow2 option compat=%s: expected 0.10 (version 2) or 1.1 (version 3)",
					     v);
	}
	if (w->v2) {
		if (rb != 16)
			return scimg_int_err(img->ctx, -EINVAL,
					     "qcow2 option refcount_bits=%llu: compat=0.10 images have 16-bit refcounts",
					     (unsigned long long)rb);
		if (w->lazy)
			return scimg_int_err(img->ctx, -EINVAL,
					     "qcow2 option lazy_refcounts=on needs compat=1.1");
		if (w->compression_type != Q2_COMPRESSION_ZLIB)
			return scimg_int_err(img->ctx, -EINVAL,
					     "qcow2 option compression_type=zstd needs compat=1.1");
	}
	w->backing = scimg_int_opts_get(opts, "backing_file");
	w->backing_fmt = scimg_int_opts_get(opts, "backing_fmt");
	if (w->backing && !*w->backing)
		w->backing = NULL;
	if (w->backing_fmt && !*w->backing_fmt)
		w->backing_fmt = NULL;
	if (w->backing_fmt && !w->backing)
		return scimg_int_err(img->ctx, -EINVAL, "qcow2 option backing_fmt needs backing_file");
	if (w->backing && !(img->create_flags & SCIMG_CREATE_BACKING))
		return scimg_int_err(img->ctx, -ENOTSUP,
				     "qcow2 option backing_file: only an empty overlay (scimg create -b) or a convert with -B has a backing file");
	if (w->backing && w->prealloc)
		return scimg_int_err(img->ctx, -EINVAL,
				     "qcow2 options backing_file and preallocation: preallocated clusters would hide the backing file");
	if (w->backing && strlen(w->backing) > Q2_MAX_BACKING_NAME)
		return scimg_int_err(img->ctx, -ENAMETOOLONG,
				     "qcow2 option backing_file: the name is longer than %d bytes",
				     Q2_MAX_BACKING_NAME);
	if (w->backing_fmt && strlen(w->backing_fmt) > 15)
		return scimg_int_err(img->ctx, -EINVAL,
				     "qcow2 option backing_fmt=%s: not a format name", w->backing_fmt);
	w->cs = cs;
	w->cb = (uint32_t)__builtin_ctzll(cs);
	w->l2_bits = w->cb - 3;
	w->refcount_order = (uint32_t)__builtin_ctzll(rb);
	w->refcount_max = rb == 64 ? UINT64_MAX : (UINT64_C(1) << rb) - 1;
	w->rb_bits = w->cb + 3 - w->refcount_order;
	return 0;
}

int scimg_int_qcow2_create(struct scimg_image *img, const struct scimg_opts *opts)
{
	struct q2w *w;
	uint64_t data, l1c, T, H, R0, M, E, r;
	uint8_t *blk = NULL;
	int ret;

	w = calloc(1, sizeof(*w));
	if (!w)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	img->priv = w;
	ret = parse_opts(img, opts, w);
	if (ret < 0)
		goto fail;
	E = UINT64_C(1) << w->rb_bits;
	w->l1_size = div_up(img->size, w->cs << w->l2_bits);
	if (w->l1_size * 8 > Q2_MAX_L1_BYTES) {
		ret = scimg_int_err(img->ctx, -EFBIG,
				    "'%s': virtual size %llu is too large for qcow2 with cluster_size %llu (the L1 table would exceed 32 MiB); use a larger cluster_size",
				    img->path, (unsigned long long)img->size,
				    (unsigned long long)w->cs);
		goto fail;
	}
	l1c = div_up(w->l1_size * 8, w->cs);
	data = div_up(img->size, w->cs);
	/* refcount table big enough for the worst case: every cluster
	 * allocated, plus all metadata */
	T = 1;
	for (;;) {
		uint64_t ranges, need;
		H = 1 + T + l1c + data + w->l1_size;
		H += div_up(H, E - 1) + 2;
		ranges = div_up(H, E) + 1;
		need = div_up(ranges * 8, w->cs);
		if (need <= T)
			break;
		T = need;
	}
	if (T * w->cs > Q2_MAX_REFTABLE_BYTES) {
		ret = scimg_int_err(img->ctx, -EFBIG,
				    "'%s': virtual size %llu is too large for qcow2 with cluster_size %llu and refcount_bits %u (the refcount table would exceed 8 MiB); use a larger cluster_size",
				    img->path, (unsigned long long)img->size,
				    (unsigned long long)w->cs, 1u << w->refcount_order);
		goto fail;
	}
	w->reft_clusters = T;
	w->reft_n = T * w->cs / 8;
	/* fixed layout: header, R0 refcount blocks, refcount table, L1 */
	R0 = 1;
	for (;;) {
		M = 1 + R0 + T + l1c;
		if (div_up(M, E) <= R0)
			break;
		R0 = div_up(M, E);
	}
	w->reft_offset = (1 + R0) * w->cs;
	w->l1_offset = (1 + R0 + T) * w->cs;

	w->l1 = calloc(w->l1_size ? w->l1_size : 1, sizeof(uint64_t));
	w->l2 = calloc(w->l1_size ? w->l1_size : 1, sizeof(uint8_t *));
	w->reft = calloc(w->reft_n, sizeof(uint64_t));
	w->rb = calloc(1, w->cs);
	w->wbuf = malloc(WBUF_SIZE);
	blk = malloc(w->cs);
	if (!w->l1 || !w->l2 || !w->reft || !w->rb || !w->wbuf || !blk) {
		ret = scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		goto fail;
	}
	/* blocks of ranges 0 .. R0-2 are complete now; R0-1 stays open */
	for (r = 0; r < R0; r++) {
		uint64_t c, lo = r * E, hi = (r + 1) * E < M ? (r + 1) * E : M;
		uint8_t *save = w->rb;

		w->reft[r] = (1 + r) * w->cs;
		if (r + 1 < R0) {
			memset(blk, 0, w->cs);
			w->rb = blk;
		}
		for (c = lo; c < hi; c++)
			rc_set(w, c - lo, 1);
		w->rb = save;
		if (r + 1 < R0) {
			ret = scimg_int_out_pwrite(img, blk, (size_t)w->cs, w->reft[r]);
			if (ret < 0)
				goto fail;
		}
	}
	w->rb_range = R0 - 1;
	w->next = M;
	free(blk);
	blk = NULL;
	ret = header_fits(img);
	if (ret < 0)
		goto fail;
	return 0;
fail:
	free(blk);
	scimg_int_qcow2_wclose(img);
	return ret;
}

static void put_feature(uint8_t *p, uint8_t type, uint8_t bit, const char *name)
{
	memset(p, 0, 48);
	p[0] = type;
	p[1] = bit;
	memcpy(p + 2, name, strlen(name));
}

static size_t pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* Bytes of the header, its extensions and the backing file name; the
 * feature name table (informative only) is left out when FEATURES is 0. */
static size_t header_bytes(const struct q2w *w, int features)
{
	size_t n = w->v2 ? Q2_V2_HEADER_LEN : HEADER_LEN;

	if (w->backing_fmt)
		n += 8 + pad8(strlen(w->backing_fmt));
	if (!w->v2 && features)
		n += 8 + 8 * 48;
	n += 8; /* end of extensions */
	if (w->backing)
		n += strlen(w->backing);
	return n;
}

/* Whether the header fits the first cluster (checked at create). */
static int header_fits(struct scimg_image *img)
{
	struct q2w *w = img->priv;

	if (header_bytes(w, 0) > w->cs)
		return scimg_int_err(img->ctx, -ENAMETOOLONG,
				     "'%s': the qcow2 header with backing file '%s' needs %zu bytes, more than the first cluster (%llu bytes); use a larger cluster_size or a shorter name",
				     img->path, w->backing ? w->backing : "",
				     header_bytes(w, 0), (unsigned long long)w->cs);
	return 0;
}

static int write_header(struct scimg_image *img)
{
	struct q2w *w = img->priv;
	static const struct { uint8_t type, bit; const char *name; } feats[] = {
		{ 0, 0, "dirty bit" },
		{ 0, 1, "corrupt bit" },
		{ 0, 2, "external data file" },
		{ 0, 3, "compression type" },
		{ 0, 4, "extended L2 entries" },
		{ 1, 0, "lazy refcounts" },
		{ 2, 0, "bitmaps" },
		{ 2, 1, "raw external data" },
	};
	int features = header_bytes(w, 1) <= w->cs;
	size_t i, o, len = header_bytes(w, features);
	uint8_t *h;
	int ret;

	if ((ret = header_fits(img)) < 0)
		return ret;
	h = calloc(1, len < 512 ? 512 : len);
	if (!h)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	scimg_put_be32(h, Q2_MAGIC);
	scimg_put_be32(h + 4, w->v2 ? 2 : 3);
	scimg_put_be32(h + 20, w->cb);
	/* QEMU counts qcow2 disks in 512-byte sectors and would drop a partial
	 * last sector, so the size is rounded up (as qemu-img does) */
	scimg_put_be64(h + 24, (img->size + 511) & ~UINT64_C(511));
	scimg_put_be32(h + 36, (uint32_t)w->l1_size);
	scimg_put_be64(h + 40, w->l1_offset);
	scimg_put_be64(h + 48, w->reft_offset);
	scimg_put_be32(h + 56, (uint32_t)w->reft_clusters);
	if (w->v2) {
		o = Q2_V2_HEADER_LEN;
	} else {
		scimg_put_be64(h + 72, w->compression_type ? Q2_INCOMPAT_COMPRESSION : 0);
		scimg_put_be64(h + 80, w->lazy ? Q2_COMPAT_LAZY_REFCOUNTS : 0);
		scimg_put_be32(h + 96, w->refcount_order);
		scimg_put_be32(h + 100, HEADER_LEN);
		h[104] = (uint8_t)w->compression_type;
		o = HEADER_LEN;
	}
	if (w->backing_fmt) {
		size_t n = strlen(w->backing_fmt);
		scimg_put_be32(h + o, Q2_EXT_BACKING_FORMAT);
		scimg_put_be32(h + o + 4, (uint32_t)n);
		memcpy(h + o + 8, w->backing_fmt, n);
		o += 8 + pad8(n);
	}
	if (!w->v2 && features) {
		scimg_put_be32(h + o, Q2_EXT_FEATURE_TABLE);
		scimg_put_be32(h + o + 4, (uint32_t)(SCIMG_ARRAY_SIZE(feats) * 48));
		o += 8;
		for (i = 0; i < SCIMG_ARRAY_SIZE(feats); i++, o += 48)
			put_feature(h + o, feats[i].type, feats[i].bit, feats[i].name);
	}
	o += 8; /* end marker: 8 zero bytes, already there */
	if (w->backing) {
		scimg_put_be64(h + 8, o);
		scimg_put_be32(h + 16, (uint32_t)strlen(w->backing));
		memcpy(h + o, w->backing, strlen(w->backing));
	}
	ret = scimg_int_out_pwrite(img, h, len < 512 ? 512 : len, 0);
	free(h);
	return ret;
}

int scimg_int_qcow2_finish(struct scimg_image *img)
{
	struct q2w *w = img->priv;
	uint64_t i, c;
	uint8_t *tab = NULL;
	int ret;

	for (i = 0; i < w->l1_size; i++)
		if ((ret = flush_l2(img, i)) < 0)
			return ret;
	if ((ret = wbuf_flush(img)) < 0)
		return ret;
	/* place and write the block of the open refcount range */
	while (!w->reft[w->rb_range]) {
		c = w->next;
		if ((c >> w->rb_bits) != w->rb_range) {
			if ((ret = enter_range(img, &c)) < 0)
				return ret;
			continue;
		}
		rc_set(w, rb_index(w, c), 1);
		w->reft[w->rb_range] = c * w->cs;
		w->next = c + 1;
	}
	ret = scimg_int_out_pwrite(img, w->rb, (size_t)w->cs, w->reft[w->rb_range]);
	if (ret < 0)
		return ret;

	/* L1 and refcount table, big endian */
	{
		size_t l1b = (size_t)w->l1_size * 8, rtb = (size_t)(w->reft_clusters * w->cs);
		size_t n = l1b > rtb ? l1b : rtb;
		tab = malloc(n ? n : 1);
		if (!tab)
			return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		for (i = 0; i < w->l1_size; i++)
			scimg_put_be64(tab + i * 8, w->l1[i]);
		if (l1b && (ret = scimg_int_out_pwrite(img, tab, l1b, w->l1_offset)) < 0)
			goto out;
		for (i = 0; i < w->reft_n; i++)
			scimg_put_be64(tab + i * 8, w->reft[i]);
		if ((ret = scimg_int_out_pwrite(img, tab, rtb, w->reft_offset)) < 0)
			goto out;
	}
	ret = write_header(img);
	if (ret < 0)
		goto out;
	ret = scimg_int_out_truncate(img, w->next * w->cs);
out:
	free(tab);
	return ret;
}

void scimg_int_qcow2_wclose(struct scimg_image *img)
{
	struct q2w *w = img->priv;
	uint64_t i;

	if (!w)
		return;
	if (w->l2)
		for (i = 0; i < w->l1_size; i++)
			free(w->l2[i]);
	free(w->l2);
	free(w->l1);
	free(w->reft);
	free(w->rb);
	free(w->wbuf);
	free(w);
	img->priv = NULL;
}
