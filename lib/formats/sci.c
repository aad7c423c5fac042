/* formats/sci.c - the Supercloud image (docs/sci-format.md) as a readable
 * disk image: its guest content is disk 0, read in place from the tar.
 *
 * open() lists the tar through libarchive (unsafe members refused), checks
 * the v1 member layout, parses and validates supercloud.xml, and opens the
 * disk0 member through a window on the SCI file in the format the
 * descriptor names.  Digests and the signature are not verified here (that
 * is `scimg check`); sizes and names must agree.  Writing an SCI is not a
 * streaming format writer: scimg_convert() special-cases "sci"
 * (lib/sci-build.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scimg-int.h"
#include "formats.h"
#include "package/package.h"

struct sci {
	struct sci_tar tar;
	json_object *desc;
	struct scimg_image *disk;
};

static int sci_probe(const struct scimg_probe *p)
{
	const uint8_t *h = p->head;
	size_t off = 0;

	if (p->head_len < 512 || !scimg_int_ustar_ok(h))
		return 0;
	/* a pax extended header may come first */
	if (h[156] == 'x') {
		uint64_t sz = scimg_int_ustar_size(h);
		if (sz > 8192)
			return 0;
		off = 512 + (size_t)((sz + 511) / 512 * 512);
		if (p->head_len < off + 512 || !scimg_int_ustar_ok(h + off))
			return 0;
	}
	if (memcmp(h + off, SCI_DESCRIPTOR, sizeof(SCI_DESCRIPTOR)) != 0)
		return 0;
	return 100;
}

static void sci_close(struct scimg_image *img)
{
	struct sci *s = img->priv;

	if (!s)
		return;
	scimg_image_close(s->disk);
	json_object_put(s->desc);
	scimg_int_tar_free(&s->tar);
	free(s);
	img->priv = NULL;
}

static json_object *jget(json_object *o, const char *k)
{
	json_object *v;
	return o && json_object_object_get_ex(o, k, &v) ? v : NULL;
}

static int sci_open(struct scimg_image *img)
{
	struct scimg_ctx *ctx = img->ctx;
	const struct sci_member *xm, *dm;
	json_object *disks, *d0;
	const char *member, *format;
	char *xml = NULL, *wname = NULL;
	struct sci *s;
	uint64_t vsize;
	int ret;

	s = calloc(1, sizeof(*s));
	if (!s)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	img->priv = s;
	if ((ret = scimg_int_tar_list(img->src, &s->tar)) < 0)
		goto fail;
	if ((ret = scimg_int_sci_layout(ctx, img->path, &s->tar)) < 0)
		goto fail;
	xm = &s->tar.m[0];
	if ((ret = scimg_int_member_read(img->src, xm, &xml)) < 0)
		goto fail;
	{
		size_t n = strlen(img->path) + sizeof(SCI_DESCRIPTOR) + 2;
		wname = malloc(n);
		if (!wname) {
			ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
			goto fail;
		}
		snprintf(wname, n, "%s:%s", img->path, SCI_DESCRIPTOR);
	}
	ret = scimg_int_desc_parse(ctx, wname, xml, (size_t)xm->size, &s->desc, NULL);
	free(wname);
	wname = NULL;
	if (ret < 0)
		goto fail;
	disks = jget(s->desc, "disks");
	d0 = disks ? json_object_array_get_idx(disks, 0) : NULL;
	member = d0 ? json_object_get_string(jget(d0, "member")) : NULL;
	format = d0 ? json_object_get_string(jget(d0, "format")) : NULL;
	vsize = d0 ? json_object_get_uint64(jget(d0, "virtual-size")) : 0;
	if (!member || !format) {
		ret = scimg_int_err(ctx, -EINVAL, "'%s': descriptor names no disk", img->path);
		goto fail;
	}
	dm = &s->tar.m[1];
	if (strcmp(dm->name, member) != 0) {
		ret = scimg_int_err(ctx, -EINVAL,
				    "'%s': descriptor names disk 0 '%s' but the tar member is '%s'",
				    img->path, member, dm->name);
		goto fail;
	}
	{
		const char *dot = strrchr(member, '.');
		if (!dot || strcmp(dot + 1, format) != 0) {
			ret = scimg_int_err(ctx, -EINVAL,
					    "'%s': disk member '%s' does not carry its format '%s' as extension",
					    img->path, member, format);
			goto fail;
		}
	}
	if (json_object_get_uint64(jget(d0, "member-size")) != dm->size) {
		ret = scimg_int_err(ctx, -EINVAL,
				    "'%s': descriptor says member '%s' is %llu bytes, the tar member is %llu",
				    img->path, member,
				    (unsigned long long)json_object_get_uint64(jget(d0, "member-size")),
				    (unsigned long long)dm->size);
		goto fail;
	}
	if ((ret = scimg_int_open_tar_member(img, dm->offset, dm->size, member,
					     format, &s->disk)) < 0) {
		scimg_int_err_prefix(ctx, "'%s': disk member '%s'", img->path, member);
		goto fail;
	}
	if (s->disk->size != vsize) {
		ret = scimg_int_err(ctx, -EINVAL,
				    "'%s': descriptor says disk 0 is %llu bytes, '%s' is %llu",
				    img->path, (unsigned long long)vsize, member,
				    (unsigned long long)s->disk->size);
		goto fail;
	}
	img->size = s->disk->size;
	free(xml);
	free(wname);
	return 0;
fail:
	free(xml);
	free(wname);
	sci_close(img);
	return ret;
}

static int sci_pread(struct scimg_image *img, void *buf, size_t len,
		     uint64_t off)
{
	struct sci *s = img->priv;

	return scimg_image_pread(s->disk, buf, len, off);
}

static int sci_block_status(struct scimg_image *img, uint64_t off,
			    uint64_t len, struct scimg_extent *ext)
{
	struct sci *s = img->priv;

	return scimg_image_block_status(s->disk, off, len, ext);
}

static int sci_info(struct scimg_image *img, json_object *info)
{
	json_object *obj = scimg_int_info_details(info);
	struct sci *s = img->priv;
	json_object *mem = json_object_new_array();
	size_t i;

	if (!obj)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	for (i = 0; i < s->tar.n; i++) {
		json_object *m = json_object_new_object();
		json_object_object_add(m, "name", json_object_new_string(s->tar.m[i].name));
		json_object_object_add(m, "offset", json_object_new_uint64(s->tar.m[i].offset));
		json_object_object_add(m, "size", json_object_new_uint64(s->tar.m[i].size));
		json_object_array_add(mem, m);
	}
	json_object_object_add(obj, "schema-version", json_object_new_int(SCI_SCHEMA_VERSION));
	json_object_object_add(obj, "disk-format", json_object_new_string(s->disk->fmt->name));
	json_object_object_add(obj, "signed",
			       json_object_new_boolean(scimg_int_tar_find(&s->tar, SCI_SIGNATURE) != NULL));
	json_object_object_add(obj, "members", mem);
	json_object_object_add(obj, "descriptor", json_object_get(s->desc));
	return 0;
}

const struct scimg_format scimg_format_sci = {
	.name = "sci",
	.description = "Supercloud image: tar of supercloud.xml, qcow2 disks, xl.cfg, signature",
	.probe = sci_probe,
	.open = sci_open,
	.close = sci_close,
	.pread = sci_pread,
	.block_status = sci_block_status,
	.info = sci_info,
};
