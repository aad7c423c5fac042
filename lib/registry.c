/* registry.c - the list of format drivers: the built-in ones (cheap, strong
 * probes first; raw last: it never probes and is only chosen when asked
 * for, or as the announced fallback), then the formats plugins add, in the
 * order the plugins were loaded (lib/plugin.c). */
#include <string.h>

#include "scimg-int.h"
#include "formats/formats.h"

static const struct scimg_format *const formats[] = {
	&scimg_format_sci,
	&scimg_format_ova,
	&scimg_format_qcow2,
	&scimg_format_ami,
	&scimg_format_vhdx,
	&scimg_format_vhd,
	&scimg_format_vmdk,
	&scimg_format_gce,
	&scimg_format_raw,
};

const struct scimg_format *scimg_int_builtin_format_find(const char *name)
{
	size_t i;

	for (i = 0; i < SCIMG_ARRAY_SIZE(formats); i++)
		if (strcmp(formats[i]->name, name) == 0)
			return formats[i];
	return NULL;
}

size_t scimg_int_format_count(void)
{
	scimg_int_plugins_load();
	return SCIMG_ARRAY_SIZE(formats) + scimg_int_plugin_format_count();
}

const struct scimg_format *scimg_int_format_at(size_t i)
{
	scimg_int_plugins_load();
	if (i < SCIMG_ARRAY_SIZE(formats))
		return formats[i];
	return scimg_int_plugin_format_at(i - SCIMG_ARRAY_SIZE(formats));
}

const struct scimg_format *scimg_int_format_find(const char *name)
{
	const struct scimg_format *f = scimg_int_builtin_format_find(name);
	size_t i, n;

	if (f)
		return f;
	scimg_int_plugins_load();
	n = scimg_int_plugin_format_count();
	for (i = 0; i < n; i++) {
		f = scimg_int_plugin_format_at(i);
		if (strcmp(f->name, name) == 0)
			return f;
	}
	/* qemu-img calls VHD "vpc" */
	if (strcmp(name, "vpc") == 0)
		return scimg_int_format_find("vhd");
	return NULL;
}

size_t scimg_format_count(void)
{
	return scimg_int_format_count();
}

const char *scimg_format_name(size_t i)
{
	const struct scimg_format *f = scimg_int_format_at(i);
	return f ? f->name : NULL;
}

int scimg_format_caps(const char *name, int *can_read, int *can_write)
{
	const struct scimg_format *f = scimg_int_format_find(name);

	if (!f)
		return -ENOENT;
	if (can_read)
		*can_read = f->open != NULL;
	if (can_write) /* sci: written by scimg_convert (lib/package/build.c) */
		*can_write = f->create != NULL || strcmp(f->name, "sci") == 0;
	return 0;
}

const char *const *scimg_format_create_options(const char *name)
{
	static const char *const none[] = { NULL };
	const struct scimg_format *f = scimg_int_format_find(name);

	if (!f || !f->create)
		return NULL;
	return f->create_opts ? f->create_opts : none;
}

const char *const *scimg_format_open_options(const char *name)
{
	static const char *const none[] = { NULL };
	const struct scimg_format *f = scimg_int_format_find(name);

	if (!f || !f->open)
		return NULL;
	return f->open_opts ? f->open_opts : none;
}
