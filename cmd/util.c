/* util.c - helpers shared by the subcommands. */
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

static struct scimg_ctx *cancel_ctx;
int opt_trust_chain;

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
	 * image names (backing file, extents) inside its directory tree;
	 * --no-backing forbids them, --trust-chain allows them anywhere. */
	scimg_ctx_set_flags(ctx, SCIMG_CTX_ALLOW_BACKING |
				 (opt_trust_chain ? SCIMG_CTX_TRUST_CHAIN : 0u));
	return ctx;
}

void print_version(void)
{
	printf("scimg %s\n", SCIMG_VERSION_STRING);
}
