/* util.c - helpers shared by the subcommands. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

const char *jstr(json_object *o, const char *k)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, k, &v) || !v)
		return "";
	return json_object_get_string(v);
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

/* The --http-* values given, applied by cmd_ctx_new(). */
static struct {
	int given[HTTP_OPT_LAST - HTTP_OPT_BASE + 1];
	unsigned val[HTTP_OPT_LAST - HTTP_OPT_BASE + 1];
} http_opts;

/* Seconds ("10", "0.5") to milliseconds. */
static int parse_seconds(const char *s, unsigned *ms)
{
	unsigned long long whole = 0, frac = 0, scale = 1000;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		whole = whole * 10 + (unsigned)(*p - '0');
		if (whole > 4000000)
			return -1;
	}
	if (*p == '.') {
		p++;
		for (; *p >= '0' && *p <= '9'; p++)
			if (scale > 1) {
				scale /= 10;
				frac += (unsigned)(*p - '0') * scale;
			}
	}
	if (*p)
		return -1;
	*ms = (unsigned)(whole * 1000 + frac);
	return 0;
}

int http_option(const char *sub, int code, const char *arg)
{
	static const char *const names[] = {
		"http-connect-timeout", "http-low-speed-limit", "http-low-speed-time",
		"http-request-timeout", "http-timeout", "http-retries", "http-max-redirects",
	};
	int i = code - HTTP_OPT_BASE;
	unsigned v;

	if (i < 0 || code > HTTP_OPT_LAST)
		return usage_error(sub, "invalid option");
	if (i == 1 || i == 5 || i == 6) {
		char *end;
		unsigned long n;
		if (*arg < '0' || *arg > '9')
			return usage_error(sub, "--%s must be a whole number, not '%s'", names[i], arg);
		errno = 0;
		n = strtoul(arg, &end, 10);
		if (errno || *end || n > (i == 1 ? 1ul << 30 : 100ul))
			return usage_error(sub, "--%s: '%s' is not a whole number up to %lu",
					   names[i], arg, i == 1 ? 1ul << 30 : 100ul);
		v = (unsigned)n;
	} else if (parse_seconds(arg, &v) < 0) {
		return usage_error(sub, "--%s must be a number of seconds (e.g. 10 or 0.5), not '%s'",
				   names[i], arg);
	}
	http_opts.given[i] = 1;
	http_opts.val[i] = v;
	return 0;
}

static void http_opts_apply(struct scimg_ctx *ctx)
{
	struct scimg_http_limits l = { .size = sizeof(l) };
	unsigned *field[] = {
		&l.connect_timeout_ms, &l.low_speed_limit, &l.low_speed_time_ms,
		&l.request_timeout_ms, &l.total_timeout_ms, &l.max_retries, &l.max_redirects,
	};
	size_t i;
	int any = 0;

	if (scimg_ctx_get_http_limits(ctx, &l) < 0)
		return;
	for (i = 0; i < sizeof(field) / sizeof(field[0]); i++)
		if (http_opts.given[i]) {
			*field[i] = http_opts.val[i];
			any = 1;
		}
	if (any)
		scimg_ctx_set_http_limits(ctx, &l);
}

struct scimg_ctx *cmd_ctx_new(void)
{
	struct scimg_ctx *ctx = scimg_ctx_new();

	if (!ctx) {
		fprintf(stderr, "%s: out of memory\n", prog);
		exit(EXIT_ERROR);
	}
	http_opts_apply(ctx);
	/* The user naming an image on the command line allows the files that
	 * image names (backing file, extents) inside its directory tree;
	 * --no-backing forbids them, --trust-chain allows them anywhere. */
	scimg_ctx_set_flags(ctx, SCIMG_CTX_ALLOW_BACKING |
				 (opt_trust_chain ? SCIMG_CTX_TRUST_CHAIN : 0u));
	return ctx;
}

struct scimg_ctx *cmd_ctx_new_cancel(int nobacking)
{
	struct scimg_ctx *ctx = cmd_ctx_new();

	if (nobacking)
		scimg_ctx_set_flags(ctx, scimg_ctx_get_flags(ctx) & ~(unsigned)SCIMG_CTX_ALLOW_BACKING);
	install_cancel_handlers(ctx);
	return ctx;
}

int output_is_json(const char *arg)
{
	if (!strcmp(arg, "json"))
		return 1;
	if (!strcmp(arg, "human"))
		return 0;
	return -1;
}

void print_version(void)
{
	printf("scimg %s\n", scimg_version());
}

int merge_boot_results(json_object *methods, json_object *boot_report, json_object *warnings)
{
	json_object *boots;
	size_t i, j;
	int failed = 0;

	if (!json_object_object_get_ex(boot_report, "boots", &boots))
		return 0;
	for (i = 0; i < json_object_array_length(boots); i++) {
		json_object *b = json_object_array_get_idx(boots, i);
		const char *bm = jstr(b, "method");
		int ok = strcmp(jstr(b, "result"), "ok") == 0;
		/* boot-test's hvm-uefi-<bus> is the rules' hvm-uefi */
		const char *want = strncmp(bm, "hvm-uefi-", 9) == 0 ? "hvm-uefi" : bm;

		if (!ok)
			failed = 1;
		for (j = 0; methods && j < json_object_array_length(methods); j++) {
			json_object *m = json_object_array_get_idx(methods, j), *w, *basis;
			int pred;

			if (strcmp(jstr(m, "method"), want) != 0)
				continue;
			json_object_object_get_ex(m, "works", &w);
			pred = w && json_object_get_boolean(w);
			/* several boots of one method: it works only if all did */
			if (json_object_object_get_ex(m, "basis", &basis) &&
			    !strcmp(json_object_get_string(basis), "measured") && !pred)
				break;
			if (!json_object_object_get_ex(m, "predicted", NULL))
				json_object_object_add(m, "predicted", json_object_new_boolean(pred));
			json_object_object_get_ex(m, "predicted", &w);
			pred = json_object_get_boolean(w);
			json_object_object_add(m, "works", json_object_new_boolean(ok));
			json_object_object_add(m, "basis", json_object_new_string("measured"));
			json_object_object_add(m, "boot", json_object_get(b));
			if (pred != ok && warnings) {
				char msg[1024];
				snprintf(msg, sizeof(msg), "%s: the boot rules predicted it %s, the boot %s: %s",
					 bm, pred ? "works" : "fails", ok ? "worked" : "failed", jstr(b, "reason"));
				json_object_array_add(warnings, json_object_new_string(msg));
			}
			break;
		}
	}
	return failed;
}

/* ---- -p: progress on stderr ------------------------------------------------ */

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

void cmd_progress_init(struct cmd_progress *st, const char *sub)
{
	memset(st, 0, sizeof(*st));
	st->sub = sub;
	st->tty = isatty(STDERR_FILENO);
	st->last_bucket = -1;
	st->start = now_seconds();
}

void cmd_progress_end(struct cmd_progress *st)
{
	if (st->tty && st->width)
		fprintf(stderr, "\n");
	st->width = 0;
}

/* the line of a data phase (scanning, copying, finishing, done) */
static int data_line(struct cmd_progress *st, const struct scimg_progress *p, double t,
		     char *line, size_t len)
{
	char done[32], total[32], rs[32], eta[32] = "";
	uint64_t d = p->data_done, tot = p->data_total;
	double el, rate = 0;
	int pct;

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
		snprintf(line, len, "scanning the allocation map");
	else
		snprintf(line, len, "%-9s %3d%%  %s of %s data, %s%s", p->phase, pct,
			 done, total, rs, eta);
	return pct;
}

void cmd_progress(void *opaque, const struct scimg_progress *p)
{
	struct cmd_progress *st = opaque;
	double t = now_seconds();
	char line[256], el[24];
	int phase_changed = strcmp(st->last_phase, p->phase) != 0, pct;
	/* fields past the library's SIZE do not exist */
	int steps = p->size >= offsetof(struct scimg_progress, steps) + sizeof(p->steps) ? p->steps : 0;
	int stepped = steps > 0 || (strcmp(p->phase, "scanning") && strcmp(p->phase, "copying") &&
				    strcmp(p->phase, "finishing") && strcmp(p->phase, "done"));

	if (phase_changed && strcmp(p->phase, "copying") == 0)
		st->copy_start = t;
	snprintf(st->last_phase, sizeof(st->last_phase), "%s", p->phase);
	if (stepped) {
		/* a step of the guest fix (or packaging): a line each, kept */
		if (!phase_changed)
			return;
		fmt_duration(t - st->start, el, sizeof(el));
		if (steps > 0 && strcmp(p->phase, "done") == 0)
			snprintf(line, sizeof(line), "done, took %s", el);
		else if (steps > 0)
			snprintf(line, sizeof(line), "[%d/%d] %s (at %s)", p->step, steps, p->phase, el);
		else
			snprintf(line, sizeof(line), "%s (at %s)", p->phase, el);
		cmd_progress_end(st);
		fprintf(stderr, "%s %s: %s\n", prog, st->sub, line);
		fflush(stderr);
		return;
	}
	pct = data_line(st, p, t, line, sizeof(line));
	if (st->tty) {
		size_t n = strlen(line);
		if (!phase_changed && strcmp(p->phase, "done") && t - st->last_print < 0.1)
			return;
		st->last_print = t;
		fprintf(stderr, "\r%s%*s", line, st->width > n ? (int)(st->width - n) : 0, "");
		st->width = n;
		if (!strcmp(p->phase, "done")) {
			fprintf(stderr, "\n");
			st->width = 0;
		}
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
	fprintf(stderr, "%s %s: %s\n", prog, st->sub, line);
	fflush(stderr);
}
