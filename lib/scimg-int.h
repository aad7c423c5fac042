/* scimg-int.h - internal interfaces shared by the files of libscimg.
 *
 * Nothing here is installed.  Names are scimg_int_* or struct members.
 */
#ifndef SCIMG_INT_H
#define SCIMG_INT_H

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "scimg.h"

#define SCIMG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define SCIMG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define SCIMG_STATIC_ASSERT(c, m) _Static_assert(c, m)

/* Largest number of images in a backing chain (qemu allows ~ 1000s; real
 * chains are short, and each level costs memory). */
#define SCIMG_MAX_CHAIN_DEPTH 64
/* Largest virtual size any format may declare: 2^63-1 rounded down to 1 PiB
 * multiples is far beyond real use; we cap at 64 PiB (qcow2's own limit
 * with 2 MiB clusters is far below that). */
#define SCIMG_MAX_VIRTUAL_SIZE (UINT64_C(1) << 56)

/* ---- context ---------------------------------------------------------- */

struct scimg_int_http_pin;
struct scimg_int_http_tail;

struct scimg_ctx {
	int errcode;
	char errmsg[1024];
	unsigned flags;
	volatile sig_atomic_t cancelled;
	/* lib/source/http.c: limits (size 0: the defaults), the start of the
	 * total budget (CLOCK_MONOTONIC ms, 0: not started) and the address
	 * class each host name was first connected to */
	struct scimg_http_limits http_limits;
	int64_t http_t0_ms;
	struct scimg_int_http_pin *http_pins; /* under a lock of http.c */
	struct scimg_int_http_tail *http_tails; /* the same lock */
};

/* Record an error on CTX and return ERR (a negative errno).  The message
 * names the file, the field/offset and what was expected.  Later errors
 * replace earlier ones unless the earlier one is kept by
 * scimg_int_err_prefix(). */
int scimg_int_err(struct scimg_ctx *ctx, int err, const char *fmt, ...)
	SCIMG_PRINTF(3, 4);
/* Put "PREFIX: " in front of the message recorded on CTX (used when a
 * child image fails: "'a.qcow2': backing file: 'b.qcow2': ..."). */
/* Copy a caller's option struct SRC (which starts with "size_t size") into
 * DST (DST_SIZE bytes, the library's own struct): the fields within the
 * caller's size, the rest zeroed; DST's size becomes DST_SIZE.  -EINVAL
 * (message naming WHAT) when SRC's size is smaller than a size_t. */
int scimg_int_opts_struct_copy(struct scimg_ctx *ctx, void *dst, size_t dst_size,
			       const void *src, const char *what);
void scimg_int_err_prefix(struct scimg_ctx *ctx, const char *fmt, ...)
	SCIMG_PRINTF(2, 3);
/* Send errors recorded by the calling thread to BUF instead of the context
 * (NULL: back to the context).  The convert engine's workers use it so that
 * the error reported is the one at the earliest failing offset. */
void scimg_int_err_redirect(char *buf, size_t len);
/* Length of the valid UTF-8 sequence at P (at most N bytes), 0 if none. */
size_t scimg_int_utf8_len(const unsigned char *p, size_t n);
/* Copy IN to OUT (OUTLEN bytes, NUL-terminated, cut at a character
 * boundary) with control characters and bytes that are not UTF-8 written as
 * "\\xNN"; returns the length written.  Every recorded message goes through
 * it; JSON strings built from names in images too. */
size_t scimg_int_escape_text(char *out, size_t outlen, const char *in);
/* Record a ready-made message. */
void scimg_int_err_set(struct scimg_ctx *ctx, int err, const char *msg);
/* -ECANCELED with a message when scimg_ctx_cancel() was called. */
int scimg_int_check_cancel(struct scimg_ctx *ctx);

/* ---- byte sources ----------------------------------------------------- */

struct scimg_source;

struct scimg_source_ops {
	const char *name; /* "file", "http" */
	/* Read exactly LEN bytes at OFF; 0 or -errno (error recorded). */
	int (*pread)(struct scimg_source *src, void *buf, size_t len,
		     uint64_t off);
	/* Optional: describe allocation of the source's bytes at OFF (DATA or
	 * HOLE), at most LEN long, as lseek(SEEK_DATA/SEEK_HOLE) does. */
	int (*block_status)(struct scimg_source *src, uint64_t off,
			    uint64_t len, struct scimg_extent *ext);
	void (*close)(struct scimg_source *src);
	/* pread and block_status may run on several threads at once. */
	int thread_safe;
};

struct scimg_source {
	const struct scimg_source_ops *ops;
	struct scimg_ctx *ctx;
	char *name;   /* as given by the user, for messages */
	char *dir;    /* directory that relative names inside it resolve to */
	char *rel;    /* local files of a confined chain: the path relative to
		       * the chain's root directory (NULL otherwise) */
	uint64_t size;
	dev_t dev;    /* identity, to refuse loops (0/0 for remote) */
	ino_t ino;
	void *priv;
};

/* Open NAME read-only: a local path, or an http:// or https:// URL (read
 * with Range requests through lib/source/http.c).  *out owned by the
 * caller. */
int scimg_int_source_open(struct scimg_ctx *ctx, const char *name,
			  struct scimg_source **out);
/* A local file source on FD (already open for reading; owned by the new
 * source, closed on failure), NAME for messages, ST its fstat. */
int scimg_int_source_from_fd(struct scimg_ctx *ctx, int fd, const char *name,
			     const struct stat *st, struct scimg_source **out);
/* "a FIFO", "a character device", ... for messages. */
const char *scimg_int_file_type_name(mode_t m);
/* Open the file behind the O_PATH descriptor PATHFD for reading (never
 * blocking) and check it is still ST.  A new descriptor or -errno. */
int scimg_int_fd_reopen(int pathfd, const struct stat *st);
/* "scheme://host:port" of URL, lower-case (caller frees). */
int scimg_int_url_origin(struct scimg_ctx *ctx, const char *url, char **out);

/* 1 when NAME is an http:// or https:// URL. */
int scimg_int_name_is_url(const char *name);

/* An output sink (lib/source/sink.c): where a writer's bytes go, the
 * counterpart of the byte source a reader reads.  Three kinds:
 * - a file: FD a regular file or block device (ISBLK), BASE 0 (the
 *   output image's file, image-write.c's img->file; a companion file);
 * - an offset window inside another sink (MEMBER): the same FD, the
 *   writer's offset 0 at BASE (a container's member: ova gives the vmdk
 *   writer the window of its disk member, scimg_int_sink_window());
 * - a directory (ISDIR): FD an O_DIRECTORY descriptor the writer makes its
 *   files in with scimg_int_sink_dir_create() (SCIMG_FMT_OUTPUT_DIR: the
 *   ami bundle).
 * PATH names the real file or directory in messages; NAME (NULL: the last
 * component of PATH, see scimg_int_sink_name()) is the file name the
 * written content will have, for the formats that write their own name
 * (a VMDK descriptor's extent line).  Both borrowed.
 * A file sink owns the files made beside it (FILES, in the order they
 * were made; scimg_int_sink_add_file()): companion output files such as a
 * monolithicFlat VMDK's extent, each a file sink of its own, committed
 * (renamed into place) or removed with the sink's output.  INPLACE: the
 * file is an existing target written in place (no files beside it). */
struct scimg_sink_file;
struct scimg_sink {
	int fd;
	int isblk;
	int isdir;
	int member;
	int inplace;
	uint64_t base;
	const char *path;
	const char *name;
	struct scimg_sink_file *files;
};
void scimg_int_sink_file(struct scimg_sink *s, int fd, const char *path, int isblk, int isdir);
/* WIN: the window of OUTER that starts at BASE (relative to OUTER's own
 * window), its content called NAME (borrowed; NULL: OUTER's file name). */
void scimg_int_sink_window(struct scimg_sink *win, const struct scimg_sink *outer,
			   uint64_t base, const char *name);
const char *scimg_int_sink_name(const struct scimg_sink *s);
/* *START: where [OFF, OFF+LEN) of the window lies in the file; -EFBIG
 * (message) when it overflows. */
int scimg_int_sink_span(struct scimg_ctx *ctx, const struct scimg_sink *s,
			uint64_t off, uint64_t len, uint64_t *start);
/* Write, set the file's length to the window's BASE + SIZE, make a range
 * read as zeros (BLKZEROOUT, a punched hole, or written zeros); offsets
 * are the window's.  0 or -errno with the message set. */
int scimg_int_sink_pwrite(struct scimg_ctx *ctx, const struct scimg_sink *s,
			  const void *buf, size_t len, uint64_t off);
int scimg_int_sink_truncate(struct scimg_ctx *ctx, const struct scimg_sink *s,
			    uint64_t size);
int scimg_int_sink_zero(struct scimg_ctx *ctx, const struct scimg_sink *s,
			uint64_t off, uint64_t len);
/* Create the file NAME (a plain file name: no '/', not S's own name, not
 * made before) beside the file sink S, in S's directory, as a file of S:
 * *OUT (owned by S) is its sink, written under a hidden temporary name.
 * Refused when S is written in place, a directory or a container member,
 * and when an existing NAME is not a regular file or is GUARD's file or a
 * file of its chain (GUARD may be NULL).  0 or -errno with the message. */
int scimg_int_sink_add_file(struct scimg_ctx *ctx, struct scimg_sink *s,
			    const char *name, const struct scimg_image *guard,
			    struct scimg_sink **out);
/* Create the new file NAME (a plain name: not empty, no '/', not "." or
 * "..") inside the directory sink S: O_EXCL, no symbolic link followed,
 * mode 0666 less the umask, open for writing; *FD_OUT (-1 on failure) is
 * the caller's to close.  WHAT names the file in the message of a failed
 * create ("part": "could not create part 'NAME'"; NULL: "could not create
 * 'NAME'").  Refused (-ENOTSUP) unless S is a directory.  0 or -errno
 * with the message set. */
int scimg_int_sink_dir_create(struct scimg_ctx *ctx, const struct scimg_sink *s,
			      const char *name, const char *what, int *fd_out);
/* Rename the file FROM inside the directory sink S to TO (plain names as
 * above; an existing TO is replaced).  0 or -errno with the message. */
int scimg_int_sink_dir_rename(struct scimg_ctx *ctx, const struct scimg_sink *s,
			      const char *from, const char *to);
/* Flush (unless !SYNC) and close the files of S, then rename each into
 * place, in the order they were made.  0 or -errno with the message. */
int scimg_int_sink_files_commit(struct scimg_ctx *ctx, struct scimg_sink *s, int sync);
/* Close and free the files of S; with DISCARD remove them (the temporary
 * names, and the final names of those already renamed). */
void scimg_int_sink_files_release(struct scimg_sink *s, int discard);
/* Start writeback of S's file and its files (sync_file_range
 * SYNC_FILE_RANGE_WRITE; errors ignored). */
void scimg_int_sink_writeback(const struct scimg_sink *s);
/* A fresh hidden name ".BASE.scimg-PID-N" beside PATH into BUF (N bytes). */
void scimg_int_sink_temp_name(char *buf, size_t n, const char *path);
/* Create a file with a fresh hidden name beside PATH (O_EXCL): *TMP_OUT
 * (caller frees) and *FD_OUT.  0 or -errno with the message. */
int scimg_int_sink_temp(struct scimg_ctx *ctx, const char *path, char **tmp_out,
			int *fd_out);
struct stat;
/* Fail (-EPERM, message) when the file PATH (ST) is GUARD's file or a file
 * of its chain: an output never replaces it.  GUARD may be NULL. */
int scimg_int_sink_check_not_input(struct scimg_ctx *ctx, const struct scimg_image *guard,
				   const char *path, const struct stat *st);
struct sockaddr;
/* Classes of network addresses (lib/source/http.c).  After a connection
 * to a public address, an http source connects only to public addresses
 * (no redirect into loopback, link-local, private networks). */
enum scimg_int_addr_class {
	SCIMG_ADDR_PUBLIC = 0,
	SCIMG_ADDR_LOOPBACK,    /* 127/8, ::1 */
	SCIMG_ADDR_LINKLOCAL,   /* 169.254/16, fe80::/10 */
	SCIMG_ADDR_PRIVATE,     /* 10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7, fec0::/10 */
	SCIMG_ADDR_UNSPECIFIED, /* 0/8, :: */
	SCIMG_ADDR_RESERVED,    /* multicast, 240/4, broadcast, other special ranges */
};
/* Class of SA (AF_INET or AF_INET6; IPv4-mapped, -compatible, 6to4 and
 * NAT64 addresses by the IPv4 address inside); -1 for other families. */
int scimg_int_addr_class(const struct sockaddr *sa);
const char *scimg_int_addr_class_name(int cls);
/* Free what the http sources recorded on CTX (scimg_ctx_free). */
void scimg_int_http_ctx_release(struct scimg_ctx *ctx);
/* Open an http(s) URL (lib/source/http.c). */
int scimg_int_http_source_open(struct scimg_ctx *ctx, const char *url,
			       struct scimg_source **out);
/* Whether A and B are the same file (same inode, or the same URL). */
bool scimg_int_source_same(const struct scimg_source *a,
			   const struct scimg_source *b);
/* Read exactly LEN bytes at OFF.  A read past the end of the source is an
 * error naming WHAT (e.g. "L2 table") and the offset. */
int scimg_int_source_read(struct scimg_source *src, void *buf, size_t len,
			  uint64_t off, const char *what);
void scimg_int_source_close(struct scimg_source *src);
/* A read-only window [OFF, OFF+LEN) of PARENT as a source of its own
 * (lib/source/window.c), e.g. a member of a tar file used in place.  PARENT
 * must outlive the window; names inside resolve to PARENT's directory.
 * NAME names it in messages ("x.sci:disk0.qcow2"). */
int scimg_int_source_window(struct scimg_source *parent, uint64_t off,
			    uint64_t len, const char *name,
			    struct scimg_source **out);

/* Free a NULL-terminated array of malloc'd strings (libguestfs returns
 * them) and the array; NULL is fine (lib/appliance.c). */
void scimg_int_strv_free(char **v);

/* ---- temporary files (lib/tmp.c: the one way they are made) ------------- */

/* The directory part of PATH ("." when none; "/" for "/x"), malloc'd. */
char *scimg_int_dirname(const char *path);
/* A hidden ".BASE.scimg-TAG-XXXXXX" file (*FD, O_CLOEXEC; closed when FD is
 * NULL) or, with DIRECTORY, directory in PATH's directory; *NAME malloc'd. */
int scimg_int_tmp_beside(struct scimg_ctx *ctx, const char *path, const char *tag,
			 int directory, char **name, int *fd);
/* An anonymous scratch file in DIR (O_TMPFILE, else named and unlinked at
 * once): nothing is left behind.  WHAT starts the message. */
int scimg_int_tmp_scratch(struct scimg_ctx *ctx, const char *dir, const char *what, int *fd);
/* A private (0700) directory "scimg-TAG-XXXXXX" in BASE, or (BASE NULL)
 * under $TMPDIR, or DEFDIR when that is unset; *NAME malloc'd. */
int scimg_int_tmp_dir(struct scimg_ctx *ctx, const char *tag, const char *base,
		      const char *defdir, char **name);

/* ---- options (-o key=value,...) --------------------------------------- */

struct scimg_kv {
	char *key;
	char *val;
};

struct scimg_opts {
	struct scimg_kv *kv;
	size_t n;
};

/* Parse "a=b,c=d" (",," escapes a comma).  Keys not in ALLOWED (NULL
 * terminated) are refused, naming the key and listing the allowed ones. */
int scimg_int_opts_parse(struct scimg_ctx *ctx, const char *s,
			 const char *const *allowed, const char *fmtname,
			 struct scimg_opts *out);
void scimg_int_opts_free(struct scimg_opts *o);
const char *scimg_int_opts_get(const struct scimg_opts *o, const char *key);
/* Parse a size with optional suffix k/K, M, G, T (powers of 1024) or
 * plain bytes.  -EINVAL on garbage or overflow. */
int scimg_int_parse_size(const char *s, uint64_t *out);

/* ---- operations ------------------------------------------------------- */

/* scimg_convert() for dst_format "sci" (lib/sci-build.c; see scimg.h). */
struct scimg_convert_opts;
int scimg_int_sci_convert(struct scimg_ctx *ctx,
			  const struct scimg_convert_opts *o);

/* ---- formats ---------------------------------------------------------- */

/* The driver contract (struct scimg_format, probes, SCIMG_FMT_* flags):
 * lib/formats/driver.h. */
#include "formats/driver.h"

/* Bytes of SRC's data runs (not zero), each counted from the start of its
 * first UNIT-sized block to the end of its last (lib/measure.c): UNIT
 * times the number of blocks holding data. */
int scimg_int_measure_data(struct scimg_image *src, uint64_t unit, uint64_t *out);

/* What every image of one chain shares (the image the user named and every
 * file it names, directly or through other images): created by the top
 * image's open, freed by its close; children hold a borrowed pointer. */
struct scimg_file_id {
	dev_t dev;
	ino_t ino;
};
struct scimg_chain {
	/* identity of every local file opened for the chain: the top image's
	 * own file, backing files, parents, data files, extents, parts */
	struct scimg_file_id *ids;
	size_t nids, capids;
	/* where the files the chain names may be (lib/source/ref.c): a local
	 * top image's directory (ROOT as given, ROOT_FD an O_PATH descriptor
	 * of it, -1 otherwise) or a remote one's ORIGIN ("http://host:80") */
	char *root;
	int root_fd;
	char *origin;
	/* SCIMG_CTX_HEADER_ONLY: files the chain names that were not opened
	 * (refused or missing), one message each */
	char **unopened;
	size_t nunopened;
};

struct scimg_image {
	struct scimg_ctx *ctx;
	const struct scimg_format *fmt;
	char *path;               /* as given */
	uint64_t size;            /* virtual size in bytes */
	void *priv;               /* the format's state */
	int raw_fallback;
	int depth;                /* 0 for the top image of a chain */
	const struct scimg_image *parent; /* image that named this one */
	struct scimg_chain *chain; /* shared by the images of one chain */
	int owns_chain;           /* the top image: frees CHAIN */

	/* reader */
	struct scimg_source *src;

	/* writer */
	int writing;
	/* the output (image-write.c): a file, or with SCIMG_FMT_OUTPUT_DIR a
	 * directory; fd -1 when none */
	struct scimg_sink file;
	/* what the format writes through (scimg_int_out_*): &FILE (in the
	 * image a wrapping format gives the format it wraps, FILE is the
	 * window of the wrapper's output: ova's VMDK member) */
	struct scimg_sink *out;
	char *tmp_path;
	unsigned create_flags;
	struct scimg_opts opts;   /* -o for writers, -I for readers */
	/* SCIMG_FMT_OUTPUT_DIR writers */
	int out_inside;           /* tmp_path is inside an existing target dir */
	char *out_last;           /* file moved into place last (format sets it; freed by image.c) */
	/* Companion output files are files of the sink FILE
	 * (scimg_int_out_file()).  A format that wraps another format's
	 * writer (ova around vmdk) gives the wrapped writer an image of its
	 * own, kept in the wrapper's PRIV (see lib/formats/ova.c): a copy of
	 * this one's writer fields whose FILE and OUT are a window of this
	 * FILE and whose PRIV is the wrapped writer's state.  The wrapper
	 * forwards its calls with that image; PRIV is never swapped, as the
	 * compression workers call compress() with the image concurrently. */
	/* How the output reaches PATH (enum scimg_out_mode, image.c). */
	int out_mode;
	int out_existed;          /* PATH existed when the output was created */
	/* the image whose chain the output must never replace (the
	 * conversion's source; borrowed, outlives the writer), or NULL */
	const struct scimg_image *guard;
	/* SCIMG_OUT_INPLACE: the target's size, and the emulated length of the
	 * file written so far (ranges past it that a writer skips or extends
	 * over are zeroed, so the target reads like a new file) */
	uint64_t out_target_size;
	uint64_t out_len;
};

/* How a writer's output reaches its path. */
enum scimg_out_mode {
	/* temporary file with a hidden name beside the target, renamed over it */
	SCIMG_OUT_NAMED = 0,
	/* unnamed O_TMPFILE in the target's directory, linked in when complete
	 * (nothing is left behind whatever kills the process) */
	SCIMG_OUT_TMPFILE,
	/* an existing block device (or, with SCIMG_CREATE_NO_CREATE, a raw
	 * file) written in place: never truncated, renamed or unlinked */
	SCIMG_OUT_INPLACE,
};

/* Registry (lib/registry.c): the built-in formats, then those plugins add. */
const struct scimg_format *scimg_int_format_find(const char *name);
size_t scimg_int_format_count(void);
const struct scimg_format *scimg_int_format_at(size_t i);
/* Built-in formats only (no plugin loading). */
const struct scimg_format *scimg_int_builtin_format_find(const char *name);

/* Plugins (lib/plugin.c).  Loaded once per process, on first use, from
 * $SCIMG_PLUGIN_PATH and SCIMG_PLUGIN_DIR. */
struct scimg_plugin;
struct scimg_plugin_format;
struct scimg_plugin_profile;
void scimg_int_plugins_load(void);
/* Register a plugin linked into the program (fuzzers, tests); PATH is what
 * `scimg plugins` shows.  Returns 0 or -errno (the reason is listed). */
int scimg_int_plugin_register(const struct scimg_plugin *p, const char *path);
size_t scimg_int_plugin_format_count(void);
const struct scimg_format *scimg_int_plugin_format_at(size_t i);
int scimg_int_plugin_probe(const struct scimg_format *f,
			   const struct scimg_probe *p);
/* Provider profiles plugins add (zero-extended to the current struct), with
 * the name of the plugin that added each. */
size_t scimg_int_profile_count(void);
const struct scimg_plugin_profile *scimg_int_profile_at(size_t i,
							const char **plugin);
const struct scimg_plugin_profile *scimg_int_profile_find(const char *name,
							  const char **plugin);
/* "unknown format 'x'", with a hint when plugins failed to load. */
int scimg_int_err_unknown_format(struct scimg_ctx *ctx, const char *name);
/* Apply provider profile NAME to a conversion: the output format (checked
 * against *FORMAT when the user gave one), the options (profile defaults,
 * then USER_OPTS; *OPTS_OUT is allocated, caller frees) and the output size
 * (rounded up; refused beyond the provider's maximum). */
int scimg_int_profile_apply(struct scimg_ctx *ctx, const char *name,
			    const char **format, const char *user_opts,
			    char **opts_out, uint64_t *size);

/* Open another image named by PARENT (backing file, parent disk, extent
 * owner): NAME is resolved relative to the parent's directory unless
 * absolute.  FORMAT may be NULL only when PROBE_OK (e.g. a qcow2 backing file
 * with no format extension is probed, but never guessed as raw).  Checks
 * SCIMG_CTX_ALLOW_BACKING, the chain depth and loops. */
int scimg_int_open_child(struct scimg_image *parent, const char *name,
			 const char *format, int probe_ok,
			 struct scimg_image **out);
/* Open SRC (a window on PARENT's file, see scimg_int_source_window) as an
 * image in FORMAT (required: a member is never probed).  SRC is owned by the
 * new image, and closed on failure.  The member may not refer to other
 * files (backing files are refused).  NAME is used in messages. */
int scimg_int_open_member(struct scimg_image *parent, struct scimg_source *src,
			  const char *name, const char *format,
			  struct scimg_image **out);
/* Open the OFFSET/SIZE byte range of PARENT's file (a tar member called
 * MEMBER) as an image in FORMAT, through scimg_int_open_member; the image
 * is named "PARENT-PATH:MEMBER" in messages. */
int scimg_int_open_tar_member(struct scimg_image *parent, uint64_t offset,
			      uint64_t size, const char *member,
			      const char *format, struct scimg_image **out);
/* Resolve NAME (a file name inside a remote image, percent-encoded here)
 * against the URL directory DIR with libcurl's URL parser (caller frees). */
int scimg_int_url_resolve(struct scimg_ctx *ctx, const char *dir, const char *name,
			  char **out);

/* Open the file NAME that PARENT refers to (backing file, parent, data
 * file, extent, part), confined as lib/source/ref.c says, and record it in
 * the chain.  The message on failure does not repeat NAME (callers prefix
 * it: "'a.qcow2': backing file 'b': refused: ..."). */
int scimg_int_ref_open(struct scimg_image *parent, const char *name,
		       struct scimg_source **out);
/* Set the chain's root from its top image's source (lib/source/ref.c). */
int scimg_int_chain_set_root(struct scimg_ctx *ctx, struct scimg_chain *c,
			     const struct scimg_source *top);
/* Under SCIMG_CTX_HEADER_ONLY, after a file IMG refers to could not be
 * opened (ERR < 0, message on the context): remember the message, clear
 * the error and return 1 so the format carries on without the file (reads
 * of the image then fail).  Otherwise return ERR. */
int scimg_int_ref_unopened(struct scimg_image *img, int err);

/* Record SRC (a local file opened for IMG's chain: data file, extent,
 * part) in the chain's identities.  Remote sources are ignored.  Images
 * opened through image.c are recorded by it.  0 or -ENOMEM. */
int scimg_int_chain_note(struct scimg_image *img, const struct scimg_source *src);
/* Whether the file DEV/INO is one the image IMG (reader) or any file of its
 * chain was read from: the output must never replace it. */
bool scimg_int_image_uses_file(const struct scimg_image *img, dev_t dev, ino_t ino);

/* Writers: write through img->out (the output file, or for a wrapped
 * writer the window of the wrapper's output; see struct scimg_image). */
int scimg_int_out_pwrite(struct scimg_image *img, const void *buf, size_t len,
			 uint64_t off);
int scimg_int_out_truncate(struct scimg_image *img, uint64_t size);
/* Start writeback of what was written so far to the output file and its
 * companions (sync_file_range SYNC_FILE_RANGE_WRITE: asynchronous, no
 * wait), so that the fdatasync() before the rename has little left to do.
 * Advisory: errors are ignored (finish reports them). */
void scimg_int_out_writeback(struct scimg_image *img);
/* Create companion output file NAME (a plain file name, no '/') beside
 * the output: a file of the sink img->file (scimg_int_sink_add_file(),
 * guarded by img->guard).  The format writes it through *OUT with
 * scimg_int_sink_pwrite()/_truncate(); image-write.c renames it into
 * place just before the main file, or removes it with the main file. */
int scimg_int_out_file(struct scimg_image *img, const char *name,
		       struct scimg_sink **out);
/* Fail (with a message) unless [OFF, OFF+LEN) lies inside IMG's virtual
 * size (image.c; the reader and the writer check every access). */
int scimg_int_check_range(struct scimg_image *img, uint64_t off, uint64_t len);
/* scimg_image_create() that also refuses a target (or companion file)
 * that is GUARD's file or a file of its chain (GUARD may be NULL). */
int scimg_int_image_create(struct scimg_ctx *ctx, const char *path,
			   const char *format, uint64_t size, const char *options,
			   unsigned flags, const struct scimg_image *guard,
			   struct scimg_image **out);
/* SCIMG_OUT_INPLACE writers that manage the target's content themselves
 * (raw): fail unless the target holds at least SIZE bytes past the start
 * of img->out, and take [0, SIZE) as already written (nothing is zeroed
 * behind the writer's back). */
int scimg_int_out_inplace_claim(struct scimg_image *img, uint64_t size);
/* Make [OFF, OFF+LEN) of img->out read as zeros, for
 * in-place targets whose old content shows through; a no-op for new files
 * and with SCIMG_CREATE_TARGET_IS_ZERO. */
int scimg_int_out_zero(struct scimg_image *img, uint64_t off, uint64_t len);

/* The name of a format scimg recognises but cannot read ("Parallels disk
 * image", "gzip-compressed file", ...) or NULL (lib/formats/foreign.c). */
const char *scimg_int_foreign_format(const struct scimg_probe *p);

/* ---- info (lib/info.c) ------------------------------------------------ */

/* A format's info() fills the whole ImageInfo object INFO (qemu-img's keys,
 * see docs/scimg-info.1) that image.c started with filename, format,
 * virtual-size, actual-size, dirty-flag; its own details go under
 * scimg_int_info_details(INFO). */
/* The "scimg" object of INFO (made on first use; NULL on ENOMEM). */
json_object *scimg_int_info_details(json_object *info);
/* Add "format-specific": {"type": TYPE, "data": {}} to INFO; returns data. */
json_object *scimg_int_info_specific(json_object *info, const char *type);
/* Add backing-filename NAME (NULL: nothing), full-backing-filename (FULL,
 * or when NULL NAME joined to IMG's directory as qemu does),
 * backing-filename-format FORMAT (may be NULL) and, when CHILD is open,
 * backing-image (its info, its filename the full name). */
int scimg_int_info_backing(struct scimg_image *img, json_object *info,
			   const char *name, const char *format,
			   struct scimg_image *child, const char *full);
/* Add the allocated size of SRC's local file (an extent, part, data file)
 * to INFO's actual-size, unless it is IMG's own file or remote. */
void scimg_int_info_add_file(struct scimg_image *img, json_object *info,
			     const struct scimg_source *src);
/* NAME (a file an image names) as qemu-img shows it: joined to the
 * directory of IMAGE as given, unless absolute or a URL (caller frees;
 * NULL on ENOMEM). */
char *scimg_int_info_join(const char *image, const char *name);
/* qemu-img's name of format NAME ("vhd" -> "vpc"). */
const char *scimg_int_qemu_format_name(const char *name);
/* Make every string (and key) of O valid UTF-8: each byte that is not part
 * of a valid sequence becomes the four characters \xHH. */
void scimg_int_json_clean(json_object *o);
/* The cleaned copy of S (N bytes; caller frees), or NULL when S is valid
 * UTF-8 already (or on ENOMEM). */
char *scimg_int_json_clean_str(const char *s, size_t n);

/* Describe what the first LEN bytes of a disk hold ("GPT partition table",
 * "ext4 filesystem (no partition table)", ...) into BUF; returns BUF.
 * 128 KiB are enough for every check (lib/content.c). */
const char *scimg_int_detect_content(const uint8_t *head, size_t len,
				     char *buf, size_t buflen);

/* Helpers. */
static inline bool scimg_int_is_zero(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t i;
	/* check the first 16 bytes cheaply, then compare with itself */
	for (i = 0; i < len && i < 16; i++)
		if (p[i])
			return false;
	if (len <= 16)
		return true;
	return __builtin_memcmp(p, p + 16, len - 16) == 0;
}

static inline uint16_t scimg_be16(const void *p)
{
	const uint8_t *b = p;
	return (uint16_t)((b[0] << 8) | b[1]);
}
static inline uint32_t scimg_be32(const void *p)
{
	const uint8_t *b = p;
	return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) |
	       ((uint32_t)b[2] << 8) | b[3];
}
static inline uint64_t scimg_be64(const void *p)
{
	const uint8_t *b = p;
	return ((uint64_t)scimg_be32(b) << 32) | scimg_be32(b + 4);
}
static inline uint16_t scimg_le16(const void *p)
{
	const uint8_t *b = p;
	return (uint16_t)(b[0] | (b[1] << 8));
}
static inline uint32_t scimg_le32(const void *p)
{
	const uint8_t *b = p;
	return b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) |
	       ((uint32_t)b[3] << 24);
}
static inline uint64_t scimg_le64(const void *p)
{
	const uint8_t *b = p;
	return scimg_le32(b) | ((uint64_t)scimg_le32(b + 4) << 32);
}
static inline void scimg_put_be16(void *p, uint16_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}
static inline void scimg_put_be32(void *p, uint32_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)(v >> 24);
	b[1] = (uint8_t)(v >> 16);
	b[2] = (uint8_t)(v >> 8);
	b[3] = (uint8_t)v;
}
static inline void scimg_put_be64(void *p, uint64_t v)
{
	scimg_put_be32(p, (uint32_t)(v >> 32));
	scimg_put_be32((uint8_t *)p + 4, (uint32_t)v);
}
static inline void scimg_put_le16(void *p, uint16_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
}
static inline void scimg_put_le32(void *p, uint32_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
	b[2] = (uint8_t)(v >> 16);
	b[3] = (uint8_t)(v >> 24);
}
static inline void scimg_put_le64(void *p, uint64_t v)
{
	scimg_put_le32(p, (uint32_t)v);
	scimg_put_le32((uint8_t *)p + 4, (uint32_t)(v >> 32));
}

/* a + b without wrap-around; false on overflow. */
static inline bool scimg_add_ok(uint64_t a, uint64_t b, uint64_t *r)
{
	return !__builtin_add_overflow(a, b, r);
}
static inline bool scimg_mul_ok(uint64_t a, uint64_t b, uint64_t *r)
{
	return !__builtin_mul_overflow(a, b, r);
}

#endif /* SCIMG_INT_H */
