/* vhdx-write.c - writing VHDX images (dynamic, or fixed with every block
 * allocated), 512-byte logical sectors.
 *
 * Layout written:
 *   0        file type identifier ("vhdxfile", creator "scimg <version>")
 *   64 KiB   header 1 (sequence 1), 128 KiB header 2 (sequence 2)
 *   192 KiB  region table 1, 256 KiB region table 2 (identical)
 *   1 MiB    log (1 MiB, empty: the log GUID is zero)
 *   2 MiB    metadata region (1 MiB): table, then the items at 64 KiB
 *   3 MiB    BAT region (whole MiBs)
 *   then     payload blocks in the order they are first written
 * A block is allocated on its first write and marked FULLY_PRESENT; the
 * parts of it never written are holes in the file and read as zeros.
 * Blocks never written stay NOT_PRESENT, which Hyper-V, qemu and libvhdi
 * read as zeros.  Headers, tables and the BAT are written by finish().
 */
#include <stdlib.h>
#include <string.h>

#include "scimg-int.h"
#include "vhd-common.h"
#include "vhdx-int.h"

#define W_LOG_OFF (1 * VHDX_MiB)
#define W_LOG_LEN (1 * VHDX_MiB)
#define W_META_OFF (2 * VHDX_MiB)
#define W_META_LEN (1 * VHDX_MiB)
#define W_BAT_OFF (3 * VHDX_MiB)
#define W_DEFAULT_BLOCK (32 * VHDX_MiB)
#define W_LSS 512u
#define W_PSS 4096u
#define W_MAX_BAT_BYTES (64 * VHDX_MiB)

struct vhdx_writer {
	uint32_t block_size;
	int fixed;
	uint64_t size, chunk_ratio, payload_blocks, bat_entries, bat_len;
	uint64_t *bat;          /* payload entries only, host order; 0 = not present */
	uint64_t next;          /* next free file offset (1 MiB aligned) */
	uint8_t file_write[16], data_write[16], page83[16];
};

const char *const scimg_vhdx_create_opts[] = { "block_size", "subformat", NULL };

void scimg_int_vhdx_writer_free(struct scimg_image *img)
{
	struct vhdx_writer *w = img->priv;

	if (!w)
		return;
	free(w->bat);
	free(w);
	img->priv = NULL;
}

/* The options and the geometry of a VHDX of SIZE bytes into W (no BAT
 * allocated); NAME (the output, or NULL) for messages. */
static int geometry(struct scimg_ctx *ctx, const char *name, const struct scimg_opts *opts,
		    uint64_t size, struct vhdx_writer *w)
{
	const char *bs = scimg_int_opts_get(opts, "block_size");
	const char *sub = scimg_int_opts_get(opts, "subformat");
	uint64_t v;

	w->block_size = W_DEFAULT_BLOCK;
	if (bs) {
		if (scimg_int_parse_size(bs, &v) < 0 || v < VHDX_MIN_BLOCK ||
		    v > VHDX_MAX_BLOCK || (v & (v - 1)))
			return scimg_int_err(ctx, -EINVAL,
					     "vhdx option 'block_size' is '%s', expected a power of two from 1M to 256M",
					     bs);
		w->block_size = (uint32_t)v;
	}
	if (sub && strcmp(sub, "dynamic") != 0 && strcmp(sub, "fixed") != 0)
		return scimg_int_err(ctx, -EINVAL,
				     "vhdx option 'subformat' is '%s', expected dynamic or fixed", sub);
	w->fixed = sub && !strcmp(sub, "fixed");
	w->size = (size + W_LSS - 1) / W_LSS * W_LSS;
	if (w->size > VHDX_MAX_SIZE)
		return scimg_int_err(ctx, -EFBIG,
				     "%s%s%s%llu bytes is more than a VHDX can hold (64 TiB)",
				     name ? "'" : "", name ? name : "", name ? "': " : "",
				     (unsigned long long)w->size);
	w->chunk_ratio = VHDX_SECTORS_PER_BITMAP * W_LSS / w->block_size;
	w->payload_blocks = w->size / w->block_size + (w->size % w->block_size != 0);
	w->bat_entries = w->payload_blocks ?
		w->payload_blocks + (w->payload_blocks - 1) / w->chunk_ratio : 0;
	w->bat_len = (w->bat_entries * 8 + VHDX_MiB - 1) / VHDX_MiB * VHDX_MiB;
	if (w->bat_len == 0)
		w->bat_len = VHDX_MiB;
	if (w->payload_blocks * 8 > W_MAX_BAT_BYTES)
		return scimg_int_err(ctx, -EFBIG,
				     "%s%s%s%llu bytes in %u-byte blocks need a BAT larger than %u MiB; use a larger block_size",
				     name ? "'" : "", name ? name : "", name ? "': " : "",
				     (unsigned long long)w->size, w->block_size,
				     W_MAX_BAT_BYTES / VHDX_MiB);
	return 0;
}

/* scimg measure -O vhdx: the layout create() and finish() make: 3 MiB of
 * headers, region tables, log and metadata, the BAT region (whole MiBs),
 * then a whole block per block holding data (every block when fixed). */
int scimg_int_vhdx_measure(struct scimg_ctx *ctx, struct scimg_image *src, uint64_t size,
			   const struct scimg_opts *opts, struct scimg_measure *out)
{
	struct vhdx_writer w;
	uint64_t data = 0;
	int ret;

	memset(&w, 0, sizeof(w));
	if ((ret = geometry(ctx, NULL, opts, size, &w)) < 0)
		return ret;
	out->fully_allocated = W_BAT_OFF + w.bat_len + w.payload_blocks * w.block_size;
	if (w.fixed) {
		out->required = out->fully_allocated;
		return 0;
	}
	if (src && (ret = scimg_int_measure_data(src, w.block_size, &data)) < 0)
		return ret;
	out->required = W_BAT_OFF + w.bat_len + data / w.block_size * w.block_size;
	return 0;
}

static int create(struct scimg_image *img, const struct scimg_opts *opts,
		  struct vhdx_writer *w)
{
	uint64_t i;
	int ret;

	if ((ret = geometry(img->ctx, img->path, opts, img->size, w)) < 0)
		return ret;
	w->bat = calloc(w->payload_blocks ? w->payload_blocks : 1, sizeof(uint64_t));
	if (!w->bat)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	w->next = W_BAT_OFF + w->bat_len;
	if ((ret = scimg_int_vhd_random(img->ctx, w->file_write, 16)) < 0 ||
	    (ret = scimg_int_vhd_random(img->ctx, w->data_write, 16)) < 0 ||
	    (ret = scimg_int_vhd_random(img->ctx, w->page83, 16)) < 0)
		return ret;
	if (w->fixed) {
		/* every block allocated, in order */
		for (i = 0; i < w->payload_blocks; i++) {
			w->bat[i] = (w->next / VHDX_MiB) << 20 | VHDX_PB_FULLY_PRESENT;
			w->next += w->block_size;
		}
	}
	return scimg_int_out_truncate(img, w->next);
}

int scimg_int_vhdx_create(struct scimg_image *img, const struct scimg_opts *opts)
{
	struct vhdx_writer *w = calloc(1, sizeof(*w));
	int ret;

	if (!w)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	img->priv = w;
	ret = create(img, opts, w);
	if (ret < 0)
		scimg_int_vhdx_writer_free(img);
	return ret;
}

int scimg_int_vhdx_pwrite(struct scimg_image *img, const void *buf, size_t len,
			  uint64_t off)
{
	struct vhdx_writer *w = img->priv;
	const uint8_t *p = buf;
	int ret;

	while (len) {
		uint64_t b = off / w->block_size, in = off % w->block_size;
		size_t n = w->block_size - in < len ? (size_t)(w->block_size - in) : len;

		if (!w->bat[b]) {
			w->bat[b] = (w->next / VHDX_MiB) << 20 | VHDX_PB_FULLY_PRESENT;
			w->next += w->block_size;
		}
		ret = scimg_int_out_pwrite(img, p, n, (w->bat[b] >> 20) * VHDX_MiB + in);
		if (ret < 0)
			return ret;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static void put_meta_entry(uint8_t *e, const uint8_t guid[16], uint32_t off,
			   uint32_t len, uint32_t flags)
{
	memcpy(e, guid, 16);
	scimg_put_le32(e + 16, off);
	scimg_put_le32(e + 20, len);
	scimg_put_le32(e + 24, flags);
}

static int write_bat(struct scimg_image *img, struct vhdx_writer *w)
{
	const size_t chunk = VHDX_MiB;
	uint8_t *buf = malloc(chunk);
	uint64_t idx = 0, pos = W_BAT_OFF;
	int ret = 0;

	if (!buf)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	while (pos < W_BAT_OFF + w->bat_len && ret == 0) {
		size_t k;
		memset(buf, 0, chunk);
		for (k = 0; k < chunk / 8 && idx < w->bat_entries; k++, idx++) {
			uint64_t cr1 = w->chunk_ratio + 1;
			if (idx % cr1 == w->chunk_ratio)
				continue; /* sector bitmap: not present */
			scimg_put_le64(buf + 8 * k, w->bat[idx - idx / cr1]);
		}
		/* the file is sparse: all-zero parts need no write */
		if (!scimg_int_is_zero(buf, chunk))
			ret = scimg_int_out_pwrite(img, buf, chunk, pos);
		pos += chunk;
	}
	free(buf);
	return ret;
}

int scimg_int_vhdx_finish(struct scimg_image *img)
{
	struct vhdx_writer *w = img->priv;
	uint8_t *b = calloc(1, VHDX_RTABLE_SIZE);
	uint8_t *m;
	long n;
	int ret, i;

	if (!b)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	ret = write_bat(img, w);
	if (ret < 0)
		goto out;

	/* metadata region: table and items */
	memcpy(b, "metadata", 8);
	scimg_put_le16(b + 10, 5);
	put_meta_entry(b + 32, scimg_vhdx_guid_file_params, 0x10000, 8, VHDX_META_REQUIRED);
	put_meta_entry(b + 64, scimg_vhdx_guid_disk_size, 0x10008, 8,
		       VHDX_META_VDISK | VHDX_META_REQUIRED);
	put_meta_entry(b + 96, scimg_vhdx_guid_page83, 0x10010, 16,
		       VHDX_META_VDISK | VHDX_META_REQUIRED);
	put_meta_entry(b + 128, scimg_vhdx_guid_logical_sector, 0x10020, 4,
		       VHDX_META_VDISK | VHDX_META_REQUIRED);
	put_meta_entry(b + 160, scimg_vhdx_guid_physical_sector, 0x10024, 4,
		       VHDX_META_VDISK | VHDX_META_REQUIRED);
	ret = scimg_int_out_pwrite(img, b, VHDX_META_TABLE_SIZE, W_META_OFF);
	if (ret < 0)
		goto out;
	memset(b, 0, 64);
	m = b;
	scimg_put_le32(m, w->block_size);
	scimg_put_le32(m + 4, w->fixed ? 1 : 0); /* LeaveBlockAllocated */
	scimg_put_le64(m + 8, w->size);
	memcpy(m + 16, w->page83, 16);
	scimg_put_le32(m + 32, W_LSS);
	scimg_put_le32(m + 36, W_PSS);
	ret = scimg_int_out_pwrite(img, m, 40, W_META_OFF + 0x10000);
	if (ret < 0)
		goto out;

	/* region tables */
	memset(b, 0, VHDX_RTABLE_SIZE);
	memcpy(b, "regi", 4);
	scimg_put_le32(b + 8, 2);
	memcpy(b + 16, scimg_vhdx_guid_bat, 16);
	scimg_put_le64(b + 32, W_BAT_OFF);
	scimg_put_le32(b + 40, (uint32_t)w->bat_len);
	scimg_put_le32(b + 44, 1);
	memcpy(b + 48, scimg_vhdx_guid_metadata, 16);
	scimg_put_le64(b + 64, W_META_OFF);
	scimg_put_le32(b + 72, W_META_LEN);
	scimg_put_le32(b + 76, 1);
	scimg_put_le32(b + 4, scimg_int_vhdx_checksum(b, VHDX_RTABLE_SIZE, 4));
	if ((ret = scimg_int_out_pwrite(img, b, VHDX_RTABLE_SIZE, VHDX_RTABLE1)) < 0 ||
	    (ret = scimg_int_out_pwrite(img, b, VHDX_RTABLE_SIZE, VHDX_RTABLE2)) < 0)
		goto out;

	/* headers */
	for (i = 1; i <= 2; i++) {
		memset(b, 0, VHDX_HEADER_SIZE);
		memcpy(b + VH_SIG, "head", 4);
		scimg_put_le64(b + VH_SEQ, (uint64_t)i);
		memcpy(b + VH_FILE_WRITE, w->file_write, 16);
		memcpy(b + VH_DATA_WRITE, w->data_write, 16);
		scimg_put_le16(b + VH_LOG_VERSION, 0);
		scimg_put_le16(b + VH_VERSION, 1);
		scimg_put_le32(b + VH_LOG_LENGTH, W_LOG_LEN);
		scimg_put_le64(b + VH_LOG_OFFSET, W_LOG_OFF);
		scimg_put_le32(b + VH_CHECKSUM, scimg_int_vhdx_checksum(b, VHDX_HEADER_SIZE, VH_CHECKSUM));
		ret = scimg_int_out_pwrite(img, b, VHDX_HEADER_SIZE,
					   i == 1 ? VHDX_HEADER1 : VHDX_HEADER2);
		if (ret < 0)
			goto out;
	}

	/* file type identifier */
	memset(b, 0, 520);
	memcpy(b, "vhdxfile", 8);
	n = scimg_int_vhd_utf8_to_utf16("scimg " SCIMG_VERSION_STRING, b + 8, 510, 0);
	(void)n;
	ret = scimg_int_out_pwrite(img, b, 520, 0);
	if (ret == 0)
		ret = scimg_int_out_truncate(img, w->next);
out:
	free(b);
	return ret;
}
