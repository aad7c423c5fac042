/* check/guest.c - Supercloud compliance of the guest inside a disk, checked
 * read-only through libguestfs (never by mounting on the host).
 *
 * One appliance launch: inspect the OS, mount its filesystems read-only,
 * then look at what a Xen PV boot needs: /boot/grub/grub.cfg that pygrub and
 * pvgrub2 read, the default entry's kernel (and its compression: GRUB 2.06's
 * pvgrub2 cannot load LZ4), the drivers in that kernel's initramfs
 * (downloaded and listed on the host, lib/check/initrd.c), fstab and root=
 * by UUID/LABEL, and the BIOS/UEFI boot code.  The launch falls back from
 * KVM to TCG as every appliance of scimg does (lib/appliance.c).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <guestfs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "appliance.h"
#include "check-int.h"
#include "guest/guest-facts.h"
#include "package/package.h"


void scimg_int_finding(json_object *findings, const char *id,
		       const char *severity, const char *fmt, ...)
{
	json_object *f = json_object_new_object();
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(f, "id", json_object_new_string(id));
	json_object_object_add(f, "severity", json_object_new_string(severity));
	json_object_object_add(f, "message", json_object_new_string(msg));
	json_object_array_add(findings, f);
}

struct gc {
	struct scimg_ctx *ctx;
	const struct scimg_guest_opts *opts;
	const char *path;
	guestfs_h *g;
	char *tmpdir;
	json_object *guest, *boot, *findings;
	json_object *known_mods; /* {initramfs path: [modules]} already listed */
};


static int gerr(struct gc *c, const char *what)
{
	const char *e = c->g ? guestfs_last_error(c->g) : NULL;

	return scimg_int_err(c->ctx, -EIO, "'%s': libguestfs: %s: %s", c->path, what,
			     e ? e : "failed");
}

/* ---- launch ---------------------------------------------------------- */

struct gc_setup {
	const char *path, *format;
};

static int gc_setup_handle(guestfs_h *g, void *opaque)
{
	struct gc_setup *su = opaque;

	return guestfs_add_drive_opts(g, su->path, GUESTFS_ADD_DRIVE_OPTS_FORMAT, su->format,
				      GUESTFS_ADD_DRIVE_OPTS_READONLY, 1, -1);
}

static int launch(struct gc *c, const char *format)
{
	struct gc_setup su = { c->path, format };
	struct scimg_gf_launch l = {
		.path = c->path,
		.setup = gc_setup_handle,
		.setup_opaque = &su,
		.notice = c->opts ? c->opts->notice : NULL,
		.notice_opaque = c->opts ? c->opts->notice_opaque : NULL,
	};

	return scimg_int_gf_launch(c->ctx, &l, &c->g);
}

/* ---- guest files ----------------------------------------------------- */

static int is_file(struct gc *c, const char *p)
{
	return guestfs_is_file_opts(c->g, p, GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS, 1, -1) == 1;
}

/* The GRUB 2 configuration pygrub and pvgrub2 read, as the guest sees it,
 * or NULL when there is none. */
static const char *grub_cfg_path(struct gc *c)
{
	static const char *const paths[] = { "/boot/grub/grub.cfg", "/boot/grub2/grub.cfg" };
	size_t i;

	for (i = 0; i < SCIMG_ARRAY_SIZE(paths); i++)
		if (is_file(c, paths[i]))
			return paths[i];
	return NULL;
}

static int is_dir(struct gc *c, const char *p)
{
	return guestfs_is_dir_opts(c->g, p, GUESTFS_IS_DIR_OPTS_FOLLOWSYMLINKS, 1, -1) == 1;
}

/* Download guest file P to a host temp file; the host path (caller frees)
 * or NULL with an error recorded. */
static char *fetch(struct gc *c, const char *p, const char *tag)
{
	size_t n = strlen(c->tmpdir) + strlen(tag) + 2;
	char *local = malloc(n);

	if (!local) {
		scimg_int_err(c->ctx, -ENOMEM, "out of memory");
		return NULL;
	}
	snprintf(local, n, "%s/%s", c->tmpdir, tag);
	if (guestfs_download(c->g, p, local) < 0) {
		char what[300];
		snprintf(what, sizeof(what), "download of '%s'", p);
		gerr(c, what);
		unlink(local);
		free(local);
		return NULL;
	}
	return local;
}

/* Read a guest text file of at most MAX bytes, NUL-terminated, or NULL. */
static char *read_small(struct gc *c, const char *p, int64_t max)
{
	int64_t sz;
	size_t len = 0;
	char *b, *r;

	if (!is_file(c, p))
		return NULL;
	sz = guestfs_filesize(c->g, p);
	if (sz < 0 || sz > max)
		return NULL;
	b = guestfs_read_file(c->g, p, &len);
	if (!b)
		return NULL;
	r = malloc(len + 1);
	if (r) {
		memcpy(r, b, len);
		r[len] = '\0';
	}
	free(b);
	return r;
}

/* ---- kernels --------------------------------------------------------- */

/* The initramfs listing (a JSON array of module names) has MOD. */
static int json_has(void *opaque, const char *mod)
{
	json_object *arr = opaque;
	char want[128];
	size_t i;

	scimg_int_sg_modname(mod, want, sizeof(want));
	for (i = 0; arr && i < json_object_array_length(arr); i++)
		if (strcmp(json_object_get_string(json_object_array_get_idx(arr, i)), want) == 0)
			return 1;
	return 0;
}

/* The one way scimg lists a guest's initramfs (check, the SCI descriptor
 * and inject-drivers): see check-int.h. */
int scimg_int_guest_initrd_modules(struct scimg_ctx *ctx, guestfs_h *g, const char *initrd,
				   const char *tmpbase, json_object **mods)
{
	char *dir = NULL, *local = NULL;
	int64_t sz = -1;
	int r;

	*mods = NULL;
	guestfs_push_error_handler(g, NULL, NULL);
	if (guestfs_is_file_opts(g, initrd, GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS, 1, -1) != 1) {
		r = scimg_int_err(ctx, -ENOENT, "'%s' is not a regular file", initrd);
		goto out;
	}
	/* a sparse terabyte named like an initramfs is not downloaded */
	sz = guestfs_filesize(g, initrd);
	if (sz <= 0 || sz > SCIMG_INT_INITRD_MAX) {
		r = scimg_int_err(ctx, -EFBIG, "'%s' has %lld bytes: not an initramfs "
				  "(1 - %lld allowed)", initrd, (long long)sz,
				  (long long)SCIMG_INT_INITRD_MAX);
		goto out;
	}
	if ((r = scimg_int_tmp_dir(ctx, "initrd", tmpbase, "/tmp", &dir)) < 0)
		goto out;
	if (asprintf(&local, "%s/initrd", dir) < 0) {
		local = NULL;
		r = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	if (guestfs_download(g, initrd, local) < 0) {
		const char *e = guestfs_last_error(g);

		r = scimg_int_err(ctx, -EIO, "download of '%s': %s", initrd, e ? e : "failed");
		goto out;
	}
	r = scimg_int_initrd_modules(ctx, local, mods);
out:
	guestfs_pop_error_handler(g);
	if (local) {
		unlink(local);
		free(local);
	}
	if (dir) {
		rmdir(dir);
		free(dir);
	}
	return r;
}

/* Fill one kernel object: path, initrd, compression, drivers.  *ERR gets
 * the initramfs problem (malloc'ed) when it could not be listed. */
static json_object *kernel_facts(struct gc *c, const char *ver, char **err)
{
	json_object *k = json_object_new_object(), *drv = json_object_new_object();
	json_object *mods = NULL;
	char p[512], *initrd, *dep, *builtin;
	struct sg_moddep *md;
	size_t i;

	*err = NULL;
	json_object_object_add(k, "version", json_object_new_string(ver));
	json_object_object_add(k, "default", json_object_new_boolean(0));
	snprintf(p, sizeof(p), "/boot/vmlinuz-%s", ver);
	json_object_object_add(k, "path", json_object_new_string(p));
	json_object_object_add(k, "compression", json_object_new_string(scimg_int_sg_kernel_compression_of(c->g, p)));
	initrd = scimg_int_sg_initrd_of(c->g, ver);
	if (initrd) {
		json_object *known = NULL;

		json_object_object_add(k, "initrd", json_object_new_string(initrd));
		if (c->known_mods && json_object_object_get_ex(c->known_mods, initrd, &known)) {
			/* listed on the host a moment ago (the SCI build's
			 * inject-drivers, after its rebuild) */
			mods = json_object_get(known);
		} else if (scimg_int_guest_initrd_modules(c->ctx, c->g, initrd, c->tmpdir,
							  &mods) < 0) {
			*err = strdup(scimg_ctx_errmsg(c->ctx));
			scimg_ctx_clear_error(c->ctx);
		}
		free(initrd);
	}
	snprintf(p, sizeof(p), "/lib/modules/%s/modules.dep", ver);
	dep = read_small(c, p, 16u << 20);
	snprintf(p, sizeof(p), "/lib/modules/%s/modules.builtin", ver);
	builtin = read_small(c, p, 16u << 20);
	md = dep ? scimg_int_sg_moddep_parse(dep) : NULL;
	for (i = 0; i < SG_NDRV + 64; i++) {
		const char *d;
		char *miss = NULL;
		enum sg_where w;

		if (i < SG_NDRV)
			d = scimg_int_sg_drv_name[i];
		else if (c->opts && c->opts->extra_drivers && c->opts->extra_drivers[i - SG_NDRV])
			d = c->opts->extra_drivers[i - SG_NDRV];
		else
			break;
		if (json_object_object_get_ex(drv, d, NULL))
			continue;
		w = scimg_int_sg_where(md, builtin, mods ? json_has : NULL, mods, d, &miss);
		json_object_object_add(drv, d, json_object_new_string(scimg_int_sg_where_name(w)));
		if (miss) {
			json_object *mo;
			if (!json_object_object_get_ex(k, "missing-dependencies", &mo)) {
				mo = json_object_new_object();
				json_object_object_add(k, "missing-dependencies", mo);
			}
			json_object_object_add(mo, d, json_object_new_string(miss));
			free(miss);
		}
	}
	scimg_int_sg_moddep_free(md);
	json_object_object_add(k, "drivers", drv);
	free(dep);
	free(builtin);
	json_object_put(mods);
	return k;
}

/* ---- grub.cfg -------------------------------------------------------- */

struct entry {
	char *linux_path;
	char *args;
	char *initrd;
	int linux16; /* linux16/linuxefi: not for pvgrub2 */
};

static char *word(const char **s)
{
	const char *p = *s, *b;
	char q = 0;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '"' || *p == '\'')
		q = *p++;
	b = p;
	while (*p && (q ? *p != q : (*p != ' ' && *p != '\t')))
		p++;
	*s = *p && q ? p + 1 : p;
	return strndup(b, (size_t)(p - b));
}

static const char *skip_ws(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* S starts with the word K followed by a blank (or the end) */
static int kw(const char *s, const char *k)
{
	size_t n = strlen(k);
	return !strncmp(s, k, n) && (s[n] == ' ' || s[n] == '\t' || s[n] == '\0');
}

/* Parse the menu entries of a grub.cfg text: the default top-level entry
 * (set default=N, numeric; else 0).  Returns the number of entries found. */
static int grub_parse(const char *cfg, struct entry *def)
{
	const char *l = cfg;
	int depth = 0, entry = -1, in_entry = 0, want = 0, n = 0, entry_depth = 0;

	memset(def, 0, sizeof(*def));
	/* default first */
	for (l = cfg; l && *l; ) {
		const char *e = strchr(l, '\n');
		const char *s = l;
		while (*s == ' ' || *s == '\t')
			s++;
		if (kw(s, "set") && (s = skip_ws(s + 3)) && !strncmp(s, "default=", 8)) {
			const char *v = s + 8;
			if (*v == '"' || *v == '\'')
				v++;
			if (isdigit((unsigned char)*v)) {
				want = atoi(v);
				break;
			}
		}
		l = e ? e + 1 : NULL;
	}
	for (l = cfg; l && *l; ) {
		const char *e = strchr(l, '\n');
		size_t len = e ? (size_t)(e - l) : strlen(l);
		char *line = strndup(l, len);
		const char *s = line;
		const char *b;

		while (*s == ' ' || *s == '\t')
			s++;
		if (kw(s, "menuentry") || kw(s, "submenu")) {
			/* a submenu takes a number too; its entries are not
			 * the default (default="1>0" is not followed) */
			if (depth == 0) {
				entry++;
				n++;
				in_entry = entry == want && kw(s, "menuentry");
				entry_depth = depth + 1;
			}
		} else if (in_entry && depth == entry_depth && !def->linux_path &&
			   (kw(s, "linux") || kw(s, "linux16") || kw(s, "linuxefi"))) {
			def->linux16 = !kw(s, "linux");
			s += strcspn(s, " \t");
			def->linux_path = word(&s);
			def->args = strdup(skip_ws(s));
		} else if (in_entry && depth == entry_depth && !def->initrd &&
			   (kw(s, "initrd") || kw(s, "initrd16") || kw(s, "initrdefi"))) {
			s += strcspn(s, " \t");
			def->initrd = word(&s);
		}
		/* braces outside quotes (grub.cfg rarely quotes braces) */
		for (b = line; *b; b++) {
			if (*b == '#')
				break;
			if (*b == '{')
				depth++;
			else if (*b == '}' && depth > 0) {
				depth--;
				if (depth < entry_depth)
					in_entry = 0;
			}
		}
		free(line);
		l = e ? e + 1 : NULL;
	}
	return n;
}

int scimg_int_grub_default(const char *cfg, char **linux_path, char **args,
			   char **initrd, int *linux16)
{
	struct entry e;
	int n = grub_parse(cfg, &e);

	*linux_path = e.linux_path;
	*args = e.args;
	*initrd = e.initrd;
	*linux16 = e.linux16;
	return n;
}

static void entry_free(struct entry *e)
{
	free(e->linux_path);
	free(e->args);
	free(e->initrd);
}

/* /dev/sda1, /dev/hdb, /dev/vda2, /dev/xvda1, /dev/nvme0n1p1 */
static int is_devname(const char *s)
{
	const char *p;

	if (strncmp(s, "/dev/", 5) != 0)
		return 0;
	p = s + 5;
	if (!strncmp(p, "nvme", 4)) {
		p += 4;
		if (!isdigit((unsigned char)*p))
			return 0;
		while (isdigit((unsigned char)*p))
			p++;
		if (*p++ != 'n' || !isdigit((unsigned char)*p))
			return 0;
		while (isdigit((unsigned char)*p))
			p++;
		if (*p == 'p') {
			p++;
			if (!isdigit((unsigned char)*p))
				return 0;
			while (isdigit((unsigned char)*p))
				p++;
		}
		return *p == '\0';
	}
	if (!strncmp(p, "xvd", 3))
		p += 3;
	else if (!strncmp(p, "sd", 2) || !strncmp(p, "hd", 2) || !strncmp(p, "vd", 2))
		p += 2;
	else
		return 0;
	if (!islower((unsigned char)*p))
		return 0;
	while (islower((unsigned char)*p))
		p++;
	while (isdigit((unsigned char)*p))
		p++;
	return *p == '\0';
}

static char *cmdline_value(const char *args, const char *key)
{
	const char *p = args;
	size_t kl = strlen(key);

	while (p && *p) {
		while (*p == ' ')
			p++;
		if (!strncmp(p, key, kl) && p[kl] == '=') {
			const char *v = p + kl + 1, *e = v;
			while (*e && *e != ' ')
				e++;
			return strndup(v, (size_t)(e - v));
		}
		p = strchr(p, ' ');
	}
	return NULL;
}

static void check_fstab(struct gc *c, const char *file)
{
	char *t = read_small(c, file, 4 << 20);
	const char *l;
	int lineno = 0;

	if (!t)
		return;
	for (l = t; l && *l; ) {
		const char *e = strchr(l, '\n');
		char *line = strndup(l, e ? (size_t)(e - l) : strlen(l));
		const char *s = line;
		char *spec, *mp;

		lineno++;
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s && *s != '#') {
			spec = word(&s);
			mp = word(&s);
			if (is_devname(spec))
				scimg_int_finding(c->findings, "guest-fstab-device", "error",
						  "%s line %d: '%s' is named by device name '%s', which changes between buses; use UUID= or LABEL=",
						  file, lineno, mp, spec);
			free(spec);
			free(mp);
		}
		free(line);
		l = e ? e + 1 : NULL;
	}
	free(t);
}

/* ---- the whole check -------------------------------------------------- */

static int cmp_len(const void *a, const void *b)
{
	const char *const *x = a, *const *y = b;
	return (int)strlen(x[0]) - (int)strlen(y[0]);
}

static int mount_all(struct gc *c, const char *root)
{
	char **mp = guestfs_inspect_get_mountpoints(c->g, root);
	size_t n = 0, i;

	if (!mp)
		return gerr(c, "inspect mountpoints");
	while (mp[n])
		n++;
	qsort(mp, n / 2, 2 * sizeof(char *), cmp_len);
	for (i = 0; i + 1 < n; i += 2)
		if (guestfs_mount_ro(c->g, mp[i + 1], mp[i]) < 0 && strcmp(mp[i], "/") == 0) {
			int r = gerr(c, "mount of the root filesystem");
			scimg_int_strv_free(mp);
			return r;
		}
	scimg_int_strv_free(mp);
	return 0;
}

static void gstr(json_object *o, const char *key, char *v)
{
	if (v && *v && strcmp(v, "unknown") != 0)
		json_object_object_add(o, key, json_object_new_string(v));
	free(v);
}

static int describe(struct gc *c, const char *root_dev, int top_cfg,
		    const struct sg_disk_facts *known);

static int run(struct gc *c, const char *format)
{
	char **roots = NULL;
	int ret;

	if ((ret = launch(c, format)) < 0)
		return ret;
	roots = guestfs_inspect_os(c->g);
	if (!roots)
		return gerr(c, "inspection");
	if (!roots[0]) {
		json_object_object_add(c->guest, "inspected", json_object_new_boolean(1));
		if (scimg_int_sg_has_luks(c->g))
			scimg_int_finding(c->findings, "guest-encrypted", "error",
					  "no operating system found outside LUKS-encrypted volumes: an "
					  "encrypted root cannot be checked without its key");
		else
			scimg_int_finding(c->findings, "guest-no-os", "error",
					  "no operating system found on the disk");
		scimg_int_strv_free(roots);
		return 0;
	}
	if (roots[1])
		scimg_int_finding(c->findings, "guest-multiple-os", "warning",
				  "more than one operating system found; checking the one on '%s'", roots[0]);
	ret = describe(c, roots[0], -1, NULL);
	scimg_int_strv_free(roots);
	return ret;
}

/* The facts of the guest on ROOT_DEV.  TOP_CFG < 0: mount it (read-only)
 * first, finding out whether a btrfs top level has a GRUB configuration;
 * else the guest is mounted already (inject-drivers' handle) and TOP_CFG
 * says it. */
static int describe(struct gc *c, const char *root_dev, int top_cfg,
		    const struct sg_disk_facts *known)
{
	char **boot = NULL, *cfg = NULL;
	const char *cfgpath;
	json_object *kernels, *methods, *def = NULL;
	struct entry ent;
	struct sg_disk_facts df;
	int ret, n, xen_ok = 0, def_idx = -1;
	size_t i;

	memset(&ent, 0, sizeof(ent));
	memset(&df, 0, sizeof(df));
	json_object_object_add(c->guest, "inspected", json_object_new_boolean(1));
	gstr(c->guest, "os", guestfs_inspect_get_type(c->g, root_dev));
	gstr(c->guest, "distro", guestfs_inspect_get_distro(c->g, root_dev));
	{
		int ma = guestfs_inspect_get_major_version(c->g, root_dev);
		int mi = guestfs_inspect_get_minor_version(c->g, root_dev);
		char v[32];
		if (ma > 0) {
			snprintf(v, sizeof(v), "%d.%d", ma, mi < 0 ? 0 : mi);
			json_object_object_add(c->guest, "version", json_object_new_string(v));
		}
	}
	gstr(c->guest, "arch", guestfs_inspect_get_arch(c->g, root_dev));
	gstr(c->guest, "product", guestfs_inspect_get_product_name(c->g, root_dev));
	json_object_object_add(c->guest, "root", json_object_new_string(root_dev));
	{
		char *t = guestfs_inspect_get_type(c->g, root_dev);
		int linux_guest = t && !strcmp(t, "linux");
		free(t);
		if (!linux_guest) {
			scimg_int_finding(c->findings, "guest-not-linux", "error",
					  "the guest is not Linux; a Supercloud image boots a Linux Xen PV domU");
			goto done;
		}
	}
	if (top_cfg < 0) {
		top_cfg = scimg_int_sg_btrfs_top_cfg(c->g, root_dev);
		if ((ret = mount_all(c, root_dev)) < 0)
			goto out;
	}
	if (known) {
		if (scimg_int_sg_disk_facts_dup(&df, known) < 0) {
			ret = scimg_int_err(c->ctx, -ENOMEM, "out of memory");
			goto out;
		}
	} else if (scimg_int_sg_disk_facts(c->g, root_dev, &df) < 0) {
		ret = gerr(c, "inspect mountpoints");
		goto out;
	}
	df.subvol_cfg_bridge = top_cfg;
	if (df.boot_fs)
		json_object_object_add(c->guest, "boot-filesystem", json_object_new_string(df.boot_fs));
	if (df.boot_on_lvm)
		json_object_object_add(c->guest, "boot-on-lvm", json_object_new_boolean(1));
	if (df.boot_subvol)
		json_object_object_add(c->guest, "boot-subvolume", json_object_new_string(df.boot_subvol));
	if (df.esp_dev)
		json_object_object_add(c->guest, "esp", json_object_new_string(df.esp_dev));
	if (is_dir(c, "/etc/initramfs-tools"))
		json_object_object_add(c->guest, "initramfs-tool", json_object_new_string("initramfs-tools"));
	else if (is_dir(c, "/etc/dracut.conf.d") || is_file(c, "/etc/dracut.conf"))
		json_object_object_add(c->guest, "initramfs-tool", json_object_new_string("dracut"));
	else if (is_file(c, "/etc/mkinitcpio.conf"))
		json_object_object_add(c->guest, "initramfs-tool", json_object_new_string("mkinitcpio"));

	/* kernels */
	kernels = json_object_new_array();
	json_object_object_add(c->guest, "kernels", kernels);
	boot = guestfs_ls(c->g, "/boot");
	for (i = 0; boot && boot[i]; i++) {
		char *err = NULL;
		json_object *k;
		if (strncmp(boot[i], "vmlinuz-", 8) != 0)
			continue;
		k = kernel_facts(c, boot[i] + 8, &err);
		if (err) {
			json_object_object_add(k, "initramfs-error", json_object_new_string(err));
			free(err);
		}
		json_object_array_add(kernels, k);
	}
	if (json_object_array_length(kernels) == 0)
		scimg_int_finding(c->findings, "guest-no-kernel", "error",
				  "no kernel found in /boot (vmlinuz-VERSION)");

	/* bootloader configuration: what pygrub and pvgrub2 read */
	cfgpath = grub_cfg_path(c);
	if (cfgpath) {
		json_object_object_add(c->guest, "bootloader", json_object_new_string("grub2"));
		cfg = read_small(c, cfgpath, 4 << 20);
	} else if (is_file(c, "/boot/grub/menu.lst")) {
		json_object_object_add(c->guest, "bootloader", json_object_new_string("grub-legacy"));
	}
	if (!cfg) {
		scimg_int_finding(c->findings, "guest-grub-cfg-missing", "error",
				  "no readable /boot/grub/grub.cfg: pvgrub2 and pygrub need a GRUB 2 configuration");
	} else if ((n = grub_parse(cfg, &ent)) == 0 || !ent.linux_path) {
		scimg_int_finding(c->findings, "guest-grub-cfg-no-entry", "error",
				  "%s has %s: pvgrub2 has nothing to boot", cfgpath,
				  n == 0 ? "no menuentry" : "no 'linux' line in its default menuentry");
	} else {
		const char *base = strrchr(ent.linux_path, '/');
		char *kp;
		base = base ? base + 1 : ent.linux_path;
		json_object_object_add(c->boot, "cmdline", json_object_new_string(ent.args ? ent.args : ""));
		if (ent.linux16)
			scimg_int_finding(c->findings, "guest-grub-cfg-linux16", "error",
					  "%s: the default entry boots with linux16/linuxefi, which pvgrub2 does not have",
					  cfgpath);
		kp = scimg_int_sg_grub_path(c->g, &df, ent.linux_path);
		if (!kp)
			scimg_int_finding(c->findings, "guest-grub-kernel-missing", "error",
					  "%s: the default entry's kernel '%s' does not exist",
					  cfgpath, ent.linux_path);
		free(kp);
		for (i = 0; i < json_object_array_length(kernels); i++) {
			json_object *k = json_object_array_get_idx(kernels, i), *v;
			json_object_object_get_ex(k, "version", &v);
			if (!strncmp(base, "vmlinuz-", 8) && !strcmp(base + 8, json_object_get_string(v)))
				def_idx = (int)i;
		}
		{
			char *root = cmdline_value(ent.args ? ent.args : "", "root");
			if (!root)
				scimg_int_finding(c->findings, "guest-cmdline-root", "error",
						  "%s: the default entry has no root= on its kernel command line",
						  cfgpath);
			else if (is_devname(root))
				scimg_int_finding(c->findings, "guest-cmdline-root", "error",
						  "%s: the default entry has root=%s, a device name that changes between buses; use root=UUID=",
						  cfgpath, root);
			free(root);
			if (!ent.args || !strstr(ent.args, "console=hvc0"))
				scimg_int_finding(c->findings, "guest-cmdline-console", "warning",
						  "%s: the default entry has no console=hvc0: a Xen PV console shows nothing",
						  cfgpath);
		}
	}
	if (def_idx < 0 && json_object_array_length(kernels) > 0) {
		/* without a usable grub.cfg: the newest (last listed) kernel */
		def_idx = (int)json_object_array_length(kernels) - 1;
	}
	if (def_idx >= 0) {
		json_object *v, *drv, *ie;
		const char *ver, *initrd = NULL;
		def = json_object_array_get_idx(kernels, (size_t)def_idx);
		json_object_object_add(def, "default", json_object_new_boolean(1));
		json_object_object_get_ex(def, "version", &v);
		ver = json_object_get_string(v);
		if (json_object_object_get_ex(def, "initrd", &v))
			initrd = json_object_get_string(v);
		json_object_object_get_ex(def, "drivers", &drv);
		if (json_object_object_get_ex(def, "initramfs-error", &ie)) {
			scimg_int_finding(c->findings, "guest-initramfs-unreadable", "error",
					  "default kernel %s: its initramfs could not be listed: %s",
					  ver, json_object_get_string(ie));
		} else {
			for (i = 0; i < SG_NREQUIRED; i++) {
				const char *d = scimg_int_sg_drv_name[i], *w;
				json_object *wo, *md, *mdep;
				json_object_object_get_ex(drv, d, &wo);
				w = json_object_get_string(wo);
				if (!strcmp(w, "initramfs") || !strcmp(w, "builtin"))
					continue;
				if (!strcmp(w, "initramfs-incomplete") &&
				    json_object_object_get_ex(def, "missing-dependencies", &md) &&
				    json_object_object_get_ex(md, d, &mdep))
					scimg_int_finding(c->findings, "guest-driver-incomplete", "error",
							  "default kernel %s: %s is in its initramfs %s without %s, "
							  "which it needs (modules.dep): loading it fails",
							  ver, d, initrd ? initrd : "", json_object_get_string(mdep));
				else if (!initrd)
					scimg_int_finding(c->findings, "guest-driver-missing", "error",
							  "default kernel %s: %s is not built in and the kernel has no initramfs",
							  ver, d);
				else
					scimg_int_finding(c->findings, "guest-driver-missing", "error",
							  "default kernel %s: %s is not in its initramfs %s%s",
							  ver, d, initrd,
							  !strcmp(w, "module") ? " (the module is on the root filesystem only)"
									       : " (and the kernel has no such module)");
			}
		}
	}

	check_fstab(c, "/etc/fstab");

	/* boot methods: the rules of the guest model (lib/guest/rules.c) */
	methods = json_object_new_array();
	json_object_object_add(c->boot, "methods", methods);
	{
		struct sg_boot_facts f;
		struct sg_verdict v[SG_NMETHODS];
		json_object *drv = NULL, *w, *comp = NULL;
		int m, hvm_bios = 0, any_hvm = 0;

		memset(&f, 0, sizeof(f));
		if (def) {
			json_object *v2;
			json_object_object_get_ex(def, "drivers", &drv);
			json_object_object_get_ex(def, "compression", &comp);
			json_object_object_get_ex(def, "version", &v2);
			f.kernel = json_object_get_string(v2);
		}
		f.compression = comp ? json_object_get_string(comp) : "unknown";
		for (i = 0; i < SG_NDRV; i++) {
			const char *ws = drv && json_object_object_get_ex(drv, scimg_int_sg_drv_name[i], &w)
					 ? json_object_get_string(w) : "missing";
			f.drv[i] = !strcmp(ws, "builtin") ? SG_BUILTIN
				   : !strcmp(ws, "initramfs") ? SG_INITRAMFS
				   : !strcmp(ws, "initramfs-incomplete") ? SG_INCOMPLETE
				   : !strcmp(ws, "module") ? SG_ROOTFS : SG_MISSING;
		}
		f.grub_cfg = cfg && ent.linux_path && def;
		f.linux16 = ent.linux16;
		f.grub_cfg_path = cfgpath;
		scimg_int_sg_facts_from_disk(&f, &df);
		scimg_int_sg_boot_rules(&f, v);
		json_object_object_add(c->boot, "boot-methods", scimg_int_sg_methods_json(v));
		for (m = SG_HVM_BIOS_IDE; m < SG_NMETHODS; m++)
			any_hvm |= v[m].works;
		/* the summary the SCI descriptor and xl.cfg use */
		if (v[SG_XEN_PV_PYGRUB].works || v[SG_XEN_PV_PVGRUB2].works)
			xen_ok = 1;
		for (m = SG_XEN_PV_PYGRUB; m <= SG_XEN_PV_PVGRUB2; m++) {
			json_object *o;
			if (!v[m].works)
				continue;
			o = json_object_new_object();
			json_object_object_add(o, "name", json_object_new_string("xen-pv"));
			json_object_object_add(o, "loader", json_object_new_string(m == SG_XEN_PV_PYGRUB
										   ? "pygrub" : "pvgrub2"));
			json_object_object_add(o, "basis", json_object_new_string("predicted"));
			json_object_array_add(methods, o);
		}
		for (m = SG_HVM_BIOS_IDE; m <= SG_HVM_BIOS_NVME; m++)
			hvm_bios |= v[m].works;
		if (hvm_bios) {
			json_object *o = json_object_new_object();
			json_object_object_add(o, "name", json_object_new_string("hvm-bios"));
			json_object_object_add(o, "basis", json_object_new_string("predicted"));
			json_object_array_add(methods, o);
		}
		if (v[SG_HVM_UEFI].works) {
			json_object *o = json_object_new_object();
			json_object_object_add(o, "name", json_object_new_string("hvm-uefi"));
			json_object_object_add(o, "basis", json_object_new_string("predicted"));
			json_object_array_add(methods, o);
		}
		if (xen_ok && !v[SG_XEN_PV_PVGRUB2].works)
			scimg_int_finding(c->findings, "guest-no-pvgrub2", "warning",
					  "pvgrub2 cannot boot it: %s", v[SG_XEN_PV_PVGRUB2].reason);
		if (xen_ok && !v[SG_XEN_PV_PYGRUB].works)
			scimg_int_finding(c->findings, "guest-no-pygrub", "warning",
					  "pygrub cannot boot it: %s", v[SG_XEN_PV_PYGRUB].reason);
		if (!xen_ok)
			scimg_int_finding(c->findings, "guest-no-xen-pv-boot", "error",
					  "the image cannot boot as a Xen PV domU: pygrub: %s; pvgrub2: %s",
					  v[SG_XEN_PV_PYGRUB].reason, v[SG_XEN_PV_PVGRUB2].reason);
		if (f.has_esp && !f.uefi_fallback)
			scimg_int_finding(c->findings, "guest-uefi-no-fallback", "error",
					  "the EFI system partition has no loader at \\EFI\\BOOT\\BOOTX64.EFI: "
					  "UEFI firmware without a boot entry for this disk (every new machine) "
					  "cannot start it");
		if (!any_hvm)
			scimg_int_finding(c->findings, "guest-no-hvm-boot", "warning",
					  "no HVM boot method works (BIOS: %s; UEFI: %s)",
					  v[SG_HVM_BIOS_VIRTIO_BLK].reason, v[SG_HVM_UEFI].reason);
	}
done:
	ret = 0;
out:
	entry_free(&ent);
	scimg_int_sg_disk_facts_free(&df);
	free(cfg);
	scimg_int_strv_free(boot);
	return ret;
}

/* One check of a guest: a temporary directory for initramfs downloads and
 * the three JSON parts; FN does the work (run on its own appliance, or
 * describe on inject-drivers' handle). */
static int guest_facts(struct gc *c, const char *tmpdir, int (*fn)(struct gc *, const void *),
		       const void *arg, json_object **facts)
{
	char *tmpl = NULL;
	int ret;

	*facts = NULL;
	if ((ret = scimg_int_tmp_dir(c->ctx, "check", tmpdir, "/tmp", &tmpl)) < 0)
		return ret;
	c->tmpdir = tmpl;
	c->guest = json_object_new_object();
	c->boot = json_object_new_object();
	c->findings = json_object_new_array();
	json_object_object_add(c->guest, "inspected", json_object_new_boolean(0));
	ret = fn(c, arg);
	rmdir(tmpl);
	free(tmpl);
	c->tmpdir = NULL;
	if (ret < 0) {
		json_object_put(c->guest);
		json_object_put(c->boot);
		json_object_put(c->findings);
		return ret;
	}
	if (!json_object_object_get_ex(c->boot, "methods", NULL))
		json_object_object_add(c->boot, "methods", json_object_new_array());
	*facts = json_object_new_object();
	json_object_object_add(*facts, "guest", c->guest);
	json_object_object_add(*facts, "boot", c->boot);
	json_object_object_add(*facts, "findings", c->findings);
	return 0;
}

static int run_fn(struct gc *c, const void *format)
{
	int ret = run(c, format);

	if (c->g) {
		guestfs_umount_all(c->g);
		guestfs_shutdown(c->g);
		guestfs_close(c->g);
		c->g = NULL;
	}
	return ret;
}

int scimg_int_guest_check(struct scimg_ctx *ctx, const char *path,
			  const char *format,
			  const struct scimg_guest_opts *opts,
			  json_object **facts)
{
	struct gc c;

	memset(&c, 0, sizeof(c));
	c.ctx = ctx;
	c.opts = opts;
	c.path = path;
	return guest_facts(&c, opts ? opts->tmpdir : NULL, run_fn, format, facts);
}

struct describe_arg {
	const char *root;
	int top_cfg;
	const struct sg_disk_facts *disk;
};

static int describe_fn(struct gc *c, const void *arg)
{
	const struct describe_arg *d = arg;

	return describe(c, d->root, d->top_cfg, d->disk);
}

int scimg_int_guest_describe(struct scimg_ctx *ctx, guestfs_h *g, const char *path,
			     const char *root, int top_cfg, const struct sg_disk_facts *disk,
			     json_object *initrd_mods, json_object **facts)
{
	struct gc c;
	struct describe_arg d = { root, top_cfg ? 1 : 0, disk };

	memset(&c, 0, sizeof(c));
	c.ctx = ctx;
	c.path = path;
	c.g = g;
	c.known_mods = initrd_mods;
	return guest_facts(&c, NULL, describe_fn, &d, facts);
}

/* ---- a direct Xen PV boot's files (scimg boot-test --xen=direct) ---- */

#define DIRECT_KERNEL_MAX (128ll << 20)
#define DIRECT_INITRD_MAX (512ll << 20)
#define DIRECT_CMDLINE_MAX 1000 /* Xen's PV command line holds 1024 bytes */

/* The file the default entry of CFGPATH names as ARG (its linux or initrd
 * argument), resolved inside the guest (the grub.cfg path through DF's
 * /boot and subvolume, symlinks followed in the appliance's chroot of the
 * guest, never on the host): a regular file of at most MAX bytes, as a
 * malloc'd path, or NULL with WHY set. */
static char *direct_file(struct gc *c, const struct sg_disk_facts *df, const char *cfgpath,
			 const char *arg, int64_t max, const char *what, char *why, size_t whylen)
{
	char *rp, *gp = scimg_int_sg_grub_path(c->g, df, arg);
	int64_t sz;

	if (!gp) {
		snprintf(why, whylen, "%s: the default entry's %s '%.200s' does not exist",
			 cfgpath, what, arg);
		return NULL;
	}
	guestfs_push_error_handler(c->g, NULL, NULL);
	rp = guestfs_realpath(c->g, gp);
	guestfs_pop_error_handler(c->g);
	if (!rp || rp[0] != '/' ||
	    guestfs_is_file_opts(c->g, rp, GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS, 0, -1) != 1) {
		snprintf(why, whylen, "the %s '%s' is not a regular file in the guest", what, gp);
		free(rp);
		rp = NULL;
	} else if ((sz = guestfs_filesize(c->g, rp)) <= 0 || sz > max) {
		snprintf(why, whylen, "the %s '%s' has %lld bytes (1 - %lld allowed)", what, gp,
			 (long long)sz, (long long)max);
		free(rp);
		rp = NULL;
	}
	free(gp);
	return rp;
}

int scimg_int_direct_cmdline(const char *args, char *out, size_t outlen, char *why, size_t whylen)
{
	const char *p = args ? args : "";
	size_t n = 0;

	out[0] = '\0';
	while (*p) {
		const char *b;
		size_t l;

		while (*p == ' ' || *p == '\t')
			p++;
		b = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		l = (size_t)(p - b);
		if (!l || (l >= 8 && !strncmp(b, "console=", 8)) || memchr(b, '$', l))
			continue;
		for (size_t i = 0; i < l; i++)
			if (b[i] < 0x21 || b[i] > 0x7e || b[i] == '"' || b[i] == '\'' || b[i] == '\\') {
				snprintf(why, whylen, "the default entry's kernel command line has "
					 "a character xl cannot be given (0x%02x)", (unsigned char)b[i]);
				return -1;
			}
		if (n + l + 1 >= outlen) {
			snprintf(why, whylen, "the default entry's kernel command line is longer "
				 "than %zu bytes", outlen - 1);
			return -1;
		}
		memcpy(out + n, b, l);
		n += l;
		out[n++] = ' ';
		out[n] = '\0';
	}
	if (n + sizeof("console=hvc0") > outlen) {
		snprintf(why, whylen, "the default entry's kernel command line is longer than %zu "
			 "bytes", outlen - 1);
		return -1;
	}
	memcpy(out + n, "console=hvc0", sizeof("console=hvc0"));
	return 0;
}

/* Find the files; 0 (with WHY set when there is nothing to boot) or -errno. */
static int direct_find(struct gc *c, const char *carrier, char *why, size_t whylen)
{
	char **roots = NULL, *cfg = NULL, *kp = NULL, *ip = NULL, *local_k = NULL,
	     *local_i = NULL, *t = NULL, cmdline[DIRECT_CMDLINE_MAX + 1];
	const char *cfgpath, *root;
	struct sg_disk_facts df;
	struct entry ent;
	struct sci_tar_writer *w = NULL;
	int ret = 0, fd = -1;

	memset(&df, 0, sizeof(df));
	memset(&ent, 0, sizeof(ent));
	why[0] = '\0';
	roots = guestfs_inspect_os(c->g);
	if (!roots)
		return gerr(c, "inspection");
	if (!roots[0]) {
		snprintf(why, whylen, "%s", scimg_int_sg_has_luks(c->g)
			 ? "no operating system found outside LUKS-encrypted volumes"
			 : "no operating system found on the disk");
		goto out;
	}
	root = roots[0];
	t = guestfs_inspect_get_type(c->g, root);
	if (!t || strcmp(t, "linux")) {
		snprintf(why, whylen, "the guest is not Linux (%s)", t ? t : "unknown");
		goto out;
	}
	if ((ret = mount_all(c, root)) < 0)
		goto out;
	if (scimg_int_sg_disk_facts(c->g, root, &df) < 0) {
		ret = gerr(c, "inspect mountpoints");
		goto out;
	}
	cfgpath = grub_cfg_path(c);
	if (!cfgpath || !(cfg = read_small(c, cfgpath, 4 << 20))) {
		snprintf(why, whylen, "no readable /boot/grub/grub.cfg (of at most 4 MiB) to "
			 "take the default kernel and its command line from");
		goto out;
	}
	if (grub_parse(cfg, &ent) == 0 || !ent.linux_path) {
		snprintf(why, whylen, "%s has no 'linux' line in its default menu entry: no "
			 "kernel to boot", cfgpath);
		goto out;
	}
	kp = direct_file(c, &df, cfgpath, ent.linux_path, DIRECT_KERNEL_MAX, "kernel", why, whylen);
	if (!kp)
		goto out;
	if (ent.initrd) {
		ip = direct_file(c, &df, cfgpath, ent.initrd, DIRECT_INITRD_MAX, "initramfs",
				 why, whylen);
		if (!ip)
			goto out;
	}
	if (scimg_int_direct_cmdline(ent.args, cmdline, sizeof(cmdline), why, whylen) < 0)
		goto out;
	if (c->opts && c->opts->notice) {
		char msg[1400];
		snprintf(msg, sizeof(msg), "--xen=direct: kernel %.200s (%s)%s%.200s, command line: %s",
			 kp, scimg_int_sg_kernel_compression_of(c->g, kp), ip ? ", initramfs " : "",
			 ip ? ip : "", cmdline);
		c->opts->notice(c->opts->notice_opaque, msg);
	}
	/* download, then pack: vmlinuz, initrd (empty: none), cmdline */
	if (!(local_k = fetch(c, kp, "vmlinuz")) || (ip && !(local_i = fetch(c, ip, "initrd")))) {
		ret = -EIO;
		goto out;
	}
	fd = open(carrier, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		ret = scimg_int_err(c->ctx, -errno, "'%s': %s", carrier, strerror(errno));
		goto out;
	}
	if ((ret = scimg_int_tar_writer_new(c->ctx, fd, carrier, 0, &w)) < 0)
		goto out;
	if ((ret = scimg_int_tar_add_file(w, "vmlinuz", local_k, NULL, NULL)) < 0 ||
	    (ret = local_i ? scimg_int_tar_add_file(w, "initrd", local_i, NULL, NULL)
			   : scimg_int_tar_add_buffer(w, "initrd", "", 0)) < 0 ||
	    (ret = scimg_int_tar_add_buffer(w, "cmdline", cmdline, strlen(cmdline))) < 0) {
		scimg_int_tar_writer_abort(w);
		goto out;
	}
	ret = scimg_int_tar_writer_close(w);
out:
	if (fd >= 0 && close(fd) < 0 && ret == 0)
		ret = scimg_int_err(c->ctx, -errno, "'%s': %s", carrier, strerror(errno));
	if (ret < 0 && fd >= 0)
		unlink(carrier);
	if (local_k)
		unlink(local_k);
	if (local_i)
		unlink(local_i);
	free(local_k);
	free(local_i);
	free(kp);
	free(ip);
	free(t);
	free(cfg);
	entry_free(&ent);
	scimg_int_sg_disk_facts_free(&df);
	scimg_int_strv_free(roots);
	return ret;
}

int scimg_int_guest_direct_carrier(struct scimg_ctx *ctx, const char *path, const char *format,
				   const char *carrier, const struct scimg_guest_opts *opts,
				   char *why, size_t whylen)
{
	struct gc c;
	int ret;

	memset(&c, 0, sizeof(c));
	c.ctx = ctx;
	c.opts = opts;
	c.path = path;
	why[0] = '\0';
	if ((ret = scimg_int_tmp_dir(ctx, "direct", opts ? opts->tmpdir : NULL, "/var/tmp",
				     &c.tmpdir)) < 0)
		return ret;
	ret = launch(&c, format);
	if (ret == 0)
		ret = direct_find(&c, carrier, why, whylen);
	if (c.g) {
		guestfs_umount_all(c.g);
		guestfs_shutdown(c.g);
		guestfs_close(c.g);
	}
	rmdir(c.tmpdir);
	free(c.tmpdir);
	return ret;
}
