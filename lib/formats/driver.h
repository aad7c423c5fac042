/* driver.h - the format driver contract: what a format (built-in in
 * lib/formats/, or a plugin's, wrapped by lib/plugin.c) gives the rest of
 * libscimg, slot by slot.  Included by scimg-int.h; a format file includes
 * "scimg-int.h" and "formats.h".
 *
 * How a format is used: image.c probes every registered format with the
 * first SCIMG_PROBE_HEAD and last SCIMG_PROBE_TAIL bytes (highest score
 * wins; none: raw), then open() validates every field of the metadata
 * before using it and fills img->size; pread/block_status serve the copy
 * engine (lib/convert.c) and every other reader; close() frees.  Writing:
 * image-write.c makes the (temporary, invisible) output file, calls
 * create(), then pwrite/write_zeroes (in increasing order with
 * SCIMG_FMT_SEQUENTIAL_WRITE) or the compressed triple, then finish(), then
 * links the output in.  Errors: -errno with the message set on img->ctx
 * (scimg_int_err), naming the field and its offset. */
#ifndef SCIMG_FORMAT_DRIVER_H
#define SCIMG_FORMAT_DRIVER_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

struct scimg_ctx;
struct scimg_image;
struct scimg_opts;
struct scimg_extent;
struct scimg_map_extent;
struct scimg_measure;
struct scimg_plugin_format;

struct scimg_probe {
	const char *filename;
	const uint8_t *head;  /* first bytes of the file */
	size_t head_len;      /* up to SCIMG_PROBE_HEAD */
	const uint8_t *tail;  /* last bytes of the file */
	size_t tail_len;      /* up to SCIMG_PROBE_TAIL */
	uint64_t file_size;
};
#define SCIMG_PROBE_HEAD 65536
#define SCIMG_PROBE_TAIL 4096

enum {
	/* Writer accepts writes only in increasing offset order. */
	SCIMG_FMT_SEQUENTIAL_WRITE = 1u << 0,
	/* pread and block_status may be called from several threads at once
	 * (the format locks its own caches); the convert engine then reads and
	 * decompresses on its worker threads. */
	SCIMG_FMT_PARALLEL_READ = 1u << 1, /* used only when the image's byte
					    * source is thread_safe too */
	/* The output is a directory of files, not one file: image.c makes a
	 * temporary directory (img->tmp_path, opened with O_DIRECTORY as the
	 * directory sink img->out) that the writer fills through the sink
	 * (scimg_int_sink_dir_create(), _dir_rename(); a format never opens
	 * files itself); it is renamed
	 * to the target on success and removed with its content on failure.
	 * When the target is an existing non-empty directory, the temporary
	 * directory is made inside it and its files are moved in on success
	 * (img->out_last, if set, is moved last). */
	SCIMG_FMT_OUTPUT_DIR = 1u << 2,
	/* Every unit the writer stores is compressed, with or without
	 * SCIMG_CREATE_COMPRESS, whenever compress_unit() is non-zero for
	 * the image (streamOptimized VMDK): the engine then compresses on
	 * its worker threads as with -c instead of leaving it to pwrite on
	 * the writing thread.  The stored content is the same either way. */
	SCIMG_FMT_ALWAYS_COMPRESSED = 1u << 3,
};

struct scimg_image;

/* A format driver.  Each format exports exactly one (the reader's file,
 * e.g. lib/formats/qcow2.c: scimg_format_qcow2), listed once in the
 * registry (lib/registry.c); plugins' formats are wrapped into one by
 * lib/plugin.c.  scimg_int_format_contract() below checks the rules
 * marked "required" for every format, built-in (tests/unit/
 * test-format-contract.c) or plugin (at load). */
struct scimg_format {
	/* Short name used with -f/-O, and a one-line description. */
	const char *name;
	const char *description;
	/* Pure: score 0 (not this format) .. 100 (every magic and checksum
	 * verified).  May be NULL (never probed; raw). */
	int (*probe)(const struct scimg_probe *p);

	/* --- reading --- */
	/* Parse and validate metadata of img->src; set img->size and
	 * img->priv.  On failure free what was allocated. */
	int (*open)(struct scimg_image *img);
	/* Free img->priv (reader or writer). */
	void (*close)(struct scimg_image *img);
	/* Read LEN bytes at OFF; the caller has checked OFF+LEN <= size. */
	int (*pread)(struct scimg_image *img, void *buf, size_t len,
		     uint64_t off);
	/* Fill EXT with the extent starting at OFF, at most LEN long (LEN > 0,
	 * within size).  NULL means everything is DATA. */
	int (*block_status)(struct scimg_image *img, uint64_t off,
			    uint64_t len, struct scimg_extent *ext);
	/* Fill the ImageInfo object OBJ: qemu-img's keys (cluster-size,
	 * dirty-flag, backing-*, snapshots, format-specific) and the format's
	 * own details under scimg_int_info_details(OBJ); see lib/info.c.
	 * (A plugin's info gets the details object only.)  May be NULL. */
	int (*info)(struct scimg_image *img, json_object *obj);
	/* Option keys accepted when reading (-I key=value,...; NULL
	 * terminated, may be NULL).  open() finds them in img->opts. */
	const char *const *open_opts;

	/* --- writing (NULL create: read-only format) --- */
	/* Option keys accepted by create (NULL terminated, may be NULL). */
	const char *const *create_opts;
	/* Initialise a new image of img->size on the sink img->out (an empty
	 * file, a window of a container's file, or a directory), written
	 * through scimg_int_out_pwrite/truncate (struct scimg_sink). */
	int (*create)(struct scimg_image *img, const struct scimg_opts *opts);
	int (*pwrite)(struct scimg_image *img, const void *buf, size_t len,
		      uint64_t off);
	/* Make [OFF, OFF+LEN) read as zeros.  NULL: a new image already reads
	 * as zeros everywhere and the engine never writes a range twice. */
	int (*write_zeroes)(struct scimg_image *img, uint64_t off,
			    uint64_t len);
	/* Write remaining metadata; called once before the rename. */
	int (*finish)(struct scimg_image *img);

	/* --- compressed writing (all three or none) --- */
	/* Size of a compression unit (cluster/grain); offsets of compressed
	 * writes are multiples of it.  0 when -c is not possible. */
	uint32_t (*compress_unit)(struct scimg_image *img);
	/* Thread-safe, no image state changed: compress IN (LEN <= unit)
	 * into OUT (capacity *OUTLEN, at least 2 * unit).  Returns 0 and sets
	 * *OUTLEN, or 1 when the data does not shrink (caller stores it
	 * uncompressed), or -errno. */
	int (*compress)(struct scimg_image *img, const void *in, size_t len,
			void *out, size_t *outlen);
	/* Store compressed data made by compress() for the unit at OFF. */
	int (*pwrite_compressed)(struct scimg_image *img, uint64_t off,
				 const void *data, size_t clen, size_t len);
	/* Optional, instead of pwrite_compressed (built-in formats only):
	 * also given the LEN uncompressed bytes IN, for a container that
	 * digests the plain data (the AMI bundle's SHA-1 and gzip CRC). */
	int (*pwrite_compressed_src)(struct scimg_image *img, uint64_t off,
				     const void *data, size_t clen,
				     const void *in, size_t len);

	unsigned flags; /* SCIMG_FMT_* */

	/* Formats added by a plugin (lib/plugin.c): the plugin's own format
	 * struct, whose probe image.c calls through scimg_int_plugin_probe().
	 * NULL for built-in formats. */
	const struct scimg_plugin_format *plugin;

	/* Optional (scimg map): describe the run at OFF (LEN > 0, within
	 * size) with its depth in the chain and host offset; depth is
	 * relative to IMG.  NULL: image.c answers from block_status. */
	int (*map)(struct scimg_image *img, uint64_t off, uint64_t len,
		   struct scimg_map_extent *ext);

	/* Optional (scimg measure): the file size the writer makes from SRC
	 * (an open image; NULL: an empty disk of SIZE bytes) with OPTS (parsed
	 * against create_opts; every value validated as create() does):
	 * out->required for SRC's allocated data (an upper bound: the convert
	 * engine leaves out zero runs of the data too), out->fully_allocated
	 * with every block allocated.  NULL: measuring is not supported. */
	int (*measure)(struct scimg_ctx *ctx, struct scimg_image *src, uint64_t size,
		       const struct scimg_opts *opts, struct scimg_measure *out);
};

/* Slots filled by naming convention, for a format's descriptor table
 * (designated initializers; a slot given again after them overrides it,
 * and a format whose functions are named otherwise, or that lacks one of
 * a group's slots, spells its slots out):
 *
 *	const struct scimg_format scimg_format_foo = {
 *		.name = "foo",
 *		.description = "...",
 *		SCIMG_FORMAT_READER(foo),
 *		.info = foo_info,
 *		SCIMG_FORMAT_WRITER(scimg_int_foo),
 *		SCIMG_FORMAT_COMPRESSED_WRITER(scimg_int_foo),
 *	};
 *
 * SCIMG_FORMAT_READER(P): P_probe, P_open, P_close, P_pread,
 * P_block_status (reading with a probe and a block map). */
#define SCIMG_FORMAT_READER(p) \
	.probe = p##_probe, .open = p##_open, .close = p##_close, \
	.pread = p##_pread, .block_status = p##_block_status
/* SCIMG_FORMAT_WRITER(P): P_create, P_pwrite, P_finish (writing that ends
 * with metadata; write_zeroes, create_opts and measure are given apart). */
#define SCIMG_FORMAT_WRITER(p) \
	.create = p##_create, .pwrite = p##_pwrite, .finish = p##_finish
/* SCIMG_FORMAT_COMPRESSED_WRITER(P): the compressed triple P_compress_unit,
 * P_compress, P_pwrite_compressed. */
#define SCIMG_FORMAT_COMPRESSED_WRITER(p) \
	.compress_unit = p##_compress_unit, .compress = p##_compress, \
	.pwrite_compressed = p##_pwrite_compressed

/* Check the rules of the contract every format must keep: a valid name
 * (lower-case letters, digits, '-', '_'; 1..31), a description, open and
 * pread together, create and pwrite together, at least one of open and
 * create, the compressed triple complete (compress_unit, compress, and
 * pwrite_compressed or pwrite_compressed_src), close with open or create,
 * only known flags, SCIMG_FMT_PARALLEL_READ only with open, and
 * SCIMG_FMT_ALWAYS_COMPRESSED only with the compressed triple.  WHAT names
 * the format in the message.  0, or -1 with the reason in ERR. */
int scimg_int_format_contract(const struct scimg_format *f, const char *what,
			      char *err, size_t len);

#endif /* SCIMG_FORMAT_DRIVER_H */
