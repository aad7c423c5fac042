/* convert.c - scimg convert */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"

static void help(void)
{
	printf("Usage: %s convert [-f FMT] [-I KEY=VAL,...] -O FMT [-o KEY=VAL,...] [-c] [-p]\n"
	       "                     [-S SIZE] [-m THREADS] [--no-backing] [--no-sync] SRC DST\n"
	       "       %s convert --provider=NAME [-o KEY=VAL,...] [OPTIONS] SRC DST\n\n"
	       "Convert the disk image SRC into DST.  DST is written to a temporary file\n"
	       "beside it and renamed into place when complete; on error or interrupt\n"
	       "nothing is left behind.  SRC is only ever read.\n\n"
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
	       "      --no-sync           do not flush DST to disk before renaming it into\n"
	       "                          place (faster; like qemu-img, whose target cache\n"
	       "                          mode defaults to unsafe)\n"
	       "  -h, --help              show this help\n"
	       "  -V, --version           show the version\n\n"
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
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct scimg_convert_opts o;
	struct scimg_ctx *ctx;
	char *optstr = NULL, *inoptstr = NULL;
	int c, ret, last = -1, show_progress = 0, nobacking = 0;

	memset(&o, 0, sizeof(o));
	o.size = sizeof(o);
	o.sparse_size = 4096;
	while ((c = getopt_long(argc, argv, ":f:I:O:o:cpS:m:hV", longopts, NULL)) != -1) {
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
		case 'h': help(); free(optstr); free(inoptstr); return EXIT_OK;
		case 'V': print_version(); free(optstr); free(inoptstr); return EXIT_OK;
		default: free(optstr); free(inoptstr); return bad_option("convert", c, argv);
		}
	}
	if (inoptstr && strcmp(inoptstr, "help") == 0) {
		free(optstr);
		free(inoptstr);
		return print_reader_options("convert", o.src_format);
	}
	if (!o.dst_format && !o.provider) {
		free(optstr);
		free(inoptstr);
		return usage_error("convert", "the output format (-O) is required");
	}
	if (optstr && strcmp(optstr, "help") == 0) {
		const char *const *keys;
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
		keys = o.dst_format ? scimg_format_create_options(o.dst_format) : NULL;
		free(optstr);
		if (!keys) {
			fprintf(stderr, "%s convert: format '%s' cannot be written\n", prog,
				o.dst_format ? o.dst_format : "?");
			json_object_put(pinfo);
			return EXIT_ERROR;
		}
		printf("Options of format '%s' (-o KEY=VALUE; see scimg-convert(1)):\n", o.dst_format);
		for (; *keys; keys++)
			printf("  %s\n", *keys);
		json_object_put(pinfo);
		return EXIT_OK;
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
