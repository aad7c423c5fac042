/* formats/vmdk.c - VMware virtual disks: probe, open, read, block status,
 * info.  The writer is in vmdk-write.c, descriptor text in vmdk-desc.c.
 *
 * An image is a list of extents covering the virtual disk in order.  A
 * sparse file ("KDMV" hosted sparse, "COWD" ESX sparse, seSparse) opened
 * directly is an image of one extent; a descriptor file lists extents in
 * other files (flat, sparse, zero) that must sit in its directory.  Delta
 * disks name their parent (parentFileNameHint); unallocated grains read
 * from it.
 *
 * Memory stays bounded whatever the headers say: grain directories are
 * checked against the capacity and the file size and capped, grain tables
 * live in a small LRU cache, one decompressed grain is kept, compressed
 * grains are bounded by the grain size.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "vmdk-int.h"
#include "formats.h"

#define MAX_GRAIN_SECTORS 4096u          /* 2 MiB grains */
#define MAX_GT_ENTRIES 4096u
#define MAX_GD_ENTRIES (UINT32_C(4) << 20) /* 16 MiB of u32 */
#define GT_CACHE 64
#define SESPARSE_MAGIC UINT64_C(0xcafebabe)
#define SESPARSE_VOLATILE_MAGIC UINT64_C(0xcafecafe)
#define SESPARSE_VERSION UINT64_C(0x200000001)
#define COWD_GT_ENTRIES 4096u

enum ext_kind { EXT_FLAT, EXT_ZERO, EXT_KDMV, EXT_COWD, EXT_SESPARSE };

struct vmdk_extent {
	enum ext_kind kind;
	char type[16];            /* as the descriptor says, or the header kind */
	char *file;               /* as named, for messages and info */
	struct scimg_source *src; /* NULL for ZERO */
	int own_src;
	enum vmdk_access access;
	uint64_t start, size;     /* bytes of the virtual disk */
	uint64_t flat_off;        /* FLAT: bytes into src */
	/* sparse extents */
	uint32_t version, flags;
	uint16_t compress_alg;
	uint64_t grain;           /* bytes */
	uint32_t gt_entries, gte_size;
	uint32_t gd_entries;
	uint32_t *gd, *rgd;       /* sectors of GTs (seSparse: GT index + 1) */
	uint64_t gd_off, rgd_off; /* bytes, for info and messages */
	uint64_t overhead;        /* bytes */
	int compressed, markers, zero_grain, footer, rgd_used;
	uint64_t se_gt_off, se_grains_off; /* bytes */
};

struct gt_slot {
	const struct vmdk_extent *ext;
	uint32_t idx;
	uint64_t stamp;
	uint8_t *tab;
	size_t cap;
};

struct vmdk_state {
	struct vmdk_desc desc;
	int have_desc;
	char *create_type;
	struct vmdk_extent *ext;
	size_t n_ext;
	struct scimg_image *parent;
	struct gt_slot cache[GT_CACHE];
	uint64_t clock;
	/* the last decompressed grain (partial reads), under LOCK */
	const struct vmdk_extent *z_ext;
	uint64_t z_idx;
	uint8_t *z_out;
	size_t z_out_cap;
	struct zscratch *zc;
	/* guards the caches: pread and block_status may run on several
	 * threads (SCIMG_FMT_PARALLEL_READ) */
	pthread_mutex_t lock;
	int lock_init;
	/* a byte source that is not thread-safe (http) takes part: whole
	 * reads go one at a time under IO_LOCK */
	int serialize;
	pthread_mutex_t io_lock;
};

/* What inflating a grain needs; one per reading thread. */
struct zscratch {
	z_stream zs;
	int init;
	uint8_t *in;
	size_t cap;
};

enum gclass { G_HOLE, G_ZERO, G_DATA, G_COMP };

struct gloc {
	enum gclass cl;
	uint64_t foff;  /* file offset of the grain (DATA) or its marker (COMP) */
};

/* ---- probe ------------------------------------------------------------ */

static int vmdk_probe(const struct scimg_probe *p)
{
	size_t n = p->head_len < 4096 ? p->head_len : 4096;
	const char *h = (const char *)p->head;

	if (p->head_len >= 4 && memcmp(h, "KDMV", 4) == 0) {
		uint32_t v = p->head_len >= 8 ? scimg_le32(p->head + 4) : 0;
		return v >= 1 && v <= 3 ? 100 : 80;
	}
	if (p->head_len >= 4 && memcmp(h, "COWD", 4) == 0)
		return 90;
	if (p->head_len >= 16 && scimg_le64(p->head) == SESPARSE_MAGIC &&
	    scimg_le64(p->head + 8) == SESPARSE_VERSION)
		return 95;
	/* a descriptor file is text, perhaps padded with NULs (qemu-img) */
	{
		const char *nul = n ? memchr(h, '\0', n) : NULL;
		if (nul)
			n = (size_t)(nul - h);
	}
	if (n == 0)
		return 0;
	if (memmem(h, n, "# Disk DescriptorFile", 21))
		return 90;
	if (memmem(h, n, "createType=\"", 12) || memmem(h, n, "createType = \"", 14))
		return 75;
	return 0;
}

/* ---- helpers ---------------------------------------------------------- */

static void extent_free(struct vmdk_extent *e)
{
	if (e->own_src)
		scimg_int_source_close(e->src);
	free(e->file);
	free(e->gd);
	free(e->rgd);
}

static void zscratch_free(struct zscratch *z)
{
	if (!z)
		return;
	if (z->init)
		inflateEnd(&z->zs);
	free(z->in);
	free(z);
}

static void reader_close(struct scimg_image *img)
{
	struct vmdk_state *s = img->priv;
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->n_ext; i++)
		extent_free(&s->ext[i]);
	free(s->ext);
	for (i = 0; i < GT_CACHE; i++)
		free(s->cache[i].tab);
	zscratch_free(s->zc);
	free(s->z_out);
	if (s->lock_init) {
		pthread_mutex_destroy(&s->lock);
		pthread_mutex_destroy(&s->io_lock);
	}
	scimg_image_close(s->parent);
	scimg_int_vmdk_desc_free(&s->desc);
	free(s->create_type);
	free(s);
	img->priv = NULL;
}

static void vmdk_close(struct scimg_image *img)
{
	if (img->writing)
		scimg_int_vmdk_writer_close(img);
	else
		reader_close(img);
}

static struct vmdk_extent *add_extent(struct scimg_image *img)
{
	struct vmdk_state *s = img->priv;
	struct vmdk_extent *x = realloc(s->ext, (s->n_ext + 1) * sizeof(*x));

	if (!x) {
		scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		return NULL;
	}
	s->ext = x;
	x = &s->ext[s->n_ext++];
	memset(x, 0, sizeof(*x));
	return x;
}

static const char *ext_name(const struct vmdk_extent *e)
{
	return e->src ? e->src->name : e->file;
}

/* Read a grain directory of N u32 entries at OFF (bytes) of E's file. */
static int read_gd(struct scimg_image *img, struct vmdk_extent *e, uint64_t off,
		   uint32_t n, const char *what, uint32_t **out)
{
	uint64_t bytes = (uint64_t)n * 4, end;
	uint32_t *gd;
	int ret;

	*out = NULL;
	if (!scimg_add_ok(off, bytes, &end) || end > e->src->size)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': VMDK %s at offset %llu (%u entries, %llu bytes) extends beyond the end of the file (%llu bytes)",
				     ext_name(e), what, (unsigned long long)off, n,
				     (unsigned long long)bytes, (unsigned long long)e->src->size);
	gd = malloc(bytes ? (size_t)bytes : 1);
	if (!gd)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	if (bytes && (ret = scimg_int_source_read(e->src, gd, (size_t)bytes, off, what)) < 0) {
		free(gd);
		return ret;
	}
	for (uint32_t i = 0; i < n; i++)
		gd[i] = scimg_le32(&gd[i]);
	*out = gd;
	return 0;
}

/* ---- hosted sparse extents (KDMV) ------------------------------------- */

struct kdmv_hdr {
	uint32_t version, flags;
	uint64_t capacity, grain, desc_off, desc_size;
	uint32_t gtes;
	uint64_t rgd, gd, overhead;
	uint16_t compress;
};

#define HDR_ERR(fmt, ...) \
	scimg_int_err(img->ctx, -EINVAL, "'%s': VMDK %s " fmt, name, what, ##__VA_ARGS__)

/* Decode and check the 512-byte header H found at file offset BASE (the
 * start, or the streamOptimized footer: WHAT says which). */
static int kdmv_parse(struct scimg_image *img, const char *name, const uint8_t *h,
		      uint64_t base, const char *what, struct kdmv_hdr *k)
{
	static const uint8_t nl[4] = { '\n', ' ', '\r', '\n' };
	const uint32_t known = VMDK_FLAG_NL_DETECT | VMDK_FLAG_RGD | VMDK_FLAG_ZERO_GRAIN |
			       VMDK_FLAG_COMPRESSED | VMDK_FLAG_MARKERS;
	unsigned long long B = (unsigned long long)base;

	if (memcmp(h, "KDMV", 4) != 0)
		return HDR_ERR("magic at offset %llu is %02x %02x %02x %02x, expected \"KDMV\"",
			       B, h[0], h[1], h[2], h[3]);
	k->version = scimg_le32(h + 4);
	k->flags = scimg_le32(h + 8);
	k->capacity = scimg_le64(h + 12);
	k->grain = scimg_le64(h + 20);
	k->desc_off = scimg_le64(h + 28);
	k->desc_size = scimg_le64(h + 36);
	k->gtes = scimg_le32(h + 44);
	k->rgd = scimg_le64(h + 48);
	k->gd = scimg_le64(h + 56);
	k->overhead = scimg_le64(h + 64);
	k->compress = scimg_le16(h + 77);
	if (k->version < 1 || k->version > 3)
		return HDR_ERR("version at offset %llu is %u, expected 1, 2 or 3", B + 4, k->version);
	if ((k->flags & 0xffff0000u) & ~known)
		return HDR_ERR("flags at offset %llu are 0x%08x, with incompatible features 0x%08x this reader does not know",
			       B + 8, k->flags, (k->flags & 0xffff0000u) & ~known);
	if (k->capacity > SCIMG_MAX_VIRTUAL_SIZE / VMDK_SECTOR)
		return HDR_ERR("capacity at offset %llu is %llu sectors, expected at most %llu",
			       B + 12, (unsigned long long)k->capacity,
			       (unsigned long long)(SCIMG_MAX_VIRTUAL_SIZE / VMDK_SECTOR));
	if (k->grain < 1 || k->grain > MAX_GRAIN_SECTORS)
		return HDR_ERR("grain size at offset %llu is %llu sectors, expected 1 to %u",
			       B + 20, (unsigned long long)k->grain, MAX_GRAIN_SECTORS);
	if (k->gtes < 1 || k->gtes > MAX_GT_ENTRIES)
		return HDR_ERR("grain table entries at offset %llu is %u, expected 1 to %u (normally 512)",
			       B + 44, k->gtes, MAX_GT_ENTRIES);
	if ((k->flags & VMDK_FLAG_NL_DETECT) && memcmp(h + 73, nl, 4) != 0)
		return HDR_ERR("newline check bytes at offset %llu are %02x %02x %02x %02x, expected 0a 20 0d 0a (was the file copied in text mode?)",
			       B + 73, h[73], h[74], h[75], h[76]);
	if (k->compress > VMDK_COMPRESS_DEFLATE)
		return HDR_ERR("compression algorithm at offset %llu is %u, expected 0 (none) or 1 (deflate)",
			       B + 77, k->compress);
	if ((k->flags & VMDK_FLAG_COMPRESSED) && k->compress != VMDK_COMPRESS_DEFLATE)
		return HDR_ERR("compression algorithm at offset %llu is %u while flags say compressed, expected 1 (deflate)",
			       B + 77, k->compress);
	if (k->capacity && k->gd == 0)
		return HDR_ERR("grain directory offset at offset %llu is 0, expected a sector number",
			       B + 56);
	return 0;
}

/* Set up E (src set) from the KDMV header H of its file; LIMIT is the
 * size in bytes the extent must cover. */
static int kdmv_open(struct scimg_image *img, struct vmdk_extent *e,
		     const uint8_t *h, uint64_t limit)
{
	const char *name = e->src->name, *what = "header";
	uint8_t foot[1536];
	struct kdmv_hdr k;
	uint64_t cover, need;
	int ret;

	if ((ret = kdmv_parse(img, name, h, 0, "header", &k)) < 0)
		return ret;
	if (k.gd == VMDK_GD_AT_END) {
		uint64_t fo;

		what = "streamOptimized footer";
		if (e->src->size < 512 + sizeof(foot))
			return HDR_ERR("is missing: the file is %llu bytes, too short for a footer",
				       (unsigned long long)e->src->size);
		fo = (e->src->size & ~(uint64_t)511) - sizeof(foot);
		if ((ret = scimg_int_source_read(e->src, foot, sizeof(foot), fo, "streamOptimized footer")) < 0)
			return ret;
		if (scimg_le32(foot + 8) != 0 || scimg_le32(foot + 12) != VMDK_MARKER_FOOTER)
			return HDR_ERR("marker at offset %llu has size %u type %u, expected size 0 type %d (footer); the stream may be truncated",
				       (unsigned long long)fo, scimg_le32(foot + 8),
				       scimg_le32(foot + 12), VMDK_MARKER_FOOTER);
		if (scimg_le64(foot + 1024) != 0 || scimg_le32(foot + 1032) != 0 ||
		    scimg_le32(foot + 1036) != VMDK_MARKER_EOS)
			return HDR_ERR("end-of-stream marker at offset %llu is not one (type %u), expected type 0 with value 0",
				       (unsigned long long)fo + 1024, scimg_le32(foot + 1036));
		if ((ret = kdmv_parse(img, name, foot + 512, fo + 512, what, &k)) < 0)
			return ret;
		if (k.gd == VMDK_GD_AT_END)
			return HDR_ERR("grain directory offset at offset %llu is still 'at end', expected a sector number",
				       (unsigned long long)fo + 512 + 56);
		e->footer = 1;
	}
	e->kind = EXT_KDMV;
	e->version = k.version;
	e->flags = k.flags;
	e->compress_alg = k.compress;
	e->grain = k.grain * VMDK_SECTOR;
	e->gt_entries = k.gtes;
	e->gte_size = 4;
	e->compressed = k.compress == VMDK_COMPRESS_DEFLATE;
	e->markers = (k.flags & VMDK_FLAG_MARKERS) != 0;
	e->zero_grain = (k.flags & VMDK_FLAG_ZERO_GRAIN) != 0;
	e->overhead = k.overhead * VMDK_SECTOR;
	if (limit == UINT64_MAX)
		limit = k.capacity * VMDK_SECTOR;
	if (k.capacity * VMDK_SECTOR < limit)
		return HDR_ERR("capacity at offset %llu is %llu sectors, expected at least %llu (the extent's size)",
			       (unsigned long long)(e->footer ? 0 : 12), (unsigned long long)k.capacity,
			       (unsigned long long)(limit / VMDK_SECTOR));
	if (k.overhead > e->src->size / VMDK_SECTOR + 1)
		return HDR_ERR("overhead (first grain) is sector %llu, beyond the end of the file (%llu bytes): file truncated?",
			       (unsigned long long)k.overhead, (unsigned long long)e->src->size);
	e->size = limit;
	cover = e->grain * e->gt_entries;
	need = limit / cover + (limit % cover != 0);
	if (need > MAX_GD_ENTRIES)
		return HDR_ERR("grain directory would need %llu entries for %llu bytes, expected at most %u",
			       (unsigned long long)need, (unsigned long long)limit, MAX_GD_ENTRIES);
	e->gd_entries = (uint32_t)need;
	if (k.gd > UINT64_MAX / VMDK_SECTOR || k.rgd > UINT64_MAX / VMDK_SECTOR)
		return HDR_ERR("grain directory sector %llu is out of range",
			       (unsigned long long)(k.gd > k.rgd ? k.gd : k.rgd));
	e->gd_off = k.gd * VMDK_SECTOR;
	if ((k.flags & VMDK_FLAG_RGD) && k.rgd)
		e->rgd_off = k.rgd * VMDK_SECTOR;
	if (!need)
		return 0;
	ret = read_gd(img, e, e->gd_off, e->gd_entries, "grain directory", &e->gd);
	if (e->rgd_off) {
		int r2 = read_gd(img, e, e->rgd_off, e->gd_entries, "redundant grain directory", &e->rgd);
		if (ret < 0 && r2 == 0) {
			/* the primary is lost: use the redundant copy */
			e->gd = e->rgd;
			e->rgd = NULL;
			e->rgd_used = 1;
			ret = 0;
		} else if (r2 < 0) {
			e->rgd = NULL;
			if (ret == 0)
				scimg_ctx_clear_error(img->ctx);
		}
	}
	return ret;
}

/* ---- ESX sparse extents (COWD) ---------------------------------------- */

static int cowd_open(struct scimg_image *img, struct vmdk_extent *e,
		     const uint8_t *h, uint64_t limit)
{
	const char *name = e->src->name, *what = "COWD header";
	uint32_t version = scimg_le32(h + 4), cap = scimg_le32(h + 12);
	uint32_t gran = scimg_le32(h + 16), gdo = scimg_le32(h + 20);
	uint32_t gdn = scimg_le32(h + 24);
	uint64_t cover, need;

	if (version < 1 || version > 3)
		return HDR_ERR("version at offset 4 is %u, expected 1", version);
	if (limit == UINT64_MAX)
		limit = (uint64_t)cap * VMDK_SECTOR;
	if ((uint64_t)cap * VMDK_SECTOR < limit)
		return HDR_ERR("capacity at offset 12 is %u sectors, expected at least %llu",
			       cap, (unsigned long long)(limit / VMDK_SECTOR));
	if (gran < 1 || gran > MAX_GRAIN_SECTORS)
		return HDR_ERR("grain size at offset 16 is %u sectors, expected 1 to %u",
			       gran, MAX_GRAIN_SECTORS);
	e->kind = EXT_COWD;
	e->version = version;
	e->flags = scimg_le32(h + 8);
	e->grain = (uint64_t)gran * VMDK_SECTOR;
	e->gt_entries = COWD_GT_ENTRIES;
	e->gte_size = 4;
	e->size = limit;
	cover = e->grain * COWD_GT_ENTRIES;
	need = limit / cover + (limit % cover != 0);
	if (gdn < need || gdn > MAX_GD_ENTRIES)
		return HDR_ERR("grain directory entries at offset 24 is %u, expected %llu to %u",
			       gdn, (unsigned long long)need, MAX_GD_ENTRIES);
	if (need && gdo == 0)
		return HDR_ERR("grain directory offset at offset 20 is 0, expected a sector number");
	e->gd_entries = (uint32_t)need;
	e->gd_off = (uint64_t)gdo * VMDK_SECTOR;
	if (!need)
		return 0;
	return read_gd(img, e, e->gd_off, e->gd_entries, "grain directory", &e->gd);
}

/* ---- seSparse extents --------------------------------------------------- */

static int sesparse_open(struct scimg_image *img, struct vmdk_extent *e,
			 const uint8_t *h, uint64_t limit)
{
	const char *name = e->src->name, *what = "seSparse header";
	uint64_t f[26], vh_off, need, gdn, gdbytes, end;
	uint8_t vh[512];
	uint32_t *gd;
	int ret;

	for (int i = 0; i < 26; i++)
		f[i] = scimg_le64(h + 8 * i);
	if (f[0] != SESPARSE_MAGIC)
		return HDR_ERR("magic at offset 0 is 0x%016llx, expected 0x00000000cafebabe",
			       (unsigned long long)f[0]);
	if (f[1] != SESPARSE_VERSION)
		return HDR_ERR("version at offset 8 is 0x%016llx, expected 0x0000000200000001",
			       (unsigned long long)f[1]);
	if (f[3] != 8)
		return HDR_ERR("grain size at offset 24 is %llu sectors, expected 8",
			       (unsigned long long)f[3]);
	if (f[4] != 64)
		return HDR_ERR("grain table size at offset 32 is %llu sectors, expected 64",
			       (unsigned long long)f[4]);
	if (f[5] != 0)
		return HDR_ERR("flags at offset 40 are 0x%016llx, expected 0",
			       (unsigned long long)f[5]);
	if (limit == UINT64_MAX && f[2] <= SCIMG_MAX_VIRTUAL_SIZE / VMDK_SECTOR)
		limit = f[2] * VMDK_SECTOR;
	if (f[2] > SCIMG_MAX_VIRTUAL_SIZE / VMDK_SECTOR || f[2] * VMDK_SECTOR < limit)
		return HDR_ERR("capacity at offset 16 is %llu sectors, expected %llu to %llu",
			       (unsigned long long)f[2], (unsigned long long)(limit / VMDK_SECTOR),
			       (unsigned long long)(SCIMG_MAX_VIRTUAL_SIZE / VMDK_SECTOR));
	for (int i = 10; i < 26; i++)
		if (f[i] > UINT64_MAX / VMDK_SECTOR / 2)
			return HDR_ERR("field at offset %d is %llu sectors, out of range",
				       8 * i, (unsigned long long)f[i]);
	vh_off = f[10] * VMDK_SECTOR;
	if (vh_off > e->src->size || e->src->size - vh_off < sizeof(vh))
		return HDR_ERR("volatile header offset at offset 80 is sector %llu, beyond the end of the file",
			       (unsigned long long)f[10]);
	if ((ret = scimg_int_source_read(e->src, vh, sizeof(vh), vh_off, "seSparse volatile header")) < 0)
		return ret;
	if (scimg_le64(vh) != SESPARSE_VOLATILE_MAGIC)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': seSparse volatile header magic at offset %llu is 0x%016llx, expected 0x00000000cafecafe",
				     name, (unsigned long long)vh_off, (unsigned long long)scimg_le64(vh));
	if (scimg_le64(vh + 24) != 0)
		return scimg_int_err(img->ctx, -ENOTSUP,
				     "'%s': seSparse journal at offset %llu needs replaying (replay flag at offset %llu is set): the disk was not closed cleanly",
				     name, (unsigned long long)f[14] * VMDK_SECTOR,
				     (unsigned long long)vh_off + 24);
	e->kind = EXT_SESPARSE;
	e->grain = 8 * VMDK_SECTOR;
	e->gt_entries = 64 * VMDK_SECTOR / 8;
	e->gte_size = 8;
	e->size = limit;
	e->se_gt_off = f[18] * VMDK_SECTOR;
	e->se_grains_off = f[24] * VMDK_SECTOR;
	need = limit / (e->grain * e->gt_entries) + (limit % (e->grain * e->gt_entries) != 0);
	gdn = f[17] * VMDK_SECTOR / 8;
	if (gdn < need || need > MAX_GD_ENTRIES)
		return HDR_ERR("grain directory size at offset 136 is %llu sectors (%llu entries), expected room for %llu entries (at most %u)",
			       (unsigned long long)f[17], (unsigned long long)gdn,
			       (unsigned long long)need, MAX_GD_ENTRIES);
	e->gd_entries = (uint32_t)need;
	e->gd_off = f[16] * VMDK_SECTOR;
	gdbytes = need * 8;
	if (!scimg_add_ok(e->gd_off, gdbytes, &end) || end > e->src->size)
		return HDR_ERR("grain directory at offset %llu extends beyond the end of the file",
			       (unsigned long long)e->gd_off);
	if (!need)
		return 0;
	gd = malloc((size_t)need * 4);
	{
		uint8_t *raw = malloc((size_t)gdbytes);
		if (!gd || !raw) {
			free(gd);
			free(raw);
			return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		}
		ret = scimg_int_source_read(e->src, raw, (size_t)gdbytes, e->gd_off, "seSparse grain directory");
		for (uint64_t i = 0; ret == 0 && i < need; i++) {
			uint64_t v = scimg_le64(raw + 8 * i);
			if (v == 0) {
				gd[i] = 0;
			} else if ((v >> 32) != 0x10000000u || (v & 0xffffffffu) >= 0xffffffffu) {
				ret = HDR_ERR("grain directory entry %llu at offset %llu is 0x%016llx, expected 0 or 0x10000000xxxxxxxx",
					      (unsigned long long)i, (unsigned long long)(e->gd_off + 8 * i),
					      (unsigned long long)v);
			} else {
				gd[i] = (uint32_t)(v & 0xffffffffu) + 1;
			}
		}
		free(raw);
	}
	if (ret < 0) {
		free(gd);
		return ret;
	}
	e->gd = gd;
	return 0;
}

/* Open the sparse file of E (src set) whose first sector is H. */
static int sparse_open(struct scimg_image *img, struct vmdk_extent *e,
		       const uint8_t *h, size_t hl, uint64_t limit)
{
	int known = (hl >= 4 && (!memcmp(h, "KDMV", 4) || !memcmp(h, "COWD", 4))) ||
		    (hl >= 8 && scimg_le64(h) == SESPARSE_MAGIC);

	if (known && hl < 512)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': file is %zu bytes, too short for a VMDK sparse extent header (512 bytes)",
				     e->src->name, hl);
	if (known && memcmp(h, "KDMV", 4) == 0)
		return kdmv_open(img, e, h, limit);
	if (known && memcmp(h, "COWD", 4) == 0)
		return cowd_open(img, e, h, limit);
	if (known)
		return sesparse_open(img, e, h, limit);
	return scimg_int_err(img->ctx, -EINVAL,
			     "'%s': VMDK sparse extent magic at offset 0 is %02x %02x %02x %02x, expected \"KDMV\", \"COWD\" or the seSparse magic",
			     e->src->name, hl > 0 ? h[0] : 0, hl > 1 ? h[1] : 0,
			     hl > 2 ? h[2] : 0, hl > 3 ? h[3] : 0);
}

/* ---- grain lookup ------------------------------------------------------- */

/* The grain table T of E, through the cache. */
static int gt_get(struct scimg_image *img, const struct vmdk_extent *e,
		  uint32_t t, const uint8_t **tab)
{
	struct vmdk_state *s = img->priv;
	size_t bytes = (size_t)e->gt_entries * e->gte_size;
	struct gt_slot *v = NULL;
	uint64_t off, end;
	int i, ret;

	for (i = 0; i < GT_CACHE; i++) {
		struct gt_slot *c = &s->cache[i];
		if (c->ext == e && c->idx == t) {
			c->stamp = ++s->clock;
			*tab = c->tab;
			return 0;
		}
		if (!v || c->stamp < v->stamp)
			v = c;
	}
	if (e->kind == EXT_SESPARSE)
		off = e->se_gt_off + (uint64_t)(e->gd[t] - 1) * bytes;
	else
		off = (uint64_t)e->gd[t] * VMDK_SECTOR;
	if (!scimg_add_ok(off, bytes, &end) || end > e->src->size) {
		if (e->rgd && e->rgd[t] &&
		    (uint64_t)e->rgd[t] * VMDK_SECTOR + bytes <= e->src->size) {
			off = (uint64_t)e->rgd[t] * VMDK_SECTOR; /* redundant copy */
		} else {
			return scimg_int_err(img->ctx, -EINVAL,
					     "'%s': VMDK grain table %u at offset %llu (grain directory entry at offset %llu) extends beyond the end of the file (%llu bytes)",
					     ext_name(e), t, (unsigned long long)off,
					     (unsigned long long)(e->gd_off + (uint64_t)t * (e->kind == EXT_SESPARSE ? 8 : 4)),
					     (unsigned long long)e->src->size);
		}
	}
	if (v->cap < bytes) {
		uint8_t *nt = realloc(v->tab, bytes);
		if (!nt)
			return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		v->tab = nt;
		v->cap = bytes;
	}
	v->ext = NULL;
	ret = scimg_int_source_read(e->src, v->tab, bytes, off, "grain table");
	if (ret < 0)
		return ret;
	v->ext = e;
	v->idx = t;
	v->stamp = ++s->clock;
	*tab = v->tab;
	return 0;
}

/* Where the byte REL of sparse extent E lives; *SPAN is how many bytes
 * from REL share that answer (to the end of the grain, or of the grain
 * table when the whole table is unallocated). */
static int lookup_nolock(struct scimg_image *img, const struct vmdk_extent *e,
			 uint64_t rel, struct gloc *gl, uint64_t *span)
{
	uint64_t gidx = rel / e->grain, cover = e->grain * e->gt_entries;
	uint64_t t = gidx / e->gt_entries, i = gidx % e->gt_entries;
	const uint8_t *tab = NULL;
	int ret;

	gl->cl = G_HOLE;
	gl->foff = 0;
	*span = e->grain - rel % e->grain;
	if (t >= e->gd_entries || e->gd[t] == 0) {
		*span = cover - rel % cover;
		return 0;
	}
	if ((ret = gt_get(img, e, (uint32_t)t, &tab)) < 0)
		return ret;
	if (e->kind == EXT_SESPARSE) {
		uint64_t v = scimg_le64(tab + 8 * i), idx;
		switch (v >> 60) {
		case 0:
			if (v != 0)
				goto bad64;
			return 0;
		case 1: /* unmapped */
		case 2: /* zero */
			gl->cl = G_ZERO;
			return 0;
		case 3:
			idx = ((v & UINT64_C(0x0fff000000000000)) >> 48) |
			      ((v & UINT64_C(0x0000ffffffffffff)) << 12);
			if (idx > (UINT64_MAX - e->se_grains_off) / e->grain)
				goto bad64;
			gl->cl = G_DATA;
			gl->foff = e->se_grains_off + idx * e->grain;
			return 0;
		default:
		bad64:
			return scimg_int_err(img->ctx, -EINVAL,
					     "'%s': seSparse grain table entry %llu of table %llu is 0x%016llx, expected an unallocated, zero or allocated entry",
					     ext_name(e), (unsigned long long)i,
					     (unsigned long long)t, (unsigned long long)v);
		}
	} else {
		uint32_t v = scimg_le32(tab + 4 * i);
		if (v == 0)
			return 0;
		if (v == 1 && e->zero_grain) {
			gl->cl = G_ZERO;
			return 0;
		}
		gl->cl = e->compressed ? G_COMP : G_DATA;
		gl->foff = (uint64_t)v * VMDK_SECTOR;
	}
	return 0;
}

static int lookup(struct scimg_image *img, const struct vmdk_extent *e,
		  uint64_t rel, struct gloc *gl, uint64_t *span)
{
	struct vmdk_state *s = img->priv;
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = lookup_nolock(img, e, rel, gl, span);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* Inflate grain GIDX of E (marker or data at FOFF) into OUT (e->grain
 * bytes) with the scratch *ZP (allocated on first use). */
static int inflate_grain(struct scimg_image *img, const struct vmdk_extent *e,
			 uint64_t gidx, uint64_t foff, uint8_t *out,
			 struct zscratch **zp)
{
	struct zscratch *z = *zp;
	uint64_t need = e->size - gidx * e->grain, dpos = foff, avail, got;
	size_t clen, cmax = (size_t)compressBound((uLong)e->grain) + 512;
	int ret, zr;

	if (need > e->grain)
		need = e->grain;
	if (!z) {
		z = *zp = calloc(1, sizeof(*z));
		if (!z)
			return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	}
	if (z->cap < cmax) {
		uint8_t *p = realloc(z->in, cmax);
		if (!p)
			return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		z->in = p;
		z->cap = cmax;
	}
	if (foff >= e->src->size)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': VMDK compressed grain %llu at offset %llu lies beyond the end of the file (%llu bytes)",
				     ext_name(e), (unsigned long long)gidx, (unsigned long long)foff,
				     (unsigned long long)e->src->size);
	avail = e->src->size - foff;
	if (e->markers) {
		uint8_t m[12];
		uint64_t lba, want = gidx * e->grain / VMDK_SECTOR;

		if (avail < sizeof(m))
			return scimg_int_err(img->ctx, -EINVAL,
					     "'%s': VMDK grain marker at offset %llu is cut off by the end of the file",
					     ext_name(e), (unsigned long long)foff);
		if ((ret = scimg_int_source_read(e->src, m, sizeof(m), foff, "grain marker")) < 0)
			return ret;
		lba = scimg_le64(m);
		clen = scimg_le32(m + 8);
		if (lba != want)
			return scimg_int_err(img->ctx, -EINVAL,
					     "'%s': VMDK grain marker at offset %llu has LBA %llu, expected %llu (grain table and data disagree)",
					     ext_name(e), (unsigned long long)foff,
					     (unsigned long long)lba, (unsigned long long)want);
		if (clen == 0 || clen > cmax || clen > avail - sizeof(m))
			return scimg_int_err(img->ctx, -EINVAL,
					     "'%s': VMDK grain marker at offset %llu has compressed size %zu, expected 1 to %zu within the file",
					     ext_name(e), (unsigned long long)(foff + 8), clen,
					     cmax < avail - sizeof(m) ? cmax : (size_t)(avail - sizeof(m)));
		dpos = foff + sizeof(m);
	} else {
		clen = avail < cmax ? (size_t)avail : cmax;
	}
	if ((ret = scimg_int_source_read(e->src, z->in, clen, dpos, "compressed grain")) < 0)
		return ret;
	if (!z->init) {
		memset(&z->zs, 0, sizeof(z->zs));
		if (inflateInit2(&z->zs, 15 + 32) != Z_OK)
			return scimg_int_err(img->ctx, -ENOMEM, "out of memory (zlib)");
		z->init = 1;
	} else if (inflateReset(&z->zs) != Z_OK) {
		return scimg_int_err(img->ctx, -EIO, "zlib reset failed");
	}
	z->zs.next_in = z->in;
	z->zs.avail_in = (uInt)clen;
	z->zs.next_out = out;
	z->zs.avail_out = (uInt)e->grain;
	zr = inflate(&z->zs, Z_FINISH);
	got = e->grain - z->zs.avail_out;
	if (zr != Z_STREAM_END) {
		if (z->zs.avail_out == 0 && zr != Z_DATA_ERROR)
			return scimg_int_err(img->ctx, -EINVAL,
					     "'%s': VMDK compressed grain %llu at offset %llu inflates to more than the grain size %llu",
					     ext_name(e), (unsigned long long)gidx, (unsigned long long)dpos,
					     (unsigned long long)e->grain);
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': VMDK compressed grain %llu at offset %llu (%zu bytes) is corrupt: %s",
				     ext_name(e), (unsigned long long)gidx, (unsigned long long)dpos, clen,
				     z->zs.msg ? z->zs.msg : (zr == Z_BUF_ERROR ? "data cut short" : "inflate failed"));
	}
	if (got < need)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': VMDK compressed grain %llu at offset %llu inflates to %llu bytes, expected %llu",
				     ext_name(e), (unsigned long long)gidx, (unsigned long long)dpos,
				     (unsigned long long)got, (unsigned long long)need);
	memset(out + got, 0, (size_t)(e->grain - got));
	return 0;
}

/* Copy N bytes at IN of grain GIDX into BUF through the one-grain cache
 * (reads of part of a grain); takes the lock. */
static int read_comp_cached(struct scimg_image *img, const struct vmdk_extent *e,
			    uint64_t gidx, uint64_t foff, uint8_t *buf,
			    size_t in, size_t n)
{
	struct vmdk_state *s = img->priv;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	if (s->z_ext != e || s->z_idx != gidx) {
		s->z_ext = NULL;
		if (s->z_out_cap < e->grain) {
			uint8_t *p = realloc(s->z_out, (size_t)e->grain);
			if (!p) {
				ret = scimg_int_err(img->ctx, -ENOMEM, "out of memory");
				goto out;
			}
			s->z_out = p;
			s->z_out_cap = (size_t)e->grain;
		}
		if ((ret = inflate_grain(img, e, gidx, foff, s->z_out, &s->zc)) < 0)
			goto out;
		s->z_ext = e;
		s->z_idx = gidx;
	}
	memcpy(buf, s->z_out + in, n);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* ---- reading ------------------------------------------------------------ */

static const struct vmdk_extent *find_extent(const struct vmdk_state *s,
					     uint64_t off)
{
	size_t lo = 0, hi = s->n_ext;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->ext[mid].start <= off)
			lo = mid;
		else
			hi = mid;
	}
	return &s->ext[lo];
}

static int parent_read(struct scimg_image *img, uint8_t *buf, size_t len,
		       uint64_t off)
{
	struct vmdk_state *s = img->priv;
	uint64_t ps;
	size_t n;

	if (!s->parent) {
		memset(buf, 0, len);
		return 0;
	}
	ps = scimg_image_size(s->parent);
	n = off >= ps ? 0 : (ps - off < len ? (size_t)(ps - off) : len);
	if (n) {
		int ret = scimg_image_pread(s->parent, buf, n, off);
		if (ret < 0)
			return ret;
	}
	memset(buf + n, 0, len - n);
	return 0;
}

static int noaccess(struct scimg_image *img, const struct vmdk_extent *e)
{
	return scimg_int_err(img->ctx, -EACCES,
			     "'%s': extent '%s' is marked NOACCESS in the descriptor",
			     img->path, e->file);
}

static int sparse_read(struct scimg_image *img, const struct vmdk_extent *e,
		       uint8_t *buf, size_t len, uint64_t rel)
{
	struct zscratch *z = NULL;
	int ret = 0;

	while (len) {
		struct gloc gl;
		uint64_t span, in = rel % e->grain;
		size_t n;

		if ((ret = lookup(img, e, rel, &gl, &span)) < 0)
			break;
		n = span < len ? (size_t)span : len;
		switch (gl.cl) {
		case G_HOLE:
			ret = parent_read(img, buf, n, e->start + rel);
			break;
		case G_ZERO:
			memset(buf, 0, n);
			break;
		case G_DATA: {
			uint64_t foff = gl.foff + in;
			/* read physically contiguous grains at once */
			while (n < len) {
				struct gloc g2;
				uint64_t sp2;
				if ((ret = lookup(img, e, rel + n, &g2, &sp2)) < 0)
					goto out;
				if (g2.cl != G_DATA || g2.foff != foff + n)
					break;
				n += sp2 < len - n ? (size_t)sp2 : len - n;
			}
			ret = scimg_int_source_read(e->src, buf, n, foff, "grain data");
			break;
		}
		case G_COMP:
			/* whole grains inflate straight into BUF, unlocked */
			if (in == 0 && n == e->grain)
				ret = inflate_grain(img, e, rel / e->grain, gl.foff, buf, &z);
			else
				ret = read_comp_cached(img, e, rel / e->grain, gl.foff, buf,
						       (size_t)in, n);
			break;
		}
		if (ret < 0)
			break;
		buf += n;
		len -= n;
		rel += n;
	}
out:
	zscratch_free(z);
	return ret;
}

static int vmdk_pread_locked(struct scimg_image *img, void *buf, size_t len,
			     uint64_t off);

static int vmdk_pread(struct scimg_image *img, void *buf, size_t len,
		      uint64_t off)
{
	struct vmdk_state *s = img->priv;
	int ret;

	if (!s->serialize)
		return vmdk_pread_locked(img, buf, len, off);
	pthread_mutex_lock(&s->io_lock);
	ret = vmdk_pread_locked(img, buf, len, off);
	pthread_mutex_unlock(&s->io_lock);
	return ret;
}

/* The read itself; thread-safe as long as the byte sources are. */
static int vmdk_pread_locked(struct scimg_image *img, void *buf, size_t len,
			     uint64_t off)
{
	struct vmdk_state *s = img->priv;
	uint8_t *p = buf;
	int ret = 0;

	while (len) {
		const struct vmdk_extent *e = find_extent(s, off);
		uint64_t rel = off - e->start;
		size_t n = e->size - rel < len ? (size_t)(e->size - rel) : len;

		if (e->access == VMDK_ACCESS_NOACCESS)
			return noaccess(img, e);
		switch (e->kind) {
		case EXT_FLAT:
			ret = scimg_int_source_read(e->src, p, n, e->flat_off + rel, "flat extent");
			break;
		case EXT_ZERO:
			memset(p, 0, n);
			break;
		default:
			ret = sparse_read(img, e, p, n, rel);
			break;
		}
		if (ret < 0)
			return ret;
		p += n;
		len -= n;
		off += n;
	}
	return 0;
}

static int block_status_locked(struct scimg_image *img, uint64_t off,
			       uint64_t len, struct scimg_extent *ext);

static int vmdk_block_status(struct scimg_image *img, uint64_t off,
			     uint64_t len, struct scimg_extent *ext)
{
	struct vmdk_state *s = img->priv;
	int ret;

	if (!s->serialize)
		return block_status_locked(img, off, len, ext);
	pthread_mutex_lock(&s->io_lock);
	ret = block_status_locked(img, off, len, ext);
	pthread_mutex_unlock(&s->io_lock);
	return ret;
}

static int block_status_locked(struct scimg_image *img, uint64_t off,
			       uint64_t len, struct scimg_extent *ext)
{
	struct vmdk_state *s = img->priv;
	const struct vmdk_extent *e = find_extent(s, off);
	uint64_t rel = off - e->start, lim = e->size - rel, n;
	enum gclass cl;
	struct gloc gl;
	unsigned steps;
	int ret;

	if (lim > len)
		lim = len;
	ext->offset = off;
	ext->length = lim;
	ext->type = SCIMG_EXTENT_DATA;
	if (e->kind == EXT_ZERO) {
		ext->type = SCIMG_EXTENT_ZERO;
		return 0;
	}
	if (e->kind == EXT_FLAT) {
		if (e->src->ops->block_status && e->access != VMDK_ACCESS_NOACCESS) {
			struct scimg_extent fe;
			ret = e->src->ops->block_status(e->src, e->flat_off + rel, lim, &fe);
			if (ret < 0)
				return ret;
			if (fe.length && fe.length < lim)
				ext->length = fe.length;
			if (fe.type != SCIMG_EXTENT_DATA)
				ext->type = SCIMG_EXTENT_ZERO;
		}
		return 0;
	}
	if ((ret = lookup(img, e, rel, &gl, &n)) < 0)
		return ret;
	cl = gl.cl == G_COMP ? G_DATA : gl.cl;
	for (steps = 0; n < lim && steps < 65536; steps++) {
		uint64_t sp;
		if ((ret = lookup(img, e, rel + n, &gl, &sp)) < 0)
			return ret;
		if ((gl.cl == G_COMP ? G_DATA : gl.cl) != cl)
			break;
		n += sp;
	}
	if (n > lim)
		n = lim;
	ext->length = n;
	if (cl == G_DATA)
		return 0;
	ext->type = cl == G_ZERO ? SCIMG_EXTENT_ZERO : SCIMG_EXTENT_HOLE;
	if (cl == G_HOLE && s->parent) {
		uint64_t ps = scimg_image_size(s->parent);
		if (off < ps) {
			if (n > ps - off)
				n = ps - off;
			ret = scimg_image_block_status(s->parent, off, n, ext);
			if (ret < 0)
				return ret;
			ext->offset = off;
		}
	}
	return 0;
}

/* ---- open ----------------------------------------------------------------- */

static int extent_is_flat(const char *t)
{
	return !strcmp(t, "FLAT") || !strcmp(t, "VMFS") || !strcmp(t, "VMFSRAW") ||
	       !strcmp(t, "VMFSRDM");
}

static int extent_is_sparse(const char *t)
{
	return !strcmp(t, "SPARSE") || !strcmp(t, "VMFSSPARSE") || !strcmp(t, "SESPARSE");
}

/* Open every extent the parsed descriptor s->desc lists. */
static int open_desc_extents(struct scimg_image *img)
{
	struct vmdk_state *s = img->priv;
	struct vmdk_desc *d = &s->desc;
	uint64_t total = 0;
	size_t i;
	int ret;

	if (!d->create_type)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': VMDK descriptor has no createType, expected e.g. createType=\"monolithicFlat\"",
				     img->path);
	if (d->n_ext == 0)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': VMDK descriptor (createType \"%s\") lists no extents",
				     img->path, d->create_type);
	for (i = 0; i < d->n_ext; i++) {
		const struct vmdk_desc_extent *x = &d->ext[i];
		struct vmdk_extent *e;

		if (!extent_is_flat(x->type) && !extent_is_sparse(x->type) && strcmp(x->type, "ZERO"))
			return scimg_int_err(img->ctx, -ENOTSUP,
					     "'%s': VMDK descriptor line %u: extent type '%s' is not supported, expected FLAT, SPARSE, ZERO, VMFS, VMFSRDM, VMFSRAW, VMFSSPARSE or SESPARSE",
					     img->path, x->line, x->type);
		if (x->sectors > SCIMG_MAX_VIRTUAL_SIZE / VMDK_SECTOR ||
		    total + x->sectors * VMDK_SECTOR > SCIMG_MAX_VIRTUAL_SIZE)
			return scimg_int_err(img->ctx, -EFBIG,
					     "'%s': VMDK descriptor line %u: extent size %llu sectors makes the disk larger than %llu bytes",
					     img->path, x->line, (unsigned long long)x->sectors,
					     (unsigned long long)SCIMG_MAX_VIRTUAL_SIZE);
		if (!(e = add_extent(img)))
			return -ENOMEM;
		e->access = x->access;
		snprintf(e->type, sizeof(e->type), "%s", x->type);
		e->start = total;
		e->size = x->sectors * VMDK_SECTOR;
		total += e->size;
		if (!strcmp(x->type, "ZERO")) {
			e->kind = EXT_ZERO;
			e->file = strdup("");
			if (!e->file)
				return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
			continue;
		}
		e->file = strdup(x->file);
		if (!e->file)
			return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		ret = scimg_int_ref_open(img, x->file, &e->src);
		if (ret < 0)
			scimg_int_err_prefix(img->ctx, "'%s': extent file '%s' (descriptor line %u)",
					     img->path, x->file, x->line);
		if ((ret = scimg_int_ref_unopened(img, ret)) < 0)
			return ret;
		if (!e->src) { /* SCIMG_CTX_HEADER_ONLY: no data is read */
			e->kind = EXT_ZERO;
			continue;
		}
		e->own_src = 1; /* recorded in the chain by scimg_int_ref_open */
		if (extent_is_flat(x->type)) {
			uint64_t end;
			e->kind = EXT_FLAT;
			if (x->offset > UINT64_MAX / VMDK_SECTOR ||
			    !scimg_add_ok(x->offset * VMDK_SECTOR, e->size, &end) ||
			    end > e->src->size)
				return scimg_int_err(img->ctx, -EINVAL,
						     "'%s': extent file '%s' is %llu bytes, shorter than the %llu sectors at sector %llu that descriptor line %u needs",
						     img->path, e->src->name, (unsigned long long)e->src->size,
						     (unsigned long long)x->sectors, (unsigned long long)x->offset,
						     x->line);
			e->flat_off = x->offset * VMDK_SECTOR;
		} else {
			uint8_t h[512];
			size_t hl = e->src->size < sizeof(h) ? (size_t)e->src->size : sizeof(h);

			if (hl && (ret = scimg_int_source_read(e->src, h, hl, 0, "sparse extent header")) < 0)
				return ret;
			if ((ret = sparse_open(img, e, h, hl, e->size)) < 0)
				return ret;
		}
	}
	img->size = total;
	return 0;
}

static int open_parent(struct scimg_image *img)
{
	struct vmdk_state *s = img->priv;
	struct vmdk_desc *d = &s->desc;
	struct vmdk_state *ps;
	int ret;

	if (!s->have_desc || !d->has_parent_cid || d->parent_cid == 0xffffffffu)
		return 0;
	if (!d->parent_hint)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': VMDK descriptor has parentCID=%08x (a delta disk) but no parentFileNameHint naming the parent",
				     img->path, d->parent_cid);
	ret = scimg_int_open_child(img, d->parent_hint, "vmdk", 0, &s->parent);
	if (ret < 0)
		scimg_int_err_prefix(img->ctx, "'%s': parent disk '%s'", img->path,
				     d->parent_hint);
	if ((ret = scimg_int_ref_unopened(img, ret)) != 0)
		return ret < 0 ? ret : 0;
	/* the parent must be the disk the delta was made from: a CID is
	 * required and must match (the parent's own CID is not shown) */
	ps = s->parent->priv;
	if (!(img->ctx->flags & SCIMG_CTX_TRUST_CHAIN) &&
	    (!ps || !ps->have_desc || !ps->desc.has_cid))
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': parent disk '%s' has no CID, so it cannot be verified as the disk this delta was made from (--trust-chain accepts it)",
				     img->path, scimg_image_path(s->parent));
	if (ps && ps->have_desc && ps->desc.has_cid && ps->desc.cid != d->parent_cid)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': parent disk '%s' does not match: its CID differs from this delta's parentCID (the parent changed after the delta was made, or it is another disk)",
				     img->path, scimg_image_path(s->parent));
	return 0;
}

static int read_text(struct scimg_image *img, uint64_t off, uint64_t len,
		     char **out)
{
	char *t;
	int ret;

	*out = NULL;
	t = malloc((size_t)len + 1);
	if (!t)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	if (len && (ret = scimg_int_source_read(img->src, t, (size_t)len, off, "descriptor")) < 0) {
		free(t);
		return ret;
	}
	t[len] = '\0';
	*out = t;
	return 0;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static int open_monolithic(struct scimg_image *img, const uint8_t *h, size_t hl)
{
	struct vmdk_state *s = img->priv;
	struct vmdk_extent *e;
	const char *ct;
	int ret;

	if (!(e = add_extent(img)))
		return -ENOMEM;
	e->src = img->src;
	e->access = VMDK_ACCESS_RW;
	e->file = strdup(base_name(img->path));
	if (!e->file)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	if ((ret = sparse_open(img, e, h, hl, UINT64_MAX)) < 0)
		return ret;
	if (e->kind == EXT_KDMV) {
		snprintf(e->type, sizeof(e->type), "SPARSE");
		ct = e->compressed ? "streamOptimized" : "monolithicSparse";
	} else if (e->kind == EXT_COWD) {
		snprintf(e->type, sizeof(e->type), "VMFSSPARSE");
		ct = "vmfsSparse";
	} else {
		snprintf(e->type, sizeof(e->type), "SESPARSE");
		ct = "seSparse";
	}
	img->size = e->size;
	if (e->kind == EXT_KDMV) {
		uint64_t doff = scimg_le64(h + 28), dsz = scimg_le64(h + 36);
		char *text;

		if (doff && dsz) {
			if (dsz > VMDK_DESC_MAX / VMDK_SECTOR)
				return scimg_int_err(img->ctx, -EINVAL,
						     "'%s': VMDK descriptor size at offset 36 is %llu sectors, expected at most %u",
						     img->path, (unsigned long long)dsz, VMDK_DESC_MAX / VMDK_SECTOR);
			if (doff > img->src->size / VMDK_SECTOR ||
			    doff * VMDK_SECTOR + dsz * VMDK_SECTOR > img->src->size)
				return scimg_int_err(img->ctx, -EINVAL,
						     "'%s': VMDK embedded descriptor at sector %llu (offset 28) with %llu sectors (offset 36) extends beyond the end of the file (%llu bytes)",
						     img->path, (unsigned long long)doff, (unsigned long long)dsz,
						     (unsigned long long)img->src->size);
			if ((ret = read_text(img, doff * VMDK_SECTOR, dsz * VMDK_SECTOR, &text)) < 0)
				return ret;
			ret = scimg_int_vmdk_desc_parse(img->ctx, img->path, doff * VMDK_SECTOR,
							text, (size_t)(dsz * VMDK_SECTOR), &s->desc);
			free(text);
			if (ret < 0)
				return ret;
			s->have_desc = 1;
		}
	}
	s->create_type = strdup(s->have_desc && s->desc.create_type ? s->desc.create_type : ct);
	if (!s->create_type)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	return 0;
}

static int vmdk_open(struct scimg_image *img)
{
	struct vmdk_state *s;
	uint8_t h[512];
	size_t hl;
	char *text;
	int ret;

	s = calloc(1, sizeof(*s));
	if (!s)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	img->priv = s;
	if (pthread_mutex_init(&s->lock, NULL) != 0) {
		free(s);
		img->priv = NULL;
		return scimg_int_err(img->ctx, -ENOMEM, "could not create a lock");
	}
	if (pthread_mutex_init(&s->io_lock, NULL) != 0) {
		pthread_mutex_destroy(&s->lock);
		free(s);
		img->priv = NULL;
		return scimg_int_err(img->ctx, -ENOMEM, "could not create a lock");
	}
	s->lock_init = 1;
	if (img->src->size < 4) {
		ret = scimg_int_err(img->ctx, -EINVAL, "'%s': file is %llu bytes, too small for a VMDK",
				    img->path, (unsigned long long)img->src->size);
		goto fail;
	}
	hl = img->src->size < sizeof(h) ? (size_t)img->src->size : sizeof(h);
	if ((ret = scimg_int_source_read(img->src, h, hl, 0, "header")) < 0)
		goto fail;
	if (hl >= 80 && memcmp(h, "KDMV", 4) == 0 && scimg_le64(h + 12) == 0 &&
	    scimg_le64(h + 28) != 0) {
		/* a "sparse" file that only carries a descriptor */
		uint64_t doff = scimg_le64(h + 28), dsz = img->src->size;
		if (doff > dsz / VMDK_SECTOR) {
			ret = scimg_int_err(img->ctx, -EINVAL,
					    "'%s': VMDK descriptor offset at offset 28 is sector %llu, beyond the end of the file",
					    img->path, (unsigned long long)doff);
			goto fail;
		}
		dsz -= doff * VMDK_SECTOR;
		if (dsz > VMDK_DESC_MAX)
			dsz = VMDK_DESC_MAX;
		if ((ret = read_text(img, doff * VMDK_SECTOR, dsz, &text)) < 0)
			goto fail;
		ret = scimg_int_vmdk_desc_parse(img->ctx, img->path, doff * VMDK_SECTOR,
						text, (size_t)dsz, &s->desc);
		free(text);
		if (ret < 0)
			goto fail;
		s->have_desc = 1;
		ret = open_desc_extents(img);
	} else if ((hl >= 4 && (!memcmp(h, "KDMV", 4) || !memcmp(h, "COWD", 4))) ||
		   (hl >= 8 && scimg_le64(h) == SESPARSE_MAGIC)) {
		ret = open_monolithic(img, h, hl);
	} else {
		if (img->src->size > VMDK_DESC_MAX) {
			ret = scimg_int_err(img->ctx, -EINVAL,
					    "'%s': not a VMDK sparse file (magic %02x %02x %02x %02x at offset 0) and, at %llu bytes, too large for a descriptor (at most %u)",
					    img->path, h[0], h[1], h[2], h[3],
					    (unsigned long long)img->src->size, VMDK_DESC_MAX);
			goto fail;
		}
		if ((ret = read_text(img, 0, img->src->size, &text)) < 0)
			goto fail;
		ret = scimg_int_vmdk_desc_parse(img->ctx, img->path, 0, text,
						(size_t)img->src->size, &s->desc);
		free(text);
		if (ret < 0)
			goto fail;
		s->have_desc = 1;
		ret = open_desc_extents(img);
	}
	if (ret < 0)
		goto fail;
	if (!s->create_type && !(s->create_type = strdup(s->desc.create_type))) {
		ret = scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		goto fail;
	}
	if ((ret = open_parent(img)) < 0)
		goto fail;
	s->serialize = !img->src->ops->thread_safe;
	for (size_t i = 0; i < s->n_ext; i++)
		if (s->ext[i].src && !s->ext[i].src->ops->thread_safe)
			s->serialize = 1;
	return 0;
fail:
	reader_close(img);
	return ret;
}

/* ---- info ----------------------------------------------------------------- */

static void add_str(json_object *o, const char *k, const char *v)
{
	if (v)
		json_object_object_add(o, k, json_object_new_string(v));
}

/* A descriptor value as a JSON number when it is one (hw-version,
 * geometry), else as the string it is. */
static void add_num(json_object *o, const char *k, const char *v)
{
	char *end;
	unsigned long long n;

	if (!v)
		return;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (*v >= '0' && *v <= '9' && !*end && !errno && n <= INT64_MAX)
		json_object_object_add(o, k, json_object_new_int64((int64_t)n));
	else
		json_object_object_add(o, k, json_object_new_string(v));
}

static int vmdk_info(struct scimg_image *img, json_object *o)
{
	struct vmdk_state *s = img->priv;
	struct vmdk_desc *d = &s->desc;
	json_object *arr, *qarr, *geo, *q, *x;
	int compressed = 0, ret;
	size_t i, j;

	if (!(q = scimg_int_info_specific(o, "vmdk")) || !(x = scimg_int_info_details(o)))
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	/* qemu's ImageInfoSpecificVmdk */
	add_str(q, "create-type", s->create_type);
	if (s->have_desc && d->has_cid)
		json_object_object_add(q, "cid", json_object_new_int64(d->cid));
	if (s->have_desc && d->has_parent_cid)
		json_object_object_add(q, "parent-cid", json_object_new_int64(d->parent_cid));
	/* qemu: the first extent's grain, when sparse */
	if (s->n_ext && s->ext[0].kind != EXT_FLAT && s->ext[0].kind != EXT_ZERO)
		json_object_object_add(o, "cluster-size",
				       json_object_new_int64((int64_t)s->ext[0].grain));
	/* scimg's own */
	if (s->parent)
		add_str(x, "parent-filename", d->parent_hint);
	add_str(x, "encoding", d->encoding);
	add_str(x, "adapter-type", d->adapter_type);
	add_num(x, "hw-version", d->hw_version);
	add_str(x, "tools-version", d->tools_version);
	add_str(x, "long-content-id", d->long_content_id);
	add_str(x, "uuid", d->uuid);
	if (d->cylinders || d->heads || d->sectors) {
		geo = json_object_new_object();
		add_num(geo, "cylinders", d->cylinders);
		add_num(geo, "heads", d->heads);
		add_num(geo, "sectors", d->sectors);
		json_object_object_add(x, "geometry", geo);
	}
	arr = json_object_new_array();
	qarr = json_object_new_array();
	for (i = 0; i < s->n_ext; i++) {
		const struct vmdk_extent *e = &s->ext[i];
		json_object *ex = json_object_new_object(), *qe = json_object_new_object();
		char *full = e->src == img->src ? strdup(img->path) :
			     e->file ? scimg_int_info_join(img->path, e->file) : NULL;
		int sparse = e->kind == EXT_KDMV || e->kind == EXT_COWD || e->kind == EXT_SESPARSE;

		/* qemu's VmdkExtentInfo; the format of a sparse extent
		 * read from the image's own header (no descriptor line) is
		 * "" in qemu */
		add_str(qe, "filename", full ? full : e->file);
		free(full);
		add_str(qe, "format", sparse && e->src == img->src ? "" : e->type);
		json_object_object_add(qe, "virtual-size", json_object_new_int64((int64_t)e->size));
		if (sparse)
			json_object_object_add(qe, "cluster-size", json_object_new_int64((int64_t)e->grain));
		if (e->compressed)
			json_object_object_add(qe, "compressed", json_object_new_boolean(1));
		json_object_array_add(qarr, qe);

		add_str(ex, "filename", e->file);
		add_str(ex, "type", e->type);
		add_str(ex, "access", e->access == VMDK_ACCESS_RW ? "RW" :
				      e->access == VMDK_ACCESS_RDONLY ? "RDONLY" : "NOACCESS");
		json_object_object_add(ex, "start", json_object_new_int64((int64_t)e->start));
		json_object_object_add(ex, "virtual-size", json_object_new_int64((int64_t)e->size));
		if (e->kind == EXT_FLAT)
			json_object_object_add(ex, "offset", json_object_new_int64((int64_t)e->flat_off));
		if (sparse) {
			add_str(ex, "format", e->kind == EXT_KDMV ? "hosted sparse (KDMV)" :
					      e->kind == EXT_COWD ? "ESX sparse (COWD)" : "seSparse");
			json_object_object_add(ex, "version", json_object_new_int64(e->version));
			json_object_object_add(ex, "grain-size", json_object_new_int64((int64_t)e->grain));
			json_object_object_add(ex, "compressed", json_object_new_boolean(e->compressed));
			if (e->kind == EXT_KDMV) {
				json_object_object_add(ex, "flags", json_object_new_int64(e->flags));
				json_object_object_add(ex, "markers", json_object_new_boolean(e->markers));
				json_object_object_add(ex, "zeroed-grain", json_object_new_boolean(e->zero_grain));
				json_object_object_add(ex, "redundant-grain-directory",
						       json_object_new_boolean(e->rgd_off != 0));
				if (e->rgd_used)
					add_str(ex, "note", "primary grain directory unreadable; redundant copy used");
				if (e->footer)
					json_object_object_add(ex, "footer", json_object_new_boolean(1));
			}
			compressed |= e->compressed;
		}
		json_object_array_add(arr, ex);
		/* every file of the image counts in actual-size, once */
		for (j = 0; j < i; j++)
			if (s->ext[j].src && e->src && s->ext[j].src->dev == e->src->dev &&
			    s->ext[j].src->ino == e->src->ino)
				break;
		if (j == i)
			scimg_int_info_add_file(img, o, e->src);
	}
	json_object_object_add(q, "extents", qarr);
	add_str(x, "compression", compressed ? "deflate" : "none");
	json_object_object_add(x, "extents", arr);
	ret = scimg_int_info_backing(img, o, s->have_desc ? d->parent_hint : NULL, NULL, s->parent, NULL);
	return ret;
}

static int vmdk_write_zeroes(struct scimg_image *img, uint64_t off, uint64_t len)
{
	/* a new image reads as zeros everywhere */
	(void)img; (void)off; (void)len;
	return 0;
}

const struct scimg_format scimg_format_vmdk = {
	.name = "vmdk",
	.description = "VMware virtual disk (monolithic/split sparse and flat, streamOptimized, vmfs, vmfsSparse, seSparse)",
	SCIMG_FORMAT_READER(vmdk),
	.info = vmdk_info,
	.create_opts = scimg_int_vmdk_create_opts,
	SCIMG_FORMAT_WRITER(scimg_int_vmdk),
	.measure = scimg_int_vmdk_measure,
	.write_zeroes = vmdk_write_zeroes,
	SCIMG_FORMAT_COMPRESSED_WRITER(scimg_int_vmdk),
	.flags = SCIMG_FMT_SEQUENTIAL_WRITE | SCIMG_FMT_PARALLEL_READ |
		 SCIMG_FMT_ALWAYS_COMPRESSED,
};
