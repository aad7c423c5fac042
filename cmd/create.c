/* create.c - scimg create: a new empty image, or an overlay of a backing
 * file (qcow2).  The image is written by the library's writer as the
 * conversion of an all-zero disk: created, nothing written, finished. */
#include <getopt.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

static void help(void)
{
	printf("Usage: %s create [-f FMT] [-o KEY=VAL,...] [-b BACKING [-F BACKING_FMT]] [-u]\n"
	       "                    [-q] FILE [SIZE]\n\n"
	       "Create FILE, an image of SIZE bytes that reads as zeros, or with -b an\n"
	       "overlay that reads as its backing file (qcow2 only).  FILE is written to a\n"
	       "temporary name beside it and renamed into place when complete.\n\n"
	       "SIZE is in bytes or with a suffix k, M, G, T, P, E (powers of 1024); with\n"
	       "-b it defaults to the backing file's virtual size.\n\n"
	       "  -f, --format=FMT        format of FILE (default raw)\n"
	       "  -o, --options=K=V,...   options of the format (-o help lists them, with\n"
	       "                          their meaning and default)\n"
	       "  -b, --backing=BACKING   backing file name, stored as given: a relative\n"
	       "                          name is relative to FILE's directory\n"
	       "  -F, --backing-format=FMT format of the backing file (default: probe; not\n"
	       "                          stored then)\n"
	       "  -u, --unsafe            do not open the backing file (SIZE is required)\n"
	       "  -q, --quiet             print nothing\n"
	       "  -h, --help              show this help\n"
	       "  -V, --version           show the version\n\n"
	       "Exit status: 0 success, 2 error.  See scimg-create(1).\n", prog);
}

/* Append ",KEY=VAL" (commas in VAL doubled) to *S. */
static int opt_append(char **s, const char *key, const char *val)
{
	size_t n = *s ? strlen(*s) : 0, i, o;
	char *r = realloc(*s, n + strlen(key) + 2 * strlen(val) + 3);

	if (!r)
		return -1;
	o = n;
	if (n)
		r[o++] = ',';
	strcpy(r + o, key);
	o += strlen(key);
	r[o++] = '=';
	for (i = 0; val[i]; i++) {
		r[o++] = val[i];
		if (val[i] == ',')
			r[o++] = ',';
	}
	r[o] = 0;
	*s = r;
	return 0;
}

/* The value of KEY in the -o string S (",," is a comma), or NULL; caller
 * frees. */
static char *opt_find(const char *s, const char *key)
{
	size_t kl = strlen(key);
	const char *p = s;

	while (p && *p) {
		const char *e = p;
		char *v, *o;

		/* find the end of this key=value (a single comma) */
		while (*e && !(*e == ',' && e[1] != ',')) {
			if (*e == ',')
				e++;
			e++;
		}
		if (!strncmp(p, key, kl) && p[kl] == '=') {
			v = malloc((size_t)(e - p));
			if (!v)
				return NULL;
			for (o = v, p += kl + 1; p < e; p++) {
				*o++ = *p;
				if (*p == ',')
					p++;
			}
			*o = 0;
			return v;
		}
		p = *e ? e + 1 : e;
	}
	return NULL;
}

int cmd_create(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "options", required_argument, NULL, 'o' },
		{ "backing", required_argument, NULL, 'b' },
		{ "backing-format", required_argument, NULL, 'F' },
		{ "unsafe", no_argument, NULL, 'u' },
		{ "quiet", no_argument, NULL, 'q' },
		LONG_OPTIONS_END,
	};
	const char *fmt = "raw", *bfile = NULL, *bfmt = NULL, *file;
	char *opts = NULL, *ob = NULL, *obf = NULL, *resolved = NULL;
	int c, unsafe = 0, quiet = 0, ohelp = 0, have_size, ret = EXIT_ERROR;
	struct scimg_ctx *ctx = NULL;
	struct scimg_image *img = NULL, *bimg = NULL;
	uint64_t size = 0;

	while ((c = getopt_long(argc, argv, ":f:o:b:F:uqhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'o':
			if (!strcmp(optarg, "help") || !strcmp(optarg, "?")) {
				ohelp = 1;
				break;
			}
			if (opts) {
				char *n = malloc(strlen(opts) + strlen(optarg) + 2);
				if (!n)
					goto oom;
				sprintf(n, "%s,%s", opts, optarg);
				free(opts);
				opts = n;
			} else if (!(opts = strdup(optarg))) {
				goto oom;
			}
			break;
		case 'b': bfile = optarg; break;
		case 'F': bfmt = optarg; break;
		case 'u': unsafe = 1; break;
		case 'q': quiet = 1; break;
		case 'h': help(); free(opts); return EXIT_OK;
		case 'V': print_version(); free(opts); return EXIT_OK;
		default: free(opts); return bad_option("create", c, argv);
		}
	}
	if (ohelp) {
		free(opts);
		return print_create_option_help("create", fmt);
	}
	if (optind >= argc || argc - optind > 2) {
		free(opts);
		return usage_error("create", "expected FILE and SIZE");
	}
	file = argv[optind];
	have_size = argc - optind == 2;
	if (have_size && parse_size_arg(argv[optind + 1], &size) < 0) {
		free(opts);
		return usage_error("create", "invalid size '%s': expected bytes or a number with k, M, G, T, P or E",
				   argv[optind + 1]);
	}
	/* -o backing_file= and backing_fmt= are the same as -b and -F */
	if (opts) {
		ob = opt_find(opts, "backing_file");
		obf = opt_find(opts, "backing_fmt");
	}
	if (ob && bfile && strcmp(ob, bfile)) {
		ret = usage_error("create", "-b '%s' and -o backing_file='%s' disagree", bfile, ob);
		goto out;
	}
	if (obf && bfmt && strcmp(obf, bfmt)) {
		ret = usage_error("create", "-F '%s' and -o backing_fmt='%s' disagree", bfmt, obf);
		goto out;
	}
	if (!bfile && ob && *ob)
		bfile = ob;
	if (!bfmt && obf && *obf)
		bfmt = obf;
	if (bfmt && !bfile) {
		ret = usage_error("create", "a backing format (-F) needs a backing file (-b)");
		goto out;
	}
	if (bfile && strcmp(fmt, "qcow2")) {
		fprintf(stderr, "%s create: format '%s' does not support backing files (only qcow2)\n",
			prog, fmt);
		goto out;
	}
	if (bfile && !ob && opt_append(&opts, "backing_file", bfile) < 0)
		goto oom;
	if (bfmt && !obf && opt_append(&opts, "backing_fmt", bfmt) < 0)
		goto oom;

	ctx = cmd_ctx_new();
	install_cancel_handlers(ctx);
	if (bfile && !unsafe) {
		/* the user named the backing file: it is trusted; a relative
		 * name is relative to the new image's directory */
		if (bfile[0] == '/' || !strchr(file, '/')) {
			resolved = strdup(bfile);
		} else {
			char *d = strdup(file);
			if (d) {
				const char *dn = dirname(d);
				resolved = malloc(strlen(dn) + strlen(bfile) + 2);
				if (resolved)
					sprintf(resolved, "%s/%s", dn, bfile);
				free(d);
			}
		}
		if (!resolved)
			goto oom;
		if (scimg_image_open(ctx, resolved, bfmt, &bimg) < 0) {
			fprintf(stderr, "%s create: could not open backing file '%s': %s\n",
				prog, bfile, scimg_ctx_errmsg(ctx));
			goto out;
		}
		if (!have_size)
			size = scimg_image_size(bimg);
		scimg_image_close(bimg);
		bimg = NULL;
	} else if (!have_size) {
		ret = usage_error("create", bfile ? "SIZE is required with -u" : "expected FILE and SIZE");
		goto out;
	}
	if (!quiet) {
		printf("Formatting '%s', fmt=%s size=%llu", file, fmt, (unsigned long long)size);
		if (opts)
			printf(" %s", opts);
		printf("\n");
		fflush(stdout);
	}
	if (scimg_image_create(ctx, file, fmt, size, opts,
			       bfile ? SCIMG_CREATE_BACKING : 0, &img) < 0 ||
	    scimg_image_finish(img) < 0) {
		die_ctx("create", ctx);
		goto out;
	}
	ret = EXIT_OK;
	goto out;
oom:
	fprintf(stderr, "%s create: out of memory\n", prog);
	ret = EXIT_ERROR;
out:
	free(resolved);
	free(ob);
	free(obf);
	free(opts);
	scimg_ctx_free(ctx);
	return ret;
}
