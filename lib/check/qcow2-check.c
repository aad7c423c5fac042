/* check/qcow2-check.c - qcow2 refcount consistency for scimg check.
 *
 * Counts the references to every host cluster the way QEMU's
 * qcow2_check_refcounts() does (header, refcount table and blocks, active
 * and snapshot L1 tables, L2 tables, data and compressed clusters, the
 * snapshot table) and compares them with the stored refcounts: a cluster
 * used more often than its refcount says is a corruption (a refcount of 0
 * on a used cluster is the worst case), one with a refcount and no use is
 * leaked, one used as two different things is an overlap; in the active
 * tables, the COPIED flag must match a refcount of 1.  Memory: five
 * bytes per host cluster of the file, capped (SCIMG_Q2CK_MAX_CLUSTERS).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check-int.h"
#include "formats/qcow2.h"

#define SCIMG_Q2CK_MAX_CLUSTERS (UINT64_C(4) << 20) /* 20 MiB of tables */

enum kind { K_NONE, K_HEADER, K_REFTABLE, K_REFBLOCK, K_L1, K_L2, K_DATA,
	    K_COMPRESSED, K_SNAPTABLE, K_SNAPL1 };
static const char *const kind_name[] = {
	"", "header", "refcount table", "refcount block", "L1 table", "L2 table",
	"data cluster", "compressed cluster", "snapshot table", "snapshot L1 table",
};

struct q2ck {
	struct scimg_ctx *ctx;
	struct scimg_source *src;
	const char *name;
	struct q2_header h;
	uint64_t cs, ncl;
	uint16_t *refs;    /* references counted (saturating) */
	uint16_t *rc;      /* stored refcounts (saturating) */
	uint8_t *kind;
	uint8_t *buf;      /* one cluster */
	uint64_t corruptions, leaks, beyond, overlaps, zero, low;
	uint64_t first_zero, first_low, first_leak, first_beyond;
	uint64_t allocated, fragmented, compressed, next_contig;
	uint64_t copied, first_copied;
	char overlap_msg[256];
	json_object *findings;
};

static void ref(struct q2ck *k, uint64_t off, uint64_t len, enum kind kd)
{
	uint64_t i, first, last;

	if (!len)
		return;
	first = off / k->cs;
	last = (off + len - 1) / k->cs;
	for (i = first; i <= last; i++) {
		if (i >= k->ncl) {
			if (!k->beyond++)
				k->first_beyond = i * k->cs;
			k->corruptions++;
			continue;
		}
		if (k->refs[i] < UINT16_MAX)
			k->refs[i]++;
		if (k->kind[i] && k->kind[i] != kd) {
			if (!k->overlaps++)
				snprintf(k->overlap_msg, sizeof(k->overlap_msg),
					 "the %s at offset %llu is also used as the %s",
					 kind_name[kd], (unsigned long long)(i * k->cs),
					 kind_name[k->kind[i]]);
		} else {
			k->kind[i] = (uint8_t)kd;
		}
	}
}

static int rd(struct q2ck *k, void *b, uint64_t len, uint64_t off, const char *what)
{
	if (off > k->src->size || len > k->src->size - off)
		return 1; /* beyond EOF: counted by ref() */
	return scimg_int_source_read(k->src, b, (size_t)len, off, what);
}

/* The L2 table at L2OFF; ACTIVE: count the allocation statistics. */
static int l2(struct q2ck *k, uint64_t l2off, int active)
{
	uint32_t esize = k->h.extended_l2 ? 16 : 8;
	uint64_t j, n = k->cs / esize;
	uint32_t x = 62 - (k->h.cluster_bits - 8);
	int ret;

	if ((ret = rd(k, k->buf, k->cs, l2off, "L2 table")) != 0)
		return ret < 0 ? ret : 0;
	for (j = 0; j < n; j++) {
		uint64_t e = scimg_be64(k->buf + j * esize), off;

		if (e & Q2_OFLAG_COMPRESSED) {
			uint64_t coff = e & ((UINT64_C(1) << x) - 1);
			uint64_t ns = ((e >> x) & ((UINT64_C(1) << (k->h.cluster_bits - 8)) - 1)) + 1;
			ref(k, coff & ~UINT64_C(511), ns * 512, K_COMPRESSED);
			if (active) {
				k->allocated++;
				k->compressed++;
				k->fragmented++;
				k->next_contig = 0;
			}
			continue;
		}
		off = e & Q2_L2E_OFFSET_MASK;
		if (!off)
			continue;
		if (active) {
			k->allocated++;
			if (k->next_contig && off != k->next_contig)
				k->fragmented++;
			k->next_contig = off + k->cs;
		}
		if (!k->h.data_file)
			ref(k, off, k->cs, K_DATA);
	}
	return 0;
}

/* An L1 table of N entries at OFF and everything below it. */
static int l1(struct q2ck *k, uint64_t off, uint64_t n, int active)
{
	uint64_t i, chunk = k->cs / 8;
	uint8_t *t;
	int ret = 0;

	ref(k, off, n * 8, active ? K_L1 : K_SNAPL1);
	if (!n)
		return 0;
	t = malloc(k->cs);
	if (!t)
		return scimg_int_err(k->ctx, -ENOMEM, "out of memory");
	for (i = 0; i < n && ret >= 0; i += chunk) {
		uint64_t m = n - i < chunk ? n - i : chunk, j;
		if ((ret = rd(k, t, m * 8, off + i * 8, "L1 table")) != 0)
			break;
		for (j = 0; j < m && ret >= 0; j++) {
			uint64_t l2off = scimg_be64(t + j * 8) & Q2_L1E_OFFSET_MASK;
			if (!l2off)
				continue;
			ref(k, l2off, k->cs, K_L2);
			ret = l2(k, l2off, active);
		}
	}
	free(t);
	return ret < 0 ? ret : 0;
}

static int snapshots(struct q2ck *k)
{
	uint64_t off = k->h.snapshots_offset, start = off;
	uint8_t e[40];
	uint32_t i;
	int ret;

	for (i = 0; i < k->h.nb_snapshots; i++) {
		uint64_t l1off, l1n, extra, idl, nl;
		if ((ret = rd(k, e, sizeof(e), off, "snapshot table")) != 0)
			return ret < 0 ? ret : 0;
		l1off = scimg_be64(e);
		l1n = scimg_be32(e + 8);
		idl = scimg_be16(e + 12);
		nl = scimg_be16(e + 14);
		extra = scimg_be32(e + 36);
		if (l1n > Q2_MAX_L1_BYTES / 8 || extra > Q2_MAX_SNAPSHOT_EXTRA)
			return 0; /* the reader refuses it; nothing to count */
		if ((ret = l1(k, l1off, l1n, 0)) < 0)
			return ret;
		off += (40 + extra + idl + nl + 7) & ~UINT64_C(7);
		if (off - start > Q2_MAX_SNAPSHOT_TABLE)
			return 0;
	}
	ref(k, start, off - start, K_SNAPTABLE);
	return 0;
}

/* The stored refcounts into k->rc. */
static int refcounts(struct q2ck *k)
{
	uint64_t nent = k->h.refcount_table_clusters * k->cs / 8, i, j;
	uint32_t bits = 1u << k->h.refcount_order;
	uint64_t per = k->cs * 8 / bits;
	uint8_t *t;
	int ret = 0;

	ref(k, k->h.refcount_table_offset, k->h.refcount_table_clusters * k->cs, K_REFTABLE);
	t = malloc(k->cs);
	if (!t)
		return scimg_int_err(k->ctx, -ENOMEM, "out of memory");
	for (i = 0; i < nent && ret >= 0; i++) {
		uint64_t rb;
		if (i % (k->cs / 8) == 0 &&
		    (ret = rd(k, t, k->cs, k->h.refcount_table_offset + i * 8, "refcount table")) != 0)
			break;
		rb = scimg_be64(t + (i % (k->cs / 8)) * 8) & Q2_REFT_OFFSET_MASK;
		if (!rb)
			continue;
		ref(k, rb, k->cs, K_REFBLOCK);
		if (i * per >= k->ncl)
			continue;
		if ((ret = rd(k, k->buf, k->cs, rb, "refcount block")) != 0) {
			ret = ret < 0 ? ret : 0;
			continue;
		}
		for (j = 0; j < per && i * per + j < k->ncl; j++) {
			uint64_t v;
			const uint8_t *p = k->buf;
			switch (bits) {
			case 64: v = scimg_be64(p + j * 8); break;
			case 32: v = scimg_be32(p + j * 4); break;
			case 16: v = scimg_be16(p + j * 2); break;
			case 8: v = p[j]; break;
			default: v = (p[j * bits / 8] >> (j * bits % 8)) & ((1u << bits) - 1); break;
			}
			k->rc[i * per + j] = v > UINT16_MAX ? UINT16_MAX : (uint16_t)v;
		}
	}
	free(t);
	return ret < 0 ? ret : 0;
}

/* The stored refcount of the cluster at OFF (0 beyond the file). */
static uint64_t rc_at(const struct q2ck *k, uint64_t off)
{
	return off / k->cs < k->ncl ? k->rc[off / k->cs] : 0;
}

static void copied_bad(struct q2ck *k, uint64_t off)
{
	if (!k->copied++)
		k->first_copied = off;
	k->corruptions++;
}

/* As qemu-img check: in the active tables, an entry has the COPIED flag
 * exactly when the cluster it points to has refcount 1. */
static int copied_pass(struct q2ck *k)
{
	uint32_t esize = k->h.extended_l2 ? 16 : 8;
	uint64_t i, n = k->h.l1_size, chunk = k->cs / 8;
	uint8_t *t = malloc(k->cs);
	int ret = 0;

	if (!t)
		return scimg_int_err(k->ctx, -ENOMEM, "out of memory");
	for (i = 0; i < n && ret >= 0; i += chunk) {
		uint64_t m = n - i < chunk ? n - i : chunk, j, x;
		if ((ret = rd(k, t, m * 8, k->h.l1_table_offset + i * 8, "L1 table")) != 0)
			break;
		for (j = 0; j < m; j++) {
			uint64_t e = scimg_be64(t + j * 8), l2off = e & Q2_L1E_OFFSET_MASK;
			if (!l2off)
				continue;
			if ((rc_at(k, l2off) == 1) != !!(e & Q2_OFLAG_COPIED))
				copied_bad(k, l2off);
			if ((ret = rd(k, k->buf, k->cs, l2off, "L2 table")) != 0) {
				ret = ret < 0 ? ret : 0;
				continue;
			}
			if (k->h.data_file)
				continue;
			for (x = 0; x < k->cs / esize; x++) {
				uint64_t e2 = scimg_be64(k->buf + x * esize), off;
				if (e2 & Q2_OFLAG_COMPRESSED)
					continue;
				off = e2 & Q2_L2E_OFFSET_MASK;
				if (off && (rc_at(k, off) == 1) != !!(e2 & Q2_OFLAG_COPIED))
					copied_bad(k, off);
			}
		}
	}
	free(t);
	return ret < 0 ? ret : 0;
}

int scimg_int_check_qcow2(struct scimg_ctx *ctx, const char *path,
			  json_object *findings, json_object *report)
{
	struct q2ck k;
	uint8_t peek[Q2_PEEK_LEN], *head = NULL;
	uint64_t i, highest = 0, hl;
	int ret;

	memset(&k, 0, sizeof(k));
	k.ctx = ctx;
	k.name = path;
	k.findings = findings;
	if ((ret = scimg_int_source_open(ctx, path, &k.src)) < 0)
		return ret;
	if (k.src->size < Q2_PEEK_LEN ||
	    scimg_int_source_read(k.src, peek, sizeof(peek), 0, "header") < 0 ||
	    scimg_be32(peek) != Q2_MAGIC || scimg_be32(peek + 20) < Q2_MIN_CLUSTER_BITS ||
	    scimg_be32(peek + 20) > Q2_MAX_CLUSTER_BITS) {
		ret = 0; /* not ours to say: the open step reports it */
		goto out;
	}
	hl = UINT64_C(1) << scimg_be32(peek + 20);
	if (hl > k.src->size)
		hl = k.src->size;
	if (!(head = malloc(hl))) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	if (scimg_int_source_read(k.src, head, (size_t)hl, 0, "header") < 0 ||
	    scimg_int_qcow2_parse_header(ctx, path, head, (size_t)hl, k.src->size, &k.h) < 0) {
		scimg_ctx_clear_error(ctx);
		ret = 0;
		goto out;
	}
	k.cs = k.h.cluster_size;
	k.ncl = (k.src->size + k.cs - 1) / k.cs;
	json_object_object_add(report, "total-clusters",
			       json_object_new_int64((int64_t)((k.h.size + k.cs - 1) / k.cs)));
	if (k.ncl > SCIMG_Q2CK_MAX_CLUSTERS) {
		scimg_int_finding(findings, "qcow2-refcounts-unchecked", "warning",
				  "'%s': the file has %llu clusters, more than the %llu whose refcounts check counts; refcounts not checked",
				  path, (unsigned long long)k.ncl,
				  (unsigned long long)SCIMG_Q2CK_MAX_CLUSTERS);
		ret = 0;
		goto out;
	}
	k.refs = calloc(k.ncl, sizeof(*k.refs));
	k.rc = calloc(k.ncl, sizeof(*k.rc));
	k.kind = calloc(k.ncl, 1);
	k.buf = malloc(k.cs);
	if (!k.refs || !k.rc || !k.kind || !k.buf) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	ref(&k, 0, k.cs, K_HEADER);
	if ((ret = refcounts(&k)) < 0 || (ret = l1(&k, k.h.l1_table_offset, k.h.l1_size, 1)) < 0 ||
	    (ret = snapshots(&k)) < 0) {
		if (ret == -ENOMEM || ret == -ECANCELED)
			goto out;
		json_object_object_add(report, "check-errors", json_object_new_int(1));
		scimg_int_finding(findings, "qcow2-check-read", "error", "%s", scimg_ctx_errmsg(ctx));
		scimg_ctx_clear_error(ctx);
		ret = 0;
		goto out;
	}
	for (i = 0; i < k.ncl; i++) {
		if (k.rc[i] || k.refs[i])
			highest = i;
		if (k.rc[i] == k.refs[i])
			continue;
		if (k.rc[i] < k.refs[i]) {
			k.corruptions++;
			if (!k.rc[i] && !k.zero++)
				k.first_zero = i;
			if (k.rc[i] && !k.low++)
				k.first_low = i;
		} else if (!k.h.nb_bitmaps) {
			if (!k.leaks++)
				k.first_leak = i;
		}
	}
	if ((ret = copied_pass(&k)) < 0)
		goto out;
	if (k.zero)
		scimg_int_finding(findings, "qcow2-refcount-zero", "error",
				  "'%s': %llu cluster%s in use %s a refcount of 0 (the first: the %s at offset %llu, used %u time%s)",
				  path, (unsigned long long)k.zero, k.zero == 1 ? "" : "s",
				  k.zero == 1 ? "has" : "have", kind_name[k.kind[k.first_zero]],
				  (unsigned long long)(k.first_zero * k.cs), k.refs[k.first_zero],
				  k.refs[k.first_zero] == 1 ? "" : "s");
	if (k.low)
		scimg_int_finding(findings, "qcow2-refcount-low", "error",
				  "'%s': %llu cluster%s used more often than %s refcount says (the first: the %s at offset %llu, refcount %u, used %u times)",
				  path, (unsigned long long)k.low, k.low == 1 ? "" : "s",
				  k.low == 1 ? "its" : "their", kind_name[k.kind[k.first_low]],
				  (unsigned long long)(k.first_low * k.cs), k.rc[k.first_low],
				  k.refs[k.first_low]);
	if (k.copied)
		scimg_int_finding(findings, "qcow2-copied-flag", "error",
				  "'%s': %llu L1/L2 entr%s with a COPIED flag (bit 63) that disagrees with the refcount of the cluster pointed to (the first: the cluster at offset %llu, refcount %llu)",
				  path, (unsigned long long)k.copied, k.copied == 1 ? "y" : "ies",
				  (unsigned long long)k.first_copied,
				  (unsigned long long)rc_at(&k, k.first_copied));
	if (k.beyond)
		scimg_int_finding(findings, "qcow2-offset-beyond-eof", "error",
				  "'%s': %llu reference%s to clusters beyond the end of the file (%llu bytes; the first at offset %llu)",
				  path, (unsigned long long)k.beyond, k.beyond == 1 ? "" : "s",
				  (unsigned long long)k.src->size, (unsigned long long)k.first_beyond);
	if (k.overlaps)
		scimg_int_finding(findings, "qcow2-overlap", "error",
				  "'%s': %llu cluster%s used as two different things: %s",
				  path, (unsigned long long)k.overlaps, k.overlaps == 1 ? "" : "s",
				  k.overlap_msg);
	if (k.leaks)
		scimg_int_finding(findings, "qcow2-leak", "warning",
				  "'%s': %llu cluster%s %s a refcount but nothing uses %s (leaked; the first at offset %llu); harmless, the space is wasted",
				  path, (unsigned long long)k.leaks, k.leaks == 1 ? "" : "s",
				  k.leaks == 1 ? "has" : "have", k.leaks == 1 ? "it" : "them",
				  (unsigned long long)(k.first_leak * k.cs));
	json_object_object_add(report, "image-end-offset",
			       json_object_new_int64((int64_t)((highest + 1) * k.cs)));
	if (k.allocated)
		json_object_object_add(report, "allocated-clusters", json_object_new_int64((int64_t)k.allocated));
	if (k.fragmented)
		json_object_object_add(report, "fragmented-clusters", json_object_new_int64((int64_t)k.fragmented));
	if (k.compressed)
		json_object_object_add(report, "compressed-clusters", json_object_new_int64((int64_t)k.compressed));
	if (k.corruptions)
		json_object_object_add(report, "corruptions", json_object_new_int64((int64_t)k.corruptions));
	if (k.leaks)
		json_object_object_add(report, "leaks", json_object_new_int64((int64_t)k.leaks));
	ret = 0;
out:
	scimg_int_qcow2_header_free(&k.h);
	free(head);
	free(k.refs);
	free(k.rc);
	free(k.kind);
	free(k.buf);
	scimg_int_source_close(k.src);
	return ret;
}
