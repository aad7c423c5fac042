/* vhdx-log.c - CRC-32C and in-memory replay of the VHDX metadata log.
 *
 * A VHDX whose current header has a non-zero log GUID was not closed
 * cleanly: metadata (BAT, metadata region) updates may sit in the log
 * only.  The spec requires replaying the log before reading, even
 * read-only.  Nothing is ever written here: the replayed content lives in
 * an overlay that scimg_int_vhdx_read() applies to every read of the file.
 *
 * The log is a circular buffer of 4 KiB sectors.  An entry is a header
 * ("loge", CRC-32C over the whole entry, sequence number, tail, log GUID,
 * flushed/last file offsets), descriptors ("desc" for a 4 KiB data sector,
 * "zero" for a zeroed range) and data sectors ("data", sequence number
 * split around 4084 bytes of payload).  The active sequence is the chain
 * of valid entries with consecutive sequence numbers that ends at the
 * entry with the highest sequence number whose tail points at the start
 * of that chain; its entries are applied in order, later writes winning.
 *
 * Bounds: the log is read into memory only up to LOG_MAX_LENGTH, the
 * descriptors kept are capped at LOG_MAX_DESCS, and the CRC work spent on
 * candidate entries is capped at a multiple of the log length.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "scimg-int.h"
#include "vhdx-int.h"

#define LOG_MAX_LENGTH (32u * VHDX_MiB)
#define LOG_MAX_DESCS (1u << 18)
#define LOG_MAX_FILE_OFFSET (UINT64_C(1) << 58)

/* ---- CRC-32C ------------------------------------------------------------ */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ UINT32_C(0x82f63b78) : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t scimg_int_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	pthread_once(&crc_once, crc_init);
	crc = ~crc;
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

uint32_t scimg_int_vhdx_checksum(const uint8_t *buf, size_t len, size_t skip)
{
	static const uint8_t zero[4];
	uint32_t crc = scimg_int_crc32c(0, buf, skip);

	crc = scimg_int_crc32c(crc, zero, 4);
	return scimg_int_crc32c(crc, buf + skip + 4, len - skip - 4);
}

/* ---- reading through the overlay --------------------------------------- */

static void patch(struct vhdx *x, const struct vhdx_olay_desc *d, uint8_t *dst,
		  uint64_t s, uint64_t e, int *err)
{
	/* [s, e) lies inside the 4 KiB that D defines */
	uint64_t k = s - d->file_off, kend = e - d->file_off;

	if (k < 8) {
		uint64_t n = (kend < 8 ? kend : 8) - k;
		memcpy(dst, d->lead + k, (size_t)n);
		dst += n;
		k += n;
	}
	if (k < kend && k < 4092) {
		uint64_t n = (kend < 4092 ? kend : 4092) - k;
		if (*err == 0)
			*err = scimg_int_source_read(x->img->src, dst, (size_t)n,
						     d->log_off + k, "VHDX log data sector");
		dst += n;
		k += n;
	}
	if (k < kend)
		memcpy(dst, d->trail + (k - 4092), (size_t)(kend - k));
}

int scimg_int_vhdx_read(struct vhdx *x, void *buf, size_t len, uint64_t off,
			const char *what)
{
	struct scimg_source *src = x->img->src;
	struct vhdx_overlay *o = x->olay;
	uint8_t *p = buf;
	uint64_t end;
	size_t lo, hi;
	int ret = 0;

	if (!scimg_add_ok(off, len, &end) || end > x->file_size)
		return scimg_int_err(x->img->ctx, -EINVAL,
				     "'%s': VHDX %s at offset %llu (%zu bytes) is beyond the end of the file (%llu bytes)",
				     x->img->path, what, (unsigned long long)off, len,
				     (unsigned long long)x->file_size);
	if (off < src->size) {
		size_t n = src->size - off < len ? (size_t)(src->size - off) : len;
		ret = scimg_int_source_read(src, p, n, off, what);
		if (ret < 0)
			return ret;
		memset(p + n, 0, len - n);
	} else {
		memset(p, 0, len);
	}
	if (!o || !o->nsegs)
		return 0;
	/* first segment ending after OFF */
	lo = 0;
	hi = o->nsegs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (o->segs[mid].end <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < o->nsegs && o->segs[lo].start < end; lo++) {
		const struct vhdx_olay_seg *sg = &o->segs[lo];
		const struct vhdx_olay_desc *d = &o->descs[sg->desc];
		uint64_t s = sg->start > off ? sg->start : off;
		uint64_t e = sg->end < end ? sg->end : end;

		if (d->zero)
			memset(p + (s - off), 0, (size_t)(e - s));
		else
			patch(x, d, p + (s - off), s, e, &ret);
	}
	return ret;
}

void scimg_int_vhdx_overlay_free(struct vhdx_overlay *o)
{
	if (!o)
		return;
	free(o->descs);
	free(o->segs);
	free(o);
}

/* ---- building the overlay ----------------------------------------------- */

/* max-heap of descriptor indices; a later descriptor (larger index) wins */
struct heap {
	uint32_t *a;
	size_t n;
};

static void heap_push(struct heap *h, uint32_t v)
{
	size_t i = h->n++;

	while (i > 0 && h->a[(i - 1) / 2] < v) {
		h->a[i] = h->a[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->a[i] = v;
}

static void heap_pop(struct heap *h)
{
	uint32_t v = h->a[--h->n];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->a[c + 1] > h->a[c])
			c++;
		if (h->a[c] <= v)
			break;
		h->a[i] = h->a[c];
		i = c;
	}
	if (h->n)
		h->a[i] = v;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_start(const void *a, const void *b, void *arg)
{
	const struct vhdx_olay_desc *descs = arg;
	const struct vhdx_olay_desc *x = &descs[*(const uint32_t *)a];
	const struct vhdx_olay_desc *y = &descs[*(const uint32_t *)b];
	return x->file_off < y->file_off ? -1 : x->file_off > y->file_off;
}

/* Sweep over the descriptor ranges: each piece of the file goes to the
 * last descriptor (in replay order) that covers it. */
static int build_segments(struct scimg_ctx *ctx, struct vhdx_overlay *o)
{
	size_t n = o->ndescs, npts = 0, i, j = 0;
	uint64_t *pts = malloc(2 * n * sizeof(*pts) + 1);
	uint32_t *order = malloc(n * sizeof(*order) + 1);
	struct heap h = { malloc(n * sizeof(uint32_t) + 1), 0 };
	int ret = 0;

	o->segs = malloc(2 * n * sizeof(*o->segs) + 1);
	if (!pts || !order || !h.a || !o->segs) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		pts[npts++] = o->descs[i].file_off;
		pts[npts++] = o->descs[i].file_off + o->descs[i].len;
		order[i] = (uint32_t)i;
	}
	qsort(pts, npts, sizeof(*pts), cmp_u64);
	qsort_r(order, n, sizeof(*order), cmp_start, o->descs);
	o->nsegs = 0;
	for (i = 0; i + 1 < npts; i++) {
		uint64_t p = pts[i], q = pts[i + 1];
		if (p == q)
			continue;
		while (j < n && o->descs[order[j]].file_off <= p)
			heap_push(&h, order[j++]);
		while (h.n && o->descs[h.a[0]].file_off + o->descs[h.a[0]].len <= p)
			heap_pop(&h);
		if (!h.n)
			continue;
		if (o->nsegs && o->segs[o->nsegs - 1].desc == h.a[0] &&
		    o->segs[o->nsegs - 1].end == p) {
			o->segs[o->nsegs - 1].end = q;
		} else {
			o->segs[o->nsegs].start = p;
			o->segs[o->nsegs].end = q;
			o->segs[o->nsegs].desc = h.a[0];
			o->nsegs++;
		}
	}
out:
	free(pts);
	free(order);
	free(h.a);
	return ret;
}

/* ---- scanning the log --------------------------------------------------- */

struct log_entry {
	uint64_t off;        /* inside the log */
	uint64_t seq;
	uint32_t len, tail, ndesc, dsect;
	uint64_t flushed, last;
};

struct logscan {
	struct vhdx *x;
	uint8_t *L;          /* the whole log */
	uint64_t len;        /* log length */
	uint64_t base;       /* log offset in the file */
	const uint8_t *guid;
	uint64_t budget;     /* bytes of CRC work left */
};

static void circ_copy(const struct logscan *s, uint8_t *dst, uint64_t off, size_t n)
{
	off %= s->len;
	while (n) {
		size_t k = s->len - off < n ? (size_t)(s->len - off) : n;
		memcpy(dst, s->L + off, k);
		dst += k;
		n -= k;
		off = 0;
	}
}

static uint32_t circ_crc(const struct logscan *s, uint64_t off, uint64_t n)
{
	static const uint8_t zero[4];
	uint32_t crc;

	/* the first sector of an entry never wraps */
	crc = scimg_int_crc32c(0, s->L + off, 4);
	crc = scimg_int_crc32c(crc, zero, 4);
	off += 8;
	n -= 8;
	while (n) {
		uint64_t o = off % s->len;
		size_t k = s->len - o < n ? (size_t)(s->len - o) : (size_t)n;
		crc = scimg_int_crc32c(crc, s->L + o, k);
		off += k;
		n -= k;
	}
	return crc;
}

/* Is there a valid entry at OFF (a multiple of 4 KiB inside the log)? */
static int entry_valid(struct logscan *s, uint64_t off, struct log_entry *e)
{
	const uint8_t *h = s->L + off;
	uint64_t total;
	uint32_t i, nd = 0;

	if (memcmp(h, "loge", 4) != 0)
		return 0;
	e->off = off;
	e->len = scimg_le32(h + 8);
	e->tail = scimg_le32(h + 12);
	e->seq = scimg_le64(h + 16);
	e->ndesc = scimg_le32(h + 24);
	e->flushed = scimg_le64(h + 48);
	e->last = scimg_le64(h + 56);
	if (e->len < VHDX_LOG_SECTOR || e->len % VHDX_LOG_SECTOR || e->len > s->len ||
	    e->tail % VHDX_LOG_SECTOR || e->tail >= s->len || e->seq == 0 ||
	    memcmp(h + 32, s->guid, 16) != 0)
		return 0;
	total = e->len / VHDX_LOG_SECTOR;
	if (e->ndesc > total * 128)
		return 0;
	e->dsect = (e->ndesc + 2 + 127) / 128;
	if (e->dsect > total)
		return 0;
	/* descriptor checks and the CRC both draw on the work budget */
	if (s->budget < (uint64_t)e->dsect * VHDX_LOG_SECTOR + e->len)
		return -1;
	s->budget -= (uint64_t)e->dsect * VHDX_LOG_SECTOR;
	for (i = 0; i < e->ndesc; i++) {
		uint8_t d[32];

		circ_copy(s, d, off + 64 + 32 * (uint64_t)i, sizeof(d));
		if (scimg_le64(d + 24) != e->seq || scimg_le64(d + 16) % VHDX_LOG_SECTOR)
			return 0;
		if (!memcmp(d, "desc", 4)) {
			uint8_t ds[8];
			uint64_t so;
			if (e->dsect + nd >= total)
				return 0;
			so = off + (uint64_t)(e->dsect + nd) * VHDX_LOG_SECTOR;
			circ_copy(s, ds, so, 8);
			if (memcmp(ds, "data", 4) != 0 || scimg_le32(ds + 4) != (uint32_t)(e->seq >> 32))
				return 0;
			circ_copy(s, ds, so + 4092, 4);
			if (scimg_le32(ds) != (uint32_t)e->seq)
				return 0;
			nd++;
		} else if (!memcmp(d, "zero", 4)) {
			uint64_t zl = scimg_le64(d + 8);
			if (zl == 0 || zl % VHDX_LOG_SECTOR)
				return 0;
		} else {
			return 0;
		}
	}
	if (s->budget < e->len)
		return -1;
	s->budget -= e->len;
	return circ_crc(s, off, e->len) == scimg_le32(h + 4);
}

static int add_desc(struct scimg_ctx *ctx, const char *path, struct vhdx_overlay *o,
		    const struct vhdx_olay_desc *d)
{
	uint64_t end;

	if (!scimg_add_ok(d->file_off, d->len, &end) || end > LOG_MAX_FILE_OFFSET)
		return scimg_int_err(ctx, -EINVAL,
				     "'%s': VHDX log descriptor targets file offset %llu (%llu bytes), beyond any real file",
				     path, (unsigned long long)d->file_off,
				     (unsigned long long)d->len);
	if (o->ndescs >= LOG_MAX_DESCS)
		return scimg_int_err(ctx, -E2BIG,
				     "'%s': VHDX log active sequence has more than %u descriptors",
				     path, LOG_MAX_DESCS);
	if (o->ndescs == o->cap) {
		size_t nc = o->cap ? o->cap * 2 : 64;
		struct vhdx_olay_desc *nd = realloc(o->descs, nc * sizeof(*nd));
		if (!nd)
			return scimg_int_err(ctx, -ENOMEM, "out of memory");
		o->descs = nd;
		o->cap = nc;
	}
	o->descs[o->ndescs++] = *d;
	if (end > o->last_file_offset)
		o->last_file_offset = end;
	return 0;
}

/* Add the descriptors of entry E to the overlay. */
static int replay_entry(struct logscan *s, const struct log_entry *e,
			struct vhdx_overlay *o)
{
	struct scimg_image *img = s->x->img;
	uint32_t i, nd = 0;
	int ret;

	if (e->flushed > img->src->size)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': VHDX log entry at offset %llu has flushed file offset %llu, beyond the end of the file (%llu bytes): the file was truncated",
				     img->path, (unsigned long long)(s->base + e->off + 48),
				     (unsigned long long)e->flushed,
				     (unsigned long long)img->src->size);
	for (i = 0; i < e->ndesc; i++) {
		struct vhdx_olay_desc od;
		uint8_t d[32];

		circ_copy(s, d, e->off + 64 + 32 * (uint64_t)i, sizeof(d));

		memset(&od, 0, sizeof(od));
		od.file_off = scimg_le64(d + 16);
		if (!memcmp(d, "desc", 4)) {
			uint64_t so = (e->off + (uint64_t)(e->dsect + nd) * VHDX_LOG_SECTOR) % s->len;
			od.len = VHDX_LOG_SECTOR;
			od.log_off = s->base + so;
			memcpy(od.trail, d + 4, 4);
			memcpy(od.lead, d + 8, 8);
			nd++;
		} else {
			od.len = scimg_le64(d + 8);
			od.zero = 1;
		}
		ret = add_desc(img->ctx, img->path, o, &od);
		if (ret < 0)
			return ret;
	}
	if (e->last > LOG_MAX_FILE_OFFSET)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': VHDX log entry at offset %llu has last file offset %llu, beyond any real file",
				     img->path, (unsigned long long)(s->base + e->off + 56),
				     (unsigned long long)e->last);
	if (e->last > o->last_file_offset)
		o->last_file_offset = e->last;
	return 0;
}

int scimg_int_vhdx_log_replay(struct vhdx *x)
{
	struct scimg_image *img = x->img;
	struct logscan s;
	struct log_entry *ents = NULL;
	int64_t *at = NULL;       /* entry index at each log sector, or -1 */
	size_t nent = 0, nsect, i;
	struct vhdx_overlay *o = NULL;
	uint64_t lo = scimg_le64(x->hdr + VH_LOG_OFFSET);
	uint32_t ll = scimg_le32(x->hdr + VH_LOG_LENGTH);
	uint64_t hoff = x->cur_header == 1 ? VHDX_HEADER1 : VHDX_HEADER2;
	int64_t best = -1, best_start = -1;
	int ret;

	memset(&s, 0, sizeof(s));
	if (ll > LOG_MAX_LENGTH)
		return scimg_int_err(img->ctx, -ENOTSUP,
				     "'%s': VHDX log length at offset %llu is %u, more than the %u bytes scimg replays",
				     img->path, (unsigned long long)(hoff + VH_LOG_LENGTH),
				     ll, LOG_MAX_LENGTH);
	s.x = x;
	s.len = ll;
	s.base = lo;
	s.guid = x->hdr + VH_LOG_GUID;
	s.budget = 16 * (uint64_t)ll + 64 * (uint64_t)VHDX_MiB;
	nsect = ll / VHDX_LOG_SECTOR;
	s.L = malloc(ll);
	ents = malloc(nsect * sizeof(*ents));
	at = malloc(nsect * sizeof(*at));
	if (!s.L || !ents || !at) {
		ret = scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		goto out;
	}
	ret = scimg_int_source_read(img->src, s.L, ll, lo, "VHDX log");
	if (ret < 0)
		goto out;
	for (i = 0; i < nsect; i++) {
		int v = entry_valid(&s, (uint64_t)i * VHDX_LOG_SECTOR, &ents[nent]);
		if (v < 0) {
			ret = scimg_int_err(img->ctx, -EINVAL,
					    "'%s': VHDX log at offset %llu holds too many overlapping entries to check",
					    img->path, (unsigned long long)lo);
			goto out;
		}
		at[i] = v ? (int64_t)nent++ : -1;
	}
	/* the head: the highest sequence number whose tail leads to it */
	for (;;) {
		int64_t h = -1, cur;
		size_t steps = 0;

		for (i = 0; i < nent; i++)
			if (ents[i].seq && (h < 0 || ents[i].seq > ents[h].seq))
				h = (int64_t)i;
		if (h < 0)
			break;
		cur = at[ents[h].tail / VHDX_LOG_SECTOR];
		best_start = cur;
		while (cur >= 0 && cur != h && steps++ < nent) {
			uint64_t next = (ents[cur].off + ents[cur].len) % s.len;
			int64_t nx = at[next / VHDX_LOG_SECTOR];
			if (nx < 0 || ents[nx].seq != ents[cur].seq + 1)
				cur = -1;
			else
				cur = nx;
		}
		if (cur == h) {
			best = h;
			break;
		}
		ents[h].seq = 0; /* not a head: try the next lower one */
	}
	if (best < 0) {
		ret = 0; /* nothing to replay */
		goto out;
	}
	o = calloc(1, sizeof(*o));
	if (!o) {
		ret = scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		goto out;
	}
	o->head_seq = ents[best].seq;
	for (int64_t cur = best_start;; ) {
		ret = replay_entry(&s, &ents[cur], o);
		if (ret < 0)
			goto out;
		o->entries++;
		if (cur == best)
			break;
		cur = at[((ents[cur].off + ents[cur].len) % s.len) / VHDX_LOG_SECTOR];
	}
	ret = build_segments(img->ctx, o);
	if (ret < 0)
		goto out;
	if (o->last_file_offset > x->file_size)
		x->file_size = o->last_file_offset;
	x->olay = o;
	o = NULL;
	ret = 0;
out:
	scimg_int_vhdx_overlay_free(o);
	free(s.L);
	free(ents);
	free(at);
	return ret;
}
