/* qcow2-header.c - parse and validate the qcow2 header cluster.
 *
 * Pure: works on a buffer holding the first cluster of the file, so unit
 * tests can feed it crafted headers.  Every field is checked before it is
 * used; messages name the file, the field, its offset and what was
 * expected.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/qcow2.h"

#define BAD(off, field, ...) bad(ctx, name, (off), (field), __VA_ARGS__)

static int bad(struct scimg_ctx *ctx, const char *name, unsigned off,
	       const char *field, const char *fmt, ...) SCIMG_PRINTF(5, 6);

static int bad(struct scimg_ctx *ctx, const char *name, unsigned off,
	       const char *field, const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return scimg_int_err(ctx, -EINVAL, "'%s': qcow2 %s at offset %u %s",
			     name, field, off, what);
}

void scimg_int_qcow2_header_free(struct q2_header *h)
{
	free(h->backing_file);
	free(h->backing_format);
	free(h->data_file);
	h->backing_file = h->backing_format = h->data_file = NULL;
}

/* Copy a string field of LEN bytes; refuse embedded NULs. */
static int dup_name(struct scimg_ctx *ctx, const char *name, const uint8_t *p,
		    size_t len, unsigned off, const char *field, char **out)
{
	char *s;

	if (memchr(p, 0, len))
		return BAD(off, field, "contains a NUL byte, expected a file or format name");
	s = malloc(len + 1);
	if (!s)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	memcpy(s, p, len);
	s[len] = '\0';
	*out = s;
	return 0;
}

/* A header extension holding a name (backing format, external data file
 * name): its data of LEN bytes at OFF of BUF, after its 8-byte type and
 * length.  Once only (*SEEN counts it; EXT names the extension when it
 * repeats), LEN 1 to MAX (LEN_FIELD names the length field), no NUL
 * (FIELD names the name); the name is copied into *OUT. */
static int name_ext(struct scimg_ctx *ctx, const char *name, const uint8_t *buf,
		    uint64_t off, uint32_t len, uint32_t max, int *seen,
		    const char *ext, const char *len_field, const char *field,
		    char **out)
{
	if ((*seen)++)
		return BAD((unsigned)off - 8, ext, "appears twice, expected once");
	if (len == 0 || len > max)
		return BAD((unsigned)off - 4, len_field, "is %u, expected 1 to %u", len, max);
	return dup_name(ctx, name, buf + off, len, (unsigned)off, field, out);
}

/* Name of feature bit BIT of kind TYPE from the feature name table, if the
 * image has one; else a built-in name or "unknown". */
static void feature_name(const uint8_t *table, size_t len, unsigned type,
			 unsigned bit, char *out, size_t outlen)
{
	size_t i;

	snprintf(out, outlen, "unknown");
	for (i = 0; table && i + 48 <= len; i += 48) {
		if (table[i] == type && table[i + 1] == bit) {
			size_t n = strnlen((const char *)table + i + 2, 46);
			size_t k;
			if (n >= outlen)
				n = outlen - 1;
			for (k = 0; k < n; k++) {
				char c = (char)table[i + 2 + k];
				out[k] = (c >= 0x20 && c < 0x7f) ? c : '?';
			}
			out[n] = '\0';
			return;
		}
	}
}

static int check_table(struct scimg_ctx *ctx, const char *name,
		       unsigned field_off, const char *field, uint64_t off,
		       uint64_t bytes, uint64_t cs, uint64_t file_size)
{
	uint64_t end;

	if (off % cs)
		return BAD(field_off, field, "is %llu, expected a multiple of the cluster size %llu",
			   (unsigned long long)off, (unsigned long long)cs);
	if (off < cs)
		return BAD(field_off, field, "is %llu and overlaps the header cluster, expected at least %llu",
			   (unsigned long long)off, (unsigned long long)cs);
	if (!scimg_add_ok(off, bytes, &end) || end > file_size)
		return BAD(field_off, field, "is %llu: the table (%llu bytes) runs past the end of the file (%llu bytes)",
			   (unsigned long long)off, (unsigned long long)bytes,
			   (unsigned long long)file_size);
	return 0;
}

static int overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

int scimg_int_qcow2_parse_header(struct scimg_ctx *ctx, const char *name,
				 const uint8_t *buf, size_t buflen,
				 uint64_t file_size, struct q2_header *h)
{
	const uint8_t *ftable = NULL;
	size_t ftable_len = 0;
	uint64_t cs, off, unknown;
	int seen_bf = 0, seen_ft = 0, seen_df = 0, seen_bm = 0, ret;

	memset(h, 0, sizeof(*h));
	if (file_size < Q2_V2_HEADER_LEN || buflen < Q2_V2_HEADER_LEN)
		return scimg_int_err(ctx, -EINVAL,
				     "'%s': file is %llu bytes, shorter than the %u-byte qcow2 header",
				     name, (unsigned long long)file_size, Q2_V2_HEADER_LEN);
	if (scimg_be32(buf) != Q2_MAGIC)
		return BAD(0, "magic", "is 0x%08x, expected 0x%08x (\"QFI\\xfb\")",
			   scimg_be32(buf), Q2_MAGIC);
	h->version = scimg_be32(buf + 4);
	if (h->version == 1)
		return BAD(4, "version", "is 1: this is a qcow version 1 image (the older qcow format), not qcow2");
	if (h->version != 2 && h->version != 3)
		return BAD(4, "version", "is %u, expected 2 or 3", h->version);
	h->backing_file_offset = scimg_be64(buf + 8);
	h->backing_file_size = scimg_be32(buf + 16);
	h->cluster_bits = scimg_be32(buf + 20);
	h->size = scimg_be64(buf + 24);
	h->crypt_method = scimg_be32(buf + 32);
	h->l1_size = scimg_be32(buf + 36);
	h->l1_table_offset = scimg_be64(buf + 40);
	h->refcount_table_offset = scimg_be64(buf + 48);
	h->refcount_table_clusters = scimg_be32(buf + 56);
	h->nb_snapshots = scimg_be32(buf + 60);
	h->snapshots_offset = scimg_be64(buf + 64);

	if (h->cluster_bits < Q2_MIN_CLUSTER_BITS || h->cluster_bits > Q2_MAX_CLUSTER_BITS)
		return BAD(20, "cluster_bits", "is %u, expected %u to %u (512 bytes to 2 MiB clusters)",
			   h->cluster_bits, Q2_MIN_CLUSTER_BITS, Q2_MAX_CLUSTER_BITS);
	cs = h->cluster_size = UINT64_C(1) << h->cluster_bits;
	if (file_size < cs || buflen < cs)
		return scimg_int_err(ctx, -EINVAL,
				     "'%s': file is %llu bytes, shorter than the qcow2 header cluster (%llu bytes; truncated?)",
				     name, (unsigned long long)file_size, (unsigned long long)cs);

	if (h->version == 2) {
		h->refcount_order = 4;
		h->header_length = Q2_V2_HEADER_LEN;
	} else {
		if (buflen < Q2_V3_HEADER_LEN)
			return scimg_int_err(ctx, -EINVAL, "'%s': qcow2 v3 header is truncated", name);
		h->incompat = scimg_be64(buf + 72);
		h->compat = scimg_be64(buf + 80);
		h->autoclear = scimg_be64(buf + 88);
		h->refcount_order = scimg_be32(buf + 96);
		h->header_length = scimg_be32(buf + 100);
		if (h->header_length < Q2_V3_HEADER_LEN || h->header_length % 8 ||
		    h->header_length > cs)
			return BAD(100, "header_length", "is %u, expected a multiple of 8 from %u to the cluster size %llu",
				   h->header_length, Q2_V3_HEADER_LEN, (unsigned long long)cs);
		if (h->refcount_order > 6)
			return BAD(96, "refcount_order", "is %u, expected 0 to 6 (1 to 64-bit refcounts)",
				   h->refcount_order);
		if (h->header_length > 104)
			h->compression_type = buf[104];
	}

	if (h->crypt_method == 1 || h->crypt_method == 2)
		return scimg_int_err(ctx, -ENOTSUP,
				     "'%s': qcow2 image is encrypted (crypt_method %u, %s at offset 32); encrypted images are not supported",
				     name, h->crypt_method, h->crypt_method == 1 ? "AES" : "LUKS");
	if (h->crypt_method != 0)
		return BAD(32, "crypt_method", "is %u, expected 0 (no encryption)", h->crypt_method);

	/* the backing file name sits after the extensions, in the first cluster */
	if (h->backing_file_offset && h->backing_file_size) {
		if (h->backing_file_offset < h->header_length ||
		    h->backing_file_offset >= cs)
			return BAD(8, "backing_file_offset", "is %llu, expected %u to %llu (inside the header cluster, after the header)",
				   (unsigned long long)h->backing_file_offset,
				   h->header_length, (unsigned long long)cs - 1);
		if (h->backing_file_size > Q2_MAX_BACKING_NAME ||
		    h->backing_file_size > cs - h->backing_file_offset)
			return BAD(16, "backing_file_size", "is %u, expected at most %llu (1023 and the rest of the header cluster)",
				   h->backing_file_size,
				   (unsigned long long)(cs - h->backing_file_offset < Q2_MAX_BACKING_NAME ?
							cs - h->backing_file_offset : Q2_MAX_BACKING_NAME));
		ret = dup_name(ctx, name, buf + h->backing_file_offset, h->backing_file_size,
			       (unsigned)h->backing_file_offset, "backing file name",
			       &h->backing_file);
		if (ret < 0)
			return ret;
		h->ext_end = h->backing_file_offset;
	} else {
		h->ext_end = cs;
	}

	/* header extensions */
	off = h->header_length;
	while (off < h->ext_end) {
		uint32_t type, len;

		if (h->ext_end - off < 8)
			return BAD((unsigned)off, "header extension", "needs 8 bytes but only %llu remain before %llu (extensions run past the header area)",
				   (unsigned long long)(h->ext_end - off),
				   (unsigned long long)h->ext_end);
		type = scimg_be32(buf + off);
		len = scimg_be32(buf + off + 4);
		if (type == Q2_EXT_END)
			break;
		if (len > h->ext_end - off - 8)
			return BAD((unsigned)off + 4, "header extension length",
				   "is %u (type 0x%08x), running past the end of the header area at %llu",
				   len, type, (unsigned long long)h->ext_end);
		off += 8;
		switch (type) {
		case Q2_EXT_BACKING_FORMAT:
			ret = name_ext(ctx, name, buf, off, len, 15, &seen_bf,
				       "backing format extension",
				       "backing format extension length",
				       "backing format extension", &h->backing_format);
			if (ret < 0)
				return ret;
			break;
		case Q2_EXT_FEATURE_TABLE:
			if (seen_ft++)
				return BAD((unsigned)off - 8, "feature name table", "appears twice, expected once");
			ftable = buf + off;
			ftable_len = len;
			break;
		case Q2_EXT_DATA_FILE:
			ret = name_ext(ctx, name, buf, off, len, 4095, &seen_df,
				       "external data file name extension",
				       "external data file name length",
				       "external data file name", &h->data_file);
			if (ret < 0)
				return ret;
			break;
		case Q2_EXT_BITMAPS:
			if (seen_bm++)
				return BAD((unsigned)off - 8, "bitmaps extension", "appears twice, expected once");
			if (h->autoclear & Q2_AUTOCLEAR_BITMAPS) {
				if (len != 24)
					return BAD((unsigned)off - 4, "bitmaps extension length",
						   "is %u, expected 24", len);
				h->nb_bitmaps = scimg_be32(buf + off);
			}
			break;
		default:
			/* unknown or unused here (crypto header): ignored */
			break;
		}
		off += ((uint64_t)len + 7) & ~UINT64_C(7);
	}

	/* features */
	unknown = h->incompat & ~Q2_INCOMPAT_KNOWN;
	if (unknown) {
		char fname[64];
		unsigned bit = (unsigned)__builtin_ctzll(unknown);
		feature_name(ftable, ftable_len, 0, bit, fname, sizeof(fname));
		return scimg_int_err(ctx, -ENOTSUP,
				     "'%s': qcow2 incompatible_features at offset 72 has unknown bit %u (%s) set (0x%llx); refusing to read an image that needs a feature this reader does not know",
				     name, bit, fname, (unsigned long long)h->incompat);
	}
	if (h->incompat & Q2_INCOMPAT_COMPRESSION) {
		if (h->header_length <= 104 || h->compression_type == 0)
			return BAD(104, "compression_type", "is absent or 0 but incompatible feature bit 3 (compression type) is set, expected a non-zlib type");
	} else if (h->compression_type != 0) {
		return BAD(104, "compression_type", "is %u but incompatible feature bit 3 (compression type) is clear, expected 0 (zlib)",
			   h->compression_type);
	}
	if (h->compression_type > Q2_COMPRESSION_ZSTD)
		return scimg_int_err(ctx, -ENOTSUP,
				     "'%s': qcow2 compression_type at offset 104 is %u, expected 0 (zlib) or 1 (zstd)",
				     name, h->compression_type);
	h->extended_l2 = !!(h->incompat & Q2_INCOMPAT_EXTL2);
	if (h->extended_l2 && h->cluster_bits < 14)
		return BAD(20, "cluster_bits", "is %u but extended L2 entries (incompatible bit 4) need at least 14 (16 KiB clusters)",
			   h->cluster_bits);
	if ((h->incompat & Q2_INCOMPAT_DATA_FILE) && !h->data_file)
		return scimg_int_err(ctx, -EINVAL,
				     "'%s': qcow2 incompatible feature bit 2 (external data file) is set but the image has no external data file name extension (0x44415441)",
				     name);
	if (!(h->incompat & Q2_INCOMPAT_DATA_FILE) && h->data_file)
		return scimg_int_err(ctx, -EINVAL,
				     "'%s': qcow2 names an external data file '%s' but incompatible feature bit 2 (external data file) is clear",
				     name, h->data_file);
	if ((h->autoclear & Q2_AUTOCLEAR_DATA_FILE_RAW) && !h->data_file)
		return BAD(88, "autoclear_features", "has bit 1 (raw external data) set without an external data file");
	if (h->data_file && h->backing_file && (h->autoclear & Q2_AUTOCLEAR_DATA_FILE_RAW))
		return scimg_int_err(ctx, -EINVAL,
				     "'%s': qcow2 image has both a backing file and a raw external data file, which cannot be combined",
				     name);

	/* geometry */
	h->l2_bits = h->cluster_bits - (h->extended_l2 ? 4 : 3);
	if (h->size > SCIMG_MAX_VIRTUAL_SIZE)
		return BAD(24, "size", "is %llu, expected at most %llu",
			   (unsigned long long)h->size, (unsigned long long)SCIMG_MAX_VIRTUAL_SIZE);
	{
		unsigned shift = h->cluster_bits + h->l2_bits;
		h->l1_needed = (h->size + (UINT64_C(1) << shift) - 1) >> shift;
	}
	if ((uint64_t)h->l1_size * 8 > Q2_MAX_L1_BYTES)
		return BAD(36, "l1_size", "is %u, expected at most %u (32 MiB L1 table)",
			   h->l1_size, Q2_MAX_L1_BYTES / 8);
	if (h->l1_size < h->l1_needed)
		return BAD(36, "l1_size", "is %u, expected at least %llu for the virtual size %llu",
			   h->l1_size, (unsigned long long)h->l1_needed,
			   (unsigned long long)h->size);
	if (h->l1_size) {
		ret = check_table(ctx, name, 40, "l1_table_offset", h->l1_table_offset,
				  (uint64_t)h->l1_size * 8, cs, file_size);
		if (ret < 0)
			return ret;
	}
	if (h->refcount_table_clusters == 0 ||
	    (uint64_t)h->refcount_table_clusters * cs > Q2_MAX_REFTABLE_BYTES)
		return BAD(56, "refcount_table_clusters", "is %u, expected 1 to %llu (8 MiB)",
			   h->refcount_table_clusters,
			   (unsigned long long)(Q2_MAX_REFTABLE_BYTES / cs));
	ret = check_table(ctx, name, 48, "refcount_table_offset", h->refcount_table_offset,
			  (uint64_t)h->refcount_table_clusters * cs, cs, file_size);
	if (ret < 0)
		return ret;
	if (h->nb_snapshots > Q2_MAX_SNAPSHOTS)
		return BAD(60, "nb_snapshots", "is %u, expected at most %u", h->nb_snapshots,
			   Q2_MAX_SNAPSHOTS);
	if (h->nb_snapshots) {
		ret = check_table(ctx, name, 64, "snapshots_offset", h->snapshots_offset,
				  40, cs, file_size);
		if (ret < 0)
			return ret;
		if (h->incompat & Q2_INCOMPAT_DATA_FILE)
			return BAD(60, "nb_snapshots", "is %u, expected 0: internal snapshots cannot be combined with an external data file",
				   h->nb_snapshots);
	}
	if (overlaps(h->l1_table_offset, (uint64_t)h->l1_size * 8, h->refcount_table_offset,
		     (uint64_t)h->refcount_table_clusters * cs))
		return BAD(40, "l1_table_offset", "is %llu and the L1 table overlaps the refcount table at %llu",
			   (unsigned long long)h->l1_table_offset,
			   (unsigned long long)h->refcount_table_offset);
	if (h->nb_snapshots &&
	    (overlaps(h->snapshots_offset, 40, h->refcount_table_offset,
		      (uint64_t)h->refcount_table_clusters * cs) ||
	     overlaps(h->snapshots_offset, 40, h->l1_table_offset, (uint64_t)h->l1_size * 8)))
		return BAD(64, "snapshots_offset", "is %llu and the snapshot table overlaps the L1 or refcount table",
			   (unsigned long long)h->snapshots_offset);
	return 0;
}
