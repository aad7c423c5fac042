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

/* -p: on a terminal one line updated in place (at most 10 times a second);
 * elsewhere (CI logs) a plain line per phase and per 5 % of the data. */
struct progress_state {
	int tty;
	int last_bucket;        /* last 5 % step printed (not a tty) */
	const char *last_phase;
	double start, last_print, copy_start;
	size_t width;           /* of the last tty line, to blank it */
};

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fmt_duration(double s, char *buf, size_t len)
{
	unsigned long t = s < 0 ? 0 : (unsigned long)(s + 0.5);

	if (t >= 3600)
		snprintf(buf, len, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(buf, len, "%lu:%02lu", t / 60, t % 60);
}

static void progress(void *opaque, const struct scimg_progress *p)
{
	struct progress_state *st = opaque;
	double t = now_seconds(), el, rate = 0;
	char done[32], total[32], rs[32], eta[32] = "", line[256];
	uint64_t d = p->data_done, tot = p->data_total;
	int pct, phase_changed = !st->last_phase || strcmp(st->last_phase, p->phase) != 0;

	if (phase_changed && strcmp(p->phase, "copying") == 0)
		st->copy_start = t;
	st->last_phase = p->phase;
	if (!tot) /* nothing allocated, or still scanning: by position */
		pct = p->virtual_size ? (int)(p->pos * 100 / p->virtual_size) : 100;
	else
		pct = (int)(d * 100 / tot);
	if (!strcmp(p->phase, "done"))
		pct = 100;
	el = t - (st->copy_start ? st->copy_start : st->start);
	if (el > 0.2 && d)
		rate = (double)d / el;
	human_size(d, done, sizeof(done));
	human_size(tot, total, sizeof(total));
	if (rate > 0) {
		human_size((unsigned long long)rate, rs, sizeof(rs));
		strcat(rs, "/s");
	} else {
		snprintf(rs, sizeof(rs), "-");
	}
	if (!strcmp(p->phase, "copying") && rate > 0 && tot > d) {
		char e[24];
		fmt_duration((double)(tot - d) / rate, e, sizeof(e));
		snprintf(eta, sizeof(eta), ", ETA %s", e);
	} else if (!strcmp(p->phase, "done")) {
		char e[24];
		fmt_duration(t - st->start, e, sizeof(e));
		snprintf(eta, sizeof(eta), ", took %s", e);
	}
	if (!strcmp(p->phase, "scanning"))
		snprintf(line, sizeof(line), "scanning the allocation map");
	else
		snprintf(line, sizeof(line), "%-9s %3d%%  %s of %s data, %s%s", p->phase, pct,
			 done, total, rs, eta);

	if (st->tty) {
		size_t n = strlen(line);
		if (!phase_changed && strcmp(p->phase, "done") && t - st->last_print < 0.1)
			return;
		st->last_print = t;
		fprintf(stderr, "\r%s%*s", line, st->width > n ? (int)(st->width - n) : 0, "");
		st->width = n;
		if (!strcmp(p->phase, "done"))
			fprintf(stderr, "\n");
		fflush(stderr);
		return;
	}
	/* not a terminal: a line when the phase changes and per 5 % copied */
	if (!strcmp(p->phase, "copying") && !phase_changed) {
		if (pct / 5 <= st->last_bucket)
			return;
	} else if (!phase_changed) {
		return;
	}
	st->last_bucket = pct / 5;
	fprintf(stderr, "%s convert: %s\n", prog, line);
	fflush(stderr);
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
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct scimg_convert_opts o;
	struct scimg_ctx *ctx;
	char *optstr = NULL, *inoptstr = NULL;
	struct progress_state pst;
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
		memset(&pst, 0, sizeof(pst));
		pst.tty = isatty(STDERR_FILENO);
		pst.last_bucket = -1;
		pst.start = now_seconds();
		o.progress_ex = progress;
		o.progress_opaque = &pst;
	}
	ctx = cmd_ctx_new();
	if (nobacking)
		scimg_ctx_set_flags(ctx, scimg_ctx_get_flags(ctx) & ~(unsigned)SCIMG_CTX_ALLOW_BACKING);
	install_cancel_handlers(ctx);
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
		if (show_progress && pst.tty)
			fprintf(stderr, "\n");
		die_ctx("convert", ctx);
	}
	scimg_ctx_free(ctx);
	free(optstr);
	free(inoptstr);
	return ret < 0 ? EXIT_ERROR : EXIT_OK;
}
