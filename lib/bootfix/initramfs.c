/* initramfs.c - put the drivers into the initramfs of every kernel: configure
 * the guest's own tool (initramfs-tools, dracut, mkinitcpio, SUSE mkinitrd),
 * rebuild inside the appliance, then list the new initramfs to prove it (on
 * the host, with check's reader; the guest's own lister when that cannot). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootfix-int.h"
#include "check/check-int.h"

int bf_drv_wanted(const struct bf *bf, enum sg_drv d)
{
	switch (d) {
	case SG_XEN_BLKFRONT:
	case SG_XEN_NETFRONT:
		return (bf->drivers & SCIMG_BOOTFIX_DRV_XEN) != 0;
	case SG_VIRTIO_BLK:
	case SG_VIRTIO_SCSI:
	case SG_VIRTIO_NET:
	case SG_VIRTIO_PCI:
		return (bf->drivers & SCIMG_BOOTFIX_DRV_VIRTIO) != 0;
	case SG_NVME:
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
	for (d = 0; d < SG_NDRV; d++) {
		if (bf_drv_wanted(bf, d) != 1 || k->drv[d] != BF_MISSING)
			continue;
		used += (size_t)snprintf(buf + used, used < len ? len - used : 0, "%s%s",
					 n ? ", " : "", scimg_int_sg_drv_name[d]);
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

	for (d = 0; d < SG_NDRV; d++) {
		int mod = 0;
		if (!bf_drv_wanted(bf, d))
			continue;
		for (i = 0; i < bf->nkernels; i++)
			if (bf->kernels[i].drv[d] == BF_MODULE)
				mod = 1;
		if (mod)
			used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s%s",
						 used ? " " : "", scimg_int_sg_drv_name[d]);
	}
	return bf_strdup(buf);
}

/* ---- listing an initramfs ----------------------------------------------- */

struct modset {
	char **name;
	size_t n;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int modset_has(void *opaque, const char *mod)
{
	const struct modset *ms = opaque;
	char want[128];
	const char *key = want;

	scimg_int_sg_modname(mod, want, sizeof(want));
	return ms->n && bsearch(&key, ms->name, ms->n, sizeof(char *), cmp_str) != NULL;
}

/* From the listing OUT of K's initramfs (one path per line, maybe with
 * ls -l columns before it): where each driver is, following modules.dep. */
static int initrd_where(struct bf *bf, struct bf_kernel *k, char *out)
{
	struct modset ms = { NULL, 0 };
	size_t cap = 0, i;
	char *p;
	int d;

	for (p = out; p && *p;) {
		char *e = strchr(p, '\n'), *last, name[128];

		if (e)
			*e = '\0';
		last = strrchr(p, ' ');
		scimg_int_sg_modname(last ? last + 1 : p, name, sizeof(name));
		if (*name) {
			if (ms.n == cap) {
				char **nn = realloc(ms.name, (cap = cap ? cap * 2 : 256) * sizeof(char *));
				if (!nn)
					goto nomem;
				ms.name = nn;
			}
			if (!(ms.name[ms.n] = bf_strdup(name)))
				goto nomem;
			ms.n++;
		}
		p = e ? e + 1 : NULL;
	}
	if (ms.n)
		qsort(ms.name, ms.n, sizeof(char *), cmp_str);
	memset(k->in_initrd, 0, sizeof(k->in_initrd));
	for (d = 0; d < SG_NDRV; d++) {
		free(k->missing_dep[d]);
		k->missing_dep[d] = NULL;
		k->where[d] = scimg_int_sg_where(k->moddep, k->builtin, modset_has, &ms,
						 scimg_int_sg_drv_name[d], &k->missing_dep[d]);
		k->in_initrd[d] = sg_usable(k->where[d]);
	}
	k->verified = 1;
	for (i = 0; i < ms.n; i++)
		free(ms.name[i]);
	free(ms.name);
	return 0;
nomem:
	for (i = 0; i < ms.n; i++)
		free(ms.name[i]);
	free(ms.name);
	return scimg_int_err(bf->ctx, -ENOMEM, "out of memory");
}

/* K's initramfs listed on the host by the reader `scimg check` and the SCI
 * descriptor use (scimg_int_guest_initrd_modules): one download and a
 * libarchive pass, seconds faster than the guest's tool under TCG.  0 with
 * *OUT the module names, one per line; 1 when the host reader cannot list
 * it (not a regular file, too large, a compression it does not read) and
 * the guest's tool should; -errno. */
static int host_list(struct bf *bf, struct bf_kernel *k, char **out)
{
	json_object *mods = NULL;
	size_t i, len = 1;
	int r;

	*out = NULL;
	r = scimg_int_guest_initrd_modules(bf->ctx, bf->g, k->initrd, NULL, &mods);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		scimg_ctx_clear_error(bf->ctx);
		return 1;
	}
	for (i = 0; i < json_object_array_length(mods); i++)
		len += strlen(json_object_get_string(json_object_array_get_idx(mods, i))) + 1;
	if (!(*out = malloc(len))) {
		json_object_put(mods);
		return scimg_int_err(bf->ctx, -ENOMEM, "out of memory");
	}
	**out = '\0';
	for (i = 0, len = 0; i < json_object_array_length(mods); i++)
		len += (size_t)sprintf(*out + len, "%s\n",
				       json_object_get_string(json_object_array_get_idx(mods, i)));
	/* kept for the SCI build's describe step (no second download) */
	json_object_put(k->initrd_mods);
	k->initrd_mods = mods;
	return 0;
}

static int list_initrd(struct bf *bf, struct bf_kernel *k)
{
	char *cmd, *out = NULL;
	int r, rc;

	if (!k->initrd)
		return 0;
	json_object_put(k->initrd_mods);
	k->initrd_mods = NULL;
	r = host_list(bf, k, &out);
	if (r < 0)
		return r;
	if (r == 0) {
		r = initrd_where(bf, k, out);
		free(out);
		return r;
	}
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
	r = initrd_where(bf, k, out);
	free(out);
	return r;
}

/* ---- configuring the tools --------------------------------------------------- */

static int list_has(const char *text, const char *mod)
{
	const char *p = text;
	char want[64];

	scimg_int_sg_modname(mod, want, sizeof(want));
	while (p && *p) {
		const char *e = strchr(p, '\n');
		char name[128];

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '#') {
			scimg_int_sg_modname(p, name, sizeof(name));
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

/* dracut applies omit_drivers (regular expressions, matched against module
 * paths) to the dependencies of add_drivers too: "virtio" there leaves
 * virtio_ring out of an initramfs that gets virtio_blk, which then fails
 * with "Unknown symbol".  Work out, in the guest, which omitted patterns
 * match a module we add or one it depends on (modules.dep of every kernel);
 * those are dropped, the others kept.  Output: "KEEP: ..." and "DROP: ...". */
static char *dracut_omit_script(const char *mods)
{
	char pat[1024] = "";
	size_t used = 0;
	const char *m = mods;

	/* (^|/)(xen[-_]blkfront|virtio[-_]blk|...)\.ko */
	while (*m && used < sizeof(pat) - 64) {
		size_t l = strcspn(m, " ");
		size_t i;
		if (l) {
			if (used)
				pat[used++] = '|';
			for (i = 0; i < l && used < sizeof(pat) - 8; i++) {
				if (m[i] == '-' || m[i] == '_') {
					memcpy(pat + used, "[-_]", 4);
					used += 4;
				} else {
					pat[used++] = m[i];
				}
			}
		}
		m += l;
		while (*m == ' ')
			m++;
	}
	pat[used] = '\0';
	return bf_printf(
		"omit_drivers=''\n"
		"for f in /etc/dracut.conf /etc/dracut.conf.d/*.conf; do\n"
		"  case $f in */90-scimg-inject-drivers.conf|*/99-zz-scimg-inject-drivers.conf) continue;; esac\n"
		"  [ -f \"$f\" ] && . \"$f\" >/dev/null 2>&1\n"
		"done\n"
		"need=$(cat /lib/modules/*/modules.dep /usr/lib/modules/*/modules.dep 2>/dev/null | "
		"grep -E '(^|/)(%s)\\.ko' | tr ' :' '\\n\\n' | grep . | sort -u)\n"
		"keep= drop=\n"
		"for d in $omit_drivers; do\n"
		"  if printf '%%s\\n' \"$need\" | grep -Eq -- \"$d\"; then drop=\"$drop $d\"; else keep=\"$keep $d\"; fi\n"
		"done\n"
		"echo \"KEEP:$keep\"\necho \"DROP:$drop\"\n", pat);
}

static char *line_after(const char *out, const char *tag)
{
	const char *p = out ? strstr(out, tag) : NULL;

	if (!p)
		return NULL;
	p += strlen(tag);
	while (*p == ' ')
		p++;
	return bf_printf("%.*s", (int)strcspn(p, "\n"), p);
}

static int cfg_dracut(struct bf *bf, const char *mods)
{
	/* after the guest's own drop-ins (read in name order), so that its
	 * omit_drivers can be corrected here */
	static const char path[] = "/etc/dracut.conf.d/99-zz-scimg-inject-drivers.conf";
	char *text, *out = NULL, *script, *keep = NULL, *drop = NULL, *omit = NULL;
	int r, rc;

	script = dracut_omit_script(mods);
	if (!script)
		return -ENOMEM;
	r = bf_sh(bf, script, &out, &rc);
	free(script);
	if (r < 0)
		return r;
	keep = line_after(out, "KEEP:");
	drop = line_after(out, "DROP:");
	free(out);
	if (drop && *drop) {
		omit = bf_printf("omit_drivers=\"%s\"\n", keep ? keep : "");
		bf_change(bf, path, "omit_drivers: dropped '%s' (they leave out a driver scimg adds, "
			  "or a module it depends on); kept '%s'", drop, keep ? keep : "");
	}
	text = bf_printf("# written by scimg inject-drivers: an initramfs that boots on any\n"
			 "# virtual disk bus (IDE, SATA, virtio, NVMe, Xen PV), not only on\n"
			 "# the machine that built it.\n"
			 "hostonly=\"no\"\n"
			 "hostonly_cmdline=\"no\"\n"
			 "%s"
			 "add_drivers+=\" %s \"\n", omit ? omit : "", mods);
	free(omit);
	free(keep);
	free(drop);
	if (!text)
		return -ENOMEM;
	/* the name of older scimg versions */
	if (bf_exists(bf, "/etc/dracut.conf.d/90-scimg-inject-drivers.conf") && !bf->dry_run)
		guestfs_rm(bf->g, "/etc/dracut.conf.d/90-scimg-inject-drivers.conf");
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

/* What K's initramfs holds, per driver: usable at boot (built in, or in it
 * with every module it depends on); *MISSING counts the wanted modules
 * that are not usable.  DETAIL gets where each one is. */
static json_object *initrd_json(struct bf *bf, const struct bf_kernel *k, int *missing,
				json_object **detail)
{
	json_object *o = json_object_new_object();
	int d;

	*detail = json_object_new_object();
	for (d = 0; d < SG_NDRV; d++) {
		int have = k->in_initrd[d];
		json_object_object_add(o, scimg_int_sg_drv_name[d], json_object_new_boolean(have));
		if (k->where[d] == SG_INCOMPLETE && k->missing_dep[d]) {
			json_object *w = json_object_new_object();
			json_object_object_add(w, "where", json_object_new_string("initramfs-incomplete"));
			json_object_object_add(w, "missing-dependency",
					       json_object_new_string(k->missing_dep[d]));
			json_object_object_add(*detail, scimg_int_sg_drv_name[d], w);
		} else {
			json_object_object_add(*detail, scimg_int_sg_drv_name[d],
					       json_object_new_string(scimg_int_sg_where_name(k->where[d])));
		}
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
		json_object *ko = karr ? json_object_array_get_idx(karr, i) : NULL, *detail;
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
		json_object_object_add(ko, "initramfs", initrd_json(bf, k, &missing, &detail));
		json_object_object_add(ko, "initramfs-detail", detail);
		if (missing) {
			char list[512] = "";
			size_t used = 0;
			for (d = 0; d < SG_NDRV && used < sizeof(list); d++)
				if (!k->in_initrd[d] && k->drv[d] == BF_MODULE && bf_drv_wanted(bf, d) == 1)
					used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s%s%s%s",
								 used ? ", " : "", scimg_int_sg_drv_name[d],
								 k->missing_dep[d] ? " (without " : "",
								 k->missing_dep[d] ? k->missing_dep[d] : "",
								 k->missing_dep[d] ? ", which it needs)" : "");
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
		if (k->drv[SG_AHCI] == BF_MISSING)
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
		json_object *detail;
		json_object_object_add(ko, "initramfs-now", initrd_json(bf, k, &missing, &detail));
		json_object_object_add(ko, "initramfs-now-detail", detail);
	}
	return 0;
}
