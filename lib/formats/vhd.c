/* formats/vhd.c - Microsoft Virtual Hard Disk (VHD, "vpc"): fixed, dynamic
 * and differencing disks.
 *
 * Layout (all fields big-endian):
 *   fixed:        [guest data][footer 512]
 *   dynamic/diff: [footer copy 512][dynamic header 1024][BAT]...
 *                 [sector bitmap + block]...[footer 512]
 * The footer carries a one's-complement byte-sum checksum, the disk type,
 * the sizes and the creator.  Old Virtual PC versions wrote 511-byte
 * footers on fixed disks.  Dynamic disks keep a copy of the footer at
 * offset 0; it is used when the footer at the end is missing or damaged.
 *
 * Virtual size: Virtual PC (creator "vpc ", "vs  ") and qemu before 2.5
 * ("qemu") size a disk by its CHS geometry, everyone else (Hyper-V "win ",
 * Disk2vhd "d2v", XenServer "tap", Azure "wa", qemu force_size "qem2") by
 * the current-size field, and a disk with the largest geometry
 * (65535/16/255) always by current size: the rule QEMU's vpc driver follows.
 * Both sizes and the rule used are shown by info.
 *
 * A differencing disk finds its parent through the parent locators
 * (W2ru/W2ku: UTF-16LE Windows paths, MacX: file URL) and the parent's
 * UTF-16BE name, each tried first as a file beside the image; the
 * parent's unique id must match the one the child recorded.
 *
 * Writing: fixed (size rounded up to a whole MiB for Azure unless
 * force_size=on) and dynamic (2 MiB blocks) disks, see vhd_create().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scimg-int.h"
#include "formats.h"
#include "vhd-common.h"

#define VHD_FOOTER 512
#define VHD_DYNHDR 1024
#define VHD_SECTOR 512
#define VHD_TS_BASE INT64_C(946684800) /* 2000-01-01T00:00:00Z */
#define VHD_UNUSED UINT32_C(0xffffffff)
/* 32 MiB of BAT, enough for 2 TiB with 256 KiB blocks */
#define VHD_MAX_BAT_ENTRIES (UINT32_C(1) << 23)
#define VHD_MAX_BLOCK (UINT32_C(1) << 30)
#define VHD_MAX_LOCATOR 65536
/* what the spec allows a VHD to describe: 2040 GiB */
#define VHD_MAX_WRITE_SIZE (UINT64_C(2040) << 30)
#define VHD_WRITE_BLOCK (UINT32_C(2) << 20)

enum { VHD_FIXED = 2, VHD_DYNAMIC = 3, VHD_DIFF = 4 };

/* footer field offsets */
enum {
	F_COOKIE = 0, F_FEATURES = 8, F_VERSION = 12, F_DATA_OFFSET = 16,
	F_TIMESTAMP = 24, F_APP = 28, F_APP_VERSION = 32, F_HOST = 36,
	F_ORIG_SIZE = 40, F_CUR_SIZE = 48, F_CYL = 56, F_HEADS = 58,
	F_SPT = 59, F_TYPE = 60, F_CHECKSUM = 64, F_UID = 68, F_SAVED = 84,
};
/* dynamic header field offsets */
enum {
	H_COOKIE = 0, H_DATA_OFFSET = 8, H_TABLE_OFFSET = 16, H_VERSION = 24,
	H_MAX_ENTRIES = 28, H_BLOCK_SIZE = 32, H_CHECKSUM = 36,
	H_PARENT_UID = 40, H_PARENT_TS = 56, H_PARENT_NAME = 64,
	H_LOCATORS = 576,
};

struct vhd_locator {
	char code[5];
	uint32_t space, len;
	uint64_t off;
	char *value; /* UTF-8, or NULL when not a path */
};

struct vhd {
	uint8_t footer[VHD_FOOTER];
	uint64_t footer_off;    /* where the footer used was read */
	int footer_len;         /* 512, or 511 for old fixed disks */
	int used_copy;          /* footer taken from the copy at offset 0 */
	uint32_t type;
	uint64_t cur_size, chs_size;
	int size_by_chs;
	const char *size_reason;
	/* dynamic and differencing */
	uint8_t dynhdr[VHD_DYNHDR];
	uint64_t dynhdr_off, table_off;
	uint32_t max_entries, block_size, bitmap_size;
	uint32_t *bat;          /* host order */
	uint64_t nblocks;       /* blocks that cover the virtual size */
	uint64_t allocated;
	/* differencing */
	char *parent_name;
	struct vhd_locator loc[8];
	struct scimg_image *parent;
	const char *parent_from;
	uint8_t *bm;            /* sector bitmap of block bm_block */
	uint64_t bm_block;
	/* writer */
	int w_dynamic;
	uint64_t w_next;        /* next free file offset (dynamic) */
};

static uint32_t vhd_checksum(const uint8_t *b, size_t len, size_t skip)
{
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i < len; i++)
		if (i < skip || i >= skip + 4)
			sum += b[i];
	return ~sum;
}

enum { FOOT_NONE, FOOT_BADSUM, FOOT_OK };

/* Look at a candidate footer of LEN (511 or 512) bytes. */
static int footer_state(const uint8_t *b, size_t len)
{
	if (len < 511 || memcmp(b + F_COOKIE, "conectix", 8) != 0)
		return FOOT_NONE;
	if (vhd_checksum(b, len, F_CHECKSUM) != scimg_be32(b + F_CHECKSUM))
		return FOOT_BADSUM;
	return FOOT_OK;
}

static int vhd_probe(const struct scimg_probe *p)
{
	int best = 0, s;

	if (p->head_len >= VHD_FOOTER) {
		s = footer_state(p->head, VHD_FOOTER);
		if (s == FOOT_OK)
			best = 100;
		else if (s == FOOT_BADSUM)
			best = 70;
	}
	if (p->tail_len >= VHD_FOOTER) {
		size_t len = p->file_size % VHD_SECTOR == 511 ? 511 : VHD_FOOTER;
		s = footer_state(p->tail + p->tail_len - len, len);
		if (s == FOOT_OK)
			best = 100;
		else if (s == FOOT_BADSUM && best < 60)
			best = 60;
	}
	return best;
}

/* printable copy of a 4-byte code */
static void code_str(const uint8_t *b, char out[17])
{
	size_t o = 0;
	int i;

	for (i = 0; i < 4; i++) {
		if (b[i] >= 0x20 && b[i] < 0x7f && b[i] != '\\')
			out[o++] = (char)b[i];
		else
			o += (size_t)snprintf(out + o, 5, "\\x%02x", b[i]);
	}
	out[o] = 0;
}

static void vhd_free(struct vhd *v)
{
	int i;

	if (!v)
		return;
	free(v->bat);
	free(v->bm);
	free(v->parent_name);
	for (i = 0; i < 8; i++)
		free(v->loc[i].value);
	if (v->parent)
		scimg_image_close(v->parent);
	free(v);
}

static void vhd_close(struct scimg_image *img)
{
	vhd_free(img->priv);
	img->priv = NULL;
}

/* ---- opening ------------------------------------------------------------ */

/* For a damaged differencing footer: name the parent it refers to, best
 * effort, so the message says what the disk depends on. */
static void diff_hint(struct scimg_image *img, const uint8_t *f, char *out,
		      size_t outlen)
{
	uint8_t h[VHD_DYNHDR];
	uint64_t off = scimg_be64(f + F_DATA_OFFSET), end;
	char *name;
	size_t bad;

	out[0] = 0;
	if (scimg_be32(f + F_TYPE) != VHD_DIFF || !scimg_add_ok(off, VHD_DYNHDR, &end) ||
	    end > img->src->size ||
	    img->src->ops->pread(img->src, h, sizeof(h), off) < 0 ||
	    memcmp(h, "cxsparse", 8) != 0)
		return;
	name = scimg_int_vhd_utf16_to_utf8(h + H_PARENT_NAME, 512, 1, &bad);
	if (name && *name)
		snprintf(out, outlen, "; it is a differencing disk whose parent is '%s'", name);
	free(name);
}

static int read_footer(struct scimg_image *img, struct vhd *v)
{
	char hint[600];
	struct scimg_source *src = img->src;
	uint8_t tail[VHD_FOOTER], head[VHD_FOOTER];
	uint64_t toff;
	int tlen, ts, hs = FOOT_NONE, ret;

	if (src->size < 511)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': VHD file is %llu bytes, too small for a 512-byte footer",
				     img->path, (unsigned long long)src->size);
	tlen = src->size % VHD_SECTOR == 511 ? 511 : VHD_FOOTER;
	toff = src->size - (uint64_t)tlen;
	memset(tail, 0, sizeof(tail));
	ret = scimg_int_source_read(src, tail, (size_t)tlen, toff, "VHD footer");
	if (ret < 0)
		return ret;
	ts = footer_state(tail, (size_t)tlen);
	if (src->size >= 2 * VHD_FOOTER) {
		ret = scimg_int_source_read(src, head, VHD_FOOTER, 0, "VHD footer copy");
		if (ret < 0)
			return ret;
		hs = footer_state(head, VHD_FOOTER);
	}
	if (ts == FOOT_OK) {
		memcpy(v->footer, tail, sizeof(tail));
		v->footer_off = toff;
		v->footer_len = tlen;
		return 0;
	}
	if (hs == FOOT_OK && (scimg_be32(head + F_TYPE) == VHD_DYNAMIC ||
			      scimg_be32(head + F_TYPE) == VHD_DIFF)) {
		memcpy(v->footer, head, sizeof(head));
		v->footer_off = 0;
		v->footer_len = VHD_FOOTER;
		v->used_copy = 1;
		return 0;
	}
	if (ts == FOOT_BADSUM) {
		diff_hint(img, tail, hint, sizeof(hint));
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': VHD footer checksum at offset %llu is 0x%08x, expected 0x%08x%s%s",
				     img->path, (unsigned long long)(toff + F_CHECKSUM),
				     scimg_be32(tail + F_CHECKSUM),
				     vhd_checksum(tail, (size_t)tlen, F_CHECKSUM),
				     hs == FOOT_BADSUM ? " (the footer copy at offset 0 is damaged too)" : "",
				     hint);
	}
	if (hs == FOOT_BADSUM)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': VHD footer copy checksum at offset %u is 0x%08x, expected 0x%08x (and no footer at offset %llu)",
				     img->path, F_CHECKSUM, scimg_be32(head + F_CHECKSUM),
				     vhd_checksum(head, VHD_FOOTER, F_CHECKSUM),
				     (unsigned long long)toff);
	return scimg_int_err(img->ctx, -EINVAL,
			     "'%s': no VHD footer: cookie at offset %llu is not 'conectix'",
			     img->path, (unsigned long long)toff);
}

/* Pick the virtual size by the creator's rule (see the top of the file). */
static void choose_size(struct vhd *v)
{
	const uint8_t *f = v->footer;
	uint32_t cyl = scimg_be16(f + F_CYL), heads = f[F_HEADS], spt = f[F_SPT];
	int max_geometry = cyl == 65535 && heads == 16 && spt == 255;
	const uint8_t *app = f + F_APP;

	v->cur_size = scimg_be64(f + F_CUR_SIZE);
	v->chs_size = (uint64_t)cyl * heads * spt * VHD_SECTOR;
	if (max_geometry) {
		v->size_reason = "the geometry is the largest possible, so it cannot describe the size";
	} else if (!memcmp(app, "vpc ", 4) || !memcmp(app, "vs  ", 4)) {
		v->size_by_chs = 1;
		v->size_reason = "Virtual PC and Virtual Server size disks by CHS geometry";
	} else if (!memcmp(app, "qemu", 4)) {
		v->size_by_chs = 1;
		v->size_reason = "qemu (creator 'qemu') sized disks by CHS geometry";
	} else {
		v->size_reason = "this creator sizes disks by the current-size field";
	}
	if (v->size_by_chs && v->chs_size == 0) {
		v->size_by_chs = 0;
		v->size_reason = "the CHS geometry is zero";
	}
}

static int check_footer(struct scimg_image *img, struct vhd *v)
{
	const uint8_t *f = v->footer;
	uint64_t fo = v->footer_off;
	uint32_t version = scimg_be32(f + F_VERSION);

	if ((version >> 16) != 1)
		return scimg_int_err(img->ctx, -ENOTSUP,
				     "'%s': VHD file format version at offset %llu is 0x%08x, expected 0x00010000",
				     img->path, (unsigned long long)(fo + F_VERSION), version);
	v->type = scimg_be32(f + F_TYPE);
	if (v->type != VHD_FIXED && v->type != VHD_DYNAMIC && v->type != VHD_DIFF)
		return scimg_int_err(img->ctx, -ENOTSUP,
				     "'%s': VHD disk type at offset %llu is %u, expected 2 (fixed), 3 (dynamic) or 4 (differencing)",
				     img->path, (unsigned long long)(fo + F_TYPE), v->type);
	if (v->used_copy && v->type == VHD_FIXED)
		return scimg_int_err(img->ctx, -EINVAL, "'%s': VHD footer missing", img->path);
	choose_size(v);
	img->size = v->size_by_chs ? v->chs_size : v->cur_size;
	if (v->type == VHD_FIXED && img->size > v->footer_off)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': VHD %s at offset %llu is %llu, larger than the %llu bytes of data before the footer (truncated fixed disk?)",
				     img->path, v->size_by_chs ? "CHS geometry size" : "current size",
				     (unsigned long long)(fo + (v->size_by_chs ? F_CYL : F_CUR_SIZE)),
				     (unsigned long long)img->size,
				     (unsigned long long)v->footer_off);
	return 0;
}

static int read_locators(struct scimg_image *img, struct vhd *v)
{
	struct scimg_source *src = img->src;
	int i, ret;

	for (i = 0; i < 8; i++) {
		const uint8_t *e = v->dynhdr + H_LOCATORS + 24 * i;
		uint64_t eoff = v->dynhdr_off + H_LOCATORS + 24 * (uint64_t)i;
		struct vhd_locator *l = &v->loc[i];
		uint64_t end;
		uint8_t *buf;
		size_t bad;
		int utf16;

		memcpy(l->code, e, 4);
		l->code[4] = 0;
		l->space = scimg_be32(e + 4);
		l->len = scimg_be32(e + 8);
		l->off = scimg_be64(e + 16);
		if (!scimg_be32(e))
			continue;
		utf16 = !memcmp(e, "W2ru", 4) || !memcmp(e, "W2ku", 4);
		if (!utf16 && memcmp(e, "MacX", 4) != 0)
			continue; /* "Mac " aliases and unknown codes: shown only */
		if (l->len == 0 || l->len > VHD_MAX_LOCATOR || (utf16 && l->len % 2))
			return scimg_int_err(img->ctx, -EINVAL,
					     "'%s': VHD parent locator %d (%s) data length at offset %llu is %u, expected %s1..%u bytes",
					     img->path, i, l->code, (unsigned long long)(eoff + 8),
					     l->len, utf16 ? "an even " : "", VHD_MAX_LOCATOR);
		if (!scimg_add_ok(l->off, l->len, &end) || end > src->size)
			return scimg_int_err(img->ctx, -EINVAL,
					     "'%s': VHD parent locator %d (%s) data offset at offset %llu is %llu, expected %u bytes inside the file (%llu bytes)",
					     img->path, i, l->code, (unsigned long long)(eoff + 16),
					     (unsigned long long)l->off, l->len,
					     (unsigned long long)src->size);
		buf = malloc(l->len + 1);
		if (!buf)
			return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		ret = scimg_int_source_read(src, buf, l->len, l->off, "VHD parent locator");
		if (ret < 0) {
			free(buf);
			return ret;
		}
		if (utf16) {
			l->value = scimg_int_vhd_utf16_to_utf8(buf, l->len, 0, &bad);
		} else {
			buf[l->len] = 0;
			l->value = strlen((char *)buf) ? strdup((char *)buf) : NULL;
			bad = l->value ? 0 : SIZE_MAX;
		}
		free(buf);
		if (!l->value) {
			if (bad == SIZE_MAX && utf16)
				return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
			return scimg_int_err(img->ctx, -EINVAL,
					     "'%s': VHD parent locator %d (%s) at offset %llu is not a valid %s path",
					     img->path, i, l->code,
					     (unsigned long long)(l->off + (bad == SIZE_MAX ? 0 : bad)),
					     utf16 ? "UTF-16LE" : "UTF-8");
		}
	}
	return 0;
}

static int open_parent(struct scimg_image *img, struct vhd *v)
{
	struct scimg_vhd_cands c;
	const uint8_t *puid = v->dynhdr + H_PARENT_UID;
	static const uint8_t zero[16];
	const char *wanted = NULL;
	int i, ret;

	memset(&c, 0, sizeof(c));
	ret = read_locators(img, v);
	if (ret < 0)
		return ret;
	/* relative locators, then absolute ones, then file URLs, then the name */
	for (i = 0; i < 8 && ret == 0; i++)
		if (!strcmp(v->loc[i].code, "W2ru") && v->loc[i].value)
			ret = scimg_int_vhd_cand_add(img->ctx, &c, v->loc[i].value,
						     "W2ru parent locator", 0);
	for (i = 0; i < 8 && ret == 0; i++)
		if (!strcmp(v->loc[i].code, "W2ku") && v->loc[i].value)
			ret = scimg_int_vhd_cand_add(img->ctx, &c, v->loc[i].value,
						     "W2ku parent locator", 0);
	for (i = 0; i < 8 && ret == 0; i++)
		if (!strcmp(v->loc[i].code, "MacX") && v->loc[i].value)
			ret = scimg_int_vhd_cand_add(img->ctx, &c, v->loc[i].value,
						     "MacX parent locator", 1);
	if (ret == 0 && v->parent_name)
		ret = scimg_int_vhd_cand_add(img->ctx, &c, v->parent_name,
					     "parent unicode name", 0);
	if (ret < 0)
		goto out;
	if (v->parent_name && *v->parent_name)
		wanted = v->parent_name;
	else if (c.n)
		wanted = c.c[0].shown;
	ret = scimg_int_vhd_open_parent(img, &c, "vhd", wanted ? wanted : "?", &v->parent);
	if ((ret = scimg_int_ref_unopened(img, ret)) != 0) {
		ret = ret < 0 ? ret : 0;
		goto out;
	}
	v->parent_from = c.c[c.opened].from; /* for info */
	/* the parent must be the one this disk was made from: its unique id
	 * is required and must match (the parent's own id is not shown) */
	if (memcmp(puid, zero, 16) == 0 && !(img->ctx->flags & SCIMG_CTX_TRUST_CHAIN)) {
		ret = scimg_int_err(img->ctx, -EINVAL,
				    "'%s': the parent unique id at offset %llu is all zeros, so parent '%s' cannot be verified (--trust-chain accepts it)",
				    img->path, (unsigned long long)(v->dynhdr_off + H_PARENT_UID),
				    v->parent->path);
		goto out;
	}
	if (memcmp(puid, zero, 16) != 0) {
		struct vhd *pv = v->parent->priv;
		if (memcmp(pv->footer + F_UID, puid, 16) != 0) {
			ret = scimg_int_err(img->ctx, -EINVAL,
					    "'%s': parent '%s' does not match: its unique id differs from the parent unique id at offset %llu (wrong or modified parent)",
					    img->path, v->parent->path,
					    (unsigned long long)(v->dynhdr_off + H_PARENT_UID));
			goto out;
		}
	}
	ret = 0;
out:
	scimg_int_vhd_cands_free(&c);
	return ret;
}

static int read_dynamic(struct scimg_image *img, struct vhd *v)
{
	struct scimg_source *src = img->src;
	const uint8_t *h = v->dynhdr;
	uint64_t end, data_end, batlen, i;
	uint8_t *raw;
	size_t bad;
	uint32_t sum;
	int ret;

	v->dynhdr_off = scimg_be64(v->footer + F_DATA_OFFSET);
	if (!scimg_add_ok(v->dynhdr_off, VHD_DYNHDR, &end) || end > src->size)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': VHD data offset at offset %llu is %llu, expected a 1024-byte dynamic header inside the file (%llu bytes)",
				     img->path, (unsigned long long)(v->footer_off + F_DATA_OFFSET),
				     (unsigned long long)v->dynhdr_off, (unsigned long long)src->size);
	ret = scimg_int_source_read(src, v->dynhdr, VHD_DYNHDR, v->dynhdr_off,
				    "VHD dynamic header");
	if (ret < 0)
		return ret;
	if (memcmp(h + H_COOKIE, "cxsparse", 8) != 0)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': VHD dynamic header cookie at offset %llu is not 'cxsparse'",
				     img->path, (unsigned long long)v->dynhdr_off);
	sum = vhd_checksum(h, VHD_DYNHDR, H_CHECKSUM);
	if (sum != scimg_be32(h + H_CHECKSUM))
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': VHD dynamic header checksum at offset %llu is 0x%08x, expected 0x%08x",
				     img->path, (unsigned long long)(v->dynhdr_off + H_CHECKSUM),
				     scimg_be32(h + H_CHECKSUM), sum);
	if ((scimg_be32(h + H_VERSION) >> 16) != 1)
		return scimg_int_err(img->ctx, -ENOTSUP,
				     "'%s': VHD dynamic header version at offset %llu is 0x%08x, expected 0x00010000",
				     img->path, (unsigned long long)(v->dynhdr_off + H_VERSION),
				     scimg_be32(h + H_VERSION));
	v->block_size = scimg_be32(h + H_BLOCK_SIZE);
	if (v->block_size < VHD_SECTOR || v->block_size > VHD_MAX_BLOCK ||
	    (v->block_size & (v->block_size - 1)))
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': VHD block size at offset %llu is %u, expected a power of two from 512 to %u",
				     img->path, (unsigned long long)(v->dynhdr_off + H_BLOCK_SIZE),
				     v->block_size, VHD_MAX_BLOCK);
	v->bitmap_size = ((v->block_size / VHD_SECTOR / 8) + VHD_SECTOR - 1) & ~(uint32_t)(VHD_SECTOR - 1);
	v->max_entries = scimg_be32(h + H_MAX_ENTRIES);
	v->nblocks = img->size / v->block_size + (img->size % v->block_size != 0);
	if (v->max_entries > VHD_MAX_BAT_ENTRIES)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': VHD max table entries at offset %llu is %u, expected at most %u",
				     img->path, (unsigned long long)(v->dynhdr_off + H_MAX_ENTRIES),
				     v->max_entries, VHD_MAX_BAT_ENTRIES);
	if (v->max_entries < v->nblocks)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': VHD max table entries at offset %llu is %u, expected at least %llu for the virtual size %llu with %u-byte blocks",
				     img->path, (unsigned long long)(v->dynhdr_off + H_MAX_ENTRIES),
				     v->max_entries, (unsigned long long)v->nblocks,
				     (unsigned long long)img->size, v->block_size);
	v->table_off = scimg_be64(h + H_TABLE_OFFSET);
	batlen = (uint64_t)v->max_entries * 4;
	if (!scimg_add_ok(v->table_off, batlen, &end) || end > src->size)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': VHD table offset at offset %llu is %llu, expected a %llu-byte BAT inside the file (%llu bytes)",
				     img->path, (unsigned long long)(v->dynhdr_off + H_TABLE_OFFSET),
				     (unsigned long long)v->table_off, (unsigned long long)batlen,
				     (unsigned long long)src->size);
	v->bat = malloc(batlen ? batlen : 1);
	if (!v->bat)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	raw = (uint8_t *)v->bat;
	if (batlen && (ret = scimg_int_source_read(src, raw, batlen, v->table_off, "VHD BAT")) < 0)
		return ret;
	for (i = 0; i < v->max_entries; i++)
		v->bat[i] = scimg_be32(raw + 4 * i);
	/* blocks (bitmap + data) must lie inside the file, before the footer */
	data_end = v->used_copy ? src->size : v->footer_off;
	for (i = 0; i < v->nblocks; i++) {
		uint64_t boff;
		if (v->bat[i] == VHD_UNUSED)
			continue;
		boff = (uint64_t)v->bat[i] * VHD_SECTOR;
		if (boff < VHD_SECTOR ||
		    boff + v->bitmap_size + v->block_size > data_end)
			return scimg_int_err(img->ctx, -EINVAL,
					     "'%s': VHD BAT entry %llu at offset %llu is sector %u: its %u-byte bitmap and %u-byte block at %llu do not fit in the file before offset %llu",
					     img->path, (unsigned long long)i,
					     (unsigned long long)(v->table_off + 4 * i), v->bat[i],
					     v->bitmap_size, v->block_size, (unsigned long long)boff,
					     (unsigned long long)data_end);
		v->allocated++;
	}
	if (v->type == VHD_DIFF) {
		v->parent_name = scimg_int_vhd_utf16_to_utf8(h + H_PARENT_NAME, 512, 1, &bad);
		if (!v->parent_name) {
			if (bad == SIZE_MAX)
				return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
			return scimg_int_err(img->ctx, -EINVAL,
					     "'%s': VHD parent unicode name at offset %llu is not valid UTF-16BE",
					     img->path,
					     (unsigned long long)(v->dynhdr_off + H_PARENT_NAME + bad));
		}
		v->bm = malloc(v->bitmap_size);
		if (!v->bm)
			return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		v->bm_block = UINT64_MAX;
		ret = open_parent(img, v);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int vhd_open(struct scimg_image *img)
{
	struct vhd *v = calloc(1, sizeof(*v));
	int ret;

	if (!v)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	ret = read_footer(img, v);
	if (ret == 0)
		ret = check_footer(img, v);
	if (ret == 0 && v->type != VHD_FIXED)
		ret = read_dynamic(img, v);
	if (ret < 0) {
		vhd_free(v);
		return ret;
	}
	img->priv = v;
	return 0;
}

/* ---- reading ------------------------------------------------------------ */

/* Read from the parent; beyond the parent's size reads zeros. */
static int parent_read(struct vhd *v, uint8_t *buf, size_t len, uint64_t off)
{
	uint64_t psize = v->parent->size;
	size_t n = 0;

	if (off < psize) {
		n = psize - off < len ? (size_t)(psize - off) : len;
		int ret = scimg_image_pread(v->parent, buf, n, off);
		if (ret < 0)
			return ret;
	}
	memset(buf + n, 0, len - n);
	return 0;
}

static int load_bitmap(struct scimg_image *img, struct vhd *v, uint64_t bi)
{
	int ret;

	if (v->bm_block == bi)
		return 0;
	v->bm_block = UINT64_MAX;
	ret = scimg_int_source_read(img->src, v->bm, v->bitmap_size,
				    (uint64_t)v->bat[bi] * VHD_SECTOR, "VHD sector bitmap");
	if (ret < 0)
		return ret;
	v->bm_block = bi;
	return 0;
}

static int bm_bit(const struct vhd *v, uint64_t sector)
{
	return (v->bm[sector / 8] >> (7 - sector % 8)) & 1;
}

/* Length of the run of sectors with the same bitmap bit as the byte at IN
 * inside the block, at most MAX bytes. */
static uint64_t bm_run(const struct vhd *v, uint64_t in, uint64_t max, int *bit)
{
	uint64_t s = in / VHD_SECTOR, last = (in + max - 1) / VHD_SECTOR;
	int b = bm_bit(v, s);

	*bit = b;
	while (s < last && bm_bit(v, s + 1) == b)
		s++;
	return (s + 1) * VHD_SECTOR - in < max ? (s + 1) * VHD_SECTOR - in : max;
}

static int vhd_pread(struct scimg_image *img, void *buf, size_t len,
		     uint64_t off)
{
	struct vhd *v = img->priv;
	uint8_t *p = buf;
	int ret;

	if (v->type == VHD_FIXED)
		return scimg_int_source_read(img->src, buf, len, off, "VHD data");
	while (len) {
		uint64_t bi = off / v->block_size, in = off % v->block_size;
		size_t n = v->block_size - in < len ? (size_t)(v->block_size - in) : len;
		uint64_t base;

		if (v->bat[bi] == VHD_UNUSED) {
			if (v->parent)
				ret = parent_read(v, p, n, off);
			else
				memset(p, 0, n), ret = 0;
			if (ret < 0)
				return ret;
		} else {
			base = (uint64_t)v->bat[bi] * VHD_SECTOR + v->bitmap_size;
			if (v->type == VHD_DIFF) {
				size_t done = 0;
				if ((ret = load_bitmap(img, v, bi)) < 0)
					return ret;
				while (done < n) {
					int bit;
					size_t r = (size_t)bm_run(v, in + done, n - done, &bit);
					if (bit)
						ret = scimg_int_source_read(img->src, p + done, r,
									    base + in + done, "VHD block");
					else
						ret = parent_read(v, p + done, r, off + done);
					if (ret < 0)
						return ret;
					done += r;
				}
			} else {
				ret = scimg_int_source_read(img->src, p, n, base + in, "VHD block");
				if (ret < 0)
					return ret;
			}
		}
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int parent_status(struct vhd *v, uint64_t off, uint64_t len,
			 struct scimg_extent *ext)
{
	if (off >= v->parent->size) {
		ext->offset = off;
		ext->length = len;
		ext->type = SCIMG_EXTENT_HOLE;
		return 0;
	}
	if (len > v->parent->size - off)
		len = v->parent->size - off;
	return scimg_image_block_status(v->parent, off, len, ext);
}

static int vhd_block_status(struct scimg_image *img, uint64_t off,
			    uint64_t len, struct scimg_extent *ext)
{
	struct vhd *v = img->priv;
	uint64_t bi, in, n;
	int ret;

	if (v->type == VHD_FIXED) {
		struct scimg_source *src = img->src;
		if (src->ops->block_status)
			return src->ops->block_status(src, off, len, ext);
		ext->offset = off;
		ext->length = len;
		ext->type = SCIMG_EXTENT_DATA;
		return 0;
	}
	bi = off / v->block_size;
	in = off % v->block_size;
	n = v->block_size - in < len ? v->block_size - in : len;
	ext->offset = off;
	if (v->bat[bi] == VHD_UNUSED) {
		if (v->parent)
			return parent_status(v, off, n, ext);
		/* merge following unallocated blocks */
		while (n < len && v->bat[++bi] == VHD_UNUSED)
			n += len - n < v->block_size ? len - n : v->block_size;
		ext->length = n;
		ext->type = SCIMG_EXTENT_HOLE;
		return 0;
	}
	if (v->type == VHD_DIFF) {
		int bit;
		if ((ret = load_bitmap(img, v, bi)) < 0)
			return ret;
		n = bm_run(v, in, n, &bit);
		if (!bit)
			return parent_status(v, off, n, ext);
		ext->length = n;
		ext->type = SCIMG_EXTENT_DATA;
		return 0;
	}
	while (n < len && v->bat[++bi] != VHD_UNUSED)
		n += len - n < v->block_size ? len - n : v->block_size;
	ext->length = n;
	ext->type = SCIMG_EXTENT_DATA;
	return 0;
}

static void add_str(json_object *o, const char *k, const char *s)
{
	json_object_object_add(o, k, json_object_new_string(s));
}

static void add_int(json_object *o, const char *k, uint64_t n)
{
	json_object_object_add(o, k, json_object_new_int64((int64_t)n));
}

static void add_time(json_object *o, const char *k, uint32_t ts)
{
	time_t t = (time_t)(VHD_TS_BASE + ts);
	struct tm tm;
	char s[40];

	if (gmtime_r(&t, &tm) && strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%SZ", &tm))
		add_str(o, k, s);
}

static int vhd_info(struct scimg_image *img, json_object *info)
{
	json_object *o = scimg_int_info_details(info);
	struct vhd *v = img->priv;
	const uint8_t *f = v->footer;
	static const char *const types[] = { [VHD_FIXED] = "fixed",
		[VHD_DYNAMIC] = "dynamic", [VHD_DIFF] = "differencing" };
	char s[64], g[37];
	uint32_t av = scimg_be32(f + F_APP_VERSION);
	int i;

	if (!o)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	if (v->type != VHD_FIXED)
		add_int(info, "cluster-size", v->block_size);
	add_str(o, "subformat", types[v->type]);
	code_str(f + F_APP, s);
	add_str(o, "creator-application", s);
	snprintf(s, sizeof(s), "%u.%u", av >> 16, av & 0xffff);
	add_str(o, "creator-version", s);
	code_str(f + F_HOST, s);
	add_str(o, "creator-host-os", s);
	add_int(o, "current-size", v->cur_size);
	add_int(o, "original-size", scimg_be64(f + F_ORIG_SIZE));
	snprintf(s, sizeof(s), "%u/%u/%u", scimg_be16(f + F_CYL), f[F_HEADS], f[F_SPT]);
	add_str(o, "geometry", s);
	add_int(o, "chs-size", v->chs_size);
	add_str(o, "size-rule", v->size_by_chs ? "chs-geometry" : "current-size");
	add_str(o, "size-rule-reason", v->size_reason);
	scimg_int_vhd_guid_str(f + F_UID, 0, g);
	add_str(o, "unique-id", g);
	add_time(o, "timestamp", scimg_be32(f + F_TIMESTAMP));
	json_object_object_add(o, "saved-state", json_object_new_boolean(f[F_SAVED] != 0));
	if (v->footer_len == 511)
		add_str(o, "footer", "511 bytes (old Virtual PC)");
	if (v->used_copy)
		add_str(o, "footer", "the copy at offset 0 (the footer at the end is missing or damaged)");
	if (v->type == VHD_FIXED)
		return 0;
	add_int(o, "block-size", v->block_size);
	add_int(o, "max-table-entries", v->max_entries);
	add_int(o, "allocated-blocks", v->allocated);
	if (v->type != VHD_DIFF)
		return 0;
	add_str(o, "parent-name", v->parent_name ? v->parent_name : "");
	scimg_int_vhd_guid_str(v->dynhdr + H_PARENT_UID, 0, g);
	add_str(o, "parent-unique-id", g);
	if (scimg_be32(v->dynhdr + H_PARENT_TS))
		add_time(o, "parent-timestamp", scimg_be32(v->dynhdr + H_PARENT_TS));
	{
		json_object *arr = json_object_new_array();
		for (i = 0; i < 8; i++) {
			json_object *l;
			if (!scimg_be32(v->loc[i].code))
				continue;
			l = json_object_new_object();
			code_str((const uint8_t *)v->loc[i].code, s);
			add_str(l, "platform", s);
			add_int(l, "offset", v->loc[i].off);
			add_int(l, "length", v->loc[i].len);
			if (v->loc[i].value)
				add_str(l, "path", v->loc[i].value);
			json_object_array_add(arr, l);
		}
		json_object_object_add(o, "parent-locators", arr);
	}
	if (v->parent) {
		int ret;
		add_str(o, "parent-filename", v->parent->path);
		if (v->parent_from)
			add_str(o, "parent-found-by", v->parent_from);
		ret = scimg_int_info_backing(img, info, v->parent_name ? v->parent_name :
					     v->parent->path, NULL, v->parent, v->parent->path);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* ---- writing ------------------------------------------------------------ */

static const char *const vhd_create_opts[] = { "subformat", "force_size", NULL };

static int parse_onoff(struct scimg_ctx *ctx, const char *key, const char *val,
		       int *out)
{
	if (!val)
		return 0;
	if (!strcmp(val, "on") || !strcmp(val, "true") || !strcmp(val, "yes")) {
		*out = 1;
		return 0;
	}
	if (!strcmp(val, "off") || !strcmp(val, "false") || !strcmp(val, "no")) {
		*out = 0;
		return 0;
	}
	return scimg_int_err(ctx, -EINVAL, "vhd option '%s' is '%s', expected on or off",
			     key, val);
}

/* scimg measure -O vhd (vpc): the layout vhd_create() and vhd_finish()
 * make.  fixed: the data (rounded up to a whole MiB unless force_size=on)
 * and the footer.  dynamic: footer copy, dynamic header, BAT (whole
 * sectors), a bitmap sector and a whole 2 MiB block per block holding
 * data, and the footer. */
static int vhd_measure(struct scimg_ctx *ctx, struct scimg_image *src, uint64_t size,
		       const struct scimg_opts *opts, struct scimg_measure *out)
{
	const char *sub = scimg_int_opts_get(opts, "subformat");
	uint64_t mib = UINT64_C(1) << 20, entries, meta, data = 0;
	int force = 0, ret;

	ret = parse_onoff(ctx, "force_size", scimg_int_opts_get(opts, "force_size"), &force);
	if (ret < 0)
		return ret;
	if (sub && strcmp(sub, "dynamic") != 0 && strcmp(sub, "fixed") != 0)
		return scimg_int_err(ctx, -EINVAL,
				     "vhd option 'subformat' is '%s', expected dynamic or fixed", sub);
	size = (size + VHD_SECTOR - 1) / VHD_SECTOR * VHD_SECTOR;
	if (sub && !strcmp(sub, "fixed")) {
		if (!force)
			size = (size + mib - 1) / mib * mib;
		if (size > VHD_MAX_WRITE_SIZE)
			goto too_big;
		out->required = out->fully_allocated = size + VHD_FOOTER;
		return 0;
	}
	if (size > VHD_MAX_WRITE_SIZE)
		goto too_big;
	entries = (size + VHD_WRITE_BLOCK - 1) / VHD_WRITE_BLOCK;
	meta = VHD_FOOTER + VHD_DYNHDR + (entries * 4 + VHD_SECTOR - 1) / VHD_SECTOR * VHD_SECTOR +
	       VHD_FOOTER;
	if (src && (ret = scimg_int_measure_data(src, VHD_WRITE_BLOCK, &data)) < 0)
		return ret;
	data /= VHD_WRITE_BLOCK;
	out->required = meta + data * (VHD_SECTOR + VHD_WRITE_BLOCK);
	out->fully_allocated = meta + entries * (VHD_SECTOR + VHD_WRITE_BLOCK);
	return 0;
too_big:
	return scimg_int_err(ctx, -EFBIG, "%llu bytes is more than a VHD can hold (2040 GiB); use vhdx",
			     (unsigned long long)size);
}

static int vhd_create_priv(struct scimg_image *img, const struct scimg_opts *opts)
{
	const char *sub = scimg_int_opts_get(opts, "subformat");
	uint64_t size = img->size, mib = UINT64_C(1) << 20;
	int force = 0, ret;
	struct vhd *v;
	uint8_t *f;
	uint16_t cyl;
	uint8_t heads, spt;
	time_t now = time(NULL);

	ret = parse_onoff(img->ctx, "force_size", scimg_int_opts_get(opts, "force_size"), &force);
	if (ret < 0)
		return ret;
	if (sub && strcmp(sub, "dynamic") != 0 && strcmp(sub, "fixed") != 0)
		return scimg_int_err(img->ctx, -EINVAL,
				     "vhd option 'subformat' is '%s', expected dynamic or fixed", sub);
	v = calloc(1, sizeof(*v));
	if (!v)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	img->priv = v;
	v->w_dynamic = !sub || !strcmp(sub, "dynamic");
	/* VHD sizes are whole sectors; fixed disks go to a whole MiB (Azure) */
	size = (size + VHD_SECTOR - 1) / VHD_SECTOR * VHD_SECTOR;
	if (!v->w_dynamic && !force)
		size = (size + mib - 1) / mib * mib;
	if (size > VHD_MAX_WRITE_SIZE)
		return scimg_int_err(img->ctx, -EFBIG,
				     "'%s': %llu bytes is more than a VHD can hold (2040 GiB); use vhdx",
				     img->path, (unsigned long long)size);
	v->cur_size = size;
	v->type = v->w_dynamic ? VHD_DYNAMIC : VHD_FIXED;
	f = v->footer;
	memcpy(f + F_COOKIE, "conectix", 8);
	scimg_put_be32(f + F_FEATURES, 2);
	scimg_put_be32(f + F_VERSION, 0x00010000);
	scimg_put_be64(f + F_DATA_OFFSET, v->w_dynamic ? VHD_FOOTER : UINT64_MAX);
	scimg_put_be32(f + F_TIMESTAMP, now > VHD_TS_BASE ? (uint32_t)(now - VHD_TS_BASE) : 0);
	/* "qem2": the creator code readers (qemu, libvhdi, Hyper-V, Azure)
	 * take to mean "the current-size field is the size"; see
	 * docs/formats.md */
	memcpy(f + F_APP, "qem2", 4);
	scimg_put_be32(f + F_APP_VERSION, 0x00000001); /* scimg 0.1 */
	memcpy(f + F_HOST, "Wi2k", 4);
	scimg_put_be64(f + F_ORIG_SIZE, size);
	scimg_put_be64(f + F_CUR_SIZE, size);
	scimg_int_vhd_geometry(size, &cyl, &heads, &spt);
	scimg_put_be16(f + F_CYL, cyl);
	f[F_HEADS] = heads;
	f[F_SPT] = spt;
	scimg_put_be32(f + F_TYPE, v->type);
	ret = scimg_int_vhd_random(img->ctx, f + F_UID, 16);
	if (ret < 0)
		return ret;
	f[F_UID + 6] = (uint8_t)((f[F_UID + 6] & 0x0f) | 0x40);
	f[F_UID + 8] = (uint8_t)((f[F_UID + 8] & 0x3f) | 0x80);
	scimg_put_be32(f + F_CHECKSUM, vhd_checksum(f, VHD_FOOTER, F_CHECKSUM));
	if (!v->w_dynamic)
		return scimg_int_out_truncate(img, size + VHD_FOOTER);

	v->block_size = VHD_WRITE_BLOCK;
	v->bitmap_size = VHD_SECTOR;
	v->max_entries = (uint32_t)((size + v->block_size - 1) / v->block_size);
	v->table_off = VHD_FOOTER + VHD_DYNHDR;
	v->bat = malloc(v->max_entries ? (size_t)v->max_entries * 4 : 1);
	if (!v->bat)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	memset(v->bat, 0xff, (size_t)v->max_entries * 4);
	v->w_next = v->table_off + ((uint64_t)v->max_entries * 4 + VHD_SECTOR - 1) / VHD_SECTOR * VHD_SECTOR;
	return 0;
}

static int vhd_create(struct scimg_image *img, const struct scimg_opts *opts)
{
	int ret = vhd_create_priv(img, opts);

	if (ret < 0) {
		vhd_free(img->priv);
		img->priv = NULL;
	}
	return ret;
}

static int vhd_pwrite(struct scimg_image *img, const void *buf, size_t len,
		      uint64_t off)
{
	struct vhd *v = img->priv;
	const uint8_t *p = buf;
	uint8_t bitmap[VHD_SECTOR];
	int ret;

	if (!v->w_dynamic)
		return scimg_int_out_pwrite(img, buf, len, off);
	while (len) {
		uint64_t bi = off / v->block_size, in = off % v->block_size;
		size_t n = v->block_size - in < len ? (size_t)(v->block_size - in) : len;

		if (v->bat[bi] == VHD_UNUSED) {
			/* every sector of a new block is marked present; the
			 * parts never written are holes that read as zeros */
			memset(bitmap, 0xff, sizeof(bitmap));
			ret = scimg_int_out_pwrite(img, bitmap, sizeof(bitmap), v->w_next);
			if (ret < 0)
				return ret;
			v->bat[bi] = (uint32_t)(v->w_next / VHD_SECTOR);
			v->w_next += VHD_SECTOR + v->block_size;
		}
		ret = scimg_int_out_pwrite(img, p, n,
					   (uint64_t)v->bat[bi] * VHD_SECTOR + VHD_SECTOR + in);
		if (ret < 0)
			return ret;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int vhd_finish(struct scimg_image *img)
{
	struct vhd *v = img->priv;
	uint8_t *h = v->dynhdr, *bat;
	size_t batlen;
	uint32_t i;
	int ret;

	if (!v->w_dynamic)
		return scimg_int_out_pwrite(img, v->footer, VHD_FOOTER, v->cur_size);
	memset(h, 0, VHD_DYNHDR);
	memcpy(h + H_COOKIE, "cxsparse", 8);
	scimg_put_be64(h + H_DATA_OFFSET, UINT64_MAX);
	scimg_put_be64(h + H_TABLE_OFFSET, v->table_off);
	scimg_put_be32(h + H_VERSION, 0x00010000);
	scimg_put_be32(h + H_MAX_ENTRIES, v->max_entries);
	scimg_put_be32(h + H_BLOCK_SIZE, v->block_size);
	scimg_put_be32(h + H_CHECKSUM, vhd_checksum(h, VHD_DYNHDR, H_CHECKSUM));
	batlen = (size_t)(((uint64_t)v->max_entries * 4 + VHD_SECTOR - 1) / VHD_SECTOR * VHD_SECTOR);
	bat = malloc(batlen ? batlen : 1);
	if (!bat)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	memset(bat, 0xff, batlen);
	for (i = 0; i < v->max_entries; i++)
		scimg_put_be32(bat + 4 * (size_t)i, v->bat[i]);
	ret = scimg_int_out_pwrite(img, bat, batlen, v->table_off);
	free(bat);
	if (ret == 0)
		ret = scimg_int_out_pwrite(img, v->footer, VHD_FOOTER, 0);
	if (ret == 0)
		ret = scimg_int_out_pwrite(img, h, VHD_DYNHDR, VHD_FOOTER);
	if (ret == 0)
		ret = scimg_int_out_pwrite(img, v->footer, VHD_FOOTER, v->w_next);
	if (ret == 0)
		ret = scimg_int_out_truncate(img, v->w_next + VHD_FOOTER);
	return ret;
}

const struct scimg_format scimg_format_vhd = {
	.name = "vhd",
	.description = "Microsoft Virtual Hard Disk (VHD, qemu's vpc): fixed, dynamic, differencing",
	SCIMG_FORMAT_READER(vhd),
	.info = vhd_info,
	.create_opts = vhd_create_opts,
	SCIMG_FORMAT_WRITER(vhd),
	.measure = vhd_measure,
};
