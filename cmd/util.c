/* util.c - helpers shared by the subcommands. */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

static struct scimg_ctx *cancel_ctx;

static void on_signal(int sig)
{
	(void)sig;
	if (cancel_ctx)
		scimg_ctx_cancel(cancel_ctx);
}

void install_cancel_handlers(struct scimg_ctx *ctx)
{
	struct sigaction sa;

	cancel_ctx = ctx;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

void die_ctx(const char *sub, struct scimg_ctx *ctx)
{
	fprintf(stderr, "%s %s: %s\n", prog, sub, scimg_ctx_errmsg(ctx));
}

int usage_error(const char *sub, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s %s: ", prog, sub);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s %s --help' for more information.\n", prog, sub);
	return EXIT_ERROR;
}

int bad_option(const char *sub, int c, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : NULL;
	int len;

	/* The name as the user typed it, without "=VALUE". */
	if (arg && strncmp(arg, "--", 2) == 0) {
		len = (int)strcspn(arg, "=");
		if (c == ':')
			return usage_error(sub, "option '%.*s' requires an argument", len, arg);
		if (optopt)
			return usage_error(sub, "option '%.*s' takes no argument", len, arg);
		return usage_error(sub, "unknown or ambiguous option '%.*s'", len, arg);
	}
	if (c == ':')
		return usage_error(sub, "option '-%c' requires an argument", optopt);
	if (optopt > 32 && optopt < 127)
		return usage_error(sub, "unknown option '-%c'", optopt);
	return usage_error(sub, "unknown option '%s'", arg ? arg : "?");
}

int print_reader_options(const char *sub, const char *format)
{
	const char *const *keys;
	size_t i, n = scimg_format_count();

	if (format) {
		keys = scimg_format_open_options(format);
		if (!keys) {
			fprintf(stderr, "%s %s: format '%s' is unknown or cannot be read\n",
				prog, sub, format);
			return EXIT_ERROR;
		}
		printf("Input options of format '%s' (-I KEY=VALUE):%s\n", format,
		       *keys ? "" : " none");
		for (; *keys; keys++)
			printf("  %s\n", *keys);
		return EXIT_OK;
	}
	printf("Input options (-I KEY=VALUE,...) of each readable format:\n");
	for (i = 0; i < n; i++) {
		const char *name = scimg_format_name(i);
		keys = name ? scimg_format_open_options(name) : NULL;
		if (!keys)
			continue;
		printf("  %-10s", name);
		if (!*keys)
			printf(" (none)");
		for (; *keys; keys++)
			printf(" %s", *keys);
		printf("\n");
	}
	printf("See scimg-%s(1) for what each option means.\n", sub);
	return EXIT_OK;
}

void human_size(unsigned long long v, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double d = (double)v;
	int u = 0;

	while (d >= 1024 && u < 6) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", v);
	else
		snprintf(buf, len, "%.3g %s", d, units[u]);
}

struct scimg_ctx *cmd_ctx_new(void)
{
	struct scimg_ctx *ctx = scimg_ctx_new();

	if (!ctx) {
		fprintf(stderr, "%s: out of memory\n", prog);
		exit(EXIT_ERROR);
	}
	/* The user naming an image on the command line allows the files that
	 * image names (backing file, extents); --no-backing forbids them. */
	scimg_ctx_set_flags(ctx, SCIMG_CTX_ALLOW_BACKING);
	return ctx;
}

void print_version(void)
{
	printf("scimg %s\n", scimg_version());
}
