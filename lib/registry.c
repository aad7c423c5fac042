/* registry.c - the list of format drivers: the built-in ones, in the order
 * of lib/formats/formats.def (the one list of them; cheap, strong probes
 * first, raw last), then the formats plugins add, in the order the plugins
 * were loaded (lib/plugin.c). */
#include <stdio.h>
#include <string.h>

#include "scimg-int.h"
#include "formats/formats.h"

static const struct scimg_format *const formats[] = {
#define SCIMG_FORMAT(sym) &scimg_format_##sym,
#include "formats/formats.def"
#undef SCIMG_FORMAT
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
	if (can_write) /* sci: written by scimg_convert (lib/sci-build.c) */
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

/* ---- the driver contract (lib/formats/driver.h) ----------------------- */

int scimg_int_format_contract(const struct scimg_format *f, const char *what,
			      char *err, size_t len)
{
	const unsigned known = SCIMG_FMT_SEQUENTIAL_WRITE | SCIMG_FMT_PARALLEL_READ |
			       SCIMG_FMT_OUTPUT_DIR | SCIMG_FMT_ALWAYS_COMPRESSED;
	const char *missing = NULL, *s;
	int cw = f->pwrite_compressed || f->pwrite_compressed_src;
	size_t n = 0;

	if (!f->name || !*f->name) {
		snprintf(err, len, "%s has no name", what);
		return -1;
	}
	for (s = f->name; *s; s++, n++)
		if (n >= 31 || !((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
				 *s == '-' || *s == '_')) {
			snprintf(err, len, "%s has no valid name (lower-case letters, digits, '-' and '_', at most 31)",
				 what);
			return -1;
		}
	if (!f->description || !*f->description) {
		snprintf(err, len, "%s has no description", what);
		return -1;
	}
	if (!f->open && !f->create) {
		snprintf(err, len, "%s has neither an open nor a create callback", what);
		return -1;
	}
	if (f->open && !f->pread)
		missing = "pread (required with open)";
	else if (!f->open && f->pread)
		missing = "open (required with pread)";
	else if (f->create && !f->pwrite)
		missing = "pwrite (required with create)";
	else if (!f->create && f->pwrite)
		missing = "create (required with pwrite)";
	else if (!f->close)
		missing = "close (required with open or create)";
	else if ((f->compress_unit || f->compress || cw) && !(f->compress_unit && f->compress && cw))
		missing = !f->compress_unit ? "compress_unit (required with compress)" :
			  !f->compress ? "compress (required with compress_unit)" :
			  "pwrite_compressed (required with compress)";
	else if (f->pwrite_compressed && f->pwrite_compressed_src)
		missing = "one of pwrite_compressed and pwrite_compressed_src (not both)";
	if (missing) {
		snprintf(err, len, "%s lacks the %s callback", what, missing);
		return -1;
	}
	if (f->flags & ~known) {
		snprintf(err, len, "%s has unknown flags 0x%x", what, f->flags & ~known);
		return -1;
	}
	if ((f->flags & SCIMG_FMT_PARALLEL_READ) && !f->open) {
		snprintf(err, len, "%s says PARALLEL_READ but cannot read", what);
		return -1;
	}
	if ((f->flags & SCIMG_FMT_ALWAYS_COMPRESSED) && !f->compress) {
		snprintf(err, len, "%s says ALWAYS_COMPRESSED but cannot compress", what);
		return -1;
	}
	if ((f->flags & (SCIMG_FMT_SEQUENTIAL_WRITE | SCIMG_FMT_OUTPUT_DIR)) && !f->create) {
		snprintf(err, len, "%s has writer flags but cannot write", what);
		return -1;
	}
	if ((f->write_zeroes || f->finish || f->create_opts) && !f->create) {
		snprintf(err, len, "%s has writer callbacks but no create", what);
		return -1;
	}
	if ((f->block_status || f->info || f->open_opts || f->map) && !f->open) {
		snprintf(err, len, "%s has reader callbacks but no open", what);
		return -1;
	}
	return 0;
}
