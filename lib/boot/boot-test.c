/* boot-test.c - scimg_boot_test(): proof of boot under QEMU on each bus and
 * firmware.
 *
 * The image is opened through the library (any format, SCI included) and
 * its first sectors are looked at: a firmware that cannot boot it (no boot
 * code in the MBR for BIOS, no EFI system partition for UEFI) fails at
 * once, without QEMU.  QEMU then reads the image itself when it is raw or a
 * qcow2 that names no other file; anything else (VMDK, VHD, an SCI's
 * disk, a qcow2 with a backing file, a URL) is first converted to a qcow2
 * in a private temporary directory.  Either way QEMU writes only to its
 * -snapshot overlay, which lives in that directory too; the directory and
 * everything in it are removed before this returns, on success, failure or
 * cancel.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boot-int.h"
#include "appliance.h"
#include "check/check-int.h"

#define HEAD_LEN (128 * 1024)
#define DEFAULT_OVMF_CODE "/usr/share/OVMF/OVMF_CODE_4M.fd"
#define DEFAULT_OVMF_VARS "/usr/share/OVMF/OVMF_VARS_4M.fd"

static const unsigned bus_order[] = {
	SCIMG_BOOT_BUS_IDE, SCIMG_BOOT_BUS_SATA, SCIMG_BOOT_BUS_VIRTIO_BLK,
	SCIMG_BOOT_BUS_VIRTIO_SCSI, SCIMG_BOOT_BUS_NVME,
};
static const unsigned fw_order[] = { SCIMG_BOOT_FW_BIOS, SCIMG_BOOT_FW_UEFI };

/* ---- can the firmware boot it at all? ----------------------------------- */

/* GUID C12A7328-F81F-11D2-BA4B-00A0C93EC93B as stored on disk */
static const uint8_t esp_guid[16] = {
	0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11,
	0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b,
};

/* 1: a GPT lists an EFI system partition; 0: it lists none; -1: the table
 * lies beyond what was read (let the firmware decide). */
static int gpt_has_esp(const uint8_t *h, size_t len)
{
	uint64_t lba = scimg_le64(h + 512 + 72);
	uint32_t count = scimg_le32(h + 512 + 80), esz = scimg_le32(h + 512 + 84);

	if (esz < 128 || esz > 4096 || count > 4096 || lba > len / 512)
		return -1;
	if (lba * 512 + (uint64_t)count * esz > len)
		return -1;
	for (uint32_t i = 0; i < count; i++)
		if (memcmp(h + lba * 512 + (uint64_t)i * esz, esp_guid, 16) == 0)
			return 1;
	return 0;
}

/* Why firmware FW cannot boot a disk whose first bytes are H, into WHY, or
 * 0 when it may. */
static int not_bootable(unsigned fw, const uint8_t *h, size_t len, const char *content,
			char *why, size_t whylen)
{
	int mbr = len >= 512 && h[510] == 0x55 && h[511] == 0xAA;

	if (fw == SCIMG_BOOT_FW_BIOS) {
		if (!mbr) {
			snprintf(why, whylen, "not bootable with BIOS: the first sector has no "
				 "boot signature (0x55 0xAA at offset 510); the disk holds %s", content);
			return 1;
		}
		if (scimg_int_is_zero(h, 440)) {
			snprintf(why, whylen, "not bootable with BIOS: the boot code of the first "
				 "sector (offsets 0-439) is all zeros; the disk holds %s", content);
			return 1;
		}
		return 0;
	}
	if (len >= 520 && memcmp(h + 512, "EFI PART", 8) == 0) {
		if (gpt_has_esp(h, len) == 0) {
			snprintf(why, whylen, "not bootable with UEFI: the GPT has no EFI system "
				 "partition");
			return 1;
		}
		return 0;
	}
	if (mbr) {
		for (int i = 0; i < 4; i++)
			if (h[446 + 16 * i + 4] == 0xEF || h[446 + 16 * i + 4] == 0xEE)
				return 0;
		snprintf(why, whylen, "not bootable with UEFI: no GPT and no EFI system partition "
			 "(type 0xef) in the MBR; the disk holds %s", content);
		return 1;
	}
	snprintf(why, whylen, "not bootable with UEFI: no partition table; the disk holds %s",
		 content);
	return 1;
}

/* ---- files ------------------------------------------------------------------ */

static int find_program(const char *name, char *out, size_t outlen)
{
	const char *path = getenv("PATH");
	const char *p, *e;

	if (strchr(name, '/')) {
		snprintf(out, outlen, "%s", name);
		return access(out, X_OK) == 0;
	}
	for (p = path && *path ? path : "/usr/bin:/bin"; *p; p = *e ? e + 1 : e) {
		e = strchr(p, ':');
		if (!e)
			e = p + strlen(p);
		if (e > p) {
			snprintf(out, outlen, "%.*s/%s", (int)(e - p), p, name);
			if (access(out, X_OK) == 0)
				return 1;
		}
	}
	return 0;
}

/* Remove DIR and the files in it (it has no subdirectories). */
static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int fd = d ? dirfd(d) : -1;

	if (d) {
		while ((de = readdir(d)) != NULL)
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				unlinkat(fd, de->d_name, 0);
		closedir(d);
	}
	rmdir(dir);
}

/* ---- the report ------------------------------------------------------------ */

static json_object *boot_json(const struct scimg_boot_one *b)
{
	json_object *o = json_object_new_object();
	char method[64];

	if (!o)
		return NULL;
	if (b->xen) {
		/* a PV domU has no bus or firmware: its disk is xen-blkfront's,
		 * its loader pygrub (in dom0), pvgrub2 (in the domU) or none
		 * (direct: xl loads the guest's kernel and initramfs) */
		snprintf(method, sizeof(method), "xen-pv-%s", scimg_int_boot_xen_name(b->xen));
		json_object_object_add(o, "method", json_object_new_string(method));
		json_object_object_add(o, "platform", json_object_new_string("xen"));
		json_object_object_add(o, "bus", json_object_new_string("xen-pv"));
		json_object_object_add(o, "firmware", json_object_new_string(
					       scimg_int_boot_xen_name(b->xen)));
		/* and the blanket around it started with BIOS or UEFI */
		json_object_object_add(o, "blanket-firmware",
				       json_object_new_string(scimg_int_boot_fw_name(b->fw)));
	} else {
		snprintf(method, sizeof(method), "hvm-%s-%s", scimg_int_boot_fw_name(b->fw),
			 scimg_int_boot_bus_name(b->bus));
		json_object_object_add(o, "method", json_object_new_string(method));
		json_object_object_add(o, "platform", json_object_new_string("qemu"));
		json_object_object_add(o, "bus", json_object_new_string(scimg_int_boot_bus_name(b->bus)));
		json_object_object_add(o, "firmware", json_object_new_string(scimg_int_boot_fw_name(b->fw)));
	}
	/* null: QEMU never ran (the firmware could not boot the image) */
	json_object_object_add(o, "accel", b->tcg < 0 ? NULL
			       : json_object_new_string(b->tcg ? "tcg" : "kvm"));
	json_object_object_add(o, "result", json_object_new_string(scimg_int_boot_res_name(b->result)));
	json_object_object_add(o, "reason", json_object_new_string(b->reason));
	json_object_object_add(o, "seconds", json_object_new_double((double)(long)(b->seconds * 10 + 0.5) / 10));
	if (b->retries)
		json_object_object_add(o, "retried", json_object_new_string(
					       "the first run hit a TCG timing panic (IO-APIC + timer)"));
	json_object_object_add(o, "console", scimg_int_boot_tail_json(b));
	return o;
}

struct done_ctx {
	const struct scimg_boot_opts *opts;
};

static void on_done(void *opaque, struct scimg_boot_one *b)
{
	struct done_ctx *d = opaque;
	json_object *o;

	if (!d->opts->boot_done)
		return;
	o = boot_json(b);
	if (o) {
		d->opts->boot_done(d->opts->boot_done_opaque, o);
		json_object_put(o);
	}
}

/* Number of boots to run at once: one per core, as many as free RAM holds
 * (guest RAM plus QEMU's own ~200 MiB each, 256 MiB left over). */
static int auto_jobs(int memory_mib)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	long long avail = -1;
	char line[256];
	FILE *f = fopen("/proc/meminfo", "re");
	int jobs;

	if (f) {
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "MemAvailable: %lld kB", &avail) == 1)
				break;
		fclose(f);
	}
	jobs = cpus > 0 ? (int)(cpus > 64 ? 64 : cpus) : 1;
	if (avail > 0) {
		long long by_mem = (avail / 1024 - 256) / (memory_mib + 200);
		if (by_mem < jobs)
			jobs = (int)by_mem;
	}
	return jobs < 1 ? 1 : jobs;
}

/* Whether a boot still to run reads the image as a disk (every boot but
 * --xen=sci, which hands QEMU the package file). */
static int need_disk(const struct scimg_boot_one *boots, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (boots[i].state != SCIMG_BOOT_DONE && boots[i].xen != SCIMG_BOOT_XEN_SCI)
			return 1;
	return 0;
}

/* Whether QEMU may read the image directly: raw, or qcow2 naming no other
 * file, from a local path.  Otherwise it is converted first. */
static int qemu_reads_directly(struct scimg_image *img, const char *path, const char **qfmt)
{
	const char *f = scimg_image_format(img);
	json_object *info = NULL, *v;
	int ok = 0;

	if (scimg_int_name_is_url(path))
		return 0;
	if (!strcmp(f, "raw")) {
		*qfmt = "raw";
		return 1;
	}
	if (strcmp(f, "qcow2") != 0 || scimg_image_info(img, &info) < 0)
		return 0;
	ok = !json_object_object_get_ex(info, "backing-filename", &v) &&
	     !strstr(json_object_to_json_string(info), "data-file");
	json_object_put(info);
	*qfmt = "qcow2";
	return ok;
}

/* The blanket for the Xen boots: O->blanket, or the default cache's (never
 * built here: that needs the Debian archive and minutes); QEMU must be able
 * to read it without following names in it. */
static int find_blanket(struct scimg_ctx *ctx, const struct scimg_boot_opts *o, char **path,
			const char **fmt)
{
	struct scimg_image *img = NULL;
	int r;

	if (o->blanket) {
		if (!(*path = strdup(o->blanket)))
			return scimg_int_err(ctx, -ENOMEM, "out of memory");
	} else {
		struct scimg_blanket_opts bo;

		memset(&bo, 0, sizeof(bo));
		bo.size = sizeof(bo);
		bo.no_build = 1;
		if ((r = scimg_blanket_path(ctx, &bo, path, NULL)) < 0) {
			scimg_int_err_prefix(ctx, "Xen boots need the blanket");
			return r;
		}
	}
	if ((r = scimg_image_open(ctx, *path, NULL, &img)) < 0) {
		scimg_int_err_prefix(ctx, "the blanket");
		return r;
	}
	if (!qemu_reads_directly(img, *path, fmt))
		r = scimg_int_err(ctx, -EINVAL, "the blanket '%s' must be raw or a qcow2 that names no "
				  "other file (as `scimg blanket create` writes it), not %s", *path,
				  scimg_image_format(img));
	scimg_image_close(img);
	return r;
}

/* --xen=direct: the carrier disk (the guest's default kernel, initramfs
 * and command line, read from ENV->disk through a read-only libguestfs
 * appliance) in the private directory, as ENV->carrier.  A guest with
 * nothing to boot directly fails its boot at once, with the reason and
 * without QEMU (as a firmware that cannot boot the image does): returns the
 * number of those boots then (one per blanket firmware: that many fewer to
 * run), 0 when the carrier is there, -errno when the inspection could not
 * run. */
static int direct_carrier(struct scimg_ctx *ctx, const struct scimg_boot_opts *o,
			  struct scimg_boot_env *env, char **carrier,
			  struct scimg_boot_one *boots, size_t n, struct done_ctx *dctx)
{
	struct scimg_guest_opts g;
	char why[512];
	int r, nfail = 0;

	if (asprintf(carrier, "%s/carrier.tar", env->tmpdir) < 0) {
		*carrier = NULL;
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	}
	memset(&g, 0, sizeof(g));
	g.notice = o->notice;
	g.notice_opaque = o->notice_opaque;
	g.tmpdir = env->tmpdir;
	r = scimg_int_guest_direct_carrier(ctx, env->disk, env->disk_format, *carrier, &g,
					   why, sizeof(why));
	if (r < 0) {
		scimg_int_err_prefix(ctx, "--xen=direct: reading the guest's kernel");
		return r;
	}
	if (!why[0]) {
		env->carrier = *carrier;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if (boots[i].xen == SCIMG_BOOT_XEN_DIRECT) {
			struct scimg_boot_one *b = &boots[i];

			nfail++;
			b->state = SCIMG_BOOT_DONE;
			b->result = SCIMG_BOOT_RES_FAIL;
			snprintf(b->reason, sizeof(b->reason), "no kernel to boot directly: %.500s", why);
			b->tcg = -1; /* no accelerator: QEMU never ran */
			b->reported = 1;
			on_done(dctx, b);
		}
	return nfail;
}

/* ---- boot lists (--bus, --firmware, --xen, --boot, -o verify) ------------ */

static const struct {
	const char *name;
	unsigned kind, bits;
} list_names[] = {
	{ "ide", SCIMG_BOOT_LIST_BUS, SCIMG_BOOT_BUS_IDE },
	{ "sata", SCIMG_BOOT_LIST_BUS, SCIMG_BOOT_BUS_SATA },
	{ "virtio-blk", SCIMG_BOOT_LIST_BUS, SCIMG_BOOT_BUS_VIRTIO_BLK },
	{ "virtio-scsi", SCIMG_BOOT_LIST_BUS, SCIMG_BOOT_BUS_VIRTIO_SCSI },
	{ "nvme", SCIMG_BOOT_LIST_BUS, SCIMG_BOOT_BUS_NVME },
	{ "bios", SCIMG_BOOT_LIST_FIRMWARE, SCIMG_BOOT_FW_BIOS },
	{ "uefi", SCIMG_BOOT_LIST_FIRMWARE, SCIMG_BOOT_FW_UEFI },
	{ "pygrub", SCIMG_BOOT_LIST_XEN, SCIMG_BOOT_XEN_PYGRUB },
	{ "pvgrub2", SCIMG_BOOT_LIST_XEN, SCIMG_BOOT_XEN_PVGRUB2 },
	{ "direct", SCIMG_BOOT_LIST_XEN, SCIMG_BOOT_XEN_DIRECT },
	{ "sci", SCIMG_BOOT_LIST_XEN, SCIMG_BOOT_XEN_SCI },
	{ "xen", SCIMG_BOOT_LIST_XEN, SCIMG_BOOT_XEN_PYGRUB | SCIMG_BOOT_XEN_PVGRUB2 },
};

/* "all": every bus when buses are asked for, else both of the one kind */
static unsigned list_all(unsigned kinds, unsigned *kind)
{
	if (kinds & SCIMG_BOOT_LIST_BUS) {
		*kind = SCIMG_BOOT_LIST_BUS;
		return SCIMG_BOOT_BUS_ALL;
	}
	*kind = kinds & SCIMG_BOOT_LIST_FIRMWARE ? SCIMG_BOOT_LIST_FIRMWARE : SCIMG_BOOT_LIST_XEN;
	return *kind == SCIMG_BOOT_LIST_FIRMWARE ? SCIMG_BOOT_FW_BIOS | SCIMG_BOOT_FW_UEFI
						 : SCIMG_BOOT_XEN_PYGRUB | SCIMG_BOOT_XEN_PVGRUB2;
}

static int list_known(size_t i, unsigned kinds, unsigned xen_allowed)
{
	return (list_names[i].kind & kinds) &&
	       (list_names[i].kind != SCIMG_BOOT_LIST_XEN ||
		(list_names[i].bits & ~xen_allowed) == 0);
}

int scimg_boot_parse_list(const char *list, const char *seps, unsigned kinds,
			  unsigned xen_allowed, unsigned *buses, unsigned *firmware,
			  unsigned *xen, char *err, size_t errlen)
{
	unsigned out[3] = { 0, 0, 0 }, any = 0; /* bus, firmware, xen */
	const char *p = list ? list : "";

	if (errlen)
		*err = '\0';
	kinds &= SCIMG_BOOT_LIST_BUS | SCIMG_BOOT_LIST_FIRMWARE | SCIMG_BOOT_LIST_XEN;
	if (!kinds || !seps || !*seps || (kinds & SCIMG_BOOT_LIST_BUS && !buses) ||
	    (kinds & SCIMG_BOOT_LIST_FIRMWARE && !firmware) || (kinds & SCIMG_BOOT_LIST_XEN && !xen)) {
		snprintf(err, errlen, "invalid arguments");
		return -EINVAL;
	}
	while (*p) {
		size_t len = strcspn(p, seps), i;
		unsigned kind = 0, bits = 0;

		if (len == 3 && !strncmp(p, "all", 3)) {
			bits = list_all(kinds, &kind);
		} else {
			for (i = 0; i < SCIMG_ARRAY_SIZE(list_names); i++)
				if (strlen(list_names[i].name) == len && !strncmp(p, list_names[i].name, len) &&
				    list_known(i, kinds, xen_allowed))
					break;
			if (len && i == SCIMG_ARRAY_SIZE(list_names)) {
				size_t n = 0;
				int w = snprintf(err, errlen, "unknown '%.*s' (expected ",
						 (int)(len > 64 ? 64 : len), p);

				n = w > 0 ? (size_t)w : 0;
				for (i = 0; i < SCIMG_ARRAY_SIZE(list_names); i++) {
					if (!list_known(i, kinds, xen_allowed))
						continue;
					if (n < errlen && (w = snprintf(err + n, errlen - n, "%s, ",
									list_names[i].name)) > 0)
						n += (size_t)w;
					/* with buses, "all" follows them */
					if (i == 4 && (kinds & SCIMG_BOOT_LIST_BUS) && n < errlen &&
					    (w = snprintf(err + n, errlen - n, "all, ")) > 0)
						n += (size_t)w;
				}
				if (!(kinds & SCIMG_BOOT_LIST_BUS) && n < errlen &&
				    (w = snprintf(err + n, errlen - n, "all, ")) > 0)
					n += (size_t)w;
				if (n >= 2 && n - 2 < errlen)
					snprintf(err + n - 2, errlen - (n - 2), ")");
				return -EINVAL;
			}
			if (len) {
				kind = list_names[i].kind;
				bits = list_names[i].bits;
			}
		}
		if (kind) {
			out[kind == SCIMG_BOOT_LIST_BUS ? 0 : kind == SCIMG_BOOT_LIST_FIRMWARE ? 1 : 2] |= bits;
			any = 1;
		}
		p += len;
		if (*p)
			p++;
	}
	if (!any) {
		snprintf(err, errlen, "empty list");
		return -EINVAL;
	}
	if (kinds & SCIMG_BOOT_LIST_BUS)
		*buses = out[0];
	if (kinds & SCIMG_BOOT_LIST_FIRMWARE)
		*firmware = out[1];
	if (kinds & SCIMG_BOOT_LIST_XEN)
		*xen = out[2];
	return 0;
}

int scimg_boot_test(struct scimg_ctx *ctx, const struct scimg_boot_opts *uopts,
		    json_object **report)
{
	struct scimg_boot_opts o;
	struct scimg_boot_env env;
	struct scimg_boot_one *boots = NULL;
	struct scimg_image *img = NULL;
	struct done_ctx dctx;
	regex_t expect;
	int have_expect = 0, r, jobs, nok = 0, nremain = 0, sci_ok;
	char content[200], qemu[4096], why[2][512], *disk = NULL, *tmpdir = NULL, *blanket = NULL;
	char *carrier = NULL;
	const char *qfmt = NULL, *fmtname = NULL, *blanket_fmt = NULL;
	unsigned fw_no = 0; /* firmware that cannot boot the image */
	uint8_t *head = NULL;
	size_t n = 0, headlen;
	json_object *rep = NULL, *arr;

	if (report)
		*report = NULL;
	memset(&o, 0, sizeof(o));
	if (!uopts || uopts->size < offsetof(struct scimg_boot_opts, format) || !report)
		return scimg_int_err(ctx, -EINVAL, "scimg_boot_test: options or report missing, or "
				     "options.size too small");
	memcpy(&o, uopts, uopts->size < sizeof(o) ? uopts->size : sizeof(o));
	if (!o.path)
		return scimg_int_err(ctx, -EINVAL, "scimg_boot_test: no image given");
	/* nothing asked for: virtio-blk with BIOS; only Xen asked for: only Xen */
	if (!o.buses && !(o.xen && !o.firmware))
		o.buses = SCIMG_BOOT_BUS_VIRTIO_BLK;
	if (!o.firmware)
		o.firmware = SCIMG_BOOT_FW_BIOS;
	if (!o.blanket_firmware)
		o.blanket_firmware = SCIMG_BOOT_FW_BIOS;
	if (o.xen & ~15u || o.blanket_firmware & ~3u)
		return scimg_int_err(ctx, -EINVAL, "scimg_boot_test: unknown Xen loader (0x%x) or "
				     "blanket firmware (0x%x) bits", o.xen & ~15u, o.blanket_firmware & ~3u);
	if (o.buses & ~SCIMG_BOOT_BUS_ALL || o.firmware & ~3u)
		return scimg_int_err(ctx, -EINVAL, "scimg_boot_test: unknown bus (0x%x) or firmware "
				     "(0x%x) bits", o.buses & ~SCIMG_BOOT_BUS_ALL, o.firmware & ~3u);
	if (o.timeout < 0 || o.memory_mib < 0 || o.jobs < 0)
		return scimg_int_err(ctx, -EINVAL, "scimg_boot_test: negative timeout, memory or jobs");
	if (!o.memory_mib)
		o.memory_mib = SCIMG_BOOT_MEMORY_MIB;
	if (o.memory_mib < 64 || o.memory_mib > 1024 * 1024)
		return scimg_int_err(ctx, -EINVAL, "guest memory %d MiB out of range (64 MiB - 1 TiB)",
				     o.memory_mib);
	if (o.expect) {
		int e = regcomp(&expect, o.expect, REG_EXTENDED | REG_NOSUB);
		if (e) {
			char msg[256];
			regerror(e, &expect, msg, sizeof(msg));
			return scimg_int_err(ctx, -EINVAL, "expected-output pattern '%s' is not a valid "
					     "extended regular expression: %s", o.expect, msg);
		}
		have_expect = 1;
	}

	/* the image and its first sectors */
	if ((r = scimg_image_open(ctx, o.path, o.format, &img)) < 0)
		goto out;
	fmtname = scimg_image_format(img); /* static: outlives the handle */
	headlen = scimg_image_size(img) < HEAD_LEN ? (size_t)scimg_image_size(img) : HEAD_LEN;
	head = calloc(1, HEAD_LEN);
	if (!head) {
		r = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	if (headlen && (r = scimg_image_pread(img, head, headlen, 0)) < 0)
		goto out;
	if (headlen)
		scimg_int_detect_content(head, headlen, content, sizeof(content));
	else
		snprintf(content, sizeof(content), "nothing (the image is empty)");
	sci_ok = !strcmp(fmtname, "sci") && !scimg_int_name_is_url(o.path);
	for (int f = 0; f < 2; f++)
		if ((o.firmware & fw_order[f]) &&
		    not_bootable(fw_order[f], head, headlen, content, why[f], sizeof(why[f])))
			fw_no |= fw_order[f];

	/* the boots, bus by bus */
	boots = calloc(SCIMG_ARRAY_SIZE(bus_order) * SCIMG_ARRAY_SIZE(fw_order) +
		       4 * SCIMG_ARRAY_SIZE(fw_order), sizeof(*boots));
	if (!boots) {
		r = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	memset(&dctx, 0, sizeof(dctx));
	dctx.opts = &o;
	/* the Xen boots first: they take longest; b->fw is the blanket's */
	for (size_t f = 0; f < SCIMG_ARRAY_SIZE(fw_order); f++)
		for (unsigned x = SCIMG_BOOT_XEN_PYGRUB; x <= SCIMG_BOOT_XEN_SCI; x <<= 1)
			if ((o.xen & x) && (o.blanket_firmware & fw_order[f])) {
				struct scimg_boot_one *b = &boots[n++];

				b->xen = x;
				b->fw = fw_order[f];
				b->con_fd = -1;
				b->tcg = 1;
				if (x == SCIMG_BOOT_XEN_SCI && !sci_ok) {
					/* fails at once: nothing to start */
					b->state = SCIMG_BOOT_DONE;
					b->result = SCIMG_BOOT_RES_FAIL;
					snprintf(b->reason, sizeof(b->reason), "--xen=sci starts a Supercloud "
						 "image package with its own xl.cfg: the image is %s%s",
						 scimg_int_name_is_url(o.path) ? "a URL, not a local " : "",
						 scimg_int_name_is_url(o.path) ? "file" : fmtname);
					b->tcg = -1;
					b->reported = 1;
					on_done(&dctx, b);
				} else {
					nremain++;
				}
			}
	for (size_t f = 0; f < SCIMG_ARRAY_SIZE(fw_order); f++)
		for (size_t i = 0; i < SCIMG_ARRAY_SIZE(bus_order); i++) {
			struct scimg_boot_one *b = &boots[n];

			if (!(o.buses & bus_order[i]) || !(o.firmware & fw_order[f]))
				continue;
			n++;
			b->bus = bus_order[i];
			b->fw = fw_order[f];
			b->con_fd = -1;
			b->tcg = 1;
			if (fw_no & fw_order[f]) {
				b->state = SCIMG_BOOT_DONE;
				b->result = SCIMG_BOOT_RES_FAIL;
				snprintf(b->reason, sizeof(b->reason), "%.500s", why[f]);
				b->tcg = -1; /* no accelerator: QEMU never ran */
				b->reported = 1;
				on_done(&dctx, b);
			} else {
				nremain++;
			}
		}

	memset(&env, 0, sizeof(env));
	env.ctx = ctx;
	env.memory_mib = o.memory_mib;
	env.timeout = o.timeout;
	env.kvm = !scimg_int_env_forces_tcg() && !scimg_int_kvm_known_broken() &&
		  access("/dev/kvm", R_OK | W_OK) == 0;
	if (nremain) {
		const char *q = o.qemu ? o.qemu : "qemu-system-x86_64";

		if (!find_program(q, qemu, sizeof(qemu))) {
			r = scimg_int_err(ctx, -ENOENT, "'%s' not found%s (install the Debian package "
					  "qemu-system-x86)", q, strchr(q, '/') ? "" : " in $PATH");
			goto out;
		}
		env.qemu = qemu;
		if ((o.firmware & ~fw_no & SCIMG_BOOT_FW_UEFI) ||
		    (o.xen && (o.blanket_firmware & SCIMG_BOOT_FW_UEFI))) {
			env.ovmf_code = o.ovmf_code ? o.ovmf_code : DEFAULT_OVMF_CODE;
			env.ovmf_vars = o.ovmf_vars ? o.ovmf_vars : DEFAULT_OVMF_VARS;
			if (access(env.ovmf_code, R_OK) != 0 || access(env.ovmf_vars, R_OK) != 0) {
				r = scimg_int_err(ctx, -ENOENT, "UEFI firmware '%s' or '%s' not found "
						  "(install the Debian package ovmf)",
						  env.ovmf_code, env.ovmf_vars);
				goto out;
			}
		}
		if (o.xen && (r = find_blanket(ctx, &o, &blanket, &blanket_fmt)) < 0)
			goto out;
		env.blanket = blanket;
		env.blanket_format = blanket_fmt;
		/* /var/tmp: the overlay of a large image may not fit a tmpfs */
		if ((r = scimg_int_tmp_dir(ctx, "boot", NULL, "/var/tmp", &tmpdir)) < 0)
			goto out;
		env.tmpdir = tmpdir;
		env.sci = sci_ok ? o.path : NULL;
		if (!need_disk(boots, n)) {
			/* --xen=sci alone: QEMU reads the package itself */
			env.disk = NULL;
		} else if (qemu_reads_directly(img, o.path, &qfmt)) {
			env.disk = o.path;
			env.disk_format = qfmt;
		} else {
			struct scimg_convert_opts c;

			if (asprintf(&disk, "%s/disk.qcow2", tmpdir) < 0) {
				disk = NULL;
				r = scimg_int_err(ctx, -ENOMEM, "out of memory");
				goto out;
			}
			scimg_image_close(img);
			img = NULL;
			memset(&c, 0, sizeof(c));
			c.size = sizeof(c);
			c.src = o.path;
			c.src_format = fmtname;
			c.dst = disk;
			c.dst_format = "qcow2";
			c.no_sync = 1;
			if ((r = scimg_convert(ctx, &c)) < 0) {
				scimg_int_err_prefix(ctx, "converting '%s' to a temporary qcow2 for QEMU",
						     o.path);
				goto out;
			}
			env.disk = disk;
			env.disk_format = "qcow2";
		}
		if (o.xen & SCIMG_BOOT_XEN_DIRECT) {
			if ((r = direct_carrier(ctx, &o, &env, &carrier, boots, n, &dctx)) < 0)
				goto out;
			nremain -= r;
		}
		env.expect = have_expect ? &expect : NULL;
		env.expect_src = o.expect;
		env.notice = o.notice;
		env.notice_opaque = o.notice_opaque;
		env.done = on_done;
		env.done_opaque = &dctx;
		jobs = o.jobs ? o.jobs : auto_jobs(o.memory_mib);
		if (jobs > nremain)
			jobs = nremain;
		if (nremain && (r = scimg_int_boot_run(&env, boots, n, jobs)) < 0)
			goto out;
	} else {
		jobs = 0;
	}

	rep = json_object_new_object();
	arr = json_object_new_array();
	if (!rep || !arr) {
		json_object_put(arr);
		r = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	json_object_object_add(rep, "boot-test-version", json_object_new_int(1));
	json_object_object_add(rep, "image", json_object_new_string(o.path));
	json_object_object_add(rep, "format", json_object_new_string(fmtname));
	json_object_object_add(rep, "content", json_object_new_string(content));
	json_object_object_add(rep, "accel", json_object_new_string(nremain ? env.kvm ? "kvm" : "tcg"
								    : "none"));
	json_object_object_add(rep, "timeout", json_object_new_int(
		o.timeout ? o.timeout : env.kvm ? SCIMG_BOOT_TIMEOUT_KVM : SCIMG_BOOT_TIMEOUT_TCG));
	json_object_object_add(rep, "memory-mib", json_object_new_int(o.memory_mib));
	json_object_object_add(rep, "jobs", json_object_new_int(jobs));
	for (size_t i = 0; i < n; i++) {
		nok += boots[i].result == SCIMG_BOOT_RES_OK;
		json_object_array_add(arr, boot_json(&boots[i]));
	}
	json_object_object_add(rep, "boots", arr);
	json_object_object_add(rep, "ok", json_object_new_int(nok));
	json_object_object_add(rep, "failed", json_object_new_int((int)n - nok));
	*report = rep;
	r = (size_t)nok == n ? 0 : 1;
out:
	if (img)
		scimg_image_close(img);
	if (tmpdir)
		remove_dir(tmpdir);
	free(tmpdir);
	if (have_expect)
		regfree(&expect);
	free(disk);
	free(carrier);
	free(blanket);
	free(head);
	free(boots);
	return r;
}
