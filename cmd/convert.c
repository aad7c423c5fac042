/* convert.c - scimg convert */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"

static void help(void)
{
	printf("Usage: %s convert [-f FMT] [-I KEY=VAL,...] -O FMT [-o KEY=VAL,...] [-c] [-p]\n"
	       "                     [-S SIZE] [-m THREADS] [--no-backing] [--no-sync]\n"
	       "                     [-B BACKING -F BACKING_FMT] [-n [--target-is-zero]] SRC DST\n"
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
	       "  -B, --backing=BACKING   DST (qcow2) gets BACKING as its backing file, stored\n"
	       "                          as given (a relative name is relative to DST's\n"
	       "                          directory), and holds only the clusters whose\n"
	       "                          content differs from BACKING's (-o backing_file=)\n"
	       "  -F, --backing-format=FMT format of BACKING (required with -B, as with\n"
	       "                          qemu-img; -o backing_fmt=)\n"
	       "  -p, --progress          show progress on stderr: allocated data done of\n"
	       "                          the total, rate, ETA, phase (one updating line\n"
	       "                          on a terminal, a line per 5 %% elsewhere)\n"
	       "  -S, --sparse-size=SIZE  zero runs of SIZE bytes or more (aligned) are not\n"
	       "                          written; default 4k; 0 allocates everything\n"
	       "  -m, --threads=N         compression worker threads (default: CPUs)\n"
	       "  -q, --quiet             no notes on stderr (errors are still printed)\n"
	       "  -t CACHE                qemu-img's target cache mode: 'unsafe' is\n"
	       "                          --no-sync; none, writeback, writethrough and\n"
	       "                          directsync flush DST before it is renamed (the default)\n"
	       "  -T CACHE                qemu-img's source cache mode: accepted (none,\n"
	       "                          writeback, writethrough, directsync, unsafe); scimg\n"
	       "                          reads through the page cache whatever it says\n"
	       "  -W                      accepted for qemu-img scripts: scimg's engine\n"
	       "                          already reads in parallel and writes in order\n"
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
		{ "no-backing", no_argument, NULL, OPT_NO_BACKING },
		{ "backing", required_argument, NULL, 'B' },
		{ "backing-format", required_argument, NULL, 'F' },
		{ "no-sync", no_argument, NULL, 'N' },
		{ "provider", required_argument, NULL, 'P' },
		{ "trust-chain", no_argument, NULL, OPT_TRUST_CHAIN },
		HTTP_LONG_OPTIONS,
		{ "no-create", no_argument, NULL, 'n' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "target-is-zero", no_argument, NULL, 'Z' },
		LONG_OPTIONS_END,
	};
	struct scimg_convert_opts o;
	struct scimg_ctx *ctx;
	char *optstr = NULL, *inoptstr = NULL;
	struct cmd_progress pst;
	int c, ret, show_progress = 0, nobacking = 0, quiet = 0;

	memset(&o, 0, sizeof(o));
	o.size = sizeof(o);
	o.sparse_size = 4096;
	while ((c = getopt_long(argc, argv, ":f:I:O:o:cpqS:m:nt:T:WB:F:hV", longopts, NULL)) != -1) {
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
		case 'q': quiet = 1; break;
		case 'W': break; /* the engine reads in parallel, writes in order */
		case 't':
		case 'T':
			if (strcmp(optarg, "none") && strcmp(optarg, "writeback") &&
			    strcmp(optarg, "writethrough") && strcmp(optarg, "directsync") &&
			    strcmp(optarg, "unsafe"))
				return free(optstr), free(inoptstr),
				       usage_error("convert", "-%c: cache mode must be none, writeback, writethrough, directsync or unsafe, not '%s'", c, optarg);
			if (c == 't' && !strcmp(optarg, "unsafe"))
				o.no_sync = 1;
			break;
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
		case OPT_NO_BACKING: nobacking = 1; break;
		case 'B': o.backing = optarg; break;
		case 'F': o.backing_format = optarg; break;
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
			free(optstr); free(inoptstr); return bad_option("convert", c, argv);
		}
	}
	if (inoptstr && strcmp(inoptstr, "help") == 0) {
		free(optstr);
		free(inoptstr);
		return print_reader_options("convert", o.src_format);
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
		cmd_progress_init(&pst, "convert");
		o.progress_ex = cmd_progress;
		o.progress_opaque = &pst;
	}
	ctx = cmd_ctx_new_cancel(nobacking);
	if (!o.src_format && !quiet) {
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
			cmd_progress_end(&pst);
		die_ctx("convert", ctx);
	}
	scimg_ctx_free(ctx);
	free(optstr);
	free(inoptstr);
	return ret < 0 ? EXIT_ERROR : EXIT_OK;
}
