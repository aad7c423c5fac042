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
/* "1.5 GiB" */
void human_size(unsigned long long v, char *buf, size_t len);
/* New context with the defaults the command line uses. */
struct scimg_ctx *cmd_ctx_new(void);
void print_version(void);

#endif
