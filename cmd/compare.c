/* compare.c - scimg compare */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

static void progress(void *opaque, uint64_t done, uint64_t total)
{
	int *last = opaque;
	int pct = total ? (int)(done * 10000 / total) : 10000;

	if (pct == *last)
		return;
	*last = pct;
	fprintf(stderr, "    (%d.%02d/100%%)\r", pct / 100, pct % 100);
	if (done == total)
		fprintf(stderr, "\n");
}

/* Strict mode: the first offset where the two images' block status
 * (present, zero, data) differs, in *OFF; 0 none, 1 found, -1 error. */
static int status_mismatch(struct scimg_image *a, struct scimg_image *b, uint64_t *off)
{
	uint64_t pos = 0, size = scimg_image_size(a);
	struct scimg_map_extent ea, eb;

	while (pos < size) {
		if (scimg_image_map(a, pos, size - pos, &ea) < 0 ||
		    scimg_image_map(b, pos, size - pos, &eb) < 0)
			return -1;
		if (ea.present != eb.present || ea.zero != eb.zero || ea.data != eb.data) {
			*off = pos;
			return 1;
		}
		pos += ea.length < eb.length ? ea.length : eb.length;
	}
	return 0;
}

static void help(void)
{
	printf("Usage: %s compare [-f FMT] [-F FMT] [-s] [-p] [-q] [--no-backing] IMAGE1 IMAGE2\n\n"
	       "Compare the guest-visible content of two images, whatever their formats.\n"
	       "When the sizes differ, the extra part of the larger image must read as\n"
	       "zeros for the images to be equal.\n\n"
	       "  -f FMT          format of IMAGE1 (default: probe)\n"
	       "  -F FMT          format of IMAGE2 (default: probe)\n"
	       "  -s, --strict    the images differ when their sizes differ or a run is\n"
	       "                  allocated, zero or data in one and not in the other\n"
	       "  -p, --progress  show progress on stderr\n"
	       "  -q, --quiet     print nothing, only set the exit status\n"
	       "      --no-backing do not open files the images refer to\n"
	       HELP_TRUST_CHAIN
	       "  -h, --help      show this help\n"
	       "  -V, --version   show the version\n"
	       "\n" HTTP_OPTIONS_HELP "\n"
	       "Exit status: 0 identical, 1 different, 2 error.  See scimg-compare(1).\n", prog);
}

int cmd_compare(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "quiet", no_argument, NULL, 'q' },
		{ "strict", no_argument, NULL, 's' },
		{ "progress", no_argument, NULL, 'p' },
		{ "no-backing", no_argument, NULL, 'B' },
		{ "trust-chain", no_argument, NULL, OPT_TRUST_CHAIN },
		HTTP_LONG_OPTIONS,
		LONG_OPTIONS_END,
	};
	struct scimg_ctx *ctx;
	struct scimg_image *a = NULL, *b = NULL;
	const char *fa = NULL, *fb = NULL;
	int c, quiet = 0, nobacking = 0, ret = EXIT_ERROR, r, strict = 0, prog_on = 0;
	int last = -1, sm = 0;
	uint64_t off = 0, soff = 0;

	while ((c = getopt_long(argc, argv, ":f:F:spqhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': fa = optarg; break;
		case 'F': fb = optarg; break;
		case 'q': quiet = 1; break;
		case 's': strict = 1; break;
		case 'p': prog_on = 1; break;
		case 'B': nobacking = 1; break;
		case OPT_TRUST_CHAIN: opt_trust_chain = 1; break;
		case 'h': help(); return EXIT_OK;
		case 'V': print_version(); return EXIT_OK;
		default:
			if (c >= HTTP_OPT_BASE && c <= HTTP_OPT_LAST) {
				if (http_option("compare", c, optarg) == 0)
					break;
				return EXIT_ERROR;
			}
			return bad_option("compare", c, argv);
		}
	}
	if (optind != argc - 2)
		return usage_error("compare", "expected IMAGE1 and IMAGE2");
	ctx = cmd_ctx_new_cancel(nobacking);
	if (scimg_image_open(ctx, argv[optind], fa, &a) < 0 ||
	    scimg_image_open(ctx, argv[optind + 1], fb, &b) < 0) {
		die_ctx("compare", ctx);
		goto out;
	}
	if (strict && scimg_image_size(a) != scimg_image_size(b)) {
		if (!quiet)
			printf("Strict mode: Image size mismatch!\n");
		ret = EXIT_DIFFERENT;
		goto out;
	}
	if (strict && (sm = status_mismatch(a, b, &soff)) < 0) {
		die_ctx("compare", ctx);
		goto out;
	}
	r = scimg_compare_progress(ctx, a, b, &off, prog_on && !quiet ? progress : NULL, &last);
	if (r < 0) {
		if (prog_on && !quiet)
			fprintf(stderr, "\n");
		die_ctx("compare", ctx);
		goto out;
	}
	if (sm && (r == 0 || off >= soff)) {
		if (!quiet)
			printf("Strict mode: Offset %llu block status mismatch!\n",
			       (unsigned long long)soff);
		ret = EXIT_DIFFERENT;
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
