/* inspect.c - what the guest is: OS facts, filesystems, initramfs tool,
 * bootloader, kernels with their drivers and compression. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootfix-int.h"

static int cmp_mp_len(const void *a, const void *b)
{
	const char *const *x = a, *const *y = b;
	size_t lx = strlen(x[0]), ly = strlen(y[0]);

	return lx < ly ? -1 : lx > ly;
}

static int mount_all(struct bf *bf, json_object *mps)
{
	char **mp = guestfs_inspect_get_mountpoints(bf->g, bf->root);
	size_t n = 0, i;
	char **pairs;

	if (!mp)
		return bf_gerr(bf, "listing the guest's mount points");
	while (mp[n])
		n++;
	n /= 2;
	pairs = mp;
	/* mount shortest mount point first (/ before /boot before /boot/efi) */
	qsort(pairs, n, 2 * sizeof(char *), cmp_mp_len);
	for (i = 0; i < n; i++) {
		const char *m = pairs[2 * i], *dev = pairs[2 * i + 1];
		int r;

		/* "/" is the inspected root itself: the guest's fstab may name
		 * it by a device name that means something else here (/dev/xvda1
		 * of a partitionless AMI is translated to /dev/sda1) */
		if (strcmp(m, "/") == 0)
			dev = bf->root;
		r = bf->dry_run ? guestfs_mount_ro(bf->g, dev, m)
				    : guestfs_mount(bf->g, dev, m);
		if (r == -1) {
			if (strcmp(m, "/") == 0) {
				bf_gerr(bf, "mounting the root filesystem %s", dev);
				scimg_int_strv_free(mp);
				return -EIO;
			}
			bf_warn(bf, "could not mount %s on %s: %s", dev, m,
				guestfs_last_error(bf->g));
			continue;
		}
		json_object_object_add(mps, m, json_object_new_string(dev));
		if (strcmp(m, "/boot/efi") == 0 || strcmp(m, "/efi") == 0 ||
		    strcmp(m, "/boot/EFI") == 0) {
			free(bf->esp);
			bf->esp = bf_strdup(dev);
		}
	}
	scimg_int_strv_free(mp);
	return 0;
}

static const char *itool_name(enum bf_itool t)
{
	switch (t) {
	case BF_ITOOL_INITRAMFS_TOOLS: return "initramfs-tools";
	case BF_ITOOL_DRACUT: return "dracut";
	case BF_ITOOL_MKINITCPIO: return "mkinitcpio";
	case BF_ITOOL_SUSE_MKINITRD: return "suse-mkinitrd";
	default: return "none";
	}
}

static int any_exists(struct bf *bf, const char *const *paths)
{
	for (; *paths; paths++)
		if (bf_exists(bf, *paths))
			return 1;
	return 0;
}

static void detect_tools(struct bf *bf)
{
	static const char *const itools[] = { "/usr/sbin/mkinitramfs", "/sbin/mkinitramfs", NULL };
	static const char *const dracut[] = { "/usr/bin/dracut", "/usr/sbin/dracut", "/sbin/dracut", NULL };
	static const char *const cpio[] = { "/usr/bin/mkinitcpio", "/bin/mkinitcpio", NULL };
	static const char *const suse[] = { "/sbin/mkinitrd", "/usr/sbin/mkinitrd", NULL };
	static const char *const mkconfig[] = { "/usr/sbin/grub-mkconfig", "/usr/sbin/grub2-mkconfig",
		"/sbin/grub2-mkconfig", "/usr/sbin/update-grub", NULL };
	const char *bl;

	if (any_exists(bf, itools) && bf_exists(bf, "/etc/initramfs-tools"))
		bf->itool = BF_ITOOL_INITRAMFS_TOOLS;
	else if (any_exists(bf, dracut))
		bf->itool = BF_ITOOL_DRACUT;
	else if (any_exists(bf, cpio))
		bf->itool = BF_ITOOL_MKINITCPIO;
	else if (any_exists(bf, suse) && bf_exists(bf, "/etc/sysconfig/kernel"))
		bf->itool = BF_ITOOL_SUSE_MKINITRD;
	else
		bf->itool = BF_ITOOL_NONE;
	json_object_object_add(bf->guest, "initramfs-tool",
			       json_object_new_string(itool_name(bf->itool)));

	bf->has_grub2 = any_exists(bf, mkconfig);
	bf->has_grub_pc = bf_is_dir(bf, "/usr/lib/grub/i386-pc");
	bf->has_grub_efi = bf_is_dir(bf, "/usr/lib/grub/x86_64-efi");
	if (bf_exists(bf, "/boot/grub2/grub.cfg") && !bf_exists(bf, "/boot/grub/grub.cfg"))
		bf->grub_cfg = bf_strdup("/boot/grub2/grub.cfg");
	else if (bf_is_dir(bf, "/boot/grub2") && !bf_is_dir(bf, "/boot/grub"))
		bf->grub_cfg = bf_strdup("/boot/grub2/grub.cfg");
	else
		bf->grub_cfg = bf_strdup("/boot/grub/grub.cfg");
	if (bf->has_grub2)
		bl = bf_exists(bf, bf->grub_cfg) ? "grub2" : "grub2 (not configured)";
	else if (bf_exists(bf, "/boot/grub/menu.lst") || bf_exists(bf, "/boot/grub/grub.conf"))
		bl = "grub-legacy config only";
	else if (bf_exists(bf, bf->grub_cfg))
		bl = "grub.cfg without grub2 tools";
	else
		bl = "none";
	json_object_object_add(bf->guest, "bootloader", json_object_new_string(bl));
	json_object_object_add(bf->guest, "grub-targets",
			       json_object_new_string(bf->has_grub_pc && bf->has_grub_efi ? "i386-pc x86_64-efi"
						      : bf->has_grub_pc ? "i386-pc"
						      : bf->has_grub_efi ? "x86_64-efi" : ""));
}

int bf_inspect(struct bf *bf)
{
	char **roots, *s;
	json_object *mps;
	size_t i;
	int r;

	roots = guestfs_inspect_os(bf->g);
	if (!roots)
		return bf_gerr(bf, "inspecting the guest");
	for (i = 0; roots[i]; i++) {
		/* after --partition, the copy on the new disk is the guest */
		if (bf->wrapped) {
			char *dev = guestfs_part_to_dev(bf->g, roots[i]);
			int mine = dev && strcmp(dev, bf->bootdisk) == 0;
			free(dev);
			if (!mine)
				continue;
		}
		bf->root = bf_strdup(roots[i]);
		break;
	}
	if (!bf->root) {
		scimg_int_strv_free(roots);
		if (scimg_int_sg_has_luks(bf->g))
			return scimg_int_err(bf->ctx, -ENOTSUP,
					     "'%s': no operating system found outside LUKS-encrypted volumes: "
					     "an encrypted root filesystem cannot be changed without its key, "
					     "which inject-drivers does not take; fix the guest from inside "
					     "(its initramfs needs the drivers too) or decrypt it first",
					     bf->path);
		return scimg_int_err(bf->ctx, -ENOENT,
				     "'%s': no operating system found in the image "
				     "(libguestfs inspection found no root filesystem)",
				     bf->path);
	}
	if (roots[0] && roots[1] && !bf->wrapped)
		bf_warn(bf, "several operating systems found; changing the one on %s", bf->root);
	scimg_int_strv_free(roots);

	bf->os_type = guestfs_inspect_get_type(bf->g, bf->root);
	bf->distro = guestfs_inspect_get_distro(bf->g, bf->root);
	bf->arch = guestfs_inspect_get_arch(bf->g, bf->root);
	bf->product = guestfs_inspect_get_product_name(bf->g, bf->root);
	bf->major = guestfs_inspect_get_major_version(bf->g, bf->root);
	bf->minor = guestfs_inspect_get_minor_version(bf->g, bf->root);
	json_object_object_add(bf->guest, "os", json_object_new_string(bf->os_type ? bf->os_type : "unknown"));
	json_object_object_add(bf->guest, "distro", json_object_new_string(bf->distro ? bf->distro : "unknown"));
	s = bf_printf("%d.%d", bf->major, bf->minor);
	json_object_object_add(bf->guest, "version", json_object_new_string(s ? s : ""));
	free(s);
	json_object_object_add(bf->guest, "product", json_object_new_string(bf->product ? bf->product : ""));
	json_object_object_add(bf->guest, "arch", json_object_new_string(bf->arch ? bf->arch : "unknown"));
	json_object_object_add(bf->guest, "root", json_object_new_string(bf->root));
	if (!bf->os_type || strcmp(bf->os_type, "linux") != 0)
		return scimg_int_err(bf->ctx, -ENOTSUP,
				     "'%s': the guest is '%s'; inject-drivers handles Linux guests only",
				     bf->path, bf->os_type ? bf->os_type : "unknown");
	if (bf->arch && strcmp(bf->arch, "x86_64") != 0 && strcmp(bf->arch, "i386") != 0)
		return scimg_int_err(bf->ctx, -ENOTSUP,
				     "'%s': the guest is %s; inject-drivers handles x86 guests only",
				     bf->path, bf->arch);

	bf->root_uuid = guestfs_vfs_uuid(bf->g, bf->root);
	if (bf->root_uuid && !*bf->root_uuid) {
		free(bf->root_uuid);
		bf->root_uuid = NULL;
	}
	json_object_object_add(bf->guest, "root-uuid",
			       bf->root_uuid ? json_object_new_string(bf->root_uuid) : NULL);
	mps = json_object_new_object();
	json_object_object_add(bf->guest, "mountpoints", mps);
	r = mount_all(bf, mps);
	if (r < 0)
		return r;
	/* the disk facts of the one guest model (lib/guest/facts.c): the
	 * disk that holds /boot (through LVM and btrfs subvolumes), the
	 * filesystem under /boot, the ESP */
	if (scimg_int_sg_disk_facts(bf->g, bf->root, &bf->disk) < 0)
		return bf_gerr(bf, "reading the guest's mount points");
	if (!bf->bootdisk)
		bf->bootdisk = bf_strdup(bf->disk.bootdisk ? bf->disk.bootdisk : bf->root);
	if (!bf->esp && bf->disk.esp_dev)
		bf->esp = bf_strdup(bf->disk.esp_dev);
	json_object_object_add(bf->guest, "boot-disk", json_object_new_string(bf->bootdisk));
	json_object_object_add(bf->guest, "boot-filesystem",
			       bf->disk.boot_fs ? json_object_new_string(bf->disk.boot_fs) : NULL);
	if (bf->disk.boot_on_lvm)
		json_object_object_add(bf->guest, "boot-on-lvm", json_object_new_boolean(1));
	if (bf->disk.boot_subvol)
		json_object_object_add(bf->guest, "boot-subvolume",
				       json_object_new_string(bf->disk.boot_subvol));
	json_object_object_add(bf->guest, "esp", bf->esp ? json_object_new_string(bf->esp) : NULL);
	detect_tools(bf);
	return 0;
}

/* ---- kernels ---------------------------------------------------------------- */

/* Mark drivers found in a modules.dep / modules.builtin text. */
static void scan_modlist(const char *text, enum bf_state found, enum bf_state *drv)
{
	const char *p = text;

	while (p && *p) {
		const char *e = strchr(p, '\n');
		char name[128];
		int d;

		scimg_int_sg_modname(p, name, sizeof(name));
		for (d = 0; d < SG_NDRV; d++) {
			char want[64];
			scimg_int_sg_modname(scimg_int_sg_drv_name[d], want, sizeof(want));
			if (strcmp(name, want) == 0 && drv[d] == BF_MISSING)
				drv[d] = found;
		}
		p = e ? e + 1 : NULL;
	}
}

static int kernel_drivers(struct bf *bf, struct bf_kernel *k, const char *moddir)
{
	char *path, *text = NULL;
	int r;

	path = bf_printf("%s/modules.builtin", moddir);
	r = path ? bf_read(bf, path, 64u << 20, &text) : -ENOMEM;
	free(path);
	if (r < 0)
		return r;
	if (text)
		scan_modlist(text, BF_BUILTIN, k->drv);
	k->builtin = text;
	text = NULL;
	path = bf_printf("%s/modules.dep", moddir);
	r = path ? bf_read(bf, path, 64u << 20, &text) : -ENOMEM;
	free(path);
	if (r < 0)
		return r;
	if (text) {
		scan_modlist(text, BF_MODULE, k->drv);
		k->moddep = scimg_int_sg_moddep_parse(text);
		free(text);
		if (!k->moddep)
			return scimg_int_err(bf->ctx, -ENOMEM, "out of memory");
	} else {
		/* no modules.dep: look for the .ko files themselves */
		int d;
		for (d = 0; d < SG_NDRV; d++) {
			char *cmd = bf_printf("find '%s' -name '%s.ko*' -o -name '%s.ko*' | head -1",
					      moddir, scimg_int_sg_drv_name[d], scimg_int_sg_drv_name[d]);
			char *out = NULL;
			int rc;
			char *q;
			if (!cmd)
				return -ENOMEM;
			/* the second pattern with '-' and '_' swapped */
			for (q = strstr(cmd, "-o -name '") + 10; *q != '.'; q++)
				if (*q == '_' || *q == '-')
					*q = *q == '_' ? '-' : '_';
			r = bf_sh(bf, cmd, &out, &rc);
			free(cmd);
			if (r < 0)
				return r;
			if (out && strstr(out, ".ko"))
				k->drv[d] = BF_MODULE;
			free(out);
		}
	}
	return 0;
}

static int cmp_kernel(const void *a, const void *b)
{
	const struct bf_kernel *x = a, *y = b;
	return strverscmp(x->version, y->version);
}

int bf_find_kernels(struct bf *bf)
{
	char **ls = guestfs_ls(bf->g, "/boot");
	json_object *arr;
	size_t i, n = 0;
	int r = 0;

	if (!ls)
		return bf_gerr(bf, "listing /boot");
	for (i = 0; ls[i]; i++)
		n++;
	bf->kernels = calloc(n ? n : 1, sizeof(*bf->kernels));
	if (!bf->kernels) {
		scimg_int_strv_free(ls);
		return scimg_int_err(bf->ctx, -ENOMEM, "out of memory");
	}
	for (i = 0; ls[i]; i++) {
		struct bf_kernel *k;
		const char *ver;
		char *moddir = NULL, *vm;

		if (strncmp(ls[i], "vmlinuz-", 8) != 0 && strncmp(ls[i], "vmlinux-", 8) != 0)
			continue;
		ver = ls[i] + 8;
		if (strstr(ver, "rescue") || strstr(ver, ".hmac"))
			continue;
		vm = bf_printf("/boot/%s", ls[i]);
		if (!vm || guestfs_is_file(bf->g, vm) != 1) {
			free(vm);
			continue;
		}
		moddir = bf_printf("/lib/modules/%s", ver);
		if (moddir && !bf_is_dir(bf, moddir)) {
			free(moddir);
			moddir = bf_printf("/usr/lib/modules/%s", ver);
			if (moddir && !bf_is_dir(bf, moddir)) {
				free(moddir);
				moddir = NULL;
			}
		}
		k = &bf->kernels[bf->nkernels++];
		k->version = bf_strdup(ver);
		k->vmlinuz = vm;
		k->initrd = scimg_int_sg_initrd_of(bf->g, ver);
		k->compression = bf_strdup(scimg_int_sg_kernel_compression_of(bf->g, vm));
		if (moddir) {
			r = kernel_drivers(bf, k, moddir);
			free(moddir);
			if (r < 0)
				break;
		} else {
			bf_warn(bf, "kernel %s has no /lib/modules/%s: only built-in drivers can be used",
				ver, ver);
		}
	}
	scimg_int_strv_free(ls);
	if (r < 0)
		return r;
	if (bf->nkernels == 0)
		return scimg_int_err(bf->ctx, -ENOENT,
				     "'%s': no kernel (/boot/vmlinuz-*) found in the guest", bf->path);
	qsort(bf->kernels, bf->nkernels, sizeof(*bf->kernels), cmp_kernel);
	bf->default_kernel = bf->nkernels - 1; /* grub-mkconfig puts the newest first */

	arr = json_object_new_array();
	json_object_object_add(bf->report, "kernels", arr);
	for (i = 0; i < bf->nkernels; i++) {
		struct bf_kernel *k = &bf->kernels[i];
		json_object *o = json_object_new_object(), *drv = json_object_new_object();
		int d;

		json_object_object_add(o, "version", json_object_new_string(k->version));
		json_object_object_add(o, "vmlinuz", json_object_new_string(k->vmlinuz));
		json_object_object_add(o, "initrd", k->initrd ? json_object_new_string(k->initrd) : NULL);
		json_object_object_add(o, "compression", json_object_new_string(k->compression));
		json_object_object_add(o, "default", json_object_new_boolean(i == bf->default_kernel));
		for (d = 0; d < SG_NDRV; d++)
			json_object_object_add(drv, scimg_int_sg_drv_name[d],
					       json_object_new_string(k->drv[d] == BF_BUILTIN ? "built-in"
								      : k->drv[d] == BF_MODULE ? "module" : "missing"));
		json_object_object_add(o, "drivers", drv);
		json_object_array_add(arr, o);
	}
	return 0;
}
