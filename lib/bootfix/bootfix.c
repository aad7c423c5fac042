/* bootfix.c - scimg_bootfix_run(): one appliance launch that makes a Linux
 * guest boot on every bus and as a Xen PV domU, and the report of it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bootfix-int.h"
#include "check/check-int.h"

static void bf_free(struct bf *bf)
{
	size_t i;

	if (bf->g) {
		guestfs_close(bf->g);
		bf->g = NULL;
	}
	for (i = 0; i < bf->nkernels; i++) {
		free(bf->kernels[i].version);
		free(bf->kernels[i].vmlinuz);
		free(bf->kernels[i].initrd);
		free(bf->kernels[i].compression);
		free(bf->kernels[i].rebuild_cmd);
		free(bf->kernels[i].rebuild_target);
		free(bf->kernels[i].builtin);
		json_object_put(bf->kernels[i].initrd_mods);
		scimg_int_sg_moddep_free(bf->kernels[i].moddep);
		for (int d = 0; d < SG_NDRV; d++)
			free(bf->kernels[i].missing_dep[d]);
	}
	free(bf->kernels);
	scimg_int_strv_free(bf->devices);
	free(bf->bootdisk);
	free(bf->root);
	free(bf->root_uuid);
	free(bf->distro);
	free(bf->os_type);
	free(bf->arch);
	free(bf->product);
	free(bf->grub_cfg);
	free(bf->esp);
	scimg_int_sg_disk_facts_free(&bf->disk);
	free(bf->ird_script);
}

static json_object *drivers_json(unsigned drivers)
{
	json_object *a = json_object_new_array();

	if (drivers & SCIMG_BOOTFIX_DRV_XEN)
		json_object_array_add(a, json_object_new_string("xen"));
	if (drivers & SCIMG_BOOTFIX_DRV_VIRTIO)
		json_object_array_add(a, json_object_new_string("virtio"));
	if (drivers & SCIMG_BOOTFIX_DRV_NVME)
		json_object_array_add(a, json_object_new_string("nvme"));
	return a;
}

/* An image handed over as raw must not be another format: libguestfs
 * would write through its metadata. */
static const char *sniff(const char *path, const char *format)
{
	unsigned char h[512];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f)
		return NULL;
	n = fread(h, 1, sizeof(h), f);
	fclose(f);
	if (n >= 4 && memcmp(h, "QFI\xfb", 4) == 0)
		return strcmp(format, "qcow2") == 0 ? NULL : "qcow2";
	if (strcmp(format, "qcow2") == 0)
		return "not qcow2";
	if (n >= 4 && memcmp(h, "KDMV", 4) == 0)
		return "vmdk";
	if (n >= 21 && memcmp(h, "# Disk DescriptorFile", 21) == 0)
		return "vmdk";
	if (n >= 8 && memcmp(h, "conectix", 8) == 0)
		return "vpc";
	if (n >= 8 && memcmp(h, "vhdxfile", 8) == 0)
		return "vhdx";
	if (n >= 4 && memcmp(h, "COWD", 4) == 0)
		return "vmdk";
	return NULL;
}

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wall seconds of the step that just ended, into report.timings. */
static void mark(struct bf *bf, const char *step)
{
	double now = mono_now();

	json_object_object_add(bf->timings, step,
			       json_object_new_double((double)(long)((now - bf->t_mark) * 100) / 100));
	bf->t_mark = now;
}

/* Progress: step NAME starts (opts->progress_ex), or the run is "done". */
static void step_start(struct bf *bf, const char *name)
{
	struct scimg_progress p;

	if (!bf->opts->progress_ex)
		return;
	memset(&p, 0, sizeof(p));
	p.size = sizeof(p);
	p.phase = name;
	if (strcmp(name, "done") != 0 && bf->step < bf->steps)
		bf->step++;
	p.step = bf->step;
	p.steps = bf->steps;
	bf->opts->progress_ex(bf->opts->progress_opaque, &p);
}

/* STEP: a step the user sees in the progress; STEP_QUIET: one that
 * mostly has nothing to do (its time still goes into the timings) */
#define STEP(name, call)                              \
	do {                                          \
		step_start(&bf, name);                \
		STEP_QUIET(name, call);               \
	} while (0)
#define STEP_QUIET(name, call)                        \
	do {                                          \
		r = (call);                           \
		if (r < 0)                            \
			goto out;                     \
		mark(&bf, name);                      \
		r = scimg_int_check_cancel(ctx);      \
		if (r < 0)                            \
			goto out;                     \
	} while (0)

int scimg_bootfix_run(struct scimg_ctx *ctx, const char *path,
		      const char *format, const struct scimg_bootfix_opts *opts,
		      json_object **report)
{
	return scimg_int_bootfix_run(ctx, path, format, opts, report, NULL);
}

int scimg_int_bootfix_run(struct scimg_ctx *ctx, const char *path,
			  const char *format, const struct scimg_bootfix_opts *opts,
			  json_object **report, json_object **facts)
{
	struct scimg_bootfix_opts oc;
	struct bf bf;
	uint64_t newsize = 0;
	const char *bl_step;
	char *tmp = NULL;
	json_object *gfacts = NULL;
	int r, table = 0, wrap;

	if (report)
		*report = NULL;
	if (facts)
		*facts = NULL;
	if (!opts) {
		memset(&oc, 0, sizeof(oc));
		oc.size = sizeof(oc);
	} else {
		/* the caller's struct may be older (smaller) than ours */
		r = scimg_int_opts_struct_copy(ctx, &oc, sizeof(oc), opts, "scimg_bootfix_opts");
		if (r < 0)
			return r;
	}
	opts = &oc;
	const char *given = format;

	if (!format) {
		/* nothing in libscimg recognised it: qcow2 by its magic (libguestfs
		 * opens it), anything else known is refused below, else raw */
		const char *other = sniff(path, "raw");
		format = other && strcmp(other, "qcow2") == 0 ? "qcow2" : "raw";
	}
	if (strcmp(format, "raw") != 0 && strcmp(format, "qcow2") != 0)
		return scimg_int_err(ctx, -ENOTSUP,
				     "'%s': inject-drivers changes raw or qcow2 images in place, not %s; "
				     "convert it first (scimg convert -O qcow2) or write a fixed copy with -O",
				     path, format);
	if (access(path, opts->dry_run ? R_OK : R_OK | W_OK) != 0) {
		int e = errno;
		return scimg_int_err(ctx, -e, "'%s': %s", path, strerror(e));
	}

	{
		const char *other = sniff(path, format);
		if (other)
			return scimg_int_err(ctx, -EINVAL,
					     "'%s': %s%s%sits header says %s; inject-drivers changes raw "
					     "or qcow2 images only: convert it first or use -O", path,
					     given ? "given as " : "", given ? given : "", given ? " but " : "",
					     other);
	}

	{
		/* QEMU (libguestfs) follows a qcow2's backing and data files by
		 * its own rules: scimg's confined open vets them first (an image
		 * is untrusted: lib/source/ref.c) */
		struct scimg_image *chk = NULL;
		uint8_t s01[1024];
		if ((r = scimg_image_open(ctx, path, format, &chk)) < 0)
			return r;
		/* --partition on a disk that plainly has a partition table
		 * has nothing to do: no new disk, no second drive (the SCI
		 * build asks for it on every image) */
		if (opts->partition && scimg_image_size(chk) >= sizeof(s01) &&
		    scimg_image_pread(chk, s01, sizeof(s01), 0) == 0)
			table = bf_partition_table_seen(s01, scimg_image_size(chk));
		scimg_image_close(chk);
	}

	memset(&bf, 0, sizeof(bf));
	bf.ctx = ctx;
	bf.opts = opts;
	bf.path = path;
	bf.format = format;
	bf.dry_run = opts->dry_run;
	bf.drivers = opts->drivers ? opts->drivers & SCIMG_BOOTFIX_DRV_ALL : SCIMG_BOOTFIX_DRV_ALL;
	bf.report = json_object_new_object();
	bf.guest = json_object_new_object();
	bf.changes = json_object_new_array();
	bf.warnings = json_object_new_array();
	bf.timings = json_object_new_object();
	bf.t_mark = mono_now();
	if (!bf.report || !bf.guest || !bf.changes || !bf.warnings || !bf.timings) {
		json_object_put(bf.report);
		json_object_put(bf.guest);
		json_object_put(bf.changes);
		json_object_put(bf.warnings);
		json_object_put(bf.timings);
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	}
	json_object_object_add(bf.report, "image", json_object_new_string(path));
	json_object_object_add(bf.report, "format", json_object_new_string(format));
	json_object_object_add(bf.report, "dry-run", json_object_new_boolean(bf.dry_run));
	json_object_object_add(bf.report, "drivers", drivers_json(bf.drivers));
	json_object_object_add(bf.report, "guest", bf.guest);
	json_object_object_add(bf.report, "changes", bf.changes);
	json_object_object_add(bf.report, "warnings", bf.warnings);
	json_object_object_add(bf.report, "timings", bf.timings);

	/* the steps below, for the progress */
	wrap = opts->partition && !table;
	if (opts->partition && table) {
		/* what bf_partition_wrap() says when it finds partitions */
		json_object_object_add(bf.report, "partitioned", json_object_new_string("already"));
		bf_warn(&bf, "the image already has a partition table; --partition has nothing to do");
	}
	bf.steps = 10 + (wrap && !bf.dry_run) + (wrap != 0) + (facts && !bf.dry_run);
	if (wrap && !bf.dry_run) {
		step_start(&bf, "partition-prepare");
		r = bf_partition_prepare(&bf, &tmp, &newsize);
		if (r < 0)
			goto out;
		bf.wrap_tmp = tmp;
		mark(&bf, "partition-prepare");
	}
	STEP("launch", bf_launch(&bf, tmp, format));
	bf.devices = guestfs_list_devices(bf.g);
	if (!bf.devices) {
		r = bf_gerr(&bf, "listing the disks");
		goto out;
	}
	if (wrap)
		STEP("partition", bf_partition_wrap(&bf));
	STEP("inspect", bf_inspect(&bf));
	STEP("kernels", bf_find_kernels(&bf));
	STEP("devnames", bf_devnames(&bf));
	STEP("netrules", bf_netrules(&bf));
	STEP("consoles", bf_consoles(&bf));
	STEP("initramfs", bf_initramfs(&bf));
	/* a deferred rebuild runs inside the bootloader step, beside grub-mkconfig */
	bl_step = bf.ird_script ? "bootloader+initramfs-rebuild" : "bootloader";
	STEP(bl_step, bf_bootloader(&bf));
	STEP_QUIET("initramfs", bf_initramfs_finish(&bf, NULL)); /* if still pending */
	if (facts && !bf.dry_run) {
		/* the facts check would find, from this same appliance (the
		 * SCI build: one launch, not two) */
		/* the disk as this run left it (what its own boot-method
		 * table uses): no second probe of the partitions, volumes and
		 * boot code; after --partition made a new disk, read afresh */
		struct sg_disk_facts now = bf.disk;
		json_object *mods = json_object_new_object();
		now.bios_code = bf.bios_ok;
		now.uefi_fallback = bf.uefi_ok;
		now.esp_dev = bf.esp;
		/* and the initramfs listings this run made after its rebuild */
		for (size_t i = 0; mods && i < bf.nkernels; i++)
			if (bf.kernels[i].initrd && bf.kernels[i].initrd_mods)
				json_object_object_add(mods, bf.kernels[i].initrd,
						       json_object_get(bf.kernels[i].initrd_mods));
		step_start(&bf, "describe");
		r = scimg_int_guest_describe(ctx, bf.g, path, bf.root, bf_btrfs_bridge_wanted(&bf),
					     bf.wrapped ? NULL : &now, mods, &gfacts);
		json_object_put(mods);
		STEP_QUIET("describe", r);
	}
	STEP("btrfs-bridge", bf_btrfs_bridge(&bf)); /* remounts: last */
	bf_boot_methods(&bf);

	step_start(&bf, "shutdown");
	if (guestfs_umount_all(bf.g) == -1) {
		r = bf_gerr(&bf, "unmounting the guest filesystems");
		goto out;
	}
	/* shutdown flushes every write to the image and reports a failure */
	if (guestfs_shutdown(bf.g) == -1) {
		r = bf_gerr(&bf, "closing the appliance");
		goto out;
	}
	mark(&bf, "shutdown");
	if (tmp && bf.wrapped) {
		if (rename(tmp, path) != 0) {
			int e = errno;
			r = scimg_int_err(ctx, -e, "'%s': replacing it with the partitioned disk: %s",
					  path, strerror(e));
			goto out;
		}
		free(tmp);
		tmp = NULL;
	}
	r = 0;
	step_start(&bf, "done");
out:
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	json_object_object_add(bf.report, "result",
			       json_object_new_string(r == 0 ? "ok" : scimg_ctx_errmsg(ctx)));
	bf_free(&bf);
	if (facts && r == 0)
		*facts = gfacts;
	else
		json_object_put(gfacts);
	if (report)
		*report = bf.report;
	else
		json_object_put(bf.report);
	return r;
}
