/* measure.c - scimg_measure(): the file size an image would need in a
 * format (qemu-img measure): "required" for the source's allocated data,
 * "fully-allocated" when every cluster is allocated.  The qcow2 numbers
 * follow QEMU's own computation (one header cluster, L2 and L1 tables for
 * the whole disk, refcount blocks and table found at their fixed point), so
 * the two tools print the same values.  Other formats answer through their
 * writer's measure slot (the layout rules live beside the writer). */
#include <stdlib.h>
#include <string.h>

#include "scimg-int.h"

static const char *const measure_qcow2_opts[] = {
	"cluster_size", "compression_type", "refcount_bits", "lazy_refcounts",
	"preallocation", "compat", "backing_file", "backing_fmt", NULL
};
static const char *const measure_raw_opts[] = { "preallocation", NULL };

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

static uint64_t round_up(uint64_t a, uint64_t b)
{
	return div_up(a, b) * b;
}

/* Refcount blocks and table clusters (in bytes) that count CLUSTERS host
 * clusters and themselves. */
static uint64_t refcount_meta(uint64_t clusters, uint64_t cs, unsigned order)
{
	uint64_t per_table = cs / 8, per_block = cs * 8 >> order;
	uint64_t table = 0, blocks = 0, n = 0, last;

	do {
		last = n;
		blocks = div_up(clusters + table + blocks, per_block);
		table = div_up(blocks, per_table);
		n = clusters + blocks + table;
	} while (n != last);
	return (blocks + table) * cs;
}

static uint64_t qcow2_full(uint64_t vsize, uint64_t cs, unsigned order)
{
	uint64_t meta = cs, nl2e, nl1e;

	nl2e = round_up(vsize / cs, cs / 8);
	meta += nl2e * 8;
	nl1e = round_up(nl2e * 8 / cs, cs / 8);
	meta += nl1e * 8;
	meta += refcount_meta((meta + vsize) / cs, cs, order);
	return meta + vsize;
}

/* Bytes of SRC that a conversion stores: data runs (not zero), each
 * counted from the start of its first cluster to the end of its last, as
 * QEMU counts them. */
static int allocated_bytes(struct scimg_image *src, uint64_t cs, uint64_t *out)
{
	return scimg_int_measure_data(src, cs, out);
}

int scimg_int_measure_data(struct scimg_image *src, uint64_t cs, uint64_t *out)
{
	struct scimg_map_extent e;
	uint64_t off = 0, size = scimg_image_size(src), n;
	int ret;

	*out = 0;
	while (off < size) {
		if ((ret = scimg_int_check_cancel(src->ctx)) < 0)
			return ret;
		ret = scimg_image_map(src, off, size - off, &e);
		if (ret < 0)
			return ret;
		n = e.length;
		if (!e.zero && e.data) {
			n = round_up(off + n, cs) - off;
			*out += off % cs + n;
		}
		off += n;
	}
	return 0;
}

int scimg_measure(struct scimg_ctx *ctx, struct scimg_image *src, uint64_t size,
		  const char *format, const char *options, struct scimg_measure *out)
{
	struct scimg_opts o = { NULL, 0 };
	const char *v, *prealloc;
	uint64_t cs = 65536, rb = 16, vsize, alloc = 0, ssize;
	int ret, v2 = 0;

	scimg_ctx_clear_error(ctx);
	memset(out, 0, sizeof(*out));
	if (!format)
		return scimg_int_err(ctx, -EINVAL, "an output format is required");
	ssize = src ? scimg_image_size(src) : size;
	if (!strcmp(format, "raw")) {
		ret = scimg_int_opts_parse(ctx, options, measure_raw_opts, "raw", &o);
		if (ret < 0)
			return ret;
		prealloc = scimg_int_opts_get(&o, "preallocation");
		if (prealloc && strcmp(prealloc, "off") && strcmp(prealloc, "falloc") &&
		    strcmp(prealloc, "full")) {
			ret = scimg_int_err(ctx, -EINVAL, "raw option preallocation=%s: expected off, falloc or full",
					    prealloc);
			goto out;
		}
		out->required = out->fully_allocated = src ? ssize : round_up(ssize, 512);
		ret = 0;
		goto out;
	}
	if (strcmp(format, "qcow2")) {
		const struct scimg_format *fmt = scimg_int_format_find(format);

		if (!fmt)
			return scimg_int_err_unknown_format(ctx, format);
		if (!fmt->measure)
			return scimg_int_err(ctx, -ENOTSUP,
					     "measuring format '%s' is not supported (qcow2, raw, vmdk, vhd (vpc) and vhdx are)",
					     format);
		ret = scimg_int_opts_parse(ctx, options, fmt->create_opts, fmt->name, &o);
		if (ret < 0)
			return ret;
		ret = fmt->measure(ctx, src, ssize, &o, out);
		goto out;
	}
	ret = scimg_int_opts_parse(ctx, options, measure_qcow2_opts, "qcow2", &o);
	if (ret < 0)
		return ret;
	if ((v = scimg_int_opts_get(&o, "cluster_size")) &&
	    (scimg_int_parse_size(v, &cs) < 0 || cs < 512 || cs > (2u << 20) || (cs & (cs - 1)))) {
		ret = scimg_int_err(ctx, -EINVAL, "qcow2 option cluster_size=%s: expected a power of two from 512 to 2M", v);
		goto out;
	}
	if ((v = scimg_int_opts_get(&o, "refcount_bits"))) {
		char *end;
		rb = strtoull(v, &end, 10);
		if (*end || !*v || rb < 1 || rb > 64 || (rb & (rb - 1))) {
			ret = scimg_int_err(ctx, -EINVAL, "qcow2 option refcount_bits=%s: expected 1, 2, 4, 8, 16, 32 or 64", v);
			goto out;
		}
	}
	if ((v = scimg_int_opts_get(&o, "compat"))) {
		if (!strcmp(v, "0.10") || !strcmp(v, "v2")) {
			v2 = 1;
		} else if (strcmp(v, "1.1") && strcmp(v, "v3")) {
			ret = scimg_int_err(ctx, -EINVAL, "qcow2 option compat=%s: expected 0.10 or 1.1", v);
			goto out;
		}
	}
	prealloc = scimg_int_opts_get(&o, "preallocation");
	if (prealloc && strcmp(prealloc, "off") && strcmp(prealloc, "metadata") &&
	    strcmp(prealloc, "falloc") && strcmp(prealloc, "full")) {
		ret = scimg_int_err(ctx, -EINVAL, "qcow2 option preallocation=%s: expected off, metadata, falloc or full",
				    prealloc);
		goto out;
	}
	vsize = round_up(ssize, cs);
	if (div_up(vsize / cs, cs / 8) * 8 > (32u << 20)) {
		ret = scimg_int_err(ctx, -EFBIG, "size %llu is too large for qcow2 with cluster_size %llu (the L1 table would exceed 32 MiB); use a larger cluster_size",
				    (unsigned long long)ssize, (unsigned long long)cs);
		goto out;
	}
	if (src && (ret = allocated_bytes(src, cs, &alloc)) < 0)
		goto out;
	if (prealloc && (!strcmp(prealloc, "falloc") || !strcmp(prealloc, "full")))
		alloc = vsize;
	out->fully_allocated = qcow2_full(vsize, cs, (unsigned)__builtin_ctzll(rb));
	out->required = out->fully_allocated - vsize + alloc;
	/* QEMU shows the space of persistent bitmaps when both the source
	 * (qcow2) and the output (version 3) can hold them */
	if (src && !v2 && !strcmp(scimg_image_format(src), "qcow2")) {
		json_object *info = NULL, *spec, *b;
		ret = scimg_image_info(src, &info);
		if (ret < 0)
			goto out;
		if (json_object_object_get_ex(info, "format-specific", &spec) &&
		    json_object_object_get_ex(spec, "bitmaps", &b) && json_object_get_int64(b) > 0) {
			json_object_put(info);
			ret = scimg_int_err(ctx, -ENOTSUP, "'%s' has persistent dirty bitmaps; measuring their size is not supported",
					    scimg_image_path(src));
			goto out;
		}
		json_object_put(info);
		out->has_bitmaps = 1;
		out->bitmaps = 0;
	}
	ret = 0;
out:
	scimg_int_opts_free(&o);
	return ret;
}
