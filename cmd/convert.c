/* convert.c - scimg convert */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"

static void help(void)
{
	printf("Usage: %s convert [-f FMT] [-I KEY=VAL,...] -O FMT [-o KEY=VAL,...] [-c] [-p]\n"
	       "                     [-S SIZE] [-m THREADS] [--no-backing] [--no-sync]\n"
	       "                     [-n [--target-is-zero]] SRC DST\n"
	       "       %s convert --provider=NAME [-o KEY=VAL,...] [OPTIONS] SRC DST\n\n"
	       "Convert the disk image SRC into DST.  DST is written to an unnamed\n"
	       "temporary file in its directory and put in place when complete; on\n"
	       "error, interrupt or kill nothing is left behind.  SRC is only ever read:\n"
	       "a DST that is SRC or a file SRC reads from (backing file, data file,\n"
	       "extent), a character device, FIFO or socket, or a directory (for a\n"
	       "format that writes one file) is refused before anything is written.\n"
	       "An existing block device DST is written in place (its size checked).\n\n"
	       "  -f, --format=FMT        read SRC as FMT instead of probing\n"
	       "  -I, --input-options=K=V,... options of the input format (e.g. an AMI\n"
	       "                          bundle's privatekey=FILE; -I help lists them)\n"
	       "  -O, --output-format=FMT write DST as FMT (required unless --provider)\n"
	       "      --provider=NAME     write what provider profile NAME demands: its\n"
	       "                          format, options and size rounding (scimg plugins\n"
	       "                          lists the profiles)\n"
	       "  -o, --options=K=V,...   options of the output format (-o help lists them)\n"
	       "  -c, --compress          compress the output (qcow2, vmdk streamOptimized)\n"
	       "  -p, --progress          show progress on stderr\n"
	       "  -S, --sparse-size=SIZE  zero runs of SIZE bytes or more (aligned) are not\n"
	       "                          written; default 4k; 0 allocates everything\n"
	       "  -m, --threads=N         compression worker threads (default: CPUs)\n"
	       "      --no-backing        do not open files SRC refers to\n"
	       HELP_TRUST_CHAIN
	       "      --no-sync           do not flush DST to disk before renaming it into\n"
	       "                          place (faster; like qemu-img, whose target cache\n"
	       "                          mode defaults to unsafe)\n"
	       "  -n, --no-create         do not create DST: write into the existing DST\n"
	       "                          in place (raw into a file or block device; not\n"
	       "                          atomic: a failure leaves it partly written)\n"
	       "      --target-is-zero    with -n: DST already reads as zeros, so zero\n"
	       "                          ranges are not written\n"
	       "  -h, --help              show this help\n"
	       "  -V, --version           show the version\n"
	       "\n" HTTP_OPTIONS_HELP "\n"
	       "Exit status: 0 success, 2 error.  See scimg-convert(1).\n", prog, prog);
}

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

int cmd_convert(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "output-format", required_argument, NULL, 'O' },
		{ "options", required_argument, NULL, 'o' },
		{ "input-options", required_argument, NULL, 'I' },
		{ "compress", no_argument, NULL, 'c' },
		{ "progress", no_argument, NULL, 'p' },
		{ "sparse-size", required_argument, NULL, 'S' },
		{ "threads", required_argument, NULL, 'm' },
		{ "no-backing", no_argument, NULL, 'B' },
		{ "no-sync", no_argument, NULL, 'N' },
		{ "provider", required_argument, NULL, 'P' },
		{ "trust-chain", no_argument, NULL, OPT_TRUST_CHAIN },
		HTTP_LONG_OPTIONS,
		{ "no-create", no_argument, NULL, 'n' },
		{ "target-is-zero", no_argument, NULL, 'Z' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct scimg_convert_opts o;
	struct scimg_ctx *ctx;
	char *optstr = NULL, *inoptstr = NULL;
	int c, ret, last = -1, show_progress = 0, nobacking = 0;

	memset(&o, 0, sizeof(o));
	o.sparse_size = 4096;
	while ((c = getopt_long(argc, argv, "f:I:O:o:cpS:m:nhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': o.src_format = optarg; break;
		case 'O': o.dst_format = optarg; break;
		case 'o': {
			/* several -o accumulate, as with qemu-img */
			size_t n = (optstr ? strlen(optstr) + 1 : 0) + strlen(optarg) + 1;
			char *s = malloc(n);
			if (!s)
				return EXIT_ERROR;
			snprintf(s, n, "%s%s%s", optstr ? optstr : "", optstr ? "," : "", optarg);
			free(optstr);
			optstr = s;
			break;
		}
		case 'I': {
			size_t n = (inoptstr ? strlen(inoptstr) + 1 : 0) + strlen(optarg) + 1;
			char *s = malloc(n);
			if (!s)
				return EXIT_ERROR;
			snprintf(s, n, "%s%s%s", inoptstr ? inoptstr : "", inoptstr ? "," : "", optarg);
			free(inoptstr);
			inoptstr = s;
			break;
		}
		case 'c': o.compress = 1; break;
		case 'p': show_progress = 1; break;
		case 'S': {
			char *end;
			unsigned long long v;
			unsigned shift = 0;
			v = strtoull(optarg, &end, 10);
			if (end == optarg)
				return usage_error("convert", "invalid -S size '%s'", optarg);
			switch (*end) {
			case '\0': break;
			case 'k': case 'K': shift = 10; end++; break;
			case 'm': case 'M': shift = 20; end++; break;
			default: return usage_error("convert", "invalid -S size '%s'", optarg);
			}
			if (*end || v > (1ull << 30) >> shift)
				return usage_error("convert", "invalid -S size '%s'", optarg);
			o.sparse_size = v << shift;
			if (o.sparse_size && o.sparse_size % 512)
				return usage_error("convert", "-S must be a multiple of 512");
			break;
		}
		case 'm': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > 64)
				return usage_error("convert", "-m must be 1..64, not '%s'", optarg);
			o.threads = (int)v;
			break;
		}
		case 'B': nobacking = 1; break;
		case 'N': o.no_sync = 1; break;
		case 'P': o.provider = optarg; break;
		case OPT_TRUST_CHAIN: opt_trust_chain = 1; break;
		case 'n': o.no_create = 1; break;
		case 'Z': o.target_is_zero = 1; break;
		case 'h': help(); free(optstr); free(inoptstr); return EXIT_OK;
		case 'V': print_version(); free(optstr); free(inoptstr); return EXIT_OK;
		default:
			if (c >= HTTP_OPT_BASE && c <= HTTP_OPT_LAST) {
				if (http_option("convert", c, optarg) == 0)
					break;
				free(optstr); free(inoptstr); return EXIT_ERROR;
			}
			free(optstr); free(inoptstr); return usage_error("convert", "invalid option");
		}
	}
	if (o.target_is_zero && !o.no_create) {
		free(optstr);
		free(inoptstr);
		return usage_error("convert", "--target-is-zero needs -n (an existing target written in place)");
	}
	if (!o.dst_format && !o.provider) {
		free(optstr);
		free(inoptstr);
		return usage_error("convert", "the output format (-O) is required");
	}
	if (optstr && strcmp(optstr, "help") == 0) {
		json_object *pinfo = NULL, *v;

		if (!o.dst_format) {
			/* --provider without -O: the profile's format */
			struct scimg_ctx *pctx = cmd_ctx_new();
			if (scimg_profile_info(pctx, o.provider, &pinfo) < 0) {
				die_ctx("convert", pctx);
				scimg_ctx_free(pctx);
				free(optstr);
				return EXIT_ERROR;
			}
			scimg_ctx_free(pctx);
			if (json_object_object_get_ex(pinfo, "format", &v))
				o.dst_format = json_object_get_string(v);
		}
		free(optstr);
		if (!o.dst_format) {
			fprintf(stderr, "%s convert: no output format\n", prog);
			json_object_put(pinfo);
			return EXIT_ERROR;
		}
		/* each key with its meaning and default */
		c = print_create_option_help("convert", o.dst_format);
		json_object_put(pinfo);
		return c;
	}
	if (inoptstr && strcmp(inoptstr, "help") == 0) {
		free(inoptstr);
		inoptstr = strdup("help=1");
	}
	if (optind != argc - 2) {
		free(optstr);
		free(inoptstr);
		return usage_error("convert", "expected SRC and DST");
	}
	o.src = argv[optind];
	o.dst = argv[optind + 1];
	o.options = optstr;
	o.src_options = inoptstr;
	if (show_progress) {
		o.progress = progress;
		o.progress_opaque = &last;
	}
	ctx = cmd_ctx_new();
	if (nobacking)
		scimg_ctx_set_flags(ctx, scimg_ctx_get_flags(ctx) & ~(unsigned)SCIMG_CTX_ALLOW_BACKING);
	install_cancel_handlers(ctx);
	if (!o.src_format) {
		/* say it when nothing matched and the bytes are taken as raw */
		const char *pf = NULL;
		if (scimg_image_probe(ctx, o.src, &pf) == 0 && !pf)
			fprintf(stderr, "%s convert: note: '%s': no known format matched; reading it as raw (give -f to name its format)\n",
				prog, o.src);
		scimg_ctx_clear_error(ctx);
	}
	ret = scimg_convert(ctx, &o);
	if (ret < 0) {
		if (show_progress)
			fprintf(stderr, "\n");
		die_ctx("convert", ctx);
	}
	scimg_ctx_free(ctx);
	free(optstr);
	free(inoptstr);
	return ret < 0 ? EXIT_ERROR : EXIT_OK;
}
