/* cmd.h - shared helpers of the scimg subcommands.  Only cmd/ prints. */
#ifndef SCIMG_CMD_H
#define SCIMG_CMD_H

#include <stdio.h>
#include "scimg.h"

/* Exit codes (docs/scimg.1, EXIT STATUS). */
enum {
	EXIT_OK = 0,
	EXIT_DIFFERENT = 1,   /* compare: images differ; check: not compliant */
	EXIT_ERROR = 2,       /* could not do it */
};

extern const char *prog;

int cmd_info(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_plugins(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_inject_drivers(int argc, char **argv);
int cmd_boot_test(int argc, char **argv);
int cmd_blanket(int argc, char **argv);
/* Parse check --boot's LIST: bus names, all, bios/uefi and the Xen
 * loaders pygrub, pvgrub2, direct (xen: pygrub and pvgrub2); 0 or
 * EXIT_ERROR after a usage message for SUB. */
int parse_boot_list(const char *sub, const char *opt, const char *s, unsigned *buses,
		    unsigned *firmware, unsigned *xen);
/* Put the boots of a boot-test report into a "boot-methods" array (the
 * guest model's): works becomes what the boot showed, basis "measured",
 * predicted the rules' verdict, boot the boot; a contradiction is added to
 * WARNINGS (an array of strings, or NULL).  1 when a boot failed. */
int merge_boot_results(json_object *methods, json_object *boot_report, json_object *warnings);
/* -p (convert, inject-drivers): on a terminal one line updated in place
 * (at most 10 times a second); elsewhere (CI logs) a plain line per phase
 * and per 5 % of the data.  Data phases show allocated data done of the
 * total, rate and ETA; stepped phases (the guest fix) "[k/n] step" with
 * the time so far. */
struct cmd_progress {
	const char *sub;        /* subcommand named in non-tty lines */
	int tty;
	int last_bucket;        /* last 5 % step printed (not a tty) */
	char last_phase[32];
	double start, last_print, copy_start;
	size_t width;           /* of the last tty line, to blank it */
};
void cmd_progress_init(struct cmd_progress *st, const char *sub);
void cmd_progress(void *opaque, const struct scimg_progress *p);
/* after a failure: end an unfinished tty line */
void cmd_progress_end(struct cmd_progress *st);
int cmd_create(int argc, char **argv);
int cmd_measure(int argc, char **argv);
int cmd_map(int argc, char **argv);
int cmd_resize(int argc, char **argv);
int cmd_rebase(int argc, char **argv);

/* cmd/imgutil.c: a size as qemu-img takes it (bytes, or a whole number with
 * a suffix b, k, M, G, T, P, E: powers of 1024); 0 or -EINVAL. */
int parse_size_arg(const char *s, uint64_t *out);
/* Print what each -o key of FORMAT means (-o help); exit status. */
int print_create_option_help(const char *sub, const char *format);

/* The string at key K of the JSON object O ("" when O, the key or its
 * value is missing).  Owned by O. */
const char *jstr(json_object *o, const char *k);
/* Print "scimg SUB: MSG" for the context's error. */
void die_ctx(const char *sub, struct scimg_ctx *ctx);
/* Print an error about usage and a hint to --help; returns EXIT_ERROR. */
int usage_error(const char *sub, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Report the option getopt_long() refused (it returned C: '?' or, with an
 * optstring that starts with ':', ':' for a missing argument) once, with a
 * hint to --help; returns EXIT_ERROR.  main() turns getopt's own messages
 * off (opterr = 0). */
int bad_option(const char *sub, int c, char **argv);
/* -I help: print the reader options of FORMAT, or of every readable format
 * when FORMAT is NULL; returns the exit status. */
int print_reader_options(const char *sub, const char *format);
/* Install SIGINT/SIGTERM/SIGHUP handlers that cancel CTX. */
void install_cancel_handlers(struct scimg_ctx *ctx);
/* --output=ARG (human or json): 1 for json, 0 for human, -1 for anything
 * else (the caller reports it). */
int output_is_json(const char *arg);
/* The last entries of every command's getopt_long table: --help (-h),
 * --version (-V) and the terminator. */
#define LONG_OPTIONS_END \
	{ "help", no_argument, NULL, 'h' }, \
	{ "version", no_argument, NULL, 'V' }, \
	{ NULL, 0, NULL, 0 }
/* "1.5 GiB" */
void human_size(unsigned long long v, char *buf, size_t len);
/* --trust-chain (every command that opens images): long-option value,
 * and the flag cmd_ctx_new() reads. */
#define OPT_TRUST_CHAIN 0x1100
/* --no-backing (convert, measure): long-option value */
#define OPT_NO_BACKING 0x1101
extern int opt_trust_chain;
/* Help text of --trust-chain, for every command's --help. */
#define HELP_TRUST_CHAIN \
	"      --trust-chain    open files the image names outside its directory\n" \
	"                       (absolute names, '..', URLs) and unverifiable\n" \
	"                       parents: only for images you trust\n"

/* New context with the defaults the command line uses (and the flags of
 * the common options). */
struct scimg_ctx *cmd_ctx_new(void);
/* cmd_ctx_new() for a command that opens images: with NOBACKING
 * (--no-backing) the files an image names are refused; SIGINT, SIGTERM
 * and SIGHUP cancel it (install_cancel_handlers()). */
struct scimg_ctx *cmd_ctx_new_cancel(int nobacking);
void print_version(void);

/* --http-* options, shared by every command that opens images: add
 * HTTP_LONG_OPTIONS to the getopt_long table, pass each option code
 * >= HTTP_OPT_BASE to http_option() (0, or EXIT_ERROR after printing a
 * usage error), and print HTTP_OPTIONS_HELP in --help.  cmd_ctx_new()
 * applies them to the context. */
#define HTTP_OPT_BASE 0x4800
#define HTTP_LONG_OPTIONS \
	{ "http-connect-timeout", required_argument, NULL, HTTP_OPT_BASE + 0 }, \
	{ "http-low-speed-limit", required_argument, NULL, HTTP_OPT_BASE + 1 }, \
	{ "http-low-speed-time", required_argument, NULL, HTTP_OPT_BASE + 2 }, \
	{ "http-request-timeout", required_argument, NULL, HTTP_OPT_BASE + 3 }, \
	{ "http-timeout", required_argument, NULL, HTTP_OPT_BASE + 4 }, \
	{ "http-retries", required_argument, NULL, HTTP_OPT_BASE + 5 }, \
	{ "http-max-redirects", required_argument, NULL, HTTP_OPT_BASE + 6 }
#define HTTP_OPT_LAST (HTTP_OPT_BASE + 6)
#define HTTP_OPTIONS_HELP \
	"HTTP inputs (every wait is bounded; 0 means no limit):\n" \
	"      --http-connect-timeout=S  connecting and the first byte of each\n" \
	"                       answer (default 10)\n" \
	"      --http-low-speed-limit=BYTES  abort an answer slower than BYTES/s\n" \
	"      --http-low-speed-time=S  ... over S seconds (default 1024 over 30)\n" \
	"      --http-request-timeout=S  each read, with its retries (default 120)\n" \
	"      --http-timeout=S     all HTTP requests of the command (default none)\n" \
	"      --http-retries=N     retries of 5xx, 408, 429, resets (default 5)\n" \
	"      --http-max-redirects=N  redirects per request, http(s) only (default 5)\n"
int http_option(const char *sub, int code, const char *arg);

#endif
