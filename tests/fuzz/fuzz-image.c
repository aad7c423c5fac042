/* fuzz-image.c - fuzz target for one image format's reader.
 *
 * The input bytes become a file (memfd); it is opened with the format named
 * by FUZZ_FORMAT (compile-time) or the SCIMG_FUZZ_FORMAT environment variable
 * ("probe" lets every format bid).  info is built, the allocation map is
 * walked and every data extent is read, up to a bound, so header, table and
 * compressed-data parsers are all reached.  Referenced files (backing files,
 * extents) are not allowed, so nothing outside the input is touched.
 *
 * Built three ways: with libFuzzer (make fuzz), and as tests/fuzz/fuzz-replay
 * (a main() that replays files: regression tests in make check).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "scimg.h"
#ifdef FUZZ_STATIC_PLUGINS
/* Plugins (FUZZ_PLUGIN_SOURCES) are linked in and registered directly. */
#include "scimg-int.h"
#include "scimg-plugin.h"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *fuzz_format(void)
{
#ifdef FUZZ_FORMAT
	return FUZZ_FORMAT;
#else
	const char *f = getenv("SCIMG_FUZZ_FORMAT");
	return f ? f : "probe";
#endif
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[1 << 16];
	struct scimg_ctx *ctx = scimg_ctx_new();
	struct scimg_image *img = NULL;
	json_object *info = NULL;
	const char *fmt = fuzz_format();
	char path[64];
	uint64_t pos = 0, vsize, budget = 8u << 20;
	int fd, steps = 0;

	if (!ctx)
		return 0;
#ifdef FUZZ_STATIC_PLUGINS
	{
		static int registered;
		if (!registered) {
			registered = 1;
			scimg_int_plugin_register(scimg_plugin_init(), "(linked into the fuzzer)");
		}
	}
#endif
	scimg_ctx_set_flags(ctx, 0);
	fd = memfd_create("fuzz", MFD_CLOEXEC);
	if (fd < 0)
		goto out;
	if (size && write(fd, data, size) != (ssize_t)size)
		goto out;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (scimg_image_open(ctx, path, strcmp(fmt, "probe") ? fmt : NULL, &img) < 0)
		goto out;
	if (scimg_image_info(img, &info) == 0)
		(void)json_object_to_json_string(info);
	vsize = scimg_image_size(img);
	while (pos < vsize && steps++ < 4096) {
		struct scimg_extent e;

		if (scimg_image_block_status(img, pos, vsize - pos, &e) < 0)
			break;
		if (e.type == SCIMG_EXTENT_DATA && budget) {
			uint64_t n = e.length < sizeof(buf) ? e.length : sizeof(buf);
			if (n > budget)
				n = budget;
			if (scimg_image_pread(img, buf, (size_t)n, pos) < 0)
				break;
			budget -= n;
		}
		pos += e.length;
	}
	/* a read at the very end, and one straddling a unit boundary */
	if (vsize >= 1)
		(void)scimg_image_pread(img, buf, 1, vsize - 1);
	if (vsize > 70000)
		(void)scimg_image_pread(img, buf, 8192, 65536 - 4096);
out:
	json_object_put(info);
	scimg_image_close(img);
	if (fd >= 0)
		close(fd);
	scimg_ctx_free(ctx);
	return 0;
}

#ifdef FUZZ_REPLAY
/* fuzz-replay FORMAT FILE... : run each file through the target. */
int main(int argc, char **argv)
{
	int i;

	if (argc < 3) {
		fprintf(stderr, "usage: fuzz-replay FORMAT FILE...\n");
		return 2;
	}
	setenv("SCIMG_FUZZ_FORMAT", argv[1], 1);
	for (i = 2; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		uint8_t *d;
		long n;

		if (!f) {
			perror(argv[i]);
			return 2;
		}
		fseek(f, 0, SEEK_END);
		n = ftell(f);
		fseek(f, 0, SEEK_SET);
		if (n < 0 || n > (64l << 20)) {
			fclose(f);
			continue;
		}
		d = malloc((size_t)n + 1);
		if (!d || fread(d, 1, (size_t)n, f) != (size_t)n) {
			fclose(f);
			free(d);
			return 2;
		}
		fclose(f);
		LLVMFuzzerTestOneInput(d, (size_t)n);
		free(d);
	}
	return 0;
}
#endif
