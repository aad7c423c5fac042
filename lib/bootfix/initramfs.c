/* initramfs.c - put the drivers into the initramfs of every kernel: configure
 * the guest's own tool (initramfs-tools, dracut, mkinitcpio, SUSE mkinitrd),
 * rebuild inside the appliance, then list the new initramfs to prove it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootfix-int.h"

int bf_drv_wanted(const struct bf *bf, enum bf_drv d)
{
	switch (d) {
	case BF_XEN_BLKFRONT:
	case BF_XEN_NETFRONT:
		return (bf->drivers & SCIMG_BOOTFIX_DRV_XEN) != 0;
	case BF_VIRTIO_BLK:
	case BF_VIRTIO_SCSI:
	case BF_VIRTIO_NET:
	case BF_VIRTIO_PCI:
		return (bf->drivers & SCIMG_BOOTFIX_DRV_VIRTIO) != 0;
	case BF_NVME:
		return (bf->drivers & SCIMG_BOOTFIX_DRV_NVME) != 0;
	default:
		/* sd_mod (SCSI/IDE/SATA disks), IDE and AHCI: always, so the
		 * image still boots on emulated disks; only when present */
		return 2;
	}
}

/* Requested (1) drivers a kernel does not have at all. */
static int kernel_missing(const struct bf *bf, const struct bf_kernel *k,
			  char *buf, size_t len)
{
	int d, n = 0;
	size_t used = 0;

	buf[0] = '\0';
	for (d = 0; d < BF_NDRV; d++) {
		if (bf_drv_wanted(bf, d) != 1 || k->drv[d] != BF_MISSING)
			continue;
		used += (size_t)snprintf(buf + used, used < len ? len - used : 0, "%s%s",
					 n ? ", " : "", bf_drv_name[d]);
		n++;
	}
	return n;
}

/* Module names to add (space separated): wanted drivers that are modules
 * in at least one kernel. */
static char *modules_to_add(const struct bf *bf)
{
	char buf[512] = "";
	size_t used = 0, i;
	int d;

	for (d = 0; d < BF_NDRV; d++) {
		int mod = 0;
		if (!bf_drv_wanted(bf, d))
			continue;
		for (i = 0; i < bf->nkernels; i++)
			if (bf->kernels[i].drv[d] == BF_MODULE)
				mod = 1;
		if (mod)
			used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s%s",
						 used ? " " : "", bf_drv_name[d]);
	}
	return bf_strdup(buf);
}

/* ---- listing an initramfs ----------------------------------------------- */

static int list_initrd(struct bf *bf, struct bf_kernel *k)
{
	char *cmd, *out = NULL, *p;
	int r, rc, d;

	if (!k->initrd)
		return 0;
	switch (bf->itool) {
	case BF_ITOOL_INITRAMFS_TOOLS:
		cmd = bf_printf("lsinitramfs '%s' | grep -E '\\.ko(\\.[a-z0-9]+)?$'", k->initrd);
		break;
	case BF_ITOOL_MKINITCPIO:
		cmd = bf_printf("lsinitcpio '%s' | grep -E '\\.ko(\\.[a-z0-9]+)?$'", k->initrd);
		break;
	default:
		cmd = bf_printf("if command -v lsinitrd >/dev/null; then lsinitrd '%s'; "
				"else (zcat -f '%s' | cpio -it --quiet); fi | "
				"grep -E '\\.ko(\\.[a-z0-9]+)?$'", k->initrd, k->initrd);
		break;
	}
	if (!cmd)
		return scimg_int_err(bf->ctx, -ENOMEM, "out of memory");
	r = bf_sh(bf, cmd, &out, &rc);
	free(cmd);
	if (r < 0)
		return r;
	memset(k->in_initrd, 0, sizeof(k->in_initrd));
	for (p = out; p && *p;) {
		char *e = strchr(p, '\n'), *last, name[128];

		if (e)
			*e = '\0';
		last = strrchr(p, ' ');
		bf_modname(last ? last + 1 : p, name, sizeof(name));
		for (d = 0; d < BF_NDRV; d++) {
			char want[64];
			bf_modname(bf_drv_name[d], want, sizeof(want));
			if (strcmp(name, want) == 0)
				k->in_initrd[d] = 1;
		}
		p = e ? e + 1 : NULL;
	}
	free(out);
	k->verified = 1;
	return 0;
}

/* ---- configuring the tools --------------------------------------------------- */

static int list_has(const char *text, const char *mod)
{
	const char *p = text;
	char want[64];

	bf_modname(mod, want, sizeof(want));
	while (p && *p) {
		const char *e = strchr(p, '\n');
		char name[128];

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '#') {
			bf_modname(p, name, sizeof(name));
			if (strcmp(name, want) == 0)
				return 1;
		}
		p = e ? e + 1 : NULL;
	}
	return 0;
}

static int cfg_initramfs_tools(struct bf *bf, const char *mods)
{
	static const char conf[] = "/etc/initramfs-tools/initramfs.conf";
	static const char modf[] = "/etc/initramfs-tools/modules";
	char *text = NULL, *val, *nt, *list = NULL, *add = NULL, *m, *save = NULL, *mcopy;
	int r;

	r = bf_read(bf, conf, 1u << 20, &text);
	if (r < 0)
		return r;
	val = text ? bf_shvar_get(text, "MODULES") : NULL;
	if (text && val && (strcmp(val, "dep") == 0 || strcmp(val, "netboot") == 0)) {
		/* "dep" picks the drivers of the machine that builds the
		 * initramfs -- here the appliance, not the guest's future hosts */
		nt = bf_shvar_set(text, "MODULES", "most", 0);
		if (!nt || bf_write(bf, conf, nt) < 0) {
			free(nt);
			free(val);
			free(text);
			return nt ? -EIO : -ENOMEM;
		}
		bf_change(bf, conf, "MODULES=%s -> MODULES=most (a generic initramfs)", val);
		free(nt);
	}
	json_object_object_add(bf->guest, "initramfs-modules-policy",
			       json_object_new_string(val ? val : "most"));
	free(val);
	free(text);

	r = bf_read(bf, modf, 1u << 20, &list);
	if (r < 0)
		return r;
	mcopy = bf_strdup(mods);
	for (m = mcopy ? strtok_r(mcopy, " ", &save) : NULL; m; m = strtok_r(NULL, " ", &save)) {
		char *n;
		if (list && list_has(list, m))
			continue;
		n = bf_printf("%s%s\n", add ? add : "", m);
		free(add);
		add = n;
	}
	free(mcopy);
	if (add) {
		char *nl = bf_printf("%s%s# added by scimg inject-drivers: boot on Xen PV, virtio, NVMe\n%s",
				     list ? list : "",
				     list && *list && list[strlen(list) - 1] != '\n' ? "\n" : "", add);
		char *shown = bf_strdup(add);
		char *q;
		for (q = shown; q && *q; q++)
			if (*q == '\n')
				*q = ' ';
		r = nl ? bf_write(bf, modf, nl) : -ENOMEM;
		if (r == 0)
			bf_change(bf, modf, "added modules: %s", shown ? shown : "");
		free(shown);
		free(nl);
	}
	free(add);
	free(list);
	return r;
}

static int cfg_dracut(struct bf *bf, const char *mods)
{
	static const char path[] = "/etc/dracut.conf.d/90-scimg-inject-drivers.conf";
	char *text, *out = NULL;
	int r, rc;

	/* a driver omitted elsewhere would win over add_drivers */
	r = bf_sh(bf, "grep -hs '^[[:space:]]*omit_drivers' /etc/dracut.conf /etc/dracut.conf.d/*.conf",
		  &out, &rc);
	if (r < 0)
		return r;
	if (out && *out)
		bf_warn(bf, "dracut configuration omits drivers (%.*s); check they are not needed",
			(int)strcspn(out, "\n"), out);
	free(out);
	text = bf_printf("# written by scimg inject-drivers: an initramfs that boots on any\n"
			 "# virtual disk bus (IDE, SATA, virtio, NVMe, Xen PV), not only on\n"
			 "# the machine that built it.\n"
			 "hostonly=\"no\"\n"
			 "hostonly_cmdline=\"no\"\n"
			 "add_drivers+=\" %s \"\n", mods);
	if (!text)
		return -ENOMEM;
	r = bf_write(bf, path, text);
	if (r == 0)
		bf_change(bf, path, "hostonly=no, add_drivers+=\" %s \"", mods);
	free(text);
	return r;
}

static int cfg_mkinitcpio(struct bf *bf, const char *mods)
{
	static const char path[] = "/etc/mkinitcpio.conf";
	char *text = NULL, *val, *nv, *nt, *add = NULL, *m, *save = NULL, *mcopy;
	int r;

	r = bf_read(bf, path, 1u << 20, &text);
	if (r < 0 || !text)
		return r < 0 ? r : scimg_int_err(bf->ctx, -ENOENT, "'%s': guest has mkinitcpio but no %s",
						 bf->path, path);
	val = bf_shvar_get(text, "MODULES");
	/* MODULES=(a b c): bf_shvar_get stops at the first blank */
	{
		const char *l = strstr(text, "\nMODULES=(");
		if (l) {
			const char *e = strchr(l + 10, ')');
			free(val);
			val = e ? bf_printf("%.*s", (int)(e - (l + 10)), l + 10) : bf_strdup("");
		}
	}
	mcopy = bf_strdup(mods);
	for (m = mcopy ? strtok_r(mcopy, " ", &save) : NULL; m; m = strtok_r(NULL, " ", &save)) {
		char *n;
		if (val && strstr(val, m))
			continue;
		n = bf_printf("%s%s%s", add ? add : "", add ? " " : "", m);
		free(add);
		add = n;
	}
	free(mcopy);
	if (add) {
		nv = bf_printf("(%s%s%s)", val ? val : "", val && *val ? " " : "", add);
		nt = nv ? bf_shvar_set(text, "MODULES", nv, 0) : NULL;
		r = nt ? bf_write(bf, path, nt) : -ENOMEM;
		if (r == 0)
			bf_change(bf, path, "MODULES += %s", add);
		free(nv);
		free(nt);
	}
	free(add);
	free(val);
	free(text);
	return r;
}

static int cfg_suse(struct bf *bf, const char *mods)
{
	static const char path[] = "/etc/sysconfig/kernel";
	char *text = NULL, *val, *nv, *nt;
	int r;

	r = bf_read(bf, path, 1u << 20, &text);
	if (r < 0 || !text)
		return r;
	val = bf_shvar_get(text, "INITRD_MODULES");
	nv = bf_printf("%s%s%s", val ? val : "", val && *val ? " " : "", mods);
	nt = nv ? bf_shvar_set(text, "INITRD_MODULES", nv, 1) : NULL;
	r = nt ? bf_write(bf, path, nt) : -ENOMEM;
	if (r == 0)
		bf_change(bf, path, "INITRD_MODULES += %s", mods);
	free(val);
	free(nv);
	free(nt);
	free(text);
	return r;
}

/* ---- rebuilding ------------------------------------------------------------------ */

/* The command that rebuilds K's initramfs and the file it writes. */
static int rebuild_cmd(struct bf *bf, struct bf_kernel *k, char **cmdp, char **targetp)
{
	char *cmd = NULL, *target = NULL;

	*cmdp = *targetp = NULL;
	switch (bf->itool) {
	case BF_ITOOL_INITRAMFS_TOOLS:
		if (k->initrd)
			cmd = bf_printf("update-initramfs -u -t -k '%s'", k->version);
		else
			cmd = bf_printf("update-initramfs -c -k '%s'", k->version);
		target = k->initrd ? bf_strdup(k->initrd) : bf_printf("/boot/initrd.img-%s", k->version);
		break;
	case BF_ITOOL_DRACUT:
	case BF_ITOOL_SUSE_MKINITRD:
		target = k->initrd ? bf_strdup(k->initrd)
			 : bf_printf(bf_exists(bf, "/etc/initramfs-tools") || (bf->distro &&
				     (strcmp(bf->distro, "debian") == 0 || strcmp(bf->distro, "ubuntu") == 0))
				     ? "/boot/initrd.img-%s" : "/boot/initramfs-%s.img", k->version);
		if (bf->itool == BF_ITOOL_SUSE_MKINITRD && !bf_exists(bf, "/usr/bin/dracut") &&
		    !bf_exists(bf, "/usr/sbin/dracut"))
			cmd = bf_printf("mkinitrd -k '%s' -i '%s'", k->vmlinuz, target);
		else
			cmd = bf_printf("dracut -f '%s' '%s'", target, k->version);
		break;
	case BF_ITOOL_MKINITCPIO:
		target = k->initrd ? bf_strdup(k->initrd) : bf_printf("/boot/initramfs-%s.img", k->version);
		cmd = bf_printf("mkinitcpio -k '%s' -g '%s'", k->version, target);
		break;
	default:
		return scimg_int_err(bf->ctx, -ENOTSUP,
				     "'%s': no initramfs tool found in the guest (initramfs-tools, "
				     "dracut, mkinitcpio or SUSE mkinitrd)", bf->path);
	}
	if (!cmd || !target) {
		free(cmd);
		free(target);
		return scimg_int_err(bf->ctx, -ENOMEM, "out of memory");
	}
	*cmdp = cmd;
	*targetp = target;
	return 0;
}

/* One script that rebuilds every kernel's initramfs in turn, each one's
 * output followed by a line "@@SCIMG-K<i>=<status>".  The commands are
 * worked out here, once, and kept with their targets for the report. */
static int rebuild_script(struct bf *bf)
{
	char *script = bf_strdup(""), *n;
	size_t i;
	int r;

	for (i = 0; script && i < bf->nkernels; i++) {
		struct bf_kernel *k = &bf->kernels[i];

		r = rebuild_cmd(bf, k, &k->rebuild_cmd, &k->rebuild_target);
		if (r < 0) {
			free(script);
			return r;
		}
		n = bf_printf("%s%s\necho \"@@SCIMG-K%zu=$?\"\n", script, k->rebuild_cmd, i);
		free(script);
		script = n;
	}
	if (!script)
		return scimg_int_err(bf->ctx, -ENOMEM, "out of memory");
	bf->ird_script = script;
	return 0;
}

/* Record the outcome of K's rebuild (its output OUT, status RC). */
static int rebuild_done(struct bf *bf, struct bf_kernel *k, const char *out, int rc)
{
	if (rc != 0) {
		size_t l = out ? strlen(out) : 0;
		const char *tail = out ? (l > 600 ? out + l - 600 : out) : "";
		return scimg_int_err(bf->ctx, -EIO, "'%s': rebuilding the initramfs of kernel %s "
				     "(%s) failed with status %d: %s", bf->path, k->version,
				     k->rebuild_cmd, rc, tail);
	}
	bf_change(bf, k->rebuild_target, "initramfs rebuilt for kernel %s (%s)", k->version,
		  k->rebuild_cmd);
	free(k->initrd);
	k->initrd = k->rebuild_target;
	k->rebuild_target = NULL;
	return 0;
}

/* What K's initramfs holds, per driver (built-in counts); *MISSING counts
 * the wanted modules it lacks. */
static json_object *initrd_json(struct bf *bf, const struct bf_kernel *k, int *missing)
{
	json_object *o = json_object_new_object();
	int d;

	for (d = 0; d < BF_NDRV; d++) {
		int have = k->in_initrd[d] || k->drv[d] == BF_BUILTIN;
		json_object_object_add(o, bf_drv_name[d], json_object_new_boolean(have));
		if (!have && k->drv[d] == BF_MODULE && bf_drv_wanted(bf, d) == 1)
			(*missing)++;
	}
	return o;
}

/* Per kernel: its part of OUT and status, what its new initramfs holds,
 * the report; an error when a wanted driver is still missing. */
static int finish_kernels(struct bf *bf, char *out)
{
	json_object *karr = NULL;
	char *p = out;
	size_t i;
	int r, d;

	json_object_object_get_ex(bf->report, "kernels", &karr);
	for (i = 0; i < bf->nkernels; i++) {
		struct bf_kernel *k = &bf->kernels[i];
		json_object *ko = karr ? json_object_array_get_idx(karr, i) : NULL;
		char marker[40], *m, *next;
		int missing = 0, rc = -1;

		snprintf(marker, sizeof(marker), "@@SCIMG-K%zu=", i);
		m = strstr(p, marker);
		next = p + strlen(p);
		if (m) {
			char *nl = strchr(m, '\n');
			rc = atoi(m + strlen(marker));
			next = nl ? nl + 1 : m + strlen(m);
			*m = '\0';
		}
		r = rebuild_done(bf, k, p, rc);
		if (r < 0)
			return r;
		p = next;
		r = list_initrd(bf, k);
		if (r < 0)
			return r;
		if (!k->verified || !ko)
			continue;
		json_object_object_add(ko, "initramfs", initrd_json(bf, k, &missing));
		if (missing) {
			char list[256] = "";
			size_t used = 0;
			for (d = 0; d < BF_NDRV; d++)
				if (!k->in_initrd[d] && k->drv[d] == BF_MODULE && bf_drv_wanted(bf, d) == 1)
					used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
								 used ? ", " : "", bf_drv_name[d]);
			return scimg_int_err(bf->ctx, -EIO,
					     "'%s': the rebuilt initramfs %s of kernel %s still lacks %s",
					     bf->path, k->initrd, k->version, list);
		}
	}
	return 0;
}

int bf_initramfs_finish(struct bf *bf, char *out)
{
	char *own = NULL;
	int r, rc;

	if (!bf->ird_script)
		return 0;
	if (!out) {
		r = bf_sh(bf, bf->ird_script, &own, &rc);
		if (r < 0)
			return r;
		out = own;
	}
	free(bf->ird_script);
	bf->ird_script = NULL;
	r = finish_kernels(bf, out ? out : (char *)"");
	free(own);
	return r;
}

int bf_initramfs(struct bf *bf)
{
	char *mods, miss[256];
	json_object *karr = NULL;
	size_t i, complete = 0;
	int r = 0;

	json_object_object_get_ex(bf->report, "kernels", &karr);
	/* kernels that lack a requested driver altogether */
	for (i = 0; i < bf->nkernels; i++) {
		struct bf_kernel *k = &bf->kernels[i];
		if (kernel_missing(bf, k, miss, sizeof(miss)))
			bf_warn(bf, "kernel %s has no %s (neither module nor built in)",
				k->version, miss);
		else
			complete++;
		if (k->drv[BF_AHCI] == BF_MISSING)
			bf_warn(bf, "kernel %s has no AHCI driver (ahci): the guest cannot "
				"boot from a SATA/AHCI disk with it", k->version);
	}
	if (!complete) {
		kernel_missing(bf, &bf->kernels[bf->default_kernel], miss, sizeof(miss));
		return scimg_int_err(bf->ctx, -ENOTSUP,
				     "'%s': kernel %s lacks %s and no other installed kernel has "
				     "every requested driver", bf->path,
				     bf->kernels[bf->default_kernel].version, miss);
	}
	if (kernel_missing(bf, &bf->kernels[bf->default_kernel], miss, sizeof(miss))) {
		/* the newest complete kernel becomes the default */
		for (i = bf->nkernels; i-- > 0;)
			if (!kernel_missing(bf, &bf->kernels[i], miss, sizeof(miss)))
				break;
		bf_warn(bf, "kernel %s lacks drivers; kernel %s is made the default",
			bf->kernels[bf->default_kernel].version, bf->kernels[i].version);
		bf->default_kernel = i;
		if (karr) {
			size_t j;
			for (j = 0; j < bf->nkernels; j++)
				json_object_object_add(json_object_array_get_idx(karr, j), "default",
						       json_object_new_boolean(j == i));
		}
	}

	mods = modules_to_add(bf);
	if (!mods)
		return scimg_int_err(bf->ctx, -ENOMEM, "out of memory");
	switch (bf->itool) {
	case BF_ITOOL_INITRAMFS_TOOLS: r = cfg_initramfs_tools(bf, mods); break;
	case BF_ITOOL_DRACUT: r = cfg_dracut(bf, mods); break;
	case BF_ITOOL_MKINITCPIO: r = cfg_mkinitcpio(bf, mods); break;
	case BF_ITOOL_SUSE_MKINITRD: r = cfg_suse(bf, mods); break;
	default:
		r = scimg_int_err(bf->ctx, -ENOTSUP,
				  "'%s': no initramfs tool found in the guest (initramfs-tools, "
				  "dracut, mkinitcpio or SUSE mkinitrd)", bf->path);
	}
	free(mods);
	if (r < 0)
		return r;

	if (!bf->dry_run) {
		r = rebuild_script(bf);
		if (r < 0)
			return r;
		/* grub-mkconfig only needs the initramfs files to exist: when
		 * every kernel has one, the rebuild runs beside it in the
		 * bootloader step (bf_initramfs_finish), else now */
		for (i = 0; i < bf->nkernels; i++)
			if (!bf->kernels[i].initrd)
				break;
		if (i < bf->nkernels || !bf->has_grub2)
			return bf_initramfs_finish(bf, NULL);
		return 0;
	}
	for (i = 0; i < bf->nkernels; i++) {
		struct bf_kernel *k = &bf->kernels[i];
		json_object *ko = karr ? json_object_array_get_idx(karr, i) : NULL;
		int missing = 0;

		/* what the current initramfs holds, to show the need */
		r = list_initrd(bf, k);
		if (r < 0)
			return r;
		bf_change(bf, k->initrd ? k->initrd : k->vmlinuz,
			  "initramfs of kernel %s would be rebuilt", k->version);
		if (!k->verified || !ko)
			continue;
		json_object_object_add(ko, "initramfs-now", initrd_json(bf, k, &missing));
	}
	return 0;
}
