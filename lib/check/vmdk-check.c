/* check/vmdk-check.c - VMDK hosted sparse (KDMV) grain directory against
 * its redundant copy, for scimg check: both directories must point to
 * grain tables with the same entries (VMware keeps the redundant one for
 * recovery; a reader that falls back on it must find the same disk).
 * Only the file PATH itself (monolithicSparse); a streamOptimized file
 * (directory at the end, no redundant copy) adds nothing.  Memory: two
 * grain tables and the two directories (the reader's limits apply).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check-int.h"

#define SECTOR 512u
#define MAX_GT_ENTRIES 4096u
#define MAX_GD_ENTRIES (UINT32_C(4) << 20)

int scimg_int_check_vmdk(struct scimg_ctx *ctx, const char *path, json_object *findings)
{
	struct scimg_source *src = NULL;
	uint8_t h[512], *gd = NULL, *rgd = NULL, *gt = NULL, *rgt = NULL;
	uint64_t cap, grain, gdoff, rgdoff, ngd, i, bad = 0, first = 0;
	uint32_t ngte;
	int ret;

	if ((ret = scimg_int_source_open(ctx, path, &src)) < 0)
		return ret;
	ret = 0;
	if (src->size < sizeof(h) ||
	    scimg_int_source_read(src, h, sizeof(h), 0, "header") < 0 ||
	    memcmp(h, "KDMV", 4) != 0) {
		scimg_ctx_clear_error(ctx);
		goto out;
	}
	cap = scimg_le64(h + 12);
	grain = scimg_le64(h + 20);
	ngte = scimg_le32(h + 44);
	rgdoff = scimg_le64(h + 48);
	gdoff = scimg_le64(h + 56);
	if (!(scimg_le32(h + 8) & 2) || !rgdoff || gdoff == UINT64_MAX || !gdoff ||
	    !grain || !ngte || ngte > MAX_GT_ENTRIES || !cap)
		goto out; /* no redundant directory, or the directory is at the end */
	ngd = (cap / grain + ngte - 1) / ngte;
	if (ngd > MAX_GD_ENTRIES || gdoff > src->size / SECTOR || rgdoff > src->size / SECTOR ||
	    ngd * 4 > src->size - gdoff * SECTOR || ngd * 4 > src->size - rgdoff * SECTOR)
		goto out; /* the reader refuses it */
	gd = malloc(ngd * 4);
	rgd = malloc(ngd * 4);
	gt = malloc(ngte * 4);
	rgt = malloc(ngte * 4);
	if (!gd || !rgd || !gt || !rgt) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	if (scimg_int_source_read(src, gd, ngd * 4, gdoff * SECTOR, "grain directory") < 0 ||
	    scimg_int_source_read(src, rgd, ngd * 4, rgdoff * SECTOR, "redundant grain directory") < 0) {
		scimg_ctx_clear_error(ctx);
		goto out;
	}
	for (i = 0; i < ngd; i++) {
		uint64_t a = scimg_le32(gd + 4 * i), b = scimg_le32(rgd + 4 * i);
		int differ;

		if (!a && !b)
			continue;
		if (!a || !b || a * SECTOR + ngte * 4 > src->size || b * SECTOR + ngte * 4 > src->size) {
			differ = 1;
		} else {
			if (scimg_int_source_read(src, gt, ngte * 4, a * SECTOR, "grain table") < 0 ||
			    scimg_int_source_read(src, rgt, ngte * 4, b * SECTOR, "redundant grain table") < 0) {
				scimg_ctx_clear_error(ctx);
				differ = 1;
			} else {
				differ = memcmp(gt, rgt, ngte * 4) != 0;
			}
		}
		if (differ && !bad++)
			first = i;
	}
	if (bad)
		scimg_int_finding(findings, "vmdk-redundant-gd", "error",
				  "'%s': %llu of %llu grain directory entr%s (offset %llu) and %s redundant copy (offset %llu) point to grain tables that differ (the first: entry %llu, grain tables at sectors %u and %u)",
				  path, (unsigned long long)bad, (unsigned long long)ngd,
				  bad == 1 ? "y" : "ies", (unsigned long long)(gdoff * SECTOR),
				  bad == 1 ? "its" : "their", (unsigned long long)(rgdoff * SECTOR),
				  (unsigned long long)first, scimg_le32(gd + 4 * first),
				  scimg_le32(rgd + 4 * first));
out:
	free(gd);
	free(rgd);
	free(gt);
	free(rgt);
	scimg_int_source_close(src);
	return ret;
}
