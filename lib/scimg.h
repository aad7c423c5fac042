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
	/* Trust the files an image names: allow absolute names, names that
	 * leave the directory of the image the caller opened, and (for local
	 * images) http(s) URLs; accept parents whose identity cannot be
	 * verified.  Without it, an image is untrusted: the files it names
	 * must be regular files inside the directory tree of the image the
	 * caller opened (after following symlinks), a remote image may name
	 * only relative URLs of its own server, and parents must match the
	 * identity their child recorded.  Only for chains the caller trusts. */
	SCIMG_CTX_TRUST_CHAIN = 1u << 1,
	/* Open an image even when a file it names cannot be opened (refused
	 * or missing), to show its own metadata (scimg info): the files not
	 * opened are listed by scimg_image_info(), and reading the image's
	 * data fails. */
	SCIMG_CTX_HEADER_ONLY = 1u << 2,
};
void scimg_ctx_set_flags(struct scimg_ctx *ctx, unsigned flags);
unsigned scimg_ctx_get_flags(const struct scimg_ctx *ctx);

/* Ask every running operation on the context to stop as soon as it can
 * (with -ECANCELED).  Async-signal-safe: meant for SIGINT/SIGTERM handlers. */
void scimg_ctx_cancel(struct scimg_ctx *ctx);

/* Limits on every network wait of http:// and https:// inputs.  The struct
 * starts with its size and only ever grows at the end: set SIZE to
 * sizeof(struct scimg_http_limits), fill it with scimg_ctx_get_http_limits()
 * (the defaults, or what was set), change fields, then set it.  A timeout
 * or limit of 0 means "no limit".  The defaults are in brackets. */
struct scimg_http_limits {
	size_t size;
	/* connecting (DNS, TCP, TLS) and waiting for the first byte of each
	 * answer [10000] */
	unsigned connect_timeout_ms;
	/* abort an answer that brings less than LOW_SPEED_LIMIT bytes/s,
	 * averaged over LOW_SPEED_TIME_MS [1024 bytes/s over 30000 ms] */
	unsigned low_speed_limit;
	unsigned low_speed_time_ms;
	/* one read of the image (one Range request), with its retries
	 * [120000] */
	unsigned request_timeout_ms;
	/* every HTTP request of the context together, counted from the first
	 * request after the limits were set [0: none] */
	unsigned total_timeout_ms;
	/* retries of a transient failure (HTTP 5xx, 408, 429, a connection
	 * reset or refused, a short answer), with a backoff of 0.25 s doubling
	 * up to 4 s, or the server's Retry-After up to 30 s [5] */
	unsigned max_retries;
	/* redirects followed per request, to http or https only [5] */
	unsigned max_redirects;
};
/* Fill LIMITS (LIMITS->size set by the caller) with the context's limits.
 * -EINVAL when LIMITS->size is too small. */
int scimg_ctx_get_http_limits(const struct scimg_ctx *ctx,
			      struct scimg_http_limits *limits);
/* Set the context's limits.  Fields past LIMITS->size keep their value;
 * -EINVAL when a field this library does not know is non-zero.  Restarts
 * the clock of total_timeout_ms. */
int scimg_ctx_set_http_limits(struct scimg_ctx *ctx,
			      const struct scimg_http_limits *limits);

/* ---- formats ---------------------------------------------------------- */

/* Number of registered formats and their names ("raw", "qcow2", ...). */
size_t scimg_format_count(void);
const char *scimg_format_name(size_t i);
/* Whether a registered format can be read / written; -ENOENT if unknown. */
int scimg_format_caps(const char *name, int *can_read, int *can_write);
/* NULL-terminated list of the -o keys a format's writer accepts (owned by
 * the library), or NULL when the format is unknown or cannot be written. */
const char *const *scimg_format_create_options(const char *name);
/* What each -o key of a built-in writer means: an array ended by an entry
 * whose KEY is NULL (owned by the library), or NULL when the format is not
 * a built-in writable one.  DEF is the default as text, or NULL when the
 * key has none (not set unless given). */
struct scimg_create_option {
	const char *key;
	const char *help;
	const char *def;
};
const struct scimg_create_option *scimg_format_create_option_help(const char *name);

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
/* Where the guest bytes at OFF come from (scimg map): the run starting at
 * OFF (at most LEN bytes) whose bytes share one answer. */
struct scimg_map_extent {
	uint64_t offset;   /* guest offset (== OFF) */
	uint64_t length;
	int depth;         /* image of the chain that answers: 0 the image
			      itself, 1 its backing file, ...; for a run no
			      image allocates, the depth of the last image
			      asked (the bottom of the chain) */
	int present;       /* 1 when an image of the chain allocates the run */
	int zero;          /* 1 when it reads as zeros */
	int data;          /* 1 when it is read from a file (not a zero run) */
	int compressed;    /* 1 for compressed clusters */
	uint64_t host_offset; /* offset of the data in the file of image DEPTH,
				 UINT64_MAX when unknown or not applicable */
	const char *file;  /* path of the image DEPTH (valid while IMG is open) */
};
/* Describe the run at OFF as scimg_map_extent.  Formats that cannot tell
 * more answer from scimg_image_block_status(): depth 0, no host offset. */
int scimg_image_map(struct scimg_image *img, uint64_t off, uint64_t len,
		    struct scimg_map_extent *ext);
/* Information about the image as a JSON object the caller owns
 * (json_object_put).  Keys: filename, format, virtual-size, actual-size,
 * format-specific, backing-filename, ... (see docs/scimg-info.1). */
int scimg_image_info(struct scimg_image *img, json_object **out);

/* Create an image at PATH (written to an unnamed temporary file in its
 * directory -- a hidden temporary name where the file system has no
 * O_TMPFILE -- and moved into place by scimg_image_finish()).  OPTIONS is
 * "key=value,..." or NULL; unknown keys fail.  Formats whose output is a
 * directory of files (ami) write a temporary directory instead, renamed
 * (or, when PATH is an existing non-empty directory, moved into it) on
 * success.  An existing block device at PATH is written in place (raw,
 * qcow2; never truncated, renamed or removed); a
 * character device, FIFO or socket is refused, and so is a directory for
 * a format that writes one file (see scimg_image_check_output). */
enum {
	SCIMG_CREATE_COMPRESS = 1u << 0,
	/* Do not flush the output to stable storage before the rename (it is
	 * still written to a temporary name and renamed when complete); what
	 * qemu-img convert does by default (its target cache mode "unsafe"). */
	SCIMG_CREATE_NO_SYNC = 1u << 1,
	/* Do not create PATH: it must exist, and is written in place (a raw
	 * output into a regular file or block device; qemu-img convert -n).
	 * Not atomic: on failure the target holds a partial image. */
	SCIMG_CREATE_NO_CREATE = 1u << 2,
	/* The existing target (in-place writes) already reads as zeros: do
	 * not write zeros to it (qemu-img convert --target-is-zero). */
	SCIMG_CREATE_TARGET_IS_ZERO = 1u << 3,
	/* The image will get only the data that differs from its backing file
	 * (an empty overlay: scimg create -b): allows the qcow2 options
	 * backing_file= and backing_fmt=, refused otherwise because the
	 * convert engine leaves zero runs unwritten, which would then show
	 * the backing file's data. */
	SCIMG_CREATE_BACKING = 1u << 4,
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
/* Whether PATH may receive an image of FORMAT written with FLAGS
 * (SCIMG_CREATE_*) converted from SRC (NULL: no source): fails (-EPERM,
 * -EISDIR, -ENOENT, -ENOTSUP, ...) with a message when PATH is SRC's file
 * or any file SRC's chain reads (same device and inode: through hard
 * links and symbolic links), a character device, FIFO or socket, a
 * directory for a format that writes one file, or a block device the
 * format cannot be written to.  Nothing is opened or created.  For
 * callers that write PATH later (scimg_convert and scimg_image_create
 * check it themselves). */
int scimg_image_check_output(struct scimg_ctx *ctx, const struct scimg_image *src,
			     const char *path, const char *format, unsigned flags);

/* ---- measure (scimg measure) ------------------------------------------ */

struct scimg_measure {
	uint64_t required;        /* file size for SRC's allocated data */
	uint64_t fully_allocated; /* file size with every cluster allocated */
	int has_bitmaps;          /* qemu-img prints "bitmaps" */
	uint64_t bitmaps;         /* space for persistent dirty bitmaps */
};
/* How large a FORMAT image (with -o OPTIONS) of SRC (an open image), or of
 * an empty disk of SIZE bytes when SRC is NULL, would be: the numbers of
 * qemu-img measure.  Formats: qcow2 and raw; -ENOTSUP for the others. */
int scimg_measure(struct scimg_ctx *ctx, struct scimg_image *src, uint64_t size,
		  const char *format, const char *options, struct scimg_measure *out);

/* ---- changes in place (scimg resize, scimg rebase -u) ------------------ */

/* These open the file PATH itself for writing (never a file of its chain);
 * FORMAT NULL probes (raw when nothing probes).  On failure the image is
 * unchanged unless the message says otherwise. */
enum {
	/* allow a size smaller than the current one (data past it is lost) */
	SCIMG_RESIZE_SHRINK = 1u << 0,
};
/* Set the virtual size of PATH to SIZE: raw (truncate; shrink with the
 * flag) and qcow2 (grow only; the L1 table moves to the end of the file
 * when its clusters have no room, if an existing refcount block covers the
 * new clusters; not with snapshots, bitmaps, an external data file or a
 * backing file larger than the old size). */
int scimg_image_resize(struct scimg_ctx *ctx, const char *path, const char *format,
		       uint64_t size, unsigned flags);
/* Rewrite the backing file name (stored as given; NULL or "" removes it)
 * and the backing format (NULL: none) in the header of qcow2 image PATH
 * without looking at either backing file (qemu-img rebase -u).  -ENOSPC
 * when the header, its extensions and the name do not fit its first
 * cluster. */
int scimg_image_set_backing(struct scimg_ctx *ctx, const char *path, const char *format,
			    const char *backing, const char *backing_fmt);

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
	/* -n: SCIMG_CREATE_NO_CREATE (write into the existing DST in place). */
	int no_create;
	/* --target-is-zero: SCIMG_CREATE_TARGET_IS_ZERO (with no_create). */
	int target_is_zero;
};

/* Convert an image.  Bounded memory whatever the size; holes are skipped.
 * On failure or cancel, nothing is left at opts->dst (a target written in
 * place -- a block device, or no_create -- holds a partial image).  DST is
 * checked before anything is written: never SRC or a file of its chain
 * (see scimg_image_check_output). */
int scimg_convert(struct scimg_ctx *ctx, const struct scimg_convert_opts *opts);

/* Compare the guest-visible content of two open images.  Returns 0 when
 * equal, 1 when different (*diff_off set to the first differing byte), or a
 * negative errno. */
int scimg_compare(struct scimg_ctx *ctx, struct scimg_image *a,
		  struct scimg_image *b, uint64_t *diff_off);
/* As scimg_compare(), calling PROGRESS (may be NULL) with the bytes
 * compared so far and the larger virtual size. */
int scimg_compare_progress(struct scimg_ctx *ctx, struct scimg_image *a,
			   struct scimg_image *b, uint64_t *diff_off,
			   scimg_progress_fn progress, void *opaque);

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


/* ---- boot-test (proof of boot) ----------------------------------------- */

/* Buses and firmware scimg_boot_test() boots an image with (bit masks). */
enum {
	SCIMG_BOOT_BUS_IDE = 1u << 0,
	SCIMG_BOOT_BUS_SATA = 1u << 1,        /* AHCI, on QEMU's q35 machine */
	SCIMG_BOOT_BUS_VIRTIO_BLK = 1u << 2,
	SCIMG_BOOT_BUS_VIRTIO_SCSI = 1u << 3,
	SCIMG_BOOT_BUS_NVME = 1u << 4,
	SCIMG_BOOT_BUS_ALL = 31u,
};
enum {
	SCIMG_BOOT_FW_BIOS = 1u << 0,         /* SeaBIOS */
	SCIMG_BOOT_FW_UEFI = 1u << 1,         /* OVMF (Debian package ovmf) */
};

/* Options of scimg_boot_test().  SIZE must be sizeof(struct
 * scimg_boot_opts) as the caller was compiled; the struct only ever grows
 * at the end, and fields past SIZE count as zero. */
struct scimg_boot_opts {
	size_t size;
	const char *path;        /* the image (any format scimg reads, SCI too) */
	const char *format;      /* NULL: probe */
	unsigned buses;          /* SCIMG_BOOT_BUS_*; 0: virtio-blk */
	unsigned firmware;       /* SCIMG_BOOT_FW_*; 0: bios */
	/* POSIX extended regular expression that also means success when a
	 * console line matches it, or NULL. */
	const char *expect;
	int timeout;             /* seconds per boot; 0: 300 (TCG), 120 (KVM) */
	int memory_mib;          /* guest RAM; 0: 512 */
	int jobs;                /* boots at once; 0: what cores and RAM allow */
	/* NULL: the defaults ($PATH's qemu-system-x86_64,
	 * /usr/share/OVMF/OVMF_CODE_4M.fd and OVMF_VARS_4M.fd) */
	const char *qemu;
	const char *ovmf_code;
	const char *ovmf_vars;
	scimg_notice_fn notice;  /* one-line messages (TCG fallback); may be NULL */
	void *notice_opaque;
	/* Called with each boot's result object (see below, borrowed) when the
	 * boot ends; may be NULL. */
	void (*boot_done)(void *opaque, json_object *boot);
	void *boot_done_opaque;
};

/* Boot the image under qemu-system-x86_64 once per requested bus and
 * firmware (in parallel, as many at once as cores and free RAM allow) and
 * watch each serial console (ttyS0) for proof of boot: a login prompt,
 * systemd reaching the multi-user or graphical target, cloud-init's final
 * message, or a line matching opts->expect; and for the failures that end
 * a boot early (initramfs giving up on the root disk, emergency mode,
 * kernel panic, no bootable device, the OVMF shell).  The image is never
 * written: QEMU reads it with a temporary overlay, and a format QEMU cannot
 * open safely is first converted to a temporary qcow2.  An image without
 * a boot loader for a firmware fails for it at once, without QEMU.  KVM is
 * used when it works (the state lib/appliance.c remembers), TCG otherwise.
 *
 * Returns 0 when every boot succeeded, 1 when some did not, or a negative
 * errno when the test could not be done (e.g. QEMU or OVMF missing: the
 * message names the Debian package; -ECANCELED after scimg_ctx_cancel(),
 * every QEMU stopped and every temporary file removed).  With 0 or 1,
 * *REPORT is a JSON object the caller owns (docs/scimg-boot-test.1):
 * boot-test-version, image, format, content, accel, timeout, memory-mib,
 * jobs, boots[] ({method, platform, bus, firmware, accel, result ("ok",
 * "fail", "timeout"), reason, seconds, console[] (the last lines)}). */
int scimg_boot_test(struct scimg_ctx *ctx, const struct scimg_boot_opts *opts,
		    json_object **report);

#ifdef __cplusplus
}
#endif
#endif /* SCIMG_H */
