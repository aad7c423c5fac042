/* package.h - internals of the Supercloud image (SCI) package
 * (docs/sci-format.md): tar layout, descriptor, digests, signatures.
 *
 * Nothing here is installed.  Every function returns 0 or -errno with the
 * error recorded on the context (scimg_int_err), unless it says otherwise.
 * The descriptor is handled as a json-c object (the "descriptor model",
 * below), which is also what `scimg info` shows for an SCI.
 */
#ifndef SCIMG_PACKAGE_H
#define SCIMG_PACKAGE_H

#include <archive.h>
#include <stdint.h>
#include <time.h>

#include "scimg-int.h"

#define SCI_SCHEMA_VERSION 1
#define SCI_NS "urn:scimg:supercloud:1"
#define SCI_DESCRIPTOR "supercloud.xml"
#define SCI_SIGNATURE "supercloud.sig"
#define SCI_XLCFG "xl.cfg"
#define SCI_MAX_DISKS 16
/* A descriptor, an xl.cfg or a signature larger than this is refused. */
#define SCI_MAX_SMALL_MEMBER (4u << 20)
/* More members than this is not an SCI (v1 has at most 16 + 3). */
#define SCI_MAX_MEMBERS 64

/* ---- digests -------------------------------------------------------- */

/* 64 lower-case hex digits and a NUL. */
typedef char scimg_sha256_hex[65];

void scimg_int_sha256_hex(const uint8_t md[32], scimg_sha256_hex out);
int scimg_int_sha256_buf(struct scimg_ctx *ctx, const void *buf, size_t len,
			 scimg_sha256_hex out);
/* SHA-256 of [OFF, OFF+LEN) of SRC. */
int scimg_int_sha256_source(struct scimg_source *src, uint64_t off,
			    uint64_t len, scimg_sha256_hex out);
/* SHA-256 of the guest-visible content of IMG (all of its virtual size;
 * holes and zero extents hashed as zeros without reading them). */
int scimg_int_sha256_image(struct scimg_image *img, scimg_sha256_hex out);

/* The same passes in a thread of their own (in the calling thread when no
 * thread can be created): started here, the source or image is read by
 * that thread only until scimg_int_sha256_wait() or _abort() returns, and
 * stays the caller's to close after.  Cancelling the context ends the pass
 * too.  Errors of the pass are recorded on the context by _wait() only. */
struct scimg_sha256_job;
int scimg_int_sha256_source_start(struct scimg_source *src, uint64_t off, uint64_t len,
				  struct scimg_sha256_job **job);
int scimg_int_sha256_image_start(struct scimg_image *img, struct scimg_sha256_job **job);
/* Wait for JOB's end and free it: 0 and OUT, or the pass's -errno. */
int scimg_int_sha256_wait(struct scimg_sha256_job *job, scimg_sha256_hex out);
/* End JOB early (at its next chunk), wait for its thread and free it;
 * nothing is recorded on the context.  JOB may be NULL. */
void scimg_int_sha256_abort(struct scimg_sha256_job *job);

/* ---- tar (lib/package/tar.c) ---------------------------------------- */

struct sci_member {
	char *name;
	uint64_t offset; /* of the data, from the start of the file */
	uint64_t size;
};

/* Feeding libarchive from a byte source: set SRC, BUF (BLOCK bytes) and
 * WHAT (named in read errors), POS = 0, then pass the struct as callback
 * data with scimg_int_arc_feed_read (and scimg_int_arc_feed_skip for an
 * uncompressed archive).  ERR keeps the first read error, already recorded
 * on the source's context; POS counts the bytes handed over. */
struct scimg_arc_feed {
	struct scimg_source *src;
	uint8_t *buf;
	size_t block;
	const char *what;
	uint64_t pos;
	int err;
};
la_ssize_t scimg_int_arc_feed_read(struct archive *a, void *opaque, const void **out);
la_int64_t scimg_int_arc_feed_skip(struct archive *a, void *opaque, la_int64_t req);

struct sci_tar {
	struct sci_member *m;
	size_t n;
};

/* List the members of the tar file SRC through libarchive.  Refuses (and
 * names) a member with an absolute name or a ".." component, a link, a
 * device, a directory, a FIFO, a sparse member, more than SCI_MAX_MEMBERS
 * members, data not 512-byte aligned or past the end of the file. */
int scimg_int_tar_list(struct scimg_source *src, struct sci_tar *out);
void scimg_int_tar_free(struct sci_tar *t);
const struct sci_member *scimg_int_tar_find(const struct sci_tar *t,
					    const char *name);

/* Check the SCI v1 member list: names, order, no duplicates or unknown
 * members.  WHAT names the file in messages. */
int scimg_int_sci_layout(struct scimg_ctx *ctx, const char *what,
			 const struct sci_tar *t);

struct sci_tar_writer;
/* Write a tar on FD (an empty file; PATH for messages).  Members get mode
 * 0644, owner root and MTIME. */
int scimg_int_tar_writer_new(struct scimg_ctx *ctx, int fd, const char *path,
			     time_t mtime, struct sci_tar_writer **out);
int scimg_int_tar_add_buffer(struct sci_tar_writer *w, const char *name,
			     const void *data, size_t len);
/* The same, and *DATA_OFF gets the offset of the member's data in the
 * file: a caller may write LEN other bytes there after
 * scimg_int_tar_writer_close() (the tar headers do not cover the data). */
int scimg_int_tar_add_buffer_at(struct sci_tar_writer *w, const char *name,
				const void *data, size_t len, uint64_t *data_off);
/* Copy the file at FILE_PATH in as NAME; *SIZE and SHA (may be NULL) get its
 * size and SHA-256. */
int scimg_int_tar_add_file(struct sci_tar_writer *w, const char *name,
			   const char *file_path, uint64_t *size,
			   scimg_sha256_hex sha);
/* Write the end of the archive and free W (also on failure). */
int scimg_int_tar_writer_close(struct sci_tar_writer *w);
/* Free W without completing the archive. */
void scimg_int_tar_writer_abort(struct sci_tar_writer *w);

/* ---- ustar headers (lib/package/tar.c) --------------------------------
 * For the writers that place tar members themselves (ami, ova, gce-tar:
 * a header written at a fixed offset after the data, or inside a gzip
 * stream) and the probes that look at one header before libarchive
 * reads the archive (sci, ova, gce-tar, check).  One place for the field
 * layout: name 0, mode 100, uid 108, gid 116, size 124, mtime 136,
 * checksum 148, type 156, magic 257, version 263, uname 265, gname 297. */
#define USTAR_BLOCK 512
/* A numeric field of LEN bytes: octal digits and a NUL when V fits, else
 * base-256 (first byte 0x80, big-endian), as GNU tar and libarchive read. */
void scimg_int_ustar_num(uint8_t *f, size_t len, uint64_t v);
/* A header of a member NAME (at most 99 bytes kept) of TYPE ('0' file,
 * 'x' pax extended header, 'S' GNU sparse ...), SIZE bytes, MTIME, mode
 * 0644, owner root:root; POSIX magic "ustar\0" "00", or with OLDGNU the
 * old GNU magic "ustar  \0" (GNU's sparse members).  The checksum is
 * filled in; a caller that adds fields after this calls
 * scimg_int_ustar_checksum() again. */
void scimg_int_ustar_header(uint8_t h[USTAR_BLOCK], const char *name, char type,
			    uint64_t size, uint64_t mtime, int oldgnu);
void scimg_int_ustar_checksum(uint8_t h[USTAR_BLOCK]);
/* The magic "ustar" (POSIX or old GNU) at 257, nothing else checked (a
 * damaged header may still be recognised, as check does). */
int scimg_int_ustar_magic(const uint8_t h[USTAR_BLOCK]);
/* The magic and a checksum that matches (unsigned, or the signed sum old
 * tars wrote). */
int scimg_int_ustar_ok(const uint8_t h[USTAR_BLOCK]);
/* The size field (octal, or base-256); UINT64_MAX when it is neither. */
uint64_t scimg_int_ustar_size(const uint8_t h[USTAR_BLOCK]);
/* A pax extended header (two blocks: header 'x' named PaxHeaders/NAME and
 * the record "LEN size=SIZE\n") for a member larger than the octal size
 * field holds (8 GiB); the member's own header follows it. */
void scimg_int_ustar_pax_size(uint8_t out[2 * USTAR_BLOCK], const char *name, uint64_t size,
			      uint64_t mtime);

/* ---- descriptor (lib/package/descriptor.c) -------------------------- */

/* The descriptor model, a json-c object:
 *   schema-version: 1
 *   name, created: strings
 *   creator: { name, version }
 *   source: { format, subformat?, size, sha256, origin }
 *   guest: { inspected: bool, os?, distro?, version?, arch?, product?,
 *            root?, initramfs-tool?, bootloader?,
 *            kernels: [ { version, default: bool, path?, initrd?,
 *                         compression?, drivers: { NAME: WHERE, ... } } ] }
 *   boot: { methods: [ { name, loader? } ], cmdline? }
 *   disks: [ { index, member, format, virtual-size, member-size,
 *              member-sha256, content-sha256 } ]
 *   files: [ { member, size, sha256 } ]
 *   changes: [ { kind, path?, text } ]
 */

/* Serialise the model into XML (*xml malloc'ed, caller frees), validated
 * against the schema before it is returned. */
int scimg_int_desc_write(struct scimg_ctx *ctx, json_object *desc,
			 char **xml, size_t *len);

enum {
	SCI_DESC_ERR_XML = 1,    /* not well-formed, DTD, too large */
	SCI_DESC_ERR_SCHEMA = 2, /* well-formed but not valid */
};
/* Parse and validate descriptor XML (WHAT names it in messages) into a new
 * model *OUT.  On failure *KIND (may be NULL) says which step failed. */
int scimg_int_desc_parse(struct scimg_ctx *ctx, const char *what,
			 const void *xml, size_t len, json_object **out,
			 int *kind);

/* ---- signatures (lib/package/sign.c) -------------------------------- */

/* Sign DATA: a detached DER CMS SignedData, SHA-256, with the signer
 * certificate.  *SIG malloc'ed. */
int scimg_int_sign(struct scimg_ctx *ctx, const void *data, size_t len,
		   const char *key_path, const char *cert_path, uint8_t **sig,
		   size_t *siglen);

enum sci_sig_result {
	SCI_SIG_OK = 0,        /* verified, signer chains to TRUST */
	SCI_SIG_BAD = 1,       /* not a valid signature of the data */
	SCI_SIG_UNTRUSTED = 2, /* valid signature, signer not trusted */
	SCI_SIG_UNCHECKED = 3, /* valid signature, no trust anchor given */
};
/* Verify SIG over DATA.  TRUST_PATH: PEM file of trusted certificates, or
 * NULL (then only the signature itself is checked).  Returns a
 * sci_sig_result >= 0, the reason in *WHY (malloc'ed, may be NULL), and the
 * signer's subject in *SIGNER (malloc'ed, may be NULL); < 0 when TRUST_PATH
 * cannot be loaded. */
int scimg_int_verify(struct scimg_ctx *ctx, const void *data, size_t len,
		     const void *sig, size_t siglen, const char *trust_path,
		     char **why, char **signer);

/* ---- members ------------------------------------------------------ */

/* Read a whole small member (<= SCI_MAX_SMALL_MEMBER) into *BUF
 * (malloc'ed, NUL-terminated). */
int scimg_int_member_read(struct scimg_source *src, const struct sci_member *m,
			  char **buf);

#endif /* SCIMG_PACKAGE_H */
