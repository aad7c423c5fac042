/* test-plugin.c - a plugin built against the FROZEN header of plugin API
 * version 1 (tests/plugins/v1/scimg-plugin.h) and loaded into the current
 * library by tests/cli/test-plugins.sh.
 *
 * Format "v1test": a 512-byte header ("SCIMGV1T", u64 LE virtual size)
 * followed by the disk's bytes; holes in the file are holes in the disk.
 * Profile "v1cloud": writes v1test, 1 MiB size alignment, at most 1 GiB,
 * and its own check reports disks under 2 MiB.
 *
 * Built several times with one of these defined, to make broken plugins:
 *   TEST_API99        the plugin claims plugin API version 99
 *   TEST_NO_PREAD     the format has open but no pread
 *   TEST_NOT_PLUGIN   no scimg_plugin_init symbol
 *   TEST_SMALL        struct_size smaller than API 1's struct
 *   TEST_RAW_NAME     a format named "raw" (taken by a built-in format)
 */
#include <stdlib.h>
#include <string.h>

#include "v1/scimg-plugin.h"

#if SCIMG_PLUGIN_API_VERSION != 1
#error "this plugin must be built against the API version 1 header"
#endif

#ifndef PLUGIN_NAME
#define PLUGIN_NAME "v1test"
#endif
#ifndef FORMAT_NAME
#define FORMAT_NAME "v1test"
#endif
#ifndef PROFILE_NAME
#define PROFILE_NAME "v1cloud"
#endif

#define HDR 512

static int t_probe(const struct scimg_plugin_probe *p)
{
	return p->head_len >= 16 && memcmp(p->head, "SCIMGV1T", 8) == 0 ? 100 : 0;
}

static uint64_t le64(const uint8_t *b)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

static int t_open(struct scimg_image *img)
{
	uint8_t h[16];
	uint64_t size, fsize = scimg_plugin_file_size(img);
	int ret;

	if (fsize < HDR)
		return scimg_plugin_err(img, -EINVAL, "'%s': v1test file of %llu bytes is shorter than its %d-byte header",
					scimg_image_path(img), (unsigned long long)fsize, HDR);
	if ((ret = scimg_plugin_read(img, h, sizeof(h), 0, "v1test header")) < 0)
		return ret;
	if (memcmp(h, "SCIMGV1T", 8) != 0)
		return scimg_plugin_err(img, -EINVAL, "'%s': v1test magic at offset 0 is wrong, expected SCIMGV1T",
					scimg_image_path(img));
	size = le64(h + 8);
	if (size != fsize - HDR)
		return scimg_plugin_err(img, -EINVAL, "'%s': v1test size at offset 8 is %llu, expected %llu (file size - %d)",
					scimg_image_path(img), (unsigned long long)size,
					(unsigned long long)(fsize - HDR), HDR);
	if (scimg_plugin_opt(img, "min_size")) {
		uint64_t min;
		if (scimg_plugin_parse_size(scimg_plugin_opt(img, "min_size"), &min) < 0 || size < min)
			return scimg_plugin_err(img, -EINVAL, "'%s': v1test size %llu is below -I min_size=%s",
						scimg_image_path(img), (unsigned long long)size,
						scimg_plugin_opt(img, "min_size"));
	}
	scimg_plugin_set_size(img, size);
	return 0;
}

#ifndef TEST_NO_PREAD
static int t_pread(struct scimg_image *img, void *buf, size_t len, uint64_t off)
{
	return scimg_plugin_read(img, buf, len, off + HDR, "v1test data");
}
#endif

static int t_block_status(struct scimg_image *img, uint64_t off, uint64_t len,
			  struct scimg_extent *ext)
{
	int ret = scimg_plugin_file_block_status(img, off + HDR, len, ext);
	if (ret == 0)
		ext->offset = off;
	return ret;
}

static int t_info(struct scimg_image *img, json_object *obj)
{
	(void)img;
	json_object_object_add(obj, "built-against-api", json_object_new_int(SCIMG_PLUGIN_API_VERSION));
	return 0;
}

static int t_create(struct scimg_image *img)
{
	const char *tag = scimg_plugin_opt(img, "tag");

	if (tag && strcmp(tag, "ok") != 0)
		return scimg_plugin_err(img, -EINVAL, "'%s': v1test option tag is '%s', expected ok",
					scimg_image_path(img), tag);
	return scimg_plugin_out_truncate(img, scimg_image_size(img) + HDR);
}

static int t_pwrite(struct scimg_image *img, const void *buf, size_t len, uint64_t off)
{
	return scimg_plugin_out_pwrite(img, buf, len, off + HDR);
}

static int t_finish(struct scimg_image *img)
{
	uint8_t h[16];
	uint64_t s = scimg_image_size(img);

	memcpy(h, "SCIMGV1T", 8);
	for (int i = 0; i < 8; i++)
		h[8 + i] = (uint8_t)(s >> (8 * i));
	return scimg_plugin_out_pwrite(img, h, sizeof(h), 0);
}

static const char *const t_opts[] = { "tag", NULL };
static const char *const t_open_opts[] = { "min_size", NULL };

static const struct scimg_plugin_format fmt = {
#ifdef TEST_SMALL
	.struct_size = 8,
#else
	.struct_size = sizeof(struct scimg_plugin_format),
#endif
	.api_version = SCIMG_PLUGIN_API_VERSION,
#ifdef TEST_RAW_NAME
	.name = "raw",
#else
	.name = FORMAT_NAME,
#endif
	.description = "test format of plugin API 1",
	.probe = t_probe,
	.open = t_open,
#ifndef TEST_NO_PREAD
	.pread = t_pread,
#endif
	.block_status = t_block_status,
	.info = t_info,
	.open_opts = t_open_opts,
	.create_opts = t_opts,
	.create = t_create,
	.pwrite = t_pwrite,
	.finish = t_finish,
};

static int t_check(struct scimg_image *img, struct scimg_plugin_report *rep)
{
	if (scimg_image_size(img) < (2u << 20))
		scimg_plugin_report(rep, "min-size", "'%s': v1cloud wants at least 2 MiB, this is %llu bytes",
				    scimg_image_path(img), (unsigned long long)scimg_image_size(img));
	return 0;
}

static const char *const modules[] = { "virtio_blk", "virtio_net", NULL };

static const struct scimg_plugin_profile prof = {
	.struct_size = sizeof(struct scimg_plugin_profile),
	.api_version = SCIMG_PLUGIN_API_VERSION,
	.name = PROFILE_NAME,
	.description = "test provider of plugin API 1",
	.format = FORMAT_NAME,
	.options = "tag=ok",
	.size_alignment = 1u << 20,
	.max_size = 1u << 30,
	.guest_modules = modules,
	.console = "ttyS0",
	.check = t_check,
};

static const struct scimg_plugin_format *const fmts[] = { &fmt, NULL };
static const struct scimg_plugin_profile *const profs[] = { &prof, NULL };

static const struct scimg_plugin plugin = {
	.struct_size = sizeof(struct scimg_plugin),
#ifdef TEST_API99
	.api_version = 99,
#else
	.api_version = SCIMG_PLUGIN_API_VERSION,
#endif
	.name = PLUGIN_NAME,
	.version = "1.2.3",
	.description = "built against the frozen API 1 header",
	.formats = fmts,
	.profiles = profs,
};

#ifdef TEST_NOT_PLUGIN
const struct scimg_plugin *not_the_init_symbol(void);
const struct scimg_plugin *not_the_init_symbol(void)
#else
const struct scimg_plugin *scimg_plugin_init(void)
#endif
{
	return &plugin;
}
