/* fuzz-image.c - fuzz target for the image readers.
 *
 * The input bytes become a file (memfd); it is opened with one format (or
 * "probe": every format bids), then the whole read side is exercised with
 * bounded work: info(), the allocation map walked from the start with every
 * data extent read (up to a byte budget), block_status and pread at points
 * spread over the whole virtual size and at its very end, and, when the disk
 * is small, the container check (scimg_check --container-only: for SCI the
 * members, their digests, the descriptor and the signature).  Referenced files (backing files, extents,
 * parts) are refused as for any untrusted image.
 *
 * The format is taken from, in this order: a --format=NAME argument (libFuzzer
 * ignores arguments starting with "--"), the program's own name when it is
 * fuzz-NAME (run-fuzz.sh links fuzz-NAME to fuzz-image), $SCIMG_FUZZ_FORMAT.
 * `--list-formats` prints every readable format of the registry (built-in
 * and the plugins linked in) and exits: run-fuzz.sh and the tests iterate
 * that list, so a new format is fuzzed without editing a second list.
 *
 * One more target that is not an image format: "initramfs", the initramfs
 * lister of `scimg check` (lib/check/initrd.c: cpio archives and
 * compressed streams through libarchive) -- listed last by --list-formats,
 * so it gets its corpus directory, its replay and its fuzzing run like the
 * formats.
 *
 * Built two ways: with libFuzzer (make fuzz-build, tests/fuzz/fuzz.mk) and
 * as tests/fuzz/fuzz-replay (FUZZ_REPLAY: a main() that runs files through
 * the same target; tests/fuzz/test-fuzz-replay.sh replays the corpus).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "scimg.h"
#include "scimg-int.h"
#include "check/check-int.h"
#ifdef FUZZ_STATIC_PLUGINS
/* Plugins (FUZZ_PLUGIN_SOURCES) are linked in and registered directly. */
#include "scimg-plugin.h"
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define READ_BUDGET (8u << 20)        /* bytes read per input */
#define WALK_STEPS 4096               /* block_status calls from offset 0 */
#define SAMPLES 16                    /* points spread over the image */
#define CHECK_MAX_SIZE (2ull << 20)   /* scimg_check up to this virtual size */

static const char *format = "probe";

static void register_plugins(void)
{
#ifdef FUZZ_STATIC_PLUGINS
	static int registered;

	if (!registered) {
		registered = 1;
		scimg_int_plugin_register(scimg_plugin_init(), "(linked into the fuzzer)");
	}
#endif
}

static void list_formats(void)
{
	size_t i;

	for (i = 0; i < scimg_format_count(); i++) {
		int r = 0;

		if (scimg_format_caps(scimg_format_name(i), &r, NULL) == 0 && r)
			printf("%s\n", scimg_format_name(i));
	}
	printf("initramfs\n");
}

/* Pick the format; handle --list-formats.  Returns 1 when the program
 * should exit (listed), -1 on an unknown format. */
static int setup(int argc, char **argv)
{
	const char *env = getenv("SCIMG_FUZZ_FORMAT"), *base;
	int i, r = 0;

	register_plugins();
	if (env && *env)
		format = env;
	if (argc > 0 && argv[0]) {
		base = strrchr(argv[0], '/');
		base = base ? base + 1 : argv[0];
		if (!strncmp(base, "fuzz-", 5) && strcmp(base, "fuzz-image") && strcmp(base, "fuzz-replay"))
			format = base + 5;
	}
	for (i = 1; i < argc; i++) {
		if (!strncmp(argv[i], "--format=", 9))
			format = argv[i] + 9;
		else if (!strcmp(argv[i], "--list-formats")) {
			list_formats();
			return 1;
		}
	}
	if (strcmp(format, "probe") && strcmp(format, "initramfs") && (scimg_format_caps(format, &r, NULL) < 0 || !r)) {
		fprintf(stderr, "fuzz-image: '%s' is not a readable format (--list-formats lists them)\n", format);
		return -1;
	}
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int r = setup(*argc, *argv);

	if (r)
		exit(r > 0 ? 0 : 2);
	return 0;
}

static void read_at(struct scimg_image *img, uint8_t *buf, size_t bufsz, uint64_t off,
		    uint64_t vsize, uint64_t *budget)
{
	struct scimg_extent e;
	uint64_t n;

	if (off >= vsize || scimg_image_block_status(img, off, vsize - off, &e) < 0)
		return;
	n = vsize - off < bufsz ? vsize - off : bufsz;
	if (n > *budget)
		n = *budget;
	if (n && scimg_image_pread(img, buf, (size_t)n, off) == 0)
		*budget -= n;
}

/* The check `scimg check --container-only` makes, when the disk is small
 * (it hashes the whole guest-visible content): for the container formats
 * the members (tar layout, descriptor, signature, member and content
 * digests), for the others every extent read once more. */
static void check_small(struct scimg_ctx *ctx, const char *path, uint64_t vsize)
{
	struct scimg_check_opts o = { .path = path, .container_only = 1 };
	json_object *report = NULL;

	if (vsize > CHECK_MAX_SIZE)
		return;
	o.format = strcmp(format, "probe") ? format : NULL;
	if (scimg_check(ctx, &o, &report) >= 0)
		(void)json_object_to_json_string(report);
	json_object_put(report);
	scimg_ctx_clear_error(ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[1 << 16];
	struct scimg_ctx *ctx = scimg_ctx_new();
	struct scimg_image *img = NULL;
	json_object *info = NULL;
	char path[64];
	uint64_t pos = 0, vsize, budget = READ_BUDGET;
	int fd = -1, steps = 0, i;

	if (!ctx)
		return 0;
	register_plugins();
	scimg_ctx_set_flags(ctx, 0);
	fd = memfd_create("fuzz", MFD_CLOEXEC);
	if (fd < 0)
		goto out;
	if (size && write(fd, data, size) != (ssize_t)size)
		goto out;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (!strcmp(format, "initramfs")) {
		json_object *mods = NULL;
		if (scimg_int_initrd_modules(ctx, path, &mods) == 0 && !mods)
			abort(); /* success gives the list */
		json_object_put(mods);
		goto out;
	}
	if (scimg_image_open(ctx, path, strcmp(format, "probe") ? format : NULL, &img) < 0)
		goto out;
	if (scimg_image_info(img, &info) == 0)
		(void)json_object_to_json_string(info);
	scimg_ctx_clear_error(ctx);
	vsize = scimg_image_size(img);
	/* the map from the start, reading the data */
	while (pos < vsize && steps++ < WALK_STEPS) {
		struct scimg_extent e;

		if (scimg_image_block_status(img, pos, vsize - pos, &e) < 0)
			break;
		if (e.length == 0 || e.length > vsize - pos)
			abort(); /* the block_status contract */
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
	/* across the whole image: table lookups far from the start, a read at
	 * the very end and one straddling a 64 KiB unit boundary */
	for (i = 1; i < SAMPLES; i++)
		read_at(img, buf, 4096, vsize / SAMPLES * i + (uint64_t)i * 511, vsize, &budget);
	if (vsize >= 1)
		(void)scimg_image_pread(img, buf, 1, vsize - 1);
	if (vsize > 70000)
		(void)scimg_image_pread(img, buf, 8192, 65536 - 4096);
	scimg_image_close(img);
	img = NULL;
	check_small(ctx, path, vsize);
out:
	json_object_put(info);
	scimg_image_close(img);
	if (fd >= 0)
		close(fd);
	scimg_ctx_free(ctx);
	return 0;
}

#ifdef FUZZ_REPLAY
/* fuzz-replay [--format=]FORMAT FILE... : run each file through the target
 * ("probe" lets every format bid); fuzz-replay --list-formats. */
int main(int argc, char **argv)
{
	int i, r;

	if (argc == 2 && !strcmp(argv[1], "--list-formats"))
		return setup(argc, argv) > 0 ? 0 : 2;
	if (argc < 3) {
		fprintf(stderr, "usage: fuzz-replay FORMAT FILE...\n       fuzz-replay --list-formats\n");
		return 2;
	}
	setenv("SCIMG_FUZZ_FORMAT", strncmp(argv[1], "--format=", 9) ? argv[1] : argv[1] + 9, 1);
	if ((r = setup(1, argv)) != 0)
		return 2;
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
