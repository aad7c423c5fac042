/* rebase.c - scimg rebase -u: change the backing file a qcow2 image
 * names, without reading either backing file. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

static void help(void)
{
	printf("Usage: %s rebase -u -b BACKING [-F BACKING_FMT] [-f FMT] [-q] IMAGE\n\n"
	       "Rewrite the backing file name (and backing format) stored in the header of\n"
	       "the qcow2 image IMAGE, in place.  The name is stored as given (relative\n"
	       "names are relative to IMAGE's directory); -b \"\" removes the backing file.\n"
	       "Neither the old nor the new backing file is opened: the user asserts they\n"
	       "hold the same data (qemu-img rebase -u).  Safe mode (copying what differs)\n"
	       "is not supported: use -u.\n\n"
	       "  -u, --unsafe            change only the name (required)\n"
	       "  -b, --backing=BACKING   new backing file name (\"\": none)\n"
	       "  -F, --backing-format=FMT format of the new backing file, stored in the header\n"
	       "  -f, --format=FMT        format of IMAGE (default: probe; must be qcow2)\n"
	       "  -q, --quiet             print nothing\n"
	       "  -h, --help              show this help\n"
	       "  -V, --version           show the version\n\n"
	       "Exit status: 0 success, 2 error.  See scimg-rebase(1).\n", prog);
}

int cmd_rebase(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "unsafe", no_argument, NULL, 'u' },
		{ "backing", required_argument, NULL, 'b' },
		{ "backing-format", required_argument, NULL, 'F' },
		{ "format", required_argument, NULL, 'f' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct scimg_ctx *ctx;
	const char *fmt = NULL, *b = NULL, *bf = NULL;
	int c, unsafe = 0, ret = EXIT_ERROR;

	while ((c = getopt_long(argc, argv, ":ub:F:f:qhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'u': unsafe = 1; break;
		case 'b': b = optarg; break;
		case 'F': bf = optarg; break;
		case 'f': fmt = optarg; break;
		case 'q': break;
		case 'h': help(); return EXIT_OK;
		case 'V': print_version(); return EXIT_OK;
		default: return bad_option("rebase", c, argv);
		}
	}
	if (optind != argc - 1)
		return usage_error("rebase", "expected IMAGE");
	if (!b)
		return usage_error("rebase", "the new backing file (-b) is required (-b \"\" removes it)");
	if (!unsafe) {
		fprintf(stderr, "%s rebase: safe rebase is not supported: use -u (only the name is changed; the new backing file must hold the same data)\n",
			prog);
		return EXIT_ERROR;
	}
	if (bf && !*b)
		return usage_error("rebase", "a backing format (-F) needs a backing file");
	ctx = cmd_ctx_new();
	if (scimg_image_set_backing(ctx, argv[optind], fmt, b, bf) < 0) {
		die_ctx("rebase", ctx);
		goto out;
	}
	ret = EXIT_OK;
out:
	scimg_ctx_free(ctx);
	return ret;
}
