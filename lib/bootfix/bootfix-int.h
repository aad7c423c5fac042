/* bootfix-int.h - private interfaces of lib/bootfix/ (inject-drivers).
 *
 * One run = one libguestfs handle, one appliance launch.  The steps live in
 * separate files and share struct bf:
 *   handle.c     handle, launch (KVM, then TCG), errors, guest shell, text
 *   inspect.c    OS facts, kernels, drivers, kernel compression
 *   initramfs.c  initramfs tool configuration, rebuild, verification
 *   bootloader.c GRUB2 configuration, grub.cfg, BIOS/UEFI boot code
 *   devnames.c   fstab/crypttab/resume by UUID, net rules, consoles
 *   partition.c  wrap a partitionless filesystem into a partitioned disk
 *   bootfix.c    the public entry point and the report
 * Library code: nothing prints; errors go to the scimg context.
 */
#ifndef SCIMG_BOOTFIX_INT_H
#define SCIMG_BOOTFIX_INT_H

#include <guestfs.h>

#include "scimg-int.h"
#include "guest/guest.h"
#include "guest/guest-facts.h"

/* The drivers (enum sg_drv, scimg_int_sg_drv_name) and the boot-method
 * rules are the guest model's (lib/guest/guest.h), shared with check. */
enum bf_state { BF_MISSING = 0, BF_MODULE = 1, BF_BUILTIN = 2 };

struct bf_kernel {
	char *version;     /* "6.1.0-26-cloud-amd64" */
	char *vmlinuz;     /* "/boot/vmlinuz-..." */
	char *initrd;      /* "/boot/initrd.img-..." or NULL if none yet */
	char *compression; /* gzip, xz, lz4, zstd, bzip2, lzma, lzo, none, unknown */
	enum bf_state drv[SG_NDRV];
	int in_initrd[SG_NDRV]; /* after the rebuild: in the initramfs with
				 * every module it depends on (or built in) */
	enum sg_where where[SG_NDRV]; /* after listing the initramfs */
	char *missing_dep[SG_NDRV];   /* SG_INCOMPLETE: the module it lacks */
	struct sg_moddep *moddep;     /* its modules.dep, NULL if none */
	char *builtin;                /* its modules.builtin text, or NULL */
	int verified;           /* in_initrd was filled */
	json_object *initrd_mods; /* the modules of its initramfs as last listed
				   * on the host (NULL: listed in the guest) */
	char *rebuild_cmd;      /* the rebuild command, and the file it writes */
	char *rebuild_target;
};

enum bf_itool {
	BF_ITOOL_NONE,
	BF_ITOOL_INITRAMFS_TOOLS,
	BF_ITOOL_DRACUT,
	BF_ITOOL_MKINITCPIO,
	BF_ITOOL_SUSE_MKINITRD,
};

struct bf {
	struct scimg_ctx *ctx;
	const struct scimg_bootfix_opts *opts;
	const char *path;      /* the image, for messages */
	const char *format;
	guestfs_h *g;
	int dry_run;
	unsigned drivers;      /* SCIMG_BOOTFIX_DRV_* */

	/* report */
	json_object *report;   /* the whole object */
	json_object *guest;    /* report.guest */
	json_object *changes;  /* report.changes (array) */
	json_object *warnings; /* report.warnings (array) */
	json_object *timings;  /* report.timings: step -> seconds */
	double t_mark;         /* monotonic seconds at the last step's end */
	int step, steps;       /* progress: the step started last, of STEPS */

	/* devices */
	char **devices;        /* appliance whole disks: /dev/sda ... */
	char *bootdisk;        /* appliance disk that holds root */
	char *root;            /* inspection root filesystem */
	char *root_uuid;
	int wrapped;           /* --partition made bootdisk */
	int would_wrap;        /* dry run: --partition would make one */
	char *wrap_tmp;        /* host path of the new disk */

	/* facts */
	char *distro, *os_type, *arch, *product;
	int major, minor;
	enum bf_itool itool;
	struct bf_kernel *kernels;
	size_t nkernels;
	size_t default_kernel; /* index into kernels */
	int has_grub2;         /* grub-mkconfig / update-grub present */
	int has_grub_pc;       /* i386-pc modules present */
	int has_grub_efi;      /* x86_64-efi modules present */
	char *grub_cfg;        /* /boot/grub/grub.cfg or /boot/grub2/grub.cfg */
	char *esp;             /* appliance device of the ESP, NULL if none */
	struct sg_disk_facts disk; /* lib/guest/facts.c, after mounting */
	int bios_ok, uefi_ok;  /* boot code installed / present */
	/* initramfs rebuild script left for the bootloader step to run beside
	 * grub-mkconfig (NULL when it ran already) */
	char *ird_script;
};

/* ---- handle.c ---- */
/* Create the handle, add the drive(s) and launch; retries with TCG when
 * the launch with KVM fails (or hangs), reporting it once. */
int bf_launch(struct bf *bf, const char *extra_disk, const char *extra_fmt);
/* Record the libguestfs error of the last call as the context's error. */
int bf_gerr(struct bf *bf, const char *fmt, ...) SCIMG_PRINTF(2, 3);
/* Run SCRIPT with /bin/sh inside the guest (chroot).  *OUT (may be NULL)
 * gets stdout+stderr (the caller frees), *RC the exit status.  Returns 0
 * when the script could be run at all. */
int bf_sh(struct bf *bf, const char *script, char **out, int *rc);
/* Run two scripts at the same time in one guest shell (the appliance has
 * two vCPUs); each one's output and exit status come back separately. */
int bf_sh_pair(struct bf *bf, const char *a, char **out_a, int *rc_a,
	       const char *b, char **out_b, int *rc_b);
/* Read a whole guest file into a NUL-terminated string; NULL + 0 ret when
 * it does not exist.  Files over MAX bytes are an error. */
int bf_read(struct bf *bf, const char *path, size_t max, char **out);
/* Write (create or replace) a guest file, unless dry run. */
int bf_write(struct bf *bf, const char *path, const char *content);
int bf_exists(struct bf *bf, const char *path);
int bf_is_dir(struct bf *bf, const char *path);
/* Record a change (made, or planned under dry run). */
void bf_change(struct bf *bf, const char *what, const char *fmt, ...)
	SCIMG_PRINTF(3, 4);
void bf_warn(struct bf *bf, const char *fmt, ...) SCIMG_PRINTF(2, 3);
void bf_notice(struct bf *bf, const char *fmt, ...) SCIMG_PRINTF(2, 3);
/* Strings. */
char *bf_strdup(const char *s);
char *bf_printf(const char *fmt, ...) SCIMG_PRINTF(1, 2);

/* Shell-like "NAME=value" files (/etc/default/grub, initramfs.conf). */
/* Value of NAME with one level of quotes removed, or NULL (caller frees). */
char *bf_shvar_get(const char *text, const char *name);
/* New text with NAME set to VALUE (quoted with double quotes when
 * QUOTE); the last assignment is replaced, or a line is appended. */
char *bf_shvar_set(const char *text, const char *name, const char *value,
		   int quote);

/* ---- initramfs.c ---- */
/* Finish the deferred rebuild (bf->ird_script) from its output OUT and
 * record, verify.  With OUT NULL, run it now alone. */
int bf_initramfs_finish(struct bf *bf, char *out);

/* ---- inspect.c ---- */
int bf_inspect(struct bf *bf);
int bf_find_kernels(struct bf *bf);

/* ---- initramfs.c ---- */
int bf_initramfs(struct bf *bf);
/* Requested drivers plus the ones every bus needs, as module names. */
int bf_drv_wanted(const struct bf *bf, enum sg_drv d);

/* ---- bootloader.c ---- */
int bf_bootloader(struct bf *bf);
/* btrfs root in a subvolume: a /boot/grub/grub.cfg at the top level that
 * loads the subvolume's, for pvgrub2.  Remounts the filesystem: run last. */
int bf_btrfs_bridge(struct bf *bf);
int bf_btrfs_bridge_wanted(const struct bf *bf);
/* After the rest: what boot paths work, into report["boot-methods"]. */
void bf_boot_methods(struct bf *bf);

/* ---- devnames.c ---- */
int bf_devnames(struct bf *bf);
/* Map a guest device name (/dev/sda1, /dev/xvdb, /dev/nvme0n1p2, ...) to
 * "UUID=..." or "LABEL=..."; NULL if not a disk name or unknown. */
char *bf_devname_to_stable(struct bf *bf, const char *name);
/* Pure: disk index and partition number (0 = whole disk) of a guest disk
 * name; -1 if NAME is not /dev/sdX, hdX, vdX, xvdX, nvmeXnY[pZ]. */
int bf_parse_devname(const char *name, int *disk, int *part);
int bf_consoles(struct bf *bf);
int bf_netrules(struct bf *bf);

/* ---- partition.c ---- */
/* Before launch: host path for the new disk when --partition may be
 * needed (NULL when not asked).  After launch: copy the filesystem. */
int bf_partition_prepare(struct bf *bf, char **tmp, uint64_t *size);
/* Pure: the first two 512-byte sectors S (1024 bytes) of a disk of SIZE
 * bytes hold a partition table Linux reads: an MBR (0x55AA, boot flags 0
 * or 0x80) with a partition inside the disk, or a protective MBR and a GPT
 * header.  1 yes, 0 not shown (the appliance decides: --partition's wrap
 * looks at what the kernel found). */
int bf_partition_table_seen(const uint8_t *s, uint64_t size);
int bf_partition_wrap(struct bf *bf);

/* ---- bootfix.c ---- */
/* scimg_bootfix_run(), and with FACTS non-NULL the guest facts of
 * scimg_int_guest_describe() read from the fixed guest in the same
 * appliance (lib/sci-build.c). */
int scimg_int_bootfix_run(struct scimg_ctx *ctx, const char *path,
			  const char *format, const struct scimg_bootfix_opts *opts,
			  json_object **report, json_object **facts);

#endif
