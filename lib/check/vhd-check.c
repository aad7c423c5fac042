/* check/vhd-check.c - VHD (dynamic, differencing) BAT consistency for
 * scimg check: every block (its sector bitmap and data) must lie apart
 * from every other block and from the metadata (footer copy, dynamic
 * header, BAT, parent locators).  The reader already refuses blocks beyond
 * the end of the file.  Memory: 16 bytes per BAT entry (the reader's
 * limit on entries applies).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check-int.h"

#define VHD_SECTOR 512u
#define VHD_MAX_ENTRIES (UINT32_C(1) << 22) /* 16 MiB of BAT */

struct region {
	uint64_t start, end;
	uint32_t what; /* UINT32_MAX - n: metadata n; else BAT entry index */
};

static const char *const meta_name[] = {
	"footer copy", "dynamic header", "BAT", "parent locator",
};

static int cmp_region(const void *a, const void *b)
{
	const struct region *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

static void describe(const struct region *r, char *buf, size_t len)
{
	if (r->what >= UINT32_MAX - 3)
		snprintf(buf, len, "the %s at offset %llu", meta_name[UINT32_MAX - r->what],
			 (unsigned long long)r->start);
	else
		snprintf(buf, len, "the block of BAT entry %u (offset %llu)", r->what,
			 (unsigned long long)r->start);
}

int scimg_int_check_vhd(struct scimg_ctx *ctx, const char *path, json_object *findings)
{
	struct scimg_source *src = NULL;
	uint8_t f[512], h[1024], *bat = NULL;
	struct region *r = NULL;
	uint64_t dyn, table, n, nr = 0, i, overlaps = 0;
	uint32_t bs, bitmap;
	char a[96], b[96];
	int ret;

	if ((ret = scimg_int_source_open(ctx, path, &src)) < 0)
		return ret;
	ret = 0;
	if (src->size < 3 * VHD_SECTOR ||
	    scimg_int_source_read(src, f, sizeof(f), src->size - 512, "footer") < 0 ||
	    memcmp(f, "conectix", 8) != 0 ||
	    (scimg_be32(f + 60) != 3 && scimg_be32(f + 60) != 4))
		goto out; /* fixed, or a footer the reader handles its own way */
	dyn = scimg_be64(f + 16);
	if (dyn > src->size - sizeof(h) ||
	    scimg_int_source_read(src, h, sizeof(h), dyn, "dynamic header") < 0 ||
	    memcmp(h, "cxsparse", 8) != 0)
		goto out;
	table = scimg_be64(h + 16);
	n = scimg_be32(h + 28);
	bs = scimg_be32(h + 32);
	if (!bs || bs % VHD_SECTOR || n > VHD_MAX_ENTRIES || table > src->size ||
	    n * 4 > src->size - table)
		goto out;
	bitmap = ((bs / VHD_SECTOR + 7) / 8 + VHD_SECTOR - 1) / VHD_SECTOR * VHD_SECTOR;
	bat = malloc(n * 4 + 1);
	r = malloc((n + 11) * sizeof(*r));
	if (!bat || !r) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	if (n && (ret = scimg_int_source_read(src, bat, (size_t)(n * 4), table, "BAT")) < 0) {
		if (ret == -ENOMEM)
			goto out;
		scimg_ctx_clear_error(ctx);
		ret = 0;
		goto out;
	}
	r[nr++] = (struct region){ 0, VHD_SECTOR, UINT32_MAX };
	r[nr++] = (struct region){ dyn, dyn + sizeof(h), UINT32_MAX - 1 };
	r[nr++] = (struct region){ table, table + (n * 4 + VHD_SECTOR - 1) / VHD_SECTOR * VHD_SECTOR,
				   UINT32_MAX - 2 };
	for (i = 0; i < 8; i++) {
		const uint8_t *l = h + 576 + 24 * i;
		uint64_t lo = scimg_be64(l + 16), ll = scimg_be32(l + 8);
		if (!scimg_be32(l) || !ll || lo > src->size)
			continue;
		r[nr++] = (struct region){ lo, lo + ll, UINT32_MAX - 3 };
	}
	for (i = 0; i < n; i++) {
		uint32_t s = scimg_be32(bat + 4 * i);
		if (s == UINT32_MAX)
			continue;
		r[nr++] = (struct region){ (uint64_t)s * VHD_SECTOR,
					   (uint64_t)s * VHD_SECTOR + bitmap + bs, (uint32_t)i };
	}
	qsort(r, (size_t)nr, sizeof(*r), cmp_region);
	/* sorted by start: a region overlaps when it starts before the
	 * furthest end reached so far */
	{
		size_t far = 0;
		for (i = 1; i < nr; i++) {
			if (r[i].start < r[far].end && !overlaps++) {
				describe(&r[i], a, sizeof(a));
				describe(&r[far], b, sizeof(b));
			}
			if (r[i].end > r[far].end)
				far = (size_t)i;
		}
	}
	if (overlaps)
		scimg_int_finding(findings, "vhd-bat-overlap", "error",
				  "'%s': %llu VHD region%s overlap%s another: %s overlaps %s",
				  path, (unsigned long long)overlaps, overlaps == 1 ? "" : "s",
				  overlaps == 1 ? "s" : "", a, b);
out:
	free(bat);
	free(r);
	scimg_int_source_close(src);
	return ret;
}
