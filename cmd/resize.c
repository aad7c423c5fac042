/* resize.c - scimg resize: change the virtual size of an image in place. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

static void help(void)
{
	printf("Usage: %s resize [--shrink] [-f FMT] [-q] IMAGE [+|-]SIZE\n\n"
	       "Change the virtual size of IMAGE in place to SIZE, or by +SIZE / -SIZE.\n"
	       "SIZE is in bytes or with a suffix k, M, G, T, P, E (powers of 1024).\n"
	       "Only IMAGE is written, never a file of its backing chain.\n\n"
	       "raw: the file is truncated or extended (sparse).  qcow2: grown by updating\n"
	       "the header and, when needed, moving the L1 table to the end of the file;\n"
	       "shrinking a qcow2 image is refused.\n\n"
	       "  -f, --format=FMT        format of IMAGE (default: probe, raw when nothing\n"
	       "                          matches)\n"
	       "      --shrink            allow a smaller size (the data past it is lost)\n"
	       "  -q, --quiet             print nothing\n"
	       "  -h, --help              show this help\n"
	       "  -V, --version           show the version\n\n"
	       "Exit status: 0 success, 2 error.  See scimg-resize(1).\n", prog);
}

int cmd_resize(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "shrink", no_argument, NULL, 'S' },
		{ "quiet", no_argument, NULL, 'q' },
		LONG_OPTIONS_END,
	};
	struct scimg_ctx *ctx;
	struct scimg_image *img = NULL;
	const char *fmt = NULL, *arg;
	int c, shrink = 0, quiet = 0, ret = EXIT_ERROR, rel = 0;
	uint64_t size, cur;

	/* "-1G" is a size, not an option: stop at the first non-option */
	while ((c = getopt_long(argc, argv, "+:f:qhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'S': shrink = 1; break;
		case 'q': quiet = 1; break;
		case 'h': help(); return EXIT_OK;
		case 'V': print_version(); return EXIT_OK;
		default: return bad_option("resize", c, argv);
		}
	}
	/* "IMAGE -- -1G" as qemu-img takes it */
	if (argc - optind == 3 && !strcmp(argv[optind + 1], "--")) {
		argv[optind + 1] = argv[optind];
		optind++;
	}
	if (optind != argc - 2)
		return usage_error("resize", "expected IMAGE and SIZE");
	arg = argv[optind + 1];
	if (*arg == '+' || *arg == '-')
		rel = *arg++ == '+' ? 1 : -1;
	if (parse_size_arg(arg, &size) < 0)
		return usage_error("resize", "invalid size '%s': expected [+|-] bytes or a number with k, M, G, T, P or E",
				   argv[optind + 1]);
	ctx = cmd_ctx_new();
	if (rel) {
		if (scimg_image_open(ctx, argv[optind], fmt, &img) < 0) {
			die_ctx("resize", ctx);
			goto out;
		}
		cur = scimg_image_size(img);
		scimg_image_close(img);
		if (rel > 0 ? size > UINT64_MAX - cur : size > cur) {
			fprintf(stderr, "%s resize: '%s': %s%s: the size would be out of range\n",
				prog, argv[optind], rel > 0 ? "+" : "-", arg);
			goto out;
		}
		size = rel > 0 ? cur + size : cur - size;
	}
	if (scimg_image_resize(ctx, argv[optind], fmt, size,
			       shrink ? SCIMG_RESIZE_SHRINK : 0) < 0) {
		die_ctx("resize", ctx);
		goto out;
	}
	if (!quiet)
		printf("Image resized.\n");
	ret = EXIT_OK;
out:
	scimg_ctx_free(ctx);
	return ret;
}
