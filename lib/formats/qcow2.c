/* formats/qcow2.c - QEMU copy-on-write images, versions 2 and 3.
 *
 * Reading: compressed clusters (zlib/deflate and zstd), extended L2
 * entries (32 subclusters per cluster), backing chains, external data
 * files, internal snapshots (listed by info), every refcount width.
 * Metadata is validated before use: the header in qcow2-header.c, the L1
 * table when the image is opened, each L2 entry when it is used.  Memory
 * stays bounded: L2 tables go through a small LRU cache, decompression is
 * capped at one cluster.
 *
 * pread and block_status may run on several threads at once
 * (SCIMG_FMT_PARALLEL_READ): the L2 cache and the one-cluster cache of
 * partial compressed reads are guarded by a mutex; whole compressed
 * clusters inflate straight into the caller's buffer with a scratch
 * context taken from a small pool; a backing image whose format cannot be
 * read in parallel, and byte sources that are not thread-safe, are read
 * one call at a time.
 *
 * Writing (compat 1.1) lives in qcow2-write.c.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "formats/formats.h"
#include "formats/qcow2.h"

#define L2_CACHE_BYTES (16u << 20)
#define L2_CACHE_MIN 4
#define L2_CACHE_MAX 64
/* info scans L2 tables for compressed clusters when they are this small */
#define INFO_SCAN_BYTES (16u << 20)
/* block_status walks at most this many clusters per call */
#define STATUS_MAX_CLUSTERS 65536

enum q2_type { T_UNALLOC, T_ZERO, T_DATA, T_COMPRESSED };

struct q2_run {
	enum q2_type type;
	uint64_t len;     /* bytes from the asked offset with this mapping */
	uint64_t host;    /* T_DATA: host offset of the asked byte */
	uint64_t centry;  /* T_COMPRESSED: the L2 entry */
};

struct q2_l2slot {
	uint64_t off;     /* file offset of the table, 0 = empty slot */
	uint64_t used;    /* LRU tick */
	uint8_t *data;
};

struct q2_snap {
	char *id;
	char *name;
	uint64_t l1_offset;
	uint32_t l1_size;
	uint32_t date_sec;
	uint32_t date_nsec;
	uint64_t vm_clock_nsec;
	uint64_t vm_state_size;
	uint64_t disk_size;
	int has_disk_size;
	uint64_t icount;
	int has_icount;
};

/* What inflating a cluster needs; one per reading thread, pooled. */
struct q2_scratch {
	struct q2_scratch *next;
	uint8_t *cin;              /* compressed input, 2 clusters */
	z_stream zs;
	int zs_init;
	ZSTD_DCtx *zd;
};

struct q2_range {
	uint64_t start;
	uint64_t len;
	const char *what;
};

struct q2 {
	struct q2_header h;
	uint64_t cs;
	uint32_t cb;
	uint32_t l2_bits;
	uint32_t esize;            /* bytes per L2 entry: 8 or 16 */
	uint32_t sc_bits;          /* log2 of the subcluster size (extended L2) */

	uint64_t *l1;              /* validated L2 table offsets, 0 = none */
	uint64_t l1_n;
	uint64_t *l2_sorted;       /* the non-zero ones, sorted */
	size_t n_l2;
	struct q2_range meta[3];   /* L1 table, refcount table, snapshot table */
	int nmeta;

	struct q2_l2slot *cache;
	size_t ncache;
	size_t last_slot;
	uint64_t tick;

	struct scimg_source *data; /* where guest clusters live */
	struct scimg_source *ext;  /* external data file (owned), or NULL */
	char *ext_path;
	struct scimg_image *backing;

	/* the last decompressed cluster (partial reads), under LOCK */
	uint8_t *cout;
	uint64_t cout_entry;       /* L2 entry whose data is in cout */
	int cout_valid;
	struct q2_scratch *pool;   /* idle scratch contexts, under LOCK */

	/* guards cache, tick, last_slot, cout*, pool */
	pthread_mutex_t lock;
	int lock_init;
	/* a byte source that is not thread-safe takes part: whole reads go
	 * one at a time under IO_LOCK */
	int serialize;
	/* the backing image cannot be read from several threads: its reads
	 * go one at a time under BACKING_LOCK */
	int backing_serial;
	pthread_mutex_t io_lock;
	pthread_mutex_t backing_lock;

	struct q2_snap *snaps;
	uint32_t nsnaps;
};

/* ---- probe ------------------------------------------------------------- */

static int q2_probe(const struct scimg_probe *p)
{
	uint32_t v, cb;

	if (p->head_len < Q2_V2_HEADER_LEN || scimg_be32(p->head) != Q2_MAGIC)
		return 0;
	v = scimg_be32(p->head + 4);
	if (v != 2 && v != 3)
		return 0; /* qcow version 1 is another format */
	cb = scimg_be32(p->head + 20);
	if (cb < Q2_MIN_CLUSTER_BITS || cb > Q2_MAX_CLUSTER_BITS)
		return 60;
	return 100;
}

/* ---- helpers ----------------------------------------------------------- */

static int in_range(const struct q2_range *r, uint64_t off, uint64_t len)
{
	return r->len && off < r->start + r->len && r->start < off + len;
}

/* Is the cluster at HOST one of the L2 tables? */
static int is_l2_table(const struct q2 *q, uint64_t host)
{
	size_t lo = 0, hi = q->n_l2;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (q->l2_sorted[mid] == host)
			return 1;
		if (q->l2_sorted[mid] < host)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Read LEN bytes at HOST of SRC; bytes past the end of SRC read as zeros
 * (the last cluster of a file may be short). */
static int read_clamped(struct scimg_source *src, void *buf, uint64_t len,
			uint64_t host, const char *what)
{
	uint64_t avail = host < src->size ? src->size - host : 0;

	if (avail > len)
		avail = len;
	if (avail) {
		int ret = scimg_int_source_read(src, buf, (size_t)avail, host, what);
		if (ret < 0)
			return ret;
	}
	if (avail < len)
		memset((uint8_t *)buf + avail, 0, (size_t)(len - avail));
	return 0;
}

/* ---- L2 tables --------------------------------------------------------- */

/* The table at L2O through the cache; the caller holds q->lock, and the
 * table stays valid only until it lets go. */
static int l2_get(struct scimg_image *img, uint64_t l2o, const uint8_t **out)
{
	struct q2 *q = img->priv;
	struct q2_l2slot *s;
	size_t i, victim = 0;
	int ret;

	s = &q->cache[q->last_slot];
	if (s->off == l2o) {
		*out = s->data;
		return 0;
	}
	for (i = 0; i < q->ncache; i++) {
		s = &q->cache[i];
		if (s->off == l2o) {
			s->used = ++q->tick;
			q->last_slot = i;
			*out = s->data;
			return 0;
		}
		if (s->used < q->cache[victim].used)
			victim = i;
	}
	s = &q->cache[victim];
	if (!s->data) {
		s->data = malloc(q->cs);
		if (!s->data)
			return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	}
	s->off = 0;
	ret = scimg_int_source_read(img->src, s->data, q->cs, l2o, "qcow2 L2 table");
	if (ret < 0)
		return ret;
	s->off = l2o;
	s->used = ++q->tick;
	q->last_slot = victim;
	*out = s->data;
	return 0;
}

static int bad_l2(struct scimg_image *img, uint64_t l2o, uint64_t idx,
		  uint64_t e, uint64_t guest, const char *why)
{
	return scimg_int_err(img->ctx, -EINVAL,
			     "'%s': qcow2 L2 entry %llu of the table at offset %llu (file offset %llu, guest offset %llu) is 0x%016llx: %s",
			     img->path, (unsigned long long)idx, (unsigned long long)l2o,
			     (unsigned long long)(l2o + idx * ((struct q2 *)img->priv)->esize),
			     (unsigned long long)guest, (unsigned long long)e, why);
}

/* Check that the data cluster at HOST may be read. */
static int check_data_cluster(struct scimg_image *img, uint64_t l2o, uint64_t idx,
			      uint64_t e, uint64_t guest, uint64_t host)
{
	struct q2 *q = img->priv;
	char why[160];
	int i;

	if (host % q->cs)
		return bad_l2(img, l2o, idx, e, guest, "data cluster offset is not a multiple of the cluster size");
	if (host >= q->data->size) {
		snprintf(why, sizeof(why), "data cluster at %llu lies past the end of %s (%llu bytes)",
			 (unsigned long long)host, q->ext ? "the external data file" : "the file",
			 (unsigned long long)q->data->size);
		return bad_l2(img, l2o, idx, e, guest, why);
	}
	if (q->ext)
		return 0;
	if (host < q->cs)
		return bad_l2(img, l2o, idx, e, guest, "data cluster overlaps the header");
	for (i = 0; i < q->nmeta; i++) {
		if (in_range(&q->meta[i], host, q->cs)) {
			snprintf(why, sizeof(why), "data cluster at %llu overlaps the %s",
				 (unsigned long long)host, q->meta[i].what);
			return bad_l2(img, l2o, idx, e, guest, why);
		}
	}
	if (is_l2_table(q, host)) {
		snprintf(why, sizeof(why), "data cluster at %llu is an L2 table",
			 (unsigned long long)host);
		return bad_l2(img, l2o, idx, e, guest, why);
	}
	return 0;
}

/* Describe the guest bytes at OFF (at most MAXLEN of them) that share one
 * kind of mapping, without leaving the cluster (or, for an unallocated L2
 * table, the range it would cover). */
static int q2_lookup(struct scimg_image *img, uint64_t off, uint64_t maxlen,
		     struct q2_run *r)
{
	struct q2 *q = img->priv;
	uint64_t cidx = off >> q->cb, in = off & (q->cs - 1);
	uint64_t l1i = cidx >> q->l2_bits, l2i, l2o, e = 0, bm = 0, host, clen;
	const uint8_t *tab;
	int ret, allocated;

	memset(r, 0, sizeof(*r));
	l2o = l1i < q->l1_n ? q->l1[l1i] : 0;
	if (!l2o) {
		uint64_t end = (l1i + 1) << (q->cb + q->l2_bits);
		r->type = T_UNALLOC;
		r->len = end - off < maxlen ? end - off : maxlen;
		return 0;
	}
	l2i = cidx & ((UINT64_C(1) << q->l2_bits) - 1);
	pthread_mutex_lock(&q->lock);
	ret = l2_get(img, l2o, &tab);
	if (ret == 0) {
		e = scimg_be64(tab + l2i * q->esize);
		if (q->h.extended_l2)
			bm = scimg_be64(tab + l2i * q->esize + 8);
	}
	pthread_mutex_unlock(&q->lock);
	if (ret < 0)
		return ret;
	clen = q->cs - in;
	if (clen > maxlen)
		clen = maxlen;

	if (e & Q2_OFLAG_COMPRESSED) {
		unsigned x = 62 - (q->cb - 8);
		uint64_t coff = e & ((UINT64_C(1) << x) - 1);

		if (q->ext)
			return bad_l2(img, l2o, l2i, e, off, "compressed cluster in an image with an external data file");
		if (bm)
			return bad_l2(img, l2o, l2i, e, off, "compressed cluster with a non-zero subcluster bitmap");
		if (coff >> 56)
			return bad_l2(img, l2o, l2i, e, off, "compressed cluster offset has reserved bits set");
		if (coff < q->cs || coff >= img->src->size)
			return bad_l2(img, l2o, l2i, e, off, "compressed data lies outside the file (or in the header)");
		r->type = T_COMPRESSED;
		r->centry = e;
		r->len = clen;
		return 0;
	}
	if (e & Q2_L2E_RESERVED)
		return bad_l2(img, l2o, l2i, e, off, "reserved bits are set");
	if (q->h.extended_l2 && (e & Q2_OFLAG_ZERO))
		return bad_l2(img, l2o, l2i, e, off, "bit 0 (zero flag) is set in an extended L2 entry, expected the subcluster bitmap");
	host = e & Q2_L2E_OFFSET_MASK;
	allocated = host || (q->ext && (e & Q2_OFLAG_COPIED));

	if (!q->h.extended_l2) {
		if (e & Q2_OFLAG_ZERO) {
			r->type = T_ZERO;
		} else if (!allocated) {
			r->type = T_UNALLOC;
		} else {
			ret = check_data_cluster(img, l2o, l2i, e, off, host);
			if (ret < 0)
				return ret;
			r->type = T_DATA;
			r->host = host + in;
		}
		r->len = clen;
		return 0;
	} else {
		uint32_t alloc = (uint32_t)bm, zero = (uint32_t)(bm >> 32);
		unsigned sc = (unsigned)(in >> q->sc_bits), n;
		enum q2_type t;

		if (alloc & zero)
			return bad_l2(img, l2o, l2i, e, off, "subclusters are marked both allocated and zero");
		if (alloc && !allocated)
			return bad_l2(img, l2o, l2i, e, off, "subclusters are allocated but the cluster has no offset");
#define SC_TYPE(i) ((alloc >> (i)) & 1 ? T_DATA : (zero >> (i)) & 1 ? T_ZERO : T_UNALLOC)
		t = SC_TYPE(sc);
		for (n = sc + 1; n < Q2_SUBCLUSTERS && SC_TYPE(n) == t; n++)
			;
#undef SC_TYPE
		if (t == T_DATA) {
			ret = check_data_cluster(img, l2o, l2i, e, off, host);
			if (ret < 0)
				return ret;
			r->host = host + in;
		}
		r->type = t;
		r->len = ((uint64_t)n << q->sc_bits) - in;
		if (r->len > maxlen)
			r->len = maxlen;
		return 0;
	}
}

/* ---- compressed clusters ---------------------------------------------- */

static void scratch_free(struct q2_scratch *z)
{
	if (!z)
		return;
	free(z->cin);
	if (z->zs_init)
		inflateEnd(&z->zs);
	ZSTD_freeDCtx(z->zd);
	free(z);
}

/* An idle scratch context from the pool, or a new one. */
static struct q2_scratch *scratch_get(struct scimg_image *img)
{
	struct q2 *q = img->priv;
	struct q2_scratch *z;

	pthread_mutex_lock(&q->lock);
	z = q->pool;
	if (z)
		q->pool = z->next;
	pthread_mutex_unlock(&q->lock);
	if (z)
		return z;
	z = calloc(1, sizeof(*z));
	if (z)
		z->cin = malloc(2 * q->cs);
	if (!z || !z->cin) {
		free(z);
		scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		return NULL;
	}
	return z;
}

static void scratch_put(struct q2 *q, struct q2_scratch *z)
{
	if (!z)
		return;
	pthread_mutex_lock(&q->lock);
	z->next = q->pool;
	q->pool = z;
	pthread_mutex_unlock(&q->lock);
}

/* Inflate the compressed cluster of L2 entry E (guest offset GUEST, for
 * messages) into OUT (one cluster) with scratch Z. */
static int q2_decompress(struct scimg_image *img, struct q2_scratch *z,
			 uint64_t e, uint64_t guest, uint8_t *out)
{
	struct q2 *q = img->priv;
	unsigned x = 62 - (q->cb - 8);
	uint64_t coff = e & ((UINT64_C(1) << x) - 1);
	uint64_t nsec = ((e >> x) & ((UINT64_C(1) << (q->cb - 8)) - 1)) + 1;
	uint64_t csize = nsec * 512 - (coff & 511);
	uint64_t avail;
	int ret;

	avail = img->src->size - coff; /* coff < size was checked */
	if (csize > avail)
		csize = avail;
	ret = scimg_int_source_read(img->src, z->cin, (size_t)csize, coff,
				    "qcow2 compressed cluster");
	if (ret < 0)
		return ret;
	if (q->h.compression_type == Q2_COMPRESSION_ZLIB) {
		int zr;
		if (!z->zs_init) {
			memset(&z->zs, 0, sizeof(z->zs));
			if (inflateInit2(&z->zs, -15) != Z_OK)
				return scimg_int_err(img->ctx, -ENOMEM, "out of memory (zlib)");
			z->zs_init = 1;
		} else if (inflateReset(&z->zs) != Z_OK) {
			return scimg_int_err(img->ctx, -EIO, "zlib reset failed");
		}
		z->zs.next_in = z->cin;
		z->zs.avail_in = (uInt)csize;
		z->zs.next_out = out;
		z->zs.avail_out = (uInt)q->cs;
		zr = inflate(&z->zs, Z_FINISH);
		if (!((zr == Z_STREAM_END || zr == Z_BUF_ERROR || zr == Z_OK) &&
		      z->zs.avail_out == 0))
			return scimg_int_err(img->ctx, -EIO,
					     "'%s': qcow2 compressed cluster at file offset %llu (guest offset %llu) does not inflate to a full cluster (zlib: %s)",
					     img->path, (unsigned long long)coff,
					     (unsigned long long)guest,
					     z->zs.msg ? z->zs.msg : "data ends early");
	} else {
		ZSTD_inBuffer in = { z->cin, (size_t)csize, 0 };
		ZSTD_outBuffer zo = { out, (size_t)q->cs, 0 };
		size_t zr = 1;

		if (!z->zd) {
			z->zd = ZSTD_createDCtx();
			if (!z->zd)
				return scimg_int_err(img->ctx, -ENOMEM, "out of memory (zstd)");
		} else {
			ZSTD_DCtx_reset(z->zd, ZSTD_reset_session_only);
		}
		while (zo.pos < zo.size) {
			size_t ip = in.pos, op = zo.pos;
			zr = ZSTD_decompressStream(z->zd, &zo, &in);
			if (ZSTD_isError(zr) || (in.pos <= ip && zo.pos <= op))
				break;
		}
		if (ZSTD_isError(zr) || zo.pos < zo.size || zr != 0)
			return scimg_int_err(img->ctx, -EIO,
					     "'%s': qcow2 compressed cluster at file offset %llu (guest offset %llu) does not decompress to exactly one cluster (zstd: %s)",
					     img->path, (unsigned long long)coff,
					     (unsigned long long)guest,
					     ZSTD_isError(zr) ? ZSTD_getErrorName(zr) : "size mismatch");
	}
	return 0;
}

/* Copy LEN bytes at GUEST (inside the compressed cluster of entry E) into
 * BUF: a whole cluster inflates straight into BUF, part of one goes
 * through the one-cluster cache. */
static int read_compressed(struct scimg_image *img, uint64_t e, uint64_t guest,
			   uint8_t *buf, size_t len)
{
	struct q2 *q = img->priv;
	size_t in = (size_t)(guest & (q->cs - 1));
	struct q2_scratch *z;
	int ret = 0;

	if (in == 0 && len == q->cs) {
		if (!(z = scratch_get(img)))
			return -ENOMEM;
		ret = q2_decompress(img, z, e, guest, buf);
		scratch_put(q, z);
		return ret;
	}
	pthread_mutex_lock(&q->lock);
	if (!q->cout_valid || q->cout_entry != e) {
		q->cout_valid = 0;
		pthread_mutex_unlock(&q->lock);
		/* scratch_get takes the lock itself */
		if (!(z = scratch_get(img)))
			return -ENOMEM;
		pthread_mutex_lock(&q->lock);
		if (!q->cout_valid || q->cout_entry != e) {
			ret = q2_decompress(img, z, e, guest, q->cout);
			if (ret == 0) {
				q->cout_entry = e;
				q->cout_valid = 1;
			}
		}
		z->next = q->pool;
		q->pool = z;
	}
	if (ret == 0)
		memcpy(buf, q->cout + in, len);
	pthread_mutex_unlock(&q->lock);
	return ret;
}

/* ---- reading ----------------------------------------------------------- */

static int read_backing(struct scimg_image *img, uint8_t *buf, uint64_t len,
			uint64_t off)
{
	struct q2 *q = img->priv;
	uint64_t n = 0;

	if (q->backing && off < q->backing->size) {
		n = q->backing->size - off;
		if (n > len)
			n = len;
		if (q->backing_serial)
			pthread_mutex_lock(&q->backing_lock);
		int ret = scimg_image_pread(q->backing, buf, (size_t)n, off);
		if (q->backing_serial)
			pthread_mutex_unlock(&q->backing_lock);
		if (ret < 0)
			return ret;
	}
	if (n < len)
		memset(buf + n, 0, (size_t)(len - n));
	return 0;
}

/* The read itself; thread-safe as long as the byte sources are. */
static int q2_pread_locked(struct scimg_image *img, void *buf, size_t len,
			   uint64_t off)
{
	struct q2 *q = img->priv;
	uint8_t *p = buf, *pend_buf = NULL;
	uint64_t pend_host = 0, pend_len = 0;
	struct q2_run r;
	int ret;

	while (len) {
		ret = q2_lookup(img, off, len, &r);
		if (ret < 0)
			return ret;
		if (r.type == T_DATA && pend_len && pend_host + pend_len == r.host) {
			pend_len += r.len;
		} else {
			if (pend_len) {
				ret = read_clamped(q->data, pend_buf, pend_len, pend_host,
						   "qcow2 data cluster");
				if (ret < 0)
					return ret;
				pend_len = 0;
			}
			switch (r.type) {
			case T_DATA:
				pend_buf = p;
				pend_host = r.host;
				pend_len = r.len;
				break;
			case T_ZERO:
				memset(p, 0, (size_t)r.len);
				break;
			case T_UNALLOC:
				ret = read_backing(img, p, r.len, off);
				if (ret < 0)
					return ret;
				break;
			case T_COMPRESSED:
				ret = read_compressed(img, r.centry, off, p, (size_t)r.len);
				if (ret < 0)
					return ret;
				break;
			}
		}
		p += r.len;
		off += r.len;
		len -= (size_t)r.len;
	}
	if (pend_len)
		return read_clamped(q->data, pend_buf, pend_len, pend_host, "qcow2 data cluster");
	return 0;
}

static int q2_pread(struct scimg_image *img, void *buf, size_t len, uint64_t off)
{
	struct q2 *q = img->priv;
	int ret;

	if (!q->serialize)
		return q2_pread_locked(img, buf, len, off);
	pthread_mutex_lock(&q->io_lock);
	ret = q2_pread_locked(img, buf, len, off);
	pthread_mutex_unlock(&q->io_lock);
	return ret;
}

static enum scimg_extent_type ext_type(enum q2_type t)
{
	switch (t) {
	case T_DATA:
	case T_COMPRESSED:
		return SCIMG_EXTENT_DATA;
	case T_ZERO:
		return SCIMG_EXTENT_ZERO;
	default:
		return SCIMG_EXTENT_HOLE;
	}
}

static int q2_block_status_locked(struct scimg_image *img, uint64_t off,
				  uint64_t len, struct scimg_extent *ext)
{
	struct q2 *q = img->priv;
	uint64_t pos = off, end = off + len;
	enum scimg_extent_type t0 = SCIMG_EXTENT_HOLE;
	struct q2_run r;
	unsigned steps = 0;
	int ret;

	while (pos < end && steps < STATUS_MAX_CLUSTERS) {
		ret = q2_lookup(img, pos, end - pos, &r);
		if (ret < 0)
			return ret;
		if (pos == off)
			t0 = ext_type(r.type);
		else if (ext_type(r.type) != t0)
			break;
		pos += r.len;
		steps++;
	}
	ext->offset = off;
	ext->length = pos - off;
	ext->type = t0;
	if (t0 == SCIMG_EXTENT_HOLE && q->backing && off < q->backing->size) {
		struct scimg_extent be;
		uint64_t bend = pos < q->backing->size ? pos : q->backing->size;

		if (q->backing_serial)
			pthread_mutex_lock(&q->backing_lock);
		ret = scimg_image_block_status(q->backing, off, bend - off, &be);
		if (q->backing_serial)
			pthread_mutex_unlock(&q->backing_lock);
		if (ret < 0)
			return ret;
		ext->type = be.type;
		ext->length = be.length;
	}
	return 0;
}

static int q2_block_status(struct scimg_image *img, uint64_t off, uint64_t len,
			   struct scimg_extent *ext)
{
	struct q2 *q = img->priv;
	int ret;

	if (!q->serialize)
		return q2_block_status_locked(img, off, len, ext);
	pthread_mutex_lock(&q->io_lock);
	ret = q2_block_status_locked(img, off, len, ext);
	pthread_mutex_unlock(&q->io_lock);
	return ret;
}

/* ---- map (scimg map) ------------------------------------------------------ */

/* Whether the host file has data at HOST (a hole reads as zeros: QEMU's map
 * reports such clusters as zero too); *LEN is cut to the run. */
static int host_is_hole(struct scimg_image *img, uint64_t host, uint64_t *len)
{
	struct scimg_source *src = img->src;
	struct scimg_extent e;
	int ret;

	if (!src->ops->block_status || host >= src->size)
		return 0;
	if (*len > src->size - host)
		*len = src->size - host;
	ret = src->ops->block_status(src, host, *len, &e);
	if (ret < 0)
		return ret;
	if (e.length && e.length < *len)
		*len = e.length;
	return e.type != SCIMG_EXTENT_DATA;
}

static int q2_map_locked(struct scimg_image *img, uint64_t off, uint64_t len,
			 struct scimg_map_extent *ext)
{
	struct q2 *q = img->priv;
	uint64_t pos = off, end = off + len, host0 = 0;
	enum q2_type t0 = T_UNALLOC;
	struct q2_run r;
	unsigned steps = 0;
	int ret, hole0 = 0;

	while (pos < end && steps < STATUS_MAX_CLUSTERS) {
		ret = q2_lookup(img, pos, end - pos, &r);
		if (ret < 0)
			return ret;
		if (r.type == T_DATA) {
			int hole = host_is_hole(img, r.host, &r.len);
			if (hole < 0)
				return hole;
			if (pos == off) {
				hole0 = hole;
				host0 = r.host;
			} else if (hole != hole0 || r.host != host0 + (pos - off)) {
				break;
			}
		}
		if (pos == off)
			t0 = r.type;
		else if (r.type != t0)
			break;
		pos += r.len;
		steps++;
	}
	memset(ext, 0, sizeof(*ext));
	ext->offset = off;
	ext->length = pos - off;
	ext->host_offset = UINT64_MAX;
	ext->file = img->path;
	switch (t0) {
	case T_DATA:
		ext->present = 1;
		ext->data = 1;
		ext->zero = hole0;
		ext->host_offset = host0;
		return 0;
	case T_COMPRESSED:
		ext->present = 1;
		ext->data = 1;
		ext->compressed = 1;
		return 0;
	case T_ZERO:
		ext->present = 1;
		ext->zero = 1;
		return 0;
	default:
		break;
	}
	ext->zero = 1;
	if (q->backing && off < q->backing->size) {
		uint64_t bend = pos < q->backing->size ? pos : q->backing->size;

		if (q->backing_serial)
			pthread_mutex_lock(&q->backing_lock);
		ret = scimg_image_map(q->backing, off, bend - off, ext);
		if (q->backing_serial)
			pthread_mutex_unlock(&q->backing_lock);
		if (ret < 0)
			return ret;
		ext->depth++;
	}
	return 0;
}

static int q2_map(struct scimg_image *img, uint64_t off, uint64_t len,
		  struct scimg_map_extent *ext)
{
	struct q2 *q = img->priv;
	int ret;

	if (!q->serialize)
		return q2_map_locked(img, off, len, ext);
	pthread_mutex_lock(&q->io_lock);
	ret = q2_map_locked(img, off, len, ext);
	pthread_mutex_unlock(&q->io_lock);
	return ret;
}

/* ---- open -------------------------------------------------------------- */

static int load_l1(struct scimg_image *img)
{
	struct q2 *q = img->priv;
	uint64_t i, n = q->h.l1_needed, nz = 0;
	int ret = 0, k;

	if (!n)
		return 0;
	/* n <= l1_size <= 4M entries (32 MiB), checked with the header */
	q->l1 = malloc((size_t)n * sizeof(uint64_t));
	if (!q->l1)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	ret = scimg_int_source_read(img->src, q->l1, (size_t)n * 8, q->h.l1_table_offset,
				    "qcow2 L1 table");
	if (ret < 0)
		return ret;
	q->l1_n = n;
	for (i = 0; i < n; i++) {
		uint64_t e = scimg_be64(&q->l1[i]), l2o = e & Q2_L1E_OFFSET_MASK;
		uint64_t foff = q->h.l1_table_offset + i * 8;
		char why[96];

		why[0] = '\0';
		if (e & Q2_L1E_RESERVED)
			snprintf(why, sizeof(why), "reserved bits are set");
		else if (l2o % q->cs)
			snprintf(why, sizeof(why), "the L2 table offset is not a multiple of the cluster size");
		else if (l2o && (l2o > img->src->size || img->src->size - l2o < q->cs))
			snprintf(why, sizeof(why), "the L2 table lies past the end of the file");
		else if (l2o && l2o < q->cs)
			snprintf(why, sizeof(why), "the L2 table overlaps the header");
		for (k = 0; !why[0] && l2o && k < q->nmeta; k++)
			if (in_range(&q->meta[k], l2o, q->cs))
				snprintf(why, sizeof(why), "the L2 table overlaps the %s", q->meta[k].what);
		if (why[0])
			return scimg_int_err(img->ctx, -EINVAL,
					     "'%s': qcow2 L1 entry %llu at offset %llu is 0x%016llx: %s",
					     img->path, (unsigned long long)i,
					     (unsigned long long)foff, (unsigned long long)e, why);
		q->l1[i] = l2o;
		nz += l2o != 0;
	}
	q->l2_sorted = malloc((size_t)(nz ? nz : 1) * sizeof(uint64_t));
	if (!q->l2_sorted)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	for (i = 0; i < n; i++)
		if (q->l1[i])
			q->l2_sorted[q->n_l2++] = q->l1[i];
	qsort(q->l2_sorted, q->n_l2, sizeof(uint64_t), cmp_u64);
	for (i = 1; i < q->n_l2; i++)
		if (q->l2_sorted[i] == q->l2_sorted[i - 1])
			return scimg_int_err(img->ctx, -EINVAL,
					     "'%s': qcow2 L1 table at offset %llu names the L2 table at offset %llu twice (loop or overlap)",
					     img->path, (unsigned long long)q->h.l1_table_offset,
					     (unsigned long long)q->l2_sorted[i]);
	return 0;
}

static int load_snapshots(struct scimg_image *img)
{
	struct q2 *q = img->priv;
	uint64_t off = q->h.snapshots_offset, start = off;
	uint8_t hdr[40], *var = NULL;
	uint32_t i;
	int ret = 0;

	if (!q->h.nb_snapshots)
		return 0;
	q->snaps = calloc(q->h.nb_snapshots, sizeof(*q->snaps));
	var = malloc(Q2_MAX_SNAPSHOT_EXTRA + 2 * 65535);
	if (!q->snaps || !var) {
		ret = scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < q->h.nb_snapshots; i++) {
		struct q2_snap *s = &q->snaps[i];
		uint32_t idlen, namelen, extra;
		uint64_t vlen;

		if (off - start > Q2_MAX_SNAPSHOT_TABLE) {
			ret = scimg_int_err(img->ctx, -EINVAL,
					    "'%s': qcow2 snapshot table at offset %llu is larger than %u bytes at entry %u",
					    img->path, (unsigned long long)start,
					    Q2_MAX_SNAPSHOT_TABLE, i);
			goto out;
		}
		ret = scimg_int_source_read(img->src, hdr, sizeof(hdr), off, "qcow2 snapshot table entry");
		if (ret < 0)
			goto out;
		s->l1_offset = scimg_be64(hdr);
		s->l1_size = scimg_be32(hdr + 8);
		idlen = scimg_be16(hdr + 12);
		namelen = scimg_be16(hdr + 14);
		s->date_sec = scimg_be32(hdr + 16);
		s->date_nsec = scimg_be32(hdr + 20);
		s->vm_clock_nsec = scimg_be64(hdr + 24);
		s->vm_state_size = scimg_be32(hdr + 32);
		extra = scimg_be32(hdr + 36);
		if (extra > Q2_MAX_SNAPSHOT_EXTRA) {
			ret = scimg_int_err(img->ctx, -EINVAL,
					    "'%s': qcow2 snapshot %u extra data size at offset %llu is %u, expected at most %u",
					    img->path, i, (unsigned long long)off + 36, extra,
					    Q2_MAX_SNAPSHOT_EXTRA);
			goto out;
		}
		if ((uint64_t)s->l1_size * 8 > Q2_MAX_L1_BYTES || s->l1_offset % q->cs ||
		    (s->l1_size && (s->l1_offset < q->cs || s->l1_offset > img->src->size ||
				    img->src->size - s->l1_offset < (uint64_t)s->l1_size * 8))) {
			ret = scimg_int_err(img->ctx, -EINVAL,
					    "'%s': qcow2 snapshot %u L1 table (offset %llu, %u entries, at offset %llu) is not cluster-aligned or lies outside the file",
					    img->path, i, (unsigned long long)s->l1_offset,
					    s->l1_size, (unsigned long long)off);
			goto out;
		}
		vlen = (uint64_t)extra + idlen + namelen;
		ret = scimg_int_source_read(img->src, var, (size_t)vlen, off + 40,
					    "qcow2 snapshot table entry");
		if (ret < 0)
			goto out;
		if (extra >= 8)
			s->vm_state_size = scimg_be64(var);
		if (extra >= 16) {
			s->disk_size = scimg_be64(var + 8);
			s->has_disk_size = 1;
		}
		if (extra >= 24) {
			s->icount = scimg_be64(var + 16);
			s->has_icount = s->icount != UINT64_MAX;
		}
		s->id = strndup((const char *)var + extra, idlen);
		s->name = strndup((const char *)var + extra + idlen, namelen);
		if (!s->id || !s->name) {
			ret = scimg_int_err(img->ctx, -ENOMEM, "out of memory");
			goto out;
		}
		q->nsnaps = i + 1;
		off += (40 + vlen + 7) & ~UINT64_C(7);
	}
	q->meta[q->nmeta].start = start;
	q->meta[q->nmeta].len = off - start;
	q->meta[q->nmeta].what = "snapshot table";
	for (int k = 0; k < q->nmeta; k++) {
		if (in_range(&q->meta[k], start, off - start)) {
			ret = scimg_int_err(img->ctx, -EINVAL,
					    "'%s': qcow2 snapshot table at offset %llu (%llu bytes) overlaps the %s",
					    img->path, (unsigned long long)start,
					    (unsigned long long)(off - start), q->meta[k].what);
			goto out;
		}
	}
	q->nmeta++;
out:
	free(var);
	return ret;
}

static void q2_free(struct q2 *q)
{
	size_t i;
	uint32_t k;

	if (!q)
		return;
	scimg_int_qcow2_header_free(&q->h);
	free(q->l1);
	free(q->l2_sorted);
	if (q->cache)
		for (i = 0; i < q->ncache; i++)
			free(q->cache[i].data);
	free(q->cache);
	if (q->ext)
		scimg_int_source_close(q->ext);
	free(q->ext_path);
	scimg_image_close(q->backing);
	free(q->cout);
	while (q->pool) {
		struct q2_scratch *z = q->pool;
		q->pool = z->next;
		scratch_free(z);
	}
	if (q->lock_init) {
		pthread_mutex_destroy(&q->lock);
		pthread_mutex_destroy(&q->io_lock);
		pthread_mutex_destroy(&q->backing_lock);
	}
	for (k = 0; k < q->nsnaps; k++) {
		free(q->snaps[k].id);
		free(q->snaps[k].name);
	}
	free(q->snaps);
	free(q);
}

static void q2_close(struct scimg_image *img)
{
	if (img->writing) {
		scimg_int_qcow2_wclose(img);
		return;
	}
	q2_free(img->priv);
	img->priv = NULL;
}

static int q2_open(struct scimg_image *img)
{
	struct scimg_ctx *ctx = img->ctx;
	struct q2 *q;
	uint8_t *hbuf = NULL;
	uint8_t peek[Q2_PEEK_LEN];
	size_t hlen;
	int ret;

	q = calloc(1, sizeof(*q));
	if (!q)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	if (pthread_mutex_init(&q->lock, NULL) != 0) {
		free(q);
		return scimg_int_err(ctx, -ENOMEM, "could not create a mutex");
	}
	if (pthread_mutex_init(&q->io_lock, NULL) != 0) {
		pthread_mutex_destroy(&q->lock);
		free(q);
		return scimg_int_err(ctx, -ENOMEM, "could not create a mutex");
	}
	if (pthread_mutex_init(&q->backing_lock, NULL) != 0) {
		pthread_mutex_destroy(&q->io_lock);
		pthread_mutex_destroy(&q->lock);
		free(q);
		return scimg_int_err(ctx, -ENOMEM, "could not create a mutex");
	}
	q->lock_init = 1;
	img->priv = q;
	if (img->src->size < Q2_V2_HEADER_LEN) {
		ret = scimg_int_err(ctx, -EINVAL,
				    "'%s': file is %llu bytes, shorter than the %u-byte qcow2 header",
				    img->path, (unsigned long long)img->src->size, Q2_V2_HEADER_LEN);
		goto fail;
	}
	ret = scimg_int_source_read(img->src, peek, sizeof(peek), 0, "qcow2 header");
	if (ret < 0)
		goto fail;
	/* read the whole header cluster (if cluster_bits is sane) */
	hlen = Q2_V2_HEADER_LEN;
	{
		uint32_t cb = scimg_be32(peek + 20);
		if (cb >= Q2_MIN_CLUSTER_BITS && cb <= Q2_MAX_CLUSTER_BITS)
			hlen = (size_t)1 << cb;
	}
	if (hlen > img->src->size)
		hlen = (size_t)img->src->size;
	if (hlen < Q2_V3_HEADER_LEN && img->src->size >= Q2_V3_HEADER_LEN)
		hlen = Q2_V3_HEADER_LEN;
	hbuf = malloc(hlen);
	if (!hbuf) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto fail;
	}
	ret = scimg_int_source_read(img->src, hbuf, hlen, 0, "qcow2 header");
	if (ret < 0)
		goto fail;
	ret = scimg_int_qcow2_parse_header(ctx, img->path, hbuf, hlen, img->src->size, &q->h);
	if (ret < 0)
		goto fail;
	free(hbuf);
	hbuf = NULL;

	q->cb = q->h.cluster_bits;
	q->cs = q->h.cluster_size;
	q->l2_bits = q->h.l2_bits;
	q->esize = q->h.extended_l2 ? 16 : 8;
	q->sc_bits = q->cb - 5;
	img->size = q->h.size;
	q->meta[0].start = q->h.l1_table_offset;
	q->meta[0].len = (uint64_t)q->h.l1_size * 8;
	q->meta[0].what = "L1 table";
	q->meta[1].start = q->h.refcount_table_offset;
	q->meta[1].len = (uint64_t)q->h.refcount_table_clusters * q->cs;
	q->meta[1].what = "refcount table";
	q->nmeta = 2;

	ret = load_snapshots(img);
	if (ret < 0)
		goto fail;
	ret = load_l1(img);
	if (ret < 0)
		goto fail;

	q->ncache = L2_CACHE_BYTES / q->cs;
	if (q->ncache < L2_CACHE_MIN)
		q->ncache = L2_CACHE_MIN;
	if (q->ncache > L2_CACHE_MAX)
		q->ncache = L2_CACHE_MAX;
	q->cache = calloc(q->ncache, sizeof(*q->cache));
	q->cout = malloc(q->cs);
	if (!q->cache || !q->cout) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto fail;
	}

	q->data = img->src;
	if (q->h.data_file) {
		ret = scimg_int_ref_open(img, q->h.data_file, &q->ext);
		if (ret < 0)
			scimg_int_err_prefix(ctx, "'%s': external data file '%s'", img->path,
					     q->h.data_file);
		if ((ret = scimg_int_ref_unopened(img, ret)) < 0)
			goto fail;
		if (q->ext && !(q->ext_path = strdup(q->ext->name))) {
			ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
			goto fail;
		}
		if (q->ext) /* else unopened: no data is read (image.c) */
			q->data = q->ext;
	}
	if (q->h.backing_file) {
		ret = scimg_int_open_child(img, q->h.backing_file, q->h.backing_format, 0,
					   &q->backing);
		if (ret < 0)
			scimg_int_err_prefix(ctx, "'%s': backing file '%s'", img->path,
					     q->h.backing_file);
		if ((ret = scimg_int_ref_unopened(img, ret)) < 0)
			goto fail;
		/* a backing image is read through its own format, which
		 * guards itself only when it says so */
		q->backing_serial = q->backing &&
				    (!(q->backing->fmt->flags & SCIMG_FMT_PARALLEL_READ) ||
				     !q->backing->src || !q->backing->src->ops->thread_safe);
	}
	q->serialize = !img->src->ops->thread_safe ||
		       (q->ext && !q->ext->ops->thread_safe);
	return 0;
fail:
	free(hbuf);
	q2_free(q);
	img->priv = NULL;
	return ret;
}

/* ---- info -------------------------------------------------------------- */

/* 1 if an L2 entry is compressed, 0 if none, -1 when too costly to say. */
static int scan_compressed(struct scimg_image *img)
{
	struct q2 *q = img->priv;
	size_t i;
	uint64_t j, n = UINT64_C(1) << q->l2_bits;

	if ((uint64_t)q->n_l2 * q->cs > INFO_SCAN_BYTES)
		return -1;
	for (i = 0; i < q->n_l2; i++) {
		const uint8_t *tab;
		int found = 0;

		pthread_mutex_lock(&q->lock);
		if (l2_get(img, q->l2_sorted[i], &tab) < 0) {
			pthread_mutex_unlock(&q->lock);
			return -1;
		}
		for (j = 0; j < n && !found; j++)
			if (scimg_be64(tab + j * q->esize) & Q2_OFLAG_COMPRESSED)
				found = 1;
		pthread_mutex_unlock(&q->lock);
		if (found)
			return 1;
	}
	return 0;
}

#define ADD(o, k, v) json_object_object_add((o), (k), (v))

static int q2_info(struct scimg_image *img, json_object *o)
{
	struct q2 *q = img->priv;
	json_object *snaps, *d, *x;
	uint32_t i;
	int c, ret;

	ADD(o, "cluster-size", json_object_new_int64((int64_t)q->cs));
	ADD(o, "dirty-flag", json_object_new_boolean(!!(q->h.incompat & Q2_INCOMPAT_DIRTY)));
	/* qemu's ImageInfoSpecificQCow2 */
	if (!(d = scimg_int_info_specific(o, "qcow2")) || !(x = scimg_int_info_details(o)))
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	ADD(d, "compat", json_object_new_string(q->h.version == 2 ? "0.10" : "1.1"));
	if (q->h.data_file) {
		ADD(d, "data-file", json_object_new_string(q->h.data_file));
		ADD(d, "data-file-raw",
		    json_object_new_boolean(!!(q->h.autoclear & Q2_AUTOCLEAR_DATA_FILE_RAW)));
	}
	if (q->h.version >= 3) {
		ADD(d, "extended-l2", json_object_new_boolean(q->h.extended_l2));
		ADD(d, "lazy-refcounts",
		    json_object_new_boolean(!!(q->h.compat & Q2_COMPAT_LAZY_REFCOUNTS)));
		ADD(d, "corrupt", json_object_new_boolean(!!(q->h.incompat & Q2_INCOMPAT_CORRUPT)));
	}
	ADD(d, "refcount-bits", json_object_new_int(1 << q->h.refcount_order));
	ADD(d, "compression-type",
	    json_object_new_string(q->h.compression_type == Q2_COMPRESSION_ZSTD ? "zstd" : "zlib"));
	/* scimg's own */
	ADD(x, "dirty", json_object_new_boolean(!!(q->h.incompat & Q2_INCOMPAT_DIRTY)));
	if (q->h.nb_bitmaps)
		ADD(x, "bitmaps", json_object_new_int64(q->h.nb_bitmaps));
	c = scan_compressed(img);
	if (c >= 0)
		ADD(x, "has-compressed-clusters", json_object_new_boolean(c));
	if (q->ext)
		scimg_int_info_add_file(img, o, q->ext);
	ret = scimg_int_info_backing(img, o, q->h.backing_file, q->h.backing_format, q->backing, NULL);
	if (ret < 0)
		return ret;
	if (!q->nsnaps)
		return 0;
	snaps = json_object_new_array();
	if (!snaps)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	for (i = 0; i < q->nsnaps; i++) {
		const struct q2_snap *s = &q->snaps[i];
		json_object *so = json_object_new_object();
		if (!so) {
			json_object_put(snaps);
			return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		}
		ADD(so, "id", json_object_new_string(s->id));
		ADD(so, "name", json_object_new_string(s->name));
		ADD(so, "vm-state-size", json_object_new_int64((int64_t)s->vm_state_size));
		ADD(so, "date-sec", json_object_new_int64(s->date_sec));
		ADD(so, "date-nsec", json_object_new_int64(s->date_nsec));
		ADD(so, "vm-clock-sec",
		    json_object_new_int64((int64_t)(s->vm_clock_nsec / 1000000000u)));
		ADD(so, "vm-clock-nsec",
		    json_object_new_int64((int64_t)(s->vm_clock_nsec % 1000000000u)));
		if (s->has_icount)
			ADD(so, "icount", json_object_new_int64((int64_t)s->icount));
		/* scimg's own: the guest size at the snapshot */
		ADD(so, "disk-size", json_object_new_int64((int64_t)(s->has_disk_size ?
								     s->disk_size : q->h.size)));
		json_object_array_add(snaps, so);
	}
	ADD(o, "snapshots", snaps);
	return 0;
}

const struct scimg_format scimg_format_qcow2 = {
	.name = "qcow2",
	.description = "QEMU copy-on-write image, versions 2 and 3",
	SCIMG_FORMAT_READER(q2),
	.info = q2_info,
	.create_opts = scimg_int_qcow2_create_opts,
	SCIMG_FORMAT_WRITER(scimg_int_qcow2),
	.write_zeroes = scimg_int_qcow2_write_zeroes,
	SCIMG_FORMAT_COMPRESSED_WRITER(scimg_int_qcow2),
	.flags = SCIMG_FMT_SEQUENTIAL_WRITE | SCIMG_FMT_PARALLEL_READ,
	.map = q2_map,
};
