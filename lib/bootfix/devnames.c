/* devnames.c - device names that change with the bus (sda, vda, xvda,
 * nvme0n1) replaced by UUID/LABEL in fstab, crypttab and resume settings;
 * persistent network naming rules removed; gettys on hvc0 and ttyS0. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootfix-int.h"

int bf_parse_devname(const char *name, int *disk, int *part)
{
	const char *p;
	int d = 0, n = 0;

	if (strncmp(name, "/dev/", 5) != 0)
		return -1;
	p = name + 5;
	if (strncmp(p, "nvme", 4) == 0) {
		char *e;
		long c, ns, pn = 0;

		c = strtol(p + 4, &e, 10);
		if (e == p + 4 || *e != 'n' || c < 0 || c > 255)
			return -1;
		p = e + 1;
		ns = strtol(p, &e, 10);
		if (e == p || ns < 1 || ns > 255)
			return -1;
		if (*e == 'p') {
			p = e + 1;
			pn = strtol(p, &e, 10);
			if (e == p || pn < 1 || pn > 255)
				return -1;
		}
		if (*e)
			return -1;
		*disk = (int)(c + ns - 1);
		*part = (int)pn;
		return 0;
	}
	if (strncmp(p, "xvd", 3) == 0)
		p += 3;
	else if (strncmp(p, "sd", 2) == 0 || strncmp(p, "hd", 2) == 0 || strncmp(p, "vd", 2) == 0)
		p += 2;
	else
		return -1;
	if (!islower((unsigned char)*p))
		return -1;
	while (islower((unsigned char)*p)) {
		d = d * 26 + (*p - 'a' + 1);
		p++;
		if (d > 26 * 27)
			return -1;
	}
	while (isdigit((unsigned char)*p)) {
		n = n * 10 + (*p - '0');
		p++;
		if (n > 255)
			return -1;
	}
	if (*p)
		return -1;
	*disk = d - 1;
	*part = n;
	return 0;
}

/* Appliance device for guest disk DISK partition PART. */
static char *appliance_dev(struct bf *bf, int disk, int part)
{
	const char *dev;
	size_t n = 0, idx;
	char **parts, *want = NULL;
	int has_parts = 0;
	size_t i;

	while (bf->devices && bf->devices[n])
		n++;
	if (bf->wrapped) {
		/* the guest's first disk is now the new partitioned one */
		if (disk == 0)
			dev = bf->bootdisk;
		else if ((size_t)disk + 1 < n)
			dev = bf->devices[disk + 1];
		else
			return NULL;
	} else {
		idx = (size_t)disk;
		if (idx >= n)
			return NULL;
		dev = bf->devices[idx];
	}
	if (part == 0)
		return bf_strdup(dev);
	parts = guestfs_list_partitions(bf->g);
	for (i = 0; parts && parts[i]; i++) {
		size_t l = strlen(dev);
		if (strncmp(parts[i], dev, l) == 0) {
			has_parts = 1;
			if (atoi(parts[i] + l) == part)
				want = bf_strdup(parts[i]);
		}
	}
	scimg_int_strv_free(parts);
	/* /dev/xvda1 naming a whole disk without a partition table (old AMIs) */
	if (!want && !has_parts && part == 1)
		want = bf_strdup(dev);
	return want;
}

char *bf_devname_to_stable(struct bf *bf, const char *name)
{
	int disk, part;
	char *dev, *id, *out = NULL;

	if (bf_parse_devname(name, &disk, &part) < 0)
		return NULL;
	dev = appliance_dev(bf, disk, part);
	if (!dev)
		return NULL;
	guestfs_push_error_handler(bf->g, NULL, NULL);
	id = guestfs_vfs_uuid(bf->g, dev);
	if (id && *id)
		out = bf_printf("UUID=%s", id);
	free(id);
	if (!out) {
		id = guestfs_vfs_label(bf->g, dev);
		if (id && *id)
			out = bf_printf("LABEL=%s", id);
		free(id);
	}
	guestfs_pop_error_handler(bf->g);
	free(dev);
	return out;
}

/* Replace field FIELD (0-based, blank separated) of every non-comment line
 * that names a bus-dependent device. */
static int fix_table(struct bf *bf, const char *path, int field)
{
	char *text = NULL, *out, *p;
	size_t cap, used = 0;
	int r, changed = 0;

	r = bf_read(bf, path, 4u << 20, &text);
	if (r < 0 || !text)
		return r;
	cap = strlen(text) * 2 + 4096;
	out = malloc(cap);
	if (!out) {
		free(text);
		return -ENOMEM;
	}
	for (p = text; *p;) {
		char *e = strchr(p, '\n'), *f = p, *fe;
		size_t len = e ? (size_t)(e - p + 1) : strlen(p);
		int i;

		while (*f == ' ' || *f == '\t')
			f++;
		if (*f == '#' || *f == '\n' || !*f)
			goto copy;
		for (i = 0; i < field; i++) {
			f += strcspn(f, " \t\n");
			f += strspn(f, " \t");
		}
		fe = f + strcspn(f, " \t\n");
		if (fe > f && strncmp(f, "/dev/", 5) == 0 && f < p + len) {
			char name[256], *stable;
			size_t nl = (size_t)(fe - f);

			if (nl >= sizeof(name))
				goto copy;
			memcpy(name, f, nl);
			name[nl] = '\0';
			stable = bf_devname_to_stable(bf, name);
			if (stable) {
				used += (size_t)snprintf(out + used, cap - used, "%.*s%s",
							 (int)(f - p), p, stable);
				bf_change(bf, path, "%s -> %s", name, stable);
				free(stable);
				changed++;
				len -= (size_t)(fe - p);
				p = fe;
			} else {
				int dd, pp;
				if (bf_parse_devname(name, &dd, &pp) == 0)
					bf_warn(bf, "%s names %s, which is not in the image; left as is",
						path, name);
			}
		}
copy:
		if (used + len + 1 < cap) {
			memcpy(out + used, p, len);
			used += len;
		}
		p += len;
	}
	out[used] = '\0';
	r = changed ? bf_write(bf, path, out) : 0;
	free(out);
	free(text);
	return r;
}

static int fix_resume(struct bf *bf)
{
	static const char path[] = "/etc/initramfs-tools/conf.d/resume";
	char *text = NULL, *v, *s, *nt;
	int r;

	r = bf_read(bf, path, 1u << 20, &text);
	if (r < 0 || !text)
		return r;
	v = bf_shvar_get(text, "RESUME");
	if (v && strncmp(v, "/dev/", 5) == 0) {
		s = bf_devname_to_stable(bf, v);
		if (s) {
			nt = bf_shvar_set(text, "RESUME", s, 0);
			r = nt ? bf_write(bf, path, nt) : -ENOMEM;
			if (r == 0)
				bf_change(bf, path, "RESUME=%s -> RESUME=%s", v, s);
			free(nt);
			free(s);
		}
	}
	free(v);
	free(text);
	return r;
}

int bf_devnames(struct bf *bf)
{
	int r;

	r = fix_table(bf, "/etc/fstab", 0);
	if (r == 0)
		r = fix_table(bf, "/etc/crypttab", 1);
	if (r == 0)
		r = fix_resume(bf);
	return r;
}

int bf_netrules(struct bf *bf)
{
	static const char *const rules[] = {
		"/etc/udev/rules.d/70-persistent-net.rules",
		"/etc/udev/rules.d/75-persistent-net-generator.rules",
		NULL
	};
	char *out = NULL;
	int i, rc, r;

	for (i = 0; rules[i]; i++) {
		if (!bf_exists(bf, rules[i]))
			continue;
		if (!bf->dry_run && guestfs_rm_f(bf->g, rules[i]) == -1)
			return bf_gerr(bf, "removing '%s'", rules[i]);
		bf_change(bf, rules[i], "removed (network names bound to old MAC addresses)");
	}
	/* Red Hat style: HWADDR= pins a config to a MAC address */
	r = bf_sh(bf, "grep -ls '^HWADDR=' /etc/sysconfig/network-scripts/ifcfg-* "
		      "/etc/sysconfig/network/ifcfg-* 2>/dev/null", &out, &rc);
	if (r < 0)
		return r;
	if (rc == 0 && out && *out) {
		char *p, *save = NULL;
		for (p = strtok_r(out, "\n", &save); p; p = strtok_r(NULL, "\n", &save)) {
			char *cmd = bf_printf("sed -i '/^HWADDR=/d' '%s'", p);
			int rc2;
			if (!cmd)
				break;
			if (!bf->dry_run && bf_sh(bf, cmd, NULL, &rc2) == 0 && rc2 == 0)
				bf_change(bf, p, "HWADDR= line removed");
			else if (bf->dry_run)
				bf_change(bf, p, "HWADDR= line would be removed");
			free(cmd);
		}
	}
	free(out);
	return 0;
}

int bf_consoles(struct bf *bf)
{
	static const char rule[] = "/etc/udev/rules.d/90-scimg-console-getty.rules";
	char *text = NULL;
	int r;

	if (bf_exists(bf, "/lib/systemd/system/serial-getty@.service") ||
	    bf_exists(bf, "/usr/lib/systemd/system/serial-getty@.service")) {
		/* started when the console device shows up: hvc0 under Xen,
		 * ttyS0 on PCs; nothing waits for a console that is absent */
		if (bf_exists(bf, rule))
			return 0;
		r = bf_write(bf, rule,
			     "# written by scimg inject-drivers: a login on the Xen console and\n"
			     "# the first serial port, whichever the machine has\n"
			     "ACTION==\"add\", SUBSYSTEM==\"tty\", KERNEL==\"hvc0\", TAG+=\"systemd\", "
			     "ENV{SYSTEMD_WANTS}+=\"serial-getty@hvc0.service\"\n"
			     "ACTION==\"add\", SUBSYSTEM==\"tty\", KERNEL==\"ttyS0\", TAG+=\"systemd\", "
			     "ENV{SYSTEMD_WANTS}+=\"serial-getty@ttyS0.service\"\n");
		if (r == 0)
			bf_change(bf, rule, "getty on hvc0 and ttyS0 (systemd, started when the device appears)");
		return r;
	}
	r = bf_read(bf, "/etc/inittab", 1u << 20, &text);
	if (r < 0)
		return r;
	if (text) {
		char *nt = bf_printf("%s%s%s%s", text,
				     text[0] && text[strlen(text) - 1] != '\n' ? "\n" : "",
				     strstr(text, "ttyS0") ? "" : "T0:2345:respawn:/sbin/getty -L ttyS0 115200 vt100\n",
				     strstr(text, "hvc0") ? "" : "h0:2345:respawn:/sbin/getty 38400 hvc0\n");
		if (nt && strcmp(nt, text) != 0) {
			r = bf_write(bf, "/etc/inittab", nt);
			if (r == 0)
				bf_change(bf, "/etc/inittab", "getty on hvc0 and ttyS0");
		}
		free(nt);
		free(text);
		return r;
	}
	bf_warn(bf, "neither systemd nor /etc/inittab found: no getty added on hvc0/ttyS0");
	return 0;
}
