/* abi-layout.c - print the layout of every struct and constant of plugin
 * API version 1.  Built twice, against the frozen API 1 header
 * (-DABI_V1) and against the current lib/scimg-plugin.h; the outputs must
 * be identical, since fields may only be appended (test-plugins.sh). */
#include <stddef.h>
#include <stdio.h>

#ifdef ABI_V1
#include "v1/scimg-plugin.h"
#else
#include "scimg-plugin.h"
#endif

#define F(type, field) \
	printf("%s.%s %zu %zu\n", #type, #field, offsetof(struct type, field), \
	       sizeof(((struct type *)0)->field))

int main(void)
{
	F(scimg_plugin_probe, struct_size);
	F(scimg_plugin_probe, reserved);
	F(scimg_plugin_probe, filename);
	F(scimg_plugin_probe, head);
	F(scimg_plugin_probe, head_len);
	F(scimg_plugin_probe, tail);
	F(scimg_plugin_probe, tail_len);
	F(scimg_plugin_probe, file_size);

	F(scimg_plugin_format, struct_size);
	F(scimg_plugin_format, api_version);
	F(scimg_plugin_format, name);
	F(scimg_plugin_format, description);
	F(scimg_plugin_format, probe);
	F(scimg_plugin_format, open);
	F(scimg_plugin_format, close);
	F(scimg_plugin_format, pread);
	F(scimg_plugin_format, block_status);
	F(scimg_plugin_format, info);
	F(scimg_plugin_format, open_opts);
	F(scimg_plugin_format, create_opts);
	F(scimg_plugin_format, create);
	F(scimg_plugin_format, pwrite);
	F(scimg_plugin_format, write_zeroes);
	F(scimg_plugin_format, finish);
	F(scimg_plugin_format, compress_unit);
	F(scimg_plugin_format, compress);
	F(scimg_plugin_format, pwrite_compressed);
	F(scimg_plugin_format, flags);

	F(scimg_plugin_profile, struct_size);
	F(scimg_plugin_profile, api_version);
	F(scimg_plugin_profile, name);
	F(scimg_plugin_profile, description);
	F(scimg_plugin_profile, format);
	F(scimg_plugin_profile, options);
	F(scimg_plugin_profile, size_alignment);
	F(scimg_plugin_profile, max_size);
	F(scimg_plugin_profile, guest_modules);
	F(scimg_plugin_profile, console);
	F(scimg_plugin_profile, check);

	F(scimg_plugin, struct_size);
	F(scimg_plugin, api_version);
	F(scimg_plugin, name);
	F(scimg_plugin, version);
	F(scimg_plugin, description);
	F(scimg_plugin, formats);
	F(scimg_plugin, profiles);

	F(scimg_extent, offset);
	F(scimg_extent, length);
	F(scimg_extent, type);
	printf("SCIMG_EXTENT %d %d %d\n", SCIMG_EXTENT_DATA, SCIMG_EXTENT_ZERO, SCIMG_EXTENT_HOLE);
	printf("SCIMG_PLUGIN_FMT %u %u\n", SCIMG_PLUGIN_FMT_SEQUENTIAL_WRITE,
	       SCIMG_PLUGIN_FMT_PARALLEL_READ);
	printf("SCIMG_CTX_ALLOW_BACKING %u\n", (unsigned)SCIMG_CTX_ALLOW_BACKING);
	printf("SCIMG_CREATE_COMPRESS %u\n", (unsigned)SCIMG_CREATE_COMPRESS);
	printf("%s\n", SCIMG_PLUGIN_INIT_SYMBOL);
	return 0;
}
