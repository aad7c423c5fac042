/* deflate.h - per-thread compressor state shared by the format writers. */
#ifndef SCIMG_FORMATS_DEFLATE_H
#define SCIMG_FORMATS_DEFLATE_H

#include <stddef.h>
#include <libdeflate.h>
#include <zlib.h>

/* The calling thread's libdeflate compressor at LEVEL (1 or 6), made on
 * first use and freed when the thread ends; NULL when out of memory. */
struct libdeflate_compressor *scimg_int_thread_deflater(int level);

/* The calling thread's zlib stream for raw deflate with a 4 KiB window
 * (windowBits -12, memLevel 9: how QEMU writes qcow2 clusters), reset and
 * ready for a new stream; NULL when out of memory. */
z_stream *scimg_int_thread_qcow2_zstream(void);

/* The calling thread's zlib stream for raw deflate with a 32 KiB window
 * at LEVEL (what gzip writes), reset and ready; NULL when out of memory. */
z_stream *scimg_int_thread_gzip_zstream(int level);

/* IN as non-final stored deflate blocks, starting and ending on a byte
 * boundary; OUT needs LEN + 5 * (LEN / 65535 + 1) bytes.  Returns the
 * length written. */
size_t scimg_int_deflate_stored(const void *in, size_t len, void *out);

/* Does IN (LEN bytes) deflate to fewer than LEN bytes at all?  A fast
 * libdeflate level-1 pass: 0 when even that cannot shrink it (random or
 * already compressed data), 1 otherwise, or when it cannot tell. */
int scimg_int_deflate_shrinks(const void *in, size_t len, void *scratch,
			      size_t scratch_len);

#endif
