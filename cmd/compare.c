/* compare.c - scimg compare */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

static void help(void)
{
	printf("Usage: %s compare [-f FMT] [-F FMT] [-q] [--no-backing] IMAGE1 IMAGE2\n\n"
	       "Compare the guest-visible content of two images, whatever their formats.\n"
	       "When the sizes differ, the extra part of the larger image must read as\n"
	       "zeros for the images to be equal.\n\n"
	       "  -f FMT          format of IMAGE1 (default: probe)\n"
	       "  -F FMT          format of IMAGE2 (default: probe)\n"
	       "  -q, --quiet     print nothing, only set the exit status\n"
	       "      --no-backing do not open files the images refer to\n"
	       "  -h, --help      show this help\n"
	       "  -V, --version   show the version\n\n"
	       "Exit status: 0 identical, 1 different, 2 error.  See scimg-compare(1).\n", prog);
}

int cmd_compare(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "quiet", no_argument, NULL, 'q' },
		{ "no-backing", no_argument, NULL, 'B' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct scimg_ctx *ctx;
	struct scimg_image *a = NULL, *b = NULL;
	const char *fa = NULL, *fb = NULL;
	int c, quiet = 0, nobacking = 0, ret = EXIT_ERROR, r;
	uint64_t off = 0;

	while ((c = getopt_long(argc, argv, ":f:F:qhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': fa = optarg; break;
		case 'F': fb = optarg; break;
		case 'q': quiet = 1; break;
		case 'B': nobacking = 1; break;
		case 'h': help(); return EXIT_OK;
		case 'V': print_version(); return EXIT_OK;
		default: return bad_option("compare", c, argv);
		}
	}
	if (optind != argc - 2)
		return usage_error("compare", "expected IMAGE1 and IMAGE2");
	ctx = cmd_ctx_new();
	if (nobacking)
		scimg_ctx_set_flags(ctx, scimg_ctx_get_flags(ctx) & ~(unsigned)SCIMG_CTX_ALLOW_BACKING);
	install_cancel_handlers(ctx);
	if (scimg_image_open(ctx, argv[optind], fa, &a) < 0 ||
	    scimg_image_open(ctx, argv[optind + 1], fb, &b) < 0) {
		die_ctx("compare", ctx);
		goto out;
	}
	r = scimg_compare(ctx, a, b, &off);
	if (r < 0) {
		die_ctx("compare", ctx);
		goto out;
	}
	if (r == 0) {
		if (!quiet) {
			if (scimg_image_size(a) != scimg_image_size(b))
				printf("Warning: image sizes differ (%llu and %llu bytes); the larger one reads as zeros past the end of the smaller.\n",
				       (unsigned long long)scimg_image_size(a),
				       (unsigned long long)scimg_image_size(b));
			printf("Images are identical.\n");
		}
		ret = EXIT_OK;
	} else {
		if (!quiet)
			printf("Content mismatch at offset %llu!\n", (unsigned long long)off);
		ret = EXIT_DIFFERENT;
	}
out:
	scimg_image_close(a);
	scimg_image_close(b);
	scimg_ctx_free(ctx);
	return ret;
}
