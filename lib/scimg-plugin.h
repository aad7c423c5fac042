/* scimg-plugin.h - the interface between libscimg and its plugins.
 *
 * A plugin is a shared object (a libtool module, "NAME.so") that exports one
 * symbol:
 *
 *	const struct scimg_plugin *scimg_plugin_init(void);
 *
 * It returns a description of the plugin: its name and version and the
 * image formats and provider profiles it adds.  libscimg looks for plugins
 * in the directories (or files) listed in $SCIMG_PLUGIN_PATH (colon
 * separated), then in $(libdir)/scimg/plugins (pkg-config --variable
 * plugindir scimg), and loads every "*.so" there once per process, the first
 * time a format or profile is looked up.  The first plugin of a name wins; a
 * later one of the same name is skipped.
 *
 * Compatibility rules (see docs/plugin-api.md)
 * - Every struct a plugin hands to the library starts with its own size
 *   (sizeof as the plugin was compiled) and the API version the plugin was
 *   built against.  Fields are only ever appended, never reordered, retyped
 *   or removed, so a plugin built against an older header keeps working: the
 *   library treats fields beyond the plugin's struct_size as absent (NULL /
 *   0).  A plugin that claims a newer API version than the library knows is
 *   refused with a message naming both versions.
 * - Functions declared here are never removed and their signatures never
 *   change; new ones are added with a new API version.
 * - tests/plugins/v1/scimg-plugin.h keeps the header of API version 1 as it
 *   was published; make check builds a plugin against it and loads it.
 *
 * Threading: the registration function is called once, under a lock.  Format
 * callbacks follow the same rules as the built-in formats (lib/formats/):
 * one thread per image, except compress (and pread/block_status of formats
 * with SCIMG_PLUGIN_FMT_PARALLEL_READ), which may run on several threads.
 *
 * Errors: every callback that can fail returns 0 (or a documented
 * non-negative value) on success and a negative errno on failure, after
 * recording a message with scimg_plugin_err() that names the file, the field
 * and its offset, and what was expected.  A plugin never prints and never
 * exits.
 */
#ifndef SCIMG_PLUGIN_H
#define SCIMG_PLUGIN_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "scimg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The plugin API version this header describes.  A plugin stores it in the
 * api_version field of each struct it hands over. */
#define SCIMG_PLUGIN_API_VERSION 1

/* ---- formats (API version 1) -------------------------------------------- */

/* What a probe sees: the head and tail of the file, and its size.  Filled by
 * the library; struct_size says which fields exist (always all of the
 * plugin's API version's fields). */
struct scimg_plugin_probe {
	uint32_t struct_size;
	uint32_t reserved;
	const char *filename;    /* for messages only; do not open it */
	const uint8_t *head;     /* first head_len bytes of the file */
	size_t head_len;         /* up to 65536 (less for shorter files) */
	const uint8_t *tail;     /* last tail_len bytes of the file */
	size_t tail_len;         /* up to 4096 */
	uint64_t file_size;
};

/* scimg_plugin_format.flags */
enum {
	/* The writer accepts writes only in increasing offset order. */
	SCIMG_PLUGIN_FMT_SEQUENTIAL_WRITE = 1u << 0,
	/* pread and block_status may run on several threads at once. */
	SCIMG_PLUGIN_FMT_PARALLEL_READ = 1u << 1,
};

/* An image format.  The struct image handle passed to every callback is the
 * library's; the plugin reaches its own state with scimg_plugin_priv(). */
struct scimg_plugin_format {
	uint32_t struct_size;     /* sizeof(struct scimg_plugin_format) */
	uint32_t api_version;     /* SCIMG_PLUGIN_API_VERSION */

	/* Required.  Name used with -f/-O: lower-case letters, digits, '-' and
	 * '_', at most 31 characters, not a name another format has. */
	const char *name;
	/* Required.  One line for scimg --help and scimg plugins. */
	const char *description;

	/* Optional.  Pure (no I/O, no global state): return 0 when the bytes are
	 * not this format, up to 100 when every magic number and checksum was
	 * verified.  The highest score wins; raw is never probed. */
	int (*probe)(const struct scimg_plugin_probe *p);

	/* --- reading: open and pread are both set, or neither --- */
	/* Parse and validate the image's metadata (read it with
	 * scimg_plugin_read()); call scimg_plugin_set_size() and keep state
	 * with scimg_plugin_set_priv().  Every on-disk field is checked before
	 * it is used to allocate, seek or loop.  On failure free what was
	 * allocated; close is not called. */
	int (*open)(struct scimg_image *img);
	/* Optional.  Free the state of a reader or writer: called when the
	 * image is closed, and after a failed create or finish (not after a
	 * failed open).  Must cope with state create left half made. */
	void (*close)(struct scimg_image *img);
	/* Read LEN guest bytes at OFF; the library has checked that
	 * OFF + LEN <= the virtual size and LEN > 0. */
	int (*pread)(struct scimg_image *img, void *buf, size_t len,
		     uint64_t off);
	/* Optional.  Describe the extent that starts at OFF, at most LEN bytes
	 * (LEN > 0): set ext->offset = OFF, ext->length (1..LEN) and ext->type.
	 * NULL means everything is DATA. */
	int (*block_status)(struct scimg_image *img, uint64_t off,
			    uint64_t len, struct scimg_extent *ext);
	/* Optional.  Add the format's own keys to OBJ (scimg info shows them
	 * under "scimg"). */
	int (*info)(struct scimg_image *img, json_object *obj);
	/* NULL-terminated option keys accepted when reading (-I key=value);
	 * may be NULL (none).  open() reads them with scimg_plugin_opt(). */
	const char *const *open_opts;

	/* --- writing: create and pwrite are both set, or neither --- */
	/* NULL-terminated option keys accepted by -o; may be NULL (none).  The
	 * values are read with scimg_plugin_opt(). */
	const char *const *create_opts;
	/* Start a new image of scimg_image_size(img) bytes on the empty output
	 * file (written with scimg_plugin_out_pwrite()).  A new image must read
	 * as zeros everywhere. */
	int (*create)(struct scimg_image *img);
	/* Store LEN bytes at guest offset OFF.  The convert engine writes each
	 * range at most once, in increasing order, and skips zero runs. */
	int (*pwrite)(struct scimg_image *img, const void *buf, size_t len,
		      uint64_t off);
	/* Optional.  Make a range read as zeros (NULL: nothing to do, since a
	 * new image already reads as zeros). */
	int (*write_zeroes)(struct scimg_image *img, uint64_t off,
			    uint64_t len);
	/* Optional.  Write the remaining metadata; called once, before the
	 * library moves the file into place. */
	int (*finish)(struct scimg_image *img);

	/* --- compressed writing (-c): all three or none --- */
	/* Unit size (offsets of compressed writes are multiples); 0 when
	 * compression is not possible with the chosen options. */
	uint32_t (*compress_unit)(struct scimg_image *img);
	/* Thread-safe and pure: compress LEN (<= unit) bytes of IN into OUT,
	 * whose capacity *OUTLEN is at least twice the unit.  Returns 0 and sets
	 * *OUTLEN, 1 when the data does not shrink, or -errno. */
	int (*compress)(struct scimg_image *img, const void *in, size_t len,
			void *out, size_t *outlen);
	/* Store data made by compress() for the unit at OFF (LEN guest bytes). */
	int (*pwrite_compressed)(struct scimg_image *img, uint64_t off,
				 const void *data, size_t clen, size_t len);

	unsigned flags;           /* SCIMG_PLUGIN_FMT_* */
	/* New fields are added here, never above. */
};

/* ---- provider profiles (API version 1) ---------------------------------- */

/* Findings of a profile check are collected through this handle. */
struct scimg_plugin_report;

/* What a cloud or hypervisor demands of an image: `scimg convert --provider
 * NAME` writes FORMAT with OPTIONS and a virtual size rounded up to
 * SIZE_ALIGNMENT; the profile check (scimg check --provider NAME) reports
 * what an image lacks. */
struct scimg_plugin_profile {
	uint32_t struct_size;     /* sizeof(struct scimg_plugin_profile) */
	uint32_t api_version;     /* SCIMG_PLUGIN_API_VERSION */

	/* Required.  Provider name ("azure"): same rules as format names. */
	const char *name;
	/* Required.  One line. */
	const char *description;
	/* Required.  Output format name (may be one another plugin adds). */
	const char *format;
	/* Optional.  Default -o options of the output ("subformat=fixed");
	 * options the user gives are applied after them. */
	const char *options;
	/* Optional (0: none).  The output's virtual size is rounded up to a
	 * multiple of this; a power of two. */
	uint64_t size_alignment;
	/* Optional (0: none).  Largest virtual size the provider accepts,
	 * after rounding. */
	uint64_t max_size;
	/* Optional.  NULL-terminated kernel modules the guest's default
	 * initramfs must hold (checked by the guest inspection layer). */
	const char *const *guest_modules;
	/* Optional.  Kernel console the provider shows ("ttyS0"). */
	const char *console;
	/* Optional.  Check an open image against the provider's rules beyond
	 * the ones above (which the library checks itself).  Report each
	 * problem with scimg_plugin_report(); return 0 when the check ran
	 * (whatever it found) or -errno when it could not run. */
	int (*check)(struct scimg_image *img, struct scimg_plugin_report *rep);
	/* New fields are added here, never above. */
};

/* ---- the plugin --------------------------------------------------------- */

struct scimg_plugin {
	uint32_t struct_size;     /* sizeof(struct scimg_plugin) */
	uint32_t api_version;     /* SCIMG_PLUGIN_API_VERSION */
	/* Required.  Plugin name (same rules as format names); usually the
	 * file name without ".so". */
	const char *name;
	/* Required.  The plugin's own version ("1.0"). */
	const char *version;
	/* Optional.  One line. */
	const char *description;
	/* NULL-terminated lists; either may be NULL, not both empty. */
	const struct scimg_plugin_format *const *formats;
	const struct scimg_plugin_profile *const *profiles;
	/* New fields are added here, never above. */
};

/* The registration symbol every plugin exports.  Called once; the returned
 * struct and everything it points to must stay valid while the plugin is
 * loaded (static const data). */
SCIMG_API const struct scimg_plugin *scimg_plugin_init(void);
typedef const struct scimg_plugin *(*scimg_plugin_init_fn)(void);
#define SCIMG_PLUGIN_INIT_SYMBOL "scimg_plugin_init"

/* ---- registration macros (C only) ---------------------------------------- */

/* The first two fields of every struct a plugin hands over, for this
 * header's API version, in a designated initializer:
 *
 *	static const struct scimg_plugin_format my_format = {
 *		SCIMG_PLUGIN_HEAD(struct scimg_plugin_format),
 *		.name = "myfmt", ...
 *	};
 */
#define SCIMG_PLUGIN_HEAD(type) \
	.struct_size = sizeof(type), .api_version = SCIMG_PLUGIN_API_VERSION

/* NULL-terminated lists for scimg_plugin.formats and .profiles (static
 * storage: compound literals at file scope). */
#define SCIMG_PLUGIN_FORMATS(...) \
	((const struct scimg_plugin_format *const[]){ __VA_ARGS__, NULL })
#define SCIMG_PLUGIN_PROFILES(...) \
	((const struct scimg_plugin_profile *const[]){ __VA_ARGS__, NULL })

/* Define the plugin (a static struct scimg_plugin with this header's size
 * and API version, and the designated initializers given) and its exported
 * registration symbol scimg_plugin_init, once per plugin, at file scope:
 *
 *	SCIMG_PLUGIN_REGISTER(.name = "myfmt", .version = "1.0",
 *			      .description = "one line",
 *			      .formats = SCIMG_PLUGIN_FORMATS(&my_format));
 *
 * Fields a later API version appends can be given the same way. */
#define SCIMG_PLUGIN_REGISTER(...) \
	static const struct scimg_plugin scimg_plugin_registered_ = { \
		SCIMG_PLUGIN_HEAD(struct scimg_plugin), __VA_ARGS__ \
	}; \
	SCIMG_API const struct scimg_plugin *scimg_plugin_init(void) \
	{ \
		return &scimg_plugin_registered_; \
	} \
	extern int scimg_plugin_registered_once_ /* swallows the ';' */

/* Callbacks of a struct scimg_plugin_format named after one prefix P, in
 * its designated initializer (a slot given again after them overrides it;
 * a format without one of a group's callbacks spells its slots out):
 *
 *	static const struct scimg_plugin_format my_format = {
 *		SCIMG_PLUGIN_HEAD(struct scimg_plugin_format),
 *		.name = "myfmt", .description = "one line",
 *		SCIMG_PLUGIN_FORMAT_READER(myfmt),
 *		.info = myfmt_info,
 *		SCIMG_PLUGIN_FORMAT_WRITER(myfmt),
 *	};
 *
 * SCIMG_PLUGIN_FORMAT_READER(P): .probe = P_probe, .open = P_open,
 * .close = P_close, .pread = P_pread, .block_status = P_block_status. */
#define SCIMG_PLUGIN_FORMAT_READER(p) \
	.probe = p##_probe, .open = p##_open, .close = p##_close, \
	.pread = p##_pread, .block_status = p##_block_status
/* SCIMG_PLUGIN_FORMAT_WRITER(P): .create = P_create, .pwrite = P_pwrite,
 * .finish = P_finish. */
#define SCIMG_PLUGIN_FORMAT_WRITER(p) \
	.create = p##_create, .pwrite = p##_pwrite, .finish = p##_finish

/* ---- helpers the library exports to plugins (API version 1) ------------- */

/* Errors: record a message on IMG's context and return ERR (a negative
 * errno; a non-negative ERR becomes -EIO).  The message names the file, the
 * field and its offset, and what was expected:
 *   "'%s': VDI block size at offset 376 is %u, expected a power of two" */
SCIMG_API int scimg_plugin_err(struct scimg_image *img, int err, const char *fmt, ...)
		  __attribute__((format(printf, 3, 4)));
/* Put "PREFIX: " before the message recorded on IMG's context (after a call
 * into another image failed). */
SCIMG_API void scimg_plugin_err_prefix(struct scimg_image *img, const char *fmt, ...)
		  __attribute__((format(printf, 2, 3)));
/* -ECANCELED (message recorded) when the operation was interrupted, else 0.
 * Long loops call it now and then. */
SCIMG_API int scimg_plugin_check_cancel(struct scimg_image *img);
/* The context IMG belongs to (for scimg_ctx_get_flags()). */
SCIMG_API struct scimg_ctx *scimg_plugin_ctx(struct scimg_image *img);

/* The format's own state (NULL until set). */
SCIMG_API void *scimg_plugin_priv(struct scimg_image *img);
SCIMG_API void scimg_plugin_set_priv(struct scimg_image *img, void *priv);
/* open(): set the virtual size (the library refuses sizes beyond its
 * maximum after open returns). */
SCIMG_API void scimg_plugin_set_size(struct scimg_image *img, uint64_t size);

/* Reading the image file.  Reads exactly LEN bytes at OFF; a read past the
 * end of the file is an error naming WHAT ("block map") and the offset. */
SCIMG_API int scimg_plugin_read(struct scimg_image *img, void *buf, size_t len,
				uint64_t off, const char *what);
/* Size of the image file in bytes. */
SCIMG_API uint64_t scimg_plugin_file_size(struct scimg_image *img);
/* Allocation of the image file's bytes at OFF (DATA or HOLE extents), as
 * lseek(SEEK_DATA/SEEK_HOLE) reports it; everything is DATA when unknown. */
SCIMG_API int scimg_plugin_file_block_status(struct scimg_image *img, uint64_t off,
					     uint64_t len, struct scimg_extent *ext);
/* Directory that names inside the image resolve against (owned by the
 * library, valid while IMG is open). */
SCIMG_API const char *scimg_plugin_file_dir(struct scimg_image *img);

/* Open another image the image names (parent, backing file): NAME is
 * resolved against scimg_plugin_file_dir() unless absolute.  FORMAT may be
 * NULL to probe (a referenced file is never guessed as raw).  Refused
 * unless the context allows referenced files (SCIMG_CTX_ALLOW_BACKING);
 * chain depth and loops are checked.  Read it with scimg_image_pread() and
 * scimg_image_block_status(); free it with scimg_image_close(). */
SCIMG_API int scimg_plugin_open_child(struct scimg_image *img, const char *name,
				      const char *format, struct scimg_image **out);

/* Writing.  Write LEN bytes at absolute file offset OFF of the output. */
SCIMG_API int scimg_plugin_out_pwrite(struct scimg_image *img, const void *buf,
				      size_t len, uint64_t off);
/* Set the output file's length. */
SCIMG_API int scimg_plugin_out_truncate(struct scimg_image *img, uint64_t size);
/* Value of option KEY (the last one given wins), or NULL when not given:
 * the -o options in create(), the -I options in open(). */
SCIMG_API const char *scimg_plugin_opt(struct scimg_image *img, const char *key);
/* Flags the image is created with (SCIMG_CREATE_COMPRESS). */
SCIMG_API unsigned scimg_plugin_create_flags(struct scimg_image *img);
/* Parse a size with an optional K/M/G/T/P suffix (powers of 1024);
 * -EINVAL on garbage or overflow. */
SCIMG_API int scimg_plugin_parse_size(const char *s, uint64_t *out);

/* Profile checks: report one problem.  ID is a short stable key
 * ("size-alignment"), the message says what is wrong and what is expected. */
SCIMG_API void scimg_plugin_report(struct scimg_plugin_report *rep, const char *id,
				   const char *fmt, ...)
		  __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif
#endif /* SCIMG_PLUGIN_H */
