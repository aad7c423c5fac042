/* scimg.h - public interface of libscimg.
 *
 * libscimg reads and writes virtual machine disk images (raw, qcow2 and the
 * formats added by lib/formats/) and converts between them.
 *
 * Conventions
 * - Every function that can fail returns 0 (or a non-negative count) on
 *   success and a negative errno value on failure.  The failure is also
 *   recorded on the context: scimg_ctx_errmsg() gives a message that names
 *   the file, the field or offset and what was expected.
 * - The library never prints and never exits.
 * - Objects returned through an out-parameter belong to the caller, who
 *   releases them with the matching _close/_free function.
 */
#ifndef SCIMG_H
#define SCIMG_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SCIMG_VERSION_STRING "0.1.0"

/* ---- context ---------------------------------------------------------- */

struct scimg_ctx;

/* Create a context.  Returns NULL only when out of memory. */
struct scimg_ctx *scimg_ctx_new(void);
/* Free a context.  NULL is accepted. */
void scimg_ctx_free(struct scimg_ctx *ctx);

/* Last error recorded on the context: a negative errno (0 when none) and a
 * message owned by the context, valid until the next failing call. */
int scimg_ctx_errcode(const struct scimg_ctx *ctx);
const char *scimg_ctx_errmsg(const struct scimg_ctx *ctx);
void scimg_ctx_clear_error(struct scimg_ctx *ctx);

/* Context flags. */
enum {
	/* Open backing files, external data files and extent files that an
	 * image names.  Without it such images fail to open. */
	SCIMG_CTX_ALLOW_BACKING = 1u << 0,
};
void scimg_ctx_set_flags(struct scimg_ctx *ctx, unsigned flags);
unsigned scimg_ctx_get_flags(const struct scimg_ctx *ctx);

/* Ask every running operation on the context to stop as soon as it can
 * (with -ECANCELED).  Async-signal-safe: meant for SIGINT/SIGTERM handlers. */
void scimg_ctx_cancel(struct scimg_ctx *ctx);

/* ---- formats ---------------------------------------------------------- */

/* Number of registered formats and their names ("raw", "qcow2", ...). */
size_t scimg_format_count(void);
const char *scimg_format_name(size_t i);
/* Whether a registered format can be read / written; -ENOENT if unknown. */
int scimg_format_caps(const char *name, int *can_read, int *can_write);
/* NULL-terminated list of the -o keys a format's writer accepts (owned by
 * the library), or NULL when the format is unknown or cannot be written. */
const char *const *scimg_format_create_options(const char *name);
/* NULL-terminated list of the -I keys a format's reader accepts (owned by
 * the library; empty when it takes none), or NULL when the format is
 * unknown or cannot be read. */
const char *const *scimg_format_open_options(const char *name);

/* ---- images ----------------------------------------------------------- */

struct scimg_image;

enum scimg_extent_type {
	SCIMG_EXTENT_DATA = 0, /* allocated; read it */
	SCIMG_EXTENT_ZERO = 1, /* allocated or not, reads as zeros */
	SCIMG_EXTENT_HOLE = 2, /* not allocated anywhere in the chain; zeros */
};

struct scimg_extent {
	uint64_t offset;
	uint64_t length;
	enum scimg_extent_type type;
};

/* Open PATH read-only.  FORMAT names the format, or NULL to probe.  When no
 * format probes, the image is opened as raw and scimg_image_raw_fallback()
 * says so.  The input file is never opened for writing. */
int scimg_image_open(struct scimg_ctx *ctx, const char *path,
		     const char *format, struct scimg_image **out);
/* As scimg_image_open(), with OPTIONS ("key=value,..." or NULL) for the
 * format's reader (scimg -I), e.g. "privatekey=pk.pem" for an AMI bundle.
 * A key the format does not accept fails, listing the accepted ones.
 * PATH may also be an http:// or https:// URL for every format. */
int scimg_image_open_opts(struct scimg_ctx *ctx, const char *path,
			  const char *format, const char *options,
			  struct scimg_image **out);
void scimg_image_close(struct scimg_image *img);
/* Probe PATH (file or URL) without opening it as an image: *FORMAT is set
 * to the name of the best-scoring format (a static string, not to be
 * freed) or NULL when none matched (raw is never guessed here).  Returns 0,
 * or -errno when PATH cannot be read. */
int scimg_image_probe(struct scimg_ctx *ctx, const char *path,
		      const char **format);

const char *scimg_image_format(const struct scimg_image *img);
const char *scimg_image_path(const struct scimg_image *img);
uint64_t scimg_image_size(const struct scimg_image *img);
/* 1 if the format was not given and nothing but raw matched. */
int scimg_image_raw_fallback(const struct scimg_image *img);

/* Read guest-visible bytes.  Reads past the virtual size fail. */
int scimg_image_pread(struct scimg_image *img, void *buf, size_t len,
		      uint64_t off);
/* Describe the extent that starts at OFF (at most LEN bytes long). */
int scimg_image_block_status(struct scimg_image *img, uint64_t off,
			     uint64_t len, struct scimg_extent *ext);
/* Information about the image as a JSON object the caller owns
 * (json_object_put).  Keys: filename, format, virtual-size, actual-size,
 * format-specific, backing-filename, ... (see docs/scimg-info.1). */
int scimg_image_info(struct scimg_image *img, json_object **out);

/* Create an image at PATH (written to a temporary file beside it, renamed
 * by scimg_image_finish()).  OPTIONS is "key=value,..." or NULL; unknown
 * keys fail.  Formats whose output is a directory of files (ami) write a
 * temporary directory instead, renamed (or, when PATH is an existing
 * non-empty directory, moved into it) on success. */
enum {
	SCIMG_CREATE_COMPRESS = 1u << 0,
	/* Do not flush the output to stable storage before the rename (it is
	 * still written to a temporary name and renamed when complete); what
	 * qemu-img convert does by default (its target cache mode "unsafe"). */
	SCIMG_CREATE_NO_SYNC = 1u << 1,
};
int scimg_image_create(struct scimg_ctx *ctx, const char *path,
		       const char *format, uint64_t size, const char *options,
		       unsigned flags, struct scimg_image **out);
int scimg_image_pwrite(struct scimg_image *img, const void *buf, size_t len,
		       uint64_t off);
int scimg_image_write_zeroes(struct scimg_image *img, uint64_t off,
			     uint64_t len);
/* Complete the image and move it into place.  The handle is freed whether
 * or not it succeeds; on failure nothing is left at PATH. */
int scimg_image_finish(struct scimg_image *img);
/* Drop an image being created: removes the temporary file. */
void scimg_image_abort(struct scimg_image *img);

/* ---- convert ---------------------------------------------------------- */

typedef void (*scimg_progress_fn)(void *opaque, uint64_t done, uint64_t total);

struct scimg_convert_opts {
	const char *src;            /* input path */
	const char *src_format;     /* NULL: probe */
	const char *dst;            /* output path */
	const char *dst_format;     /* required */
	const char *options;        /* -o key=value,... or NULL */
	int compress;               /* -c */
	uint64_t sparse_size;       /* -S: zero runs of this size become holes; 0 = off */
	int threads;                /* worker threads, 0 = number of CPUs */
	scimg_progress_fn progress; /* may be NULL */
	void *progress_opaque;
	const char *src_options;    /* -I key=value,... for the reader, or NULL */
	/* Provider profile (scimg convert --provider): chooses dst_format
	 * (which may then be NULL), puts its options before OPTIONS and rounds
	 * the output size up as the provider demands.  NULL: none. */
	const char *provider;
	/* --no-sync: SCIMG_CREATE_NO_SYNC for the output. */
	int no_sync;
};

/* Convert an image.  Bounded memory whatever the size; holes are skipped.
 * On failure or cancel, nothing is left at opts->dst. */
int scimg_convert(struct scimg_ctx *ctx, const struct scimg_convert_opts *opts);

/* Compare the guest-visible content of two open images.  Returns 0 when
 * equal, 1 when different (*diff_off set to the first differing byte), or a
 * negative errno. */
int scimg_compare(struct scimg_ctx *ctx, struct scimg_image *a,
		  struct scimg_image *b, uint64_t *diff_off);

/* ---- plugins and provider profiles ------------------------------------ */

/* Plugins (lib/scimg-plugin.h) are loaded once per process, on first use,
 * from the directories or files in $SCIMG_PLUGIN_PATH (colon separated) and
 * then from scimg_plugins_dir().  Their formats join the registry above. */
const char *scimg_plugins_dir(void);
/* Every plugin found, loaded or not, as a JSON object the caller owns:
 * {"api-version", "plugin-dir", "plugin-path", "plugins": [{"name",
 * "version", "api-version", "path", "status" ("loaded", "refused",
 * "skipped"), "description", "error", "formats": [...], "profiles":
 * [...]}]} (see docs/scimg-plugins.1). */
int scimg_plugins_list(struct scimg_ctx *ctx, json_object **out);

/* Provider profiles ("azure", "ec2", ...) the plugins add. */
size_t scimg_profile_count(void);
const char *scimg_profile_name(size_t i);
/* A profile as a JSON object the caller owns: name, description, plugin,
 * format, options, size-alignment, max-size, guest-modules, console.
 * -ENOENT (message lists the known ones) when unknown. */
int scimg_profile_info(struct scimg_ctx *ctx, const char *name,
		       json_object **out);
/* Check the open image IMG against profile NAME: the output format, the
 * size rules and the profile's own check.  Each problem is appended to
 * FINDINGS (a JSON array) as {"profile", "id", "message"}.  Returns the
 * number of problems found (0: compliant) or a negative errno.  Guest
 * requirements (guest-modules, console) need guest inspection and are not
 * checked here. */
int scimg_profile_check(struct scimg_ctx *ctx, const char *name,
			struct scimg_image *img, json_object *findings);

/* ---- Supercloud image and check ------------------------------------------ */

/* scimg_convert() with dst_format "sci" builds a Supercloud image
 * (docs/sci-format.md) instead of streaming into a format writer: the
 * source is converted into a working qcow2 in a temporary directory beside
 * dst, the guest is fixed by inject-drivers and inspected, and the package
 * (descriptor, disk, xl.cfg, optional signature) is written to a temporary
 * file that is renamed to dst.  opts->options keys: name=, sign-key=,
 * sign-cert=, guest=fix|inspect|skip, disk-format=qcow2|raw
 * (docs/scimg-convert.1). */

struct scimg_check_opts {
	const char *path;        /* the image */
	const char *format;      /* NULL: probe */
	const char *trust;       /* PEM file of trusted certificates, or NULL */
	int container_only;      /* skip the guest compliance checks */
	/* A one-line message the user should see (e.g. the appliance was
	 * restarted with TCG).  May be NULL. */
	void (*notice)(void *opaque, const char *msg);
	void *notice_opaque;
	/* Provider profile (scimg check --provider NAME) or NULL: also report
	 * what the image lacks for that provider (format, size rules, the
	 * profile's own check, guest modules and console); the guest's
	 * Supercloud-only findings (Xen drivers and PV boot) become warnings. */
	const char *provider;
};

/* Check that an image is a valid container and a compliant Supercloud
 * guest.  Returns 0 when compliant, 1 when not, a negative errno when the
 * check could not be done.  When it returns 0 or 1, *REPORT is a JSON
 * object the caller owns (json_object_put), documented in
 * docs/scimg-check.1: check-version, image, format, compliant, checks[],
 * findings[] ({id, severity, message}), and descriptor, signature, guest,
 * boot, content-sha256 where they apply. */
int scimg_check(struct scimg_ctx *ctx, const struct scimg_check_opts *opts,
		json_object **report);
/* ---- bootfix (inject-drivers) ---------------------------------------- */

/* Driver groups scimg_bootfix_run() puts into the guest's initramfs. */
enum {
	SCIMG_BOOTFIX_DRV_XEN = 1u << 0,    /* xen-blkfront, xen-netfront */
	SCIMG_BOOTFIX_DRV_VIRTIO = 1u << 1, /* virtio_blk, _scsi, _net, _pci */
	SCIMG_BOOTFIX_DRV_NVME = 1u << 2,   /* nvme */
	SCIMG_BOOTFIX_DRV_ALL = 7u,
};

/* Called with a one-line message the user should see once, e.g. that the
 * appliance could not start with KVM and was started again with TCG. */
typedef void (*scimg_notice_fn)(void *opaque, const char *msg);

struct scimg_bootfix_opts {
	unsigned drivers;        /* SCIMG_BOOTFIX_DRV_*; 0 means all */
	int dry_run;             /* inspect and plan; the image is not changed */
	int partition;           /* wrap a partitionless filesystem into an
				    MBR-partitioned disk with a bootloader */
	scimg_notice_fn notice;  /* may be NULL */
	void *notice_opaque;
};

/* Make the Linux guest in the image PATH (FORMAT "raw" or "qcow2"; NULL
 * for an image no scimg format recognised: qcow2 by its magic, else raw
 * unless its header names another format, which is refused) boot on IDE, virtio, NVMe and as a Xen PV domU: drivers into
 * the initramfs of every kernel, GRUB2 with root=UUID and serial/Xen
 * consoles, fstab/crypttab/resume by UUID, net rules, gettys.  The image is
 * changed in place through libguestfs with one appliance launch (with
 * opts->partition the image file is replaced by a new, partitioned one).
 *
 * *REPORT (may be NULL) receives a JSON object the caller owns: guest facts,
 * kernels and their drivers, each change made (or planned with dry_run),
 * warnings, and which boot methods work ("boot-methods").  It is set even
 * when the run fails after inspection, so the caller can show what was
 * found.  Returns 0, or -errno with the message on CTX. */
int scimg_bootfix_run(struct scimg_ctx *ctx, const char *path,
		      const char *format, const struct scimg_bootfix_opts *opts,
		      json_object **report);

#ifdef __cplusplus
}
#endif
#endif /* SCIMG_H */
