/* rebase.c - scimg rebase: change the backing file a qcow2 image names;
 * safe mode copies what differs first (scimg_image_rebase), -u only
 * rewrites the name (scimg_image_set_backing). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

static void help(void)
{
	printf("Usage: %s rebase -b BACKING [-F BACKING_FMT] [-f FMT] [-u] [-q] IMAGE\n\n"
	       "Change the backing file of the qcow2 image IMAGE, in place, as qemu-img\n"
	       "rebase does.  Safe mode (the default): every cluster IMAGE does not\n"
	       "allocate itself whose content under its current chain differs from what\n"
	       "BACKING reads there is copied into IMAGE first, so IMAGE reads the same\n"
	       "before and after; then the header names BACKING.  The writes are ordered\n"
	       "so that an interruption leaves IMAGE reading as before (at worst with\n"
	       "leaked clusters).  -b \"\" makes IMAGE standalone.  With -u only the name\n"
	       "changes and neither backing file is opened: the user asserts they hold\n"
	       "the same data.  The name is stored as given (relative names are relative\n"
	       "to IMAGE's directory, where BACKING is opened).\n\n"
	       "  -b, --backing=BACKING   new backing file name (\"\": none)\n"
	       "  -F, --backing-format=FMT format of the new backing file, stored in the\n"
	       "                          header (required in safe mode, as with qemu-img)\n"
	       "  -f, --format=FMT        format of IMAGE (default: probe; must be qcow2)\n"
	       "  -u, --unsafe            change only the name\n"
	       "  -p, --progress          accepted for qemu-img scripts (nothing shown)\n"
	       HELP_TRUST_CHAIN
	       "  -q, --quiet             print nothing (nothing is printed on success)\n"
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
		{ "progress", no_argument, NULL, 'p' },
		{ "trust-chain", no_argument, NULL, OPT_TRUST_CHAIN },
		LONG_OPTIONS_END,
	};
	struct scimg_ctx *ctx;
	const char *fmt = NULL, *b = NULL, *bf = NULL;
	int c, unsafe = 0, ret = EXIT_ERROR;
	uint64_t copied = 0;

	while ((c = getopt_long(argc, argv, ":ub:F:f:pqhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'u': unsafe = 1; break;
		case 'b': b = optarg; break;
		case 'F': bf = optarg; break;
		case 'f': fmt = optarg; break;
		case 'q': break;
		case 'p': break;
		case OPT_TRUST_CHAIN: opt_trust_chain = 1; break;
		case 'h': help(); return EXIT_OK;
		case 'V': print_version(); return EXIT_OK;
		default: return bad_option("rebase", c, argv);
		}
	}
	if (optind != argc - 1)
		return usage_error("rebase", "expected IMAGE");
	if (!b)
		return usage_error("rebase", "the new backing file (-b) is required (-b \"\" removes it)");
	if (bf && !*b)
		return usage_error("rebase", "a backing format (-F) needs a backing file");
	ctx = cmd_ctx_new();
	if (unsafe) {
		if (scimg_image_set_backing(ctx, argv[optind], fmt, b, bf) < 0) {
			die_ctx("rebase", ctx);
			goto out;
		}
		ret = EXIT_OK;
		goto out;
	}
	install_cancel_handlers(ctx);
	if (scimg_image_rebase(ctx, argv[optind], fmt, b, bf, &copied) < 0) {
		die_ctx("rebase", ctx);
		goto out;
	}
	ret = EXIT_OK;
out:
	scimg_ctx_free(ctx);
	return ret;
}
