/* vhd-common.h - helpers shared by the VHD and VHDX drivers (vhd.c,
 * vhdx*.c): UTF-16 names, Windows paths, parent lookup, GUIDs.
 *
 * Nothing here is exported from the library; names are scimg_int_vhd_*.
 */
#ifndef SCIMG_VHD_COMMON_H
#define SCIMG_VHD_COMMON_H

#include "scimg-int.h"

/* Convert NBYTES of UTF-16 (big-endian when BE, else little-endian) into a
 * new NUL-terminated UTF-8 string (caller frees).  Conversion stops at the
 * first U+0000.  Unpaired surrogates and U+0000..U+001F other than the end
 * are refused: returns NULL with *bad set to the byte offset of the bad
 * unit (or SIZE_MAX when out of memory). */
char *scimg_int_vhd_utf16_to_utf8(const uint8_t *p, size_t nbytes, int be,
				  size_t *bad);

/* Encode UTF-8 S (NUL-terminated) as UTF-16 (BE or LE) into OUT of CAP
 * bytes, without a terminator.  Returns the number of bytes written, or -1
 * when S is not valid UTF-8 or does not fit. */
long scimg_int_vhd_utf8_to_utf16(const char *s, uint8_t *out, size_t cap,
				 int be);

/* The last component of a Windows or POSIX path ("C:\a\b.vhd" -> "b.vhd",
 * "file://localhost/x/y.vhd" -> "y.vhd").  Points into S. */
const char *scimg_int_vhd_basename(const char *s);

/* A candidate name for a parent image, with where it came from (for
 * messages: "W2ru locator", "parent name"...). */
struct scimg_vhd_cand {
	char *name;        /* POSIX path relative to the image's directory or absolute */
	const char *from;  /* static string */
	char *shown;       /* the name as the image stores it (for messages) */
};

struct scimg_vhd_cands {
	struct scimg_vhd_cand c[24];
	size_t n;
	size_t opened; /* set by scimg_int_vhd_open_parent: the one opened */
};

/* Add a Windows path found in the image (relative ".\x.vhd", "..\d\x.vhd",
 * absolute "C:\d\x.vhd", "\\?\Volume{..}\d\x.vhd") or a MacX file URL as
 * candidates: first its basename beside the image, then (for relative
 * paths) the path itself converted to '/' separators, then (for POSIX
 * absolute paths from file URLs) the path itself.  Duplicates are skipped.
 * Returns 0 or -ENOMEM (recorded on CTX). */
int scimg_int_vhd_cand_add(struct scimg_ctx *ctx, struct scimg_vhd_cands *c,
			   const char *stored, const char *from, int is_url);
void scimg_int_vhd_cands_free(struct scimg_vhd_cands *c);

/* Open the first candidate that exists (through scimg_int_open_child, as
 * FORMAT).  When none exists, fail with -ENOENT and a message naming the
 * missing parent (WANTED, e.g. the stored parent name) and every place
 * looked at.  When opening referenced files is not allowed, fail with
 * the message of scimg_int_open_child. */
int scimg_int_vhd_open_parent(struct scimg_image *img,
			      struct scimg_vhd_cands *c,
			      const char *format, const char *wanted,
			      struct scimg_image **out);

/* Fill BUF with LEN random bytes (getrandom, falling back to /dev/urandom). */
int scimg_int_vhd_random(struct scimg_ctx *ctx, void *buf, size_t len);

/* Format 16 bytes as a GUID string into OUT (37 bytes).  MIXED: Microsoft
 * GUID layout (first three fields little-endian) as VHDX stores them;
 * otherwise the bytes in order (VHD unique ids). */
void scimg_int_vhd_guid_str(const uint8_t g[16], int mixed, char out[37]);

/* VHD CHS geometry for SIZE bytes by the algorithm of the VHD
 * specification's appendix (capped at 65535/16/255). */
void scimg_int_vhd_geometry(uint64_t size, uint16_t *cyl, uint8_t *heads,
			    uint8_t *spt);

#endif
