/* formats/vhdx.c - Microsoft VHDX (Hyper-V, MS-VHDX): reading fixed,
 * dynamic and differencing (.avhdx) disks; the driver registration.
 *
 * Open: file type identifier; the two headers (CRC-32C, the valid one with
 * the higher sequence number is current); the log, replayed in memory when
 * the log GUID is set (vhdx-log.c); the region tables (CRC-32C; BAT and
 * metadata regions); the metadata items (file parameters, virtual disk
 * size, logical/physical sector size, page 83 id, parent locator); then
 * one pass over the BAT that validates every entry.  The BAT is then read
 * on demand through a small page cache, so memory does not grow with the
 * virtual size.
 *
 * Payload block states: FULLY_PRESENT reads the file; PARTIALLY_PRESENT
 * (differencing only) reads the file or the parent sector by sector as the
 * sector bitmap says; NOT_PRESENT reads the parent, or zeros without one;
 * ZERO, UNMAPPED and UNDEFINED read zeros.
 *
 * Writing lives in vhdx-write.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "scimg-int.h"
#include "formats.h"
#include "vhd-common.h"
#include "vhdx-int.h"

const uint8_t scimg_vhdx_guid_bat[16] = { 0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00, 0x42, 0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08 };
const uint8_t scimg_vhdx_guid_metadata[16] = { 0x06, 0xa2, 0x7c, 0x8b, 0x90, 0x47, 0x9a, 0x4b, 0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e };
const uint8_t scimg_vhdx_guid_file_params[16] = { 0x37, 0x67, 0xa1, 0xca, 0x36, 0xfa, 0x43, 0x4d, 0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b };
const uint8_t scimg_vhdx_guid_disk_size[16] = { 0x24, 0x42, 0xa5, 0x2f, 0x1b, 0xcd, 0x76, 0x48, 0xb2, 0x11, 0x5d, 0xbe, 0xd8, 0x3b, 0xf4, 0xb8 };
const uint8_t scimg_vhdx_guid_page83[16] = { 0xab, 0x12, 0xca, 0xbe, 0xe6, 0xb2, 0x23, 0x45, 0x93, 0xef, 0xc3, 0x09, 0xe0, 0x00, 0xc7, 0x46 };
const uint8_t scimg_vhdx_guid_logical_sector[16] = { 0x1d, 0xbf, 0x41, 0x81, 0x6f, 0xa9, 0x09, 0x47, 0xba, 0x47, 0xf2, 0x33, 0xa8, 0xfa, 0xab, 0x5f };
const uint8_t scimg_vhdx_guid_physical_sector[16] = { 0xc7, 0x48, 0xa3, 0xcd, 0x5d, 0x44, 0x71, 0x44, 0x9c, 0xc9, 0xe9, 0x88, 0x52, 0x51, 0xc5, 0x56 };
const uint8_t scimg_vhdx_guid_parent_locator[16] = { 0x2d, 0x5f, 0xd3, 0xa8, 0x0b, 0xb3, 0x4d, 0x45, 0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c };
const uint8_t scimg_vhdx_guid_locator_type[16] = { 0xb7, 0xef, 0x4a, 0xb0, 0x9e, 0xd1, 0x81, 0x4a, 0xb7, 0x89, 0x25, 0xb8, 0xe9, 0x44, 0x59, 0x13 };

#define BAT_PAGE_ENTRIES 512u
#define BAT_CACHE_PAGES 1024u         /* 4 MiB of BAT */
#define MAX_LOCATOR_ITEM (64 * VHDX_KiB)

static int vhdx_probe(const struct scimg_probe *p)
{
	if (p->head_len >= 8 && memcmp(p->head, "vhdxfile", 8) == 0)
		return 100;
	return 0;
}

static void vhdx_free(struct vhdx *x)
{
	size_t i;

	if (!x)
		return;
	free(x->creator);
	scimg_int_vhdx_overlay_free(x->olay);
	for (i = 0; i < x->pl_n; i++) {
		free(x->pl_key[i]);
		free(x->pl_val[i]);
	}
	free(x->pl_key);
	free(x->pl_val);
	free(x->bat_cache);
	free(x->bat_tag);
	free(x->bm);
	if (x->parent)
		scimg_image_close(x->parent);
	free(x);
}

static void vhdx_close(struct scimg_image *img)
{
	if (img->writing)
		scimg_int_vhdx_writer_free(img);
	else
		vhdx_free(img->priv);
	img->priv = NULL;
}

/* ---- headers ------------------------------------------------------------ */

/* Check header I (1 or 2); on failure put the reason into WHY. */
static int header_ok(struct scimg_image *img, const uint8_t *h, uint64_t off,
		     char *why, size_t whylen)
{
	uint32_t sum;

	if (memcmp(h + VH_SIG, "head", 4) != 0) {
		snprintf(why, whylen, "signature at offset %llu is not 'head'",
			 (unsigned long long)off);
		return 0;
	}
	sum = scimg_int_vhdx_checksum(h, VHDX_HEADER_SIZE, VH_CHECKSUM);
	if (sum != scimg_le32(h + VH_CHECKSUM)) {
		snprintf(why, whylen, "checksum at offset %llu is 0x%08x, expected 0x%08x",
			 (unsigned long long)(off + VH_CHECKSUM),
			 scimg_le32(h + VH_CHECKSUM), sum);
		return 0;
	}
	if (scimg_le16(h + VH_VERSION) != 1) {
		snprintf(why, whylen, "version at offset %llu is %u, expected 1",
			 (unsigned long long)(off + VH_VERSION), scimg_le16(h + VH_VERSION));
		return 0;
	}
	(void)img;
	return 1;
}

static int read_headers(struct scimg_image *img, struct vhdx *x)
{
	struct scimg_source *src = img->src;
	uint8_t h[2][VHDX_HEADER_SIZE], id[520];
	char why[2][160];
	int ok[2], i, ret;
	size_t bad;

	if (src->size < VHDX_RTABLE2 + VHDX_RTABLE_SIZE)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': VHDX file is %llu bytes, too small for its headers and region tables (%u bytes)",
				     img->path, (unsigned long long)src->size,
				     VHDX_RTABLE2 + VHDX_RTABLE_SIZE);
	ret = scimg_int_source_read(src, id, sizeof(id), 0, "VHDX file type identifier");
	if (ret < 0)
		return ret;
	if (memcmp(id, "vhdxfile", 8) != 0)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': VHDX file type identifier at offset 0 is not 'vhdxfile'",
				     img->path);
	x->creator = scimg_int_vhd_utf16_to_utf8(id + 8, 512, 0, &bad);
	for (i = 0; i < 2; i++) {
		uint64_t off = i ? VHDX_HEADER2 : VHDX_HEADER1;
		ret = scimg_int_source_read(src, h[i], VHDX_HEADER_SIZE, off, "VHDX header");
		if (ret < 0)
			return ret;
		ok[i] = header_ok(img, h[i], off, why[i], sizeof(why[i]));
	}
	if (!ok[0] && !ok[1])
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': no valid VHDX header: header 1 %s; header 2 %s",
				     img->path, why[0], why[1]);
	if (ok[0] && (!ok[1] || scimg_le64(h[0] + VH_SEQ) >= scimg_le64(h[1] + VH_SEQ)))
		x->cur_header = 1;
	else
		x->cur_header = 2;
	memcpy(x->hdr, h[x->cur_header - 1], VHDX_HEADER_SIZE);
	return 0;
}

static int check_log(struct scimg_image *img, struct vhdx *x)
{
	static const uint8_t zero[16];
	uint64_t hoff = x->cur_header == 1 ? VHDX_HEADER1 : VHDX_HEADER2;
	uint64_t lo = scimg_le64(x->hdr + VH_LOG_OFFSET), end;
	uint32_t ll = scimg_le32(x->hdr + VH_LOG_LENGTH);
	uint16_t lv = scimg_le16(x->hdr + VH_LOG_VERSION);

	if (memcmp(x->hdr + VH_LOG_GUID, zero, 16) == 0)
		return 0;
	x->log_dirty = 1;
	if (lv != 0)
		return scimg_int_err(img->ctx, -ENOTSUP,
				     "'%s': VHDX log version at offset %llu is %u, expected 0",
				     img->path, (unsigned long long)(hoff + VH_LOG_VERSION), lv);
	if (ll == 0 || ll % VHDX_MiB)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': VHDX log length at offset %llu is %u, expected a non-zero multiple of 1 MiB",
				     img->path, (unsigned long long)(hoff + VH_LOG_LENGTH), ll);
	if (lo < VHDX_MiB || lo % VHDX_MiB || !scimg_add_ok(lo, ll, &end) ||
	    end > img->src->size)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': VHDX log offset at offset %llu is %llu, expected a multiple of 1 MiB, at least 1 MiB, with the %u-byte log inside the file (%llu bytes)",
				     img->path, (unsigned long long)(hoff + VH_LOG_OFFSET),
				     (unsigned long long)lo, ll,
				     (unsigned long long)img->src->size);
	return scimg_int_vhdx_log_replay(x);
}

/* ---- region table ------------------------------------------------------- */

static int rtable_ok(const uint8_t *t, uint64_t off, char *why, size_t whylen)
{
	uint32_t sum;

	if (memcmp(t, "regi", 4) != 0) {
		snprintf(why, whylen, "signature at offset %llu is not 'regi'",
			 (unsigned long long)off);
		return 0;
	}
	sum = scimg_int_vhdx_checksum(t, VHDX_RTABLE_SIZE, 4);
	if (sum != scimg_le32(t + 4)) {
		snprintf(why, whylen, "checksum at offset %llu is 0x%08x, expected 0x%08x",
			 (unsigned long long)(off + 4), scimg_le32(t + 4), sum);
		return 0;
	}
	if (scimg_le32(t + 8) > VHDX_MAX_ENTRIES) {
		snprintf(why, whylen, "entry count at offset %llu is %u, expected at most %u",
			 (unsigned long long)(off + 8), scimg_le32(t + 8), VHDX_MAX_ENTRIES);
		return 0;
	}
	return 1;
}

static int read_regions(struct scimg_image *img, struct vhdx *x)
{
	uint8_t *t = malloc(VHDX_RTABLE_SIZE);
	char why[2][160], g[37];
	uint64_t toff = VHDX_RTABLE1;
	uint32_t n, i;
	int ret, have_bat = 0, have_meta = 0;

	if (!t)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	ret = scimg_int_vhdx_read(x, t, VHDX_RTABLE_SIZE, VHDX_RTABLE1, "region table");
	if (ret < 0)
		goto out;
	if (!rtable_ok(t, VHDX_RTABLE1, why[0], sizeof(why[0]))) {
		toff = VHDX_RTABLE2;
		ret = scimg_int_vhdx_read(x, t, VHDX_RTABLE_SIZE, VHDX_RTABLE2, "region table");
		if (ret < 0)
			goto out;
		if (!rtable_ok(t, VHDX_RTABLE2, why[1], sizeof(why[1]))) {
			ret = scimg_int_err(img->ctx, -EINVAL,
					    "'%s': no valid VHDX region table: table 1 %s; table 2 %s",
					    img->path, why[0], why[1]);
			goto out;
		}
	}
	n = scimg_le32(t + 8);
	for (i = 0; i < n; i++) {
		const uint8_t *e = t + 16 + 32 * (size_t)i;
		uint64_t eoff = toff + 16 + 32 * (uint64_t)i;
		uint64_t off = scimg_le64(e + 16), end;
		uint32_t len = scimg_le32(e + 24), req = scimg_le32(e + 28) & 1;
		int is_bat = !memcmp(e, scimg_vhdx_guid_bat, 16);
		int is_meta = !memcmp(e, scimg_vhdx_guid_metadata, 16);

		scimg_int_vhd_guid_str(e, 1, g);
		if (!is_bat && !is_meta) {
			if (req) {
				ret = scimg_int_err(img->ctx, -ENOTSUP,
						    "'%s': VHDX region table entry %u at offset %llu names unknown required region %s",
						    img->path, i, (unsigned long long)eoff, g);
				goto out;
			}
			continue;
		}
		if ((is_bat && have_bat) || (is_meta && have_meta)) {
			ret = scimg_int_err(img->ctx, -EINVAL,
					    "'%s': VHDX region table entry %u at offset %llu repeats region %s",
					    img->path, i, (unsigned long long)eoff, g);
			goto out;
		}
		if (off < VHDX_MiB || off % VHDX_MiB || len == 0 || len % VHDX_MiB ||
		    !scimg_add_ok(off, len, &end) || end > x->file_size) {
			ret = scimg_int_err(img->ctx, -EINVAL,
					    "'%s': VHDX %s region at offset %llu is %llu bytes at %llu, expected 1 MiB multiples inside the file (%llu bytes)",
					    img->path, is_bat ? "BAT" : "metadata",
					    (unsigned long long)(eoff + 16), (unsigned long long)len,
					    (unsigned long long)off, (unsigned long long)x->file_size);
			goto out;
		}
		if (is_bat) {
			x->bat_off = off;
			x->bat_len = len;
			have_bat = 1;
		} else {
			x->meta_off = off;
			x->meta_len = len;
			have_meta = 1;
		}
	}
	if (!have_bat || !have_meta) {
		ret = scimg_int_err(img->ctx, -EINVAL,
				    "'%s': VHDX region table at offset %llu has no %s region",
				    img->path, (unsigned long long)toff, have_bat ? "metadata" : "BAT");
		goto out;
	}
	if (x->bat_off < x->meta_off + x->meta_len && x->meta_off < x->bat_off + x->bat_len) {
		ret = scimg_int_err(img->ctx, -EINVAL,
				    "'%s': VHDX BAT region (%llu at %llu) overlaps the metadata region (%llu at %llu)",
				    img->path, (unsigned long long)x->bat_len,
				    (unsigned long long)x->bat_off, (unsigned long long)x->meta_len,
				    (unsigned long long)x->meta_off);
		goto out;
	}
	ret = 0;
out:
	free(t);
	return ret;
}

/* ---- metadata ----------------------------------------------------------- */

static int read_locator(struct scimg_image *img, struct vhdx *x, uint64_t off,
			uint32_t len)
{
	uint8_t *b;
	char g[37];
	uint32_t i, n;
	size_t bad;
	int ret;

	if (len < 20 || len > MAX_LOCATOR_ITEM)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': VHDX parent locator at offset %llu is %u bytes, expected 20 to %u",
				     img->path, (unsigned long long)off, len, MAX_LOCATOR_ITEM);
	b = malloc(len);
	if (!b)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	ret = scimg_int_vhdx_read(x, b, len, off, "parent locator");
	if (ret < 0)
		goto out;
	if (memcmp(b, scimg_vhdx_guid_locator_type, 16) != 0) {
		scimg_int_vhd_guid_str(b, 1, g);
		ret = scimg_int_err(img->ctx, -ENOTSUP,
				    "'%s': VHDX parent locator type at offset %llu is %s, expected b04aefb7-d19e-4a81-b789-25b8e9445913",
				    img->path, (unsigned long long)off, g);
		goto out;
	}
	n = scimg_le16(b + 18);
	if (20 + 12 * (uint64_t)n > len) {
		ret = scimg_int_err(img->ctx, -EINVAL,
				    "'%s': VHDX parent locator key-value count at offset %llu is %u, more than its %u bytes hold",
				    img->path, (unsigned long long)(off + 18), n, len);
		goto out;
	}
	x->pl_key = calloc(n + 1, sizeof(char *));
	x->pl_val = calloc(n + 1, sizeof(char *));
	if (!x->pl_key || !x->pl_val) {
		ret = scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		const uint8_t *e = b + 20 + 12 * (size_t)i;
		uint32_t ko = scimg_le32(e), vo = scimg_le32(e + 4);
		uint32_t kl = scimg_le16(e + 8), vl = scimg_le16(e + 10);

		if (kl == 0 || vl == 0 || kl % 2 || vl % 2 ||
		    (uint64_t)ko + kl > len || (uint64_t)vo + vl > len) {
			ret = scimg_int_err(img->ctx, -EINVAL,
					    "'%s': VHDX parent locator entry %u at offset %llu has key %u+%u / value %u+%u, expected even non-empty ranges inside the %u-byte locator",
					    img->path, i, (unsigned long long)(off + 20 + 12 * (uint64_t)i),
					    ko, kl, vo, vl, len);
			goto out;
		}
		x->pl_key[i] = scimg_int_vhd_utf16_to_utf8(b + ko, kl, 0, &bad);
		x->pl_val[i] = scimg_int_vhd_utf16_to_utf8(b + vo, vl, 0, &bad);
		x->pl_n = i + 1;
		if (!x->pl_key[i] || !x->pl_val[i]) {
			ret = scimg_int_err(img->ctx, -EINVAL,
					    "'%s': VHDX parent locator entry %u at offset %llu is not valid UTF-16LE",
					    img->path, i, (unsigned long long)(off + 20 + 12 * (uint64_t)i));
			goto out;
		}
	}
	ret = 0;
out:
	free(b);
	return ret;
}

static int read_metadata(struct scimg_image *img, struct vhdx *x)
{
	uint8_t *t = malloc(VHDX_META_TABLE_SIZE), item[16];
	uint32_t n, i, have = 0;
	uint64_t loc_off = 0;
	uint32_t loc_len = 0;
	char g[37];
	int ret;

	if (!t)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	ret = scimg_int_vhdx_read(x, t, VHDX_META_TABLE_SIZE, x->meta_off, "metadata table");
	if (ret < 0)
		goto out;
	if (memcmp(t, "metadata", 8) != 0) {
		ret = scimg_int_err(img->ctx, -EINVAL,
				    "'%s': VHDX metadata table signature at offset %llu is not 'metadata'",
				    img->path, (unsigned long long)x->meta_off);
		goto out;
	}
	n = scimg_le16(t + 10);
	if (n > VHDX_MAX_ENTRIES) {
		ret = scimg_int_err(img->ctx, -EINVAL,
				    "'%s': VHDX metadata entry count at offset %llu is %u, expected at most %u",
				    img->path, (unsigned long long)(x->meta_off + 10), n, VHDX_MAX_ENTRIES);
		goto out;
	}
	x->pss = 512;
	for (i = 0; i < n; i++) {
		static const struct { const uint8_t *guid; uint32_t len; const char *name; } known[] = {
			{ scimg_vhdx_guid_file_params, 8, "file parameters" },
			{ scimg_vhdx_guid_disk_size, 8, "virtual disk size" },
			{ scimg_vhdx_guid_page83, 16, "page 83 data" },
			{ scimg_vhdx_guid_logical_sector, 4, "logical sector size" },
			{ scimg_vhdx_guid_physical_sector, 4, "physical sector size" },
			{ scimg_vhdx_guid_parent_locator, 0, "parent locator" },
		};
		const uint8_t *e = t + 32 + 32 * (size_t)i;
		uint64_t eoff = x->meta_off + 32 + 32 * (uint64_t)i;
		uint32_t off = scimg_le32(e + 16), len = scimg_le32(e + 20);
		uint32_t flags = scimg_le32(e + 24);
		size_t k;

		for (k = 0; k < SCIMG_ARRAY_SIZE(known); k++)
			if (!memcmp(e, known[k].guid, 16))
				break;
		scimg_int_vhd_guid_str(e, 1, g);
		if (k == SCIMG_ARRAY_SIZE(known)) {
			if (flags & VHDX_META_REQUIRED) {
				ret = scimg_int_err(img->ctx, -ENOTSUP,
						    "'%s': VHDX metadata entry %u at offset %llu names unknown required item %s",
						    img->path, i, (unsigned long long)eoff, g);
				goto out;
			}
			continue;
		}
		if (have & (1u << k)) {
			ret = scimg_int_err(img->ctx, -EINVAL,
					    "'%s': VHDX metadata entry %u at offset %llu repeats the %s item",
					    img->path, i, (unsigned long long)eoff, known[k].name);
			goto out;
		}
		if ((known[k].len && len != known[k].len) || len == 0 ||
		    off < VHDX_META_TABLE_SIZE || (uint64_t)off + len > x->meta_len) {
			ret = scimg_int_err(img->ctx, -EINVAL,
					    "'%s': VHDX metadata %s item at offset %llu is %u bytes at %u, expected %s inside the %llu-byte metadata region after its table",
					    img->path, known[k].name, (unsigned long long)(eoff + 16),
					    len, off, known[k].len == 8 ? "8 bytes" : known[k].len == 16 ? "16 bytes" :
					    known[k].len == 4 ? "4 bytes" : "a non-empty item",
					    (unsigned long long)x->meta_len);
			goto out;
		}
		have |= 1u << k;
		if (k == 5) {
			loc_off = x->meta_off + off;
			loc_len = len;
			continue;
		}
		ret = scimg_int_vhdx_read(x, item, len, x->meta_off + off, known[k].name);
		if (ret < 0)
			goto out;
		switch (k) {
		case 0:
			x->block_size = scimg_le32(item);
			x->leave_allocated = scimg_le32(item + 4) & 1;
			x->has_parent = (scimg_le32(item + 4) >> 1) & 1;
			break;
		case 1: x->disk_size = scimg_le64(item); break;
		case 2: memcpy(x->page83, item, 16); break;
		case 3: x->lss = scimg_le32(item); break;
		case 4: x->pss = scimg_le32(item); break;
		}
	}
	for (i = 0; i < 4; i++) {
		static const char *const names[] = { "file parameters", "virtual disk size",
			"page 83 data", "logical sector size" };
		if (i == 2)
			continue;
		if (!(have & (1u << i))) {
			ret = scimg_int_err(img->ctx, -EINVAL,
					    "'%s': VHDX metadata table at offset %llu has no %s item",
					    img->path, (unsigned long long)x->meta_off, names[i]);
			goto out;
		}
	}
	if (x->block_size < VHDX_MIN_BLOCK || x->block_size > VHDX_MAX_BLOCK ||
	    (x->block_size & (x->block_size - 1))) {
		ret = scimg_int_err(img->ctx, -EINVAL,
				    "'%s': VHDX block size is %u, expected a power of two from 1 MiB to 256 MiB",
				    img->path, x->block_size);
		goto out;
	}
	if (x->lss != 512 && x->lss != 4096) {
		ret = scimg_int_err(img->ctx, -EINVAL,
				    "'%s': VHDX logical sector size is %u, expected 512 or 4096",
				    img->path, x->lss);
		goto out;
	}
	if (x->pss != 512 && x->pss != 4096) {
		ret = scimg_int_err(img->ctx, -EINVAL,
				    "'%s': VHDX physical sector size is %u, expected 512 or 4096",
				    img->path, x->pss);
		goto out;
	}
	if (x->disk_size > VHDX_MAX_SIZE || x->disk_size % x->lss) {
		ret = scimg_int_err(img->ctx, -EINVAL,
				    "'%s': VHDX virtual disk size is %llu, expected a multiple of the %u-byte logical sector up to 64 TiB",
				    img->path, (unsigned long long)x->disk_size, x->lss);
		goto out;
	}
	if (x->has_parent && !loc_len) {
		ret = scimg_int_err(img->ctx, -EINVAL,
				    "'%s': VHDX has a parent (file parameters) but no parent locator item",
				    img->path);
		goto out;
	}
	if (loc_len && (ret = read_locator(img, x, loc_off, loc_len)) < 0)
		goto out;
	ret = 0;
out:
	free(t);
	return ret;
}

/* ---- BAT ---------------------------------------------------------------- */

static int bat_get(struct vhdx *x, uint64_t idx, uint64_t *e)
{
	uint64_t page = idx / BAT_PAGE_ENTRIES;
	size_t slot = (size_t)(page % BAT_CACHE_PAGES);
	uint64_t *p;
	int ret;

	if (!x->bat_cache) {
		x->bat_cache = malloc((size_t)BAT_CACHE_PAGES * BAT_PAGE_ENTRIES * 8);
		x->bat_tag = calloc(BAT_CACHE_PAGES, sizeof(uint64_t));
		if (!x->bat_cache || !x->bat_tag)
			return scimg_int_err(x->img->ctx, -ENOMEM, "out of memory");
	}
	p = x->bat_cache + slot * BAT_PAGE_ENTRIES;
	if (x->bat_tag[slot] != page + 1) {
		uint8_t *raw = (uint8_t *)p;
		x->bat_tag[slot] = 0;
		ret = scimg_int_vhdx_read(x, raw, BAT_PAGE_ENTRIES * 8,
					  x->bat_off + page * BAT_PAGE_ENTRIES * 8, "BAT");
		if (ret < 0)
			return ret;
		for (size_t i = 0; i < BAT_PAGE_ENTRIES; i++)
			p[i] = scimg_le64(raw + 8 * i);
		x->bat_tag[slot] = page + 1;
	}
	*e = p[idx % BAT_PAGE_ENTRIES];
	return 0;
}

static int payload_entry(struct vhdx *x, uint64_t block, uint64_t *e)
{
	return bat_get(x, block + block / x->chunk_ratio, e);
}

/* One pass over the whole BAT: every entry's state and offset. */
static int check_bat(struct scimg_image *img, struct vhdx *x)
{
	const uint64_t step = VHDX_MiB / 8;
	uint8_t *raw = malloc(VHDX_MiB);
	uint64_t idx, cr1 = x->chunk_ratio + 1;
	int chunk_partial = 0, ret = 0;

	if (!raw)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	for (idx = 0; idx < x->bat_entries; idx++) {
		uint64_t e, foff, eoff = x->bat_off + idx * 8;
		unsigned st;

		if (idx % step == 0) {
			uint64_t n = x->bat_entries - idx < step ? x->bat_entries - idx : step;
			if ((ret = scimg_int_check_cancel(img->ctx)) < 0 ||
			    (ret = scimg_int_vhdx_read(x, raw, (size_t)n * 8, eoff, "BAT")) < 0)
				goto out;
		}
		e = scimg_le64(raw + 8 * (idx % step));
		st = (unsigned)(e & 7);
		foff = (e >> 20) * VHDX_MiB;
		if (idx % cr1 == x->chunk_ratio) {
			/* sector bitmap entry */
			if (!x->has_parent)
				continue;
			if (st == VHDX_SB_PRESENT) {
				if (foff < VHDX_MiB || foff + VHDX_MiB > x->file_size) {
					ret = scimg_int_err(img->ctx, -EINVAL,
							    "'%s': VHDX sector bitmap BAT entry %llu at offset %llu points to %llu, expected a 1 MiB block inside the file (%llu bytes)",
							    img->path, (unsigned long long)idx,
							    (unsigned long long)eoff, (unsigned long long)foff,
							    (unsigned long long)x->file_size);
					goto out;
				}
			} else if (st != 0 || chunk_partial) {
				ret = scimg_int_err(img->ctx, -EINVAL,
						    "'%s': VHDX sector bitmap BAT entry %llu at offset %llu has state %u, expected %s",
						    img->path, (unsigned long long)idx, (unsigned long long)eoff,
						    st, chunk_partial ? "6 (present: its chunk has partially present blocks)" : "0 or 6");
				goto out;
			}
			chunk_partial = 0;
			continue;
		}
		if (idx - idx / cr1 >= x->payload_blocks)
			continue;
		if (st == 4 || st == 5 || (st == VHDX_PB_PARTIALLY_PRESENT && !x->has_parent)) {
			ret = scimg_int_err(img->ctx, -EINVAL,
					    "'%s': VHDX payload BAT entry %llu at offset %llu has state %u, expected 0-3, 6%s",
					    img->path, (unsigned long long)idx, (unsigned long long)eoff, st,
					    x->has_parent ? " or 7" : " (7 only in differencing disks)");
			goto out;
		}
		if (st == VHDX_PB_FULLY_PRESENT || st == VHDX_PB_PARTIALLY_PRESENT) {
			if (foff < VHDX_MiB || foff + x->block_size > x->file_size) {
				ret = scimg_int_err(img->ctx, -EINVAL,
						    "'%s': VHDX payload BAT entry %llu at offset %llu points to %llu, expected a %u-byte block inside the file (%llu bytes)",
						    img->path, (unsigned long long)idx, (unsigned long long)eoff,
						    (unsigned long long)foff, x->block_size,
						    (unsigned long long)x->file_size);
				goto out;
			}
		}
		if (st == VHDX_PB_PARTIALLY_PRESENT)
			chunk_partial = 1;
		x->counts[st]++;
	}
	if (chunk_partial) /* last chunk of a BAT that ends before its bitmap entry */
		ret = scimg_int_err(img->ctx, -EINVAL,
				    "'%s': VHDX BAT has partially present blocks without a sector bitmap entry",
				    img->path);
out:
	free(raw);
	return ret;
}

static int setup_bat(struct scimg_image *img, struct vhdx *x)
{
	uint64_t need;

	x->chunk_ratio = VHDX_SECTORS_PER_BITMAP * x->lss / x->block_size;
	x->payload_blocks = x->disk_size / x->block_size + (x->disk_size % x->block_size != 0);
	x->sb_blocks = x->payload_blocks / x->chunk_ratio + (x->payload_blocks % x->chunk_ratio != 0);
	if (x->has_parent)
		x->bat_entries = x->sb_blocks * (x->chunk_ratio + 1);
	else
		x->bat_entries = x->payload_blocks ?
			x->payload_blocks + (x->payload_blocks - 1) / x->chunk_ratio : 0;
	need = x->bat_entries * 8;
	if (need > x->bat_len)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': VHDX BAT region at offset %llu is %llu bytes, too small for the %llu entries that %llu bytes in %u-byte blocks need",
				     img->path, (unsigned long long)x->bat_off,
				     (unsigned long long)x->bat_len, (unsigned long long)x->bat_entries,
				     (unsigned long long)x->disk_size, x->block_size);
	x->bm = malloc(x->block_size / x->lss / 8);
	if (!x->bm)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	x->bm_block = UINT64_MAX;
	return check_bat(img, x);
}

/* ---- parent ------------------------------------------------------------- */

static const char *locator_get(const struct vhdx *x, const char *key)
{
	size_t i;

	for (i = 0; i < x->pl_n; i++)
		if (!strcmp(x->pl_key[i], key))
			return x->pl_val[i];
	return NULL;
}

static int open_parent(struct scimg_image *img, struct vhdx *x)
{
	static const char *const keys[] = { "relative_path", "absolute_win32_path", "volume_path" };
	const char *link = locator_get(x, "parent_linkage");
	const char *link2 = locator_get(x, "parent_linkage2");
	const char *wanted = NULL;
	struct scimg_vhd_cands c;
	struct vhdx *px;
	char g[40];
	size_t i;
	int ret = 0;

	memset(&c, 0, sizeof(c));
	for (i = 0; i < SCIMG_ARRAY_SIZE(keys) && ret == 0; i++) {
		const char *v = locator_get(x, keys[i]);
		if (v && !wanted)
			wanted = v;
		ret = scimg_int_vhd_cand_add(img->ctx, &c, v, keys[i], 0);
	}
	if (ret == 0)
		ret = scimg_int_vhd_open_parent(img, &c, "vhdx", wanted ? wanted : "?", &x->parent);
	scimg_int_vhd_cands_free(&c);
	if ((ret = scimg_int_ref_unopened(img, ret)) != 0)
		return ret < 0 ? ret : 0;
	/* the parent must be the one this disk was made from: parent_linkage
	 * is required and must match (the parent's own GUID is not shown) */
	px = x->parent->priv;
	g[0] = '{';
	scimg_int_vhd_guid_str(px->hdr + VH_DATA_WRITE, 1, g + 1);
	strcat(g, "}");
	if (!link && !(img->ctx->flags & SCIMG_CTX_TRUST_CHAIN))
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': the parent locator has no parent_linkage, so parent '%s' cannot be verified (--trust-chain accepts it)",
				     img->path, x->parent->path);
	if (link && strcasecmp(link, g) != 0 && !(link2 && !strcasecmp(link2, g)))
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': parent '%s' does not match: its data write GUID differs from the parent locator's parent_linkage (wrong or modified parent)",
				     img->path, x->parent->path);
	if (px->lss != x->lss)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': parent '%s' has %u-byte logical sectors, the child %u-byte ones",
				     img->path, x->parent->path, px->lss, x->lss);
	return 0;
}

static int vhdx_open(struct scimg_image *img)
{
	struct vhdx *x = calloc(1, sizeof(*x));
	int ret;

	if (!x)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	x->img = img;
	x->file_size = img->src->size;
	ret = read_headers(img, x);
	if (ret == 0)
		ret = check_log(img, x);
	if (ret == 0)
		ret = read_regions(img, x);
	if (ret == 0)
		ret = read_metadata(img, x);
	if (ret == 0)
		ret = setup_bat(img, x);
	if (ret == 0 && x->has_parent)
		ret = open_parent(img, x);
	if (ret < 0) {
		vhdx_free(x);
		return ret;
	}
	img->size = x->disk_size;
	img->priv = x;
	return 0;
}

/* ---- reading ------------------------------------------------------------ */

static int parent_read(struct vhdx *x, uint8_t *buf, size_t len, uint64_t off)
{
	size_t n = 0;
	int ret;

	if (off < x->parent->size) {
		n = x->parent->size - off < len ? (size_t)(x->parent->size - off) : len;
		ret = scimg_image_pread(x->parent, buf, n, off);
		if (ret < 0)
			return ret;
	}
	memset(buf + n, 0, len - n);
	return 0;
}

static int load_bitmap(struct vhdx *x, uint64_t block)
{
	uint64_t spb = x->block_size / x->lss, e, c = block / x->chunk_ratio;
	int ret;

	if (x->bm_block == block)
		return 0;
	x->bm_block = UINT64_MAX;
	ret = bat_get(x, c * (x->chunk_ratio + 1) + x->chunk_ratio, &e);
	if (ret < 0)
		return ret;
	if ((e & 7) != VHDX_SB_PRESENT) /* checked at open; the log cannot change it */
		return scimg_int_err(x->img->ctx, -EIO, "'%s': VHDX sector bitmap missing",
				     x->img->path);
	ret = scimg_int_vhdx_read(x, x->bm, (size_t)(spb / 8),
				  (e >> 20) * VHDX_MiB + (block % x->chunk_ratio) * (spb / 8),
				  "sector bitmap");
	if (ret < 0)
		return ret;
	x->bm_block = block;
	return 0;
}

static uint64_t bm_run(const struct vhdx *x, uint64_t in, uint64_t max, int *bit)
{
	uint64_t s = in / x->lss, last = (in + max - 1) / x->lss;
	int b = (x->bm[s / 8] >> (s % 8)) & 1;

	*bit = b;
	while (s < last && ((x->bm[(s + 1) / 8] >> ((s + 1) % 8)) & 1) == b)
		s++;
	return (s + 1) * x->lss - in < max ? (s + 1) * x->lss - in : max;
}

static int vhdx_pread(struct scimg_image *img, void *buf, size_t len,
		      uint64_t off)
{
	struct vhdx *x = img->priv;
	uint8_t *p = buf;
	int ret;

	while (len) {
		uint64_t b = off / x->block_size, in = off % x->block_size, e, base;
		size_t n = x->block_size - in < len ? (size_t)(x->block_size - in) : len;

		if ((ret = payload_entry(x, b, &e)) < 0)
			return ret;
		base = (e >> 20) * VHDX_MiB;
		switch (e & 7) {
		case VHDX_PB_FULLY_PRESENT:
			ret = scimg_int_vhdx_read(x, p, n, base + in, "payload block");
			break;
		case VHDX_PB_PARTIALLY_PRESENT: {
			size_t done = 0;
			if ((ret = load_bitmap(x, b)) < 0)
				return ret;
			while (done < n && ret == 0) {
				int bit;
				size_t r = (size_t)bm_run(x, in + done, n - done, &bit);
				if (bit)
					ret = scimg_int_vhdx_read(x, p + done, r, base + in + done,
								  "payload block");
				else
					ret = parent_read(x, p + done, r, off + done);
				done += r;
			}
			break;
		}
		case VHDX_PB_NOT_PRESENT:
			if (x->parent) {
				ret = parent_read(x, p, n, off);
				break;
			}
			/* fall through */
		default:
			memset(p, 0, n);
			ret = 0;
		}
		if (ret < 0)
			return ret;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int kind_of(const struct vhdx *x, uint64_t e)
{
	switch (e & 7) {
	case VHDX_PB_FULLY_PRESENT: return SCIMG_EXTENT_DATA;
	case VHDX_PB_PARTIALLY_PRESENT: return -1;
	case VHDX_PB_NOT_PRESENT: return x->parent ? -2 : SCIMG_EXTENT_HOLE;
	default: return SCIMG_EXTENT_ZERO;
	}
}

static int vhdx_block_status(struct scimg_image *img, uint64_t off,
			     uint64_t len, struct scimg_extent *ext)
{
	struct vhdx *x = img->priv;
	uint64_t b = off / x->block_size, in = off % x->block_size, e, n;
	int kind, ret;

	n = x->block_size - in < len ? x->block_size - in : len;
	if ((ret = payload_entry(x, b, &e)) < 0)
		return ret;
	kind = kind_of(x, e);
	ext->offset = off;
	if (kind == -1) {
		int bit;
		if ((ret = load_bitmap(x, b)) < 0)
			return ret;
		n = bm_run(x, in, n, &bit);
		kind = bit ? SCIMG_EXTENT_DATA : -2;
	}
	if (kind == -2) {
		if (off >= x->parent->size) {
			ext->length = n;
			ext->type = SCIMG_EXTENT_HOLE;
			return 0;
		}
		if (n > x->parent->size - off)
			n = x->parent->size - off;
		return scimg_image_block_status(x->parent, off, n, ext);
	}
	/* merge following blocks of the same kind */
	while (n < len && (e & 7) != VHDX_PB_PARTIALLY_PRESENT) {
		uint64_t e2;
		if ((ret = payload_entry(x, ++b, &e2)) < 0)
			return ret;
		if (kind_of(x, e2) != kind)
			break;
		n += len - n < x->block_size ? len - n : x->block_size;
	}
	ext->length = n;
	ext->type = (enum scimg_extent_type)kind;
	return 0;
}

static int vhdx_info(struct scimg_image *img, json_object *info)
{
	json_object *o = scimg_int_info_details(info);
	struct vhdx *x = img->priv;
	char g[37];
	json_object *j;
	size_t i;

	if (!o)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	json_object_object_add(info, "cluster-size", json_object_new_int64(x->block_size));
	json_object_object_add(o, "subformat", json_object_new_string(
		x->has_parent ? "differencing" : x->leave_allocated ? "fixed" : "dynamic"));
	if (x->creator)
		json_object_object_add(o, "creator", json_object_new_string(x->creator));
	json_object_object_add(o, "block-size", json_object_new_int64(x->block_size));
	json_object_object_add(o, "logical-sector-size", json_object_new_int64(x->lss));
	json_object_object_add(o, "physical-sector-size", json_object_new_int64(x->pss));
	json_object_object_add(o, "leave-blocks-allocated", json_object_new_boolean(x->leave_allocated));
	scimg_int_vhd_guid_str(x->page83, 1, g);
	json_object_object_add(o, "virtual-disk-id", json_object_new_string(g));
	json_object_object_add(o, "current-header", json_object_new_int(x->cur_header));
	json_object_object_add(o, "header-sequence",
			       json_object_new_int64((int64_t)scimg_le64(x->hdr + VH_SEQ)));
	scimg_int_vhd_guid_str(x->hdr + VH_DATA_WRITE, 1, g);
	json_object_object_add(o, "data-write-guid", json_object_new_string(g));
	j = json_object_new_object();
	json_object_object_add(j, "dirty", json_object_new_boolean(x->log_dirty));
	if (x->log_dirty) {
		scimg_int_vhd_guid_str(x->hdr + VH_LOG_GUID, 1, g);
		json_object_object_add(j, "guid", json_object_new_string(g));
		json_object_object_add(j, "replayed-entries",
				       json_object_new_int64(x->olay ? (int64_t)x->olay->entries : 0));
		if (x->olay) {
			json_object_object_add(j, "head-sequence",
					       json_object_new_int64((int64_t)x->olay->head_seq));
			json_object_object_add(j, "replayed-descriptors",
					       json_object_new_int64((int64_t)x->olay->ndescs));
		} else {
			json_object_object_add(j, "note", json_object_new_string(
				"the log holds no valid active sequence; nothing to replay"));
		}
	}
	json_object_object_add(o, "log", j);
	j = json_object_new_object();
	json_object_object_add(j, "fully-present", json_object_new_int64((int64_t)x->counts[6]));
	json_object_object_add(j, "partially-present", json_object_new_int64((int64_t)x->counts[7]));
	json_object_object_add(j, "not-present", json_object_new_int64((int64_t)x->counts[0]));
	json_object_object_add(j, "zero", json_object_new_int64((int64_t)x->counts[2]));
	json_object_object_add(j, "unmapped", json_object_new_int64((int64_t)x->counts[3]));
	json_object_object_add(j, "undefined", json_object_new_int64((int64_t)x->counts[1]));
	json_object_object_add(o, "blocks", j);
	if (x->pl_n) {
		j = json_object_new_object();
		for (i = 0; i < x->pl_n; i++)
			json_object_object_add(j, x->pl_key[i], json_object_new_string(x->pl_val[i]));
		json_object_object_add(o, "parent-locator", j);
	}
	if (x->parent) {
		const char *pn = x->parent->path;
		int ret;
		json_object_object_add(o, "parent-filename", json_object_new_string(x->parent->path));
		for (i = 0; i < x->pl_n; i++)
			if (!strcmp(x->pl_key[i], "relative_path"))
				pn = x->pl_val[i];
		ret = scimg_int_info_backing(img, info, pn, NULL, x->parent, x->parent->path);
		if (ret < 0)
			return ret;
	}
	return 0;
}

const struct scimg_format scimg_format_vhdx = {
	.name = "vhdx",
	.description = "Microsoft VHDX (Hyper-V): fixed, dynamic, differencing; dirty logs replayed in memory",
	SCIMG_FORMAT_READER(vhdx),
	.info = vhdx_info,
	.create_opts = scimg_vhdx_create_opts,
	SCIMG_FORMAT_WRITER(scimg_int_vhdx),
	.measure = scimg_int_vhdx_measure,
};
