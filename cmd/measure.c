/* measure.c - scimg measure: the size an image needs in a format. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

static void help(void)
{
	printf("Usage: %s measure [--output=human|json] [-O FMT] [-o KEY=VAL,...]\n"
	       "                     (--size SIZE | [-f FMT] [--no-backing] SRC)\n\n"
	       "Print how large a file converting SRC (or creating an empty disk of SIZE\n"
	       "bytes) to FMT would need: \"required\" for the allocated data and\n"
	       "\"fully-allocated\" with every cluster allocated, as qemu-img measure does.\n"
	       "Formats: qcow2 and raw (the numbers of qemu-img measure), vmdk, vhd (vpc)\n"
	       "and vhdx (from scimg's own writers' layout; qemu-img does not measure\n"
	       "them; vmdk streamOptimized is an upper bound, its grains being compressed).\n\n"
	       "  -O, --output-format=FMT format to measure for (default raw)\n"
	       "  -o, --options=K=V,...   options of that format (cluster_size, refcount_bits,\n"
	       "                          compat, preallocation for qcow2; subformat for vmdk,\n"
	       "                          vhd, vhdx; force_size for vhd; block_size for vhdx)\n"
	       "      --size=SIZE         measure an empty disk of SIZE bytes (suffixes k, M,\n"
	       "                          G, T, P, E)\n"
	       "  -f, --format=FMT        format of SRC (default: probe)\n"
	       "      --output=FMT        human (default) or json\n"
	       "      --no-backing        do not open files SRC refers to\n"
	       "  -h, --help              show this help\n"
	       "  -V, --version           show the version\n\n"
	       "Exit status: 0 success, 2 error.  See scimg-measure(1).\n", prog);
}

int cmd_measure(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output-format", required_argument, NULL, 'O' },
		{ "options", required_argument, NULL, 'o' },
		{ "size", required_argument, NULL, 's' },
		{ "format", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'J' },
		{ "no-backing", no_argument, NULL, OPT_NO_BACKING },
		LONG_OPTIONS_END,
	};
	struct scimg_ctx *ctx;
	struct scimg_image *img = NULL;
	struct scimg_measure m;
	const char *ofmt = "raw", *fmt = NULL, *opts = NULL;
	int c, json = 0, nobacking = 0, have_size = 0, ret = EXIT_ERROR;
	uint64_t size = 0;

	while ((c = getopt_long(argc, argv, ":O:o:f:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'O': ofmt = optarg; break;
		case 'o': opts = optarg; break;
		case 'f': fmt = optarg; break;
		case 's':
			if (parse_size_arg(optarg, &size) < 0)
				return usage_error("measure", "invalid size '%s'", optarg);
			have_size = 1;
			break;
		case 'J':
			if ((json = output_is_json(optarg)) < 0)
				return usage_error("measure", "--output=%s: expected human or json", optarg);
			break;
		case OPT_NO_BACKING: nobacking = 1; break;
		case 'h': help(); return EXIT_OK;
		case 'V': print_version(); return EXIT_OK;
		default: return bad_option("measure", c, argv);
		}
	}
	if (opts && !strcmp(opts, "help"))
		return print_create_option_help("measure", ofmt);
	if (have_size ? optind != argc : optind != argc - 1)
		return usage_error("measure", "expected either --size SIZE or SRC");
	ctx = cmd_ctx_new_cancel(nobacking);
	if (!have_size && scimg_image_open(ctx, argv[optind], fmt, &img) < 0) {
		die_ctx("measure", ctx);
		goto out;
	}
	if (scimg_measure(ctx, img, size, ofmt, opts, &m) < 0) {
		die_ctx("measure", ctx);
		goto out;
	}
	if (json) {
		printf("{\n");
		if (m.has_bitmaps)
			printf("    \"bitmaps\": %llu,\n", (unsigned long long)m.bitmaps);
		printf("    \"required\": %llu,\n    \"fully-allocated\": %llu\n}\n",
		       (unsigned long long)m.required, (unsigned long long)m.fully_allocated);
	} else {
		printf("required size: %llu\nfully allocated size: %llu\n",
		       (unsigned long long)m.required, (unsigned long long)m.fully_allocated);
		if (m.has_bitmaps)
			printf("bitmaps size: %llu\n", (unsigned long long)m.bitmaps);
	}
	ret = EXIT_OK;
out:
	scimg_image_close(img);
	scimg_ctx_free(ctx);
	return ret;
}
