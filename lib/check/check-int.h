/* check-int.h - internals of scimg check (lib/check/): container checks,
 * guest compliance through libguestfs, initramfs listing.
 *
 * Findings are json-c objects { "id", "severity", "message", ... } appended
 * to an array; ids are stable (docs/scimg-check.1 lists them).
 */
#ifndef SCIMG_CHECK_INT_H
#define SCIMG_CHECK_INT_H

#include "scimg-int.h"

/* The drivers a Supercloud guest needs in (or built into) the default
 * kernel's initramfs, by module name as modules.dep spells it. */

/* Append a finding to the array FINDINGS.  SEVERITY "error" makes the image
 * not compliant; "warning" does not. */
void scimg_int_finding(json_object *findings, const char *id,
		       const char *severity, const char *fmt, ...)
	SCIMG_PRINTF(4, 5);

/* ---- qcow2-check.c ---- */

/* Refcount consistency of the qcow2 file PATH, as QEMU's qemu-img check
 * counts it: findings qcow2-refcount-zero, qcow2-refcount-low,
 * qcow2-offset-beyond-eof, qcow2-overlap (errors), qcow2-leak (warning);
 * qemu-img check's keys (image-end-offset, total-clusters,
 * allocated-clusters, fragmented-clusters, compressed-clusters,
 * corruptions, leaks, check-errors) added to REPORT.  A file whose header
 * does not parse adds nothing (opening reports it).  0, or -errno when the
 * check could not run (I/O, memory). */
int scimg_int_check_qcow2(struct scimg_ctx *ctx, const char *path,
			  json_object *findings, json_object *report);

/* ---- vhd-check.c ---- */

/* BAT consistency of the dynamic or differencing VHD file PATH: finding
 * vhd-bat-overlap (error) when a block overlaps another block or the
 * metadata.  Other files add nothing.  0, or -errno (I/O, memory). */
int scimg_int_check_vhd(struct scimg_ctx *ctx, const char *path, json_object *findings);

/* ---- vmdk-check.c ---- */

/* The grain directory of the hosted sparse VMDK file PATH against its
 * redundant copy: finding vmdk-redundant-gd (error) when grain tables they
 * point to differ.  Other files add nothing.  0, or -errno. */
int scimg_int_check_vmdk(struct scimg_ctx *ctx, const char *path, json_object *findings);

/* ---- initrd.c ---- */

/* Module names (basename without .ko[.xz|.zst|.gz], '-' turned into '_')
 * of every kernel module in the initramfs file PATH (a host file): a
 * concatenation of cpio "newc" archives, each possibly compressed with
 * gzip, zstd, xz or lzma.  Memory stays bounded whatever the size.
 * *MODS is a json array of strings the caller owns.  Returns 0, or -errno
 * with a message naming the file, the offset and the problem (an
 * unsupported compression is -ENOTSUP). */
/* The largest initramfs file scimg downloads from a guest to list. */
#define SCIMG_INT_INITRD_MAX (INT64_C(1) << 30)
int scimg_int_initrd_modules(struct scimg_ctx *ctx, const char *path,
			     json_object **mods);

/* ---- guest.c ---- */

typedef struct guestfs_h guestfs_h;

/* The modules of the guest's initramfs INITRD, read through the open
 * handle G: the one reader of check, the SCI descriptor and
 * inject-drivers.  INITRD must be a regular file (symbolic links
 * followed) of 1 to SCIMG_INT_INITRD_MAX bytes; it is downloaded into a
 * private directory under TMPBASE (NULL: $TMPDIR or /tmp), listed by
 * scimg_int_initrd_modules() and removed.  0 with *MODS (caller owns), or
 * -errno with the reason in CTX (-ENOENT not a regular file, -EFBIG size,
 * -EIO download, -ENOTSUP a compression the reader lacks). */
int scimg_int_guest_initrd_modules(struct scimg_ctx *ctx, guestfs_h *g, const char *initrd,
				   const char *tmpbase, json_object **mods);

/* Pure: the default menu entry of a grub.cfg text (set default=N, numeric,
 * else the first top-level menuentry): its linux path, the rest of the
 * linux line, its initrd (each malloc'ed or NULL) and whether it uses
 * linux16/linuxefi.  Returns the number of top-level menu entries. */
int scimg_int_grub_default(const char *cfg, char **linux_path, char **args,
			   char **initrd, int *linux16);

struct scimg_guest_opts {
	void (*notice)(void *opaque, const char *msg); /* may be NULL */
	void *notice_opaque;
	const char *tmpdir; /* for downloaded initramfs files; NULL: $TMPDIR */
	/* More modules to look for in each kernel's initramfs (NULL
	 * terminated, may be NULL): reported under "drivers" like the
	 * Supercloud ones, without findings. */
	const char *const *extra_drivers;
};

/* Inspect the guest in the disk image PATH (FORMAT "raw" or "qcow2", a file
 * libguestfs/qemu opens read-only) and check Supercloud compliance.
 * *FACTS (caller owns) gets { "guest": {descriptor guest model},
 * "boot": {descriptor boot model}, "findings": [...] }.  Returns 0 when the
 * inspection ran (whatever it found), -errno when it could not (appliance
 * did not start, I/O error). */
int scimg_int_guest_check(struct scimg_ctx *ctx, const char *path,
			  const char *format,
			  const struct scimg_guest_opts *opts,
			  json_object **facts);

/* The same facts (guest, boot, findings) of the guest on ROOT, read through
 * an open libguestfs handle G whose guest filesystems are mounted -- the
 * handle of inject-drivers, so that convert -O sci launches one appliance.
 * TOP_CFG: the btrfs top level has (or gets) a GRUB configuration. */
/* DISK: the disk facts (lib/guest/guest-facts.h) the caller already has
 * for this guest as it is now, or NULL to read them; INITRD_MODS (or NULL):
 * {guest initramfs path: [module names]} as scimg_int_initrd_modules()
 * listed them, for initramfs files that need not be read again. */
struct sg_disk_facts;
int scimg_int_guest_describe(struct scimg_ctx *ctx, guestfs_h *g, const char *path,
			     const char *root, int top_cfg, const struct sg_disk_facts *disk,
			     json_object *initrd_mods, json_object **facts);

/* For a direct Xen PV boot (scimg boot-test --xen=direct): inspect the guest
 * in PATH (FORMAT "raw" or "qcow2", opened read-only) and write CARRIER, a
 * new ustar file holding "vmlinuz" (the kernel of grub.cfg's default entry),
 * "initrd" (its initramfs; empty when the entry has none) and "cmdline"
 * (the entry's command line without console= and GRUB variables, then
 * console=hvc0; printable ASCII, no quotes).  The paths come from the
 * untrusted grub.cfg: they are resolved inside the guest, must be regular
 * files (kernel up to 128 MiB, initramfs up to 512 MiB).  Returns 0 with
 * WHY empty when CARRIER was written, 0 with WHY saying why the guest has
 * nothing to boot directly (no OS, no grub.cfg, no kernel...), -errno
 * when the inspection could not run. */
/* Pure: the command line of a direct boot from a grub.cfg entry's ARGS (may
 * be NULL) into OUT: its words without console= (the domU's console is
 * hvc0) and without GRUB variables ($vt_handoff), then console=hvc0.  Only
 * printable ASCII without quotes or backslashes (it goes into xl's
 * configuration as a string), shorter than OUTLEN.  0, or -1 with WHY. */
int scimg_int_direct_cmdline(const char *args, char *out, size_t outlen, char *why,
			     size_t whylen);
int scimg_int_guest_direct_carrier(struct scimg_ctx *ctx, const char *path, const char *format,
				   const char *carrier, const struct scimg_guest_opts *opts,
				   char *why, size_t whylen);

#endif
